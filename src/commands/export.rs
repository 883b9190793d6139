//! `export [PREFIX]`: every document as one JSON line, sorted by key:
//! `{"key":…,"etag":…,"value":…}`. A document whose bytes are not already
//! one compact line (pretty-printed, or with a trailing newline) also gets
//! `"text"`: its exact bytes as a JSON string, so that `import` restores it
//! byte for byte and its ETag stays the same.

use std::io::{self, Write};

use anyhow::Result;

use crate::cli::ExportArgs;
use crate::commands::get::output_error;
use crate::document::{self, Spool};
use crate::progress::Meter;
use crate::store::Store;

pub fn run(args: &ExportArgs, store: &dyn Store, out: &mut dyn Write) -> Result<()> {
    let prefix = args.prefix.as_deref().unwrap_or("");
    let mut meter = Meter::new("export", None);
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
        write!(
            out,
            "{{\"key\":{key_json},\"etag\":\"{}\",\"value\":",
            copied.etag
        )?;
        if shaped.is_one_compact_line() {
            // The common case streams, whatever the size.
            shaped
                .spool
                .copy_to(out)
                .map_err(|e| output_error(e, "standard output"))?;
        } else {
            let bytes = shaped.spool.into_vec()?;
            out.write_all(&document::minify(&bytes))?;
            let text = std::str::from_utf8(&bytes).expect("validated documents are UTF-8");
            write!(out, ",\"text\":{}", serde_json::to_string(text)?)?;
        }
        writeln!(out, "}}")?;
    }
    Ok(())
}

/// Spools a document while noting what its bytes look like.
#[derive(Default)]
struct Shaped {
    spool: Spool,
    first: Option<u8>,
    last: Option<u8>,
    line_break: bool,
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
        self.spool.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
