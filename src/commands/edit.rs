//! `edit KEY [--jq FILTER | -- CMD ARGS…]`: read, change, write back
//! conditionally, and retry on conflict, so scripts need no loop of their own.
//!
//! The key's lock is never held while the editor or CMD runs: the write is a
//! compare-and-swap on the ETag that was read, like `set --etag`.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use super::cas::{self, precondition, Condition, Current, Step};
use crate::backoff::Backoff;
use crate::cli::EditArgs;
use crate::commands::get::not_found_or;
use crate::document;
use crate::error::{suggest, Error};
use crate::jq;
use crate::key::Key;
use crate::merge;
use crate::store::{Precondition, Store};

/// How the new document is made from the current one.
enum Change {
    Editor,
    Command(Vec<String>),
    Filter(jq::Filter),
}

pub fn run(args: &EditArgs, store: &dyn Store, out: &mut dyn Write) -> Result<()> {
    let key = Key::new(&args.key)?;
    if let Some(default) = &args.default {
        document::validate(default.as_bytes()).context("--default")?;
    }
    let change = if let Some(code) = &args.jq {
        Change::Filter(jq::Filter::new(code, filter_vars(args)?)?)
    } else if !args.command.is_empty() {
        Change::Command(args.command.clone())
    } else {
        Change::Editor
    };
    let condition = args.condition.as_deref().map(Condition::new).transpose()?;

    if let Change::Editor = change {
        // Before anything is read: with no terminal, nothing happens at all.
        let terminal = open_terminal()?;
        let current = read(store, &key, args.default.as_deref(), None)?;
        if let Some(condition) = &condition {
            condition.check(&key, &current)?;
        }
        let etag = edit_in_editor(
            store,
            &key,
            &current,
            &terminal,
            args.retries,
            condition.as_ref(),
        )?;
        writeln!(out, "{etag}")?;
        return Ok(());
    }

    let timeout = args.timeout;
    // jq holds the parsed document in memory: read no more than it takes.
    let limit = match (&change, &condition) {
        (Change::Filter(_), _) | (_, Some(_)) => Some(jq::MAX_INPUT),
        _ => None,
    };
    let how = cas::Retries {
        command: "edit",
        retries: args.retries,
        default: args.default.as_deref(),
        limit,
    };
    // --merge: the output of the last try and the document it was made
    // from, merged into the newer document instead of running again.
    let mut last_try: Option<(Current, Vec<u8>)> = None;
    let mut merged_in = Vec::new();
    let etag = cas::retry(
        store,
        &key,
        &how,
        || missing(store, &key),
        |current| {
            if let Some(condition) = &condition {
                condition.check(&key, current)?;
            }
            let new = match (last_try.take(), &change) {
                (Some((base, output)), _) if args.merge => {
                    merge_output(&key, &base, &output, current, &mut merged_in)?
                }
                (_, Change::Filter(filter)) => {
                    let new = filter.apply(&current.bytes)?;
                    if current.exists && same_value(&current.bytes, &new) {
                        return Ok(Step::Done(current.etag.clone()));
                    }
                    new
                }
                (_, Change::Command(command)) => run_command(command, &current.bytes, timeout)?,
                (_, Change::Editor) => unreachable!("handled above"),
            };
            if current.exists && new == current.bytes {
                return Ok(Step::Done(current.etag.clone()));
            }
            if args.merge {
                last_try = Some((current.clone(), new.clone()));
            }
            Ok(Step::Write(new))
        },
    )?;
    note_merged(&merged_in);
    writeln!(out, "{etag}")?;
    Ok(())
}

