//! `rtm-compute hash`: the demo's test vector through the command line.

use crate::support::*;

#[test]
fn hash_prints_the_demo_test_vector() {
    let t = TestEnv::new();
    std::fs::create_dir_all(t.join("ctx/sub")).unwrap();
    std::fs::create_dir_all(t.join("ctx/.git")).unwrap();
    std::fs::write(t.join("ctx/a.txt"), "hello\n").unwrap();
    std::fs::write(t.join("ctx/sub/b.txt"), "").unwrap();
    std::fs::write(t.join("ctx/.git/HEAD"), "ignored").unwrap();
    std::fs::write(t.join("Dockerfile"), "FROM scratch\n").unwrap();
    let json = t.rtm(["hash", "--dockerfile", "Dockerfile", "--context", "ctx", "--json"]).run().success().json();
    assert_eq!(json["buildContextHash"], "e02f2269ea8c11d5042648f40e4d61982a1686f1a1fe5b006ab829be745c9144");
    assert_eq!(json["dockerfileHash"], sh("sha256sum", &["Dockerfile"], t.path()).split(' ').next().unwrap());
    t.rtm(["hash", "--dockerfile", "Dockerfile", "--context", "nope"])
        .run()
        .code_is(2)
        .stderr_has("build context nope is not a directory");
    t.rtm(["hash", "--dockerfile", "nope", "--context", "ctx"]).run().code_is(2).stderr_has("failed to read nope");
}
