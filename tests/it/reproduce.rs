//! `rtm-compute reproduce`: rebuild from the recorded commit, compare, record the EARL assertion,
//! and exit 0 / 1 / 2; temporary worktrees and clones never outlive the run.

use crate::support::*;

/// The demo's trust query `reproducibility_witnesses`, over the audit graph.
const WITNESSES: &str = "SELECT ?a ?img ?outcome ?time WHERE { GRAPH <http://example.org/adcs-demo/graph/audit> {
    ?a a rtm:DigestMatchAssertion, earl:Assertion, prov:Activity ; earl:subject ?img ;
       earl:test <urn:adcs:test:image-digest-reproduction> ; earl:outcome ?outcome ; earl:mode earl:automatic ;
       prov:wasAssociatedWith <urn:adcs:agent:reproduce-cli> ; prov:atTime ?time . } }";

const RESULTS: &str = "SELECT ?desc ?method ?observed WHERE { GRAPH ?g { ?a earl:result ?r . ?r a earl:TestResult ;
    dcterms:description ?desc ; rtm:verificationMethod ?method . OPTIONAL { ?r rtm:observedDigest ?observed } } }";

/// Materializes a scratch recipe and returns (env, repo, digest).
fn materialized(payload: &str) -> (TestEnv, Repo, String) {
    require_docker();
    let t = TestEnv::new();
    let repo = scratch_repo(t.join("sample"), payload);
    let json = t.rtm(["materialize", "--repo", repo.path_str(), "--json"]).run().success().json();
    let digest = json["digest"].as_str().unwrap().to_owned();
    (t, repo, digest)
}

/// A one-image record with the given contentHash and gitRef (either may be absent).
fn record_text(image: &str, content_hash: Option<&str>, git_ref: Option<&str>) -> String {
    let mut s = format!(
        "@prefix rtm: <http://example.org/ontology/rtm#> .\n@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n\
         <http://example.org/adcs-demo/graph/evidence> {{\n  <{image}> a rtm:DockerImage"
    );
    if let Some(h) = content_hash {
        s.push_str(&format!(" ;\n    rtm:contentHash \"{h}\""));
    }
    if let Some(r) = git_ref {
        s.push_str(&format!(" ;\n    rtm:gitRef \"{r}\"^^xsd:anyURI"));
    }
    s.push_str(" .\n}\n");
    s
}

#[test]
fn materialize_then_reproduce_passes_and_records_the_assertion() {
    let (t, repo, digest) = materialized("pass\n");
    let short = &digest[7..19];
    let json = t.rtm(["reproduce", "--image-digest", short, "--json"]).run().success().json();
    assert_eq!(json["outcome"], "passed");
    assert_eq!(json["rebuiltDigest"], digest.as_str());
    assert_eq!(json["inputs"]["buildContextHash"]["changed"], false);
    let record = Record::load(t.join("output/rtm.trig"));
    let rows = record.select(WITNESSES);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["outcome"], "http://www.w3.org/ns/earl#passed");
    assert_eq!(rows[0]["img"], format!("urn:adcs:docker-image:{}", digest.replace(':', "-")));
    assert_eq!(rows[0]["a"], json["assertion"].as_str().unwrap());
    let results = record.select(RESULTS);
    assert_eq!(results[0]["method"], "rebuild");
    assert_eq!(results[0]["observed"], digest);

    let text = t.rtm(["reproduce", "--image", rows[0]["img"].as_str()]).run().success().stdout();
    assert!(text.starts_with("PASS  urn:adcs:docker-image:sha256-"), "{text}");
    assert_eq!(Record::load(t.join("output/rtm.trig")).select(WITNESSES).len(), 2, "every run adds its assertion");
    repo.assert_no_extra_worktrees();
}

