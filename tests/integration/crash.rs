//! Writers killed with SIGKILL at random instants: reading their input,
//! fsyncing the temporary file, taking or holding the lock, hashing the
//! current document, renaming, fsyncing the directory. After every kill the
//! key holds the old document or the new one, complete, with its ETag; no
//! lock is held; no stray entry appears. And the policy for the temporary
//! files such kills orphan: a later successful write (about one in 16)
//! removes those older than ten minutes whose process is gone, and only those.
//!
//! Each test measures one write of its command, and its rounds take four
//! kinds of kill in turn: after a random delay from 0 to 1.25 times that
//! (anywhere in the write, or a little after it); in its last stretch (0.75
//! to 1.25: fsync, lock, hash, rename, directory fsync); once the writer is
//! seen holding the key's lock (at once, or a random moment later); and the
//! instant the document file changes (a random instant would rarely land in
//! a window of microseconds: a non-atomic replacement, a copy or a
//! truncation, is caught only here). A write that ends before its kill, or
//! is still running when killed later than one write takes, updates the
//! measurement, so the delays follow the machine's changing load. Documents
//! are 20 and 22 MiB so that a write lasts long enough to be killed in the
//! middle. The seed is printed (`--nocapture`; so is each round's kill and
//! outcome); `ETAGSTORE_TEST_CRASH_SEED=N` replays a run and
//! `ETAGSTORE_TEST_CRASH_ROUNDS=N` runs N rounds per command (a soak run).
//! Nothing here asserts how long anything takes.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fd_lock::RwLock;
use predicates::Predicate;

use crate::common::{line, md5_hex, one_error_line, TestStore};

const KEY: &str = "k";

/// A document the test wrote to a file: its bytes, ETag and where it is.
#[derive(Clone)]
struct Doc {
    name: String,
    bytes: Arc<[u8]>,
    etag: String,
    file: PathBuf,
}

/// A document made in memory: its name, bytes and ETag.
type Made = (String, Arc<[u8]>, String);

/// Two large documents that differ in size and in every line, so that no
/// mix of the two (or a truncated one) can pass for either. Made and hashed
/// once for all the tests.
fn big_docs() -> &'static [Made; 2] {
    static DOCS: OnceLock<[Made; 2]> = OnceLock::new();
    DOCS.get_or_init(|| {
        let make = |tag: char, mib: usize| {
            let mut doc = format!("{{\"doc\": \"{tag}\", \"lines\": [\n");
            let mut i = 0u64;
            while doc.len() < mib << 20 {
                writeln!(
                    doc,
                    "  \"{tag}{i:010} the quick brown fox jumps over the lazy dog\","
                )
                .unwrap();
                i += 1;
            }
            writeln!(doc, "  \"{tag} end\"\n]}}").unwrap();
            let etag = md5_hex(doc.as_bytes());
            (
                format!("{tag} ({mib} MiB)"),
                Arc::from(doc.into_bytes()),
                etag,
            )
        };
        [make('A', 20), make('B', 22)]
    })
}

/// xorshift64*: enough randomness for kill instants, and replayable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How a killed round ended.
#[derive(Default)]
struct Tally {
    /// Each round's delay, as a fraction of the measured write, and outcome.
    log: String,
    killed_old: usize,
    killed_new: usize,
    finished: usize,
}

/// When a writer is killed.
enum Trigger {
    /// This long after it starts.
    After(Duration),
    /// This long after it is seen holding the key's lock.
    LockHeld(Duration),
    /// As soon as the document file is replaced, changed or removed.
    DocumentChanges,
}

/// How often a trigger is checked.
const POLL: Duration = Duration::from_micros(200);

/// What tells one version of a file from another: inode, size, time.
type FileState = (u64, u64, i64, i64);

fn file_state(path: &Path) -> Option<FileState> {
    let meta = fs::symlink_metadata(path).ok()?;
    Some((meta.ino(), meta.size(), meta.mtime(), meta.mtime_nsec()))
}

/// One test's store, documents, random source and tally.
struct Crash {
    env: TestStore,
    command: &'static str,
    seed: u64,
    rng: Rng,
    big: [Doc; 2],
    /// How long one write of the command takes: measured, then updated.
    one_write: Duration,
    tally: Tally,
}

