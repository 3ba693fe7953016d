//! The registry path against a real registry (Debian's docker-registry on a loopback port): push
//! after materialize, record rtm:registryRef, and verify by pulling by digest.

use crate::support::*;

const REGISTRY_REFS: &str = "SELECT ?r WHERE { GRAPH ?g { ?i rtm:registryRef ?r FILTER(datatype(?r) = xsd:anyURI) } }";
const METHODS: &str =
    "SELECT ?m ?o WHERE { GRAPH ?g { ?a earl:result ?x . ?x rtm:verificationMethod ?m ; earl:outcome ?o } }";

/// Materializes a scratch recipe with `--registry`; returns (env, materialize JSON).
fn pushed(registry: &RegistryServer, payload: &str, env: &[(&str, &str)]) -> (TestEnv, Done) {
    require_docker();
    let t = TestEnv::new();
    let repo = scratch_repo(t.join("sample"), payload);
    let mut run = t.rtm(["materialize", "--repo", repo.path_str(), "--registry", &registry.host(), "--json"]);
    for (k, v) in env {
        run = run.env(k, v);
    }
    (t, run.run())
}

/// Removes every local copy of an image: its id with all its tags.
fn forget(digest: &str) {
    remove_images(&[digest]);
    assert_eq!(image_id(digest), None, "the image is still local");
}

#[test]
fn push_then_pull_verify_after_every_local_copy_is_removed() {
    let registry = RegistryServer::start(None);
    let (t, done) = pushed(&registry, "pushed\n", &[]);
    let json = done.success().json();
    let digest = json["digest"].as_str().unwrap().to_owned();
    let reference = json["registryRef"].as_str().unwrap().to_owned();
    assert!(reference.starts_with(&format!("{}/adcs-demo/lifecycle@sha256:", registry.host())), "{reference}");
    assert_eq!(Record::load(t.join("output/rtm.trig")).values(REGISTRY_REFS, "r"), std::slice::from_ref(&reference));

    forget(&digest);
    forget(json["builtDigest"].as_str().unwrap());
    let out = t.rtm(["reproduce", "--image-digest", &digest, "--pull", "--json"]).run().success().json();
    assert_eq!(out["method"], "pull");
    assert_eq!(out["rebuiltDigest"], digest.as_str());
    let rows = Record::load(t.join("output/rtm.trig")).select(METHODS);
    assert_eq!((rows[0]["m"].as_str(), rows[0]["o"].as_str()), ("pull", "http://www.w3.org/ns/earl#passed"));
    forget(&digest);
}

#[test]
fn retagging_the_same_tag_does_not_fool_pull_verify() {
    let registry = RegistryServer::start(None);
    let (t, done) = pushed(&registry, "original\n", &[]);
    let json = done.success().json();
    let digest = json["digest"].as_str().unwrap().to_owned();
    let label = json["label"].as_str().unwrap();
    let tag = label.rsplit_once(':').unwrap().1;
    // Someone pushes another image under the same registry tag.
    let mut other = Repo::init(t.join("other"));
    other.write("compute/Dockerfile", SCRATCH_DOCKERFILE).write("app/x", "impostor\n");
    other.commit("impostor");
    let impostor =
        t.rtm(["materialize", "--repo", other.path_str(), "--record", "other.trig", "--json"]).run().success().json();
    let remote = format!("{}/adcs-demo/lifecycle:{tag}", registry.host());
    sh("docker", &["tag", impostor["digest"].as_str().unwrap(), &remote], t.path());
    sh("docker", &["push", &remote], t.path());
    forget(&digest);
    let out = t.rtm(["reproduce", "--image-digest", &digest, "--pull", "--json"]).run().success().json();
    assert_eq!(out["rebuiltDigest"], digest.as_str(), "the pull is by digest, not by tag");
    forget(&digest);
    forget(impostor["digest"].as_str().unwrap());
}

