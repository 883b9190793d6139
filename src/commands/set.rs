//! `set KEY [VALUE] --etag E`: the compare-and-swap write.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result};

use crate::cli::{InputArgs, SetArgs};
use crate::commands::repeat;
use crate::document::Named;
use crate::error::Error;
use crate::key::Key;
use crate::progress::Meter;
use crate::store::{Precondition, Store};

pub fn run(args: &SetArgs, store: &dyn Store, out: &mut dyn Write) -> Result<()> {
    let precondition = Precondition::parse(&args.etag)?;
    write(&args.input, &precondition, args.or_same, store, out)
}

/// Stores the input of `set` or `set-unsafe` and prints the new ETag.
pub fn write(
    input: &InputArgs,
    precondition: &Precondition,
    or_same: bool,
    store: &dyn Store,
    out: &mut dyn Write,
) -> Result<()> {
    let key = Key::new(&input.key)?;
    let put = |input: &mut dyn Read| repeat::put(store, &key, input, precondition, or_same);
    let etag = match (&input.value, &input.file) {
        (_, Some(path)) => {
            let file =
                File::open(path).with_context(|| format!("cannot read '{}'", path.display()))?;
            let size = file.metadata().ok().map(|meta| meta.len());
            let mut meter = Meter::new("set", size);
            let mut reader = meter.reader(Named::new(file, format!("'{}'", path.display())));
            put(&mut reader)?
        }
        // Taken as bytes, so a VALUE that is not UTF-8 is an invalid document (exit 6).
        (Some(value), None) if value != "-" => {
            put(&mut value.as_bytes()).map_err(|e| with_value_hint(e, value))?
        }
        _ => {
            let stdin = io::stdin();
            if stdin.is_terminal() {
                eprintln!("note: reading the document from the terminal; end it with Ctrl-D");
            }
            let mut meter = Meter::new("set", None);
            let mut reader = meter.reader(Named::new(stdin.lock(), "standard input"));
            put(&mut reader)?
        }
    };
    writeln!(out, "{etag}")?;
    Ok(())
}

/// An invalid VALUE gets the fix for the two usual mistakes: a file name
/// where `-f FILE` was meant, and a string without its JSON quotes.
fn with_value_hint(error: anyhow::Error, value: &OsStr) -> anyhow::Error {
    let (Some(Error::InvalidDocument(message)), Some(value)) =
        (error.downcast_ref::<Error>(), value.to_str())
    else {
        return error;
    };
    let hint = if Path::new(value).is_file() {
        format!("did you mean -f {}?", shell_words::quote(value))
    } else if value
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
    {
        let quoted = serde_json::to_string(value).expect("a string serializes");
        format!(
            "a string must be quoted as JSON: {}",
            shell_words::quote(&quoted)
        )
    } else {
        return error;
    };
    Error::Hinted {
        error: Box::new(Error::InvalidDocument(message.clone())),
        hint,
    }
    .into()
}
