//! The ETag: MD5 of the document's bytes, in lower-case hex; for big
//! inputs, computed on a second thread beside the JSON check.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use md5::{Digest, Md5};

use super::CHUNK;

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

/// The ETag of an open file's bytes from its start, read with `pread`
/// (the file's offset is neither used nor moved, so the file can be shared
/// by reference, with a thread too).
pub fn etag_of_file(file: &File) -> io::Result<String> {
    etag_of_file_unless(file, &AtomicBool::new(false))
}

/// `etag_of_file`, given up (with an error) once `cancelled` is set: a
/// hash on a thread whose result is no longer wanted ends within a chunk.
pub fn etag_of_file_unless(file: &File, cancelled: &AtomicBool) -> io::Result<String> {
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; CHUNK];
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
