//! Runs outside programs (git, docker) and turns their failures into errors a person can act on.
//!
//! This is the only module that touches `duct`. Every command is an argument vector, never a shell
//! string; a failed command's error names the program, its arguments (secrets redacted), its exit
//! status and the tail of its stderr. A Ctrl-C or SIGTERM while a command runs kills that command
//! and surfaces as [`CmdError::Interrupted`], so that the callers' cleanup guards run before exit.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, IsTerminal, Write as _};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};

/// Set by SIGINT or SIGTERM once [`install_interrupt_handler`] has run.
static INTERRUPTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Replaces the default "die at once" reaction to SIGINT and SIGTERM with a flag, so that a
/// running command is killed and every temporary worktree, clone and container is removed by its
/// guard before the process exits.
pub fn install_interrupt_handler() {
    let flag = INTERRUPTED.get_or_init(|| Arc::new(AtomicBool::new(false)));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registration fails only for forbidden signals, which these are not.
        signal_hook::flag::register(signal, Arc::clone(flag)).expect("register signal handler");
    }
}

/// Whether the user asked us to stop (Ctrl-C or SIGTERM).
pub fn interrupted() -> bool {
    INTERRUPTED.get().is_some_and(|f| f.load(Ordering::SeqCst))
}

/// An outside program, resolved once to a path.
#[derive(Clone, Debug)]
pub struct Program {
    /// What the user calls it (`docker`, `podman`, `git`): used in messages.
    pub name: String,
    pub path: Utf8PathBuf,
}

impl Program {
    /// Resolves `name` (a bare name looked up on PATH, or a path) to an executable.
    pub fn resolve(name: &str) -> Result<Program, CmdError> {
        let found = which::which(name).map_err(|_| CmdError::NotFound { program: name.to_owned() })?;
        let path = Utf8PathBuf::from_path_buf(found)
            .map_err(|p| CmdError::NotFound { program: format!("{name} (at non-UTF-8 path {})", p.display()) })?;
        Ok(Program { name: name.to_owned(), path })
    }
}

/// A command line under construction: program, arguments, directory, environment, stdin.
#[derive(Clone, Debug)]
pub struct Cmd {
    program: Program,
    args: Vec<OsString>,
    dir: Option<Utf8PathBuf>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
    interruptible: bool,
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    /// Stdout as text with the trailing newline removed.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim_end().to_owned()
    }
}

#[derive(Debug)]
pub enum CmdError {
    NotFound {
        program: String,
    },
    Spawn {
        command: String,
        source: io::Error,
    },
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    Interrupted {
        command: String,
    },
    /// What we were writing to the command's stdin failed.
    Input {
        command: String,
        source: io::Error,
    },
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdError::NotFound { program } => write!(f, "`{program}` not found on PATH"),
            CmdError::Spawn { command, source } => {
                write!(f, "could not start `{command}`: {source}")
            }
            CmdError::Failed { command, status, stderr } if stderr.is_empty() => {
                write!(f, "`{command}` {status}")
            }
            CmdError::Failed { command, status, stderr } => write!(f, "`{command}` {status}: {stderr}"),
            CmdError::Interrupted { command } => write!(f, "interrupted while running `{command}`"),
            CmdError::Input { command, source } => write!(f, "could not write the input of `{command}`: {source}"),
        }
    }
}

impl std::error::Error for CmdError {}

/// Environment variables that hold secrets; they are removed from every child's environment.
const SECRET_VARIABLES: &[&str] = &["FLEXO_TOKEN", "FLEXO_PASS", "RTM_REGISTRY_TOKEN"];

/// How much of a failed command's stderr an error message keeps.
const STDERR_TAIL_LINES: usize = 12;

