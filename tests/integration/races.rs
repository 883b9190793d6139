//! Real processes racing: compare-and-swap has exactly one winner, a retry
//! loop loses no increment, readers never see a torn document, and locks
//! are per key.

use std::fs;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use predicates::prelude::*;

use crate::common::{md5_hex, one_error_line, race, TestStore};

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

#[test]
fn of_eight_writers_with_the_same_etag_exactly_one_wins() {
    let env = TestStore::new();
    let mut etag = env.put("k", "{\"writer\": null}");
    for round in 0..20 {
        let docs: Vec<String> = (0..8)
            .map(|i| format!("{{\"round\": {round}, \"writer\": {i}}}"))
            .collect();
        let outputs = race(&env, &["set", "k", "--etag", &etag], &docs);

        let winners: Vec<usize> = (0..8)
            .filter(|&i| outputs[i].status.code() == Some(0))
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {outputs:?}");
        let winner = winners[0];
        for (i, output) in outputs.iter().enumerate() {
            if i == winner {
                assert_eq!(
                    text(&output.stdout),
                    format!("{}\n", md5_hex(docs[i].as_bytes()))
                );
                assert_eq!(text(&output.stderr), "");
            } else {
                assert_eq!(output.status.code(), Some(3), "writer {i}: {output:?}");
                assert_eq!(text(&output.stdout), "", "writer {i}");
                let stderr = text(&output.stderr);
                assert!(
                    one_error_line()
                        .and(predicate::str::contains("\"k\""))
                        .and(predicate::str::contains(etag.clone()))
                        .eval(stderr),
                    "writer {i}: {stderr:?}"
                );
            }
        }
        assert_eq!(env.file("k").unwrap(), docs[winner].as_bytes());
        assert!(env.temp_files().is_empty());
        etag = md5_hex(docs[winner].as_bytes());
    }
}

#[test]
fn of_eight_creators_with_an_empty_etag_exactly_one_creates_the_key() {
    let env = TestStore::new();
    for round in 0..10 {
        let key = format!("k{round}");
        let docs: Vec<String> = (0..8).map(|i| format!("{{\"creator\": {i}}}")).collect();
        let outputs = race(&env, &["set", &key, "--etag", ""], &docs);
        let codes: Vec<Option<i32>> = outputs.iter().map(|o| o.status.code()).collect();
        let winners = codes.iter().filter(|c| **c == Some(0)).count();
        let losers = codes.iter().filter(|c| **c == Some(3)).count();
        assert_eq!((winners, losers), (1, 7), "round {round}: {outputs:?}");
        let winner = codes.iter().position(|c| *c == Some(0)).unwrap();
        assert_eq!(env.file(&key).unwrap(), docs[winner].as_bytes());
        for (i, output) in outputs.iter().enumerate() {
            let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
            if i == winner {
                assert_eq!(stdout, format!("{}\n", md5_hex(docs[i].as_bytes())));
                assert_eq!(stderr, "");
            } else {
                assert_eq!(stdout, "");
                assert!(one_error_line().eval(stderr), "{stderr:?}");
            }
        }
    }
}

/// A shell retry loop: read once with `get -o`, add one, write with
/// `set --etag`, and on exit 3 read again.
const INCREMENT_SCRIPT: &str = r#"#!/bin/sh
bin=$1 store=$2 times=$3 scratch=$4
i=0
while [ "$i" -lt "$times" ]; do
    while :; do
        etag=$("$bin" --store "$store" get counter -o "$scratch") || exit 1
        value=$(cat "$scratch")
        "$bin" --store "$store" set counter "$((value + 1))" --etag "$etag" >/dev/null 2>"$scratch.err"
        status=$?
        [ "$status" -eq 0 ] && break
        if [ "$status" -ne 3 ]; then
            cat "$scratch.err" >&2
            exit "$status"
        fi
    done
    i=$((i + 1))
done
"#;

