//! CallbackActor: fans every event out to every callback. Each callback has
//! a bounded number of deliveries in flight; beyond it, events for that
//! callback are dropped, counted and logged: a slow callback never delays
//! polling or the other callbacks, and memory stays bounded.

use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::Flush;
use crate::event::Event;
use crate::supervisor::{ExitGuard, Slot};
use crate::telemetry::Telemetry;
use crate::throttle::Throttled;

/// Deliveries in flight per callback before events are dropped.
pub const DEFAULT_CAPACITY: usize = 1024;

/// One callback as the fan-out sees it. Slots follow restarts.
pub struct Subscriber {
    /// Name in logs and metrics (`log`, `jsonl:audit.jsonl`, custom names).
    pub name: String,
    /// Where events go.
    pub events: Slot<Recipient<Event>>,
    /// Where `Flush` goes, for callbacks that buffer.
    pub flush: Option<Slot<Recipient<Flush>>>,
    /// Deliveries in flight before dropping.
    pub capacity: usize,
}

struct SubState {
    sub: Arc<Subscriber>,
    in_flight: usize,
    drops: Throttled,
}

/// Hands `event` to the fan-out in `callbacks`; logs its loss while the
/// fan-out is restarting.
pub(crate) fn emit(callbacks: &Slot<Addr<CallbackActor>>, event: Event) {
    match callbacks.get() {
        Some(callbacks) => callbacks.do_send(event),
        None => log::warn!(
            "event {} lost: the callback actor is restarting",
            event.id()
        ),
    }
}

/// Wait until every delivery so far has been handled, then flush the sinks.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FlushAll;

/// The fan-out actor.
pub struct CallbackActor {
    subs: Vec<SubState>,
    telemetry: Telemetry,
    in_flight: usize,
    idle_waiters: Vec<oneshot::Sender<()>>,
    _guard: ExitGuard,
}

impl CallbackActor {
    /// A fan-out to `subscribers`.
    pub fn new(subscribers: &[Arc<Subscriber>], telemetry: Telemetry, guard: ExitGuard) -> Self {
        CallbackActor {
            subs: subscribers
                .iter()
                .map(|sub| SubState {
                    sub: sub.clone(),
                    in_flight: 0,
                    drops: Throttled::default(),
                })
                .collect(),
            telemetry,
            in_flight: 0,
            idle_waiters: Vec::new(),
            _guard: guard,
        }
    }

    fn drop_event(&mut self, index: usize, why: &str) {
        let state = &mut self.subs[index];
        self.telemetry.dropped(&state.sub.name);
        if let Some(n) = state.drops.note(1) {
            log::warn!("callback {}: dropped {n} event(s): {why}", state.sub.name);
        }
    }

    fn delivery_done(&mut self, index: usize) {
        self.subs[index].in_flight -= 1;
        self.in_flight -= 1;
        if self.in_flight == 0 {
            for waiter in self.idle_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }
}

impl Actor for CallbackActor {
    type Context = Context<Self>;
}

impl Handler<Event> for CallbackActor {
    type Result = ();

    fn handle(&mut self, event: Event, ctx: &mut Context<Self>) {
        for index in 0..self.subs.len() {
            let state = &self.subs[index];
            let Some(recipient) = state.sub.events.get() else {
                self.drop_event(index, "callback not running");
                continue;
            };
            if state.in_flight >= state.sub.capacity {
                self.drop_event(index, "buffer full");
                continue;
            }
            self.subs[index].in_flight += 1;
            self.in_flight += 1;
            let delivery = recipient.send(event.clone());
            ctx.spawn(delivery.into_actor(self).map(move |result, act, _| {
                act.delivery_done(index);
                match result {
                    Ok(()) => act.telemetry.delivered(&act.subs[index].sub.name),
                    Err(_) => act.drop_event(index, "callback stopped before handling it"),
                }
            }));
        }
    }
}

impl Handler<FlushAll> for CallbackActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: FlushAll, _: &mut Context<Self>) -> Self::Result {
        let idle = if self.in_flight == 0 {
            None
        } else {
            let (tx, rx) = oneshot::channel();
            self.idle_waiters.push(tx);
            Some(rx)
        };
        let flushes: Vec<Recipient<Flush>> = self
            .subs
            .iter()
            .filter_map(|s| s.sub.flush.as_ref().and_then(Slot::get))
            .collect();
        Box::pin(
            async move {
                if let Some(idle) = idle {
                    let _ = idle.await;
                }
                // Concurrently: one slow callback must not eat the others' time.
                futures_util::future::join_all(flushes.iter().map(|f| f.send(Flush))).await;
            }
            .into_actor(self),
        )
    }
}
