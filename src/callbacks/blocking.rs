//! Blocking callbacks (log, stdout, jsonl): an [`EventSink`] each, run by a
//! [`SinkActor`] on its own arbiter thread, so a slow disk or terminal never
//! delays polling or the other callbacks.
//!
//! A sink may buffer ([`EventSink::buffered`]): the actor then hands the
//! buffer to the OS at most [`WRITE_OUT_AFTER`] after the first line went
//! in ([`EventSink::write_out`]), and makes everything durable on `Flush`
//! and when it goes ([`EventSink::flush`]).
//!
//! A batching sink (jsonl) also takes its events through an [`Inbox`]: the
//! fan-out queues each delivery there without waking the sink's thread, and
//! nudges it only when the inbox was empty (drain within
//! [`WRITE_OUT_AFTER`]) or holds [`DRAIN_AT`] deliveries (drain now), so the
//! thread wakes a few times a second instead of once per event.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;

use super::shared::{Delivery, SharedEvent};
use super::Flush;
use crate::supervisor::ExitGuard;
use crate::throttle::Throttled;

/// How long a buffering sink holds a line before it is written out.
pub const WRITE_OUT_AFTER: Duration = Duration::from_millis(200);

/// Deliveries waiting in an [`Inbox`] that make the fan-out wake the sink at once.
pub const DRAIN_AT: usize = 128;

/// A synchronous event consumer.
pub trait EventSink: Send {
    /// Handles one event. Errors are logged by the caller; the sink goes on.
    fn deliver(&mut self, event: &SharedEvent) -> std::io::Result<()>;

    /// Whether lines are held in the sink's buffer, waiting for [`EventSink::write_out`].
    fn buffered(&self) -> bool {
        false
    }

    /// Hands what is buffered to the OS (no fsync).
    fn write_out(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    /// Makes everything delivered so far durable (write out, fsync).
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Deliveries handed to a batching sink without a message each.
#[derive(Debug, Default)]
pub struct Inbox {
    state: Mutex<InboxState>,
}

#[derive(Debug, Default)]
struct InboxState {
    queue: Vec<Delivery>,
    /// The sink is gone: nothing more is taken.
    closed: bool,
}

impl Inbox {
    /// Queues `delivery`: how many wait now, or the delivery back when the
    /// sink is gone.
    pub fn push(&self, delivery: Delivery) -> Result<usize, Delivery> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.closed {
            return Err(delivery);
        }
        state.queue.push(delivery);
        Ok(state.queue.len())
    }

    /// Swaps what waits with `into` (empty, its allocation reused).
    fn take(&self, into: &mut Vec<Delivery>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut state.queue, into);
    }

    /// Takes nothing more; what waits is handed back (to be dropped: counted).
    fn close(&self) -> Vec<Delivery> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.closed = true;
        std::mem::take(&mut state.queue)
    }
}

/// From the fan-out to a batching sink: deliveries wait in its [`Inbox`].
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
#[rtype(result = "()")]
pub enum Nudge {
    /// The inbox was empty: take what waits within [`WRITE_OUT_AFTER`].
    Soon,
    /// Take what waits now (many wait, or a flush is coming).
    Now,
}

/// The sink actor.
pub struct SinkActor {
    name: String,
    sink: Box<dyn EventSink>,
    inbox: Option<Arc<Inbox>>,
    /// The last batch taken from the inbox (its allocation, reused).
    batch: Vec<Delivery>,
    errors: Throttled,
    /// A write-out is scheduled.
    write_out_due: bool,
    _guard: ExitGuard,
}

impl SinkActor {
    /// Wraps `sink`, named `name` in logs and metrics.
    pub fn new(name: String, sink: Box<dyn EventSink>, guard: ExitGuard) -> Self {
        SinkActor {
            name,
            sink,
            inbox: None,
            batch: Vec::new(),
            errors: Throttled::default(),
            write_out_due: false,
            _guard: guard,
        }
    }

    /// Wraps `sink`, also taking deliveries from `inbox` when nudged.
    pub fn batched(
        name: String,
        sink: Box<dyn EventSink>,
        inbox: Arc<Inbox>,
        guard: ExitGuard,
    ) -> Self {
        let mut actor = SinkActor::new(name, sink, guard);
        actor.inbox = Some(inbox);
        actor
    }

    fn report(&mut self, what: &str, error: std::io::Error) {
        // At most one line per 10 s per sink: a full disk must not flood the log.
        if let Some(n) = self.errors.note(1) {
            log::error!(
                "callback {}: {what} failed ({n} time(s)): {error}",
                self.name
            );
        }
    }

    fn deliver(&mut self, delivery: Delivery) {
        let Delivery { event, ticket } = delivery;
        if let Err(error) = self.sink.deliver(&event) {
            self.report("delivery", error);
        }
        ticket.delivered();
    }

