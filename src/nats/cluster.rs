//! Cluster mode (`cluster:`): instances share the queue set through leases
//! in JetStream key-value buckets (SPEC section 7).
//!
//! - `queuewatch_instances`: one key per live instance (its id), put every
//!   `lease_ttl / 6`; the bucket's `max_age` (half of `lease_ttl`) removes
//!   the key of an instance that went silent. The live instances are the
//!   keys there.
//! - `queuewatch_leases`: one key per queue (its id) whose value is the
//!   owning instance. A lease is valid while its owner is live, so leases
//!   need no renewal: only heartbeats are written periodically. Taking a
//!   lease is a compare-and-set (create if absent, update at the seen
//!   revision if the owner is gone), so two instances never both win.
//! - Each instance aims at `ceil(queues / live instances)` leases: it releases
//!   the excess (stopping the poller first) and takes free queues or those
//!   of dead instances up to it. Rendezvous hashing of (instance, queue)
//!   orders the preferences, so instances mostly reach for different queues.
//! - An instance that cannot write its heartbeat for `lease_ttl / 3` stops
//!   every poller (its leases may move soon) and takes them back later if
//!   nobody else did.
//! - A clean stop deletes the heartbeat, then the leases, after the pollers
//!   drained: the others see the deletions at once (they watch the lease
//!   bucket) and take over.
//! - An unsupported server (below 2.10, or JetStream off) fails the start
//!   when it answers then, and is fatal for the process when it is found
//!   later (once connected); so are JetStream requests that keep failing
//!   with errors (not timeouts) for [`super::JETSTREAM_FATAL_AFTER`] while
//!   the connection is up.
//!
//! (Past 400 lines: the ownership decision, the key-value I/O and the
//! manager still share this file; the architecture issue splits them into
//! a pure plan, a KV adapter and the actor.)

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use actix::Recipient;
use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::actors::Fatal;
use crate::config::ClusterSettings;
use crate::runtime::{poller_specs, Handle, StartError};
use crate::telemetry::LeaseChange::{self, Acquired, Lost, Released};
use crate::telemetry::LeaseTaken;

/// The bucket of queue leases.
pub(crate) const LEASES_BUCKET: &str = "queuewatch_leases";
/// The bucket of instance heartbeats.
pub(crate) const INSTANCES_BUCKET: &str = "queuewatch_instances";
/// Events of the lease bucket arriving together are handled together.
const DEBOUNCE: Duration = Duration::from_millis(50);
/// At most one log line per this period for a failing NATS.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// This instance's id: the setting, or `<hostname>-<pid>`.
pub(crate) fn instance_id(settings: &ClusterSettings) -> String {
    if let Some(id) = &settings.instance_id {
        return id.clone();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "queuewatch".into());
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let host = if host.is_empty() {
        "queuewatch".into()
    } else {
        host
    };
    format!("{host}-{}", std::process::id())
}

/// An epoch shared by every instance (a wall-clock grid), so that a queue
/// handed over keeps its tick times: the new owner polls one interval after
/// the old one did, not sooner. `None` when the intervals have no common
/// period of a day or less (then each instance keeps its own epoch).
pub(crate) fn shared_epoch(intervals: impl IntoIterator<Item = Duration>) -> Option<Instant> {
    fn gcd(a: u128, b: u128) -> u128 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    const DAY_MS: u128 = 86_400_000;
    let mut period: u128 = 1;
    for interval in intervals {
        let ms = interval.as_millis().max(1);
        period = period / gcd(period, ms) * ms;
        if period > DAY_MS {
            return None;
        }
    }
    let since_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis();
    let offset = Duration::from_millis(u64::try_from(since_unix % period).ok()?);
    Instant::now().checked_sub(offset)
}

enum Command {
    /// Take and release nothing more (shutdown has begun).
    Freeze(oneshot::Sender<()>),
    /// Delete the heartbeat and every lease held, then end.
    Release(oneshot::Sender<()>),
}

/// The running lease manager, as the [`Handle`] holds it. Dropping it ends
/// the manager without releasing anything (as a crash would).
pub(crate) struct Cluster {
    commands: mpsc::Sender<Command>,
}

