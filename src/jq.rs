//! jq filters run inside the process with jaq, so `edit --jq` needs no
//! external `jq` and pays no second process start-up.

use std::sync::mpsc;
use std::thread;

use anyhow::{anyhow, Context, Result};
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{data, Compiler, Ctx, Vars};
use jaq_json::Val;

mod defs;
mod funs;
#[cfg(target_os = "linux")]
mod stack;
/// Elsewhere a filter that overflows the stack aborts (Rust's own message):
/// the fault handler reads Linux's signal context.
#[cfg(not(target_os = "linux"))]
mod stack {
    pub struct Running;
    pub fn running() -> Running {
        Running
    }
}
mod rewrite;
mod val;
pub use val::JqVal;

use crate::document;
use crate::error::Error;

type Data = data::JustLut<JqVal>;

/// The largest document a filter runs on. jaq holds the parsed value in
/// memory at about 15 times the text's size (many small keys), so this
/// bounds `edit --jq` near 250 MB; `edit KEY -- jq FILTER` has no limit.
pub const MAX_INPUT: u64 = 16 * 1024 * 1024;
/// The longest number literal a filter runs on: parsing big numbers costs
/// time that grows faster than their length (a million digits took
/// seconds). 1000 characters hold every f64 written out in full.
pub const MAX_NUMBER: usize = 1000;

/// Checks a document before jaq parses it: its size, its nesting (the
/// limit `set` applies, since jaq's parser recurses), its number literals.
/// A document over a limit is invalid (exit 6) with the limit named.
pub fn check_input(bytes: &[u8]) -> Result<(), Error> {
    if bytes.len() as u64 > MAX_INPUT {
        return Err(too_big());
    }
    document::validate(bytes)?;
    let longest = longest_number(bytes);
    if longest > MAX_NUMBER {
        return Err(Error::InvalidDocument(format!(
            "a number in it is {longest} characters long; edit --jq takes numbers of up to \
             {MAX_NUMBER} characters (edit KEY -- jq FILTER has no limit)"
        )));
    }
    Ok(())
}

/// The error for a document over `MAX_INPUT`.
pub fn too_big() -> Error {
    Error::InvalidDocument(format!(
        "the document is larger than {} MiB, the limit of edit --jq \
         (edit KEY -- jq FILTER has no limit)",
        MAX_INPUT >> 20
    ))
}

/// The length of the longest number literal in a valid JSON document.
fn longest_number(bytes: &[u8]) -> usize {
    let (mut in_string, mut escaped) = (false, false);
    let (mut run, mut longest) = (0, 0);
    for &byte in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else if matches!(byte, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
            // Outside strings these only form numbers (and the 'e' of true/false).
            run += 1;
            longest = longest.max(run);
            continue;
        } else if byte == b'"' {
            in_string = true;
        }
        run = 0;
    }
    longest
}

/// The most tokens a filter may have. jaq's parser, compiler and
/// interpreter recurse once per level of the filter's syntax tree, which is
/// at most this deep: a 10,000-deep filter overflowed the stack (exit 134).
pub const MAX_TOKENS: usize = 4096;
/// The jq thread's stack: room for `MAX_TOKENS` levels with the frames of a
/// debug build (about 16 KiB a level). Only the pages used are ever touched.
const STACK: usize = 256 << 20;

/// Filters of up to this many tokens are compiled and run on the calling
/// thread: their syntax tree fits its stack many times over (a debug build
/// overflowed 8 MiB at 1000 levels), and a thread costs start-up time.
const INLINE_TOKENS: usize = 256;

/// A filter, compiled and run on the calling thread when it is small, else
/// on a thread of its own with a stack large enough for any filter under
/// `MAX_TOKENS`.
pub enum Filter {
    Inline(Compiled),
    Thread {
        jobs: Option<mpsc::Sender<Vec<u8>>>,
        results: mpsc::Receiver<Result<Vec<u8>>>,
        worker: Option<thread::JoinHandle<()>>,
    },
}

