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
//! lock: etagstore never changes a document file in place, only replaces it,
//! so an open file is one complete version.
//!
//! A write opens the store directory once and everything inside it relative
//! to that handle, never through a symbolic link (`openat`, `renameat`,
//! `unlinkat` with `O_NOFOLLOW`), so nothing a co-user of a shared store
//! plants can send a create, rename or delete outside the store. Only
//! regular files are opened as documents and lock files, without blocking.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use rustix::fs::{self as rfs, AtFlags, FileType, FlockOperation, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::backoff::Backoff;
use crate::document::{self, CopyError};
use crate::error::Error;
use crate::faults::{self, Pause, Point};
use crate::key::Key;
use crate::store::{Batch, Committed, Details, Entry, Precondition, Store, Unreadable, Waiter};

mod watch;

/// The store's own directory; its leading `.` puts it out of every key's reach.
const INTERNAL_DIR: &str = ".etagstore";
/// How old a temporary file must be before a later write may remove it
/// (and only if no writer holds its lock).
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(10 * 60);
/// About one write in this many sweeps the `tmp` directory for stale
/// temporary files (see `sweep_due`); a power of two.
const SWEEP_ONE_IN: u64 = 16;
/// The longest pause between two attempts to take a lock.
const MAX_LOCK_PAUSE: Duration = Duration::from_millis(20);
/// Documents up to this size are always hashed again under the lock: that
/// costs microseconds, and proves the bytes whatever the file system's
/// timestamps can tell.
const REHASH_UP_TO: u64 = 64 << 10;
/// A big input's temporary file gets its write-back started every this
/// many bytes, so the fsync at the end waits for the last few MiB only.
const WRITE_BACK_EVERY: u64 = 8 << 20;
/// How a document, lock file or temporary file is opened: never through a
/// symbolic link, never blocking (a FIFO must not hang the command).
const OPEN: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::CLOEXEC);

pub struct FsStore {
    dir: PathBuf,
    lock_timeout: Duration,
}

/// The store's directories, opened for one write: the store as named, and
/// its internal directory relative to it.
struct Dirs {
    store: OwnedFd,
    owner: u32,
    group: u32,
    /// Setgid and group-writable: a store a team shares. Lock files are then
    /// 0660 and internal directories group-writable, whatever the umask.
    group_store: bool,
    /// `.etagstore`, opened on first use.
    internal: std::cell::OnceCell<OwnedFd>,
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

    /// A write the file system refused for want of permission speaks about
    /// the store, not the internal file it happened to touch first.
    fn refused(&self, error: io::Error, what: impl FnOnce() -> String) -> anyhow::Error {
        match error.raw_os_error() {
            Some(libc::EACCES | libc::EPERM | libc::EROFS) => anyhow::anyhow!(
                "the store '{}' is not writable ({}); check its permissions, or name \
                 another store with --store",
                self.dir.display(),
                io::Error::from_raw_os_error(error.raw_os_error().unwrap_or_default())
            ),
            _ => anyhow::Error::new(error).context(what()),
        }
    }

    fn internal_path(&self, sub_dir: &str) -> PathBuf {
        self.dir.join(INTERNAL_DIR).join(sub_dir)
    }

