//! `rtm-compute materialize`: build the Dockerfile at one commit, from a clean temporary worktree
//! of exactly that commit, and append the image's witness to the record.
//!
//! Invariant: the witness names the commit that was built; uncommitted changes in the user's
//! working tree never reach the build (they are reported instead).

use camino::{Utf8Path, Utf8PathBuf};
use serde_json::json;

use crate::cli::MaterializeArgs;
use crate::docker::{self, BuildRequest, ImageDigest};
use crate::error::{EXIT_OK, Error};
use crate::git::{self, CommitId};
use crate::gitref::{GitRef, safe_relative_path};
use crate::hash;
use crate::log;
use crate::normalize;
use crate::process::Program;
use crate::record;
use crate::record::{Quad, Term};
use crate::registry::{self, DigestRef};
use crate::time::Timestamp;
use crate::vocab::{EVIDENCE_GRAPH, RTM_REGISTRY_REF, XSD_ANYURI};
use crate::witness::{ImageWitness, Selector, select};

/// Validated settings of one materialize run.
pub struct Config {
    pub git: Program,
    pub docker: Program,
    pub repo: Utf8PathBuf,
    pub rev: String,
    pub dockerfile: Utf8PathBuf,
    /// `None` for the repository root.
    pub context: Option<Utf8PathBuf>,
    pub tag: Option<String>,
    pub record: Utf8PathBuf,
    pub no_cache: bool,
    /// Normalise the built image (the default) so that a cold rebuild reproduces its digest.
    pub normalize: bool,
    /// Write the witness to Flexo too (`--flexo`), with these settings.
    pub flexo: Option<crate::flexo::Settings>,
    /// Push the image there after the build and record its `rtm:registryRef`.
    pub registry: Option<super::RegistryConfig>,
    pub json: bool,
}

impl Config {
    pub fn from_args(args: MaterializeArgs) -> Result<Config, Error> {
        let dockerfile = safe_relative_path(&args.dockerfile).ok_or_else(|| Error::Invalid {
            what: format!(
                "--dockerfile {:?} must be a path inside the repository, relative to its root",
                args.dockerfile
            ),
        })?;
        let context = match args.context.trim_end_matches('/') {
            "." | "" => None,
            c => Some(safe_relative_path(c).ok_or_else(|| Error::Invalid {
                what: format!(
                    "--context {:?} must be a directory inside the repository, relative to its root",
                    args.context
                ),
            })?),
        };
        if let Some(tag) = &args.tag {
            super::validate_tag(tag)?;
        }
        Ok(Config {
            git: super::git_program()?,
            docker: super::docker_program(&args.docker.docker_cmd)?,
            repo: args.repo,
            rev: args.rev,
            dockerfile,
            context,
            tag: args.tag,
            record: args.record,
            no_cache: args.no_cache,
            normalize: !args.no_normalize,
            registry: super::registry_config(args.registry)?,
            flexo: if args.flexo { Some(crate::flexo::Settings::from_env()?) } else { None },
            json: args.json,
        })
    }
}

/// `rtm/<repository directory name>:<short commit>`.
fn default_tag(root: &Utf8Path, commit: &CommitId) -> String {
    let name: String = root
        .file_name()
        .unwrap_or("repo")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let name = name.trim_matches('-');
    format!("rtm/{}:{}", if name.is_empty() { "repo" } else { name }, commit.short())
}

/// What a materialize run produced.
struct Outcome {
    witness: ImageWitness,
    commit: CommitId,
    /// The image as the builder made it, before normalisation.
    built: ImageDigest,
    already_recorded: bool,
}

