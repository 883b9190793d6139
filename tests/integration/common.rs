//! `TestStore`: a temporary store and a ready `etagstore` command bound to it,
//! plus the checks every area shares (one `error:` line, "nothing changed").

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use fd_lock::RwLock;
use md5::{Digest, Md5};
use predicates::prelude::*;
use tempfile::TempDir;

pub struct TestStore {
    dir: TempDir,
    /// Set when the store is a fresh Azurite container instead of a directory.
    azurite: Option<Azurite>,
    /// Set when the store is a fresh bucket of the local S3 server.
    s3: Option<S3Bucket>,
}

/// Where an S3 store lives: the local server's port and a bucket.
#[derive(Clone)]
pub struct S3Bucket {
    pub port: u16,
    pub bucket: String,
}

/// Where an Azurite store lives: its port and its container.
#[derive(Clone)]
pub struct Azurite {
    pub port: u16,
    pub container: String,
}

impl TestStore {
    pub fn new() -> TestStore {
        TestStore {
            dir: tempfile::tempdir().expect("a temporary directory"),
            azurite: None,
            s3: None,
        }
    }

    /// A store in a fresh container of the Azurite on 127.0.0.1:10000
    /// (`scripts/azurite.sh start`). Without one: `None` and a note on
    /// standard error, or a failure when CI=true (CI must run these tests).
    pub fn azurite() -> Option<TestStore> {
        if !crate::azurite::answers(crate::azurite::PORT) {
            skip(
                "Azurite is not running on 127.0.0.1:10000 \
                 (start it with scripts/azurite.sh start): skipping this Azure test",
            );
            return None;
        }
        Some(TestStore::on_azurite(crate::azurite::PORT))
    }

    /// A store in a fresh container of the Azurite on `port`.
    pub fn on_azurite(port: u16) -> TestStore {
        let container = crate::azurite::create_container(port);
        TestStore {
            dir: tempfile::tempdir().expect("a temporary directory"),
            azurite: Some(Azurite { port, container }),
            s3: None,
        }
    }

    /// A store in a fresh bucket of the S3 server (moto) on 127.0.0.1:5000
    /// (`scripts/s3-server.sh start`). Without one: `None` and a note on
    /// standard error, or a failure when CI=true (CI must run these tests).
    pub fn s3() -> Option<TestStore> {
        if !crate::s3::answers(crate::s3::PORT) {
            crate::s3::missing(
                "the S3 server is not running on 127.0.0.1:5000 \
                                (start it with scripts/s3-server.sh start)",
            );
            return None;
        }
        let bucket = crate::s3::create_bucket(crate::s3::PORT);
        Some(TestStore {
            dir: tempfile::tempdir().expect("a temporary directory"),
            azurite: None,
            s3: Some(S3Bucket {
                port: crate::s3::PORT,
                bucket,
            }),
        })
    }

    pub fn s3_store(&self) -> Option<&S3Bucket> {
        self.s3.as_ref()
    }

    pub fn azurite_store(&self) -> Option<&Azurite> {
        self.azurite.as_ref()
    }

    /// The variables that point an etagstore at this store's Azurite.
    fn set_env(&self, cmd: &mut std::process::Command) {
        for (name, _) in std::env::vars_os() {
            let name_text = name.to_string_lossy();
            if name_text.starts_with("AZURE") || name_text.starts_with("AWS_") {
                cmd.env_remove(name);
            }
        }
        if let Some(s3) = &self.s3 {
            // moto takes any credentials; these are its documented dummies.
            cmd.env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", s3.port))
                .env("AWS_ALLOW_HTTP", "true")
                // Nothing from this machine's AWS files (object_store
                // reads none today; the AWS CLI and SDKs do).
                .env("AWS_CONFIG_FILE", "/dev/null")
                .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        }
        if let Some(azurite) = &self.azurite {
            cmd.env("AZURE_STORAGE_USE_EMULATOR", "true")
                .env("AZURE_STORAGE_ACCOUNT_NAME", crate::azurite::ACCOUNT)
                .env("AZURE_STORAGE_ACCOUNT_KEY", crate::azurite::KEY)
                .env(
                    "AZURITE_BLOB_STORAGE_URL",
                    format!("http://127.0.0.1:{}", azurite.port),
                );
        }
    }