    /// Opens the store directory (following the path the user gave);
    /// `create` makes it, and the directories above it, when missing.
    fn open_store(&self, create: bool) -> Result<Option<Dirs>> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let not_a_dir = || format!("the store '{}' is not a directory", self.dir.display());
        let store = match rfs::open(&self.dir, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create => {
                create_store_dir(&self.dir)?;
                rfs::open(&self.dir, flags, Mode::empty())
                    .map_err(io::Error::from)
                    .with_context(|| format!("cannot open the store '{}'", self.dir.display()))?
            }
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::NOTDIR) => return Err(anyhow::anyhow!(not_a_dir())),
            Err(e) => {
                return Err(io::Error::from(e))
                    .with_context(|| format!("cannot open the store '{}'", self.dir.display()))
            }
        };
        let stat = rfs::fstat(&store)
            .map_err(io::Error::from)
            .with_context(|| format!("cannot read '{}'", self.dir.display()))?;
        Ok(Some(Dirs {
            store,
            owner: stat.st_uid,
            group: stat.st_gid,
            group_store: stat.st_mode & 0o2020 == 0o2020,
            internal: std::cell::OnceCell::new(),
        }))
    }

    /// Opens (creating if missing) a directory inside the store, relative to
    /// `parent`: never a symbolic link, and owned by the user or the store's
    /// owner (in a group store, by anyone of the store's group).
    fn sub_dir(&self, dirs: &Dirs, parent: BorrowedFd, name: &str, path: &Path) -> Result<OwnedFd> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let (mut tried, mut created) = (false, false);
        let fd = loop {
            match rfs::openat(parent, name, flags, Mode::empty()) {
                Ok(fd) => break fd,
                Err(Errno::NOENT) if !tried => {
                    tried = true;
                    // Another writer may make it first: then its mode is
                    // that writer's to set (ours would fail with EPERM).
                    match rfs::mkdirat(parent, name, Mode::from_raw_mode(0o777)) {
                        Ok(()) => created = true,
                        Err(Errno::EXIST) => {}
                        Err(e) => {
                            return Err(self.refused(io::Error::from(e), || {
                                format!("cannot create the store directory '{}'", path.display())
                            }))
                        }
                    }
                }
                Err(Errno::LOOP | Errno::NOTDIR) => return Err(not_followed(parent, name, path)),
                Err(e) => {
                    return Err(io::Error::from(e))
                        .with_context(|| format!("cannot open '{}'", path.display()))
                }
            }
        };
        let stat = rfs::fstat(&fd)
            .map_err(io::Error::from)
            .with_context(|| format!("cannot read '{}'", path.display()))?;
        let trusted = stat.st_uid == dirs.owner
            || (dirs.group_store && stat.st_gid == dirs.group)
            // SAFETY: geteuid has no preconditions and cannot fail.
            || stat.st_uid == unsafe { libc::geteuid() };
        if !trusted {
            return Err(anyhow::anyhow!(
                "'{}' is owned by uid {}, neither you nor the store's owner; \
                 etagstore does not use it (remove it)",
                path.display(),
                stat.st_uid
            ));
        }
        if created && dirs.group_store {
            // Every member of the group must be able to add locks and
            // temporary files, whatever this writer's umask.
            let mode = (stat.st_mode & 0o7777) | 0o2070;
            rfs::fchmod(&fd, Mode::from_raw_mode(mode))
                .map_err(io::Error::from)
                .with_context(|| format!("cannot set the mode of '{}'", path.display()))?;
        }
        Ok(fd)
    }

    /// `.etagstore`, opened once per command.
    fn internal<'a>(&self, dirs: &'a Dirs) -> Result<&'a OwnedFd> {
        if let Some(fd) = dirs.internal.get() {
            return Ok(fd);
        }
        let fd = self.open_internal(dirs)?;
        Ok(dirs.internal.get_or_init(|| fd))
    }

    fn open_internal(&self, dirs: &Dirs) -> Result<OwnedFd> {
        let path = self.dir.join(INTERNAL_DIR);
        self.sub_dir(dirs, dirs.store.as_fd(), INTERNAL_DIR, &path)
    }

    /// Creates a uniquely named temporary file in the store, and locks it
    /// for the writer's whole life: the lock, not the pid in the name, tells
    /// a cleaner that its writer still runs.
    fn create_temp(&self, dirs: &Dirs) -> Result<TempFile> {
        let tmp_path = self.internal_path("tmp");
        let internal = self.internal(dirs)?;
        let dir = self.sub_dir(dirs, internal.as_fd(), "tmp", &tmp_path)?;
        self.create_temp_in(Rc::new(dir), &tmp_path)
    }

    /// `create_temp` in the `tmp` directory already opened as `dir`.
    fn create_temp_in(&self, dir: Rc<OwnedFd>, tmp_path: &Path) -> Result<TempFile> {
        let pid = std::process::id();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        for attempt in 0u32.. {
            let name = format!("{pid}-{nanos:09}-{attempt}.json");
            let created = faults::check(Point::TempCreate).and_then(|()| {
                let flags = OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                // Private until it is the document: `set_mode` gives it its
                // final mode under the lock.
                Ok(rfs::openat(&dir, &name, flags, Mode::from_raw_mode(0o600))?)
            });
            match created {
                Ok(fd) => {
                    let path = tmp_path.join(&name);
                    let temp = TempFile {
                        dir,
                        name,
                        path,
                        file: Some(File::from(fd)),
                        sweep_due: sweep_due(pid, nanos, attempt),
                    };
                    rfs::flock(temp.file.as_ref().unwrap(), FlockOperation::LockExclusive)
                        .map_err(io::Error::from)
                        .with_context(|| format!("cannot lock '{}'", temp.path.display()))?;
                    return Ok(temp);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(self.refused(e, || {
                        format!("cannot create a temporary file in '{}'", tmp_path.display())
                    }))
                }
            }
        }
        unreachable!("the attempt counter is unbounded")
    }

    /// Runs `action` while holding the key's lock, waiting for it with a
    /// short, jittered backoff for at most the lock timeout (then exit 5).
    /// A lock counts only while its file is the one at the lock path: a
    /// writer that locked a removed or replaced lock file opens it again.
    fn with_lock<T>(
        &self,
        dirs: &Dirs,
        key: &Key,
        action: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let _lock = self.lock(dirs, key)?;
        action()
    }

    /// Takes the key's lock (see `with_lock`); it is held until the
    /// returned file is dropped.
    fn lock(&self, dirs: &Dirs, key: &Key) -> Result<OwnedFd> {
        let name = format!("{}.lock", key.encoded());
        let locks_path = self.internal_path("locks");
        let path = locks_path.join(&name);
        let lock_path = Path::new(INTERNAL_DIR).join("locks").join(&name);
        // A timeout too large for the clock means: wait as long as it takes.
        let deadline = Instant::now().checked_add(self.lock_timeout);
        // Made on the first wait only: an uncontended lock reads no pid.
        let mut backoff: Option<Backoff> = None;
        let mut wait = || {
            let left = deadline.map_or(Duration::MAX, |deadline| {
                deadline.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return Err(Error::LockTimeout {
                    key: key.as_str().to_string(),
                    seconds: self.lock_timeout.as_secs_f64(),
                });
            }
            let backoff = backoff
                .get_or_insert_with(|| Backoff::new(Duration::from_micros(200), MAX_LOCK_PAUSE));
            thread::sleep(backoff.next_pause().min(left));
            Ok(())
        };
        // After a removed lock file, `.etagstore` itself may be new.
        let mut fresh: Option<OwnedFd> = None;
        loop {
            let internal = match &fresh {
                Some(fd) => fd,
                None => self.internal(dirs)?,
            };
            let locks = self.sub_dir(dirs, internal.as_fd(), "locks", &locks_path)?;
            let (lock, held) = self.open_lock(dirs, &locks, &name, &path)?;
            faults::pause(Pause::BeforeLock);
            loop {
                match rfs::flock(&lock, FlockOperation::NonBlockingLockExclusive) {
                    Ok(()) => {
                        match rfs::statat(&dirs.store, &lock_path, AtFlags::SYMLINK_NOFOLLOW) {
                            Ok(now) if same_inode(&now, &held) => return Ok(lock),
                            // Removed or replaced: open the lock path again.
                            Ok(_) | Err(Errno::NOENT | Errno::NOTDIR) => break,
                            Err(e) => {
                                return Err(io::Error::from(e))
                                    .with_context(|| format!("cannot read '{}'", path.display()))
                            }
                        }
                    }
                    Err(Errno::WOULDBLOCK) => wait()?,
                    Err(e) => {
                        return Err(io::Error::from(e))
                            .with_context(|| format!("cannot lock '{}'", path.display()))
                    }
                }
            }
            drop(lock);
            wait()?;
            fresh = Some(self.open_internal(dirs)?);
        }
    }

    /// Opens the key's lock file, creating it 0600 (0660 in a group store)
    /// on the key's first write; it must be a regular file.
    fn open_lock(
        &self,
        dirs: &Dirs,
        locks: &OwnedFd,
        name: &str,
        path: &Path,
    ) -> Result<(OwnedFd, Stat)> {
        let context = || format!("cannot open the lock file '{}'", path.display());
        faults::check(Point::LockCreate).with_context(context)?;
        let fd = loop {
            match rfs::openat(locks, name, OPEN, Mode::empty()) {
                Ok(fd) => break fd,
                Err(Errno::NOENT) => {
                    let mode = if dirs.group_store { 0o660 } else { 0o600 };
                    let flags = OPEN | OFlags::CREATE | OFlags::EXCL;
                    match rfs::openat(locks, name, flags, Mode::from_raw_mode(mode)) {
                        Ok(fd) => {
                            if dirs.group_store {
                                // Whatever the umask took away.
                                rfs::fchmod(&fd, Mode::from_raw_mode(mode))
                                    .map_err(io::Error::from)
                                    .with_context(context)?;
                            }
                            break fd;
                        }
                        Err(Errno::EXIST) => continue,
                        Err(e) => return Err(self.refused(io::Error::from(e), context)),
                    }
                }
                Err(Errno::LOOP) => return Err(not_followed(locks.as_fd(), name, path)),
                Err(e) => return Err(self.refused(io::Error::from(e), context)),
            }
        };
        let stat = regular(&fd, path)?;
        Ok((fd, stat))
    }

    /// Reads and hashes the current document before the lock, so that a big
    /// document is not hashed while other writers wait, and checks the
    /// precondition against it. A failure here is final, and is as true as
    /// one found under the lock: the bytes read were the document's at that
    /// moment. So a mismatch never waits for another writer, and a key that
    /// was never written never gets a lock file. The file stays open until
    /// the check under the lock: while it is open, its inode number cannot
    /// be given to a new file.
    fn look(&self, dirs: &Dirs, key: &Key, precondition: &Precondition) -> Result<Seen> {
        let started = SystemTime::now();
        let path = self.document_path(key);
        let seen = match open_regular(dirs.store.as_fd(), key.file_name(), &path)? {
            None => Seen {
                etag: None,
                file: None,
                started,
            },
            Some((file, stat)) => Seen {
                etag: Some(hash(&file, &stat, &path)?),
                file: Some((file, stat)),
                started,
            },
        };
        precondition.check(key, seen.etag.as_deref())?;
        Ok(seen)
    }

    /// `look` while the input streams into `temp`: the current document is
    /// opened first, and if it is big, hashed on a second thread during
    /// `stream`, so a big rewrite costs about one MD5 pass instead of two.
    /// Everything else happens in the order of a `stream` then a `look`: an
    /// error from opening the document, or a mismatch, is reported only
    /// after the input was read (invalid input still exits 6 first).
    fn look_while<T>(
        &self,
        dirs: &Dirs,
        key: &Key,
        precondition: &Precondition,
        stream: impl FnOnce() -> Result<T>,
    ) -> Result<(T, Seen)> {
        let started = SystemTime::now();
        let path = self.document_path(key);
        let opened = open_regular(dirs.store.as_fd(), key.file_name(), &path);
        let (streamed, etag, file) = match opened {
            Ok(Some((file, stat))) if stat.st_size as u64 > document::HASH_THREAD_AFTER => {
                let cancelled = AtomicBool::new(false);
                let (streamed, etag) = thread::scope(|scope| {
                    let hashed = scope.spawn(|| {
                        document::etag_of_file_unless(&file, stat.st_size as u64, &cancelled)
                            .with_context(|| format!("cannot read '{}'", path.display()))
                    });
                    let streamed = stream();
                    // Failed input: the old document's ETag is not needed.
                    if streamed.is_err() {
                        cancelled.store(true, Ordering::Relaxed);
                    }
                    (streamed, hashed.join().expect("hashing does not panic"))
                });
                (streamed?, Some(etag?), Some((file, stat)))
            }
            opened => {
                let streamed = stream()?;
                match opened? {
                    Some((file, stat)) => (
                        streamed,
                        Some(hash(&file, &stat, &path)?),
                        Some((file, stat)),
                    ),
                    None => (streamed, None, None),
                }
            }
        };
        precondition.check(key, etag.as_deref())?;
        let seen = Seen {
            etag,
            file,
            started,
        };
        Ok((streamed, seen))
    }

    /// Under the lock: the current ETag and the document's metadata. The
    /// look's hash stands only when the path still names the file the look
    /// kept open and `unchanged` proves its bytes the same; otherwise the
    /// document is hashed again.
    fn confirm(&self, dirs: &Dirs, key: &Key, seen: Seen) -> Result<Option<(String, Stat)>> {
        let path = self.document_path(key);
        let Some(now) = current_stat(dirs, key, &path)? else {
            return Ok(None);
        };
        if let (Some((file, before)), Some(etag)) = (seen.file, seen.etag) {
            if same_inode(&now, &before) {
                if unchanged(&before, &now, seen.started) {
                    return Ok(Some((etag, now)));
                }
                // The same file, maybe changed in place: hash what it holds now.
                return Ok(Some((hash(&file, &now, &path)?, now)));
            }
        }
        match open_regular(dirs.store.as_fd(), key.file_name(), &path)? {
            Some((file, stat)) => Ok(Some((hash(&file, &stat, &path)?, stat))),
            None => Ok(None),
        }
    }

    /// fsyncs the store directory, so a rename or unlink survives power loss.
    fn sync_dir(&self, dirs: &Dirs) -> Result<()> {
        if faults::skip_fsync() {
            return Ok(());
        }
        faults::check(Point::DirFsync)
            .and_then(|()| Ok(rfs::fsync(&dirs.store)?))
            .with_context(|| format!("cannot sync the store directory '{}'", self.dir.display()))
    }
}

