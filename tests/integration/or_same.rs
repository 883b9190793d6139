//! `set --or-same` and `delete --or-missing` on every backend: a write or
//! delete repeated after its outcome was lost succeeds when the store
//! already holds its result, and is still a conflict otherwise.

use std::fs;
use std::time::Duration;

use crate::azurite;
use crate::common::{line, md5_hex, one_error_line, TestStore};
use crate::fault_proxy::{Fault, Only, Proxy};

every_backend!(
    or_same_succeeds_only_when_the_document_is_exactly_the_bytes,
    or_same_reads_the_input_from_every_source,
    or_same_writes_as_usual_when_the_precondition_holds,
    or_missing_succeeds_only_when_the_key_is_gone,
    or_same_and_or_missing_also_cover_a_false_if,
);

const V: &str = "{\"v\": 1}";

/// `set k V --etag …` fails with exit 3, one error line, nothing written.
fn refused(env: &TestStore, args: &[&str], stored: Option<&str>) {
    env.cmd()
        .args(args)
        .assert()
        .code(3)
        .stdout("")
        .stderr(one_error_line());
    assert_eq!(read(env, "k").as_deref(), stored, "{args:?}");
}

/// The document under `key`, read back through etagstore.
fn read(env: &TestStore, key: &str) -> Option<String> {
    let out = env.cmd().args(["get", key]).output().unwrap();
    match out.status.code() {
        Some(0) => Some(String::from_utf8(out.stdout).unwrap()),
        Some(4) => None,
        other => panic!("get {key}: {other:?} {out:?}"),
    }
}

fn or_same_succeeds_only_when_the_document_is_exactly_the_bytes(env: &TestStore) {
    let etag = md5_hex(V.as_bytes());
    let wrong = md5_hex(b"something else");
    env.put("k", V);
    for given in [wrong.as_str(), ""] {
        env.cmd()
            .args(["set", "k", V, "--etag", given, "--or-same"])
            .assert()
            .success()
            .stdout(line(&etag))
            .stderr("");
    }
    assert_eq!(read(env, "k").as_deref(), Some(V));
    // The same value in other bytes is another document: the ETag names bytes.
    refused(
        env,
        &["set", "k", "{\"v\":1}", "--etag", &wrong, "--or-same"],
        Some(V),
    );
    refused(env, &["set", "k", "[]", "--etag", "", "--or-same"], Some(V));
    // Without --or-same, the same bytes are still a failed precondition.
    refused(env, &["set", "k", V, "--etag", &wrong], Some(V));
    // A missing key is never "the same" as a document.
    env.cmd()
        .args(["delete", "k", "--etag", "*"])
        .assert()
        .success();
    env.cmd()
        .args(["set", "k", V, "--etag", "*", "--or-same"])
        .assert()
        .code(3)
        .stdout("")
        .stderr(one_error_line());
    env.cmd()
        .args(["set", "k", V, "--etag", &etag, "--or-same"])
        .assert()
        .code(3)
        .stdout("")
        .stderr(one_error_line());
    assert_eq!(read(env, "k"), None);
}

fn or_same_reads_the_input_from_every_source(env: &TestStore) {
    // Big enough to take many reads, and with a final newline.
    let doc = format!("[{}]\n", vec!["\"0123456789abcdef\""; 20_000].join(", "));
    let etag = md5_hex(doc.as_bytes());
    env.put("k", &doc);
    let wrong = md5_hex(b"older");
    fs::write(env.root().join("doc.json"), &doc).unwrap();
    env.cmd()
        .args(["set", "k", "-f", "doc.json", "--etag", &wrong, "--or-same"])
        .assert()
        .success()
        .stdout(line(&etag))
        .stderr("");
    env.cmd()
        .args(["set", "k", "--etag", &wrong, "--or-same"])
        .write_stdin(doc.clone())
        .assert()
        .success()
        .stdout(line(&etag))
        .stderr("");
    // One byte more is not the same document.
    env.cmd()
        .args(["set", "k", "--etag", &wrong, "--or-same"])
        .write_stdin(format!("{doc}\n"))
        .assert()
        .code(3)
        .stdout("")
        .stderr(one_error_line());
    assert_eq!(read(env, "k").as_deref(), Some(doc.as_str()));
}

fn or_same_writes_as_usual_when_the_precondition_holds(env: &TestStore) {
    let old = env.put("k", "{}");
    let etag = md5_hex(V.as_bytes());
    env.cmd()
        .args(["set", "k", V, "--etag", &old, "--or-same"])
        .assert()
        .success()
        .stdout(line(&etag))
        .stderr("");
    env.cmd()
        .args(["set", "new", V, "--etag", "", "--or-same"])
        .assert()
        .success()
        .stdout(line(&etag))
        .stderr("");
    assert_eq!(read(env, "k").as_deref(), Some(V));
    assert_eq!(read(env, "new").as_deref(), Some(V));
}

