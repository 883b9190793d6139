//! The errors a script must tell apart, each with its exit code.
//!
//! They travel inside `anyhow::Error`; `exit_code` finds them by downcasting,
//! so every other failure (I/O, permissions) is exit 1.

use std::fmt;
use std::path::Path;
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
            Error::Hinted { error, .. } => error.exit_code(),
        }
    }
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

/// The exit code for any error: the first typed `Error` in the chain, else 1.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<Error>())
        .map_or(1, Error::exit_code)
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
        // `etagstore` alone: the usage and the commands, as git does.
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprint!("{}", error.render());
            return std::process::ExitCode::from(2);
        }
        _ => {}
    }
    let unknown = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => Some(arg.as_str()),
        _ => None,
    };
    let line = match (subcommand, unknown) {
        (Some("set-unsafe"), Some(arg)) if arg.starts_with("--etag") => {
            "error: set-unsafe takes no --etag; for a conditional write use: \
             etagstore set KEY VALUE --etag E (see 'etagstore set --help')"
                .to_string()
        }
        _ => usage_line(&error.render().to_string(), subcommand),
    };
    eprintln!("{}", escape_controls(&line));
    std::process::ExitCode::from(2)
}

/// clap's multi-line message folded into one line, without the usage block.
fn usage_line(rendered: &str, subcommand: Option<&str>) -> String {
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
    format!("error: {message} (see '{help}')")
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

    #[test]
    fn other_errors_are_exit_1() {
        let error = anyhow::Error::from(std::io::Error::other("disk on fire"));
        assert_eq!(exit_code(&error), 1);
    }
}
