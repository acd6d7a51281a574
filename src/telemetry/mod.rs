//! Process-wide counters and gauges, kept in a `prometheus-client` registry
//! (exposed on `/metrics`). Cheap to clone; every actor holds one.
//!
//! One file per concern registers its families and records into them; the
//! label values are the typed enums of `labels.rs`. Where something is both
//! counted and logged, one event struct does both (as vector's
//! `internal_events`): `telemetry.emit(ActorRestarted { .. })`.

use std::hash::Hash;
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

mod actors;
mod budget;
mod callbacks;
mod cluster;
mod labels;
mod poll;
mod push;
mod queues;

pub(crate) use actors::{ActorRestarted, TokenIssued, TokenRejected, TokenUnavailable};
pub(crate) use budget::BudgetApplied;
pub(crate) use cluster::LeaseTaken;
pub(crate) use labels::{ChildKind, LeaseChange, PushMessage, Reconnect};

/// The metrics of one queuewatch instance.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    poll: poll::PollMetrics,
    actors: actors::ActorMetrics,
    callbacks: callbacks::CallbackMetrics,
    budget: budget::BudgetMetrics,
    queues: queues::QueueMetrics,
    cluster: cluster::ClusterMetrics,
    push: push::PushMetrics,
}

/// Something that happened inside queuewatch, counted and logged in one call.
pub(crate) trait InternalEvent {
    fn emit(self, telemetry: &Telemetry);
}

