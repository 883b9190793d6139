//! Edges of get -o, watch, export/import and edit's child: resource bounds
//! (CPU time of the child from `wait4`, peak memory from /proc), planted
//! files, signals, and hostile stored documents.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, ExitStatus, Stdio};
use std::thread;
use std::time::Duration;

use predicates::prelude::*;

use crate::common::{md5_hex, one_error_line, TestStore};

/// What a finished child process did and what it cost.
struct Finished {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
    /// User plus system CPU time.
    cpu: Duration,
}

/// A running child whose standard error goes to a file: a pipe would stay
/// open as long as any grandchild that inherited it.
struct Running {
    child: Child,
    stderr: PathBuf,
}

/// Waits for the child with `wait4`, which reports its own resource use
/// (RUSAGE_CHILDREN would mix in every other test's processes).
fn finish(running: Running) -> Finished {
    let Running { mut child, stderr } = running;
    let stdout = child.stdout.take().map(|mut out| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            out.read_to_end(&mut bytes).unwrap();
            bytes
        })
    });
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Finished {
        status: ExitStatus::from_raw(status),
        stdout: stdout.map(|t| t.join().unwrap()).unwrap_or_default(),
        stderr: fs::read_to_string(&stderr).unwrap(),
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
    }
}

/// Starts `cmd` with stdout piped and stderr to a fresh file in the test's directory.
fn start(env: &TestStore, mut cmd: Process, input: Option<Vec<u8>>) -> Running {
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let stderr = env.root().join(format!("stderr-{n}"));
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(fs::File::create(&stderr).unwrap());
    // As from an interactive shell: a test run started in the background
    // (`cmd &` in a script) inherits SIGINT and SIGQUIT ignored, and
    // etagstore rightly keeps a signal its caller ignores.
    // SAFETY: signal() is async-signal-safe; nothing else runs in the child.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = input {
        let mut stdin = child.stdin.take().unwrap();
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    Running { child, stderr }
}

/// `etagstore --store <store> ARGS`, stdin from `input`.
fn spawn(env: &TestStore, args: &[&str], input: Option<Vec<u8>>) -> Running {
    let mut cmd = env.process();
    cmd.args(args);
    start(env, cmd, input)
}

/// Waits until `done` holds, checking every 20 ms, for at most a minute
/// (a bound for a hung test, not a timing assertion).
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..3000 {
        if done() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("gave up waiting for {what}");
}

