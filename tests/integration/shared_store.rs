//! A hostile co-user of a shared store: planted symlinks in place of the
//! store's internal directories and lock files, FIFOs in place of documents
//! and lock files, the permissions of lock files, and the temporary files of
//! live writers the cleaner cannot see (another PID namespace). The tests
//! that need a second user create one (`useradd`) when run as root, as CI
//! is, and print `SKIPPED: …` otherwise.

use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use fd_lock::RwLock;

use crate::common::{
    line, md5_hex, one_error_line, require, run_or_kill, running_as_root, TestStore,
};
use predicates::prelude::*;

/// Temporary-file names of a writer that no longer runs here, backdated past
/// the stale age (ten minutes): what the cleaner would delete in `tmp`.
const TEMP_NAMES: [&str; 3] = [
    "999999999-000000000-0.json",
    "999999998-123456789-1.json",
    "999999997-000000001-0.json",
];

fn backdate(path: &Path) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(20 * 60))
        .unwrap();
}

/// A directory outside the store holding old files named like temporaries.
fn outside_with_temp_names(env: &TestStore) -> PathBuf {
    let outside = env.root().join("archive");
    fs::create_dir(&outside).unwrap();
    for name in TEMP_NAMES {
        fs::write(outside.join(name), "keep me").unwrap();
        backdate(&outside.join(name));
    }
    outside
}

fn assert_all_kept(outside: &Path) {
    for name in TEMP_NAMES {
        assert_eq!(
            fs::read(outside.join(name)).ok().as_deref(),
            Some(&b"keep me"[..]),
            "{name} outside the store was deleted or changed"
        );
    }
}

