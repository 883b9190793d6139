//! `set KEY [VALUE] --etag E`: the compare-and-swap write; with `--if
//! FILTER`, also (or instead) conditional on the document's content.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result};

use super::cas::{self, Condition, Step};
use crate::cli::{ConditionArgs, InputArgs, SetArgs};
use crate::commands::repeat;
use crate::document::{self, Named};
use crate::error::Error;
use crate::jq;
use crate::key::Key;
use crate::progress::Meter;
use crate::store::{Precondition, Store};

pub fn run(args: &SetArgs, store: &dyn Store, out: &mut dyn Write) -> Result<()> {
    let precondition = args.etag.as_deref().map(Precondition::parse).transpose()?;
    match &args.condition.predicate {
        None => write(
            &args.input,
            &precondition.expect("clap requires --etag without --if"),
            args.or_same,
            store,
            out,
        ),
        Some(_) => write_if(args, precondition.as_ref(), store, out),
    }
}

/// `set --if`: the input is read whole first (a retry writes it again),
/// then written over the version the predicate was true of.
fn write_if(
    args: &SetArgs,
    precondition: Option<&Precondition>,
    store: &dyn Store,
    out: &mut dyn Write,
) -> Result<()> {
    let key = Key::new(&args.input.key)?;
    let condition = Condition::new(args.condition.predicate.as_deref().unwrap_or_default())?;
    let input = read_input(&args.input)?;
    let how = ("set", &args.condition);
    let etag = conditionally(store, &key, precondition, &condition, how, |_| {
        Step::Write(input.clone())
    })
    .or_else(|error| match args.or_same {
        true => repeat::already(error, &input),
        false => Err(error),
    })?;
    writeln!(out, "{etag}")?;
    Ok(())
}

/// The read-check-write loop of `set --if` and `delete --if`: `--etag`
/// (if given) and the predicate must both hold on the version read, and
/// the write lands only on that version, else it is read again. A
/// mismatched `--etag` is exit 3 at once: no retry can make it match.
pub fn conditionally(
    store: &dyn Store,
    key: &Key,
    precondition: Option<&Precondition>,
    condition: &Condition,
    (command, args): (&str, &ConditionArgs),
    step: impl Fn(&cas::Current) -> Step,
) -> Result<String> {
    let how = cas::Retries {
        command,
        retries: args.retries,
        default: Some("null"),
        limit: Some(jq::MAX_INPUT),
    };
    let missing = || unreachable!("a missing key reads as null");
    cas::retry(store, key, &how, missing, |current| {
        if let Some(precondition) = precondition {
            precondition.check(key, current.exists.then_some(current.etag.as_str()))?;
        }
        condition.check(key, current)?;
        Ok(step(current))
    })
}

/// The whole input of `set`, checked to be one JSON value (exit 6).
fn read_input(input: &InputArgs) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    match (&input.value, &input.file) {
        (_, Some(path)) => {
            let file =
                File::open(path).with_context(|| format!("cannot read '{}'", path.display()))?;
            Named::new(file, format!("'{}'", path.display())).read_to_end(&mut bytes)?;
        }
        (Some(value), None) if value != "-" => {
            bytes = value.as_bytes().to_vec();
            return document::validate(&bytes)
                .map_err(|e| with_value_hint(e.into(), value))
                .map(|()| bytes);
        }
        _ => {
            let stdin = io::stdin();
            if stdin.is_terminal() {
                eprintln!("note: reading the document from the terminal; end it with Ctrl-D");
            }
            Named::new(stdin.lock(), "standard input").read_to_end(&mut bytes)?;
        }
    }
    document::validate(&bytes)?;
    Ok(bytes)
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
