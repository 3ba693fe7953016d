//! The program's error type and its one mapping onto the documented exit codes.
//!
//! Every module's error converts into [`Error`]; `main` prints it as one `error: …` line and exits
//! with [`Error::exit_code`]. A digest mismatch is not an error: it is an outcome (exit 1).

use std::fmt;

use crate::docker::DockerError;
use crate::flexo::FlexoError;
use crate::git::GitError;
use crate::gitref::GitRefError;
use crate::hash::HashError;
use crate::normalize::NormalizeError;
use crate::process::CmdError;
use crate::record::RecordError;
use crate::registry::RegistryError;
use crate::witness::WitnessError;

#[derive(Debug)]
pub enum Error {
    Git(GitError),
    Docker(DockerError),
    Record(RecordError),
    Witness(WitnessError),
    GitRef(GitRefError),
    Hash(HashError),
    Normalize(NormalizeError),
    Registry(RegistryError),
    Flexo(FlexoError),
    Cmd(CmdError),
    /// An argument that clap accepted but that does not make sense.
    Invalid {
        what: String,
    },
    /// The witness cannot be reproduced as recorded (no gitRef, built outside git…).
    NotReproducible {
        image: String,
        reason: String,
    },
    /// The recorded commit is neither in the local repository nor in its recorded origin.
    UnknownCommit {
        commit: String,
        searched: Vec<String>,
    },
    /// The data is in the local record, but writing it to Flexo failed.
    NotInFlexo {
        what: String,
        record: String,
        detail: String,
    },
    /// The witness is in the local record, but the push to the registry failed.
    NotPushed {
        record: String,
        registry: String,
        detail: String,
    },
    /// A local file-system operation of ours failed.
    Io {
        what: String,
        source: std::io::Error,
    },
    Output {
        source: std::io::Error,
    },
}

/// Documented exit codes.
pub const EXIT_OK: u8 = 0;
pub const EXIT_MISMATCH: u8 = 1;
pub const EXIT_PREREQUISITE: u8 = 2;
/// 128 + SIGINT, as shells report it.
pub const EXIT_INTERRUPTED: u8 = 130;

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            _ if crate::process::interrupted() => EXIT_INTERRUPTED,
            Error::Git(_)
            | Error::Docker(_)
            | Error::Record(_)
            | Error::Witness(_)
            | Error::GitRef(_)
            | Error::Hash(_)
            | Error::Normalize(_)
            | Error::Registry(_)
            | Error::Flexo(_)
            | Error::NotInFlexo { .. }
            | Error::NotPushed { .. }
            | Error::Cmd(_)
            | Error::Invalid { .. }
            | Error::NotReproducible { .. }
            | Error::UnknownCommit { .. }
            | Error::Io { .. }
            | Error::Output { .. } => EXIT_PREREQUISITE,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Git(e) => e.fmt(f),
            Error::Docker(e) => e.fmt(f),
            Error::Record(e) => e.fmt(f),
            Error::Witness(e) => e.fmt(f),
            Error::GitRef(e) => e.fmt(f),
            Error::Hash(e) => e.fmt(f),
            Error::Normalize(e) => e.fmt(f),
            Error::Registry(e) => e.fmt(f),
            Error::Flexo(e) => e.fmt(f),
            Error::NotInFlexo { what, record, detail } => write!(
                f,
                "the {what} is safe in {record} but did not reach Flexo (send it later with `rtm-compute flexo push --record {record}`): {detail}"
            ),
            Error::NotPushed { record, registry, detail } => write!(
                f,
                "pushing to {registry} failed, so the witness in {record} has no rtm:registryRef (materialize again with --registry to push): {detail}"
            ),
            Error::Cmd(e) => e.fmt(f),
            Error::Invalid { what } => f.write_str(what),
            Error::NotReproducible { image, reason } => {
                write!(f, "witness <{image}> cannot be reproduced: {reason}")
            }
            Error::UnknownCommit { commit, searched } => {
                write!(f, "commit {commit} was not found in {}", searched.join(" nor in "))
            }
            Error::Io { what, source } => write!(f, "{what}: {source}"),
            Error::Output { source } => write!(f, "failed to write output: {source}"),
        }
    }
}

impl std::error::Error for Error {}

macro_rules! from {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for Error {
            fn from(e: $ty) -> Error {
                Error::$variant(e)
            }
        }
    )*};
}

from!(
    Git(GitError),
    Docker(DockerError),
    Record(RecordError),
    Witness(WitnessError),
    GitRef(GitRefError),
    Hash(HashError),
    Normalize(NormalizeError),
    Registry(RegistryError),
    Flexo(FlexoError),
    Cmd(CmdError)
);
