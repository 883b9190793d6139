//! The command-line contract: what each command prints, its exit code, where
//! the store is, and that errors are one `error:` line on standard error.

use std::fs;
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, UNIX_EPOCH};

use predicates::prelude::*;
use serde_json::{json, Value};

use crate::common::{line, md5_hex, TestStore};

/// A JSON string document of `len` bytes in total.
fn string_doc(len: usize, fill: char) -> String {
    format!("\"{}\"", fill.to_string().repeat(len - 2))
}

#[test]
fn set_prints_the_md5_of_the_bytes_and_get_prints_them_back() {
    let env = TestStore::new();
    let doc = "{\"text\": \"hello\"}\n";
    env.run(["set", "greeting", "--etag", ""])
        .stdin(doc)
        .stdout(format!("{}\n", md5_hex(doc.as_bytes())))
        .check();
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
    env.put("other", "1");
    env.run(["get", "nope"]).error(["nope"]).status(4).check();
}

#[test]
fn etag_prints_the_current_etag() {
    let env = TestStore::new();
    let etag = env.put("k", "[1, 2]");
    env.run(["etag", "k"]).stdout(format!("{etag}\n")).check();
}

#[test]
fn etag_of_a_missing_key_is_exit_4() {
    let env = TestStore::new();
    env.put("other", "1");
    env.run(["etag", "nope"]).error(["nope"]).status(4).check();
}

#[test]
fn get_prints_the_document_exactly_without_adding_a_newline() {
    let env = TestStore::new();
    let doc = "\n  [1,\n   2]\t";
    env.put("k", doc);
    env.cmd()
        .args(["get", "k"])
        .assert()
        .success()
        .stdout(doc)
        .stderr("");
}

#[test]
fn get_with_output_writes_the_file_and_prints_only_the_etag() {
    let env = TestStore::new();
    let doc = "{\"a\": 1}";
    let etag = env.put("k", doc);
    // A longer file already there must be replaced, not partly overwritten.
    let out = env.root().join("out.json");
    fs::write(&out, "x".repeat(100)).unwrap();
    env.run(["get", "k", "-o", "out.json"])
        .stdout(line(&etag))
        .check();
    assert_eq!(fs::read_to_string(&out).unwrap(), doc);
    env.run(["get", "k", "--output"])
        .arg(env.root().join("long.json"))
        .stdout(line(&etag))
        .check();
    assert_eq!(
        fs::read_to_string(env.root().join("long.json")).unwrap(),
        doc
    );
}

#[test]
fn get_with_output_of_a_missing_key_exits_4_and_leaves_the_file_alone() {
    let env = TestStore::new();
    env.put("other", "1");
    fs::write(env.root().join("keep.json"), "keep me").unwrap();
    let before = env.snapshot();
    for out in ["keep.json", "new.json"] {
        env.run(["get", "nope", "-o", out])
            .error(["nope"])
            .status(4)
            .check();
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn get_json_prints_one_envelope_with_the_key_the_etag_and_the_value() {
    let env = TestStore::new();
    let doc = "  {\"a\": [1, 2], \"b\": \"é\"}\n";
    let etag = env.put("k", doc);
    let out = env
        .cmd()
        .args(["get", "k", "--json"])
        .assert()
        .success()
        .stderr("")
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.ends_with("}\n") && text.lines().count() == 1,
        "{text:?}"
    );
    let envelope: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        envelope,
        json!({"key": "k", "etag": etag, "value": {"a": [1, 2], "b": "é"}})
    );
    // The ETag is the one of the stored bytes, surrounding whitespace included.
    assert_eq!(etag, md5_hex(doc.as_bytes()));
}

#[test]
fn get_json_wraps_top_level_scalars() {
    let env = TestStore::new();
    for (doc, value) in [
        (" 42 \n", json!(42)),
        ("\"text\"", json!("text")),
        ("null", json!(null)),
        ("false\n", json!(false)),
    ] {
        let etag = env.put("k", doc);
        env.cmd()
            .args(["get", "k", "--json"])
            .assert()
            .success()
            .stdout(predicate::function(move |out: &str| {
                serde_json::from_str::<Value>(out).ok()
                    == Some(json!({"key": "k", "etag": etag, "value": value}))
            }))
            .stderr("");
    }
}

