//! Request demand of the configured queues against the rate budget.
//!
//! `guest_position` and `estimated_wait_time` cost one request per queue per
//! interval; `observations` batches up to [`OBSERVATIONS_BATCH`] queues of the
//! same interval into one request; `notifications` needs no request per
//! event: its demand is the batched snapshot of every queue once per
//! `poll.reconcile_interval` (channel upkeep, fallback and wait-time polling
//! are paced at run time). When demand exceeds
//! `genesys.rate_limit_per_minute`, every interval is multiplied by
//! [`Budget::stretch`] (a warning, not an error: docs/settings.md).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::duration::format_duration;
use super::settings::{Settings, Source};

/// Queues per observations query: Genesys' limit, one constant for the
/// budget arithmetic, the batcher and the batch phases.
pub use crate::genesys::wire::OBSERVATIONS_MAX_QUEUES as OBSERVATIONS_BATCH;

/// Stretched intervals never exceed this (keeps timer arithmetic safe).
const MAX_STRETCHED: Duration = Duration::from_secs(7 * 24 * 3600);

/// Configured demand versus the rate budget; see [`Settings::budget`].
#[derive(Clone, Debug, PartialEq)]
pub struct Budget {
    /// Number of configured queues.
    pub queues: usize,
    /// Requests per minute the configured intervals would need.
    pub requests_per_minute: f64,
    /// `genesys.rate_limit_per_minute`.
    pub budget_per_minute: u32,
    /// At least 1.0: the factor every interval must be multiplied by to fit.
    pub stretch: f64,
    /// Shortest configured queue interval (zero when there are no queues).
    pub shortest_interval: Duration,
    /// Longest configured queue interval (zero when there are no queues).
    pub longest_interval: Duration,
}

impl Budget {
    pub(crate) fn compute(settings: &Settings) -> Budget {
        let source = settings.poll.source;
        Budget::of(
            source,
            settings
                .queues
                .iter()
                .map(|q| settings.budget_interval(settings.queue_interval(q))),
            settings.genesys.rate_limit_per_minute,
        )
    }

    /// The demand of queues polled at `intervals` from `source` against a
    /// budget of `budget_per_minute` (an instance's own queues, in cluster
    /// mode, or every configured queue).
    pub(crate) fn of(
        source: Source,
        intervals: impl IntoIterator<Item = Duration>,
        budget_per_minute: u32,
    ) -> Budget {
        let mut by_interval: BTreeMap<Duration, usize> = BTreeMap::new();
        let mut queues = 0;
        for interval in intervals {
            *by_interval.entry(interval).or_default() += 1;
            queues += 1;
        }
        let batch = |n: usize| match source {
            Source::Observations | Source::Notifications => n.div_ceil(OBSERVATIONS_BATCH),
            Source::GuestPosition | Source::EstimatedWaitTime => n,
        };
        let requests_per_minute: f64 = by_interval
            .iter()
            .filter(|(interval, _)| !interval.is_zero())
            .map(|(interval, &n)| batch(n) as f64 * 60.0 / interval.as_secs_f64())
            .sum();
        let stretch = (requests_per_minute / f64::from(budget_per_minute.max(1))).max(1.0);
        Budget {
            queues,
            requests_per_minute,
            budget_per_minute,
            stretch,
            shortest_interval: by_interval.keys().next().copied().unwrap_or_default(),
            longest_interval: by_interval.keys().next_back().copied().unwrap_or_default(),
        }
    }

    /// Whether intervals have to be stretched to fit the budget.
    pub fn is_stretched(&self) -> bool {
        self.stretch > 1.0
    }

    /// A configured interval multiplied by [`Budget::stretch`] (capped at a week).
    pub fn stretched(&self, interval: Duration) -> Duration {
        let secs = interval.as_secs_f64() * self.stretch;
        Duration::try_from_secs_f64(secs)
            .unwrap_or(MAX_STRETCHED)
            .min(MAX_STRETCHED)
    }
}

impl fmt::Display for Budget {
    /// E.g. `120 queues at 10s need 720 req/min; budget 300: intervals stretched x2.40`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let noun = if self.queues == 1 { "queue" } else { "queues" };
        write!(
            f,
            "{} {noun} at {}",
            self.queues,
            format_duration(self.shortest_interval)
        )?;
        if self.longest_interval != self.shortest_interval {
            write!(f, " to {}", format_duration(self.longest_interval))?;
        }
        let demand = self.requests_per_minute;
        if (demand - demand.round()).abs() < 0.05 {
            write!(f, " need {demand:.0} req/min")?;
        } else {
            write!(f, " need {demand:.1} req/min")?;
        }
        write!(f, "; budget {}: ", self.budget_per_minute)?;
        if self.is_stretched() {
            write!(f, "intervals stretched x{:.2}", self.stretch)
        } else {
            let used = 100.0 * demand / f64::from(self.budget_per_minute.max(1));
            write!(f, "fits ({used:.0}% used)")
        }
    }
}
