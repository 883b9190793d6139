//! `export [PREFIX]`: every document as one JSON line, sorted by key:
//! `{"key":…,"etag":…,"value":…}`. A document whose bytes are not already
//! one compact line (pretty-printed, or with a trailing newline) also gets
//! `"text"`: its exact bytes as a JSON string, so that `import` restores it
//! byte for byte and its ETag stays the same.

use std::io::{self, Write};

use anyhow::Result;

use crate::cli::ExportArgs;
use crate::commands::get::output_error;
use crate::commands::import;
use crate::document::{self, Minifier, Spool};
use crate::error::Error;
use crate::progress::Meter;
use crate::store::Store;

pub fn run(args: &ExportArgs, store: &dyn Store, out: &mut dyn Write) -> Result<()> {
    let prefix = args.prefix.as_deref().unwrap_or("");
    let mut meter = Meter::new("export", None);
    let max_line = import::max_line();
    for entry in store.list(prefix, false)? {
        let key = &entry.key;
        // Deleted since the listing: not part of the export.
        let Some(mut reader) = store.open(key)? else {
            continue;
        };
        let mut shaped = Shaped::default();
        let copied = document::copy_validated(&mut meter.reader(&mut reader), &mut shaped)
            .map_err(|e| output_error(e, "a temporary file"))?;
        let key_json = serde_json::to_string(key.as_str())?;
        let head = format!(
            "{{\"key\":{key_json},\"etag\":\"{}\",\"value\":",
            copied.etag
        );
        let compact = shaped.is_one_compact_line();
        let line = head.len() as u64
            + if compact {
                copied.len
            } else {
                shaped.minified_len + ",\"text\":\"\"".len() as u64 + shaped.escaped_len
            }
            + "}\n".len() as u64;
        if line > max_line {
            return Err(Error::InvalidDocument(format!(
                "key {key_json}: its export line would be {line} bytes, more than the \
                 {max_line} bytes import reads in one line; copy it with get -o"
            ))
            .into());
        }
        out.write_all(head.as_bytes())?;
        // The spool is read once or twice, never held in memory whole.
        let mut buf = Vec::with_capacity(document::CHUNK);
        if compact {
            shaped
                .spool
                .replay(|chunk| out.write_all(chunk))
                .map_err(|e| output_error(e, "standard output"))?;
        } else {
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
        }
        writeln!(out, "}}")?;
    }
    Ok(())
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
