//! `watch KEY [--etag E] [--timeout S] [--json]`: block until the key's
//! ETag differs from E, then print the new one (or its envelope).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::cli::WatchArgs;
use crate::commands::get::output_error;
use crate::document::{self, Spool};
use crate::error::Error;
use crate::key::Key;
use crate::output;
use crate::store::{Precondition, Store};

pub fn run(args: &WatchArgs, store: &dyn Store, out: &mut dyn Write) -> Result<()> {
    let key = Key::new(&args.key)?;
    // The same rules as `set --etag`; '*' cannot be a baseline to differ from.
    let given = match args.etag.as_deref().map(Precondition::parse).transpose()? {
        None => None,
        Some(Precondition::Missing) => Some(String::new()),
        Some(Precondition::Matches(etag)) => Some(etag),
        Some(_) => {
            return Err(Error::Usage(
                "watch --etag takes '' (wait for the key to appear) or an ETag, not '*'".into(),
            )
            .into())
        }
    };
    // A timeout too large for the clock has no deadline: it never passes.
    let deadline = args
        .timeout
        .and_then(|timeout| Instant::now().checked_add(timeout));
    // Watch first, look second: a change between the two still wakes us.
    let mut waiter = store.watch(&key)?;
    let mut seen = read(store, &key, args.json)?;
    let baseline = given.unwrap_or_else(|| seen.etag.clone());
    loop {
        if seen.etag != baseline {
            if args.json {
                // A deleted key's value is null.
                output::envelope(out, key.as_str(), &seen.etag, |out| match seen.value {
                    Some(value) => value
                        .copy_to(out)
                        .map_err(|e| output_error(e, "standard output")),
                    None => Ok(out.write_all(b"null")?),
                })?;
            } else {
                writeln!(out, "{}", seen.etag)?;
            }
            return Ok(());
        }
        let left = deadline.map_or(Duration::MAX, |deadline| {
            deadline.saturating_duration_since(Instant::now())
        });
        if left.is_zero() {
            return Err(Error::WatchTimeout {
                key: key.as_str().to_string(),
                seconds: args.timeout.unwrap_or_default().as_secs_f64(),
            }
            .into());
        }
        waiter.wait(left.min(Duration::from_secs(3600)))?;
        // Past the deadline: exit 7 without reading the document again (on
        // Azure that read is a whole download).
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            continue;
        }
        seen = read(store, &key, args.json)?;
    }
}

/// The key's current ETag ("" when missing) and, for `--json`, its value.
struct Seen {
    etag: String,
    value: Option<Spool>,
}

fn read(store: &dyn Store, key: &Key, with_value: bool) -> Result<Seen> {
    let Some(mut reader) = store.read(key)? else {
        return Ok(Seen {
            etag: String::new(),
            value: None,
        });
    };
    if with_value {
        let mut value = Spool::new();
        let copied = document::copy_value(&mut reader, &mut value)
            .map_err(|e| output_error(e, "a temporary file"))?;
        Ok(Seen {
            etag: copied.etag,
            value: Some(value),
        })
    } else {
        let copied = document::copy_hashed(&mut reader, &mut std::io::sink())
            .map_err(|e| output_error(e, "nowhere"))?;
        Ok(Seen {
            etag: copied.etag,
            value: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::store::{Entry, FsStore, Waiter};
    use clap::Parser;
    use std::io::Read;

    /// A directory store whose waiter writes the key's next version the
    /// first time it is waited on: a change that comes after the watch has
    /// looked, with no timing involved.
    struct ChangesWhileWaiting(FsStore, std::path::PathBuf);

    impl Store for ChangesWhileWaiting {
        fn read(&self, key: &Key) -> Result<Option<Box<dyn Read>>> {
            self.0.read(key)
        }
        fn put(&self, key: &Key, input: &mut dyn Read, when: &Precondition) -> Result<String> {
            self.0.put(key, input, when)
        }
        fn delete(&self, key: &Key, when: &Precondition) -> Result<()> {
            self.0.delete(key, when)
        }
        fn list(&self, prefix: &str, details: bool) -> Result<Vec<Entry>> {
            self.0.list(prefix, details)
        }
        fn watch(&self, key: &Key) -> Result<Box<dyn Waiter>> {
            let store = FsStore::new(&self.1, Duration::from_secs(1));
            Ok(Box::new(Writes(Some((store, key.clone())))))
        }
    }

    struct Writes(Option<(FsStore, Key)>);

    impl Waiter for Writes {
        fn wait(&mut self, _timeout: Duration) -> Result<()> {
            if let Some((store, key)) = self.0.take() {
                store.put(&key, &mut &b"2"[..], &Precondition::Any)?;
            }
            Ok(())
        }
    }

    #[test]
    fn a_timeout_too_large_for_the_clock_waits_for_the_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChangesWhileWaiting(
            FsStore::new(dir.path(), Duration::from_secs(1)),
            dir.path().to_path_buf(),
        );
        let key = Key::new("k").unwrap();
        for seconds in ["1e19", "1e300"] {
            let old = store.put(&key, &mut &b"1"[..], &Precondition::Any).unwrap();
            let cli = Cli::try_parse_from([
                "etagstore",
                "watch",
                "k",
                "--etag",
                &old,
                "--timeout",
                seconds,
            ])
            .unwrap();
            let Command::Watch(args) = cli.command else {
                unreachable!("parsed as watch")
            };
            let mut out = Vec::new();
            let result = run(&args, &store, &mut out);
            assert!(result.is_ok(), "--timeout {seconds}: {result:?}");
            assert_eq!(
                String::from_utf8(out).unwrap(),
                "c81e728d9d4c2f636f067f89cc14862c\n",
                "--timeout {seconds}"
            );
        }
    }
}
