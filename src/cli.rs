//! The command line as plain data (clap derive). Validation into each command's `Config` happens
//! in that command's module; nothing here touches the outside world.

use camino::Utf8PathBuf;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "rtm-compute",
    version,
    about = "Prove that a container image was built from a given git commit",
    long_about = "Builds compute/Dockerfile from a clean worktree of one git commit, records a witness of the image \
                  (digest, input hashes, gitRef) as RDF, and later rebuilds from that commit to check the digest.\n\n\
                  Exit codes: 0 success (digest matches), 1 digest mismatch or failed reproduction, 2 prerequisite failure."
)]
pub struct Cli {
    /// Print only results and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also print every git and docker command as it runs.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the Dockerfile at a commit, from a clean worktree of exactly that commit, and record
    /// the witness.
    #[command(
        after_help = "Examples:\n  rtm-compute materialize\n  rtm-compute materialize --rev v1.2 --tag adcs-compute:v1.2 --json\n  rtm-compute materialize --repo ../mission --record evidence/rtm.trig"
    )]
    Materialize(MaterializeArgs),
    /// Rebuild the image a witness names, from its recorded commit, and check the digest.
    #[command(
        after_help = "Exit codes: 0 the digest matches, 1 it does not (or the rebuild failed), 2 a prerequisite is missing.\n\nExamples:\n  rtm-compute reproduce --image-digest 71a59f23\n  rtm-compute reproduce --image-digest 71a59f23 --pull\n  rtm-compute reproduce --image urn:adcs:docker-image:sha256-71a5… --from-trig output/rtm.trig --no-cache"
    )]
    Reproduce(ReproduceArgs),
    /// Explain why two local images differ: config fields, the first differing layer and the
    /// instruction that made it, and the files in that layer.
    #[command(
        after_help = "Exit codes: 0 identical, 1 different, 2 an image is missing or docker failed.\n\nExamples:\n  rtm-compute diff adcs-compute:v1 adcs-compute:v1-rebuilt\n  rtm-compute diff sha256:71a59f23… sha256:0c4e… --json"
    )]
    Diff(DiffArgs),
    /// Normalise a local image (what materialize does after its build) and print its new digest.
    #[command(
        after_help = "Examples:\n  rtm-compute normalize my-image:raw --source-date-epoch \"$(git log -1 --format=%ct)\" --tag my-image:norm\n  rtm-compute normalize sha256:4e5a… --source-date-epoch 1735787045 --base busybox:1 --json"
    )]
    Normalize(NormalizeArgs),
    /// Flexo MMS, the witness remote: provision it, and push what a local record holds.
    #[command(subcommand)]
    Flexo(FlexoCommand),
    /// Check everything configured: git, the docker daemon, Flexo (reachability and auth) when
    /// FLEXO_URL is set, the registry when RTM_REGISTRY is set. Exit 2 names each failing piece.
    #[command(
        after_help = "Examples:\n  rtm-compute doctor\n  FLEXO_URL=https://flexo.example.org rtm-compute doctor --json"
    )]
    Doctor(DoctorArgs),
    /// One line per image witness: short digest, label, commit, build time, and the latest
    /// verification with its time and method.
    #[command(
        after_help = "Examples:\n  rtm-compute list\n  rtm-compute list --from-trig evidence/rtm.trig --json\n  FLEXO_URL=http://localhost:8080 rtm-compute list --from-flexo"
    )]
    List(ListArgs),
    /// The whole chain of one witness: inputs, layers, registryRef, flexoRecord, every
    /// verification and every run.
    #[command(
        after_help = "Examples:\n  rtm-compute show 71a59f23\n  rtm-compute show urn:adcs:docker-image:sha256-71a5… --json"
    )]
    Show(ShowArgs),
    /// Run a witnessed image (only if the local image is exactly the witnessed one) and record the
    /// container. Exits with the container's exit code (2 if it could not start).
    #[command(
        after_help = "Examples:\n  rtm-compute run --image-digest 71a59f23 -- python -m analysis --case nominal\n  rtm-compute run --image urn:adcs:docker-image:sha256-71a5… --from-flexo --flexo"
    )]
    Run(RunArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  rtm-compute completions bash > /etc/bash_completion.d/rtm-compute\n  rtm-compute completions zsh > \"${fpath[1]}/_rtm-compute\"\n  rtm-compute completions fish > ~/.config/fish/completions/rtm-compute.fish"
    )]
    Completions(CompletionsArgs),
    /// Print the dockerfileHash and buildContextHash of a tree without building.
    #[command(
        after_help = "Examples:\n  rtm-compute hash\n  rtm-compute hash --dockerfile compute/Dockerfile --context . --json"
    )]
    Hash(HashArgs),
}

