//! The witness model: an image node (`rtm:DockerImage`) and a reproduction assertion
//! (`rtm:DigestMatchAssertion`), mapped to and from quads.
//!
//! Invariant: what [`ImageWitness::to_quads`] writes is exactly the layout of
//! `witness-record.md`, plus only additive properties of ours; what the demo writes,
//! [`ImageWitness::from_index`] reads, from whichever graph it sits in.

use std::fmt;

use crate::docker::ImageDigest;
use crate::record::{Dataset, Index, Quad, Term};
use crate::time::Timestamp;
use crate::vocab::*;

/// One layer of a witnessed image, with the history instruction that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub diff_id: ImageDigest,
    pub created_by: String,
}

/// The witness of one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageWitness {
    pub iri: String,
    pub content_hash: ImageDigest,
    pub labels: Vec<String>,
    pub base_image_digest: Option<ImageDigest>,
    pub dockerfile_hash: Option<String>,
    pub build_context_hash: Option<String>,
    pub generated_at: Option<Timestamp>,
    /// The raw `rtm:gitRef` text; parsed (and validated) only where it is used.
    pub git_ref: Option<String>,
    /// Ours: the build context relative to the repository root, when it is not the root.
    pub context_path: Option<String>,
    /// Ours: the `SOURCE_DATE_EPOCH` the image was normalised to.
    pub source_date_epoch: Option<i64>,
    /// Ours: the normaliser (name and version) that produced the image.
    pub normalizer: Option<String>,
    /// Ours: the ordered layers.
    pub layers: Vec<Layer>,
    pub registry_ref: Option<String>,
    pub flexo_record: Option<String>,
}

impl ImageWitness {
    /// `urn:adcs:docker-image:sha256-<hex>`.
    pub fn iri_for(digest: &ImageDigest) -> String {
        format!("{IMAGE_IRI_PREFIX}{}", digest.as_str().replace(':', "-"))
    }

    /// The quads of this witness, in the evidence graph.
    pub fn to_quads(&self) -> Vec<Quad> {
        let g = Some(EVIDENCE_GRAPH);
        let s = Term::iri(&self.iri);
        let mut q = vec![
            Quad::new(g, &s, RDF_TYPE, Term::iri(RTM_DOCKER_IMAGE)),
            Quad::new(g, &s, RDF_TYPE, Term::iri(PROV_ENTITY)),
            Quad::new(g, &s, RTM_CONTENT_HASH, Term::string(self.content_hash.as_str())),
        ];
        for label in &self.labels {
            q.push(Quad::new(g, &s, RTM_IMAGE_LABEL, Term::string(label)));
        }
        if let Some(d) = &self.base_image_digest {
            q.push(Quad::new(g, &s, RTM_BASE_IMAGE_DIGEST, Term::string(d.as_str())));
        }
        if let Some(h) = &self.dockerfile_hash {
            q.push(Quad::new(g, &s, RTM_DOCKERFILE_HASH, Term::string(h)));
        }
        if let Some(h) = &self.build_context_hash {
            q.push(Quad::new(g, &s, RTM_BUILD_CONTEXT_HASH, Term::string(h)));
        }
        if let Some(t) = self.generated_at {
            q.push(Quad::new(g, &s, PROV_GENERATED_AT_TIME, Term::typed(t.to_xsd(), XSD_DATETIME)));
        }
        if let Some(r) = &self.git_ref {
            q.push(Quad::new(g, &s, RTM_GIT_REF, Term::typed(r, XSD_ANYURI)));
        }
        if let Some(c) = &self.context_path {
            q.push(Quad::new(g, &s, RTM_BUILD_CONTEXT_PATH, Term::string(c)));
        }
        if let Some(e) = self.source_date_epoch {
            q.push(Quad::new(g, &s, RTM_SOURCE_DATE_EPOCH, Term::typed(e.to_string(), XSD_INTEGER)));
        }
        if let Some(n) = &self.normalizer {
            q.push(Quad::new(g, &s, RTM_NORMALIZER, Term::string(n)));
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let node = Term::iri(format!("{}#layer-{i}", self.iri));
            q.push(Quad::new(g, &s, RTM_LAYER, node.clone()));
            q.push(Quad::new(g, &node, RTM_LAYER_INDEX, Term::typed(i.to_string(), XSD_INTEGER)));
            q.push(Quad::new(g, &node, RTM_DIFF_ID, Term::string(layer.diff_id.as_str())));
            q.push(Quad::new(g, &node, RTM_CREATED_BY, Term::string(&layer.created_by)));
        }
        if let Some(r) = &self.registry_ref {
            q.push(Quad::new(g, &s, RTM_REGISTRY_REF, Term::typed(r, XSD_ANYURI)));
        }
        if let Some(f) = &self.flexo_record {
            q.push(Quad::new(g, &s, RTM_FLEXO_RECORD, Term::iri(f)));
        }
        q
    }

