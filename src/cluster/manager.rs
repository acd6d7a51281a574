//! The lease manager: a task on the instance's event loop that keeps the
//! heartbeat, watches the lease bucket, and carries out the plan
//! ([`super::plan`]) through the key-value adapter ([`super::kv`]) and the
//! instance's poller set ([`Pollers`]).
//!
//! - Every period (`lease_ttl / 6`): heartbeat, live instances, balance.
//!   Changes of the lease bucket arriving together are handled together.
//! - An instance that cannot write its heartbeat for `lease_ttl / 3` stops
//!   every poller (its leases may move soon) and takes them back later if
//!   nobody else did.
//! - A clean stop deletes the heartbeat, then the leases, after the pollers
//!   drained: the others see the deletions at once and take over.
//!
//! (Past 400 lines: one loop and its rounds. Every decision is in `plan`
//! and every bucket call in `kv`; what is left is their order, the fencing
//! and the logging, which read best together.)

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use actix::Recipient;
use async_nats::jetstream::kv;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::kv::{next_change, Buckets, Change, KvError, Taken};
use super::plan::{self, Lease, Release, View};
use crate::supervisor::Fatal;
use crate::telemetry::LeaseChange::{Acquired, Lost, Released};
use crate::telemetry::{LeaseTaken, Telemetry};
use crate::throttle::Throttled;
use crate::QueueId;

/// Events of the lease bucket arriving together are handled together.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// What the manager needs of the instance it serves: its poller set.
pub(crate) trait Pollers: 'static {
    /// Every configured queue.
    fn configured(&self) -> BTreeSet<QueueId>;
    /// The queues polled now.
    fn running(&self) -> BTreeSet<QueueId>;
    /// Starts polling `queues` (configured ones).
    fn start(&self, queues: &BTreeSet<QueueId>);
    /// Stops polling `queue`.
    fn stop(&self, queue: &QueueId);
    /// The set changed, or a reload may have changed intervals: the rate
    /// demand follows the pollers running.
    fn changed(&self);
}

pub(super) enum Command {
    /// Take and release nothing more (shutdown has begun).
    Freeze(oneshot::Sender<()>),
    /// Delete the heartbeat and every lease held, then end.
    Release(oneshot::Sender<()>),
}

pub(super) struct Manager {
    pub pollers: Box<dyn Pollers>,
    pub telemetry: Telemetry,
    pub me: String,
    pub ttl: Duration,
    pub client: async_nats::Client,
    /// `cluster.nats_url`; only ever shown redacted.
    pub url: String,
    /// Where a fatal problem goes (the process exits 1), and whether it went.
    pub fatal: Recipient<Fatal>,
    pub fatal_sent: bool,
    /// JetStream requests failing in a row.
    pub jetstream: crate::nats::Persistence,
    pub buckets: Option<Buckets>,
    /// Changes of the lease bucket, and since when.
    pub watch: Option<kv::Watch>,
    pub watch_since: Option<Instant>,
    /// The lease bucket as last seen.
    pub view: HashMap<QueueId, Lease>,
    /// Live instances (keys of the instance bucket), this one included.
    pub live: BTreeSet<String>,
    /// Leases held: queue id -> revision written.
    pub owned: HashMap<QueueId, u64>,
    pub last_heartbeat: Option<Instant>,
    pub started: Instant,
    pub frozen: bool,
    pub warnings: Throttled,
}

impl Manager {
    fn period(&self) -> Duration {
        (self.ttl / 6).max(Duration::from_millis(100))
    }

    /// How long a NATS request may take: well inside the lease period.
    pub(super) fn request_timeout(ttl: Duration) -> Duration {
        (ttl / 4).max(Duration::from_millis(500))
    }

    pub(super) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(self.period());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pending: Option<Instant> = None;
        loop {
            let debounce = async {
                match pending {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                command = commands.recv() => match command {
                    None => return, // the instance is gone without a clean stop
                    Some(Command::Freeze(done)) => {
                        self.frozen = true;
                        let _ = done.send(());
                    }
                    Some(Command::Release(done)) => {
                        self.release_all().await;
                        let _ = done.send(());
                        return;
                    }
                },
                change = next_change(&mut self.watch) => match change {
                    Some(change) => {
                        if self.seen(change) && pending.is_none() {
                            pending = Some(Instant::now() + DEBOUNCE);
                        }
                    }
                    None => self.watch = None,
                },
                () = debounce => {
                    pending = None;
                    if self.refresh_live().await {
                        self.rebalance().await;
                    }
                }
                _ = tick.tick() => self.round().await,
            }
        }
    }

    fn warn(&mut self, what: &str) {
        if self.warnings.note(1).is_some() {
            log::warn!("cluster: {what}");
        }
    }

