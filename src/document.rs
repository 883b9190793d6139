//! The one-pass document pipeline: bytes flow from a reader to a writer in
//! fixed-size chunks while they are hashed (the ETag) and, for input,
//! checked to be exactly one JSON value in UTF-8. Memory stays bounded
//! whatever the document size.
//!
//! The JSON check is a small streaming state machine rather than a parser:
//! serde_json's skip-a-value path neither checks UTF-8 inside strings nor
//! limits nesting, and nothing here needs the parsed value.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};

use crate::error::Error;

/// Chunk size of every copy: large enough for throughput, small for memory.
pub const CHUNK: usize = 64 * 1024;
/// The deepest nesting accepted (docs/contract.md: up to 128).
pub const MAX_DEPTH: usize = 128;

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

/// Past this many bytes, MD5 runs on a second thread, beside the JSON
/// check: a big document then costs the slower of the two, not their sum.
/// Small documents never pay for the thread.
const HASH_THREAD_AFTER: u64 = 4 * 1024 * 1024;

/// MD5 in this thread, or, for big inputs, in a helper thread fed with
/// copies of the chunks (buffers go back and forth, so none is allocated
/// per chunk).
enum Hasher<'scope> {
    Here(Md5),
    Thread {
        chunks: mpsc::SyncSender<Vec<u8>>,
        spare: mpsc::Receiver<Vec<u8>>,
        worker: std::thread::ScopedJoinHandle<'scope, Md5>,
    },
    Done(Md5),
}

impl<'scope> Hasher<'scope> {
    fn new() -> Hasher<'scope> {
        Hasher::Here(Md5::new())
    }

    fn update<'env>(
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
    fn join(&mut self) {
        if let Hasher::Thread { .. } = self {
            let Hasher::Thread { chunks, worker, .. } = std::mem::replace(self, Hasher::new())
            else {
                unreachable!()
            };
            drop(chunks);
            *self = Hasher::Done(worker.join().expect("hashing does not panic"));
        }
    }

    fn etag(self) -> String {
        match self {
            Hasher::Here(md5) | Hasher::Done(md5) => hex(&md5.finalize()),
            Hasher::Thread { .. } => unreachable!("joined before the ETag is read"),
        }
    }
}

/// The one read loop: hands each chunk and its offset to `each`, returns
/// the number of bytes read.
fn pump(
    input: &mut dyn Read,
    mut each: impl FnMut(&[u8], u64) -> Result<(), CopyError>,
) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; CHUNK];
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
    }
}

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

/// A valid JSON document without the whitespace between its tokens: one
/// line, the same value. Strings are copied as they are.
pub fn minify(document: &[u8]) -> Vec<u8> {
    let mut minifier = Minifier::default();
    document
        .iter()
        .copied()
        .filter(|&byte| minifier.keep(byte))
        .collect()
}

/// `minify` one byte at a time, for documents that arrive in chunks.
#[derive(Debug, Default, Clone)]
pub struct Minifier {
    in_string: bool,
    escaped: bool,
}

impl Minifier {
    /// Whether `byte`, the next byte of a valid document, stays.
    pub fn keep(&mut self, byte: u8) -> bool {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if byte == b'\\' {
                self.escaped = true;
            } else if byte == b'"' {
                self.in_string = false;
            }
            true
        } else if byte == b'"' {
            self.in_string = true;
            true
        } else {
            !matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
        }
    }
}

/// Appends `bytes` (part of a UTF-8 text) to `out` escaped for a JSON
/// string, exactly as serde_json escapes: `"`, `\` and control characters
/// only. Byte by byte, so a text may be split anywhere.
pub fn escape_json_text(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &byte in bytes {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0C => out.extend_from_slice(b"\\f"),
            0..=0x1F => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xF)],
            ]),
            _ => out.push(byte),
        }
    }
}