/// Whether a process is still running (a zombie counts as gone).
fn running(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap().trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

/// `running`, for a pid that may not have been written.
fn alive(pid: Option<i32>) -> bool {
    pid.is_some_and(running)
}

/// Writes an executable shell script into the test's directory.
fn script(env: &TestStore, name: &str, body: &str) -> PathBuf {
    let path = env.root().join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A pretty-printed (multi-line) JSON array of about `size` bytes.
fn pretty_document(size: usize) -> Vec<u8> {
    let item = format!("  \"{}\",\n", "x".repeat(1000));
    let mut doc = b"[\n".to_vec();
    while doc.len() < size {
        doc.extend_from_slice(item.as_bytes());
    }
    doc.extend_from_slice(b"  0\n]\n");
    doc
}

// ---------------------------------------------------------------- get -o

#[test]
fn get_o_onto_the_documents_own_file_is_refused_with_exit_2() {
    let env = TestStore::new();
    let doc = "{\"keep\": \"me\"}\n";
    env.put("k", doc);
    let own = env.path("k");
    let link = env.root().join("link.json");
    std::os::unix::fs::symlink(&own, &link).unwrap();
    let hard = env.root().join("hard.json");
    fs::hard_link(&own, &hard).unwrap();
    for target in [&own, &link, &hard] {
        env.cmd()
            .args(["get", "k", "-o"])
            .arg(target)
            .assert()
            .code(2)
            .stdout("")
            .stderr(one_error_line().and(predicate::str::contains("own file")));
        assert_eq!(env.file("k").unwrap(), doc.as_bytes(), "{target:?}");
    }
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn get_o_replaces_a_planted_symlink_instead_of_following_it() {
    let env = TestStore::new();
    let etag = env.put("k", "{\"doc\": 1}");
    let victim = env.root().join("victim");
    fs::write(&victim, "precious\n").unwrap();
    let out = env.root().join("out.json");
    std::os::unix::fs::symlink(&victim, &out).unwrap();
    env.cmd()
        .args(["get", "k", "-o"])
        .arg(&out)
        .assert()
        .success()
        .stdout(format!("{etag}\n"))
        .stderr("");
    assert_eq!(fs::read(&victim).unwrap(), b"precious\n");
    let meta = fs::symlink_metadata(&out).unwrap();
    assert!(meta.file_type().is_file(), "{meta:?}");
    assert_eq!(fs::read(&out).unwrap(), b"{\"doc\": 1}");
}

#[test]
fn get_o_keeps_the_mode_of_the_file_it_replaces_and_leaves_no_temporary_file() {
    let env = TestStore::new();
    env.put("k", "[1]");
    let dir = env.root().join("out");
    fs::create_dir(&dir).unwrap();
    let out = dir.join("secret.json");
    fs::write(&out, "old").unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o640)).unwrap();
    env.cmd()
        .args(["get", "k", "-o"])
        .arg(&out)
        .assert()
        .success();
    assert_eq!(fs::read(&out).unwrap(), b"[1]");
    assert_eq!(fs::metadata(&out).unwrap().mode() & 0o7777, 0o640);
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["secret.json"]);
}