    /// Reports `reason` as fatal for the process, once.
    fn fatal(&mut self, reason: String) {
        if !self.fatal_sent {
            self.fatal_sent = true;
            log::error!("cluster: {reason}");
            self.fatal.do_send(Fatal {
                reason: format!("cluster: {reason}"),
                kind: crate::error::ErrorKind::Cancelled,
            });
        }
    }

    /// A JetStream request failed: fatal once such failures (answers, not
    /// timeouts) have lasted long enough while connected. Logs `what`.
    fn failed(&mut self, what: &str, error: &KvError) {
        if let KvError::Failed(text) = error {
            let connected = crate::nats::connected(&self.client);
            if let Some(lasted) = self.jetstream.failed(connected, Instant::now()) {
                let lasted = Duration::from_secs(lasted.as_secs());
                self.fatal(format!(
                    "NATS server {} at {} has answered every JetStream request with an error \
                     for {}: {text}",
                    self.client.server_info().version,
                    crate::nats::redacted(&self.url),
                    humantime::format_duration(lasted)
                ));
            }
        }
        self.warn(&format!("{what}: {error}"));
    }

    /// One period: heartbeat, live instances, the watch, then balance.
    async fn round(&mut self) {
        if let Some(why) = crate::nats::unsupported_now(&self.client, &self.url) {
            self.fatal(why.to_string());
        }
        if self.buckets.is_none() {
            // Heartbeats vanish half a lease_ttl after the last write: with
            // the check period and the takeover on top, a dead instance's
            // queues move well within lease_ttl.
            let timeout = Self::request_timeout(self.ttl);
            match Buckets::open(&self.client, self.ttl / 2, timeout).await {
                Ok(buckets) => self.buckets = Some(buckets),
                Err(e) => {
                    self.fence_if_silent();
                    return self.failed("lease buckets not ready", &e);
                }
            }
        }
        if !self.heartbeat().await {
            // Open the buckets again next time: a server that lost its
            // store has them no more.
            self.buckets = None;
            self.watch = None;
            self.fence_if_silent();
            return;
        }
        if self.watch.is_none() {
            let Some(buckets) = &self.buckets else { return };
            match buckets.watch().await {
                Ok(watch) => {
                    self.view.clear();
                    self.watch = Some(watch);
                    self.watch_since = Some(Instant::now());
                }
                Err(e) => return self.failed("cannot watch the lease bucket", &e),
            }
        }
        if self.refresh_live().await {
            self.jetstream.succeeded();
            self.rebalance().await;
        }
    }

    /// Writes the heartbeat.
    async fn heartbeat(&mut self) -> bool {
        let Some(buckets) = &self.buckets else {
            return false;
        };
        let timeout = (self.ttl / 8).max(Duration::from_millis(250));
        match buckets.heartbeat(&self.me, timeout).await {
            Ok(()) => {
                self.last_heartbeat = Some(Instant::now());
                true
            }
            Err(e) => {
                self.failed("cannot write the heartbeat", &e);
                false
            }
        }
    }

    /// Stops every poller when no heartbeat was written for `lease_ttl / 3`:
    /// the leases may move to others soon.
    fn fence_if_silent(&mut self) {
        let silent = self.last_heartbeat.map(|t| t.elapsed());
        if silent.is_some_and(|s| s >= self.ttl / 3) && !self.owned.is_empty() {
            log::warn!(
                "cluster: no heartbeat written for {silent:?}: stopping the {} queue(s) \
                 owned, as their leases may move",
                self.owned.len()
            );
            let owned: Vec<QueueId> = self.owned.drain().map(|(q, _)| q).collect();
            self.telemetry.lease_changed(Lost, owned.len());
            for queue in owned {
                self.pollers.stop(&queue);
            }
            self.after_change();
        }
    }

    /// Reads the live instances. `false` when they cannot be known now.
    async fn refresh_live(&mut self) -> bool {
        let Some(buckets) = &self.buckets else {
            return false;
        };
        match buckets.live().await {
            Ok(mut live) => {
                live.insert(self.me.clone());
                if live != self.live {
                    log::info!("cluster: {} live instance(s): {:?}", live.len(), live);
                }
                self.live = live;
                true
            }
            Err(e) => {
                self.failed("cannot list the live instances", &e);
                false
            }
        }
    }

    /// Applies one change of the lease bucket; `true` when it may free a queue.
    fn seen(&mut self, change: Change) -> bool {
        match change {
            Change::Leased(queue, lease) => {
                let lost = lease.owner != self.me && self.owned.contains_key(&queue);
                self.view.insert(queue, lease);
                lost
            }
            Change::Freed(queue) => {
                self.view.remove(&queue);
                true
            }
        }
    }

