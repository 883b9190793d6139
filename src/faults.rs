//! Fault injection for tests: with the `test-hooks` feature, the store's I/O
//! steps fail on purpose when `ETAGSTORE_FAULT` names them, and
//! `ETAGSTORE_SKIP_FSYNC` turns fsync off (the power-cut test's negative
//! control). Without the feature every check compiles to nothing and the
//! write path writes straight to the file, so release builds carry no trace
//! of it.
//!
//! `ETAGSTORE_FAULT` is a comma-separated list of `POINT[:ERRNO]`, POINT one
//! of [`Point`]'s names, ERRNO one of `EIO` (the default), `ENOSPC`,
//! `EACCES`, `EROFS`, `EDQUOT`. An unknown point or errno is a usage error
//! (exit 2) before the command runs, so a misspelt test cannot pass by
//! injecting nothing.

use std::io;

/// The steps a test can make fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// Creating the temporary file.
    TempCreate,
    /// Every write into the temporary file.
    TempWrite,
    /// Half a chunk is written, then ENOSPC.
    ShortWrite,
    /// fsync of the temporary file.
    Fsync,
    /// Opening or creating the key's lock file.
    LockCreate,
    /// Renaming the temporary file over the document.
    Rename,
    /// fsync of the store directory.
    DirFsync,
    /// Setting up inotify for `watch` (it then polls).
    WatchInotify,
}

impl Point {
    #[cfg(feature = "test-hooks")]
    const ALL: [Point; 8] = [
        Point::TempCreate,
        Point::TempWrite,
        Point::ShortWrite,
        Point::Fsync,
        Point::LockCreate,
        Point::Rename,
        Point::DirFsync,
        Point::WatchInotify,
    ];

    /// The name `ETAGSTORE_FAULT` uses.
    pub fn name(self) -> &'static str {
        match self {
            Point::TempCreate => "temp-create",
            Point::TempWrite => "temp-write",
            Point::ShortWrite => "short-write",
            Point::Fsync => "fsync",
            Point::LockCreate => "lock-create",
            Point::Rename => "rename",
            Point::DirFsync => "dir-fsync",
            Point::WatchInotify => "watch-inotify",
        }
    }
}

/// Where a test can pause a writer (`ETAGSTORE_TEST_PAUSE_<NAME>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    /// After the look at the current document, the lock file open, the
    /// lock not yet taken.
    BeforeLock,
    /// Under the lock, the precondition held, before the rename or unlink.
    Locked,
    /// On an object store, the precondition checked, before the write is sent.
    BeforeSend,
}

/// The faults `ETAGSTORE_FAULT` asks for, or why it cannot be read.
#[cfg(feature = "test-hooks")]
fn requested() -> &'static Result<Vec<(Point, i32)>, String> {
    static REQUESTED: std::sync::OnceLock<Result<Vec<(Point, i32)>, String>> =
        std::sync::OnceLock::new();
    REQUESTED.get_or_init(|| {
        let Ok(spec) = std::env::var("ETAGSTORE_FAULT") else {
            return Ok(Vec::new());
        };
        spec.split(',')
            .filter(|item| !item.is_empty())
            .map(|item| {
                let (name, errno) = item.split_once(':').unwrap_or((item, "EIO"));
                let point = Point::ALL
                    .into_iter()
                    .find(|point| point.name() == name)
                    .ok_or_else(|| format!("ETAGSTORE_FAULT: unknown point {name:?}"))?;
                let code = match errno {
                    "EIO" => libc::EIO,
                    "ENOSPC" => libc::ENOSPC,
                    "EACCES" => libc::EACCES,
                    "EROFS" => libc::EROFS,
                    "EDQUOT" => libc::EDQUOT,
                    other => return Err(format!("ETAGSTORE_FAULT: unknown errno {other:?}")),
                };
                Ok((point, code))
            })
            .collect()
    })
}

/// Checks `ETAGSTORE_FAULT` before a command runs: a usage error if it names
/// an unknown point or errno.
#[cfg(feature = "test-hooks")]
pub fn validate() -> Result<(), crate::error::Error> {
    match requested() {
        Ok(_) => Ok(()),
        Err(message) => Err(crate::error::Error::Usage(message.clone())),
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn validate() -> Result<(), crate::error::Error> {
    Ok(())
}

/// Fails with the configured error if `point` is named in `ETAGSTORE_FAULT`.
#[cfg(feature = "test-hooks")]
pub fn check(point: Point) -> io::Result<()> {
    match requested() {
        Ok(faults) => match faults.iter().find(|(named, _)| *named == point) {
            Some((_, code)) => Err(io::Error::from_raw_os_error(*code)),
            None => Ok(()),
        },
        // validate() refused it before the command ran.
        Err(_) => Ok(()),
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn check(_point: Point) -> io::Result<()> {
    Ok(())
}

/// Whether fsync is switched off (tests only).
#[inline(always)]
pub fn skip_fsync() -> bool {
    cfg!(feature = "test-hooks") && std::env::var_os("ETAGSTORE_SKIP_FSYNC").is_some()
}

/// What the temporary file is written through: the file itself, or with
/// `test-hooks` a writer that fails where the test asked.
#[cfg(feature = "test-hooks")]
pub fn writer(file: &mut std::fs::File) -> impl io::Write + '_ {
    FaultyWriter {
        file,
        written_short: false,
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn writer(file: &mut std::fs::File) -> impl io::Write + '_ {
    file
}

#[cfg(feature = "test-hooks")]
struct FaultyWriter<'a> {
    file: &'a mut std::fs::File,
    written_short: bool,
}

#[cfg(feature = "test-hooks")]
impl io::Write for FaultyWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        check(Point::TempWrite)?;
        if check(Point::ShortWrite).is_err() && buf.len() > 1 {
            if self.written_short {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            self.written_short = true;
            return self.file.write(&buf[..buf.len() / 2]);
        }
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// With `test-hooks`, pauses the process at `point` when
/// `ETAGSTORE_TEST_PAUSE_<POINT>` (`BEFORE_LOCK`, `LOCKED`, `BEFORE_SEND`) names a path:
/// announces the pause by creating `<path>.paused`, then waits until `<path>`
/// exists (for at most two minutes, so a broken test cannot hang). Tests use
/// it to change the store in those windows.
#[cfg(feature = "test-hooks")]
pub fn pause(point: Pause) {
    let name = match point {
        Pause::BeforeLock => "BEFORE_LOCK",
        Pause::Locked => "LOCKED",
        Pause::BeforeSend => "BEFORE_SEND",
    };
    let Some(path) = std::env::var_os(format!("ETAGSTORE_TEST_PAUSE_{name}")) else {
        return;
    };
    let release = std::path::PathBuf::from(path);
    let mut announce = release.clone().into_os_string();
    announce.push(".paused");
    let _ = std::fs::write(announce, std::process::id().to_string());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !release.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn pause(_point: Pause) {}