#[test]
fn get_o_writes_devices_and_the_callers_own_descriptors_in_place() {
    let env = TestStore::new();
    let etag = env.put("k", "{\"to\": \"stdout\"}");
    let out = Process::new("sh")
        .arg("-c")
        .arg("\"$0\" --store \"$1\" get k -o /dev/stdout && \"$0\" --store \"$1\" get k -o /dev/null")
        .arg(TestStore::bin())
        .arg(env.store())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{{\"to\": \"stdout\"}}{etag}\n{etag}\n")
    );
    assert!(fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn an_interrupted_get_o_leaves_the_old_file_whole() {
    // RLIMIT_FSIZE stops the copy half way (SIGXFSZ kills the process),
    // the way a kill or a full disk would.
    let env = TestStore::new();
    let doc = pretty_document(4 * 1024 * 1024);
    env.put("big", &doc);
    let out = env.root().join("out.json");
    fs::write(&out, "old contents\n").unwrap();
    let status = Process::new("sh")
        .arg("-c")
        .arg("ulimit -f 2048; exec \"$0\" --store \"$1\" get big -o \"$2\"")
        .arg(TestStore::bin())
        .arg(env.store())
        .arg(&out)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "{status:?}");
    let after = fs::read(&out).unwrap();
    assert!(
        after == b"old contents\n",
        "FILE holds {} bytes",
        after.len()
    );
}

// ------------------------------------------------------- get --json spool

/// The files under `dir` that process `pid` holds open, with what
/// /proc says about each (its name, or "#inode (deleted)" for O_TMPFILE).
fn open_files_in(pid: u32, dir: &Path) -> Vec<(PathBuf, fs::Metadata)> {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.filter_map(|fd| {
        let fd = fd.ok()?.path();
        let target = fs::read_link(&fd).ok()?;
        let meta = fs::metadata(&fd).ok()?;
        target.starts_with(dir).then_some((target, meta))
    })
    .collect()
}

#[test]
fn the_get_json_spill_file_is_private_and_never_has_a_name() {
    let env = TestStore::new();
    let doc = pretty_document(3 * 1024 * 1024);
    env.put("big", &doc);
    let tmp = env.root().join("tmp");
    fs::create_dir(&tmp).unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o700)).unwrap();
    // Nobody reads stdout yet: once the pipe is full the process blocks in
    // the middle of copying the spool out, holding the spill file open.
    let mut child = env
        .process()
        .env("TMPDIR", &tmp)
        .args(["get", "big", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut held = Vec::new();
    wait_until("the spill file", || {
        held = open_files_in(pid, &tmp);
        !held.is_empty()
    });
    let entries: Vec<_> = fs::read_dir(&tmp).unwrap().collect();
    let (target, meta) = &held[0];
    let name = target.file_name().unwrap().to_string_lossy().into_owned();
    let mut stdout = child.stdout.take().unwrap();
    let mut envelope = Vec::new();
    stdout.read_to_end(&mut envelope).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(meta.mode() & 0o777, 0o600, "{target:?}");
    // O_TMPFILE: the file never had a name in the directory.
    assert!(name.starts_with('#'), "{target:?} had a name");
    assert!(entries.is_empty(), "{entries:?}");
    assert!(envelope.len() > doc.len() / 2);
}

// ------------------------------------------------------------------ watch

#[test]
fn an_idle_watch_on_an_existing_key_uses_almost_no_cpu() {
    let env = TestStore::new();
    env.put("k", "{\"small\": true}");
    let child = spawn(&env, &["watch", "k", "--timeout", "2"], None);
    let done = finish(child);
    assert_eq!(done.status.code(), Some(7), "{}", done.stderr);
    assert!(
        done.cpu < Duration::from_millis(300),
        "an idle 2-second watch used {:?} of CPU",
        done.cpu
    );
}

#[test]
fn watch_sees_a_write_after_the_store_directory_is_removed_and_recreated() {
    let env = TestStore::new();
    env.put("other", "{}");
    // No --timeout: a missed change would keep it waiting for an hour, and
    // a timeout's last look would hide the miss.
    let mut child = spawn(&env, &["watch", "k", "--etag", ""], None);
    thread::sleep(Duration::from_millis(300));
    fs::remove_dir_all(env.store()).unwrap();
    thread::sleep(Duration::from_millis(300));
    fs::create_dir(env.store()).unwrap();
    thread::sleep(Duration::from_millis(300));
    let etag = env.put("k", "{\"back\": true}");
    let pid = child.child.id() as i32;
    let exited = (0..1500).any(|_| {
        thread::sleep(Duration::from_millis(20));
        !running(pid)
    });
    if !exited {
        let _ = child.child.kill();
    }
    let done = finish(child);
    assert!(exited, "the watch missed the write for 30 s");
    assert_eq!(
        (
            done.status.code(),
            String::from_utf8(done.stdout).unwrap(),
            done.stderr
        ),
        (Some(0), format!("{etag}\n"), String::new())
    );
}

#[test]
fn watch_says_once_when_it_must_poll_and_still_sees_the_change() {
    let env = TestStore::new();
    let old = env.put("k", "1");
    let mut cmd = env.process();
    cmd.env("ETAGSTORE_FAULT", "watch-inotify").args([
        "watch",
        "k",
        "--etag",
        &old,
        "--timeout",
        "60",
    ]);
    let child = start(&env, cmd, None);
    thread::sleep(Duration::from_millis(300));
    let new = env.put("k", "2");
    let done = finish(child);
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr);
    assert_eq!(String::from_utf8(done.stdout).unwrap(), format!("{new}\n"));
    assert!(
        done.stderr.starts_with("note: ") && done.stderr.lines().count() == 1,
        "{:?}",
        done.stderr
    );
    assert!(done.stderr.contains("polling"), "{:?}", done.stderr);
}

#[test]
fn watch_etag_of_the_current_document_in_upper_case_does_not_fire() {
    let env = TestStore::new();
    let etag = env.put("k", "{\"v\": 1}");
    env.cmd()
        .args([
            "watch",
            "k",
            "--etag",
            &etag.to_uppercase(),
            "--timeout",
            "0.5",
        ])
        .assert()
        .code(7)
        .stdout("")
        .stderr(one_error_line().and(predicate::str::contains("timed out")));
}

