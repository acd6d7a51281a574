//! Cluster mode: the queues whose lease this instance holds, and the lease
//! changes (acquired, released, lost).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::labels::{LeaseChange, LeaseLabels};
use super::{InternalEvent, Telemetry};

pub(super) struct ClusterMetrics {
    owned: Gauge,
    lease_changes: Family<LeaseLabels, Counter>,
}

impl ClusterMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let owned = Gauge::default();
        registry.register(
            "cluster_owned_queues",
            "Queues whose lease this instance holds (cluster mode)",
            owned.clone(),
        );
        let lease_changes = Family::<LeaseLabels, Counter>::default();
        registry.register(
            "cluster_lease_changes",
            "Queue leases acquired, released or lost (cluster mode)",
            lease_changes.clone(),
        );
        ClusterMetrics {
            owned,
            lease_changes,
        }
    }
}

impl Telemetry {
    /// Cluster mode: the queues whose lease this instance holds.
    pub(crate) fn set_cluster_owned(&self, count: usize) {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        self.inner.cluster.owned.set(count);
    }

    /// Cluster mode: `count` leases acquired, released or lost (a count of
    /// zero makes the series exist).
    pub(crate) fn lease_changed(&self, change: LeaseChange, count: usize) {
        let changes = &self.inner.cluster.lease_changes;
        changes
            .get_or_create(&LeaseLabels { change })
            .inc_by(count as u64);
    }
}

/// Another instance took the lease of `queue` (its poller was stopped).
pub(crate) struct LeaseTaken<'a> {
    pub queue: &'a str,
}

impl InternalEvent for LeaseTaken<'_> {
    fn emit(self, telemetry: &Telemetry) {
        telemetry.lease_changed(LeaseChange::Lost, 1);
        log::warn!(
            "cluster: lease of queue {} taken by another instance",
            self.queue
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_changes_are_counted_by_change() {
        let t = Telemetry::new();
        for &change in LeaseChange::ALL {
            t.lease_changed(change, 0);
        }
        t.lease_changed(LeaseChange::Acquired, 3);
        t.emit(LeaseTaken { queue: "q-1" });
        t.lease_changed(LeaseChange::Released, 2);
        t.set_cluster_owned(0);
        let text = t.encode();
        for line in [
            r#"queuewatch_cluster_lease_changes_total{change="acquired"} 3"#,
            r#"queuewatch_cluster_lease_changes_total{change="released"} 2"#,
            r#"queuewatch_cluster_lease_changes_total{change="lost"} 1"#,
            "queuewatch_cluster_owned_queues 0",
        ] {
            assert!(text.contains(&format!("{line}\n")), "{line}: {text}");
        }
    }
}