/// Exit 1 and one error line that contains `naming`.
fn assert_refused(out: &Output, what: &str, naming: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
    assert!(one_error_line().eval(&stderr), "{what}: {stderr}");
    assert!(
        stderr.contains(naming),
        "{what}: {stderr} does not name {naming}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "{what}");
}

#[test]
fn a_tmp_symlink_to_an_outside_directory_is_refused_and_nothing_there_is_deleted() {
    let env = TestStore::new();
    env.put("k", "{\"v\": 1}");
    let outside = outside_with_temp_names(&env);
    fs::remove_dir(env.internal("tmp")).unwrap();
    std::os::unix::fs::symlink(&outside, env.internal("tmp")).unwrap();

    for args in [
        &["set-unsafe", "k", "{\"v\": 2}"][..],
        &["set", "k", "{\"v\": 2}", "--etag", &md5_hex(b"{\"v\": 1}")][..],
    ] {
        let out = run_or_kill(env.process().args(args));
        assert_refused(&out, &args.join(" "), ".etagstore/tmp");
        assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"));
        assert_all_kept(&outside);
        assert_eq!(env.file("k").unwrap(), b"{\"v\": 1}");
    }
    assert_eq!(fs::read_dir(&outside).unwrap().count(), TEMP_NAMES.len());
}

#[test]
fn a_lock_file_symlink_creates_nothing_where_it_points() {
    let env = TestStore::new();
    let etag = env.put("k", "{\"v\": 1}");
    let target = env.root().join("created-by-the-victim");
    let lock = env.lock_file("k");
    fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    for args in [
        &["set", "k", "{\"v\": 2}", "--etag", &etag][..],
        &["set-unsafe", "k", "{\"v\": 2}"][..],
        &["delete", "k", "--etag", &etag][..],
    ] {
        let out = run_or_kill(env.process().args(args));
        assert_refused(&out, &args.join(" "), "k.lock");
        assert!(
            !target.exists(),
            "{}: created {}",
            args.join(" "),
            target.display()
        );
        assert_eq!(env.file("k").unwrap(), b"{\"v\": 1}");
    }
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

#[test]
fn a_fifo_in_place_of_a_document_fails_every_command_at_once() {
    let env = TestStore::new();
    env.put("other", "{}");
    mkfifo(&env.path("k"));
    let etag = md5_hex(b"{}");
    for args in [
        &["get", "k"][..],
        &["get", "k", "--json"][..],
        &["etag", "k"][..],
        &["set", "k", "{}", "--etag", &etag][..],
        &["set", "k", "{}", "--etag", "*"][..],
        &["delete", "k", "--etag", &etag][..],
    ] {
        let out = run_or_kill(env.process().args(args));
        assert_refused(&out, &args.join(" "), "k.json");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not a regular file"),
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The commands that walk the store name the FIFO, go on with the rest
    // (as ls and find do) and exit 1 at the end.
    for args in [&["list", "-l"][..], &["export"][..]] {
        let out = run_or_kill(env.process().args(args));
        let what = args.join(" ");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        assert!(
            stderr.contains("skipped key \"k\"") && stderr.contains("not a regular file"),
            "{what}: {stderr}"
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("other"),
            "{what}: the readable document is still listed"
        );
    }
}

#[test]
fn a_fifo_in_place_of_a_lock_file_fails_writers_at_once() {
    let env = TestStore::new();
    let etag = env.put("k", "{\"v\": 1}");
    fs::remove_file(env.lock_file("k")).unwrap();
    mkfifo(&env.lock_file("k"));
    for args in [
        &["set", "k", "{\"v\": 2}", "--etag", &etag][..],
        &["set-unsafe", "k", "{\"v\": 2}"][..],
        &["delete", "k", "--etag", &etag][..],
    ] {
        let out = run_or_kill(env.process().args(args));
        assert_refused(&out, &args.join(" "), "k.lock");
        assert_eq!(env.file("k").unwrap(), b"{\"v\": 1}");
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn lock_files_are_private_in_a_private_store() {
    let env = TestStore::new();
    env.put("k", "{}");
    assert_eq!(mode(&env.lock_file("k")), 0o600);
}

#[test]
fn lock_files_and_internal_directories_are_group_writable_in_a_group_store() {
    let env = TestStore::new();
    fs::create_dir(env.store()).unwrap();
    fs::set_permissions(env.store(), fs::Permissions::from_mode(0o2775)).unwrap();
    // Under umask 022 too: a group store works whatever each member's umask.
    env.cmd()
        .args(["set", "k", "{}", "--etag", ""])
        .assert()
        .success()
        .stdout(line(&md5_hex(b"{}")))
        .stderr("");
    assert_eq!(mode(&env.lock_file("k")), 0o660);
    for dir in [
        env.store().join(".etagstore"),
        env.internal("locks"),
        env.internal("tmp"),
    ] {
        assert_eq!(mode(&dir) & 0o2070, 0o2070, "{}", dir.display());
    }
}

/// Writes `set-unsafe k` until `gone` no longer exists: about one write in
/// 16 sweeps, so 600 writes miss with a chance of about 1e-17.
fn write_until_swept(env: &TestStore, gone: &Path) {
    for n in 0.. {
        assert!(n < 600, "no write swept {}", gone.display());
        env.cmd()
            .args(["set-unsafe", "k", &format!("{{\"n\": {n}}}")])
            .assert()
            .success()
            .stderr("");
        if !gone.exists() {
            return;
        }
    }
}

/// A temporary file of a writer in another PID namespace (two containers
/// sharing a volume): its PID does not exist here, it is old, but its writer
/// holds its lock. It stays through a sweep (a dead writer's old file shows
/// that one ran); once the lock is free, a later sweep removes it.
#[test]
fn a_live_writers_temporary_file_is_kept_whatever_its_pid_says() {
    let env = TestStore::new();
    env.put("k", "{\"v\": 1}");
    let temp = env.internal("tmp").join(TEMP_NAMES[0]);
    fs::write(&temp, "{\"half\": ").unwrap();
    backdate(&temp);
    // Pid 999999996 is above any pid_max: never running.
    let dead = env.internal("tmp").join("999999996-000000000-0.json");
    fs::write(&dead, "{\"half\": ").unwrap();
    backdate(&dead);
    let mut lock = RwLock::new(File::open(&temp).unwrap());
    let guard = lock.try_write().unwrap();
    write_until_swept(&env, &dead);
    assert!(temp.exists(), "a live writer's temporary file was deleted");
    drop(guard);
    write_until_swept(&env, &temp);
}

const MALLORY: &str = "etagstore-mallory";
const TEAM: &str = "etagstore-team";

/// Creates the second user and the group (as root), or says SKIPPED.
fn second_user(test: &str) -> bool {
    if !require(
        running_as_root(),
        &format!("{test}: needs root to create a second user"),
    ) {
        return false;
    }
    for cmd in [
        vec!["groupadd", TEAM],
        vec![
            "useradd",
            "--no-create-home",
            "--shell",
            "/bin/sh",
            "-G",
            TEAM,
            MALLORY,
        ],
    ] {
        let out = Command::new(cmd[0]).args(&cmd[1..]).output().unwrap();
        // 9: the group or user already exists.
        assert!(
            out.status.success() || out.status.code() == Some(9),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    true
}

/// Runs a shell command as the second user.
fn as_mallory(script: &str) -> Output {
    let out = Command::new("runuser")
        .args(["-u", MALLORY, "--", "sh", "-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "as {MALLORY}: {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn a_co_user_of_a_group_store_cannot_turn_the_owners_writes_against_the_owners_files() {
    let test = "co-user of a group store";
    if !second_user(test) {
        return;
    }
    let env = TestStore::new();
    // The tests' temporary directory is private; the co-user must reach the store.
    fs::set_permissions(env.root(), fs::Permissions::from_mode(0o755)).unwrap();
    let store = env.store();
    fs::create_dir(&store).unwrap();
    let chgrp = Command::new("chgrp")
        .arg(TEAM)
        .arg(&store)
        .status()
        .unwrap();
    assert!(chgrp.success());
    fs::set_permissions(&store, fs::Permissions::from_mode(0o2770)).unwrap();
    let etag = env.put("k", "{\"v\": 1}");

    // The co-user writes too: the group store works for its members.
    let bin = TestStore::bin().display().to_string();
    let s = store.display().to_string();
    as_mallory(&format!("'{bin}' --store '{s}' set-unsafe theirs '{{}}'"));
    env.cmd()
        .args(["set", "k", "{\"v\": 2}", "--etag", &etag])
        .assert()
        .success()
        .stderr("");

    // The owner's private files, which the co-user cannot even list.
    let private = env.root().join("private");
    fs::create_dir(&private).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    let outside = outside_with_temp_names(&env);
    fs::rename(&outside, private.join("archive")).unwrap();
    let archive = private.join("archive");

    // 1. tmp swapped for a symlink to the owner's archive.
    as_mallory(&format!(
        "cd '{s}/.etagstore' && rm -rf tmp && ln -s '{}' tmp",
        archive.display()
    ));
    let out = run_or_kill(env.process().args(["set-unsafe", "k", "{\"v\": 3}"]));
    assert_refused(&out, "set-unsafe through a tmp symlink", ".etagstore/tmp");
    assert_all_kept(&archive);
    fs::remove_file(env.internal("tmp")).unwrap();

    // 2. A lock file planted as a symlink into the owner's private directory.
    let target = private.join("created");
    as_mallory(&format!(
        "ln -s '{}' '{s}/.etagstore/locks/new.lock'",
        target.display()
    ));
    let out = run_or_kill(env.process().args(["set", "new", "{}", "--etag", ""]));
    assert_refused(&out, "set through a lock symlink", "new.lock");
    assert!(!target.exists());

    // 3. A FIFO as a document.
    as_mallory(&format!("mkfifo '{s}/fifo.json'"));
    let out = run_or_kill(env.process().args(["get", "fifo"]));
    assert_refused(&out, "get of a FIFO", "fifo.json");

    // The owner's store still works, and nothing outside it changed.
    env.cmd()
        .args(["set-unsafe", "k", "{\"v\": 4}"])
        .assert()
        .success()
        .stderr("");
    assert_all_kept(&archive);
}

#[test]
fn internal_directories_owned_by_another_user_are_refused_outside_a_group_store() {
    let test = "internal directories of another user";
    if !second_user(test) {
        return;
    }
    let env = TestStore::new();
    fs::set_permissions(env.root(), fs::Permissions::from_mode(0o755)).unwrap();
    let store = env.store();
    fs::create_dir(&store).unwrap();
    // Writable by everyone, not a group store: the co-user gets there first.
    fs::set_permissions(&store, fs::Permissions::from_mode(0o777)).unwrap();
    as_mallory(&format!(
        "mkdir -p '{0}/.etagstore/tmp' '{0}/.etagstore/locks'",
        store.display()
    ));
    let out = run_or_kill(env.process().args(["set-unsafe", "k", "{}"]));
    assert_refused(&out, "set-unsafe", ".etagstore");
    assert!(String::from_utf8_lossy(&out.stderr).contains("owned by"));
    assert!(env.file("k").is_none());
    let uid = fs::metadata(store.join(".etagstore")).unwrap().uid();
    assert_ne!(uid, 0);
}