    /// The temporary directory; the store is its `store` sub-directory.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The `--store` value: `<tempdir>/store`, `az://<container>` or
    /// `s3://<bucket>`.
    pub fn store(&self) -> PathBuf {
        if let Some(s3) = &self.s3 {
            return PathBuf::from(format!("s3://{}", s3.bucket));
        }
        match &self.azurite {
            Some(azurite) => PathBuf::from(format!("az://{}", azurite.container)),
            None => self.dir.path().join("store"),
        }
    }

    /// The path of the binary, for tests that spawn processes themselves.
    pub fn bin() -> &'static Path {
        assert_cmd::cargo::cargo_bin!("etagstore")
    }

    /// `etagstore --store <store>`, run in the temporary directory, with no
    /// `ETAGSTORE_*` variable from the environment.
    pub fn cmd(&self) -> Command {
        let mut cmd = self.cmd_without_store();
        cmd.arg("--store").arg(self.store());
        cmd
    }

    /// `etagstore` with no `--store`, run in the temporary directory, with no
    /// `ETAGSTORE_*` variable from the environment.
    pub fn cmd_without_store(&self) -> Command {
        let mut cmd = std::process::Command::new(Self::bin());
        cmd.current_dir(self.root());
        for name in etagstore_vars() {
            cmd.env_remove(name);
        }
        self.set_env(&mut cmd);
        Command::from_std(cmd)
    }

    /// The same as `cmd`, as a `std::process::Command` for tests that run
    /// several processes at once.
    pub fn process(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(Self::bin());
        cmd.current_dir(self.root())
            .arg("--store")
            .arg(self.store());
        for name in etagstore_vars() {
            cmd.env_remove(name);
        }
        self.set_env(&mut cmd);
        cmd
    }

    /// Writes `doc` under `key` with `set-unsafe`; returns its ETag.
    pub fn put(&self, key: &str, doc: impl AsRef<[u8]>) -> String {
        let doc = doc.as_ref();
        let out = self
            .cmd()
            .args(["set-unsafe", key])
            .write_stdin(doc)
            .assert()
            .success()
            .stdout(format!("{}\n", md5_hex(doc)))
            .stderr("")
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).unwrap().trim_end().to_string()
    }

    /// The document file of a plain key (one that needs no encoding).
    pub fn path(&self, key: &str) -> PathBuf {
        self.store().join(format!("{key}.json"))
    }

    /// The bytes of the document file for a plain key.
    pub fn file(&self, key: &str) -> Option<Vec<u8>> {
        fs::read(self.path(key)).ok()
    }

    /// The store's internal directory `.etagstore/<sub>`.
    pub fn internal(&self, sub: &str) -> PathBuf {
        self.store().join(".etagstore").join(sub)
    }

    /// The lock file of a plain key.
    pub fn lock_file(&self, key: &str) -> PathBuf {
        self.internal("locks").join(format!("{key}.lock"))
    }

    /// What is in `.etagstore/tmp` (nothing if it does not exist).
    pub fn temp_files(&self) -> Vec<PathBuf> {
        match fs::read_dir(self.internal("tmp")) {
            Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The names of the `*.json` files directly in the store, sorted.
    pub fn json_files(&self) -> Vec<String> {
        let mut names: Vec<String> = match fs::read_dir(self.store()) {
            Ok(entries) => entries
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|name| name.ends_with(".json"))
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    /// Every file and directory under the temporary directory, with each
    /// file's size and MD5: equal snapshots mean nothing was touched.
    pub fn snapshot(&self) -> Snapshot {
        let mut entries = BTreeMap::new();
        walk(self.root(), self.root(), &mut entries);
        Snapshot(entries)
    }

    /// Runs `during` while this process holds the key's writer lock, the way
    /// another `etagstore` writer would hold it (flock on the lock file).
    pub fn holding_lock<T>(&self, key: &str, during: impl FnOnce() -> T) -> T {
        let path = self.lock_file(key);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap();
        let mut lock = RwLock::new(file);
        let _guard = lock
            .try_write()
            .expect("the lock is free before the test takes it");
        during()
    }
}

fn etagstore_vars() -> Vec<std::ffi::OsString> {
    std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| name.to_string_lossy().starts_with("ETAGSTORE_"))
        .collect()
}

/// A listing of a directory tree: relative path -> "dir" or "<size> <md5>".
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot(BTreeMap<PathBuf, String>);

fn walk(root: &Path, dir: &Path, entries: &mut BTreeMap<PathBuf, String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let relative = path.strip_prefix(root).unwrap().to_path_buf();
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            entries.insert(relative, "dir".into());
            walk(root, &path, entries);
        } else {
            let bytes = fs::read(&path).unwrap();
            entries.insert(relative, format!("{} {}", bytes.len(), md5_hex(&bytes)));
        }
    }
}

