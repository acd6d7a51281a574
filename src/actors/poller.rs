//! PollerActor: one per queue. Ticks on a stable per-queue phase, never
//! overlaps cycles, skips (never bursts) missed ticks, slows down a queue
//! that answers 403/404, and ends every cycle in exactly one event.
//!
//! With `poll.source: notifications` a tick makes no request: it emits the
//! freshest pushed data (`push::tick`), unless the queue's channel is down,
//! when it polls observations on its turn of the budget (`push::pace`).
//!
//! (Past 400 lines: the actor, its messages and the one-event-per-cycle
//! guard belong together; the cycle itself is `cycle.rs`.)

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::prelude::*;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::batcher::ObservationsBatcher;
use super::metrics::{MetricsActor, Record};
use super::token::{TokenActor, TokenBoard};
use crate::actors::cycle::{run_cycle, CycleContext, CycleResult, Progress};
use crate::callbacks::fanout::{emit, CallbackActor};
use crate::config::{Source, Thresholds};
use crate::error::{ErrorKind, PollError};
use crate::event::{new_event_id, timestamp_of, Event, PollEvent, PollFailedEvent};
use crate::genesys::ClientOptions;
use crate::push::store::{Link, LiveStore, QueueCell};
use crate::ratelimit::RateLimiter;
use crate::retry::RetryPolicy;
use crate::schedule;
use crate::state::QueueState;
use crate::supervisor::{ExitGuard, Slot};
use crate::telemetry::Telemetry;
use crate::tracking::CycleReport;
use crate::QueueId;

/// A queue that 403s or 404s is polled at most this rarely (unless its own
/// interval is longer).
pub const MAX_SLOWDOWN_INTERVAL: Duration = Duration::from_secs(300);

/// What one poller polls.
#[derive(Debug, Clone, PartialEq)]
pub struct PollerSpec {
    /// Genesys queue id (a validated UUID).
    pub queue_id: QueueId,
    /// Label.
    pub name: Option<String>,
    /// The data source.
    pub source: Source,
    /// Time between cycle starts, as configured (stretched at run time when
    /// the demand exceeds the rate budget).
    pub interval: Duration,
    /// Where in the interval the queue ticks, as a share in `[0, 1)`.
    pub phase: f64,
    /// The queue's effective thresholds.
    pub thresholds: Thresholds,
}

/// What every poller shares: clients, budget, actors' slots, the clock grid.
#[derive(Clone)]
pub struct PollerShared {
    /// Where Genesys is.
    pub options: Arc<ClientOptions>,
    /// The token actor.
    pub tokens: Slot<Addr<TokenActor>>,
    /// The token it holds, read without a message.
    pub token_board: TokenBoard,
    /// The token's rate budget.
    pub limiter: RateLimiter,
    /// Retries within a cycle.
    pub retry: RetryPolicy,
    /// Metrics.
    pub telemetry: Telemetry,
    /// The tracking matrices.
    pub metrics: Slot<Addr<MetricsActor>>,
    /// The event fan-out.
    pub callbacks: Slot<Addr<CallbackActor>>,
    /// The shared fetcher of the observations source.
    pub batcher: Slot<Addr<ObservationsBatcher>>,
    /// The origin of every queue's tick grid.
    pub epoch: Instant,
    /// Turns true when in-flight cycles must be cancelled (shutdown).
    pub cancel: watch::Receiver<bool>,
    /// The push source's data (`poll.source: notifications`).
    pub push: Option<Arc<LiveStore>>,
}

/// Stop ticking; resolve once no cycle is in flight, then stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

/// Why the process is ending: the error of every queue's last event.
#[derive(Debug, Clone)]
pub struct Farewell {
    /// `auth_failed` or `cancelled`.
    pub kind: ErrorKind,
    /// The reason, for the event's `detail`.
    pub detail: String,
}

/// [`Drain`], then, unless the queue's last event already carried the
/// farewell's error, one event that says why polling ends (a fatal stop).
#[derive(Message)]
#[rtype(result = "()")]
pub struct DrainWithFarewell(pub Farewell);

