//! `import [-f FILE] [--overwrite]`: read `export` lines and write each
//! document, create-only unless `--overwrite`. Keys that exist are skipped
//! and counted (exit 3 at the end); the first malformed line stops the
//! import with exit 6, after the lines before it were written.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::cli::ImportArgs;
use crate::document::{self, Minifier};
use crate::error::Error;
use crate::key::Key;
use crate::progress::Meter;
use crate::store::{Batch, Precondition, Store};

/// The longest line `import` reads (and `export` writes): a line is held
/// in memory while it is imported, and nothing more of it.
pub const MAX_LINE: u64 = 512 * 1024 * 1024;

/// `MAX_LINE`, or with the `test-hooks` feature `ETAGSTORE_IMPORT_LINE_LIMIT`.
pub fn max_line() -> u64 {
    if cfg!(feature = "test-hooks") {
        if let Some(limit) = std::env::var("ETAGSTORE_IMPORT_LINE_LIMIT")
            .ok()
            .and_then(|limit| limit.parse().ok())
        {
            return limit;
        }
    }
    MAX_LINE
}

/// One line of `export` output. A misspelt field would silently drop a
/// check (`etagg`), so unknown fields are an error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    key: String,
    etag: Option<String>,
    #[serde(borrow)]
    value: &'a RawValue,
    /// The document's exact bytes as a JSON string, when `value` is not
    /// them. Kept raw: decoded while it is written, never copied whole.
    #[serde(borrow)]
    text: Option<&'a RawValue>,
}

pub fn run(args: &ImportArgs, store: &dyn Store) -> Result<()> {
    let (input, size): (Box<dyn Read>, Option<u64>) = match &args.file {
        Some(path) => {
            let file =
                File::open(path).with_context(|| format!("cannot read '{}'", path.display()))?;
            let size = file.metadata().ok().map(|meta| meta.len());
            (Box::new(file), size)
        }
        None => (Box::new(io::stdin().lock()), None),
    };
    let mut meter = Meter::new("import", size);
    let input: Box<dyn BufRead + '_> = Box::new(BufReader::new(meter.reader(input)));
    let precondition = if args.overwrite {
        Precondition::Any
    } else {
        Precondition::Missing
    };
    let (mut imported, mut skipped) = (0u64, Vec::new());
    let result = import_lines(input, store, &precondition, &mut imported, &mut skipped);
    eprintln!("imported {imported}, skipped {}", skipped.len());
    result?;
    if !skipped.is_empty() {
        let mut names: Vec<String> = skipped.iter().take(5).map(|k| format!("{k:?}")).collect();
        if skipped.len() > 5 {
            names.push("…".into());
        }
        return Err(Error::Conflict(format!(
            "{} key(s) existed and were left as they are: {}; \
             import again with --overwrite to replace them",
            skipped.len(),
            names.join(", ")
        ))
        .into());
    }
    Ok(())
}

fn import_lines(
    input: Box<dyn BufRead + '_>,
    store: &dyn Store,
    precondition: &Precondition,
    imported: &mut u64,
    skipped: &mut Vec<String>,
) -> Result<()> {
    let mut batch = Batched {
        batch: store.batch(precondition)?,
        lines: Vec::new(),
        imported,
        skipped,
    };
    let read = read_lines(input, &mut batch);
    // The lines before a bad one are written, whatever stopped the import.
    batch.commit()?;
    read
}

/// The batch being filled, and the line number and key of each of its
/// documents, to report what became of them when it is committed.
struct Batched<'a, 's> {
    batch: Box<dyn Batch + 's>,
    lines: Vec<(u64, String)>,
    imported: &'a mut u64,
    skipped: &'a mut Vec<String>,
}

impl Batched<'_, '_> {
    fn add(&mut self, number: u64, key: &Key, source: &Source) -> Result<()> {
        if !self.batch.room_for(key) {
            self.commit()?;
        }
        self.batch
            .add(key, &mut source.reader())
            .with_context(|| format!("line {number}"))?;
        self.lines.push((number, key.as_str().to_string()));
        Ok(())
    }

