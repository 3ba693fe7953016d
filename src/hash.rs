//! The witness's input hashes: `rtm:dockerfileHash` and the demo's `rtm:buildContextHash`.
//!
//! Invariant: [`context_hash`] gives the demo's value on the same tree (its test vector is a unit
//! test here). Files are hashed in parallel on every core; the manifest order does not depend on
//! which thread finished first.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use camino::{Utf8Path, Utf8PathBuf};
use sha2::{Digest, Sha256};

/// Names the demo leaves out of the build-context hash (matched against the leaf name, every
/// parent component, and the whole relative path).
pub const IGNORED: &[&str] = &[
    ".git",
    "__pycache__",
    "*.pyc",
    ".venv",
    "venv",
    "node_modules",
    ".docker-ipc",
    "output",
    ".DS_Store",
    ".pytest_cache",
    ".ruff_cache",
];

const BUFFER: usize = 1 << 20;

#[derive(Debug)]
pub enum HashError {
    Read { path: Utf8PathBuf, source: io::Error },
    NotUtf8 { path: String },
    NotADirectory { path: Utf8PathBuf },
}

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashError::Read { path, source } => write!(f, "failed to read {path}: {source}"),
            HashError::NotUtf8 { path } => {
                write!(f, "build context holds a name that is not UTF-8 ({path}); its hash cannot match the demo's")
            }
            HashError::NotADirectory { path } => {
                write!(f, "build context {path} is not a directory")
            }
        }
    }
}

impl std::error::Error for HashError {}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// sha256 hex of a byte string.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// sha256 hex of everything `reader` yields.
pub fn sha256_reader(reader: impl Read) -> io::Result<String> {
    copy_sha256(reader, &mut io::sink()).map(|(hex, _)| hex)
}

/// Copies `input` to `out` and returns the sha256 hex and the length of what was copied.
pub fn copy_sha256(mut input: impl Read, out: &mut dyn Write) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUFFER];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        total += n as u64;
    }
    Ok((hex(&hasher.finalize()), total))
}

/// sha256 hex of a file's bytes (the `rtm:dockerfileHash` of a Dockerfile).
pub fn file_hash(path: &Utf8Path) -> Result<String, HashError> {
    File::open(path).and_then(sha256_reader).map_err(|source| HashError::Read { path: path.to_owned(), source })
}

/// The demo's shell-style match: `*` any run, `?` one character, everything else literal.
fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether the demo ignores the entry at `rel` (a `/`-separated path relative to the context).
pub fn is_ignored(rel: &str) -> bool {
    IGNORED.iter().any(|pat| glob_match(pat, rel) || rel.split('/').any(|component| glob_match(pat, component)))
}

/// The files that count, as `(relative path, absolute path)`, in walk order.
fn context_files(root: &Utf8Path) -> Result<Vec<(String, Utf8PathBuf)>, HashError> {
    if !root.is_dir() {
        return Err(HashError::NotADirectory { path: root.to_owned() });
    }
    let mut files = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(dir_rel) = stack.pop() {
        let dir = if dir_rel.is_empty() { root.to_owned() } else { root.join(&dir_rel) };
        let entries = std::fs::read_dir(&dir).map_err(|source| HashError::Read { path: dir.clone(), source })?;
        for entry in entries {
            let entry = entry.map_err(|source| HashError::Read { path: dir.clone(), source })?;
            let name = entry
                .file_name()
                .into_string()
                .map_err(|n| HashError::NotUtf8 { path: format!("{dir}/{}", n.to_string_lossy()) })?;
            let rel = if dir_rel.is_empty() { name } else { format!("{dir_rel}/{name}") };
            if is_ignored(&rel) {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                // Like os.walk, a symlink to a directory is listed but not descended into.
                stack.push(rel);
            } else if kind.is_file() || kind.is_symlink() {
                let path = dir.join(rel.rsplit('/').next().unwrap_or(&rel));
                // A symlink is hashed through to its target; a dangling one is skipped.
                if path.is_file() {
                    files.push((rel, path));
                }
            }
        }
    }
    Ok(files)
}

/// The demo's manifest: one `<path>\t<sha256>\n` line per file, sorted by code point.
pub fn context_manifest(root: &Utf8Path) -> Result<String, HashError> {
    let files = context_files(root)?;
    let lines = hash_files_parallel(&files);
    let mut lines: Vec<String> = lines.into_iter().flatten().collect();
    lines.sort_unstable();
    let mut manifest = lines.join("\n");
    manifest.push('\n');
    Ok(manifest)
}

/// The `rtm:buildContextHash` of a directory.
pub fn context_hash(root: &Utf8Path) -> Result<String, HashError> {
    Ok(sha256_hex(context_manifest(root)?.as_bytes()))
}

/// Hashes every file on all cores. An unreadable file gives `None` (the demo skips it).
fn hash_files_parallel(files: &[(String, Utf8PathBuf)]) -> Vec<Option<String>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(files.len().max(1));
    let next = AtomicUsize::new(0);
    let results = Mutex::new(vec![None; files.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((rel, path)) = files.get(i) else {
                        break;
                    };
                    let line = File::open(path).and_then(sha256_reader).ok().map(|h| format!("{rel}\t{h}"));
                    results.lock().expect("no panics while hashing")[i] = line;
                }
            });
        }
    });
    results.into_inner().expect("no panics while hashing")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_test_vector() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        std::fs::write(root.join("a.txt"), "hello\n").unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/b.txt"), "").unwrap();
        // Everything below is ignored by the demo's rules.
        for ignored in
            [".git/config", "output/rtm.trig", "x/__pycache__/m.pyc", "m.pyc", "node_modules/a/b", "sub/.DS_Store"]
        {
            let p = root.join(ignored);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "ignored").unwrap();
        }
        assert_eq!(
            context_manifest(root).unwrap(),
            "a.txt\t5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03\n\
             sub/b.txt\te3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
        );
        assert_eq!(context_hash(root).unwrap(), "e02f2269ea8c11d5042648f40e4d61982a1686f1a1fe5b006ab829be745c9144");
    }

    #[test]
    fn symlinks_hash_through_and_dangling_ones_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        std::fs::write(root.join("a.txt"), "hello\n").unwrap();
        std::os::unix::fs::symlink("a.txt", root.join("link")).unwrap();
        std::os::unix::fs::symlink("missing", root.join("dangling")).unwrap();
        let m = context_manifest(root).unwrap();
        assert_eq!(m.lines().map(|l| l.split('\t').next().unwrap()).collect::<Vec<_>>(), ["a.txt", "link"]);
    }

    #[test]
    fn globs() {
        assert!(glob_match("*.pyc", "a.pyc"));
        assert!(glob_match("*.pyc", ".pyc"));
        assert!(!glob_match("*.pyc", "a.pyco"));
        assert!(glob_match("a?c", "abc"));
        assert!(is_ignored("deep/output/x"));
        assert!(!is_ignored("outputs/x"));
    }
}
