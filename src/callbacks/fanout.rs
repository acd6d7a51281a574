//! CallbackActor: fans every event out to every callback. Each callback has
//! a bounded number of deliveries in flight; beyond it, events for that
//! callback are dropped, counted and logged: a slow callback never delays
//! polling or the other callbacks, and memory stays bounded.
//!
//! Every callback gets the same [`SharedEvent`] (one allocation, its JSON
//! serialised at most once). Built-in callbacks take it as a [`Delivery`],
//! sent without waiting for a reply (its [`Ticket`](super::shared::Ticket)
//! accounts for it), a batching one (jsonl) through its [`Inbox`] without
//! waking its thread for each; user callbacks get their own `Event` and are
//! awaited.

use std::sync::Arc;

use actix::prelude::*;

use super::blocking::{Inbox, Nudge, DRAIN_AT};
use super::shared::{Delivery, InFlight, SharedEvent, Tally};
use super::Flush;
use crate::event::Event;
use crate::supervisor::{ExitGuard, Slot};
use crate::telemetry::Telemetry;

/// Deliveries in flight per callback before events are dropped.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Where one callback takes its events.
#[derive(Clone)]
pub enum Target {
    /// A built-in callback: the shared event, accounted for by its ticket.
    Shared(Recipient<Delivery>),
    /// A batching built-in callback: deliveries wait in its inbox; it is
    /// nudged when the inbox was empty or fills.
    Batched(Arc<Inbox>, Recipient<Nudge>),
    /// A user callback (`Handler<Event>`): an event of its own.
    Event(Recipient<Event>),
}

/// One callback as the fan-out sees it. Slots follow restarts.
pub struct Subscriber {
    /// Name in logs and metrics (`log`, `jsonl:audit.jsonl`, custom names).
    pub name: String,
    /// Where events go.
    pub events: Slot<Target>,
    /// Where `Flush` goes, for callbacks that buffer.
    pub flush: Option<Slot<Recipient<Flush>>>,
    /// Deliveries in flight before dropping.
    pub capacity: usize,
}

struct SubState {
    sub: Arc<Subscriber>,
    tally: Arc<Tally>,
}

/// Hands `event` to the fan-out in `callbacks`; logs its loss while the
/// fan-out is restarting.
pub(crate) fn emit(callbacks: &Slot<Addr<CallbackActor>>, event: impl Into<SharedEvent>) {
    let event = event.into();
    // Without cloning the address (a clone of an actix address allocates).
    callbacks.with(|callbacks| match callbacks {
        Some(callbacks) => callbacks.do_send(event),
        None => log::warn!(
            "event {} lost: the callback actor is restarting",
            event.event().id()
        ),
    })
}

/// Wait until every delivery so far has been handled, then flush the sinks.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FlushAll;

/// The fan-out actor.
pub struct CallbackActor {
    subs: Vec<SubState>,
    in_flight: Arc<InFlight>,
    _guard: ExitGuard,
}

impl CallbackActor {
    /// A fan-out to `subscribers`.
    pub fn new(subscribers: &[Arc<Subscriber>], telemetry: Telemetry, guard: ExitGuard) -> Self {
        let in_flight = Arc::new(InFlight::default());
        CallbackActor {
            subs: subscribers
                .iter()
                .map(|sub| SubState {
                    sub: sub.clone(),
                    tally: Arc::new(Tally::new(
                        &sub.name,
                        sub.capacity,
                        &telemetry,
                        in_flight.clone(),
                    )),
                })
                .collect(),
            in_flight,
            _guard: guard,
        }
    }
}

impl Actor for CallbackActor {
    type Context = Context<Self>;
}

impl Handler<SharedEvent> for CallbackActor {
    type Result = ();

