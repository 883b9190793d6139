//! Keys: awkward keys stay inside the store as one file each and list as
//! themselves; invalid keys exit 2 and touch nothing.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;

use crate::common::{md5_hex, TestStore};

/// Valid keys that a careless encoding would turn into paths, hidden files,
/// the store's own files, or names shared with another key.
const AWKWARD: &[&str] = &[
    "..",
    ".",
    "../x",
    "../../escape",
    "/etc/passwd",
    "a/b",
    "a%2Fb",
    "a%2fb",
    "100%",
    "%",
    "with space",
    " leading and trailing ",
    "back\\slash",
    ".etagstore",
    ".etagstore/tmp/x",
    ".hidden",
    "x.json",
    "x.lock",
    "*",
    "quote\"s'",
    "colon:semi;",
    "naïve",
    "日本語",
    "emoji🎉",
    "z",
];

/// A document that says which key it belongs to.
fn doc_for(key: &str) -> String {
    format!("{{\"key\": {}}}", serde_json::to_string(key).unwrap())
}

#[test]
fn a_plain_key_is_its_own_file_name() {
    let env = TestStore::new();
    env.run(["set", "blogpost", "{}", "--etag", ""])
        .stdout(format!("{}\n", md5_hex(b"{}")))
        .check();
    assert_eq!(env.json_files(), ["blogpost.json"]);
}

#[test]
fn each_awkward_key_is_one_file_directly_inside_the_store() {
    for key in AWKWARD {
        let env = TestStore::new();
        let doc = doc_for(key);
        env.run(["set", key, &doc, "--etag", ""])
            .stdout(format!("{}\n", md5_hex(doc.as_bytes())))
            .check();
        // Nothing outside the store, and in it one visible document file
        // next to the store's own directory.
        let outside: Vec<_> = fs::read_dir(env.root())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(outside, ["store"], "key {key:?}");
        let files = env.json_files();
        assert_eq!(files.len(), 1, "key {key:?}: {files:?}");
        let name = &files[0];
        assert!(
            !name.starts_with('.'),
            "key {key:?} is a hidden file {name:?}"
        );
        assert!(env.store().join(name).is_file(), "key {key:?}");
        assert_eq!(
            fs::read_to_string(env.store().join(name)).unwrap(),
            doc,
            "key {key:?}"
        );
        let mut visible: Vec<_> = fs::read_dir(env.store())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        visible.sort();
        let mut expected = [".etagstore", name.as_str()];
        expected.sort();
        assert_eq!(visible, expected, "key {key:?}");
        env.cmd()
            .args(["get", key])
            .assert()
            .success()
            .stdout(doc.clone())
            .stderr("");
        env.cmd()
            .arg("list")
            .assert()
            .success()
            .stdout(format!("{key}\n"))
            .stderr("");
    }
    assert!(!std::path::Path::new("/etc/passwd.json").exists());
}

#[test]
fn awkward_keys_in_one_store_never_share_a_file_and_list_as_themselves_sorted() {
    let env = TestStore::new();
    for key in AWKWARD {
        // Create-only: a key whose file another key already took fails here.
        let doc = doc_for(key);
        env.run(["set", key, &doc, "--etag", ""])
            .stdout(format!("{}\n", md5_hex(doc.as_bytes())))
            .check();
    }
    assert_eq!(env.json_files().len(), AWKWARD.len());
    for key in AWKWARD {
        env.cmd()
            .args(["get", key])
            .assert()
            .success()
            .stdout(doc_for(key))
            .stderr("");
    }
    // Sorted by key, not by file name: "z" comes before "日本語" although
    // an encoded "%E6…" file name sorts before "z.json".
    let mut sorted: Vec<&str> = AWKWARD.to_vec();
    sorted.sort();
    let expected: String = sorted.iter().map(|k| format!("{k}\n")).collect();
    env.cmd()
        .arg("list")
        .assert()
        .success()
        .stdout(expected)
        .stderr("");
    env.run(["list", ".."])
        .stdout("..\n../../escape\n../x\n")
        .check();
}

#[test]
fn a_key_that_starts_with_a_dash_is_given_after_a_double_dash() {
    let env = TestStore::new();
    env.run(["set", "--etag", "", "--", "-dash", "[1]"])
        .stdout(format!("{}\n", md5_hex(b"[1]")))
        .check();
    env.run(["get", "--", "-dash"]).stdout("[1]").check();
    assert_eq!(env.json_files(), ["-dash.json"]);
    env.cmd()
        .arg("list")
        .assert()
        .success()
        .stdout("-dash\n")
        .stderr("");
}

