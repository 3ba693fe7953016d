//! Flexo MMS as the witness remote, against the test double (a real SPARQL engine behind the
//! Layer 1 API): write, read back from elsewhere, provision, push later, and every fault.

use std::time::Duration;

use crate::support::flexo::{Fault, FlexoDouble};
use crate::support::*;

const ORG: &str = "adcs-demo";
const REPO: &str = "lifecycle";

/// A run with the Flexo settings of `d` (token from /login with the default user).
fn with_flexo(run: Run, d: &FlexoDouble) -> Run {
    run.env("FLEXO_URL", d.url())
        .env("FLEXO_AUTH_URL", d.auth_url())
        .env("FLEXO_TIMEOUT", "5")
        .env("FLEXO_PROBE_TIMEOUT", "2")
}

/// The values of `?v` in a SELECT run directly on the double's store.
fn values(d: &FlexoDouble, branch: &str, sparql: &str) -> Vec<String> {
    let json = d.query(ORG, REPO, branch, &format!("{PREFIXES}{sparql}"));
    let mut v: Vec<String> = json["results"]["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["v"]["value"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

fn initialised(t: &TestEnv) -> FlexoDouble {
    let d = FlexoDouble::start();
    with_flexo(t.rtm(["flexo", "init"]), &d).run().success();
    d
}

#[test]
fn init_is_safe_to_run_twice() {
    let t = TestEnv::new();
    let d = FlexoDouble::start();
    let first = with_flexo(t.rtm(["flexo", "init"]), &d).run().success().stdout();
    assert_eq!(first, "org     adcs-demo (created)\nrepo    lifecycle (created)\nmaster  ok\n");
    let second = with_flexo(t.rtm(["flexo", "init"]), &d).run().success().stdout();
    assert_eq!(second, "org     adcs-demo (found)\nrepo    lifecycle (found)\nmaster  ok\n");
    let puts = d.requests().iter().filter(|r| r.method == "PUT").count();
    assert_eq!(puts, 2, "one PUT for the org and one for the repo, none on the second run");
}

#[test]
fn round_trip_materialize_to_flexo_then_reproduce_elsewhere_from_flexo() {
    require_docker();
    let t = TestEnv::new();
    let d = initialised(&t);
    let repo = scratch_repo(t.join("sample"), "flexo round trip\n");
    let json =
        with_flexo(t.rtm(["materialize", "--repo", repo.path_str(), "--flexo", "--json"]), &d).run().success().json();
    let digest = json["digest"].as_str().unwrap().to_owned();
    assert_eq!(json["flexoRecord"], "urn:adcs:flexo:adcs-demo/lifecycle/evidence");
    assert_eq!(values(&d, "evidence", "SELECT ?v WHERE { ?i rtm:contentHash ?v }"), std::slice::from_ref(&digest));
    assert_eq!(d.commit_count(ORG, REPO, "evidence"), 1, "the witness went in one update");
    let local = Record::load(t.join("output/rtm.trig"));
    assert_eq!(local.values("SELECT ?f WHERE { GRAPH ?g { ?i rtm:flexoRecord ?f } }", "f").len(), 1);

    // Another directory, no local record: the witness comes from Flexo, the assertion goes back.
    let elsewhere = t.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = with_flexo(
        t.rtm([
            "reproduce",
            "--image-digest",
            &digest[7..20],
            "--from-flexo",
            "--flexo",
            "--repo",
            repo.path_str(),
            "--json",
        ]),
        &d,
    )
    .cwd(&elsewhere)
    .run()
    .success()
    .json();
    assert_eq!(out["outcome"], "passed");
    let outcomes =
        values(&d, "audit", "SELECT ?v WHERE { ?a a rtm:DigestMatchAssertion ; earl:outcome ?v ; earl:subject ?i }");
    assert_eq!(outcomes, ["http://www.w3.org/ns/earl#passed"]);
    assert!(elsewhere.join("output/rtm.trig").exists(), "the assertion is also kept locally");

    // list and show read both branches back.
    let listed = with_flexo(t.rtm(["list", "--from-flexo", "--json"]), &d).cwd(&elsewhere).run().success().json();
    assert_eq!(listed["witnesses"][0]["digest"], digest.as_str());
    assert_eq!(listed["witnesses"][0]["latestVerification"]["outcome"], "passed");
    let shown =
        with_flexo(t.rtm(["show", &digest, "--from-flexo", "--json"]), &d).cwd(&elsewhere).run().success().json();
    assert_eq!(shown["flexoRecord"], "urn:adcs:flexo:adcs-demo/lifecycle/evidence");
    assert_eq!(shown["verifications"].as_array().unwrap().len(), 1);
}

#[test]
fn special_characters_survive_the_round_trip() {
    let t = TestEnv::new();
    let d = initialised(&t);
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/demo-rdflib.trig");
    std::fs::copy(fixture, t.join("demo.trig")).unwrap();
    let out = with_flexo(t.rtm(["flexo", "push", "--record", "demo.trig", "--json"]), &d).run().success().json();
    assert_eq!(out["branches"][0]["sent"], 2);
    let labels = values(&d, "evidence", "SELECT ?v WHERE { ?i rtm:imageLabel ?v }");
    assert_eq!(labels, ["adcs-compute:latest", "scratch \"quoted\" \\ label\nsecond line: é"]);
    // Pushing again sends nothing: the push is idempotent.
    // The demo's container, with its host, went too, and its assertion.
    assert_eq!(out["branches"][1]["sent"], 1);
    assert_eq!(
        values(&d, "evidence", "SELECT ?v WHERE { ?c prov:atLocation ?v . ?v a prov:Location }"),
        ["urn:adcs:location:docker:operator-1"]
    );
    assert_eq!(out["branches"][2]["sent"], 1);
    let again = with_flexo(t.rtm(["flexo", "push", "--record", "demo.trig", "--json"]), &d).run().success().json();
    let sent: Vec<u64> = again["branches"].as_array().unwrap().iter().map(|b| b["sent"].as_u64().unwrap()).collect();
    assert_eq!(sent, [0, 0, 0]);
}

/// Every fault: the tool exits 2 with the documented message, the local record holds the
/// witness, and `flexo push` sends it once Flexo is back.
#[test]
fn every_fault_keeps_the_local_record_and_push_recovers() {
    require_docker();
    let t = TestEnv::new();
    let d = initialised(&t);
    let repo = scratch_repo(t.join("sample"), "faults\n");
    let cases: [(Fault, &str); 5] = [
        (Fault::Down, "connection"),
        (Fault::Slow(Duration::from_secs(8)), "FLEXO_TIMEOUT"),
        (Fault::Unauthorized, "FLEXO_"),
        (Fault::Conflict, "Another transaction is in progress"),
        (Fault::ServerError, "500"),
    ];
    for (i, (fault, expect)) in cases.into_iter().enumerate() {
        let record = format!("r{i}.trig");
        d.set_fault(fault.clone());
        let done = with_flexo(t.rtm(["materialize", "--repo", repo.path_str(), "--record", &record, "--flexo"]), &d)
            .run()
            .code_is(2);
        let err = done.stderr();
        assert!(
            err.contains("is safe in") && err.contains(&format!("rtm-compute flexo push --record {record}")),
            "{fault:?}: {err}"
        );
        assert!(err.to_lowercase().contains(&expect.to_lowercase()), "{fault:?}: expected {expect:?} in {err}");
        assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1, "one error line: {err}");
        let local = Record::load(t.join(&record));
        assert_eq!(local.values("SELECT ?h WHERE { GRAPH ?g { ?i rtm:contentHash ?h } }", "h").len(), 1, "{fault:?}");
        d.set_fault(Fault::None);
    }
    // Back in service: the witness lands once, and a second push sends nothing.
    let out = with_flexo(t.rtm(["flexo", "push", "--record", "r0.trig", "--json"]), &d).run().success().json();
    let sent = out["branches"][0]["sent"].as_u64().unwrap();
    assert!(sent <= 1, "{out}");
    assert_eq!(values(&d, "evidence", "SELECT ?v WHERE { ?i rtm:contentHash ?v }").len(), 1);
    let again = with_flexo(t.rtm(["flexo", "push", "--record", "r0.trig", "--json"]), &d).run().success().json();
    assert_eq!(again["branches"][0]["sent"], 0);
}

#[test]
fn the_token_appears_nowhere() {
    require_docker();
    let t = TestEnv::new();
    let d = initialised(&t);
    let token = d.issue_token("user01");
    d.clear_requests();
    let repo = scratch_repo(t.join("sample"), "token\n");
    let log = t.join("children.log");
    let real = sh("sh", &["-c", "command -v docker"], t.path());
    let shim = t.join("docker-shim");
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\ntr '\\0' ' ' < /proc/$$/cmdline >> '{l}'\necho >> '{l}'\nenv >> '{l}'\nexec '{real}' \"$@\"\n",
            l = log.display()
        ),
    )
    .unwrap();
    sh("chmod", &["+x", shim.to_str().unwrap()], t.path());
    let done = with_flexo(t.rtm(["-v", "materialize", "--repo", repo.path_str(), "--flexo", "--json"]), &d)
        .env("FLEXO_TOKEN", &token)
        .env("DOCKER", &shim)
        .run()
        .success();
    assert!(!done.stdout().contains(&token) && !done.stderr().contains(&token), "the token was printed");
    assert!(!std::fs::read_to_string(&log).unwrap().contains(&token), "a child saw the token");
    assert!(d.requests().iter().all(|r| !r.path.contains(&token) && !r.body.contains(&token)));
    assert!(d.requests().iter().all(|r| r.path != "/login"), "FLEXO_TOKEN is used as it is");
    // An expired token: one line that says what to do, without the token.
    d.expire_tokens();
    let err = with_flexo(t.rtm(["reproduce", "--image-digest", "sha256:", "--from-flexo"]), &d)
        .env("FLEXO_TOKEN", &token)
        .run()
        .code_is(2)
        .stderr();
    assert!(err.contains("FLEXO_TOKEN") && !err.contains(&token), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn doctor_names_each_failing_piece() {
    let t = TestEnv::new();
    let d = initialised(&t);
    let ok = with_flexo(t.rtm(["doctor"]), &d).run();
    let text = ok.stdout();
    if docker_is_up() {
        assert_eq!(ok.code(), Some(0), "{text}");
        assert!(text.contains("ok    flexo"), "{text}");
    }
    d.set_fault(Fault::Unauthorized);
    let bad = with_flexo(t.rtm(["doctor", "--docker-cmd", "rtm-no-such-docker"]), &d).run().code_is(2).stdout();
    assert!(bad.contains("ok    git"), "{bad}");
    assert!(bad.contains("FAIL  docker    `rtm-no-such-docker` not found on PATH"), "{bad}");
    assert!(bad.contains("FAIL  flexo"), "{bad}");
    let down = t.rtm(["doctor", "--registry", "127.0.0.1:9"]).run().code_is(2).stdout();
    assert!(down.contains("FAIL  registry"), "{down}");
}
