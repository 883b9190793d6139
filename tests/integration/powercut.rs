//! Power cuts: a store on a loop-mounted ext4 image takes acknowledged
//! writes, then the file system is shut down without flushing its journal
//! (`FS_IOC_GOINGDOWN` with `NOLOGFLUSH`: the disk keeps what a power cut
//! would leave), remounted and checked: the last write of every key that
//! exited 0 is there, whole, with its ETag. The same harness with fsync
//! switched off (`ETAGSTORE_SKIP_FSYNC`, `test-hooks` builds only) must lose
//! writes, or it could not tell a durable store from a lucky one.
//!
//! Needs root, a loop device and `mkfs.ext4`; elsewhere it prints
//! `SKIPPED: …` and passes (`ETAGSTORE_REQUIRE_POWERCUT=1`, like
//! `ETAGSTORE_REQUIRE_ALL=1` or `CI=true`, makes that a failure). `ETAGSTORE_POWERCUT_ROUNDS` sets the number of rounds (default
//! 24, for a longer soak) and `ETAGSTORE_POWERCUT_SEED` the random choice of
//! writes (the instant of a cut among running writers still varies).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

use crate::common::{md5_hex, require_with, running_as_root, TestStore};

/// `_IOR('X', 125, __u32)`: shut the file system down.
const FS_IOC_GOINGDOWN: u32 = 0x8004_587D;
/// Shut down without flushing the journal: what is not committed is lost.
const FS_GOING_FLAGS_NOLOGFLUSH: u32 = 2;
const IMAGE_SIZE: u64 = 1 << 30;
const DEFAULT_ROUNDS: usize = 24;
/// Writers running at once in the rounds that cut while writing.
const WRITERS: usize = 4;
/// Keys written in every round, in the store that lives across rounds.
const LASTING_KEYS: usize = 8;
/// Document padding sizes: empty to 1 MiB.
const SIZES: [usize; 5] = [0, 300, 4 << 10, 64 << 10, 1 << 20];

#[test]
fn every_acknowledged_write_survives_a_power_cut() {
    let Some(report) = power_cuts(false) else {
        return;
    };
    eprintln!("{report}");
    assert_eq!(
        report.lost(),
        0,
        "acknowledged writes were lost:\n{}",
        report.losses.join("\n")
    );
}

#[cfg(feature = "test-hooks")]
#[test]
fn without_fsync_the_same_power_cuts_lose_acknowledged_writes() {
    let Some(report) = power_cuts(true) else {
        return;
    };
    eprintln!("{report}");
    for loss in report.losses.iter().take(5) {
        eprintln!("  control lost: {loss}");
    }
    assert!(
        report.lost() > 0,
        "the control lost nothing, so the harness cannot tell a durable write from a lucky one"
    );
}

#[cfg(not(feature = "test-hooks"))]
#[test]
fn the_control_without_fsync_needs_the_test_hooks_feature() {
    require_with(
        false,
        "the power-cut control needs `--features test-hooks`",
        &["ETAGSTORE_REQUIRE_POWERCUT"],
    );
}

/// Runs every round; `None` (after saying why) where the test cannot run.
fn power_cuts(skip_fsync: bool) -> Option<Report> {
    let label = if skip_fsync {
        "control, fsync skipped"
    } else {
        "fsync on"
    };
    let rounds = env_number("ETAGSTORE_POWERCUT_ROUNDS").map_or(DEFAULT_ROUNDS, |n| n as usize);
    let seed = env_number("ETAGSTORE_POWERCUT_SEED").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    // Sparse: room for every round's documents and orphaned temporary files
    // costs nothing until it is written.
    let size = IMAGE_SIZE.max(rounds as u64 * (8 << 20));
    let image = if running_as_root() {
        Image::new(size)
    } else {
        Err("not running as root".into())
    };
    let mut image = match image {
        Ok(image) => image,
        Err(reason) => {
            require_with(
                false,
                &format!("power cuts ({label}): {reason}"),
                &["ETAGSTORE_REQUIRE_POWERCUT"],
            );
            return None;
        }
    };
    let started = Instant::now();
    let mut harness = Harness::new(image.mnt.clone(), skip_fsync, seed);
    harness.report.label = label;
    // Lasting keys start on disk for sure, so a lost overwrite shows as the
    // old version coming back, not only as a missing file.
    harness.create_lasting_keys();
    image.sync();
    for round in 0..rounds {
        harness.add_round_keys(round);
        let attempts = if round.is_multiple_of(2) {
            harness.report.cut_after_ack += 1;
            let attempts = harness.write_then_stop();
            image.cut_power();
            attempts
        } else {
            harness.report.cut_while_writing += 1;
            harness.write_while_cutting(&image)
        };
        image.unmount();
        image.mount().expect("the image mounts again after the cut");
        harness.check(round, &attempts);
    }
    harness.report.rounds = rounds;
    harness.report.elapsed = started.elapsed();
    Some(harness.report)
}