    /// The commit the gitRef names, when it names one.
    pub fn commit(&self) -> Option<String> {
        let r = crate::gitref::GitRef::parse(self.git_ref.as_deref()?).ok()?;
        r.commit.map(|c| c.to_string())
    }

    /// Reads the image node `subject` from a record (union of all graphs).
    pub fn from_index(idx: &Index, subject: &Term) -> Result<ImageWitness, WitnessError> {
        let iri = subject.as_iri().unwrap_or_default().to_owned();
        let literals = |p: &str| -> Vec<String> {
            idx.objects(subject, p)
                .into_iter()
                .filter_map(|t| t.as_literal().or(t.as_iri()).map(str::to_owned))
                .collect()
        };
        let single = |p: &str, name: &'static str| -> Result<Option<String>, WitnessError> {
            let mut v = literals(p);
            match v.len() {
                0 => Ok(None),
                1 => Ok(v.pop()),
                _ => Err(WitnessError::Conflicting { image: iri.clone(), property: name, values: v }),
            }
        };
        let content_hash = match single(RTM_CONTENT_HASH, "rtm:contentHash")? {
            Some(text) => ImageDigest::parse(&text).ok_or_else(|| WitnessError::BadValue {
                image: iri.clone(),
                property: "rtm:contentHash",
                value: text,
            })?,
            None => return Err(WitnessError::NoContentHash { image: iri }),
        };
        let generated_at = literals(PROV_GENERATED_AT_TIME).iter().filter_map(|t| Timestamp::parse_xsd(t)).max();
        let source_date_epoch = match single(RTM_SOURCE_DATE_EPOCH, "rtm:sourceDateEpoch")? {
            Some(t) => Some(t.parse().map_err(|_| WitnessError::BadValue {
                image: iri.clone(),
                property: "rtm:sourceDateEpoch",
                value: t,
            })?),
            None => None,
        };
        let mut layers: Vec<(i64, Layer)> = Vec::new();
        for node in idx.objects(subject, RTM_LAYER) {
            let lit = |p| idx.object(node, p).and_then(Term::as_literal);
            let (Some(i), Some(d)) =
                (lit(RTM_LAYER_INDEX).and_then(|i| i.parse().ok()), lit(RTM_DIFF_ID).and_then(ImageDigest::parse))
            else {
                continue;
            };
            layers.push((i, Layer { diff_id: d, created_by: lit(RTM_CREATED_BY).unwrap_or_default().to_owned() }));
        }
        layers.sort_by_key(|(i, _)| *i);
        Ok(ImageWitness {
            content_hash,
            labels: literals(RTM_IMAGE_LABEL),
            base_image_digest: single(RTM_BASE_IMAGE_DIGEST, "rtm:baseImageDigest")?
                .and_then(|d| ImageDigest::parse(&d)),
            dockerfile_hash: single(RTM_DOCKERFILE_HASH, "rtm:dockerfileHash")?,
            build_context_hash: single(RTM_BUILD_CONTEXT_HASH, "rtm:buildContextHash")?,
            generated_at,
            git_ref: single(RTM_GIT_REF, "rtm:gitRef")?,
            context_path: single(RTM_BUILD_CONTEXT_PATH, "rtm:buildContextPath")?,
            source_date_epoch,
            normalizer: single(RTM_NORMALIZER, "rtm:normalizer")?,
            layers: layers.into_iter().map(|(_, l)| l).collect(),
            // One per registry the image was pushed to; any of them serves a pull.
            registry_ref: literals(RTM_REGISTRY_REF).into_iter().next(),
            flexo_record: single(RTM_FLEXO_RECORD, "rtm:flexoRecord")?,
            iri,
        })
    }
}

