//! `--error-format json`: each error line is one JSON object whose `code`,
//! `exit` and fields a script can read; its `message` is the text line's.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::azurite;
use crate::common::{md5_hex, TestStore};
use crate::fault_proxy::{Fault, Only, Proxy};
use crate::first_contact::with_terminal;

/// The one line of standard error, parsed; its `exit` is the status.
fn json_error(output: &Output) -> Value {
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.ends_with('\n'), "{stderr:?}");
    let json: Value = serde_json::from_str(&stderr).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(
        json["exit"].as_i64(),
        output.status.code().map(i64::from),
        "{stderr}"
    );
    json
}

/// Runs `args` on `env` with `--error-format json`, then again with the
/// text format: the JSON's message is the text line without `error: `,
/// both exit alike and write nothing to standard output.
fn both_formats(env: &TestStore, args: &[&str], stdin: &str) -> Value {
    let run = |format: &str| {
        env.cmd()
            .args(["--error-format", format])
            .args(args)
            .write_stdin(stdin)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap()
    };
    let json_run = run("json");
    let text_run = run("text");
    assert!(json_run.stdout.is_empty(), "{json_run:?}");
    assert_eq!(json_run.status.code(), text_run.status.code());
    // code, exit and message come first, for a person reading the line.
    let line = String::from_utf8_lossy(&json_run.stderr).to_string();
    assert!(line.starts_with("{\"code\":\""), "{line}");
    let message_at = line.find(",\"message\":").expect("a message");
    assert!(
        message_at < line.find("\"key\"").unwrap_or(usize::MAX),
        "{line}"
    );
    let json = json_error(&json_run);
    let text = String::from_utf8(text_run.stderr).unwrap();
    assert_eq!(
        Some(json["message"].as_str().unwrap()),
        text.trim_end().strip_prefix("error: "),
        "{args:?}"
    );
    json
}

#[test]
fn a_failed_precondition_names_the_key_and_both_etags() {
    let env = TestStore::new();
    let etag = env.put("k", "{\"v\": 1}");
    let stale = md5_hex(b"{}");
    let json = both_formats(&env, &["set", "k", "{}", "--etag", &stale], "");
    assert_eq!(json["code"], "precondition_failed");
    assert_eq!(json["exit"], 3);
    assert_eq!(json["key"], "k");
    assert_eq!(json["expected"], stale.as_str());
    assert_eq!(json["found"], etag.as_str());
    // Create-only on a key that exists: the flag as given, "".
    let json = both_formats(&env, &["set", "k", "{}", "--etag", ""], "");
    assert_eq!(json["expected"], "");
    assert_eq!(json["found"], etag.as_str());
    // A key that does not exist is found as "".
    let json = both_formats(&env, &["delete", "gone", "--etag", &stale], "");
    assert_eq!((&json["key"], &json["found"]), (&"gone".into(), &"".into()));
}

