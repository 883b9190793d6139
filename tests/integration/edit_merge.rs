//! `edit` merges a write made while the person was in the editor (or while
//! CMD or --jq ran, with `--merge`) instead of discarding either.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::common::{md5_hex, one_error_line, TestStore};
use crate::first_contact::with_terminal;

every_backend!(
    an_editor_change_and_a_concurrent_change_at_another_path_are_both_written,
    a_command_with_merge_runs_once_and_its_output_is_merged,
);

/// `etagstore --store …` with a terminal of its own, as the editor needs,
/// and a temporary directory of its own, to see the copy go.
fn at_terminal(env: &TestStore) -> assert_cmd::Command {
    let mut cmd = env.process();
    with_terminal(&mut cmd);
    fs::create_dir_all(tmp(env)).unwrap();
    cmd.env("TMPDIR", tmp(env)).env_remove("VISUAL");
    assert_cmd::Command::from_std(cmd)
}

fn tmp(env: &TestStore) -> PathBuf {
    env.root().join("tmp")
}

/// Writes an executable shell script into the test's directory.
fn script(env: &TestStore, name: &str, body: &str) -> PathBuf {
    let path = env.root().join(name);
    fs::write(&path, format!("#!/bin/sh\nset -e\n{body}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// An editor: on its first run another writer sets key `k` to `theirs`,
/// then the person saves `mine`. Each later run copies the file it was
/// given to `run-N.json`, then runs `later` on it ("$1").
fn editor(env: &TestStore, theirs: &str, mine: &str, later: &str) -> PathBuf {
    script(
        env,
        "editor.sh",
        &format!(
            "n=$(cat runs 2>/dev/null || echo 0); n=$((n + 1)); echo $n > runs\n\
             if [ $n = 1 ]; then\n\
             '{bin}' --store '{store}' --lock-timeout 5 set-unsafe k '{theirs}' >/dev/null\n\
             printf '%s' '{mine}' > \"$1\"\n\
             else\n\
             cp \"$1\" run-$n.json\n\
             {later}\n\
             fi",
            bin = TestStore::bin().display(),
            store = env.store().display(),
        ),
    )
}

/// How many times the editor (or CMD) ran.
fn runs(env: &TestStore) -> String {
    fs::read_to_string(env.root().join("runs"))
        .unwrap()
        .trim()
        .to_string()
}

/// The document under `key`, read with `get`.
fn stored(env: &TestStore, key: &str) -> String {
    let out = env.cmd().args(["get", key]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn copies_left(env: &TestStore) -> Vec<PathBuf> {
    fs::read_dir(tmp(env))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect()
}

/// The path of the kept edit that an error line names.
fn kept_path(stderr: &str) -> PathBuf {
    let start = stderr.find("kept in ").expect("a kept path") + "kept in ".len();
    let end = start + stderr[start..].find(';').unwrap();
    PathBuf::from(&stderr[start..end])
}

fn an_editor_change_and_a_concurrent_change_at_another_path_are_both_written(env: &TestStore) {
    env.put("k", "{\n  \"a\": 1,\n  \"b\": 1\n}\n");
    let editor = editor(
        env,
        r#"{"a": 1, "b": 2}"#,
        "{\n  \"a\": 2,\n  \"b\": 1\n}\n",
        "",
    );
    let merged = "{\n  \"a\": 2,\n  \"b\": 2\n}\n";
    at_terminal(env)
        .args(["edit", "k"])
        .env("EDITOR", &editor)
        .assert()
        .success()
        .stdout(format!("{}\n", md5_hex(merged.as_bytes())))
        .stderr("note: merged concurrent changes at .b\n");
    assert_eq!(stored(env, "k"), merged, "{}", env.store().display());
    assert_eq!(runs(env), "1", "a clean merge opens no second editor");
    assert_eq!(copies_left(env), Vec::<PathBuf>::new());
}

#[test]
fn the_same_change_made_meanwhile_writes_nothing_more() {
    let env = TestStore::new();
    env.put("k", r#"{"a": 1}"#);
    let theirs = r#"{"a": 2}"#;
    let editor = editor(&env, theirs, "{\"a\":2}\n", "");
    at_terminal(&env)
        .args(["edit", "k"])
        .env("EDITOR", &editor)
        .assert()
        .success()
        .stdout(format!("{}\n", md5_hex(theirs.as_bytes())))
        .stderr("");
    assert_eq!(env.file("k").unwrap(), theirs.as_bytes());
    assert_eq!(copies_left(&env), Vec::<PathBuf>::new());
}

#[test]
fn a_conflict_reopens_the_editor_on_a_conflict_file_and_its_resolution_is_written() {
    let env = TestStore::new();
    env.put("k", r#"{"who": "nobody", "n": 1}"#);
    let editor = editor(
        &env,
        r#"{"who": "other", "n": 2}"#,
        "{\n  \"who\": \"me\",\n  \"n\": 1\n}\n",
        r#"printf '%s' '{"help": "", "document": {"who": "us", "n": 3}}' > "$1""#,
    );
    let written = "{\n  \"who\": \"us\",\n  \"n\": 3\n}\n";
    at_terminal(&env)
        .args(["edit", "k"])
        .env("EDITOR", &editor)
        .assert()
        .success()
        .stdout(format!("{}\n", md5_hex(written.as_bytes())))
        .stderr("note: merged concurrent changes at .n\n");
    assert_eq!(env.file("k").unwrap(), written.as_bytes());
    assert_eq!(runs(&env), "2");
    // What the second run saw: the conflicts at the top, then the merge
    // (their .n, your .who), as one JSON object.
    let file = fs::read_to_string(env.root().join("run-2.json")).unwrap();
    assert!(file.starts_with("{\n  \"help\": \""), "{file}");
    let (conflicts, document) = (
        file.find("\"conflicts\"").unwrap(),
        file.find("\"document\"").unwrap(),
    );
    assert!(conflicts < document, "{file}");
    let wrapper: serde_json::Value = serde_json::from_str(&file).unwrap();
    assert_eq!(
        wrapper["conflicts"],
        serde_json::json!({".who": {"base": "nobody", "yours": "me", "theirs": "other"}})
    );
    assert_eq!(
        file[document..].trim_end(),
        "\"document\": {\n    \"who\": \"me\",\n    \"n\": 2\n  }\n}"
    );
    assert_eq!(copies_left(&env), Vec::<PathBuf>::new());
}

#[test]
fn a_conflict_file_saved_unchanged_writes_nothing_and_keeps_the_merge_to_apply() {
    let env = TestStore::new();
    env.put("k", r#"{"who": "nobody", "n": 1}"#);
    let theirs = r#"{"who": "other", "n": 2}"#;
    let editor = editor(
        &env,
        theirs,
        "{\n  \"who\": \"me\",\n  \"n\": 1\n}\n",
        "true",
    );
    let output = at_terminal(&env)
        .args(["edit", "k"])
        .env("EDITOR", &editor)
        .assert()
        .code(3)
        .stdout("")
        .stderr(one_error_line())
        .get_output()
        .clone();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with(
            "error: changes written to key \"k\" while you edited it conflict with yours at \
             .who; the conflict file was saved unchanged, so nothing was written; your edit \
             is kept in "
        ),
        "{stderr}"
    );
    assert_eq!(env.file("k").unwrap(), theirs.as_bytes());
    // Kept: the merge, with your value where they conflict, never the
    // conflict file (which `set -f` would store as it is).
    let kept = kept_path(&stderr);
    assert_eq!(
        fs::read_to_string(&kept).unwrap(),
        "{\n  \"who\": \"me\",\n  \"n\": 2\n}\n"
    );
    let apply = format!(
        "set k -f {} --etag {}",
        kept.display(),
        md5_hex(theirs.as_bytes())
    );
    assert!(stderr.contains(&apply), "{stderr}");
    env.cmd()
        .args(["set", "k", "-f"])
        .arg(&kept)
        .args(["--etag", &md5_hex(theirs.as_bytes())])
        .assert()
        .success()
        .stderr("");
    fs::remove_file(kept).unwrap();
}

#[test]
fn a_conflict_file_still_holding_its_conflicts_writes_nothing_and_keeps_the_edited_document() {
    let env = TestStore::new();
    env.put("k", r#"{"who": "nobody", "n": 1}"#);
    let theirs = r#"{"who": "other", "n": 2}"#;
    // The person fixes the document but leaves "conflicts" in.
    let editor = editor(
        &env,
        theirs,
        r#"{"who": "me", "n": 1}"#,
        r#"printf '%s' '{"conflicts": {}, "document": {"who": "fixed", "n": 2}}' > "$1""#,
    );
    let output = at_terminal(&env)
        .args(["edit", "k"])
        .env("EDITOR", &editor)
        .assert()
        .code(3)
        .stdout("")
        .stderr(one_error_line())
        .get_output()
        .clone();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("the \"conflicts\" member is still there"),
        "{stderr}"
    );
    assert_eq!(env.file("k").unwrap(), theirs.as_bytes());
    let kept = kept_path(&stderr);
    assert_eq!(
        fs::read_to_string(&kept).unwrap(),
        r#"{"who":"fixed","n":2}"#
    );
    fs::remove_file(kept).unwrap();
}

fn a_command_with_merge_runs_once_and_its_output_is_merged(env: &TestStore) {
    env.put("k", r#"{"n": 1, "owner": null}"#);
    // CMD is the one that meets the other writer: it runs once.
    let cmd = script(
        env,
        "cmd.sh",
        &format!(
            "n=$(cat runs 2>/dev/null || echo 0); echo $((n + 1)) > runs\n\
             '{bin}' --store '{store}' --lock-timeout 5 set-unsafe k '{{\"n\": 1, \"owner\": \"x\"}}' >/dev/null\n\
             sed 's/\"n\": 1/\"n\": 2/'",
            bin = TestStore::bin().display(),
            store = env.store().display(),
        ),
    );
    let merged = r#"{"n":2,"owner":"x"}"#;
    env.cmd()
        .args(["edit", "k", "--merge", "--"])
        .arg(&cmd)
        .assert()
        .success()
        .stdout(format!("{}\n", md5_hex(merged.as_bytes())))
        .stderr("note: merged concurrent changes at .owner\n");
    assert_eq!(stored(env, "k"), merged, "{}", env.store().display());
    assert_eq!(runs(env), "1");
}

#[test]
fn a_command_with_merge_whose_output_conflicts_writes_nothing() {
    let env = TestStore::new();
    env.put("k", r#"{"n": 1}"#);
    let cmd = script(
        &env,
        "cmd.sh",
        &format!(
            "'{bin}' --store '{store}' --lock-timeout 5 set-unsafe k '{{\"n\": 5}}' >/dev/null\n\
             echo '{{\"n\": 2}}'",
            bin = TestStore::bin().display(),
            store = env.store().display(),
        ),
    );
    env.cmd()
        .args(["edit", "k", "--merge", "--"])
        .arg(&cmd)
        .assert()
        .code(3)
        .stdout("")
        .stderr(format!(
            "error: edit --merge: key \"k\" changed meanwhile at paths the new document also \
             changed: .n; nothing written (its ETag is now \"{}\")\n",
            md5_hex(br#"{"n": 5}"#)
        ));
    assert_eq!(env.file("k").unwrap(), br#"{"n": 5}"#);
}

/// `edit --merge --jq`, stopped between its read and its write while
/// another process writes `theirs`; returns its output.
#[cfg(feature = "test-hooks")]
fn jq_edit_meeting(env: &TestStore, filter: &str, theirs: &str) -> std::process::Output {
    use std::process::Stdio;
    let pause = crate::common::Pause::new(env.root(), "BEFORE_LOCK");
    let mut cmd = env.process();
    cmd.args(["edit", "k", "--merge", "--jq", filter])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    pause.arm(&mut cmd);
    let mut edit = cmd.spawn().unwrap();
    pause.wait_for(&mut edit);
    env.put("k", theirs);
    pause.release();
    edit.wait_with_output().unwrap()
}

#[cfg(feature = "test-hooks")]
#[test]
fn jq_with_merge_under_a_concurrent_writer_merges_or_refuses() {
    let env = TestStore::new();
    env.put("k", r#"{"n": 1}"#);
    let out = jq_edit_meeting(&env, ".n += 1", r#"{"n": 1, "owner": "x"}"#);
    let merged = "{\n  \"n\": 2,\n  \"owner\": \"x\"\n}\n";
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!("{}\n", md5_hex(merged.as_bytes())).as_bytes()
    );
    assert_eq!(out.stderr, b"note: merged concurrent changes at .owner\n");
    assert_eq!(env.file("k").unwrap(), merged.as_bytes());

    // The other writer changed .n too: no merge, and no second run of the
    // filter (which would have made it 6).
    env.put("k", r#"{"n": 1}"#);
    let out = jq_edit_meeting(&env, ".n += 1", r#"{"n": 5}"#);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("error: edit --merge: key \"k\" changed meanwhile at paths the new document also changed: .n;"), "{stderr}");
    assert_eq!(env.file("k").unwrap(), br#"{"n": 5}"#);
}

#[test]
fn a_delete_while_editing_is_a_conflict_and_the_resolution_creates_the_key_again() {
    let env = TestStore::new();
    let base = r#"{"n": 1}"#;
    let etag = env.put("k", base);
    let editor = script(
        &env,
        "editor.sh",
        &format!(
            "n=$(cat runs 2>/dev/null || echo 0); n=$((n + 1)); echo $n > runs\n\
             if [ $n = 1 ]; then\n\
             '{bin}' --store '{store}' delete k --etag {etag}\n\
             echo '{{\"n\": 2}}' > \"$1\"\n\
             else\n\
             cp \"$1\" run-$n.json\n\
             echo '{{\"document\": {{\"n\": 3}}}}' > \"$1\"\n\
             fi",
            bin = TestStore::bin().display(),
            store = env.store().display(),
        ),
    );
    at_terminal(&env)
        .args(["edit", "k"])
        .env("EDITOR", &editor)
        .assert()
        .success()
        .stdout(format!("{}\n", md5_hex(b"{\"n\":3}\n")))
        .stderr("");
    assert_eq!(env.file("k").unwrap(), b"{\"n\":3}\n");
    // The whole document conflicts: theirs is missing, it was deleted.
    let file = fs::read_to_string(env.root().join("run-2.json")).unwrap();
    let wrapper: serde_json::Value = serde_json::from_str(&file).unwrap();
    assert_eq!(
        wrapper["conflicts"],
        serde_json::json!({".": {"base": {"n": 1}, "yours": {"n": 2}}})
    );
}

/// `edit --if` with an editor: a concurrent write that makes the predicate
/// false is not merged into: the person's change is kept, nothing written.
#[test]
fn a_concurrent_write_that_makes_the_if_predicate_false_is_not_merged_into() {
    let env = TestStore::new();
    env.put("k", r#"{"status": "draft", "text": "a"}"#);
    let theirs = r#"{"status": "published", "text": "a"}"#;
    let editor = editor(&env, theirs, r#"{"status": "draft", "text": "b"}"#, "");
    let out = at_terminal(&env)
        .args(["edit", "k", "--if", ".status == \"draft\""])
        .env("EDITOR", &editor)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("condition failed"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(stored(&env, "k"), theirs);
    let kept = fs::read_to_string(kept_path(&stderr)).unwrap();
    assert!(kept.contains("\"b\""), "{kept}");
}
