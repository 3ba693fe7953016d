//! The witness's `rtm:gitRef`: `git+<base>@<sha>#<path>`, made from a repository and checked
//! before any part of it reaches a git command line.
//!
//! Invariant: a parsed [`GitRef`] whose base is [`Base::Remote`] or [`Base::File`] is safe to hand
//! to `git clone`: its scheme is one of `https://`, `ssh://`, `git@host:` or `file://`, its commit
//! is 40 or 64 hex digits, and its path stays inside the worktree.

use std::fmt;

use camino::{Utf8Component, Utf8Path, Utf8PathBuf};

use crate::git::CommitId;

/// Where the recorded commit can be fetched from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base {
    /// `https://…`, `ssh://…` or `git@host:…`.
    Remote(String),
    /// `file://<absolute path>`: a repository on this machine (no `origin` remote).
    File(Utf8PathBuf),
    /// `local://unknown`: the demo's marker for a build outside any git repository.
    Unknown,
}

/// A parsed `rtm:gitRef`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitRef {
    pub base: Base,
    /// `None` for the demo's `uncommitted` marker.
    pub commit: Option<CommitId>,
    /// The Dockerfile, relative to the repository root.
    pub path: Utf8PathBuf,
}

#[derive(Debug, PartialEq, Eq)]
pub enum GitRefError {
    NoPrefix { text: String },
    NoFragment { text: String },
    NoAt { text: String },
    Scheme { base: String },
    Commit { sha: String },
    Path { path: String },
}

impl fmt::Display for GitRefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GitRefError::NoPrefix { text } => {
                write!(f, "gitRef {text:?} does not start with `git+`")
            }
            GitRefError::NoFragment { text } => {
                write!(f, "gitRef {text:?} has no `#<path>` fragment")
            }
            GitRefError::NoAt { text } => write!(f, "gitRef {text:?} has no `@<commit>`"),
            GitRefError::Scheme { base } => write!(
                f,
                "gitRef base {base:?} is not allowed: only https://, ssh://, git@host: and file:// repositories are cloned"
            ),
            GitRefError::Commit { sha } => {
                write!(f, "gitRef commit {sha:?} is not a full commit id (40 or 64 hex digits)")
            }
            GitRefError::Path { path } => {
                write!(f, "gitRef path {path:?} is not a relative path inside the repository")
            }
        }
    }
}

impl std::error::Error for GitRefError {}

impl GitRef {
    /// Parses a recorded gitRef: strip `git+`, split the fragment at the first `#`, split base
    /// and commit at the last `@`, then validate each part.
    pub fn parse(text: &str) -> Result<GitRef, GitRefError> {
        let rest = text.strip_prefix("git+").ok_or_else(|| GitRefError::NoPrefix { text: text.into() })?;
        let (head, path) = rest.split_once('#').ok_or_else(|| GitRefError::NoFragment { text: text.into() })?;
        let (base, sha) = head.rsplit_once('@').ok_or_else(|| GitRefError::NoAt { text: text.into() })?;
        let path = safe_relative_path(path).ok_or_else(|| GitRefError::Path { path: path.into() })?;
        if base == "local://unknown" {
            return Ok(GitRef { base: Base::Unknown, commit: None, path });
        }
        let base = parse_base(base)?;
        let commit = CommitId::parse(sha).ok_or_else(|| GitRefError::Commit { sha: sha.into() })?;
        Ok(GitRef { base, commit: Some(commit), path })
    }

    /// The gitRef of a commit in a repository whose `origin` is `origin` (if any) and whose root
    /// is `root`, the demo's way.
    pub fn for_commit(origin: Option<&str>, root: &Utf8Path, commit: CommitId, path: &Utf8Path) -> GitRef {
        let base = match origin {
            Some(url) => base_from_origin(url, root),
            None => Base::File(root.to_owned()),
        };
        GitRef { base, commit: Some(commit), path: path.to_owned() }
    }

    /// The clone URL of the base, when there is one.
    pub fn clone_url(&self) -> Option<String> {
        match &self.base {
            Base::Remote(url) => Some(url.clone()),
            Base::File(p) => Some(format!("file://{p}")),
            Base::Unknown => None,
        }
    }
}

