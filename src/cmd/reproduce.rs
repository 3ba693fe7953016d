//! `rtm-compute reproduce`: read a witness, check its recorded commit out in a temporary
//! worktree, rebuild, compare the digest with `rtm:contentHash`, and record the outcome as an
//! EARL assertion.
//!
//! Invariants: the commit is looked for offline first (the local repository), and only a
//! validated gitRef base is ever cloned; every temporary worktree and clone is removed on every
//! path. Exit 0 on a match, 1 on a mismatch or failed rebuild, 2 when a prerequisite is missing.

use camino::{Utf8Path, Utf8PathBuf};
use serde_json::json;

use crate::cli::ReproduceArgs;
use crate::diff::{self, Report};
use crate::docker::{self, BuildRequest, DockerError, ImageDigest, ImageInfo};
use crate::error::{EXIT_MISMATCH, EXIT_OK, Error};
use crate::flexo;
use crate::git::{self, CommitId, GitError};
use crate::gitref::{Base, GitRef};
use crate::hash;
use crate::log;
use crate::normalize;
use crate::process::Program;
use crate::record;
use crate::registry::DigestRef;
use crate::time::Timestamp;
use crate::vocab::{AUDIT_GRAPH, EVIDENCE_GRAPH};
use crate::witness::{Assertion, ImageWitness, Layer, Method, Selector, select};

/// Validated settings of one reproduce run.
pub struct Config {
    pub git: Program,
    pub docker: Program,
    pub selector: Selector,
    /// Where the witness is read from.
    pub source: WitnessSource,
    /// `None`: the current directory's repository, if it is one.
    pub repo: Option<Utf8PathBuf>,
    pub no_cache: bool,
    pub record: Utf8PathBuf,
    /// Verify by pulling instead of rebuilding; `Some(None)` pulls the recorded `rtm:registryRef`
    /// as it is, `Some(Some(r))` pulls the same repository and digest from registry `r`.
    pub pull: Option<Option<super::RegistryConfig>>,
    /// Write the assertion to Flexo too (`--flexo`), with these settings.
    pub flexo_write: Option<flexo::Settings>,
    pub json: bool,
}

/// Where `reproduce` reads the witness.
pub enum WitnessSource {
    Trig(Utf8PathBuf),
    Flexo(Box<flexo::Settings>),
}

impl Config {
    pub fn from_args(args: ReproduceArgs) -> Result<Config, Error> {
        let selector = super::selector(args.image_digest.as_deref(), args.image.as_deref())?;
        Ok(Config {
            git: super::git_program()?,
            docker: super::docker_program(&args.docker.docker_cmd)?,
            selector,
            record: args
                .record
                .or_else(|| args.from_trig.clone())
                .unwrap_or_else(|| Utf8PathBuf::from(super::DEFAULT_RECORD)),
            source: match args.from_trig {
                _ if args.from_flexo => WitnessSource::Flexo(Box::new(flexo::Settings::from_env()?)),
                Some(path) => WitnessSource::Trig(path),
                None => WitnessSource::Trig(Utf8PathBuf::from(super::DEFAULT_RECORD)),
            },
            flexo_write: if args.flexo { Some(flexo::Settings::from_env()?) } else { None },
            repo: args.repo,
            no_cache: args.no_cache,
            pull: match super::registry_config(args.registry)? {
                Some(r) => Some(Some(r)),
                None if args.pull => Some(None),
                None => None,
            },
            json: args.json,
        })
    }
}

/// Where the recorded commit was found. Dropping it removes any temporary clone.
struct Source {
    repo: Utf8PathBuf,
    _clone: Option<tempfile::TempDir>,
}

/// How the rebuilt inputs compare with the recorded ones.
struct InputCheck {
    name: &'static str,
    recorded: Option<String>,
    now: Option<String>,
}

impl InputCheck {
    fn changed(&self) -> bool {
        self.recorded.is_some() && self.recorded != self.now
    }
}