#[derive(Debug, Args)]
pub struct DockerArgs {
    /// The docker-compatible CLI to run (e.g. podman).
    #[arg(long = "docker-cmd", env = "DOCKER", default_value = "docker", value_name = "PROGRAM")]
    pub docker_cmd: String,
}

#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// The registry: materialize pushes the image there; reproduce pulls it by digest instead of
    /// rebuilding.
    #[arg(long, env = "RTM_REGISTRY", value_name = "HOST[:PORT][/NAMESPACE]")]
    pub registry: Option<String>,
    /// The image's name in the registry [default: $FLEXO_ORG/$FLEXO_REPO, i.e. adcs-demo/lifecycle].
    #[arg(long, env = "RTM_REGISTRY_IMAGE", value_name = "NAME")]
    pub registry_image: Option<String>,
}

#[derive(Debug, Args)]
pub struct MaterializeArgs {
    /// The repository (any directory inside it).
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub repo: Utf8PathBuf,
    /// The commit to build (any revision git understands).
    #[arg(long, default_value = "HEAD")]
    pub rev: String,
    /// The Dockerfile, relative to the repository root.
    #[arg(long, default_value = "compute/Dockerfile", value_name = "PATH")]
    pub dockerfile: String,
    /// The build context, relative to the repository root.
    #[arg(long, default_value = ".", value_name = "PATH")]
    pub context: String,
    /// The tag to give the image [default: rtm/<repository name>:<short commit>].
    #[arg(long, value_name = "NAME:TAG")]
    pub tag: Option<String>,
    /// The TriG record to append the witness to.
    #[arg(long, default_value = "output/rtm.trig", value_name = "PATH")]
    pub record: Utf8PathBuf,
    /// Build without docker's layer cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Record the image exactly as the builder made it (its digest then carries build times, so
    /// only a cached rebuild reproduces it).
    #[arg(long)]
    pub no_normalize: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write the witness to Flexo MMS (branch `evidence`; settings from FLEXO_URL and friends).
    /// The local record is written first.
    #[arg(long)]
    pub flexo: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub docker: DockerArgs,
}

#[derive(Debug, Args)]
#[group(id = "witness", required = true, multiple = false, args = ["image_digest", "image"])]
pub struct ReproduceArgs {
    /// The witness's digest (full `sha256:…` or a unique part of it).
    #[arg(long, value_name = "DIGEST")]
    pub image_digest: Option<String>,
    /// The witness's image IRI.
    #[arg(long, value_name = "IRI")]
    pub image: Option<String>,
    /// The TriG record to read the witness from [default: output/rtm.trig].
    #[arg(long, value_name = "PATH")]
    pub from_trig: Option<Utf8PathBuf>,
    /// A repository that may already hold the commit [default: the current one]; otherwise the
    /// gitRef's repository is cloned.
    #[arg(long, value_name = "DIR")]
    pub repo: Option<Utf8PathBuf>,
    /// Rebuild without docker's layer cache.
    #[arg(long)]
    pub no_cache: bool,
    /// The TriG record to append the assertion to [default: the --from-trig file, or
    /// output/rtm.trig].
    #[arg(long, value_name = "PATH")]
    pub record: Option<Utf8PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Read the witness from Flexo MMS (branch `evidence`) instead of a TriG file.
    #[arg(long, conflicts_with = "from_trig")]
    pub from_flexo: bool,
    /// Also write the assertion to Flexo MMS (branch `audit`).
    #[arg(long)]
    pub flexo: bool,
    /// Verify by pulling the recorded rtm:registryRef (by digest) instead of rebuilding.
    #[arg(long)]
    pub pull: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub docker: DockerArgs,
}