impl Store for FsStore {
    fn read(&self, key: &Key) -> Result<Option<Box<dyn Read>>> {
        let path = self.document_path(key);
        Ok(open_document(&path)?.map(|(file, _)| {
            let name = format!("'{}'", path.display());
            Box::new(document::Named::new(file, name)) as Box<dyn Read>
        }))
    }

    fn put(&self, key: &Key, input: &mut dyn Read, precondition: &Precondition) -> Result<String> {
        let dirs = self.open_store(true)?.expect("created when missing");
        let mut temp = self.create_temp(&dirs)?;
        let mut stream = || {
            let fd = temp.file().as_raw_fd();
            let copied = document::copy_validated(
                input,
                &mut WriteBack::new(faults::writer(temp.file()), fd),
            );
            let copied = copied.map_err(|e| copy_error(e, &temp.path))?;
            if !faults::skip_fsync() {
                faults::check(Point::Fsync)
                    .and_then(|()| temp.file().sync_all())
                    .with_context(|| format!("cannot sync '{}'", temp.path.display()))?;
            }
            Ok(copied)
        };
        // Last writer wins needs no look at the current document.
        let (copied, seen) = match precondition {
            Precondition::Any => (stream()?, None),
            _ => {
                let (copied, seen) = self.look_while(&dirs, key, precondition, stream)?;
                (copied, Some(seen))
            }
        };
        let path = self.document_path(key);
        self.with_lock(&dirs, key, || {
            let replaced = match seen {
                Some(seen) => {
                    let current = self.confirm(&dirs, key, seen)?;
                    precondition.check(key, current.as_ref().map(|(etag, _)| etag.as_str()))?;
                    current.map(|(_, stat)| stat)
                }
                // Last writer wins replaces whatever is there, a symbolic
                // link included (the rename does not follow it); only a
                // regular file has a mode to keep.
                None => current_stat(&dirs, key, &path).unwrap_or(None),
            };
            set_mode(temp.file(), replaced.as_ref())
                .with_context(|| format!("cannot set the mode of '{}'", temp.path.display()))?;
            faults::pause(Pause::Locked);
            temp.persist(&dirs, &key.file_name(), &path)?;
            // Readers may already see the new document: it is not rolled back.
            self.sync_dir(&dirs)
                .context("the document was replaced, but may not survive a power loss")
        })?;
        if temp.sweep_due {
            remove_stale_temps(&temp.dir);
        }
        Ok(copied.etag)
    }