impl Crash {
    fn new(command: &'static str) -> Crash {
        let env = TestStore::new();
        let big = big_docs().clone().map(|(name, bytes, etag)| {
            let file = env.root().join(format!("{}.json", &name[..1]));
            fs::write(&file, &bytes).unwrap();
            Doc {
                name,
                bytes,
                etag,
                file,
            }
        });
        let seed = match std::env::var("ETAGSTORE_TEST_CRASH_SEED") {
            Ok(seed) => seed.parse().expect("ETAGSTORE_TEST_CRASH_SEED is a number"),
            Err(_) => {
                let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
                nanos.as_nanos() as u64 ^ u64::from(std::process::id()) << 32
            }
        };
        // Each test draws its own sequence from the one seed.
        let salt = command
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31) + u64::from(b));
        let mut rng = Rng((seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
        rng.next();
        eprintln!("crash {command}: seed {seed}");
        Crash {
            env,
            command,
            seed,
            rng,
            big,
            one_write: Duration::ZERO,
            tally: Tally::default(),
        }
    }

    /// The number of kills for this test: `default`, unless a soak run asks.
    fn rounds(&self, default: usize) -> usize {
        std::env::var("ETAGSTORE_TEST_CRASH_ROUNDS")
            .map(|n| n.parse().expect("ETAGSTORE_TEST_CRASH_ROUNDS is a number"))
            .unwrap_or(default)
    }

    /// A small document in a file of its own.
    fn small(&self, round: usize) -> Doc {
        let text = format!(
            "{{\"command\": \"{}\", \"round\": {round}}}\n",
            self.command
        );
        let file = self.env.root().join(format!("small-{round}.json"));
        fs::write(&file, &text).unwrap();
        Doc {
            name: format!("small {round}"),
            etag: md5_hex(text.as_bytes()),
            bytes: Arc::from(text.into_bytes()),
            file,
        }
    }

    /// The large document that is not `doc` (A when `doc` is neither).
    fn other_big(&self, doc: &Doc) -> Doc {
        let index = usize::from(self.big[0].bytes == doc.bytes);
        self.big[index].clone()
    }

    fn run(&self, args: &[OsString]) -> Output {
        self.env
            .process()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs a write that must succeed and print `doc`'s ETag.
    fn write(&self, args: &[OsString], doc: &Doc) {
        let output = self.run(args);
        assert_eq!(
            (output.status.code(), text(&output.stderr)),
            (Some(0), ""),
            "{args:?}"
        );
        assert_eq!(text(&output.stdout), line(&doc.etag), "{args:?}");
    }

    /// Runs a write like `write`, and keeps how long it took: the kill
    /// delays are fractions of that.
    fn measure(&mut self, args: &[OsString], doc: &Doc) {
        let start = Instant::now();
        self.write(args, doc);
        self.one_write = start.elapsed();
    }

    /// After a kill, the next conditional write on the current ETag
    /// succeeds: exit 5 here means the killed writer left the key locked
    /// (`--lock-timeout 2` turns a stale lock into a failure, not a hang);
    /// exit 3 means `get` and the store disagree about the current document.
    fn write_next(&self, current: Option<&Doc>, next: &Doc) {
        let etag = current.map_or("", |doc| &doc.etag);
        self.write(
            &args(&[
                "--lock-timeout".as_ref(),
                "2".as_ref(),
                "set".as_ref(),
                KEY.as_ref(),
                "-f".as_ref(),
                next.file.as_os_str(),
                "--etag".as_ref(),
                etag.as_ref(),
            ]),
            next,
        );
    }

    /// When to kill the writer in `round`. The modes take turns, so each
    /// gets a quarter of the rounds.
    fn trigger(&mut self, round: usize) -> Trigger {
        let write = self.one_write;
        match round % 4 {
            // At once, in round 0: at least one kill lands before the write
            // gets far. Then anywhere in the write, or a little after it.
            0 if round == 0 => Trigger::After(Duration::ZERO),
            0 => Trigger::After(write.mul_f64(1.25 * self.rng.unit())),
            // Its last stretch: fsync, lock, hash, rename, directory fsync.
            1 => Trigger::After(write.mul_f64(0.75 + 0.5 * self.rng.unit())),
            // While it holds the key's lock: checking, renaming, fsyncing.
            // Half the time at once: set-unsafe holds it for milliseconds.
            2 if self.rng.unit() < 0.5 => Trigger::LockHeld(Duration::ZERO),
            2 => Trigger::LockHeld(write.mul_f64(0.25 * self.rng.unit())),
            // The instant the document changes (see the top of the file).
            _ => Trigger::DocumentChanges,
        }
    }

    /// Starts the write `args` (standard input from `stdin` if given), kills
    /// it when this round's trigger fires, and checks what it left: `old` or
    /// `new` (`None` = no document). Returns the document the key now holds.
    fn kill(
        &mut self,
        round: usize,
        args: &[OsString],
        stdin: Option<&Path>,
        old: Option<&Doc>,
        new: Option<&Doc>,
    ) -> Option<Doc> {
        let context = format!(
            "crash {} seed {} round {round}: {args:?} from {} to {}",
            self.command,
            self.seed,
            name(old),
            name(new)
        );
        let out = self.env.root().join("writer.out");
        let err = self.env.root().join("writer.err");
        let trigger = self.trigger(round);
        let mut lock = RwLock::new(File::open(self.env.lock_file(KEY)).unwrap());
        let document = self.env.path(KEY);
        let before = file_state(&document);
        let mut child = self
            .env
            .process()
            .args(args)
            .stdin(match stdin {
                Some(path) => Stdio::from(File::open(path).unwrap()),
                None => Stdio::null(),
            })
            // Files, not pipes: an `edit` command's child keeps the
            // writer's standard error open after the writer is killed.
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let (status, label) = self.kill_on(&mut child, &trigger, &mut lock, &document, before);
        let pid = child.id();

        let finished = outcome(&status, &out, &err, new, &context);
        let left = self.check_store(old, new, finished, &context);
        let what = match (finished, left.as_ref() == new) {
            (true, _) => {
                self.tally.finished += 1;
                "finished"
            }
            (false, true) => {
                self.tally.killed_new += 1;
                "killed, new"
            }
            (false, false) => {
                self.tally.killed_old += 1;
                "killed, old"
            }
        };
        write!(self.tally.log, " {label}:{what}").unwrap();
        if let Trigger::After(delay) = trigger {
            if !finished && left.as_ref() == old && delay > self.one_write {
                // Killed later than one write takes, and still unfinished:
                // writes take longer now.
                self.one_write = delay;
            }
        }
        // Only a killed writer may leave its temporary file: one that finished
        // (or the reads above) leaving one is a leak. They are removed here
        // to keep the disk use of fifty kills small; `orphaned_temporary_…`
        // tests what the store itself does with them.
        for temp in self.env.temp_files() {
            let name = temp.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                !finished && name.starts_with(&format!("{pid}-")),
                "{context}: temporary file {name} left behind"
            );
            fs::remove_file(&temp).unwrap();
        }
        left
    }

    /// Waits for `trigger`, polling, then kills `child`; returns how it
    /// ended and a label for the log. A write that ends first tells how long
    /// a write takes now, on a machine whose load changes.
    fn kill_on(
        &mut self,
        child: &mut Child,
        trigger: &Trigger,
        lock: &mut RwLock<File>,
        document: &Path,
        before: Option<FileState>,
    ) -> (ExitStatus, String) {
        let label = self.label(trigger);
        let start = Instant::now();
        let mut kill_at = match trigger {
            Trigger::After(delay) => Some(start + *delay),
            _ => None,
        };
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.one_write = (self.one_write + start.elapsed()) / 2;
                return (status, label);
            }
            let now = Instant::now();
            let fire = match (kill_at, trigger) {
                (Some(at), _) => now >= at,
                (None, Trigger::LockHeld(extra)) => {
                    // Taking the lock for an instant is how to see it held;
                    // the writer, if it tries just then, retries.
                    let held =
                        matches!(lock.try_write(), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
                    if held {
                        kill_at = Some(now + *extra);
                    }
                    extra.is_zero() && kill_at.is_some()
                }
                (None, _) => file_state(document) != before,
            };
            if fire {
                child.kill().unwrap();
                return (child.wait().unwrap(), label);
            }
            let pause = kill_at.map_or(POLL, |at| at.saturating_duration_since(now).min(POLL));
            thread::sleep(pause);
        }
    }

    fn label(&self, trigger: &Trigger) -> String {
        let fraction = |delay: &Duration| delay.as_secs_f64() / self.one_write.as_secs_f64();
        match trigger {
            Trigger::After(delay) => format!("{:.2}", fraction(delay)),
            Trigger::LockHeld(extra) => format!("lock+{:.2}", fraction(extra)),
            Trigger::DocumentChanges => "change".into(),
        }
    }

    /// `get -o` prints an ETag and writes whole `old` or whole `new` (a torn
    /// or mixed document matches neither), and the ETag is the MD5 of those
    /// very bytes; exit 4 only if one of them is "no document". Once the
    /// writer has exited 0, only `new` will do (the write was acknowledged).
    /// `list` shows the key and nothing else: a temporary file renamed to the
    /// wrong name, or left in the store directory, would show up here. And
    /// the key's lock is free: this process can take it at once.
    fn check_store(
        &self,
        old: Option<&Doc>,
        new: Option<&Doc>,
        acknowledged: bool,
        context: &str,
    ) -> Option<Doc> {
        let got = self.env.root().join("got.json");
        let _ = fs::remove_file(&got);
        let output = self.run(&args(&[
            "get".as_ref(),
            KEY.as_ref(),
            "-o".as_ref(),
            got.as_os_str(),
        ]));
        let candidates: Vec<Option<&Doc>> = if acknowledged {
            vec![new]
        } else {
            vec![old, new]
        };
        let left = match output.status.code() {
            Some(0) => {
                let bytes = fs::read(&got).unwrap();
                let doc = candidates
                    .iter()
                    .flatten()
                    .find(|doc| *doc.bytes == *bytes)
                    .unwrap_or_else(|| {
                        panic!(
                            "{context}: get returned {} bytes (MD5 {}), not {}",
                            bytes.len(),
                            md5_hex(&bytes),
                            candidates
                                .iter()
                                .map(|doc| name(*doc))
                                .collect::<Vec<_>>()
                                .join(" or ")
                        )
                    });
                assert_eq!(
                    text(&output.stdout),
                    line(&doc.etag),
                    "{context}: get's ETag"
                );
                Some((*doc).clone())
            }
            Some(4) => {
                assert!(
                    candidates.contains(&None),
                    "{context}: the document is gone"
                );
                assert_eq!(text(&output.stdout), "", "{context}: get");
                assert!(
                    one_error_line().eval(text(&output.stderr)),
                    "{context}: get"
                );
                None
            }
            _ => panic!("{context}: get: {output:?}"),
        };

        let listing = self.run(&args(&["list".as_ref()]));
        let (expected_list, expected_files) = match left {
            Some(_) => (line(KEY), vec![format!("{KEY}.json")]),
            None => (String::new(), vec![]),
        };
        assert_eq!(
            (
                listing.status.code(),
                text(&listing.stdout),
                text(&listing.stderr)
            ),
            (Some(0), expected_list.as_str(), ""),
            "{context}: list"
        );
        assert_eq!(
            self.env.json_files(),
            expected_files,
            "{context}: store directory"
        );
        // Panics if the lock is held: the kernel must have released the
        // killed writer's flock, and no child process may have inherited it.
        self.env.holding_lock(KEY, || ());
        left
    }

    /// Prints the tally and checks that the kills did land mid-write.
    fn finish(self) {
        let Tally {
            log,
            killed_old,
            killed_new,
            finished,
        } = self.tally;
        eprintln!(
            "crash {}: seed {}, one write {:?}, {} rounds: killed {} times ({killed_old} left \
             the old document, {killed_new} the new one), {finished} finished before the \
             kill; delay:outcome{log}",
            self.command,
            self.seed,
            self.one_write,
            killed_old + killed_new + finished,
            killed_old + killed_new
        );
        // Round 0 kills at once; if even that write was not killed, no kill
        // reached a writer and the test proved nothing.
        assert!(killed_old + killed_new > 0, "no writer was killed");
    }
}