pub fn run(cfg: Config) -> Result<u8, Error> {
    let witness = match &cfg.source {
        WitnessSource::Trig(path) => select(&record::read(path)?, &cfg.selector)?,
        WitnessSource::Flexo(settings) => {
            let client = flexo::connect(settings)?;
            let branch = settings.branch(EVIDENCE_GRAPH);
            let ds = flexo::fetch_images(&client, &branch, &cfg.selector)?;
            if ds.is_empty() {
                return Err(Error::Invalid {
                    what: format!(
                        "no image witness in Flexo ({}, org {}, repo {}, branch {branch}) matches {}",
                        settings.url, settings.org, settings.repo, cfg.selector
                    ),
                });
            }
            select(&ds, &cfg.selector)?
        }
    };
    if let Some(mirror) = &cfg.pull {
        return pull_and_verify(&cfg, &witness, mirror.as_ref());
    }
    let git_ref = recorded_git_ref(&witness)?;
    let commit = git_ref.commit.clone().expect("checked by recorded_git_ref");
    docker::server_version(&cfg.docker)?;

    let source = locate_commit(&cfg, &git_ref, &commit)?;
    let worktree = git::add_worktree(&cfg.git, &source.repo, &commit)?;
    let tree = worktree.path();
    let context_rel = Utf8PathBuf::from(witness.context_path.as_deref().unwrap_or("."));
    let dockerfile = tree.join(&git_ref.path);

    let (inputs, base) = check_inputs(&cfg, &witness, &dockerfile, &tree.join(&context_rel))?;
    log::info(&format!("rebuilding {} at commit {}", git_ref.path, commit.short()));
    let request =
        BuildRequest { dir: tree, dockerfile: &git_ref.path, context: &context_rel, tag: None, no_cache: cfg.no_cache };
    let built = docker::build(&cfg.docker, &request);
    drop(worktree);
    drop(source);

    let (observed, description, report) = match built {
        Ok(raw) => {
            let (digest, layers) = match witness.source_date_epoch {
                Some(sde) => {
                    let request = normalize::Request {
                        image: &raw,
                        source_date_epoch: sde,
                        base_layers: base.as_ref().map_or(0, |b| b.layers.len()),
                        tag: None,
                    };
                    let n = normalize::normalize(&cfg.docker, &request)?;
                    (n.digest, n.layers)
                }
                None => (raw.clone(), normalize::unnormalized_layers(&cfg.docker, &raw)?),
            };
            let report =
                if digest == witness.content_hash { None } else { Some(explain(&cfg, &witness, &digest, &layers)?) };
            let text = describe(&witness.content_hash, &digest, &inputs, report.as_ref());
            (Some(digest), text, report)
        }
        Err(DockerError::BuildFailed { source }) => (None, format!("rebuild failed: {source}"), None),
        Err(e) => return Err(e.into()),
    };
    let passed = observed.as_ref() == Some(&witness.content_hash);
    let assertion = Assertion {
        image_iri: witness.iri.clone(),
        passed,
        at: Timestamp::now(),
        method: Method::Rebuild,
        observed: observed.clone(),
        description,
    };
    conclude(&cfg, &witness, Some(&commit), &assertion, &inputs, report.as_ref())
}

/// Records the assertion (locally first, then in Flexo with `--flexo`), prints the outcome, and
/// returns the exit code.
fn conclude(
    cfg: &Config,
    w: &ImageWitness,
    commit: Option<&CommitId>,
    assertion: &Assertion,
    inputs: &[InputCheck],
    report: Option<&Report>,
) -> Result<u8, Error> {
    let (assertion_iri, quads) = record::append(&cfg.record, |ds| {
        let (iri, quads) = assertion.to_quads(ds);
        (quads.clone(), (iri, quads))
    })?;
    print_outcome(cfg, w, commit, assertion, &assertion_iri, inputs, report)?;
    if let Some(settings) = &cfg.flexo_write {
        super::flexo::send(settings, AUDIT_GRAPH, &quads, &cfg.record, "assertion")?;
    }
    Ok(if assertion.passed { EXIT_OK } else { EXIT_MISMATCH })
}

/// Pull-and-verify: pull the recorded image by its manifest digest and check that its config
/// digest is `rtm:contentHash`, which stays the source of truth (a registry only carries bytes).
fn pull_and_verify(cfg: &Config, w: &ImageWitness, mirror: Option<&super::RegistryConfig>) -> Result<u8, Error> {
    let recorded = w.registry_ref.as_deref().ok_or_else(|| Error::NotReproducible {
        image: w.iri.clone(),
        reason:
            "it has no rtm:registryRef to pull (it was never pushed); reproduce without --pull/--registry to rebuild"
                .into(),
    })?;
    let recorded = DigestRef::parse(recorded)?;
    let target = match mirror {
        Some(m) => recorded.in_registry(&m.registry),
        None => recorded,
    };
    docker::server_version(&cfg.docker)?;
    let login = match mirror.and_then(|m| m.credentials.as_ref()) {
        Some(c) => Some(docker::login(&cfg.docker, &target.host, &c.user, c.token.expose())?),
        None => None,
    };
    log::info(&format!("pulling {target}"));
    docker::pull(&cfg.docker, &target.to_string(), login.as_ref())?;
    // On the classic store the id is the config digest; only when it differs is the image saved
    // to read its config digest (the containerd store reports a manifest digest as the id).
    let id = docker::inspect_image(&cfg.docker, &target.to_string())?.map(|i| i.id);
    let observed = match id {
        Some(id) if id == w.content_hash => id,
        _ => docker::config_digest(&cfg.docker, &target.to_string())?,
    };
    let passed = observed == w.content_hash;
    let description = if passed {
        format!("image pulled from {target} has the recorded config digest {observed}")
    } else {
        format!(
            "digest mismatch: image pulled from {target} has config digest {observed}, the witness records {}",
            w.content_hash
        )
    };
    let assertion = Assertion {
        image_iri: w.iri.clone(),
        passed,
        at: Timestamp::now(),
        method: Method::Pull,
        observed: Some(observed),
        description,
    };
    conclude(cfg, w, None, &assertion, &[], None)
}

