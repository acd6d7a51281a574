//! The poller set: which queues this instance polls, and the one place that
//! starts and stops their PollerActors. Start-up, reload and the cluster's
//! ownership changes all go through it; it tells the simulator about queues
//! that join, and keeps the queue count and the matrices in step.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;

use crate::actors::metrics::{MetricsActor, Track, Untrack};
use crate::actors::poller::{Drain, PollerActor, PollerShared, PollerSpec};
use crate::supervisor::{Forget, Slot, Supervise, Supervisor};
use crate::telemetry::{ChildKind, Telemetry};
use crate::QueueId;

/// A poller the set started: what it polls and where it is.
struct Running {
    spec: Arc<PollerSpec>,
    slot: Slot<Addr<PollerActor>>,
}

/// Tells a simulated Genesys about queues that join the set.
pub(crate) type Introduce = Box<dyn Fn(&str) + Send + Sync>;

/// The pollers of one instance.
pub(crate) struct PollerSet {
    supervisor: Addr<Supervisor>,
    shared: PollerShared,
    metrics: Slot<Addr<MetricsActor>>,
    telemetry: Telemetry,
    introduce: Option<Introduce>,
    running: Mutex<HashMap<QueueId, Running>>,
}

impl PollerSet {
    pub(crate) fn new(
        supervisor: Addr<Supervisor>,
        shared: PollerShared,
        metrics: Slot<Addr<MetricsActor>>,
        telemetry: Telemetry,
        introduce: Option<Introduce>,
    ) -> PollerSet {
        PollerSet {
            supervisor,
            shared,
            metrics,
            telemetry,
            introduce,
            running: Mutex::new(HashMap::new()),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<QueueId, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the pollers share (the rate limiter, the cancel signal).
    pub(crate) fn shared(&self) -> &PollerShared {
        &self.shared
    }

    /// Starts polling `spec`'s queue; a poller already running for it with
    /// other settings is retired (its matrix stays).
    pub(crate) fn start(&self, spec: PollerSpec) {
        let id = spec.queue_id.clone();
        let spec = Arc::new(spec);
        let slot: Slot<Addr<PollerActor>> = Slot::default();
        let shared = self.shared.clone();
        let factory_spec = spec.clone();
        // Re-supervising under the same id retires the old incarnation.
        self.supervisor.do_send(Supervise::into_slot(
            format!("poller:{id}"),
            ChildKind::Poller,
            &slot,
            move |guard| PollerActor::new(factory_spec.clone(), shared.clone(), guard).start(),
        ));
        // Listed at once, before its first poll.
        if let Some(metrics) = self.metrics.get() {
            metrics.do_send(Track {
                queue_id: id.clone(),
                name: spec.name.clone(),
            });
        }
        let old = {
            let mut running = self.running();
            let old = running.insert(id, Running { spec, slot });
            self.telemetry.set_queues(running.len());
            old
        };
        if let Some(addr) = old.and_then(|old| old.slot.get()) {
            addr.do_send(Drain);
        }
    }

    /// Starts polling a queue new to the instance: the simulator, if any,
    /// learns of it first.
    pub(crate) fn introduce(&self, spec: PollerSpec) {
        if let Some(introduce) = &self.introduce {
            introduce(&spec.queue_id);
        }
        self.start(spec);
    }

    /// Stops a queue's poller for good and forgets its matrix and series.
    pub(crate) fn stop(&self, id: &QueueId) {
        self.supervisor.do_send(Forget {
            id: format!("poller:{id}"),
        });
        let removed = {
            let mut running = self.running();
            let removed = running.remove(id);
            self.telemetry.set_queues(running.len());
            removed
        };
        if let Some(addr) = removed.and_then(|p| p.slot.get()) {
            addr.do_send(Drain);
        }
        self.telemetry.forget_queue(id);
        if let Some(store) = &self.shared.push {
            store.leave(id);
        }
        if let Some(metrics) = self.metrics.get() {
            metrics.do_send(Untrack {
                queue_id: id.clone(),
            });
        }
    }

    /// The spec of every running poller, by queue id.
    pub(crate) fn specs(&self) -> HashMap<QueueId, Arc<PollerSpec>> {
        self.running()
            .iter()
            .map(|(id, p)| (id.clone(), p.spec.clone()))
            .collect()
    }

    /// The queue ids polled now.
    pub(crate) fn ids(&self) -> BTreeSet<QueueId> {
        self.running().keys().cloned().collect()
    }

    /// The intervals of the pollers running now.
    pub(crate) fn intervals(&self) -> Vec<Duration> {
        self.running().values().map(|p| p.spec.interval).collect()
    }

    /// The current incarnation of every poller.
    pub(crate) fn addrs(&self) -> Vec<Addr<PollerActor>> {
        self.running()
            .values()
            .filter_map(|p| p.slot.get())
            .collect()
    }
}

/// The poller set as the cluster's lease manager drives it: the queues of
/// the settings in force, started from their specs as leases are taken.
pub(crate) struct OwnedPollers(pub super::Handle);

impl crate::cluster::Pollers for OwnedPollers {
    fn configured(&self) -> BTreeSet<QueueId> {
        self.0
            .settings()
            .queues
            .iter()
            .map(|q| q.id.clone())
            .collect()
    }

    fn running(&self) -> BTreeSet<QueueId> {
        self.0.inner.pollers.ids()
    }

    fn start(&self, queues: &BTreeSet<QueueId>) {
        for spec in super::poller_specs(&self.0.settings()) {
            if queues.contains(&spec.queue_id) {
                self.0.inner.pollers.introduce(spec);
            }
        }
    }

    fn stop(&self, queue: &QueueId) {
        self.0.inner.pollers.stop(queue);
    }

    fn changed(&self) {
        self.0.rebudget();
    }
}
