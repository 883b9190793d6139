//! The file-system store: one file per document, written atomically.
//!
//! Layout of a store directory:
//!
//! ```text
//! <key>.json                  one file per document (percent-encoded key)
//! .etagstore/locks/<key>.lock one lock file per key ever written; never deleted
//! .etagstore/tmp/             documents being written, before the rename
//! ```
//!
//! A write streams the input into a temporary file (validating and hashing
//! it), fsyncs it, takes the key's lock, checks the precondition, renames the
//! temporary file over the document and fsyncs the directory. Readers take no
//! lock: a document file is never changed in place, only replaced, so an open
//! file is one complete version.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use fd_lock::RwLock;

use crate::backoff::Backoff;
use crate::document::{self, CopyError};
use crate::error::Error;
use crate::faults;
use crate::key::Key;
use crate::store::{Details, Entry, Poller, Precondition, Store, Waiter};

mod watch;

/// The store's own directory; its leading `.` puts it out of every key's reach.
const INTERNAL_DIR: &str = ".etagstore";
/// How old a temporary file must be before a later write may remove it
/// (and only if the process that made it is gone).
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(10 * 60);
/// The longest pause between two attempts to take a lock.
const MAX_LOCK_PAUSE: Duration = Duration::from_millis(20);

pub struct FsStore {
    dir: PathBuf,
    lock_timeout: Duration,
}

impl FsStore {
    /// A store in `dir`. Nothing is touched until a command needs it.
    pub fn new(dir: impl Into<PathBuf>, lock_timeout: Duration) -> FsStore {
        FsStore {
            dir: dir.into(),
            lock_timeout,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn document_path(&self, key: &Key) -> PathBuf {
        self.dir.join(key.file_name())
    }

    fn internal_path(&self, sub_dir: &str) -> PathBuf {
        self.dir.join(INTERNAL_DIR).join(sub_dir)
    }

    /// Creates a uniquely named temporary file in the store, creating the
    /// store's directories on the first write.
    fn create_temp(&self) -> Result<TempFile> {
        let tmp_dir = self.internal_path("tmp");
        let pid = std::process::id();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        for attempt in 0u32.. {
            let path = tmp_dir.join(format!("{pid}-{nanos:09}-{attempt}.json"));
            let created = faults::check("temp-create")
                .and_then(|()| OpenOptions::new().write(true).create_new(true).open(&path));
            match created {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file: Some(file),
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt == 0 => {
                    create_store_dir(&self.dir, &tmp_dir)?;
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot create a temporary file in '{}'", tmp_dir.display())
                    })
                }
            }
        }
        unreachable!("the attempt counter is unbounded")
    }

