//! The read-check-write loop shared by `edit`, `patch` and `set`/`delete
//! --if`: read the document and its ETag, decide what to write, write it
//! conditional on exactly that ETag, and on a conflict read again (at most
//! `--retries` times, with jittered backoff).
//!
//! A write whose answer was lost (exit 8 from a network store) is never
//! repeated blindly: the key is read again, and only if it still has the
//! ETag the write was conditioned on does the loop go on (see `InDoubt`).

use std::io::Read;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::backoff::Backoff;
use crate::document;
use crate::error::Error;
use crate::jq;
use crate::key::Key;
use crate::store::{Precondition, Store};

/// The first pause after a conflict, and the longest. A lost writer waits
/// for its turn among the others, each a write of 1–2 ms: pauses up to
/// 500 ms left the key idle (8 writers on one key: 600 updates/s, against
/// 761 for a key each; with these, about a third more in the same race,
/// docs/benchmarks.md). 10 retries still span about 0.2 s.
pub const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(1);
pub const MAX_RETRY_PAUSE: Duration = Duration::from_millis(32);

/// The document as read: its bytes and ETag ("" when it does not exist).
#[derive(Clone)]
pub struct Current {
    pub bytes: Vec<u8>,
    pub etag: String,
    pub exists: bool,
}

/// Reads the document, or `default` when it is missing (else the error
/// `missing` makes); more than `limit` bytes is an invalid document.
pub fn read(
    store: &dyn Store,
    key: &Key,
    default: Option<&str>,
    limit: Option<u64>,
    missing: impl FnOnce() -> anyhow::Error,
) -> Result<Current> {
    match store.read(key)? {
        Some(reader) => {
            let mut bytes = Vec::new();
            match limit {
                Some(limit) => {
                    reader.take(limit + 1).read_to_end(&mut bytes)?;
                    if bytes.len() as u64 > limit {
                        return Err(anyhow::Error::new(jq::too_big())
                            .context(format!("cannot edit key {:?}", key.as_str())));
                    }
                }
                None => {
                    let mut reader = reader;
                    reader.read_to_end(&mut bytes)?;
                }
            }
            let etag = document::etag_of(&bytes);
            Ok(Current {
                bytes,
                etag,
                exists: true,
            })
        }
        None => match default {
            Some(default) => Ok(Current {
                bytes: default.as_bytes().to_vec(),
                etag: String::new(),
                exists: false,
            }),
            None => Err(missing()),
        },
    }
}

/// Write only over what was read; a missing key is created, once.
pub fn precondition(current: &Current) -> Precondition {
    if current.exists {
        Precondition::Matches(current.etag.clone())
    } else {
        Precondition::Missing
    }
}

/// What to do with the document just read.
pub enum Step {
    /// Nothing to write: print this ETag (the current one).
    Done(String),
    /// Write these bytes over the version read.
    Write(Vec<u8>),
    /// Delete the version read.
    Delete,
}

/// How the loop reads and how often it retries.
pub struct Retries<'a> {
    /// The command, for "… gave up after N retries".
    pub command: &'a str,
    pub retries: u32,
    /// The document a missing key reads as (`None`: `missing` decides).
    pub default: Option<&'a str>,
    /// The most bytes a document may have (`None`: no limit).
    pub limit: Option<u64>,
}