impl Filter {
    /// Compiles `code`; `vars` are `(name, value)` pairs without the `$`.
    /// A filter that does not compile is a usage error (exit 2).
    pub fn new(code: &str, vars: Vec<(String, Val)>) -> Result<Filter> {
        let tokens = count_tokens(code);
        if tokens > MAX_TOKENS {
            return Err(usage(
                code,
                format!(
                    "it has {tokens} tokens; edit --jq takes filters of up to {MAX_TOKENS} \
                     (edit KEY -- jq FILTER has no limit)"
                ),
            ));
        }
        if tokens <= INLINE_TOKENS {
            return Compiled::new(code, vars).map(Filter::Inline);
        }
        // Values cross to the thread as JSON text (jaq's values are not Send).
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(name, value)| (name, funs::to_json(&value)))
            .collect();
        let code = code.to_string();
        let (jobs, inputs) = mpsc::channel::<Vec<u8>>();
        let (answers, results) = mpsc::channel();
        let worker = thread::Builder::new()
            .name("jq".into())
            .stack_size(STACK)
            .spawn(move || {
                let vars = vars
                    .into_iter()
                    .map(|(name, json)| {
                        let value = jaq_json::read::parse_single(json.as_bytes())
                            .expect("tojson's text parses");
                        (name, value)
                    })
                    .collect();
                let compiled = match Compiled::new(&code, vars) {
                    Ok(compiled) => compiled,
                    Err(error) => {
                        let _ = answers.send(Err(error));
                        return;
                    }
                };
                let _ = answers.send(Ok(Vec::new()));
                for input in inputs {
                    if answers.send(compiled.apply(&input)).is_err() {
                        break;
                    }
                }
            })
            .context("cannot start the thread that runs the jq filter")?;
        let filter = Filter::Thread {
            jobs: Some(jobs),
            results,
            worker: Some(worker),
        };
        filter.answer()?;
        Ok(filter)
    }

    /// Runs the filter on `input` (a JSON document) and returns its one
    /// output as `jq` prints it: two-space indent, keys in their order, a
    /// final newline. No output or several is an invalid document (exit 6).
    pub fn apply(&self, input: &[u8]) -> Result<Vec<u8>> {
        match self {
            Filter::Inline(compiled) => compiled.apply(input),
            Filter::Thread { jobs, .. } => {
                let jobs = jobs.as_ref().expect("set until drop");
                jobs.send(input.to_vec())
                    .map_err(|_| anyhow!("the thread that runs the jq filter has stopped"))?;
                self.answer()
            }
        }
    }

    fn answer(&self) -> Result<Vec<u8>> {
        let Filter::Thread { results, .. } = self else {
            unreachable!("only a thread answers")
        };
        results
            .recv()
            .map_err(|_| anyhow!("the thread that runs the jq filter has stopped"))?
    }
}

impl Drop for Filter {
    fn drop(&mut self) {
        if let Filter::Thread { jobs, worker, .. } = self {
            jobs.take();
            if let Some(worker) = worker.take() {
                let _ = worker.join();
            }
        }
    }
}