impl Cluster {
    /// Starts the lease manager of `handle`. Connects in the background: an
    /// unreachable NATS delays ownership, it does not fail the start; a
    /// server that answers but is not supported does ([`StartError::Runtime`]).
    /// `fatal` receives what is fatal later.
    pub(crate) async fn start(
        handle: Handle,
        settings: &ClusterSettings,
        tls: &Arc<rustls::ClientConfig>,
        fatal: Recipient<Fatal>,
    ) -> Result<Cluster, StartError> {
        let me = instance_id(settings);
        super::check_at_start(&settings.nats_url, tls)
            .await
            .map_err(|why| StartError::Runtime(format!("cluster.nats_url: {why}")))?;
        let client = super::connect(&settings.nats_url, &format!("cluster {me}"), tls)
            .await
            .map_err(|e| StartError::Config(format!("cluster.nats_url: {e}")))?;
        let (commands, receiver) = mpsc::channel(4);
        let ttl = settings.lease_ttl;
        log::info!("cluster: instance {me}, lease_ttl {ttl:?}");
        let telemetry = handle.telemetry();
        telemetry.set_cluster_owned(0);
        for &change in LeaseChange::ALL {
            telemetry.lease_changed(change, 0);
        }
        let manager = Manager {
            handle,
            me,
            ttl,
            client,
            url: settings.nats_url.clone(),
            fatal,
            fatal_sent: false,
            jetstream: super::Persistence::new(super::JETSTREAM_FATAL_AFTER),
            stores: None,
            watch: None,
            watch_since: None,
            view: HashMap::new(),
            live: BTreeSet::new(),
            owned: HashMap::new(),
            last_heartbeat: None,
            started: Instant::now(),
            frozen: false,
            last_log: None,
        };
        actix_rt::spawn(manager.run(receiver));
        Ok(Cluster { commands })
    }

    /// Stops taking and releasing queues (the start of a clean shutdown).
    pub(crate) async fn freeze(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Freeze(tx)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
    }

    /// Releases every lease at once (after the pollers drained).
    pub(crate) async fn release(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Release(tx)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
    }
}

struct Stores {
    leases: kv::Store,
    instances: kv::Store,
}

struct Manager {
    handle: Handle,
    me: String,
    ttl: Duration,
    client: async_nats::Client,
    /// `cluster.nats_url`; only ever shown [`super::redacted`].
    url: String,
    /// Where a fatal problem goes (the process exits 1), and whether it went.
    fatal: Recipient<Fatal>,
    fatal_sent: bool,
    /// JetStream requests failing in a row.
    jetstream: super::Persistence,
    stores: Option<Stores>,
    /// Changes of the lease bucket, and since when.
    watch: Option<kv::Watch>,
    watch_since: Option<Instant>,
    /// The lease bucket as last seen: queue id -> (owner, revision).
    view: HashMap<String, (String, u64)>,
    /// Live instances (keys of the instance bucket), this one included.
    live: BTreeSet<String>,
    /// Leases held: queue id -> revision written.
    owned: HashMap<String, u64>,
    last_heartbeat: Option<Instant>,
    started: Instant,
    frozen: bool,
    last_log: Option<Instant>,
}

impl Manager {
    fn period(&self) -> Duration {
        (self.ttl / 6).max(Duration::from_millis(100))
    }

