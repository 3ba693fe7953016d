//! Operating on witnesses: `run` (and the container node it records), `list` and `show` on records
//! written by the demo and by us, the JSON schemas, completions, help, colour, and podman.

use crate::support::*;

/// Materializes a busybox recipe whose default command prints a message; returns (env, digest).
fn runnable(payload: &str) -> (TestEnv, String) {
    let _ = busybox_base();
    let t = TestEnv::new();
    let mut repo = Repo::init(t.join("sample"));
    repo.write("compute/Dockerfile", &format!("FROM {BUSYBOX}\nCOPY app/ /app/\nCMD [\"cat\", \"/app/msg\"]\n"))
        .write("app/msg", payload);
    repo.commit("runnable");
    let json = t.rtm(["materialize", "--repo", repo.path_str(), "--json"]).run().success().json();
    (t, json["digest"].as_str().unwrap().to_owned())
}

const CONTAINERS: &str = "SELECT ?c (COUNT(DISTINCT ?img) AS ?derived) (COUNT(DISTINCT ?id) AS ?ids) ?host WHERE { GRAPH ?g {
    ?c a rtm:DockerContainer, prov:Entity ; prov:wasDerivedFrom ?img ; rtm:containerId ?id ;
       prov:wasAttributedTo <urn:adcs:org:local-operator> ; prov:atLocation ?host . ?host a prov:Location } } GROUP BY ?c ?host";

#[test]
fn run_streams_the_output_exits_with_the_code_and_records_the_container() {
    let (t, digest) = runnable("hello from the container\n");
    let done = t.rtm(["run", "--image-digest", &digest[7..19]]).run().success();
    assert_eq!(done.stdout(), "hello from the container\n");
    t.rtm(["run", "--image-digest", &digest, "--", "sh", "-c", "echo out; echo err >&2; exit 3"])
        .run()
        .code_is(3)
        .stdout_has("out\n")
        .stderr_has("err\n");
    let record = Record::load(t.join("output/rtm.trig"));
    let rows = record.select(CONTAINERS);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        // The demo's SHACL shape: exactly one prov:wasDerivedFrom and one rtm:containerId.
        assert_eq!((row["derived"].as_str(), row["ids"].as_str()), ("1", "1"), "{row:?}");
        assert!(row["host"].starts_with("urn:adcs:location:docker:"));
    }
    // A container that cannot start: exit 2, and nothing recorded.
    let failed = t
        .rtm(["run", "--image-digest", &digest, "--", "/no/such/program"])
        .run()
        .code_is(2)
        .stderr_has("could not start");
    let id = failed
        .stderr()
        .split("container ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_default()
        .to_owned();
    let gone = std::process::Command::new("docker").args(["container", "inspect", &id]).output().unwrap();
    assert!(!id.is_empty() && !gone.status.success(), "the container {id} that never started is removed");
    assert_eq!(Record::load(t.join("output/rtm.trig")).select(CONTAINERS).len(), 2);
    // ADCS_OPERATING_ORG_IRI names the operator.
    t.rtm(["run", "--image-digest", &digest, "--", "sh", "-c", "exit 0"])
        .env("ADCS_OPERATING_ORG_IRI", "urn:example:org:esa")
        .run()
        .success();
    let ops = Record::load(t.join("output/rtm.trig"))
        .values("SELECT ?o WHERE { GRAPH ?g { ?c prov:wasAttributedTo ?o } }", "o");
    assert!(ops.contains(&"urn:example:org:esa".to_owned()), "{ops:?}");
    remove_recorded_containers(&t);
}