#[test]
fn get_json_escapes_the_key_and_carries_a_document_larger_than_a_mebibyte() {
    let env = TestStore::new();
    let key = "say \"hi\"/é";
    let doc = format!("[{}, 1]", string_doc(3 << 20, 'z'));
    let etag = env.put(key, &doc);
    let out = env
        .cmd()
        .args(["get", key, "--json"])
        .assert()
        .success()
        .stderr("")
        .get_output()
        .stdout
        .clone();
    let envelope: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(envelope["key"], json!(key));
    assert_eq!(envelope["etag"], json!(etag));
    assert_eq!(
        envelope["value"],
        serde_json::from_str::<Value>(&doc).unwrap()
    );
}

#[test]
fn get_with_both_output_and_json_is_a_usage_error() {
    let env = TestStore::new();
    env.put("k", "1");
    env.run(["get", "k", "--json", "-o", "out.json"])
        .error_line()
        .status(2)
        .unchanged()
        .check();
}

#[test]
fn get_default_prints_the_default_for_a_missing_key_and_creates_nothing() {
    let env = TestStore::new();
    let before = env.snapshot();
    env.run(["get", "counter", "--default", "0"])
        .stdout("0")
        .check();
    env.run(["get", "k", "--default", " {\"a\": 1}\n"])
        .stdout(" {\"a\": 1}\n")
        .check();
    assert_eq!(env.snapshot(), before);
}

#[test]
fn get_default_with_output_writes_the_default_and_prints_an_empty_etag() {
    let env = TestStore::new();
    env.run(["get", "k", "--default", "{\"n\": 0}", "-o", "out.json"])
        .stdout("\n")
        .check();
    assert_eq!(
        fs::read_to_string(env.root().join("out.json")).unwrap(),
        "{\"n\": 0}"
    );
    assert!(!env.store().exists());
}

#[test]
fn get_default_with_json_has_an_empty_etag() {
    let env = TestStore::new();
    env.cmd()
        .args(["get", "k", "--default", "[true]", "--json"])
        .assert()
        .success()
        .stdout(predicate::function(|out: &str| {
            serde_json::from_str::<Value>(out).ok()
                == Some(json!({"key": "k", "etag": "", "value": [true]}))
        }))
        .stderr("");
    assert!(!env.store().exists());
}

#[test]
fn get_default_is_ignored_when_the_key_exists() {
    let env = TestStore::new();
    let doc = "{\"real\": true}";
    let etag = env.put("k", doc);
    env.cmd()
        .args(["get", "k", "--default", "{}"])
        .assert()
        .success()
        .stdout(doc)
        .stderr("");
    env.run(["get", "k", "--default", "{}", "-o", "out.json"])
        .stdout(line(&etag))
        .check();
    assert_eq!(
        fs::read_to_string(env.root().join("out.json")).unwrap(),
        doc
    );
    env.cmd()
        .args(["get", "k", "--default", "{}", "--json"])
        .assert()
        .success()
        .stdout(predicate::function(move |out: &str| {
            serde_json::from_str::<Value>(out).ok()
                == Some(json!({"key": "k", "etag": etag, "value": {"real": true}}))
        }))
        .stderr("");
}

#[test]
fn set_reads_the_document_from_an_argument() {
    let env = TestStore::new();
    let doc = "{\"from\": \"argument\"}";
    env.run(["set", "k", doc, "--etag", ""])
        .stdout(line(&md5_hex(doc.as_bytes())))
        .check();
    assert_eq!(env.file("k").unwrap(), doc.as_bytes());
}

#[test]
fn set_reads_the_document_from_a_file() {
    let env = TestStore::new();
    let doc = "{\"from\": \"file\"}\n";
    fs::write(env.root().join("in.json"), doc).unwrap();
    env.run(["set", "k", "-f", "in.json", "--etag", ""])
        .stdout(line(&md5_hex(doc.as_bytes())))
        .check();
    assert_eq!(env.file("k").unwrap(), doc.as_bytes());
    let doc2 = "[2]";
    fs::write(env.root().join("in2.json"), doc2).unwrap();
    env.run(["set", "k", "--file"])
        .arg(env.root().join("in2.json"))
        .args(["--etag", &md5_hex(doc.as_bytes())])
        .stdout(line(&md5_hex(doc2.as_bytes())))
        .check();
    assert_eq!(env.file("k").unwrap(), doc2.as_bytes());
}