#[cfg(test)]
impl ImageWitness {
    /// A full witness whose digest is `c` repeated, for tests: every property set, two layers (one
    /// instruction with quotes and a newline), no registry or Flexo record.
    pub fn sample(c: char) -> ImageWitness {
        let digest = |c: char| ImageDigest::parse(&c.to_string().repeat(64)).expect("hex digit");
        ImageWitness {
            iri: ImageWitness::iri_for(&digest(c)),
            content_hash: digest(c),
            labels: vec![format!("demo:{c}")],
            base_image_digest: None,
            dockerfile_hash: Some("0".repeat(64)),
            build_context_hash: Some("1".repeat(64)),
            generated_at: Some(Timestamp::from_secs(1_735_787_045)),
            git_ref: Some(format!("git+file:///r@{}#compute/Dockerfile", "2".repeat(40))),
            context_path: None,
            source_date_epoch: Some(1_735_787_045),
            normalizer: Some("rtm-compute-normalize/1".into()),
            layers: vec![
                Layer { diff_id: digest('3'), created_by: "COPY dir:x in /".into() },
                Layer { diff_id: digest('4'), created_by: "RUN echo \"hi\"\n".into() },
            ],
            registry_ref: None,
            flexo_record: None,
        }
    }
}

/// How the user names the witness to work on.
#[derive(Clone, Debug)]
pub enum Selector {
    /// A full `sha256:…` digest or any substring of one.
    Digest(String),
    /// The image node's IRI.
    Iri(String),
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Digest(d) => write!(f, "digest {d:?}"),
            Selector::Iri(i) => write!(f, "IRI <{i}>"),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum WitnessError {
    NotFound { selector: String, images: usize },
    Ambiguous { selector: String, candidates: Vec<String> },
    NoContentHash { image: String },
    Conflicting { image: String, property: &'static str, values: Vec<String> },
    BadValue { image: String, property: &'static str, value: String },
}

impl fmt::Display for WitnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WitnessError::NotFound { selector, images } => {
                write!(f, "no image witness matches {selector} (the record holds {images})")
            }
            WitnessError::Ambiguous { selector, candidates } => {
                write!(f, "{selector} matches {} image witnesses; give more of the digest:", candidates.len())?;
                for c in candidates {
                    write!(f, "\n  {c}")?;
                }
                Ok(())
            }
            WitnessError::NoContentHash { image } => {
                write!(f, "image witness <{image}> has no rtm:contentHash")
            }
            WitnessError::Conflicting { image, property, values } => {
                write!(f, "image witness <{image}> has {} values of {property}: {}", values.len(), values.join(", "))
            }
            WitnessError::BadValue { image, property, value } => {
                write!(f, "image witness <{image}> has a malformed {property}: {value:?}")
            }
        }
    }
}

impl std::error::Error for WitnessError {}

