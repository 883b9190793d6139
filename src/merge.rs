//! A three-way JSON merge for `edit`: the document a change started from
//! (`base`), the change (`mine`) and the document as it is now (`theirs`),
//! compared path by path (docs/contract.md, "Merging edits").
//!
//! - a path only one side changed takes that side's value;
//! - a path both sides changed to the same value takes it;
//! - objects both sides changed merge member by member;
//! - arrays are whole values, unless base, mine and theirs have the same
//!   length: then they merge element by element;
//! - anything else (delete against change, two different values, a type
//!   change against a change) is a conflict at that path.
//!
//! Values keep their order and their number text: this module has its own
//! small value type rather than serde_json's `Value`, which (without
//! `preserve_order` and `arbitrary_precision`) sorts keys and rounds big
//! numbers, so untouched parts of a document would change.

use std::collections::HashMap;
use std::fmt;

use crate::document;
use crate::error::Error;

/// A JSON value that keeps what a merge must not change: the order of an
/// object's members and the text of numbers.
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    /// The number as it was written.
    Number(String),
    String(String),
    Array(Vec<Value>),
    /// Members in document order, each key once (the last value of a
    /// repeated key, at the key's first place, as jq reads it).
    Object(Vec<(String, Value)>),
}

/// Equal as JSON values: members in any order, numbers by value.
impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => same_number(a, b),
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Array(a), Value::Array(b)) => a == b,
            (Value::Object(a), Value::Object(b)) => {
                let b = Members::new(b);
                a.len() == b.len()
                    && a.iter()
                        .all(|(key, value)| b.get(key).is_some_and(|other| value == other))
            }
            _ => false,
        }
    }
}

/// `1`, `1.0` and `1e0` are one number; integers compare as text, so that
/// big ones are never rounded into each other.
fn same_number(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let integer = |text: &str| !text.contains(['.', 'e', 'E']);
    if integer(a) && integer(b) {
        // Integers are written one way only, but for the sign of zero.
        return a.trim_start_matches('-') == "0" && b.trim_start_matches('-') == "0";
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(a), Ok(b)) => a.is_finite() && a == b,
        _ => false,
    }
}

/// An object's members by key: a scan for a few, a hash map for many.
struct Members<'a> {
    members: &'a [(String, Value)],
    index: Option<HashMap<&'a str, &'a Value>>,
}

impl<'a> Members<'a> {
    fn new(members: &'a [(String, Value)]) -> Members<'a> {
        let index = (members.len() > 16).then(|| {
            members
                .iter()
                .map(|(key, value)| (key.as_str(), value))
                .collect()
        });
        Members { members, index }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        match &self.index {
            Some(index) => index.get(key).copied(),
            None => self
                .members
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value),
        }
    }

    fn len(&self) -> usize {
        self.members.len()
    }
}

/// Parses one JSON document; invalid JSON is exit 6, as everywhere.
pub fn parse(bytes: &[u8]) -> Result<Value, Error> {
    document::validate(bytes)?;
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::InvalidDocument(format!("not UTF-8: {e}")))?;
    let mut parser = Parser { text, at: 0 };
    parser.value()
}