#[test]
fn every_code_on_the_directory_store() {
    let env = TestStore::new();
    env.put("k", "{}");
    let cases: [(&[&str], &str, &str, i64); 6] = [
        (&["set", "k", "{}"], "", "usage", 2),
        (&["set", "k", "{}", "--etag", "W/x"], "", "usage", 2),
        (&["get", "missing"], "", "not_found", 4),
        (
            &["set", "n", "{oops", "--etag", ""],
            "",
            "invalid_document",
            6,
        ),
        (&["watch", "k", "--timeout", "0"], "", "watch_timeout", 7),
        (
            &["set", "n", "-f", "no-such.json", "--etag", ""],
            "",
            "failed",
            1,
        ),
    ];
    for (args, stdin, code, exit) in cases {
        let json = both_formats(&env, args, stdin);
        assert_eq!(json["code"], code, "{args:?}: {json}");
        assert_eq!(json["exit"], exit, "{args:?}: {json}");
    }
    assert!(env.file("n").is_none());
    // import's count is a note, not an error: it stays text, before the JSON line.
    let out = env
        .cmd()
        .args(["--error-format", "json", "import"])
        .write_stdin("{\"key\":\"k\",\"value\":1}\n")
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let (note, error) = stderr.trim_end().split_once('\n').unwrap();
    assert_eq!(note, "imported 0, skipped 1");
    let json: Value = serde_json::from_str(error).unwrap();
    assert_eq!(
        (&json["code"], &json["exit"]),
        (&"conflict".into(), &3.into())
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(env.file("k").unwrap(), b"{}");
}

#[test]
fn keys_and_hints_are_fields_of_their_own() {
    let env = TestStore::new();
    env.put("other", "{}");
    let json = both_formats(&env, &["get", "missing"], "");
    assert_eq!(json["key"], "missing");
    let hint = json["hint"].as_str().unwrap();
    assert!(hint.contains("etagstore --store"), "{json}");
    assert!(json["message"].as_str().unwrap().ends_with(hint), "{json}");
    // A string without its JSON quotes: the hint names the fix.
    let json = both_formats(&env, &["set", "s", "hello", "--etag", ""], "");
    assert_eq!(json["code"], "invalid_document");
    assert_eq!(json["hint"], "a string must be quoted as JSON: '\"hello\"'");
    assert_eq!(json.get("key"), None, "{json}");
}

#[test]
fn a_lock_timeout_is_lock_timeout_with_its_key() {
    let env = TestStore::new();
    let etag = env.put("k", "{}");
    env.holding_lock("k", || {
        let json = both_formats(
            &env,
            &["set", "k", "[]", "--etag", &etag, "--lock-timeout", "0"],
            "",
        );
        assert_eq!(json["code"], "lock_timeout");
        assert_eq!(json["exit"], 5);
        assert_eq!(json["key"], "k");
    });
}

#[test]
fn the_environment_asks_for_json_and_the_flag_wins_over_it() {
    let env = TestStore::new();
    for args in [&["get", "missing"][..], &["get"][..], &[][..]] {
        let out = env
            .cmd()
            .env("ETAGSTORE_ERROR_FORMAT", "json")
            .args(args)
            .output()
            .unwrap();
        let json = json_error(&out);
        let code = if args.len() == 2 {
            "not_found"
        } else {
            "usage"
        };
        assert_eq!(json["code"], code, "{args:?}: {json}");
    }
    let out = env
        .cmd()
        .env("ETAGSTORE_ERROR_FORMAT", "json")
        .args(["get", "missing", "--error-format", "text"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(out.stderr.starts_with(b"error: key not found"), "{out:?}");
}

#[test]
fn usage_errors_from_the_command_line_parser_are_json_wherever_the_flag_is() {
    let env = TestStore::new();
    let runs: [&[&str]; 4] = [
        &["--error-format", "json", "set", "k", "{}"],
        &["set", "k", "{}", "--error-format", "json"],
        &["set", "k", "{}", "--error-format=json", "--bogus"],
        &[
            "--error-format",
            "json",
            "set-unsafe",
            "k",
            "{}",
            "--etag",
            "",
        ],
    ];
    for args in runs {
        let out = env.cmd().args(args).output().unwrap();
        let json = json_error(&out);
        assert_eq!(json["code"], "usage", "{args:?}: {json}");
        assert!(
            json["message"].as_str().unwrap().contains("--help"),
            "{json}"
        );
    }
    // After `--`, it is CMD's argument, not etagstore's.
    let out = env
        .cmd()
        .args([
            "edit",
            "k",
            "--bogus",
            "--",
            "cat",
            "--error-format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.starts_with(b"error: "), "{out:?}");
    // An unknown format is a usage error, in text.
    let out = env
        .cmd()
        .args(["--error-format", "yaml", "get", "k"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stderr.starts_with(b"error: invalid value 'yaml'"),
        "{out:?}"
    );
}

#[test]
fn success_and_help_are_unchanged_by_the_json_format() {
    let env = TestStore::new();
    let etag = md5_hex(b"{}");
    env.cmd()
        .args(["--error-format", "json", "set", "k", "{}", "--etag", ""])
        .assert()
        .success()
        .stdout(format!("{etag}\n"))
        .stderr("");
    env.cmd()
        .args(["--error-format", "json", "get", "--help"])
        .assert()
        .success()
        .stderr("");
}

#[test]
fn each_document_export_skips_is_a_json_line_then_the_summary() {
    let env = TestStore::new();
    env.put("a", "{}");
    env.put("b", "{}");
    fs::write(env.path("b"), "not json").unwrap();
    let out = env
        .cmd()
        .args(["--error-format", "json", "export"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert_eq!(lines[0]["code"], "skipped");
    assert_eq!(lines[0]["exit"], 1);
    assert_eq!(lines[0]["key"], "b");
    assert_eq!(lines[0]["cause"], "invalid_document");
    assert_eq!(lines[1]["code"], "failed");
    assert!(String::from_utf8(out.stdout).unwrap().contains("\"a\""));
}

#[test]
fn an_edit_that_cannot_be_written_names_the_kept_file_and_the_command_to_apply_it() {
    let env = TestStore::new();
    let etag = env.put("k", "{}");
    let editor = env.root().join("editor.sh");
    fs::write(&editor, "#!/bin/sh\necho '{\"half\": ' > \"$1\"\n").unwrap();
    fs::set_permissions(&editor, fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = env.process();
    with_terminal(&mut cmd);
    let out = cmd
        .args(["--error-format", "json", "edit", "k"])
        .env("EDITOR", &editor)
        .env_remove("VISUAL")
        .output()
        .unwrap();
    let json = json_error(&out);
    assert_eq!(json["code"], "invalid_document");
    assert_eq!(json["exit"], 6);
    let kept = json["kept"].as_str().unwrap();
    assert_eq!(fs::read(kept).unwrap(), b"{\"half\": \n");
    assert_eq!(
        json["apply"].as_str().unwrap(),
        format!(
            "etagstore --store {} set k -f {kept} --etag {etag}",
            env.store().display()
        )
    );
    let hint = json["hint"].as_str().unwrap();
    assert!(hint.contains(kept), "{json}");
    assert!(json["message"].as_str().unwrap().ends_with(hint), "{json}");
    assert_eq!(env.file("k").unwrap(), b"{}");
    fs::remove_file(kept).unwrap();
}

#[test]
fn an_edit_stopped_by_a_signal_says_so_in_json() {
    let env = TestStore::new();
    env.put("k", "{}");
    let started = env.root().join("started");
    let child = env
        .process()
        .args(["--error-format", "json", "edit", "k", "--", "sh", "-c"])
        .arg(format!("touch '{}'; sleep 30", started.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Not a timing assertion: a bound on a wait for the command to start.
    for _ in 0..6000 {
        if started.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(started.exists(), "the command never started");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGTERM));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let json: Value = serde_json::from_str(&stderr).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(json["code"], "interrupted");
    assert_eq!(json["exit"], 128 + libc::SIGTERM);
    assert_eq!(json["signal"], "SIGTERM");
    assert_eq!(env.file("k").unwrap(), b"{}");
}

#[test]
fn an_unknown_outcome_on_azure_names_the_etag_to_look_for() {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    let old = env.put("k", "{\"n\": 1}");
    let new = "{\"n\": 2}";
    // A gateway's 500 after the write was passed on: it may have landed.
    let body =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>InternalError</Code></Error>";
    let answer = format!(
        "HTTP/1.1 500 Whatever\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let proxy = Proxy::start(
        azurite::PORT,
        Fault::Answer(answer.into_bytes()),
        Only::Writes,
        1,
    );
    let out = env
        .cmd()
        .env("AZURITE_BLOB_STORAGE_URL", proxy.url())
        .env("ETAGSTORE_TIMEOUT", "3")
        .args(["--error-format", "json", "set", "k", new, "--etag", &old])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let json = json_error(&out);
    assert_eq!(json["code"], "outcome_unknown");
    assert_eq!(json["exit"], 8);
    assert_eq!(json["key"], "k");
    assert_eq!(json["etag"], md5_hex(new.as_bytes()).as_str());
    assert_eq!(proxy.broken(), 1);
}