    fn batch<'a>(&'a self, precondition: &Precondition) -> Result<Box<dyn Batch + 'a>> {
        let dirs = self.open_store(true)?.expect("created when missing");
        let tmp_path = self.internal_path("tmp");
        let internal = self.internal(&dirs)?;
        let tmp = self.sub_dir(&dirs, internal.as_fd(), "tmp", &tmp_path)?;
        Ok(Box::new(FsBatch {
            store: self,
            dirs,
            tmp: Rc::new(tmp),
            tmp_path,
            precondition: precondition.clone(),
            max_docs: batch_docs(),
            pending: Vec::new(),
            keys: BTreeSet::new(),
            bytes: 0,
            swept: false,
        }))
    }

    fn delete(&self, key: &Key, precondition: &Precondition) -> Result<()> {
        let Some(dirs) = self.open_store(false)? else {
            return precondition.check(key, None).map_err(Into::into);
        };
        let seen = self.look(&dirs, key, precondition)?;
        if seen.etag.is_none() {
            // Nothing to delete, and the precondition allowed that.
            return Ok(());
        }
        let path = self.document_path(key);
        self.with_lock(&dirs, key, || {
            let current = self.confirm(&dirs, key, seen)?;
            precondition.check(key, current.as_ref().map(|(etag, _)| etag.as_str()))?;
            faults::pause(Pause::Locked);
            if current.is_some() {
                rfs::unlinkat(&dirs.store, key.file_name().as_str(), AtFlags::empty())
                    .map_err(io::Error::from)
                    .with_context(|| format!("cannot delete '{}'", path.display()))?;
                self.sync_dir(&dirs)
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

    fn local_file(&self, key: &Key) -> Option<PathBuf> {
        Some(self.document_path(key))
    }

    fn watch(&self, key: &Key) -> Result<Box<dyn Waiter>> {
        Ok(Box::new(self.notified(key)))
    }

    fn list(&self, prefix: &str, details: bool) -> Result<Vec<Entry>> {
        self.list_entries(prefix, details)?
            .into_iter()
            .map(|entry| entry.map_err(|unreadable| unreadable.error))
            .collect()
    }

    fn list_entries(
        &self,
        prefix: &str,
        details: bool,
    ) -> Result<Vec<std::result::Result<Entry, Unreadable>>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                return Err(anyhow::anyhow!(
                    "the store '{}' is not a directory",
                    self.dir.display()
                ))
            }
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
                match self.details(&entry.path()) {
                    Ok(Some(details)) => Some(details),
                    Ok(None) => continue, // deleted since the directory was read
                    // One unreadable document (a link, no permission) is
                    // named in its place; the rest are still listed.
                    Err(error) => {
                        listing.push(Err(Unreadable { key, error }));
                        continue;
                    }
                }
            } else {
                None
            };
            listing.push(Ok(Entry { key, details }));
        }
        fn key(entry: &std::result::Result<Entry, Unreadable>) -> &Key {
            match entry {
                Ok(entry) => &entry.key,
                Err(unreadable) => &unreadable.key,
            }
        }
        listing.sort_by(|a, b| key(a).cmp(key(b)));
        Ok(listing)
    }
}

impl FsStore {
    /// ETag, size and time of one document, from one open file.
    fn details(&self, path: &Path) -> Result<Option<Details>> {
        let Some((file, stat)) = open_document(path)? else {
            return Ok(None);
        };
        let etag = hash(&file, &stat, path)?;
        let modified = UNIX_EPOCH
            + Duration::new(
                u64::try_from(stat.st_mtime).unwrap_or(0),
                stat.st_mtime_nsec as u32,
            );
        Ok(Some(Details {
            etag,
            size: stat.st_size as u64,
            modified,
        }))
    }
}

/// At most this many documents are committed together; fewer when the
/// limit on open files is low (a pending document holds its temporary file,
/// maybe the current document from its look, and at commit its lock).
const BATCH_DOCS: usize = 256;
/// A batch is committed once its documents reach this many bytes: that
/// bounds the unsynced data one commit flushes, and how long it holds
/// the batch's locks. (Memory does not grow with it: each document is in
/// its temporary file, not in memory.)
const BATCH_BYTES: u64 = 16 << 20;

/// `BATCH_DOCS`, or what fits in a third of the open files left over.
fn batch_docs() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1;
    }
    let spare = usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX);
    (spare.saturating_sub(64) / 3).clamp(1, BATCH_DOCS)
}