#[test]
fn malformed_watch_etags_are_usage_errors() {
    let env = TestStore::new();
    let etag = env.put("k", "{\"v\": 1}");
    for bad in [format!("\"{etag}\""), "*".into(), "nonsense".into()] {
        env.cmd()
            .args(["watch", "k", "--etag", &bad, "--timeout", "30"])
            .assert()
            .code(2)
            .stdout("")
            .stderr(one_error_line());
    }
}

// ---------------------------------------------------------- export/import

/// The peak memory (VmHWM) of a running process. wait4's ru_maxrss would
/// not do: Linux carries the spawning test process's own peak across exec.
fn peak_memory(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[test]
fn export_of_a_big_pretty_document_streams_in_bounded_memory() {
    let env = TestStore::new();
    let doc = pretty_document(48 * 1024 * 1024);
    let etag = env.put("big", &doc);
    let value: serde_json::Value = serde_json::from_slice(&doc).unwrap();
    let text = String::from_utf8(doc.clone()).unwrap();
    let expected = format!(
        "{{\"key\":\"big\",\"etag\":\"{etag}\",\"value\":{},\"text\":{}}}\n",
        serde_json::to_string(&value).unwrap(),
        serde_json::to_string(&text).unwrap()
    );
    drop((value, text));
    let mut running = spawn(&env, &["export"], None);
    let mut stdout = running.child.stdout.take().unwrap();
    // Leave far more than a pipe holds unread: the export is then blocked
    // in its last writes, alive, with its peak behind it.
    let mut head = vec![0; expected.len() - 1024 * 1024];
    stdout.read_exact(&mut head).unwrap();
    let peak = peak_memory(running.child.id());
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    head.extend_from_slice(&rest);
    let done = finish(running);
    assert!(done.status.success(), "{}", done.stderr);
    assert!(head == expected.as_bytes(), "the export line differs");
    assert!(
        peak < 24 * 1024 * 1024,
        "export of a {} MiB document peaked at {} MiB",
        doc.len() >> 20,
        peak >> 20
    );
    // And it still restores byte for byte.
    let to = TestStore::new();
    to.cmd().arg("import").write_stdin(head).assert().success();
    assert_eq!(to.file("big").unwrap(), doc);
}

#[test]
fn export_escapes_text_exactly_as_json_does() {
    let env = TestStore::new();
    let mut doc = "{\"s\": \"tab\\t quote\\\" é 日本 \u{7f}\",\n \"n\": [1, 2e5]}\r\n".to_string();
    doc.insert_str(0, "\n\t ");
    env.put("k", &doc);
    let export = env.cmd().arg("export").assert().success();
    let line = String::from_utf8(export.get_output().stdout.clone()).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(parsed["text"].as_str().unwrap(), doc);
    assert_eq!(
        line,
        format!(
            "{{\"key\":\"k\",\"etag\":\"{}\",\"value\":{},\"text\":{}}}\n",
            md5_hex(doc.as_bytes()),
            "{\"s\":\"tab\\t quote\\\" é 日本 \u{7f}\",\"n\":[1,2e5]}",
            serde_json::to_string(&doc).unwrap()
        )
    );
}

#[test]
fn import_refuses_a_line_longer_than_its_limit_and_names_both() {
    let env = TestStore::new();
    let big = format!(
        "{{\"key\":\"big\",\"value\":\"{}\"}}\n",
        "x".repeat(2 << 20)
    );
    let input = format!("{{\"key\":\"small\",\"value\":1}}\n{big}");
    env.cmd()
        .env("ETAGSTORE_IMPORT_LINE_LIMIT", "1048576")
        .arg("import")
        .write_stdin(input)
        .assert()
        .code(6)
        .stdout("")
        .stderr(
            predicate::str::contains("error: invalid document: line 2:")
                .and(predicate::str::contains("1048576 bytes")),
        );
    assert_eq!(env.file("small").unwrap(), b"1");
    assert!(env.file("big").is_none());
}

#[test]
fn import_accepts_an_upper_case_etag() {
    let env = TestStore::new();
    let line = format!(
        "{{\"key\":\"k\",\"etag\":\"{}\",\"value\":[1]}}\n",
        md5_hex(b"[1]").to_uppercase()
    );
    env.cmd()
        .arg("import")
        .write_stdin(line)
        .assert()
        .success()
        .stdout("")
        .stderr("imported 1, skipped 0\n");
    assert_eq!(env.file("k").unwrap(), b"[1]");
}

#[test]
fn import_refuses_a_line_whose_text_and_value_disagree() {
    let env = TestStore::new();
    let text = "{\n  \"n\": 1\n}\n";
    for value in ["{\"n\":2}", "{\"n\":1,\"m\":0}", "[1]"] {
        let line = format!(
            "{{\"key\":\"k\",\"value\":{value},\"text\":{}}}\n",
            serde_json::to_string(text).unwrap()
        );
        env.cmd()
            .arg("import")
            .write_stdin(line)
            .assert()
            .code(6)
            .stdout("")
            .stderr(predicate::str::contains("error: invalid document: line 1:"));
        assert!(env.file("k").is_none(), "{value}");
    }
    // The same value written differently is no disagreement.
    let line = format!(
        "{{\"key\":\"k\",\"value\":{{ \"n\" : 1.0e0 }},\"text\":{}}}\n",
        serde_json::to_string("{\"n\": 1.0e0}").unwrap()
    );
    env.cmd().arg("import").write_stdin(line).assert().success();
}

#[test]
fn import_refuses_unknown_fields() {
    let env = TestStore::new();
    let line = format!(
        "{{\"key\":\"k\",\"etagg\":\"{}\",\"value\":2}}\n",
        md5_hex(b"1")
    );
    env.cmd()
        .arg("import")
        .write_stdin(line)
        .assert()
        .code(6)
        .stdout("")
        .stderr(predicate::str::contains("etagg"));
    assert!(env.file("k").is_none());
}

// ------------------------------------------------------------ edit -- CMD

/// Starts `edit k -- SCRIPT` where the script ignores SIGINT, notes its own
/// pid and that of a `sleep` it waits for; returns the edit and both pids.
fn slow_edit(env: &TestStore, extra: &[&str]) -> (Running, Option<i32>, Option<i32>) {
    let slow = script(
        env,
        "slow.sh",
        "trap '' INT\necho $$ > cmd.pid\nsleep 30 &\necho $! > sleep.tmp && mv sleep.tmp sleep.pid\nwait\necho '{\"written\": true}'",
    );
    let mut args = vec!["edit", "k"];
    args.extend_from_slice(extra);
    args.push("--");
    let slow = slow.to_str().unwrap().to_string();
    args.push(&slow);
    let child = spawn(env, &args, None);
    let pid_file = env.root().join("sleep.pid");
    // Or until the edit ended first (a --timeout on a very slow machine):
    // then whatever pid was written must be gone too.
    let edit = child.child.id() as i32;
    wait_until("the command to start", || {
        pid_file.exists() || !running(edit)
    });
    let read = |name: &str| -> Option<i32> {
        let text = fs::read_to_string(env.root().join(name)).ok()?;
        text.trim().parse().ok()
    };
    (child, read("cmd.pid"), read("sleep.pid"))
}

#[test]
fn sigterm_to_edit_stops_its_command_and_writes_nothing() {
    let env = TestStore::new();
    env.put("k", "{\"n\": 1}");
    let before = env.snapshot();
    let (child, cmd, sleep) = slow_edit(&env, &[]);
    unsafe { libc::kill(child.child.id() as i32, libc::SIGTERM) };
    let done = finish(child);
    // Dies of the signal, as shells expect (they report 143).
    assert_eq!(done.status.signal(), Some(libc::SIGTERM), "{:?}", done);
    assert!(
        !alive(cmd) && !alive(sleep),
        "the command outlived etagstore"
    );
    assert!(done.stdout.is_empty());
    assert_eq!(env.file("k").unwrap(), b"{\"n\": 1}");
    let changed = env.snapshot().changed_since(&before);
    assert!(
        changed.iter().all(|p| !p.starts_with("store")),
        "{changed:?}"
    );
}

#[test]
fn sigint_to_edit_stops_a_command_that_ignores_it() {
    let env = TestStore::new();
    env.put("k", "{\"n\": 1}");
    let (child, cmd, sleep) = slow_edit(&env, &[]);
    unsafe { libc::kill(child.child.id() as i32, libc::SIGINT) };
    let done = finish(child);
    assert_eq!(done.status.signal(), Some(libc::SIGINT), "{:?}", done);
    assert!(
        !alive(cmd) && !alive(sleep),
        "the command outlived etagstore"
    );
    assert_eq!(env.file("k").unwrap(), b"{\"n\": 1}");
}

#[test]
fn edit_timeout_stops_a_slow_command_with_exit_1_and_writes_nothing() {
    let env = TestStore::new();
    env.put("k", "{\"n\": 1}");
    let (child, cmd, sleep) = slow_edit(&env, &["--timeout", "2"]);
    let done = finish(child);
    assert_eq!(done.status.code(), Some(1), "{:?}", done);
    assert!(done.stderr.starts_with("error: ") && done.stderr.lines().count() == 1);
    assert!(
        done.stderr.contains("timed out after 2s"),
        "{}",
        done.stderr
    );
    assert!(done.stderr.contains("nothing written"), "{}", done.stderr);
    assert!(
        !alive(cmd) && !alive(sleep),
        "the command outlived etagstore"
    );
    assert_eq!(env.file("k").unwrap(), b"{\"n\": 1}");
}

impl std::fmt::Debug for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}, stderr {:?}", self.status, self.stderr)
    }
}