#[derive(Debug, Subcommand)]
pub enum FlexoCommand {
    /// Create the org and repo when they are missing, and check the master branch. Safe to run
    /// again: an existing org or repo is never replaced.
    #[command(
        after_help = "Settings: FLEXO_URL, FLEXO_AUTH_URL, FLEXO_TOKEN or FLEXO_USER/FLEXO_PASS, FLEXO_ORG, FLEXO_REPO.\n\nExamples:\n  FLEXO_URL=http://localhost:8080 rtm-compute flexo init"
    )]
    Init,
    /// Send the witnesses and assertions of a local record that Flexo lacks. Idempotent.
    #[command(
        after_help = "Examples:\n  rtm-compute flexo push\n  rtm-compute flexo push --record evidence/rtm.trig --json"
    )]
    Push(FlexoPushArgs),
}

#[derive(Debug, Args)]
pub struct FlexoPushArgs {
    /// The local TriG record.
    #[arg(long, default_value = "output/rtm.trig", value_name = "PATH")]
    pub record: Utf8PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub docker: DockerArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Where to read witnesses from.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// The TriG record [default: output/rtm.trig].
    #[arg(long, value_name = "PATH", conflicts_with = "from_flexo")]
    pub from_trig: Option<Utf8PathBuf>,
    /// Read from Flexo MMS (branches `evidence` and `audit`) instead.
    #[arg(long)]
    pub from_flexo: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Print one JSON object (schema rtm-compute/list/1) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The witness: a full digest, a unique part of one, or the image IRI.
    #[arg(value_name = "DIGEST|IRI")]
    pub witness: String,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Print one JSON object (schema rtm-compute/show/1) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[group(id = "run_witness", required = true, multiple = false, args = ["image_digest", "image"])]
pub struct RunArgs {
    /// The witness's digest (full `sha256:…` or a unique part of it).
    #[arg(long, value_name = "DIGEST")]
    pub image_digest: Option<String>,
    /// The witness's image IRI.
    #[arg(long, value_name = "IRI")]
    pub image: Option<String>,
    #[command(flatten)]
    pub source: SourceArgs,
    /// The TriG record to append the container to [default: the --from-trig file, or
    /// output/rtm.trig].
    #[arg(long, value_name = "PATH")]
    pub record: Option<Utf8PathBuf>,
    /// Also write the container to Flexo MMS (branch `evidence`).
    #[arg(long)]
    pub flexo: bool,
    #[command(flatten)]
    pub docker: DockerArgs,
    /// The command and arguments for the container (after `--`).
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The first image (name, tag or id).
    #[arg(value_name = "IMAGE_A")]
    pub image_a: String,
    /// The second image.
    #[arg(value_name = "IMAGE_B")]
    pub image_b: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub docker: DockerArgs,
}

#[derive(Debug, Args)]
pub struct NormalizeArgs {
    /// The image to normalise (name, tag or id).
    pub image: String,
    /// The source date, in seconds since the epoch (usually the commit time).
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub source_date_epoch: i64,
    /// The base image whose layers stay byte-identical.
    #[arg(long, value_name = "IMAGE")]
    pub base: Option<String>,
    /// The tag to give the normalised image.
    #[arg(long, value_name = "NAME:TAG")]
    pub tag: Option<String>,
    /// Print one JSON object instead of the digest.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub docker: DockerArgs,
}

#[derive(Debug, Args)]
pub struct HashArgs {
    /// The Dockerfile.
    #[arg(long, default_value = "compute/Dockerfile", value_name = "PATH")]
    pub dockerfile: Utf8PathBuf,
    /// The build context directory.
    #[arg(long, default_value = ".", value_name = "PATH")]
    pub context: Utf8PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}
