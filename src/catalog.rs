//! A whole record read for people: every image witness with its verifications (assertions) and
//! its runs (containers), for `list` and `show`.
//!
//! Invariant: the catalog is read from the union of all graphs, so records written by the demo
//! (rdflib) and by us read the same; it indexes the record once, so 10 000 witnesses read in a
//! fraction of a second.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::record::{Dataset, Index, Term};
use crate::time::Timestamp;
use crate::vocab::*;
use crate::witness::ImageWitness;

/// The JSON schema versions of `list --json` and `show --json` (documented in README.md).
pub const LIST_SCHEMA: &str = "rtm-compute/list/1";
pub const SHOW_SCHEMA: &str = "rtm-compute/show/1";

/// One reproduction assertion about an image.
#[derive(Clone, Debug)]
pub struct Verification {
    pub iri: String,
    pub passed: bool,
    pub at: Option<Timestamp>,
    /// `rebuild` or `pull`; `None` for the demo's assertions, which do not say.
    pub method: Option<String>,
    pub description: Option<String>,
    pub observed: Option<String>,
}

/// One recorded run (container) of an image.
#[derive(Clone, Debug)]
pub struct Run {
    pub iri: String,
    pub id: String,
    pub at: Option<Timestamp>,
    pub location: Option<String>,
    pub operator: Option<String>,
}

/// An image witness with everything recorded about it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub witness: ImageWitness,
    /// Oldest first.
    pub verifications: Vec<Verification>,
    pub runs: Vec<Run>,
}

impl Entry {
    pub fn latest(&self) -> Option<&Verification> {
        self.verifications.last()
    }
}

/// Every image witness in the record, in IRI order (nodes that cannot be read are left out).
pub fn catalog(ds: &Dataset) -> Vec<Entry> {
    let idx = ds.index();
    let mut verifications: HashMap<String, Vec<Verification>> = HashMap::new();
    for a in idx.subjects_of_type(RTM_DIGEST_MATCH_ASSERTION) {
        let Some(subject) = iri(&idx, a, EARL_SUBJECT) else { continue };
        verifications.entry(subject).or_default().push(verification(&idx, a));
    }
    let mut runs: HashMap<String, Vec<Run>> = HashMap::new();
    for c in idx.subjects_of_type(RTM_DOCKER_CONTAINER) {
        let Some(image) = iri(&idx, c, PROV_WAS_DERIVED_FROM) else { continue };
        runs.entry(image).or_default().push(Run {
            iri: c.as_iri().unwrap_or_default().to_owned(),
            id: literal(&idx, c, RTM_CONTAINER_ID).unwrap_or_default(),
            at: literal(&idx, c, PROV_GENERATED_AT_TIME).and_then(|t| Timestamp::parse_xsd(&t)),
            location: iri(&idx, c, PROV_AT_LOCATION),
            operator: iri(&idx, c, PROV_WAS_ATTRIBUTED_TO),
        });
    }
    idx.subjects_of_type(RTM_DOCKER_IMAGE)
        .into_iter()
        .filter_map(|s| ImageWitness::from_index(&idx, s).ok())
        .map(|witness| {
            let mut v = verifications.remove(&witness.iri).unwrap_or_default();
            v.sort_by(|a, b| (a.at, &a.iri).cmp(&(b.at, &b.iri)));
            let mut r = runs.remove(&witness.iri).unwrap_or_default();
            r.sort_by(|a, b| (a.at, &a.iri).cmp(&(b.at, &b.iri)));
            Entry { witness, verifications: v, runs: r }
        })
        .collect()
}

fn verification(idx: &Index, a: &Term) -> Verification {
    let result = idx.object(a, EARL_RESULT);
    let from_result = |p: &str| result.and_then(|r| literal(idx, r, p));
    Verification {
        iri: a.as_iri().unwrap_or_default().to_owned(),
        passed: iri(idx, a, EARL_OUTCOME).as_deref() == Some(EARL_PASSED),
        at: literal(idx, a, PROV_AT_TIME).and_then(|t| Timestamp::parse_xsd(&t)),
        method: from_result(RTM_VERIFICATION_METHOD),
        description: from_result(DCTERMS_DESCRIPTION),
        observed: from_result(RTM_OBSERVED_DIGEST),
    }
}

