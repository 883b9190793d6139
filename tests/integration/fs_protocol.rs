//! Stale compare-and-swaps on the directory store: a writer is paused
//! between its look at the current document and its lock (the window an
//! ordinary lock wait opens) while the document is deleted and re-created,
//! rewritten twice, or changed in place; the stale write must exit 3 and
//! change nothing. These run on a loop-mounted ext4 made with
//! `mkfs.ext4 -I 128`, whose timestamps have one-second granularity, so a
//! new file can look exactly like the old one (same inode number, size and
//! times). They need root (CI is root) and the `test-hooks` feature for the
//! pauses; elsewhere they print `SKIPPED: …`.

// The paused tests need test-hooks; without it their helpers go unused.
#![cfg_attr(not(feature = "test-hooks"), allow(dead_code))]

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

use crate::common::{md5_hex, require, running_as_root, skip, TestStore};

/// An ext4 image with 128-byte inodes (one-second timestamps), loop-mounted;
/// unmounted when dropped.
pub struct CoarseFs {
    image: PathBuf,
    mnt: PathBuf,
    // Last: removed after `drop` has unmounted.
    _dir: TempDir,
}

impl CoarseFs {
    /// `None`, after a `SKIPPED` line, where it cannot be mounted (not root,
    /// no loop device); where the environment is required that is a
    /// failure instead (see `require`).
    pub fn mount(test: &str) -> Option<CoarseFs> {
        let mounted = if running_as_root() {
            CoarseFs::try_mount()
        } else {
            Err("not running as root".to_string())
        };
        match mounted {
            Ok(fs) => Some(fs),
            Err(reason) => {
                skip(&format!(
                    "{test}: needs an ext4 image with 1-second timestamps: {reason}"
                ));
                None
            }
        }
    }

    fn try_mount() -> Result<CoarseFs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let image = dir.path().join("ext4-i128.img");
        File::create(&image)
            .and_then(|file| file.set_len(64 << 20))
            .map_err(|e| format!("cannot create the image: {e}"))?;
        run("mkfs.ext4", &["-q", "-F", "-I", "128", path_str(&image)])?;
        let mnt = dir.path().join("mnt");
        fs::create_dir(&mnt).map_err(|e| e.to_string())?;
        run(
            "mount",
            &["-t", "ext4", "-o", "loop", path_str(&image), path_str(&mnt)],
        )?;
        Ok(CoarseFs {
            image,
            mnt,
            _dir: dir,
        })
    }

    /// A fresh store directory on the image.
    pub fn store(&self, name: &str) -> PathBuf {
        self.mnt.join(name)
    }

    pub fn dir(&self) -> &Path {
        &self.mnt
    }
}

