//! Input documents: anything but exactly one JSON value in UTF-8 is exit 6
//! and changes nothing; valid documents are stored byte for byte.

use std::fs;

use predicates::prelude::*;

use crate::common::{md5_hex, one_error_line, TestStore};

const KEPT: &[u8] = b"{\"kept\": true}\n";

/// Inputs that are not exactly one JSON value in UTF-8.
fn invalid_documents() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("plain text", b"hello".to_vec()),
        ("two objects", b"{} {}".to_vec()),
        ("two numbers", b"1 2".to_vec()),
        (
            "two values on two lines",
            b"{\"a\":1}\n{\"a\":2}\n".to_vec(),
        ),
        ("trailing garbage", b"{\"a\": 1}x".to_vec()),
        ("a trailing bracket", b"[1]]".to_vec()),
        ("trailing comma", b"[1,]".to_vec()),
        ("comma in an object", b"{\"a\":1,}".to_vec()),
        ("missing colon", b"{\"a\" 1}".to_vec()),
        ("non-string key", b"{1: 2}".to_vec()),
        ("unclosed object", b"{\"a\": true".to_vec()),
        ("unclosed array", b"[\"a\"".to_vec()),
        ("unclosed string", b"\"abc".to_vec()),
        ("mismatched brackets", b"[}".to_vec()),
        ("leading zero", b"01".to_vec()),
        ("lone minus", b"-".to_vec()),
        ("bare dot", b"1.".to_vec()),
        ("plus sign", b"+1".to_vec()),
        ("NaN", b"NaN".to_vec()),
        ("single quotes", b"'a'".to_vec()),
        ("truncated literal", b"tru".to_vec()),
        ("capitalised literal", b"True".to_vec()),
        ("comment", b"// c\n1".to_vec()),
        ("bad escape", b"\"\\x\"".to_vec()),
        ("short unicode escape", b"\"\\u12\"".to_vec()),
        ("raw tab in a string", b"\"a\tb\"".to_vec()),
        ("raw newline in a string", b"\"a\nb\"".to_vec()),
        ("empty input", b"".to_vec()),
        ("whitespace only", b" \n\t\r\n ".to_vec()),
        ("invalid UTF-8", b"\xff".to_vec()),
        ("invalid UTF-8 in a string", b"\"a\xffb\"".to_vec()),
        ("invalid UTF-8 in a key", b"{\"\xfe\": 1}".to_vec()),
        ("truncated UTF-8 in a string", b"[\"\xc3\"]".to_vec()),
        ("overlong UTF-8 in a string", b"\"\xc0\xaf\"".to_vec()),
        ("UTF-8 surrogate in a string", b"\"\xed\xa0\x80\"".to_vec()),
        ("truncated UTF-8 at the end", b"1 \xe2\x82".to_vec()),
        ("Latin-1 text", b"\"caf\xe9\"".to_vec()),
        ("NUL alone", b"\0".to_vec()),
        ("NUL in a string", b"{\"a\": \"x\0y\"}".to_vec()),
        ("NUL after the value", b"{}\0".to_vec()),
        ("NUL between values", b"[1,\0 2]".to_vec()),
        ("nesting 129 deep", nested(129)),
        ("objects nested 129 deep", nested_objects(129)),
        ("open brackets 100,000 deep", b"[".repeat(100_000)),
        ("brackets 100,000 deep", nested(100_000)),
        ("objects 100,000 deep", b"{\"a\":".repeat(100_000)),
        ("NUL before the value", b"\0 {}".to_vec()),
    ]
}

/// `[[[…]]]`, `depth` levels.
fn nested(depth: usize) -> Vec<u8> {
    let mut doc = b"[".repeat(depth);
    doc.extend(b"]".repeat(depth));
    doc
}

/// `{"a":{"a":…{}…}}`, `depth` levels.
fn nested_objects(depth: usize) -> Vec<u8> {
    let mut doc = b"{\"a\":".repeat(depth - 1);
    doc.extend(b"{}");
    doc.extend(b"}".repeat(depth - 1));
    doc
}

fn invalid_document_error() -> impl Predicate<str> {
    one_error_line().and(predicate::str::contains("invalid document"))
}

/// A store holding `k` = KEPT; returns it and `k`'s ETag.
fn store_with_a_document() -> (TestStore, String) {
    let env = TestStore::new();
    let etag = env.put("k", KEPT);
    (env, etag)
}

/// Checks that nothing was written and nothing was left behind: `k` is
/// unchanged, `new` was never created, and no temporary or lock file remains.
fn assert_nothing_changed(env: &TestStore, before: &crate::common::Snapshot, case: &str) {
    assert_eq!(env.file("k").unwrap(), KEPT, "{case}");
    assert!(env.file("new").is_none(), "{case}");
    assert!(
        env.temp_files().is_empty(),
        "{case}: {:?}",
        env.temp_files()
    );
    assert!(!env.lock_file("new").exists(), "{case}");
    assert_eq!(&env.snapshot(), before, "{case}");
}

