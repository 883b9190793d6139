//! ETags and preconditions: `--etag E`, `""` (create only) and `*` (must
//! exist) on `set` and `delete`; a mismatch is exit 3 and changes nothing.

use predicates::prelude::*;

use crate::common::{line, md5_hex, one_error_line, TestStore};

const OLD: &str = "{\"version\": 1}\n";
const NEW: &str = "{\"version\": 2}\n";

/// The `error:` line of a mismatch: it names the key, the ETag given and the
/// ETag found.
fn mismatch(key: &str, given: &str, found: &str) -> impl Predicate<str> {
    one_error_line()
        .and(predicate::str::contains(key.to_string()))
        .and(predicate::str::contains(given.to_string()))
        .and(predicate::str::contains(found.to_string()))
}

/// Well-formed ETags that are not the current one: each is a conflict (exit 3).
fn wrong_etags(_etag: &str) -> Vec<String> {
    vec![md5_hex(b"something else"), md5_hex(b"x")]
}

/// Malformed `--etag` values near a real ETag: each is a usage error (exit 2),
/// never a conflict a retry loop would spin on.
fn malformed_etags(etag: &str) -> Vec<String> {
    vec![
        format!("\"{etag}\""),
        format!("W/\"{etag}\""),
        etag[..31].to_string(),
        format!("{etag}0"),
        format!("{etag} "),
        format!(" {etag}"),
        "**".to_string(),
        " ".to_string(),
        "\"\"".to_string(),
    ]
}

#[test]
fn set_with_the_current_etag_replaces_the_document() {
    let env = TestStore::new();
    let etag = env.put("k", OLD);
    env.run(["set", "k", "--etag", &etag])
        .stdin(NEW)
        .stdout(line(&md5_hex(NEW.as_bytes())))
        .check();
    assert_eq!(env.file("k").unwrap(), NEW.as_bytes());
}

#[test]
fn set_with_an_etag_from_get_output_or_etag_is_accepted() {
    let env = TestStore::new();
    env.put("k", OLD);
    let from_get = env
        .cmd()
        .args(["get", "k", "-o", "read.json"])
        .assert()
        .success()
        .stderr("")
        .get_output()
        .stdout
        .clone();
    let from_get = String::from_utf8(from_get).unwrap();
    env.run(["set", "k", NEW, "--etag", from_get.trim_end()])
        .stdout(line(&md5_hex(NEW.as_bytes())))
        .check();
    let from_etag = env
        .cmd()
        .args(["etag", "k"])
        .assert()
        .success()
        .stderr("")
        .get_output()
        .stdout
        .clone();
    let from_etag = String::from_utf8(from_etag).unwrap();
    env.run(["set", "k", "3", "--etag", from_etag.trim_end()])
        .stdout(line(&md5_hex(b"3")))
        .check();
    assert_eq!(env.file("k").unwrap(), b"3");
}

#[test]
fn set_with_an_empty_etag_creates_a_missing_key() {
    let env = TestStore::new();
    env.run(["set", "k", OLD, "--etag", ""])
        .stdout(line(&md5_hex(OLD.as_bytes())))
        .check();
    assert_eq!(env.file("k").unwrap(), OLD.as_bytes());
}

#[test]
fn set_with_an_empty_etag_is_exit_3_when_the_key_exists_and_changes_nothing() {
    let env = TestStore::new();
    let etag = env.put("k", OLD);
    env.run(["set", "k", NEW, "--etag", ""])
        .stderr_matches(mismatch("\"k\"", "\"\"", &etag))
        .status(3)
        .unchanged()
        .check();
    assert_eq!(env.file("k").unwrap(), OLD.as_bytes());
}

#[test]
fn set_with_star_replaces_an_existing_document_whatever_its_etag() {
    let env = TestStore::new();
    env.put("k", OLD);
    env.run(["set", "k", NEW, "--etag", "*"])
        .stdout(line(&md5_hex(NEW.as_bytes())))
        .check();
    assert_eq!(env.file("k").unwrap(), NEW.as_bytes());
}