/// A parser for text `document::validate` accepted: it trusts the syntax
/// (and the nesting limit), and only decodes.
struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> u8 {
        self.text.as_bytes().get(self.at).copied().unwrap_or(0)
    }

    /// Skips whitespace and returns the next byte.
    fn next(&mut self) -> u8 {
        while matches!(self.peek(), b' ' | b'\t' | b'\n' | b'\r') {
            self.at += 1;
        }
        self.peek()
    }

    fn value(&mut self) -> Result<Value, Error> {
        Ok(match self.next() {
            b'{' => {
                self.at += 1;
                let mut members: Vec<(String, Value)> = Vec::new();
                if self.next() == b'}' {
                    self.at += 1;
                    return Ok(Value::Object(members));
                }
                loop {
                    self.next();
                    let key = self.string()?;
                    self.next(); // the colon
                    self.at += 1;
                    let value = self.value()?;
                    members.push((key, value));
                    let end = self.next();
                    self.at += 1;
                    if end == b'}' {
                        break;
                    }
                }
                Value::Object(last_value_wins(members))
            }
            b'[' => {
                self.at += 1;
                let mut elements = Vec::new();
                if self.next() == b']' {
                    self.at += 1;
                    return Ok(Value::Array(elements));
                }
                loop {
                    elements.push(self.value()?);
                    let end = self.next();
                    self.at += 1;
                    if end == b']' {
                        break;
                    }
                }
                Value::Array(elements)
            }
            b'"' => Value::String(self.string()?),
            b't' => {
                self.at += 4;
                Value::Bool(true)
            }
            b'f' => {
                self.at += 5;
                Value::Bool(false)
            }
            b'n' => {
                self.at += 4;
                Value::Null
            }
            _ => {
                let start = self.at;
                while matches!(self.peek(), b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    self.at += 1;
                }
                Value::Number(self.text[start..self.at].to_string())
            }
        })
    }

    fn string(&mut self) -> Result<String, Error> {
        let start = self.at;
        let bytes = self.text.as_bytes();
        let mut escaped = false;
        self.at += 1;
        while let Some(&byte) = bytes.get(self.at) {
            self.at += 1;
            match byte {
                b'\\' => {
                    escaped = true;
                    self.at += 1;
                }
                b'"' => break,
                _ => {}
            }
        }
        let raw = &self.text[start..self.at];
        if !escaped {
            return Ok(raw[1..raw.len() - 1].to_string());
        }
        // A lone surrogate escape is valid JSON but no Unicode text.
        serde_json::from_str(raw)
            .map_err(|e| Error::InvalidDocument(format!("cannot merge the string {raw}: {e}")))
    }
}

fn last_value_wins(members: Vec<(String, Value)>) -> Vec<(String, Value)> {
    if members.len() < 2 {
        return members;
    }
    let mut first: HashMap<String, usize> = HashMap::with_capacity(members.len());
    let mut out: Vec<(String, Value)> = Vec::with_capacity(members.len());
    for (key, value) in members {
        match first.get(&key) {
            Some(&at) => out[at].1 = value,
            None => {
                first.insert(key.clone(), out.len());
                out.push((key, value));
            }
        }
    }
    out
}

/// How a merged document is written: like the change it merges.
#[derive(Debug, Clone, PartialEq)]
pub struct Style {
    /// One level's indent, or `None` for one line.
    indent: Option<String>,
    final_newline: bool,
}

impl Style {
    /// The style of a document: indented by its first indented line (two
    /// spaces, as jq prints, if it spans lines but indents none), else one
    /// line; a final newline if it has one.
    pub fn of(bytes: &[u8]) -> Style {
        let text = String::from_utf8_lossy(bytes);
        let body = text.trim_end();
        let indent = body.contains('\n').then(|| {
            body.lines()
                .skip(1)
                .map(|line| &line[..line.len() - line.trim_start_matches([' ', '\t']).len()])
                .find(|indent| !indent.is_empty())
                .unwrap_or("  ")
                .to_string()
        });
        Style {
            indent,
            final_newline: text.ends_with('\n'),
        }
    }

    /// jq's style: two spaces, a final newline.
    pub fn jq() -> Style {
        Style {
            indent: Some("  ".into()),
            final_newline: true,
        }
    }
}

/// The document's bytes in `style`.
pub fn to_bytes(value: &Value, style: &Style) -> Vec<u8> {
    let mut out = Vec::new();
    write(&mut out, value, style, 0);
    if style.final_newline {
        out.push(b'\n');
    }
    out
}

fn write(out: &mut Vec<u8>, value: &Value, style: &Style, depth: usize) {
    let newline = |out: &mut Vec<u8>, depth: usize| {
        if let Some(indent) = &style.indent {
            out.push(b'\n');
            for _ in 0..depth {
                out.extend_from_slice(indent.as_bytes());
            }
        }
    };
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(text) => out.extend_from_slice(text.as_bytes()),
        Value::String(text) => write_string(out, text),
        Value::Array(elements) if elements.is_empty() => out.extend_from_slice(b"[]"),
        Value::Object(members) if members.is_empty() => out.extend_from_slice(b"{}"),
        Value::Array(elements) => {
            out.push(b'[');
            for (i, element) in elements.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                newline(out, depth + 1);
                write(out, element, style, depth + 1);
            }
            newline(out, depth);
            out.push(b']');
        }
        Value::Object(members) => {
            out.push(b'{');
            for (i, (key, member)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                newline(out, depth + 1);
                write_string(out, key);
                out.extend_from_slice(if style.indent.is_some() { b": " } else { b":" });
                write(out, member, style, depth + 1);
            }
            newline(out, depth);
            out.push(b'}');
        }
    }
}

