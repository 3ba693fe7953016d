//! `rtm-compute materialize`: a clean worktree of exactly the commit, a witness with every
//! recorded property, appends that keep what the record had, and no worktree left behind.

use crate::support::*;

const IMAGES: &str =
    "SELECT ?img ?hash ?label ?df ?ctx ?time ?ref WHERE { GRAPH <http://example.org/adcs-demo/graph/evidence> {
    ?img a rtm:DockerImage, prov:Entity ; rtm:contentHash ?hash ; rtm:imageLabel ?label ; rtm:dockerfileHash ?df ;
         rtm:buildContextHash ?ctx ; prov:generatedAtTime ?time ; rtm:gitRef ?ref .
    FILTER(datatype(?time) = xsd:dateTime && datatype(?ref) = xsd:anyURI) } }";

#[test]
fn records_the_witness_of_a_scratch_image() {
    require_docker();
    let t = TestEnv::new();
    let repo = scratch_repo(t.join("sample"), "hello\n");
    let commit = repo.head();
    let tag = "rtm-it/materialize-scratch:1";
    let done = t
        .rtm(["materialize", "--repo", repo.path_str(), "--tag", tag, "--record", "out/rtm.trig", "--json"])
        .run()
        .success();
    let json = done.json();
    let digest = json["digest"].as_str().unwrap().to_owned();
    assert_eq!(Some(digest.clone()), image_id(tag), "contentHash is the local image id");
    assert_eq!(json["commit"], commit.as_str());
    assert_eq!(json["alreadyRecorded"], false);

    let rows = Record::load(t.join("out/rtm.trig")).select(IMAGES);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["img"], format!("urn:adcs:docker-image:{}", digest.replace(':', "-")));
    assert_eq!(row["hash"], digest);
    assert_eq!(row["label"], tag);
    assert_eq!(row["ref"], format!("git+file://{}@{commit}#compute/Dockerfile", repo.path_str()));
    let hashes = t
        .rtm(["hash", "--json", "--dockerfile", "sample/compute/Dockerfile", "--context", "sample"])
        .run()
        .success()
        .json();
    assert_eq!(row["df"], hashes["dockerfileHash"].as_str().unwrap());
    assert_eq!(row["ctx"], hashes["buildContextHash"].as_str().unwrap());
    repo.assert_no_extra_worktrees();
    remove_images(&[tag]);
}

#[test]
fn origin_url_shapes_the_git_ref_and_base_image_is_recorded() {
    let base = busybox_base();
    let t = TestEnv::new();
    let mut repo = Repo::init(t.join("sample"));
    repo.write(
        "compute/Dockerfile",
        &format!(
            "FROM {BUSYBOX}\nCOPY app/ /app/\nRUN mkdir -p /out && cat /app/a > /out/b\nCMD [\"cat\", \"/out/b\"]\n"
        ),
    )
    .write("app/a", "payload\n");
    let commit = repo.commit("busybox recipe");
    sh("git", &["remote", "add", "origin", "git@github.com:Org/Mission.git"], &repo.path);
    let tag = "rtm-it/materialize-busybox:1";
    let json = t.rtm(["materialize", "--repo", repo.path_str(), "--tag", tag, "--json"]).run().success().json();
    assert_eq!(json["gitRef"], format!("git+https://github.com/Org/Mission@{commit}#compute/Dockerfile"));
    assert_eq!(json["baseImageDigest"], base.as_str());
    let record = Record::load(t.join("output/rtm.trig"));
    assert_eq!(record.values("SELECT ?b WHERE { GRAPH ?g { ?i rtm:baseImageDigest ?b } }", "b"), [base]);
    remove_images(&[tag]);
}

