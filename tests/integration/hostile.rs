//! Hostile input, as one table: what an attacker or a confused script would
//! send, the exit code docs/contract.md documents for it, and afterwards no stored
//! document has changed and nothing exists outside the store. Then the
//! cases a table row cannot hold: a 50 MiB string, a document replaced by a
//! symbolic link, a lock directory that cannot be written.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use predicates::prelude::*;

use crate::common::{md5_hex, one_error_line, require, running_as_root, Immutable, TestStore};

/// The document already stored under `k`, which no row may change.
const KEPT: &str = "{\"kept\": true}\n";

struct Row {
    what: String,
    args: Vec<OsString>,
    stdin: Vec<u8>,
    code: i32,
    /// For exit 0: the one document file the row adds to the store.
    stored_as: Option<&'static str>,
}

fn os(words: &[&[u8]]) -> Vec<OsString> {
    words
        .iter()
        .map(|w| OsStr::from_bytes(w).to_os_string())
        .collect()
}

/// A document that says which key it belongs to.
fn doc_for(key: &str) -> Vec<u8> {
    format!("{{\"key\": {}}}", serde_json::to_string(key).unwrap()).into_bytes()
}

fn table() -> Vec<Row> {
    let mut rows = Vec::new();

    // Valid keys that a careless encoding would turn into paths, hidden
    // files, the store's own files, or another key's file: exit 0, inside.
    let stored: [(&str, &str); 9] = [
        ("..", "%2E..json"),
        ("../x", "%2E.%2Fx.json"),
        ("../../../../tmp/x", "%2E.%2F..%2F..%2F..%2Ftmp%2Fx.json"),
        ("/etc/passwd", "%2Fetc%2Fpasswd.json"),
        (".etagstore", "%2Eetagstore.json"),
        (".etagstore/locks/x", "%2Eetagstore%2Flocks%2Fx.json"),
        ("a%2Fb", "a%252Fb.json"),
        ("a/b", "a%2Fb.json"),
        ("%2E..", "%252E...json"),
    ];
    for (key, file) in stored {
        rows.push(Row {
            what: format!("key {key:?}"),
            args: os(&[b"set", key.as_bytes(), b"--etag", b""]),
            stdin: doc_for(key),
            code: 0,
            stored_as: Some(file),
        });
    }

    // Numbers beyond double range are valid JSON: stored as given.
    let numbers: [(&str, &str, &str); 4] = [
        ("n1", "1e400", "n1.json"),
        ("n2", "123456789012345678901234567890", "n2.json"),
        ("n3", "-1e-400", "n3.json"),
        ("n4", "[1E+999, -0.1e-99999, 1e400]", "n4.json"),
    ];
    for (key, number, file) in numbers {
        rows.push(Row {
            what: format!("number {number}"),
            args: os(&[b"set", key.as_bytes(), b"--etag", b""]),
            stdin: number.as_bytes().to_vec(),
            code: 0,
            stored_as: Some(file),
        });
    }

    // Invalid keys: exit 2 on every command.
    let bad_keys: [(&str, Vec<u8>); 8] = [
        ("201 bytes", vec![b'a'; 201]),
        ("201 bytes of two-byte characters", {
            let mut key = "é".repeat(100).into_bytes();
            key.push(b'a');
            key
        }),
        ("a 251-byte file name", vec![b'/'; 82]),
        ("invalid UTF-8", b"\xff".to_vec()),
        ("truncated UTF-8", b"ok\xc3".to_vec()),
        ("a newline", b"a\nb".to_vec()),
        ("an escape sequence", b"\x1b[2J".to_vec()),
        ("empty", Vec::new()),
    ];
    for (what, key) in &bad_keys {
        let commands: [&[&[u8]]; 6] = [
            &[b"set-unsafe", key, b"{}"],
            &[b"set", key, b"{}", b"--etag", b""],
            &[b"get", key],
            &[b"etag", key],
            &[b"delete", key, b"--etag", b"*"],
            &[b"edit", key, b"--default", b"{}", b"--jq", b".a = 1"],
        ];
        for args in commands {
            rows.push(Row {
                what: format!("key: {what}"),
                args: os(args),
                stdin: Vec::new(),
                code: 2,
                stored_as: None,
            });
        }
    }

    // Invalid documents: exit 6, for a new key and over an existing one.
    let bad_docs: [(&str, Vec<u8>); 8] = [
        ("a UTF-8 BOM", b"\xef\xbb\xbf{}".to_vec()),
        ("100,000-level nesting", {
            let mut doc = b"[".repeat(100_000);
            doc.extend(b"]".repeat(100_000));
            doc
        }),
        ("invalid UTF-8 in a string", b"{\"a\": \"\xff\"}".to_vec()),
        ("an overlong encoding in a string", b"\"\xc0\xaf\"".to_vec()),
        ("a surrogate encoded in UTF-8", b"\"\xed\xa0\x80\"".to_vec()),
        ("a NUL in a string", b"{\"a\": \"\0\"}".to_vec()),
        ("a NUL after the value", b"{}\0".to_vec()),
        ("only a NUL", b"\0".to_vec()),
    ];
    let kept_etag = md5_hex(KEPT.as_bytes());
    for (what, doc) in bad_docs {
        let commands: [&[&[u8]]; 3] = [
            &[b"set-unsafe", b"new"],
            &[b"set", b"new", b"--etag", b""],
            &[b"set", b"k", b"--etag", kept_etag.as_bytes()],
        ];
        for args in commands {
            rows.push(Row {
                what: format!("document: {what}"),
                args: os(args),
                stdin: doc.clone(),
                code: 6,
                stored_as: None,
            });
        }
    }
    // The same through the VALUE argument, where argv can carry it.
    for value in [&b"\xef\xbb\xbf{}"[..], b"\"\xff\""] {
        rows.push(Row {
            what: format!("VALUE {:?}", String::from_utf8_lossy(value)),
            args: os(&[b"set-unsafe", b"new", value]),
            stdin: Vec::new(),
            code: 6,
            stored_as: None,
        });
    }
    rows
}

