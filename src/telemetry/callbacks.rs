//! Events handed to the callbacks: delivered or dropped, per callback name.
//!
//! Drops are logged by their callers (throttled, with a reason of their own),
//! so these stay plain counters.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::labels::CallbackLabels;
use super::Telemetry;

pub(super) struct CallbackMetrics {
    pub deliveries: Family<CallbackLabels, Counter>,
    pub drops: Family<CallbackLabels, Counter>,
}

impl CallbackMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let deliveries = Family::<CallbackLabels, Counter>::default();
        registry.register(
            "event_deliveries",
            "Events delivered, by callback",
            deliveries.clone(),
        );
        let drops = Family::<CallbackLabels, Counter>::default();
        registry.register(
            "event_drops",
            "Events dropped (buffer full or callback down), by callback",
            drops.clone(),
        );
        CallbackMetrics { deliveries, drops }
    }
}

impl Telemetry {
    /// Counts one delivery (the fan-out counts on [`Telemetry::delivery_counter`]).
    #[cfg(test)]
    pub(crate) fn delivered(&self, callback: &str) {
        let labels = CallbackLabels::new(callback);
        self.inner.callbacks.deliveries.get_or_create(&labels).inc();
    }

    /// The deliveries counter of `callback`, to count on without a look-up.
    pub(crate) fn delivery_counter(&self, callback: &str) -> Counter {
        let labels = CallbackLabels::new(callback);
        self.inner
            .callbacks
            .deliveries
            .get_or_create(&labels)
            .clone()
    }

    pub(crate) fn dropped(&self, callback: &str) {
        let labels = CallbackLabels::new(callback);
        self.inner.callbacks.drops.get_or_create(&labels).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_appear_per_callback_name() {
        let t = Telemetry::new();
        assert!(!t.encode().contains("queuewatch_event_drops_total{"));
        t.delivered("jsonl:/tmp/x");
        t.dropped("nats:bench");
        t.dropped("nats:bench");
        let text = t.encode();
        assert!(
            text.contains("queuewatch_event_deliveries_total{callback=\"jsonl:/tmp/x\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("queuewatch_event_drops_total{callback=\"nats:bench\"} 2\n"),
            "{text}"
        );
        assert_eq!(t.drops_for("nats:bench"), 2);
        assert_eq!(t.deliveries_for("nats:bench"), 0);
    }
}