/// `edit --merge`: merges `output`, made from `base`, into `current`;
/// returns the document to write (`current`'s bytes when the output adds
/// nothing). A conflicting path is exit 3, nothing written.
fn merge_output(
    key: &Key,
    base: &Current,
    output: &[u8],
    current: &Current,
    merged_in: &mut Vec<merge::Path>,
) -> Result<Vec<u8>> {
    let base_value = merge::parse(&base.bytes)?;
    let mine = merge::parse(output)?;
    let theirs = merge::parse(&current.bytes)?;
    let merged = merge::merge(Some(&base_value), Some(&mine), Some(&theirs));
    if !merged.conflicts.is_empty() {
        let paths: Vec<merge::Path> = merged.conflicts.into_iter().map(|c| c.path).collect();
        return Err(Error::Conflict(format!(
            "edit --merge: key {:?} changed meanwhile at paths the new document also \
             changed: {}; nothing written (its ETag is now {:?})",
            key.as_str(),
            merge::list_paths(&paths, 10),
            current.etag
        ))
        .into());
    }
    merged_in.extend(merged.from_theirs);
    let value = merged.value.expect("three present documents merge to one");
    if value == theirs {
        return Ok(current.bytes.clone());
    }
    Ok(merge::to_bytes(&value, &merge::Style::of(output)))
}

/// One line on stderr: which concurrent changes are in what was written.
fn note_merged(paths: &[merge::Path]) {
    if !paths.is_empty() {
        eprintln!(
            "note: merged concurrent changes at {}",
            merge::list_paths(paths, 10)
        );
    }
}

/// Reads the document, or `default` when it is missing; more than `limit`
/// bytes is an invalid document for `--jq`.
fn read(
    store: &dyn Store,
    key: &Key,
    default: Option<&str>,
    limit: Option<u64>,
) -> Result<Current> {
    cas::read(store, key, default, limit, || missing(store, key))
}

/// Exit 4 for a missing key without `--default`, with the fix.
fn missing(store: &dyn Store, key: &Key) -> anyhow::Error {
    not_found_or(key, store, || {
        format!(
            "to create it, edit from a default: {}",
            suggest(["edit", key.as_str(), "--default", "JSON"])
        )
    })
}

/// Whether a filter's output is the input as jq would print it (so `.` or
/// `.n |= .` is no change even though jq's layout differs from the file's,
/// while reordered keys or respelled numbers are a change).
fn same_value(old: &[u8], new: &[u8]) -> bool {
    jaq_json::read::parse_single(old).is_ok_and(|old| jq::pretty(&old) == new)
}

fn filter_vars(args: &EditArgs) -> Result<Vec<(String, jaq_json::Val)>> {
    let strings = args.arg.chunks(2).map(|pair| {
        let value = jaq_json::Val::from(pair[1].clone());
        Ok((pair[0].clone(), value))
    });
    let json = args
        .argjson
        .chunks(2)
        .map(|pair| Ok((pair[0].clone(), jq::parse_json(&pair[0], &pair[1])?)));
    strings.chain(json).collect()
}

/// How long CMD has to end after it was asked to stop (SIGTERM, or the
/// signal etagstore received) before it is killed with SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Why CMD was stopped before it ended by itself.
#[derive(Clone, Copy)]
enum Stopped {
    Signal(libc::c_int),
    TimedOut,
}