#[test]
fn set_with_star_or_an_etag_on_a_missing_key_is_exit_3_and_creates_nothing() {
    let env = TestStore::new();
    env.put("other", "1");
    let before = env.snapshot();
    for etag in ["*".to_string(), md5_hex(OLD.as_bytes())] {
        env.run(["set", "k", NEW, "--etag", &etag])
            .stderr_matches(mismatch("\"k\"", &etag, "not exist"))
            .status(3)
            .check();
    }
    assert_eq!(env.snapshot(), before);
    assert!(!env.path("k").exists());
    assert!(!env.lock_file("k").exists());
}

#[test]
fn set_with_a_wrong_etag_is_exit_3_naming_the_key_and_both_etags_and_changes_nothing() {
    let env = TestStore::new();
    let etag = env.put("k", OLD);
    let before = env.snapshot();
    for wrong in wrong_etags(&etag) {
        env.run(["set", "k", "--etag", &wrong])
            .stdin(NEW)
            .stderr_matches(mismatch("\"k\"", wrong.trim(), &etag))
            .status(3)
            .check();
        assert_eq!(env.file("k").unwrap(), OLD.as_bytes(), "--etag {wrong:?}");
    }
    assert_eq!(env.snapshot(), before);
    assert!(env.temp_files().is_empty());
}

#[test]
fn an_upper_case_etag_is_the_same_etag() {
    // PowerShell's Get-FileHash prints upper case.
    let env = TestStore::new();
    let etag = env.put("k", OLD);
    let upper = etag.to_uppercase();
    assert_ne!(upper, etag);
    env.cmd()
        .args(["set", "k", NEW, "--etag", &upper])
        .assert()
        .success()
        .stdout(format!("{}\n", md5_hex(NEW.as_bytes())));
    env.cmd()
        .args([
            "delete",
            "k",
            "--etag",
            &md5_hex(NEW.as_bytes()).to_uppercase(),
        ])
        .assert()
        .success();
    assert!(!env.path("k").exists());
}

