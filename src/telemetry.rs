//! Process-wide counters and gauges, kept in a `prometheus-client` registry
//! (exposed on `/metrics`). Cheap to clone; every actor holds one.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::error::ErrorKind;

type Labels = Vec<(&'static str, String)>;

/// The metrics of one queuewatch instance.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    polls: Family<Labels, Counter>,
    failures: Family<Labels, Counter>,
    latency: Histogram,
    retries: Counter,
    rate_limited: Counter,
    ticks_skipped: Counter,
    tick_lateness: Histogram,
    lateness: std::sync::Mutex<crate::tracking::LatencyStats>,
    token_requests: Family<Labels, Counter>,
    restarts: Family<Labels, Counter>,
    deliveries: Family<Labels, Counter>,
    drops: Family<Labels, Counter>,
    rate_budget: Gauge,
    rate_budget_used: Gauge,
    interval_stretch: Gauge<f64, std::sync::atomic::AtomicU64>,
    rate_budget_paused: Gauge<f64, std::sync::atomic::AtomicU64>,
    rate_budget_waiting: Gauge,
    queues: Gauge,
    per_queue: std::sync::atomic::AtomicBool,
    queue_depth: Family<Labels, Gauge>,
    queue_wait: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    queue_agents: Family<Labels, Gauge>,
    cluster_owned: Gauge,
    lease_changes: Family<Labels, Counter>,
}

/// Per-queue gauges are exported only up to this many queues (bounded label
/// cardinality); above it, only the aggregate series exist.
pub const PER_QUEUE_LIMIT: usize = 100;

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