/// Runs CMD without a shell, the document on its stdin; returns its stdout.
///
/// CMD runs in its own process group. SIGINT, SIGTERM or SIGHUP sent to
/// etagstore is passed on to that group, and so is SIGTERM after `timeout`;
/// whatever is still alive `STOP_GRACE` later gets SIGKILL. Then nothing
/// is written: after a timeout the error is exit 1, after a signal
/// etagstore dies of that same signal (a shell reports 128+N), so that a
/// calling shell loop stops as it would for any other interrupted command.
fn run_command(command: &[String], input: &[u8], timeout: Option<Duration>) -> Result<Vec<u8>> {
    use std::os::unix::process::CommandExt;
    let name = &command[0];
    let forwarding = signals::Forwarding::install();
    let mut child = Command::new(name)
        .args(&command[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot run '{name}'; nothing written"))?;
    let group = child.id() as libc::pid_t;
    signals::forward_to(group);
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut output = Vec::new();
    let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
    let (status, read, stopped) = thread::scope(|scope| {
        // Feed stdin from a second thread: a command that writes before it has
        // read everything would otherwise block on a full pipe, and so would we.
        scope.spawn(move || {
            // A command that does not read its input closes the pipe early: fine.
            let _ = stdin.write_all(input);
        });
        let reader = scope.spawn(|| stdout.read_to_end(&mut output));
        let (exited, status) = mpsc::channel();
        scope.spawn(move || {
            let _ = exited.send(child.wait());
        });
        let mut stopped = None;
        let mut kill_at = None;
        let status = loop {
            match status.recv_timeout(Duration::from_millis(100)) {
                Ok(status) => break status,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    break Err(std::io::Error::other("lost the command's exit status"))
                }
            }
            let now = Instant::now();
            if stopped.is_none() {
                let signal = signals::received();
                if signal != 0 {
                    stopped = Some(Stopped::Signal(signal));
                    signals::kill_group(group, signal);
                } else if deadline.is_some_and(|deadline| now >= deadline) {
                    stopped = Some(Stopped::TimedOut);
                    signals::kill_group(group, libc::SIGTERM);
                }
                if stopped.is_some() {
                    kill_at = now.checked_add(STOP_GRACE);
                }
            } else if kill_at.is_some_and(|kill_at| now >= kill_at) {
                signals::kill_group(group, libc::SIGKILL);
                kill_at = None;
            }
        };
        // A signal may have come just as CMD ended by itself.
        let signal = signals::received();
        if stopped.is_none() && signal != 0 {
            stopped = Some(Stopped::Signal(signal));
        }
        if stopped.is_some() {
            // Nothing CMD started may outlive the edit, nor hold its stdout open.
            signals::kill_group(group, libc::SIGKILL);
            // A signal is acted on when its target next runs: wait until the
            // group is gone, so that nothing of it is left when we exit.
            signals::wait_until_gone(group, STOP_GRACE);
        }
        (
            status,
            reader.join().expect("reading does not panic"),
            stopped,
        )
    });
    drop(forwarding);
    match stopped {
        Some(Stopped::Signal(signal)) => signals::die_of(signal, name),
        Some(Stopped::TimedOut) => {
            return Err(anyhow!(
                "'{name}' timed out after {}s and was stopped; nothing written",
                timeout.unwrap_or_default().as_secs_f64()
            ))
        }
        None => {}
    }
    let status = status?;
    read.with_context(|| format!("cannot read the output of '{name}'"))?;
    if !status.success() {
        return Err(anyhow!("'{name}' failed ({status}); nothing written"));
    }
    document::validate(&output)
        .with_context(|| format!("'{name}' wrote no valid document; nothing written"))?;
    Ok(output)
}

/// Passing SIGINT, SIGTERM and SIGHUP on to CMD's process group.
mod signals {
    use std::sync::atomic::{AtomicI32, Ordering};

    const FORWARDED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

    /// CMD's process group (0 before it exists) and the last signal received.
    static GROUP: AtomicI32 = AtomicI32::new(0);
    static RECEIVED: AtomicI32 = AtomicI32::new(0);

    extern "C" fn on_signal(signal: libc::c_int) {
        // Only async-signal-safe calls here: atomics and kill.
        RECEIVED.store(signal, Ordering::SeqCst);
        let group = GROUP.load(Ordering::SeqCst);
        if group > 0 {
            // SAFETY: kill is async-signal-safe.
            unsafe { libc::kill(-group, signal) };
        }
    }

    /// The handlers, installed until dropped (then the old ones are back).
    /// A signal the caller ignores (nohup, a background job) stays ignored.
    pub struct Forwarding {
        old: Vec<(libc::c_int, libc::sigaction)>,
    }

    impl Forwarding {
        pub fn install() -> Forwarding {
            GROUP.store(0, Ordering::SeqCst);
            RECEIVED.store(0, Ordering::SeqCst);
            let mut old = Vec::new();
            for signal in FORWARDED {
                // SAFETY: plain sigaction calls with initialized structs.
                unsafe {
                    let mut previous: libc::sigaction = std::mem::zeroed();
                    libc::sigaction(signal, std::ptr::null(), &mut previous);
                    if previous.sa_sigaction == libc::SIG_IGN {
                        continue;
                    }
                    let mut action: libc::sigaction = std::mem::zeroed();
                    action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                    action.sa_flags = libc::SA_RESTART;
                    libc::sigemptyset(&mut action.sa_mask);
                    if libc::sigaction(signal, &action, std::ptr::null_mut()) == 0 {
                        old.push((signal, previous));
                    }
                }
            }
            Forwarding { old }
        }
    }

    impl Drop for Forwarding {
        fn drop(&mut self) {
            GROUP.store(0, Ordering::SeqCst);
            for (signal, previous) in &self.old {
                // SAFETY: restores what sigaction gave back.
                unsafe { libc::sigaction(*signal, previous, std::ptr::null_mut()) };
            }
        }
    }

    /// From now on a signal is passed on to `group` as it arrives.
    pub fn forward_to(group: libc::pid_t) {
        GROUP.store(group, Ordering::SeqCst);
    }

    pub fn received() -> libc::c_int {
        RECEIVED.load(Ordering::SeqCst)
    }

    pub fn kill_group(group: libc::pid_t, signal: libc::c_int) {
        // SAFETY: signals a process group we created.
        unsafe { libc::kill(-group, signal) };
    }

    /// Waits, at most `within`, until no live process is left in `group`
    /// (zombies waiting for init to reap them do not count).
    pub fn wait_until_gone(group: libc::pid_t, within: std::time::Duration) {
        let deadline = std::time::Instant::now() + within;
        while group_alive(group) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn group_alive(group: libc::pid_t) -> bool {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return false;
        };
        entries.flatten().any(|entry| {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                return false;
            };
            // "pid (comm) state ppid pgrp ...": comm may hold spaces and ')'.
            let mut fields = stat
                .rsplit_once(')')
                .map_or("", |(_, rest)| rest)
                .split_whitespace();
            let state = fields.next().unwrap_or("Z");
            let pgrp = fields
                .nth(1)
                .and_then(|pgrp| pgrp.parse::<libc::pid_t>().ok());
            pgrp == Some(group) && !matches!(state, "Z" | "X")
        })
    }

    /// Says what happened, then dies of `signal` with its default action.
    /// Nothing is buffered or kept in a temporary file at this point, so
    /// skipping destructors loses nothing.
    pub fn die_of(signal: libc::c_int, name: &str) -> ! {
        let what = match signal {
            libc::SIGINT => "SIGINT",
            libc::SIGTERM => "SIGTERM",
            _ => "SIGHUP",
        };
        let message = format!("interrupted by {what}; '{name}' was stopped and nothing written");
        crate::error::report_signal(&message, signal, what);
        // SAFETY: default action, unblocked, then raised: the process ends here.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::raise(signal);
        }
        std::process::abort()
    }
}

