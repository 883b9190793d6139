//! Jittered exponential backoff, for waiting on a lock and for retrying an
//! edit after a conflict: racing processes must not retry in step.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct Backoff {
    pause: Duration,
    max: Duration,
    state: u64,
}

impl Backoff {
    /// Pauses start near `first` and double up to `max`.
    pub fn new(first: Duration, max: Duration) -> Backoff {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        Backoff {
            pause: first,
            max,
            state: nanos ^ (u64::from(std::process::id()) << 32) | 1,
        }
    }

    /// The next pause: the current step spread over 50%..150%.
    pub fn next_pause(&mut self) -> Duration {
        // xorshift64: plenty for jitter, no dependency.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let pause = self
            .pause
            .mul_f64(0.5 + (self.state % 1000) as f64 / 1000.0);
        self.pause = (self.pause * 2).min(self.max);
        pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_to_the_maximum_and_stay_jittered() {
        let mut backoff = Backoff::new(Duration::from_millis(2), Duration::from_millis(16));
        let pauses: Vec<Duration> = (0..8).map(|_| backoff.next_pause()).collect();
        assert!(pauses[0] >= Duration::from_millis(1) && pauses[0] <= Duration::from_millis(3));
        for pause in &pauses[4..] {
            assert!(*pause >= Duration::from_millis(8) && *pause <= Duration::from_millis(24));
        }
    }
}