/// Reads, asks `decide` what to do with that version, and does it
/// conditional on its exact ETag; on a conflict, reads and decides again.
/// Returns the ETag the key has at the end ("" after a delete).
pub fn retry(
    store: &dyn Store,
    key: &Key,
    how: &Retries,
    missing: impl Fn() -> anyhow::Error,
    mut decide: impl FnMut(&Current) -> Result<Step>,
) -> Result<String> {
    let mut backoff = Backoff::new(FIRST_RETRY_PAUSE, MAX_RETRY_PAUSE);
    let mut retries_left = how.retries;
    // Writes whose answer was lost while the key still had the ETag they
    // were conditioned on: one may yet land (a late PUT), so every later
    // read checks for them, and an increment is never applied twice.
    let mut in_doubt = InDoubt::default();
    loop {
        let current = read(store, key, how.default, how.limit, &missing)?;
        if let Some(landed) = in_doubt.settle(key, &current, how.command)? {
            return Ok(landed);
        }
        let written = match decide(&current)? {
            Step::Done(etag) => return Ok(etag),
            Step::Write(new) => store.put(key, &mut new.as_slice(), &precondition(&current)),
            Step::Delete => store
                .delete(key, &precondition(&current))
                .map(|()| String::new()),
        };
        match written {
            Ok(etag) => return Ok(etag),
            Err(e) if is_conflict(&e) && retries_left > 0 => {
                retries_left -= 1;
                thread::sleep(backoff.next_pause());
            }
            Err(e) if is_conflict(&e) => {
                // A doubtful write may be what refused this one: look once
                // more, or a script answering exit 3 applies it twice.
                if in_doubt.is_open() {
                    let current = read(store, key, how.default, how.limit, &missing)?;
                    if let Some(landed) = in_doubt.settle(key, &current, how.command)? {
                        return Ok(landed);
                    }
                }
                return Err(e.context(format!(
                    "{} gave up after {} retries",
                    how.command, how.retries
                )));
            }
            // The answer was lost: look whether the write landed.
            Err(e) => match outcome_unknown(&e) {
                None => return Err(e),
                Some(tried) => match landed(store, key, &current, &tried) {
                    Landed::Yes => return Ok(tried),
                    Landed::No if retries_left > 0 => {
                        in_doubt.add(&current, tried);
                        retries_left -= 1;
                        thread::sleep(backoff.next_pause());
                    }
                    // Not landed when looked at, but it still may: exit 8.
                    Landed::No => {
                        return Err(Error::OutcomeUnknown {
                            key: key.as_str().to_string(),
                            etag: tried,
                            detail: format!(
                                "the write's answer was lost and the key still had the ETag {} \
                                 read when it looked, but the write may land later; {} gave up \
                                 after {} retries",
                                how.command, how.command, how.retries
                            ),
                        }
                        .into())
                    }
                    Landed::Unknown => return Err(e),
                },
            },
        }
    }
}

/// The ETag an unknown write would have produced ("" for a delete), if
/// `error` is one.
pub fn outcome_unknown(error: &anyhow::Error) -> Option<String> {
    match error.downcast_ref::<Error>() {
        Some(Error::OutcomeUnknown { etag, .. }) => Some(etag.clone()),
        _ => None,
    }
}

pub enum Landed {
    Yes,
    No,
    Unknown,
}

/// The ETags of writes whose outcome is unknown, and the ETag of the
/// document they were all conditioned on.
#[derive(Default)]
pub struct InDoubt {
    base: Option<String>,
    tried: Vec<String>,
}

impl InDoubt {
    /// Whether a write's outcome is still unknown.
    pub fn is_open(&self) -> bool {
        self.base.is_some()
    }

    pub fn add(&mut self, base: &Current, tried: String) {
        self.base = Some(if base.exists {
            base.etag.clone()
        } else {
            String::new()
        });
        self.tried.push(tried);
    }

    /// After a fresh read: `Some(etag)` if one of the doubtful writes has
    /// landed (the command is done), `None` if none has and the key is
    /// still the base (go on), and exit 8 if the key has become something
    /// else: a doubtful write may have landed and been overwritten since,
    /// so applying the change again could apply it twice.
    pub fn settle(&self, key: &Key, current: &Current, command: &str) -> Result<Option<String>> {
        let Some(base) = &self.base else {
            return Ok(None);
        };
        let now = if current.exists {
            current.etag.as_str()
        } else {
            ""
        };
        if let Some(tried) = self.tried.iter().find(|tried| tried.as_str() == now) {
            return Ok(Some(tried.clone()));
        }
        if now == base {
            return Ok(None);
        }
        Err(Error::OutcomeUnknown {
            key: key.as_str().to_string(),
            etag: self.tried.last().cloned().unwrap_or_default(),
            detail: format!(
                "an earlier write's answer was lost, and the key has changed since \
                 (it may have landed and been overwritten); {command} did not apply the \
                 change again"
            ),
        }
        .into())
    }
}