#[test]
fn invalid_documents_on_standard_input_exit_6_and_change_nothing() {
    let (env, etag) = store_with_a_document();
    let before = env.snapshot();
    for (case, doc) in invalid_documents() {
        let runs: [&[&str]; 5] = [
            &["set-unsafe", "k"],
            &["set", "k", "--etag", &etag],
            &["set", "k", "-", "--etag", "*"],
            &["set", "new", "--etag", ""],
            &["set-unsafe", "new"],
        ];
        for args in runs {
            env.run(args)
                .stdin(doc.clone())
                .stderr_matches(invalid_document_error())
                .status(6)
                .check();
        }
        assert_nothing_changed(&env, &before, case);
    }
}

#[test]
fn invalid_documents_from_a_file_exit_6_and_change_nothing() {
    let (env, etag) = store_with_a_document();
    let input = env.root().join("input.json");
    for (case, doc) in invalid_documents() {
        fs::write(&input, &doc).unwrap();
        let before = env.snapshot();
        for args in [
            vec!["set", "k", "-f", "input.json", "--etag", &etag],
            vec!["set-unsafe", "new", "-f", "input.json"],
        ] {
            env.run(args)
                .stderr_matches(invalid_document_error())
                .status(6)
                .check();
        }
        assert_nothing_changed(&env, &before, case);
    }
}

#[test]
fn invalid_documents_as_an_argument_exit_6_and_change_nothing() {
    let (env, etag) = store_with_a_document();
    let before = env.snapshot();
    for doc in ["", " ", "hello", "{} {}", "[1,]", "{\"a\":", "\"a\tb\""] {
        for args in [
            vec!["set", "k", doc, "--etag", &etag],
            vec!["set-unsafe", "new", doc],
        ] {
            env.run(args)
                .stderr_matches(invalid_document_error())
                .status(6)
                .check();
        }
        assert_nothing_changed(&env, &before, doc);
    }
}

#[test]
fn a_container_left_open_after_a_number_is_rejected() {
    // Found by this suite: input that ends in a number inside an unclosed
    // array or object was accepted and stored.
    let (env, etag) = store_with_a_document();
    let before = env.snapshot();
    for doc in [
        "[1",
        "[1, 2",
        "{\"a\": 1",
        "{\"a\":[0",
        "[1.5",
        "[-0",
        "[1e5",
        "{\"a\":[{\"b\":2",
    ] {
        for args in [vec!["set", "k", "--etag", &etag], vec!["set-unsafe", "new"]] {
            env.run(args)
                .stdin(doc)
                .stderr_matches(invalid_document_error())
                .status(6)
                .check();
        }
        env.run(["get", "missing", "--default", doc])
            .stderr_matches(invalid_document_error())
            .status(6)
            .check();
        assert_nothing_changed(&env, &before, doc);
    }
}

#[test]
fn a_rejected_first_write_leaves_no_document_temporary_file_or_lock() {
    let env = TestStore::new();
    env.run(["set", "new", "--etag", ""])
        .stdin("{oops")
        .stderr_matches(invalid_document_error())
        .status(6)
        .check();
    assert!(env.json_files().is_empty());
    assert!(env.temp_files().is_empty());
    assert!(!env.lock_file("new").exists());
}

#[test]
fn a_rejected_write_is_exit_6_even_when_the_precondition_also_fails() {
    // The input is checked before the precondition: bad input is the
    // problem to report, and it is found before any lock is taken.
    let (env, _) = store_with_a_document();
    let before = env.snapshot();
    env.run(["set", "k", "--etag", &md5_hex(b"stale")])
        .stdin("not json")
        .stderr_matches(invalid_document_error())
        .status(6)
        .check();
    assert_nothing_changed(&env, &before, "stale etag and bad input");
}

#[test]
fn nesting_128_deep_is_accepted_byte_for_byte() {
    let env = TestStore::new();
    for doc in [nested(128), nested_objects(128)] {
        env.run(["set-unsafe", "deep"])
            .stdin(doc.clone())
            .stdout(format!("{}\n", md5_hex(&doc)))
            .check();
        assert_eq!(env.file("deep").unwrap(), doc);
    }
}

#[test]
fn nesting_129_deep_is_rejected_but_128_levels_twice_in_a_row_are_fine() {
    let env = TestStore::new();
    // Depth is nesting, not the number of brackets: two siblings 128 deep.
    let half = nested(127);
    let mut siblings = b"[".to_vec();
    siblings.extend(&half);
    siblings.push(b',');
    siblings.extend(&half);
    siblings.push(b']');
    env.run(["set-unsafe", "deep"])
        .stdin(siblings.clone())
        .stdout(format!("{}\n", md5_hex(&siblings)))
        .check();
    env.run(["set-unsafe", "deep"])
        .stdin(nested(129))
        .stderr_matches(invalid_document_error())
        .status(6)
        .check();
    assert_eq!(env.file("deep").unwrap(), siblings);
}