impl Cmd {
    pub fn new(program: &Program) -> Cmd {
        Cmd { program: program.clone(), args: Vec::new(), dir: None, env: Vec::new(), stdin: None, interruptible: true }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn dir(mut self, dir: &Utf8Path) -> Cmd {
        self.dir = Some(dir.to_owned());
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Cmd {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Feeds `bytes` to the command's stdin (how secrets reach a program: never through argv).
    pub fn stdin_bytes(mut self, bytes: Vec<u8>) -> Cmd {
        self.stdin = Some(bytes);
        self
    }

    /// Lets the command finish even after Ctrl-C: for the cleanup that a Ctrl-C must not skip.
    pub fn uninterruptible(mut self) -> Cmd {
        self.interruptible = false;
        self
    }

    /// The command line as shown in messages.
    pub fn display(&self) -> String {
        let mut s = self.program.name.clone();
        for a in &self.args {
            s.push(' ');
            let a = a.to_string_lossy();
            if a.is_empty() || a.contains(char::is_whitespace) {
                s.push_str(&format!("'{a}'"));
            } else {
                s.push_str(&a);
            }
        }
        s
    }

    fn expression(&self) -> duct::Expression {
        let e = self.expression_without_stdin();
        match &self.stdin {
            Some(bytes) => e.stdin_bytes(bytes.clone()),
            None => e.stdin_null(),
        }
    }

    /// The expression before stdin is chosen: duct lets the innermost redirection win, so a caller
    /// that brings its own stdin starts from here.
    fn expression_without_stdin(&self) -> duct::Expression {
        let mut e = duct::cmd(self.program.path.as_std_path(), &self.args).unchecked();
        // git and docker never need our secrets; a child must not be able to read them either.
        for secret in SECRET_VARIABLES {
            e = e.env_remove(secret);
        }
        if let Some(dir) = &self.dir {
            e = e.dir(dir.as_std_path());
        }
        for (k, v) in &self.env {
            e = e.env(k, v);
        }
        e
    }

    /// Runs the command with stdout and stderr captured; a non-zero exit is an error.
    pub fn output(self) -> Result<Output, CmdError> {
        let (status, out) = self.output_status()?;
        match status {
            Some(0) => Ok(out),
            _ => Err(self.failure(status, &out.stderr)),
        }
    }

    /// Runs the command with stdout and stderr captured and returns its exit code
    /// (`None` when a signal killed it) instead of judging it.
    pub fn output_status(&self) -> Result<(Option<i32>, Output), CmdError> {
        crate::log::command(&self.display());
        let handle = self.expression().stdout_capture().stderr_capture().start().map_err(|e| self.spawn_error(e))?;
        let out = self.wait(&handle)?;
        Ok((out.status.code(), Output { stdout: out.stdout.clone(), stderr: out.stderr.clone() }))
    }

    /// Runs a long step a person waits for (a build, a push): on a terminal its output streams to
    /// our stderr; otherwise it is captured and only shown when the step fails.
    pub fn stream(self) -> Result<(), CmdError> {
        if !io::stderr().is_terminal() {
            return self.output().map(drop);
        }
        crate::log::command(&self.display());
        let handle = self.expression().stdout_to_stderr().start().map_err(|e| self.spawn_error(e))?;
        let out = self.wait(&handle)?;
        match out.status.code() {
            Some(0) => Ok(()),
            code => Err(self.failure(code, b"(its output is above)")),
        }
    }

    /// Runs the command with output captured while `feed` writes its stdin through a pipe, so a
    /// large input (an image archive) is never staged on disk. If the command stops reading early,
    /// its own failure is reported rather than the broken pipe.
    pub fn feed<T>(self, feed: impl FnOnce(&mut dyn io::Write) -> io::Result<T>) -> Result<T, CmdError> {
        crate::log::command(&self.display());
        let (reader, mut writer) = io::pipe().map_err(|e| self.spawn_error(e))?;
        let handle = self
            .expression_without_stdin()
            .stdin_file(reader)
            .stdout_capture()
            .stderr_capture()
            .start()
            .map_err(|e| self.spawn_error(e))?;
        let fed = feed(&mut writer).and_then(|value| writer.flush().map(|()| value));
        drop(writer);
        let out = self.wait(&handle)?;
        match (out.status.code(), fed) {
            (Some(0), Ok(value)) => Ok(value),
            (Some(0), Err(source)) => Err(CmdError::Input { command: self.display(), source }),
            (code, _) => Err(self.failure(code, &out.stderr)),
        }
    }

    /// Runs the command with our stdout and stderr (a container's output is the user's output) and
    /// returns its exit code (`None` when a signal killed it). Ctrl-C is left to the program: the
    /// terminal sends it to the program too, and docker passes it on to the container.
    pub fn status_inherit(self) -> Result<Option<i32>, CmdError> {
        let cmd = self.uninterruptible();
        crate::log::command(&cmd.display());
        let handle = cmd.expression().start().map_err(|e| cmd.spawn_error(e))?;
        Ok(cmd.wait(&handle)?.status.code())
    }

    fn wait<'h>(&self, handle: &'h duct::Handle) -> Result<&'h std::process::Output, CmdError> {
        loop {
            if self.interruptible && interrupted() {
                let _ = handle.kill();
                return Err(CmdError::Interrupted { command: self.display() });
            }
            match handle.wait_timeout(Duration::from_millis(50)) {
                Ok(Some(out)) => return Ok(out),
                Ok(None) => continue,
                Err(e) => return Err(self.spawn_error(e)),
            }
        }
    }

    fn spawn_error(&self, e: io::Error) -> CmdError {
        if e.kind() == io::ErrorKind::NotFound {
            CmdError::NotFound { program: self.program.name.clone() }
        } else {
            CmdError::Spawn { command: self.display(), source: e }
        }
    }

    fn failure(&self, code: Option<i32>, stderr: &[u8]) -> CmdError {
        if self.interruptible && interrupted() {
            return CmdError::Interrupted { command: self.display() };
        }
        let status = match code {
            Some(c) => format!("exited with code {c}"),
            None => "was killed by a signal".to_owned(),
        };
        let text = String::from_utf8_lossy(stderr);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n");
        CmdError::Failed { command: self.display(), status, stderr: tail.trim().to_owned() }
    }
}

/// Streams `input` through `<program> -dc` (gzip, zstd) and returns the decompressed bytes as a
/// reader. A writer thread feeds the program, so nothing is held in memory; a failure of the
/// program surfaces as an error at the end of the stream.
pub fn decompress(program: &str, mut input: impl io::Read + Send + 'static) -> io::Result<Decompressed> {
    let path = which::which(program).map_err(|_| {
        io::Error::new(io::ErrorKind::NotFound, format!("`{program}` not found on PATH (needed for compressed layers)"))
    })?;
    crate::log::command(&format!("{program} -dc"));
    let mut child = std::process::Command::new(path)
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let feeder = std::thread::spawn(move || io::copy(&mut input, &mut stdin).map(drop));
    let stdout = child.stdout.take().expect("piped stdout");
    Ok(Decompressed { program: program.to_owned(), child, stdout, feeder: Some(feeder) })
}

/// The output of [`decompress`].
pub struct Decompressed {
    program: String,
    child: std::process::Child,
    stdout: std::process::ChildStdout,
    feeder: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl io::Read for Decompressed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stdout.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if let Some(feeder) = self.feeder.take() {
                feeder.join().map_err(|_| io::Error::other("decompression feeder panicked"))??;
            }
            let out = self.child.wait()?;
            if !out.success() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("`{} -dc` {out}: {}", self.program, err.trim()),
                ));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn sh() -> Program {
        Program::resolve("sh").unwrap()
    }

    #[test]
    fn failure_keeps_command_status_and_stderr_tail() {
        let err = Cmd::new(&sh()).args(["-c", "echo one >&2; echo two >&2; exit 3"]).output().unwrap_err();
        assert_eq!(err.to_string(), "`sh -c 'echo one >&2; echo two >&2; exit 3'` exited with code 3: one\ntwo");
    }

    #[test]
    fn missing_program_is_named() {
        let err = Program::resolve("rtm-no-such-program").unwrap_err();
        assert_eq!(err.to_string(), "`rtm-no-such-program` not found on PATH");
    }

    #[test]
    fn decompresses_through_gzip() {
        let gz =
            Cmd::new(&Program::resolve("gzip").unwrap()).arg("-c").stdin_bytes(vec![b'z'; 300_000]).output().unwrap();
        let mut out = Vec::new();
        decompress("gzip", io::Cursor::new(gz.stdout)).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, vec![b'z'; 300_000]);
        let mut sink = Vec::new();
        let err =
            decompress("gzip", io::Cursor::new(b"not gzip".to_vec())).unwrap().read_to_end(&mut sink).unwrap_err();
        assert!(err.to_string().contains("`gzip -dc` exit status: 1"), "{err}");
    }

    #[test]
    fn feeding_stdin_through_a_pipe() {
        let out =
            Cmd::new(&sh()).args(["-c", "wc -c >&2; exit 3"]).feed(|w| w.write_all(&vec![b'x'; 200_000])).unwrap_err();
        assert_eq!(out.to_string(), "`sh -c 'wc -c >&2; exit 3'` exited with code 3: 200000");
        // A program that stops reading early: its failure is what we hear about, not EPIPE.
        let early = Cmd::new(&sh()).args(["-c", "echo gave up >&2; exit 1"]).feed(|w| {
            for _ in 0..100 {
                w.write_all(&[0u8; 65536])?;
            }
            Ok(())
        });
        assert_eq!(early.unwrap_err().to_string(), "`sh -c 'echo gave up >&2; exit 1'` exited with code 1: gave up");
        let fine = Cmd::new(&sh()).args(["-c", "cat > /dev/null"]).feed(|w| w.write_all(b"ok").map(|()| 7)).unwrap();
        assert_eq!(fine, 7);
    }

    #[test]
    fn stdin_reaches_the_program() {
        let out = Cmd::new(&sh()).args(["-c", "cat"]).stdin_bytes(b"secret".to_vec()).output().unwrap();
        assert_eq!(out.stdout_text(), "secret");
    }
}