/// The poller actor.
pub struct PollerActor {
    spec: Arc<PollerSpec>,
    shared: PollerShared,
    cycle: Rc<CycleContext>,
    busy: bool,
    slowdown: u32,
    draining: bool,
    drain_waiters: Vec<oneshot::Sender<()>>,
    /// Emitted once drained, at a fatal stop.
    farewell: Option<Farewell>,
    /// The error of the last event emitted (None: a success, or none yet).
    last_error: Option<ErrorKind>,
    tick: Option<SpawnHandle>,
    /// When the pending tick is due.
    due: Instant,
    /// The queue's pushed data (`notifications` only).
    cell: Option<Arc<QueueCell>>,
    _guard: ExitGuard,
}

impl PollerActor {
    /// A poller for `spec`.
    pub fn new(spec: Arc<PollerSpec>, shared: PollerShared, guard: ExitGuard) -> Self {
        let push = spec.source == Source::Notifications;
        let cell = (shared.push.as_ref())
            .filter(|_| push)
            .map(|store| store.join(&spec.queue_id));
        // A queue of the push source whose channel is down polls observations.
        let source = if push {
            Source::Observations
        } else {
            spec.source
        };
        let cycle = Rc::new(CycleContext {
            queue_id: spec.queue_id.clone(),
            source,
            url: CycleContext::url_for(&shared.options, source, &spec.queue_id),
            options: shared.options.clone(),
            tokens: shared.tokens.clone(),
            token_board: shared.token_board.clone(),
            limiter: shared.limiter.clone(),
            retry: shared.retry,
            telemetry: shared.telemetry.clone(),
            batcher: shared.batcher.clone(),
        });
        PollerActor {
            spec,
            shared,
            cycle,
            busy: false,
            slowdown: 0,
            draining: false,
            drain_waiters: Vec::new(),
            farewell: None,
            last_error: None,
            tick: None,
            due: Instant::now(),
            cell,
            _guard: guard,
        }
    }

    /// The interval in force: stretched to fit the rate budget, and doubled
    /// per 403/404 in a row up to the cap.
    fn effective_interval(&self) -> Duration {
        let stretched = match self.cell {
            // A push tick costs no request: never stretched.
            Some(_) => self.spec.interval,
            None => self.spec.interval.mul_f64(self.shared.limiter.stretch()),
        };
        let cap = MAX_SLOWDOWN_INTERVAL.max(stretched);
        let factor = 1u32 << self.slowdown.min(16);
        stretched.saturating_mul(factor).min(cap)
    }

    fn schedule_next(&mut self, ctx: &mut Context<Self>) {
        let interval = self.effective_interval();
        let now = Instant::now();
        let phase = schedule::offset(interval, self.spec.phase);
        let elapsed = now.duration_since(self.shared.epoch);
        let next = self.shared.epoch
            + schedule::next_tick(elapsed, interval, phase, schedule::grain(interval));
        self.due = next;
        self.tick = Some(ctx.run_later(next - now, |act, ctx| act.on_tick(ctx)));
    }

    fn on_tick(&mut self, ctx: &mut Context<Self>) {
        self.tick = None;
        self.shared
            .telemetry
            .tick_late(Instant::now().duration_since(self.due));
        if self.draining {
            return;
        }
        let this_tick = self.due;
        self.schedule_next(ctx);
        if self.busy {
            // The previous cycle still runs: skip this tick, never queue it up.
            self.shared.telemetry.tick_skipped();
            return;
        }
        match self.cell.clone() {
            Some(cell) => self.push_tick(ctx, &cell, this_tick),
            None => self.start_cycle(ctx),
        }
    }