    /// Runs `action` while holding the key's lock, waiting for it with a
    /// short, jittered backoff for at most the lock timeout (then exit 5).
    fn with_lock<T>(&self, key: &Key, action: impl FnOnce() -> Result<T>) -> Result<T> {
        let locks_dir = self.internal_path("locks");
        let path = locks_dir.join(format!("{}.lock", key.encoded()));
        let open = || {
            faults::check("lock-create")?;
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
        };
        // A timeout too large for the clock means: wait as long as it takes.
        let deadline = Instant::now().checked_add(self.lock_timeout);
        let mut backoff = Backoff::new(Duration::from_micros(200), MAX_LOCK_PAUSE);
        loop {
            let file = match open() {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    create_store_dir(&self.dir, &locks_dir)?;
                    open()
                }
                other => other,
            }
            .with_context(|| format!("cannot open the lock file '{}'", path.display()))?;

            faults::pause("BEFORE_LOCK");
            let mut lock = RwLock::new(file);
            loop {
                match lock.try_write() {
                    Ok(guard) => {
                        // The lock counts only if its file is still the one
                        // at the path: a removed or replaced lock file
                        // excludes nobody who opens the path now.
                        if same_file(&guard, &path)? {
                            return action();
                        }
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot lock '{}'", path.display()))
                    }
                }
                let now = Instant::now();
                let left = deadline.map_or(Duration::MAX, |deadline| deadline - now);
                if left.is_zero() {
                    return Err(Error::LockTimeout {
                        key: key.as_str().to_string(),
                        seconds: self.lock_timeout.as_secs_f64(),
                    }
                    .into());
                }
                thread::sleep(backoff.next_pause().min(left));
            }
        }
    }

    /// The ETag of the document at `path` now, `None` if it does not exist.
    fn current_etag(&self, path: &Path) -> Result<Option<String>> {
        Ok(hash_document(path)?.map(|(_, _, copied)| copied.etag))
    }

    /// Reads and hashes the current document before the lock, so that a big
    /// document is not hashed while other writers wait, and checks the
    /// precondition against it. A failure here is final, and is as true as
    /// one found under the lock: the bytes read were the document's at that
    /// moment. So a mismatch never waits for another writer, and a key that
    /// was never written never gets a lock file. The file stays open until
    /// the check under the lock: while it is open, its inode number cannot
    /// be given to a new file.
    fn look(&self, key: &Key, path: &Path, precondition: &Precondition) -> Result<Seen> {
        let started = SystemTime::now();
        let seen = match hash_document(path)? {
            None => Seen {
                etag: None,
                file: None,
                started,
            },
            Some((file, meta, copied)) => Seen {
                etag: Some(copied.etag),
                file: Some((file, meta)),
                started,
            },
        };
        precondition.check(key, seen.etag.as_deref())?;
        Ok(seen)
    }

    /// Under the lock: the current ETag. The look's hash stands only when
    /// the path still names the file the look kept open and `unchanged`
    /// proves its bytes the same; otherwise the document is hashed again.
    fn confirm(&self, path: &Path, seen: Seen) -> Result<Option<String>> {
        let now = match fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read '{}'", path.display())),
        };
        if let (Some((mut file, meta)), Some(etag)) = (seen.file, seen.etag) {
            use std::os::unix::fs::MetadataExt;
            if (meta.dev(), meta.ino()) == (now.dev(), now.ino()) {
                if unchanged(&meta, &now, seen.started) {
                    return Ok(Some(etag));
                }
                // The same file, maybe changed in place: hash what it holds now.
                let copied = io::Seek::rewind(&mut file)
                    .map_err(CopyError::Read)
                    .and_then(|()| document::copy_hashed(&mut file, &mut io::sink()))
                    .map_err(|e| copy_error(e, path))
                    .with_context(|| format!("cannot read '{}'", path.display()))?;
                return Ok(Some(copied.etag));
            }
        }
        self.current_etag(path)
    }

    /// fsyncs the store directory, so a rename or unlink survives power loss.
    fn sync_dir(&self) -> Result<()> {
        if faults::skip_fsync() {
            return Ok(());
        }
        faults::check("dir-fsync")
            .and_then(|()| File::open(&self.dir))
            .and_then(|dir| dir.sync_all())
            .with_context(|| format!("cannot sync the store directory '{}'", self.dir.display()))
    }
}

impl Store for FsStore {
    fn open(&self, key: &Key) -> Result<Option<Box<dyn Read>>> {
        let path = self.document_path(key);
        Ok(open_document(&path)?.map(|file| {
            let name = format!("'{}'", path.display());
            Box::new(document::Named::new(file, name)) as Box<dyn Read>
        }))
    }