#[test]
fn four_processes_incrementing_fifty_times_each_end_at_two_hundred() {
    let env = TestStore::new();
    env.put("counter", "0");
    let script = env.root().join("increment.sh");
    fs::write(&script, INCREMENT_SCRIPT).unwrap();
    let children: Vec<Child> = (0..4)
        .map(|i| {
            std::process::Command::new("sh")
                .arg(&script)
                .arg(TestStore::bin())
                .arg(env.store())
                .arg("50")
                .arg(env.root().join(format!("scratch-{i}")))
                .env_remove("ETAGSTORE_DIR")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{output:?}");
        assert_eq!(text(&output.stdout), "");
        assert_eq!(text(&output.stderr), "");
    }
    env.cmd()
        .args(["get", "counter"])
        .assert()
        .success()
        .stdout("200")
        .stderr("");
    assert!(env.temp_files().is_empty());
}

/// Clears the flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

#[test]
fn readers_never_see_a_torn_document_or_a_wrong_etag() {
    let env = TestStore::new();
    let small = format!("\"{}\"", "s".repeat(1024 - 2));
    let large = format!("\"{}\"", "L".repeat((1 << 20) - 2));
    for (name, doc) in [("small.json", &small), ("large.json", &large)] {
        fs::write(env.root().join(name), doc).unwrap();
    }
    env.put("k", &small);
    let etags = [md5_hex(small.as_bytes()), md5_hex(large.as_bytes())];
    let writing = AtomicBool::new(true);

    thread::scope(|scope| {
        let readers: Vec<_> = (0..3)
            .map(|r| {
                let (env, writing, etags) = (&env, &writing, &etags);
                let (small, large) = (&small, &large);
                scope.spawn(move || {
                    let out = env.root().join(format!("read-{r}.json"));
                    let mut reads = 0;
                    // Keep reading while the writer runs, and at least a few times.
                    while writing.load(Ordering::SeqCst) || reads < 5 {
                        let output = env
                            .process()
                            .args(["get", "k", "-o"])
                            .arg(&out)
                            .output()
                            .unwrap();
                        assert_eq!(output.status.code(), Some(0), "{output:?}");
                        assert_eq!(text(&output.stderr), "");
                        let etag = text(&output.stdout).trim_end().to_string();
                        let content = fs::read(&out).unwrap();
                        assert!(
                            content == small.as_bytes() || content == large.as_bytes(),
                            "a torn read of {} bytes",
                            content.len()
                        );
                        assert_eq!(etag, md5_hex(&content), "the ETag belongs to other bytes");
                        assert!(etags.contains(&etag));
                        reads += 1;
                    }
                })
            })
            .collect();
        let json_reader = {
            let (env, writing) = (&env, &writing);
            let (small, large) = (&small, &large);
            scope.spawn(move || {
                let mut reads = 0;
                while writing.load(Ordering::SeqCst) || reads < 5 {
                    let output = env.process().args(["get", "k", "--json"]).output().unwrap();
                    assert_eq!(output.status.code(), Some(0), "{output:?}");
                    assert_eq!(text(&output.stderr), "");
                    let envelope: serde_json::Value =
                        serde_json::from_slice(&output.stdout).unwrap();
                    let value = serde_json::to_string(&envelope["value"]).unwrap();
                    assert!(value == *small || value == *large, "a torn --json read");
                    assert_eq!(envelope["etag"], md5_hex(value.as_bytes()));
                    reads += 1;
                }
            })
        };

        // Stops the readers even if a write fails, so a failure cannot hang.
        let _stop = StopOnDrop(&writing);
        for i in 0..16 {
            let name = if i % 2 == 0 {
                "large.json"
            } else {
                "small.json"
            };
            let doc = if i % 2 == 0 { &large } else { &small };
            env.cmd()
                .args(["set-unsafe", "k", "-f", name])
                .assert()
                .success()
                .stdout(format!("{}\n", md5_hex(doc.as_bytes())))
                .stderr("");
        }
        drop(_stop);
        for reader in readers {
            reader.join().unwrap();
        }
        json_reader.join().unwrap();
    });
    assert_eq!(env.file("k").unwrap(), small.as_bytes());
    assert!(env.temp_files().is_empty());
}

#[test]
fn a_writer_holding_one_key_does_not_block_writers_of_another() {
    let env = TestStore::new();
    let etag_a = env.put("alpha", "\"a\"");
    let etag_b = env.put("beta", "\"b\"");
    env.holding_lock("alpha", || {
        // The lock really is held: alpha's writer gives up at once...
        env.cmd()
            .args(["set-unsafe", "alpha", "\"a2\"", "--lock-timeout", "0"])
            .assert()
            .code(5)
            .stdout("")
            .stderr(one_error_line().and(predicate::str::contains("alpha")));
        // ...while beta's writers, new keys and deletes need not wait at all.
        env.cmd()
            .args([
                "set",
                "beta",
                "\"b2\"",
                "--etag",
                &etag_b,
                "--lock-timeout",
                "0",
            ])
            .assert()
            .success()
            .stdout(format!("{}\n", md5_hex(b"\"b2\"")))
            .stderr("");
        env.cmd()
            .args(["set-unsafe", "gamma", "\"c\"", "--lock-timeout", "0"])
            .assert()
            .success()
            .stdout(format!("{}\n", md5_hex(b"\"c\"")))
            .stderr("");
        env.cmd()
            .args(["delete", "gamma", "--etag", "*", "--lock-timeout", "0"])
            .assert()
            .success()
            .stdout("")
            .stderr("");
        // Readers take no lock: alpha can be read while its lock is held.
        env.cmd()
            .args(["get", "alpha"])
            .assert()
            .success()
            .stdout("\"a\"")
            .stderr("");
        env.cmd()
            .args(["etag", "alpha"])
            .assert()
            .success()
            .stdout(format!("{etag_a}\n"))
            .stderr("");
        env.cmd()
            .args(["list", "-l"])
            .assert()
            .success()
            .stdout(predicate::str::contains("\talpha\n").and(predicate::str::contains("\tbeta\n")))
            .stderr("");
    });
    assert_eq!(env.file("alpha").unwrap(), b"\"a\"");
    assert_eq!(env.file("beta").unwrap(), b"\"b2\"");
}
