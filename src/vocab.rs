//! The IRIs of the witness record: the demo's vocabulary (a compatibility contract) and our
//! additive extensions, in one place so that no other module spells an IRI.

pub const RTM: &str = "http://example.org/ontology/rtm#";
pub const PROV: &str = "http://www.w3.org/ns/prov#";
pub const EARL: &str = "http://www.w3.org/ns/earl#";
pub const DCTERMS: &str = "http://purl.org/dc/terms/";
pub const XSD: &str = "http://www.w3.org/2001/XMLSchema#";

pub const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";
pub const RDF_LANG_STRING: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString";
pub const XSD_STRING: &str = "http://www.w3.org/2001/XMLSchema#string";
pub const XSD_DATETIME: &str = "http://www.w3.org/2001/XMLSchema#dateTime";
pub const XSD_ANYURI: &str = "http://www.w3.org/2001/XMLSchema#anyURI";
pub const XSD_INTEGER: &str = "http://www.w3.org/2001/XMLSchema#integer";

/// The named graph of image and container witnesses (Flexo branch `evidence`).
pub const EVIDENCE_GRAPH: &str = "http://example.org/adcs-demo/graph/evidence";
/// The named graph of reproduction assertions (Flexo branch `audit`).
pub const AUDIT_GRAPH: &str = "http://example.org/adcs-demo/graph/audit";

/// IRI prefixes of the nodes we mint.
pub const IMAGE_IRI_PREFIX: &str = "urn:adcs:docker-image:";
pub const ASSERTION_IRI_PREFIX: &str = "urn:adcs:assertion:digest-match-";
pub const REPRODUCTION_TEST: &str = "urn:adcs:test:image-digest-reproduction";
pub const REPRODUCE_AGENT: &str = "urn:adcs:agent:reproduce-cli";
pub const CONTAINER_IRI_PREFIX: &str = "urn:adcs:docker-container:";
pub const LOCATION_IRI_PREFIX: &str = "urn:adcs:location:docker:";
/// The operating organisation when `ADCS_OPERATING_ORG_IRI` is not set.
pub const DEFAULT_OPERATOR: &str = "urn:adcs:org:local-operator";

macro_rules! terms {
    ($ns:literal; $($name:ident = $local:literal),* $(,)?) => {
        $(pub const $name: &str = concat!($ns, $local);)*
    };
}

// The demo's vocabulary.
terms!("http://example.org/ontology/rtm#";
    RTM_DOCKER_IMAGE = "DockerImage",
    RTM_DOCKER_CONTAINER = "DockerContainer",
    RTM_DIGEST_MATCH_ASSERTION = "DigestMatchAssertion",
    RTM_CONTENT_HASH = "contentHash",
    RTM_IMAGE_LABEL = "imageLabel",
    RTM_BASE_IMAGE_DIGEST = "baseImageDigest",
    RTM_DOCKERFILE_HASH = "dockerfileHash",
    RTM_BUILD_CONTEXT_HASH = "buildContextHash",
    RTM_GIT_REF = "gitRef",
    RTM_FLEXO_RECORD = "flexoRecord",
    RTM_CONTAINER_ID = "containerId",
    RTM_REGISTRY_REF = "registryRef",
);

// Ours: additive properties that the demo's queries ignore.
terms!("http://example.org/ontology/rtm#";
    RTM_BUILD_CONTEXT_PATH = "buildContextPath",
    RTM_SOURCE_DATE_EPOCH = "sourceDateEpoch",
    RTM_NORMALIZER = "normalizer",
    RTM_LAYER = "layer",
    RTM_LAYER_INDEX = "layerIndex",
    RTM_DIFF_ID = "diffId",
    RTM_CREATED_BY = "createdBy",
    RTM_OBSERVED_DIGEST = "observedDigest",
    RTM_VERIFICATION_METHOD = "verificationMethod",
);

terms!("http://www.w3.org/ns/prov#";
    PROV_ENTITY = "Entity",
    PROV_ACTIVITY = "Activity",
    PROV_LOCATION = "Location",
    PROV_GENERATED_AT_TIME = "generatedAtTime",
    PROV_WAS_ASSOCIATED_WITH = "wasAssociatedWith",
    PROV_AT_TIME = "atTime",
    PROV_WAS_DERIVED_FROM = "wasDerivedFrom",
    PROV_WAS_ATTRIBUTED_TO = "wasAttributedTo",
    PROV_AT_LOCATION = "atLocation",
);

terms!("http://www.w3.org/ns/earl#";
    EARL_ASSERTION = "Assertion",
    EARL_TEST_RESULT = "TestResult",
    EARL_SUBJECT = "subject",
    EARL_TEST = "test",
    EARL_OUTCOME = "outcome",
    EARL_PASSED = "passed",
    EARL_FAILED = "failed",
    EARL_MODE = "mode",
    EARL_AUTOMATIC = "automatic",
    EARL_RESULT = "result",
);

pub const DCTERMS_DESCRIPTION: &str = "http://purl.org/dc/terms/description";

/// Flexo MMS terms in the bodies we PUT (`flexo-layer1.md` §1): an org's or repo's title, and the
/// ref a new branch starts from.
pub const DCTERMS_TITLE: &str = "http://purl.org/dc/terms/title";
pub const MMS_REF: &str = "https://mms.openmbee.org/rdf/ontology/ref";