/// The witness's gitRef, parsed and checked to name a commit we can fetch.
fn recorded_git_ref(w: &ImageWitness) -> Result<GitRef, Error> {
    let not = |reason: String| Error::NotReproducible { image: w.iri.clone(), reason };
    let text = w.git_ref.as_deref().ok_or_else(|| not("the record has no rtm:gitRef".into()))?;
    let git_ref = GitRef::parse(text).map_err(|e| not(e.to_string()))?;
    if git_ref.base == Base::Unknown || git_ref.commit.is_none() {
        return Err(not(format!("it was built outside a git repository ({text})")));
    }
    if let Some(n) = w.normalizer.as_deref().filter(|n| *n != normalize::NORMALIZER) {
        return Err(not(format!(
            "it was normalised by {n}, and this release normalises with {}; use the release that made it",
            normalize::NORMALIZER
        )));
    }
    Ok(git_ref)
}

/// Finds the commit: in `--repo` (or the current repository) first, offline; otherwise in a
/// temporary clone of the gitRef's base.
fn locate_commit(cfg: &Config, git_ref: &GitRef, commit: &CommitId) -> Result<Source, Error> {
    let mut searched = Vec::new();
    let local = match &cfg.repo {
        Some(dir) => Some(git::toplevel(&cfg.git, dir)?),
        None => match git::toplevel(&cfg.git, Utf8Path::new(".")) {
            Ok(root) => Some(root),
            Err(GitError::NotARepository { .. }) => None,
            Err(e) => return Err(e.into()),
        },
    };
    if let Some(root) = local {
        if git::has_commit(&cfg.git, &root, commit)? {
            return Ok(Source { repo: root, _clone: None });
        }
        searched.push(root.to_string());
    }
    let url = git_ref.clone_url().expect("checked by recorded_git_ref");
    searched.push(url.clone());
    let tmp = super::temp_dir("rtm-clone-")?;
    let dest = Utf8PathBuf::from_path_buf(tmp.path().join("repo"))
        .map_err(|_| Error::Invalid { what: "temporary directory is not UTF-8".into() })?;
    log::info(&format!("commit {} is not in a local repository; cloning {url}", commit.short()));
    match git::clone_no_checkout(&cfg.git, &url, &dest) {
        Ok(()) if git::has_commit(&cfg.git, &dest, commit)? => Ok(Source { repo: dest, _clone: Some(tmp) }),
        Ok(()) => Err(Error::UnknownCommit { commit: commit.to_string(), searched }),
        Err(GitError::Cmd(e @ crate::process::CmdError::Failed { .. })) => {
            log::warn(&format!("could not clone {url}: {e}"));
            Err(Error::UnknownCommit { commit: commit.to_string(), searched })
        }
        Err(e) => Err(e.into()),
    }
}

/// The recorded inputs against the checked-out ones (what changed explains a mismatch), and the
/// local base image.
fn check_inputs(
    cfg: &Config,
    w: &ImageWitness,
    dockerfile: &Utf8Path,
    context: &Utf8Path,
) -> Result<(Vec<InputCheck>, Option<ImageInfo>), Error> {
    if !dockerfile.is_file() {
        return Err(Error::NotReproducible {
            image: w.iri.clone(),
            reason: format!("the recorded commit has no {dockerfile}"),
        });
    }
    let base = docker::base_image(&cfg.docker, dockerfile)?;
    let checks = vec![
        InputCheck {
            name: "dockerfileHash",
            recorded: w.dockerfile_hash.clone(),
            now: Some(hash::file_hash(dockerfile)?),
        },
        InputCheck {
            name: "buildContextHash",
            recorded: w.build_context_hash.clone(),
            now: Some(hash::context_hash(context)?),
        },
        InputCheck {
            name: "baseImageDigest",
            recorded: w.base_image_digest.as_ref().map(ToString::to_string),
            now: base.as_ref().map(|b| b.id.to_string()),
        },
    ];
    Ok((checks, base))
}

