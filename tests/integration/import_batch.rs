//! `import` commits documents in batches (group commit) on the directory
//! store. A SIGKILL at any instant leaves every key old or new, whole; a
//! concurrent `set --etag` is decided under the key's lock and never lost;
//! the batch's locks are held until its directory fsync; a failed step
//! writes nothing it cannot vouch for and leaves no temporary file.
//! Nothing here asserts how long anything takes.

use std::fs::{self, File};
use std::io;
use std::path::Path;
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fd_lock::RwLock;
use predicates::prelude::*;

use crate::common::{md5_hex, Pause, TestStore};

/// Documents in the crash test: more than two batches of 256.
const DOCS: usize = 600;

fn key(i: usize) -> String {
    format!("k{i:04}")
}

fn old_doc(i: usize) -> String {
    format!(
        "{{\"i\": {i}, \"v\": \"old\", \"pad\": \"{}\"}}",
        "o".repeat(i % 50)
    )
}

fn new_doc(i: usize) -> String {
    format!("{{\"i\":{i},\"v\":\"new\"}}")
}

/// The export lines of `new_doc` for keys `0..n`, with their ETags.
fn new_lines(n: usize) -> String {
    (0..n)
        .map(|i| {
            let doc = new_doc(i);
            format!(
                "{{\"key\":\"{}\",\"etag\":\"{}\",\"value\":{doc}}}\n",
                key(i),
                md5_hex(doc.as_bytes())
            )
        })
        .collect()
}

/// A store where every third key of `0..DOCS` holds its old document,
/// written by `import` (and checked, so a broken import fails here).
fn seeded() -> TestStore {
    let env = TestStore::new();
    let lines: String = (0..DOCS)
        .step_by(3)
        .map(|i| format!("{{\"key\":\"{}\",\"value\":{}}}\n", key(i), old_doc(i)))
        .collect();
    env.cmd()
        .arg("import")
        .write_stdin(lines)
        .assert()
        .success();
    for i in (0..DOCS).step_by(3) {
        assert_eq!(env.file(&key(i)).unwrap(), old_doc(i).as_bytes());
    }
    env
}

/// Every key holds its old document, its new one or (if it had none)
/// nothing; with `overwrite` false an old document is never replaced.
/// Only the keys' own files are in the store; no key's lock is held.
/// Returns how many keys hold their new document.
fn check_old_or_new(env: &TestStore, overwrite: bool, round: &str) -> usize {
    let mut new = 0;
    for i in 0..DOCS {
        let had = i % 3 == 0;
        let found = env.file(&key(i));
        let is_new = found.as_deref() == Some(new_doc(i).as_bytes());
        let ok = match &found {
            None => !had,
            Some(_) if is_new => overwrite || !had,
            Some(bytes) => had && bytes == old_doc(i).as_bytes(),
        };
        assert!(
            ok,
            "{round}: key {} holds {:?}",
            key(i),
            found.map(|b| String::from_utf8_lossy(&b).into_owned())
        );
        new += usize::from(is_new);
    }
    let expected: Vec<String> = (0..DOCS).map(|i| format!("{}.json", key(i))).collect();
    for name in env.json_files() {
        assert!(expected.contains(&name), "{round}: a stray file {name}");
    }
    for i in 0..DOCS {
        let Ok(file) = File::options().write(true).open(env.lock_file(&key(i))) else {
            continue;
        };
        let mut lock = RwLock::new(file);
        assert!(
            lock.try_write().is_ok(),
            "{round}: the lock of {} is still held",
            key(i)
        );
    }
    new
}