    fn handle(&mut self, event: SharedEvent, _: &mut Context<Self>) {
        for state in &self.subs {
            state.sub.events.with(|target| {
                let Some(target) = target else {
                    state.tally.dropped("callback not running");
                    return;
                };
                let Some(ticket) = state.tally.ticket() else {
                    state.tally.dropped("buffer full");
                    return;
                };
                match target {
                    // Not awaited: the ticket reports how it ended.
                    Target::Shared(recipient) => recipient.do_send(Delivery {
                        event: event.clone(),
                        ticket,
                    }),
                    Target::Batched(inbox, nudge) => match inbox.push(Delivery {
                        event: event.clone(),
                        ticket,
                    }) {
                        Ok(1) => nudge.do_send(Nudge::Soon),
                        Ok(DRAIN_AT) => nudge.do_send(Nudge::Now),
                        Ok(_) => {}
                        // The callback is gone: the ticket counts the drop.
                        Err(refused) => drop(refused),
                    },
                    Target::Event(recipient) => {
                        let delivery = recipient.send(event.event().clone());
                        // On the arbiter, not in this actor: the outcome is
                        // counted even if the fan-out itself restarts meanwhile.
                        actix_rt::spawn(async move {
                            if delivery.await.is_ok() {
                                ticket.delivered();
                            }
                        });
                    }
                }
            });
        }
    }
}

