use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use predicates::prelude::*;

use crate::common::{md5_hex, require_with, TestStore};
use crate::first_contact::with_terminal;

/// `etagstore --store …` with a terminal of its own, as the editor needs.
fn at_terminal(env: &TestStore) -> assert_cmd::Command {
    let mut cmd = env.process();
    with_terminal(&mut cmd);
    assert_cmd::Command::from_std(cmd)
}

/// Writes an executable shell script into the test's directory.
fn script(env: &TestStore, name: &str, body: &str) -> PathBuf {
    let path = env.root().join(name);
    fs::write(&path, format!("#!/bin/sh\nset -e\n{body}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// The path of the kept edit that an error line names.
fn kept_path(stderr: &str) -> PathBuf {
    let start = stderr.find("kept in ").expect("a kept path") + "kept in ".len();
    let end = start + stderr[start..].find(';').unwrap();
    PathBuf::from(&stderr[start..end])
}

#[test]
fn jq_mode_writes_the_filter_output_as_jq_prints_it() {
    let env = TestStore::new();
    env.put("c", r#"{"z": true, "n": 1, "list": [1, "two"]}"#);
    let expected = "{\n  \"z\": true,\n  \"n\": 6,\n  \"list\": [\n    1,\n    \"two\"\n  ]\n}\n";
    env.cmd()
        .args(["edit", "c", "--jq", ".n += $by", "--argjson", "by", "5"])
        .assert()
        .success()
        .stdout(format!("{}\n", md5_hex(expected.as_bytes())))
        .stderr("");
    assert_eq!(env.file("c").unwrap(), expected.as_bytes());
}

#[test]
fn jq_mode_binds_arg_as_a_string() {
    let env = TestStore::new();
    env.put("p", "{}");
    env.cmd()
        .args(["edit", "p", "--jq", ".name = $name", "--arg", "name", "5"])
        .assert()
        .success()
        .stderr("");
    assert_eq!(env.file("p").unwrap(), b"{\n  \"name\": \"5\"\n}\n");
}

#[test]
fn jq_output_matches_jq_itself() {
    let docs = [
        r#"{"b": 1, "a": {"y": [1, 2, {"x": null}], "x": "caf\u00e9 \"q\" \\ \n\t"}, "e": [], "o": {}}"#,
        r#"[true, false, null, -3, 0, 12345678, "日本語", "\u0001\u001f\u007f"]"#,
        r#""just a string""#,
        r#"{"deep": [[[[{"k": [[]]}]]]], "emoji": "🎉", "slash": "a/b"}"#,
        r#"{"float": 1.5, "neg": -0.25, "big": 1000000}"#,
    ];
    // Any CI variable makes a missing jq a failure: .ci/run installs it.
    let jq = Process::new("jq").arg("--version").output();
    if !require_with(
        jq.is_ok(),
        "jq_output_matches_jq_itself: jq is not installed",
        &["CI"],
    ) {
        return;
    }
    let jq = jq.unwrap();
    assert!(jq.status.success());
    for (i, doc) in docs.iter().enumerate() {
        for filter in [".", ".added = 1", "[.]"] {
            let env = TestStore::new();
            env.put("d", doc);
            let file = env.root().join("doc.json");
            fs::write(&file, doc).unwrap();
            let by_jq = Process::new("jq").arg(filter).arg(&file).output().unwrap();
            if !by_jq.status.success() {
                continue; // e.g. `.added = 1` on an array
            }
            env.cmd()
                .args(["edit", "d", "--jq", filter])
                .assert()
                .success();
            let mine = env.file("d").unwrap();
            if filter == "." && mine == doc.as_bytes() {
                continue; // no change, so nothing was rewritten
            }
            assert_eq!(
                String::from_utf8(mine).unwrap(),
                stdout_of(&by_jq),
                "document {i} with filter {filter}"
            );
        }
    }
}

#[test]
fn a_filter_without_exactly_one_value_is_exit_6_and_writes_nothing() {
    let env = TestStore::new();
    env.put("k", "[1, 2]");
    for filter in ["empty", ".[]"] {
        env.cmd()
            .args(["edit", "k", "--jq", filter])
            .assert()
            .code(6)
            .stdout("")
            .stderr(predicate::str::starts_with("error: invalid document:"));
        assert_eq!(env.file("k").unwrap(), b"[1, 2]");
    }
}

#[test]
fn a_filter_that_does_not_compile_is_exit_2() {
    let env = TestStore::new();
    env.put("k", "{}");
    env.cmd()
        .args(["edit", "k", "--jq", ".n +"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::starts_with("error: the jq filter"));
    assert_eq!(env.file("k").unwrap(), b"{}");
}

#[test]
fn a_filter_that_fails_at_run_time_is_exit_1() {
    let env = TestStore::new();
    env.put("k", r#"{"a": "x"}"#);
    env.cmd()
        .args(["edit", "k", "--jq", ".a + 1"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::starts_with("error: the filter failed"));
    assert_eq!(env.file("k").unwrap(), br#"{"a": "x"}"#);
}

#[test]
fn a_missing_key_is_exit_4_unless_a_default_is_given() {
    let env = TestStore::new();
    env.cmd()
        .args(["edit", "new", "--jq", ".n += 1"])
        .assert()
        .code(4)
        .stdout("")
        .stderr(predicate::str::starts_with("error: key not found"));
    let expected = "{\n  \"n\": 1\n}\n";
    env.cmd()
        .args(["edit", "new", "--default", r#"{"n":0}"#, "--jq", ".n += 1"])
        .assert()
        .success()
        .stdout(format!("{}\n", md5_hex(expected.as_bytes())))
        .stderr("");
    assert_eq!(env.file("new").unwrap(), expected.as_bytes());
}

#[test]
fn an_edit_that_changes_nothing_writes_nothing() {
    let env = TestStore::new();
    let etag = env.put("k", r#"{"n":1}"#);
    let before = fs::metadata(env.store().join("k.json"))
        .unwrap()
        .modified()
        .unwrap();
    env.cmd()
        .args(["edit", "k", "--jq", ".n |= ."])
        .assert()
        .success()
        .stdout(format!("{etag}\n"))
        .stderr("");
    env.cmd()
        .args(["edit", "k", "--", "cat"])
        .assert()
        .success()
        .stdout(format!("{etag}\n"))
        .stderr("");
    let after = fs::metadata(env.store().join("k.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(env.file("k").unwrap(), br#"{"n":1}"#);
    assert_eq!(before, after);
}

#[test]
fn command_mode_feeds_the_document_and_stores_the_output() {
    let env = TestStore::new();
    env.put("k", r#"{"v": 1}"#);
    let seen = env.root().join("seen.json");
    let cmd = script(
        &env,
        "cmd.sh",
        &format!("tee '{}' | sed 's/1/2/'", seen.display()),
    );
    env.cmd()
        .args(["edit", "k", "--"])
        .arg(&cmd)
        .assert()
        .success()
        .stdout(format!("{}\n", md5_hex(br#"{"v": 2}"#)))
        .stderr("");
    assert_eq!(fs::read(&seen).unwrap(), br#"{"v": 1}"#);
    assert_eq!(env.file("k").unwrap(), br#"{"v": 2}"#);
}

#[test]
fn a_failing_or_missing_command_is_exit_1_and_writes_nothing() {
    let env = TestStore::new();
    env.put("k", "{}");
    env.cmd()
        .args(["edit", "k", "--", "false"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::starts_with("error: 'false' failed"));
    env.cmd()
        .args(["edit", "k", "--", "no-such-command-here"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::starts_with("error: cannot run"));
    assert_eq!(env.file("k").unwrap(), b"{}");
}

#[test]
fn a_command_whose_output_is_not_json_is_exit_6() {
    let env = TestStore::new();
    env.put("k", "{}");
    env.cmd()
        .args(["edit", "k", "--", "echo", "{oops"])
        .assert()
        .code(6)
        .stdout("")
        .stderr(predicate::str::contains("invalid document"));
    assert_eq!(env.file("k").unwrap(), b"{}");
}

#[test]
fn editor_mode_opens_visual_or_editor_on_a_json_copy() {
    let env = TestStore::new();
    env.put("k", r#"{"v": 1}"#);
    let seen = env.root().join("seen");
    let editor = script(
        &env,
        "editor.sh",
        &format!(
            "echo \"$1\" > '{0}.path'; cp \"$1\" '{0}.json'; echo '{{\"v\": 2}}' > \"$1\"",
            seen.display()
        ),
    );
    at_terminal(&env)
        .args(["edit", "k"])
        .env("EDITOR", format!("sh {}", editor.display()))
        .env_remove("VISUAL")
        .assert()
        .success()
        .stdout(format!("{}\n", md5_hex(b"{\"v\": 2}\n")))
        .stderr("");
    assert_eq!(env.file("k").unwrap(), b"{\"v\": 2}\n");
    assert_eq!(
        fs::read(seen.with_extension("json")).unwrap(),
        br#"{"v": 1}"#
    );
    let copy = fs::read_to_string(seen.with_extension("path")).unwrap();
    assert!(copy.trim_end().ends_with(".json"), "{copy}");
    assert!(!Path::new(copy.trim_end()).exists(), "the copy is removed");

    // VISUAL wins over EDITOR.
    let visual = script(&env, "visual.sh", "echo '[\"visual\"]' > \"$1\"");
    at_terminal(&env)
        .args(["edit", "k"])
        .env("EDITOR", "false")
        .env("VISUAL", &visual)
        .assert()
        .success()
        .stderr("");
    assert_eq!(env.file("k").unwrap(), b"[\"visual\"]\n");
}

#[test]
fn an_editor_that_fails_writes_nothing() {
    let env = TestStore::new();
    env.put("k", "{}");
    let editor = script(&env, "editor.sh", "echo '[1]' > \"$1\"; exit 3");
    at_terminal(&env)
        .args(["edit", "k"])
        .env("EDITOR", &editor)
        .env_remove("VISUAL")
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::starts_with("error: the editor"));
    assert_eq!(env.file("k").unwrap(), b"{}");
}

#[test]
fn invalid_json_from_the_editor_is_kept_with_the_command_to_apply_it() {
    let env = TestStore::new();
    let etag = env.put("k", "{}");
    let editor = script(&env, "editor.sh", "echo '{\"half\": ' > \"$1\"");
    let output = at_terminal(&env)
        .args(["edit", "k"])
        .env("EDITOR", &editor)
        .env_remove("VISUAL")
        .assert()
        .code(6)
        .stdout("")
        .get_output()
        .clone();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: invalid document"), "{stderr}");
    let kept = kept_path(&stderr);
    assert_eq!(fs::read(&kept).unwrap(), b"{\"half\": \n");
    assert!(stderr.contains(&format!(
        "etagstore --store {} set k -f {} --etag {etag}",
        env.store().display(),
        kept.display()
    )));
    assert_eq!(env.file("k").unwrap(), b"{}");
    fs::remove_file(kept).unwrap();
}

#[test]
fn an_unresolved_conflict_during_the_editor_keeps_the_text_and_the_other_write() {
    let env = TestStore::new();
    env.put("k", r#"{"who": "nobody"}"#);
    // The "person" saves an edit while someone else writes the key; the
    // other writer must get the lock at once: edit does not hold it.
    let editor = script(
        &env,
        "editor.sh",
        &format!(
            "'{}' --lock-timeout 1 set-unsafe k '{{\"who\": \"other\"}}' >/dev/null\n\
             echo '{{\"who\": \"me\"}}' > \"$1\"",
            TestStore::bin().display()
        ),
    );
    let output = at_terminal(&env)
        .env("ETAGSTORE_DIR", env.store())
        .args(["edit", "k"])
        .env("EDITOR", &editor)
        .env_remove("VISUAL")
        .assert()
        .code(3)
        .stdout("")
        .get_output()
        .clone();
    let stderr = String::from_utf8(output.stderr).unwrap();
    // The editor re-opened on the conflict at .who, and the "person" saved
    // a bare document over the conflict file: it is kept, not written.
    assert!(
        stderr.starts_with(
            "error: changes written to key \"k\" while you edited it conflict with yours at .who;"
        ),
        "{stderr}"
    );
    let other = br#"{"who": "other"}"#;
    assert_eq!(env.file("k").unwrap(), other);
    let kept = kept_path(&stderr);
    assert_eq!(fs::read(&kept).unwrap(), b"{\"who\": \"me\"}\n");
    assert!(
        stderr.contains(&format!("--etag {}", md5_hex(other))),
        "{stderr}"
    );
    fs::remove_file(kept).unwrap();
}

#[test]
fn a_conflict_during_the_command_is_retried_on_the_new_document() {
    let env = TestStore::new();
    env.put("k", "[\"first\"]");
    let marker = env.root().join("interfered");
    let cmd = script(
        &env,
        "cmd.sh",
        &format!(
            "if [ ! -e '{m}' ]; then touch '{m}'; \
             '{bin}' --lock-timeout 1 set-unsafe k '[\"other\"]' >/dev/null; fi\n\
             sed 's/]/, \"cmd\"]/'",
            m = marker.display(),
            bin = TestStore::bin().display()
        ),
    );
    env.cmd()
        .env("ETAGSTORE_DIR", env.store())
        .args(["edit", "k", "--"])
        .arg(&cmd)
        .assert()
        .success()
        .stderr("");
    // The retry ran on the other writer's document: both changes are there.
    assert_eq!(env.file("k").unwrap(), br#"["other", "cmd"]"#);
}

#[test]
fn running_out_of_retries_is_exit_3() {
    let env = TestStore::new();
    env.put("k", "0");
    // Every run is overtaken by another write.
    let cmd = script(
        &env,
        "cmd.sh",
        &format!(
            "n=$(cat); '{}' set-unsafe k \"$(date +%s%N)\" >/dev/null; echo $((n + 1))",
            TestStore::bin().display()
        ),
    );
    env.cmd()
        .env("ETAGSTORE_DIR", env.store())
        .args(["edit", "k", "--retries", "2", "--"])
        .arg(&cmd)
        .assert()
        .code(3)
        .stdout("")
        .stderr(predicate::str::contains("gave up after 2 retries"));
}

fn race(env: &TestStore, edit_args: &[&str], processes: usize, edits: usize) {
    let children: Vec<_> = (0..processes)
        .map(|_| {
            let mut args = String::new();
            for arg in edit_args {
                args.push_str(&format!(" '{arg}'"));
            }
            Process::new("sh")
                .arg("-c")
                .arg(format!(
                    "i=0; while [ $i -lt {edits} ]; do \
                     \"$BIN\" edit k --retries 1000{args} >/dev/null || exit 1; \
                     i=$((i + 1)); done"
                ))
                .env("BIN", TestStore::bin())
                .env("ETAGSTORE_DIR", env.store())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
}

#[test]
fn racing_jq_edits_lose_no_update() {
    let env = TestStore::new();
    env.put("k", r#"{"n": 0}"#);
    race(&env, &["--jq", ".n += 1"], 4, 50);
    assert_eq!(env.file("k").unwrap(), b"{\n  \"n\": 200\n}\n");
}

#[test]
fn racing_command_edits_lose_no_update() {
    let env = TestStore::new();
    env.put("k", "0");
    let cmd = script(&env, "inc.sh", "n=$(cat); echo $((n + 1))");
    let cmd = cmd.to_str().unwrap().to_string();
    race(&env, &["--", &cmd], 4, 50);
    assert_eq!(env.file("k").unwrap(), b"200\n");
}