fn spawn_import(env: &TestStore, input: &Path, overwrite: bool, pause: Option<&Pause>) -> Child {
    let mut cmd = env.process();
    cmd.args(["import", "-f"]).arg(input);
    if overwrite {
        cmd.arg("--overwrite");
    }
    if let Some(pause) = pause {
        pause.arm(&mut cmd);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// How a round's import is stopped.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// At a random instant of the measured import.
    After(Duration),
    /// The instant this key's document file appears or changes: in the
    /// middle of a batch's renames.
    KeyChanges(usize),
    /// At a pause point: all temporary files written (`BEFORE_LOCK`), or
    /// all the first batch's locks held before its first rename (`LOCKED`).
    Paused(&'static str),
}

fn file_state(path: &Path) -> Option<(u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(path).ok()?;
    Some((meta.ino(), meta.mtime(), meta.mtime_nsec()))
}

#[test]
fn an_import_killed_at_any_instant_leaves_every_key_old_or_new() {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let mut seed = nanos.as_nanos() as u64 | 1;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    eprintln!("import crash: seed {seed}");
    // One whole import, to know how long one takes.
    let measure = seeded();
    let input = measure.root().join("new.jsonl");
    fs::write(&input, new_lines(DOCS)).unwrap();
    let started = Instant::now();
    let out = spawn_import(&measure, &input, true, None)
        .wait_with_output()
        .unwrap();
    let one = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(check_old_or_new(&measure, true, "uninterrupted"), DOCS);

    let mut kills = vec![
        Kill::Paused("BEFORE_LOCK"),
        Kill::Paused("LOCKED"),
        Kill::KeyChanges(0),
        Kill::KeyChanges(301),
    ];
    for _ in 0..4 {
        let fraction = (random() % 1000) as f64 / 1000.0;
        kills.push(Kill::After(one.mul_f64(fraction)));
    }
    let mut killed_midway = 0;
    for (round, kill) in kills.into_iter().enumerate() {
        let overwrite = round % 2 == 0;
        let env = seeded();
        let input = env.root().join("new.jsonl");
        fs::write(&input, new_lines(DOCS)).unwrap();
        let pause = match kill {
            Kill::Paused(point) => Some(Pause::new(env.root(), point)),
            _ => None,
        };
        let mut child = spawn_import(&env, &input, overwrite, pause.as_ref());
        match kill {
            Kill::Paused(_) => pause.as_ref().unwrap().wait_for(&mut child),
            Kill::After(delay) => thread::sleep(delay),
            Kill::KeyChanges(i) => {
                let path = env.path(&key(i));
                let before = file_state(&path);
                while file_state(&path) == before && child.try_wait().unwrap().is_none() {
                    thread::sleep(Duration::from_micros(100));
                }
            }
        }
        let _ = child.kill();
        let status = child.wait().unwrap();
        let round = format!("round {round} ({kill:?}, overwrite {overwrite})");
        let new = check_old_or_new(&env, overwrite, &round);
        eprintln!("{round}: {status}, {new} keys new");
        if status.code().is_none() {
            if let Kill::Paused(_) = kill {
                // Stopped before the first rename: nothing is new.
                assert_eq!(new, 0, "{round}");
            }
            if new > 0 && new < DOCS {
                killed_midway += 1;
            }
        }
        // The store still works: the same import again completes it.
        env.cmd()
            .args(["import", "--overwrite", "-f"])
            .arg(&input)
            .assert()
            .success()
            .stdout("")
            .stderr(format!("imported {DOCS}, skipped 0\n"));
        assert_eq!(check_old_or_new(&env, true, &round), DOCS, "{round}");
    }
    // The key-change kills land between two renames of a batch, unless the
    // import outran the watcher entirely; one of them must have.
    assert!(
        killed_midway > 0,
        "no kill landed in the middle of an import"
    );
}

#[test]
fn a_set_etag_between_the_batch_look_and_its_lock_wins_and_the_import_skips_it() {
    let env = TestStore::new();
    let input = env.root().join("new.jsonl");
    fs::write(&input, new_lines(50)).unwrap();
    let pause = Pause::new(env.root(), "BEFORE_LOCK");
    let mut import = spawn_import(&env, &input, false, Some(&pause));
    // Every temporary file is written and every key looked at (missing).
    pause.wait_for(&mut import);
    let theirs = "{\"theirs\": true}";
    env.cmd()
        .args(["set", "k0010", "--etag", ""])
        .write_stdin(theirs)
        .assert()
        .success()
        .stdout(format!("{}\n", md5_hex(theirs.as_bytes())))
        .stderr("");
    pause.release();
    let out = import.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.starts_with("imported 49, skipped 1\nerror: 1 key(s) existed")
            && stderr.contains("\"k0010\""),
        "{stderr}"
    );
    assert_eq!(env.file("k0010").unwrap(), theirs.as_bytes());
    for i in (0..50).filter(|&i| i != 10) {
        assert_eq!(env.file(&key(i)).unwrap(), new_doc(i).as_bytes());
    }
    assert!(env.temp_files().is_empty(), "{:?}", env.temp_files());
}

#[test]
fn a_batch_holds_its_locks_until_it_is_durable_and_a_waiting_set_etag_is_decided_after_it() {
    let env = TestStore::new();
    let old = old_doc(10);
    let old_etag = env.put("k0010", &old);
    let input = env.root().join("new.jsonl");
    fs::write(&input, new_lines(50)).unwrap();
    let pause = Pause::new(env.root(), "LOCKED");
    let mut import = spawn_import(&env, &input, true, Some(&pause));
    pause.wait_for(&mut import);
    // The import holds every lock of its batch: even a key it reaches last.
    for (k, etag) in [("k0010", old_etag.as_str()), ("k0049", "")] {
        env.cmd()
            .args(["--lock-timeout", "0", "set", k, "--etag", etag])
            .write_stdin("{\"mine\": 1}")
            .assert()
            .code(5)
            .stdout("");
    }
    // A writer holding the old ETag waits for the lock, then finds the
    // imported document: exit 3, nothing lost, nothing overwritten.
    let mut set = env.process();
    set.args(["set", "k0010", "--etag", &old_etag])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut set = set.spawn().unwrap();
    io::Write::write_all(&mut set.stdin.take().unwrap(), b"{\"mine\": 2}").unwrap();
    pause.release();
    let out = import.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "imported 50, skipped 0\n"
    );
    let set = set.wait_with_output().unwrap();
    assert_eq!(
        set.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    assert_eq!(env.file("k0010").unwrap(), new_doc(10).as_bytes());
}

#[test]
fn a_failed_sync_rename_or_directory_sync_stops_the_import_naming_the_step() {
    let lines = new_lines(3);
    for (fault, names, imported) in [
        ("fsync", "line 1: cannot sync", false),
        ("rename", "line 1: cannot rename", false),
        (
            "dir-fsync",
            "lines 1 to 3: the batch's documents were replaced",
            true,
        ),
    ] {
        let env = TestStore::new();
        env.run(["import"])
            .env("ETAGSTORE_FAULT", fault)
            .stdin(lines.clone())
            .stderr_matches(
                predicate::str::starts_with("imported 0, skipped 0\nerror: ")
                    .and(predicate::str::contains(names)),
            )
            .status(1)
            .check();
        for i in 0..3 {
            let found = env.file(&key(i));
            if imported {
                // Replaced before the failed sync, and not rolled back.
                assert_eq!(found.unwrap(), new_doc(i).as_bytes(), "{fault}");
            } else {
                assert!(found.is_none(), "{fault}");
            }
        }
        assert!(
            env.temp_files().is_empty(),
            "{fault}: {:?}",
            env.temp_files()
        );
    }
}

#[test]
fn a_key_repeated_within_one_batch_is_written_in_line_order() {
    let lines =
        "{\"key\":\"a\",\"value\":1}\n{\"key\":\"b\",\"value\":1}\n{\"key\":\"a\",\"value\":2}\n";
    let env = TestStore::new();
    env.run(["import"])
        .stdin(lines)
        .stderr_matches(
            predicate::str::starts_with("imported 2, skipped 1\nerror: 1 key(s) existed")
                .and(predicate::str::contains("\"a\"")),
        )
        .status(3)
        .check();
    assert_eq!(env.file("a").unwrap(), b"1");
    env.cmd()
        .args(["import", "--overwrite"])
        .write_stdin(lines)
        .assert()
        .success()
        .stdout("")
        .stderr("imported 3, skipped 0\n");
    assert_eq!(env.file("a").unwrap(), b"2");
    assert!(env.temp_files().is_empty(), "{:?}", env.temp_files());
}