/// Opens the editor on a copy of the document and writes the result back.
/// Whatever the person wrote is kept in the copy unless it is written.
fn edit_in_editor(
    store: &dyn Store,
    key: &Key,
    current: &Current,
    terminal: &File,
    retries: u32,
    condition: Option<&Condition>,
) -> Result<String> {
    let path = edit_file(key, &current.bytes)?;
    let editor = run_editor(&path, terminal);
    let edited = editor.and_then(|()| {
        fs::read(&path).with_context(|| format!("cannot read '{}'", path.display()))
    });
    let edited = match edited {
        Ok(edited) => edited,
        Err(e) => {
            // The editor failed or was aborted: like `git commit`, nothing is written.
            let _ = fs::remove_file(&path);
            return Err(e);
        }
    };
    if current.exists && edited == current.bytes {
        let _ = fs::remove_file(&path);
        return Ok(current.etag.clone());
    }
    let written = document::validate(&edited)
        .map_err(anyhow::Error::from)
        .and_then(|()| store.put(key, &mut edited.as_slice(), &precondition(current)));
    match written {
        Ok(etag) => {
            let _ = fs::remove_file(&path);
            Ok(etag)
        }
        // Someone wrote meanwhile: merge rather than make the person redo it.
        Err(e) if cas::is_conflict(&e) => {
            let mut merging = Merging {
                store,
                key,
                path: &path,
                terminal,
                condition,
                style: merge::Style::of(&edited),
                merged_in: Vec::new(),
            };
            merging.run(current, edited, retries)
        }
        Err(e) => {
            let etag_now = match e.downcast_ref::<Error>() {
                Some(Error::PreconditionFailed { found, .. }) => found.clone(),
                _ => current.etag.clone(),
            };
            Err(kept(e, key, &path, &etag_now))
        }
    }
}