pub fn run(cfg: Config) -> Result<u8, Error> {
    let root = git::toplevel(&cfg.git, &cfg.repo)?;
    let commit = git::resolve_commit(&cfg.git, &root, &cfg.rev)?;
    warn_about_uncommitted_changes(&cfg, &root, &commit)?;
    docker::server_version(&cfg.docker)?;

    let worktree = git::add_worktree(&cfg.git, &root, &commit)?;
    let tree = worktree.path();
    let dockerfile = tree.join(&cfg.dockerfile);
    if !dockerfile.is_file() {
        return Err(Error::Invalid { what: format!("{} does not exist at commit {commit}", cfg.dockerfile) });
    }
    let context_rel = cfg.context.clone().unwrap_or_else(|| Utf8PathBuf::from("."));
    let context = tree.join(&context_rel);
    if !context.is_dir() {
        return Err(Error::Invalid {
            what: format!("build context {context_rel} is not a directory at commit {commit}"),
        });
    }
    let dockerfile_hash = hash::file_hash(&dockerfile)?;
    let build_context_hash = hash::context_hash(&context)?;
    let base = docker::base_image(&cfg.docker, &dockerfile)?;
    let tag = cfg.tag.clone().unwrap_or_else(|| default_tag(&root, &commit));

    log::info(&format!("building {} at {} (commit {})", cfg.dockerfile, tag, commit.short()));
    let request = BuildRequest {
        dir: tree,
        dockerfile: &cfg.dockerfile,
        context: &context_rel,
        tag: Some(&tag),
        no_cache: cfg.no_cache,
    };
    let built: ImageDigest = docker::build(&cfg.docker, &request)?;
    drop(worktree);

    let (image, layers, source_date_epoch, normalizer) = if cfg.normalize {
        let sde = git::commit_time(&cfg.git, &root, &commit)?;
        let request = normalize::Request {
            image: &built,
            source_date_epoch: sde,
            base_layers: base.as_ref().map_or(0, |b| b.layers.len()),
            tag: Some(&tag),
        };
        let n = normalize::normalize(&cfg.docker, &request)?;
        (n.digest, n.layers, Some(sde), Some(normalize::NORMALIZER.to_owned()))
    } else {
        let layers = normalize::unnormalized_layers(&cfg.docker, &built)?;
        (built.clone(), layers, None, None)
    };

    let origin = git::origin_url(&cfg.git, &root)?;
    let git_ref = GitRef::for_commit(origin.as_deref(), &root, commit.clone(), &cfg.dockerfile);
    let witness = ImageWitness {
        iri: ImageWitness::iri_for(&image),
        content_hash: image,
        labels: vec![tag],
        base_image_digest: base.map(|b| b.id),
        dockerfile_hash: Some(dockerfile_hash),
        build_context_hash: Some(build_context_hash),
        generated_at: Some(Timestamp::now()),
        git_ref: Some(git_ref.to_string()),
        context_path: cfg.context.as_ref().map(|c| c.to_string()),
        source_date_epoch,
        normalizer,
        layers,
        registry_ref: None,
        flexo_record: None,
    };
    let mut outcome = record_witness(&cfg.record, witness, commit, built)?;
    if let Some(reg) = &cfg.registry {
        let pushed = publish(&cfg.docker, reg, &outcome.witness).map_err(|e| Error::NotPushed {
            record: cfg.record.to_string(),
            registry: reg.registry.image_ref(&reg.image),
            detail: e.to_string(),
        })?;
        let quad = Quad::new(
            Some(EVIDENCE_GRAPH),
            &Term::iri(&outcome.witness.iri),
            RTM_REGISTRY_REF,
            Term::typed(pushed.to_string(), XSD_ANYURI),
        );
        record::append(&cfg.record, |_| (vec![quad], ()))?;
        outcome.witness.registry_ref = Some(pushed.to_string());
    }
    if let Some(settings) = &cfg.flexo {
        let mark = super::flexo::flexo_record_quad(settings, &outcome.witness.iri);
        let mut quads = outcome.witness.to_quads();
        quads.push(mark.clone());
        super::flexo::send(settings, EVIDENCE_GRAPH, &quads, &cfg.record, "witness")?;
        record::append(&cfg.record, |_| (vec![mark], ()))?;
        outcome.witness.flexo_record = Some(settings.record_iri(&settings.branch(EVIDENCE_GRAPH)));
    }
    report(&cfg, &outcome)?;
    Ok(EXIT_OK)
}

