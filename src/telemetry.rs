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
    token_requests: Family<Labels, Counter>,
    restarts: Family<Labels, Counter>,
    deliveries: Family<Labels, Counter>,
    drops: Family<Labels, Counter>,
    rate_budget: Gauge,
    queues: Gauge,
}

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
            "Client-side request budget per token",
            rate_budget.clone(),
        );
        let queues = Gauge::default();
        registry.register("queues", "Queues being polled", queues.clone());
        Telemetry {
            inner: Arc::new(Inner {
                registry,
                polls,
                failures,
                latency,
                retries,
                rate_limited,
                ticks_skipped,
                token_requests,
                restarts,
                deliveries,
                drops,
                rate_budget,
                queues,
            }),
        }
    }

    /// The registry, for encoding `/metrics`.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
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

    pub(crate) fn set_rate_budget(&self, per_minute: u32) {
        self.inner.rate_budget.set(i64::from(per_minute));
    }

    pub(crate) fn set_queues(&self, count: usize) {
        self.inner
            .queues
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Total restarts counted so far (all actor kinds).
    pub fn restarts_total(&self) -> u64 {
        sum(&self.inner.restarts, "actor", &CHILD_KINDS)
    }

    /// Events dropped so far for `callback`.
    pub fn drops_for(&self, callback: &str) -> u64 {
        self.inner
            .drops
            .get_or_create(&vec![("callback", callback.into())])
            .get()
    }

    /// Events delivered so far to `callback`.
    pub fn deliveries_for(&self, callback: &str) -> u64 {
        self.inner
            .deliveries
            .get_or_create(&vec![("callback", callback.into())])
            .get()
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
pub(crate) const CHILD_KINDS: [&str; 5] = ["poller", "token", "metrics", "callbacks", "callback"];
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
