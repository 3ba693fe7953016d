//! `rtm-compute`: build a container image from a git commit, record a witness of it as RDF, and
//! later rebuild from that commit to prove the digest.
//!
//! `main` parses the command line, runs one subcommand, prints at most one `error: …` line, and
//! exits with the documented code (0 match, 1 mismatch, 2 prerequisite failure).

mod archive;
mod catalog;
mod cli;
mod cmd;
mod diff;
mod docker;
mod error;
mod flexo;
mod git;
mod gitref;
mod hash;
mod http;
mod layer;
mod log;
mod normalize;
mod process;
mod record;
mod registry;
mod time;
mod vocab;
mod witness;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    log::set_level(match (cli.quiet, cli.verbose) {
        (true, _) => log::Level::Quiet,
        (_, true) => log::Level::Verbose,
        _ => log::Level::Normal,
    });
    process::install_interrupt_handler();
    match cmd::run(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(error::Error::Output { source }) if source.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(0),
        Err(e) => {
            let _ = std::io::stdout().flush();
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