    fn view<'a>(&'a self, queues: &'a BTreeSet<QueueId>) -> View<'a> {
        View {
            me: &self.me,
            live: &self.live,
            queues,
            leases: &self.view,
            owned: &self.owned,
        }
    }

    /// Carries out the plan: releases, then takes free queues up to the share.
    async fn rebalance(&mut self) {
        if self.frozen || self.started.elapsed() < self.period() * 2 {
            // Just started: let simultaneously started peers show up first.
            return;
        }
        let Some(buckets) = self.buckets.clone() else {
            return;
        };
        let queues = self.pollers.configured();
        let releases = self.view(&queues).releases();
        let mut changed = false;
        for (queue, revision, why) in releases.release {
            self.owned.remove(&queue);
            self.pollers.stop(&queue);
            changed = true;
            match why {
                Release::Lost => self.telemetry.emit(LeaseTaken { queue: &queue }),
                Release::Unconfigured | Release::Excess => {
                    self.telemetry.lease_changed(Released, 1);
                    buckets.release(&queue, revision).await;
                }
            }
        }
        if releases.want > 0 {
            changed |= self.take(&buckets, &queues, releases.want).await;
        }
        let enforce = plan::enforce(&self.owned, &self.pollers.running(), &queues);
        for queue in &enforce.stop {
            self.pollers.stop(queue);
        }
        if !enforce.start.is_empty() {
            self.pollers.start(&enforce.start);
        }
        if changed || !enforce.stop.is_empty() || !enforce.start.is_empty() {
            self.after_change();
        } else {
            // A reload may have changed the owned queues' intervals.
            self.pollers.changed();
        }
    }

    /// Takes up to `want` of the plan's candidates; `true` if any was taken.
    async fn take(&mut self, buckets: &Buckets, queues: &BTreeSet<QueueId>, want: usize) -> bool {
        // An owner is dead only when a direct read finds no heartbeat.
        for owner in self.view(queues).absent_owners() {
            if buckets.is_dead(&owner).await != Some(true) {
                self.live.insert(owner);
            }
        }
        let candidates = self.view(queues).candidates();
        log::debug!(
            "cluster: rebalance: want {want}, owned {}, {} candidate(s), {} live, view {}",
            self.owned.len(),
            candidates.len(),
            self.live.len(),
            self.view.len()
        );
        let mut taken = Vec::new();
        let mut seen_now = Vec::new();
        for (queue, known) in candidates {
            if taken.len() >= want {
                break;
            }
            match buckets.take(&self.me, &queue, known).await {
                Ok(revision) => taken.push((queue, revision)),
                // The watch had not shown this lease yet.
                Err(Taken(Some(lease))) => seen_now.push((queue, lease)),
                Err(Taken(None)) => {}
            }
        }
        if !seen_now.is_empty()
            && self
                .watch_since
                .is_some_and(|t| t.elapsed() > self.period() * 2)
        {
            // Leases exist that the watch never showed: it is stuck (seen
            // after a NATS restart). Watch anew next round.
            log::debug!("cluster: the lease watch missed leases; watching anew");
            self.watch = None;
        }
        for (queue, lease) in seen_now {
            if lease.owner == self.me && taken.len() < want {
                // Ours from before an outage: take it back.
                if let Ok(revision) = buckets.take(&self.me, &queue, Some(lease.revision)).await {
                    taken.push((queue, revision));
                    continue;
                }
            }
            self.view.insert(queue, lease);
        }
        self.telemetry.lease_changed(Acquired, taken.len());
        let any = !taken.is_empty();
        for (queue, revision) in taken {
            self.owned.insert(queue.clone(), revision);
            self.view.insert(
                queue,
                Lease {
                    owner: self.me.clone(),
                    revision,
                },
            );
        }
        any
    }

    /// After ownership changed: the rate demand follows the owned queues
    /// (their pollers), and the new share is logged.
    fn after_change(&self) {
        self.telemetry.set_cluster_owned(self.owned.len());
        self.pollers.changed();
        log::info!(
            "cluster: {} owns {} of {} queue(s) ({} live instance(s))",
            self.me,
            self.owned.len(),
            self.pollers.configured().len(),
            self.live.len()
        );
    }

    /// Clean stop: heartbeat first (the others' shares grow at once), then leases.
    async fn release_all(&mut self) {
        let Some(buckets) = &self.buckets else { return };
        buckets.forget(&self.me).await;
        let owned: Vec<(QueueId, u64)> = self.owned.drain().collect();
        let count = owned.len();
        futures_util::future::join_all(
            owned
                .iter()
                .map(|(queue, revision)| buckets.release(queue, *revision)),
        )
        .await;
        self.telemetry.lease_changed(Released, count);
        self.telemetry.set_cluster_owned(0);
        log::info!("cluster: {} released {count} lease(s)", self.me);
    }
}
