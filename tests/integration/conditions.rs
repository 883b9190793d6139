//! Conditions on content (`set`/`delete`/`edit --if FILTER`) and `patch`:
//! each scenario is one function taking a `TestStore`, run by
//! `every_backend!` on a directory, Azurite and S3 (moto).

use std::io::Write;
use std::process::{Output, Stdio};

use predicates::prelude::*;

use crate::common::{line, md5_hex, one_error_line, race, Pause, TestStore};

every_backend!(
    of_eight_processes_claiming_a_job_exactly_one_wins,
    delete_if_removes_only_a_finished_job,
    if_and_etag_must_both_hold,
    a_predicate_that_is_not_one_boolean_writes_nothing,
    the_predicate_holds_on_the_exact_version_written_over,
    edit_if_is_checked_again_on_every_retry,
);

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn get(env: &TestStore, key: &str) -> String {
    text(&env.cmd().args(["get", key]).output().unwrap().stdout)
}

/// The exit-3 line of a false predicate.
fn condition_failed(output: &Output, key: &str) {
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: condition failed for key \"{key}\": --if '"
        )),
        "{stderr}"
    );
}

fn of_eight_processes_claiming_a_job_exactly_one_wins(env: &TestStore) {
    // Twice: on a missing key (null to the predicate), then on a released job.
    for round in 0..2 {
        if round == 1 {
            env.put("job", "{\"owner\": null}");
        }
        let docs: Vec<String> = (0..8).map(|i| format!("{{\"owner\":\"p{i}\"}}")).collect();
        let outputs = race(env, &["set", "job", "--if", ".owner == null"], &docs);
        let winners: Vec<usize> = (0..8)
            .filter(|&i| outputs[i].status.code() == Some(0))
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {outputs:?}");
        let winner = &docs[winners[0]];
        assert_eq!(
            text(&outputs[winners[0]].stdout),
            line(&md5_hex(winner.as_bytes()))
        );
        for (i, output) in outputs.iter().enumerate() {
            if i != winners[0] {
                condition_failed(output, "job");
                assert!(text(&output.stderr).contains(&md5_hex(winner.as_bytes())));
            }
        }
        assert_eq!(get(env, "job"), *winner);
    }
}

fn delete_if_removes_only_a_finished_job(env: &TestStore) {
    let busy = env.put("job", "{\"state\": \"running\"}");
    env.run(["delete", "job", "--if", ".state == \"done\""])
        .status(3)
        .error([
            "condition failed for key \"job\": --if '.state == \"done\"'",
            busy.as_str(),
        ])
        .check();
    assert_eq!(get(env, "job"), "{\"state\": \"running\"}");
    env.put("job", "{\"state\": \"done\"}");
    env.run(["delete", "job", "--if", ".state == \"done\""])
        .check();
    env.run(["get", "job"]).status(4).error_line().check();
    // A missing key is null: false here, exit 3 ...
    env.run(["delete", "job", "--if", ".state == \"done\""])
        .status(3)
        .error(["is not true of null (the key does not exist)"])
        .check();
    // ... and true here: nothing to delete, as with --etag ''.
    env.run(["delete", "job", "--if", ". == null"]).check();
}

fn if_and_etag_must_both_hold(env: &TestStore) {
    let v1 = env.put("lock", "{\"owner\": null, \"n\": 1}");
    let stale = md5_hex(b"stale");
    // A stale --etag: exit 3 at once, whatever the predicate says.
    env.run(["set", "lock", "{\"owner\":\"me\"}", "--etag", &stale])
        .args(["--if", ".owner == null"])
        .status(3)
        .error([format!(
            "--etag \"{stale}\" but the current ETag is \"{v1}\""
        )])
        .check();
    // The --etag holds, the predicate does not.
    env.run(["set", "lock", "{\"owner\":\"me\"}", "--etag", &v1])
        .args(["--if", ".n > 1"])
        .status(3)
        .error([
            "--if '.n > 1' is not true of the current document",
            v1.as_str(),
        ])
        .check();
    // Both hold: written.
    let doc = "{\"owner\":\"me\"}";
    env.run(["set", "lock", doc, "--etag", &v1, "--if", ".owner == null"])
        .stdout(line(&md5_hex(doc.as_bytes())))
        .check();
    // '' and a predicate true of null: create only.
    env.run(["set", "new", "[]", "--etag", "", "--if", ". == null"])
        .stdout(line(&md5_hex(b"[]")))
        .check();
    env.run(["set", "new", "[1]", "--etag", "", "--if", "true"])
        .status(3)
        .error(["--etag \"\" but the current ETag is"])
        .check();
    assert_eq!(get(env, "lock"), doc);
    assert_eq!(get(env, "new"), "[]");
}