#[test]
fn uncommitted_changes_are_reported_and_left_out_of_the_build() {
    require_docker();
    let t = TestEnv::new();
    let repo = scratch_repo(t.join("sample"), "committed\n");
    let clean = t.rtm(["materialize", "--repo", repo.path_str(), "--record", "a.trig", "--json"]).run().success();
    assert!(!clean.stderr().contains("uncommitted"), "{}", clean.stderr());
    repo.write("app/hello.txt", "NOT COMMITTED\n").write("app/new-file", "untracked\n");
    let dirty = t
        .rtm(["materialize", "--repo", repo.path_str(), "--record", "b.trig", "--json"])
        .run()
        .success()
        .stderr_has("2 uncommitted change(s)")
        .stderr_has("are NOT in this build");
    assert_eq!(dirty.json()["digest"], clean.json()["digest"], "the build used the commit, not the working tree");
    repo.assert_no_extra_worktrees();
}

#[test]
fn appending_keeps_every_quad_and_a_second_run_adds_nothing() {
    require_docker();
    let t = TestEnv::new();
    let mut repo = scratch_repo(t.join("sample"), "one\n");
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/demo-rdflib.trig");
    std::fs::copy(fixture, t.join("rtm.trig")).unwrap();
    let before = Record::load(t.join("rtm.trig")).nquads();

    t.rtm(["materialize", "--repo", repo.path_str(), "--record", "rtm.trig"]).run().success();
    let after_one = Record::load(t.join("rtm.trig")).nquads();
    for q in &before {
        assert!(after_one.contains(q), "lost {q}");
    }
    assert!(after_one.len() > before.len());

    let again = t.rtm(["materialize", "--repo", repo.path_str(), "--record", "rtm.trig", "--json"]).run().success();
    assert_eq!(again.json()["alreadyRecorded"], true);
    assert_eq!(Record::load(t.join("rtm.trig")).nquads(), after_one);

    repo.write("app/hello.txt", "two\n");
    repo.commit("second");
    t.rtm(["materialize", "--repo", repo.path_str(), "--record", "rtm.trig"]).run().success();
    let images = Record::load(t.join("rtm.trig")).values("SELECT ?i WHERE { GRAPH ?g { ?i a rtm:DockerImage } }", "i");
    assert_eq!(images.len(), 3, "the demo's witness and our two: {images:?}");
}