/// Picks the one image witness that `selector` names.
pub fn select(ds: &Dataset, selector: &Selector) -> Result<ImageWitness, WitnessError> {
    let idx = ds.index();
    let subjects = idx.subjects_of_type(RTM_DOCKER_IMAGE);
    let matching: Vec<&Term> = match selector {
        Selector::Iri(iri) => subjects.iter().copied().filter(|s| s.as_iri() == Some(iri.as_str())).collect(),
        Selector::Digest(d) => {
            let needle = d.to_ascii_lowercase();
            subjects
                .iter()
                .copied()
                .filter(|s| {
                    idx.objects(s, RTM_CONTENT_HASH)
                        .iter()
                        .any(|h| h.as_literal().is_some_and(|h| h.to_ascii_lowercase().contains(&needle)))
                })
                .collect()
        }
    };
    match matching.as_slice() {
        [] => Err(WitnessError::NotFound { selector: selector.to_string(), images: subjects.len() }),
        [one] => ImageWitness::from_index(&idx, one),
        many => Err(WitnessError::Ambiguous {
            selector: selector.to_string(),
            candidates: many
                .iter()
                .map(|s| {
                    let hash = idx.object(s, RTM_CONTENT_HASH).and_then(Term::as_literal).unwrap_or("?");
                    format!("{hash}  <{}>", s.as_iri().unwrap_or("?"))
                })
                .collect(),
        }),
    }
}

/// How a reproduction obtained the image it compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Rebuild,
    Pull,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Rebuild => "rebuild",
            Method::Pull => "pull",
        }
    }
}

/// The outcome of a reproduction, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assertion {
    pub image_iri: String,
    pub passed: bool,
    pub at: Timestamp,
    pub method: Method,
    /// The digest the reproduction produced, when it produced one.
    pub observed: Option<ImageDigest>,
    /// Plain words: what matched, or why it failed.
    pub description: String,
}

impl Assertion {
    /// The assertion's quads in the audit graph, under an IRI that `ds` does not use yet.
    pub fn to_quads(&self, ds: &Dataset) -> (String, Vec<Quad>) {
        let base = format!("{ASSERTION_IRI_PREFIX}{}", self.at.to_iri_fragment());
        let taken = |iri: &str| ds.iter().any(|q| q.s.as_iri() == Some(iri));
        let iri = std::iter::once(base.clone())
            .chain((2..).map(|n| format!("{base}-{n}")))
            .find(|i| !taken(i))
            .expect("an unused IRI exists");
        let g = Some(AUDIT_GRAPH);
        let s = Term::iri(&iri);
        let outcome = Term::iri(if self.passed { EARL_PASSED } else { EARL_FAILED });
        let result = Term::iri(format!("{iri}#result"));
        let mut q = vec![
            Quad::new(g, &s, RDF_TYPE, Term::iri(RTM_DIGEST_MATCH_ASSERTION)),
            Quad::new(g, &s, RDF_TYPE, Term::iri(EARL_ASSERTION)),
            Quad::new(g, &s, RDF_TYPE, Term::iri(PROV_ACTIVITY)),
            Quad::new(g, &s, EARL_SUBJECT, Term::iri(&self.image_iri)),
            Quad::new(g, &s, EARL_TEST, Term::iri(REPRODUCTION_TEST)),
            Quad::new(g, &s, EARL_OUTCOME, outcome.clone()),
            Quad::new(g, &s, EARL_MODE, Term::iri(EARL_AUTOMATIC)),
            Quad::new(g, &s, PROV_WAS_ASSOCIATED_WITH, Term::iri(REPRODUCE_AGENT)),
            Quad::new(g, &s, PROV_AT_TIME, Term::typed(self.at.to_xsd(), XSD_DATETIME)),
            Quad::new(g, &s, EARL_RESULT, result.clone()),
            Quad::new(g, &result, RDF_TYPE, Term::iri(EARL_TEST_RESULT)),
            Quad::new(g, &result, EARL_OUTCOME, outcome),
            Quad::new(g, &result, DCTERMS_DESCRIPTION, Term::string(&self.description)),
            Quad::new(g, &result, RTM_VERIFICATION_METHOD, Term::string(self.method.as_str())),
        ];
        if let Some(d) = &self.observed {
            q.push(Quad::new(g, &result, RTM_OBSERVED_DIGEST, Term::string(d.as_str())));
        }
        (iri, q)
    }
}