#[test]
fn reproduce_elsewhere_clones_the_recorded_repository_and_cleans_up() {
    let (t, repo, digest) = materialized("clone me\n");
    let elsewhere = t.join("elsewhere");
    let tmp = t.join("tmp");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    let record = t.join("output/rtm.trig");
    let done = t
        .rtm(["reproduce", "--image-digest", &digest, "--from-trig", record.to_str().unwrap(), "--json"])
        .cwd(&elsewhere)
        .env("TMPDIR", &tmp)
        .run()
        .success()
        .stderr_has("cloning file://");
    assert_eq!(done.json()["outcome"], "passed");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "temporary clones or worktrees were left behind: {left:?}");
    repo.assert_no_extra_worktrees();
}

#[test]
fn a_tampered_content_hash_fails_with_exit_1_and_an_earl_failed_assertion() {
    let (t, repo, digest) = materialized("tamper\n");
    let path = t.join("output/rtm.trig");
    let forged = format!("sha256:{}", "0".repeat(64));
    let text = std::fs::read_to_string(&path).unwrap().replace(&format!("\"{digest}\""), &format!("\"{forged}\""));
    std::fs::write(&path, text).unwrap();
    let done = t.rtm(["reproduce", "--image-digest", &forged]).run().code_is(1);
    let out = done.stdout();
    assert!(out.starts_with("FAIL"), "{out}");
    assert!(out.contains(&forged) && out.contains(&digest), "both digests are shown: {out}");
    let record = Record::load(&path);
    let rows = record.select(WITNESSES);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["outcome"], "http://www.w3.org/ns/earl#failed");
    let results = record.select(RESULTS);
    assert!(results[0]["desc"].contains("digest mismatch"), "{results:?}");
    assert!(results[0]["desc"].contains("inputs are unchanged"), "{results:?}");
    repo.assert_no_extra_worktrees();
}

#[test]
fn a_failed_rebuild_is_recorded_as_failed_with_the_reason() {
    let _ = busybox_base();
    let t = TestEnv::new();
    let mut repo = Repo::init(t.join("sample"));
    repo.write("compute/Dockerfile", &format!("FROM {BUSYBOX}\nRUN echo the recipe is broken && false\n"));
    let commit = repo.commit("broken");
    let image = format!("urn:adcs:docker-image:sha256-{}", "5".repeat(64));
    let git_ref = format!("git+file://{}@{commit}#compute/Dockerfile", repo.path_str());
    std::fs::write(
        t.join("rtm.trig"),
        record_text(&image, Some(&format!("sha256:{}", "5".repeat(64))), Some(&git_ref)),
    )
    .unwrap();
    let done = t.rtm(["reproduce", "--image", &image, "--from-trig", "rtm.trig"]).run().code_is(1);
    assert!(done.stdout().contains("rebuild failed"), "{}", done.stdout());
    let record = Record::load(t.join("rtm.trig"));
    assert_eq!(record.select(WITNESSES)[0]["outcome"], "http://www.w3.org/ns/earl#failed");
    let desc = &record.select(RESULTS)[0]["desc"];
    assert!(desc.contains("the recipe is broken"), "{desc}");
    repo.assert_no_extra_worktrees();
}

#[test]
fn assertion_goes_to_the_record_named_by_record() {
    let (t, _repo, digest) = materialized("elsewhere\n");
    let before = std::fs::read(t.join("output/rtm.trig")).unwrap();
    t.rtm(["reproduce", "--image-digest", &digest, "--record", "audit/log.trig"]).run().success();
    assert_eq!(std::fs::read(t.join("output/rtm.trig")).unwrap(), before, "the witness record is untouched");
    assert_eq!(Record::load(t.join("audit/log.trig")).select(WITNESSES).len(), 1);
}

