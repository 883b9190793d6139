//! The JSON check: a small streaming state machine rather than a parser.
//! serde_json's skip-a-value path neither checks UTF-8 inside strings nor
//! limits nesting, and nothing here needs the parsed value.

use crate::error::Error;

/// The deepest nesting accepted (docs/contract.md: up to 128).
pub const MAX_DEPTH: usize = 128;

/// Checks that a complete, in-memory document is valid (for `--default`).
pub fn validate(bytes: &[u8]) -> Result<(), Error> {
    let mut checker = Checker::new();
    checker.feed(bytes)?;
    checker.finish()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the top-level value.
    Start,
    /// A value must come (after `:`, `,` in an array).
    Value,
    /// After `[`: a value or `]`.
    ArrayFirst,
    /// After `{`: a key or `}`.
    ObjectFirst,
    /// After `,` in an object: a key.
    ObjectKey,
    /// After a key: `:`.
    Colon,
    /// After a value inside a container: `,` or the closing bracket.
    AfterValue,
    /// After the top-level value: only whitespace.
    Done,
    /// Inside a string; `key` says whether a `:` follows it.
    Str {
        key: bool,
    },
    /// After a backslash in a string.
    Escape {
        key: bool,
    },
    /// Inside `\uXXXX`, with this many hex digits still to come.
    Unicode {
        key: bool,
        left: u8,
    },
    /// Inside a literal (`true`, `false`, `null`): the bytes still to match.
    Literal {
        rest: &'static [u8],
    },
    /// Number states, after: `-`, a leading `0`, integer digits, `.`,
    /// fraction digits, `e`, the exponent's sign, exponent digits.
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    Exp,
    ExpSign,
    ExpInt,
}

/// A streaming JSON syntax checker (RFC 8259) that also checks UTF-8 and
/// limits nesting to `MAX_DEPTH`.
pub struct Checker {
    state: State,
    /// One bit per open container: 1 for an object, 0 for an array.
    containers: u128,
    depth: usize,
    /// Up to three bytes of a UTF-8 sequence split across chunks.
    utf8_tail: Vec<u8>,
    /// Bytes fed so far, and the current line for error messages.
    offset: u64,
    line: u64,
    line_start: u64,
    /// Offsets of the top-level value's first byte and one past its last.
    start: Option<u64>,
    end: Option<u64>,
}

impl Default for Checker {
    fn default() -> Self {
        Self::new()
    }
}

impl Checker {
    pub fn new() -> Checker {
        Checker {
            state: State::Start,
            containers: 0,
            depth: 0,
            utf8_tail: Vec::new(),
            offset: 0,
            line: 1,
            line_start: 0,
            start: None,
            end: None,
        }
    }

