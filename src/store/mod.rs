//! The storage interface the commands talk to, and its preconditions.
//!
//! A backend stores documents under keys and makes writes conditional on the
//! current ETag atomically. The ETag is always the MD5 of the stored bytes,
//! so commands compute it from the bytes they stream and every backend
//! agrees with `md5sum`.

#[cfg(feature = "azure")]
pub mod azure;
pub mod fs;
pub mod location;
#[cfg(any(feature = "azure", feature = "s3"))]
pub mod object;
#[cfg(feature = "s3")]
pub mod s3;

use std::io::Read;
use std::time::{Duration, SystemTime};

use anyhow::Result;

use crate::backoff::Backoff;
use crate::error::Error;
use crate::key::Key;

pub use fs::FsStore;
pub use location::Location;

/// Opens the store that `--store` names (see `Location::open`).
pub fn open(location: &Location, lock_timeout: Duration) -> Result<Box<dyn Store>> {
    location.open(lock_timeout)
}

/// What must be true of the current document for a write or delete to happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// No condition: last writer wins (`set-unsafe`).
    Any,
    /// The key must not exist (`--etag ''`).
    Missing,
    /// The key must exist, any version (`--etag '*'`).
    Exists,
    /// The current ETag must be exactly this.
    Matches(String),
}

impl Precondition {
    /// Reads the value of an `--etag` flag: `''`, `'*'` or 32 hex digits
    /// (upper-case hex is the same ETag). Anything else is a usage error
    /// (exit 2) whose hint names the fix, never a conflict: a retry loop
    /// would spin on a value that can never match.
    pub fn parse(flag: &str) -> Result<Precondition, Error> {
        match flag {
            "" => Ok(Precondition::Missing),
            "*" => Ok(Precondition::Exists),
            etag if is_etag(etag) => Ok(Precondition::Matches(etag.to_ascii_lowercase())),
            other => Err(Error::Usage(format!(
                "invalid --etag {:?}: {}",
                crate::error::escape_controls(other),
                etag_fix(other)
            ))),
        }
    }

    /// What the flag looked like, for error messages.
    pub fn as_flag(&self) -> &str {
        match self {
            Precondition::Any | Precondition::Missing => "",
            Precondition::Exists => "*",
            Precondition::Matches(etag) => etag,
        }
    }

    /// Whether the precondition holds for a key whose current ETag is
    /// `current` (`None` when the key does not exist).
    pub fn holds(&self, current: Option<&str>) -> bool {
        match (self, current) {
            (Precondition::Any, _) => true,
            (Precondition::Missing, None) => true,
            (Precondition::Exists, Some(_)) => true,
            (Precondition::Matches(wanted), Some(found)) => wanted == found,
            _ => false,
        }
    }

    /// `Ok` if the precondition holds, else the exit-3 error naming both ETags.
    pub fn check(&self, key: &Key, current: Option<&str>) -> Result<(), Error> {
        if self.holds(current) {
            Ok(())
        } else {
            Err(Error::PreconditionFailed {
                key: key.as_str().to_string(),
                given: self.as_flag().to_string(),
                found: current.unwrap_or("").to_string(),
            })
        }
    }
}

/// True for an ETag as etagstore prints it: 32 hex digits, either case.
pub fn is_etag(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What is wrong with a malformed `--etag` value, and how to fix it.
fn etag_fix(value: &str) -> String {
    let trimmed = value.trim();
    let unquoted = value.trim_matches('"');
    if trimmed != value {
        "an ETag has no spaces; drop them".to_string()
    } else if let Some(rest) = value.strip_prefix("W/") {
        format!(
            "weak ETags (W/...) are HTTP's, not etagstore's; pass the 32 hex digits alone{}",
            if is_etag(rest.trim_matches('"')) {
                ", without W/ and the quotes"
            } else {
                ""
            }
        )
    } else if unquoted != value && (unquoted.is_empty() || unquoted == "*" || is_etag(unquoted)) {
        format!("drop the quotes: --etag '{unquoted}'")
    } else if value.bytes().all(|b| b.is_ascii_hexdigit()) {
        format!("an ETag is 32 hex digits; got {}", value.len())
    } else {
        format!(
            "an ETag is 32 hex digits ('' = must not exist, '*' = must exist); \
             read one with its document: {}",
            crate::error::suggest(["get", "KEY", "-o", "FILE"])
        )
    }
}

/// One key in a listing; `details` only when asked for.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: Key,
    pub details: Option<Details>,
}

/// A key in a listing whose details could not be read (a document that is
/// a symbolic link, say): the listing names it and goes on.
#[derive(Debug)]
pub struct Unreadable {
    pub key: Key,
    pub error: anyhow::Error,
}

