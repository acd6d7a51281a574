//! Sliding 60-second request windows, as used for Genesys rate limits.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Length of a rate-limit window.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// What a window reports in the `inin-ratelimit-*` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Requests counted in the window.
    pub count: u32,
    /// Requests allowed in the window.
    pub allowed: u32,
    /// Seconds until every counted request has left the window (count back to 0).
    pub reset_secs: u64,
}

/// A refused request: the window is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limited {
    /// The window as it stands (the refused request is not counted).
    pub usage: Usage,
    /// Whole seconds, rounded up and at least 1, until a slot frees.
    pub retry_after_secs: u64,
}

/// Arrival times of the requests of the last 60 seconds.
#[derive(Debug, Default)]
pub(crate) struct SlidingWindow {
    hits: VecDeque<Instant>,
}

impl SlidingWindow {
    /// Counts a request at `now` if fewer than `allowed` are in the window.
    /// Refused requests are not counted.
    pub(crate) fn try_acquire(&mut self, now: Instant, allowed: u32) -> Result<Usage, Limited> {
        self.prune(now);
        let allowed_len = usize::try_from(allowed).unwrap_or(usize::MAX);
        if self.hits.len() < allowed_len {
            self.hits.push_back(now);
            return Ok(self.usage(now, allowed));
        }
        // With `allowed` slots, the request that frees one is the one at
        // index len - allowed (allowed may have been lowered meanwhile).
        let wait = match allowed_len {
            0 => WINDOW,
            _ => self
                .hits
                .get(self.hits.len() - allowed_len)
                .map_or(WINDOW, |&at| remaining(now, at)),
        };
        Err(Limited {
            usage: self.usage(now, allowed),
            retry_after_secs: ceil_secs(wait).max(1),
        })
    }

    /// The window at `now` without counting anything.
    pub(crate) fn usage(&mut self, now: Instant, allowed: u32) -> Usage {
        self.prune(now);
        Usage {
            count: u32::try_from(self.hits.len()).unwrap_or(u32::MAX),
            allowed,
            reset_secs: self
                .hits
                .back()
                .map_or(0, |&at| ceil_secs(remaining(now, at))),
        }
    }

    /// True when no request is left in the window.
    pub(crate) fn is_empty(&mut self, now: Instant) -> bool {
        self.prune(now);
        self.hits.is_empty()
    }

    fn prune(&mut self, now: Instant) {
        while self
            .hits
            .front()
            .is_some_and(|&at| now.saturating_duration_since(at) >= WINDOW)
        {
            self.hits.pop_front();
        }
    }
}

/// Time left until a request made at `at` leaves the window.
fn remaining(now: Instant, at: Instant) -> Duration {
    WINDOW.saturating_sub(now.saturating_duration_since(at))
}

/// Whole seconds, rounded up.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
