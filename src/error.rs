//! The errors a script must tell apart, each with its exit code.
//!
//! They travel inside `anyhow::Error`; `exit_code` finds them by downcasting,
//! so every other failure (I/O, permissions) is exit 1.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// The `--store` that suggested commands must repeat, when it is not the
/// default: set once by `commands::run`, made absolute only when a hint
/// needs it (an error path), so a command that succeeds pays nothing.
static STORE_FOR_HINTS: OnceLock<std::path::PathBuf> = OnceLock::new();

/// Records the store this process works on, so every command an error
/// suggests names it.
pub fn remember_store(store: &Path, is_default: bool) {
    if !is_default {
        let _ = STORE_FOR_HINTS.set(store.to_path_buf());
    }
}

/// The store as a hint names it: a directory made absolute, since the
/// suggestion may be pasted in another directory, where a relative path
/// names another store.
fn store_for_hints() -> Option<String> {
    let store = STORE_FOR_HINTS.get()?;
    let text = store.to_string_lossy();
    Some(if text.contains("://") {
        text.into_owned()
    } else {
        std::path::absolute(store)
            .unwrap_or_else(|_| store.clone())
            .to_string_lossy()
            .into_owned()
    })
}

/// A command line to suggest: `etagstore [--store S] ARGS`, every argument
/// quoted for a POSIX shell.
pub fn suggest<'a>(args: impl IntoIterator<Item = &'a str>) -> String {
    let mut line = String::from("etagstore");
    if let Some(store) = store_for_hints() {
        line.push_str(" --store ");
        line.push_str(&shell_words::quote(&store));
    }
    for arg in args {
        line.push(' ');
        line.push_str(&shell_words::quote(arg));
    }
    escape_controls(&line)
}

/// A failure with a documented exit code other than 1.
#[derive(Debug, PartialEq)]
pub enum Error {
    /// Bad flags or an invalid key (exit 2).
    Usage(String),
    /// The ETag did not match (exit 3).
    PreconditionFailed {
        key: String,
        given: String,
        found: String,
    },
    /// A `--if` predicate was not true of the current document (exit 3).
    /// `found` is that document's ETag, "" when the key does not exist.
    ConditionFailed {
        key: String,
        predicate: String,
        found: String,
    },
    /// Some writes found their key taken, e.g. `import` without `--overwrite` (exit 3).
    Conflict(String),
    /// The key does not exist (exit 4).
    NotFound { key: String },
    /// Another writer held the key's lock too long (exit 5).
    LockTimeout { key: String, seconds: f64 },
    /// The input is not exactly one JSON value in UTF-8 (exit 6).
    InvalidDocument(String),
    /// `watch` saw no change within its timeout (exit 7).
    WatchTimeout { key: String, seconds: f64 },
    /// A write was sent but its answer was lost (exit 8): it may or may not
    /// have happened. `etag` is the ETag the document has if it did.
    OutcomeUnknown {
        key: String,
        etag: String,
        detail: String,
    },
    /// One of the above, with advice that follows its message.
    Hinted { error: Box<Error>, hint: String },
    /// An edit from the editor that could not be written, kept in the file
    /// `path`; `apply` is the command that writes it.
    Kept {
        error: Box<Error>,
        path: String,
        apply: String,
    },
    /// Any other failure, already put into words (exit 1): for a `Kept`
    /// whose cause has no type of its own.
    Failed(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::PreconditionFailed { .. } => 3,
            Error::ConditionFailed { .. } => 3,
            Error::Conflict(_) => 3,
            Error::NotFound { .. } => 4,
            Error::LockTimeout { .. } => 5,
            Error::InvalidDocument(_) => 6,
            Error::WatchTimeout { .. } => 7,
            Error::OutcomeUnknown { .. } => 8,
            Error::Hinted { error, .. } | Error::Kept { error, .. } => error.exit_code(),
            Error::Failed(_) => 1,
        }
    }

    /// The stable name of the failure in `--error-format json`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Usage(_) => "usage",
            Error::PreconditionFailed { .. } => "precondition_failed",
            Error::ConditionFailed { .. } => "condition_failed",
            Error::Conflict(_) => "conflict",
            Error::NotFound { .. } => "not_found",
            Error::LockTimeout { .. } => "lock_timeout",
            Error::InvalidDocument(_) => "invalid_document",
            Error::WatchTimeout { .. } => "watch_timeout",
            Error::OutcomeUnknown { .. } => "outcome_unknown",
            Error::Hinted { error, .. } | Error::Kept { error, .. } => error.code(),
            Error::Failed(_) => "failed",
        }
    }

    /// The fields of `--error-format json` beyond code, exit and message.
    fn fields(&self, object: &mut JsonObject) {
        match self {
            Error::Usage(_) | Error::Conflict(_) | Error::InvalidDocument(_) | Error::Failed(_) => {
            }
            Error::PreconditionFailed { key, given, found } => {
                object.string("key", key);
                object.string("expected", given);
                object.string("found", found);
            }
            Error::ConditionFailed {
                key,
                predicate,
                found,
            } => {
                object.string("key", key);
                object.string("predicate", predicate);
                object.string("found", found);
            }
            Error::NotFound { key }
            | Error::LockTimeout { key, .. }
            | Error::WatchTimeout { key, .. } => object.string("key", key),
            Error::OutcomeUnknown { key, etag, .. } => {
                object.string("key", key);
                object.string("etag", etag);
            }
            Error::Hinted { error, hint } => {
                error.fields(object);
                object.hint(hint);
            }
            Error::Kept { error, path, apply } => {
                error.fields(object);
                object.hint(&kept_hint(path, apply));
                object.string("kept", path);
                object.string("apply", apply);
            }
        }
    }
}

