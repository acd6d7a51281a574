//! Poll cycles: outcomes, failures by kind, request latency, retries, 429s,
//! and the ticks (lateness, skips).

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use tokio::time::Instant;

use super::labels::{ErrorLabels, Outcome, OutcomeLabels};
use super::Telemetry;
use crate::error::ErrorKind;
use crate::tracking::LatencyStats;

pub(super) struct PollMetrics {
    pub polls: Family<OutcomeLabels, Counter>,
    failures: Family<ErrorLabels, Counter>,
    latency: Histogram,
    retries: Counter,
    rate_limited: Counter,
    ticks_skipped: Counter,
    tick_lateness: Histogram,
    lateness: Mutex<LatencyStats>,
    /// When a poll last succeeded (`/readyz`).
    last_success: Mutex<Option<Instant>>,
}

impl PollMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let polls = Family::<OutcomeLabels, Counter>::default();
        registry.register("polls", "Poll cycles finished, by outcome", polls.clone());
        let failures = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "poll_failures",
            "Failed poll cycles, by error kind",
            failures.clone(),
        );
        let latency = Histogram::new([
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]);
        registry.register_with_unit(
            "request_latency",
            "Latency of successful Genesys requests",
            Unit::Seconds,
            latency.clone(),
        );
        let retries = Counter::default();
        registry.register(
            "retries",
            "Requests retried within a cycle",
            retries.clone(),
        );
        let rate_limited = Counter::default();
        registry.register(
            "rate_limited_responses",
            "HTTP 429 responses received",
            rate_limited.clone(),
        );
        let ticks_skipped = Counter::default();
        registry.register(
            "ticks_skipped",
            "Ticks skipped because the previous cycle was still running",
            ticks_skipped.clone(),
        );
        let tick_lateness = Histogram::new([0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0]);
        registry.register_with_unit(
            "tick_lateness",
            "How late ticks fire after their scheduled time",
            Unit::Seconds,
            tick_lateness.clone(),
        );
        // Known label values start at zero, so every series exists from the start.
        for &outcome in Outcome::ALL {
            let _ = polls.get_or_create(&OutcomeLabels { outcome });
        }
        for kind in ErrorKind::ALL {
            let _ = failures.get_or_create(&ErrorLabels { kind });
        }
        PollMetrics {
            polls,
            failures,
            latency,
            retries,
            rate_limited,
            ticks_skipped,
            tick_lateness,
            lateness: Mutex::new(LatencyStats::default()),
            last_success: Mutex::new(None),
        }
    }

    /// (p50, p99, max) of the tick lateness in milliseconds.
    pub fn lateness_ms(&self) -> Option<(f64, f64, f64)> {
        let stats = self.lateness.lock().unwrap_or_else(|e| e.into_inner());
        Some((stats.quantile(0.5)?, stats.quantile(0.99)?, stats.max()?))
    }
}

impl Telemetry {
    fn poll(&self) -> &PollMetrics {
        &self.inner.poll
    }

    pub(crate) fn poll_succeeded(&self, latency_secs: f64) {
        self.poll().latency.observe(latency_secs);
        self.tick_succeeded();
    }

    /// A successful event made without a request (the push source): counted
    /// as a success, no latency observed.
    pub(crate) fn tick_succeeded(&self) {
        let outcome = Outcome::Success;
        self.poll()
            .polls
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        *self
            .poll()
            .last_success
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// When a poll last succeeded (`None`: not yet).
    pub(crate) fn last_poll_success(&self) -> Option<Instant> {
        *self
            .poll()
            .last_success
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn poll_failed(&self, kind: ErrorKind) {
        let outcome = Outcome::Failure;
        self.poll()
            .polls
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.poll()
            .failures
            .get_or_create(&ErrorLabels { kind })
            .inc();
    }

    pub(crate) fn retried(&self) {
        self.poll().retries.inc();
    }

    pub(crate) fn rate_limited(&self) {
        self.poll().rate_limited.inc();
    }

    pub(crate) fn tick_late(&self, lateness: Duration) {
        self.poll().tick_lateness.observe(lateness.as_secs_f64());
        let mut stats = self
            .poll()
            .lateness
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        stats.record(lateness.as_secs_f64() * 1000.0);
    }

    pub(crate) fn tick_skipped(&self) {
        self.poll().ticks_skipped.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_outcomes_and_ticks_are_served() {
        let t = Telemetry::new();
        assert_eq!(t.tick_lateness_ms(), None);
        assert_eq!(t.last_poll_success(), None);
        t.poll_succeeded(0.02);
        assert!(t.last_poll_success().is_some());
        t.poll_failed(ErrorKind::Timeout);
        t.retried();
        t.rate_limited();
        t.tick_skipped();
        t.tick_late(Duration::from_millis(3));
        let text = t.encode();
        for line in [
            r#"queuewatch_polls_total{outcome="success"} 1"#,
            r#"queuewatch_polls_total{outcome="failure"} 1"#,
            r#"queuewatch_poll_failures_total{kind="timeout"} 1"#,
            r#"queuewatch_poll_failures_total{kind="not_found"} 0"#,
            "queuewatch_request_latency_seconds_count 1",
            "queuewatch_retries_total 1",
            "queuewatch_rate_limited_responses_total 1",
            "queuewatch_ticks_skipped_total 1",
            "queuewatch_tick_lateness_seconds_count 1",
        ] {
            assert!(text.contains(&format!("{line}\n")), "{line}: {text}");
        }
        let (p50, _, max) = t.tick_lateness_ms().expect("one tick");
        assert!(p50 >= 3.0 && max >= 3.0, "{p50} {max}");
    }
}
