//! `patch KEY --merge JSON` (RFC 7396) and `patch KEY --json-patch JSON`
//! (RFC 6902): `kubectl patch` for a store with real compare-and-swap. The
//! patch is applied to the document read and written back conditional on
//! its ETag; on a conflict it is read and applied again (`--retries`).

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};

use anyhow::{Context, Result};
use serde_json::Value;

use super::cas::{self, Step};
use crate::cli::PatchArgs;
use crate::commands::get::not_found_or;
use crate::document::{self, Named};
use crate::error::{suggest, Error};
use crate::key::Key;
use crate::store::Store;

/// A parsed patch of either kind.
enum Patch {
    Merge(Value),
    Json(json_patch::Patch),
}

pub fn run(args: &PatchArgs, store: &dyn Store, out: &mut dyn Write) -> Result<()> {
    let key = Key::new(&args.key)?;
    let patch = parse(args)?;
    let how = cas::Retries {
        command: "patch",
        retries: args.retries,
        default: None,
        limit: None,
    };
    let missing = || {
        not_found_or(&key, store, || {
            format!(
                "patch changes a document that exists; create it first: {}",
                suggest(["set", key.as_str(), "{}", "--etag", ""])
            )
        })
    };
    let etag = cas::retry(store, &key, &how, missing, |current| {
        let mut doc = read_value(&current.bytes)
            .with_context(|| format!("cannot patch key {:?}", key.as_str()))?;
        let before = pretty(&doc);
        match &patch {
            Patch::Merge(merge) => json_patch::merge(&mut doc, merge),
            Patch::Json(ops) => json_patch::patch(&mut doc, ops)
                .map_err(|e| not_applicable(&key, &current.etag, ops, e))?,
        }
        let after = pretty(&doc);
        if after == before {
            return Ok(Step::Done(current.etag.clone()));
        }
        Ok(Step::Write(after))
    })?;
    writeln!(out, "{etag}")?;
    Ok(())
}

/// The patch from the flag's value, `-f FILE` or standard input: not JSON
/// is exit 6, JSON that is not a JSON Patch exit 2.
fn parse(args: &PatchArgs) -> Result<Patch> {
    let (flag, value) = match (&args.merge, &args.json_patch) {
        (Some(value), _) => ("--merge", value),
        (None, Some(value)) => ("--json-patch", value),
        (None, None) => unreachable!("clap requires one of them"),
    };
    let text = match (value.as_str(), &args.file) {
        ("-", Some(path)) => {
            let file =
                File::open(path).with_context(|| format!("cannot read '{}'", path.display()))?;
            let mut bytes = Vec::new();
            Named::new(file, format!("'{}'", path.display())).read_to_end(&mut bytes)?;
            bytes
        }
        (_, Some(_)) => {
            return Err(
                Error::Usage(format!("the patch is {flag}'s value or -f FILE, not both")).into(),
            )
        }
        ("-", None) => {
            let stdin = io::stdin();
            if stdin.is_terminal() {
                eprintln!("note: reading the patch from the terminal; end it with Ctrl-D");
            }
            let mut bytes = Vec::new();
            Named::new(stdin.lock(), "standard input").read_to_end(&mut bytes)?;
            bytes
        }
        (text, None) => text.as_bytes().to_vec(),
    };
    document::validate(&text).with_context(|| format!("the {flag} patch"))?;
    let value = read_value(&text).with_context(|| format!("the {flag} patch"))?;
    if flag == "--merge" {
        return Ok(Patch::Merge(value));
    }
    let ops = serde_json::from_value::<json_patch::Patch>(value).map_err(|e| {
        Error::Usage(format!(
            "--json-patch is not a JSON Patch (RFC 6902): {e}; it is an array of \
             operations such as [{{\"op\":\"replace\",\"path\":\"/a\",\"value\":1}}]"
        ))
    })?;
    Ok(Patch::Json(ops))
}

/// Parses a valid JSON document into a serde_json value, refusing (exit 6)
/// one with a number serde_json would change: a 64-bit integer or a double
/// holds it, else writing it back would round it.
fn read_value(bytes: &[u8]) -> Result<Value> {
    if let Some(number) = inexact_number(bytes) {
        return Err(Error::InvalidDocument(format!(
            "patch keeps numbers as 64-bit integers or doubles, and {number} is neither \
             exactly; change this document with edit --jq"
        ))
        .into());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| Error::InvalidDocument(format!("cannot read it as JSON: {e}")).into())
}

