//! `watch` on a directory store: inotify on the store directory, through
//! notify, re-armed when the directory is removed or moved and re-created;
//! polling while there is no directory, or when inotify cannot be used.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Result;
use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};

use super::FsStore;
use crate::backoff::Backoff;
use crate::faults;
use crate::key::Key;
use crate::store::Waiter;

/// What one notification means for a watch of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Nothing the watch needs: another file, or only a read of the key's
    /// file (the watch's own look at it opens it).
    Ignore,
    /// The key may have changed: look again.
    Look,
    /// The store directory itself was removed or moved: its watch is dead.
    /// Look again, and watch the directory anew once it exists.
    Rearm,
}

/// Decides what a notification means. `dir` is the watched directory as
/// notify names it, `target` the key's file name. An error or an overflow
/// of the kernel's queue (`Rescan`) may hide any change, so both look.
pub(crate) fn classify(event: &notify::Result<notify::Event>, dir: &Path, target: &str) -> Wake {
    let Ok(event) = event else {
        return Wake::Look;
    };
    if event.need_rescan() {
        return Wake::Look;
    }
    let about_dir = event.paths.iter().any(|path| path == dir);
    let gone = matches!(
        event.kind,
        EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From))
    );
    if about_dir && gone {
        return Wake::Rearm;
    }
    let about_key = event
        .paths
        .iter()
        .any(|path| path.file_name().is_some_and(|name| name == target));
    // Opens and reads change nothing; only a close after writing may.
    let read_only = matches!(event.kind, EventKind::Access(kind)
        if kind != AccessKind::Close(AccessMode::Write));
    if about_key && !read_only {
        Wake::Look
    } else {
        Wake::Ignore
    }
}

/// Waits for inotify events on the key's file; see the module comment.
pub struct Notified {
    dir: PathBuf,
    target: String,
    armed: Option<Armed>,
    poll: Backoff,
    /// Inotify failed for a reason other than a missing directory: poll
    /// from now on (said once on standard error).
    polling_only: bool,
}

struct Armed {
    events: mpsc::Receiver<Wake>,
    // Dropping the watcher stops its thread.
    _watcher: notify::RecommendedWatcher,
}

impl Notified {
    /// Watches `dir` if it exists; if it does not, looks for it on each wait.
    fn arm(&mut self) {
        if self.polling_only || self.armed.is_some() {
            return;
        }
        match self.watcher() {
            Ok(armed) => {
                self.armed = Some(armed);
                self.poll = poll_backoff();
            }
            Err(e) if is_missing(&e) => {}
            Err(e) => {
                self.polling_only = true;
                eprintln!(
                    "note: cannot watch '{}' for changes ({e}); polling it instead",
                    self.dir.display()
                );
            }
        }
    }

    fn watcher(&self) -> notify::Result<Armed> {
        use notify::Watcher;
        faults::check(faults::Point::WatchInotify).map_err(notify::Error::io)?;
        // notify names events with an absolute path; compare with the same.
        let dir = std::path::absolute(&self.dir).map_err(notify::Error::io)?;
        let target = self.target.clone();
        let (sender, events) = mpsc::channel();
        let watched = dir.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let wake = classify(&event, &watched, &target);
                if wake != Wake::Ignore {
                    let _ = sender.send(wake);
                }
            })?;
        watcher.watch(&dir, notify::RecursiveMode::NonRecursive)?;
        Ok(Armed {
            events,
            _watcher: watcher,
        })
    }
}

fn is_missing(error: &notify::Error) -> bool {
    match &error.kind {
        notify::ErrorKind::PathNotFound => true,
        notify::ErrorKind::Io(e) => e.kind() == std::io::ErrorKind::NotFound,
        _ => false,
    }
}

fn poll_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(20), Duration::from_millis(500))
}

impl Waiter for Notified {
    fn wait(&mut self, timeout: Duration) -> Result<()> {
        if self.armed.is_none() {
            self.arm();
            if self.armed.is_some() {
                // Armed just now: whatever happened before is seen by the next look.
                return Ok(());
            }
            std::thread::sleep(self.poll.next_pause().min(timeout));
            return Ok(());
        }
        let armed = self.armed.as_ref().expect("checked above");
        match armed.events.recv_timeout(timeout) {
            Ok(Wake::Rearm) => {
                self.armed = None;
                self.arm();
                Ok(())
            }
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => Ok(()),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(anyhow::anyhow!("the file-system watcher stopped"))
            }
        }
    }
}

impl FsStore {
    /// Watches the store directory for changes of the key's file.
    pub(super) fn notified(&self, key: &Key) -> Notified {
        let mut notified = Notified {
            dir: self.dir.clone(),
            target: key.file_name(),
            armed: None,
            poll: poll_backoff(),
            polling_only: false,
        };
        notified.arm();
        notified
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind, DataChange, Flag, RemoveKind};
    use notify::Event;

    fn wake(kind: EventKind, path: &str) -> Wake {
        let event = Ok(Event::new(kind).add_path(PathBuf::from(path)));
        classify(&event, Path::new("/s"), "k.json")
    }

    #[test]
    fn reads_and_other_files_are_ignored() {
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        assert_eq!(wake(open, "/s/k.json"), Wake::Ignore);
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Read));
        assert_eq!(wake(closed, "/s/k.json"), Wake::Ignore);
        let created = EventKind::Create(CreateKind::File);
        assert_eq!(wake(created, "/s/other.json"), Wake::Ignore);
    }

    #[test]
    fn changes_of_the_key_look_again() {
        for kind in [
            EventKind::Create(CreateKind::File),
            EventKind::Remove(RemoveKind::File),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
        ] {
            assert_eq!(wake(kind, "/s/k.json"), Wake::Look, "{kind:?}");
        }
    }

    #[test]
    fn an_overflow_or_an_error_looks_again() {
        let rescan = Ok(Event::new(EventKind::Other).set_flag(Flag::Rescan));
        assert_eq!(classify(&rescan, Path::new("/s"), "k.json"), Wake::Look);
        let error = Err(notify::Error::generic("lost"));
        assert_eq!(classify(&error, Path::new("/s"), "k.json"), Wake::Look);
    }

    #[test]
    fn a_removed_or_moved_store_directory_is_watched_anew() {
        assert_eq!(
            wake(EventKind::Remove(RemoveKind::Folder), "/s"),
            Wake::Rearm
        );
        assert_eq!(
            wake(EventKind::Remove(RemoveKind::Other), "/s"),
            Wake::Rearm
        );
        let moved = EventKind::Modify(ModifyKind::Name(RenameMode::From));
        assert_eq!(wake(moved, "/s"), Wake::Rearm);
        // A sub-directory of the store going away is not the store.
        assert_eq!(
            wake(EventKind::Remove(RemoveKind::Folder), "/s/.etagstore"),
            Wake::Ignore
        );
    }
}