    /// Commits the batch: counts what was written and skipped, and fails
    /// with what stopped it, naming its line.
    fn commit(&mut self) -> Result<()> {
        let committed = self.batch.commit();
        let lines = std::mem::take(&mut self.lines);
        for (outcome, (_, key)) in committed.outcomes.into_iter().zip(&lines) {
            match outcome {
                Ok(_) => *self.imported += 1,
                Err(_) => self.skipped.push(key.clone()),
            }
        }
        match committed.failure {
            None => Ok(()),
            Some((Some(index), e)) => Err(e.context(format!("line {}", lines[index].0))),
            Some((None, e)) => Err(e.context(format!(
                "lines {} to {}",
                lines.first().map_or(0, |line| line.0),
                lines.last().map_or(0, |line| line.0)
            ))),
        }
    }
}

fn read_lines(mut input: Box<dyn BufRead + '_>, batch: &mut Batched) -> Result<()> {
    let max_line = max_line();
    let mut buf = Vec::new();
    for number in 1.. {
        buf.clear();
        if (&mut input)
            .take(max_line + 1)
            .read_until(b'\n', &mut buf)
            .context("cannot read the import")?
            == 0
        {
            return Ok(());
        }
        let malformed = |why: String| Error::InvalidDocument(format!("line {number}: {why}"));
        if buf.len() as u64 > max_line {
            return Err(malformed(format!(
                "longer than {max_line} bytes, the longest line import reads"
            ))
            .into());
        }
        let text = std::str::from_utf8(&buf).map_err(|_| malformed("not UTF-8".into()))?;
        if text.trim().is_empty() {
            continue;
        }
        // serde_json counts lines and columns within the line; only the
        // column is news, and it goes where the line number is.
        let line: Line = serde_json::from_str(text).map_err(|e| {
            let what = e.to_string();
            let what = match what.rfind(" at line ") {
                Some(at) => &what[..at],
                None => &what,
            };
            Error::InvalidDocument(format!(
                "line {number}, column {}: not an export line ({{\"key\":…,\"value\":…}}): {what}",
                e.column()
            ))
        })?;
        let key = Key::new(&line.key).map_err(|e| malformed(e.to_string()))?;
        let value = line.value.get().as_bytes();
        let source = match line.text {
            None => Source::Value(value),
            Some(text) => {
                let text = text.get().as_bytes();
                if text.first() != Some(&b'"') {
                    return Err(malformed("\"text\" must be a JSON string".into()).into());
                }
                let source = Source::Text(&text[1..text.len() - 1]);
                if !same_value(&source, value).map_err(|e| malformed(e.to_string()))? {
                    return Err(malformed(format!(
                        "the \"value\" and \"text\" of key {:?} are different documents; \
                         fix one, or drop \"text\" to import \"value\"",
                        line.key
                    ))
                    .into());
                }
                source
            }
        };
        if let Some(etag) = &line.etag {
            let copied = document::copy_hashed(&mut source.reader(), &mut io::sink())
                .map_err(|_| malformed("\"text\" is not valid text".into()))?;
            if !copied.etag.eq_ignore_ascii_case(etag) {
                return Err(malformed(format!(
                    "the document of key {:?} does not match its etag {etag:?}",
                    line.key
                ))
                .into());
            }
        }
        batch.add(number, &key, &source)?;
    }
    unreachable!("the line counter is unbounded")
}

/// Where a line's document bytes are: `value` as it is, or the inside of
/// the `text` string, decoded as it is read.
enum Source<'a> {
    Value(&'a [u8]),
    Text(&'a [u8]),
}

impl Source<'_> {
    fn reader(&self) -> Box<dyn Read + '_> {
        match self {
            Source::Value(bytes) => Box::new(*bytes),
            Source::Text(escaped) => Box::new(Unescape::new(escaped)),
        }
    }
}