/// A sparse ext4 image mounted on a loop device; unmounted and detached when
/// dropped, panic or not.
struct Image {
    image: PathBuf,
    mnt: PathBuf,
    mounted: bool,
    // Last: removed after `drop` has unmounted.
    _dir: TempDir,
}

impl Image {
    fn new(size: u64) -> Result<Image, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
        let image = dir.path().join("ext4.img");
        File::create(&image)
            .and_then(|file| file.set_len(size))
            .map_err(|e| format!("cannot create the image: {e}"))?;
        run("mkfs.ext4", &["-q".as_ref(), "-F".as_ref(), image.as_ref()])?;
        let mnt = dir.path().join("mnt");
        fs::create_dir(&mnt).map_err(|e| e.to_string())?;
        let mut image = Image {
            image,
            mnt,
            mounted: false,
            _dir: dir,
        };
        image.mount()?;
        Ok(image)
    }

    /// Mounts the image on a fresh loop device (which `umount` detaches).
    fn mount(&mut self) -> Result<(), String> {
        run(
            "mount",
            &[
                "-t".as_ref(),
                "ext4".as_ref(),
                "-o".as_ref(),
                "loop".as_ref(),
                self.image.as_ref(),
                self.mnt.as_ref(),
            ],
        )?;
        self.mounted = true;
        Ok(())
    }

    /// `syncfs`: everything written so far is on disk.
    fn sync(&self) {
        let dir = File::open(&self.mnt).unwrap();
        // SAFETY: syncfs takes an open file descriptor and nothing else.
        let result = unsafe { libc::syncfs(dir.as_raw_fd()) };
        assert_eq!(result, 0, "syncfs: {}", io::Error::last_os_error());
    }

    /// Unmounts, retrying while the mount is busy: a process that another
    /// test is spawning holds copies of this process's descriptors (one of
    /// them maybe inside the mount) until its `exec`.
    fn unmount(&mut self) {
        let mut tries = 0;
        while let Err(e) = run("umount", &[self.mnt.as_ref()]) {
            tries += 1;
            assert!(tries < 100, "{e}");
            thread::sleep(Duration::from_millis(50));
        }
        self.mounted = false;
    }

    /// The power cut: from here on the file system writes nothing, and what
    /// its journal had not committed is gone.
    fn cut_power(&self) {
        let dir = File::open(&self.mnt).unwrap();
        let flags = FS_GOING_FLAGS_NOLOGFLUSH;
        // SAFETY: FS_IOC_GOINGDOWN reads one u32 through the pointer, which
        // points to a live u32.
        let result = unsafe { libc::ioctl(dir.as_raw_fd(), FS_IOC_GOINGDOWN as _, &flags) };
        assert_eq!(
            result,
            0,
            "FS_IOC_GOINGDOWN: {}",
            io::Error::last_os_error()
        );
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        if self.mounted
            && (0..20).all(|_| {
                let busy = run("umount", &[self.mnt.as_ref()]).is_err();
                if busy {
                    thread::sleep(Duration::from_millis(50));
                }
                busy
            })
        {
            let _ = run("umount", &["-l".as_ref(), self.mnt.as_ref()]);
        }
        // Any loop device still holding the image (a failed unmount).
        if let Ok(out) = Command::new("losetup").arg("-j").arg(&self.image).output() {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some((device, _)) = line.split_once(':') {
                    let _ = run("losetup", &["-d".as_ref(), device.as_ref()]);
                }
            }
        }
    }
}

/// Runs a system command; its output becomes the error when it fails.
fn run(program: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
    )
}