impl PartialEq for Doc {
    fn eq(&self, other: &Doc) -> bool {
        self.bytes == other.bytes
    }
}

/// Whether the writer exited 0 before the kill (then it printed the new
/// ETag, or nothing for `delete`); otherwise SIGKILL must be what ended it:
/// a writer that failed on its own, unprovoked, is a bug.
fn outcome(status: &ExitStatus, out: &Path, err: &Path, new: Option<&Doc>, context: &str) -> bool {
    let stdout = fs::read_to_string(out).unwrap();
    let stderr = fs::read_to_string(err).unwrap();
    if status.success() {
        let printed = new.map_or(String::new(), |doc| line(&doc.etag));
        assert_eq!(
            (stdout.as_str(), stderr.as_str()),
            (printed.as_str(), ""),
            "{context}"
        );
        true
    } else {
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "{context}: the writer failed on its own: {status}, stderr: {stderr}"
        );
        false
    }
}

fn name(doc: Option<&Doc>) -> String {
    doc.map_or("no document".into(), |doc| doc.name.clone())
}

fn args(args: &[&std::ffi::OsStr]) -> Vec<OsString> {
    args.iter().map(|arg| arg.to_os_string()).collect()
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

/// `command KEY` with `doc` from `-f FILE` in even rounds and from standard
/// input in odd ones (the same file, returned to be given as stdin).
fn input_args<'a>(command: &str, doc: &'a Doc, round: usize) -> (Vec<OsString>, Option<&'a Path>) {
    let mut args = args(&[command.as_ref(), KEY.as_ref()]);
    if round.is_multiple_of(2) {
        args.extend(["-f".into(), doc.file.clone().into_os_string()]);
        (args, None)
    } else {
        (args, Some(&doc.file))
    }
}