/// The lower-case hex MD5 of `bytes`, as `md5sum` prints it.
pub fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `text` and a newline: how every ETag is printed.
pub fn line(text: &str) -> String {
    format!("{text}\n")
}

/// Standard error holds exactly one line, and it starts with `error: `.
pub fn one_error_line() -> impl Predicate<str> {
    predicate::function(|s: &str| {
        s.starts_with("error: ") && s.ends_with('\n') && s.lines().count() == 1
    })
}

/// True when the tests run as root, whom file permissions do not stop.
pub fn running_as_root() -> bool {
    let out = std::process::Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

impl Snapshot {
    /// The paths added, removed or changed since `before`, sorted.
    pub fn changed_since(&self, before: &Snapshot) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = self
            .0
            .iter()
            .filter(|(path, entry)| before.0.get(*path) != Some(*entry))
            .chain(
                before
                    .0
                    .iter()
                    .filter(|(path, _)| !self.0.contains_key(*path)),
            )
            .map(|(path, _)| path.clone())
            .collect();
        paths.sort();
        paths
    }
}

/// `chattr +i` on a directory until dropped: not even root can then create,
/// rename or remove entries in it. Drop it before the `TestStore`, or the
/// temporary directory cannot be removed.
pub struct Immutable(PathBuf);

impl Immutable {
    /// `None`, after `skip`, where `chattr` fails (not root, not a file
    /// system with the attribute).
    pub fn set(dir: &Path) -> Option<Immutable> {
        let out = std::process::Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Immutable(dir.to_path_buf())),
            other => {
                skip(&format!("chattr +i {} failed: {other:?}", dir.display()));
                None
            }
        }
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

/// Runs `cmd` to its end, killing it after 20 s: a safety net so that a
/// command that hangs (on a FIFO, say) fails its test instead of blocking
/// the suite. Not a timed assertion: a killed command shows as a signal.
pub fn run_or_kill(cmd: &mut std::process::Command) -> std::process::Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// One pause point of a writer (`test-hooks` builds): the writer announces
/// that it has reached the point, then waits until `release`.
#[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
pub struct Pause {
    point: &'static str,
    release: PathBuf,
}