impl Telemetry {
    /// Creates the metrics and registers them under the `queuewatch_` prefix.
    pub fn new() -> Telemetry {
        let mut registry = Registry::with_prefix("queuewatch");
        let polls = Family::<Labels, Counter>::default();
        registry.register("polls", "Poll cycles finished, by outcome", polls.clone());
        let failures = Family::<Labels, Counter>::default();
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
        let token_requests = Family::<Labels, Counter>::default();
        registry.register(
            "token_requests",
            "OAuth token requests, by result",
            token_requests.clone(),
        );
        let restarts = Family::<Labels, Counter>::default();
        registry.register(
            "actor_restarts",
            "Supervised actor restarts, by actor kind",
            restarts.clone(),
        );
        let deliveries = Family::<Labels, Counter>::default();
        registry.register(
            "event_deliveries",
            "Events delivered, by callback",
            deliveries.clone(),
        );
        let drops = Family::<Labels, Counter>::default();
        registry.register(
            "event_drops",
            "Events dropped (buffer full or callback down), by callback",
            drops.clone(),
        );
        let rate_budget = Gauge::default();
        registry.register(
            "rate_budget_per_minute",
            "Client-side request rate in force per token (after headroom and adaptation)",
            rate_budget.clone(),
        );
        let rate_budget_used = Gauge::default();
        registry.register(
            "rate_budget_used_per_minute",
            "Requests sent on the token in the last 60 s",
            rate_budget_used.clone(),
        );
        let interval_stretch = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "interval_stretch",
            "Factor every poll interval is multiplied by to fit the rate budget (1 = as configured)",
            interval_stretch.clone(),
        );
        let rate_budget_paused = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "rate_budget_paused_seconds",
            "Seconds left of the Retry-After pause on the token (0 = not paused); no request is sent while it lasts",
            rate_budget_paused.clone(),
        );
        let rate_budget_waiting = Gauge::default();
        registry.register(
            "rate_budget_waiting",
            "Requests waiting for a slot in the token's rate budget (as of the last request)",
            rate_budget_waiting.clone(),
        );
        let queues = Gauge::default();
        registry.register("queues", "Queues being polled", queues.clone());
        let queue_depth = Family::<Labels, Gauge>::default();
        registry.register(
            "queue_depth",
            "Last position (guest_position) or waiting count (observations), per queue",
            queue_depth.clone(),
        );
        let queue_wait = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register_with_unit(
            "queue_estimated_wait",
            "Last estimated wait, per queue",
            Unit::Seconds,
            queue_wait.clone(),
        );
        let queue_agents = Family::<Labels, Gauge>::default();
        registry.register(
            "queue_agents",
            "Last agents on queue (observations), per queue",
            queue_agents.clone(),
        );
        let cluster_owned = Gauge::default();
        registry.register(
            "cluster_owned_queues",
            "Queues whose lease this instance holds (cluster mode)",
            cluster_owned.clone(),
        );
        let lease_changes = Family::<Labels, Counter>::default();
        registry.register(
            "cluster_lease_changes",
            "Queue leases acquired, released or lost (cluster mode)",
            lease_changes.clone(),
        );
        // Known label values start at zero, so every series exists from the start.
        for outcome in ["success", "failure"] {
            let _ = polls.get_or_create(&vec![("outcome", outcome.into())]);
        }
        for kind in ErrorKind::ALL {
            let _ = failures.get_or_create(&vec![("kind", kind.as_str().into())]);
        }
        for kind in CHILD_KINDS {
            let _ = restarts.get_or_create(&vec![("actor", kind.into())]);
        }
        for result in TOKEN_RESULTS {
            let _ = token_requests.get_or_create(&vec![("result", result.into())]);
        }
        Telemetry {
            inner: Arc::new(Inner {
                registry,
                polls,
                failures,
                latency,
                retries,
                rate_limited,
                ticks_skipped,
                tick_lateness,
                lateness: std::sync::Mutex::new(crate::tracking::LatencyStats::default()),
                token_requests,
                restarts,
                deliveries,
                drops,
                rate_budget,
                rate_budget_used,
                interval_stretch,
                rate_budget_paused,
                rate_budget_waiting,
                queues,
                per_queue: std::sync::atomic::AtomicBool::new(true),
                queue_depth,
                queue_wait,
                queue_agents,
                cluster_owned,
                lease_changes,
            }),
        }
    }

    /// The registry as OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }

    pub(crate) fn poll_succeeded(&self, latency_secs: f64) {
        self.inner
            .polls
            .get_or_create(&vec![("outcome", "success".into())])
            .inc();
        self.inner.latency.observe(latency_secs);
    }

    pub(crate) fn poll_failed(&self, kind: ErrorKind) {
        self.inner
            .polls
            .get_or_create(&vec![("outcome", "failure".into())])
            .inc();
        self.inner
            .failures
            .get_or_create(&vec![("kind", kind.as_str().into())])
            .inc();
    }

    pub(crate) fn retried(&self) {
        self.inner.retries.inc();
    }

    pub(crate) fn rate_limited(&self) {
        self.inner.rate_limited.inc();
    }

    pub(crate) fn tick_late(&self, lateness: std::time::Duration) {
        self.inner.tick_lateness.observe(lateness.as_secs_f64());
        let mut stats = self
            .inner
            .lateness
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        stats.record(lateness.as_secs_f64() * 1000.0);
    }

    /// Tick lateness so far: (p50, p99, max) in milliseconds; the
    /// percentiles are bucket upper bounds (within 29%).
    pub fn tick_lateness_ms(&self) -> Option<(f64, f64, f64)> {
        let stats = self
            .inner
            .lateness
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Some((stats.quantile(0.5)?, stats.quantile(0.99)?, stats.max()?))
    }

    pub(crate) fn tick_skipped(&self) {
        self.inner.ticks_skipped.inc();
    }

    pub(crate) fn token_request(&self, result: &'static str) {
        self.inner
            .token_requests
            .get_or_create(&vec![("result", result.into())])
            .inc();
    }

    pub(crate) fn restarted(&self, kind: &'static str) {
        self.inner
            .restarts
            .get_or_create(&vec![("actor", kind.into())])
            .inc();
    }

    pub(crate) fn delivered(&self, callback: &str) {
        self.inner
            .deliveries
            .get_or_create(&vec![("callback", callback.into())])
            .inc();
    }

    pub(crate) fn dropped(&self, callback: &str) {
        self.inner
            .drops
            .get_or_create(&vec![("callback", callback.into())])
            .inc();
    }

    /// The token's budget as the limiter sees it now.
    pub(crate) fn set_budget(&self, limiter: &crate::ratelimit::RateLimiter) {
        self.inner
            .rate_budget
            .set(limiter.rate_per_minute().round() as i64);
        self.inner
            .rate_budget_used
            .set(i64::from(limiter.used_last_minute()));
        self.inner.interval_stretch.set(limiter.stretch());
        let paused = limiter.paused_until().map_or(0.0, |until| {
            until
                .saturating_duration_since(tokio::time::Instant::now())
                .as_secs_f64()
        });
        self.inner.rate_budget_paused.set(paused);
        self.inner
            .rate_budget_waiting
            .set(i64::try_from(limiter.waiting()).unwrap_or(i64::MAX));
    }

    /// Records the queue count; per-queue series stop above [`PER_QUEUE_LIMIT`].
    pub(crate) fn set_queues(&self, count: usize) {
        self.inner
            .queues
            .set(i64::try_from(count).unwrap_or(i64::MAX));
        let per_queue = count <= PER_QUEUE_LIMIT;
        let was = self
            .inner
            .per_queue
            .swap(per_queue, std::sync::atomic::Ordering::Relaxed);
        if was && !per_queue {
            log::info!("metrics: more than {PER_QUEUE_LIMIT} queues; per-queue gauges are off");
            self.inner.queue_depth.clear();
            self.inner.queue_wait.clear();
            self.inner.queue_agents.clear();
        }
    }

    /// The last sample of a queue, as per-queue gauges (when enabled).
    pub(crate) fn queue_sample(&self, queue_id: &str, sample: &crate::genesys::Sample) {
        if !self
            .inner
            .per_queue
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let labels = vec![("queue_id", queue_id.to_string())];
        if let Some(depth) = sample.position.or(sample.waiting) {
            self.inner
                .queue_depth
                .get_or_create(&labels)
                .set(i64::from(depth));
        }
        if let Some(wait) = sample.estimated_wait_seconds {
            self.inner.queue_wait.get_or_create(&labels).set(wait);
        }
        if let Some(agents) = sample.agents_on_queue {
            self.inner
                .queue_agents
                .get_or_create(&labels)
                .set(i64::from(agents));
        }
    }

    /// Cluster mode: the queues whose lease this instance holds.
    pub(crate) fn set_cluster_owned(&self, count: usize) {
        self.inner
            .cluster_owned
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Cluster mode: `count` leases `acquired`, `released` or `lost`.
    pub(crate) fn lease_changed(&self, change: &'static str, count: usize) {
        self.inner
            .lease_changes
            .get_or_create(&vec![("change", change.into())])
            .inc_by(count as u64);
    }

    /// Drops a removed queue's series.
    pub(crate) fn forget_queue(&self, queue_id: &str) {
        let labels = vec![("queue_id", queue_id.to_string())];
        self.inner.queue_depth.remove(&labels);
        self.inner.queue_wait.remove(&labels);
        self.inner.queue_agents.remove(&labels);
    }

    /// Total restarts counted so far (all actor kinds).
    pub fn restarts_total(&self) -> u64 {
        sum(&self.inner.restarts, "actor", &CHILD_KINDS)
    }

    /// Events dropped so far for `callback`.
    pub fn drops_for(&self, callback: &str) -> u64 {
        sum(&self.inner.drops, "callback", &[callback])
    }

    /// Events delivered so far to `callback`.
    pub fn deliveries_for(&self, callback: &str) -> u64 {
        sum(&self.inner.deliveries, "callback", &[callback])
    }

    /// Poll cycles that succeeded so far.
    pub fn polls_succeeded(&self) -> u64 {
        sum(&self.inner.polls, "outcome", &["success"])
    }

    /// Token requests so far, all results.
    pub fn token_requests_total(&self) -> u64 {
        sum(&self.inner.token_requests, "result", &TOKEN_RESULTS)
    }
}

