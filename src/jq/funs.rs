//! Native filters for `JqVal`: the few of jaq-json's that are tied to its
//! value type (`length`, `has`, `tojson`, ...), written again with jq's
//! errors, and the effects jq has that jaq leaves to a logger (`debug`,
//! `stderr`) or to `process::exit` (`halt_error`).

use std::cell::RefCell;
use std::io::Write;

use jaq_core::box_iter::box_once;
use jaq_core::native::{bome, run, unary, v, Filter, Fun};
use jaq_core::path::Opt;
use jaq_core::{Bind, DataT, Exn, RunPtr, ValT as _, ValX};
use jaq_json::{Num, Val};
use jaq_std::ValT as _;

use super::val::{type_name, JqVal};

type Error = jaq_core::Error<JqVal>;
type ValR = jaq_core::ValR<JqVal>;

thread_local! {
    /// The value `halt_error` was called on, for `Filter::apply` to report.
    pub static HALT_MESSAGE: RefCell<Option<Val>> = const { RefCell::new(None) };
}

fn msg(text: String) -> Error {
    Error::new(JqVal(Val::from(text)))
}

/// The value as jq's `tojson` writes it: compact.
pub fn to_json(v: &Val) -> String {
    let v = &super::jq_numbers(v.clone(), true);
    let mut out = Vec::new();
    jaq_json::write::write(&mut out, &jaq_json::write::Pp::default(), 0, v)
        .expect("writing to memory cannot fail");
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `v` holds one of jaq's error messages (a byte string; see
/// `val::maybe_jaq_worded`).
pub fn has_jaq_worded(v: &Val) -> bool {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Val::BStr(_) => return true,
            Val::Arr(a) => stack.extend(a.iter()),
            Val::Obj(o) => stack.extend(o.iter().flat_map(|(k, v)| [k, v])),
            _ => {}
        }
    }
    false
}

/// Whether `v` is nested deeper than `max` levels (no recursion).
fn deeper_than(v: &Val, max: usize) -> bool {
    let mut stack = vec![(v, 1)];
    while let Some((v, depth)) = stack.pop() {
        if depth > max {
            return true;
        }
        match v {
            Val::Arr(a) => stack.extend(a.iter().map(|c| (c, depth + 1))),
            Val::Obj(o) => stack.extend(o.values().map(|c| (c, depth + 1))),
            _ => {}
        }
    }
    false
}

fn length(v: &Val) -> ValR {
    Ok(JqVal(match v {
        Val::Null => Val::from(0usize),
        Val::Bool(_) => return Err(msg(format!("boolean ({v}) has no length"))),
        Val::Num(Num::Int(i)) => Val::from(i.unsigned_abs()),
        // a literal keeps its digits, as jq's decNumber does
        Val::Num(Num::Dec(s)) => Val::Num(Num::Dec(jaq_json::Rc::new(
            s.strip_prefix('-').unwrap_or(s).to_string(),
        ))),
        Val::Num(_) => Val::from(v.as_f64().unwrap_or_default().abs()),
        Val::TStr(s) | Val::BStr(s) => Val::from(String::from_utf8_lossy(s).chars().count()),
        Val::Arr(a) => Val::from(a.len()),
        Val::Obj(o) => Val::from(o.len()),
    }))
}

/// jq's limit on nesting for `contains` and printing.
const MAX_DEPTH: usize = 10_000;

fn contains(a: &Val, b: &Val) -> Result<bool, Error> {
    contains_below(a, b, 0)
}

fn contains_below(a: &Val, b: &Val, depth: usize) -> Result<bool, Error> {
    if depth > MAX_DEPTH {
        return Err(msg("Containment check too deep".into()));
    }
    let contains = |a, b| contains_below(a, b, depth + 1);
    Ok(match (a, b) {
        (Val::TStr(x), Val::TStr(y)) => {
            x.windows(y.len().max(1)).any(|w| w == &y[..]) || y.is_empty()
        }
        (Val::Arr(x), Val::Arr(y)) => {
            for y in y.iter() {
                let mut found = false;
                for x in x.iter() {
                    if type_name(x) == type_name(y) && contains(x, y)? {
                        found = true;
                        break;
                    }
                }
                if !found {
                    return Ok(false);
                }
            }
            true
        }
        (Val::Obj(x), Val::Obj(y)) => {
            for (k, y) in y.iter() {
                match x.get(k) {
                    Some(x) if type_name(x) == type_name(y) && contains(x, y)? => {}
                    _ => return Ok(false),
                }
            }
            true
        }
        _ if type_name(a) == type_name(b) => a == b,
        _ => {
            return Err(msg(format!(
                "{} ({a}) and {} ({b}) cannot have their containment checked",
                type_name(a),
                type_name(b)
            )))
        }
    })
}