/// Byte offset 65,536: where a 64 KiB read of a file ends.
const BOUNDARY: usize = 64 * 1024;

/// A one-string document whose bytes `tail` start one byte before the
/// boundary, so a multi-byte character straddles two reads of the file.
fn straddling(tail: &[u8]) -> Vec<u8> {
    let mut doc = b"\"".to_vec();
    doc.resize(BOUNDARY - 1, b'a');
    doc.extend(tail);
    doc.extend(b"z\"");
    doc
}

#[test]
fn characters_split_across_reads_are_checked_as_a_whole() {
    let env = TestStore::new();
    let input = env.root().join("input.json");
    for tail in ["é".as_bytes(), "€".as_bytes(), "🎉".as_bytes()] {
        let doc = straddling(tail);
        fs::write(&input, &doc).unwrap();
        env.run(["set-unsafe", "k", "-f", "input.json"])
            .stdout(format!("{}\n", md5_hex(&doc)))
            .check();
        assert_eq!(env.file("k").unwrap(), doc);
    }
    let kept = env.file("k").unwrap();
    for tail in [&b"\xe2\x82"[..], b"\xc3", b"\xe2\x82\xff", b"\xf0\x9f\x8e"] {
        fs::write(&input, straddling(tail)).unwrap();
        env.run(["set-unsafe", "k", "-f", "input.json"])
            .stderr_matches(invalid_document_error())
            .status(6)
            .check();
        assert_eq!(env.file("k").unwrap(), kept);
    }
    assert!(env.temp_files().is_empty());
}

#[test]
fn valid_edge_documents_are_stored_and_read_back_byte_for_byte() {
    let env = TestStore::new();
    let docs: &[&[u8]] = &[
        b"  {\"a\": 1}  \n\n",
        b"\r\n[1]\r\n",
        b"\t\"tab around\"\t",
        b"0",
        b"-0",
        b"42",
        b"-1.5e+10",
        b"1E-7",
        b"123456789012345678901234567890",
        b"true",
        b"false",
        b"null",
        b"\"\"",
        b"\"a string\"",
        b"[]",
        b"{}",
        b"{\"a\":1,\"a\":2}",
        "{\"é\": \"日本語 🎉\", \"esc\": \"\\u00e9\\n\\\"\\\\\\/\"}".as_bytes(),
        b"\"\\ud83c\\udf89\"",
        b"[1,\n  {\"nested\": [true, false, null]},\n  \"x\"\n]\n",
    ];
    for doc in docs {
        let etag = md5_hex(doc);
        env.run(["set-unsafe", "k"])
            .stdin(doc.to_vec())
            .stdout(format!("{etag}\n"))
            .check();
        assert_eq!(env.file("k").unwrap(), *doc);
        env.cmd()
            .args(["get", "k"])
            .assert()
            .success()
            .stdout(doc.to_vec())
            .stderr("");
    }
    assert!(env.temp_files().is_empty());
}

#[test]
fn a_large_document_is_stored_byte_for_byte() {
    let env = TestStore::new();
    let mut doc = b"[".to_vec();
    for i in 0..100_000 {
        doc.extend(format!("{{\"n\": {i}, \"s\": \"ü€🎉\"}},\n").as_bytes());
    }
    doc.extend(b"null]\n");
    assert!(doc.len() > 2 << 20);
    fs::write(env.root().join("big.json"), &doc).unwrap();
    env.run(["set", "big", "-f", "big.json", "--etag", ""])
        .stdout(format!("{}\n", md5_hex(&doc)))
        .check();
    assert_eq!(env.file("big").unwrap(), doc);
    env.run(["get", "big", "-o", "copy.json"])
        .stdout(format!("{}\n", md5_hex(&doc)))
        .check();
    assert_eq!(fs::read(env.root().join("copy.json")).unwrap(), doc);
}

#[test]
fn get_with_an_invalid_default_exits_6_and_writes_nothing() {
    let (env, _) = store_with_a_document();
    let before = env.snapshot();
    for default in ["", "{", "not json", "{} {}", "[1,]"] {
        for key in ["missing", "k"] {
            for extra in [&[][..], &["-o", "out.json"], &["--json"]] {
                env.run(["get", key, "--default", default])
                    .args(extra)
                    .stderr_matches(invalid_document_error())
                    .status(6)
                    .check();
            }
        }
    }
    assert_eq!(env.snapshot(), before);
}
