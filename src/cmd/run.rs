//! `rtm-compute run`: run a witnessed image, only when the local image is exactly the witnessed
//! one, and record the container (`rtm:DockerContainer`, its host, the operator).

use camino::Utf8PathBuf;

use crate::cli::RunArgs;
use crate::docker;
use crate::error::{EXIT_PREREQUISITE, Error};
use crate::flexo::Settings;
use crate::log;
use crate::record;
use crate::time::Timestamp;
use crate::vocab::{DEFAULT_OPERATOR, EVIDENCE_GRAPH};
use crate::witness::{Container, ImageWitness, select};

pub fn run(args: RunArgs) -> Result<u8, Error> {
    let selector = super::selector(args.image_digest.as_deref(), args.image.as_deref())?;
    let record_path = args
        .record
        .clone()
        .or_else(|| args.source.from_trig.clone())
        .unwrap_or_else(|| Utf8PathBuf::from(super::DEFAULT_RECORD));
    let operator = operator()?;
    let flexo = if args.flexo { Some(Settings::from_env()?) } else { None };
    let program = super::docker_program(&args.docker.docker_cmd)?;

    let ds = super::read_witnesses(&args.source)?;
    let w = select(&ds, &selector)?;
    docker::server_version(&program)?;
    ensure_local(&program, &w)?;

    let tmp = super::temp_dir("rtm-run-")?;
    let cidfile = Utf8PathBuf::from_path_buf(tmp.path().join("cid")).expect("temporary paths are UTF-8");
    let started = Timestamp::now();
    let status = docker::run_container(&program, &w.content_hash, &cidfile, &args.args)?;
    let id = std::fs::read_to_string(&cidfile).map(|s| s.trim().to_owned()).unwrap_or_default();
    if id.is_empty() {
        return Err(Error::Invalid {
            what: format!("the container could not be created ({} run exited with {status:?})", program.name),
        });
    }
    let state = docker::container_state(&program, &id)?;
    if !state.started {
        // Nothing ran, so there is nothing to audit: the container goes, and no node is written.
        docker::remove_container(&program, &id);
        log::warn(&format!("container {id} was created but could not start; it is removed and not recorded"));
        return Ok(EXIT_PREREQUISITE);
    }
    let container =
        Container { id: id.clone(), image_iri: w.iri.clone(), operator, host: docker::host_name(&program), started };
    let quads = container.to_quads();
    record::append(&record_path, |_| (quads.clone(), ()))?;
    log::info(&format!("recorded container {id} in {record_path}"));
    if let Some(settings) = &flexo {
        super::flexo::send(settings, EVIDENCE_GRAPH, &quads, &record_path, "container")?;
    }
    Ok(u8::try_from(state.exit_code.clamp(0, 255)).expect("clamped"))
}

/// The operating organisation: `ADCS_OPERATING_ORG_IRI`, else the demo's local operator.
fn operator() -> Result<String, Error> {
    match std::env::var("ADCS_OPERATING_ORG_IRI").ok().filter(|v| !v.trim().is_empty()) {
        None => Ok(DEFAULT_OPERATOR.to_owned()),
        Some(iri) if iri.contains(':') && !iri.contains(|c: char| c.is_whitespace() || "<>\"{}|^`\\".contains(c)) => {
            Ok(iri)
        }
        Some(iri) => Err(Error::Invalid { what: format!("ADCS_OPERATING_ORG_IRI {iri:?} is not an IRI") }),
    }
}

/// Refuses to run anything but the witnessed image, and says how to get it when it is missing.
fn ensure_local(program: &crate::process::Program, w: &ImageWitness) -> Result<(), Error> {
    if let Some(info) = docker::inspect_image(program, w.content_hash.as_str())?
        && (info.id == w.content_hash || docker::config_digest(program, w.content_hash.as_str())? == w.content_hash)
    {
        return Ok(());
    }
    let mut what = format!("the witnessed image {} is not in the local daemon", w.content_hash);
    for label in &w.labels {
        if let Some(other) = docker::inspect_image(program, label)?.filter(|i| i.id != w.content_hash) {
            what.push_str(&format!(" (the local {label} is {}, a different image: it will not be run)", other.id));
        }
    }
    let short = w.content_hash.short();
    what.push_str(&format!("; get it with `rtm-compute reproduce --image-digest {short}` (rebuild)"));
    if w.registry_ref.is_some() {
        what.push_str(&format!(
            " or `rtm-compute reproduce --image-digest {short} --pull` (from {})",
            w.registry_ref.as_deref().unwrap_or("")
        ));
    }
    Err(Error::Invalid { what })
}
