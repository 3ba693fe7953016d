//! The git remote: resolving revisions, reading repository facts, cloning, and temporary worktrees.
//!
//! Only this module spells out git's arguments. Values that came from a record reach git only as
//! validated [`CommitId`]s and clone URLs checked by `gitref`, after `--end-of-options` or `--`.
//! Invariant: a [`Worktree`] removes itself (and its registration in the repository) when dropped,
//! on every path including Ctrl-C.

use std::fmt;

use camino::{Utf8Path, Utf8PathBuf};

use crate::process::{Cmd, CmdError, Program};

/// A full commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitId(String);

impl CommitId {
    pub fn parse(s: &str) -> Option<CommitId> {
        let ok = matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| CommitId(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug)]
pub enum GitError {
    NotARepository { dir: Utf8PathBuf },
    UnknownRevision { repo: Utf8PathBuf, rev: String },
    Unexpected { command: &'static str, output: String },
    Io { what: String, source: std::io::Error },
    Cmd(CmdError),
}

impl fmt::Display for GitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GitError::NotARepository { dir } => write!(f, "{dir} is not inside a git repository"),
            GitError::UnknownRevision { repo, rev } => {
                write!(f, "{rev:?} does not name a commit in {repo}")
            }
            GitError::Unexpected { command, output } => {
                write!(f, "unexpected output from `git {command}`: {output:?}")
            }
            GitError::Io { what, source } => write!(f, "{what}: {source}"),
            GitError::Cmd(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for GitError {}

impl From<CmdError> for GitError {
    fn from(e: CmdError) -> GitError {
        GitError::Cmd(e)
    }
}

/// A git invocation with the environment every call gets: no prompts, C locale, and only the
/// protocols a gitRef may name.
fn git(program: &Program, dir: &Utf8Path) -> Cmd {
    Cmd::new(program)
        .arg("-C")
        .arg(dir.as_str())
        .env("LC_ALL", "C")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ALLOW_PROTOCOL", "file:https:ssh")
}

/// The root of the working tree that contains `dir`.
pub fn toplevel(program: &Program, dir: &Utf8Path) -> Result<Utf8PathBuf, GitError> {
    match git(program, dir).args(["rev-parse", "--show-toplevel"]).output() {
        Ok(out) => Ok(Utf8PathBuf::from(out.stdout_text())),
        Err(CmdError::Failed { stderr, .. }) if stderr.contains("not a git repository") => {
            Err(GitError::NotARepository { dir: dir.to_owned() })
        }
        Err(CmdError::Failed { .. }) if !dir.exists() => Err(GitError::NotARepository { dir: dir.to_owned() }),
        Err(e) => Err(e.into()),
    }
}

/// Resolves a revision (`HEAD`, a branch, a tag, a short id) to the full id of a commit.
pub fn resolve_commit(program: &Program, repo: &Utf8Path, rev: &str) -> Result<CommitId, GitError> {
    let spec = format!("{rev}^{{commit}}");
    let out = git(program, repo).args(["rev-parse", "--verify", "--quiet", "--end-of-options", &spec]).output();
    match out {
        Ok(out) => {
            let text = out.stdout_text();
            CommitId::parse(&text).ok_or(GitError::Unexpected { command: "rev-parse", output: text })
        }
        Err(CmdError::Failed { .. }) => Err(GitError::UnknownRevision { repo: repo.to_owned(), rev: rev.to_owned() }),
        Err(e) => Err(e.into()),
    }
}

/// Whether the repository holds `commit` as a commit object.
pub fn has_commit(program: &Program, repo: &Utf8Path, commit: &CommitId) -> Result<bool, GitError> {
    let spec = format!("{commit}^{{commit}}");
    let (status, _) = git(program, repo).args(["cat-file", "-e", "--end-of-options", &spec]).output_status()?;
    Ok(status == Some(0))
}

/// Paths with uncommitted changes (tracked or untracked), as `git status --porcelain` names them.
pub fn uncommitted_changes(program: &Program, repo: &Utf8Path) -> Result<Vec<String>, GitError> {
    let out = git(program, repo).args(["status", "--porcelain", "--no-renames"]).output()?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(|l| l.get(3..).unwrap_or(l).to_owned()).collect())
}

/// `remote.origin.url`, when set.
pub fn origin_url(program: &Program, repo: &Utf8Path) -> Result<Option<String>, GitError> {
    let (status, out) = git(program, repo).args(["config", "--get", "remote.origin.url"]).output_status()?;
    Ok(match status {
        Some(0) => Some(out.stdout_text()).filter(|u| !u.is_empty()),
        _ => None,
    })
}

/// The committer time of `commit`, in seconds since the epoch.
pub fn commit_time(program: &Program, repo: &Utf8Path, commit: &CommitId) -> Result<i64, GitError> {
    let out = git(program, repo).args(["log", "-1", "--format=%ct", "--end-of-options", commit.as_str()]).output()?;
    let text = out.stdout_text();
    text.parse().map_err(|_| GitError::Unexpected { command: "log --format=%ct", output: text })
}

/// Clones `url` without a checkout into `dest` (which must not exist or be empty).
pub fn clone_no_checkout(program: &Program, url: &str, dest: &Utf8Path) -> Result<(), GitError> {
    let parent = dest.parent().unwrap_or(dest);
    git(program, parent).args(["clone", "--quiet", "--no-checkout", "--", url, dest.as_str()]).output()?;
    Ok(())
}

/// A detached worktree of one commit in a temporary directory, removed when dropped.
pub struct Worktree {
    program: Program,
    repo: Utf8PathBuf,
    path: Utf8PathBuf,
    // Dropped after `drop` has unregistered the worktree; deletes whatever is left on disk.
    _dir: tempfile::TempDir,
}

impl Worktree {
    pub fn path(&self) -> &Utf8Path {
        &self.path
    }
}

/// Holds an exclusive lock on the repository's worktree list. git reads every registered worktree
/// while adding one, and fails on a half-made entry of a concurrent `worktree add` ("failed to read
/// .git/worktrees/…/commondir"), so our adds and removes in one repository take turns.
fn worktree_lock(program: &Program, repo: &Utf8Path) -> Result<std::fs::File, GitError> {
    let out = git(program, repo).args(["rev-parse", "--git-common-dir"]).uninterruptible().output()?;
    let common = Utf8PathBuf::from(out.stdout_text());
    let common = if common.is_absolute() { common } else { repo.join(common) };
    let path = common.join("rtm-worktree.lock");
    let io = |what: &str| {
        let what = format!("{what} {path}");
        move |source| GitError::Io { what, source }
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io("failed to open"))?;
    file.lock().map_err(io("failed to lock"))?;
    Ok(file)
}

/// Checks `commit` out into a new temporary worktree of `repo`.
pub fn add_worktree(program: &Program, repo: &Utf8Path, commit: &CommitId) -> Result<Worktree, GitError> {
    let dir = tempfile::Builder::new()
        .prefix("rtm-worktree-")
        .tempdir()
        .map_err(|source| GitError::Io { what: "failed to create a temporary directory".into(), source })?;
    let path = Utf8PathBuf::from_path_buf(dir.path().join(commit.short())).map_err(|p| GitError::Io {
        what: format!("temporary directory {} is not UTF-8", p.display()),
        source: std::io::ErrorKind::InvalidData.into(),
    })?;
    let tree = Worktree { program: program.clone(), repo: repo.to_owned(), path: path.clone(), _dir: dir };
    let _lock = worktree_lock(program, repo)?;
    git(program, repo)
        .args(["worktree", "add", "--detach", "--quiet", "--end-of-options", path.as_str(), commit.as_str()])
        .output()?;
    Ok(tree)
}

impl Drop for Worktree {
    fn drop(&mut self) {
        let _lock = worktree_lock(&self.program, &self.repo);
        let removed = git(&self.program, &self.repo)
            .args(["worktree", "remove", "--force", "--force", self.path.as_str()])
            .uninterruptible()
            .output();
        if removed.is_err() {
            // The directory goes with the TempDir; prune forgets the registration it leaves.
            let _ = std::fs::remove_dir_all(&self.path);
            let _ = git(&self.program, &self.repo).args(["worktree", "prune"]).uninterruptible().output();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_ids_are_full_hex() {
        assert!(CommitId::parse(&"a".repeat(40)).is_some());
        assert!(CommitId::parse(&"A".repeat(64)).is_some_and(|c| c.as_str() == "a".repeat(64)));
        assert!(CommitId::parse(&"a".repeat(39)).is_none());
        assert!(CommitId::parse(&"g".repeat(40)).is_none());
        assert!(CommitId::parse("HEAD").is_none());
    }
}