#[test]
fn hostile_input_gets_its_documented_exit_code_and_touches_nothing_else() {
    let env = TestStore::new();
    env.put("k", KEPT);
    let passwd = fs::read("/etc/passwd").ok();
    let mut stored_keys = vec!["k".to_string()];
    for row in table() {
        let what = format!("{} {:?}", row.what, row.args);
        let before = env.snapshot();
        let output = env
            .cmd()
            .args(&row.args)
            .write_stdin(row.stdin.clone())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(row.code), "{what}: {stderr}");
        match row.stored_as {
            None => {
                assert!(output.stdout.is_empty(), "{what}");
                assert!(one_error_line().eval(&stderr), "{what}: {stderr:?}");
                assert_eq!(env.snapshot(), before, "{what}");
            }
            Some(file) => {
                let key = row.args[1].to_str().unwrap();
                let etag = md5_hex(&row.stdin);
                assert_eq!(output.stdout, format!("{etag}\n").as_bytes(), "{what}");
                assert_eq!(stderr, "", "{what}");
                // One document file, directly in the store, and its lock.
                let lock = format!("{}.lock", file.strip_suffix(".json").unwrap());
                let added: Vec<PathBuf> = vec![
                    ["store", file].iter().collect(),
                    ["store", ".etagstore", "locks", &lock].iter().collect(),
                ];
                let mut changed = env.snapshot().changed_since(&before);
                changed.sort_by_key(|path| path.components().count());
                assert_eq!(changed, added, "{what}");
                env.cmd()
                    .args(["get", key])
                    .assert()
                    .success()
                    .stdout(row.stdin.clone())
                    .stderr("");
                stored_keys.push(key.to_string());
            }
        }
        assert_eq!(env.file("k").unwrap(), KEPT.as_bytes(), "{what}");
        let outside: Vec<_> = fs::read_dir(env.root())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(outside, ["store"], "{what}");
        assert_eq!(fs::read("/etc/passwd").ok(), passwd, "{what}");
    }

    // Every key that looked like another is its own document.
    stored_keys.sort();
    let listing: String = stored_keys.iter().map(|key| format!("{key}\n")).collect();
    env.cmd()
        .arg("list")
        .assert()
        .success()
        .stdout(listing)
        .stderr("");
    for key in ["a/b", "a%2Fb", "..", "%2E..", ".etagstore"] {
        env.cmd()
            .args(["get", key])
            .assert()
            .success()
            .stdout(doc_for(key))
            .stderr("");
    }
    // A number out of double range is not rounded on the way out either.
    env.run(["get", "n1", "--json"])
        .stdout(format!(
            "{{\"key\":\"n1\",\"etag\":\"{}\",\"value\":1e400}}\n",
            md5_hex(b"1e400")
        ))
        .check();
}

