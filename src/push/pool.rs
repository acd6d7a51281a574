//! ChannelPool: the actor of the push source, under the supervisor. It
//! assigns the queues' topics to channel slots (1,000 per channel, as few
//! channels as fit), runs one task per slot (`channel.rs`), the periodic
//! reconcile snapshot and the wait-time polling, and keeps the gauges.
//! Its tasks are its own futures: when it stops, they stop.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use actix::prelude::*;
use tokio::sync::watch;
use tokio::time::Instant;

use super::assign::assign;
use super::channel::{self, Topics};
use super::plan::{ChannelBook, MAX_CHANNELS, TOPICS_PER_CHANNEL};
use super::rest::Rest;
use super::store::{Link, LiveStore};
use super::{estimates, reconcile};
use crate::config::WaitTime;
use crate::genesys::channels::Channel;
use crate::supervisor::ExitGuard;
use crate::telemetry::Telemetry;
use crate::throttle::Throttled;
use crate::{ExponentialBackoff, QueueId};

/// Timing of the push source. The defaults follow Genesys; tests shorten them.
#[derive(Clone, Debug)]
pub struct PushTuning {
    /// A channel silent this long is replaced (Genesys heartbeats every 30 s).
    pub watchdog: Duration,
    /// A ping is sent after this long without traffic.
    pub ping_idle: Duration,
    /// A channel's life is taken as at least this (a hostile `expires`
    /// cannot cause a replacement storm), and a released channel is reused
    /// only with this much life left.
    pub min_life: Duration,
    /// Between channel set-up attempts (full jitter).
    pub backoff: ExponentialBackoff,
    /// Channels this OAuth client may hold (Genesys: 20; a 21st evicts one).
    pub max_channels: usize,
    /// Topics per channel (Genesys: 1,000).
    pub topics_per_channel: usize,
    /// How long the queue set must be still before channels resubscribe.
    pub settle: Duration,
}

impl Default for PushTuning {
    fn default() -> Self {
        PushTuning {
            watchdog: Duration::from_secs(65),
            ping_idle: Duration::from_secs(30),
            min_life: Duration::from_secs(60),
            backoff: ExponentialBackoff::default(),
            max_channels: MAX_CHANNELS,
            topics_per_channel: TOPICS_PER_CHANNEL,
            settle: Duration::from_millis(200),
        }
    }
}

/// Everything the pool is built from (cloned into each incarnation; the
/// channel book outlives restarts, so a restart never forgets channels
/// that still exist at Genesys).
#[derive(Clone)]
pub(crate) struct PoolConfig {
    pub rest: Rest,
    pub store: Arc<LiveStore>,
    pub tuning: PushTuning,
    pub reconcile_interval: Duration,
    pub wait_time: WaitTime,
    /// The shortest event interval (the wait-time round).
    pub interval: Duration,
    pub book: Arc<Mutex<ChannelBook>>,
    pub released: Arc<Mutex<HashMap<String, Channel>>>,
}

/// What the pool's tasks share (one thread: `Rc`).
pub(crate) struct PoolShared {
    pub rest: Rest,
    pub store: Arc<LiveStore>,
    pub tuning: PushTuning,
    book: Arc<Mutex<ChannelBook>>,
    released: Arc<Mutex<HashMap<String, Channel>>>,
    /// Topics carried by each slot with a live socket.
    open: RefCell<BTreeMap<usize, usize>>,
    invalid: RefCell<Throttled>,
}

impl PoolShared {
    pub(crate) fn telemetry(&self) -> &Telemetry {
        &self.rest.telemetry
    }

