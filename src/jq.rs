//! jq filters run inside the process with jaq, so `edit --jq` needs no
//! external `jq` and pays no second process start-up.

use anyhow::{anyhow, Context, Result};
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{data, unwrap_valr, Compiler, Ctx, Vars};
use jaq_json::Val;

use crate::document;
use crate::error::Error;

type Data = data::JustLut<Val>;

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

/// A compiled filter with its `--arg` / `--argjson` values.
pub struct Filter {
    filter: jaq_core::Filter<Data>,
    values: Vec<Val>,
}

impl Filter {
    /// Compiles `code`; `vars` are `(name, value)` pairs without the `$`.
    /// A filter that does not compile is a usage error (exit 2).
    pub fn new(code: &str, mut vars: Vec<(String, Val)>) -> Result<Filter> {
        // jq's $ENV, built only for the filters that use it.
        if code.contains("$ENV") {
            let env: jaq_json::Map = std::env::vars()
                .map(|(name, value)| (Val::from(name), Val::from(value)))
                .collect();
            vars.push(("ENV".to_string(), Val::obj(env)));
        }
        let names: Vec<String> = vars.iter().map(|(name, _)| format!("${name}")).collect();
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let program = File { code, path: () };
        let modules = loader
            .load(&arena, program)
            .map_err(|errors| usage(code, load_errors(code, errors)))?;
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
                usage(code, undefined)
            })?;
        Ok(Filter {
            filter,
            values: vars.into_iter().map(|(_, value)| value).collect(),
        })
    }

    /// Runs the filter on `input` (a JSON document) and returns its one
    /// output as `jq` prints it: two-space indent, keys in their order, a
    /// final newline. No output or several is an invalid document (exit 6).
    pub fn apply(&self, input: &[u8]) -> Result<Vec<u8>> {
        check_input(input).context("the document edit --jq would read")?;
        let input = jaq_json::read::parse_single(input)
            .map_err(|e| anyhow!("cannot parse the stored document as JSON: {e}"))?;
        let ctx = Ctx::<Data>::new(&self.filter.lut, Vars::new(self.values.iter().cloned()));
        let mut outputs = self.filter.id.run((ctx, input)).map(unwrap_valr);
        let first = match outputs.next() {
            None => {
                return Err(Error::InvalidDocument("the filter produced no value".into()).into())
            }
            Some(output) => output.map_err(|e| anyhow!("the filter failed: {e}"))?,
        };
        if outputs.next().is_some() {
            return Err(Error::InvalidDocument(
                "the filter produced more than one value; wrap it in [...] to collect them".into(),
            )
            .into());
        }
        let output = pretty(&first);
        document::validate(&output)
            .context("the filter's result has no JSON form (NaN and infinite numbers have none)")?;
        Ok(output)
    }
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
    Error::Usage(format!(
        "the jq filter {code:?} does not compile: {message}"
    ))
    .into()
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
        let error = run(".x = (0/0)", "{}").unwrap_err();
        assert_eq!(crate::error::exit_code(&error), 6, "{error}");
        let error = run(".a + 1", r#"{"a": "x"}"#).unwrap_err();
        assert_eq!(crate::error::exit_code(&error), 1, "{error}");
    }
}
