//! `get KEY [-o FILE | --json] [--default JSON]`: print a document.

use std::fs::File;
use std::io::{Read, Write};

use anyhow::{Context, Result};

use crate::cli::GetArgs;
use crate::document::{self, CopyError, Spool};
use crate::error::Error;
use crate::key::Key;
use crate::progress::Meter;
use crate::store::Store;

pub fn run(args: &GetArgs, store: &dyn Store, out: &mut dyn Write) -> Result<()> {
    let key = Key::new(&args.key)?;
    if let Some(default) = &args.default {
        document::validate(default.as_bytes()).context("--default")?;
    }
    // A missing key read with --default has the ETag "" (it does not exist).
    let (mut reader, exists): (Box<dyn Read>, bool) = match (store.open(&key)?, &args.default) {
        (Some(reader), _) => (reader, true),
        (None, Some(default)) => (Box::new(default.as_bytes()), false),
        (None, None) => return Err(not_found(&key, store)),
    };
    let etag = |copied: document::Copied| if exists { copied.etag } else { String::new() };

    if let Some(path) = &args.output {
        let mut file =
            File::create(path).with_context(|| format!("cannot write '{}'", path.display()))?;
        let mut meter = Meter::new("get", None);
        let copied = document::copy_hashed(&mut meter.reader(&mut reader), &mut file)
            .map_err(|e| output_error(e, &path.display().to_string()))?;
        writeln!(out, "{}", etag(copied))?;
    } else if args.json {
        // The ETag comes first in the envelope but is known only after the
        // whole value is read: hold the value until then.
        let mut value = Spool::new();
        let copied = document::copy_value(&mut reader, &mut value)
            .map_err(|e| output_error(e, "a temporary file"))?;
        let key_json = serde_json::to_string(key.as_str())?;
        write!(
            out,
            "{{\"key\":{key_json},\"etag\":\"{}\",\"value\":",
            etag(copied)
        )?;
        value
            .copy_to(out)
            .map_err(|e| output_error(e, "standard output"))?;
        writeln!(out, "}}")?;
    } else {
        document::copy(&mut reader, out).map_err(|e| output_error(e, "standard output"))?;
    }
    Ok(())
}

/// Exit 4, with the next step: where the store is missing, or how to create the key.
pub fn not_found(key: &Key, store: &dyn Store) -> anyhow::Error {
    let hint = store.missing_hint().unwrap_or_else(|| {
        format!(
            "create it with: etagstore set {} VALUE --etag ''",
            shell_words::quote(key.as_str())
        )
    });
    Error::Hinted {
        error: Box::new(Error::NotFound {
            key: key.as_str().to_string(),
        }),
        hint,
    }
    .into()
}

/// A failed copy out of the store: reading it, or writing to `destination`.
pub fn output_error(error: CopyError, destination: &str) -> anyhow::Error {
    match error {
        CopyError::Read(e) => e.into(),
        CopyError::Write(e) => anyhow::Error::new(e).context(format!("cannot write {destination}")),
        CopyError::Invalid(e) => anyhow::Error::new(e).context("the stored document"),
    }
}
