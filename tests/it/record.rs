//! The record format: what the demo (rdflib) writes we read, and what we write an independent
//! RDF engine reads back as the same quads.

use crate::support::*;

#[test]
fn a_record_we_write_parses_back_into_the_same_quads() {
    require_docker();
    let t = TestEnv::new();
    let repo = scratch_repo(t.join("sample"), "quads\n");
    let json = t
        .rtm(["materialize", "--repo", repo.path_str(), "--tag", "rtm-it/record:quads", "--json"])
        .run()
        .success()
        .json();
    let digest = json["digest"].as_str().unwrap();
    let iri = json["image"].as_str().unwrap();
    let nq = Record::load(t.join("output/rtm.trig")).nquads();
    let g = "<http://example.org/adcs-demo/graph/evidence>";
    let lit = |v: &str| format!("\"{v}\"");
    let expect = [
        format!(
            "<{iri}> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://example.org/ontology/rtm#DockerImage> {g}"
        ),
        format!("<{iri}> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://www.w3.org/ns/prov#Entity> {g}"),
        format!("<{iri}> <http://example.org/ontology/rtm#contentHash> {} {g}", lit(digest)),
        format!("<{iri}> <http://example.org/ontology/rtm#imageLabel> {} {g}", lit("rtm-it/record:quads")),
        format!(
            "<{iri}> <http://example.org/ontology/rtm#dockerfileHash> {} {g}",
            lit(json["dockerfileHash"].as_str().unwrap())
        ),
        format!(
            "<{iri}> <http://example.org/ontology/rtm#buildContextHash> {} {g}",
            lit(json["buildContextHash"].as_str().unwrap())
        ),
        format!(
            "<{iri}> <http://example.org/ontology/rtm#gitRef> \"{}\"^^<http://www.w3.org/2001/XMLSchema#anyURI> {g}",
            json["gitRef"].as_str().unwrap()
        ),
        format!(
            "<{iri}> <http://www.w3.org/ns/prov#generatedAtTime> \"{}\"^^<http://www.w3.org/2001/XMLSchema#dateTime> {g}",
            json["generatedAtTime"].as_str().unwrap()
        ),
        format!(
            "<{iri}> <http://example.org/ontology/rtm#sourceDateEpoch> \"1735787045\"^^<http://www.w3.org/2001/XMLSchema#integer> {g}"
        ),
        format!("<{iri}> <http://example.org/ontology/rtm#normalizer> {} {g}", lit("rtm-compute-normalize/1")),
        format!("<{iri}> <http://example.org/ontology/rtm#layer> <{iri}#layer-0> {g}"),
        format!(
            "<{iri}#layer-0> <http://example.org/ontology/rtm#layerIndex> \"0\"^^<http://www.w3.org/2001/XMLSchema#integer> {g}"
        ),
        format!(
            "<{iri}#layer-0> <http://example.org/ontology/rtm#diffId> {} {g}",
            lit(json["layers"][0]["diffId"].as_str().unwrap())
        ),
        format!(
            "<{iri}#layer-0> <http://example.org/ontology/rtm#createdBy> {} {g}",
            lit(json["layers"][0]["createdBy"].as_str().unwrap())
        ),
    ];
    assert!(json["layers"][0]["createdBy"].as_str().unwrap().contains("COPY dir:"), "{json}");
    let mut expect: Vec<String> = expect.into_iter().collect();
    expect.sort();
    assert_eq!(nq, expect);
    remove_images(&["rtm-it/record:quads"]);
}

#[test]
fn the_demo_record_is_read_from_every_graph() {
    let t = TestEnv::new();
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/demo-rdflib.trig");
    // The ambiguity error lists both witnesses: one in a named graph, one in the default graph.
    let done = t.rtm(["reproduce", "--image-digest", "sha256:71a5", "--from-trig", fixture]).run().code_is(2);
    let err = done.stderr();
    assert!(err.contains("urn:adcs:docker-image:sha256-71a59f23"), "{err}");
    assert!(err.contains("urn:adcs:docker-image:sha256-71a59999"), "{err}");
}