/// What `list -l` shows of a document, all from one read of it.
#[derive(Debug, Clone)]
pub struct Details {
    pub etag: String,
    pub size: u64,
    pub modified: SystemTime,
}

/// A place that keeps documents. Implementations: `FsStore` (a directory),
/// `object::Objects` (an Azure container, an S3 bucket).
pub trait Store {
    /// Opens a document for reading, or `None` if the key does not exist.
    /// (Not `open`: that name belongs to `store::open`, which opens a backend.)
    /// The bytes read are one version of the document, never a mix.
    fn read(&self, key: &Key) -> Result<Option<Box<dyn Read>>>;

    /// Stores the bytes of `input` under `key` if `precondition` holds,
    /// atomically: the input is checked to be one JSON value (exit 6
    /// otherwise) before anything changes. Returns the new ETag.
    fn put(&self, key: &Key, input: &mut dyn Read, precondition: &Precondition) -> Result<String>;

    /// A group of writes, each under `precondition`, made durable together
    /// (`import`). The default writes each document as `put` does when it is
    /// added; the directory store commits a batch with one sync pass and one
    /// directory fsync.
    fn batch<'a>(&'a self, precondition: &Precondition) -> Result<Box<dyn Batch + 'a>> {
        Ok(Box::new(OneByOne {
            store: self,
            precondition: precondition.clone(),
            done: Committed::default(),
        }))
    }

    /// Deletes the document if `precondition` holds, atomically.
    fn delete(&self, key: &Key, precondition: &Precondition) -> Result<()>;

    /// The keys that start with `prefix`, sorted; with `details`, each
    /// entry's ETag, size and modification time.
    fn list(&self, prefix: &str, details: bool) -> Result<Vec<Entry>>;

    /// `list`, except that a key whose details cannot be read is an `Err`
    /// entry of its own instead of failing the whole listing, so that
    /// `list -l` prints every other entry. The default is `list`: all or
    /// nothing.
    fn list_entries(
        &self,
        prefix: &str,
        details: bool,
    ) -> Result<Vec<std::result::Result<Entry, Unreadable>>> {
        Ok(self.list(prefix, details)?.into_iter().map(Ok).collect())
    }

    /// Why a key may be missing that the user can fix (the store itself is
    /// missing, say), for the exit-4 hint.
    fn missing_hint(&self) -> Option<String> {
        None
    }

    /// The file that holds the key's document, for a store made of local
    /// files (so that `get -o` can refuse to write onto it).
    fn local_file(&self, _key: &Key) -> Option<std::path::PathBuf> {
        None
    }

    /// Something to wait on until `key` may have changed. Made before the
    /// first look at the key, so that no change after that look is missed.
    /// The default polls.
    fn watch(&self, _key: &Key) -> Result<Box<dyn Waiter>> {
        Ok(Box::new(Poller::new()))
    }
}

/// Documents written as a group: added one by one (each streamed in as it
/// is added), then committed. Each document stays atomic: a crash leaves
/// every key of the batch old or new. Committed documents are durable.
pub trait Batch {
    /// Whether `key` can join the batch, or it must be committed first (it
    /// is full, or already holds `key`: a key is written once a batch).
    fn room_for(&self, key: &Key) -> bool;

    /// Streams one document in. An error here concerns this document only
    /// (the ones added before it are written by `commit`); nothing of it
    /// was stored.
    fn add(&mut self, key: &Key, input: &mut dyn Read) -> Result<()>;

    /// Writes the documents added since the last commit, each if the
    /// precondition holds, and makes them durable.
    fn commit(&mut self) -> Committed;
}

/// What a commit did, in the order the documents were added.
#[derive(Default)]
pub struct Committed {
    /// The documents handled, from the first: each one's new ETag, or the
    /// failed precondition that left it as it was. The rest were not
    /// written.
    pub outcomes: Vec<Result<String, Error>>,
    /// What stopped the commit: the index of the document it concerns
    /// (`None`: the whole batch, e.g. its directory fsync failed; then
    /// `outcomes` is empty though its documents may be visible), and the
    /// error.
    pub failure: Option<(Option<usize>, anyhow::Error)>,
}

/// The default `Batch`: each document is written by `put` when it is added.
struct OneByOne<'a, S: Store + ?Sized> {
    store: &'a S,
    precondition: Precondition,
    done: Committed,
}

/// How many outcomes `OneByOne` keeps before it asks to be committed.
const ONE_BY_ONE_OUTCOMES: usize = 256;