/// An editor's change that met a concurrent write, being merged into it.
struct Merging<'a> {
    store: &'a dyn Store,
    key: &'a Key,
    /// The person's copy: holds their change (never a conflict file) when
    /// it is kept.
    path: &'a Path,
    terminal: &'a File,
    /// `--if`: checked on every version merged into, as on every retry.
    condition: Option<&'a Condition>,
    /// The layout of the person's change, which the merged document keeps.
    style: merge::Style,
    /// The concurrent changes merged in so far, for the final note.
    merged_in: Vec<merge::Path>,
}

impl Merging<'_> {
    /// Merges `edited` (a change of `start`) into the current document and
    /// writes the result, compare-and-swap on the current ETag; merges again
    /// when that moves, up to `retries` times. On a conflict the person
    /// resolves it in the editor. Whatever fails, their change is kept.
    fn run(&mut self, start: &Current, edited: Vec<u8>, retries: u32) -> Result<String> {
        let parsed = merge::parse(&start.bytes).and_then(|base| Ok((base, merge::parse(&edited)?)));
        let (base, mine) = match parsed {
            Ok(parsed) => parsed,
            Err(e) => return Err(kept(e.into(), self.key, self.path, &start.etag)),
        };
        // What the person started from, a --default included.
        let mut base = Some(base);
        let mut mine = mine;
        let mut backoff = Backoff::new(cas::FIRST_RETRY_PAUSE, cas::MAX_RETRY_PAUSE);
        let mut retries_left = retries;
        // The ETag an apply command names if the key cannot be read.
        let mut last_etag = start.etag.clone();
        loop {
            let theirs = match read_now(self.store, self.key) {
                Ok(theirs) => theirs,
                Err(e) => return Err(self.keep(&mine, e, &last_etag)),
            };
            let theirs_etag = theirs.as_ref().map_or("", |theirs| theirs.etag.as_str());
            last_etag = theirs_etag.to_string();
            if let Some(condition) = self.condition {
                let missing = Current {
                    bytes: Vec::new(),
                    etag: String::new(),
                    exists: false,
                };
                if let Err(e) = condition.check(self.key, theirs.as_ref().unwrap_or(&missing)) {
                    return Err(self.keep(&mine, e, theirs_etag));
                }
            }
            let theirs_value = match theirs
                .as_ref()
                .map(|theirs| merge::parse(&theirs.bytes))
                .transpose()
            {
                Ok(value) => value,
                Err(e) => return Err(self.keep(&mine, e.into(), theirs_etag)),
            };
            let merged = merge::merge(base.as_ref(), Some(&mine), theirs_value.as_ref());
            let resolved = if merged.conflicts.is_empty() {
                self.merged_in.extend(merged.from_theirs);
                match merged.value {
                    Some(value) => value,
                    // Theirs deleted the document, mine only re-spaced it.
                    None => {
                        let error = Error::Conflict(format!(
                            "key {:?} was deleted while you edited it; nothing written",
                            self.key.as_str()
                        ));
                        return Err(self.keep(&mine, error.into(), theirs_etag));
                    }
                }
            } else {
                let resolved = self.resolve(&merged, theirs_etag)?;
                self.merged_in.extend(merged.from_theirs);
                // The person has seen the current document: a fresh count.
                retries_left = retries;
                resolved
            };
            if theirs_value.as_ref() == Some(&resolved) {
                // Already there: nothing to write.
                let _ = fs::remove_file(self.path);
                self.note();
                return Ok(theirs_etag.to_string());
            }
            let bytes = merge::to_bytes(&resolved, &self.style);
            let condition = match &theirs {
                Some(theirs) => precondition(theirs),
                None => Precondition::Missing,
            };
            match self.store.put(self.key, &mut bytes.as_slice(), &condition) {
                Ok(etag) => {
                    let _ = fs::remove_file(self.path);
                    self.note();
                    return Ok(etag);
                }
                Err(e) if cas::is_conflict(&e) && retries_left > 0 => {
                    retries_left -= 1;
                    base = theirs_value;
                    mine = resolved;
                    thread::sleep(backoff.next_pause());
                }
                Err(e) => {
                    let etag_now = match e.downcast_ref::<Error>() {
                        Some(Error::PreconditionFailed { found, .. }) => found.clone(),
                        _ => theirs_etag.to_string(),
                    };
                    let e = if cas::is_conflict(&e) {
                        Error::Conflict(format!(
                            "edit gave up merging after {retries} retries: {e:#}"
                        ))
                        .into()
                    } else {
                        e
                    };
                    return Err(self.keep(&resolved, e, &etag_now));
                }
            }
        }
    }

    /// Re-opens the editor on a conflict file for `merged`; returns the
    /// document the person resolved it to. Anything else keeps their change.
    fn resolve(&self, merged: &merge::Merge, theirs_etag: &str) -> Result<merge::Value> {
        let paths: Vec<merge::Path> = merged.conflicts.iter().map(|c| c.path.clone()).collect();
        let conflict = |why: &str| {
            anyhow::Error::from(Error::Conflict(format!(
                "changes written to key {:?} while you edited it conflict with yours at {}; \
                 {why}, so nothing was written",
                self.key.as_str(),
                merge::list_paths(&paths, 10)
            )))
        };
        let unresolved = |document: Option<&merge::Value>, why: &str| -> anyhow::Error {
            match document {
                Some(document) => self.keep(document, conflict(why), theirs_etag),
                // The conflict file as the person left it: no document in it.
                None => kept(conflict(why), self.key, self.path, theirs_etag),
            }
        };
        let file = merge::conflict_file(merged);
        if let Err(e) = rewrite(self.path, &file) {
            return Err(unresolved(merged.value.as_ref(), &format!("{e:#}")));
        }
        let edited = run_editor(self.path, self.terminal).and_then(|()| {
            fs::read(self.path).with_context(|| format!("cannot read '{}'", self.path.display()))
        });
        let edited = match edited {
            Ok(edited) => edited,
            Err(e) => return Err(unresolved(merged.value.as_ref(), &format!("{e:#}"))),
        };
        if edited == file {
            return Err(unresolved(
                merged.value.as_ref(),
                "the conflict file was saved unchanged",
            ));
        }
        let value =
            merge::parse(&edited).map_err(|e| kept(e.into(), self.key, self.path, theirs_etag))?;
        match merge::resolution(value) {
            merge::Resolution::Resolved(document) => Ok(document),
            merge::Resolution::Unresolved(document) => Err(unresolved(
                document.as_ref(),
                "the \"conflicts\" member is still there",
            )),
            merge::Resolution::Unknown => Err(unresolved(
                None,
                "the file is not {\"document\": ...} (delete only \"conflicts\")",
            )),
        }
    }

    /// Keeps `document` in the person's copy and says how to apply it.
    fn keep(&self, document: &merge::Value, error: anyhow::Error, etag: &str) -> anyhow::Error {
        if let Err(e) = rewrite(self.path, &merge::to_bytes(document, &self.style)) {
            return anyhow!("{error:#}; and {e:#}");
        }
        kept(error, self.key, self.path, etag)
    }

    /// One line on stderr: which concurrent changes are in what was written.
    fn note(&self) {
        note_merged(&self.merged_in);
    }
}

