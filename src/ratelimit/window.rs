//! The budget in use: requests per second over the last minute.

use tokio::time::Instant;

/// Requests per second over the last minute, in a ring of 60 buckets (O(1)).
#[derive(Debug)]
pub(super) struct UseWindow {
    origin: Instant,
    second: u64,
    buckets: [u32; 60],
}

impl UseWindow {
    pub(super) fn advance(&mut self, at: Instant) {
        let second = at.saturating_duration_since(self.origin).as_secs();
        if second > self.second {
            for s in (self.second + 1)..=second.min(self.second + 60) {
                self.buckets[(s % 60) as usize] = 0;
            }
            self.second = second;
        }
    }

    pub(super) fn record(&mut self, at: Instant) {
        self.advance(at);
        let second = at.saturating_duration_since(self.origin).as_secs();
        let bucket = &mut self.buckets[(second % 60) as usize];
        *bucket = bucket.saturating_add(1);
    }

    pub(super) fn total(&self) -> u32 {
        self.buckets.iter().sum()
    }
}

impl UseWindow {
    pub(super) fn new(origin: Instant) -> Self {
        UseWindow {
            origin,
            second: 0,
            buckets: [0; 60],
        }
    }
}