impl fmt::Display for GitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = match &self.base {
            Base::Remote(url) => url.clone(),
            Base::File(p) => format!("file://{p}"),
            Base::Unknown => "local://unknown".into(),
        };
        match &self.commit {
            Some(c) => write!(f, "git+{base}@{c}#{}", self.path),
            None => write!(f, "git+{base}@uncommitted#{}", self.path),
        }
    }
}

fn parse_base(base: &str) -> Result<Base, GitRefError> {
    let bad = || GitRefError::Scheme { base: base.into() };
    if base.chars().any(|c| c.is_control() || c.is_whitespace()) || base.starts_with('-') {
        return Err(bad());
    }
    if let Some(path) = base.strip_prefix("file://") {
        let path = Utf8Path::new(path);
        if !path.is_absolute() {
            return Err(bad());
        }
        return Ok(Base::File(path.to_owned()));
    }
    let remote =
        ["https://", "ssh://"].iter().any(|s| base.strip_prefix(s).is_some_and(|r| !r.is_empty())) || is_scp_like(base);
    if remote { Ok(Base::Remote(base.to_owned())) } else { Err(bad()) }
}

/// `git@host:path`, git's scp-like syntax for ssh (user `git` only, as the demo's records use).
fn is_scp_like(base: &str) -> bool {
    let Some(rest) = base.strip_prefix("git@") else {
        return false;
    };
    let Some((host, path)) = rest.split_once(':') else {
        return false;
    };
    !host.is_empty() && !path.is_empty() && !host.contains('/') && !path.starts_with(':')
}

/// The demo's normalisation of `remote.origin.url`: `git@host:Org/Repo.git` becomes
/// `https://host/Org/Repo`, and a trailing `.git` is dropped. A local path becomes `file://`.
fn base_from_origin(url: &str, root: &Utf8Path) -> Base {
    let url = url.trim();
    if let Some(p) = url.strip_prefix("file://") {
        return Base::File(Utf8PathBuf::from(p));
    }
    if !url.contains("://") && !url.starts_with("git@") {
        // A plain path (absolute, or relative to the repository root) names the directory as is.
        let p = Utf8Path::new(url);
        let abs = if p.is_absolute() { p.to_owned() } else { root.join(p) };
        return Base::File(normalize(&abs));
    }
    let url = url.strip_suffix(".git").unwrap_or(url);
    if let Some(rest) = url.strip_prefix("git@")
        && let Some((host, path)) = rest.split_once(':')
    {
        return Base::Remote(format!("https://{host}/{path}"));
    }
    Base::Remote(url.to_owned())
}

/// Removes `.` and resolves `..` lexically.
fn normalize(p: &Utf8Path) -> Utf8PathBuf {
    let mut out = Utf8PathBuf::new();
    for c in p.components() {
        match c {
            Utf8Component::CurDir => {}
            Utf8Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_str()),
        }
    }
    out
}

