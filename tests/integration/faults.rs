//! I/O faults, injected (`ETAGSTORE_FAULT`, with the `test-hooks` feature)
//! and real (a read-only store, `ulimit -f`, a store path that is a file).
//! A write that fails exits 1 with one `error:` line naming the failing step
//! and its path, and leaves the stored document byte for byte as it was, no
//! temporary file, and no lock file for a key never written. The exception:
//! a failed directory fsync comes after the rename, so the new document stays
//! and the error says so.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use predicates::prelude::*;

#[cfg(feature = "test-hooks")]
use crate::common::md5_hex;
use crate::common::{one_error_line, require, running_as_root, skip, Immutable, TestStore};

/// The stored document that every failed write must leave as it was.
const OLD: &str = "{\"n\": 1}\n";

/// A new document of several 64 KiB chunks, so a short write is a real one.
fn new_doc() -> String {
    format!("{{\"pad\": \"{}\"}}", "x".repeat(150 * 1024))
}

/// The writes every fault is tried on, with their key; each `set` reads
/// `new_doc()` from standard input. `etag` is the stored document's ETag.
fn writes(etag: &str) -> Vec<(Vec<String>, &'static str)> {
    let args = |words: &[&str]| words.iter().map(|w| w.to_string()).collect();
    vec![
        (args(&["set", "k", "--etag", etag]), "k"),
        (args(&["set", "k", "--etag", "*"]), "k"),
        (args(&["set", "new", "--etag", ""]), "new"),
        (args(&["set-unsafe", "k"]), "k"),
        (args(&["set-unsafe", "new"]), "new"),
        (args(&["edit", "k", "--jq", ".n += 1"]), "k"),
        (
            args(&["edit", "new", "--default", "{\"n\": 0}", "--jq", ".n += 1"]),
            "new",
        ),
    ]
}

/// `ETAGSTORE_FAULT`, what the error must say in order (`{tmp}`, `{lock}`
/// and `{doc}` stand for the paths involved, `*` for a temporary file's
/// name), and the system's message for the injected error.
#[cfg(feature = "test-hooks")]
const FAULTS_BEFORE_THE_RENAME: &[(&str, &str, &str)] = &[
    (
        "temp-create",
        "cannot create a temporary file in '{tmp}'",
        "Input/output error",
    ),
    (
        "temp-create:EDQUOT",
        "cannot create a temporary file in '{tmp}'",
        "Disk quota exceeded",
    ),
    ("temp-write", "cannot write '{tmp}/*'", "Input/output error"),
    (
        "temp-write:ENOSPC",
        "cannot write '{tmp}/*'",
        "No space left on device",
    ),
    (
        "short-write",
        "cannot write '{tmp}/*'",
        "No space left on device",
    ),
    ("fsync", "cannot sync '{tmp}/*'", "Input/output error"),
    (
        "fsync:ENOSPC",
        "cannot sync '{tmp}/*'",
        "No space left on device",
    ),
    (
        "lock-create",
        "cannot open the lock file '{lock}'",
        "Input/output error",
    ),
    (
        "lock-create:EACCES",
        "cannot open the lock file '{lock}'",
        "Permission denied",
    ),
    (
        "rename",
        "cannot rename '{tmp}/*' to '{doc}'",
        "Input/output error",
    ),
    (
        "rename:EROFS",
        "cannot rename '{tmp}/*' to '{doc}'",
        "Read-only file system",
    ),
];