fn or_missing_succeeds_only_when_the_key_is_gone(env: &TestStore) {
    let etag = md5_hex(V.as_bytes());
    for given in [etag.as_str(), "*"] {
        env.cmd()
            .args(["delete", "k", "--etag", given, "--or-missing"])
            .assert()
            .success()
            .stdout("")
            .stderr("");
    }
    env.put("k", "{}");
    // Present with another ETag: still a conflict.
    refused(
        env,
        &["delete", "k", "--etag", &etag, "--or-missing"],
        Some("{}"),
    );
    // Present with this ETag: deleted as usual.
    env.cmd()
        .args(["delete", "k", "--etag", &md5_hex(b"{}"), "--or-missing"])
        .assert()
        .success()
        .stdout("")
        .stderr("");
    assert_eq!(read(env, "k"), None);
}

#[test]
fn set_unsafe_takes_no_or_same() {
    let env = TestStore::new();
    env.cmd()
        .args(["set-unsafe", "k", "{}", "--or-same"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(one_error_line());
    assert!(env.file("k").is_none());
}

/// The write (or delete) the issue is about: its answer is lost (exit 8),
/// the script runs the same command again with --or-same (--or-missing),
/// and ends with exit 0 whether the first one landed or not.
#[test]
fn a_write_whose_answer_was_lost_is_repeated_safely_on_azure() {
    for (fault, landed) in [(Fault::Drop, true), (Fault::Close, false)] {
        let Some(env) = TestStore::azurite() else {
            return;
        };
        let old = env.put("k", "{}");
        let etag = md5_hex(V.as_bytes());
        // Each command through a proxy that breaks its first write only.
        let through = |args: &[&str], fault: Fault| {
            let proxy = Proxy::start(azurite::PORT, fault, Only::Writes, 1);
            let mut cmd = env.cmd();
            cmd.env("AZURITE_BLOB_STORAGE_URL", proxy.url())
                .env("ETAGSTORE_TIMEOUT", "3")
                .timeout(Duration::from_secs(120))
                .args(args);
            let assert = cmd.assert();
            (assert, proxy.broken())
        };
        let set = ["set", "k", V, "--etag", &old, "--or-same"];
        let (first, broken) = through(&set, fault.clone());
        first.code(8).stdout("");
        assert_eq!(broken, 1);
        assert_eq!(
            read(&env, "k").as_deref(),
            Some(if landed { V } else { "{}" })
        );
        env.cmd()
            .args(set)
            .assert()
            .success()
            .stdout(line(&etag))
            .stderr("");
        assert_eq!(read(&env, "k").as_deref(), Some(V));

        let delete = ["delete", "k", "--etag", &etag, "--or-missing"];
        let (first, broken) = through(&delete, fault);
        first.code(8).stdout("");
        assert_eq!(broken, 1);
        assert_eq!(read(&env, "k").is_none(), landed);
        env.cmd()
            .args(delete)
            .assert()
            .success()
            .stdout("")
            .stderr("");
        assert_eq!(read(&env, "k"), None);
    }
}

/// A repeated `set --if` finds the predicate false because its own write
/// landed: `--or-same` makes that exit 0 when the bytes are the input's;
/// `delete --if --or-missing` on a gone key likewise.
fn or_same_and_or_missing_also_cover_a_false_if(env: &TestStore) {
    let claimed = "{\"owner\":\"me\"}";
    env.put("k", claimed);
    let claim = ["set", "k", claimed, "--if", ".owner == null"];
    refused(env, &claim, Some(claimed));
    env.cmd()
        .args(claim)
        .arg("--or-same")
        .assert()
        .success()
        .stdout(line(&md5_hex(claimed.as_bytes())))
        .stderr("");
    // Another owner's bytes are not ours: still a conflict.
    refused(
        env,
        &[
            "set",
            "k",
            "{\"owner\":\"you\"}",
            "--if",
            ".owner == null",
            "--or-same",
        ],
        Some(claimed),
    );

    let finish = ["delete", "gone", "--if", ".state == \"done\""];
    env.cmd()
        .args(finish)
        .assert()
        .code(3)
        .stderr(one_error_line());
    env.cmd()
        .args(finish)
        .arg("--or-missing")
        .assert()
        .success()
        .stdout("")
        .stderr("");
    // A key that exists and fails the predicate is not "already deleted".
    env.cmd()
        .args(["delete", "k", "--if", ".owner == null", "--or-missing"])
        .assert()
        .code(3)
        .stderr(one_error_line());
    assert_eq!(read(env, "k").as_deref(), Some(claimed));
}