impl Drop for CoarseFs {
    fn drop(&mut self) {
        let mnt = path_str(&self.mnt);
        let unmounted = (0..40).any(|_| {
            let done = run("umount", &[mnt]).is_ok();
            if !done {
                thread::sleep(Duration::from_millis(50));
            }
            done
        });
        if !unmounted {
            let _ = run("umount", &["-l", mnt]);
        }
        if let Ok(out) = Command::new("losetup").arg("-j").arg(&self.image).output() {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some((device, _)) = line.split_once(':') {
                    let _ = run("losetup", &["-d", device]);
                }
            }
        }
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

/// Runs a system command; its output becomes the error when it fails.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {args:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `etagstore --store <store>` with no `ETAGSTORE_*` variable from outside.
pub fn etagstore(store: &Path) -> Command {
    let mut cmd = Command::new(TestStore::bin());
    cmd.arg("--store").arg(store);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ETAGSTORE_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Runs `cmd` with `input` on its standard input.
fn run_with(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Asserts a command exited 0, and returns its standard output.
fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A JSON document of exactly `size` bytes (at least 10), filled with `fill`.
fn doc(fill: char, size: usize) -> Vec<u8> {
    let pad = fill.to_string().repeat(size - 9);
    format!("{{\"p\": \"{pad}\"}}").into_bytes()
}

/// Sleeps until just after the start of the next wall-clock second, so that
/// what a test does next shares one-second timestamps.
fn at_the_start_of_a_second() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into = Duration::from_nanos(u64::from(now.subsec_nanos()));
    thread::sleep(Duration::from_secs(1) - into + Duration::from_millis(5));
}

/// A small document is re-hashed under the lock; a big one (over 64 KiB)
/// relies on the file the look kept open and on its timestamps.
const SIZES: [usize; 2] = [24, 100 << 10];

#[cfg(not(feature = "test-hooks"))]
#[test]
fn the_stale_compare_and_swap_tests_need_the_test_hooks_feature() {
    skip("the paused-writer tests need `--features test-hooks`");
}

#[cfg(feature = "test-hooks")]
mod paused {
    use super::*;
    use crate::common::{one_error_line, Pause};
    use predicates::prelude::*;

    /// Starts `args` (a `set` or `delete` conditioned on an ETag), waits
    /// until it has looked at the document and opened the lock file, runs
    /// `meanwhile`, lets it go on, and returns its output.
    fn paused_writer(
        fs: &CoarseFs,
        store: &Path,
        args: &[&str],
        input: &[u8],
        meanwhile: impl FnOnce(),
    ) -> Output {
        let pause = Pause::new(fs.dir(), "BEFORE_LOCK");
        let mut cmd = etagstore(store);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        pause.arm(&mut cmd);
        let mut writer = cmd.spawn().unwrap();
        // `delete` reads no input: write it (if any) from a thread of its own.
        let mut stdin = writer.stdin.take().unwrap();
        let input = input.to_vec();
        let feeder = thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        pause.wait_for(&mut writer);
        meanwhile();
        pause.release();
        let out = writer.wait_with_output().unwrap();
        feeder.join().unwrap();
        out
    }

    fn assert_conflict(out: &Output, what: &str) {
        assert_eq!(
            out.status.code(),
            Some(3),
            "{what}: the stale write must fail with exit 3: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "", "{what}");
        assert!(
            one_error_line().eval(&String::from_utf8_lossy(&out.stderr)),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The scenario of every test below: `key` holds `old` (written in the
    /// same second as what follows); a stale writer runs `stale` while the
    /// document is changed by `change` to end as `new`, the same size as `old`.
    fn stale_write_is_refused(
        test: &str,
        stale: &[&str],
        change: impl Fn(&Path, &str, &[u8], &[u8]),
    ) {
        let Some(fs) = CoarseFs::mount(test) else {
            return;
        };
        for size in SIZES {
            let store = fs.store(&format!("store-{size}"));
            let key = "k";
            let (old, new) = (doc('a', size), doc('b', size));
            at_the_start_of_a_second();
            let etag = ok(run_with(etagstore(&store).args(["set-unsafe", key]), &old));
            let etag = etag.trim();
            let mut args = stale.to_vec();
            args.extend([key, "--etag", etag]);
            let out = paused_writer(&fs, &store, &args, &doc('c', size), || {
                change(&store, key, &old, &new)
            });
            let what = format!("{test}, {size}-byte document");
            assert_conflict(&out, &what);
            assert_eq!(
                fs::read(store.join("k.json")).ok(),
                Some(new.clone()),
                "{what}: the document is the newer one"
            );
            ok(etagstore(&store).args(["etag", key]).output().unwrap());
        }
    }

    fn delete_and_recreate(store: &Path, key: &str, old: &[u8], new: &[u8]) {
        ok(etagstore(store)
            .args(["delete", key, "--etag", &md5_hex(old)])
            .output()
            .unwrap());
        ok(run_with(
            etagstore(store).args(["set", key, "--etag", ""]),
            new,
        ));
    }

    fn two_correct_writes(store: &Path, key: &str, old: &[u8], new: &[u8]) {
        let between = br#"{"between": true}"#;
        ok(run_with(
            etagstore(store).args(["set", key, "--etag", &md5_hex(old)]),
            between,
        ));
        ok(run_with(
            etagstore(store).args(["set", key, "--etag", &md5_hex(between)]),
            new,
        ));
    }

    fn rewrite_in_place(store: &Path, key: &str, _old: &[u8], new: &[u8]) {
        // What `printf … > _filestore/k.json` does: truncate, then write.
        let mut file = File::create(store.join(format!("{key}.json"))).unwrap();
        file.write_all(new).unwrap();
    }

    #[test]
    fn a_stale_set_fails_after_the_document_was_deleted_and_recreated_during_its_lock_wait() {
        stale_write_is_refused(
            "stale set after delete + re-create",
            &["set"],
            delete_and_recreate,
        );
    }

    #[test]
    fn a_stale_set_fails_after_two_correct_writes_during_its_lock_wait() {
        stale_write_is_refused("stale set after two writes", &["set"], two_correct_writes);
    }

    #[test]
    fn a_stale_delete_fails_after_the_document_was_deleted_and_recreated() {
        stale_write_is_refused(
            "stale delete after delete + re-create",
            &["delete"],
            delete_and_recreate,
        );
    }

    #[test]
    fn a_stale_set_fails_after_an_in_place_rewrite_of_the_same_size() {
        stale_write_is_refused(
            "stale set after an in-place rewrite",
            &["set"],
            rewrite_in_place,
        );
    }

    #[test]
    fn a_stale_delete_fails_after_an_in_place_rewrite_of_the_same_size() {
        stale_write_is_refused(
            "stale delete after an in-place rewrite",
            &["delete"],
            rewrite_in_place,
        );
    }
    /// A writer waits for the lock (paused with the lock file open) while
    /// `remove` deletes the lock file; a second writer with the same
    /// `--etag` then takes a fresh lock file and stops inside it. The first
    /// must not hold "the lock" at the same time: exactly one of them wins.
    fn one_winner_after_removing(what: &str, remove: impl Fn(&Path)) {
        let env = TestStore::new();
        let store = env.store();
        let etag = env.put("k", "{\"v\": 0}");
        let waiting = Pause::new(env.root(), "BEFORE_LOCK");
        let mut cmd = etagstore(&store);
        cmd.args([
            "set",
            "k",
            "{\"v\": 1}",
            "--etag",
            &etag,
            "--lock-timeout",
            "60",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        waiting.arm(&mut cmd);
        let mut first = cmd.spawn().unwrap();
        waiting.wait_for(&mut first);

        remove(&store);

        let inside = Pause::new(env.root(), "LOCKED");
        let mut cmd = etagstore(&store);
        cmd.args([
            "set",
            "k",
            "{\"v\": 2}",
            "--etag",
            &etag,
            "--lock-timeout",
            "60",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        inside.arm(&mut cmd);
        let mut second = cmd.spawn().unwrap();
        inside.wait_for(&mut second);
        // The first writer goes on while the second is inside its lock: it
        // must wait for that lock, not take the removed file's. Give it up
        // to five seconds to finish (the old code finished at once) before
        // the second goes on; not an assertion on time.
        waiting.release();
        for _ in 0..500 {
            if first.try_wait().unwrap().is_some() {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        inside.release();
        let first = first.wait_with_output().unwrap();
        let second = second.wait_with_output().unwrap();
        let codes = [first.status.code(), second.status.code()];
        assert_eq!(
            codes,
            [Some(3), Some(0)],
            "{what}: both writers had --etag {etag}; exactly one may win: {} / {}",
            String::from_utf8_lossy(&first.stderr),
            String::from_utf8_lossy(&second.stderr)
        );
        assert_eq!(env.file("k").unwrap(), b"{\"v\": 2}", "{what}");
    }

    #[test]
    fn a_lock_file_removed_while_a_writer_waits_on_it_still_excludes() {
        one_winner_after_removing("rm -rf .etagstore/locks", |store| {
            fs::remove_dir_all(store.join(".etagstore/locks")).unwrap()
        });
        one_winner_after_removing("rm .etagstore/locks/k.lock", |store| {
            fs::remove_file(store.join(".etagstore/locks/k.lock")).unwrap()
        });
        one_winner_after_removing("rm -rf .etagstore", |store| {
            fs::remove_dir_all(store.join(".etagstore")).unwrap()
        });
    }
}

#[test]
fn eight_editors_on_one_second_timestamps_lose_no_increment() {
    const WRITERS: usize = 8;
    const EDITS: usize = 50;
    let Some(fs) = CoarseFs::mount("eight editors on one-second timestamps") else {
        return;
    };
    let store = fs.store("counter");
    // Four digits from 1000 to 1400: every version has the same size.
    ok(etagstore(&store)
        .args(["set-unsafe", "c", "{\"n\": 1000}"])
        .output()
        .unwrap());
    let editors: Vec<_> = (0..WRITERS)
        .map(|_| {
            let store = store.clone();
            thread::spawn(move || {
                let mut done = 0;
                for _ in 0..EDITS {
                    let out = etagstore(&store)
                        .args(["edit", "c", "--jq", ".n += 1", "--retries", "100"])
                        .args(["--lock-timeout", "60"])
                        .output()
                        .unwrap();
                    match out.status.code() {
                        Some(0) => done += 1,
                        // edit gave up after its retries: nothing was written.
                        Some(3) => {}
                        _ => panic!("edit: {}", String::from_utf8_lossy(&out.stderr)),
                    }
                }
                done
            })
        })
        .collect();
    let done: usize = editors.into_iter().map(|t| t.join().unwrap()).sum();
    let out = ok(etagstore(&store).args(["get", "c"]).output().unwrap());
    let n = serde_json::from_str::<serde_json::Value>(&out).unwrap()["n"]
        .as_u64()
        .unwrap() as usize;
    assert_eq!(
        n - 1000,
        done,
        "{done} edits exited 0, but the counter went up by {}",
        n - 1000
    );
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// `etagstore ARGS` under `umask`, through `sh`.
fn under_umask(env: &TestStore, umask: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new("sh");
    cmd.current_dir(env.root())
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$@\""))
        .arg("sh")
        .arg(TestStore::bin())
        .arg("--store")
        .arg(env.store())
        .args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ETAGSTORE_") {
            cmd.env_remove(name);
        }
    }
    cmd.output().unwrap()
}

#[test]
fn a_rewrite_keeps_the_mode_an_operator_gave_the_document() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestStore::new();
    let etag = env.put("secret", "{\"token\": 1}");
    let path = env.path("secret");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let etag = ok(under_umask(
        &env,
        "022",
        &["set", "secret", "{\"token\": 2}", "--etag", &etag],
    ));
    assert_eq!(mode(&path), 0o600, "after set --etag");
    assert_eq!(etag.trim(), md5_hex(b"{\"token\": 2}"));
    ok(under_umask(
        &env,
        "022",
        &["edit", "secret", "--jq", ".token += 1"],
    ));
    assert_eq!(mode(&path), 0o600, "after edit");
    ok(under_umask(&env, "022", &["set-unsafe", "secret", "{}"]));
    assert_eq!(mode(&path), 0o600, "after set-unsafe");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    ok(under_umask(&env, "077", &["set-unsafe", "secret", "[]"]));
    assert_eq!(mode(&path), 0o640, "a rewrite under umask 077");
}

#[test]
fn a_rewrite_keeps_the_documents_owner_and_group_where_allowed() {
    use std::os::unix::fs::MetadataExt;
    if !require(
        running_as_root(),
        "keeping another user's ownership needs root",
    ) {
        return;
    }
    let env = TestStore::new();
    env.put("k", "{}");
    let path = env.path("k");
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    ok(under_umask(&env, "022", &["set-unsafe", "k", "[]"]));
    let meta = fs::metadata(&path).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
}

#[test]
fn a_new_document_follows_the_umask() {
    let env = TestStore::new();
    ok(under_umask(&env, "022", &["set", "a", "{}", "--etag", ""]));
    assert_eq!(mode(&env.path("a")), 0o644);
    ok(under_umask(&env, "077", &["set-unsafe", "b", "{}"]));
    assert_eq!(mode(&env.path("b")), 0o600);
    ok(under_umask(&env, "002", &["set-unsafe", "c", "{}"]));
    assert_eq!(mode(&env.path("c")), 0o664);
}
