//! The one-pass document pipeline: bytes flow from a reader to a writer in
//! fixed-size chunks while they are hashed (the ETag) and, for input,
//! checked to be exactly one JSON value in UTF-8. Memory stays bounded
//! whatever the document size.
//!
//! - `check`: the streaming JSON check;
//! - `hash`: the ETag (MD5), on a second thread for big inputs;
//! - `spool`: bytes held in memory up to a bound, then in a private temporary file;
//! - `text`: minifying and escaping JSON text.

use std::io::{self, Read, Write};

use md5::{Digest, Md5};

use crate::error::Error;

mod check;
mod hash;
mod spool;
mod text;

pub use check::{validate, Checker, MAX_DEPTH};
pub use hash::{etag_of, etag_of_file, etag_of_file_unless, hex, HASH_THREAD_AFTER};
pub use spool::{create_unique, private_temp_file, random_hex, Spool, SPOOL_MEMORY};
pub use text::{escape_json_text, escaped_len, minify, Minifier};

use hash::Hasher;

/// Chunk size of every copy: large enough for throughput, small for memory.
pub const CHUNK: usize = 64 * 1024;

/// A copy's buffer starts this small and grows to `CHUNK` once a read
/// fills it: most documents are a few hundred bytes, and zeroing (and
/// faulting in) 64 KiB for each was a quarter of a small `edit`'s
/// instructions.
pub const FIRST_CHUNK: usize = 4 * 1024;

/// What a copy saw: the ETag and the length of the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub etag: String,
    pub len: u64,
}

/// Why a copy failed: reading the source, writing the destination, or
/// invalid input. Kept apart so the caller can name the right path.
#[derive(Debug)]
pub enum CopyError {
    Read(io::Error),
    Write(io::Error),
    Invalid(Error),
}

/// Copies `input` to `output` as it is: no hash, no validation.
pub fn copy(input: &mut dyn Read, output: &mut dyn Write) -> Result<u64, CopyError> {
    pump(input, |chunk, _| {
        output.write_all(chunk).map_err(CopyError::Write)
    })
}

/// Copies `input` to `output`, hashing on the way; no validation.
pub fn copy_hashed(input: &mut dyn Read, output: &mut dyn Write) -> Result<Copied, CopyError> {
    let mut md5 = Md5::new();
    let len = pump(input, |chunk, _| {
        md5.update(chunk);
        output.write_all(chunk).map_err(CopyError::Write)
    })?;
    Ok(Copied {
        etag: hex(&md5.finalize()),
        len,
    })
}

/// Copies `input` to `output`, hashing and checking that the bytes are
/// exactly one JSON value in UTF-8. Stops at the first invalid byte.
pub fn copy_validated(input: &mut dyn Read, output: &mut dyn Write) -> Result<Copied, CopyError> {
    copy_checked(input, |chunk, _| output.write_all(chunk))
}

/// Copies a stored document into `output` without its surrounding
/// whitespace, for embedding in an envelope; the ETag covers all the bytes.
pub fn copy_value(input: &mut dyn Read, output: &mut dyn Write) -> Result<Copied, CopyError> {
    copy_checked(input, |chunk, span| {
        output.write_all(&chunk[span.0..span.1])
    })
}

/// Checks and hashes while copying: `sink` gets each chunk and the part of
/// it that lies inside the JSON value.
fn copy_checked(
    input: &mut dyn Read,
    mut sink: impl FnMut(&[u8], (usize, usize)) -> io::Result<()>,
) -> Result<Copied, CopyError> {
    let mut checker = Checker::new();
    // On an error the hasher is dropped first, which ends its thread.
    let (len, etag) = std::thread::scope(|scope| {
        let mut hasher = Hasher::new();
        let len = pump(input, |chunk, offset| {
            checker.feed(chunk).map_err(CopyError::Invalid)?;
            hasher.update(chunk, offset, scope);
            let span = checker.span_in(offset, chunk.len());
            sink(chunk, span).map_err(CopyError::Write)
        })?;
        hasher.join();
        Ok::<_, CopyError>((len, hasher.etag()))
    })?;
    checker.finish().map_err(CopyError::Invalid)?;
    Ok(Copied { etag, len })
}

/// The one read loop: hands each chunk and its offset to `each`, returns
/// the number of bytes read.
fn pump(
    input: &mut dyn Read,
    mut each: impl FnMut(&[u8], u64) -> Result<(), CopyError>,
) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; FIRST_CHUNK];
    let mut len = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(len),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        each(&buf[..n], len)?;
        len += n as u64;
        if n == buf.len() && buf.len() < CHUNK {
            buf.resize(CHUNK, 0);
        }
    }
}

/// A reader whose errors name what it reads (a path, "standard input").
pub struct Named<R> {
    inner: R,
    name: String,
}

impl<R: Read> Named<R> {
    pub fn new(inner: R, name: impl Into<String>) -> Named<R> {
        Named {
            inner,
            name: name.into(),
        }
    }
}

impl<R: Read> Read for Named<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", self.name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_hash_exactly_the_bytes_copied() {
        let doc = b"  {\"a\": 1}\n";
        let mut out = Vec::new();
        let copied = copy_validated(&mut &doc[..], &mut out).unwrap();
        assert_eq!(out, doc);
        assert_eq!(copied.len, doc.len() as u64);
        // md5 of the bytes, as md5sum prints it.
        assert_eq!(copied.etag, etag_of(doc));
        assert_eq!(etag_of(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn value_copies_drop_surrounding_whitespace_only() {
        for (doc, value) in [
            (&b"  {\"a\": [1, 2]}\n\n"[..], &b"{\"a\": [1, 2]}"[..]),
            (b"\n42\n", b"42"),
            (b"\"a b\"", b"\"a b\""),
            (b"null", b"null"),
        ] {
            let mut out = Vec::new();
            let copied = copy_value(&mut &doc[..], &mut out).unwrap();
            assert_eq!(out, value);
            assert_eq!(copied.etag, etag_of(doc));
        }
    }

    #[test]
    fn big_documents_hash_on_a_second_thread_to_the_same_etag() {
        let mut doc = b"[".to_vec();
        while doc.len() < 3 * hash::HASH_THREAD_AFTER as usize {
            doc.extend_from_slice(b"{\"k\": \"some text\", \"n\": 12345}, ");
        }
        doc.extend_from_slice(b"0]");
        let copied = copy_validated(&mut &doc[..], &mut io::sink()).unwrap();
        assert_eq!(copied.etag, etag_of(&doc));
        assert_eq!(copied.len, doc.len() as u64);
        // An error after the thread started ends it too (no hang).
        doc.extend_from_slice(b" trailing");
        let error = copy_validated(&mut &doc[..], &mut io::sink()).unwrap_err();
        assert!(matches!(error, CopyError::Invalid(_)));
        let mut broken = doc[..doc.len() / 2].to_vec();
        broken.push(b'}');
        assert!(copy_validated(&mut &broken[..], &mut io::sink()).is_err());
    }

    #[test]
    fn large_documents_stream_across_chunks() {
        let mut doc = b"[".to_vec();
        for i in 0..50_000 {
            doc.extend_from_slice(format!("{{\"n\":{i},\"s\":\"caf\u{e9} {i}\"}},").as_bytes());
        }
        doc.extend_from_slice(b"12345.678e-3]\n");
        let mut out = Vec::new();
        let copied = copy_value(&mut &doc[..], &mut out).unwrap();
        assert_eq!(out, &doc[..doc.len() - 1]);
        assert_eq!(copied.etag, etag_of(&doc));
    }
}