/// One key: its store directory (in the mount) and its name.
#[derive(Clone)]
struct Key {
    store: PathBuf,
    name: String,
}

impl Key {
    fn path(&self) -> PathBuf {
        self.store.join(format!("{}.json", self.name))
    }
}

/// One `etagstore` write: which key, what it wrote (the new ETag, `None`
/// for a delete), and whether it exited 0 before the cut.
struct Attempt {
    key: usize,
    wrote: Option<String>,
    acknowledged: bool,
}

/// What the writer threads share during one round.
struct Shared {
    skip_fsync: bool,
    cwd: PathBuf,
    cut: AtomicBool,
    acknowledged: AtomicUsize,
    writes: AtomicU64,
}

struct Harness {
    shared: Shared,
    _cwd: TempDir,
    mnt: PathBuf,
    rng: Rng,
    keys: Vec<Key>,
    /// Per key: the ETag after the last acknowledged write (`None`: absent).
    expected: Vec<Option<String>>,
    /// Per key: every ETag it has had, to tell an old version from garbage.
    history: Vec<HashSet<String>>,
    /// Per key: whether any write to it was ever acknowledged.
    acknowledged: Vec<bool>,
    /// The keys written in the current round.
    round_keys: Vec<usize>,
    report: Report,
}

impl Harness {
    fn new(mnt: PathBuf, skip_fsync: bool, seed: u64) -> Harness {
        let cwd = tempfile::tempdir().unwrap();
        let mut harness = Harness {
            shared: Shared {
                skip_fsync,
                cwd: cwd.path().to_path_buf(),
                cut: AtomicBool::new(false),
                acknowledged: AtomicUsize::new(0),
                writes: AtomicU64::new(0),
            },
            _cwd: cwd,
            rng: Rng::new(seed),
            keys: Vec::new(),
            expected: Vec::new(),
            history: Vec::new(),
            acknowledged: Vec::new(),
            round_keys: Vec::new(),
            report: Report {
                seed,
                ..Report::default()
            },
            mnt,
        };
        for i in 0..LASTING_KEYS {
            harness.add_key(harness.mnt.join("store"), format!("doc-{i}"));
        }
        harness
    }

    fn add_key(&mut self, store: PathBuf, name: String) -> usize {
        self.keys.push(Key { store, name });
        self.expected.push(None);
        self.history.push(HashSet::new());
        self.acknowledged.push(false);
        self.keys.len() - 1
    }

    /// Creates the lasting keys, before the first round.
    fn create_lasting_keys(&mut self) {
        for i in 0..LASTING_KEYS {
            let doc = format!("{{\"key\": \"doc-{i}\", \"write\": \"first\"}}\n");
            let out =
                self.shared
                    .etagstore(&self.keys[i], &["set", "--etag", ""], Some(doc.as_bytes()));
            assert!(out.status.success(), "{out:?}");
            let etag = md5_hex(doc.as_bytes());
            self.history[i].insert(etag.clone());
            self.expected[i] = Some(etag);
            self.acknowledged[i] = true;
        }
    }

    /// This round writes the lasting keys, two new keys, and one key in a
    /// new store (whose directories the first write creates).
    fn add_round_keys(&mut self, round: usize) {
        self.round_keys = (0..LASTING_KEYS).collect();
        for name in ["a", "b"] {
            let key = self.add_key(self.mnt.join("store"), format!("round-{round}-{name}"));
            self.round_keys.push(key);
        }
        let store = self.mnt.join(format!("stores/round-{round}/store"));
        let key = self.add_key(store, "first".into());
        self.round_keys.push(key);
        self.shared.cut.store(false, Ordering::SeqCst);
        self.shared.acknowledged.store(0, Ordering::SeqCst);
    }

    fn owned(&self, keys: impl Iterator<Item = usize>) -> Vec<Owned> {
        keys.map(|i| Owned {
            index: i,
            key: self.keys[i].clone(),
            etag: self.expected[i].clone(),
        })
        .collect()
    }

    /// One writer, 1 to 12 writes, then the caller cuts the power right after
    /// the last one is acknowledged.
    fn write_then_stop(&mut self) -> Vec<Attempt> {
        let owned = self.owned(self.round_keys.iter().copied());
        let writes = 1 + self.rng.below(12);
        let mut rng = Rng::new(self.rng.next());
        self.shared.write(owned, &mut rng, writes)
    }