/// Pushes the witnessed image to the registry and returns the reference by manifest digest, as
/// the registry itself reports it.
fn publish(docker: &Program, reg: &super::RegistryConfig, w: &ImageWitness) -> Result<DigestRef, Error> {
    let login = match &reg.credentials {
        Some(c) => Some(docker::login(docker, &reg.registry.host, &c.user, c.token.expose())?),
        None => None,
    };
    let tag = w
        .labels
        .first()
        .and_then(|l| l.rsplit_once(':'))
        .map(|(_, t)| t)
        .filter(|t| !t.contains('/'))
        .unwrap_or("latest");
    let remote = format!("{}:{tag}", reg.registry.image_ref(&reg.image));
    docker::tag(docker, w.content_hash.as_str(), &remote)?;
    log::info(&format!("pushing {remote}"));
    docker::push(docker, &remote, login.as_ref())?;
    let repository = reg.registry.repository(&reg.image);
    let digest =
        registry::manifest_digest(&reg.registry, &repository, tag, reg.credentials.as_ref(), REGISTRY_TIMEOUT)?;
    Ok(DigestRef { host: reg.registry.host.clone(), repository, digest })
}

/// How long one registry request may take.
const REGISTRY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn warn_about_uncommitted_changes(cfg: &Config, root: &Utf8Path, commit: &CommitId) -> Result<(), Error> {
    let changes = git::uncommitted_changes(&cfg.git, root)?;
    if changes.is_empty() {
        return Ok(());
    }
    let head = git::resolve_commit(&cfg.git, root, "HEAD").ok();
    let shown: Vec<&str> = changes.iter().take(5).map(String::as_str).collect();
    let more =
        if changes.len() > shown.len() { format!(" and {} more", changes.len() - shown.len()) } else { String::new() };
    let relation = if head.as_ref() == Some(commit) { "" } else { " (and it is not HEAD)" };
    log::warn(&format!(
        "{} uncommitted change(s) in {root} are NOT in this build, which uses commit {}{relation} exactly: {}{more}",
        changes.len(),
        commit.short(),
        shown.join(", ")
    ));
    Ok(())
}

/// Appends the witness, unless the record already witnesses the same image.
fn record_witness(
    path: &Utf8Path,
    witness: ImageWitness,
    commit: CommitId,
    built: ImageDigest,
) -> Result<Outcome, Error> {
    let selector = Selector::Iri(witness.iri.clone());
    let (witness, already_recorded) = record::append(path, |ds| match select(ds, &selector) {
        Ok(existing) => (Vec::new(), (existing, true)),
        Err(_) => (witness.to_quads(), (witness, false)),
    })?;
    Ok(Outcome { witness, commit, built, already_recorded })
}

fn report(cfg: &Config, o: &Outcome) -> Result<(), Error> {
    let w = &o.witness;
    if cfg.json {
        return super::print_json(&json!({
            "image": w.iri,
            "digest": w.content_hash.as_str(),
            "label": w.labels.first(),
            "commit": o.commit.as_str(),
            "gitRef": w.git_ref,
            "dockerfileHash": w.dockerfile_hash,
            "buildContextHash": w.build_context_hash,
            "baseImageDigest": super::opt(w.base_image_digest.as_ref()),
            "generatedAtTime": super::opt(w.generated_at.map(|t| t.to_xsd())),
            "builtDigest": o.built.as_str(),
            "registryRef": w.registry_ref,
            "flexoRecord": w.flexo_record,
            "sourceDateEpoch": w.source_date_epoch,
            "normalizer": w.normalizer,
            "layers": w.layers.iter().map(|l| json!({ "diffId": l.diff_id.as_str(), "createdBy": l.created_by })).collect::<Vec<_>>(),
            "record": cfg.record.as_str(),
            "alreadyRecorded": o.already_recorded,
        }));
    }
    if o.already_recorded {
        log::info(&format!("{} already holds a witness of this image; nothing added", cfg.record));
    }
    let mut text = format!(
        "image     {}\ndigest    {}\ngitRef    {}\n",
        w.iri,
        w.content_hash,
        w.git_ref.as_deref().unwrap_or("-")
    );
    if let Some(r) = &w.registry_ref {
        text.push_str(&format!("registry  {r}\n"));
    }
    if let Some(f) = &w.flexo_record {
        text.push_str(&format!("flexo     {f}\n"));
    }
    text.push_str(&format!("record    {}\n", cfg.record));
    super::print(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tags() {
        let c = CommitId::parse(&"ab".repeat(20)).unwrap();
        assert_eq!(default_tag(Utf8Path::new("/w/My Repo"), &c), "rtm/my-repo:abababababab");
    }
}