#[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
impl Pause {
    /// A pause at `point` (`BEFORE_LOCK` or `LOCKED`), its files in `dir`.
    pub fn new(dir: &Path, point: &'static str) -> Pause {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Pause {
            point,
            release: dir.join(format!("pause-{point}-{}-{n}", std::process::id())),
        }
    }

    /// Makes `cmd` stop at this pause.
    pub fn arm(&self, cmd: &mut std::process::Command) {
        cmd.env(
            format!("ETAGSTORE_TEST_PAUSE_{}", self.point),
            &self.release,
        );
    }

    /// Waits until the writer is at the pause; panics with its output if it
    /// ended first.
    pub fn wait_for(&self, child: &mut std::process::Child) {
        let mut paused = self.release.clone().into_os_string();
        paused.push(".paused");
        while !Path::new(&paused).exists() {
            if child.try_wait().unwrap().is_some() {
                let mut err = String::new();
                if let Some(stderr) = child.stderr.as_mut() {
                    std::io::Read::read_to_string(stderr, &mut err).unwrap();
                }
                panic!("the writer ended before its {} pause: {err}", self.point);
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Lets the writer go on.
    pub fn release(&self) {
        fs::write(&self.release, "").unwrap();
    }
}

impl Drop for Pause {
    fn drop(&mut self) {
        let _ = fs::write(&self.release, "");
    }
}

/// One `etagstore` run and what it must do, in the style of just's `Test`
/// builder: standard output and standard error are expected to be empty and
/// the exit status 0 unless a test says otherwise. Start one with
/// `TestStore::run`; `check` runs it and asserts everything at once.
pub struct Run<'a> {
    env: &'a TestStore,
    cmd: Command,
    stdin: Option<Vec<u8>>,
    stdout: predicates::BoxPredicate<str>,
    stderr: predicates::BoxPredicate<str>,
    status: i32,
    unchanged: bool,
}

impl TestStore {
    /// `etagstore --store <store> <args>` (see `cmd`), to be checked with
    /// `Run`'s expectations.
    pub fn run<I, S>(&self, args: I) -> Run<'_>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self.cmd();
        cmd.args(args);
        Run::new(self, cmd)
    }

    /// The same as `run`, with no `--store` (see `cmd_without_store`).
    pub fn run_without_store<I, S>(&self, args: I) -> Run<'_>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self.cmd_without_store();
        cmd.args(args);
        Run::new(self, cmd)
    }
}

impl<'a> Run<'a> {
    fn new(env: &'a TestStore, cmd: Command) -> Run<'a> {
        Run {
            env,
            cmd,
            stdin: None,
            stdout: predicate::str::diff("").boxed(),
            stderr: predicate::str::diff("").boxed(),
            status: 0,
            unchanged: false,
        }
    }

    /// One more argument.
    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.arg(arg);
        self
    }

    /// More arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// An environment variable for this run.
    pub fn env(mut self, name: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(name, value);
        self
    }

    /// Standard input (empty and closed when not given).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Standard output is exactly `text`.
    pub fn stdout(mut self, text: impl AsRef<str>) -> Self {
        self.stdout = predicate::str::diff(text.as_ref().to_string()).boxed();
        self
    }

    /// Standard error satisfies `check`.
    pub fn stderr_matches(mut self, check: impl Predicate<str> + Send + Sync + 'static) -> Self {
        self.stderr = check.boxed();
        self
    }

    /// Standard error is one `error: ` line (see `one_error_line`).
    pub fn error_line(self) -> Self {
        self.stderr_matches(one_error_line())
    }

    /// Standard error is one `error: ` line that contains every one of
    /// `parts`.
    pub fn error<S: AsRef<str>, const N: usize>(self, parts: [S; N]) -> Self {
        let parts: Vec<String> = parts.iter().map(|p| p.as_ref().to_string()).collect();
        self.stderr_matches(one_error_line().and(predicate::function(move |s: &str| {
            parts.iter().all(|part| s.contains(part.as_str()))
        })))
    }

    /// The exit status.
    pub fn status(mut self, code: i32) -> Self {
        self.status = code;
        self
    }

    /// Nothing under the temporary directory changes during the run (a
    /// snapshot before and after: see `TestStore::snapshot`).
    pub fn unchanged(mut self) -> Self {
        self.unchanged = true;
        self
    }

    /// Runs the command, asserts every expectation, and returns its output
    /// for any further check.
    pub fn check(mut self) -> std::process::Output {
        let before = self.unchanged.then(|| self.env.snapshot());
        self.cmd.write_stdin(self.stdin.take().unwrap_or_default());
        let output = self
            .cmd
            .assert()
            .code(self.status)
            .stdout(self.stdout)
            .stderr(self.stderr)
            .get_output()
            .clone();
        if let Some(before) = before {
            assert_eq!(
                self.env.snapshot().changed_since(&before),
                Vec::<PathBuf>::new(),
                "the run changed files"
            );
        }
        output
    }
}