/// Replaces the person's copy; mode 0600 even if the editor removed it.
fn rewrite(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(bytes))
        .with_context(|| format!("cannot write your edit to '{}'", path.display()))
}

/// The document now, `None` if the key does not exist.
fn read_now(store: &dyn Store, key: &Key) -> Result<Option<Current>> {
    let Some(mut reader) = store.read(key)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes)?;
    Ok(Some(Current {
        etag: document::etag_of(&bytes),
        bytes,
        exists: true,
    }))
}

/// Adds to an error where the person's edit is kept and how to apply it.
fn kept(error: anyhow::Error, key: &Key, path: &Path, etag: &str) -> anyhow::Error {
    let path = path.display().to_string();
    let apply = suggest(["set", key.as_str(), "-f", &path, "--etag", etag]);
    let error = match error.downcast::<Error>() {
        Ok(typed) => typed,
        Err(other) => Error::Failed(format!("{other:#}")),
    };
    Error::Kept {
        error: Box::new(error),
        path,
        apply,
    }
    .into()
}

/// A copy of the document in the temporary directory, named after the key
/// and ending in `.json` so editors highlight it; mode 0600 from the start,
/// as the document may be a secret and the directory is shared.
fn edit_file(key: &Key, bytes: &[u8]) -> Result<PathBuf> {
    let stem: String = key.encoded().chars().take(100).collect();
    let dir = std::env::temp_dir();
    let (path, mut file) = document::create_unique(|| {
        dir.join(format!(
            "etagstore-edit-{stem}-{}.json",
            document::random_hex()
        ))
    })
    .with_context(|| format!("cannot create a copy to edit in '{}'", dir.display()))?;
    if let Err(e) = file.write_all(bytes) {
        let _ = fs::remove_file(&path);
        return Err(e).with_context(|| format!("cannot write '{}'", path.display()));
    }
    Ok(path)
}