    /// Several writers; the power is cut while they run, after a random
    /// number of acknowledged writes.
    fn write_while_cutting(&mut self, image: &Image) -> Vec<Attempt> {
        let target = 1 + self.rng.below(30);
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); WRITERS];
        for (i, &key) in self.round_keys.iter().enumerate() {
            groups[i % WRITERS].push(key);
        }
        let work: Vec<(Vec<Owned>, Rng)> = groups
            .into_iter()
            .map(|keys| (self.owned(keys.into_iter()), Rng::new(self.rng.next())))
            .collect();
        let shared = &self.shared;
        thread::scope(|scope| {
            let writers: Vec<_> = work
                .into_iter()
                .map(|(owned, mut rng)| scope.spawn(move || shared.write(owned, &mut rng, 200)))
                .collect();
            while shared.acknowledged.load(Ordering::SeqCst) < target
                && !writers.iter().all(|w| w.is_finished())
            {
                thread::sleep(Duration::from_millis(1));
            }
            // Set before the cut: a write seen to exit 0 before this counts.
            shared.cut.store(true, Ordering::SeqCst);
            image.cut_power();
            writers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        })
    }

    /// After the remount: the last acknowledged write of every key, of this
    /// round and the earlier ones, is there (or a write that was still
    /// running at the cut), whole; `list` agrees with the files of the stores
    /// this round wrote. Then what is on disk becomes the expected state.
    fn check(&mut self, round: usize, attempts: &[Attempt]) {
        let mut in_flight: BTreeMap<usize, Vec<Option<String>>> = BTreeMap::new();
        for attempt in attempts {
            if attempt.acknowledged {
                self.report.acknowledged += 1;
                if attempt.wrote.is_none() {
                    self.report.deletes += 1;
                }
                self.expected[attempt.key] = attempt.wrote.clone();
                self.acknowledged[attempt.key] = true;
            } else {
                self.report.in_flight += 1;
                in_flight
                    .entry(attempt.key)
                    .or_default()
                    .push(attempt.wrote.clone());
            }
        }
        let mut stores: BTreeMap<PathBuf, BTreeMap<String, String>> = BTreeMap::new();
        for (i, key) in self.keys.iter().enumerate() {
            let found = match fs::read(key.path()) {
                Ok(bytes) => Some(bytes),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => panic!("cannot read {}: {e}", key.path().display()),
            };
            let etag = found.as_deref().map(md5_hex);
            // `list` only where this round wrote: one store a round is new.
            if key.store == self.keys[self.round_keys[0]].store || self.round_keys.contains(&i) {
                let listed = stores.entry(key.store.clone()).or_default();
                if let Some(etag) = &etag {
                    listed.insert(key.name.clone(), etag.clone());
                }
            }
            let expected = &self.expected[i];
            let running = in_flight.get(&i).map_or(&[][..], Vec::as_slice);
            if self.acknowledged[i] {
                self.report.checked += 1;
            }
            if etag == *expected {
                // The last acknowledged state.
            } else if running.contains(&etag) {
                self.report.in_flight_kept += 1;
            } else {
                let what = match (&found, &etag) {
                    (None, _) => {
                        self.report.missing += 1;
                        "the file is missing".to_string()
                    }
                    (Some(bytes), _) if bytes.is_empty() => {
                        self.report.empty += 1;
                        "the file is empty".to_string()
                    }
                    (_, Some(etag)) if self.history[i].contains(etag) => {
                        self.report.older += 1;
                        format!("an older version is back ({etag})")
                    }
                    (Some(bytes), Some(etag)) => {
                        self.report.other += 1;
                        format!("unknown content, {} bytes, ETag {etag}", bytes.len())
                    }
                    (Some(_), None) => unreachable!("a file always has an ETag"),
                };
                self.report.losses.push(format!(
                    "round {round}: {}: expected {}, {what}",
                    key.path().display(),
                    expected.as_deref().unwrap_or("no file (deleted)"),
                ));
            }
            if let Some(etag) = &etag {
                self.history[i].insert(etag.clone());
            }
            self.expected[i] = etag;
        }
        for (store, files) in &stores {
            assert_eq!(
                &self.shared.list(store),
                files,
                "round {round}: `list --json` of {} disagrees with the files",
                store.display()
            );
        }
    }
}