/// Starts one `etagstore <args>` per document in `docs`, all of them at
/// once and each waiting on its standard input, then gives each its
/// document and returns their outputs in the same order: writers racing
/// for one key.
///
/// Their stdout and stderr go to files, not pipes: on a loaded machine
/// `wait_with_output`'s pipe reading once failed with EAGAIN, a fault of
/// the harness that no writer caused.
pub fn race(env: &TestStore, args: &[&str], docs: &[String]) -> Vec<std::process::Output> {
    use std::io::Write;
    use std::process::Stdio;
    let outputs = tempfile::tempdir_in(env.root()).unwrap();
    let file = |i: usize, name: &str| outputs.path().join(format!("{i}.{name}"));
    let mut children: Vec<std::process::Child> = (0..docs.len())
        .map(|i| {
            env.process()
                .args(args)
                .stdin(Stdio::piped())
                .stdout(fs::File::create(file(i, "out")).unwrap())
                .stderr(fs::File::create(file(i, "err")).unwrap())
                .spawn()
                .unwrap()
        })
        .collect();
    // Every writer is running and blocked on its standard input before any
    // of them gets its document, so they start together.
    let mut stdins: Vec<_> = children
        .iter_mut()
        .map(|c| c.stdin.take().unwrap())
        .collect();
    for (stdin, doc) in stdins.iter_mut().zip(docs) {
        stdin.write_all(doc.as_bytes()).unwrap();
    }
    drop(stdins);
    children
        .iter_mut()
        .enumerate()
        .map(|(i, child)| std::process::Output {
            status: child.wait().unwrap(),
            stdout: fs::read(file(i, "out")).unwrap(),
            stderr: fs::read(file(i, "err")).unwrap(),
        })
        .collect()
}

/// Whether a test whose environment is missing may go on: `true` when
/// `available`; otherwise it prints `SKIPPED: <reason>` and returns
/// `false` — or panics, when the environment is required: under
/// `ETAGSTORE_REQUIRE_ALL=1` or `CI=true` (CI runs as root, with loop
/// devices, Azurite and the Python SDK, so nothing may skip there), or when
/// one of `switches` (such as `ETAGSTORE_REQUIRE_POWERCUT`) is set.
pub fn require(available: bool, reason: &str) -> bool {
    require_with(available, reason, &[])
}

/// `require`, also made strict by any of the variables `switches`.
pub fn require_with(available: bool, reason: &str, switches: &[&str]) -> bool {
    if available {
        return true;
    }
    let strict = std::env::var("ETAGSTORE_REQUIRE_ALL").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|ci| ci == "true")
        || switches.iter().any(|name| std::env::var_os(name).is_some());
    if strict {
        panic!("{reason}; the environment is required (ETAGSTORE_REQUIRE_ALL=1 or CI=true), so this test fails instead of skipping");
    }
    eprintln!("SKIPPED: {reason}");
    false
}

/// `require(false, reason)`: the test cannot run here.
pub fn skip(reason: &str) {
    require(false, reason);
}

#[test]
fn require_goes_on_when_the_environment_is_there() {
    assert!(require(true, "never printed"));
}

#[test]
#[should_panic(expected = "the environment is required")]
fn require_fails_instead_of_skipping_when_a_switch_is_set() {
    // PATH is always set: it stands for ETAGSTORE_REQUIRE_POWERCUT and the like.
    require_with(false, "a missing tool", &["PATH"]);
}

#[test]
#[should_panic(expected = "Unexpected stdout")]
fn a_run_expects_empty_output_unless_told_otherwise() {
    let env = TestStore::new();
    env.put("k", "1");
    env.run(["get", "k"]).check();
}

#[test]
#[should_panic(expected = "the run changed files")]
fn an_unchanged_run_fails_when_a_file_changes() {
    let env = TestStore::new();
    env.put("k", "1");
    env.run(["set-unsafe", "k", "2"])
        .stdout(line(&md5_hex(b"2")))
        .unchanged()
        .check();
}