fn iri(idx: &Index, s: &Term, p: &str) -> Option<String> {
    idx.objects(s, p).into_iter().find_map(|t| t.as_iri().map(str::to_owned))
}

fn literal(idx: &Index, s: &Term, p: &str) -> Option<String> {
    idx.objects(s, p).into_iter().find_map(|t| t.as_literal().map(str::to_owned))
}

fn time(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_xsd()))
}

/// A verification as JSON.
pub fn verification_json(v: &Verification) -> Value {
    json!({
        "assertion": v.iri,
        "outcome": if v.passed { "passed" } else { "failed" },
        "time": time(v.at),
        "method": v.method,
        "observedDigest": v.observed,
        "description": v.description,
    })
}

/// The `list --json` object of one witness.
pub fn summary_json(e: &Entry) -> Value {
    let w = &e.witness;
    json!({
        "image": w.iri,
        "digest": w.content_hash.as_str(),
        "label": w.labels.first(),
        "commit": w.commit(),
        "gitRef": w.git_ref,
        "generatedAtTime": time(w.generated_at),
        "latestVerification": e.latest().map(verification_json),
        "verifications": e.verifications.len(),
        "runs": e.runs.len(),
    })
}

/// The `show --json` object of one witness: the whole chain.
pub fn detail_json(e: &Entry) -> Value {
    let w = &e.witness;
    json!({
        "schema": SHOW_SCHEMA,
        "image": w.iri,
        "digest": w.content_hash.as_str(),
        "labels": w.labels,
        "commit": w.commit(),
        "gitRef": w.git_ref,
        "generatedAtTime": time(w.generated_at),
        "inputs": {
            "dockerfileHash": w.dockerfile_hash,
            "buildContextHash": w.build_context_hash,
            "buildContextPath": w.context_path,
            "baseImageDigest": w.base_image_digest.as_ref().map(|d| d.as_str()),
        },
        "sourceDateEpoch": w.source_date_epoch,
        "normalizer": w.normalizer,
        "layers": w.layers.iter().map(|l| json!({ "diffId": l.diff_id.as_str(), "createdBy": l.created_by })).collect::<Vec<_>>(),
        "registryRef": w.registry_ref,
        "flexoRecord": w.flexo_record,
        "verifications": e.verifications.iter().map(verification_json).collect::<Vec<_>>(),
        "runs": e.runs.iter().map(|r| json!({
            "container": r.iri, "containerId": r.id, "time": time(r.at), "location": r.location, "operator": r.operator,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::witness::{Assertion, Container, Method};

    fn witness(c: char) -> ImageWitness {
        ImageWitness::sample(c)
    }

    #[test]
    fn verifications_and_runs_join_their_images() {
        let (a, b) = (witness('a'), witness('b'));
        let mut ds = Dataset::new();
        ds.extend(a.to_quads());
        ds.extend(b.to_quads());
        for (secs, passed, method) in [(10, false, Method::Rebuild), (20, true, Method::Pull)] {
            let assertion = Assertion {
                image_iri: a.iri.clone(),
                passed,
                at: Timestamp::from_secs(1_700_000_000 + secs),
                method,
                observed: None,
                description: "d".into(),
            };
            let (_, quads) = assertion.to_quads(&ds);
            ds.extend(quads);
        }
        let run = Container {
            id: "c".repeat(64),
            image_iri: a.iri.clone(),
            operator: DEFAULT_OPERATOR.into(),
            host: "op-1".into(),
            started: Timestamp::from_secs(1_700_000_100),
        };
        ds.extend(run.to_quads());
        let cat = catalog(&ds);
        assert_eq!(cat.len(), 2);
        let ea = &cat[0];
        assert_eq!(ea.witness.iri, a.iri);
        assert_eq!(ea.verifications.len(), 2);
        let latest = ea.latest().unwrap();
        assert!(latest.passed);
        assert_eq!(latest.method.as_deref(), Some("pull"));
        assert_eq!(ea.runs[0].location.as_deref(), Some("urn:adcs:location:docker:op-1"));
        assert!(cat[1].verifications.is_empty() && cat[1].runs.is_empty());
        assert_eq!(summary_json(ea)["commit"], "2".repeat(40));
        assert_eq!(detail_json(ea)["runs"][0]["containerId"], "c".repeat(64));
    }
}
