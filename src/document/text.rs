//! JSON text helpers: minifying a valid document, escaping text for a
//! JSON string.

/// A valid JSON document without the whitespace between its tokens: one
/// line, the same value. Strings are copied as they are.
pub fn minify(document: &[u8]) -> Vec<u8> {
    let mut minifier = Minifier::default();
    document
        .iter()
        .copied()
        .filter(|&byte| minifier.keep(byte))
        .collect()
}

/// `minify` one byte at a time, for documents that arrive in chunks.
#[derive(Debug, Default, Clone)]
pub struct Minifier {
    in_string: bool,
    escaped: bool,
}

impl Minifier {
    /// Whether `byte`, the next byte of a valid document, stays.
    pub fn keep(&mut self, byte: u8) -> bool {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if byte == b'\\' {
                self.escaped = true;
            } else if byte == b'"' {
                self.in_string = false;
            }
            true
        } else if byte == b'"' {
            self.in_string = true;
            true
        } else {
            !matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
        }
    }
}

/// Appends `bytes` (part of a UTF-8 text) to `out` escaped for a JSON
/// string, exactly as serde_json escapes: `"`, `\` and control characters
/// only. Byte by byte, so a text may be split anywhere.
pub fn escape_json_text(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &byte in bytes {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0C => out.extend_from_slice(b"\\f"),
            0..=0x1F => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xF)],
            ]),
            _ => out.push(byte),
        }
    }
}

/// How long `escape_json_text` makes one byte.
pub fn escaped_len(byte: u8) -> u64 {
    match byte {
        b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0C => 2,
        0..=0x1F => 6,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::validate;

    #[test]
    fn minify_drops_whitespace_between_tokens_only() {
        let doc = b"{\n  \"a b\": [1, \"x \\\" y\"],\r\n\t\"c\": {}\n}\n";
        assert_eq!(minify(doc), b"{\"a b\":[1,\"x \\\" y\"],\"c\":{}}");
        assert!(validate(&minify(doc)).is_ok());
    }

    #[test]
    fn escaping_matches_serde_json_for_every_byte_split_anywhere() {
        let mut text = String::from("quote\" back\\ \u{7f} é 日本 🎉");
        text.extend((0u8..0x20).map(char::from));
        let bytes = text.as_bytes();
        let whole = serde_json::to_string(&text).unwrap();
        for split in 0..bytes.len() {
            let mut out = b"\"".to_vec();
            escape_json_text(&bytes[..split], &mut out);
            escape_json_text(&bytes[split..], &mut out);
            out.push(b'"');
            assert_eq!(String::from_utf8(out).unwrap(), whole);
        }
        let len: u64 = bytes.iter().map(|&b| escaped_len(b)).sum();
        assert_eq!(len + 2, whole.len() as u64);
    }
}
