//! `set KEY [VALUE] --etag E`: the compare-and-swap write.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;

use anyhow::{Context, Result};

use crate::cli::{InputArgs, SetArgs};
use crate::document::Named;
use crate::key::Key;
use crate::progress::Meter;
use crate::store::{Precondition, Store};

pub fn run(args: &SetArgs, store: &dyn Store, out: &mut dyn Write) -> Result<()> {
    let precondition = Precondition::parse(&args.etag)?;
    write(&args.input, &precondition, store, out)
}

/// Stores the input of `set` or `set-unsafe` and prints the new ETag.
pub fn write(
    input: &InputArgs,
    precondition: &Precondition,
    store: &dyn Store,
    out: &mut dyn Write,
) -> Result<()> {
    let key = Key::new(&input.key)?;
    let etag = match (&input.value, &input.file) {
        (_, Some(path)) => {
            let file =
                File::open(path).with_context(|| format!("cannot read '{}'", path.display()))?;
            let size = file.metadata().ok().map(|meta| meta.len());
            let mut meter = Meter::new("set", size);
            let mut reader = meter.reader(Named::new(file, format!("'{}'", path.display())));
            store.put(&key, &mut reader, precondition)?
        }
        // Taken as bytes, so a VALUE that is not UTF-8 is an invalid document (exit 6).
        (Some(value), None) if value != "-" => {
            store.put(&key, &mut value.as_bytes(), precondition)?
        }
        _ => {
            let mut meter = Meter::new("set", None);
            let mut reader = meter.reader(Named::new(io::stdin().lock(), "standard input"));
            store.put(&key, &mut reader, precondition)?
        }
    };
    writeln!(out, "{etag}")?;
    Ok(())
}
