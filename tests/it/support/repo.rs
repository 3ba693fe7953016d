//! Real git repositories for the tests, with fixed author and committer dates.

use std::path::{Path, PathBuf};

use super::sh;

/// A git repository in a test's scratch directory.
pub struct Repo {
    pub path: PathBuf,
    commits: u32,
}

impl Repo {
    /// `git init` at `path` with a test identity.
    pub fn init(path: impl AsRef<Path>) -> Repo {
        let path = path.as_ref().to_owned();
        std::fs::create_dir_all(&path).unwrap();
        sh("git", &["init", "--quiet", "--initial-branch=main"], &path);
        sh("git", &["config", "user.name", "RTM Test"], &path);
        sh("git", &["config", "user.email", "rtm@example.org"], &path);
        Repo { path, commits: 0 }
    }

    pub fn write(&self, rel: &str, contents: &str) -> &Repo {
        let p = self.path.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
        self
    }

    /// Commits everything, at 2025-01-02T03:04:05Z plus one minute per earlier commit.
    pub fn commit(&mut self, message: &str) -> String {
        self.commit_at(message, 1_735_787_045 + 60 * i64::from(self.commits))
    }

    /// Commits everything with author and committer date `epoch`.
    pub fn commit_at(&mut self, message: &str, epoch: i64) -> String {
        sh("git", &["add", "--all"], &self.path);
        let date = format!("@{epoch} +0000");
        let out = std::process::Command::new("git")
            .args(["commit", "--quiet", "--allow-empty", "-m", message])
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .current_dir(&self.path)
            .output()
            .unwrap();
        assert!(out.status.success(), "git commit failed: {}", String::from_utf8_lossy(&out.stderr));
        self.commits += 1;
        self.head()
    }

    pub fn head(&self) -> String {
        sh("git", &["rev-parse", "HEAD"], &self.path)
    }

    /// The paths of the repository's worktrees, main one included.
    pub fn worktrees(&self) -> Vec<String> {
        sh("git", &["worktree", "list", "--porcelain"], &self.path)
            .lines()
            .filter_map(|l| l.strip_prefix("worktree ").map(str::to_owned))
            .collect()
    }

    #[track_caller]
    pub fn assert_no_extra_worktrees(&self) {
        let trees = self.worktrees();
        assert_eq!(trees.len(), 1, "temporary worktrees were left behind: {trees:?}");
    }

    pub fn path_str(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

/// A recipe that needs no base image: `FROM scratch` and a copy of `app/`.
pub const SCRATCH_DOCKERFILE: &str = "FROM scratch\nCOPY app/ /app/\n";

/// A sample repository with a scratch recipe, committed once.
pub fn scratch_repo(path: impl AsRef<Path>, payload: &str) -> Repo {
    let mut repo = Repo::init(path);
    repo.write("compute/Dockerfile", SCRATCH_DOCKERFILE).write("app/hello.txt", payload).write("app/sub/empty", "");
    repo.commit("scratch recipe");
    repo
}