impl Handler<FlushAll> for CallbackActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: FlushAll, _: &mut Context<Self>) -> Self::Result {
        let in_flight = self.in_flight.clone();
        // What waits in inboxes is in flight too: take it now, not on the timer.
        for state in &self.subs {
            state.sub.events.with(|target| {
                if let Some(Target::Batched(_, nudge)) = target {
                    nudge.do_send(Nudge::Now);
                }
            });
        }
        let flushes: Vec<Recipient<Flush>> = self
            .subs
            .iter()
            .filter_map(|s| s.sub.flush.as_ref().and_then(Slot::get))
            .collect();
        Box::pin(
            async move {
                in_flight.idle().await;
                // Concurrently: one slow callback must not eat the others' time.
                futures_util::future::join_all(flushes.iter().map(|f| f.send(Flush))).await;
            }
            .into_actor(self),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::callbacks::spawn::{self, CallbackChild};
    use crate::config::CallbackSettings;
    use crate::test_support::{cpu_time, escalations, failed_event, supervised, supervisor};

    /// Counts the events a user callback gets.
    struct Counter(Arc<AtomicU64>);

    impl Actor for Counter {
        type Context = Context<Self>;
    }

    impl Handler<Event> for Counter {
        type Result = ();
        fn handle(&mut self, _: Event, _: &mut Context<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A user callback that stops as it starts.
    struct Gone;

    impl Actor for Gone {
        type Context = Context<Self>;
        fn started(&mut self, ctx: &mut Context<Self>) {
            ctx.stop();
        }
    }

    impl Handler<Event> for Gone {
        type Result = ();
        fn handle(&mut self, _: Event, _: &mut Context<Self>) {}
    }

    /// Fan-out to a `jsonl` sink (its own thread, as configured) and a user
    /// callback (likewise), with `telemetry`.
    async fn rig(
        path: &std::path::Path,
        telemetry: &Telemetry,
    ) -> (Addr<CallbackActor>, Arc<AtomicU64>) {
        let supervisor = supervisor(telemetry);
        let tls = crate::genesys::tls::client_config(&[]).unwrap();
        let jsonl = CallbackSettings::Jsonl { path: path.into() };
        let counted = Arc::new(AtomicU64::new(0));
        let counter = counted.clone();
        let children: Vec<CallbackChild> = vec![
            spawn::builtin(0, &jsonl, telemetry, &tls, escalations())
                .await
                .unwrap(),
            spawn::custom("counter".into(), move || Counter(counter.clone())),
        ];
        let mut subscribers = Vec::new();
        for child in children {
            subscribers.push(child.subscriber);
            supervisor.send(child.supervise.unwrap()).await.unwrap();
        }
        let telemetry_for = telemetry.clone();
        let fanout = supervised(telemetry, move |guard| {
            CallbackActor::new(&subscribers, telemetry_for.clone(), guard).start()
        })
        .await;
        (fanout, counted)
    }

    fn temp_file(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("queuewatch-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let _ = std::fs::remove_file(&path);
        path
    }

    #[actix_rt::test]
    async fn every_event_reaches_every_callback_and_flush_all_makes_the_audit_whole() {
        let path = temp_file("fanout");
        let telemetry = Telemetry::new();
        let (fanout, counted) = rig(&path, &telemetry).await;
        let events: Vec<Event> = (0..500).map(failed_event).collect();
        for event in &events {
            fanout.do_send(SharedEvent::new(event.clone()));
        }
        fanout.send(FlushAll).await.unwrap();
        // Written out and fsynced by the flush, well before the batch timer.
        let audited: Vec<Event> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(audited, events, "every event, in order, once");
        assert_eq!(
            counted.load(Ordering::Relaxed),
            500,
            "the user callback got each"
        );
        let jsonl = format!("jsonl:{}", path.display());
        assert_eq!(telemetry.deliveries_for(&jsonl), 500);
        assert_eq!(telemetry.deliveries_for("counter"), 500);
        assert_eq!(
            telemetry.drops_for(&jsonl) + telemetry.drops_for("counter"),
            0
        );

        // Without a flush, the batch timer writes lines out on its own.
        fanout.do_send(SharedEvent::new(failed_event(9)));
        tokio::time::sleep(crate::callbacks::blocking::WRITE_OUT_AFTER * 3).await;
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert_eq!(lines, 501);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[actix_rt::test]
    async fn a_stopped_callback_counts_its_events_as_dropped() {
        let telemetry = Telemetry::new();
        let events = Slot::default();
        events.set(Target::Event(Gone.start().recipient()));
        let subscribers = vec![Arc::new(Subscriber {
            name: "gone".into(),
            events,
            flush: None,
            capacity: DEFAULT_CAPACITY,
        })];
        let telemetry_for = telemetry.clone();
        let fanout = supervised(&telemetry, move |guard| {
            CallbackActor::new(&subscribers, telemetry_for.clone(), guard).start()
        })
        .await;
        // It stops at once; its address stays in the slot, as while a
        // restart is pending.
        tokio::time::sleep(Duration::from_millis(50)).await;
        for i in 0..3 {
            fanout.do_send(SharedEvent::new(failed_event(i)));
        }
        fanout.send(FlushAll).await.unwrap();
        assert_eq!(telemetry.drops_for("gone"), 3);
        assert_eq!(telemetry.deliveries_for("gone"), 0);
    }

    /// CPU per event through the fan-out to a `jsonl` sink and a user callback:
    /// `cargo test --release --lib callbacks::fanout::tests::throughput -- --ignored --nocapture`
    #[actix_rt::test]
    #[ignore]
    async fn throughput() {
        let path = temp_file("fanout-throughput");
        let telemetry = Telemetry::new();
        let (fanout, counted) = rig(&path, &telemetry).await;
        let n = 100_000;
        let events: Vec<Event> = (0..n).map(|i| failed_event(i % 1000)).collect();
        let (wall, cpu) = (std::time::Instant::now(), cpu_time());
        for (i, event) in events.into_iter().enumerate() {
            fanout.do_send(SharedEvent::new(event));
            if i % 512 == 0 {
                // As pollers do: the fan-out and the sinks keep up.
                fanout.send(FlushAll).await.unwrap();
            }
        }
        fanout.send(FlushAll).await.unwrap();
        let (wall, cpu) = (wall.elapsed(), cpu_time() - cpu);
        assert_eq!(counted.load(Ordering::Relaxed), n as u64);
        eprintln!(
            "{n} events in {wall:?}: CPU {cpu:?} = {:.2} us/event",
            cpu.as_secs_f64() * 1e6 / n as f64
        );
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
