use predicates::prelude::*;

use crate::common::{md5_hex, TestStore};

#[test]
fn set_prints_the_md5_of_the_bytes_and_get_prints_them_back() {
    let env = TestStore::new();
    let doc = "{\"text\": \"hello\"}\n";
    env.cmd()
        .args(["set", "greeting", "--etag", ""])
        .write_stdin(doc)
        .assert()
        .success()
        .stdout(format!("{}\n", md5_hex(doc.as_bytes())))
        .stderr("");
    env.cmd()
        .args(["get", "greeting"])
        .assert()
        .success()
        .stdout(doc)
        .stderr("");
    assert_eq!(env.file("greeting").unwrap(), doc.as_bytes());
}

#[test]
fn a_missing_key_is_exit_4_with_one_error_line() {
    let env = TestStore::new();
    env.cmd()
        .args(["get", "nope"])
        .assert()
        .code(4)
        .stdout("")
        .stderr(predicate::str::starts_with("error: ").and(predicate::str::contains("nope")))
        .stderr(predicate::function(|s: &str| s.lines().count() == 1));
}

#[test]
fn etag_prints_the_current_etag() {
    let env = TestStore::new();
    let etag = env.put("k", "[1, 2]");
    env.cmd()
        .args(["etag", "k"])
        .assert()
        .success()
        .stdout(format!("{etag}\n"))
        .stderr("");
}