#[test]
fn set_reads_standard_input_without_a_value_or_with_a_dash() {
    let env = TestStore::new();
    let doc = "{\"from\": \"stdin\"}\n";
    env.run(["set", "k", "--etag", ""])
        .stdin(doc)
        .stdout(line(&md5_hex(doc.as_bytes())))
        .check();
    assert_eq!(env.file("k").unwrap(), doc.as_bytes());
    let doc2 = "\"dash\"";
    env.run(["set", "k", "-", "--etag", &md5_hex(doc.as_bytes())])
        .stdin(doc2)
        .stdout(line(&md5_hex(doc2.as_bytes())))
        .check();
    assert_eq!(env.file("k").unwrap(), doc2.as_bytes());
}

#[test]
fn set_does_not_read_standard_input_when_given_a_value() {
    let env = TestStore::new();
    env.run(["set", "k", "1", "--etag", ""])
        .stdin("2")
        .stdout(line(&md5_hex(b"1")))
        .check();
    assert_eq!(env.file("k").unwrap(), b"1");
}

#[test]
fn set_without_etag_is_a_usage_error_and_writes_nothing() {
    let env = TestStore::new();
    env.put("k", "1");
    let before = env.snapshot();
    for key in ["k", "new"] {
        env.run(["set", key, "2"])
            .error(["--etag"])
            .status(2)
            .check();
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn set_with_both_a_value_and_a_file_is_a_usage_error() {
    let env = TestStore::new();
    env.put("k", "1");
    fs::write(env.root().join("in.json"), "3").unwrap();
    let before = env.snapshot();
    env.run(["set", "k", "2", "-f", "in.json", "--etag", "*"])
        .error_line()
        .status(2)
        .check();
    env.run(["set-unsafe", "k", "2", "-f", "in.json"])
        .error_line()
        .status(2)
        .check();
    assert_eq!(env.snapshot(), before);
}

#[test]
fn set_unsafe_creates_and_overwrites_and_prints_the_new_etag() {
    let env = TestStore::new();
    for doc in ["{\"v\": 1}", "{\"v\": 2}\n", "[]"] {
        env.run(["set-unsafe", "k", doc])
            .stdout(line(&md5_hex(doc.as_bytes())))
            .check();
        assert_eq!(env.file("k").unwrap(), doc.as_bytes());
    }
    let doc = "\"from a file\"";
    fs::write(env.root().join("in.json"), doc).unwrap();
    env.run(["set-unsafe", "k", "-f", "in.json"])
        .stdout(line(&md5_hex(doc.as_bytes())))
        .check();
    assert_eq!(env.file("k").unwrap(), doc.as_bytes());
}

#[test]
fn delete_removes_the_document_and_prints_nothing() {
    let env = TestStore::new();
    let etag = env.put("k", "{}");
    env.put("other", "1");
    env.run(["delete", "k", "--etag", &etag]).check();
    assert!(!env.path("k").exists());
    env.run(["get", "k"]).error_line().status(4).check();
    env.run(["list"]).stdout("other\n").check();
}

#[test]
fn list_prints_the_keys_sorted_one_a_line() {
    let env = TestStore::new();
    for key in ["b", "a/2", "c", "a/10", "A"] {
        env.put(key, "1");
    }
    env.cmd()
        .arg("list")
        .assert()
        .success()
        .stdout("A\na/10\na/2\nb\nc\n")
        .stderr("");
}

#[test]
fn list_with_a_prefix_prints_only_the_keys_that_start_with_it() {
    let env = TestStore::new();
    for key in ["users/1", "users/2", "users", "usersX", "groups/1"] {
        env.put(key, "1");
    }
    env.run(["list", "users/"])
        .stdout("users/1\nusers/2\n")
        .check();
    env.run(["list", "users"])
        .stdout("users\nusers/1\nusers/2\nusersX\n")
        .check();
    env.run(["list", "nothing"]).check();
}

#[test]
fn list_long_prints_etag_size_utc_time_and_key_tab_separated() {
    let env = TestStore::new();
    let doc_a = "{\"a\": 1}\n";
    let doc_b = "[1, 2, 3]";
    let etag_a = env.put("a/x", doc_a);
    let etag_b = env.put("b", doc_b);
    let set_mtime = |name: &str, seconds: u64| {
        fs::File::options()
            .write(true)
            .open(env.store().join(name))
            .unwrap()
            .set_modified(UNIX_EPOCH + Duration::from_secs(seconds))
            .unwrap();
    };
    set_mtime("a%2Fx.json", 981_173_106); // 2001-02-03T04:05:06Z
    set_mtime("b.json", 1_709_251_199); // 2024-02-29T23:59:59Z, a leap day
    env.run(["list", "-l"])
        .stdout(format!(
            "{etag_a}\t{}\t2001-02-03T04:05:06Z\ta/x\n{etag_b}\t{}\t2024-02-29T23:59:59Z\tb\n",
            doc_a.len(),
            doc_b.len()
        ))
        .check();
    env.run(["list", "--long", "b"])
        .stdout(format!(
            "{etag_b}\t{}\t2024-02-29T23:59:59Z\tb\n",
            doc_b.len()
        ))
        .check();
}

#[test]
fn list_long_shows_a_fresh_document_with_a_well_formed_time() {
    let env = TestStore::new();
    let etag = env.put("k", "true");
    let out = env
        .cmd()
        .args(["list", "-l"])
        .assert()
        .success()
        .stderr("")
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let fields: Vec<&str> = text.strip_suffix('\n').unwrap().split('\t').collect();
    assert_eq!(fields.len(), 4, "{text:?}");
    assert_eq!((fields[0], fields[1], fields[3]), (etag.as_str(), "4", "k"));
    assert!(is_rfc3339_utc(fields[2]), "{:?}", fields[2]);
}

/// `YYYY-MM-DDTHH:MM:SSZ`
fn is_rfc3339_utc(time: &str) -> bool {
    let bytes = time.as_bytes();
    bytes.len() == 20
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'Z',
            _ => b.is_ascii_digit(),
        })
}