#[test]
fn a_malformed_etag_is_a_usage_error_naming_the_fix_and_changes_nothing() {
    let env = TestStore::new();
    let etag = env.put("k", OLD);
    let before = env.snapshot();
    for given in malformed_etags(&etag) {
        for command in ["set", "delete"] {
            let run = env.run([command, "k", "--etag", &given]);
            let run = if command == "set" {
                run.stdin(NEW)
            } else {
                run
            };
            run.error(["invalid --etag"]).status(2).check();
        }
    }
    let fixes = [
        (format!("\"{etag}\""), "drop the quotes".to_string()),
        (etag[..8].to_string(), "32 hex digits; got 8".to_string()),
        (format!("W/\"{etag}\""), "W/".to_string()),
        // A newline from `$(printf '%s\n' …)` stays on the one error line.
        (format!("{etag}\n"), "no spaces".to_string()),
    ];
    for (given, fix) in fixes {
        env.run(["set", "k", NEW, "--etag", &given])
            .error([fix])
            .status(2)
            .check();
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn a_mismatch_names_an_awkward_key_on_the_single_error_line() {
    let env = TestStore::new();
    let key = "dir/naïve key";
    let etag = env.put(key, OLD);
    let wrong = md5_hex(b"x");
    env.run(["set", key, NEW, "--etag", &wrong])
        .stderr_matches(mismatch(key, &wrong, &etag))
        .status(3)
        .check();
}

#[test]
fn delete_with_the_current_etag_removes_the_document() {
    let env = TestStore::new();
    let etag = env.put("k", OLD);
    env.run(["delete", "k", "--etag", &etag]).check();
    assert!(!env.path("k").exists());
}

#[test]
fn delete_with_star_removes_any_version() {
    let env = TestStore::new();
    env.put("k", OLD);
    env.run(["delete", "k", "--etag", "*"]).check();
    assert!(!env.path("k").exists());
}

#[test]
fn delete_with_a_wrong_etag_is_exit_3_and_keeps_the_document() {
    let env = TestStore::new();
    let etag = env.put("k", OLD);
    let before = env.snapshot();
    for wrong in wrong_etags(&etag) {
        env.run(["delete", "k", "--etag", &wrong])
            .stderr_matches(mismatch("\"k\"", wrong.trim(), &etag))
            .status(3)
            .check();
    }
    env.run(["delete", "k", "--etag", ""])
        .stderr_matches(mismatch("\"k\"", "\"\"", &etag))
        .status(3)
        .check();
    assert_eq!(env.snapshot(), before);
    assert_eq!(env.file("k").unwrap(), OLD.as_bytes());
}

#[test]
fn delete_of_a_missing_key_with_an_etag_or_star_is_exit_3_and_creates_nothing() {
    let env = TestStore::new();
    let etag = env.put("k", OLD);
    env.run(["delete", "k", "--etag", &etag]).check();
    let before = env.snapshot();
    for given in [etag.as_str(), "*"] {
        for key in ["k", "never"] {
            env.run(["delete", key, "--etag", given])
                .stderr_matches(mismatch(&format!("\"{key}\""), given, "not exist"))
                .status(3)
                .check();
        }
    }
    assert_eq!(env.snapshot(), before);
    assert!(!env.lock_file("never").exists());
}

#[test]
fn a_deleted_key_can_be_created_again_with_an_empty_etag() {
    let env = TestStore::new();
    let etag = env.put("k", OLD);
    env.run(["delete", "k", "--etag", &etag]).check();
    env.run(["set", "k", NEW, "--etag", ""])
        .stdout(line(&md5_hex(NEW.as_bytes())))
        .check();
    // The old ETag no longer matches anything.
    env.run(["set", "k", OLD, "--etag", &etag])
        .stderr_matches(mismatch("\"k\"", &etag, &md5_hex(NEW.as_bytes())))
        .status(3)
        .check();
}

#[test]
fn writing_the_same_bytes_again_gives_the_same_etag() {
    let env = TestStore::new();
    let first = env.put("k", OLD);
    let second = env.put("k", OLD);
    assert_eq!(first, second);
    // A compare-and-swap that writes the same bytes keeps the ETag valid.
    env.run(["set", "k", OLD, "--etag", &first])
        .stdout(line(&first))
        .check();
    env.run(["set", "k", NEW, "--etag", &first])
        .stdout(line(&md5_hex(NEW.as_bytes())))
        .check();
    // The same bytes under another key have the same ETag too.
    assert_eq!(env.put("copy", NEW), md5_hex(NEW.as_bytes()));
}

#[test]
fn any_byte_changes_the_etag() {
    let env = TestStore::new();
    let plain = env.put("k", "{\"a\":1}");
    let spaced = env.put("k", "{\"a\":1} ");
    let newline = env.put("k", "{\"a\":1}\n");
    assert_ne!(plain, spaced);
    assert_ne!(spaced, newline);
    assert_ne!(plain, newline);
    env.run(["set", "k", "{\"a\":1}", "--etag", &plain])
        .stderr_matches(mismatch("\"k\"", &plain, &newline))
        .status(3)
        .check();
}

#[test]
fn a_chain_of_compare_and_swaps_each_uses_the_etag_the_last_one_printed() {
    let env = TestStore::new();
    let mut etag = String::new();
    for n in 0..5 {
        let doc = n.to_string();
        let out = env
            .cmd()
            .args(["set", "counter", &doc, "--etag", &etag])
            .assert()
            .success()
            .stdout(line(&md5_hex(doc.as_bytes())))
            .stderr("")
            .get_output()
            .stdout
            .clone();
        etag = String::from_utf8(out).unwrap().trim_end().to_string();
    }
    assert_eq!(env.file("counter").unwrap(), b"4");
}