/// Whether `text` is the same JSON value as `value`. Usually it is `value`
/// with whitespace, so the two compare equal without it, streamed; else
/// (escapes written differently, say) both are parsed and compared.
fn same_value(text: &Source, value: &[u8]) -> io::Result<bool> {
    let mut values = value.iter().copied().filter({
        let mut minifier = Minifier::default();
        move |&b| minifier.keep(b)
    });
    let mut texts = Minifier::default();
    let mut reader = text.reader();
    let mut chunk = vec![0; document::CHUNK];
    let mut equal = true;
    'read: loop {
        let n = reader.read(&mut chunk)?;
        if n == 0 {
            equal &= values.next().is_none();
            break;
        }
        for &byte in &chunk[..n] {
            if texts.keep(byte) && values.next() != Some(byte) {
                equal = false;
                break 'read;
            }
        }
    }
    if equal {
        return Ok(true);
    }
    let mut decoded = Vec::new();
    text.reader().read_to_end(&mut decoded)?;
    let parsed = |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes).ok();
    Ok(matches!((parsed(&decoded), parsed(value)), (Some(a), Some(b)) if a == b))
}

/// Decodes the inside of a JSON string (already checked by the parser,
/// except for lone surrogates) as a byte stream.
struct Unescape<'a> {
    rest: &'a [u8],
    /// A decoded character not yet handed out.
    pending: [u8; 4],
    pending_len: usize,
}

impl<'a> Unescape<'a> {
    fn new(escaped: &'a [u8]) -> Unescape<'a> {
        Unescape {
            rest: escaped,
            pending: [0; 4],
            pending_len: 0,
        }
    }

    fn hex4(&mut self) -> io::Result<u32> {
        let digits = self
            .rest
            .get(..4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| invalid("a bad \\u escape"))?;
        self.rest = &self.rest[4..];
        Ok(digits)
    }

    /// Decodes the escape after a backslash into `pending`.
    fn escape(&mut self) -> io::Result<()> {
        let (&kind, rest) = self
            .rest
            .split_first()
            .ok_or_else(|| invalid("a lone backslash"))?;
        self.rest = rest;
        let simple = match kind {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0C,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let mut code = self.hex4()?;
                if (0xD800..0xDC00).contains(&code) {
                    if !self.rest.starts_with(b"\\u") {
                        return Err(invalid("a lone surrogate"));
                    }
                    self.rest = &self.rest[2..];
                    let low = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(invalid("a lone surrogate"));
                    }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                }
                let c = char::from_u32(code).ok_or_else(|| invalid("a lone surrogate"))?;
                self.pending_len = c.encode_utf8(&mut self.pending).len();
                return Ok(());
            }
            _ => return Err(invalid("a bad escape")),
        };
        self.pending[0] = simple;
        self.pending_len = 1;
        Ok(())
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("\"text\" holds {what}"))
}

impl Read for Unescape<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            if self.pending_len > 0 {
                let take = self.pending_len.min(buf.len() - n);
                buf[n..n + take].copy_from_slice(&self.pending[..take]);
                self.pending.copy_within(take..self.pending_len, 0);
                self.pending_len -= take;
                n += take;
                continue;
            }
            let Some(&first) = self.rest.first() else {
                break;
            };
            if first == b'\\' {
                self.rest = &self.rest[1..];
                self.escape()?;
                continue;
            }
            let plain = self
                .rest
                .iter()
                .position(|&b| b == b'\\')
                .unwrap_or(self.rest.len())
                .min(buf.len() - n);
            buf[n..n + plain].copy_from_slice(&self.rest[..plain]);
            self.rest = &self.rest[plain..];
            n += plain;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_decodes_as_serde_json_decodes_it_in_any_read_size() {
        let text = "q\" b\\ / \u{8}\u{c}\n\r\t \u{1} é 日本 🎉 \u{7f}";
        let raw = serde_json::to_string(text).unwrap();
        let escaped = &raw.as_bytes()[1..raw.len() - 1];
        let extra = br#" \u00e9 \ud83c\udf89 \/"#;
        let mut both = escaped.to_vec();
        both.extend_from_slice(extra);
        let expected = format!("{text} é 🎉 /");
        for size in [1, 2, 3, 7, 64] {
            let mut reader = Unescape::new(&both);
            let mut out = Vec::new();
            let mut chunk = vec![0; size];
            loop {
                let n = reader.read(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&chunk[..n]);
            }
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{size}");
        }
        for lone in [&br"\ud800"[..], br"\udc00 ", br"\ud800\u0041"] {
            assert!(Unescape::new(lone).read_to_end(&mut Vec::new()).is_err());
        }
    }
}
