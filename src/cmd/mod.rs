//! One module per subcommand, each with a `run` that returns the exit code; shared set-up
//! (choosing the programs, printing results) lives here.

pub mod diff;
pub mod doctor;
pub mod flexo;
pub mod hash;
pub mod list;
pub mod materialize;
pub mod normalize;
pub mod reproduce;
pub mod run;

use std::io::Write;

use crate::cli::{Command, RegistryArgs, SourceArgs};
use crate::error::Error;
use crate::http::Secret;
use crate::process::Program;
use crate::registry::{Credentials, Registry};
use crate::witness::Selector;

/// Runs one subcommand and returns its exit code.
pub fn run(command: Command) -> Result<u8, Error> {
    match command {
        Command::Materialize(args) => materialize::run(materialize::Config::from_args(args)?),
        Command::Reproduce(args) => reproduce::run(reproduce::Config::from_args(args)?),
        Command::Diff(args) => diff::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Flexo(command) => flexo::run(command),
        Command::Hash(args) => hash::run(args),
        Command::List(args) => list::list(args),
        Command::Show(args) => list::show(args),
        Command::Run(args) => run::run(args),
        Command::Completions(args) => {
            completions(args.shell);
            Ok(crate::error::EXIT_OK)
        }
        Command::Normalize(args) => normalize::run(args),
    }
}

/// Prints the completion script of `shell` for the whole command line.
fn completions(shell: clap_complete::Shell) {
    use clap::CommandFactory;
    let mut command = crate::cli::Cli::command();
    clap_complete::generate(shell, &mut command, "rtm-compute", &mut std::io::stdout());
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

/// The registry of one run: where, under which name, and with which credentials.
pub struct RegistryConfig {
    pub registry: Registry,
    /// The image's repository name inside the registry (after the namespace).
    pub image: String,
    pub credentials: Option<Credentials>,
}

/// Validates `--registry` / `RTM_REGISTRY` and friends; `None` when no registry is set.
/// Credentials: `RTM_REGISTRY_USER` with `RTM_REGISTRY_TOKEN`, falling back to `FLEXO_TOKEN`
/// (one credential for both remotes); without a user, registries are used anonymously.
pub fn registry_config(args: RegistryArgs) -> Result<Option<RegistryConfig>, Error> {
    let Some(text) = args.registry.filter(|r| !r.trim().is_empty()) else { return Ok(None) };
    let registry = Registry::parse(&text)?;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let image = match args.registry_image {
        Some(i) => i,
        None => format!(
            "{}/{}",
            env("FLEXO_ORG").unwrap_or_else(|| "adcs-demo".into()),
            env("FLEXO_REPO").unwrap_or_else(|| "lifecycle".into())
        ),
    };
    if image.contains(':') || !crate::docker::is_valid_tag(&image) {
        return Err(Error::Invalid {
            what: format!("registry image name {image:?} is not a lowercase repository path"),
        });
    }
    let credentials = match env("RTM_REGISTRY_USER") {
        Some(user) => {
            let token = env("RTM_REGISTRY_TOKEN").or_else(|| env("FLEXO_TOKEN")).ok_or_else(|| Error::Invalid {
                what: "RTM_REGISTRY_USER is set but neither RTM_REGISTRY_TOKEN nor FLEXO_TOKEN holds a token".into(),
            })?;
            Some(Credentials { user, token: Secret::new(token) })
        }
        None => None,
    };
    Ok(Some(RegistryConfig { registry, image, credentials }))
}

/// The witness named by `--image-digest` or `--image` (clap makes them exclusive).
pub fn selector(digest: Option<&str>, iri: Option<&str>) -> Result<Selector, Error> {
    match (digest.map(str::trim), iri.map(str::trim)) {
        (Some(d), None) if !d.is_empty() => Ok(Selector::Digest(d.to_owned())),
        (None, Some(i)) if !i.is_empty() => Ok(Selector::Iri(i.to_owned())),
        _ => Err(Error::Invalid { what: "give one non-empty --image-digest or --image".into() }),
    }
}

/// A temporary directory, with an error that says so.
pub fn temp_dir(prefix: &str) -> Result<tempfile::TempDir, Error> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|source| Error::Io { what: "failed to create a temporary directory".into(), source })
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

/// `text` in green (`good`) or red, when stdout is a terminal and `NO_COLOR` is not set.
pub fn paint(text: &str, good: bool) -> String {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if no_color || !std::io::stdout().is_terminal() {
        return text.to_owned();
    }
    format!("\x1b[{}m{text}\x1b[0m", if good { "32" } else { "31" })
}

/// The record the demo and we read and write when none is named.
pub const DEFAULT_RECORD: &str = "output/rtm.trig";

/// The witnesses (and their assertions and runs) from a TriG record or from Flexo's `evidence`
/// and `audit` branches.
pub fn read_witnesses(source: &SourceArgs) -> Result<crate::record::Dataset, Error> {
    if !source.from_flexo {
        let path = source.from_trig.clone().unwrap_or_else(|| camino::Utf8PathBuf::from(DEFAULT_RECORD));
        return Ok(crate::record::read(&path)?);
    }
    let settings = crate::flexo::Settings::from_env()?;
    let client = crate::flexo::connect(&settings)?;
    let mut ds = crate::record::Dataset::new();
    for graph in [crate::vocab::EVIDENCE_GRAPH, crate::vocab::AUDIT_GRAPH] {
        let branch = settings.branch(graph);
        let turtle = client.graph(&branch)?;
        let name = camino::Utf8PathBuf::from(format!(
            "{}/orgs/{}/repos/{}/branches/{branch}/graph",
            settings.url, settings.org, settings.repo
        ));
        ds.extend(crate::record::parse(turtle.as_bytes(), &name)?.iter().cloned());
    }
    Ok(ds)
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