/// What an error says about an edit kept in `path`.
fn kept_hint(path: &str, apply: &str) -> String {
    format!("your edit is kept in {path}; apply it with: {apply}")
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(message) => f.write_str(message),
            Error::PreconditionFailed { key, given, found } => {
                let given = escape_controls(given);
                if found.is_empty() {
                    // No retry can help: the key must be created first.
                    write!(
                        f,
                        "precondition failed for key {key:?}: --etag \"{given}\" but the key \
                         does not exist; create it with: {}",
                        suggest(["set", key, "VALUE", "--etag", ""])
                    )
                } else {
                    write!(
                        f,
                        "precondition failed for key {key:?}: --etag \"{given}\" but the \
                         current ETag is {found:?}; re-read it ({}) and retry",
                        suggest(["get", key])
                    )
                }
            }
            Error::ConditionFailed {
                key,
                predicate,
                found,
            } => {
                let predicate = escape_controls(predicate);
                if found.is_empty() {
                    write!(
                        f,
                        "condition failed for key {key:?}: --if '{predicate}' is not true of \
                         null (the key does not exist)"
                    )
                } else {
                    write!(
                        f,
                        "condition failed for key {key:?}: --if '{predicate}' is not true of \
                         the current document (ETag {found:?})"
                    )
                }
            }
            Error::Conflict(message) => f.write_str(message),
            Error::NotFound { key } => write!(f, "key not found: {key:?}"),
            Error::LockTimeout { key, seconds } => write!(
                f,
                "lock timeout: another writer held key {key:?} for more than {seconds}s; \
                 retry, or wait longer with --lock-timeout"
            ),
            Error::InvalidDocument(message) => write!(f, "invalid document: {message}"),
            Error::WatchTimeout { key, seconds } => write!(
                f,
                "watch timed out: key {key:?} did not change within {seconds}s; watch again, or stop"
            ),
            Error::OutcomeUnknown { key, etag, detail } => {
                let etag = if etag.is_empty() {
                    "the key is gone".to_string()
                } else {
                    format!("its ETag is {etag:?}")
                };
                write!(
                    f,
                    "outcome unknown for key {key:?}: {}; the write may or may not have \
                     happened: if it did, {etag} (check with: {})",
                    escape_controls(detail),
                    suggest(["etag", key])
                )
            }
            Error::Hinted { error, hint } => write!(f, "{error}; {hint}"),
            Error::Kept { error, path, apply } => write!(f, "{error}; {}", kept_hint(path, apply)),
            Error::Failed(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

/// The text with control characters escaped, so an error stays one line;
/// everything else as the user typed it.
pub fn escape_controls(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Whether errors are printed as JSON objects (`--error-format json`).
static JSON_ERRORS: AtomicBool = AtomicBool::new(false);

/// Prints every later error line as one JSON object instead of text.
pub fn print_as_json(json: bool) {
    JSON_ERRORS.store(json, Ordering::Relaxed);
}

/// Whether error lines are JSON objects (read by the stack-overflow
/// handler, which cannot go through `report`).
pub fn printing_json() -> bool {
    JSON_ERRORS.load(Ordering::Relaxed)
}

/// Whether a command line that clap could not parse asked for JSON errors:
/// its last `--error-format` before any `--`, else `ETAGSTORE_ERROR_FORMAT`,
/// as clap would have read them. `args` includes the program name.
pub fn json_asked(
    args: impl IntoIterator<Item = std::ffi::OsString>,
    env: Option<std::ffi::OsString>,
) -> bool {
    let json = |value: &std::ffi::OsStr| value.eq_ignore_ascii_case("json");
    let mut asked = env.as_deref().map(json);
    let mut args = args.into_iter().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        } else if arg == "--error-format" {
            asked = Some(args.next().as_deref().is_some_and(json));
        } else if let Some(value) = arg.to_str().and_then(|a| a.strip_prefix("--error-format=")) {
            asked = Some(json(value.as_ref()));
        }
    }
    asked == Some(true)
}

/// Prints the error line of a failed command, text or JSON, and returns
/// its exit code.
pub fn report(error: &anyhow::Error) -> std::process::ExitCode {
    if JSON_ERRORS.load(Ordering::Relaxed) {
        eprintln!("{}", json_line(error));
    } else {
        eprintln!("error: {}", message(error));
    }
    std::process::ExitCode::from(exit_code(error))
}

/// The error as its text line says it, after `error: `. Text from outside
/// (a server, a file name) may hold terminal escapes: they are shown,
/// never sent to the terminal.
fn message(error: &anyhow::Error) -> String {
    escape_controls(&format!("{error:#}"))
}

/// The error as one JSON object (docs/contract.md, "Errors as JSON").
pub fn json_line(error: &anyhow::Error) -> String {
    let typed = typed(error);
    let code = typed.map_or("failed", Error::code);
    let mut object = JsonObject::new(code, exit_code(error), &message(error));
    if let Some(typed) = typed {
        typed.fields(&mut object);
    }
    object.finish()
}

/// Prints the line for one document that `list -l` or `export` left out
/// and went on without; the command exits 1 at its end.
pub fn report_skipped(key: &str, error: &anyhow::Error) {
    let key_shown = escape_controls(&format!("{key:?}"));
    let message = format!(
        "skipped key {key_shown}: {}",
        escape_controls(&format!("{error:#}"))
    );
    if JSON_ERRORS.load(Ordering::Relaxed) {
        let mut object = JsonObject::new("skipped", 1, &message);
        object.string("key", key);
        object.string("cause", typed(error).map_or("failed", Error::code));
        eprintln!("{}", object.finish());
    } else {
        eprintln!("error: {message}");
    }
}

/// Prints the line of a process about to die of `signal` (exit 128+N in a
/// shell).
pub fn report_signal(message: &str, signal: i32, name: &str) {
    if JSON_ERRORS.load(Ordering::Relaxed) {
        let exit = u8::try_from(128 + signal).unwrap_or(u8::MAX);
        let mut object = JsonObject::new("interrupted", exit, message);
        object.string("signal", name);
        eprintln!("{}", object.finish());
    } else {
        eprintln!("error: {message}");
    }
}

/// The first typed `Error` in the chain.
pub fn typed(error: &anyhow::Error) -> Option<&Error> {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<Error>())
}