#[test]
fn list_json_prints_one_object_a_line_with_key_etag_size_and_modified() {
    let env = TestStore::new();
    let docs = [("quote\"d é", "{\"x\": \"y\"}"), ("z", "7\n")];
    for (key, doc) in docs {
        env.put(key, doc);
    }
    fs::File::options()
        .write(true)
        .open(env.store().join("z.json"))
        .unwrap()
        .set_modified(UNIX_EPOCH + Duration::from_secs(981_173_106))
        .unwrap();
    let out = env
        .cmd()
        .args(["list", "--json"])
        .assert()
        .success()
        .stderr("")
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text:?}");
    for (object, (key, doc)) in lines.iter().zip(docs) {
        let fields: Vec<&String> = object.as_object().unwrap().keys().collect();
        assert_eq!(fields.len(), 4, "{object}");
        assert_eq!(object["key"], json!(key));
        assert_eq!(object["etag"], json!(md5_hex(doc.as_bytes())));
        assert_eq!(object["size"], json!(doc.len()));
        assert!(is_rfc3339_utc(object["modified"].as_str().unwrap()));
    }
    assert_eq!(lines[1]["modified"], json!("2001-02-03T04:05:06Z"));
}

#[test]
fn list_with_both_long_and_json_is_a_usage_error() {
    let env = TestStore::new();
    env.put("k", "1");
    env.run(["list", "-l", "--json"])
        .error_line()
        .status(2)
        .check();
}

#[test]
fn list_shows_only_documents_not_other_files_in_the_store() {
    let env = TestStore::new();
    env.put("k", "1");
    fs::write(env.store().join("notes.txt"), "operator notes").unwrap();
    fs::write(env.store().join(".hidden.json"), "{}").unwrap();
    fs::create_dir(env.store().join("dir.json")).unwrap();
    env.cmd()
        .arg("list")
        .assert()
        .success()
        .stdout("k\n")
        .stderr("");
    env.cmd()
        .args(["list", "--json"])
        .assert()
        .success()
        .stdout(
            predicate::str::starts_with("{\"key\":\"k\"")
                .and(predicate::function(|s: &str| s.lines().count() == 1)),
        )
        .stderr("");
}

#[test]
fn the_store_flag_wins_over_the_environment_variable() {
    let env = TestStore::new();
    let flag = env.root().join("from-flag");
    let var = env.root().join("from-env");
    env.cmd_without_store()
        .env("ETAGSTORE_DIR", &var)
        .arg("--store")
        .arg(&flag)
        .args(["set", "k", "1", "--etag", ""])
        .assert()
        .success()
        .stdout(line(&md5_hex(b"1")))
        .stderr("");
    assert_eq!(fs::read(flag.join("k.json")).unwrap(), b"1");
    assert!(!var.exists());
    env.cmd_without_store()
        .env("ETAGSTORE_DIR", &var)
        .args(["list", "--store"])
        .arg(&flag)
        .assert()
        .success()
        .stdout("k\n")
        .stderr("");
}