/// A run of a witnessed image: the `rtm:DockerContainer` node and its host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    /// The full container id.
    pub id: String,
    pub image_iri: String,
    /// The operating organisation's IRI.
    pub operator: String,
    /// The docker host's name.
    pub host: String,
    pub started: Timestamp,
}

impl Container {
    pub fn iri(&self) -> String {
        format!("{CONTAINER_IRI_PREFIX}{}", self.id)
    }

    /// The quads of the container node and its host, in the evidence graph: exactly one
    /// `prov:wasDerivedFrom` and one `rtm:containerId`, as the demo's SHACL shape requires.
    pub fn to_quads(&self) -> Vec<Quad> {
        let g = Some(EVIDENCE_GRAPH);
        let s = Term::iri(self.iri());
        let host = Term::iri(format!("{LOCATION_IRI_PREFIX}{}", self.host));
        vec![
            Quad::new(g, &s, RDF_TYPE, Term::iri(RTM_DOCKER_CONTAINER)),
            Quad::new(g, &s, RDF_TYPE, Term::iri(PROV_ENTITY)),
            Quad::new(g, &s, PROV_WAS_DERIVED_FROM, Term::iri(&self.image_iri)),
            Quad::new(g, &s, RTM_CONTAINER_ID, Term::string(&self.id)),
            Quad::new(g, &s, PROV_WAS_ATTRIBUTED_TO, Term::iri(&self.operator)),
            Quad::new(g, &s, PROV_AT_LOCATION, host.clone()),
            Quad::new(g, &s, PROV_GENERATED_AT_TIME, Term::typed(self.started.to_xsd(), XSD_DATETIME)),
            Quad::new(g, &host, RDF_TYPE, Term::iri(PROV_LOCATION)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> ImageDigest {
        ImageDigest::parse(&c.to_string().repeat(64)).unwrap()
    }

    fn witness(c: char) -> ImageWitness {
        ImageWitness::sample(c)
    }

    #[test]
    fn witness_round_trips_through_quads() {
        let w = witness('a');
        let mut ds = Dataset::new();
        ds.extend(w.to_quads());
        assert_eq!(select(&ds, &Selector::Digest("aaaa".into())).unwrap(), w);
        assert_eq!(select(&ds, &Selector::Iri(w.iri.clone())).unwrap(), w);
    }

    #[test]
    fn selection_errors() {
        let mut ds = Dataset::new();
        ds.extend(witness('a').to_quads());
        ds.extend(witness('b').to_quads());
        assert_eq!(
            select(&ds, &Selector::Digest("sha256:".into())).unwrap_err().to_string(),
            format!(
                "digest \"sha256:\" matches 2 image witnesses; give more of the digest:\n  sha256:{a}  <urn:adcs:docker-image:sha256-{a}>\n  sha256:{b}  <urn:adcs:docker-image:sha256-{b}>",
                a = "a".repeat(64),
                b = "b".repeat(64)
            )
        );
        assert_eq!(
            select(&ds, &Selector::Digest("cc".into())).unwrap_err().to_string(),
            "no image witness matches digest \"cc\" (the record holds 2)"
        );
    }

    #[test]
    fn assertion_iris_are_unique() {
        let a = Assertion {
            image_iri: witness('a').iri,
            passed: true,
            at: Timestamp { micros: 1_735_787_045_000_001 },
            method: Method::Rebuild,
            observed: Some(digest('a')),
            description: "match".into(),
        };
        let mut ds = Dataset::new();
        let (first, quads) = a.to_quads(&ds);
        assert_eq!(first, "urn:adcs:assertion:digest-match-2025-01-02T03-04-05-000001-00-00");
        ds.extend(quads);
        let (second, _) = a.to_quads(&ds);
        assert_eq!(second, format!("{first}-2"));
    }
}