/// Documents written with one sync pass and one directory fsync (group
/// commit, for `import`). Each is streamed into its own temporary file and
/// looked at when it is added, exactly as `put` does. `commit` then:
///
/// 1. fsyncs every temporary file (write-back started on all of them
///    first, so the file system can commit them together);
/// 2. takes the batch's key locks in key order (two batches never wait
///    for each other in a cycle) and holds them all;
/// 3. in the order the documents were added: checks the precondition
///    under the lock (`confirm`, the re-hash rule), renames;
/// 4. fsyncs the store directory once, then releases the locks.
///
/// So each rename is of a synced file, under its key's lock, after its
/// precondition held; a crash leaves each key old or new; and no writer
/// builds on a document of the batch before it is durable.
struct FsBatch<'a> {
    store: &'a FsStore,
    dirs: Dirs,
    tmp: Rc<OwnedFd>,
    tmp_path: PathBuf,
    precondition: Precondition,
    max_docs: usize,
    pending: Vec<Pending>,
    keys: BTreeSet<Key>,
    bytes: u64,
    /// Stale temporary files are swept once a batch, after its first commit.
    swept: bool,
}

/// A document of a batch: in its temporary file, to be synced and
/// renamed; or refused by the look (its temporary file already removed).
struct Pending {
    key: Key,
    doc: Result<Ready, Error>,
}

struct Ready {
    temp: TempFile,
    etag: String,
    seen: Option<Seen>,
}

impl Batch for FsBatch<'_> {
    fn room_for(&self, key: &Key) -> bool {
        self.pending.len() < self.max_docs && self.bytes < BATCH_BYTES && !self.keys.contains(key)
    }

    fn add(&mut self, key: &Key, input: &mut dyn Read) -> Result<()> {
        let store = self.store;
        let mut temp = store.create_temp_in(self.tmp.clone(), &self.tmp_path)?;
        let fd = temp.file().as_raw_fd();
        let copied =
            document::copy_validated(input, &mut WriteBack::new(faults::writer(temp.file()), fd));
        let copied = copied.map_err(|e| copy_error(e, &temp.path))?;
        let seen = match &self.precondition {
            Precondition::Any => Ok(None),
            precondition => match store.look(&self.dirs, key, precondition) {
                Ok(seen) => Ok(Some(seen)),
                Err(e) => Err(refused(e)?),
            },
        };
        self.bytes += copied.len;
        self.keys.insert(key.clone());
        self.pending.push(Pending {
            key: key.clone(),
            doc: seen.map(|seen| Ready {
                temp,
                etag: copied.etag,
                seen,
            }),
        });
        Ok(())
    }

    fn commit(&mut self) -> Committed {
        let pending = std::mem::take(&mut self.pending);
        self.keys.clear();
        self.bytes = 0;
        let committed = self.commit_pending(pending);
        if !self.swept {
            self.swept = true;
            remove_stale_temps(&self.tmp);
        }
        committed
    }
}

impl FsBatch<'_> {
    fn commit_pending(&self, mut pending: Vec<Pending>) -> Committed {
        let (store, dirs) = (self.store, &self.dirs);
        let mut done = Committed::default();
        if pending.is_empty() {
            return done;
        }
        if !faults::skip_fsync() {
            // Write-back of every file first: the fsyncs that follow then
            // mostly wait for one journal commit instead of making one each.
            #[cfg(target_os = "linux")]
            for doc in pending.iter_mut().filter_map(|p| p.doc.as_mut().ok()) {
                // SAFETY: a hint on an open file descriptor; no memory is passed.
                unsafe {
                    libc::sync_file_range(
                        std::os::fd::AsRawFd::as_raw_fd(doc.temp.file()),
                        0,
                        0,
                        libc::SYNC_FILE_RANGE_WRITE,
                    );
                }
            }
            for (index, pending) in pending.iter_mut().enumerate() {
                let Ok(doc) = &mut pending.doc else {
                    continue;
                };
                let synced = faults::check(Point::Fsync)
                    .and_then(|()| doc.temp.file().sync_all())
                    .with_context(|| format!("cannot sync '{}'", doc.temp.path.display()));
                if let Err(e) = synced {
                    done.failure = Some((Some(index), e));
                    return done;
                }
            }
        }
        // Locks in key order, all held until the directory is synced.
        let mut order: Vec<usize> = (0..pending.len())
            .filter(|&index| pending[index].doc.is_ok())
            .collect();
        order.sort_by(|&a, &b| pending[a].key.cmp(&pending[b].key));
        let mut locks = Vec::with_capacity(order.len());
        for index in order {
            match store.lock(dirs, &pending[index].key) {
                Ok(lock) => locks.push(lock),
                Err(e) => {
                    done.failure = Some((Some(index), e));
                    return done;
                }
            }
        }
        let mut renamed = false;
        for (index, pending) in pending.into_iter().enumerate() {
            let mut doc = match pending.doc {
                Ok(doc) => doc,
                Err(refused) => {
                    done.outcomes.push(Err(refused));
                    continue;
                }
            };
            match store.replace(dirs, &pending.key, &mut doc, &self.precondition) {
                Ok(()) => {
                    renamed = true;
                    done.outcomes.push(Ok(doc.etag));
                }
                Err(e) => match refused(e) {
                    Ok(refused) => done.outcomes.push(Err(refused)),
                    Err(e) => {
                        done.failure = Some((Some(index), e));
                        break;
                    }
                },
            }
        }
        if renamed {
            if let Err(e) = store.sync_dir(dirs) {
                // Readers may already see them: they are not rolled back,
                // but none counts as written.
                done.outcomes.clear();
                let e = e.context(
                    "the batch's documents were replaced, but may not survive a power loss",
                );
                done.failure = Some((None, e));
            }
        }
        drop(locks);
        done
    }
}

impl FsStore {
    /// Under the key's lock: checks the precondition of a batch's document
    /// against the current one, and renames it into place.
    fn replace(
        &self,
        dirs: &Dirs,
        key: &Key,
        doc: &mut Ready,
        precondition: &Precondition,
    ) -> Result<()> {
        let path = self.document_path(key);
        let replaced = match doc.seen.take() {
            Some(seen) => {
                let current = self.confirm(dirs, key, seen)?;
                precondition.check(key, current.as_ref().map(|(etag, _)| etag.as_str()))?;
                current.map(|(_, stat)| stat)
            }
            None => current_stat(dirs, key, &path).unwrap_or(None),
        };
        set_mode(doc.temp.file(), replaced.as_ref())
            .with_context(|| format!("cannot set the mode of '{}'", doc.temp.path.display()))?;
        faults::pause(Pause::Locked);
        doc.temp.persist(dirs, &key.file_name(), &path)
    }
}