/// The controlling terminal, which the editor gets as its stdin, stdout and
/// stderr whatever etagstore's are (as git and vipe do): a pipe on stdin is
/// never typed into the editor, and stdout carries only the ETag. Without
/// one (cron, CI, `ssh host cmd`), exit 2: an editor needs a person.
fn open_terminal() -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| {
            Error::Usage(
                "no terminal for an editor; use `edit KEY -- CMD` or `--jq` \
                 (see 'etagstore edit --help')"
                    .into(),
            )
            .into()
        })
}

/// Runs `$VISUAL`, else `$EDITOR`, else `vi` on `path`, on the terminal.
/// The variable may hold arguments (`code --wait`); it is split like a
/// shell would, but no shell ever sees the path.
fn run_editor(path: &Path, terminal: &File) -> Result<()> {
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.trim().is_empty())
        .unwrap_or_else(|| "vi".to_string());
    let words = shell_words::split(&editor)
        .map_err(|e| anyhow!("cannot split the editor command {editor:?}: {e}"))?;
    let (program, args) = words
        .split_first()
        .ok_or_else(|| anyhow!("the editor command {editor:?} is empty"))?;
    let stdio = || -> Result<Stdio> {
        Ok(Stdio::from(
            terminal.try_clone().context("cannot use the terminal")?,
        ))
    };
    let status = Command::new(program)
        .args(args)
        .arg(path)
        .stdin(stdio()?)
        .stdout(stdio()?)
        .stderr(stdio()?)
        .status()
        .with_context(|| format!("cannot run the editor '{program}'; nothing written"))?;
    if !status.success() {
        return Err(anyhow!(
            "the editor '{program}' failed ({status}); nothing written"
        ));
    }
    Ok(())
}