/// One error as a JSON object on one line: code, exit and message first,
/// then the fields of its kind, in a fixed order.
struct JsonObject {
    fields: Vec<(&'static str, JsonValue)>,
}

enum JsonValue {
    String(String),
    Number(u8),
}

impl JsonObject {
    fn new(code: &'static str, exit: u8, message: &str) -> JsonObject {
        JsonObject {
            fields: vec![
                ("code", JsonValue::String(code.to_string())),
                ("exit", JsonValue::Number(exit)),
                ("message", JsonValue::String(message.to_string())),
            ],
        }
    }

    fn string(&mut self, name: &'static str, value: &str) {
        self.fields
            .push((name, JsonValue::String(value.to_string())));
    }

    /// Advice; a second one (a hint on a hinted error) follows the first.
    fn hint(&mut self, hint: &str) {
        for (name, value) in &mut self.fields {
            if let (&mut "hint", JsonValue::String(text)) = (name, value) {
                text.push_str("; ");
                text.push_str(hint);
                return;
            }
        }
        self.string("hint", hint);
    }

    /// The object as one line. serde_json escapes the C0 controls; DEL and
    /// the C1 controls (a terminal may act on U+009B) are escaped too.
    fn finish(self) -> String {
        let mut line = String::from("{");
        for (i, (name, value)) in self.fields.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str(&format!("\"{name}\":"));
            match value {
                JsonValue::String(text) => {
                    line.push_str(&serde_json::to_string(text).expect("a string serializes"))
                }
                JsonValue::Number(number) => line.push_str(&number.to_string()),
            }
        }
        line.push('}');
        line.chars()
            .map(|c| {
                if c.is_control() {
                    format!("\\u{:04x}", u32::from(c))
                } else {
                    c.to_string()
                }
            })
            .collect()
    }
}