#[test]
fn a_killed_set_leaves_the_old_or_the_new_document_and_no_lock() {
    let mut crash = Crash::new("set");
    let [a, b] = crash.big.clone();
    crash.write(&input_args("set-unsafe", &a, 0).0, &a);
    // Always over a large document, so that the lock is held while the
    // current document is hashed: many kills land inside the lock.
    let set = |new: &Doc, current: &Doc, round: usize| {
        let (mut args, stdin) = input_args("set", new, round);
        args.extend(["--etag".into(), current.etag.clone().into()]);
        (args, stdin.map(Path::to_path_buf))
    };
    crash.measure(&set(&b, &a, 0).0, &b);
    let mut current = b;
    for round in 0..crash.rounds(12) {
        let new = crash.other_big(&current);
        let (args, stdin) = set(&new, &current, round);
        let left = crash.kill(round, &args, stdin.as_deref(), Some(&current), Some(&new));
        let left = left.expect("set never removes a document");
        let next = crash.other_big(&left);
        crash.write_next(Some(&left), &next);
        current = next;
    }
    crash.finish();
}

#[test]
fn a_killed_set_unsafe_leaves_the_old_or_the_new_document_and_no_lock() {
    let mut crash = Crash::new("set-unsafe");
    let mut current = crash.small(0);
    crash.write(&input_args("set-unsafe", &current, 0).0, &current);
    let a = crash.big[0].clone();
    crash.measure(&input_args("set-unsafe", &a, 0).0, &a);
    current = a;
    for round in 0..crash.rounds(14) {
        let new = crash.other_big(&current);
        let (args, stdin) = input_args("set-unsafe", &new, round);
        let left = crash.kill(round, &args, stdin, Some(&current), Some(&new));
        // set-unsafe takes the lock only to rename, whatever it replaces, so
        // a small document will do next (and saves a large write a round).
        let next = crash.small(round + 1);
        crash.write_next(left.as_ref(), &next);
        current = next;
    }
    crash.finish();
}

