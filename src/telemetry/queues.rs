//! The queues polled: their count, and per-queue gauges of the last sample
//! (bounded: off above [`PER_QUEUE_LIMIT`] queues).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use super::labels::QueueLabels;
use super::Telemetry;
use crate::genesys::Sample;
use crate::QueueId;

/// Per-queue gauges are exported only up to this many queues (bounded label
/// cardinality); above it, only the aggregate series exist.
const PER_QUEUE_LIMIT: usize = 100;

pub(super) struct QueueMetrics {
    queues: Gauge,
    per_queue: AtomicBool,
    depth: Family<QueueLabels, Gauge>,
    wait: Family<QueueLabels, Gauge<f64, AtomicU64>>,
    agents: Family<QueueLabels, Gauge>,
}

impl QueueMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let queues = Gauge::default();
        registry.register("queues", "Queues being polled", queues.clone());
        let depth = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "queue_depth",
            "Last position (guest_position) or waiting count (observations), per queue",
            depth.clone(),
        );
        let wait = Family::<QueueLabels, Gauge<f64, AtomicU64>>::default();
        registry.register_with_unit(
            "queue_estimated_wait",
            "Last estimated wait, per queue",
            Unit::Seconds,
            wait.clone(),
        );
        let agents = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "queue_agents",
            "Last agents on queue (observations), per queue",
            agents.clone(),
        );
        QueueMetrics {
            queues,
            per_queue: AtomicBool::new(true),
            depth,
            wait,
            agents,
        }
    }
}

impl Telemetry {
    /// Records the queue count; per-queue series stop above [`PER_QUEUE_LIMIT`].
    pub(crate) fn set_queues(&self, count: usize) {
        let m = &self.inner.queues;
        m.queues.set(i64::try_from(count).unwrap_or(i64::MAX));
        let per_queue = count <= PER_QUEUE_LIMIT;
        let was = m.per_queue.swap(per_queue, Ordering::Relaxed);
        if was && !per_queue {
            log::info!("metrics: more than {PER_QUEUE_LIMIT} queues; per-queue gauges are off");
            m.depth.clear();
            m.wait.clear();
            m.agents.clear();
        }
    }

    /// The last sample of a queue, as per-queue gauges (when enabled).
    pub(crate) fn queue_sample(&self, queue_id: &QueueId, sample: &Sample) {
        let m = &self.inner.queues;
        if !m.per_queue.load(Ordering::Relaxed) {
            return;
        }
        let labels = QueueLabels::new(queue_id);
        if let Some(depth) = sample.position.or(sample.waiting) {
            m.depth.get_or_create(&labels).set(i64::from(depth));
        }
        if let Some(wait) = sample.estimated_wait_seconds {
            m.wait.get_or_create(&labels).set(wait);
        }
        if let Some(agents) = sample.agents_on_queue {
            m.agents.get_or_create(&labels).set(i64::from(agents));
        }
    }

    /// Drops a removed queue's series.
    pub(crate) fn forget_queue(&self, queue_id: &QueueId) {
        let m = &self.inner.queues;
        let labels = QueueLabels::new(queue_id);
        m.depth.remove(&labels);
        m.wait.remove(&labels);
        m.agents.remove(&labels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_queue_gauges_stop_above_the_limit() {
        let t = Telemetry::new();
        t.set_queues(2);
        let sample = Sample {
            position: Some(4),
            estimated_wait_seconds: Some(12.5),
            agents_on_queue: Some(3),
            ..Sample::default()
        };
        t.queue_sample(&"q-1".into(), &sample);
        let text = t.encode();
        for line in [
            "queuewatch_queues 2",
            r#"queuewatch_queue_depth{queue_id="q-1"} 4"#,
            r#"queuewatch_queue_estimated_wait_seconds{queue_id="q-1"} 12.5"#,
            r#"queuewatch_queue_agents{queue_id="q-1"} 3"#,
        ] {
            assert!(text.contains(&format!("{line}\n")), "{line}: {text}");
        }
        t.set_queues(PER_QUEUE_LIMIT + 1);
        t.queue_sample(&"q-2".into(), &sample);
        let text = t.encode();
        assert!(!text.contains("q-1") && !text.contains("q-2"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn a_forgotten_queue_has_no_series() {
        let t = Telemetry::new();
        t.set_queues(2);
        let sample = Sample {
            position: Some(1),
            ..Sample::default()
        };
        t.queue_sample(&"q-1".into(), &sample);
        t.queue_sample(&"q-2".into(), &sample);
        t.forget_queue(&"q-1".into());
        let text = t.encode();
        assert!(!text.contains("q-1") && text.contains("q-2"), "{text}");
    }
}