    fn put(&self, key: &Key, input: &mut dyn Read, precondition: &Precondition) -> Result<String> {
        let mut temp = self.create_temp()?;
        let mut writer = faults::FaultyWriter {
            file: temp.file(),
            written_short: false,
        };
        let copied =
            document::copy_validated(input, &mut writer).map_err(|e| copy_error(e, &temp.path))?;
        if !faults::skip_fsync() {
            faults::check("fsync")
                .and_then(|()| temp.file().sync_all())
                .with_context(|| format!("cannot sync '{}'", temp.path.display()))?;
        }

        let path = self.document_path(key);
        // Last writer wins needs no look at the current document.
        let seen = match precondition {
            Precondition::Any => None,
            _ => Some(self.look(key, &path, precondition)?),
        };
        self.with_lock(key, || {
            if let Some(seen) = seen {
                let current = self.confirm(&path, seen)?;
                precondition.check(key, current.as_deref())?;
            }
            faults::pause("LOCKED");
            temp.persist(&path)?;
            // Readers may already see the new document: it is not rolled back.
            self.sync_dir()
                .context("the document was replaced, but may not survive a power loss")
        })?;
        self.remove_stale_temps();
        Ok(copied.etag)
    }

    fn delete(&self, key: &Key, precondition: &Precondition) -> Result<()> {
        let path = self.document_path(key);
        let seen = self.look(key, &path, precondition)?;
        if seen.etag.is_none() {
            // Nothing to delete, and the precondition allowed that.
            return Ok(());
        }
        self.with_lock(key, || {
            let current = self.confirm(&path, seen)?;
            precondition.check(key, current.as_deref())?;
            faults::pause("LOCKED");
            if current.is_some() {
                fs::remove_file(&path)
                    .with_context(|| format!("cannot delete '{}'", path.display()))?;
                self.sync_dir()
                    .context("the document was deleted, but may come back after a power loss")?;
            }
            Ok(())
        })
    }

    fn missing_hint(&self) -> Option<String> {
        (!self.dir.exists()).then(|| {
            format!(
                "there is no store at '{}': name yours with --store DIR or ETAGSTORE_DIR",
                self.dir.display()
            )
        })
    }

    fn watch(&self, key: &Key) -> Result<Box<dyn Waiter>> {
        Ok(match self.notified(key) {
            Some(notified) => Box::new(notified),
            None => Box::new(Poller::new()),
        })
    }

    fn list(&self, prefix: &str, details: bool) -> Result<Vec<Entry>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot list '{}'", self.dir.display()))
            }
        };
        let mut listing = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list '{}'", self.dir.display()))?;
            let Some(key) = entry.file_name().to_str().and_then(Key::from_file_name) else {
                continue;
            };
            if !key.as_str().starts_with(prefix)
                || entry.file_type().is_ok_and(|kind| kind.is_dir())
            {
                continue;
            }
            let details = if details {
                match self.details(&entry.path())? {
                    Some(details) => Some(details),
                    None => continue, // deleted since the directory was read
                }
            } else {
                None
            };
            listing.push(Entry { key, details });
        }
        listing.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listing)
    }
}

impl FsStore {
    /// Removes temporary files that a killed writer left behind: older than
    /// `STALE_TEMP_AGE` and named after a process that no longer runs. Best
    /// effort, after the write, outside the lock.
    fn remove_stale_temps(&self) {
        let tmp_dir = self.internal_path("tmp");
        let Ok(entries) = fs::read_dir(&tmp_dir) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|name| name.split('-').next())
                .and_then(|pid| pid.parse::<libc::pid_t>().ok())
            else {
                continue;
            };
            let old = entry
                .metadata()
                .and_then(|meta| meta.modified())
                .is_ok_and(|modified| {
                    now.duration_since(modified).unwrap_or_default() > STALE_TEMP_AGE
                });
            if old && !process_is_alive(pid) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// ETag, size and time of one document, from one open file.
    fn details(&self, path: &Path) -> Result<Option<Details>> {
        let Some((_, meta, copied)) = hash_document(path)? else {
            return Ok(None);
        };
        let modified = meta
            .modified()
            .with_context(|| format!("cannot read '{}'", path.display()))?;
        Ok(Some(Details {
            etag: copied.etag,
            size: copied.len,
            modified,
        }))
    }
}

/// The current document as `look` read it: its ETag, the file it read
/// (kept open) with its metadata from before the read, and when the look began.
struct Seen {
    etag: Option<String>,
    file: Option<(File, fs::Metadata)>,
    started: SystemTime,
}