/// The exit code for any error: the first typed `Error` in the chain, else 1.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    typed(error).map_or(1, Error::exit_code)
}

/// True if the error comes from writing to a closed pipe (`etagstore get k | head -c1`).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Prints clap's answer to a command line it did not run: help and version
/// as clap writes them (exit 0), a usage error as one `error:` line (exit 2).
/// `subcommand` is the one named on the command line, if any, so the line
/// can point at its own `--help`.
pub fn report_usage(error: &clap::Error, subcommand: Option<&str>) -> std::process::ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            return std::process::ExitCode::SUCCESS;
        }
        // `etagstore` alone: the usage and the commands, as git does; a
        // script that asked for JSON gets its one line.
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            if JSON_ERRORS.load(Ordering::Relaxed) {
                let help = match subcommand {
                    Some(name) => format!("etagstore {name} --help"),
                    None => "etagstore --help".to_string(),
                };
                print_usage(&format!("a subcommand is required (see '{help}')"));
            } else {
                eprint!("{}", error.render());
            }
            return std::process::ExitCode::from(2);
        }
        _ => {}
    }
    let unknown = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => Some(arg.as_str()),
        _ => None,
    };
    let message = match (subcommand, unknown) {
        (Some("set-unsafe"), Some(arg)) if arg.starts_with("--etag") => {
            "set-unsafe takes no --etag; for a conditional write use: \
             etagstore set KEY VALUE --etag E (see 'etagstore set --help')"
                .to_string()
        }
        _ => usage_message(&error.render().to_string(), subcommand),
    };
    print_usage(&escape_controls(&message));
    std::process::ExitCode::from(2)
}

/// Prints a usage error that clap found, text or JSON.
fn print_usage(message: &str) {
    if JSON_ERRORS.load(Ordering::Relaxed) {
        eprintln!("{}", JsonObject::new("usage", 2, message).finish());
    } else {
        eprintln!("error: {message}");
    }
}