/// How long `escape_json_text` makes one byte.
pub fn escaped_len(byte: u8) -> u64 {
    match byte {
        b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0C => 2,
        0..=0x1F => 6,
        _ => 1,
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

/// Checks that a complete, in-memory document is valid (for `--default`).
pub fn validate(bytes: &[u8]) -> Result<(), Error> {
    let mut checker = Checker::new();
    checker.feed(bytes)?;
    checker.finish()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the top-level value.
    Start,
    /// A value must come (after `:`, `,` in an array).
    Value,
    /// After `[`: a value or `]`.
    ArrayFirst,
    /// After `{`: a key or `}`.
    ObjectFirst,
    /// After `,` in an object: a key.
    ObjectKey,
    /// After a key: `:`.
    Colon,
    /// After a value inside a container: `,` or the closing bracket.
    AfterValue,
    /// After the top-level value: only whitespace.
    Done,
    /// Inside a string; `key` says whether a `:` follows it.
    Str {
        key: bool,
    },
    /// After a backslash in a string.
    Escape {
        key: bool,
    },
    /// Inside `\uXXXX`, with this many hex digits still to come.
    Unicode {
        key: bool,
        left: u8,
    },
    /// Inside a literal (`true`, `false`, `null`): the bytes still to match.
    Literal {
        rest: &'static [u8],
    },
    /// Number states, after: `-`, a leading `0`, integer digits, `.`,
    /// fraction digits, `e`, the exponent's sign, exponent digits.
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    Exp,
    ExpSign,
    ExpInt,
}

/// A streaming JSON syntax checker (RFC 8259) that also checks UTF-8 and
/// limits nesting to `MAX_DEPTH`.
pub struct Checker {
    state: State,
    /// One bit per open container: 1 for an object, 0 for an array.
    containers: u128,
    depth: usize,
    /// Up to three bytes of a UTF-8 sequence split across chunks.
    utf8_tail: Vec<u8>,
    /// Bytes fed so far, and the current line for error messages.
    offset: u64,
    line: u64,
    line_start: u64,
    /// Offsets of the top-level value's first byte and one past its last.
    start: Option<u64>,
    end: Option<u64>,
}

impl Default for Checker {
    fn default() -> Self {
        Self::new()
    }
}

impl Checker {
    pub fn new() -> Checker {
        Checker {
            state: State::Start,
            containers: 0,
            depth: 0,
            utf8_tail: Vec::new(),
            offset: 0,
            line: 1,
            line_start: 0,
            start: None,
            end: None,
        }
    }

    /// Checks the next chunk of the document.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), Error> {
        self.check_utf8(chunk)?;
        let mut i = 0;
        while i < chunk.len() {
            // Plain string bytes are the bulk of most documents: skip them in a tight loop.
            if let State::Str { .. } = self.state {
                while i < chunk.len() && !matches!(chunk[i], b'"' | b'\\' | 0..=0x1F) {
                    i += 1;
                }
                if i == chunk.len() {
                    break;
                }
            }
            let at = self.offset + i as u64;
            self.step(chunk[i], at)?;
            i += 1;
        }
        self.offset += chunk.len() as u64;
        Ok(())
    }

    /// Ends the document: it must have held exactly one complete value.
    pub fn finish(&mut self) -> Result<(), Error> {
        if !self.utf8_tail.is_empty() {
            return Err(self.error_at(self.offset, "invalid UTF-8 at the end of the input"));
        }
        match self.state {
            State::Done => Ok(()),
            State::Zero | State::Int | State::Frac | State::ExpInt if self.depth == 0 => {
                self.end = Some(self.offset);
                self.state = State::Done;
                Ok(())
            }
            State::Start => Err(Error::InvalidDocument(
                "empty input: expected one JSON value".into(),
            )),
            _ => Err(self.error_at(self.offset, "unexpected end of input")),
        }
    }

    /// The part of a chunk fed at `chunk_start` that lies inside the value.
    fn span_in(&self, chunk_start: u64, len: usize) -> (usize, usize) {
        let chunk_end = chunk_start + len as u64;
        let Some(start) = self.start else {
            return (0, 0);
        };
        let from = start.clamp(chunk_start, chunk_end);
        let to = self.end.unwrap_or(chunk_end).clamp(from, chunk_end);
        ((from - chunk_start) as usize, (to - chunk_start) as usize)
    }

    fn check_utf8(&mut self, chunk: &[u8]) -> Result<(), Error> {
        let mut rest = chunk;
        if !self.utf8_tail.is_empty() {
            // Complete the split sequence with bytes from this chunk.
            let need = utf8_len(self.utf8_tail[0]) - self.utf8_tail.len();
            let take = need.min(rest.len());
            self.utf8_tail.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            match std::str::from_utf8(&self.utf8_tail) {
                Ok(_) => self.utf8_tail.clear(),
                Err(e) if e.error_len().is_none() && rest.is_empty() => return Ok(()),
                Err(_) => return Err(self.error_at(self.offset, "invalid UTF-8")),
            }
        }
        match std::str::from_utf8(rest) {
            Ok(_) => Ok(()),
            Err(e) => {
                let valid = e.valid_up_to();
                if e.error_len().is_none() {
                    self.utf8_tail.extend_from_slice(&rest[valid..]);
                    Ok(())
                } else {
                    let at = self.offset + (chunk.len() - rest.len() + valid) as u64;
                    Err(self.error_at(at, "invalid UTF-8"))
                }
            }
        }
    }

    fn error_at(&self, at: u64, what: &str) -> Error {
        let column = at.saturating_sub(self.line_start) + 1;
        Error::InvalidDocument(format!(
            "{what} at line {}, column {column} (byte {at})",
            self.line
        ))
    }

    fn unexpected(&self, byte: u8, at: u64, expected: &str) -> Error {
        let found = match byte {
            0 => "a NUL byte".to_string(),
            b if b.is_ascii_graphic() => format!("'{}'", b as char),
            b => format!("byte 0x{b:02x}"),
        };
        self.error_at(at, &format!("expected {expected}, found {found}"))
    }

    fn open(&mut self, object: bool, at: u64) -> Result<(), Error> {
        if self.depth == MAX_DEPTH {
            return Err(self.error_at(at, &format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.containers = (self.containers << 1) | u128::from(object);
        self.depth += 1;
        Ok(())
    }

    fn in_object(&self) -> bool {
        self.containers & 1 == 1
    }

    fn close(&mut self, object: bool, byte: u8, at: u64) -> Result<(), Error> {
        if self.in_object() != object {
            let expected = if self.in_object() { "'}'" } else { "']'" };
            return Err(self.unexpected(byte, at, expected));
        }
        self.containers >>= 1;
        self.depth -= 1;
        self.value_ended(at + 1);
        Ok(())
    }

    /// A value has just ended at `end` (exclusive).
    fn value_ended(&mut self, end: u64) {
        if self.depth == 0 {
            self.state = State::Done;
            self.end = Some(end);
        } else {
            self.state = State::AfterValue;
        }
    }

    fn begin_value(&mut self, byte: u8, at: u64) -> Result<(), Error> {
        if self.depth == 0 {
            self.start = Some(at);
        }
        self.state = match byte {
            b'{' => {
                self.open(true, at)?;
                State::ObjectFirst
            }
            b'[' => {
                self.open(false, at)?;
                State::ArrayFirst
            }
            b'"' => State::Str { key: false },
            b'-' => State::Minus,
            b'0' => State::Zero,
            b'1'..=b'9' => State::Int,
            b't' => State::Literal { rest: b"rue" },
            b'f' => State::Literal { rest: b"alse" },
            b'n' => State::Literal { rest: b"ull" },
            _ => return Err(self.unexpected(byte, at, "a JSON value")),
        };
        Ok(())
    }

    fn whitespace(&mut self, byte: u8, at: u64) -> bool {
        match byte {
            b' ' | b'\t' | b'\r' => true,
            b'\n' => {
                self.line += 1;
                self.line_start = at + 1;
                true
            }
            _ => false,
        }
    }

    fn step(&mut self, byte: u8, at: u64) -> Result<(), Error> {
        use State::*;
        match self.state {
            Start | Value => {
                if !self.whitespace(byte, at) {
                    self.begin_value(byte, at)?;
                }
            }
            ArrayFirst => {
                if byte == b']' {
                    self.close(false, byte, at)?;
                } else if !self.whitespace(byte, at) {
                    self.begin_value(byte, at)?;
                }
            }
            ObjectFirst => match byte {
                b'}' => self.close(true, byte, at)?,
                b'"' => self.state = Str { key: true },
                _ if self.whitespace(byte, at) => {}
                _ => return Err(self.unexpected(byte, at, "a string key or '}'")),
            },
            ObjectKey => match byte {
                b'"' => self.state = Str { key: true },
                _ if self.whitespace(byte, at) => {}
                _ => return Err(self.unexpected(byte, at, "a string key")),
            },
            Colon => match byte {
                b':' => self.state = Value,
                _ if self.whitespace(byte, at) => {}
                _ => return Err(self.unexpected(byte, at, "':'")),
            },
            AfterValue => match byte {
                b',' if self.in_object() => self.state = ObjectKey,
                b',' => self.state = Value,
                b']' => self.close(false, byte, at)?,
                b'}' => self.close(true, byte, at)?,
                _ if self.whitespace(byte, at) => {}
                _ => {
                    let expected = if self.in_object() {
                        "',' or '}'"
                    } else {
                        "',' or ']'"
                    };
                    return Err(self.unexpected(byte, at, expected));
                }
            },
            Done => {
                if !self.whitespace(byte, at) {
                    return Err(self.error_at(at, "trailing data after the JSON value"));
                }
            }
            Str { key } => match byte {
                b'"' if key => self.state = Colon,
                b'"' => self.value_ended(at + 1),
                b'\\' => self.state = Escape { key },
                0..=0x1F => {
                    return Err(self.unexpected(byte, at, "a string character (escape controls)"))
                }
                _ => {}
            },
            Escape { key } => match byte {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.state = Str { key },
                b'u' => self.state = Unicode { key, left: 4 },
                _ => return Err(self.unexpected(byte, at, "an escape character")),
            },
            Unicode { key, left } => {
                if !byte.is_ascii_hexdigit() {
                    return Err(self.unexpected(byte, at, "a hex digit"));
                }
                self.state = if left == 1 {
                    Str { key }
                } else {
                    Unicode {
                        key,
                        left: left - 1,
                    }
                };
            }
            Literal { rest } => {
                if byte != rest[0] {
                    return Err(self.unexpected(byte, at, "a literal (true, false, null)"));
                }
                if rest.len() == 1 {
                    self.value_ended(at + 1);
                } else {
                    self.state = Literal { rest: &rest[1..] };
                }
            }
            Minus => match byte {
                b'0' => self.state = Zero,
                b'1'..=b'9' => self.state = Int,
                _ => return Err(self.unexpected(byte, at, "a digit")),
            },
            Zero | Int | Frac | ExpInt => match (self.state, byte) {
                (Int, b'0'..=b'9') | (Frac, b'0'..=b'9') | (ExpInt, b'0'..=b'9') => {}
                (Zero | Int, b'.') => self.state = Dot,
                (Zero | Int | Frac, b'e' | b'E') => self.state = Exp,
                (Zero, b'0'..=b'9') => {
                    return Err(self.error_at(at, "a number must not have a leading zero"))
                }
                _ => {
                    // The number ended just before this byte, which belongs to what follows.
                    self.value_ended(at);
                    self.step(byte, at)?;
                }
            },
            Dot => match byte {
                b'0'..=b'9' => self.state = Frac,
                _ => return Err(self.unexpected(byte, at, "a digit after '.'")),
            },
            Exp => match byte {
                b'+' | b'-' => self.state = ExpSign,
                b'0'..=b'9' => self.state = ExpInt,
                _ => return Err(self.unexpected(byte, at, "an exponent")),
            },
            ExpSign => match byte {
                b'0'..=b'9' => self.state = ExpInt,
                _ => return Err(self.unexpected(byte, at, "an exponent digit")),
            },
        }
        Ok(())
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_in_chunks(doc: &[u8], chunk: usize) -> Result<(), Error> {
        let mut checker = Checker::new();
        for part in doc.chunks(chunk) {
            checker.feed(part)?;
        }
        checker.finish()
    }

    fn is_valid(doc: &[u8]) -> bool {
        let whole = validate(doc).is_ok();
        // Every split must give the same answer as the whole.
        for chunk in 1..=3 {
            assert_eq!(
                valid_in_chunks(doc, chunk).is_ok(),
                whole,
                "{doc:?} in {chunk}s"
            );
        }
        whole
    }

    #[test]
    fn accepts_every_kind_of_value() {
        let docs: &[&[u8]] = &[
            b"{}",
            b"[]",
            b" \n\t{\"a\": [1, -2.5e+3, 0, 0.5, 1E9, true, false, null, \"x\\\"\\u00e9\"]}\r\n",
            b"\"just a string\"",
            b"0",
            b"-0",
            b"123",
            b"1.5e-7",
            b"true",
            b"null",
            "{\"é\": \"日本\", \"emoji\": \"🎉\"}".as_bytes(),
            b"[[[[]]],{\"a\":{\"b\":{}}}]",
            b"\"\\ud800\"",
        ];
        for doc in docs {
            assert!(is_valid(doc), "{}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn rejects_what_is_not_exactly_one_value() {
        let docs: &[&[u8]] = &[
            b"",
            b"   ",
            b"{} {}",
            b"1 2",
            b"{}x",
            b"{",
            b"[1,]",
            b"{\"a\":1,}",
            b"{\"a\" 1}",
            b"{1:2}",
            b"01",
            b"-",
            b"1.",
            b".5",
            b"1e",
            b"+1",
            b"tru",
            b"nul",
            b"True",
            b"NaN",
            b"'single'",
            b"\"unterminated",
            b"\"tab\tinside\"",
            b"\"bad \\x escape\"",
            b"\"\\u12G4\"",
            b"[1}",
            b"[1",
            b"{\"a\": 1",
            b"[1e5",
            b"{\"a\":[0",
            b"{]",
            b"\0",
            b"{}\0",
            b"\"nul\0inside\"",
            b"\"\xff\"",
            b"\"\xc3\"",
            b"\"\xc3\"x",
            b"\"\xed\xa0\x80\"",
            b"\xef\xbb\xbf{}",
        ];
        for doc in docs {
            assert!(!is_valid(doc), "{}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn nesting_is_limited_to_128() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(is_valid(nested(128).as_bytes()));
        assert!(!is_valid(nested(129).as_bytes()));
        let objects = "{\"a\":".repeat(128) + "1" + &"}".repeat(128);
        assert!(is_valid(objects.as_bytes()));
        let error = validate("[".repeat(100_000).as_bytes()).unwrap_err();
        assert!(error.to_string().contains("deeper than 128"), "{error}");
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let error = validate(b"{\n  \"a\": x\n}").unwrap_err();
        assert_eq!(error.exit_code(), 6);
        assert!(error.to_string().contains("line 2, column 8"), "{error}");
    }

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
    fn minify_drops_whitespace_between_tokens_only() {
        let doc = b"{\n  \"a b\": [1, \"x \\\" y\"],\r\n\t\"c\": {}\n}\n";
        assert_eq!(minify(doc), b"{\"a b\":[1,\"x \\\" y\"],\"c\":{}}");
        assert!(validate(&minify(doc)).is_ok());
    }

    #[test]
    fn escaping_matches_serde_json_for_every_byte_split_anywhere() {
        let mut text = String::from("quote\" back\\ \u{7f} é 日本 🎉");
        text.extend((0u8..0x20).map(char::from));
        let bytes = text.as_bytes();
        let whole = serde_json::to_string(&text).unwrap();
        for split in 0..bytes.len() {
            let mut out = b"\"".to_vec();
            escape_json_text(&bytes[..split], &mut out);
            escape_json_text(&bytes[split..], &mut out);
            out.push(b'"');
            assert_eq!(String::from_utf8(out).unwrap(), whole);
        }
        let len: u64 = bytes.iter().map(|&b| escaped_len(b)).sum();
        assert_eq!(len + 2, whole.len() as u64);
    }

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

    #[test]
    fn big_documents_hash_on_a_second_thread_to_the_same_etag() {
        let mut doc = b"[".to_vec();
        while doc.len() < 3 * HASH_THREAD_AFTER as usize {
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