    /// A tick of the push source: the freshest data, or a fallback poll on
    /// the queue's turn while its channel is down.
    fn push_tick(&mut self, ctx: &mut Context<Self>, cell: &QueueCell, this_tick: Instant) {
        let view = cell.view();
        if view.link == Link::Fallback {
            let store = self.shared.push.as_deref();
            let on_fallback = store.map_or(1, LiveStore::on_fallback);
            let rate = self.shared.limiter.rate_per_minute();
            let interval = self.effective_interval();
            let every = crate::push::pace::fallback_every(on_fallback, interval, rate);
            let tick = crate::push::pace::tick_number(
                this_tick.saturating_duration_since(self.shared.epoch),
                interval,
            );
            if crate::push::pace::is_turn(tick, crate::push::pace::slot_of(self.spec.phase), every)
            {
                self.start_cycle(ctx);
                return;
            }
        }
        let now = Instant::now();
        let (event, report) = crate::push::tick::event(&self.spec, &view, now, SystemTime::now());
        let telemetry = &self.shared.telemetry;
        telemetry.tick_succeeded();
        if let Some(age) = view.updated_at.map(|at| now.saturating_duration_since(at)) {
            telemetry.push_data_age(age);
        }
        telemetry.queue_sample(&self.spec.queue_id, &view.sample());
        self.last_error = None;
        let callbacks = &self.shared.callbacks;
        self.shared.metrics.with(|metrics| match metrics {
            Some(metrics) => metrics.do_send(Record::new(report, event, callbacks.clone())),
            None => emit(callbacks, event),
        });
    }

    fn start_cycle(&mut self, ctx: &mut Context<Self>) {
        self.busy = true;
        let progress = Rc::new(Progress::default());
        let mut cancel = self.shared.cancel.clone();
        // The next tick is already scheduled: the cycle never waits past it
        // (nor past the tick it moves to when the stretch grows).
        let deadline = Some(crate::ratelimit::Deadline {
            next_tick: self.due,
            started: Instant::now(),
            interval: self.spec.interval,
        });
        let cycle = run_cycle(
            self.cycle.clone(),
            progress.clone(),
            deadline,
            fastrand::Rng::new(),
        );
        let unfinished = Unfinished {
            spec: self.spec.clone(),
            callbacks: self.shared.callbacks.clone(),
            progress: progress.clone(),
            armed: true,
        };
        let work = async move {
            tokio::select! {
                result = cycle => result,
                () = cancelled(&mut cancel) => CycleResult {
                    result: Err(PollError::new(
                        ErrorKind::Cancelled,
                        "shutdown: the cycle was still running after the grace period",
                    )),
                    latency: None,
                    received: None,
                },
            }
        };
        ctx.spawn(
            work.into_actor(self)
                .then(move |result, act, _| {
                    let mut unfinished = unfinished;
                    unfinished.armed = false;
                    act.finish(result, &progress)
                })
                .map(|(), act, ctx| {
                    act.busy = false;
                    if act.draining {
                        act.drained(ctx);
                    }
                }),
        );
    }

    /// Records the cycle, then emits its one event.
    fn finish(
        &mut self,
        result: CycleResult,
        progress: &Progress,
    ) -> impl ActorFuture<Self, Output = ()> + use<> {
        let attempts = progress.attempts.get().max(1);
        let telemetry = &self.shared.telemetry;
        match &result.result {
            Ok(sample) => {
                telemetry.poll_succeeded(result.latency.unwrap_or_default().as_secs_f64());
                telemetry.queue_sample(&self.spec.queue_id, sample);
                self.slowdown = 0;
                if let (Some(cell), Some(at)) = (&self.cell, result.received) {
                    cell.polled(sample.clone(), at);
                }
            }
            Err(error) => {
                telemetry.poll_failed(error.kind);
                if matches!(error.kind, ErrorKind::Forbidden | ErrorKind::NotFound) {
                    self.slowdown = (self.slowdown + 1).min(16);
                    log::warn!(
                        "queue {}: {}; polling it every {:?} until it answers",
                        self.spec.queue_id,
                        error,
                        self.effective_interval()
                    );
                }
            }
        }
        self.last_error = result.result.as_ref().err().map(|e| e.kind);
        let (event, report) =
            build_event(&self.spec, result, attempts, progress.rate_limited.get());
        // The metrics actor records the cycle and hands the event on; a
        // `Record` it never handles (restarting) hands it on itself.
        let callbacks = &self.shared.callbacks;
        let recorded = self.shared.metrics.with(|metrics| match metrics {
            Some(metrics) => Some(metrics.send(Record::new(report, event, callbacks.clone()))),
            None => {
                emit(callbacks, event);
                None
            }
        });
        async move {
            if let Some(recorded) = recorded {
                let _ = recorded.await;
            }
        }
        .into_actor(self)
    }