/// A failed precondition as the error it is (`Ok`), or any other error
/// as it was (`Err`).
fn refused(error: anyhow::Error) -> Result<Error> {
    if matches!(error.downcast_ref(), Some(Error::PreconditionFailed { .. })) {
        Ok(error.downcast::<Error>().expect("just matched"))
    } else {
        Err(error)
    }
}

/// The current document as `look` read it: its ETag, the file it read
/// (kept open) with its metadata from before the read, and when the look began.
struct Seen {
    etag: Option<String>,
    file: Option<(File, Stat)>,
    started: SystemTime,
}

#[allow(clippy::unnecessary_cast)]
fn same_inode(a: &Stat, b: &Stat) -> bool {
    (a.st_dev as u64, a.st_ino as u64) == (b.st_dev as u64, b.st_ino as u64)
}

/// Whether a file the look kept open (`before`, its metadata then; `now`,
/// under the lock) provably still holds the bytes the look hashed. Any write
/// sets the change time to the (coarse) clock, truncated to the file
/// system's granularity: unless the change time is older than the look's
/// start by more than that granularity and a clock tick, a write after the
/// look could have left every timestamp as it was. Whole-second change
/// times mean a coarse file system (one second; FAT's two): allow 3 s, else
/// 100 ms.
#[allow(clippy::unnecessary_cast)]
fn unchanged(before: &Stat, now: &Stat, look_started: SystemTime) -> bool {
    let times = |s: &Stat| {
        (
            s.st_size as i64,
            s.st_mtime as i64,
            s.st_mtime_nsec as i64,
            s.st_ctime as i64,
            s.st_ctime_nsec as i64,
        )
    };
    if times(before) != times(now) || now.st_size as u64 <= REHASH_UP_TO {
        return false;
    }
    let margin = if now.st_ctime_nsec == 0 {
        Duration::from_secs(3)
    } else {
        Duration::from_millis(100)
    };
    let changed = UNIX_EPOCH
        + Duration::new(
            u64::try_from(now.st_ctime as i64).unwrap_or(0),
            now.st_ctime_nsec as u32,
        );
    changed + margin < look_started
}