/// After a write of the document with ETag `tried` ("" for a delete) over
/// `base` whose outcome is unknown: the key now has `tried` (it landed),
/// still has `base` (it did not: try again), or something else, or cannot
/// be read. An increment is thus never applied twice.
pub fn landed(store: &dyn Store, key: &Key, base: &Current, tried: &str) -> Landed {
    let now = store.read(key).and_then(|reader| {
        reader
            .map(|mut reader| {
                let mut bytes = Vec::new();
                reader.read_to_end(&mut bytes)?;
                Ok::<_, anyhow::Error>(document::etag_of(&bytes))
            })
            .transpose()
    });
    let base = if base.exists { base.etag.as_str() } else { "" };
    match now {
        Ok(now) if now.as_deref().unwrap_or("") == tried => Landed::Yes,
        Ok(now) if now.as_deref().unwrap_or("") == base => Landed::No,
        _ => Landed::Unknown,
    }
}

pub fn is_conflict(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<Error>(),
        Some(Error::PreconditionFailed { .. })
    )
}

/// A `--if` predicate: a jq filter that must yield exactly `true` on the
/// current document (`null` when the key does not exist) for the write to
/// happen.
pub struct Condition {
    code: String,
    filter: jq::Filter,
}

impl Condition {
    /// Compiles the predicate: one that does not compile is exit 2.
    pub fn new(code: &str) -> Result<Condition> {
        let filter = jq::Filter::new(code, Vec::new()).context("--if")?;
        Ok(Condition {
            code: code.to_string(),
            filter,
        })
    }

    /// `Ok` if the predicate yields `true` on `current`; exit 3 naming the
    /// predicate and the current ETag if it yields `false`; exit 2 if it
    /// fails or yields anything but one boolean.
    pub fn check(&self, key: &Key, current: &Current) -> Result<()> {
        let input: &[u8] = if current.exists {
            &current.bytes
        } else {
            b"null"
        };
        // Over jq's limits: exit 6, as for `edit --jq`, not a broken predicate.
        jq::check_input(input).with_context(|| format!("--if on key {:?}", key.as_str()))?;
        let output = self.filter.apply(input).map_err(|e| {
            let why = match e.downcast_ref::<Error>() {
                Some(Error::InvalidDocument(why)) if why.contains("more than one value") => {
                    "it yielded more than one value".to_string()
                }
                Some(Error::InvalidDocument(why)) if why.contains("no value") => {
                    "it yielded no value".to_string()
                }
                Some(Error::InvalidDocument(why)) => why.clone(),
                _ => format!("{e:#}"),
            };
            self.broken(&why)
        })?;
        match output.as_slice() {
            b"true\n" => Ok(()),
            b"false\n" => Err(Error::ConditionFailed {
                key: key.as_str().to_string(),
                predicate: self.code.clone(),
                found: if current.exists {
                    current.etag.clone()
                } else {
                    String::new()
                },
            }
            .into()),
            other => {
                let shown: String = String::from_utf8_lossy(other)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                let shown: String = shown.chars().take(60).collect();
                Err(self.broken(&format!("it yielded {shown}, not true or false")))
            }
        }
    }

    fn broken(&self, why: &str) -> anyhow::Error {
        Error::Usage(format!(
            "--if {:?} must yield exactly one boolean: {why}; nothing written",
            self.code
        ))
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under contention a writer that lost waits for its turn; a pause much
    /// longer than the turns of 16 racing writers (each a write of about
    /// 1–2 ms) leaves the key idle while it sleeps. Measured with the
    /// race of scripts/bench.sh (docs/benchmarks.md).
    #[test]
    fn retry_pauses_start_near_a_millisecond_and_stay_within_a_round_of_sixteen_writers() {
        let mut backoff = Backoff::new(FIRST_RETRY_PAUSE, MAX_RETRY_PAUSE);
        let pauses: Vec<Duration> = (0..20).map(|_| backoff.next_pause()).collect();
        assert!(pauses[0] <= Duration::from_micros(1500), "{pauses:?}");
        assert!(
            pauses
                .iter()
                .all(|pause| *pause <= Duration::from_millis(48)),
            "{pauses:?}"
        );
        // Still growing: racing writers spread out instead of retrying in step.
        assert!(pauses[6] >= Duration::from_millis(16), "{pauses:?}");
    }
}