#[test]
fn run_refuses_an_image_that_is_not_the_witnessed_one() {
    let (t, digest) = runnable("the witnessed image\n");
    let label =
        Record::load(t.join("output/rtm.trig")).values("SELECT ?l WHERE { GRAPH ?g { ?i rtm:imageLabel ?l } }", "l");
    remove_images(&[&digest]);
    // Someone else's image now answers to the witness's label.
    let (_other_env, other) = runnable("an impostor\n");
    sh("docker", &["tag", &other, &label[0]], t.path());
    let err = t.rtm(["run", "--image-digest", &digest]).run().code_is(2).stderr();
    assert!(
        err.contains("is not in the local daemon") && err.contains("a different image: it will not be run"),
        "{err}"
    );
    assert!(err.contains("rtm-compute reproduce --image-digest"), "{err}");
    assert!(
        !t.join("output/rtm.trig").exists() || Record::load(t.join("output/rtm.trig")).select(CONTAINERS).is_empty()
    );
    remove_images(&[&label[0], &other]);
}

#[test]
fn list_and_show_read_the_demos_records_and_ours() {
    let (t, digest) = runnable("listed\n");
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/demo-rdflib.trig");
    // One record holding the demo's witnesses and ours.
    let ours = std::fs::read_to_string(t.join("output/rtm.trig")).unwrap();
    std::fs::write(t.join("mixed.trig"), format!("{}\n{ours}", std::fs::read_to_string(fixture).unwrap())).unwrap();
    t.rtm(["reproduce", "--image-digest", &digest, "--from-trig", "mixed.trig"]).run().success();

    let list = t.rtm(["list", "--from-trig", "mixed.trig"]).run().success().stdout();
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 4, "{list}");
    assert!(lines[0].starts_with("DIGEST") && lines[0].ends_with("VERIFIED"), "{list}");
    let demo = lines.iter().find(|l| l.starts_with("71a59f230000")).unwrap();
    assert!(
        demo.contains("adcs-compute:latest")
            && demo.contains("111111111111")
            && demo.contains("passed 2025-03-05T00:00:01.000005Z"),
        "{demo}"
    );
    let mine = lines.iter().find(|l| l.starts_with(&digest[7..19])).unwrap();
    assert!(mine.contains("passed") && mine.ends_with("(rebuild)"), "{mine}");

    let show = t.rtm(["show", "71a59f23", "--from-trig", "mixed.trig"]).run().success().stdout();
    assert!(show.contains("runs (1):") && show.contains("container dddddddd"), "{show}");
    assert!(show.contains("verifications (1):"), "{show}");
    t.rtm(["show", "71a5", "--from-trig", "mixed.trig"]).run().code_is(2).stderr_has("matches 2 image witnesses");
}

/// The documented JSON schemas: every key present with the documented type.
#[test]
fn json_output_follows_the_documented_schemas() {
    let (t, digest) = runnable("json\n");
    t.rtm(["run", "--image-digest", &digest]).run().success();
    remove_recorded_containers(&t);
    t.rtm(["reproduce", "--image-digest", &digest]).run().success();
    let list = t.rtm(["list", "--json"]).run().success().json();
    assert_eq!(list["schema"], "rtm-compute/list/1");
    let w = &list["witnesses"][0];
    for (key, kind) in [
        ("image", "string"),
        ("digest", "string"),
        ("label", "string"),
        ("commit", "string"),
        ("gitRef", "string"),
        ("generatedAtTime", "string"),
        ("latestVerification", "object"),
        ("verifications", "number"),
        ("runs", "number"),
    ] {
        assert_eq!(json_type(&w[key]), kind, "list witnesses[].{key} in {w}");
    }
    for (key, kind) in [
        ("assertion", "string"),
        ("outcome", "string"),
        ("time", "string"),
        ("method", "string"),
        ("description", "string"),
    ] {
        assert_eq!(json_type(&w["latestVerification"][key]), kind, "latestVerification.{key}");
    }
    assert_eq!((w["verifications"].as_u64(), w["runs"].as_u64()), (Some(1), Some(1)));

    let show = t.rtm(["show", &digest, "--json"]).run().success().json();
    assert_eq!(show["schema"], "rtm-compute/show/1");
    for (key, kind) in [
        ("image", "string"),
        ("digest", "string"),
        ("labels", "array"),
        ("commit", "string"),
        ("gitRef", "string"),
        ("generatedAtTime", "string"),
        ("inputs", "object"),
        ("sourceDateEpoch", "number"),
        ("normalizer", "string"),
        ("layers", "array"),
        ("registryRef", "null"),
        ("flexoRecord", "null"),
        ("verifications", "array"),
        ("runs", "array"),
    ] {
        assert_eq!(json_type(&show[key]), kind, "show.{key} in {show}");
    }
    for key in ["dockerfileHash", "buildContextHash", "baseImageDigest"] {
        assert_eq!(json_type(&show["inputs"][key]), "string", "show.inputs.{key}");
    }
    for key in ["container", "containerId", "time", "location", "operator"] {
        assert_eq!(json_type(&show["runs"][0][key]), "string", "show.runs[].{key}");
    }
    assert_eq!(json_type(&show["layers"][0]["diffId"]), "string");
}