#[test]
fn eight_concurrent_runs_into_one_record_all_land() {
    require_docker();
    let t = TestEnv::new();
    let mut repo = Repo::init(t.join("sample"));
    let mut commits = Vec::new();
    for i in 0..8 {
        repo.write("compute/Dockerfile", SCRATCH_DOCKERFILE).write("app/n.txt", &format!("{i}\n"));
        commits.push(repo.commit(&format!("commit {i}")));
    }
    let children: Vec<_> = commits
        .iter()
        .map(|c| {
            t.rtm(["-q", "materialize", "--repo", repo.path_str(), "--rev", c, "--record", "shared/rtm.trig"])
                .command()
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "a concurrent run failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let record = Record::load(t.join("shared/rtm.trig"));
    let refs = record.values("SELECT ?r WHERE { GRAPH ?g { ?i rtm:gitRef ?r } }", "r");
    assert_eq!(refs.len(), 8, "{refs:?}");
    for c in &commits {
        assert!(refs.iter().any(|r| r.contains(c.as_str())), "commit {c} is missing from {refs:?}");
    }
    repo.assert_no_extra_worktrees();
    let leftovers: Vec<_> = std::fs::read_dir(t.join("shared")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "only the record and its lock file remain: {leftovers:?}");
}

#[test]
fn a_failed_build_leaves_no_worktree_and_no_record() {
    let _ = busybox_base();
    let t = TestEnv::new();
    let mut repo = Repo::init(t.join("sample"));
    repo.write("compute/Dockerfile", &format!("FROM {BUSYBOX}\nRUN echo about to fail && false\n"));
    repo.commit("broken recipe");
    t.rtm(["materialize", "--repo", repo.path_str()])
        .run()
        .code_is(2)
        .stderr_has("error: image build failed")
        .stderr_has("about to fail");
    repo.assert_no_extra_worktrees();
    assert!(!t.join("output/rtm.trig").exists());
}

#[test]
fn ctrl_c_during_a_build_removes_the_worktree() {
    let _ = busybox_base();
    let t = TestEnv::new();
    let mut repo = Repo::init(t.join("sample"));
    repo.write("compute/Dockerfile", &format!("FROM {BUSYBOX}\nRUN sleep 30\n"));
    repo.commit("slow recipe");
    let mut child = t
        .rtm(["materialize", "--repo", repo.path_str(), "--no-cache"])
        .command()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the worktree exists and the build has started.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while repo.worktrees().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "the worktree never appeared");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    sh("kill", &["-INT", &child.id().to_string()], t.path());
    let started = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert!(started.elapsed().as_secs() < 20, "Ctrl-C did not stop the run promptly");
    assert_eq!(status.code(), Some(130));
    repo.assert_no_extra_worktrees();
}

#[test]
fn bad_arguments_are_named() {
    let t = TestEnv::new();
    let repo = scratch_repo(t.join("sample"), "x\n");
    t.rtm(["materialize", "--repo", repo.path_str(), "--dockerfile", "../outside/Dockerfile"])
        .run()
        .code_is(2)
        .stderr_has("--dockerfile \"../outside/Dockerfile\" must be a path inside the repository");
    t.rtm(["materialize", "--repo", repo.path_str(), "--rev", "no-such-branch"])
        .run()
        .code_is(2)
        .stderr_has("\"no-such-branch\" does not name a commit");
    t.rtm(["materialize", "--repo", repo.path_str(), "--tag", "Bad Tag"])
        .run()
        .code_is(2)
        .stderr_has("--tag \"Bad Tag\"");
    t.rtm(["materialize", "--repo", t.path().to_str().unwrap()])
        .run()
        .code_is(2)
        .stderr_has("is not inside a git repository");
    require_docker();
    t.rtm(["materialize", "--repo", repo.path_str(), "--dockerfile", "compute/Missing"])
        .run()
        .code_is(2)
        .stderr_has("compute/Missing does not exist at commit");
    repo.assert_no_extra_worktrees();
}

#[test]
fn git_and_docker_are_chosen_by_the_environment_and_the_flag() {
    require_docker();
    let t = TestEnv::new();
    let repo = scratch_repo(t.join("sample"), "shims\n");
    let log = t.join("calls.log");
    let shim = |name: &str| {
        let real = sh("sh", &["-c", &format!("command -v {name}")], t.path());
        let path = t.join(&format!("{name}-shim"));
        std::fs::write(&path, format!("#!/bin/sh\necho \"{name} $*\" >> '{}'\nexec '{real}' \"$@\"\n", log.display()))
            .unwrap();
        sh("chmod", &["+x", path.to_str().unwrap()], t.path());
        path
    };
    let (git, docker) = (shim("git"), shim("docker"));
    t.rtm(["materialize", "--repo", repo.path_str()])
        .env("GIT", &git)
        .env("DOCKER", &docker)
        .env("FLEXO_TOKEN", "tok-secret-4711")
        .env("FLEXO_PASS", "pass-secret-4711")
        .run()
        .success();
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(!calls.contains("secret-4711"), "a secret reached a child's argv or environment:\n{calls}");
    assert!(calls.contains(" worktree add --detach --quiet --end-of-options "), "{calls}");
    assert!(calls.contains("docker build --file compute/Dockerfile"), "{calls}");
    assert!(calls.contains("docker save --output "), "{calls}");

    // --docker-cmd wins over DOCKER.
    std::fs::remove_file(&log).unwrap();
    t.rtm(["materialize", "--repo", repo.path_str(), "--record", "b.trig", "--docker-cmd", docker.to_str().unwrap()])
        .env("DOCKER", "rtm-no-such-docker")
        .run()
        .success();
    assert!(std::fs::read_to_string(&log).unwrap().contains("docker build"));
    t.rtm(["materialize", "--repo", repo.path_str()])
        .env("GIT", "rtm-no-such-git")
        .run()
        .code_is(2)
        .stderr_has("`rtm-no-such-git` not found on PATH");
}
