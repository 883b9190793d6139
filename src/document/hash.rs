//! The ETag: MD5 of the document's bytes, in lower-case hex; for big
//! inputs, computed on a second thread beside the JSON check.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use md5::{Digest, Md5};

use super::{CHUNK, FIRST_CHUNK};

/// Lower-case hex of an MD5 digest.
pub fn hex(digest: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(digest.len() * 2);
    for byte in digest {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0xF)] as char);
    }
    out
}

/// The ETag of a byte string.
pub fn etag_of(bytes: &[u8]) -> String {
    hex(&Md5::digest(bytes))
}

/// The ETag of an open regular file's bytes from its start, read with
/// `pread` (the file's offset is neither used nor moved, so the file can
/// be shared by reference, with a thread too). `size` is what `fstat`
/// said: a read that comes back short at or past it is the end of the
/// file, so a small document costs one `pread`, not a second one that
/// returns 0. (A file that grew since is read on to its end.)
pub fn etag_of_file(file: &File, size: u64) -> io::Result<String> {
    etag_of_file_unless(file, size, &AtomicBool::new(false))
}

/// `etag_of_file`, given up (with an error) once `cancelled` is set: a
/// hash on a thread whose result is no longer wanted ends within a chunk.
pub fn etag_of_file_unless(file: &File, size: u64, cancelled: &AtomicBool) -> io::Result<String> {
    let mut md5 = Md5::new();
    // One byte past the size, so a file of the size said ends in one read.
    let first = usize::try_from(size).map_or(CHUNK, |size| size.saturating_add(1));
    let mut buf = vec![0u8; first.clamp(FIRST_CHUNK, CHUNK)];
    let mut offset = 0u64;
    loop {
        if cancelled.load(Ordering::Relaxed) {
            return Err(io::Error::other("cancelled"));
        }
        let n = match file.read_at(&mut buf, offset) {
            Ok(0) => return Ok(hex(&md5.finalize())),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        md5.update(&buf[..n]);
        offset += n as u64;
        if n < buf.len() && offset >= size {
            return Ok(hex(&md5.finalize()));
        }
    }
}

/// Past this many bytes, MD5 runs on a second thread, beside the JSON
/// check: a big document then costs the slower of the two, not their sum.
/// Small documents never pay for the thread. The directory store hashes
/// the document a write replaces on a thread past the same size.
pub const HASH_THREAD_AFTER: u64 = 4 * 1024 * 1024;

/// MD5 in this thread, or, for big inputs, in a helper thread fed with
/// copies of the chunks (buffers go back and forth, so none is allocated
/// per chunk).
pub(super) enum Hasher<'scope> {
    Here(Md5),
    Thread {
        chunks: mpsc::SyncSender<Vec<u8>>,
        spare: mpsc::Receiver<Vec<u8>>,
        worker: std::thread::ScopedJoinHandle<'scope, Md5>,
    },
    Done(Md5),
}

impl<'scope> Hasher<'scope> {
    pub(super) fn new() -> Hasher<'scope> {
        Hasher::Here(Md5::new())
    }

    pub(super) fn update<'env>(
        &mut self,
        chunk: &[u8],
        offset: u64,
        scope: &'scope std::thread::Scope<'scope, 'env>,
    ) {
        if let Hasher::Here(md5) = self {
            if offset < HASH_THREAD_AFTER {
                md5.update(chunk);
                return;
            }
            let mut md5 = std::mem::take(md5);
            let (chunks, received) = mpsc::sync_channel::<Vec<u8>>(4);
            let (returned, spare) = mpsc::channel();
            let worker = scope.spawn(move || {
                for chunk in received {
                    md5.update(&chunk);
                    let _ = returned.send(chunk);
                }
                md5
            });
            *self = Hasher::Thread {
                chunks,
                spare,
                worker,
            };
        }
        if let Hasher::Thread { chunks, spare, .. } = self {
            let mut buf = spare.try_recv().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(chunk);
            chunks
                .send(buf)
                .expect("the hashing thread runs until joined");
        }
    }

    /// Waits for the helper thread, if there is one.
    pub(super) fn join(&mut self) {
        if let Hasher::Thread { .. } = self {
            let Hasher::Thread { chunks, worker, .. } = std::mem::replace(self, Hasher::new())
            else {
                unreachable!()
            };
            drop(chunks);
            *self = Hasher::Done(worker.join().expect("hashing does not panic"));
        }
    }

    pub(super) fn etag(self) -> String {
        match self {
            Hasher::Here(md5) | Hasher::Done(md5) => hex(&md5.finalize()),
            Hasher::Thread { .. } => unreachable!("joined before the ETag is read"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_hashes_to_its_etag_whatever_size_was_said() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5] {
            let bytes: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let mut file = tempfile::tempfile().unwrap();
            file.write_all(&bytes).unwrap();
            let etag = etag_of(&bytes);
            // The true size; one too small or zero (the file grew since its
            // fstat) still reads to the end; one too big reads to EOF.
            for said in [len, len.saturating_sub(1), 0, len + 10] {
                assert_eq!(
                    etag_of_file(&file, said as u64).unwrap(),
                    etag,
                    "{len}, {said}"
                );
            }
        }
    }
}