#[test]
fn the_longest_keys_are_accepted() {
    let env = TestStore::new();
    let keys = [
        "a".repeat(200),
        "/".repeat(81),                     // 81 × 3 + 5 = 248 bytes of file name
        format!("{}ab", "é".repeat(40)),    // 40 × 6 + 2 + 5 = 247
        format!("{}abcde", "/".repeat(80)), // 80 × 3 + 5 + 5 = 250
    ];
    for key in &keys {
        env.run(["set", key, "1", "--etag", ""])
            .stdout(format!("{}\n", md5_hex(b"1")))
            .check();
        env.run(["get", key]).stdout("1").check();
    }
    assert_eq!(env.json_files().len(), keys.len());
    let mut sorted = keys.to_vec();
    sorted.sort();
    env.cmd()
        .arg("list")
        .assert()
        .success()
        .stdout(sorted.iter().map(|k| format!("{k}\n")).collect::<String>())
        .stderr("");
}

/// Every command that takes a key, with that key.
fn key_commands(key: &OsStr) -> Vec<Vec<&OsStr>> {
    let s = |text: &'static str| OsStr::new(text);
    vec![
        vec![s("get"), key],
        vec![s("get"), key, s("--default"), s("{}")],
        vec![s("get"), key, s("-o"), s("out.json")],
        vec![s("etag"), key],
        vec![s("set"), key, s("1"), s("--etag"), s("")],
        vec![s("set"), key, s("--etag"), s("*")],
        vec![s("set-unsafe"), key, s("1")],
        vec![s("set-unsafe"), key],
        vec![s("delete"), key, s("--etag"), s("*")],
    ]
}

fn assert_refused_everywhere(env: &TestStore, key: &OsStr) {
    let before = env.snapshot();
    for args in key_commands(key) {
        env.run(&args).stdin("2").error_line().status(2).check();
    }
    assert_eq!(env.snapshot(), before, "key {key:?}");
}

#[test]
fn invalid_keys_exit_2_and_touch_nothing() {
    let invalid = [
        String::new(),
        "a\nb".to_string(),
        "a\tb".to_string(),
        "\r".to_string(),
        "bell\u{7}".to_string(),
        "del\u{7f}".to_string(),
        "c1\u{85}".to_string(),
        "a".repeat(201),
        "é".repeat(101),                     // 202 bytes
        "/".repeat(82),                      // 82 × 3 + 5 = 251 bytes of file name
        format!("{}abcdef", "/".repeat(80)), // 251
        "é".repeat(41),                      // 41 × 6 + 5 = 251
    ];
    // On a store that does not exist yet, and on one that holds a document.
    let fresh = TestStore::new();
    let used = TestStore::new();
    used.put("k", "{\"keep\": true}");
    for key in &invalid {
        for env in [&fresh, &used] {
            assert_refused_everywhere(env, OsStr::new(key));
        }
    }
    assert!(!fresh.store().exists());
}

#[test]
fn an_invalid_key_error_is_one_line_even_with_a_newline_in_the_key() {
    let env = TestStore::new();
    env.run(["get", "first line\nsecond line"])
        .error(["key"])
        .status(2)
        .check();
}

#[test]
fn a_key_that_is_not_utf8_exits_2_and_touches_nothing() {
    let fresh = TestStore::new();
    let used = TestStore::new();
    used.put("k", "{\"keep\": true}");
    for bytes in [&b"a\xffb"[..], b"\xc3", b"\xed\xa0\x80"] {
        for env in [&fresh, &used] {
            assert_refused_everywhere(env, OsStr::from_bytes(bytes));
        }
    }
    assert!(!fresh.store().exists());
}

#[test]
fn list_takes_any_prefix_and_shows_the_keys_that_start_with_it() {
    let env = TestStore::new();
    for key in ["a/b", "a/c", "a%2Fb", "日本", "日本語"] {
        env.put(key, "1");
    }
    env.run(["list", "a/"]).stdout("a/b\na/c\n").check();
    env.run(["list", "日本"]).stdout("日本\n日本語\n").check();
    env.run(["list", "a%"]).stdout("a%2Fb\n").check();
}
