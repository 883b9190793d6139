//! What commands print on standard output, written in one place: the
//! `{"key":…,"etag":…,"value":…}` envelope of `get --json`, `watch --json`
//! and `export`, and the lines of `list`.

use std::io::Write;

use anyhow::Result;

/// Writes one envelope line: `{"key":K,"etag":E,"value":` then whatever
/// `value` writes (the value, and any field after it), then `}` and a
/// newline. The key is escaped as JSON; an ETag is hex or empty.
pub fn envelope(
    out: &mut dyn Write,
    key: &str,
    etag: &str,
    value: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    out.write_all(envelope_head(key, etag).as_bytes())?;
    value(out)?;
    out.write_all(b"}\n")?;
    Ok(())
}

/// How many bytes an envelope line has besides what `value` writes.
pub fn envelope_len(key: &str, etag: &str) -> u64 {
    (envelope_head(key, etag).len() + "}\n".len()) as u64
}

fn envelope_head(key: &str, etag: &str) -> String {
    format!(
        "{{\"key\":{},\"etag\":\"{etag}\",\"value\":",
        json_string(key)
    )
}

/// One entry of `list`: the key alone, or with `details` (ETag, size, and
/// the modification time as RFC 3339) tab-separated, or as a JSON object
/// with `json`. `end` ends a line that is not JSON (`\n`, or NUL for -z).
pub fn list_entry(
    out: &mut dyn Write,
    key: &str,
    details: Option<(&str, u64, &str)>,
    json: bool,
    end: char,
) -> Result<()> {
    match details {
        Some((etag, size, modified)) if json => writeln!(
            out,
            "{{\"key\":{},\"etag\":\"{etag}\",\"size\":{size},\"modified\":\"{modified}\"}}",
            json_string(key)
        )?,
        Some((etag, size, modified)) => write!(out, "{etag}\t{size}\t{modified}\t{key}{end}")?,
        None if json => writeln!(out, "{{\"key\":{}}}", json_string(key))?,
        None => write!(out, "{key}{end}")?,
    }
    Ok(())
}

/// A string as a JSON string literal.
fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_is_one_json_line_of_the_length_it_announces() {
        let mut out = Vec::new();
        let key = "a \"quoted\"\tkey\u{e9}";
        let etag = "0123456789abcdef0123456789abcdef";
        envelope(&mut out, key, etag, |out| Ok(out.write_all(b"[1]")?)).unwrap();
        assert_eq!(out.len() as u64, envelope_len(key, etag) + 3);
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["key"], key);
        assert_eq!(line["etag"], etag);
        assert_eq!(line["value"], serde_json::json!([1]));
        assert!(out.ends_with(b"}\n") && out.iter().filter(|&&b| b == b'\n').count() == 1);
    }

    #[test]
    fn list_entries_in_each_format() {
        let line = |details, json, end| {
            let mut out = Vec::new();
            list_entry(&mut out, "k\"", details, json, end).unwrap();
            String::from_utf8(out).unwrap()
        };
        let details = Some(("e", 3, "2026-11-26T10:11:17Z"));
        assert_eq!(line(None, false, '\0'), "k\"\0");
        assert_eq!(
            line(details, false, '\n'),
            "e\t3\t2026-11-26T10:11:17Z\tk\"\n"
        );
        assert_eq!(
            line(details, true, '\n'),
            "{\"key\":\"k\\\"\",\"etag\":\"e\",\"size\":3,\"modified\":\"2026-11-26T10:11:17Z\"}\n"
        );
    }
}
