//! Fault injection for tests: with the `test-hooks` feature, the store's I/O
//! steps fail on purpose when `ETAGSTORE_FAULT` names them, and
//! `ETAGSTORE_SKIP_FSYNC` turns fsync off (the power-cut test's negative
//! control). Without the feature every check compiles to nothing, so release
//! builds carry no trace of it.
//!
//! `ETAGSTORE_FAULT` is a comma-separated list of `POINT[:ERRNO]`, ERRNO one
//! of `EIO` (the default), `ENOSPC`, `EACCES`, `EROFS`, `EDQUOT`. Points:
//! `temp-create`, `temp-write`, `short-write` (half a chunk is written, then
//! ENOSPC), `fsync`, `lock-create`, `rename`, `dir-fsync`.

use std::io;

/// Fails with the configured error if `point` is named in `ETAGSTORE_FAULT`.
#[cfg(feature = "test-hooks")]
pub fn check(point: &str) -> io::Result<()> {
    let Ok(spec) = std::env::var("ETAGSTORE_FAULT") else {
        return Ok(());
    };
    for item in spec.split(',') {
        let (name, errno) = item.split_once(':').unwrap_or((item, "EIO"));
        if name == point {
            let code = match errno {
                "ENOSPC" => libc::ENOSPC,
                "EACCES" => libc::EACCES,
                "EROFS" => libc::EROFS,
                "EDQUOT" => libc::EDQUOT,
                _ => libc::EIO,
            };
            return Err(io::Error::from_raw_os_error(code));
        }
    }
    Ok(())
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn check(_point: &str) -> io::Result<()> {
    Ok(())
}

/// Whether fsync is switched off (tests only).
#[inline(always)]
pub fn skip_fsync() -> bool {
    cfg!(feature = "test-hooks") && std::env::var_os("ETAGSTORE_SKIP_FSYNC").is_some()
}

/// Writes to the temporary file, failing where the test asked.
pub struct FaultyWriter<'a> {
    pub file: &'a mut std::fs::File,
    pub written_short: bool,
}

impl io::Write for FaultyWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        check("temp-write")?;
        if check("short-write").is_err() && buf.len() > 1 {
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
/// `ETAGSTORE_TEST_PAUSE_<POINT>` names a path: announces the pause by
/// creating `<path>.paused`, then waits until `<path>` exists (for at most
/// two minutes, so a broken test cannot hang). Points: `BEFORE_LOCK` (after
/// the look at the current document, the lock file open, the lock not yet
/// taken) and `LOCKED` (under the lock, the precondition held, before the
/// rename or unlink). Tests use it to change the store in those windows.
#[cfg(feature = "test-hooks")]
pub fn pause(point: &str) {
    let Some(path) = std::env::var_os(format!("ETAGSTORE_TEST_PAUSE_{point}")) else {
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
pub fn pause(_point: &str) {}