#[test]
fn a_killed_edit_leaves_the_old_or_the_new_document_and_no_lock() {
    let mut crash = Crash::new("edit");
    let small = crash.small(0);
    crash.write(&input_args("set-unsafe", &small, 0).0, &small);
    // The command's output is the new document (`cat` ignores its input).
    // Not `--jq`: jq on 20 MiB takes seconds in a debug build; the write
    // that follows is the same.
    let edit = |new: &Doc| {
        args(&[
            "edit".as_ref(),
            KEY.as_ref(),
            "--".as_ref(),
            "cat".as_ref(),
            new.file.as_os_str(),
        ])
    };
    let a = crash.big[0].clone();
    crash.measure(&edit(&a), &a);
    // Rounds edit a small document into a large one, as measured.
    crash.write_next(Some(&a), &small);
    let mut current = small;
    for round in 0..crash.rounds(12) {
        let new = crash.big[round % 2].clone();
        let left = crash.kill(round, &edit(&new), None, Some(&current), Some(&new));
        let next = crash.small(round + 1);
        crash.write_next(left.as_ref(), &next);
        current = next;
    }
    crash.finish();
}

#[test]
fn a_killed_delete_leaves_the_document_or_none_and_no_lock() {
    let mut crash = Crash::new("delete");
    let [a, b] = crash.big.clone();
    let delete = |current: &Doc| {
        args(&[
            "delete".as_ref(),
            KEY.as_ref(),
            "--etag".as_ref(),
            current.etag.as_ref(),
        ])
    };
    crash.write(&input_args("set-unsafe", &a, 0).0, &a);
    // A delete prints nothing, so it is measured here rather than with
    // `measure`. It hashes the large document under the lock: most kills
    // land while the lock is held.
    let start = Instant::now();
    let output = crash.run(&delete(&a));
    crash.one_write = start.elapsed();
    assert_eq!(
        (
            output.status.code(),
            text(&output.stdout),
            text(&output.stderr)
        ),
        (Some(0), "", ""),
    );
    crash.write_next(None, &b);
    let mut current = b;
    for round in 0..crash.rounds(12) {
        let left = crash.kill(round, &delete(&current), None, Some(&current), None);
        let next = left
            .as_ref()
            .map_or(a.clone(), |left| crash.other_big(left));
        crash.write_next(left.as_ref(), &next);
        current = next;
    }
    crash.finish();
}