/// The number of tokens in `code`, near enough: each run of name or number
/// characters, each other character outside strings, each string and each
/// interpolation `\(` in one.
fn count_tokens(code: &str) -> usize {
    let (mut tokens, mut in_string, mut escaped, mut in_word) = (0, false, false, false);
    for c in code.chars() {
        if in_string {
            if escaped {
                escaped = false;
                tokens += usize::from(c == '(');
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        let word = c.is_alphanumeric() || c == '_' || c == '$';
        if word {
            tokens += usize::from(!in_word);
        } else if c == '"' {
            in_string = true;
            tokens += 1;
        } else if !c.is_whitespace() {
            tokens += 1;
        }
        in_word = word;
    }
    tokens
}

/// A compiled filter with its `--arg` / `--argjson` values.
pub struct Compiled {
    filter: jaq_core::Filter<Data>,
    values: Vec<Val>,
}

/// Where `$__loc__` stands in `code`: jq's `{"file", "line"}`. Every
/// `$__loc__` in one filter must be on the same line (one value serves all).
fn location(code: &str) -> Result<Val> {
    let lines: Vec<usize> = code
        .match_indices("$__loc__")
        .map(|(at, _)| 1 + code[..at].matches('\n').count())
        .collect();
    if lines.windows(2).any(|w| w[0] != w[1]) {
        return Err(usage(
            code,
            "etagstore supports $__loc__ on one line of a filter only".into(),
        ));
    }
    let loc = [
        ("file", Val::from("<top-level>".to_string())),
        ("line", Val::from(lines[0])),
    ];
    Ok(Val::obj(
        loc.into_iter()
            .map(|(k, v)| (Val::from(k.to_string()), v))
            .collect(),
    ))
}

impl Compiled {
    fn new(code: &str, mut vars: Vec<(String, Val)>) -> Result<Compiled> {
        let _running = stack::running();
        // jq's $ENV, built only for the filters that use it.
        if code.contains("$ENV") {
            let env: jaq_json::Map = std::env::vars()
                .map(|(name, value)| (Val::from(name), Val::from(value)))
                .collect();
            vars.push(("ENV".to_string(), Val::obj(env)));
        }
        if code.contains("$__loc__") {
            vars.push(("__loc__".to_string(), location(code)?));
        }
        let written = code;
        let code = &leading_dot_numbers(code);
        let code = &rewrite::syntax(code).unwrap_or_else(|| code.clone());
        let code = &rewrite::assignments(code).unwrap_or_else(|| code.clone());
        let code = code.as_str();
        let wants_builtins = code.contains("builtins");
        vars.push(("__builtins".to_string(), Val::Null));
        let names: Vec<String> = vars.iter().map(|(name, _)| format!("${name}")).collect();
        let funs: Vec<_> = jaq_core::funs()
            .chain(
                jaq_std::funs()
                    .filter(|(name, _, _)| !matches!(*name, "debug_empty" | "stderr_empty")),
            )
            .chain(funs::funs())
            .collect();
        if wants_builtins {
            let defs = defs::all().map(|def| (def.name, def.args.len()));
            let natives = funs.iter().map(|(name, args, _)| (*name, args.len()));
            let mut list: Vec<String> = defs
                .chain(natives)
                .filter(|(name, _)| {
                    !(name.starts_with(['_', '@'])
                        || name.ends_with('_')
                        || name.ends_with("_empty")
                        || name.ends_with("_native"))
                })
                .map(|(name, arity)| format!("{name}/{arity}"))
                .collect();
            list.sort();
            list.dedup();
            let builtins = list.into_iter().map(Val::from).collect();
            vars.last_mut().expect("pushed above").1 = builtins;
        }
        let loader = Loader::new(defs::used(code));
        let arena = Arena::default();
        let program = File { code, path: () };
        let modules = loader
            .load(&arena, program)
            .map_err(|errors| usage(written, load_errors(code, errors)))?;
        let filter = Compiler::default()
            .with_funs(funs)
            .with_global_vars(names.iter().map(String::as_str))
            .compile(modules)
            .map_err(|errors| {
                let undefined = errors
                    .into_iter()
                    .flat_map(|(_file, errors)| errors)
                    .map(|(name, kind)| format!("undefined {} '{name}'", kind.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ");
                usage(written, undefined)
            })?;
        Ok(Compiled {
            filter,
            values: vars.into_iter().map(|(_, value)| value).collect(),
        })
    }

    /// `halt` (and `halt_error` with exit code 0) leave the document as it
    /// is; a `halt` with another code is a failure (exit 1) that names it.
    fn apply(&self, input: &[u8]) -> Result<Vec<u8>> {
        // First in, so last out: it covers freeing the values too.
        let _running = stack::running();
        check_input(input).context("the document edit --jq would read")?;
        let doc = jaq_json::read::parse_single(input)
            .map_err(|e| anyhow!("cannot parse the stored document as JSON: {e}"))?;
        let vars = Vars::new(self.values.iter().cloned().map(JqVal));
        let ctx = Ctx::<Data>::new(&self.filter.lut, vars);
        let mut outputs = self.filter.id.run((ctx, JqVal(doc)));
        let first = match outputs.next() {
            None => {
                return Err(Error::InvalidDocument("the filter produced no value".into()).into())
            }
            Some(Ok(value)) => value.0,
            Some(Err(exn)) => return stopped(exn).map(|()| input.to_vec()),
        };
        match outputs.next() {
            None => {}
            // `., halt`: one value, then a clean stop
            Some(Err(exn)) if stopped(exn.clone()).is_ok() => {}
            Some(_) => {
                return Err(Error::InvalidDocument(
                    "the filter produced more than one value; wrap it in [...] to collect them"
                        .into(),
                )
                .into())
            }
        }
        if funs::has_jaq_worded(&first) {
            return Err(anyhow!(
                "the filter's result holds an error message that etagstore cannot word as jq \
                 does (try ... catch passed it on); nothing written"
            ));
        }
        if too_deep(&first) {
            // Dropping a value nested this deep would recurse as deep.
            std::mem::forget(first);
            return Err(Error::InvalidDocument(format!(
                "the filter's result is nested deeper than {} levels",
                document::MAX_DEPTH
            ))
            .into());
        }
        let output = pretty(&jq_numbers(first, false));
        document::validate(&output)
            .context("the filter's result has no JSON form (NaN and infinite numbers have none)")?;
        Ok(output)
    }
}

/// What an exception from the filter means for the edit: `Ok(())` for a
/// clean `halt` (nothing to change), else the error to report.
fn stopped(exn: jaq_core::Exn<'_, JqVal>) -> Result<()> {
    let code = match exn.get_err() {
        Ok(error) => {
            let value = error.into_val().0;
            return Err(match value {
                Val::TStr(ref s) | Val::BStr(ref s) => {
                    anyhow!("the filter failed: {}", String::from_utf8_lossy(s))
                }
                other => anyhow!(
                    "the filter failed: {} (not a string)",
                    funs::to_json(&other)
                ),
            });
        }
        Err(exn) => exn.get_halt().unwrap_or(1),
    };
    let message = funs::HALT_MESSAGE.with(|m| m.borrow_mut().take());
    let text = message.map(|value| match value {
        Val::TStr(s) => String::from_utf8_lossy(&s).into_owned(),
        other => format!("{}\n", funs::to_json(&other)),
    });
    match (code, text) {
        (0, None) => Ok(()),
        (0, Some(text)) => {
            // jq prints halt_error's message and exits 0: so does edit.
            eprint!("{text}");
            Ok(())
        }
        (code, None) => Err(anyhow!("the filter called halt({code}); nothing written")),
        (code, Some(text)) => Err(anyhow!(
            "the filter called halt_error (exit code {code}); nothing written: {}",
            text.trim_end()
        )),
    }
}

/// True if `value` is nested deeper than a document may be (no recursion).
fn too_deep(value: &Val) -> bool {
    let mut stack = vec![(value, 1)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Val>> = match v {
            Val::Arr(a) => Box::new(a.iter()),
            Val::Obj(o) => Box::new(o.values()),
            _ => continue,
        };
        if depth > document::MAX_DEPTH {
            return true;
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    false
}

/// Numbers as jq prints them: a computed float with an integral value
/// prints with all its digits and no fraction (`2.0 * 1` is `2`, `1e17 + 0`
/// is `100000000000000000`).
///
/// With `as_text` (for `tojson`, `tostring`, `"\(.)"`), infinite numbers
/// are jq's `1.7976931348623157e+308` and NaN is `null`; a document keeps
/// them, for `apply` to refuse.
pub(crate) fn jq_numbers(value: Val, as_text: bool) -> Val {
    use jaq_json::Num;
    let recurse = |v| jq_numbers(v, as_text);
    match value {
        Val::Num(Num::Dec(s)) if as_text => match canonical(&s) {
            Some(text) => Val::Num(Num::Dec(jaq_json::Rc::new(text))),
            None => Val::Num(Num::Dec(s)),
        },
        Val::Num(Num::Float(f)) if as_text && f.is_nan() => Val::Null,
        Val::Num(Num::Float(f)) if as_text && f.is_infinite() => {
            let sign = if f < 0.0 { "-" } else { "" };
            Val::Num(Num::Dec(jaq_json::Rc::new(format!(
                "{sign}1.7976931348623157e+308"
            ))))
        }
        Val::Num(Num::Float(f)) if f.is_finite() && f.fract() == 0.0 => {
            if f.abs() < 1e15 {
                Val::from(f as isize)
            } else {
                Val::Num(Num::Dec(jaq_json::Rc::new(format!("{f:.0}"))))
            }
        }
        Val::Arr(a) if a.iter().any(has_float) => {
            let a = jaq_json::Rc::try_unwrap(a).unwrap_or_else(|a| (*a).clone());
            a.into_iter().map(recurse).collect()
        }
        Val::Obj(o) if o.values().any(has_float) => {
            let o = jaq_json::Rc::try_unwrap(o).unwrap_or_else(|o| (*o).clone());
            Val::obj(o.into_iter().map(|(k, v)| (k, recurse(v))).collect())
        }
        v => v,
    }
}

/// A number literal as decNumber writes it (jq 1.8's `tojson`/`tostring`):
/// `1e2` is `1E+2`, `100e-2` is `1.00`, `0.00001` stays, `1e-7` is `1E-7`.
/// `None` if `s` is not a plain decimal literal.
fn canonical(s: &str) -> Option<String> {
    let (sign, rest) = match s.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", s),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let all = format!("{int}{frac}");
    let digits = all.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let exp = exp.checked_sub(frac.len() as i64)?;
    let adjusted = exp + digits.len() as i64 - 1;
    let body = if exp <= 0 && adjusted >= -6 {
        let point = digits.len() as i64 + exp;
        if exp == 0 {
            digits.to_string()
        } else if point > 0 {
            let point = point as usize;
            format!("{}.{}", &digits[..point], &digits[point..])
        } else {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        }
    } else {
        let (first, more) = digits.split_at(1);
        let more = if more.is_empty() {
            String::new()
        } else {
            format!(".{more}")
        };
        let sign = if adjusted < 0 { '-' } else { '+' };
        format!("{first}{more}E{sign}{}", adjusted.abs())
    };
    Some(format!("{sign}{body}"))
}

fn has_float(value: &Val) -> bool {
    match value {
        Val::Num(jaq_json::Num::Float(_) | jaq_json::Num::Dec(_)) => true,
        Val::Arr(a) => a.iter().any(has_float),
        Val::Obj(o) => o.values().any(has_float),
        _ => false,
    }
}

/// jq reads `.5` as `0.5`; jaq's lexer does not: insert the `0` where a
/// `.` followed by a digit starts a term (after an operator, a bracket, a
/// separator or at the start), outside strings.
fn leading_dot_numbers(code: &str) -> String {
    let bytes = code.as_bytes();
    let mut out = String::with_capacity(code.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut last = b'(';
    for (i, c) in code.char_indices() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if c == '.'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
            && b"([{,:;|+-*/%=<>!".contains(&last)
        {
            out.push('0');
        }
        out.push(c);
        if !c.is_whitespace() {
            last = if c.is_ascii() { c as u8 } else { b'a' };
        }
    }
    out
}

/// Parses an `--argjson` value.
pub fn parse_json(name: &str, text: &str) -> Result<Val> {
    jaq_json::read::parse_single(text.as_bytes())
        .map_err(|e| Error::Usage(format!("--argjson {name}: not one JSON value: {e}")).into())
}

/// A value as `jq` prints it by default.
pub fn pretty(value: &Val) -> Vec<u8> {
    let pp = jaq_json::write::Pp {
        indent: Some("  ".to_string()),
        sep_space: true,
        ..Default::default()
    };
    let mut out = Vec::new();
    jaq_json::write::write(&mut out, &pp, 0, value).expect("writing to memory cannot fail");
    out.push(b'\n');
    out
}

fn usage(code: &str, message: String) -> anyhow::Error {
    // A long filter is named by its start: the message stays one line.
    const SHOWN: usize = 100;
    let shown = match code.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{:?}...", &code[..end]),
        None => format!("{code:?}"),
    };
    Error::Usage(format!("the jq filter {shown} does not compile: {message}")).into()
}

/// Describes lex and parse errors with the byte offset where they happened.
fn load_errors<P>(code: &str, errors: jaq_core::load::Errors<&str, P>) -> String {
    use jaq_core::load::Error as LoadError;
    let at = |rest: &str| code.len().saturating_sub(rest.len());
    let mut messages = Vec::new();
    for (_file, error) in errors {
        match error {
            LoadError::Io(errors) => {
                messages.extend(errors.into_iter().map(|(path, e)| format!("{path}: {e}")))
            }
            LoadError::Lex(errors) => messages.extend(errors.into_iter().map(|(expect, rest)| {
                format!("expected {} at byte {}", expect.as_str(), at(rest))
            })),
            LoadError::Parse(errors) => {
                messages.extend(errors.into_iter().map(|(expect, rest)| {
                    let found = if rest.is_empty() { "the end" } else { rest };
                    format!("expected {} before {found:?}", expect.as_str())
                }))
            }
        }
    }
    messages.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(code: &str, input: &str) -> Result<String> {
        let bytes = Filter::new(code, Vec::new())?.apply(input.as_bytes())?;
        Ok(String::from_utf8(bytes).unwrap())
    }

    #[test]
    fn output_looks_like_jq_and_keeps_key_order() {
        assert_eq!(
            run(".n += 1", r#"{"z": 1, "n": 1, "a": [1, {}, []]}"#).unwrap(),
            "{\n  \"z\": 1,\n  \"n\": 2,\n  \"a\": [\n    1,\n    {},\n    []\n  ]\n}\n"
        );
        assert_eq!(
            run(".", "\"caf\u{e9}\\u0000\"").unwrap(),
            "\"caf\u{e9}\\u0000\"\n"
        );
    }

    #[test]
    fn hostile_inputs_are_invalid_documents_before_jaq_sees_them() {
        let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
        let long = format!("[1, {}]", "9".repeat(MAX_NUMBER + 1));
        for (doc, says) in [(deep, "deeper than 128"), (long, "1001 characters")] {
            let error = run(".", &doc).unwrap_err();
            assert_eq!(crate::error::exit_code(&error), 6, "{error:#}");
            assert!(format!("{error:#}").contains(says), "{error:#}");
        }
        let fine = format!(
            "{{\"e\": \"{}\", \"n\": -{}.5e+10}}",
            "9".repeat(5000),
            "9".repeat(990)
        );
        assert!(check_input(fine.as_bytes()).is_ok());
        assert_eq!(longest_number(b"[true, false, 1e5, \"12345678\"]"), 3);
    }

    #[test]
    fn a_filter_runs_with_the_definitions_it_reaches() {
        assert_eq!(
            run("del(.a) | to_entries | @csv", r#"{"a":1}"#).unwrap(),
            "\"\"\n"
        );
    }

    #[test]
    fn env_is_the_environment() {
        std::env::set_var("ETAGSTORE_JQ_TEST", "here");
        assert_eq!(run("$ENV.ETAGSTORE_JQ_TEST", "null").unwrap(), "\"here\"\n");
    }

    #[test]
    fn variables_are_bound_by_name() {
        let vars = vec![
            ("by".to_string(), parse_json("by", "5").unwrap()),
            ("who".to_string(), Val::from("ann".to_string())),
        ];
        let filter = Filter::new(".n += $by | .who = $who", vars).unwrap();
        let out = filter.apply(br#"{"n": 1}"#).unwrap();
        assert_eq!(out, b"{\n  \"n\": 6,\n  \"who\": \"ann\"\n}\n");
    }

    #[test]
    fn bad_filters_are_usage_errors_and_bad_arity_is_invalid() {
        for code in [".n +", "(", "nosuchfunction", "$undefined"] {
            let error = Filter::new(code, Vec::new()).err().unwrap();
            assert_eq!(crate::error::exit_code(&error), 2, "{code}: {error}");
        }
        for code in ["empty", ".[]"] {
            let error = run(code, "[1, 2]").unwrap_err();
            assert_eq!(crate::error::exit_code(&error), 6, "{code}: {error}");
        }
        let error = run(".x = nan", "{}").unwrap_err();
        assert_eq!(crate::error::exit_code(&error), 6, "{error}");
        let error = run(".a + 1", r#"{"a": "x"}"#).unwrap_err();
        assert_eq!(crate::error::exit_code(&error), 1, "{error}");
    }
}