impl Telemetry {
    /// Creates the metrics and registers them under the `queuewatch_` prefix.
    pub(crate) fn new() -> Telemetry {
        let mut registry = Registry::with_prefix("queuewatch");
        // Registration order is the order of the families on `/metrics`.
        let poll = poll::PollMetrics::register(&mut registry);
        let actors = actors::ActorMetrics::register(&mut registry);
        let callbacks = callbacks::CallbackMetrics::register(&mut registry);
        let budget = budget::BudgetMetrics::register(&mut registry);
        let queues = queues::QueueMetrics::register(&mut registry);
        let cluster = cluster::ClusterMetrics::register(&mut registry);
        let push = push::PushMetrics::register(&mut registry);
        Telemetry {
            inner: Arc::new(Inner {
                registry,
                poll,
                actors,
                callbacks,
                budget,
                queues,
                cluster,
                push,
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

    /// Counts and logs `event`.
    pub(crate) fn emit(&self, event: impl InternalEvent) {
        event.emit(self);
    }

    /// Tick lateness so far: (p50, p99, max) in milliseconds; the
    /// percentiles are bucket upper bounds (within 29%).
    pub fn tick_lateness_ms(&self) -> Option<(f64, f64, f64)> {
        self.inner.poll.lateness_ms()
    }

    /// Total restarts counted so far (all actor kinds).
    pub fn restarts_total(&self) -> u64 {
        let all = ChildKind::ALL
            .iter()
            .map(|&actor| labels::ActorLabels { actor });
        sum(&self.inner.actors.restarts, all)
    }

    /// Events dropped so far for `callback`.
    pub fn drops_for(&self, callback: &str) -> u64 {
        let labels = labels::CallbackLabels::new(callback);
        sum(&self.inner.callbacks.drops, [labels])
    }

    /// Events delivered so far to `callback`.
    pub fn deliveries_for(&self, callback: &str) -> u64 {
        let labels = labels::CallbackLabels::new(callback);
        sum(&self.inner.callbacks.deliveries, [labels])
    }

    /// Poll cycles that succeeded so far.
    pub(crate) fn polls_succeeded(&self) -> u64 {
        let labels = labels::OutcomeLabels {
            outcome: labels::Outcome::Success,
        };
        sum(&self.inner.poll.polls, [labels])
    }
}

/// Sums the existing series of `family` over the given label sets
/// (families cannot be iterated; `get` does not create missing series).
fn sum<S: Clone + Hash + Eq>(
    family: &Family<S, Counter>,
    labels: impl IntoIterator<Item = S>,
) -> u64 {
    labels
        .into_iter()
        .filter_map(|l| family.get(&l).map(|c| c.get()))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every family `/metrics` serves, with its type.
    const FAMILIES: [(&str, &str); 29] = [
        ("polls", "counter"),
        ("poll_failures", "counter"),
        ("request_latency_seconds", "histogram"),
        ("retries", "counter"),
        ("rate_limited_responses", "counter"),
        ("ticks_skipped", "counter"),
        ("tick_lateness_seconds", "histogram"),
        ("token_requests", "counter"),
        ("actor_restarts", "counter"),
        ("event_deliveries", "counter"),
        ("event_drops", "counter"),
        ("rate_budget_per_minute", "gauge"),
        ("rate_budget_used_per_minute", "gauge"),
        ("interval_stretch", "gauge"),
        ("rate_budget_paused_seconds", "gauge"),
        ("rate_budget_waiting", "gauge"),
        ("queues", "gauge"),
        ("queue_depth", "gauge"),
        ("queue_estimated_wait_seconds", "gauge"),
        ("queue_agents", "gauge"),
        ("cluster_owned_queues", "gauge"),
        ("cluster_lease_changes", "counter"),
        ("push_channels_open", "gauge"),
        ("push_topics_subscribed", "gauge"),
        ("push_messages", "counter"),
        ("push_reconnects", "counter"),
        ("push_queues_on_fallback", "gauge"),
        ("push_wait_time_polls", "counter"),
        ("push_data_age_seconds", "histogram"),
    ];

    #[test]
    fn encode_serves_every_family_in_order() {
        // Families without a series are left out: give each one.
        let t = Telemetry::new();
        t.delivered("cb");
        t.dropped("cb");
        let sample = crate::genesys::Sample {
            position: Some(1),
            estimated_wait_seconds: Some(2.0),
            agents_on_queue: Some(3),
            ..Default::default()
        };
        t.queue_sample(&"q".into(), &sample);
        t.lease_changed(LeaseChange::Lost, 1);
        let text = t.encode();
        let types: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE queuewatch_"))
            .collect();
        let expected: Vec<String> = FAMILIES
            .iter()
            .map(|(name, kind)| format!("{name} {kind}"))
            .collect();
        assert_eq!(types, expected, "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn known_series_start_at_zero() {
        let text = Telemetry::new().encode();
        for series in [
            r#"queuewatch_polls_total{outcome="success"} 0"#,
            r#"queuewatch_polls_total{outcome="failure"} 0"#,
            r#"queuewatch_poll_failures_total{kind="rate_limited"} 0"#,
            r#"queuewatch_poll_failures_total{kind="cancelled"} 0"#,
            r#"queuewatch_actor_restarts_total{actor="poller"} 0"#,
            r#"queuewatch_actor_restarts_total{actor="batcher"} 0"#,
            r#"queuewatch_token_requests_total{result="rejected"} 0"#,
            "queuewatch_cluster_owned_queues 0",
        ] {
            assert!(text.contains(&format!("{series}\n")), "{series}: {text}");
        }
        // Lease series exist in cluster mode only.
        assert!(
            !text.contains("queuewatch_cluster_lease_changes_total"),
            "{text}"
        );
    }

    #[test]
    fn counters_are_read_back() {
        let t = Telemetry::new();
        t.emit(ActorRestarted {
            id: "poller:q",
            kind: ChildKind::Poller,
            delay: std::time::Duration::ZERO,
        });
        t.emit(ActorRestarted {
            id: "callback:c",
            kind: ChildKind::Callback,
            delay: std::time::Duration::ZERO,
        });
        t.emit(TokenIssued {
            lifetime: std::time::Duration::from_secs(60),
        });
        t.poll_succeeded(0.01);
        t.dropped("cb");
        t.delivered("cb");
        t.delivered("cb");
        assert_eq!(t.restarts_total(), 2);
        assert_eq!(t.polls_succeeded(), 1);
        assert_eq!((t.drops_for("cb"), t.deliveries_for("cb")), (1, 2));
        assert_eq!(t.drops_for("other"), 0);
        let text = t.encode();
        assert!(
            text.contains("queuewatch_token_requests_total{result=\"success\"} 1\n"),
            "{text}"
        );
    }
}
