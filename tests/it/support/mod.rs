//! The integration tests' harness: runs the built `rtm-compute` in a temporary directory of its
//! own, against a real git and a real Docker daemon, and on failure prints argv, cwd, stdout and
//! stderr.

pub mod docker;
pub mod flexo;
pub mod rdf;
pub mod registry;
pub mod repo;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

pub use docker::*;
pub use rdf::*;
pub use registry::*;
pub use repo::*;

/// A scratch directory for one test, removed when dropped.
pub struct TestEnv {
    dir: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv { dir: tempfile::Builder::new().prefix("rtm-it-").tempdir().expect("temp dir") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the scratch directory.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `rtm-compute ARGS…`, run in the scratch directory.
    pub fn rtm<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Run::new(self.path(), args)
    }
}

/// One invocation of the binary under test.
pub struct Run {
    cwd: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    timeout: Duration,
}

/// What an invocation printed and how it ended.
pub struct Done {
    pub argv: String,
    pub cwd: PathBuf,
    pub output: Output,
}

impl Run {
    fn new<I, S>(cwd: &Path, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Run {
            cwd: cwd.to_owned(),
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            timeout: Duration::from_secs(300),
        }
    }

    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Run {
        self.cwd = dir.as_ref().to_owned();
        self
    }

    pub fn env(mut self, k: impl Into<OsString>, v: impl Into<OsString>) -> Run {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_rtm-compute"));
        c.args(&self.args).current_dir(&self.cwd).env_remove("DOCKER").env_remove("GIT").env("NO_COLOR", "1");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn run(self) -> Done {
        let argv = format!(
            "rtm-compute {}",
            self.args.iter().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
        );
        let _shared = docker::DAEMON.read().unwrap_or_else(|e| e.into_inner());
        let output = assert_cmd::Command::from_std(self.command())
            .timeout(self.timeout)
            .output()
            .unwrap_or_else(|e| panic!("could not run {argv}: {e}"));
        Done { argv, cwd: self.cwd, output }
    }
}

impl Done {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    fn describe(&self) -> String {
        format!(
            "argv:   {}\ncwd:    {}\nstatus: {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.argv,
            self.cwd.display(),
            self.output.status,
            self.stdout(),
            self.stderr()
        )
    }

    /// Asserts the exit code, printing everything on failure.
    #[track_caller]
    pub fn code_is(self, expect: i32) -> Done {
        assert_eq!(self.code(), Some(expect), "unexpected exit code\n{}", self.describe());
        self
    }

    #[track_caller]
    pub fn success(self) -> Done {
        self.code_is(0)
    }

    /// Asserts that stderr contains `needle`.
    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Done {
        assert!(self.stderr().contains(needle), "stderr lacks {needle:?}\n{}", self.describe());
        self
    }

    #[track_caller]
    pub fn stdout_has(self, needle: &str) -> Done {
        assert!(self.stdout().contains(needle), "stdout lacks {needle:?}\n{}", self.describe());
        self
    }

    /// Stdout parsed as one JSON value.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout()).unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}", self.describe()))
    }
}

/// Runs a program and returns its trimmed stdout, panicking with its stderr on failure.
#[track_caller]
pub fn sh(program: &str, args: &[&str], cwd: &Path) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("could not run {program}: {e}"));
    assert!(out.status.success(), "{program} {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
