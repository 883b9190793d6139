//! `export [PREFIX]`: every document as one JSON line, sorted by key:
//! `{"key":…,"etag":…,"value":…}`. A document whose bytes are not already
//! one compact line (pretty-printed, or with a trailing newline) also gets
//! `"text"`: its exact bytes as a JSON string, so that `import` restores it
//! byte for byte and its ETag stays the same.

use std::io::{self, BufWriter, Write};

use anyhow::{anyhow, Result};

use crate::cli::ExportArgs;
use crate::commands::get::output_error;
use crate::commands::import;
use crate::document::{self, Minifier, Spool};
use crate::error::Error;
use crate::key::Key;
use crate::output;
use crate::progress::Meter;
use crate::store::Store;

pub fn run(args: &ExportArgs, store: &dyn Store, out: &mut dyn Write) -> Result<()> {
    let prefix = args.prefix.as_deref().unwrap_or("");
    let mut meter = Meter::new("export", None);
    let max_line = import::max_line();
    let entries = store.list(prefix, false)?;
    // One write for many lines, not one a line (or several for one line).
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    let mut skipped = 0usize;
    for entry in &entries {
        let key = &entry.key;
        match read_one(store, key, &mut meter, max_line) {
            Ok(Some(read)) => write_line(key, read, &mut out)?,
            // Deleted since the listing: not part of the export.
            Ok(None) => {}
            // One bad document does not hide the rest, as with rsync and
            // find: it is named now, and the export fails at its end.
            Err(Skip(e)) => {
                skipped += 1;
                crate::error::report_skipped(key.as_str(), &e);
            }
        }
    }
    out.flush()?;
    if skipped > 0 {
        return Err(anyhow!(
            "{skipped} of {} keys could not be read and were left out of the export \
             (named above); the other {} were exported",
            entries.len(),
            entries.len() - skipped
        ));
    }
    Ok(())
}

/// Why one document is left out; the export goes on without it.
struct Skip(anyhow::Error);

/// A document read, checked and spooled, ready to be written as one line.
struct Read {
    shaped: Shaped,
    etag: String,
    len: u64,
}

/// Reads and checks one document before any of its line is written, so a
/// document that cannot be exported leaves no half line behind.
fn read_one(
    store: &dyn Store,
    key: &Key,
    meter: &mut Meter,
    max_line: u64,
) -> std::result::Result<Option<Read>, Skip> {
    let Some(mut reader) = store.read(key).map_err(Skip)? else {
        return Ok(None);
    };
    let mut shaped = Shaped::default();
    let copied = document::copy_validated(&mut meter.reader(&mut reader), &mut shaped)
        .map_err(|e| Skip(output_error(e, "a temporary file")))?;
    let read = Read {
        shaped,
        etag: copied.etag,
        len: copied.len,
    };
    let line = read.line_len(key);
    if line > max_line {
        return Err(Skip(
            Error::InvalidDocument(format!(
                "its export line would be {line} bytes, more than the {max_line} bytes \
                 import reads in one line; copy it with get -o"
            ))
            .into(),
        ));
    }
    Ok(Some(read))
}

impl Read {
    /// The length of the document's export line, newline included.
    fn line_len(&self, key: &Key) -> u64 {
        let envelope = output::envelope_len(key.as_str(), &self.etag);
        envelope
            + if self.shaped.is_one_compact_line() {
                self.len
            } else {
                self.shaped.minified_len + ",\"text\":\"\"".len() as u64 + self.shaped.escaped_len
            }
    }
}

/// Writes one export line: the envelope around the compact value and, for
/// a document that is not one compact line, its exact bytes as `"text"`.
fn write_line(key: &Key, read: Read, out: &mut dyn Write) -> Result<()> {
    let Read {
        mut shaped, etag, ..
    } = read;
    let compact = shaped.is_one_compact_line();
    // The spool is read once or twice, never held in memory whole.
    let mut buf = Vec::with_capacity(document::CHUNK);
    output::envelope(out, key.as_str(), &etag, |out| {
        if compact {
            return shaped
                .spool
                .replay(|chunk| out.write_all(chunk))
                .map_err(|e| output_error(e, "standard output"));
        }
        let mut minifier = Minifier::default();
        shaped
            .spool
            .replay(|chunk| {
                buf.clear();
                buf.extend(chunk.iter().copied().filter(|&b| minifier.keep(b)));
                out.write_all(&buf)
            })
            .map_err(|e| output_error(e, "standard output"))?;
        out.write_all(b",\"text\":\"")?;
        shaped
            .spool
            .replay(|chunk| {
                buf.clear();
                document::escape_json_text(chunk, &mut buf);
                out.write_all(&buf)
            })
            .map_err(|e| output_error(e, "standard output"))?;
        out.write_all(b"\"")?;
        Ok(())
    })
}

/// Spools a document while noting what its bytes look like and how long
/// its `value` and `text` would be.
#[derive(Default)]
struct Shaped {
    spool: Spool,
    first: Option<u8>,
    last: Option<u8>,
    line_break: bool,
    minifier: Minifier,
    minified_len: u64,
    escaped_len: u64,
}

impl Shaped {
    fn is_one_compact_line(&self) -> bool {
        let space = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_whitespace());
        !self.line_break && !space(self.first) && !space(self.last)
    }
}

impl Write for Shaped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.first.get_or_insert(buf[0]);
        self.last = buf.last().copied();
        self.line_break |= buf.iter().any(|&b| b == b'\n' || b == b'\r');
        for &byte in buf {
            self.minified_len += u64::from(self.minifier.keep(byte));
            self.escaped_len += document::escaped_len(byte);
        }
        self.spool.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