/// The metadata of the key's document under the lock, `None` if there is
/// none; anything but a regular file is refused.
fn current_stat(dirs: &Dirs, key: &Key, path: &Path) -> Result<Option<Stat>> {
    match rfs::statat(
        &dirs.store,
        key.file_name().as_str(),
        AtFlags::SYMLINK_NOFOLLOW,
    ) {
        Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile => {
            Ok(Some(stat))
        }
        Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink => {
            Err(symlink_error(path))
        }
        Ok(_) => Err(not_regular(path)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => {
            Err(io::Error::from(e)).with_context(|| format!("cannot read '{}'", path.display()))
        }
    }
}

/// Gives the temporary file the mode of the document it replaces, and its
/// owner and group where this process may (as `sed -i` does); a new
/// document gets the umask's mode, as any new file.
fn set_mode(temp: &File, replaced: Option<&Stat>) -> io::Result<()> {
    let mode = match replaced {
        Some(old) => {
            let mine = rfs::fstat(temp)?;
            if (old.st_uid, old.st_gid) != (mine.st_uid, mine.st_gid) {
                let uid = (old.st_uid != mine.st_uid).then(|| rfs::Uid::from_raw(old.st_uid));
                let gid = (old.st_gid != mine.st_gid).then(|| rfs::Gid::from_raw(old.st_gid));
                match rfs::fchown(temp, uid, gid) {
                    Ok(()) => {}
                    // Not allowed to give the file away: keep at least the group.
                    Err(Errno::PERM) if uid.is_some() && gid.is_some() => {
                        match rfs::fchown(temp, None, gid) {
                            Ok(()) | Err(Errno::PERM) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                    Err(Errno::PERM) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            old.st_mode & 0o777
        }
        None => 0o666 & !umask(),
    };
    if mode != 0o600 || replaced.is_some() {
        rfs::fchmod(temp, Mode::from_raw_mode(mode))?;
    }
    Ok(())
}

/// The process's umask (read by setting it, then setting it back).
fn umask() -> u32 {
    // SAFETY: umask only swaps the process's file-creation mask; nothing
    // creates files between the two calls.
    unsafe {
        let mask = libc::umask(0o022);
        libc::umask(mask);
        mask as u32
    }
}

/// Removes temporary files that a killed writer left behind: regular files
/// named exactly like temporary files, older than `STALE_TEMP_AGE`, whose
/// lock no writer holds. A name whose pid still runs here is kept too (a
/// writer of an older etagstore holds no lock). Best effort, after the
/// write, outside the key's lock, relative to the `tmp` handle only.
fn remove_stale_temps(tmp: &OwnedFd) {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let Ok(entries) = rfs::openat(tmp, ".", flags, Mode::empty()).and_then(rfs::Dir::new) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = temp_pid(name.to_bytes()) else {
            continue;
        };
        if !matches!(entry.file_type(), FileType::RegularFile | FileType::Unknown) {
            continue;
        }
        let Ok(fd) = rfs::openat(tmp, name, OPEN, Mode::empty()) else {
            continue;
        };
        let Ok(stat) = rfs::fstat(&fd) else {
            continue;
        };
        let modified =
            UNIX_EPOCH + Duration::from_secs(u64::try_from(stat.st_mtime).unwrap_or(u64::MAX));
        let old = now.duration_since(modified).unwrap_or_default() > STALE_TEMP_AGE;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile
            || !old
            || rfs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_err()
            || process_is_alive(pid)
        {
            continue;
        }
        // Still the file just locked under that name.
        if rfs::statat(tmp, name, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|s| same_inode(&s, &stat)) {
            let _ = rfs::unlinkat(tmp, name, AtFlags::empty());
        }
    }
}

/// Whether the write whose temporary file is `<pid>-<nanos>-<attempt>`
/// sweeps `tmp` after it succeeds: about one write in `SWEEP_ONE_IN`,
/// chosen by a hash of its pid and clock (no system call, and writers in
/// step do not all sweep together), and every write whose first name was
/// taken (a leftover of an earlier process with the same pid). A sweep
/// costs an `openat` and a `getdents64` pass over `tmp`; a stale file
/// only costs disk space, and waits on average `SWEEP_ONE_IN` writes.
fn sweep_due(pid: u32, nanos: u32, attempt: u32) -> bool {
    let mixed = (u64::from(nanos) ^ (u64::from(pid) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    attempt > 0 || mixed >> (64 - SWEEP_ONE_IN.trailing_zeros()) == 0
}

/// The pid in a temporary file's name `<pid>-<9 digits>-<attempt>.json`;
/// `None` for any other name.
fn temp_pid(name: &[u8]) -> Option<libc::pid_t> {
    let name = std::str::from_utf8(name).ok()?.strip_suffix(".json")?;
    let mut parts = name.split('-');
    let (pid, nanos, attempt) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if parts.next().is_some()
        || !digits(pid)
        || nanos.len() != 9
        || !digits(nanos)
        || !digits(attempt)
    {
        return None;
    }
    pid.parse().ok()
}

/// Hashes an open document, all of it (whatever its file offset); `stat`
/// is its metadata.
fn hash(file: &File, stat: &Stat, path: &Path) -> Result<String> {
    document::etag_of_file(file, stat.st_size as u64)
        .with_context(|| format!("cannot read '{}'", path.display()))
}

/// Opens a document file for reading by its path, `None` if it does not
/// exist: what readers use, with no directory handle to open first.
fn open_document(path: &Path) -> Result<Option<(File, Stat)>> {
    open_regular(rfs::CWD, path, path)
}

/// Opens `name` in `dir` for reading, `None` if it does not exist. A
/// symbolic link is refused, never followed: it could lead out of the
/// store. So is anything but a regular file: a FIFO would hang the reader.
fn open_regular(
    dir: BorrowedFd,
    name: impl rustix::path::Arg,
    path: &Path,
) -> Result<Option<(File, Stat)>> {
    match rfs::openat(dir, name, OPEN, Mode::empty()) {
        Ok(fd) => {
            let stat = regular(&fd, path)?;
            Ok(Some((File::from(fd), stat)))
        }
        Err(Errno::NOENT) => Ok(None),
        Err(Errno::LOOP) => Err(symlink_error(path)),
        // Only a store that is not a directory makes a document's parent one.
        Err(Errno::NOTDIR) => Err(anyhow::anyhow!(
            "the store '{}' is not a directory",
            path.parent().unwrap_or(Path::new(".")).display()
        )),
        Err(e) => {
            Err(io::Error::from(e)).with_context(|| format!("cannot read '{}'", path.display()))
        }
    }
}

/// The metadata of an open file that must be a regular file.
fn regular(fd: &OwnedFd, path: &Path) -> Result<Stat> {
    let stat = rfs::fstat(fd)
        .map_err(io::Error::from)
        .with_context(|| format!("cannot read '{}'", path.display()))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(not_regular(path));
    }
    Ok(stat)
}

fn not_regular(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "'{}' is not a regular file; etagstore keeps documents and locks only in \
         regular files (remove it)",
        path.display()
    )
}

fn symlink_error(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "'{}' is a symbolic link; etagstore does not follow links out of the store \
         (remove it, or replace it with the document itself)",
        path.display()
    )
}

/// Why `name` in `parent` could not be opened as a directory or file
/// without following links: a symbolic link, or something else.
fn not_followed(parent: BorrowedFd, name: &str, path: &Path) -> anyhow::Error {
    match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink => anyhow::anyhow!(
            "'{}' is a symbolic link; etagstore does not follow links inside its store \
             (remove it)",
            path.display()
        ),
        _ => anyhow::anyhow!("'{}' is not a directory (remove it)", path.display()),
    }
}

/// Creates a missing store directory. The directories that now hold it are
/// fsynced too, or the first document could vanish with its new directory
/// on power loss.
fn create_store_dir(store: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut existing = store;
    while !existing.as_os_str().is_empty() && !existing.exists() {
        missing.push(existing);
        existing = existing.parent().unwrap_or(Path::new(""));
    }
    fs::create_dir_all(store).with_context(|| {
        if store.exists() && !store.is_dir() {
            format!("the store '{}' is not a directory", store.display())
        } else {
            format!("cannot create the store directory '{}'", store.display())
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

/// A writer into a temporary file that starts the kernel's write-back
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, Linux only) of each
/// `WRITE_BACK_EVERY` bytes written, without waiting for it: a big
/// document then reaches the disk while the rest of it is still read, and
/// the fsync that follows (which alone makes it durable) waits for less.
struct WriteBack<W> {
    inner: W,
    fd: RawFd,
    written: u64,
    /// Write-back was started for the bytes before this offset.
    started: u64,
}

impl<W: io::Write> WriteBack<W> {
    fn new(inner: W, fd: RawFd) -> WriteBack<W> {
        WriteBack {
            inner,
            fd,
            written: 0,
            started: 0,
        }
    }
}

impl<W: io::Write> io::Write for WriteBack<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= WRITE_BACK_EVERY && !faults::skip_fsync() {
            #[cfg(target_os = "linux")]
            // SAFETY: a hint on an open file descriptor; no memory is
            // passed. An error is ignored: the fsync reports real ones.
            unsafe {
                libc::sync_file_range(
                    self.fd,
                    self.started as libc::off64_t,
                    (self.written - self.started) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            #[cfg(not(target_os = "linux"))]
            let _ = self.fd;
            self.started = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A temporary file, locked while open, that is removed unless it is
/// renamed into place. Everything is relative to the `tmp` handle.
struct TempFile {
    dir: Rc<OwnedFd>,
    name: String,
    path: PathBuf,
    file: Option<File>,
    /// This write sweeps `tmp` once it succeeds (`sweep_due`).
    sweep_due: bool,
}

impl TempFile {
    fn file(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("the file is open until persisted")
    }

    fn persist(&mut self, dirs: &Dirs, target: &str, target_path: &Path) -> Result<()> {
        faults::check(Point::Rename)
            .and_then(|()| Ok(rfs::renameat(&self.dir, &self.name, &dirs.store, target)?))
            .with_context(|| {
                format!(
                    "cannot rename '{}' to '{}'",
                    self.path.display(),
                    target_path.display()
                )
            })?;
        self.file = None;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = rfs::unlinkat(&self.dir, &self.name, AtFlags::empty());
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
        store.read(key).unwrap()?.read_to_end(&mut bytes).unwrap();
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
        let dirs = store.open_store(false).unwrap().unwrap();
        let result = store.with_lock(&dirs, &key, || {
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

    #[test]
    fn a_big_document_hashed_beside_the_input_still_decides_the_precondition() {
        let (_dir, store) = store();
        let key = Key::new("big").unwrap();
        // Past the size whose old version is hashed on a thread.
        let big = |fill: u8| {
            let mut doc = vec![b'"'];
            doc.resize(document::HASH_THREAD_AFTER as usize + 100, fill);
            doc.push(b'"');
            doc
        };
        let (v1, v2, v3) = (big(b'a'), big(b'b'), big(b'c'));
        let etag = store
            .put(&key, &mut &v1[..], &Precondition::Missing)
            .unwrap();
        let stale = Precondition::Matches(document::etag_of(b"stale"));
        // Invalid input is exit 6 even when the ETag is stale too.
        let error = store.put(&key, &mut &b"{oops"[..], &stale).unwrap_err();
        assert_eq!(crate::error::exit_code(&error), 6);
        let error = store.put(&key, &mut &v2[..], &stale).unwrap_err();
        assert_eq!(crate::error::exit_code(&error), 3);
        assert!(format!("{error:#}").contains(&etag), "{error:#}");
        assert_eq!(read(&store, &key).unwrap(), v1);
        let etag2 = store
            .put(&key, &mut &v2[..], &Precondition::Matches(etag.clone()))
            .unwrap();
        assert_eq!(etag2, document::etag_of(&v2));
        assert_eq!(read(&store, &key).unwrap(), v2);
        // The ETag of the version replaced is refused once it is gone.
        let error = store
            .put(&key, &mut &v3[..], &Precondition::Matches(etag))
            .unwrap_err();
        assert_eq!(crate::error::exit_code(&error), 3);
        assert_eq!(read(&store, &key).unwrap(), v2);
        assert_eq!(fs::read_dir(store.internal_path("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn write_back_starts_every_few_mib_and_passes_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = File::create(dir.path().join("t")).unwrap();
        let fd = file.as_raw_fd();
        let data: Vec<u8> = (0..3 * WRITE_BACK_EVERY + 12345)
            .map(|i| (i % 251) as u8)
            .collect();
        let mut writer = WriteBack::new(&mut file, fd);
        for chunk in data.chunks(document::CHUNK - 7) {
            io::Write::write_all(&mut writer, chunk).unwrap();
        }
        // Started once a step has been written, never for the tail (the fsync's).
        assert!(writer.started >= 2 * WRITE_BACK_EVERY, "{}", writer.started);
        assert!(writer.started < writer.written);
        assert_eq!(writer.written, data.len() as u64);
        assert_eq!(fs::read(dir.path().join("t")).unwrap(), data);
    }

    #[test]
    fn about_one_write_in_sixteen_sweeps() {
        let pid = 4242;
        let due = (0..16_000u32)
            .filter(|i| sweep_due(pid, i.wrapping_mul(7_919_113) % 1_000_000_000, 0))
            .count();
        assert!((600..1400).contains(&due), "{due} of 16000");
        // Microsecond clocks (nanoseconds that are multiples of 1000) too.
        let due = (0..16_000u32)
            .filter(|i| sweep_due(pid, i * 1000, 0))
            .count();
        assert!((600..1400).contains(&due), "{due} of 16000");
        assert!(
            (0..100).all(|n| sweep_due(pid, n, 1)),
            "a taken name sweeps"
        );
    }

    #[test]
    fn only_exact_temporary_file_names_are_swept() {
        assert_eq!(temp_pid(b"123-000000042-0.json"), Some(123));
        assert_eq!(temp_pid(b"123-999999999-17.json"), Some(123));
        for name in [
            &b"123-42-0.json"[..],
            b"123-000000042-0.json.bak",
            b"123-000000042-0-1.json",
            b"123-000000042-.json",
            b"-000000042-0.json",
            b"12a-000000042-0.json",
            b"123-000000042-0.txt",
            b"notes.json",
        ] {
            assert_eq!(temp_pid(name), None, "{}", String::from_utf8_lossy(name));
        }
    }

    #[test]
    fn the_looks_hash_stands_only_for_big_files_with_old_unchanged_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        fs::write(&path, vec![b' '; (REHASH_UP_TO + 1) as usize]).unwrap();
        let stat = rfs::stat(&path).unwrap();
        let changed = UNIX_EPOCH + Duration::new(stat.st_ctime as u64, stat.st_ctime_nsec as u32);
        let later = |by: u64| changed + Duration::from_secs(by);
        assert!(unchanged(&stat, &stat, later(4)), "old and unchanged");
        assert!(
            !unchanged(&stat, &stat, changed),
            "changed as the look began"
        );
        let mut coarse = stat;
        coarse.st_ctime_nsec = 0;
        coarse.st_mtime_nsec = 0;
        let coarse_changed = UNIX_EPOCH + Duration::from_secs(coarse.st_ctime as u64);
        assert!(
            !unchanged(&coarse, &coarse, coarse_changed + Duration::from_secs(2)),
            "whole-second times two seconds old prove nothing"
        );
        assert!(unchanged(
            &coarse,
            &coarse,
            coarse_changed + Duration::from_secs(4)
        ));
        let mut written = stat;
        written.st_mtime_nsec = (written.st_mtime_nsec + 1) % 1_000_000_000;
        assert!(!unchanged(&stat, &written, later(4)), "a new mtime");
        let mut small = stat;
        small.st_size = REHASH_UP_TO as _;
        assert!(
            !unchanged(&small, &small, later(4)),
            "small documents are always hashed"
        );
    }
}