/// The first number literal in a valid JSON document that serde_json cannot
/// hold without changing its value: an integer beyond 64 bits, a number
/// with more than 17 significant digits, or one beyond a double's range.
fn inexact_number(bytes: &[u8]) -> Option<String> {
    let (mut in_string, mut escaped) = (false, false);
    let mut start = None;
    for (i, &byte) in bytes.iter().chain(b" ").enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        let numeric = matches!(byte, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E');
        match (numeric, start) {
            (true, None) => start = Some(i),
            (false, Some(from)) => {
                start = None;
                let literal = std::str::from_utf8(&bytes[from..i]).unwrap_or_default();
                // The 'e' of true and false is not a number.
                if literal.bytes().any(|b| b.is_ascii_digit()) && !exact(literal) {
                    return Some(literal.chars().take(40).collect());
                }
            }
            _ => {}
        }
        if byte == b'"' {
            in_string = true;
        }
    }
    None
}

fn exact(literal: &str) -> bool {
    if !literal.contains(['.', 'e', 'E']) {
        return literal.parse::<i64>().is_ok() || literal.parse::<u64>().is_ok();
    }
    let mantissa = literal.split(['e', 'E']).next().unwrap_or_default();
    let digits = mantissa
        .bytes()
        .filter(u8::is_ascii_digit)
        .skip_while(|&b| b == b'0')
        .collect::<Vec<_>>();
    let significant = digits.len() - digits.iter().rev().take_while(|&&b| b == b'0').count();
    // Underflow reads as zero: only a zero literal may be zero.
    significant <= 17
        && literal
            .parse::<f64>()
            .is_ok_and(|f| f.is_finite() && (f != 0.0 || significant == 0))
}

/// The document as written back: two-space indent, keys in their order,
/// a final newline (as `jq` and `edit --jq` print).
fn pretty(value: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(value).expect("a Value always serializes");
    out.push(b'\n');
    out
}

/// A JSON Patch that does not apply to the current document: a failed
/// `test` (its precondition) or a path that is not there is exit 3, as
/// the document is not what the patch expects; a move into itself is a
/// patch that never applies (exit 2).
fn not_applicable(
    key: &Key,
    etag: &str,
    ops: &json_patch::Patch,
    error: json_patch::PatchError,
) -> anyhow::Error {
    use json_patch::PatchErrorKind;
    let op = ops
        .0
        .get(error.operation)
        .map(|op| serde_json::to_string(op).unwrap_or_default())
        .unwrap_or_default();
    let op: String = op.chars().take(200).collect();
    let what = match error.kind {
        PatchErrorKind::TestFailed => "the test failed".to_string(),
        PatchErrorKind::CannotMoveInsideItself => {
            return Error::Usage(format!(
                "--json-patch operation {} ({op}) moves a value inside itself; nothing written",
                error.operation
            ))
            .into()
        }
        PatchErrorKind::InvalidFromPointer => {
            "its \"from\" path is not in the current document".to_string()
        }
        _ => "its path is not in the current document".to_string(),
    };
    Error::Conflict(format!(
        "patch not applied to key {:?}: operation {} ({op}): {what} (ETag {etag:?}); \
         nothing written",
        key.as_str(),
        error.operation
    ))
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_serde_would_change_are_found() {
        for doc in [
            "[1, -9223372036854775808, 18446744073709551615, 1.5, 0.1, 1e300]",
            "[12345678901234567, 1.2345678901234567e10, 0.000001234567890123456700]",
            r#"{"true": false, "e": "1e400 in a string", "n": null}"#,
        ] {
            assert_eq!(inexact_number(doc.as_bytes()), None, "{doc}");
        }
        for (doc, number) in [
            ("[18446744073709551616]", "18446744073709551616"),
            ("{\"a\": [1, 1e400]}", "1e400"),
            ("0.123456789012345678", "0.123456789012345678"),
            ("-1.5E-400", "-1.5E-400"),
        ] {
            assert_eq!(
                inexact_number(doc.as_bytes()).as_deref(),
                Some(number),
                "{doc}"
            );
        }
    }
}
