//! Failures outside the document: unreadable input, unwritable output, a
//! store that is not a directory, a held lock. Each has its exit code and
//! leaves the stored document exactly as it was.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use predicates::prelude::*;

use crate::common::{md5_hex, one_error_line, require, running_as_root, TestStore};

const KEPT: &str = "{\"kept\": true}\n";

#[test]
fn a_missing_input_file_exits_1_and_changes_nothing() {
    let env = TestStore::new();
    let etag = env.put("k", KEPT);
    let before = env.snapshot();
    for args in [
        vec!["set", "k", "-f", "no-such.json", "--etag", &etag],
        vec!["set", "new", "-f", "no-such.json", "--etag", ""],
        vec!["set-unsafe", "k", "-f", "no-such.json"],
    ] {
        env.run(args).error(["no-such.json"]).status(1).check();
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn a_missing_input_file_on_a_new_store_creates_nothing() {
    let env = TestStore::new();
    env.run(["set-unsafe", "k", "-f", "no-such.json"])
        .error(["no-such.json"])
        .status(1)
        .check();
    assert!(!env.store().exists());
}

#[test]
fn an_input_file_that_is_a_directory_exits_1_and_changes_nothing() {
    let env = TestStore::new();
    let etag = env.put("k", KEPT);
    fs::create_dir(env.root().join("a-dir")).unwrap();
    let before = env.snapshot();
    for args in [
        vec!["set", "k", "-f", "a-dir", "--etag", &etag],
        vec!["set-unsafe", "new", "-f", "a-dir"],
    ] {
        env.run(args).error(["a-dir"]).status(1).check();
    }
    assert_eq!(env.snapshot(), before);
    assert!(env.temp_files().is_empty());
    assert!(!env.lock_file("new").exists());
}

#[test]
fn an_output_path_in_a_missing_directory_exits_1_and_creates_no_file() {
    let env = TestStore::new();
    env.put("k", KEPT);
    let before = env.snapshot();
    for out in ["no-such-dir/out.json", "no-such-dir/deeper/out.json"] {
        env.run(["get", "k", "-o", out])
            .error([out])
            .status(1)
            .check();
    }
    env.run([
        "get",
        "missing",
        "--default",
        "{}",
        "-o",
        "no-such-dir/out.json",
    ])
    .error_line()
    .status(1)
    .check();
    assert_eq!(env.snapshot(), before);
    assert!(!env.root().join("no-such-dir").exists());
}

#[test]
fn an_output_path_that_is_a_directory_exits_1() {
    let env = TestStore::new();
    env.put("k", KEPT);
    fs::create_dir(env.root().join("a-dir")).unwrap();
    env.run(["get", "k", "-o", "a-dir"])
        .error(["a-dir"])
        .status(1)
        .unchanged()
        .check();
}

#[test]
fn an_output_that_runs_out_of_space_exits_1_and_prints_no_etag() {
    if !require(
        Path::new("/dev/full").exists(),
        "no /dev/full on this system",
    ) {
        return;
    }
    let env = TestStore::new();
    env.put("k", KEPT);
    env.run(["get", "k", "-o", "/dev/full"])
        .error(["/dev/full"])
        .status(1)
        .unchanged()
        .check();
}

#[test]
fn a_store_path_that_is_a_regular_file_exits_1_and_changes_nothing() {
    let env = TestStore::new();
    fs::write(env.store(), "not a directory").unwrap();
    fs::write(env.root().join("in.json"), "2").unwrap();
    let before = env.snapshot();
    let etag = md5_hex(b"1");
    let runs: [&[&str]; 10] = [
        &["set", "k", "1", "--etag", ""],
        &["set", "k", "1", "--etag", &etag],
        &["set", "k", "-f", "in.json", "--etag", "*"],
        &["set-unsafe", "k", "1"],
        &["get", "k"],
        &["get", "k", "--default", "{}"],
        &["get", "k", "-o", "out.json"],
        &["etag", "k"],
        &["delete", "k", "--etag", "*"],
        &["list"],
    ];
    for args in runs {
        env.run(args).error(["store"]).status(1).check();
    }
    assert_eq!(env.snapshot(), before);
    assert_eq!(fs::read(env.store()).unwrap(), b"not a directory");
}

#[test]
fn a_held_lock_makes_writers_exit_5_after_the_lock_timeout_and_changes_nothing() {
    let env = TestStore::new();
    let etag = env.put("k", KEPT);
    let before = env.snapshot();
    env.holding_lock("k", || {
        let runs: [&[&str]; 4] = [
            &["set", "k", "{}", "--etag", &etag],
            &["set", "k", "{}", "--etag", "*"],
            &["set-unsafe", "k", "{}"],
            &["delete", "k", "--etag", &etag],
        ];
        for args in runs {
            env.run(["--lock-timeout", "0.2"])
                .args(args)
                .error(["\"k\""])
                .status(5)
                .check();
        }
        // `--lock-timeout 0` means "do not wait", not "wait forever".
        env.run(["set-unsafe", "k", "{}", "--lock-timeout", "0"])
            .error_line()
            .status(5)
            .check();
    });
    assert_eq!(env.snapshot(), before);
    assert_eq!(env.file("k").unwrap(), KEPT.as_bytes());
    assert!(env.temp_files().is_empty());
}

#[test]
fn a_writer_proceeds_once_the_lock_is_released() {
    let env = TestStore::new();
    let etag = env.put("k", KEPT);
    env.holding_lock("k", || {
        env.run(["set", "k", "{}", "--etag", &etag, "--lock-timeout", "0"])
            .error_line()
            .status(5)
            .check();
    });
    env.run(["set", "k", "{}", "--etag", &etag, "--lock-timeout", "0"])
        .stdout(format!("{}\n", md5_hex(b"{}")))
        .check();
    assert_eq!(env.file("k").unwrap(), b"{}");
}

/// The uid and gid of `nobody`.
const NOBODY: u32 = 65534;

#[test]
fn a_read_only_store_exits_1_and_changes_nothing() {
    let env = TestStore::new();
    let etag = env.put("k", KEPT);
    // A read-only directory does not stop root, so root runs the writers
    // as `nobody`, who may enter the temporary directory but write nothing.
    let as_root = running_as_root();
    if as_root {
        fs::set_permissions(env.root(), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let before = env.snapshot();
    let set_mode = |path: &Path, mode: u32| {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    };
    let dirs = [env.store(), env.internal("tmp"), env.internal("locks")];
    for dir in &dirs {
        set_mode(dir, 0o555);
    }
    let runs: [&[&str]; 4] = [
        &["set", "k", "{}", "--etag", &etag],
        &["set-unsafe", "k", "{}"],
        &["set", "new", "{}", "--etag", ""],
        &["delete", "k", "--etag", &etag],
    ];
    let results: Vec<_> = runs
        .iter()
        .map(|args| {
            let mut cmd = env.process();
            if as_root {
                cmd.uid(NOBODY).gid(NOBODY);
            }
            cmd.args(*args).output().unwrap()
        })
        .collect();
    for dir in &dirs {
        set_mode(dir, 0o755);
    }
    for (args, output) in runs.iter().zip(results) {
        assert_eq!(output.status.code(), Some(1), "{args:?}: {output:?}");
        assert!(output.stdout.is_empty(), "{args:?}: {output:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(one_error_line().eval(&stderr), "{args:?}: {stderr:?}");
    }
    assert_eq!(env.snapshot(), before);
}