fn write_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    document::escape_json_text(text.as_bytes(), out);
    out.push(b'"');
}

/// One step from a value to a part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Where a value is in a document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Path(pub Vec<Step>);

/// As jq writes paths: `.`, `.a.b[2]`, `.["a key"]`.
impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(".");
        }
        for step in &self.0 {
            match step {
                Step::Key(key) if is_identifier(key) => write!(f, ".{key}")?,
                Step::Key(key) => {
                    let mut quoted = Vec::new();
                    write_string(&mut quoted, key);
                    write!(f, ".[{}]", String::from_utf8_lossy(&quoted))?
                }
                Step::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A path both sides changed, differently; `None` is absent (deleted).
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub path: Path,
    pub base: Option<Value>,
    pub mine: Option<Value>,
    pub theirs: Option<Value>,
}

/// What a merge made.
#[derive(Debug, Clone, PartialEq)]
pub struct Merge {
    /// The merged document (`None`: absent, as when theirs deleted a
    /// document mine did not change). At a conflicting path it holds mine.
    pub value: Option<Value>,
    /// The paths where theirs changed what mine did not: the concurrent
    /// changes that were merged in.
    pub from_theirs: Vec<Path>,
    /// Empty for a clean merge.
    pub conflicts: Vec<Conflict>,
}

/// Merges `mine` and `theirs`, both changed from `base`; `None` is a
/// document that does not exist.
pub fn merge(base: Option<&Value>, mine: Option<&Value>, theirs: Option<&Value>) -> Merge {
    let mut merger = Merger {
        path: Vec::new(),
        from_theirs: Vec::new(),
        conflicts: Vec::new(),
    };
    let value = merger.at(base, mine, theirs);
    Merge {
        value,
        from_theirs: merger.from_theirs,
        conflicts: merger.conflicts,
    }
}

struct Merger {
    path: Vec<Step>,
    from_theirs: Vec<Path>,
    conflicts: Vec<Conflict>,
}

impl Merger {
    fn at(
        &mut self,
        base: Option<&Value>,
        mine: Option<&Value>,
        theirs: Option<&Value>,
    ) -> Option<Value> {
        if mine == theirs {
            return mine.cloned();
        }
        if mine == base {
            self.from_theirs.push(Path(self.path.clone()));
            return theirs.cloned();
        }
        if theirs == base {
            return mine.cloned();
        }
        match (mine, theirs) {
            (Some(Value::Object(mine)), Some(Value::Object(theirs))) => {
                // Members both added, or a base of another type: no base.
                let base = match base {
                    Some(Value::Object(base)) => &base[..],
                    _ => &[],
                };
                Some(Value::Object(self.objects(base, mine, theirs)))
            }
            (Some(Value::Array(m)), Some(Value::Array(t))) if matches!(base, Some(Value::Array(b)) if b.len() == m.len() && m.len() == t.len()) =>
            {
                let Some(Value::Array(b)) = base else {
                    unreachable!("matched above")
                };
                let mut elements = Vec::with_capacity(m.len());
                for (i, ((b, m), t)) in b.iter().zip(m).zip(t).enumerate() {
                    self.path.push(Step::Index(i));
                    let element = self.at(Some(b), Some(m), Some(t));
                    self.path.pop();
                    elements.push(element.expect("three present values merge to one"));
                }
                Some(Value::Array(elements))
            }
            _ => {
                self.conflicts.push(Conflict {
                    path: Path(self.path.clone()),
                    base: base.cloned(),
                    mine: mine.cloned(),
                    theirs: theirs.cloned(),
                });
                mine.cloned()
            }
        }
    }

    /// Members in theirs' order, then those only mine has, in mine's order.
    fn objects(
        &mut self,
        base: &[(String, Value)],
        mine: &[(String, Value)],
        theirs: &[(String, Value)],
    ) -> Vec<(String, Value)> {
        let (base_members, mine_members, theirs_members) =
            (Members::new(base), Members::new(mine), Members::new(theirs));
        let keys = theirs.iter().map(|(key, _)| key).chain(
            mine.iter()
                .map(|(key, _)| key)
                .filter(|key| theirs_members.get(key).is_none()),
        );
        let mut merged = Vec::new();
        for key in keys {
            self.path.push(Step::Key(key.clone()));
            let value = self.at(
                base_members.get(key),
                mine_members.get(key),
                theirs_members.get(key),
            );
            self.path.pop();
            if let Some(value) = value {
                merged.push((key.clone(), value));
            }
        }
        merged
    }
}

/// The member of a conflict file that must be gone before it is taken.
pub const CONFLICTS: &str = "conflicts";
/// The member that holds the document.
pub const DOCUMENT: &str = "document";
/// The member that says what to do; it may stay.
pub const HELP: &str = "help";

const HELP_TEXT: &str = "Someone changed this document while you edited it, and some of \
    their changes conflict with yours: see \"conflicts\" (a missing \"theirs\" or \"yours\" \
    is a deletion). \"document\" holds both edits merged, with your values at those paths. \
    Fix \"document\", then delete the whole \"conflicts\" member and save: \"document\" is \
    written. Saving with \"conflicts\" still here writes nothing and keeps your edit.";

/// The file a person resolves conflicts in: `{"help", "conflicts", "document"}`.
/// It is valid JSON but never a document anyone meant: it is only taken
/// once its `conflicts` member is gone.
pub fn conflict_file(merge: &Merge) -> Vec<u8> {
    let side = |name: &str, value: &Option<Value>| {
        value
            .as_ref()
            .map(|value| (name.to_string(), value.clone()))
    };
    let conflicts = merge
        .conflicts
        .iter()
        .map(|conflict| {
            let sides = [
                side("base", &conflict.base),
                side("yours", &conflict.mine),
                side("theirs", &conflict.theirs),
            ];
            (
                conflict.path.to_string(),
                Value::Object(sides.into_iter().flatten().collect()),
            )
        })
        .collect();
    let mut members = vec![
        (HELP.to_string(), Value::String(HELP_TEXT.to_string())),
        (CONFLICTS.to_string(), Value::Object(conflicts)),
    ];
    if let Some(value) = &merge.value {
        members.push((DOCUMENT.to_string(), value.clone()));
    }
    to_bytes(&Value::Object(members), &Style::jq())
}

/// What a person left in a conflict file.
#[derive(Debug, PartialEq)]
pub enum Resolution {
    /// `conflicts` is gone: this `document` is to be written.
    Resolved(Value),
    /// `conflicts` is still there; the `document` member, if any.
    Unresolved(Option<Value>),
    /// Not the file's form (`{"document": …}` once resolved).
    Unknown,
}

/// Reads a conflict file after the editor: resolved only when it is an
/// object with a `document` member, no `conflicts` and nothing else but `help`.
pub fn resolution(value: Value) -> Resolution {
    let Value::Object(members) = value else {
        return Resolution::Unknown;
    };
    let mut document = None;
    let mut conflicts = false;
    let mut other = false;
    for (key, value) in members {
        match key.as_str() {
            DOCUMENT => document = Some(value),
            CONFLICTS => conflicts = true,
            HELP => {}
            _ => other = true,
        }
    }
    match document {
        _ if conflicts => Resolution::Unresolved(document),
        Some(document) if !other => Resolution::Resolved(document),
        _ => Resolution::Unknown,
    }
}

/// Paths for one line of text: the first `shown`, then how many more.
pub fn list_paths(paths: &[Path], shown: usize) -> String {
    let mut text: Vec<String> = paths.iter().take(shown).map(Path::to_string).collect();
    if paths.len() > shown {
        text.push(format!("and {} more", paths.len() - shown));
    }
    crate::error::escape_controls(&text.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Value {
        parse(text.as_bytes()).unwrap()
    }

    fn opt(text: &str) -> Option<Value> {
        (text != "-").then(|| v(text))
    }

    fn compact(value: &Value) -> String {
        String::from_utf8(to_bytes(
            value,
            &Style {
                indent: None,
                final_newline: false,
            },
        ))
        .unwrap()
    }

    /// base, mine, theirs ("-": absent) and the merge: the document
    /// written compactly (byte for byte, so order counts; "-": absent),
    /// the paths taken from theirs, and the conflicting paths.
    /// name, base, mine, theirs, merged, from theirs, conflicts
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static [&'static str],
    );

    #[rustfmt::skip]
    const CASES: &[Case] = &[
        // name, base, mine, theirs, merged, from theirs, conflicts
        ("nobody changed anything", r#"{"a":1}"#, r#"{"a":1}"#, r#"{"a":1}"#, r#"{"a":1}"#, "", &[]),
        ("only mine changed", r#"{"a":1}"#, r#"{"a":2}"#, r#"{"a":1}"#, r#"{"a":2}"#, "", &[]),
        ("only theirs changed", r#"{"a":1}"#, r#"{"a":1}"#, r#"{"a":2}"#, r#"{"a":2}"#, ".", &[]),
        ("disjoint paths", r#"{"a":1,"b":1}"#, r#"{"a":2,"b":1}"#, r#"{"a":1,"b":3}"#, r#"{"a":2,"b":3}"#, ".b", &[]),
        ("disjoint nested paths", r#"{"x":{"a":1,"b":1}}"#, r#"{"x":{"a":2,"b":1}}"#, r#"{"x":{"a":1,"b":3}}"#, r#"{"x":{"a":2,"b":3}}"#, ".x.b", &[]),
        ("the same change", r#"{"a":1,"b":1}"#, r#"{"a":2,"b":1}"#, r#"{"a":2,"b":3}"#, r#"{"a":2,"b":3}"#, ".b", &[]),
        ("the same change everywhere", r#"{"a":1}"#, r#"{"a":2}"#, r#"{"a":2}"#, r#"{"a":2}"#, "", &[]),
        ("the same path, different values", r#"{"a":1,"b":1}"#, r#"{"a":2,"b":1}"#, r#"{"a":3,"b":4}"#, r#"{"a":2,"b":4}"#, ".b", &[".a"]),
        ("both add one key differently", r#"{}"#, r#"{"a":1}"#, r#"{"a":2}"#, r#"{"a":1}"#, "", &[".a"]),
        ("both add different keys", r#"{}"#, r#"{"a":1}"#, r#"{"b":2}"#, r#"{"b":2,"a":1}"#, ".b", &[]),
        ("mine deletes, theirs changes", r#"{"a":1,"b":1}"#, r#"{"b":1}"#, r#"{"a":2,"b":1}"#, r#"{"b":1}"#, "", &[".a"]),
        ("mine changes, theirs deletes", r#"{"a":1,"b":1}"#, r#"{"a":2,"b":1}"#, r#"{"b":1}"#, r#"{"b":1,"a":2}"#, "", &[".a"]),
        ("mine deletes, theirs changes elsewhere", r#"{"a":1,"b":1}"#, r#"{"b":1}"#, r#"{"a":1,"b":2}"#, r#"{"b":2}"#, ".b", &[]),
        ("both delete", r#"{"a":1,"b":1}"#, r#"{"b":2}"#, r#"{"b":1}"#, r#"{"b":2}"#, "", &[]),
        ("mine deletes an object theirs changes inside", r#"{"x":{"a":1}}"#, r#"{}"#, r#"{"x":{"a":2}}"#, r#"{}"#, "", &[".x"]),
        ("type change against a change", r#"{"a":{"b":1}}"#, r#"{"a":[1]}"#, r#"{"a":{"b":2}}"#, r#"{"a":[1]}"#, "", &[".a"]),
        ("type change against no change", r#"{"a":{"b":1},"c":1}"#, r#"{"a":"s","c":1}"#, r#"{"a":{"b":1},"c":2}"#, r#"{"a":"s","c":2}"#, ".c", &[]),
        ("both change the type the same way", r#"{"a":1}"#, r#"{"a":"1"}"#, r#"{"a":"1"}"#, r#"{"a":"1"}"#, "", &[]),
        ("both turn a scalar into objects", r#"{"a":1}"#, r#"{"a":{"x":1}}"#, r#"{"a":{"y":2}}"#, r#"{"a":{"y":2,"x":1}}"#, ".a.y", &[]),
        ("arrays: different elements of the same length", r#"[1,2,3]"#, r#"[9,2,3]"#, r#"[1,2,8]"#, r#"[9,2,8]"#, "[2]", &[]),
        ("arrays: the same element", r#"[1,2,3]"#, r#"[9,2,3]"#, r#"[7,2,3]"#, r#"[9,2,3]"#, "", &["[0]"]),
        ("arrays: objects inside merge by path", r#"[{"a":1,"b":1}]"#, r#"[{"a":2,"b":1}]"#, r#"[{"a":1,"b":2}]"#, r#"[{"a":2,"b":2}]"#, "[0].b", &[]),
        ("arrays: both append", r#"{"l":[1]}"#, r#"{"l":[1,2]}"#, r#"{"l":[1,3]}"#, r#"{"l":[1,2]}"#, "", &[".l"]),
        ("arrays: one appends, one changes", r#"{"l":[1]}"#, r#"{"l":[1,2]}"#, r#"{"l":[0]}"#, r#"{"l":[1,2]}"#, "", &[".l"]),
        ("arrays: one appends, the other is untouched", r#"{"l":[1],"n":1}"#, r#"{"l":[1,2],"n":1}"#, r#"{"l":[1],"n":2}"#, r#"{"l":[1,2],"n":2}"#, ".n", &[]),
        ("arrays: same length now, another before", r#"[1]"#, r#"[1,2]"#, r#"[1,3]"#, r#"[1,2]"#, "", &["."]),
        ("the order of theirs, mine's new keys after", r#"{"a":1,"b":1}"#, r#"{"new":0,"b":1,"a":2}"#, r#"{"b":1,"z":0,"a":1}"#, r#"{"b":1,"z":0,"a":2,"new":0}"#, ".z", &[]),
        ("theirs deleted the document mine changed", r#"{"a":1}"#, r#"{"a":2}"#, "-", r#"{"a":2}"#, "", &["."]),
        ("theirs deleted the document mine kept", r#"{"a":1}"#, r#"{"a":1}"#, "-", "-", ".", &[]),
        ("both created the document alike", "-", r#"{"a":1}"#, r#"{"a":1}"#, r#"{"a":1}"#, "", &[]),
        ("both created different keys", "-", r#"{"a":1}"#, r#"{"b":1}"#, r#"{"b":1,"a":1}"#, ".b", &[]),
        ("numbers compare by value", r#"{"a":1.0,"b":1}"#, r#"{"a":1,"b":2}"#, r#"{"a":1.0,"b":1}"#, r#"{"a":1,"b":2}"#, "", &[]),
        ("big numbers are not rounded into each other", r#"[12345678901234567890]"#, r#"[12345678901234567891]"#, r#"[12345678901234567892]"#, r#"[12345678901234567891]"#, "", &["[0]"]),
        ("key order alone is no change", r#"{"a":1,"b":1}"#, r#"{"b":1,"a":1}"#, r#"{"a":1,"b":2}"#, r#"{"a":1,"b":2}"#, ".", &[]),
        ("awkward keys are quoted in paths", r#"{"a b":1,"c":1}"#, r#"{"a b":2,"c":1}"#, r#"{"a b":3,"c":1}"#, r#"{"a b":2,"c":1}"#, "", &[".[\"a b\"]"]),
        ("scalars at the root", "1", "2", "3", "2", "", &["."]),
    ];

    #[test]
    fn the_merge_table() {
        for (name, base, mine, theirs, merged, from_theirs, conflicts) in CASES {
            let result = merge(opt(base).as_ref(), opt(mine).as_ref(), opt(theirs).as_ref());
            let value = result.value.as_ref().map_or("-".to_string(), compact);
            assert_eq!(&value, merged, "{name}: merged document");
            let taken: Vec<String> = result.from_theirs.iter().map(Path::to_string).collect();
            assert_eq!(taken.join(" "), *from_theirs, "{name}: paths from theirs");
            let found: Vec<String> = result
                .conflicts
                .iter()
                .map(|conflict| conflict.path.to_string())
                .collect();
            assert_eq!(found, *conflicts, "{name}: conflicts");
        }
    }

    #[test]
    fn a_conflict_names_all_three_values() {
        let result = merge(
            Some(&v(r#"{"a":1}"#)),
            Some(&v("{}")),
            Some(&v(r#"{"a":2}"#)),
        );
        assert_eq!(
            result.conflicts,
            vec![Conflict {
                path: Path(vec![Step::Key("a".into())]),
                base: Some(v("1")),
                mine: None,
                theirs: Some(v("2")),
            }]
        );
    }

    #[test]
    fn parsing_keeps_order_number_text_and_the_last_of_a_repeated_key() {
        let value = v(r#" {"z": 1.50, "a": [true, false, null, "\u00e9\n"], "z": 2e3} "#);
        assert_eq!(compact(&value), r#"{"z":2e3,"a":[true,false,null,"é\n"]}"#);
    }

    #[test]
    fn a_lone_surrogate_cannot_be_merged() {
        assert!(matches!(
            parse(br#"["\ud800"]"#),
            Err(Error::InvalidDocument(_))
        ));
        assert!(matches!(parse(b"{"), Err(Error::InvalidDocument(_))));
    }

    #[test]
    fn the_style_follows_the_change() {
        let pretty = b"{\n    \"a\": [\n        1\n    ]\n}\n";
        let style = Style::of(pretty);
        assert_eq!(to_bytes(&parse(pretty).unwrap(), &style), pretty);
        let tabs = b"{\n\t\"a\": {}\n}";
        assert_eq!(to_bytes(&parse(tabs).unwrap(), &Style::of(tabs)), tabs);
        let line = b"{\"a\":[1,{}]}\n";
        assert_eq!(to_bytes(&parse(line).unwrap(), &Style::of(line)), line);
        assert_eq!(Style::of(b"{\n}"), Style::of(b"{\n  \"a\": 1}"));
    }

    #[test]
    fn a_conflict_file_is_taken_only_without_its_conflicts() {
        let result = merge(
            Some(&v(r#"{"a":1}"#)),
            Some(&v(r#"{"a":2}"#)),
            Some(&v(r#"{"a":3}"#)),
        );
        let file = conflict_file(&result);
        let text = String::from_utf8(file.clone()).unwrap();
        assert!(text.starts_with("{\n  \"help\": "), "{text}");
        assert!(
            text.contains("\"conflicts\": {\n    \".a\": {\n      \"base\": 1,\n      \"yours\": 2,\n      \"theirs\": 3\n    }\n  },\n  \"document\": {\n    \"a\": 2\n  }\n}\n"),
            "{text}"
        );
        assert_eq!(
            resolution(parse(&file).unwrap()),
            Resolution::Unresolved(Some(v(r#"{"a":2}"#)))
        );
        let resolved = r#"{"help": "", "document": {"a": 4}}"#;
        assert_eq!(
            resolution(v(resolved)),
            Resolution::Resolved(v(r#"{"a":4}"#))
        );
        assert_eq!(
            resolution(v(r#"{"document": null}"#)),
            Resolution::Resolved(Value::Null)
        );
        for unknown in [r#"{"a": 4}"#, r#"{"document": 1, "extra": 2}"#, "[]", "{}"] {
            assert_eq!(resolution(v(unknown)), Resolution::Unknown, "{unknown}");
        }
    }

    #[test]
    fn long_path_lists_are_cut() {
        let paths: Vec<Path> = (0..12).map(|i| Path(vec![Step::Index(i)])).collect();
        assert_eq!(list_paths(&paths[..2], 10), "[0], [1]");
        assert_eq!(
            list_paths(&paths, 10),
            "[0], [1], [2], [3], [4], [5], [6], [7], [8], [9], and 2 more"
        );
    }
}
