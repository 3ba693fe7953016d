//! What the tool says on stderr besides errors: progress lines, and with `-v` every command it runs.
//!
//! The level is set once at start-up; `-q` silences progress, `-v` adds the command lines (which
//! never carry secrets: those travel on stdin or in the environment).

use std::sync::atomic::{AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Quiet = 0,
    Normal = 1,
    Verbose = 2,
}

pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

fn level() -> u8 {
    LEVEL.load(Ordering::Relaxed)
}

/// A progress line ("building …"), shown unless `-q`.
pub fn info(msg: &str) {
    if level() >= Level::Normal as u8 {
        eprintln!("{msg}");
    }
}

/// A progress line that rewrites itself, on a terminal only (elsewhere the plain `info` lines
/// before and after a step say enough).
pub fn progress(msg: &str) {
    use std::io::{IsTerminal, Write};
    if level() >= Level::Normal as u8 && std::io::stderr().is_terminal() {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{msg}");
        let _ = err.flush();
    }
}

/// Ends a progress line.
pub fn progress_done() {
    use std::io::IsTerminal;
    if level() >= Level::Normal as u8 && std::io::stderr().is_terminal() {
        eprintln!();
    }
}

/// A warning the user should read even in quiet mode.
pub fn warn(msg: &str) {
    eprintln!("warning: {msg}");
}

/// A command about to run, shown with `-v`.
pub fn command(line: &str) {
    if level() >= Level::Verbose as u8 {
        eprintln!("+ {line}");
    }
}