#[test]
fn the_environment_variable_names_the_store_when_no_flag_is_given() {
    let env = TestStore::new();
    let var = env.root().join("from-env");
    env.cmd_without_store()
        .env("ETAGSTORE_DIR", &var)
        .args(["set", "k", "2", "--etag", ""])
        .assert()
        .success()
        .stdout(line(&md5_hex(b"2")))
        .stderr("");
    assert_eq!(fs::read(var.join("k.json")).unwrap(), b"2");
    assert!(!env.root().join("_filestore").exists());
    env.cmd_without_store()
        .env("ETAGSTORE_DIR", &var)
        .args(["get", "k"])
        .assert()
        .success()
        .stdout("2")
        .stderr("");
}

#[test]
fn the_default_store_is_filestore_in_the_current_directory() {
    let env = TestStore::new();
    env.run_without_store(["set", "k", "3", "--etag", ""])
        .stdout(line(&md5_hex(b"3")))
        .check();
    assert_eq!(
        fs::read(env.root().join("_filestore/k.json")).unwrap(),
        b"3"
    );
    env.cmd_without_store()
        .arg("list")
        .assert()
        .success()
        .stdout("k\n")
        .stderr("");
}

#[test]
fn global_options_may_come_after_the_subcommand() {
    let env = TestStore::new();
    env.put("k", "[]");
    env.run_without_store(["get", "k", "--store"])
        .arg(env.store())
        .args(["--lock-timeout", "1"])
        .stdout("[]")
        .check();
}

#[test]
fn an_existing_empty_store_directory_accepts_the_first_write() {
    let env = TestStore::new();
    fs::create_dir(env.store()).unwrap();
    env.cmd()
        .arg("list")
        .assert()
        .success()
        .stdout("")
        .stderr("");
    env.put("k", "{}");
    assert_eq!(env.file("k").unwrap(), b"{}");
}

#[test]
fn version_prints_the_name_and_version() {
    let env = TestStore::new();
    env.cmd()
        .arg("--version")
        .assert()
        .success()
        .stdout(format!("etagstore {}\n", env!("CARGO_PKG_VERSION")))
        .stderr("");
}

#[test]
fn help_lists_the_exit_codes_and_the_environment_variable() {
    let env = TestStore::new();
    let out = env
        .cmd()
        .arg("--help")
        .assert()
        .success()
        .stderr("")
        .get_output()
        .stdout
        .clone();
    let help = String::from_utf8(out).unwrap();
    for code in 0..=6 {
        assert!(
            help.lines().any(|l| {
                let mut words = l.split_whitespace();
                words.next() == Some(&code.to_string()) && words.next().is_some()
            }),
            "exit code {code} is not explained in:\n{help}"
        );
    }
    assert!(help.contains("ETAGSTORE_DIR"), "{help}");
    assert!(!env.store().exists());
}

#[test]
fn usage_errors_exit_2_with_one_error_line() {
    let env = TestStore::new();
    env.put("k", "1");
    let before = env.snapshot();
    let cases: &[&[&str]] = &[
        &["frobnicate"],
        &["get"],
        &["get", "k", "--bogus"],
        &["set", "k", "1"],
        &["delete", "k"],
        &["list", "a", "b"],
        &["--lock-timeout", "soon", "set-unsafe", "k", "2"],
        &["--lock-timeout", "-1", "set-unsafe", "k", "2"],
        &["--lock-timeout", "nan", "set-unsafe", "k", "2"],
        &[],
    ];
    for args in cases {
        env.run(*args).error_line().status(2).check();
    }
    assert_eq!(env.snapshot(), before);
}

/// One rule for every seconds flag (--lock-timeout before or after the
/// subcommand, watch --timeout, edit --timeout; docs/contract.md): a number
/// ≥ 0; a value too large for the clock, or `inf`, is no limit at all; a
/// negative number, NaN or a word is exit 2.
#[test]
fn every_seconds_flag_takes_a_huge_value_or_inf_as_no_limit() {
    // Found by this suite: a timeout too large for a Duration (1e20) or for an
    // Instant (1e19) made the process panic (exit 101, a backtrace on stderr);
    // later, `watch --timeout 1e19` gave up at once while a lock waited forever.
    let env = TestStore::new();
    let old = env.put("k", "1");
    let new = env.put("k", "2");
    for seconds in ["1e19", "1e20", "1e300", "inf", "Infinity"] {
        env.run(["--lock-timeout", seconds, "list"])
            .stdout("k\n")
            .check();
        env.run(["--lock-timeout", seconds, "set-unsafe", "k", "2"])
            .stdout(line(&new))
            .check();
        env.run(["set-unsafe", "k", "2", "--lock-timeout", seconds])
            .stdout(line(&new))
            .check();
        // The key changed since `old`: the watch answers at once.
        env.run(["watch", "k", "--etag", &old, "--timeout", seconds])
            .stdout(line(&new))
            .check();
        env.run(["edit", "k", "--timeout", seconds, "--", "cat"])
            .stdout(line(&new))
            .check();
    }
    assert!(env.temp_files().is_empty());
}

