//! `etag KEY`: print a document's current ETag.

use std::io::{self, Write};

use anyhow::Result;

use crate::cli::KeyArg;
use crate::commands::get::{not_found, output_error};
use crate::document;
use crate::key::Key;
use crate::store::Store;

pub fn run(args: &KeyArg, store: &dyn Store, out: &mut dyn Write) -> Result<()> {
    let key = Key::new(&args.key)?;
    let mut reader = store.read(&key)?.ok_or_else(|| not_found(&key, store))?;
    let copied = document::copy_hashed(&mut reader, &mut io::sink())
        .map_err(|e| output_error(e, "nowhere"))?;
    writeln!(out, "{}", copied.etag)?;
    Ok(())
}