/// Whether `text` holds the pieces of `pattern` (split at `*`) in order.
fn contains_in_order(text: &str, pattern: &str) -> bool {
    let mut rest = text;
    for piece in pattern.split('*') {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// The error's expected text for `key` in `env`.
fn expected(pattern: &str, env: &TestStore, key: &str) -> String {
    pattern
        .replace("{tmp}", &env.internal("tmp").display().to_string())
        .replace("{lock}", &env.lock_file(key).display().to_string())
        .replace("{doc}", &env.path(key).display().to_string())
}

#[cfg(feature = "test-hooks")]
#[test]
fn every_fault_before_the_rename_exits_1_naming_the_step_and_changes_nothing() {
    let env = TestStore::new();
    let etag = env.put("k", OLD);
    let doc = new_doc();
    let before = env.snapshot();
    for (fault, step, cause) in FAULTS_BEFORE_THE_RENAME {
        for (args, key) in writes(&etag) {
            let output = env
                .cmd()
                .env("ETAGSTORE_FAULT", fault)
                .args(&args)
                .write_stdin(doc.as_str())
                .output()
                .unwrap();
            let what = format!("ETAGSTORE_FAULT={fault} {args:?}");
            let stderr = String::from_utf8(output.stderr).unwrap();
            assert_eq!(output.status.code(), Some(1), "{what}: {stderr}");
            assert!(output.stdout.is_empty(), "{what}");
            assert!(one_error_line().eval(&stderr), "{what}: {stderr:?}");
            let step = expected(step, &env, key);
            assert!(contains_in_order(&stderr, &step), "{what}: {stderr:?}");
            assert!(stderr.contains(cause), "{what}: {stderr:?}");

            assert_eq!(env.file("k").unwrap(), OLD.as_bytes(), "{what}");
            assert!(env.temp_files().is_empty(), "{what}");
            if key == "new" && fault.starts_with("rename") {
                // The lock was taken before the rename failed, and a lock
                // file is never removed (docs/design.md): its one trace.
                fs::remove_file(env.lock_file("new")).unwrap();
            }
            assert!(!env.lock_file("new").exists(), "{what}");
            assert_eq!(env.snapshot(), before, "{what}");
        }
    }
    // No fault left the key locked.
    env.cmd()
        .args(["--lock-timeout", "0", "set", "k", "{}", "--etag", &etag])
        .assert()
        .success()
        .stdout(format!("{}\n", md5_hex(b"{}")))
        .stderr("");
}

#[cfg(feature = "test-hooks")]
#[test]
fn a_failed_directory_fsync_keeps_the_new_document_and_says_it_may_not_survive_a_power_loss() {
    let env = TestStore::new();
    let doc = new_doc();
    for (args, key) in writes(&md5_hex(OLD.as_bytes())) {
        env.put("k", OLD);
        let _ = fs::remove_file(env.path("new"));
        let output = env
            .cmd()
            .env("ETAGSTORE_FAULT", "dir-fsync")
            .args(&args)
            .write_stdin(doc.as_str())
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
        assert!(
            one_error_line()
                .and(predicate::str::contains(
                    "the document was replaced, but may not survive a power loss"
                ))
                .and(predicate::str::contains(format!(
                    "cannot sync the store directory '{}'",
                    env.store().display()
                )))
                .eval(&stderr),
            "{args:?}: {stderr:?}"
        );
        // Not rolled back: the new document is in place, whole.
        let stored = env.file(key).unwrap();
        if args[0] == "edit" {
            let value: serde_json::Value = serde_json::from_slice(&stored).unwrap();
            assert_eq!(value["n"], 2 - u8::from(key == "new"), "{args:?}");
        } else {
            assert_eq!(stored, doc.as_bytes(), "{args:?}");
        }
        assert!(env.temp_files().is_empty(), "{args:?}");
        // ...and the lock was released: the next write does not wait.
        env.cmd()
            .args(["--lock-timeout", "0", "set", key, "[]", "--etag"])
            .arg(md5_hex(&stored))
            .assert()
            .success()
            .stdout(format!("{}\n", md5_hex(b"[]")))
            .stderr("");
    }
}

#[cfg(feature = "test-hooks")]
#[test]
fn a_lock_fault_on_delete_exits_1_and_keeps_the_document() {
    let env = TestStore::new();
    let etag = env.put("k", OLD);
    let before = env.snapshot();
    for fault in ["lock-create", "lock-create:EACCES"] {
        for flag in [etag.as_str(), "*"] {
            env.cmd()
                .env("ETAGSTORE_FAULT", fault)
                .args(["delete", "k", "--etag", flag])
                .assert()
                .code(1)
                .stdout("")
                .stderr(one_error_line().and(predicate::str::contains(format!(
                    "cannot open the lock file '{}'",
                    env.lock_file("k").display()
                ))));
            assert_eq!(env.snapshot(), before, "{fault} {flag}");
        }
    }
}

#[cfg(feature = "test-hooks")]
#[test]
fn a_failed_directory_fsync_after_a_delete_says_the_document_may_come_back() {
    let env = TestStore::new();
    let etag = env.put("k", OLD);
    env.cmd()
        .env("ETAGSTORE_FAULT", "dir-fsync")
        .args(["delete", "k", "--etag", &etag])
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            one_error_line()
                .and(predicate::str::contains(
                    "the document was deleted, but may come back after a power loss",
                ))
                .and(predicate::str::contains(format!(
                    "cannot sync the store directory '{}'",
                    env.store().display()
                ))),
        );
    assert!(env.file("k").is_none());
    env.cmd()
        .args(["--lock-timeout", "0", "set", "k", "{}", "--etag", ""])
        .assert()
        .success()
        .stderr("");
}

/// A read-only bind mount of a directory, unmounted when dropped.
struct ReadOnlyMount(PathBuf);

impl ReadOnlyMount {
    /// Mounts `source` read-only on the existing directory `target`; `None`,
    /// after `skip`, where mounting is not allowed.
    fn new(source: &Path, target: &Path) -> Option<ReadOnlyMount> {
        let mount = |args: &[&std::ffi::OsStr]| {
            let out = StdCommand::new("mount").args(args).output();
            match out {
                Ok(out) if out.status.success() => true,
                other => {
                    skip(&format!("mount {args:?} failed: {other:?}"));
                    false
                }
            }
        };
        if !mount(&["--bind".as_ref(), source.as_ref(), target.as_ref()]) {
            return None;
        }
        let mounted = ReadOnlyMount(target.to_path_buf());
        if !mount(&["-o".as_ref(), "remount,ro,bind".as_ref(), target.as_ref()]) {
            return None;
        }
        Some(mounted)
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = StdCommand::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_read_only_store_fails_every_write_with_exit_1_and_still_reads() {
    if !require(running_as_root(), "a read-only bind mount needs root") {
        return;
    }
    let env = TestStore::new();
    let etag = env.put("k", OLD);
    let ro = env.root().join("read-only");
    fs::create_dir(&ro).unwrap();
    let before = env.snapshot();
    let Some(mount) = ReadOnlyMount::new(&env.store(), &ro) else {
        return;
    };
    let doc = new_doc();
    let mut runs = writes(&etag);
    runs.push((
        vec!["delete".into(), "k".into(), "--etag".into(), etag.clone()],
        "k",
    ));
    for (args, _) in &runs {
        env.cmd_without_store()
            .arg("--store")
            .arg(&ro)
            .args(args)
            .write_stdin(doc.as_str())
            .assert()
            .code(1)
            .stdout("")
            .stderr(
                one_error_line()
                    .and(predicate::str::contains("Read-only file system"))
                    .and(predicate::str::contains(ro.display().to_string())),
            );
    }
    let read = |args: &[&str], stdout: &str| {
        env.cmd_without_store()
            .arg("--store")
            .arg(&ro)
            .args(args)
            .assert()
            .success()
            .stdout(stdout.to_string())
            .stderr("");
    };
    read(&["get", "k"], OLD);
    read(&["etag", "k"], &format!("{etag}\n"));
    read(&["list"], "k\n");
    drop(mount);
    assert_eq!(env.snapshot(), before);
}

#[test]
fn an_immutable_store_directory_fails_every_write_of_a_document_with_exit_1() {
    if !require(running_as_root(), "chattr +i needs root") {
        return;
    }
    let env = TestStore::new();
    let etag = env.put("k", OLD);
    let doc = new_doc();
    let before = env.snapshot();
    let Some(immutable) = Immutable::set(&env.store()) else {
        return;
    };
    // Only the key already written: a new key's lock file, in the (mutable)
    // lock directory, would be created before the rename fails.
    let mut runs: Vec<Vec<String>> = writes(&etag)
        .into_iter()
        .filter(|(_, key)| *key == "k")
        .map(|(args, _)| args)
        .collect();
    runs.push(vec![
        "delete".into(),
        "k".into(),
        "--etag".into(),
        etag.clone(),
    ]);
    for args in &runs {
        env.cmd()
            .args(args)
            .write_stdin(doc.as_str())
            .assert()
            .code(1)
            .stdout("")
            .stderr(
                one_error_line()
                    .and(predicate::str::contains("Operation not permitted"))
                    .and(predicate::str::contains(format!(
                        "'{}'",
                        env.path("k").display()
                    ))),
            );
    }
    drop(immutable);
    assert_eq!(env.snapshot(), before);
    assert!(env.temp_files().is_empty());
}

#[test]
fn a_file_size_limit_fails_the_write_with_exit_1_and_changes_nothing() {
    let env = TestStore::new();
    let etag = env.put("k", OLD);
    let doc = new_doc();
    let before = env.snapshot();
    let mut runs = writes(&etag);
    // edit's document must outgrow the limit too.
    for (args, _) in &mut runs {
        if args[0] == "edit" {
            let at = args.len() - 2;
            let pad = ["--arg".into(), "pad".into(), "x".repeat(100 * 1024)];
            args.splice(at..at, pad);
            *args.last_mut().unwrap() = ".n += 1 | .pad = $pad".into();
        }
    }
    for (args, key) in &runs {
        // 1 block of 512 bytes; SIGXFSZ ignored so write() returns EFBIG
        // instead of killing the process (the ignored signal survives exec).
        assert_cmd::Command::new("sh")
            .env_clear()
            .current_dir(env.root())
            .arg("-c")
            .arg("trap '' XFSZ; ulimit -f 1; exec \"$0\" \"$@\"")
            .arg(TestStore::bin())
            .arg("--store")
            .arg(env.store())
            .args(args)
            .write_stdin(doc.as_str())
            .assert()
            .code(1)
            .stdout("")
            .stderr(
                one_error_line()
                    .and(predicate::str::contains("File too large"))
                    .and(predicate::function(|stderr: &str| {
                        contains_in_order(stderr, &expected("cannot write '{tmp}/*'", &env, key))
                    })),
            );
        assert_eq!(env.snapshot(), before, "{args:?}");
    }
    assert!(env.temp_files().is_empty());
    assert!(!env.lock_file("new").exists());
}

#[test]
fn a_store_path_that_is_a_file_or_lies_under_one_fails_every_write_with_exit_1() {
    let env = TestStore::new();
    let file = env.root().join("a-file");
    fs::write(&file, "not a directory").unwrap();
    let before = env.snapshot();
    for store in [file.clone(), file.join("store")] {
        let runs: [&[&str]; 6] = [
            &["set-unsafe", "k", "{}"],
            &["set", "k", "{}", "--etag", ""],
            &["set", "k", "{}", "--etag", "*"],
            &["edit", "k", "--default", "{}", "--jq", ".n = 1"],
            &["edit", "k", "--jq", ".n = 1"],
            &["delete", "k", "--etag", "*"],
        ];
        for args in runs {
            env.cmd_without_store()
                .arg("--store")
                .arg(&store)
                .args(args)
                .assert()
                .code(1)
                .stdout("")
                .stderr(
                    one_error_line()
                        .and(predicate::str::contains(store.display().to_string()))
                        .and(predicate::str::contains("directory")),
                );
        }
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn a_misspelt_fault_is_a_usage_error_so_a_test_cannot_pass_by_injecting_nothing() {
    let env = TestStore::new();
    env.put("k", OLD);
    let before = env.snapshot();
    for fault in ["temp_create", "fsync:ENOSPCE", "rename,bogus"] {
        env.cmd()
            .env("ETAGSTORE_FAULT", fault)
            .args(["set-unsafe", "k", "[]"])
            .assert()
            .code(2)
            .stdout("")
            .stderr(one_error_line().and(predicate::str::contains("ETAGSTORE_FAULT: unknown")));
    }
    assert_eq!(env.snapshot(), before);
}