#[test]
fn a_50_mib_string_is_stored_and_read_back_whole() {
    let env = TestStore::new();
    let mut doc = Vec::with_capacity(50 << 20);
    doc.push(b'"');
    let piece = "lorem ipsum \\\"dolor\\\" sít ämet \\u00e9 ";
    while doc.len() < (50 << 20) - piece.len() {
        doc.extend(piece.as_bytes());
    }
    doc.push(b'"');
    let etag = md5_hex(&doc);
    env.run(["set-unsafe", "huge"])
        .stdin(doc.clone())
        .stdout(format!("{etag}\n"))
        .check();
    let out = env.cmd().args(["get", "huge"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), doc.len());
    assert_eq!(md5_hex(&out.stdout), etag);
    env.run(["etag", "huge"])
        .stdout(format!("{etag}\n"))
        .check();
    let out = env.cmd().args(["get", "huge", "--json"]).output().unwrap();
    assert!(out.status.success());
    let mut envelope = format!("{{\"key\":\"huge\",\"etag\":\"{etag}\",\"value\":").into_bytes();
    envelope.extend(&doc);
    envelope.extend(b"}\n");
    assert!(
        out.stdout == envelope,
        "the envelope holds the string whole"
    );
    assert!(env.temp_files().is_empty());
}

/// A store whose document `k` was replaced by a link to a file outside.
fn store_with_a_link() -> (TestStore, PathBuf) {
    let env = TestStore::new();
    env.put("k", KEPT);
    let outside = env.root().join("outside.json");
    fs::write(&outside, "{\"secret\": \"never printed\"}").unwrap();
    fs::remove_file(env.path("k")).unwrap();
    std::os::unix::fs::symlink(&outside, env.path("k")).unwrap();
    (env, outside)
}

#[test]
fn a_document_replaced_by_a_symlink_is_never_followed_out_of_the_store() {
    let (env, outside) = store_with_a_link();
    let secret_etag = md5_hex(&fs::read(&outside).unwrap());
    let before = env.snapshot();
    let runs: [&[&str]; 11] = [
        &["get", "k"],
        &["get", "k", "-o", "out.json"],
        &["get", "k", "--json"],
        &["etag", "k"],
        &["set", "k", "{}", "--etag", &secret_etag],
        &["set", "k", "{}", "--etag", "*"],
        &["set", "k", "{}", "--etag", ""],
        &["delete", "k", "--etag", &secret_etag],
        &["delete", "k", "--etag", "*"],
        &["edit", "k", "--jq", ".secret = 1"],
        &["edit", "k", "--", "cat"],
    ];
    for args in runs {
        env.run(args)
            .stderr_matches(
                one_error_line()
                    .and(predicate::str::contains("symbolic link"))
                    .and(predicate::str::contains(format!(
                        "'{}'",
                        env.path("k").display()
                    ))),
            )
            .status(1)
            .check();
        assert_eq!(env.snapshot(), before, "{args:?}");
    }
    // A listing names the link, lists the rest (nothing here) and exits 1.
    for args in [&["list", "-l"][..], &["list", "--json"][..]] {
        env.cmd().args(args).assert().code(1).stdout("").stderr(
            predicate::str::contains("skipped key \"k\"")
                .and(predicate::str::contains("symbolic link"))
                .and(predicate::str::contains(format!(
                    "'{}'",
                    env.path("k").display()
                ))),
        );
        assert_eq!(env.snapshot(), before, "{args:?}");
    }
    assert!(fs::symlink_metadata(env.path("k")).unwrap().is_symlink());
    assert!(env.temp_files().is_empty());
}

#[test]
fn set_unsafe_replaces_a_symlinked_document_and_leaves_its_target_alone() {
    let (env, outside) = store_with_a_link();
    let target = fs::read(&outside).unwrap();
    env.run(["set-unsafe", "k", "{\"new\": 1}"])
        .stdout(format!("{}\n", md5_hex(b"{\"new\": 1}")))
        .check();
    assert!(fs::symlink_metadata(env.path("k")).unwrap().is_file());
    assert_eq!(env.file("k").unwrap(), b"{\"new\": 1}");
    assert_eq!(fs::read(&outside).unwrap(), target);
}

#[test]
fn an_unwritable_lock_directory_fails_a_new_key_with_exit_1_and_changes_nothing() {
    if !require(running_as_root(), "chattr +i needs root") {
        return;
    }
    let env = TestStore::new();
    env.put("k", KEPT);
    let before = env.snapshot();
    let Some(immutable) = Immutable::set(&env.internal("locks")) else {
        return;
    };
    let runs: [&[&str]; 4] = [
        &["set-unsafe", "new", "{}"],
        &["set", "new", "{}", "--etag", ""],
        &["edit", "new", "--default", "{}", "--jq", ".a = 1"],
        &["edit", "new", "--default", "{}", "--", "sh", "-c", "echo 1"],
    ];
    for args in runs {
        env.run(args)
            .stderr_matches(one_error_line().and(predicate::str::contains(format!(
                "the store '{}' is not writable",
                env.store().display()
            ))))
            .status(1)
            .check();
        assert_eq!(env.snapshot(), before, "{args:?}");
    }
    drop(immutable);
    assert!(env.temp_files().is_empty());
}