/// The actor kinds the supervisor restarts (label values of `actor_restarts`).
pub(crate) const CHILD_KINDS: [&str; 6] = [
    "poller",
    "token",
    "metrics",
    "callbacks",
    "callback",
    "batcher",
];
/// Label values of `token_requests`.
pub(crate) const TOKEN_RESULTS: [&str; 3] = ["success", "unavailable", "rejected"];

/// Sums the existing series of `family` over the known label values
/// (families cannot be iterated; `get` does not create missing series).
fn sum(family: &Family<Labels, Counter>, key: &'static str, values: &[&str]) -> u64 {
    values
        .iter()
        .filter_map(|v| family.get(&vec![(key, v.to_string())]).map(|c| c.get()))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesys::Sample;

    #[test]
    fn per_queue_gauges_stop_above_the_limit() {
        let t = Telemetry::new();
        t.set_queues(2);
        let sample = Sample {
            position: Some(4),
            estimated_wait_seconds: Some(12.5),
            ..Sample::default()
        };
        t.queue_sample("q-1", &sample);
        let text = t.encode();
        assert!(
            text.contains(r#"queuewatch_queue_depth{queue_id="q-1"} 4"#),
            "{text}"
        );
        assert!(
            text.contains(r#"queuewatch_queue_estimated_wait_seconds{queue_id="q-1"} 12.5"#),
            "{text}"
        );
        t.set_queues(PER_QUEUE_LIMIT + 1);
        t.queue_sample("q-2", &sample);
        let text = t.encode();
        assert!(!text.contains("q-1") && !text.contains("q-2"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn counters_are_read_back() {
        let t = Telemetry::new();
        t.restarted("poller");
        t.restarted("callback");
        t.token_request("success");
        t.poll_succeeded(0.01);
        assert_eq!(t.restarts_total(), 2);
        assert_eq!(t.token_requests_total(), 1);
        assert_eq!(t.polls_succeeded(), 1);
    }
}