/// Every prerequisite failure exits 2, names what was wrong, and writes nothing.
#[test]
fn prerequisite_failures_exit_2_and_write_nothing() {
    let (t, repo, digest) = materialized("prereq\n");
    let commit = repo.head();
    let record = t.join("output/rtm.trig");
    let untouched = std::fs::read(&record).unwrap();
    let check = |args: &[&str], env: &[(&str, &str)], expect: &str| {
        let mut run = t.rtm(args);
        for (k, v) in env {
            run = run.env(k, v);
        }
        run.run().code_is(2).stderr_has(expect);
        assert_eq!(std::fs::read(&record).unwrap(), untouched, "{args:?} changed the record");
    };

    check(
        &["reproduce", "--image-digest", &digest, "--docker-cmd", "/nonexistent/docker"],
        &[],
        "`/nonexistent/docker` not found on PATH",
    );
    check(
        &["reproduce", "--image-digest", &digest],
        &[("DOCKER", "rtm-no-such-docker")],
        "`rtm-no-such-docker` not found on PATH",
    );
    check(
        &["reproduce", "--image-digest", &digest],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
        "daemon is not reachable",
    );
    let not_repo = t.join("not-a-repo");
    std::fs::create_dir_all(&not_repo).unwrap();
    check(
        &["reproduce", "--image-digest", &digest, "--repo", not_repo.to_str().unwrap()],
        &[],
        "is not inside a git repository",
    );
    check(
        &["reproduce", "--image-digest", &digest, "--from-trig", "missing.trig"],
        &[],
        "record file missing.trig does not exist",
    );
    check(
        &["reproduce", "--image-digest", "ffffffffffff"],
        &[],
        "no image witness matches digest \"ffffffffffff\" (the record holds 1)",
    );
    check(
        &["reproduce", "--image", "urn:adcs:docker-image:nope"],
        &[],
        "no image witness matches IRI <urn:adcs:docker-image:nope>",
    );

    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/demo-rdflib.trig");
    check(&["reproduce", "--image-digest", "71a5", "--from-trig", fixture], &[], "matches 2 image witnesses");
    check(
        &["reproduce", "--image-digest", "71a5999", "--from-trig", fixture],
        &[],
        "cannot be reproduced: it was built outside a git repository",
    );

    let crafted = |name: &str, text: String| {
        std::fs::write(t.join(name), text).unwrap();
        name.to_owned()
    };
    let img = "urn:adcs:docker-image:crafted";
    let hash = format!("sha256:{}", "7".repeat(64));
    let bad = crafted(
        "bad.trig",
        "@prefix rtm: <http://example.org/ontology/rtm#> .\n\n<urn:a> rtm:x \"unterminated .\n".into(),
    );
    check(&["reproduce", "--image", img, "--from-trig", &bad], &[], "record bad.trig is not valid TriG: line 3");
    let no_ref = crafted("noref.trig", record_text(img, Some(&hash), None));
    check(&["reproduce", "--image", img, "--from-trig", &no_ref], &[], "the record has no rtm:gitRef");
    let no_hash =
        crafted("nohash.trig", record_text(img, None, Some(&format!("git+file:///x@{commit}#compute/Dockerfile"))));
    check(&["reproduce", "--image", img, "--from-trig", &no_hash], &[], "has no rtm:contentHash");
    for (git_ref, expect) in [
        (format!("git+ext::sh -c touch% /tmp/pwned@{commit}#compute/Dockerfile"), "is not allowed"),
        ("git+https://example.org/r@HEAD#compute/Dockerfile".to_owned(), "is not a full commit id"),
        (
            format!("git+file://{}@{commit}#../../etc/passwd", repo.path_str()),
            "is not a relative path inside the repository",
        ),
    ] {
        let f = crafted("refused.trig", record_text(img, Some(&hash), Some(&git_ref)));
        check(&["reproduce", "--image", img, "--from-trig", &f], &[], expect);
    }
    // A commit that exists nowhere: not in the local repository, nor in the recorded one.
    let other = Repo::init(t.join("other"));
    let missing = "0123456789abcdef0123456789abcdef01234567";
    let f = crafted(
        "unknown.trig",
        record_text(img, Some(&hash), Some(&format!("git+file://{}@{missing}#compute/Dockerfile", other.path_str()))),
    );
    check(
        &["reproduce", "--image", img, "--from-trig", &f, "--repo", repo.path_str()],
        &[],
        &format!("commit {missing} was not found in {}", repo.path_str()),
    );
    repo.assert_no_extra_worktrees();
}