/// A key a writer owns for the round, with the ETag it believes current.
struct Owned {
    index: usize,
    key: Key,
    etag: Option<String>,
}

impl Shared {
    /// Writes to `owned` keys (no one else writes them) until `writes` are
    /// done or the power is cut. Every write that exits 0 before the cut is
    /// acknowledged; the one running at the cut is in flight.
    fn write(&self, mut owned: Vec<Owned>, rng: &mut Rng, writes: usize) -> Vec<Attempt> {
        let mut attempts = Vec::new();
        for _ in 0..writes {
            if self.cut.load(Ordering::SeqCst) {
                break;
            }
            // Half the time a key never written yet, so every round creates files.
            let fresh: Vec<usize> = (0..owned.len())
                .filter(|&i| owned[i].etag.is_none())
                .collect();
            let pick = if !fresh.is_empty() && rng.below(2) == 0 {
                fresh[rng.below(fresh.len())]
            } else {
                rng.below(owned.len())
            };
            let target = &mut owned[pick];
            let doc = self.document(rng, &target.key.name);
            let (args, input): (Vec<&str>, Option<&[u8]>) = match &target.etag {
                None => (vec!["set", "--etag", ""], Some(doc.as_slice())),
                Some(etag) => match rng.below(10) {
                    0 => (vec!["delete", "--etag", etag], None),
                    1..=4 => (vec!["set", "--etag", etag], Some(doc.as_slice())),
                    _ => (vec!["set-unsafe"], Some(doc.as_slice())),
                },
            };
            let wrote = input.map(md5_hex);
            let out = self.etagstore(&target.key, &args, input);
            let acknowledged = !self.cut.load(Ordering::SeqCst);
            attempts.push(Attempt {
                key: target.index,
                wrote: wrote.clone(),
                acknowledged: acknowledged && out.status.success(),
            });
            if !acknowledged {
                break;
            }
            assert!(
                out.status.success(),
                "{} {args:?} failed before the cut: {}",
                target.key.path().display(),
                String::from_utf8_lossy(&out.stderr)
            );
            let printed = wrote
                .as_ref()
                .map_or(String::new(), |etag| format!("{etag}\n"));
            assert_eq!(String::from_utf8_lossy(&out.stdout), printed);
            self.acknowledged.fetch_add(1, Ordering::SeqCst);
            target.etag = wrote;
        }
        attempts
    }

    /// A document of one of `SIZES`, unique to this write.
    fn document(&self, rng: &mut Rng, key: &str) -> Vec<u8> {
        let write = self.writes.fetch_add(1, Ordering::SeqCst);
        let size = SIZES[rng.below(SIZES.len())];
        let mut doc = format!("{{\"key\": \"{key}\", \"write\": {write}, \"pad\": \"").into_bytes();
        doc.extend((0..size).map(|_| b"0123456789abcdef"[rng.below(16)]));
        doc.extend_from_slice(b"\"}\n");
        doc
    }

    /// Runs `etagstore --store <store> <command> <key> <args…>`.
    fn etagstore(&self, key: &Key, args: &[&str], input: Option<&[u8]>) -> Output {
        let mut cmd = Command::new(TestStore::bin());
        cmd.current_dir(&self.cwd)
            .arg("--store")
            .arg(&key.store)
            .arg(args[0])
            .arg(&key.name)
            .args(&args[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ETAGSTORE_") {
                cmd.env_remove(name);
            }
        }
        if self.skip_fsync {
            cmd.env("ETAGSTORE_SKIP_FSYNC", "1");
        }
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // After the cut the writer may stop reading early: a broken pipe is fine.
        let _ = stdin.write_all(input.unwrap_or_default());
        drop(stdin);
        child.wait_with_output().unwrap()
    }