/// Why the rebuilt image differs: a full comparison when the recorded image is still local,
/// otherwise the recorded layer list against the rebuilt one.
fn explain(cfg: &Config, w: &ImageWitness, rebuilt: &ImageDigest, layers: &[Layer]) -> Result<Report, Error> {
    if docker::inspect_image(&cfg.docker, w.content_hash.as_str())?.is_some() {
        diff::compare_images(&cfg.docker, w.content_hash.as_str(), rebuilt.as_str())
    } else {
        Ok(diff::compare_layers(&w.layers, layers))
    }
}

/// Plain words for the assertion's `earl:result`.
fn describe(recorded: &ImageDigest, rebuilt: &ImageDigest, inputs: &[InputCheck], report: Option<&Report>) -> String {
    if recorded == rebuilt {
        return format!("rebuilt image {rebuilt} matches the recorded contentHash");
    }
    let changed: Vec<String> = inputs
        .iter()
        .filter(|i| i.changed())
        .map(|i| {
            format!(
                "{} changed (recorded {}, now {})",
                i.name,
                i.recorded.as_deref().unwrap_or("-"),
                i.now.as_deref().unwrap_or("none")
            )
        })
        .collect();
    let why = if changed.is_empty() {
        "the recorded inputs are unchanged, so the build itself is not deterministic".to_owned()
    } else {
        changed.join("; ")
    };
    match report.map(Report::summary).filter(|s| !s.is_empty()) {
        Some(summary) => format!("digest mismatch: recorded {recorded}, rebuilt {rebuilt}; {why}; {summary}"),
        None => format!("digest mismatch: recorded {recorded}, rebuilt {rebuilt}; {why}"),
    }
}

fn print_outcome(
    cfg: &Config,
    w: &ImageWitness,
    commit: Option<&CommitId>,
    a: &Assertion,
    assertion_iri: &str,
    inputs: &[InputCheck],
    report: Option<&Report>,
) -> Result<(), Error> {
    if cfg.json {
        let inputs: serde_json::Map<String, serde_json::Value> = inputs
            .iter()
            .map(|i| (i.name.to_owned(), json!({ "recorded": i.recorded, "now": i.now, "changed": i.changed() })))
            .collect();
        return super::print_json(&json!({
            "outcome": if a.passed { "passed" } else { "failed" },
            "image": w.iri,
            "recordedDigest": w.content_hash.as_str(),
            "rebuiltDigest": super::opt(a.observed.as_ref()),
            "commit": commit.map(CommitId::as_str),
            "registryRef": w.registry_ref,
            "gitRef": w.git_ref,
            "method": a.method.as_str(),
            "inputs": inputs,
            "normalizer": w.normalizer,
            "sourceDateEpoch": w.source_date_epoch,
            "explanation": report.map(Report::to_json),
            "description": a.description,
            "assertion": assertion_iri,
            "record": cfg.record.as_str(),
        }));
    }
    let verdict = super::paint(if a.passed { "PASS" } else { "FAIL" }, a.passed);
    let observed = a.observed.as_ref().map_or("(no image)".to_owned(), ToString::to_string);
    let mut text = match (a.method, commit) {
        (Method::Pull, _) => format!(
            "{verdict}  {}\n  recorded  {}\n  pulled    {observed}\n  from      {}\n",
            w.iri,
            w.content_hash,
            w.registry_ref.as_deref().unwrap_or("-")
        ),
        (Method::Rebuild, commit) => format!(
            "{verdict}  {}\n  recorded  {}\n  rebuilt   {observed}\n  commit    {}\n",
            w.iri,
            w.content_hash,
            commit.map_or("-", CommitId::as_str)
        ),
    };
    if !a.passed {
        for i in inputs.iter().filter(|i| i.changed()) {
            text.push_str(&format!(
                "  input changed: {} (recorded {}, now {})\n",
                i.name,
                i.recorded.as_deref().unwrap_or("-"),
                i.now.as_deref().unwrap_or("none")
            ));
        }
        match report {
            Some(r) => {
                for line in r.to_text().lines() {
                    text.push_str(&format!("  {line}\n"));
                }
            }
            None => text.push_str(&format!("  reason    {}\n", a.description)),
        }
    }
    text.push_str(&format!("  assertion {assertion_iri} in {}\n", cfg.record));
    super::print(&text)
}