impl<S: Store + ?Sized> Batch for OneByOne<'_, S> {
    fn room_for(&self, _key: &Key) -> bool {
        self.done.outcomes.len() < ONE_BY_ONE_OUTCOMES
    }

    fn add(&mut self, key: &Key, input: &mut dyn Read) -> Result<()> {
        match self.store.put(key, input, &self.precondition) {
            Ok(etag) => self.done.outcomes.push(Ok(etag)),
            Err(e) if matches!(e.downcast_ref(), Some(Error::PreconditionFailed { .. })) => {
                let refused = e.downcast::<Error>().expect("just matched");
                self.done.outcomes.push(Err(refused));
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn commit(&mut self) -> Committed {
        std::mem::take(&mut self.done)
    }
}

/// Waits for a possible change of a key (a wake-up may be spurious: the
/// caller looks again).
pub trait Waiter {
    /// Returns after a possible change, or after `timeout`.
    fn wait(&mut self, timeout: Duration) -> Result<()>;
}

/// Polling with backoff from 20 ms to 500 ms: for stores without change
/// notifications.
pub struct Poller(Backoff);

impl Poller {
    pub fn new() -> Poller {
        Poller(Backoff::new(
            Duration::from_millis(20),
            Duration::from_millis(500),
        ))
    }
}

impl Default for Poller {
    fn default() -> Self {
        Self::new()
    }
}

impl Waiter for Poller {
    fn wait(&mut self, timeout: Duration) -> Result<()> {
        std::thread::sleep(self.0.next_pause().min(timeout));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_flags_map_to_preconditions() {
        let etag = "0123456789abcdef0123456789abcdef";
        assert_eq!(Precondition::parse(""), Ok(Precondition::Missing));
        assert_eq!(Precondition::parse("*"), Ok(Precondition::Exists));
        assert_eq!(
            Precondition::parse(etag),
            Ok(Precondition::Matches(etag.into()))
        );
        assert_eq!(
            Precondition::parse(&etag.to_uppercase()),
            Ok(Precondition::Matches(etag.into()))
        );
    }

    #[test]
    fn malformed_etags_are_usage_errors_that_name_the_fix() {
        let etag = "0123456789abcdef0123456789abcdef";
        let cases = [
            (format!("\"{etag}\""), "drop the quotes"),
            (format!("W/\"{etag}\""), "without W/"),
            ("01234567".to_string(), "32 hex digits; got 8"),
            (format!("{etag} "), "no spaces"),
            ("nonsense".to_string(), "etagstore get KEY -o FILE"),
        ];
        for (flag, fix) in cases {
            let error = Precondition::parse(&flag).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{flag}");
            assert!(error.to_string().contains(fix), "{flag}: {error}");
        }
    }

    #[test]
    fn preconditions_hold_as_specified() {
        let etag = "0123456789abcdef0123456789abcdef";
        let matches = Precondition::Matches(etag.into());
        assert!(matches.holds(Some(etag)));
        assert!(!matches.holds(Some(&etag.to_uppercase())));
        assert!(!matches.holds(None));
        assert!(Precondition::Missing.holds(None));
        assert!(!Precondition::Missing.holds(Some(etag)));
        assert!(Precondition::Exists.holds(Some(etag)));
        assert!(!Precondition::Exists.holds(None));
        assert!(Precondition::Any.holds(None) && Precondition::Any.holds(Some(etag)));
    }

    #[test]
    fn a_failed_check_names_the_key_and_both_etags() {
        let key = Key::new("k").unwrap();
        let error = Precondition::Matches("abc".into())
            .check(&key, Some("def"))
            .unwrap_err();
        assert_eq!(error.exit_code(), 3);
        let message = error.to_string();
        assert!(message.contains("\"k\"") && message.contains("abc") && message.contains("def"));
    }

    /// What a build without a backend says for that backend's URL (these
    /// run in CI's `cargo test --no-default-features --lib`).
    #[cfg(not(all(feature = "azure", feature = "s3")))]
    fn refused(url: &str) -> Error {
        match Location::parse(std::ffi::OsStr::new(url)) {
            Ok(_) => panic!("{url} opened in a build without its backend"),
            Err(error) => error,
        }
    }

    #[cfg(not(feature = "s3"))]
    #[test]
    fn an_s3_url_in_a_build_without_s3_is_a_usage_error() {
        for url in ["s3://b", "s3://b/prefix"] {
            let error = refused(url);
            assert_eq!(error.exit_code(), 2, "{url}");
            assert!(
                error.to_string().contains("built without S3 support"),
                "{url}: {error}"
            );
        }
    }

    #[cfg(not(feature = "azure"))]
    #[test]
    fn an_azure_url_in_a_build_without_azure_is_a_usage_error() {
        for url in ["az://c", "https://acct.blob.core.windows.net/c"] {
            let error = refused(url);
            assert_eq!(error.exit_code(), 2, "{url}");
            assert!(
                error.to_string().contains("built without Azure support"),
                "{url}: {error}"
            );
        }
    }
}
