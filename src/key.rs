//! Keys: validation and the file-name encoding.
//!
//! Every key maps to exactly one file directly inside the store, named so an
//! operator can read it (`blogpost` -> `blogpost.json`). Bytes outside
//! `[A-Za-z0-9._~-]`, and a leading `.`, are percent-encoded with upper-case
//! hex, so an encoded name never contains `/`, never starts with `.` (the
//! store's internal files all do) and never names `.` or `..`.

use crate::error::Error;

/// The longest key, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 200;
/// The longest file name a key may encode to, `.json` included.
pub const MAX_FILE_NAME_BYTES: usize = 250;
/// What every document file name ends with.
pub const DOCUMENT_SUFFIX: &str = ".json";

/// A validated key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key(String);

impl Key {
    /// Checks the key rules of docs/contract.md; an invalid key is a usage error (exit 2).
    pub fn new(key: &str) -> Result<Key, Error> {
        let invalid = |why: &str| {
            Error::Usage(format!(
                "invalid key {key:?}: {why} (a key is 1 to {MAX_KEY_BYTES} bytes of UTF-8 \
                 without control characters)"
            ))
        };
        if key.is_empty() {
            return Err(invalid("a key must not be empty"));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(invalid(&format!(
                "{} bytes, the limit is {MAX_KEY_BYTES}",
                key.len()
            )));
        }
        if key.chars().any(char::is_control) {
            return Err(invalid("control characters are not allowed"));
        }
        let encoded_len = encoded_len(key) + DOCUMENT_SUFFIX.len();
        if encoded_len > MAX_FILE_NAME_BYTES {
            return Err(invalid(&format!(
                "its file name would be {encoded_len} bytes, the limit is {MAX_FILE_NAME_BYTES} \
                 (bytes other than letters, digits and ._~- take three)"
            )));
        }
        Ok(Key(key.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's percent-encoded stem, without the `.json` suffix.
    pub fn encoded(&self) -> String {
        encode(&self.0)
    }

    /// The name of the key's document file.
    pub fn file_name(&self) -> String {
        let mut name = self.encoded();
        name.push_str(DOCUMENT_SUFFIX);
        name
    }

    /// The key a document file name stands for, if it is one this encoding
    /// produces (other files an operator puts in the store are not keys).
    pub fn from_file_name(name: &str) -> Option<Key> {
        let stem = name.strip_suffix(DOCUMENT_SUFFIX)?;
        let decoded = decode(stem)?;
        let key = Key::new(&decoded).ok()?;
        // Only the canonical spelling counts, so each key has one file.
        (key.encoded() == stem).then_some(key)
    }
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~')
}

fn needs_encoding(index: usize, byte: u8) -> bool {
    !is_unreserved(byte) || (index == 0 && byte == b'.')
}

fn encoded_len(key: &str) -> usize {
    key.bytes()
        .enumerate()
        .map(|(i, b)| if needs_encoding(i, b) { 3 } else { 1 })
        .sum()
}

/// Percent-encodes a key into a file-name stem.
pub fn encode(key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(encoded_len(key));
    for (i, byte) in key.bytes().enumerate() {
        if needs_encoding(i, byte) {
            out.push('%');
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0xF)] as char);
        } else {
            out.push(byte as char);
        }
    }
    out
}

/// Reverses `encode`; `None` for a malformed escape or bytes that are not UTF-8.
pub fn decode(stem: &str) -> Option<String> {
    let bytes = stem.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = stem.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_keys_are_their_own_file_names() {
        assert_eq!(Key::new("blogpost").unwrap().file_name(), "blogpost.json");
        assert_eq!(Key::new("a.b-c_d~e").unwrap().file_name(), "a.b-c_d~e.json");
    }

    #[test]
    fn unsafe_bytes_are_percent_encoded() {
        assert_eq!(encode("a/b"), "a%2Fb");
        assert_eq!(encode(".."), "%2E.");
        assert_eq!(encode("."), "%2E");
        assert_eq!(encode("../x"), "%2E.%2Fx");
        assert_eq!(encode("/etc/passwd"), "%2Fetc%2Fpasswd");
        assert_eq!(encode("100%"), "100%25");
        assert_eq!(encode("a b\\c"), "a%20b%5Cc");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn invalid_keys_are_usage_errors() {
        for key in ["", "a\nb", "tab\there", "nul\0", "del\u{7f}", "c1\u{85}"] {
            let error = Key::new(key).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{key:?}");
        }
        assert!(Key::new(&"a".repeat(200)).is_ok());
        assert!(Key::new(&"a".repeat(201)).is_err());
        // 82 encoded bytes take 246 + 5 = 251 bytes of file name.
        assert!(Key::new(&"/".repeat(81)).is_ok());
        assert!(Key::new(&"/".repeat(82)).is_err());
    }

    #[test]
    fn only_canonical_file_names_are_keys() {
        assert_eq!(Key::from_file_name("a%2Fb.json").unwrap().as_str(), "a/b");
        assert_eq!(Key::from_file_name("a%2fb.json"), None);
        assert_eq!(Key::from_file_name("a%41b.json"), None); // "aAb" is spelled aAb.json
        assert_eq!(Key::from_file_name("a.txt"), None);
        assert_eq!(Key::from_file_name(".etagstore"), None);
        assert_eq!(Key::from_file_name("%FF.json"), None);
        assert_eq!(Key::from_file_name("%0A.json"), None);
        assert_eq!(Key::from_file_name("bad%2.json"), None);
    }

    fn any_key() -> impl Strategy<Value = String> {
        prop::collection::vec(
            any::<char>().prop_filter("no controls", |c| !c.is_control()),
            1..60,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        #[test]
        fn decoding_inverts_encoding(key in any_key()) {
            prop_assert_eq!(decode(&encode(&key)), Some(key.clone()));
            if let Ok(valid) = Key::new(&key) {
                prop_assert_eq!(Key::from_file_name(&valid.file_name()), Some(valid));
            }
        }

        #[test]
        fn encoded_names_stay_inside_the_store(key in any_key()) {
            let name = encode(&key);
            prop_assert!(!name.contains('/'));
            prop_assert!(!name.contains('\\'));
            prop_assert!(!name.starts_with('.'));
            prop_assert!(name.bytes().all(|b| b.is_ascii_graphic()));
        }

        #[test]
        fn distinct_keys_give_distinct_names(a in any_key(), b in any_key()) {
            prop_assume!(a != b);
            prop_assert_ne!(encode(&a), encode(&b));
        }

        #[test]
        fn valid_keys_respect_the_length_limits(key in any_key()) {
            if let Ok(valid) = Key::new(&key) {
                prop_assert!(valid.as_str().len() <= MAX_KEY_BYTES);
                prop_assert!(valid.file_name().len() <= MAX_FILE_NAME_BYTES);
            }
        }
    }
}