/// Documents up to this size are always hashed again under the lock: that
/// costs microseconds, and proves the bytes whatever the file system's
/// timestamps can tell.
const REHASH_UP_TO: u64 = 64 << 10;

/// Whether a file the look kept open (`before`, its metadata then; `now`,
/// under the lock) provably still holds the bytes the look hashed. Any write
/// sets the change time to the (coarse) clock, truncated to the file
/// system's granularity: unless the change time is older than the look's
/// start by more than that granularity and a clock tick, a write after the
/// look could have left every timestamp as it was. Whole-second change
/// times mean a coarse file system (one second; FAT's two): allow 3 s, else
/// 100 ms.
fn unchanged(before: &fs::Metadata, now: &fs::Metadata, look_started: SystemTime) -> bool {
    use std::os::unix::fs::MetadataExt;
    let same = |m: &fs::Metadata| {
        (
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        )
    };
    if same(before) != same(now) || now.size() <= REHASH_UP_TO {
        return false;
    }
    let margin = if now.ctime_nsec() == 0 {
        Duration::from_secs(3)
    } else {
        Duration::from_millis(100)
    };
    let changed = UNIX_EPOCH
        + Duration::new(
            u64::try_from(now.ctime()).unwrap_or(0),
            now.ctime_nsec() as u32,
        );
    changed + margin < look_started
}

/// Whether the open `file` is the file that `path` names now.
fn same_file(file: &File, path: &Path) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let held = file
        .metadata()
        .with_context(|| format!("cannot read '{}'", path.display()))?;
    Ok(match fs::symlink_metadata(path) {
        Ok(now) => (now.dev(), now.ino()) == (held.dev(), held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e).with_context(|| format!("cannot read '{}'", path.display())),
    })
}

/// Opens and hashes a document file: its metadata and ETag from one open
/// file, `None` if it does not exist.
fn hash_document(path: &Path) -> Result<Option<(File, fs::Metadata, document::Copied)>> {
    let Some(mut file) = open_document(path)? else {
        return Ok(None);
    };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read '{}'", path.display()))?;
    let copied = document::copy_hashed(&mut file, &mut io::sink())
        .map_err(|e| copy_error(e, path))
        .with_context(|| format!("cannot read '{}'", path.display()))?;
    Ok(Some((file, meta, copied)))
}

/// Opens a document file for reading, `None` if it does not exist. A
/// symbolic link is refused, never followed: it could lead out of the store.
fn open_document(path: &Path) -> Result<Option<File>> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(anyhow::anyhow!(
            "'{}' is a symbolic link; etagstore does not follow links out of the store \
             (remove it, or replace it with the document itself)",
            path.display()
        )),
        Err(e) => Err(e).with_context(|| format!("cannot read '{}'", path.display())),
    }
}

/// Creates the store directory and one of its internal directories. When
/// that creates the store, the directories that now hold it are fsynced too,
/// or the first document could vanish with its new directory on power loss.
fn create_store_dir(store: &Path, internal: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut existing = store;
    while !existing.as_os_str().is_empty() && !existing.exists() {
        missing.push(existing);
        existing = existing.parent().unwrap_or(Path::new(""));
    }
    fs::create_dir_all(internal).with_context(|| {
        if store.exists() && !store.is_dir() {
            format!("the store '{}' is not a directory", store.display())
        } else {
            format!("cannot create the store directory '{}'", internal.display())
        }
    })?;
    if missing.is_empty() || faults::skip_fsync() {
        return Ok(());
    }
    // Each new directory's entry lives in its parent: sync the parents, from
    // the one that existed down to the store's own (the store itself is
    // synced after every write).
    let existing = if existing.as_os_str().is_empty() {
        Path::new(".")
    } else {
        existing
    };
    for dir in std::iter::once(existing).chain(missing[1..].iter().rev().copied()) {
        File::open(dir)
            .and_then(|dir| dir.sync_all())
            .with_context(|| format!("cannot sync '{}'", dir.display()))?;
    }
    Ok(())
}