    fn drained(&mut self, ctx: &mut Context<Self>) {
        if let Some(farewell) = self.farewell.take() {
            if self.last_error != Some(farewell.kind) {
                self.last_error = Some(farewell.kind);
                emit(
                    &self.shared.callbacks,
                    failed_event(
                        &self.spec,
                        farewell.kind,
                        farewell.detail,
                        0,
                        SystemTime::now(),
                    ),
                );
            }
        }
        for waiter in self.drain_waiters.drain(..) {
            let _ = waiter.send(());
        }
        ctx.stop();
    }
}

async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        // The sender is gone: nobody can cancel any more.
        std::future::pending::<()>().await;
    }
}

/// Builds the event and the matrix report of a finished cycle.
fn build_event(
    spec: &PollerSpec,
    result: CycleResult,
    attempts: u32,
    rate_limited: u32,
) -> (Event, CycleReport) {
    // One clock reading for the snapshot and the event.
    let at = SystemTime::now();
    let report = CycleReport {
        outcome: result.result.clone().map_err(|e| e.kind),
        latency: result.latency,
        attempts,
        rate_limited,
        smoothing_factor: spec.thresholds.smoothing_factor,
        at,
    };
    let event = match result.result {
        Ok(sample) => {
            let state = QueueState::evaluate(&sample, &spec.thresholds);
            Event::Poll(PollEvent {
                id: new_event_id(),
                timestamp: timestamp_of(at),
                queue_id: spec.queue_id.clone(),
                queue_name: spec.name.clone(),
                source: spec.source,
                position: sample.position,
                estimated_wait_seconds: sample.estimated_wait_seconds,
                smoothed_wait_seconds: None,
                waiting: sample.waiting,
                agents_on_queue: sample.agents_on_queue,
                status: sample.status,
                over_capacity: state.over_capacity,
                exceeds_wait_directive: state.exceeds_wait_directive,
                below_min_agents: state.below_min_agents,
                agent_availability: state.agent_availability,
                latency_ms: result.latency.unwrap_or_default().as_secs_f64() * 1000.0,
                data_age_ms: result
                    .received
                    .map(|at| at.elapsed().as_secs_f64() * 1000.0),
                attempts,
            })
        }
        Err(error) => failed_event(spec, error.kind, error.detail, attempts, at),
    };
    (event, report)
}

fn failed_event(
    spec: &PollerSpec,
    error: ErrorKind,
    detail: String,
    attempts: u32,
    at: SystemTime,
) -> Event {
    Event::PollFailed(PollFailedEvent {
        id: new_event_id(),
        timestamp: timestamp_of(at),
        queue_id: spec.queue_id.clone(),
        queue_name: spec.name.clone(),
        source: spec.source,
        error,
        detail,
        attempts,
    })
}

/// Lives inside a running cycle. If the cycle is dropped without finishing
/// (the poller panicked or was stopped), it still ends in one event.
struct Unfinished {
    spec: Arc<PollerSpec>,
    callbacks: Slot<Addr<CallbackActor>>,
    progress: Rc<Progress>,
    armed: bool,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if self.armed {
            let detail = "the poller stopped while the cycle was running".to_string();
            let attempts = self.progress.attempts.get();
            emit(
                &self.callbacks,
                failed_event(
                    &self.spec,
                    ErrorKind::Cancelled,
                    detail,
                    attempts,
                    SystemTime::now(),
                ),
            );
        }
    }
}

impl Actor for PollerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.schedule_next(ctx);
    }
}

impl PollerActor {
    fn drain(&mut self, ctx: &mut Context<Self>) -> ResponseFuture<()> {
        self.draining = true;
        if let Some(tick) = self.tick.take() {
            ctx.cancel_future(tick);
        }
        let (tx, rx) = oneshot::channel();
        self.drain_waiters.push(tx);
        if !self.busy {
            self.drained(ctx);
        }
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

impl Handler<Drain> for PollerActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Drain, ctx: &mut Context<Self>) -> Self::Result {
        self.drain(ctx)
    }
}

impl Handler<DrainWithFarewell> for PollerActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: DrainWithFarewell, ctx: &mut Context<Self>) -> Self::Result {
        self.farewell = Some(msg.0);
        self.drain(ctx)
    }
}
