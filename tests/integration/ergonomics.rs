use std::process::{Command as Process, Stdio};
use std::thread;
use std::time::Duration;

use predicates::prelude::*;

use crate::common::{md5_hex, require, TestStore};

/// Starts `etagstore watch` in the background; returns the running process.
fn watch(env: &TestStore, args: &[&str]) -> std::process::Child {
    Process::new(TestStore::bin())
        .arg("--store")
        .arg(env.store())
        .arg("watch")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: std::process::Child) -> (Option<i32>, String, String) {
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// Gives a watcher a moment to start. Correctness never depends on it: every
/// watch below names the ETag it waits to change, so a change made before
/// the watcher looks is seen all the same.
fn pause() {
    thread::sleep(Duration::from_millis(200));
}

#[test]
fn watch_prints_the_new_etag_after_a_set() {
    let env = TestStore::new();
    let old = env.put("cfg", r#"{"v":1}"#);
    let watcher = watch(&env, &["cfg", "--etag", &old, "--timeout", "60"]);
    pause();
    let new = env.put("cfg", r#"{"v":2}"#);
    let (code, stdout, stderr) = finish(watcher);
    assert_eq!(
        (code, stdout, stderr),
        (Some(0), format!("{new}\n"), String::new())
    );
}

#[test]
fn watch_prints_an_empty_etag_after_a_delete() {
    let env = TestStore::new();
    let old = env.put("cfg", "{}");
    let watcher = watch(&env, &["cfg", "--etag", &old, "--timeout", "60"]);
    pause();
    env.cmd()
        .args(["delete", "cfg", "--etag", &old])
        .assert()
        .success();
    let (code, stdout, stderr) = finish(watcher);
    assert_eq!(
        (code, stdout, stderr),
        (Some(0), "\n".to_string(), String::new())
    );
}

#[test]
fn watch_with_an_empty_etag_waits_for_the_key_to_appear_even_in_a_new_store() {
    let env = TestStore::new();
    // No store directory yet: the watcher has to poll until there is one.
    let watcher = watch(&env, &["new", "--etag", "", "--timeout", "60", "--json"]);
    pause();
    let etag = env.put("new", "[1]");
    let (code, stdout, stderr) = finish(watcher);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        format!("{{\"key\":\"new\",\"etag\":\"{etag}\",\"value\":[1]}}\n")
    );
}

#[test]
fn a_change_made_before_the_watch_starts_is_not_missed() {
    let env = TestStore::new();
    let old = env.put("cfg", "1");
    let new = env.put("cfg", "2");
    env.run(["watch", "cfg", "--etag", &old, "--timeout", "60"])
        .stdout(format!("{new}\n"))
        .check();
}

#[test]
fn watch_times_out_with_exit_7_when_nothing_changes() {
    let env = TestStore::new();
    env.put("cfg", "1");
    env.run(["watch", "cfg", "--timeout", "0.3"])
        .stderr_matches(
            predicate::str::starts_with("error: watch timed out")
                .and(predicate::function(|s: &str| s.lines().count() == 1)),
        )
        .status(7)
        .check();
}

/// Keys and documents that a naive export would not bring back byte for byte.
fn odd_store(env: &TestStore) -> Vec<(&'static str, &'static str)> {
    let docs = vec![
        ("..", "{}"),
        (".", "[]"),
        ("../x", "{\"compact\":true}"),
        ("/etc/passwd", "{\n  \"pretty\": [1, 2]\n}\n"),
        ("a/b", "  \"padded string\"  "),
        ("a%2Fb", "1e400"),
        ("100%", "\"tab\\tnewline\\n quote\\\" \""),
        ("a b", "\r\n{\"crlf\": null}\r\n"),
        ("日本", "\"日本語\""),
        ("-dash", "123456789012345678901234567890"),
    ];
    for (key, doc) in &docs {
        env.cmd()
            .args(["set", "--etag", "", "--", key])
            .write_stdin(*doc)
            .assert()
            .success();
    }
    docs
}

#[test]
fn export_then_import_restores_every_document_byte_for_byte() {
    let from = TestStore::new();
    let docs = odd_store(&from);
    let export = from.cmd().arg("export").assert().success().stderr("");
    let export = export.get_output().stdout.clone();
    let text = String::from_utf8(export.clone()).unwrap();
    assert_eq!(text.lines().count(), docs.len(), "one line a document");
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Line {
        key: String,
        etag: String,
        value: serde::de::IgnoredAny, // 1e400 has no f64, so no serde_json::Value
    }
    for line in text.lines() {
        let line: Line = serde_json::from_str(line).expect("each line is JSON");
        assert_eq!(line.etag.len(), 32);
    }

    let to = TestStore::new();
    to.cmd()
        .arg("import")
        .write_stdin(export)
        .assert()
        .success()
        .stdout("")
        .stderr(format!("imported {}, skipped 0\n", docs.len()));
    for (key, doc) in &docs {
        to.cmd()
            .args(["get", "--", key])
            .assert()
            .success()
            .stdout(*doc);
        to.cmd()
            .args(["etag", "--", key])
            .assert()
            .success()
            .stdout(format!("{}\n", md5_hex(doc.as_bytes())));
    }
    let listing = |env: &TestStore| {
        let out = env.cmd().args(["list", "--json"]).output().unwrap().stdout;
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                (
                    v["key"].to_string(),
                    v["etag"].to_string(),
                    v["size"].to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(listing(&from), listing(&to));
}

#[test]
fn export_takes_a_prefix_and_sorts_by_key() {
    let env = TestStore::new();
    for key in ["b/2", "a", "b/1", "c"] {
        env.put(key, "0");
    }
    let out = env.cmd().args(["export", "b/"]).output().unwrap().stdout;
    let keys: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["key"].to_string())
        .collect();
    assert_eq!(keys, ["\"b/1\"", "\"b/2\""]);
}

#[test]
fn import_skips_keys_that_exist_and_exits_3_unless_told_to_overwrite() {
    let env = TestStore::new();
    env.put("kept", "\"old\"");
    let lines = "{\"key\":\"kept\",\"value\":\"new\"}\n{\"key\":\"fresh\",\"value\":1}\n";
    env.run(["import"])
        .stdin(lines)
        .stderr_matches(
            predicate::str::contains("imported 1, skipped 1")
                .and(predicate::str::contains("error: 1 key(s) existed"))
                .and(predicate::str::contains("--overwrite")),
        )
        .status(3)
        .check();
    assert_eq!(env.file("kept").unwrap(), b"\"old\"");
    assert_eq!(env.file("fresh").unwrap(), b"1");

    let file = env.root().join("export.jsonl");
    std::fs::write(&file, lines).unwrap();
    env.cmd()
        .args(["import", "--overwrite", "-f"])
        .arg(&file)
        .assert()
        .success()
        .stdout("")
        .stderr("imported 2, skipped 0\n");
    assert_eq!(env.file("kept").unwrap(), b"\"new\"");
}

#[test]
fn a_malformed_line_stops_the_import_with_exit_6_after_the_lines_before_it() {
    let env = TestStore::new();
    let lines = "{\"key\":\"one\",\"value\":1}\n\n{\"key\":\"two\",\"value\":2}\n{\"key\":\"three\",\"value\":}\n{\"key\":\"four\",\"value\":4}\n";
    env.run(["import"])
        .stdin(lines)
        .stderr_matches(predicate::str::contains("imported 2, skipped 0").and(
            predicate::str::contains("error: invalid document: line 4, column 24:"),
        ))
        .status(6)
        .check();
    assert_eq!(env.file("one").unwrap(), b"1");
    assert_eq!(env.file("two").unwrap(), b"2");
    assert!(env.file("three").is_none() && env.file("four").is_none());
}

#[test]
fn an_import_line_whose_value_does_not_match_its_etag_is_refused() {
    let env = TestStore::new();
    let line = format!(
        "{{\"key\":\"k\",\"etag\":\"{}\",\"value\":2}}\n",
        md5_hex(b"1")
    );
    env.run(["import"])
        .stdin(line)
        .stderr_matches(predicate::str::contains("does not match its etag"))
        .status(6)
        .check();
    assert!(env.file("k").is_none());
}

#[test]
fn the_bash_completion_script_loads_and_completes_subcommands() {
    let env = TestStore::new();
    let script = env.root().join("etagstore.bash");
    let out = env.cmd().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    std::fs::write(&script, out.stdout).unwrap();
    let completed = Process::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{}' && COMP_WORDS=(etagstore se) && COMP_CWORD=1 && _etagstore etagstore se etagstore \
             && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .unwrap();
    assert!(completed.status.success(), "{completed:?}");
    let words = String::from_utf8(completed.stdout).unwrap();
    let mut words: Vec<&str> = words.lines().collect();
    words.sort();
    assert_eq!(words, ["set", "set-unsafe"]);
}

#[test]
fn every_shell_gets_a_completion_script_and_the_man_page_is_roff() {
    let env = TestStore::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        env.cmd()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains("etagstore"))
            .stderr("");
    }
    env.cmd()
        .arg("man")
        .assert()
        .success()
        .stdout(
            predicate::str::contains(".TH etagstore 1").and(predicate::str::contains("Exit codes")),
        )
        .stderr("");
    assert!(!env.store().exists(), "neither command opens a store");
}

#[test]
fn error_lines_carry_the_next_step_for_codes_2_to_6() {
    let env = TestStore::new();
    let one_line = |s: &str| s.lines().count() == 1;
    env.run(["get", "bad\tkey"])
        .stderr_matches(
            predicate::str::contains("a key is 1 to 200 bytes").and(predicate::function(one_line)),
        )
        .status(2)
        .check();
    env.run(["get", "k"])
        .stderr_matches(
            predicate::str::contains("--store DIR or ETAGSTORE_DIR")
                .and(predicate::function(one_line)),
        )
        .status(4)
        .check();
    let etag = env.put("k", "1");
    env.run(["get", "other"])
        .stderr_matches(predicate::str::contains(format!(
            "etagstore --store {} set other VALUE --etag ''",
            env.store().display()
        )))
        .status(4)
        .check();
    env.run(["set", "k", "2", "--etag", &"0".repeat(32)])
        .stderr_matches(
            predicate::str::contains(etag.as_str())
                .and(predicate::str::contains(format!(
                    "etagstore --store {} get k",
                    env.store().display()
                )))
                .and(predicate::function(one_line)),
        )
        .status(3)
        .check();
    env.holding_lock("k", || {
        env.run(["--lock-timeout", "0.1", "set-unsafe", "k", "3"])
            .stderr_matches(
                predicate::str::contains("--lock-timeout").and(predicate::function(one_line)),
            )
            .status(5)
            .check();
    });
    env.run(["set-unsafe", "k", "{\"a\" 1}"])
        .stderr_matches(
            predicate::str::contains("line 1, column 6").and(predicate::function(one_line)),
        )
        .status(6)
        .check();
}

/// A document just over the 64 MiB at which a progress bar may appear.
fn big_document(env: &TestStore) -> std::path::PathBuf {
    let path = env.root().join("big.json");
    let item = format!("\"{}\"", "x".repeat(1000));
    let body = vec![item; 68 * 1024].join(",");
    std::fs::write(&path, format!("[{body}]")).unwrap();
    path
}

#[test]
fn big_transfers_show_no_progress_when_stderr_is_not_a_terminal() {
    let env = TestStore::new();
    let big = big_document(&env);
    let etag = md5_hex(&std::fs::read(&big).unwrap());
    env.run(["set-unsafe", "big", "-f"])
        .arg(&big)
        .stdout(format!("{etag}\n"))
        .check();
    env.run(["get", "big", "-o"])
        .arg(env.root().join("out.json"))
        .stdout(format!("{etag}\n"))
        .check();
    let export = env.cmd().arg("export").output().unwrap();
    assert!(export.status.success() && export.stderr.is_empty());
}

#[test]
fn big_transfers_show_progress_on_a_terminal() {
    // `script` gives the command a terminal; without it, there is nothing to show.
    if !require(
        Process::new("script").arg("--version").output().is_ok(),
        "big_transfers_show_progress_on_a_terminal: no `script` (util-linux)",
    ) {
        return;
    }
    let env = TestStore::new();
    let big = big_document(&env);
    let command = format!(
        "'{}' --store '{}' set-unsafe big -f '{}'",
        TestStore::bin().display(),
        env.store().display(),
        big.display()
    );
    let out = Process::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        screen.contains("set [") && screen.contains("MiB"),
        "{screen}"
    );
}