    pub(crate) fn book(&self) -> MutexGuard<'_, ChannelBook> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn released(&self) -> MutexGuard<'_, HashMap<String, Channel>> {
        self.released.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn take_released(&self, id: &str) -> Option<Channel> {
        self.released().remove(id)
    }

    pub(crate) fn put_released(&self, channel: Channel) {
        self.released().insert(channel.id.clone(), channel);
    }

    /// `expires` on the monotonic clock, its distance from now clamped to
    /// `[min_life, 25 h]`.
    pub(crate) fn instant_of(&self, expires: SystemTime, now: Instant) -> Instant {
        let left = expires
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .clamp(self.tuning.min_life, Duration::from_secs(25 * 3600));
        now + left
    }

    pub(crate) fn slot_open(&self, slot: usize, topics: usize) {
        self.open.borrow_mut().insert(slot, topics);
        self.gauges();
    }

    pub(crate) fn slot_closed(&self, slot: usize) {
        self.open.borrow_mut().remove(&slot);
        self.gauges();
    }

    fn gauges(&self) {
        let open = self.open.borrow();
        let topics = open.values().sum();
        self.telemetry().set_push_channels(open.len(), topics);
        self.telemetry().set_push_fallback(self.store.on_fallback());
    }

    pub(crate) fn channel_down(&self, slot: usize, queues: usize, why: &str) {
        log::warn!(
            "push slot {slot}: channel down ({why}); its {queues} queue(s) are polled until it is back"
        );
    }

    pub(crate) fn invalid_frame(&self, channel: &str, error: &str) {
        if let Some(n) = self.invalid.borrow_mut().note(1) {
            log::warn!("push channel {channel}: {n} frame(s) dropped, the last: {error}");
        }
    }
}

/// Runs `task` until the budget closes (a clean stop): its sockets are
/// dropped then, before the simulator or the process goes, so a stop is
/// not reported as channels going down.
fn until_stop(
    limiter: &crate::ratelimit::RateLimiter,
    task: impl std::future::Future<Output = ()>,
) -> impl std::future::Future<Output = ()> {
    let limiter = limiter.clone();
    async move {
        tokio::select! {
            () = task => {}
            () = limiter.closed() => {}
        }
    }
}

/// Recompute the assignment (the queue set changed).
#[derive(Message)]
#[rtype(result = "()")]
struct Reassign;

/// The channel pool actor.
pub(crate) struct ChannelPool {
    config: PoolConfig,
    shared: Rc<PoolShared>,
    slots: Vec<watch::Sender<Topics>>,
    assignment: Vec<BTreeSet<QueueId>>,
    _guard: ExitGuard,
}

impl ChannelPool {
    pub(crate) fn new(config: PoolConfig, guard: ExitGuard) -> Self {
        let shared = Rc::new(PoolShared {
            rest: config.rest.clone(),
            store: config.store.clone(),
            tuning: config.tuning.clone(),
            book: config.book.clone(),
            released: config.released.clone(),
            open: RefCell::new(BTreeMap::new()),
            invalid: RefCell::new(Throttled::default()),
        });
        ChannelPool {
            config,
            shared,
            slots: Vec::new(),
            assignment: Vec::new(),
            _guard: guard,
        }
    }
}

impl Actor for ChannelPool {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Queue-set changes, settled, become one reassignment.
        let mut changes = self.config.store.subscribe();
        let settle = self.config.tuning.settle;
        let me = ctx.address();
        ctx.spawn(actix::fut::wrap_future(async move {
            while changes.changed().await.is_ok() {
                tokio::time::sleep(settle).await;
                changes.borrow_and_update();
                me.do_send(Reassign);
            }
        }));
        ctx.notify(Reassign);
        let limiter = &self.config.rest.limiter;
        ctx.spawn(actix::fut::wrap_future(until_stop(
            limiter,
            reconcile::run(self.shared.clone(), self.config.reconcile_interval),
        )));
        if self.config.wait_time == WaitTime::Active {
            ctx.spawn(actix::fut::wrap_future(until_stop(
                limiter,
                estimates::run(self.shared.clone(), self.config.interval),
            )));
        }
        ctx.run_interval(Duration::from_secs(1), |act, _| act.shared.gauges());
    }
}

impl Handler<Reassign> for ChannelPool {
    type Result = ();

    fn handle(&mut self, _: Reassign, ctx: &mut Context<Self>) {
        let store = &self.config.store;
        let wanted = store.ids();
        let tuning = &self.config.tuning;
        let next = assign(
            &self.assignment,
            &wanted,
            tuning.topics_per_channel,
            tuning.max_channels,
        );
        for (index, topics) in next.iter().enumerate() {
            match self.slots.get(index) {
                Some(sender) => {
                    if self.assignment.get(index) != Some(topics) {
                        sender.send_replace(Arc::new(topics.clone()));
                    }
                }
                None => {
                    let (sender, receiver) = watch::channel(Arc::new(topics.clone()));
                    self.slots.push(sender);
                    ctx.spawn(actix::fut::wrap_future(until_stop(
                        &self.config.rest.limiter,
                        channel::run(index, self.shared.clone(), receiver),
                    )));
                }
            }
        }
        let placed: BTreeSet<&QueueId> = next.iter().flatten().collect();
        let unplaced: Vec<QueueId> = wanted
            .iter()
            .filter(|id| !placed.contains(id))
            .cloned()
            .collect();
        if !unplaced.is_empty() {
            log::warn!(
                "push: {} queue(s) beyond {} channels of {} topics are polled instead",
                unplaced.len(),
                tuning.max_channels,
                tuning.topics_per_channel
            );
            store.set_link(&unplaced, Link::Fallback);
        }
        self.assignment = next;
    }
}