fn a_predicate_that_is_not_one_boolean_writes_nothing(env: &TestStore) {
    env.put("k", "{\"owner\": \"ann\", \"tags\": [1, 2]}");
    let cases: [(&str, i32, &str); 7] = [
        (".owner", 2, "it yielded \"ann\", not true or false"),
        (".tags[]", 2, "it yielded more than one value"),
        ("empty", 2, "it yielded no value"),
        ("error(\"boom\")", 2, "the filter failed: boom"),
        (".owner + 1", 2, "must yield exactly one boolean"),
        (".owner ==", 2, "does not compile"),
        ("nosuchfunction", 2, "does not compile"),
    ];
    for (predicate, code, says) in cases {
        for command in [
            vec!["set", "k", "{}", "--if", predicate],
            vec!["delete", "k", "--if", predicate],
            vec!["edit", "k", "--jq", ".x = 1", "--if", predicate],
        ] {
            let out = env
                .cmd()
                .args(&command)
                .assert()
                .code(code)
                .stdout("")
                .stderr(one_error_line())
                .get_output()
                .clone();
            let stderr = text(&out.stderr);
            assert!(stderr.contains(says), "{command:?}: {stderr}");
        }
    }
    // Not JSON is exit 6 before the predicate runs, whatever it says.
    env.run(["set", "k", "{", "--if", "false"])
        .status(6)
        .error(["invalid document"])
        .check();
    assert_eq!(get(env, "k"), "{\"owner\": \"ann\", \"tags\": [1, 2]}");
}

/// A writer paused after its check, before its write is sent.
fn paused_set(env: &TestStore, args: &[&str], doc: &str, meanwhile: impl FnOnce()) -> Output {
    let point = if env.azurite_store().is_some() || env.s3_store().is_some() {
        "BEFORE_SEND"
    } else {
        "BEFORE_LOCK"
    };
    let pause = Pause::new(env.root(), point);
    let mut cmd = env.process();
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    pause.arm(&mut cmd);
    let mut writer = cmd.spawn().unwrap();
    writer
        .stdin
        .take()
        .unwrap()
        .write_all(doc.as_bytes())
        .unwrap();
    pause.wait_for(&mut writer);
    meanwhile();
    pause.release();
    writer.wait_with_output().unwrap()
}

fn the_predicate_holds_on_the_exact_version_written_over(env: &TestStore) {
    env.put("job", "{\"owner\": null}");
    // The predicate was true when read; someone claims the job before the
    // write: the write must not land, the re-read finds the predicate false.
    let out = paused_set(
        env,
        &["set", "job", "--if", ".owner == null"],
        "{\"owner\":\"late\"}",
        || {
            env.put("job", "{\"owner\": \"early\"}");
        },
    );
    condition_failed(&out, "job");
    assert_eq!(get(env, "job"), "{\"owner\": \"early\"}");
    // The key changed, the predicate still holds: written over the new version.
    env.put("job", "{\"owner\": null, \"n\": 1}");
    let doc = "{\"owner\":\"me\"}";
    let out = paused_set(env, &["set", "job", "--if", ".owner == null"], doc, || {
        env.put("job", "{\"owner\": null, \"n\": 2}");
    });
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(text(&out.stdout), line(&md5_hex(doc.as_bytes())));
    assert_eq!(get(env, "job"), doc);
    // A delete checks the same way.
    env.put("job", "{\"state\": \"done\"}");
    let out = paused_set(
        env,
        &["delete", "job", "--if", ".state == \"done\""],
        "",
        || {
            env.put("job", "{\"state\": \"reopened\"}");
        },
    );
    condition_failed(&out, "job");
    assert_eq!(get(env, "job"), "{\"state\": \"reopened\"}");
}

fn edit_if_is_checked_again_on_every_retry(env: &TestStore) {
    env.put("job", "{\"state\": \"open\", \"n\": 0}");
    // CMD closes the job itself on its first run (another writer, between
    // edit's read and its write): the retry reads "closed" and stops.
    let store = env.store();
    let script = format!(
        "if [ ! -e ran ]; then : > ran; echo '{{\"state\": \"closed\"}}' | {} --store {} set-unsafe job >/dev/null; fi; \
         sed 's/\"n\": 0/\"n\": 1/'",
        TestStore::bin().display(),
        store.display()
    );
    env.run([
        "edit",
        "job",
        "--if",
        ".state == \"open\"",
        "--",
        "sh",
        "-c",
        &script,
    ])
    .status(3)
    .error(["--if '.state == \"open\"' is not true of the current document"])
    .check();
    assert_eq!(get(env, "job"), "{\"state\": \"closed\"}\n");
    // While it holds, edit changes the document as usual.
    env.put("job", "{\"state\": \"open\", \"n\": 0}");
    env.run([
        "edit",
        "job",
        "--if",
        ".state == \"open\"",
        "--jq",
        ".n += 1",
    ])
    .stdout(line(&md5_hex(
        b"{\n  \"state\": \"open\",\n  \"n\": 1\n}\n",
    )))
    .check();
}