#[test]
fn every_seconds_flag_refuses_a_negative_number_nan_or_a_word_alike() {
    let env = TestStore::new();
    env.put("k", "1");
    let before = env.snapshot();
    for (seconds, why) in [
        ("-1", "must be ≥ 0"),
        ("nan", "not a number of seconds"),
        ("soon", "not a number of seconds"),
        ("", "not a number of seconds"),
    ] {
        let flag = format!("'{seconds}'");
        for args in [
            vec!["--lock-timeout", seconds, "set-unsafe", "k", "2"],
            vec!["set-unsafe", "k", "2", "--lock-timeout", seconds],
            vec!["watch", "k", "--timeout", seconds],
            vec!["edit", "k", "--timeout", seconds, "--", "cat"],
        ] {
            env.run(&args).error([flag.as_str(), why]).status(2).check();
        }
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn reading_a_store_that_does_not_exist_behaves_as_empty_and_creates_nothing() {
    let env = TestStore::new();
    let before = env.snapshot();
    for args in [
        vec!["list"],
        vec!["list", "-l"],
        vec!["list", "--json"],
        vec!["list", "k"],
    ] {
        env.run(args).check();
    }
    for args in [
        vec!["get", "k"],
        vec!["etag", "k"],
        vec!["get", "k", "-o", "out.json"],
    ] {
        env.run(args).error_line().status(4).check();
    }
    env.run(["get", "k", "--default", "{}"])
        .stdout("{}")
        .check();
    for etag in ["*", "0123456789abcdef0123456789abcdef"] {
        env.run(["delete", "k", "--etag", etag])
            .error_line()
            .status(3)
            .check();
    }
    assert_eq!(env.snapshot(), before);
    assert!(!env.store().exists());
}

/// Runs `etagstore <args>`, reads `keep` bytes of its output and closes the
/// pipe, as `etagstore get k | head -c1` does; returns the status, the bytes
/// read and standard error.
fn read_then_close(env: &TestStore, args: &[&str], keep: usize) -> (Option<i32>, Vec<u8>, String) {
    let mut child = env
        .process()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = vec![0u8; keep];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    // The pipe's read end is closed here: the rest cannot be written.
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        head,
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn a_reader_that_closes_the_pipe_early_is_not_an_error() {
    let env = TestStore::new();
    // Far more than a pipe buffer, so the writer does hit the closed pipe.
    let doc = string_doc(4 << 20, 'p');
    env.put("big", &doc);
    assert_eq!(
        read_then_close(&env, &["get", "big"], 1),
        (Some(0), b"\"".to_vec(), String::new())
    );
    assert_eq!(
        read_then_close(&env, &["get", "big", "--json"], 8),
        (Some(0), b"{\"key\":\"".to_vec(), String::new())
    );
    for i in 0..3000 {
        fs::write(env.store().join(format!("key{i:05}.json")), "1").unwrap();
    }
    assert_eq!(
        read_then_close(&env, &["list", "-l"], 3),
        (
            Some(0),
            md5_hex(doc.as_bytes()).as_bytes()[..3].to_vec(),
            String::new()
        )
    );
}

#[test]
fn the_etag_is_what_md5sum_prints_for_the_stored_file_and_for_get() {
    let env = TestStore::new();
    let doc = "{\n  \"operator\": \"friendly\",\n  \"ü\": [1, 2]\n}\n";
    let etag = env.put("k", doc);
    let md5sum = |script: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(TestStore::bin())
            .arg(env.store())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        text.split_whitespace().next().unwrap().to_string()
    };
    assert_eq!(md5sum("md5sum \"$1/k.json\""), etag);
    assert_eq!(md5sum("\"$0\" --store \"$1\" get k | md5sum"), etag);
    assert_eq!(etag, md5_hex(doc.as_bytes()));
    env.run(["etag", "k"]).stdout(line(&etag)).check();
}
