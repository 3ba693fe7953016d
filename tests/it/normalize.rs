//! Deterministic digests: a cold rebuild from a fresh clone reproduces the witness bit for bit,
//! and when it does not, the report names the layer's instruction and the files.

use crate::support::*;

/// Materializes `dockerfile` (plus `app/`) in a new repository, removes every image that build
/// made, then reproduces from a fresh clone with no cache. Returns the reproduce run.
fn materialize_then_reproduce_cold(name: &str, dockerfile: &str) -> (TestEnv, String, Done) {
    let (t, digest, done, json) = cold_round_trip(name, dockerfile, 1_735_787_045);
    assert_eq!(json["sourceDateEpoch"], 1_735_787_045, "the source date is the commit time");
    (t, digest, done)
}

/// The same, with the commit dated `commit_epoch`; also returns materialize's JSON.
fn cold_round_trip(name: &str, dockerfile: &str, commit_epoch: i64) -> (TestEnv, String, Done, serde_json::Value) {
    let t = TestEnv::new();
    let mut repo = Repo::init(t.join("origin"));
    repo.write("compute/Dockerfile", dockerfile).write("app/hello.txt", "hello\n").write("app/deep/er/file.txt", "x\n");
    repo.commit_at(name, commit_epoch);
    let tag = format!("rtm-it/cold-{name}:1");
    let json =
        t.rtm(["materialize", "--repo", repo.path_str(), "--tag", &tag, "--no-cache", "--json"]).run().success().json();
    let digest = json["digest"].as_str().unwrap().to_owned();
    assert_ne!(json["builtDigest"], json["digest"], "the builder's image carries build times");
    remove_images(&[&tag, &digest, json["builtDigest"].as_str().unwrap()]);
    assert_eq!(image_id(&digest), None, "the witnessed image is gone before the rebuild");

    // A fresh clone: every file gets a new checkout time.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sh("git", &["clone", "--quiet", repo.path_str(), t.join("clone").to_str().unwrap()], t.path());
    let done = t
        .rtm([
            "reproduce",
            "--image-digest",
            &digest,
            "--repo",
            t.join("clone").to_str().unwrap(),
            "--no-cache",
            "--json",
        ])
        .run();
    (t, digest, done, json)
}

#[test]
fn scratch_copy_of_a_directory_reproduces_cold() {
    require_docker();
    let (_t, digest, done) = materialize_then_reproduce_cold("scratch", "FROM scratch\nCOPY app/ /app/\n");
    let json = done.success().json();
    assert_eq!(json["rebuiltDigest"], digest.as_str());
    remove_images(&[&digest]);
}

#[test]
fn busybox_copy_run_env_cmd_reproduces_cold() {
    let base = busybox_base();
    let recipe = format!(
        "FROM {BUSYBOX}\nCOPY app/ /app/\nRUN mkdir -p /out && cat /app/hello.txt > /out/result.txt && echo built >> /out/result.txt\n\
         ENV MODE=demo\nCMD [\"cat\", \"/out/result.txt\"]\n"
    );
    let (_t, digest, done) = materialize_then_reproduce_cold("busybox", &recipe);
    assert_eq!(done.success().json()["rebuiltDigest"], digest.as_str());
    assert_eq!(image_id(BUSYBOX).as_deref(), Some(base.as_str()), "the base image is untouched");
    let out = std::process::Command::new("docker").args(["run", "--rm", &digest]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\nbuilt\n", "the normalised image runs");
    remove_images(&[&digest]);
}

#[test]
fn multi_stage_build_reproduces_cold() {
    let _ = busybox_base();
    let recipe = format!(
        "FROM {BUSYBOX} AS build\nCOPY app/ /src/\nRUN mkdir -p /dist && cp /src/hello.txt /dist/ && date > /dist/stamp-is-excluded\n\
         FROM scratch\nCOPY --from=build /dist/hello.txt /hello.txt\nCOPY app/deep /deep\n"
    );
    let (_t, digest, done) = materialize_then_reproduce_cold("multistage", &recipe);
    assert_eq!(done.success().json()["rebuiltDigest"], digest.as_str());
    remove_images(&[&digest]);
}

#[test]
fn a_run_that_deletes_a_base_file_with_a_long_path_reproduces_cold() {
    let _ = busybox_base();
    let long = "a-directory-name-that-is-long/".repeat(5);
    let recipe = format!("FROM {BUSYBOX}\nRUN rm /bin/date && mkdir -p /{long} && echo deep > /{long}file.txt\n");
    let (_t, digest, done) = materialize_then_reproduce_cold("whiteout", &recipe);
    assert_eq!(done.success().json()["rebuiltDigest"], digest.as_str());
    let out = std::process::Command::new("docker")
        .args(["run", "--rm", &digest, "cat", &format!("/{long}file.txt")])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "deep\n");
    remove_images(&[&digest]);
}

/// A commit dated after the checkout (or after the build that filled the cache): the files'
/// times are older than the source date, and still the rebuild from a later clone matches.
#[test]
fn files_older_than_the_commit_still_reproduce() {
    require_docker();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let (_t, digest, done, _) = cold_round_trip("future", SCRATCH_DOCKERFILE, now + 3600);
    assert_eq!(done.success().json()["rebuiltDigest"], digest.as_str());
    remove_images(&[&digest]);
}