#[test]
fn the_condition_failure_names_the_predicate_and_the_current_etag() {
    let env = TestStore::new();
    let etag = env.put("k", "{\"v\": 1}");
    env.run(["set", "k", "{}", "--if", ".v == 2"])
        .status(3)
        .stderr_matches(predicate::eq(format!(
            "error: condition failed for key \"k\": --if '.v == 2' is not true of the \
             current document (ETag \"{etag}\")\n"
        )))
        .unchanged()
        .check();
}

#[test]
fn retries_go_with_if_only() {
    let env = TestStore::new();
    env.run(["set", "k", "{}", "--etag", "", "--retries", "3"])
        .status(2)
        .error(["--if"])
        .check();
}

every_backend!(
    patch_merges_and_applies_json_patches_in_key_order,
    a_failing_test_op_is_exit_3_and_writes_nothing,
    four_times_ten_concurrent_patches_append_forty_items,
);

fn patch_merges_and_applies_json_patches_in_key_order(env: &TestStore) {
    env.put(
        "cfg",
        "{\"z\": 1, \"a\": {\"b\": 0, \"c\": 2}, \"items\": [1]}",
    );
    let merged = "{\n  \"z\": 1,\n  \"a\": {\n    \"b\": 1\n  },\n  \"items\": [\n    1\n  ],\n  \"new\": true\n}\n";
    env.run([
        "patch",
        "cfg",
        "--merge",
        "{\"a\":{\"b\":1,\"c\":null},\"new\":true}",
    ])
    .stdout(line(&md5_hex(merged.as_bytes())))
    .check();
    assert_eq!(get(env, "cfg"), merged);
    // Nothing to change: nothing written, the current ETag printed.
    let etag = md5_hex(merged.as_bytes());
    env.run(["patch", "cfg", "--merge", "{\"z\":1}"])
        .stdout(line(&etag))
        .check();
    let patched = merged
        .replace("\"z\": 1", "\"z\": 2")
        .replace("    1\n  ]", "    1,\n    2\n  ]");
    env.run(["patch", "cfg", "--json-patch"])
        .arg(r#"[{"op":"test","path":"/z","value":1},{"op":"replace","path":"/z","value":2},{"op":"add","path":"/items/-","value":2}]"#)
        .stdout(line(&md5_hex(patched.as_bytes())))
        .check();
    assert_eq!(get(env, "cfg"), patched);
    // From standard input and from a file.
    env.run(["patch", "cfg", "--merge"])
        .stdin("{\"new\": null}")
        .stdout(line(&md5_hex(
            patched.replace(",\n  \"new\": true", "").as_bytes(),
        )))
        .check();
    std::fs::write(
        env.root().join("p.json"),
        r#"[{"op":"remove","path":"/items"}]"#,
    )
    .unwrap();
    let removed = "{\n  \"z\": 2,\n  \"a\": {\n    \"b\": 1\n  }\n}\n";
    env.run(["patch", "cfg", "--json-patch", "-f", "p.json"])
        .stdout(line(&md5_hex(removed.as_bytes())))
        .check();
    assert_eq!(get(env, "cfg"), removed);
}

fn a_failing_test_op_is_exit_3_and_writes_nothing(env: &TestStore) {
    let etag = env.put("cfg", "{\"v\": 1, \"w\": 0}");
    env.run(["patch", "cfg", "--json-patch"])
        .arg(r#"[{"op":"replace","path":"/w","value":9},{"op":"test","path":"/v","value":2}]"#)
        .status(3)
        .error([
            "patch not applied to key \"cfg\": operation 1",
            "the test failed",
            etag.as_str(),
        ])
        .check();
    env.run([
        "patch",
        "cfg",
        "--json-patch",
        r#"[{"op":"remove","path":"/nope"}]"#,
    ])
    .status(3)
    .error(["operation 0", "its path is not in the current document"])
    .check();
    assert_eq!(get(env, "cfg"), "{\"v\": 1, \"w\": 0}");
}

fn four_times_ten_concurrent_patches_append_forty_items(env: &TestStore) {
    env.put("list", "{\"items\": []}");
    std::thread::scope(|scope| {
        for writer in 0..4 {
            scope.spawn(move || {
                for i in 0..10 {
                    let op = format!(
                        "[{{\"op\":\"add\",\"path\":\"/items/-\",\"value\":{}}}]",
                        writer * 100 + i
                    );
                    let output = env
                        .process()
                        .args(["patch", "list", "--retries", "1000", "--json-patch", &op])
                        .output()
                        .unwrap();
                    assert!(output.status.success(), "{output:?}");
                }
            });
        }
    });
    let doc: serde_json::Value = serde_json::from_str(&get(env, "list")).unwrap();
    let mut items: Vec<u64> = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(items.len(), 40, "{doc}");
    items.sort();
    let expected: Vec<u64> = (0..4)
        .flat_map(|w| (0..10).map(move |i| w * 100 + i))
        .collect();
    assert_eq!(items, expected);
}

#[test]
fn malformed_patches_missing_keys_and_inexact_numbers_write_nothing() {
    let env = TestStore::new();
    env.put("cfg", "{\"v\": 1}");
    env.put("big", "[1, 18446744073709551616]");
    let cases: [(&[&str], i32, &str); 8] = [
        (
            &["cfg", "--merge", "{"],
            6,
            "the --merge patch: invalid document",
        ),
        (
            &["cfg", "--json-patch", "[1"],
            6,
            "the --json-patch patch: invalid document",
        ),
        (
            &["cfg", "--json-patch", "{\"op\":\"remove\",\"path\":\"/v\"}"],
            2,
            "is not a JSON Patch",
        ),
        (
            &["cfg", "--json-patch", "[{\"op\":\"frob\",\"path\":\"/v\"}]"],
            2,
            "unknown variant `frob`",
        ),
        (
            &[
                "cfg",
                "--json-patch",
                "[{\"op\":\"remove\",\"path\":\"v\"}]",
            ],
            2,
            "does not start with a slash",
        ),
        (&["cfg"], 2, "--merge"),
        (&["nokey", "--merge", "{}"], 4, "create it first: etagstore"),
        (
            &["big", "--merge", "{}"],
            6,
            "18446744073709551616 is neither exactly",
        ),
    ];
    for (args, code, says) in cases {
        env.run(["patch"])
            .args(args)
            .status(code)
            .error([says])
            .unchanged()
            .check();
    }
}

/// A write whose answer is lost (Azurite behind a fault proxy): `set --if`,
/// `delete --if` and `patch` read the key again and find out, as `edit`
/// does, instead of failing with exit 8 or writing twice. Dropped answer:
/// the write landed, it is not repeated; closed before forwarding: it did
/// not, and the second try writes.
#[test]
fn conditional_writes_resolve_a_lost_answer_and_never_write_twice() {
    use crate::fault_proxy::{Fault, Only, Proxy};
    for (fault, landed) in [(Fault::Drop, true), (Fault::Close, false)] {
        let Some(env) = TestStore::azurite() else {
            return;
        };
        let cases: [(&[&str], &str, Option<&str>); 3] = [
            (
                &["set", "job", "{\"owner\":\"me\"}", "--if", ".owner == null"],
                "{\"owner\": null}",
                Some("{\"owner\":\"me\"}"),
            ),
            (
                &[
                    "patch",
                    "job",
                    "--json-patch",
                    r#"[{"op":"add","path":"/items/-","value":1}]"#,
                ],
                "{\"items\": []}",
                Some("{\n  \"items\": [\n    1\n  ]\n}\n"),
            ),
            (
                &["delete", "job", "--if", ".state == \"done\""],
                "{\"state\": \"done\"}",
                None,
            ),
        ];
        for (args, before, after) in cases {
            env.put("job", before);
            let proxy = Proxy::start(crate::azurite::PORT, fault.clone(), Only::Writes, 1);
            let stdout = after.map_or(String::new(), |doc| line(&md5_hex(doc.as_bytes())));
            env.run(args)
                .env("AZURITE_BLOB_STORAGE_URL", proxy.url())
                .env("ETAGSTORE_TIMEOUT", "3")
                .stdout(stdout)
                .check();
            assert_eq!(proxy.broken(), 1, "{args:?} landed: {landed}");
            match after {
                Some(doc) => assert_eq!(get(&env, "job"), doc, "{args:?}"),
                None => {
                    env.run(["get", "job"]).status(4).error_line().check();
                }
            }
        }
    }
}