    /// Delivers what waits in the inbox.
    fn drain(&mut self) {
        let Some(inbox) = &self.inbox else {
            return;
        };
        let mut batch = std::mem::take(&mut self.batch);
        inbox.take(&mut batch);
        for delivery in batch.drain(..) {
            self.deliver(delivery);
        }
        self.batch = batch;
    }

    /// Drains and writes out within [`WRITE_OUT_AFTER`], unless already due.
    fn write_out_soon(&mut self, ctx: &mut Context<Self>) {
        if self.write_out_due {
            return;
        }
        self.write_out_due = true;
        ctx.run_later(WRITE_OUT_AFTER, |act, _| {
            act.write_out_due = false;
            act.drain();
            if let Err(error) = act.sink.write_out() {
                act.report("write", error);
            }
        });
    }
}

impl Actor for SinkActor {
    type Context = Context<Self>;
}

impl Handler<Delivery> for SinkActor {
    type Result = ();

    fn handle(&mut self, delivery: Delivery, ctx: &mut Context<Self>) {
        self.deliver(delivery);
        if self.sink.buffered() {
            self.write_out_soon(ctx);
        }
    }
}

impl Handler<Nudge> for SinkActor {
    type Result = ();

    fn handle(&mut self, nudge: Nudge, ctx: &mut Context<Self>) {
        match nudge {
            Nudge::Soon => self.write_out_soon(ctx),
            Nudge::Now => {
                self.drain();
                if self.sink.buffered() {
                    self.write_out_soon(ctx);
                }
            }
        }
    }
}

impl Handler<Flush> for SinkActor {
    type Result = ();

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) {
        self.drain();
        if let Err(error) = self.sink.flush() {
            self.report("flush", error);
        }
    }
}

impl Drop for SinkActor {
    fn drop(&mut self) {
        // Deliveries still waiting never reach this incarnation: dropped,
        // their tickets count them.
        if let Some(inbox) = &self.inbox {
            drop(inbox.close());
        }
        // Whatever happens to the actor, delivered lines are written and fsynced.
        let _ = self.sink.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Telemetry;
    use crate::test_support::{failed_event, supervised};

    /// Records the ids it gets.
    struct Recording(Arc<Mutex<Vec<String>>>);

    impl EventSink for Recording {
        fn deliver(&mut self, event: &SharedEvent) -> std::io::Result<()> {
            self.0.lock().unwrap().push(event.event().id().to_owned());
            Ok(())
        }
    }

    async fn batched_sink(
        telemetry: &Telemetry,
    ) -> (Addr<SinkActor>, Arc<Inbox>, Arc<Mutex<Vec<String>>>) {
        let inbox = Arc::new(Inbox::default());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (actor_inbox, actor_seen) = (inbox.clone(), seen.clone());
        let addr = supervised(telemetry, move |guard| {
            let sink = Box::new(Recording(actor_seen.clone()));
            SinkActor::batched("rec".into(), sink, actor_inbox.clone(), guard).start()
        })
        .await;
        (addr, inbox, seen)
    }

    #[actix_rt::test]
    async fn an_inbox_is_taken_when_nudged_now_or_soon_and_on_flush() {
        let telemetry = Telemetry::new();
        let (addr, inbox, seen) = batched_sink(&telemetry).await;
        let ids: Vec<String> = (0..3)
            .map(|i| {
                let event = failed_event(i);
                let id = event.id().to_owned();
                assert_eq!(inbox.push(event.into()).unwrap(), i + 1);
                id
            })
            .collect();
        addr.send(Nudge::Now).await.unwrap();
        assert_eq!(*seen.lock().unwrap(), ids, "taken at once, in order");

        inbox.push(failed_event(3).into()).unwrap();
        addr.send(Nudge::Soon).await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 3, "not yet");
        tokio::time::sleep(WRITE_OUT_AFTER * 2).await;
        assert_eq!(seen.lock().unwrap().len(), 4, "taken within the delay");

        inbox.push(failed_event(4).into()).unwrap();
        addr.send(Flush).await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 5, "a flush takes what waits");
    }

    /// Panics on its first event.
    struct Panicking;

    impl EventSink for Panicking {
        fn deliver(&mut self, _: &SharedEvent) -> std::io::Result<()> {
            panic!("a sink that fails (expected in this test)");
        }
    }

    #[actix_rt::test]
    async fn a_gone_sink_takes_nothing_more() {
        let telemetry = Telemetry::new();
        let inbox = Arc::new(Inbox::default());
        let actor_inbox = inbox.clone();
        let addr = supervised(&telemetry, move |guard| {
            SinkActor::batched(
                "doomed".into(),
                Box::new(Panicking),
                actor_inbox.clone(),
                guard,
            )
            .start()
        })
        .await;
        inbox.push(failed_event(0).into()).unwrap();
        addr.do_send(Nudge::Now);
        // The actor panics and goes; its inbox closes.
        for _ in 0..100 {
            if inbox.push(failed_event(1).into()).is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the inbox of a stopped sink still takes deliveries");
    }
}