#[test]
fn a_nondeterministic_run_is_named_with_its_file() {
    let _ = busybox_base();
    let t = TestEnv::new();
    let mut repo = Repo::init(t.join("sample"));
    repo.write(
        "compute/Dockerfile",
        &format!("FROM {BUSYBOX}\nCOPY app/ /app/\nRUN mkdir /out && cat /proc/sys/kernel/random/uuid > /out/id\n"),
    )
    .write("app/a", "a\n");
    repo.commit("nondeterministic");
    let tag = "rtm-it/nondeterministic:1";
    let recorded = t.rtm(["materialize", "--repo", repo.path_str(), "--tag", tag, "--json"]).run().success().json();
    let digest = recorded["digest"].as_str().unwrap().to_owned();

    let done = t.rtm(["reproduce", "--image-digest", &digest, "--no-cache"]).run().code_is(1);
    let text = done.stdout();
    assert!(
        text.contains("first differing layer: #2  /bin/sh -c mkdir /out && cat /proc/sys/kernel/random/uuid > /out/id"),
        "{text}"
    );
    assert!(text.contains("/out/id  size: 37 → 37") || text.contains("/out/id  sha256:"), "{text}");
    assert!(!text.contains("input changed"), "{text}");

    let json = t.rtm(["reproduce", "--image-digest", &digest, "--no-cache", "--json"]).run().code_is(1).json();
    let files = json["explanation"]["files"].as_array().unwrap();
    let id = files.iter().find(|f| f["path"] == "out/id").unwrap_or_else(|| panic!("out/id not reported: {json}"));
    assert!(id["changes"].as_array().unwrap().iter().any(|c| c.as_str().unwrap().starts_with("sha256: ")), "{id}");
    assert_eq!(json["explanation"]["firstDifferingLayer"]["index"], 2);

    let record = Record::load(t.join("output/rtm.trig"));
    let desc = record.values("SELECT ?d WHERE { GRAPH ?g { ?r a earl:TestResult ; dcterms:description ?d } }", "d");
    assert!(desc.iter().all(|d| d.contains("cat /proc/sys/kernel/random/uuid") && d.contains("/out/id")), "{desc:?}");

    // `diff` gives the same report for the two images.
    let rebuilt = json["rebuiltDigest"].as_str().unwrap();
    let diff = t.rtm(["diff", &digest, rebuilt, "--json"]).run().code_is(1).json();
    assert_eq!(diff["firstDifferingLayer"]["index"], 2);
    assert!(diff["files"].as_array().unwrap().iter().any(|f| f["path"] == "out/id"), "{diff}");
    t.rtm(["diff", &digest, &digest]).run().success().stdout_has("the images are identical");
    t.rtm(["diff", &digest, "rtm-it/no-such-image:1"]).run().code_is(2).stderr_has("is not in the local daemon");
    remove_images(&[tag, rebuilt]);
}

#[test]
fn a_changed_context_file_is_an_input_change() {
    require_docker();
    let t = TestEnv::new();
    let mut repo = scratch_repo(t.join("sample"), "v1\n");
    let first = repo.head();
    let tag = "rtm-it/input-change:1";
    let digest =
        t.rtm(["materialize", "--repo", repo.path_str(), "--tag", tag, "--json"]).run().success().json()["digest"]
            .as_str()
            .unwrap()
            .to_owned();
    repo.write("app/hello.txt", "v2\n");
    let second = repo.commit("changed payload");
    // A witness whose commit does not hold the inputs it recorded (what the demo's defect produced).
    let path = t.join("output/rtm.trig");
    std::fs::write(&path, std::fs::read_to_string(&path).unwrap().replace(&first, &second)).unwrap();
    let done = t.rtm(["reproduce", "--image-digest", &digest]).run().code_is(1);
    let text = done.stdout();
    assert!(text.contains("input changed: buildContextHash"), "{text}");
    assert!(text.contains("/app/hello.txt") && text.contains("COPY dir:"), "{text}");
    remove_images(&[tag]);
}

#[test]
fn a_raw_witness_compares_raw_digests() {
    require_docker();
    let t = TestEnv::new();
    let repo = scratch_repo(t.join("sample"), "raw\n");
    let json = t.rtm(["materialize", "--repo", repo.path_str(), "--no-normalize", "--json"]).run().success().json();
    assert_eq!(json["builtDigest"], json["digest"]);
    assert_eq!(json["sourceDateEpoch"], serde_json::Value::Null);
    let record = Record::load(t.join("output/rtm.trig"));
    assert!(record.values("SELECT ?e WHERE { GRAPH ?g { ?i rtm:sourceDateEpoch ?e } }", "e").is_empty());
    let done = t.rtm(["reproduce", "--image-digest", json["digest"].as_str().unwrap(), "--json"]).run().success();
    assert_eq!(done.json()["normalizer"], serde_json::Value::Null);
}