fn process_is_alive(pid: libc::pid_t) -> bool {
    // Signal 0 checks that the process exists without touching it.
    // SAFETY: kill with signal 0 sends nothing and has no memory effects.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Turns a failed copy into an error; `path` is the side the store owns.
fn copy_error(error: CopyError, path: &Path) -> anyhow::Error {
    match error {
        CopyError::Invalid(e) => e.into(),
        CopyError::Read(e) => anyhow::Error::new(e),
        CopyError::Write(e) => {
            anyhow::Error::new(e).context(format!("cannot write '{}'", path.display()))
        }
    }
}

/// A temporary file that is removed unless it is renamed into place.
struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    fn file(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("the file is open until persisted")
    }

    fn persist(&mut self, target: &Path) -> Result<()> {
        faults::check("rename")
            .and_then(|()| fs::rename(&self.path, target))
            .with_context(|| {
                format!(
                    "cannot rename '{}' to '{}'",
                    self.path.display(),
                    target.display()
                )
            })?;
        self.file = None;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, FsStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::new(dir.path().join("store"), Duration::from_secs(1));
        (dir, store)
    }

    fn read(store: &FsStore, key: &Key) -> Option<Vec<u8>> {
        let mut bytes = Vec::new();
        store.open(key).unwrap()?.read_to_end(&mut bytes).unwrap();
        Some(bytes)
    }

    #[test]
    fn put_then_open_round_trips_and_leaves_no_temporary_file() {
        let (_dir, store) = store();
        let key = Key::new("a/b").unwrap();
        let etag = store
            .put(&key, &mut &b"{\"x\": 1}"[..], &Precondition::Missing)
            .unwrap();
        assert_eq!(etag, document::etag_of(b"{\"x\": 1}"));
        assert_eq!(read(&store, &key).unwrap(), b"{\"x\": 1}");
        assert!(store.dir().join("a%2Fb.json").is_file());
        let tmp = fs::read_dir(store.internal_path("tmp")).unwrap().count();
        assert_eq!(tmp, 0);
    }

    #[test]
    fn invalid_input_leaves_nothing_behind() {
        let (_dir, store) = store();
        let key = Key::new("k").unwrap();
        let error = store
            .put(&key, &mut &b"{oops"[..], &Precondition::Any)
            .unwrap_err();
        assert_eq!(crate::error::exit_code(&error), 6);
        assert!(read(&store, &key).is_none());
        assert_eq!(fs::read_dir(store.internal_path("tmp")).unwrap().count(), 0);
        assert!(!store.internal_path("locks").exists());
    }

    #[test]
    fn a_held_lock_times_out_with_exit_5() {
        let (_dir, store) = store();
        let key = Key::new("k").unwrap();
        store.put(&key, &mut &b"1"[..], &Precondition::Any).unwrap();
        let store = FsStore::new(store.dir(), Duration::from_millis(50));
        let result = store.with_lock(&key, || {
            // A second writer of the same key, inside the first one's lock.
            store.put(&key, &mut &b"2"[..], &Precondition::Any)
        });
        assert_eq!(crate::error::exit_code(&result.unwrap_err()), 5);
        assert_eq!(read(&store, &key).unwrap(), b"1");
    }

    #[test]
    fn delete_checks_the_precondition() {
        let (_dir, store) = store();
        let key = Key::new("k").unwrap();
        let etag = store
            .put(&key, &mut &b"[]"[..], &Precondition::Any)
            .unwrap();
        let error = store.delete(&key, &Precondition::Missing).unwrap_err();
        assert_eq!(crate::error::exit_code(&error), 3);
        store.delete(&key, &Precondition::Matches(etag)).unwrap();
        assert!(read(&store, &key).is_none());
        let error = store.delete(&key, &Precondition::Exists).unwrap_err();
        assert_eq!(crate::error::exit_code(&error), 3);
    }
}
