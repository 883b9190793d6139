//! Bytes held until they can be written out, in memory up to a bound and
//! then in a temporary file no other user can open; and the helpers that
//! create such files.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{copy, pump, CopyError};

/// Holds bytes until they can be written out: in memory up to
/// `SPOOL_MEMORY`, then in an unnamed temporary file, so memory stays bounded.
/// `get --json` needs it because the envelope's ETag comes before the value.
pub struct Spool {
    memory: Vec<u8>,
    file: Option<File>,
}

/// How much a `Spool` keeps in memory.
pub const SPOOL_MEMORY: usize = 1024 * 1024;

impl Default for Spool {
    fn default() -> Self {
        Self::new()
    }
}

impl Spool {
    pub fn new() -> Spool {
        Spool {
            memory: Vec::new(),
            file: None,
        }
    }

    /// Writes everything spooled to `output`.
    pub fn copy_to(mut self, output: &mut dyn Write) -> Result<(), CopyError> {
        output.write_all(&self.memory).map_err(CopyError::Write)?;
        if let Some(mut file) = self.file.take() {
            file.seek(SeekFrom::Start(0)).map_err(CopyError::Read)?;
            copy(&mut file, output)?;
        }
        Ok(())
    }

    /// Hands everything spooled to `each`, in chunks, from the start; may
    /// be called again.
    pub fn replay(
        &mut self,
        mut each: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), CopyError> {
        each(&self.memory).map_err(CopyError::Write)?;
        if let Some(file) = self.file.as_mut() {
            file.seek(SeekFrom::Start(0)).map_err(CopyError::Read)?;
            pump(file, |chunk, _| each(chunk).map_err(CopyError::Write))?;
        }
        Ok(())
    }

    /// Everything spooled, in memory.
    pub fn into_vec(self) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.copy_to(&mut bytes).map_err(|e| match e {
            CopyError::Read(e) | CopyError::Write(e) => e,
            CopyError::Invalid(e) => io::Error::other(e),
        })?;
        Ok(bytes)
    }

    fn spill(&mut self) -> io::Result<&mut File> {
        let mut file = private_temp_file(&std::env::temp_dir(), true)?;
        file.write_all(&self.memory)?;
        self.memory = Vec::new();
        Ok(self.file.insert(file))
    }
}

/// A temporary file in `dir` that no other user can open: `O_TMPFILE`
/// (mode 0600, never named) where the file system has it, else a random
/// name created 0600 with `O_EXCL|O_NOFOLLOW` and unlinked at once.
/// `unnamed` false skips `O_TMPFILE` (for tests of the fallback).
pub fn private_temp_file(dir: &std::path::Path, unnamed: bool) -> io::Result<File> {
    // O_TMPFILE is Linux's alone: elsewhere (macOS, the BSDs) the named
    // fallback below is the only way.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = unnamed;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if unnamed {
        match OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_TMPFILE)
            .open(dir)
        {
            Ok(file) => return Ok(file),
            // No O_TMPFILE here (kernel or file system): use a name.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
                ) => {}
            Err(e) => return Err(e),
        }
    }
    let (path, file) = create_unique(|| dir.join(format!(".etagstore-spool-{}", random_hex())))?;
    // Unlinked at once: the space is freed whenever the process ends.
    fs::remove_file(&path)?;
    Ok(file)
}

/// Creates a new file (mode 0600, `O_EXCL|O_NOFOLLOW`) at the first path
/// from `name` that nothing holds yet: a name that exists, even as a
/// planted link, is passed over for the next one, never opened.
pub fn create_unique(mut name: impl FnMut() -> PathBuf) -> io::Result<(PathBuf, File)> {
    // Random names collide by accident about never; this many in a row
    // means something else is wrong (a directory that reports EEXIST).
    const ATTEMPTS: u32 = 100;
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let path = name();
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no unique name")))
}

/// 16 hex digits no other process can predict (std's per-process random
/// hash keys), for names in shared directories.
pub fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{:016x}", hasher.finish())
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(file) = self.file.as_mut() {
            return file.write(buf);
        }
        if self.memory.len() + buf.len() > SPOOL_MEMORY {
            return self.spill()?.write(buf);
        }
        self.memory.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::CHUNK;

    #[test]
    fn a_spool_replays_from_the_start_every_time() {
        let data: Vec<u8> = (0..SPOOL_MEMORY + 100).map(|i| (i % 7) as u8).collect();
        let mut spool = Spool::new();
        spool.write_all(&data).unwrap();
        for _ in 0..2 {
            let mut out = Vec::new();
            spool
                .replay(|chunk| {
                    out.extend_from_slice(chunk);
                    Ok(())
                })
                .unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn a_spool_gives_back_what_it_was_given_past_its_memory() {
        let data: Vec<u8> = (0..SPOOL_MEMORY * 2 + 17)
            .map(|i| (i % 251) as u8)
            .collect();
        let mut spool = Spool::new();
        for part in data.chunks(CHUNK - 3) {
            spool.write_all(part).unwrap();
        }
        assert!(spool.file.is_some());
        let mut out = Vec::new();
        spool.copy_to(&mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn private_temp_files_are_0600_and_leave_no_name_behind() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        for unnamed in [true, false] {
            let mut file = private_temp_file(dir.path(), unnamed).unwrap();
            file.write_all(b"secret").unwrap();
            assert_eq!(file.metadata().unwrap().mode() & 0o7777, 0o600);
            assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        }
        assert_ne!(random_hex(), random_hex());
    }

    #[test]
    fn unique_files_pass_over_names_that_exist_and_links_and_are_0600() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let taken = dir.path().join("a");
        let link = dir.path().join("b");
        let target = dir.path().join("target");
        fs::write(&taken, "someone else's").unwrap();
        fs::write(&target, "not mine").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let mut names = ["a", "b", "c"].into_iter().map(|n| dir.path().join(n));
        let (path, mut file) = create_unique(|| names.next().unwrap()).unwrap();
        assert_eq!(path, dir.path().join("c"));
        file.write_all(b"mine").unwrap();
        assert_eq!(file.metadata().unwrap().mode() & 0o7777, 0o600);
        assert_eq!(fs::read(&taken).unwrap(), b"someone else's");
        assert_eq!(fs::read(&target).unwrap(), b"not mine");
        // A directory where every name is taken is an error, not a hang.
        let always = dir.path().join("a");
        let error = create_unique(|| always.clone()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
    }
}