// ------------------------------------------------- edit --jq, hostile docs

/// Plants `doc` as the stored document of `k`, as a co-user could.
fn plant(env: &TestStore, doc: &[u8]) {
    env.put("k", "{}");
    fs::write(env.path("k"), doc).unwrap();
}

fn edit_jq_refuses(doc: &[u8], limit_text: &str) {
    let env = TestStore::new();
    plant(&env, doc);
    let done = finish(spawn(&env, &["edit", "k", "--jq", ".[0] = 1"], None));
    assert_eq!(done.status.code(), Some(6), "{:?}", done);
    assert!(done.stderr.starts_with("error: ") && done.stderr.lines().count() == 1);
    assert!(done.stderr.contains("invalid document"), "{}", done.stderr);
    assert!(done.stderr.contains(limit_text), "{}", done.stderr);
    assert!(
        done.cpu < Duration::from_secs(1),
        "took {:?} of CPU",
        done.cpu
    );
    assert_eq!(env.file("k").unwrap(), doc);
}

#[test]
fn edit_jq_on_a_50000_deep_stored_array_is_exit_6_not_a_crash() {
    let doc = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    edit_jq_refuses(doc.as_bytes(), "deeper than 128");
}

#[test]
fn edit_jq_on_a_million_digit_number_is_exit_6_at_once() {
    let doc = format!("[{}]", "7".repeat(1_000_000));
    edit_jq_refuses(doc.as_bytes(), "1000 characters");
}

#[test]
fn edit_jq_on_a_document_over_its_size_limit_is_exit_6() {
    let doc = pretty_document(17 * 1024 * 1024);
    edit_jq_refuses(&doc, "16 MiB");
}
