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
use crate::document;
use crate::error::Error;
use crate::key::Key;
use crate::progress::Meter;
use crate::store::{Precondition, Store};

/// One line of `export` output.
#[derive(Deserialize)]
struct Line<'a> {
    key: String,
    etag: Option<String>,
    #[serde(borrow)]
    value: &'a RawValue,
    /// The document's exact bytes, when `value` is not them.
    text: Option<String>,
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
    mut input: Box<dyn BufRead + '_>,
    store: &dyn Store,
    precondition: &Precondition,
    imported: &mut u64,
    skipped: &mut Vec<String>,
) -> Result<()> {
    let mut buf = Vec::new();
    for number in 1.. {
        buf.clear();
        if input
            .read_until(b'\n', &mut buf)
            .context("cannot read the import")?
            == 0
        {
            return Ok(());
        }
        let malformed = |why: String| Error::InvalidDocument(format!("line {number}: {why}"));
        let text = std::str::from_utf8(&buf).map_err(|_| malformed("not UTF-8".into()))?;
        if text.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(text).map_err(|e| {
            malformed(format!(
                "not an export line ({{\"key\":…,\"value\":…}}): {e}"
            ))
        })?;
        let key = Key::new(&line.key).map_err(|e| malformed(e.to_string()))?;
        let bytes = line.text.as_deref().unwrap_or(line.value.get()).as_bytes();
        if let Some(etag) = &line.etag {
            if document::etag_of(bytes) != *etag {
                return Err(malformed(format!(
                    "the document of key {:?} does not match its etag {etag:?}",
                    line.key
                ))
                .into());
            }
        }
        match store.put(&key, &mut &bytes[..], precondition) {
            Ok(_) => *imported += 1,
            Err(e) if matches!(e.downcast_ref(), Some(Error::PreconditionFailed { .. })) => {
                skipped.push(line.key);
            }
            Err(e) => return Err(e.context(format!("line {number}"))),
        }
    }
    unreachable!("the line counter is unbounded")
}