fn has(v: &Val, k: &Val) -> ValR {
    match (v, k) {
        // jq 1.8: null has nothing (jq 1.7.1 failed)
        (Val::Null, _) => Ok(JqVal::from(false)),
        (Val::Obj(o), Val::TStr(_)) => Ok(JqVal::from(o.contains_key(k))),
        (Val::Arr(a), Val::Num(_)) => {
            let i = k.as_f64().unwrap_or(-1.0);
            Ok(JqVal::from(i >= 0.0 && (i as usize) < a.len()))
        }
        _ => Err(msg(format!(
            "Cannot check whether {} has a {} key",
            type_name(v),
            type_name(k)
        ))),
    }
}

fn indices(x: &Val, y: &Val) -> ValR {
    let found: Vec<usize> = match (x, y) {
        (Val::Null, _) | (_, Val::Null) => return Ok(JqVal(Val::Null)),
        (Val::TStr(_), Val::TStr(y)) if y.is_empty() => Vec::new(),
        (Val::Arr(_), Val::Arr(a)) if a.is_empty() => Vec::new(),
        (Val::TStr(x), Val::TStr(y)) => {
            // jq 1.8 counts in code points
            let x = String::from_utf8_lossy(x);
            let y = String::from_utf8_lossy(y);
            x.char_indices()
                .enumerate()
                .filter(|(_, (at, _))| x[*at..].starts_with(&*y))
                .map(|(i, _)| i)
                .collect()
        }
        (Val::Arr(x), Val::Arr(y)) => x
            .windows(y.len())
            .enumerate()
            .filter(|(_, w)| *w == &y[..])
            .map(|(i, _)| i)
            .collect(),
        (Val::Arr(x), y) => x
            .iter()
            .enumerate()
            .filter(|(_, x)| *x == y)
            .map(|(i, _)| i)
            .collect(),
        _ => {
            return Err(msg(format!(
                "Cannot determine the indices of {} in {}",
                type_name(y),
                type_name(x)
            )))
        }
    };
    Ok(found.into_iter().map(JqVal::from).collect())
}

/// jq's `tonumber`: a number as it is; a string that is a number as
/// written in JSON, with an optional `+`, a bare `.5` or `5.`, or `nan`.
fn tonumber(v: &Val) -> ValR {
    let fail = || {
        msg(format!(
            "{} ({}) cannot be parsed as a number",
            type_name(v),
            to_json(v)
        ))
    };
    let text = match v {
        Val::Num(_) => return Ok(JqVal(v.clone())),
        Val::TStr(s) => std::str::from_utf8(s).map_err(|_| fail())?,
        _ => return Err(fail()),
    };
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    if unsigned == "nan" {
        return Ok(JqVal::from(f64::NAN));
    }
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (digits(int) || int.is_empty())
                && (digits(frac) || frac.is_empty())
                && !(int.is_empty() && frac.is_empty())
        }
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    if !(mantissa_ok && exponent_ok) {
        return Err(fail());
    }
    if exponent.is_none() && !mantissa.contains('.') {
        // an integer: exact, as jaq reads integers
        return jaq_core::ValT::from_num(text.trim_start_matches('+'));
    }
    text.parse::<f64>().map(JqVal::from).map_err(|_| fail())
}