    /// How long a NATS request may take: well inside the lease period.
    fn request_timeout(&self) -> Duration {
        (self.ttl / 4).max(Duration::from_millis(500))
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
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
                entry = next_entry(&mut self.watch) => match entry {
                    Some(entry) => {
                        if self.seen(entry) && pending.is_none() {
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
        let now = Instant::now();
        if self
            .last_log
            .is_none_or(|t| now.duration_since(t) >= LOG_EVERY)
        {
            self.last_log = Some(now);
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

    /// A JetStream request failed with `error`: fatal once such failures
    /// (answers, not timeouts) have lasted long enough while connected.
    fn jetstream_failed(&mut self, error: &str) {
        if super::is_timeout(error) {
            return;
        }
        let connected = super::connected(&self.client);
        if let Some(lasted) = self.jetstream.failed(connected, Instant::now()) {
            let lasted = Duration::from_secs(lasted.as_secs());
            self.fatal(format!(
                "NATS server {} at {} has answered every JetStream request with an error \
                 for {}: {error}",
                self.client.server_info().version,
                super::redacted(&self.url),
                humantime::format_duration(lasted)
            ));
        }
    }

    /// One period: heartbeat, live instances, the watch, then balance.
    async fn round(&mut self) {
        if let Some(why) = super::unsupported_now(&self.client, &self.url) {
            self.fatal(why);
        }
        if self.stores.is_none() {
            match tokio::time::timeout(self.request_timeout(), self.open_buckets()).await {
                Ok(Ok(stores)) => self.stores = Some(stores),
                Ok(Err(e)) => {
                    self.jetstream_failed(&e);
                    self.fence_if_silent();
                    return self.warn(&format!("lease buckets not ready: {e}"));
                }
                Err(_) => {
                    self.fence_if_silent();
                    return self.warn("lease buckets not ready: NATS does not answer");
                }
            }
        }
        if !self.heartbeat().await {
            // Open the buckets again next time: a server that lost its
            // store has them no more.
            self.stores = None;
            self.watch = None;
            self.fence_if_silent();
            return;
        }
        if self.watch.is_none() {
            let Some(stores) = &self.stores else { return };
            match tokio::time::timeout(self.request_timeout(), stores.leases.watch_all()).await {
                Ok(Ok(watch)) => {
                    self.view.clear();
                    self.watch = Some(watch);
                    self.watch_since = Some(Instant::now());
                }
                Ok(Err(e)) => {
                    self.jetstream_failed(&e.to_string());
                    return self.warn(&format!("cannot watch the lease bucket: {e}"));
                }
                Err(_) => return self.warn("cannot watch the lease bucket: NATS does not answer"),
            }
        }
        if self.refresh_live().await {
            self.jetstream.succeeded();
            self.rebalance().await;
        }
    }

    async fn open_buckets(&self) -> Result<Stores, String> {
        let js = jetstream::new(self.client.clone());
        let leases = bucket(&js, LEASES_BUCKET, Duration::ZERO).await?;
        // Heartbeats vanish half a lease_ttl after the last write: with the
        // check period and the takeover on top, a dead instance's queues
        // move well within lease_ttl (then poll at their next slot).
        let instances = bucket(&js, INSTANCES_BUCKET, self.ttl / 2).await?;
        Ok(Stores { leases, instances })
    }

    /// Writes the heartbeat.
    async fn heartbeat(&mut self) -> bool {
        let Some(stores) = &self.stores else {
            return false;
        };
        let put = stores.instances.put(&self.me, "live".into());
        let timeout = (self.ttl / 8).max(Duration::from_millis(250));
        match tokio::time::timeout(timeout, put).await {
            Ok(Ok(_)) => {
                self.last_heartbeat = Some(Instant::now());
                true
            }
            Ok(Err(e)) => {
                self.jetstream_failed(&e.to_string());
                self.warn(&format!("cannot write the heartbeat: {e}"));
                false
            }
            Err(_) => {
                self.warn("cannot write the heartbeat (NATS unreachable?)");
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
            let owned: Vec<String> = self.owned.drain().map(|(q, _)| q).collect();
            self.handle.telemetry().lease_changed(Lost, owned.len());
            for queue in owned {
                self.handle.stop_poller(&queue);
            }
            self.after_change();
        }
    }

    /// Reads the live instances. `false` when they cannot be known now.
    async fn refresh_live(&mut self) -> bool {
        let Some(stores) = &self.stores else {
            return false;
        };
        let list = async {
            let mut keys = stores.instances.keys().await.map_err(|e| e.to_string())?;
            let mut live = BTreeSet::new();
            while let Some(key) = keys.next().await {
                live.insert(key.map_err(|e| e.to_string())?);
            }
            Ok::<_, String>(live)
        };
        match tokio::time::timeout(self.request_timeout(), list).await {
            Ok(Ok(mut live)) => {
                live.insert(self.me.clone());
                if live != self.live {
                    log::info!("cluster: {} live instance(s): {:?}", live.len(), live);
                }
                self.live = live;
                true
            }
            Ok(Err(e)) => {
                self.jetstream_failed(&e);
                self.warn(&format!("cannot list the live instances: {e}"));
                false
            }
            Err(_) => {
                self.warn("cannot list the live instances: NATS does not answer");
                false
            }
        }
    }

    /// Applies one change of the lease bucket; `true` when it may free a queue.
    fn seen(&mut self, entry: kv::Entry) -> bool {
        match entry.operation {
            kv::Operation::Put => {
                let owner = String::from_utf8_lossy(&entry.value).into_owned();
                let lost = owner != self.me && self.owned.contains_key(&entry.key);
                self.view.insert(entry.key, (owner, entry.revision));
                lost
            }
            kv::Operation::Delete | kv::Operation::Purge => {
                self.view.remove(&entry.key);
                true
            }
        }
    }

    /// Releases the excess and takes free queues up to the fair share.
    async fn rebalance(&mut self) {
        if self.frozen || self.started.elapsed() < self.period() * 2 {
            // Just started: let simultaneously started peers show up first.
            return;
        }
        let Some(stores) = &self.stores else { return };
        let (leases, instances) = (stores.leases.clone(), stores.instances.clone());
        let queues: BTreeSet<String> = self
            .handle
            .settings()
            .queues
            .iter()
            .map(|q| q.id.clone())
            .collect();
        let mut changed = false;

        // Leases someone else now holds, and queues no longer configured.
        let lost: Vec<String> = self
            .owned
            .keys()
            .filter(|q| {
                !queues.contains(*q)
                    || self
                        .view
                        .get(*q)
                        .is_some_and(|(owner, _)| *owner != self.me)
            })
            .cloned()
            .collect();
        for queue in lost {
            if let Some(revision) = self.owned.remove(&queue) {
                self.handle.stop_poller(&queue);
                changed = true;
                if !queues.contains(&queue) {
                    self.handle.telemetry().lease_changed(Released, 1);
                    let delete = leases.delete_expect_revision(&queue, Some(revision));
                    let _ = tokio::time::timeout(self.request_timeout(), delete).await;
                } else {
                    self.handle.telemetry().emit(LeaseTaken { queue: &queue });
                }
            }
        }

        let live = self.live.len().max(1);
        let target = queues.len().div_ceil(live);
        if self.owned.len() > target {
            let mut mine: Vec<String> = self.owned.keys().cloned().collect();
            mine.sort_by_key(|q| preference(&self.me, q));
            let excess = self.owned.len() - target;
            for queue in mine.into_iter().take(excess) {
                if let Some(revision) = self.owned.remove(&queue) {
                    self.handle.stop_poller(&queue);
                    changed = true;
                    self.handle.telemetry().lease_changed(Released, 1);
                    let delete = leases.delete_expect_revision(&queue, Some(revision));
                    let _ = tokio::time::timeout(self.request_timeout(), delete).await;
                }
            }
        } else if self.owned.len() < target {
            // A listing of the instances can miss a heartbeat being replaced:
            // an owner is dead only when a direct read finds no heartbeat.
            let absent: BTreeSet<String> = queues
                .iter()
                .filter(|q| !self.owned.contains_key(*q))
                .filter_map(|q| self.view.get(q))
                .map(|(owner, _)| owner.clone())
                .filter(|owner| !self.live.contains(owner))
                .collect();
            for owner in absent {
                let read = instances.entry(owner.as_str());
                let dead = match tokio::time::timeout(self.request_timeout(), read).await {
                    Ok(Ok(None)) => true,
                    Ok(Ok(Some(entry))) => entry.operation != kv::Operation::Put,
                    _ => false, // cannot tell: leave its queues alone
                };
                if !dead {
                    self.live.insert(owner);
                }
            }
            let mut free: Vec<(u64, &String)> = queues
                .iter()
                .filter(|q| !self.owned.contains_key(*q))
                .filter(|q| match self.view.get(*q) {
                    None => true,
                    Some((owner, _)) => *owner == self.me || !self.live.contains(owner),
                })
                .map(|q| (preference(&self.me, q), q))
                .collect();
            free.sort_unstable_by(|a, b| b.cmp(a));
            log::debug!(
                "cluster: rebalance: target {target}, owned {}, {} candidate(s), {} live, view {}",
                self.owned.len(),
                free.len(),
                self.live.len(),
                self.view.len()
            );
            let want = target - self.owned.len();
            let mut taken = Vec::new();
            let mut seen_now = Vec::new();
            for (_, queue) in free {
                if taken.len() >= want {
                    break;
                }
                let known = self.view.get(queue).map(|(_, revision)| *revision);
                match self.take(&leases, queue, known).await {
                    Ok(revision) => taken.push((queue.clone(), revision)),
                    Err(Some(seen)) => {
                        // The watch had not shown this lease yet.
                        seen_now.push((queue.clone(), seen));
                    }
                    Err(None) => {}
                }
            }
            if !seen_now.is_empty()
                && self
                    .watch_since
                    .is_some_and(|t| t.elapsed() > self.period() * 2)
            {
                // Leases exist that the watch never showed: it is stuck
                // (seen after a NATS restart). Watch anew next round.
                log::debug!("cluster: the lease watch missed leases; watching anew");
                self.watch = None;
            }
            for (queue, (owner, revision)) in seen_now {
                if owner == self.me && taken.len() < want {
                    // Ours from before an outage: take it back.
                    if let Ok(revision) = self.take(&leases, &queue, Some(revision)).await {
                        taken.push((queue, revision));
                        continue;
                    }
                }
                self.view.insert(queue, (owner, revision));
            }
            self.handle.telemetry().lease_changed(Acquired, taken.len());
            for (queue, revision) in taken {
                self.owned.insert(queue.clone(), revision);
                self.view.insert(queue, (self.me.clone(), revision));
                changed = true;
            }
        }
        if self.enforce(&queues) || changed {
            self.after_change();
        } else {
            // A reload may have changed the owned queues' intervals.
            self.handle.rebudget();
        }
    }

    /// Takes the lease of `queue`: a create when no lease is known, else an
    /// update at the `known` revision. On failure, the lease as read now
    /// (owner, revision) when the watch had not shown it.
    async fn take(
        &self,
        leases: &kv::Store,
        queue: &str,
        known: Option<u64>,
    ) -> Result<u64, Option<(String, u64)>> {
        let value = bytes_of(&self.me);
        let write = async {
            match known {
                Some(revision) => leases.update(queue, value, revision).await.map_err(|e| {
                    log::debug!("cluster: cannot take queue {queue}: {e}");
                    None
                }),
                None => match leases.create(queue, value).await {
                    Ok(revision) => Ok(revision),
                    Err(e) => {
                        log::debug!("cluster: cannot take queue {queue}: {e}");
                        match leases.entry(queue).await {
                            Ok(Some(entry)) if entry.operation == kv::Operation::Put => {
                                let owner = String::from_utf8_lossy(&entry.value).into_owned();
                                Err(Some((owner, entry.revision)))
                            }
                            _ => Err(None),
                        }
                    }
                },
            }
        };
        tokio::time::timeout(self.request_timeout(), write)
            .await
            .unwrap_or(Err(None))
    }

    /// Runs a poller for every owned queue and for no other. `true` if any changed.
    fn enforce(&mut self, queues: &BTreeSet<String>) -> bool {
        let running: BTreeSet<String> = {
            let pollers = self
                .handle
                .inner
                .pollers
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            pollers.keys().cloned().collect()
        };
        let mut changed = false;
        for queue in running.iter().filter(|q| !self.owned.contains_key(*q)) {
            self.handle.stop_poller(queue);
            changed = true;
        }
        let missing: BTreeSet<&String> = self
            .owned
            .keys()
            .filter(|q| !running.contains(*q) && queues.contains(*q))
            .collect();
        if !missing.is_empty() {
            let settings = self.handle.settings();
            for spec in poller_specs(&settings) {
                if missing.contains(&spec.queue_id.to_string()) {
                    if let Some(sim) = self.handle.simulator() {
                        sim.add_queue(&spec.queue_id);
                    }
                    self.handle.start_poller(spec);
                    changed = true;
                }
            }
        }
        changed
    }

    /// After ownership changed: the rate demand follows the owned queues
    /// (their pollers), and a changed stretch is logged.
    fn after_change(&self) {
        self.handle.telemetry().set_cluster_owned(self.owned.len());
        self.handle.rebudget();
        let settings = self.handle.settings();
        log::info!(
            "cluster: {} owns {} of {} queue(s) ({} live instance(s))",
            self.me,
            self.owned.len(),
            settings.queues.len(),
            self.live.len()
        );
    }

    /// Clean stop: heartbeat first (the others' shares grow at once), then leases.
    async fn release_all(&mut self) {
        let Some(stores) = &self.stores else { return };
        let timeout = self.request_timeout();
        let _ = tokio::time::timeout(timeout, stores.instances.delete(&self.me)).await;
        let owned: Vec<(String, u64)> = self.owned.drain().collect();
        let count = owned.len();
        let deletes = owned.iter().map(|(queue, revision)| {
            let leases = stores.leases.clone();
            async move {
                let delete = leases.delete_expect_revision(queue, Some(*revision));
                let _ = tokio::time::timeout(timeout, delete).await;
            }
        });
        futures_util::future::join_all(deletes).await;
        self.handle.telemetry().lease_changed(Released, count);
        self.handle.telemetry().set_cluster_owned(0);
        log::info!("cluster: {} released {count} lease(s)", self.me);
    }
}

/// Gets a key-value bucket, creating it if missing.
async fn bucket(
    js: &jetstream::Context,
    name: &str,
    max_age: Duration,
) -> Result<kv::Store, String> {
    match js.get_key_value(name).await {
        Ok(store) => Ok(store),
        Err(_) => js
            .create_key_value(kv::Config {
                bucket: name.to_owned(),
                history: 1,
                max_age,
                ..kv::Config::default()
            })
            .await
            .map_err(|e| e.to_string()),
    }
}

/// The next change of the lease bucket; pending forever without a watch,
/// `None` when the watch broke.
async fn next_entry(watch: &mut Option<kv::Watch>) -> Option<kv::Entry> {
    match watch {
        Some(watch) => match watch.next().await {
            Some(Ok(entry)) => Some(entry),
            Some(Err(e)) => {
                log::debug!("cluster: the lease watch failed: {e}");
                None
            }
            None => {
                log::debug!("cluster: the lease watch ended");
                None
            }
        },
        None => std::future::pending().await,
    }
}

/// Rendezvous weight of (instance, queue): each instance prefers its own queues.
fn preference(instance: &str, queue: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in instance.bytes().chain([0]).chain(queue.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // A final mix: FNV's low bits are weak for short inputs.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^ (hash >> 33)
}

fn bytes_of(text: &str) -> actix_web::web::Bytes {
    actix_web::web::Bytes::copy_from_slice(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_instance_ids_are_valid() {
        let id = instance_id(&ClusterSettings::default());
        assert!(id.ends_with(&format!("-{}", std::process::id())), "{id}");
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')));
    }

    #[test]
    fn the_shared_epoch_lies_on_the_wall_clock_grid() {
        let epoch = shared_epoch([Duration::from_secs(5), Duration::from_secs(15)]).unwrap();
        let since = Instant::now().duration_since(epoch);
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let drift = (unix.as_millis() % 15_000) as i128 - since.as_millis() as i128;
        assert!(drift.abs() <= 5 || drift.abs() >= 14_995, "{drift}");
        assert!(
            shared_epoch([Duration::from_millis(86_400_001), Duration::from_secs(7)]).is_none()
        );
    }

    fn settings(url: &str) -> crate::config::Settings {
        let mut settings =
            crate::config::Settings::for_queues(["c1a50000-0000-4000-8000-000000000001"]);
        settings.http.bind = None;
        settings.cluster = Some(ClusterSettings {
            nats_url: url.into(),
            instance_id: Some("unit".into()),
            lease_ttl: Duration::from_secs(3),
        });
        settings
    }

    #[actix_rt::test]
    async fn jetstream_errors_that_persist_are_fatal_for_the_process() {
        // A 2.10 server with JetStream on whose account may not use it: every
        // request is answered with an error, while the connection is up.
        let url =
            super::super::fake::start("2.10.0", true, super::super::fake::JETSTREAM_NOT_ENABLED);
        let started = std::time::Instant::now();
        let handle = crate::QueueWatch::new(settings(&url))
            .start()
            .await
            .expect("a supported server starts");
        let reason = tokio::time::timeout(Duration::from_secs(15), handle.fatal())
            .await
            .expect("fatal within 15 s");
        let took = started.elapsed();
        handle.shutdown().await;
        assert!(took >= super::super::JETSTREAM_FATAL_AFTER, "{took:?}");
        assert!(
            reason.contains("jetstream not enabled for account") && reason.contains("2.10.0"),
            "{reason}"
        );
        let metrics = handle.telemetry().encode();
        assert!(
            metrics.contains("queuewatch_cluster_owned_queues 0\n"),
            "{metrics}"
        );
    }

    #[test]
    fn preferences_differ_between_instances() {
        let queues: Vec<String> = (0..60).map(|i| format!("q{i}")).collect();
        let top = |me: &str| {
            let mut q = queues.clone();
            q.sort_by_key(|q| std::cmp::Reverse(preference(me, q)));
            q.truncate(20);
            q
        };
        let (a, b) = (top("a-1"), top("b-2"));
        let common = a.iter().filter(|q| b.contains(q)).count();
        assert!(common < 15, "{common}");
    }
}
