//! One module per subcommand, each with a `run` that returns the exit code; shared set-up
//! (choosing the programs, printing results) lives here.

pub mod diff;
pub mod hash;
pub mod materialize;
pub mod normalize;
pub mod reproduce;

use std::io::Write;

use crate::cli::Command;
use crate::error::Error;
use crate::process::Program;

/// Runs one subcommand and returns its exit code.
pub fn run(command: Command) -> Result<u8, Error> {
    match command {
        Command::Materialize(args) => materialize::run(materialize::Config::from_args(args)?),
        Command::Reproduce(args) => reproduce::run(reproduce::Config::from_args(args)?),
        Command::Diff(args) => diff::run(args),
        Command::Hash(args) => hash::run(args),
        Command::Normalize(args) => normalize::run(args),
    }
}

/// git: `$GIT` when set, else `git` on PATH.
pub fn git_program() -> Result<Program, Error> {
    let name = std::env::var("GIT").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "git".into());
    Ok(Program::resolve(&name)?)
}

/// docker: `--docker-cmd`, else `$DOCKER`, else `docker` on PATH (clap settles the order).
pub fn docker_program(name: &str) -> Result<Program, Error> {
    Ok(Program::resolve(name)?)
}

/// A `--tag` value docker will accept as `NAME[:TAG]`.
pub fn validate_tag(tag: &str) -> Result<(), Error> {
    if crate::docker::is_valid_tag(tag) {
        Ok(())
    } else {
        Err(Error::Invalid {
            what: format!("--tag {tag:?} is not a docker image reference (NAME[:TAG], lowercase name)"),
        })
    }
}

/// Writes text to stdout; a closed pipe is reported to `main`, which exits quietly.
pub fn print(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|_| out.flush()).map_err(|source| Error::Output { source })
}

/// Writes one JSON object and a newline to stdout.
pub fn print_json(value: &serde_json::Value) -> Result<(), Error> {
    print(&format!("{}\n", serde_json::to_string_pretty(value).expect("JSON values serialise")))
}

/// JSON `null` for `None`.
pub fn opt<T: ToString>(v: Option<T>) -> serde_json::Value {
    v.map_or(serde_json::Value::Null, |v| serde_json::Value::String(v.to_string()))
}