/// The number of capture groups in a regular expression, as written:
/// `(` outside a character class and not escaped, except `(?:`, `(?i)`
/// and other `(?` forms that are not `(?<name>` or `(?P<name>`.
fn regex_groups(re: &[u8]) -> usize {
    let (mut groups, mut i, mut in_class) = (0, 0, false);
    while i < re.len() {
        match re[i] {
            b'\\' => i += 1,
            b'[' if !in_class => {
                in_class = true;
                // a `]` right after `[` or `[^` is a literal
                if re.get(i + 1) == Some(&b'^') {
                    i += 1;
                }
                if re.get(i + 1) == Some(&b']') {
                    i += 1;
                }
            }
            b']' if in_class => in_class = false,
            b'(' if !in_class => {
                let rest = &re[i + 1..];
                let named = rest.starts_with(b"?<")
                    && !rest.starts_with(b"?<=")
                    && !rest.starts_with(b"?<!");
                if !rest.starts_with(b"?") || named || rest.starts_with(b"?P<") {
                    groups += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    groups
}

/// An error whose text jq would not give: marked as jaq's (see
/// `val::maybe_jaq_worded`), so that a result holding it is refused.
fn not_as_jq(text: String) -> Error {
    Error::new(JqVal(Val::byte_str(text.into_bytes())))
}

/// The number of characters that start before byte `at` of `s`, as jq
/// counts an offset.
fn char_offset(s: &[u8], at: usize) -> usize {
    s[..at].iter().filter(|b| (**b as i8) >= -0x40).count()
}

/// jq 1.8's `_match_impl(re; flags; test)`: the matches of `re` in the
/// input as jq's objects (or, with `test`, whether there is one).
///
/// The search steps through the string as jq steps Oniguruma through it:
/// after a match the next search starts where it ended, so an empty match
/// right after a match counts (`"baaac" | [match("a*"; "g")]` has one at 4);
/// after an empty match it starts one byte on. Where that byte is inside a
/// character, Oniguruma matches inside the character and jq reports odd
/// offsets; that is an error here. `$` before a final newline, the flag `l`
/// (longest match) and `n` with alternatives or lazy repetition are errors
/// too: the regex engine has no such modes.
fn match_impl(input: &Val, re: &Val, flags: &Val, test: bool) -> ValR {
    use regex_bites::bytes::RegexBuilder;
    let Val::TStr(s) = input else {
        return Err(msg(format!(
            "{} ({}) cannot be matched, as it is not a string",
            type_name(input),
            super::val::dump(input)
        )));
    };
    let Val::TStr(re_text) = re else {
        return Err(msg(format!(
            "{} ({}) is not a string",
            type_name(re),
            super::val::dump(re)
        )));
    };
    let (mut global, mut not_empty) = (false, false);
    let mut builder = RegexBuilder::new(&String::from_utf8_lossy(re_text));
    match flags {
        Val::Null => {}
        Val::TStr(f) => {
            for c in f.iter() {
                match c {
                    b'g' => global = true,
                    b'i' => drop(builder.case_insensitive(true)),
                    b'x' => drop(builder.ignore_whitespace(true)),
                    b'n' => not_empty = true,
                    b's' => {}
                    b'p' => drop(builder.dot_matches_new_line(true)),
                    b'l' => {
                        return Err(not_as_jq(
                            "the regex flag l (longest match) is not supported by etagstore".into(),
                        ))
                    }
                    _ => {
                        return Err(msg(format!(
                            "{} is not a valid modifier string",
                            String::from_utf8_lossy(f)
                        )))
                    }
                }
            }
        }
        other => {
            return Err(msg(format!(
                "{} ({}) is not a string",
                type_name(other),
                super::val::dump(other)
            )))
        }
    }
    let re = builder
        .build()
        .map_err(|e| not_as_jq(format!("invalid regex: {e}")))?;
    let re_bytes: &[u8] = re_text;
    if s.ends_with(b"\n") && has_dollar(re_bytes) {
        return Err(not_as_jq(
            "etagstore cannot match $ as jq does in a string that ends with a newline \
             (jq's $ also matches before it)"
                .into(),
        ));
    }
    let lazy_or_alternatives = re_bytes.contains(&b'|')
        || re_bytes
            .windows(2)
            .any(|w| matches!(w, [b'*' | b'+' | b'?' | b'}', b'?']));
    let names: Vec<Option<&str>> = re.capture_names().collect();
    let text =
        |from: usize, to: usize| Val::from(String::from_utf8_lossy(&s[from..to]).into_owned());
    let key = |k: &str| Val::from(k.to_string());
    let mut found = Vec::new();
    let mut start = 0;
    while start <= s.len() {
        let Some(caps) = re.captures_at(s, start) else {
            break;
        };
        let whole = caps.get(0).expect("group 0 is the match");
        if whole.is_empty() && not_empty {
            if lazy_or_alternatives {
                return Err(not_as_jq(
                    "etagstore cannot match with the flag n as jq does when the expression \
                     matches the empty string"
                        .into(),
                ));
            }
            // Oniguruma's FIND_NOT_EMPTY: search on from the next character
            start = whole.end() + s[whole.end()..].first().map_or(1, |b| utf8_len(*b));
            continue;
        }
        if test {
            return Ok(JqVal::from(true));
        }
        let captures = (1..caps.len())
            .map(|i| {
                let name = names.get(i).copied().flatten().map_or(Val::Null, &key);
                let fields: Vec<(Val, Val)> = match caps.get(i) {
                    None => vec![
                        (key("offset"), Val::from(-1isize)),
                        (key("string"), Val::Null),
                        (key("length"), Val::from(0usize)),
                        (key("name"), name),
                    ],
                    Some(c) if c.is_empty() => vec![
                        (key("offset"), Val::from(char_offset(s, c.start()))),
                        (key("string"), text(c.start(), c.start())),
                        (key("length"), Val::from(0usize)),
                        (key("name"), name),
                    ],
                    Some(c) => vec![
                        (key("offset"), Val::from(char_offset(s, c.start()))),
                        (key("length"), Val::from(char_offset(c.as_bytes(), c.len()))),
                        (key("string"), text(c.start(), c.end())),
                        (key("name"), name),
                    ],
                };
                Val::obj(fields.into_iter().collect())
            })
            .collect();
        found.push(Val::obj(
            [
                (key("offset"), Val::from(char_offset(s, whole.start()))),
                (
                    key("length"),
                    Val::from(char_offset(whole.as_bytes(), whole.len())),
                ),
                (key("string"), text(whole.start(), whole.end())),
                (key("captures"), Val::Arr(jaq_json::Rc::new(captures))),
            ]
            .into_iter()
            .collect(),
        ));
        if !global {
            break;
        }
        if whole.is_empty() {
            if s.get(whole.end()).is_some_and(|b| *b >= 0xC0) {
                return Err(not_as_jq(
                    "etagstore cannot match as jq does here: after an empty match jq's \
                     regex engine steps into the next character, which is not ASCII"
                        .into(),
                ));
            }
            start = whole.end() + 1;
        } else {
            start = whole.end();
        }
    }
    if test {
        return Ok(JqVal::from(false));
    }
    Ok(JqVal(Val::Arr(jaq_json::Rc::new(found))))
}

/// The length of the UTF-8 sequence that starts with `b`.
fn utf8_len(b: u8) -> usize {
    match b {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    }
}

/// Whether a regular expression has a `$` (not escaped, not in a class).
fn has_dollar(re: &[u8]) -> bool {
    let (mut i, mut in_class) = (0, false);
    while i < re.len() {
        match re[i] {
            b'\\' => i += 1,
            b'[' => in_class = true,
            b']' => in_class = false,
            b'$' if !in_class => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// Writes `v` to standard error as jq's `stderr` does: compact, no newline.
fn eprint(v: &Val) {
    let mut err = std::io::stderr().lock();
    let _ = match v {
        Val::TStr(s) => err.write_all(s),
        _ => err.write_all(to_json(v).as_bytes()),
    };
}

/// `v` with `x` at `path`, created as jq's `setpath` creates it.
fn set_path<'a>(v: JqVal, path: &[JqVal], x: &JqVal) -> ValX<'a, JqVal> {
    match path.split_first() {
        None => Ok(x.clone()),
        Some((key, rest)) => v.map_index(key, Opt::Essential, |child| {
            core::iter::once(set_path(child, rest, x))
        }),
    }
}

/// jq 1.8's `_modify(paths; update)`, the meaning of `paths |= update`:
/// every path of `paths` is taken from the input first; each is set to the
/// first output of `update` on the value there, and the paths where
/// `update` gives nothing are collected rather than deleted at once (so
/// deleting `.[1]` does not move what `.[2]` names).
fn modify<'a, D: for<'b> DataT<V<'b> = JqVal>>(
    mut cv: jaq_core::Cv<'a, D>,
) -> Box<dyn Iterator<Item = ValX<'a, JqVal>> + 'a> {
    let (update, uc) = cv.0.pop_fun();
    let (paths, pc) = cv.0.pop_fun();
    let mut root = cv.1;
    // All paths first, and the iterator dropped, so that `root` is the only
    // reference to the value and is changed in place.
    let (mut found, mut failed) = (Vec::new(), None);
    for vp in paths.paths((pc, (root.clone(), Default::default()))) {
        match vp {
            Ok((_, path)) => {
                let path: Vec<JqVal> = path.iter().cloned().collect();
                found.push(path.into_iter().rev().collect::<Vec<_>>());
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let mut deletions = Vec::new();
    for path in found {
        let mut old = Ok(root.clone());
        for key in &path {
            old = old.and_then(|v| v.index(key));
        }
        let old = match old {
            Ok(old) => old,
            Err(e) => return box_once(Err(Exn::from(e))),
        };
        match update.run((uc.clone(), old)).next() {
            Some(Ok(new)) => match set_path(root, &path, &new) {
                Ok(v) => root = v,
                Err(e) => return box_once(Err(e)),
            },
            Some(Err(e)) => return box_once(Err(e)),
            None => deletions.push(path),
        }
    }
    if let Some(e) = failed {
        return box_once(Err(e));
    }
    box_once(delete_paths(root, deletions))
}

/// jq's `delpaths`: every path made absolute first (a negative index or a
/// slice relative to the value as it is), then deleted from the last in
/// sorted order, so that deleting `[0]` does not move what `[2]` names; a
/// path through a missing (null) value deletes nothing.
fn delete_paths<'a>(root: JqVal, paths: Vec<Vec<JqVal>>) -> ValX<'a, JqVal> {
    let mut absolute: Vec<JqVal> = paths
        .iter()
        .map(|p| absolute_path(&root.0, p).into_iter().collect())
        .collect();
    absolute.sort();
    absolute.dedup();
    let mut root = root;
    for path in absolute.into_iter().rev() {
        let Val::Arr(path) = path.0 else {
            unreachable!("collected as an array")
        };
        let path: Vec<JqVal> = path.iter().cloned().map(JqVal).collect();
        root = delete_path(root, &path)?;
    }
    Ok(root)
}

fn absolute_path(v: &Val, path: &[JqVal]) -> Vec<JqVal> {
    let Some((key, rest)) = path.split_first() else {
        return Vec::new();
    };
    let len = match v {
        Val::Arr(a) => Some(a.len() as f64),
        _ => None,
    };
    let key = match (len, &key.0) {
        (Some(n), k @ Val::Num(_)) if k.as_f64().is_some_and(|i| i < 0.0) => {
            JqVal::from(k.as_f64().unwrap_or_default() + n)
        }
        (Some(n), Val::Obj(o)) => {
            let get = |k: &str| o.get(&Val::from(k.to_string())).and_then(|v| v.as_f64());
            let start = get("start").unwrap_or(0.0);
            let start = if start < 0.0 { start + n } else { start };
            let start = if start < 0.0 { 0.0 } else { start.floor() };
            let end = get("end").unwrap_or(n);
            let end = if end < 0.0 { end + n } else { end };
            let end = if end > n { n } else { end.ceil() };
            let map = [("start", start), ("end", end)]
                .into_iter()
                .map(|(k, v)| (Val::from(k.to_string()), Val::from(v)))
                .collect();
            JqVal(Val::obj(map))
        }
        _ => key.clone(),
    };
    let below = if key.0.as_f64().is_some_and(|i| i < 0.0) {
        rest.to_vec()
    } else {
        let child = JqVal(v.clone()).index(&key).map_or(Val::Null, |c| c.0);
        absolute_path(&child, rest)
    };
    core::iter::once(key).chain(below).collect()
}

fn delete_path<'a>(v: JqVal, path: &[JqVal]) -> ValX<'a, JqVal> {
    match path {
        [] => Ok(JqVal(Val::Null)),
        _ if matches!(v.0, Val::Null) => Ok(v),
        [key] => v.map_index(key, Opt::Essential, |_| core::iter::empty()),
        [key, rest @ ..] => {
            // the child is looked at, and let go, before the value is changed
            let missing = matches!(v.clone().index(key)?.0, Val::Null);
            if missing {
                Ok(v)
            } else {
                v.map_index(key, Opt::Essential, |child| {
                    core::iter::once(delete_path(child, rest))
                })
            }
        }
    }
}

/// The native filters, for a data type over `JqVal`.
pub fn funs<D: for<'a> DataT<V<'a> = JqVal>>() -> impl Iterator<Item = Fun<D>> {
    let natives: Box<[Filter<RunPtr<D>>]> = Box::new([
        ("fromjson", v(0), |cv| {
            let text = match &cv.1 .0 {
                Val::TStr(s) => s.clone(),
                other => {
                    return bome(Err(msg(format!(
                        "{} ({other}) cannot be parsed as JSON",
                        type_name(other)
                    ))))
                }
            };
            // jq reads NaN, as it prints it nowhere but takes it in
            if matches!(text.trim_ascii(), b"nan" | b"NaN" | b"-nan" | b"-NaN") {
                return bome(Ok(JqVal::from(f64::NAN)));
            }
            bome(jaq_json::read::parse_single(&text).map(JqVal).map_err(|e| {
                // jaq's parser words the error: marked as jaq's
                Error::new(JqVal(super::val::maybe_jaq_worded(format!(
                    "{e} (while parsing '{}')",
                    String::from_utf8_lossy(&text)
                ))))
            }))
        }),
        ("tojson", v(0), |cv| {
            if deeper_than(&cv.1 .0, MAX_DEPTH) {
                // jq prints "<skipped: too deep>" there; etagstore does not
                return bome(Err(Error::new(JqVal(super::val::maybe_jaq_worded(
                    format!(
                    "cannot use a value nested deeper than {MAX_DEPTH} levels in tojson as jq does"
                ),
                )))));
            }
            let text = to_json(&cv.1 .0);
            // a value holding one of jaq's messages stays marked
            bome(Ok(JqVal(if has_jaq_worded(&cv.1 .0) {
                Val::byte_str(text.into_bytes())
            } else {
                Val::from(text)
            })))
        }),
        ("_dump_native", v(0), |cv| {
            bome(Ok(JqVal(Val::from(super::val::dump(&cv.1 .0)))))
        }),
        ("tonumber_native", v(0), |cv| bome(tonumber(&cv.1 .0))),
        ("regex_groups_native", v(0), |cv| match &cv.1 .0 {
            Val::TStr(re) => bome(Ok(JqVal::from(regex_groups(re)))),
            other => bome(Err(msg(format!(
                "{} ({other}) cannot be matched, as it is not a string",
                type_name(other)
            )))),
        }),
        ("length", v(0), |cv| bome(length(&cv.1 .0))),
        ("contains", v(1), |cv| {
            unary(cv, |x, y| contains(&x.0, &y.0).map(JqVal::from))
        }),
        ("has", v(1), |cv| unary(cv, |v, k| has(&v.0, &k.0))),
        ("indices", v(1), |cv| unary(cv, |x, y| indices(&x.0, &y.0))),
        ("bsearch", v(1), |cv| {
            unary(cv, |a, x| match &a.0 {
                Val::Arr(arr) => {
                    let i = match arr.binary_search(&x.0) {
                        Ok(i) => i as isize,
                        Err(i) => -1 - i as isize,
                    };
                    Ok(JqVal::from(i))
                }
                other => Err(msg(format!(
                    "{} ({other}) cannot be searched from",
                    type_name(other)
                ))),
            })
        }),
        ("debug_empty", v(0), |cv| {
            let line = format!("[\"DEBUG:\",{}]\n", to_json(&cv.1 .0));
            let _ = std::io::stderr().write_all(line.as_bytes());
            Box::new(core::iter::empty())
        }),
        ("stderr_empty", v(0), |cv| {
            eprint(&cv.1 .0);
            Box::new(core::iter::empty())
        }),
        ("_match_impl", v(3), |mut cv| {
            let test = cv.0.pop_var();
            let flags = cv.0.pop_var();
            let re = cv.0.pop_var();
            bome(match_impl(&cv.1 .0, &re.0, &flags.0, test.0.as_bool()))
        }),
        (
            "_modify_native",
            [Bind::Fun(()), Bind::Fun(())].into(),
            |cv| modify(cv),
        ),
        ("halt_error_native", v(1), |mut cv| {
            let code = cv.0.pop_var();
            let Some(code) = code.as_isize().and_then(|c| i32::try_from(c).ok()) else {
                return bome(Err(msg("halt_error/1: number required".into())));
            };
            HALT_MESSAGE.with(|m| *m.borrow_mut() = Some(cv.1 .0));
            box_once(Err(Exn::halt(code)))
        }),
    ]);
    natives.into_vec().into_iter().map(run::<D>)
}
