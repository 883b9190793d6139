//! `watch` on a directory store: inotify on the store directory, through notify.

use std::sync::mpsc;
use std::time::Duration;

use anyhow::Result;

use super::FsStore;
use crate::key::Key;
use crate::store::Waiter;

/// Wakes on inotify events for one document file.
pub struct Notified {
    events: mpsc::Receiver<()>,
    // Dropping the watcher stops its thread.
    _watcher: notify::RecommendedWatcher,
}

impl Waiter for Notified {
    fn wait(&mut self, timeout: Duration) -> Result<()> {
        match self.events.recv_timeout(timeout) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => Ok(()),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(anyhow::anyhow!("the file-system watcher stopped"))
            }
        }
    }
}

impl FsStore {
    /// Watches the store directory for events on the key's file; polls
    /// when notifications are not available (no store yet, no inotify).
    pub(super) fn notified(&self, key: &Key) -> Option<Notified> {
        use notify::Watcher;
        let target = key.file_name();
        let (sender, events) = mpsc::channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let touches_key = event.map_or(true, |event| {
                    event
                        .paths
                        .iter()
                        .any(|path| path.file_name().is_some_and(|name| name == target.as_str()))
                });
                if touches_key {
                    let _ = sender.send(());
                }
            })
            .ok()?;
        watcher
            .watch(&self.dir, notify::RecursiveMode::NonRecursive)
            .ok()?;
        Some(Notified {
            events,
            _watcher: watcher,
        })
    }
}