/// clap's multi-line message folded into one line, without the usage block.
fn usage_message(rendered: &str, subcommand: Option<&str>) -> String {
    let message: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.starts_with("Usage:"))
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("For more information"))
        .collect();
    let message = message.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    let help = match subcommand {
        Some(name) => format!("etagstore {name} --help"),
        None => "etagstore --help".to_string(),
    };
    format!("{message} (see '{help}')")
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn typed_errors_keep_their_code_under_context() {
        let error = Err::<(), _>(Error::NotFound { key: "k".into() })
            .context("while reading")
            .unwrap_err();
        assert_eq!(exit_code(&error), 4);
    }

    fn json_of(error: Error) -> serde_json::Value {
        let line = json_line(&anyhow::Error::new(error).context("while writing"));
        assert!(!line.contains('\n'), "{line}");
        serde_json::from_str(&line).unwrap()
    }

    #[test]
    fn a_failed_condition_as_json_names_the_predicate_and_the_etag_found() {
        let json = json_of(Error::ConditionFailed {
            key: "job".into(),
            predicate: ".owner == null".into(),
            found: "0123456789abcdef0123456789abcdef".into(),
        });
        assert_eq!(json["code"], "condition_failed");
        assert_eq!(json["exit"], 3);
        assert_eq!(json["key"], "job");
        assert_eq!(json["predicate"], ".owner == null");
        assert_eq!(json["found"], "0123456789abcdef0123456789abcdef");
        let message = json["message"].as_str().unwrap();
        assert!(message.starts_with("while writing: condition failed for key \"job\""));
    }

    #[test]
    fn a_kept_edit_as_json_names_its_file_and_the_command_that_applies_it() {
        let json = json_of(Error::Kept {
            error: Box::new(Error::PreconditionFailed {
                key: "k".into(),
                given: "0123456789abcdef0123456789abcdef".into(),
                found: "fedcba9876543210fedcba9876543210".into(),
            }),
            path: "/tmp/etagstore-edit-k-1.json".into(),
            apply: "etagstore set k -f /tmp/etagstore-edit-k-1.json --etag fedcba9876543210fedcba9876543210".into(),
        });
        assert_eq!(json["code"], "precondition_failed");
        assert_eq!(json["exit"], 3);
        assert_eq!(json["expected"], "0123456789abcdef0123456789abcdef");
        assert_eq!(json["found"], "fedcba9876543210fedcba9876543210");
        assert_eq!(json["kept"], "/tmp/etagstore-edit-k-1.json");
        assert!(json["apply"]
            .as_str()
            .unwrap()
            .starts_with("etagstore set k -f "));
        let hint = json["hint"].as_str().unwrap();
        assert!(json["message"].as_str().unwrap().ends_with(hint), "{json}");
    }

    #[test]
    fn json_errors_escape_every_control_character() {
        let json = json_line(&anyhow::anyhow!("a\u{1b}[31m b\u{9b}c \u{7f}"));
        assert!(!json.chars().any(char::is_control), "{json}");
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["code"], "failed");
        assert_eq!(parsed["exit"], 1);
    }

    #[test]
    fn the_error_format_is_read_from_the_command_line_as_clap_reads_it() {
        let args = |line: &str| {
            line.split(' ')
                .map(std::ffi::OsString::from)
                .collect::<Vec<_>>()
        };
        let json = || Some(std::ffi::OsString::from("json"));
        assert!(json_asked(args("etagstore --error-format json get"), None));
        assert!(json_asked(args("etagstore get --error-format=json"), None));
        assert!(json_asked(args("etagstore get --error-format JSON"), None));
        assert!(json_asked(args("etagstore get"), json()));
        assert!(!json_asked(
            args("etagstore --error-format text get"),
            json()
        ));
        assert!(!json_asked(
            args("etagstore edit k -- cmd --error-format json"),
            None
        ));
        assert!(!json_asked(args("etagstore --error-format"), None));
    }

    #[test]
    fn other_errors_are_exit_1() {
        let error = anyhow::Error::from(std::io::Error::other("disk on fire"));
        assert_eq!(exit_code(&error), 1);
    }
}