    /// Checks the next chunk of the document.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), Error> {
        self.check_utf8(chunk)?;
        let mut i = 0;
        while i < chunk.len() {
            // Plain string bytes are the bulk of most documents: skip them in a tight loop.
            if let State::Str { .. } = self.state {
                while i < chunk.len() && !matches!(chunk[i], b'"' | b'\\' | 0..=0x1F) {
                    i += 1;
                }
                if i == chunk.len() {
                    break;
                }
            }
            let at = self.offset + i as u64;
            self.step(chunk[i], at)?;
            i += 1;
        }
        self.offset += chunk.len() as u64;
        Ok(())
    }

    /// Ends the document: it must have held exactly one complete value.
    pub fn finish(&mut self) -> Result<(), Error> {
        if !self.utf8_tail.is_empty() {
            return Err(self.error_at(self.offset, "invalid UTF-8 at the end of the input"));
        }
        match self.state {
            State::Done => Ok(()),
            State::Zero | State::Int | State::Frac | State::ExpInt if self.depth == 0 => {
                self.end = Some(self.offset);
                self.state = State::Done;
                Ok(())
            }
            State::Start => Err(Error::InvalidDocument(
                "empty input: expected one JSON value".into(),
            )),
            _ => Err(self.error_at(self.offset, "unexpected end of input")),
        }
    }

    /// The part of a chunk fed at `chunk_start` that lies inside the value.
    pub(super) fn span_in(&self, chunk_start: u64, len: usize) -> (usize, usize) {
        let chunk_end = chunk_start + len as u64;
        let Some(start) = self.start else {
            return (0, 0);
        };
        let from = start.clamp(chunk_start, chunk_end);
        let to = self.end.unwrap_or(chunk_end).clamp(from, chunk_end);
        ((from - chunk_start) as usize, (to - chunk_start) as usize)
    }

    fn check_utf8(&mut self, chunk: &[u8]) -> Result<(), Error> {
        let mut rest = chunk;
        if !self.utf8_tail.is_empty() {
            // Complete the split sequence with bytes from this chunk.
            let need = utf8_len(self.utf8_tail[0]) - self.utf8_tail.len();
            let take = need.min(rest.len());
            self.utf8_tail.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            match std::str::from_utf8(&self.utf8_tail) {
                Ok(_) => self.utf8_tail.clear(),
                Err(e) if e.error_len().is_none() && rest.is_empty() => return Ok(()),
                Err(_) => return Err(self.error_at(self.offset, "invalid UTF-8")),
            }
        }
        match std::str::from_utf8(rest) {
            Ok(_) => Ok(()),
            Err(e) => {
                let valid = e.valid_up_to();
                if e.error_len().is_none() {
                    self.utf8_tail.extend_from_slice(&rest[valid..]);
                    Ok(())
                } else {
                    let at = self.offset + (chunk.len() - rest.len() + valid) as u64;
                    Err(self.error_at(at, "invalid UTF-8"))
                }
            }
        }
    }

    fn error_at(&self, at: u64, what: &str) -> Error {
        let column = at.saturating_sub(self.line_start) + 1;
        Error::InvalidDocument(format!(
            "{what} at line {}, column {column} (byte {at})",
            self.line
        ))
    }

    fn unexpected(&self, byte: u8, at: u64, expected: &str) -> Error {
        let found = match byte {
            0 => "a NUL byte".to_string(),
            b if b.is_ascii_graphic() => format!("'{}'", b as char),
            b => format!("byte 0x{b:02x}"),
        };
        self.error_at(at, &format!("expected {expected}, found {found}"))
    }

    fn open(&mut self, object: bool, at: u64) -> Result<(), Error> {
        if self.depth == MAX_DEPTH {
            return Err(self.error_at(at, &format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.containers = (self.containers << 1) | u128::from(object);
        self.depth += 1;
        Ok(())
    }

    fn in_object(&self) -> bool {
        self.containers & 1 == 1
    }

    fn close(&mut self, object: bool, byte: u8, at: u64) -> Result<(), Error> {
        if self.in_object() != object {
            let expected = if self.in_object() { "'}'" } else { "']'" };
            return Err(self.unexpected(byte, at, expected));
        }
        self.containers >>= 1;
        self.depth -= 1;
        self.value_ended(at + 1);
        Ok(())
    }

    /// A value has just ended at `end` (exclusive).
    fn value_ended(&mut self, end: u64) {
        if self.depth == 0 {
            self.state = State::Done;
            self.end = Some(end);
        } else {
            self.state = State::AfterValue;
        }
    }

    fn begin_value(&mut self, byte: u8, at: u64) -> Result<(), Error> {
        if self.depth == 0 {
            self.start = Some(at);
        }
        self.state = match byte {
            b'{' => {
                self.open(true, at)?;
                State::ObjectFirst
            }
            b'[' => {
                self.open(false, at)?;
                State::ArrayFirst
            }
            b'"' => State::Str { key: false },
            b'-' => State::Minus,
            b'0' => State::Zero,
            b'1'..=b'9' => State::Int,
            b't' => State::Literal { rest: b"rue" },
            b'f' => State::Literal { rest: b"alse" },
            b'n' => State::Literal { rest: b"ull" },
            _ => return Err(self.unexpected(byte, at, "a JSON value")),
        };
        Ok(())
    }

    fn whitespace(&mut self, byte: u8, at: u64) -> bool {
        match byte {
            b' ' | b'\t' | b'\r' => true,
            b'\n' => {
                self.line += 1;
                self.line_start = at + 1;
                true
            }
            _ => false,
        }
    }

    fn step(&mut self, byte: u8, at: u64) -> Result<(), Error> {
        use State::*;
        match self.state {
            Start | Value => {
                if !self.whitespace(byte, at) {
                    self.begin_value(byte, at)?;
                }
            }
            ArrayFirst => {
                if byte == b']' {
                    self.close(false, byte, at)?;
                } else if !self.whitespace(byte, at) {
                    self.begin_value(byte, at)?;
                }
            }
            ObjectFirst => match byte {
                b'}' => self.close(true, byte, at)?,
                b'"' => self.state = Str { key: true },
                _ if self.whitespace(byte, at) => {}
                _ => return Err(self.unexpected(byte, at, "a string key or '}'")),
            },
            ObjectKey => match byte {
                b'"' => self.state = Str { key: true },
                _ if self.whitespace(byte, at) => {}
                _ => return Err(self.unexpected(byte, at, "a string key")),
            },
            Colon => match byte {
                b':' => self.state = Value,
                _ if self.whitespace(byte, at) => {}
                _ => return Err(self.unexpected(byte, at, "':'")),
            },
            AfterValue => match byte {
                b',' if self.in_object() => self.state = ObjectKey,
                b',' => self.state = Value,
                b']' => self.close(false, byte, at)?,
                b'}' => self.close(true, byte, at)?,
                _ if self.whitespace(byte, at) => {}
                _ => {
                    let expected = if self.in_object() {
                        "',' or '}'"
                    } else {
                        "',' or ']'"
                    };
                    return Err(self.unexpected(byte, at, expected));
                }
            },
            Done => {
                if !self.whitespace(byte, at) {
                    return Err(self.error_at(at, "trailing data after the JSON value"));
                }
            }
            Str { key } => match byte {
                b'"' if key => self.state = Colon,
                b'"' => self.value_ended(at + 1),
                b'\\' => self.state = Escape { key },
                0..=0x1F => {
                    return Err(self.unexpected(byte, at, "a string character (escape controls)"))
                }
                _ => {}
            },
            Escape { key } => match byte {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.state = Str { key },
                b'u' => self.state = Unicode { key, left: 4 },
                _ => return Err(self.unexpected(byte, at, "an escape character")),
            },
            Unicode { key, left } => {
                if !byte.is_ascii_hexdigit() {
                    return Err(self.unexpected(byte, at, "a hex digit"));
                }
                self.state = if left == 1 {
                    Str { key }
                } else {
                    Unicode {
                        key,
                        left: left - 1,
                    }
                };
            }
            Literal { rest } => {
                if byte != rest[0] {
                    return Err(self.unexpected(byte, at, "a literal (true, false, null)"));
                }
                if rest.len() == 1 {
                    self.value_ended(at + 1);
                } else {
                    self.state = Literal { rest: &rest[1..] };
                }
            }
            Minus => match byte {
                b'0' => self.state = Zero,
                b'1'..=b'9' => self.state = Int,
                _ => return Err(self.unexpected(byte, at, "a digit")),
            },
            Zero | Int | Frac | ExpInt => match (self.state, byte) {
                (Int, b'0'..=b'9') | (Frac, b'0'..=b'9') | (ExpInt, b'0'..=b'9') => {}
                (Zero | Int, b'.') => self.state = Dot,
                (Zero | Int | Frac, b'e' | b'E') => self.state = Exp,
                (Zero, b'0'..=b'9') => {
                    return Err(self.error_at(at, "a number must not have a leading zero"))
                }
                _ => {
                    // The number ended just before this byte, which belongs to what follows.
                    self.value_ended(at);
                    self.step(byte, at)?;
                }
            },
            Dot => match byte {
                b'0'..=b'9' => self.state = Frac,
                _ => return Err(self.unexpected(byte, at, "a digit after '.'")),
            },
            Exp => match byte {
                b'+' | b'-' => self.state = ExpSign,
                b'0'..=b'9' => self.state = ExpInt,
                _ => return Err(self.unexpected(byte, at, "an exponent")),
            },
            ExpSign => match byte {
                b'0'..=b'9' => self.state = ExpInt,
                _ => return Err(self.unexpected(byte, at, "an exponent digit")),
            },
        }
        Ok(())
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_in_chunks(doc: &[u8], chunk: usize) -> Result<(), Error> {
        let mut checker = Checker::new();
        for part in doc.chunks(chunk) {
            checker.feed(part)?;
        }
        checker.finish()
    }

    fn is_valid(doc: &[u8]) -> bool {
        let whole = validate(doc).is_ok();
        // Every split must give the same answer as the whole.
        for chunk in 1..=3 {
            assert_eq!(
                valid_in_chunks(doc, chunk).is_ok(),
                whole,
                "{doc:?} in {chunk}s"
            );
        }
        whole
    }

    #[test]
    fn accepts_every_kind_of_value() {
        let docs: &[&[u8]] = &[
            b"{}",
            b"[]",
            b" \n\t{\"a\": [1, -2.5e+3, 0, 0.5, 1E9, true, false, null, \"x\\\"\\u00e9\"]}\r\n",
            b"\"just a string\"",
            b"0",
            b"-0",
            b"123",
            b"1.5e-7",
            b"true",
            b"null",
            "{\"é\": \"日本\", \"emoji\": \"🎉\"}".as_bytes(),
            b"[[[[]]],{\"a\":{\"b\":{}}}]",
            b"\"\\ud800\"",
        ];
        for doc in docs {
            assert!(is_valid(doc), "{}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn rejects_what_is_not_exactly_one_value() {
        let docs: &[&[u8]] = &[
            b"",
            b"   ",
            b"{} {}",
            b"1 2",
            b"{}x",
            b"{",
            b"[1,]",
            b"{\"a\":1,}",
            b"{\"a\" 1}",
            b"{1:2}",
            b"01",
            b"-",
            b"1.",
            b".5",
            b"1e",
            b"+1",
            b"tru",
            b"nul",
            b"True",
            b"NaN",
            b"'single'",
            b"\"unterminated",
            b"\"tab\tinside\"",
            b"\"bad \\x escape\"",
            b"\"\\u12G4\"",
            b"[1}",
            b"[1",
            b"{\"a\": 1",
            b"[1e5",
            b"{\"a\":[0",
            b"{]",
            b"\0",
            b"{}\0",
            b"\"nul\0inside\"",
            b"\"\xff\"",
            b"\"\xc3\"",
            b"\"\xc3\"x",
            b"\"\xed\xa0\x80\"",
            b"\xef\xbb\xbf{}",
        ];
        for doc in docs {
            assert!(!is_valid(doc), "{}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn nesting_is_limited_to_128() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(is_valid(nested(128).as_bytes()));
        assert!(!is_valid(nested(129).as_bytes()));
        let objects = "{\"a\":".repeat(128) + "1" + &"}".repeat(128);
        assert!(is_valid(objects.as_bytes()));
        let error = validate("[".repeat(100_000).as_bytes()).unwrap_err();
        assert!(error.to_string().contains("deeper than 128"), "{error}");
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let error = validate(b"{\n  \"a\": x\n}").unwrap_err();
        assert_eq!(error.exit_code(), 6);
        assert!(error.to_string().contains("line 2, column 8"), "{error}");
    }

    #[test]
    fn utf8_errors_name_their_line_and_column() {
        let error = validate(b"{\n  \"a\": \"\xff\"\n}").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("invalid UTF-8 at line 2, column 9 (byte 10)"),
            "{error}"
        );
    }
}
