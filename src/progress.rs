//! A progress bar on stderr for big transfers: only when stderr is a
//! terminal, and only once 64 MiB have passed, so pipes, CI logs and the
//! everyday small document never see it.

use std::io::{self, IsTerminal, Read};

use indicatif::{ProgressBar, ProgressStyle};

/// Transfers smaller than this never show a bar.
pub const THRESHOLD: u64 = 64 * 1024 * 1024;

/// Counts bytes moved and shows them once there are enough.
pub struct Meter {
    label: &'static str,
    total: Option<u64>,
    done: u64,
    terminal: bool,
    bar: Option<ProgressBar>,
}

impl Meter {
    /// `total` is the size when known (a file), for a bar rather than a counter.
    pub fn new(label: &'static str, total: Option<u64>) -> Meter {
        Meter {
            label,
            total,
            done: 0,
            terminal: io::stderr().is_terminal(),
            bar: None,
        }
    }

    /// Wraps a reader whose bytes count towards this meter.
    pub fn reader<R: Read>(&mut self, inner: R) -> Metered<'_, R> {
        Metered { inner, meter: self }
    }

    fn add(&mut self, bytes: usize) {
        self.done += bytes as u64;
        if !self.terminal || self.done < THRESHOLD {
            return;
        }
        let (label, total) = (self.label, self.total);
        let bar = self.bar.get_or_insert_with(|| {
            let (bar, template) = match total {
                Some(total) => (
                    ProgressBar::new(total),
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                ),
                None => (ProgressBar::no_length(), "{msg} {bytes} {bytes_per_sec}"),
            };
            let style = ProgressStyle::with_template(template)
                .expect("the template is valid")
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(label);
            bar
        });
        bar.set_position(self.done);
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// A reader that reports to a `Meter`.
pub struct Metered<'a, R> {
    inner: R,
    meter: &'a mut Meter,
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.meter.add(n);
        Ok(n)
    }
}