/// `path` if it is relative and never climbs above its starting directory, lexically normalised.
pub fn safe_relative_path(path: &str) -> Option<Utf8PathBuf> {
    if path.is_empty() || path.contains('\0') || path.contains('\\') {
        return None;
    }
    let mut out = Utf8PathBuf::new();
    let mut depth = 0usize;
    for c in Utf8Path::new(path).components() {
        match c {
            Utf8Component::Normal(n) => {
                out.push(n);
                depth += 1;
            }
            Utf8Component::CurDir => {}
            Utf8Component::ParentDir => {
                depth = depth.checked_sub(1)?;
                out.pop();
            }
            Utf8Component::RootDir | Utf8Component::Prefix(_) => return None,
        }
    }
    (depth > 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn check(text: &str, expect: &str) {
        let got = match GitRef::parse(text) {
            Ok(r) => format!(
                "ok {:?} {} {} => {r}",
                r.base,
                r.commit.as_ref().map(|c| c.to_string()).unwrap_or_default(),
                r.path
            ),
            Err(e) => format!("err {e}"),
        };
        assert_eq!(got, expect, "for {text}");
    }

    #[test]
    fn parses_the_three_shapes_and_refuses_the_rest() {
        check(
            &format!("git+https://github.com/Org/Repo@{SHA}#compute/Dockerfile"),
            &format!(
                "ok Remote(\"https://github.com/Org/Repo\") {SHA} compute/Dockerfile => git+https://github.com/Org/Repo@{SHA}#compute/Dockerfile"
            ),
        );
        check(
            &format!("git+file:///srv/repo@x@{SHA}#Dockerfile"),
            &format!("ok File(\"/srv/repo@x\") {SHA} Dockerfile => git+file:///srv/repo@x@{SHA}#Dockerfile"),
        );
        check(
            "git+local://unknown@uncommitted#compute/Dockerfile",
            "ok Unknown  compute/Dockerfile => git+local://unknown@uncommitted#compute/Dockerfile",
        );
        check(
            &format!("git+git@example.org:Org/Repo@{SHA}#a/../b/Dockerfile"),
            &format!(
                "ok Remote(\"git@example.org:Org/Repo\") {SHA} b/Dockerfile => git+git@example.org:Org/Repo@{SHA}#b/Dockerfile"
            ),
        );
        check(
            &format!("git+ssh://host/r@{SHA}#D"),
            &format!("ok Remote(\"ssh://host/r\") {SHA} D => git+ssh://host/r@{SHA}#D"),
        );
        check(
            &format!("git+ext::sh -c touch% /tmp/pwned@{SHA}#D"),
            "err gitRef base \"ext::sh -c touch% /tmp/pwned\" is not allowed: only https://, ssh://, git@host: and file:// repositories are cloned",
        );
        check(
            &format!("git+http://host/r@{SHA}#D"),
            "err gitRef base \"http://host/r\" is not allowed: only https://, ssh://, git@host: and file:// repositories are cloned",
        );
        check(
            &format!("git+file://relative@{SHA}#D"),
            "err gitRef base \"file://relative\" is not allowed: only https://, ssh://, git@host: and file:// repositories are cloned",
        );
        check(
            &format!("git+-uhttps://x@{SHA}#D"),
            "err gitRef base \"-uhttps://x\" is not allowed: only https://, ssh://, git@host: and file:// repositories are cloned",
        );
        check("git+https://h/r@HEAD#D", "err gitRef commit \"HEAD\" is not a full commit id (40 or 64 hex digits)");
        check(
            "git+https://h/r@--upload-pack=x#D",
            "err gitRef commit \"--upload-pack=x\" is not a full commit id (40 or 64 hex digits)",
        );
        check(
            &format!("git+https://h/r@{SHA}#../../etc/passwd"),
            "err gitRef path \"../../etc/passwd\" is not a relative path inside the repository",
        );
        check(
            &format!("git+https://h/r@{SHA}#/etc/passwd"),
            "err gitRef path \"/etc/passwd\" is not a relative path inside the repository",
        );
        check(
            &format!("git+https://h/r@{SHA}#a/../.."),
            "err gitRef path \"a/../..\" is not a relative path inside the repository",
        );
        check(
            &format!("https://h/r@{SHA}#D"),
            &format!("err gitRef \"https://h/r@{SHA}#D\" does not start with `git+`"),
        );
        check(
            &format!("git+https://h/r@{SHA}"),
            &format!("err gitRef \"git+https://h/r@{SHA}\" has no `#<path>` fragment"),
        );
    }

    #[test]
    fn origin_urls_are_normalised_like_the_demo() {
        let c = CommitId::parse(SHA).unwrap();
        let root = Utf8Path::new("/work/repo");
        let p = Utf8Path::new("compute/Dockerfile");
        let r = |o: Option<&str>| GitRef::for_commit(o, root, c.clone(), p).to_string();
        assert_eq!(
            r(Some("git@github.com:Org/Repo.git")),
            format!("git+https://github.com/Org/Repo@{SHA}#compute/Dockerfile")
        );
        assert_eq!(
            r(Some("https://github.com/Org/Repo.git")),
            format!("git+https://github.com/Org/Repo@{SHA}#compute/Dockerfile")
        );
        assert_eq!(r(None), format!("git+file:///work/repo@{SHA}#compute/Dockerfile"));
        assert_eq!(r(Some("../upstream.git")), format!("git+file:///work/upstream.git@{SHA}#compute/Dockerfile"));
    }
}