#[test]
fn a_registry_ref_to_another_image_fails_with_exit_1() {
    let registry = RegistryServer::start(None);
    let (t, done) = pushed(&registry, "first\n", &[]);
    let first = done.success().json();
    let mut repo2 = Repo::init(t.join("second"));
    repo2.write("compute/Dockerfile", SCRATCH_DOCKERFILE).write("app/y", "second\n");
    repo2.commit("second");
    let second = t
        .rtm([
            "materialize",
            "--repo",
            repo2.path_str(),
            "--registry",
            &registry.host(),
            "--record",
            "second.trig",
            "--json",
        ])
        .run()
        .success()
        .json();
    // The first witness now names the second image's manifest.
    let path = t.join("output/rtm.trig");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace(first["registryRef"].as_str().unwrap(), second["registryRef"].as_str().unwrap()),
    )
    .unwrap();
    let out =
        t.rtm(["reproduce", "--image-digest", first["digest"].as_str().unwrap(), "--pull"]).run().code_is(1).stdout();
    assert!(out.starts_with("FAIL") && out.contains(second["digest"].as_str().unwrap()), "{out}");
    let rows = Record::load(&path).select(METHODS);
    assert_eq!((rows[0]["m"].as_str(), rows[0]["o"].as_str()), ("pull", "http://www.w3.org/ns/earl#failed"));
}

#[test]
fn htpasswd_registry_takes_the_token_from_the_environment() {
    let registry = RegistryServer::start(Some(("operator", "s3cret-token")));
    // RTM_REGISTRY_TOKEN, then the FLEXO_TOKEN fallback (one credential for both remotes).
    let (t, done) =
        pushed(&registry, "authed\n", &[("RTM_REGISTRY_USER", "operator"), ("RTM_REGISTRY_TOKEN", "s3cret-token")]);
    let done = done.success();
    assert!(!done.stderr().contains("s3cret-token") && !done.stdout().contains("s3cret-token"));
    let json = done.json();
    let (_t2, done2) =
        pushed(&registry, "authed two\n", &[("RTM_REGISTRY_USER", "operator"), ("FLEXO_TOKEN", "s3cret-token")]);
    done2.success();
    let digest = json["digest"].as_str().unwrap().to_owned();
    forget(&digest);
    t.rtm(["reproduce", "--image-digest", &digest, "--registry", &registry.host()])
        .env("RTM_REGISTRY_USER", "operator")
        .env("RTM_REGISTRY_TOKEN", "s3cret-token")
        .run()
        .success();
    // ~/.docker/config.json is not touched: the login lived in a temporary configuration.
    let home = std::env::var("HOME").unwrap_or_default();
    let config = std::fs::read_to_string(format!("{home}/.docker/config.json")).unwrap_or_default();
    assert!(!config.contains(&registry.host()), "our login leaked into the user's docker config");

    // Without credentials: the push fails cleanly, the witness is local without a registryRef.
    let (t3, done3) = pushed(&registry, "no credentials\n", &[]);
    done3.code_is(2).stderr_has("has no rtm:registryRef");
    let record = Record::load(t3.join("output/rtm.trig"));
    assert_eq!(record.values("SELECT ?i WHERE { GRAPH ?g { ?i a rtm:DockerImage } }", "i").len(), 1);
    assert!(record.values(REGISTRY_REFS, "r").is_empty());
}

#[test]
fn a_registry_that_is_down_gives_exit_2_and_keeps_the_local_witness() {
    let mut registry = RegistryServer::start(None);
    registry.stop();
    let (t, done) = pushed(&registry, "nobody listens\n", &[]);
    done.code_is(2).stderr_has("pushing to").stderr_has("has no rtm:registryRef");
    let record = Record::load(t.join("output/rtm.trig"));
    assert_eq!(record.values("SELECT ?i WHERE { GRAPH ?g { ?i a rtm:DockerImage } }", "i").len(), 1);
    assert!(record.values(REGISTRY_REFS, "r").is_empty());
    // Asked to pull, a witness without registryRef is an exit-2 error that says so.
    let digest =
        Record::load(t.join("output/rtm.trig")).values("SELECT ?h WHERE { GRAPH ?g { ?i rtm:contentHash ?h } }", "h");
    t.rtm(["reproduce", "--image-digest", &digest[0], "--pull"])
        .run()
        .code_is(2)
        .stderr_has("has no rtm:registryRef to pull");
}
