//! `rtm-compute flexo init|push`, and the one way the other commands write to Flexo: local record
//! first, then one `INSERT DATA` per branch, with an error that says where the data is safe.

use camino::Utf8Path;
use serde_json::json;

use crate::cli::{FlexoCommand, FlexoPushArgs};
use crate::error::{EXIT_OK, Error};
use crate::flexo::{self, Presence, Settings, Write};
use crate::record::{self, Quad, Term};
use crate::vocab::{
    AUDIT_GRAPH, EVIDENCE_GRAPH, PROV_AT_LOCATION, RDF_TYPE, RTM_DIGEST_MATCH_ASSERTION, RTM_DOCKER_CONTAINER,
    RTM_DOCKER_IMAGE, RTM_FLEXO_RECORD,
};

pub fn run(command: FlexoCommand) -> Result<u8, Error> {
    let settings = Settings::from_env()?;
    match command {
        FlexoCommand::Init => init(&settings),
        FlexoCommand::Push(args) => push(&settings, &args),
    }
}

/// Writes `quads` to the branch of `graph`, creating the branch from master when it is missing.
/// The quads are already in the local record at `record`; a failure says so and how to retry.
pub fn send(settings: &Settings, graph: &str, quads: &[Quad], record: &Utf8Path, what: &str) -> Result<Write, Error> {
    let attempt = || -> Result<Write, flexo::FlexoError> {
        let client = flexo::connect(settings)?;
        let branch = settings.branch(graph);
        client.ensure_branch(&branch)?;
        client.insert(&branch, quads)
    };
    attempt().map_err(|e| Error::NotInFlexo {
        what: what.to_owned(),
        record: record.to_string(),
        detail: e.to_string(),
    })
}

/// The `rtm:flexoRecord` quad that says an image node is in Flexo's evidence branch.
pub fn flexo_record_quad(settings: &Settings, image_iri: &str) -> Quad {
    let target = settings.record_iri(&settings.branch(EVIDENCE_GRAPH));
    Quad::new(Some(EVIDENCE_GRAPH), &Term::iri(image_iri), RTM_FLEXO_RECORD, Term::iri(target))
}

fn init(settings: &Settings) -> Result<u8, Error> {
    let client = flexo::connect(settings)?;
    let report = client.init()?;
    let word = |p: Presence| if p == Presence::Created { "created" } else { "found" };
    super::print(&format!(
        "org     {} ({})\nrepo    {} ({})\nmaster  ok\n",
        settings.org,
        word(report.org),
        settings.repo,
        word(report.repo)
    ))?;
    Ok(EXIT_OK)
}

/// Sends what the record holds and Flexo lacks: image and container nodes to `evidence`,
/// assertions to `audit`.
fn push(settings: &Settings, args: &FlexoPushArgs) -> Result<u8, Error> {
    let ds = record::read(&args.record)?;
    let idx = ds.index();
    let client = flexo::connect(settings)?;
    let mut counts = Vec::new();
    let mut pushed_images = Vec::new();
    for (graph, class) in [
        (EVIDENCE_GRAPH, RTM_DOCKER_IMAGE),
        (EVIDENCE_GRAPH, RTM_DOCKER_CONTAINER),
        (AUDIT_GRAPH, RTM_DIGEST_MATCH_ASSERTION),
    ] {
        let branch = settings.branch(graph);
        client.ensure_branch(&branch)?;
        let present: std::collections::BTreeSet<String> = client
            .select(&branch, &format!("SELECT ?s WHERE {{ ?s <{RDF_TYPE}> <{class}> }}"))?
            .into_iter()
            .filter_map(|row| row.get("s").and_then(Term::as_iri).map(str::to_owned))
            .collect();
        let subjects = idx.subjects_of_type(class);
        let missing: Vec<&Term> =
            subjects.iter().copied().filter(|s| !s.as_iri().is_some_and(|i| present.contains(i))).collect();
        let mut quads: Vec<Quad> = missing.iter().flat_map(|s| idx.node_quads(s)).cloned().collect();
        // A container's host is a node of its own (`prov:Location`).
        let hosts: Vec<&Term> = missing.iter().flat_map(|s| idx.objects(s, PROV_AT_LOCATION)).collect();
        quads.extend(hosts.into_iter().flat_map(|h| idx.node_quads(h)).cloned());
        if class == RTM_DOCKER_IMAGE {
            for s in &missing {
                let iri = s.as_iri().unwrap_or_default().to_owned();
                quads.push(flexo_record_quad(settings, &iri));
                pushed_images.push(iri);
            }
        }
        if !quads.is_empty() {
            client.insert(&branch, &quads)?;
        }
        counts.push((branch, class, missing.len(), subjects.len() - missing.len()));
    }
    if !pushed_images.is_empty() {
        let marks: Vec<Quad> = pushed_images.iter().map(|i| flexo_record_quad(settings, i)).collect();
        record::append(&args.record, |_| (marks, ()))?;
    }
    if args.json {
        super::print_json(&json!({
            "record": args.record.as_str(),
            "branches": counts
                .iter()
                .map(|(b, class, sent, had)| json!({ "branch": b, "class": class, "sent": sent, "alreadyThere": had }))
                .collect::<Vec<_>>(),
        }))?;
    } else {
        let mut text = String::new();
        for (branch, class, sent, had) in &counts {
            let what = class.rsplit('#').next().unwrap_or(class);
            text.push_str(&format!("{branch:<10} {what:<21} sent {sent}, already there {had}\n"));
        }
        super::print(&text)?;
    }
    Ok(EXIT_OK)
}
