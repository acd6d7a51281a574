//! One throttled logger: a condition that may repeat thousands of times a
//! second (a full buffer, a failing disk, an unreachable NATS) is counted
//! every time and logged at most once per period, with the count since the
//! last line.

use std::time::{Duration, Instant};

/// At most one log line per this period for one condition.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(10);

/// Rate-limited logging of a counted condition.
#[derive(Debug, Default)]
pub(crate) struct Throttled {
    unlogged: u64,
    last: Option<Instant>,
}

impl Throttled {
    /// Counts `n` occurrences; returns how many to report now, if it is time.
    pub(crate) fn note(&mut self, n: u64) -> Option<u64> {
        self.unlogged += n;
        let now = Instant::now();
        if self.last.is_none_or(|t| now.duration_since(t) >= LOG_EVERY) {
            self.last = Some(now);
            Some(std::mem::take(&mut self.unlogged))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_then_accumulates() {
        let mut t = Throttled::default();
        assert_eq!(t.note(3), Some(3));
        assert_eq!(t.note(1), None);
        assert_eq!(t.note(2), None);
    }
}
