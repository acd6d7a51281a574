//! One event as every callback shares it, and the message that carries it
//! to a built-in callback.
//!
//! - [`SharedEvent`]: the event behind one pointer, and its JSON serialised
//!   at most once, by whichever callback needs it first (stdout, jsonl,
//!   webhook body, NATS payload, the SSE hub all use those same bytes).
//! - [`Delivery`]: a [`SharedEvent`] plus the [`Ticket`] that accounts for
//!   it: the fan-out sends it without waiting for a reply; the callback
//!   marks it delivered once handled, and a delivery dropped unhandled (its
//!   callback stopped) counts as a drop. Either way the ticket frees its
//!   place among the callback's deliveries in flight when it goes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use actix::Message;
use actix_web::web::Bytes;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::Notify;

use crate::event::Event;
use crate::telemetry::Telemetry;
use crate::throttle::Throttled;

/// One event, shared: cloning it is one reference count.
#[derive(Debug, Clone)]
pub struct SharedEvent(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    event: Arc<Event>,
    json: OnceLock<Arc<str>>,
}

impl SharedEvent {
    /// Shares `event`.
    pub fn new(event: Event) -> SharedEvent {
        SharedEvent::from_arc(Arc::new(event))
    }

    /// Shares an event already behind a pointer (the metrics store keeps it too).
    pub fn from_arc(event: Arc<Event>) -> SharedEvent {
        SharedEvent(Arc::new(Inner {
            event,
            json: OnceLock::new(),
        }))
    }

    /// The event.
    pub fn event(&self) -> &Event {
        &self.0.event
    }

    /// The event as one line of JSON (no trailing newline), serialised on
    /// the first call, from whichever thread, and shared after that.
    pub fn json(&self) -> &Arc<str> {
        self.0.json.get_or_init(|| self.0.event.to_json().into())
    }

    /// [`SharedEvent::json`] as `Bytes` (a request body, a NATS payload),
    /// without copying it.
    pub fn json_bytes(&self) -> Bytes {
        Bytes::from_owner(Json(self.json().clone()))
    }
}

impl From<Event> for SharedEvent {
    fn from(event: Event) -> SharedEvent {
        SharedEvent::new(event)
    }
}

impl Message for SharedEvent {
    type Result = ();
}

/// Lends the shared JSON to `Bytes`.
struct Json(Arc<str>);

impl AsRef<[u8]> for Json {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// What a built-in callback receives: the event and its ticket.
#[derive(Debug)]
pub struct Delivery {
    /// The event.
    pub event: SharedEvent,
    /// Accounts for this delivery; [`Ticket::delivered`] once handled.
    pub ticket: Ticket,
}

impl Message for Delivery {
    type Result = ();
}

impl From<Event> for Delivery {
    /// A delivery nobody accounts for (tests, direct sends).
    fn from(event: Event) -> Delivery {
        Delivery {
            event: event.into(),
            ticket: Ticket(None),
        }
    }
}

/// The deliveries in flight to every callback of one fan-out, and a signal
/// when there are none.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    /// Resolves once no delivery is in flight.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Registered before the check: a last ticket going in between
            // still wakes this waiter.
            notified.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// One callback's accounts: its deliveries in flight, delivered and dropped.
pub(crate) struct Tally {
    name: String,
    capacity: usize,
    in_flight: AtomicUsize,
    delivered: Counter,
    telemetry: Telemetry,
    drops: Mutex<Throttled>,
    all: Arc<InFlight>,
}

impl Tally {
    /// The accounts of callback `name`, at most `capacity` in flight, part of `all`.
    pub(crate) fn new(
        name: &str,
        capacity: usize,
        telemetry: &Telemetry,
        all: Arc<InFlight>,
    ) -> Tally {
        Tally {
            name: name.to_owned(),
            capacity,
            in_flight: AtomicUsize::new(0),
            delivered: telemetry.delivery_counter(name),
            telemetry: telemetry.clone(),
            drops: Mutex::default(),
            all,
        }
    }

    /// A ticket for one more delivery, or `None` when `capacity` are in flight.
    pub(crate) fn ticket(self: &Arc<Self>) -> Option<Ticket> {
        // Only the fan-out takes tickets: the check and the increment need
        // not be one atomic step.
        if self.in_flight.load(Ordering::Acquire) >= self.capacity {
            return None;
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.all.count.fetch_add(1, Ordering::AcqRel);
        Some(Ticket(Some(TicketInner {
            tally: self.clone(),
            delivered: false,
        })))
    }

    /// Counts one event that did not reach the callback, and logs it
    /// (at most one line per 10 s).
    pub(crate) fn dropped(&self, why: &str) {
        self.telemetry.dropped(&self.name);
        let report = self.drops.lock().unwrap_or_else(|e| e.into_inner()).note(1);
        if let Some(n) = report {
            log::warn!("callback {}: dropped {n} event(s): {why}", self.name);
        }
    }
}

/// Accounts for one delivery: marked delivered once handled; dropped
/// unmarked, it counts as a drop. It frees its place in flight when it goes.
pub struct Ticket(Option<TicketInner>);

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let callback = self.0.as_ref().map(|t| t.tally.name.as_str());
        f.debug_struct("Ticket")
            .field("callback", &callback)
            .finish_non_exhaustive()
    }
}

struct TicketInner {
    tally: Arc<Tally>,
    delivered: bool,
}

impl Ticket {
    /// The callback has handled the event.
    pub fn delivered(mut self) {
        if let Some(inner) = &mut self.0 {
            inner.delivered = true;
            inner.tally.delivered.inc();
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Some(inner) = &self.0 else {
            return;
        };
        let tally = &inner.tally;
        if !inner.delivered {
            tally.dropped("callback stopped before handling it");
        }
        tally.in_flight.fetch_sub(1, Ordering::AcqRel);
        if tally.all.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            tally.all.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::failed_event;

    #[test]
    fn the_json_is_serialised_once_and_shared() {
        let event = failed_event(1);
        let shared = SharedEvent::new(event.clone());
        let other = shared.clone();
        assert_eq!(&**shared.json(), event.to_json());
        assert!(
            Arc::ptr_eq(shared.json(), other.json()),
            "one serialisation"
        );
        assert_eq!(&shared.json_bytes()[..], event.to_json().as_bytes());
        assert_eq!(other.event(), &event);
    }

    #[actix_rt::test]
    async fn tickets_bound_count_and_signal_idle() {
        let telemetry = Telemetry::new();
        let all = Arc::new(InFlight::default());
        let tally = Arc::new(Tally::new("t", 2, &telemetry, all.clone()));
        let first = tally.ticket().expect("room");
        let second = tally.ticket().expect("room");
        assert!(tally.ticket().is_none(), "two in flight at most");
        first.delivered();
        assert_eq!(telemetry.deliveries_for("t"), 1);
        let third = tally.ticket().expect("a place freed");
        drop(second); // unhandled: a drop
        assert_eq!(telemetry.drops_for("t"), 1);
        let idle = actix_rt::spawn({
            let all = all.clone();
            async move { all.idle().await }
        });
        tokio::task::yield_now().await;
        assert!(!idle.is_finished(), "one still in flight");
        third.delivered();
        tokio::time::timeout(std::time::Duration::from_secs(5), idle)
            .await
            .expect("idle once none is in flight")
            .unwrap();
        assert_eq!(telemetry.deliveries_for("t"), 2);
        all.idle().await; // idle now: at once
    }
}