    /// `list --json` of a store: key -> ETag.
    fn list(&self, store: &Path) -> BTreeMap<String, String> {
        let out = Command::new(TestStore::bin())
            .current_dir(&self.cwd)
            .arg("--store")
            .arg(store)
            .args(["list", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|line| {
                let entry: serde_json::Value = serde_json::from_str(line).unwrap();
                let text = |field: &str| entry[field].as_str().unwrap().to_string();
                (text("key"), text("etag"))
            })
            .collect()
    }
}

/// The numbers a run ends with, for docs/reliability.md.
#[derive(Default)]
struct Report {
    label: &'static str,
    seed: u64,
    rounds: usize,
    cut_after_ack: usize,
    cut_while_writing: usize,
    /// Writes (deletes included) that exited 0 before the cut.
    acknowledged: usize,
    deletes: usize,
    /// Writes running at the cut, and how many of those were found done.
    in_flight: usize,
    in_flight_kept: usize,
    /// Keys checked after a remount, summed over the rounds.
    checked: usize,
    missing: usize,
    empty: usize,
    older: usize,
    other: usize,
    losses: Vec<String>,
    elapsed: Duration,
}

impl Report {
    fn lost(&self) -> usize {
        self.missing + self.empty + self.older + self.other
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "power cuts ({}): {} rounds ({} cut right after an acknowledged write, \
             {} cut with {WRITERS} writers running), {} writes acknowledged \
             ({} of them deletes), {} in flight at the cut ({} of those found done), \
             {} key checks after remount; acknowledged writes lost: {} \
             (missing {}, empty {}, older version {}, other content {}); \
             seed {}, {:.1} s",
            self.label,
            self.rounds,
            self.cut_after_ack,
            self.cut_while_writing,
            self.acknowledged,
            self.deletes,
            self.in_flight,
            self.in_flight_kept,
            self.checked,
            self.lost(),
            self.missing,
            self.empty,
            self.older,
            self.other,
            self.seed,
            self.elapsed.as_secs_f64()
        )
    }
}

/// xorshift64*: enough randomness for choosing writes, and replayable.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng((seed ^ 0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `import --overwrite` of 600 documents (three batches: 300 keys that
/// hold an old document on disk, 300 new ones) exits 0, then the power is
/// cut at once. Returns how many keys lack their new document after the
/// remount; `None` where the test cannot run.
fn import_power_cut(skip_fsync: bool) -> Option<usize> {
    let image = if running_as_root() {
        Image::new(IMAGE_SIZE)
    } else {
        Err("not running as root".into())
    };
    let mut image = match image {
        Ok(image) => image,
        Err(reason) => {
            require_with(
                false,
                &format!("import power cut: {reason}"),
                &["ETAGSTORE_REQUIRE_POWERCUT"],
            );
            return None;
        }
    };
    let store = image.mnt.join("store");
    let lines = |from: usize, to: usize, tag: &str| -> Vec<u8> {
        (from..to)
            .map(|i| format!("{{\"key\":\"k{i:04}\",\"value\":{{\"i\":{i},\"v\":\"{tag}\"}}}}\n"))
            .collect::<String>()
            .into_bytes()
    };
    let import = |input: Vec<u8>, skip: bool| {
        let mut cmd = Command::new(TestStore::bin());
        cmd.arg("--store")
            .arg(&store)
            .args(["import", "--overwrite"])
            .env_remove("ETAGSTORE_SKIP_FSYNC")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if skip {
            cmd.env("ETAGSTORE_SKIP_FSYNC", "1");
        }
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    import(lines(0, 300, "old"), false);
    image.sync();
    import(lines(0, 600, "new"), skip_fsync);
    image.cut_power();
    image.unmount();
    image.mount().expect("the image mounts again after the cut");
    let lost = (0..600)
        .filter(|i| {
            let found = fs::read(store.join(format!("k{i:04}.json"))).ok();
            let new = format!("{{\"i\":{i},\"v\":\"new\"}}");
            found.as_deref() != Some(new.as_bytes())
        })
        .count();
    Some(lost)
}

#[test]
fn every_document_of_an_import_that_exited_0_survives_a_power_cut() {
    if let Some(lost) = import_power_cut(false) {
        assert_eq!(lost, 0, "{lost} of 600 imported documents were lost");
    }
}

#[cfg(feature = "test-hooks")]
#[test]
fn without_fsync_an_import_cut_at_once_loses_documents() {
    if let Some(lost) = import_power_cut(true) {
        eprintln!("import control: {lost} of 600 lost");
        assert!(
            lost > 0,
            "the control lost nothing, so the test cannot tell a durable import from a lucky one"
        );
    }
}