#[test]
fn export_from_a_directory_imports_into_azurite_and_back_byte_for_byte() {
    let Some(azure) = TestStore::azurite() else {
        return;
    };
    let from = TestStore::new();
    let docs = odd_store(&from);
    let export = from.cmd().arg("export").output().unwrap();
    assert!(export.status.success());
    azure
        .cmd()
        .arg("import")
        .write_stdin(export.stdout.clone())
        .assert()
        .success()
        .stderr(format!("imported {}, skipped 0\n", docs.len()));
    for (key, doc) in &docs {
        azure
            .cmd()
            .args(["get", "--", key])
            .assert()
            .success()
            .stdout(*doc);
    }
    // And back: Azure's export is the directory's, line for line.
    let again = azure.cmd().arg("export").output().unwrap();
    assert!(again.status.success());
    assert_eq!(
        String::from_utf8(again.stdout).unwrap(),
        String::from_utf8(export.stdout).unwrap()
    );
}

#[test]
fn watch_on_azurite_sees_a_set() {
    let Some(azure) = TestStore::azurite() else {
        return;
    };
    let old = azure.put("cfg", "1");
    let mut watcher = azure.process();
    let watcher = watcher
        .args(["watch", "cfg", "--etag", &old, "--timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    pause();
    let new = azure.put("cfg", "2");
    let (code, stdout, stderr) = finish(watcher);
    assert_eq!(
        (code, stdout, stderr),
        (Some(0), format!("{new}\n"), String::new())
    );
}