/// A temporary file in the store's `tmp` directory named after `pid`,
/// modified `age` ago.
fn temp_file(env: &TestStore, pid: u32, age: Duration) -> PathBuf {
    let path = env.internal("tmp").join(format!("{pid}-000000000-0.json"));
    fs::write(&path, "{\"orphan\": true}").unwrap();
    set_age(&path, age);
    path
}

fn set_age(path: &Path, age: Duration) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - age)
        .unwrap();
}

#[test]
fn orphaned_temporary_files_go_within_a_few_writes_once_old_and_their_writer_gone() {
    let env = TestStore::new();
    let etag = env.put(KEY, "{\"v\": 1}");

    // A real orphan: a writer killed while it streams its input. Once the
    // pipe has taken 1 MiB, the writer has read most of it, so it has
    // created its temporary file (before reading anything).
    let mut writer = env
        .process()
        .args(["set-unsafe", KEY])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = writer.stdin.take().unwrap();
    stdin.write_all(b"{\"pad\": \"").unwrap();
    stdin.write_all(&vec![b'x'; 1 << 20]).unwrap();
    writer.kill().unwrap();
    writer.wait().unwrap();
    drop(stdin);
    let prefix = format!("{}-", writer.id());
    let killed: Vec<PathBuf> = env
        .temp_files()
        .into_iter()
        .filter(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&prefix)
        })
        .collect();
    assert_eq!(
        killed.len(),
        1,
        "the killed writer's temporary file: {:?}",
        env.temp_files()
    );
    set_age(&killed[0], Duration::from_secs(20 * 60));

    // Pid 999999999 and its neighbours are above any pid_max: never running.
    let old_dead = temp_file(&env, 999_999_999, Duration::from_secs(20 * 60));
    let fresh_dead = temp_file(&env, 999_999_998, Duration::ZERO);
    let young_dead = temp_file(&env, 999_999_997, Duration::from_secs(5 * 60));
    // This test's own process: alive, however old its file (a writer that
    // waits on a long --lock-timeout keeps its temporary file).
    let old_alive = temp_file(&env, std::process::id(), Duration::from_secs(20 * 60));

    // The kill changed nothing: the document is the old one, no stray key.
    env.cmd()
        .args(["get", KEY])
        .assert()
        .success()
        .stdout("{\"v\": 1}")
        .stderr("");
    env.cmd()
        .arg("list")
        .assert()
        .success()
        .stdout(line(KEY))
        .stderr("");

    // About one successful write in 16 sweeps (docs/contract.md): within
    // 600 writes (a chance of (15/16)^600, about 1e-17, of no sweep) the
    // files both older than ten minutes and named after a process that is
    // gone are removed, and only those.
    let mut etag = etag;
    for n in 0.. {
        assert!(n < 600, "no write swept the stale temporary files");
        let doc = format!("{{\"v\": {}}}", n + 2);
        env.cmd()
            .args(["set", KEY, &doc, "--etag", &etag])
            .assert()
            .success()
            .stdout(line(&md5_hex(doc.as_bytes())))
            .stderr("");
        etag = md5_hex(doc.as_bytes());
        if !killed[0].exists() || !old_dead.exists() {
            break;
        }
    }
    let mut left = env.temp_files();
    left.sort();
    let mut kept = vec![fresh_dead, young_dead, old_alive];
    kept.sort();
    // Catches: no cleanup at all (the first two would remain), a cleanup that
    // ignores the age (the fresh and five-minute ones would go) or the pid
    // (this process's file would go).
    assert_eq!(left, kept, "removed: {:?} and {:?}", killed[0], old_dead);
    env.cmd()
        .arg("list")
        .assert()
        .success()
        .stdout(line(KEY))
        .stderr("");
}