/// Removes the containers the test's runs recorded (they are kept by `run`, for the audit).
fn remove_recorded_containers(t: &TestEnv) {
    let ids =
        Record::load(t.join("output/rtm.trig")).values("SELECT ?i WHERE { GRAPH ?g { ?c rtm:containerId ?i } }", "i");
    let _ = std::process::Command::new("docker").args(["rm", "--force"]).args(&ids).output();
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

#[test]
fn ten_thousand_witnesses_are_listed() {
    let t = TestEnv::new();
    let mut text = String::from(
        "@prefix rtm: <http://example.org/ontology/rtm#> .\n@prefix prov: <http://www.w3.org/ns/prov#> .\n@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n<http://example.org/adcs-demo/graph/evidence> {\n",
    );
    for i in 0..10_000u32 {
        let hex = format!("{i:064x}");
        text.push_str(&format!(
            "<urn:adcs:docker-image:sha256-{hex}> a rtm:DockerImage, prov:Entity ; rtm:contentHash \"sha256:{hex}\" ; rtm:imageLabel \"demo:{i}\" ; prov:generatedAtTime \"2025-01-02T03:04:05Z\"^^xsd:dateTime ; rtm:gitRef \"git+https://example.org/r@{:040x}#compute/Dockerfile\"^^xsd:anyURI .\n",
            i
        ));
    }
    text.push_str("}\n");
    std::fs::write(t.join("big.trig"), text).unwrap();
    let started = std::time::Instant::now();
    let json = t.rtm(["list", "--from-trig", "big.trig", "--json"]).run().success().json();
    eprintln!(
        "listed 10 000 witnesses in {:?} (debug build; scripts/bench.sh times the release build)",
        started.elapsed()
    );
    assert_eq!(json["witnesses"].as_array().unwrap().len(), 10_000);
}

#[test]
fn completions_help_version_and_colour() {
    let t = TestEnv::new();
    let bash = t.rtm(["completions", "bash"]).run().success().stdout();
    std::fs::write(t.join("rtm.bash"), &bash).unwrap();
    sh("bash", &["-n", t.join("rtm.bash").to_str().unwrap()], t.path());
    for shell in ["bash", "zsh", "fish"] {
        let script = t.rtm(["completions", shell]).run().success().stdout();
        for sub in ["materialize", "reproduce", "list", "show", "run", "doctor"] {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let version = t.rtm(["--version"]).run().success().stdout();
    assert_eq!(version, format!("rtm-compute {}\n", env!("CARGO_PKG_VERSION")));
    for sub in [
        vec!["materialize"],
        vec!["reproduce"],
        vec!["hash"],
        vec!["diff"],
        vec!["normalize"],
        vec!["list"],
        vec!["show"],
        vec!["run"],
        vec!["doctor"],
        vec!["completions"],
        vec!["flexo", "init"],
        vec!["flexo", "push"],
    ] {
        let mut args = sub.clone();
        args.push("--help");
        let help = t.rtm(args).run().success().stdout();
        assert!(help.contains("Examples:"), "`{}` --help has no examples", sub.join(" "));
    }
    // Secrets given in the environment are not printed by --help.
    let help = t.rtm(["materialize", "--help"]).env("RTM_REGISTRY", "r.example.org").run().success().stdout();
    assert!(!help.contains("FLEXO_TOKEN=") && !help.contains("RTM_REGISTRY_TOKEN="));
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/demo-rdflib.trig");
    let t = TestEnv::new();
    let bin = env!("CARGO_BIN_EXE_rtm-compute");
    let piped = t.rtm(["list", "--from-trig", fixture]).run().success().stdout();
    assert!(!piped.contains('\x1b'), "colour on a pipe");
    // `script` gives the program a terminal.
    let on_tty = |no_color: &str| {
        let out = std::process::Command::new("script")
            .args(["-qec", &format!("{bin} list --from-trig {fixture}"), "/dev/null"])
            .env("NO_COLOR", no_color)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(on_tty("").contains("\x1b[32mpassed\x1b[0m"), "no colour on a terminal");
    assert!(!on_tty("1").contains('\x1b'), "colour despite NO_COLOR");
}

/// podman, end to end: materialize, a cold reproduce, and run, with podman's bare-hex image ids.
#[test]
fn podman_materializes_reproduces_and_runs() {
    let podman = std::process::Command::new("podman").arg("--version").output();
    assert!(
        podman.is_ok_and(|o| o.status.success()),
        "podman is not installed: scripts/test.sh installs Debian's podman"
    );
    let t = TestEnv::new();
    // podman raises each container's nofile and nproc limits to the host's maximum; sandboxes such
    // as this project's test machines refuse that (EPERM from setrlimit), so the tests' podman gets
    // lower defaults from a containers.conf of its own. The tool passes no limits either way.
    let conf = t.join("containers.conf");
    std::fs::write(&conf, "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n").unwrap();
    let podman_env = |run: Run| run.env("CONTAINERS_CONF", &conf);
    let mut repo = Repo::init(t.join("sample"));
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("busybox-static");
    std::fs::create_dir_all(repo.path.join("app")).unwrap();
    std::fs::copy(busybox, repo.path.join("app/busybox")).unwrap();
    repo.write("compute/Dockerfile", "FROM scratch\nCOPY app/ /app/\nCMD [\"/app/busybox\", \"cat\", \"/app/msg\"]\n")
        .write("app/msg", "from podman\n");
    repo.commit("podman recipe");
    let tag = "localhost/rtm-it/podman:1";
    let json =
        podman_env(t.rtm(["materialize", "--repo", repo.path_str(), "--docker-cmd", "podman", "--tag", tag, "--json"]))
            .run()
            .success()
            .json();
    let digest = json["digest"].as_str().unwrap().to_owned();
    let id = sh("podman", &["image", "inspect", "--format", "{{.Id}}", tag], t.path());
    assert_eq!(format!("sha256:{id}"), digest, "podman's bare-hex id is the witnessed digest");
    let _ = std::process::Command::new("podman")
        .args(["rmi", "--force", tag, json["builtDigest"].as_str().unwrap()])
        .output();
    let out =
        podman_env(t.rtm(["reproduce", "--image-digest", &digest, "--docker-cmd", "podman", "--no-cache", "--json"]))
            .run()
            .success()
            .json();
    assert_eq!(out["rebuiltDigest"], digest.as_str());
    let ran = podman_env(t.rtm(["run", "--image-digest", &digest, "--docker-cmd", "podman"])).run().success();
    assert_eq!(ran.stdout(), "from podman\n");
    let ids =
        Record::load(t.join("output/rtm.trig")).values("SELECT ?i WHERE { GRAPH ?g { ?c rtm:containerId ?i } }", "i");
    assert_eq!(ids.len(), 1);
    let _ = std::process::Command::new("podman").args(["rm", "--force", &ids[0]]).output();
    let _ = std::process::Command::new("podman").args(["rmi", "--force", &id]).output();
}
