//! The one outbox actor of every asynchronous callback (webhook, NATS),
//! generic over its [`Transport`]: the transport says what is sent and how;
//! the outbox owns the rest.
//!
//! - Each event is answered at once: the transport prepares it and it is
//!   queued ([`Limits::capacity`]); when the queue is full the event is
//!   dropped, counted (`queuewatch_event_drops_total{callback=…}`) and logged
//!   (at most one line per 10 s). A slow or dead receiver never slows
//!   polling or the other callbacks.
//! - At most [`Limits::concurrency`] sends run at once, each with its own
//!   retries ([`Transport::send`]); a send that ends undelivered is a drop.
//! - Sends start once the transport's link is up ([`Transport::link`]: a
//!   client, a connection, a stream); a transport that cannot link at all
//!   stops the actor, and the supervisor decides.
//! - `Flush` (shutdown) waits, at most [`Limits::flush_grace`], until nothing
//!   is queued or in flight; what is left when the actor goes is counted as lost.

mod queue;

use std::time::Duration;

use actix::prelude::*;
use futures_util::future::LocalBoxFuture;

pub(crate) use queue::Outbox;

use super::shared::{Delivery, SharedEvent};
use super::Flush;
use crate::supervisor::ExitGuard;
use crate::telemetry::Telemetry;

/// Bounds of one outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Events queued (not yet being sent) before new ones are dropped.
    pub capacity: usize,
    /// Sends in flight at once.
    pub concurrency: usize,
    /// How long `Flush` (shutdown) waits for the queue to empty.
    pub flush_grace: Duration,
}

/// How one send ended.
pub(crate) enum Sent {
    /// The receiver has it.
    Delivered,
    /// Not delivered, and why (counted as a drop).
    Dropped(String),
    /// Not delivered, and no event will be any more: what is queued is
    /// dropped too, and why.
    Disabled(String),
}

/// What one asynchronous callback supplies: what is sent and how.
pub(crate) trait Transport: Sized + Unpin + 'static {
    /// One event, ready to send.
    type Item: Unpin + 'static;
    /// What sends need once set up (a client, a stream context).
    type Link: Clone + Unpin + 'static;

    /// The callback's name in logs and metrics.
    fn name(&self) -> &str;
    /// Its bounds.
    fn limits(&self) -> Limits;
    /// Where drops are counted.
    fn telemetry(&self) -> &Telemetry;
    /// Why events are dropped when the queue is full (for the log).
    fn full(&self) -> &'static str;
    /// The event as an item to queue; `Err(why)` drops it at once.
    fn prepare(&self, event: &SharedEvent) -> Result<Self::Item, &'static str>;
    /// Sets up what sends need, on the actor's thread; `None` when this
    /// callback cannot work at all (the actor stops).
    fn link(&self) -> LocalBoxFuture<'static, Option<Self::Link>>;
    /// Runs beside the sends for as long as the actor does (checks of the
    /// link, say); none by default.
    fn watch(&self, _link: &Self::Link) -> Option<LocalBoxFuture<'static, ()>> {
        None
    }
    /// Sends one item, retries included.
    fn send(&self, link: Self::Link, item: Self::Item) -> LocalBoxFuture<'static, Sent>;
}

/// The outbox actor of one asynchronous callback.
pub(crate) struct OutboxActor<T: Transport> {
    transport: T,
    link: Option<T::Link>,
    outbox: Outbox<T::Item>,
    _guard: ExitGuard,
}

impl<T: Transport> OutboxActor<T> {
    /// An outbox for `transport`.
    pub(crate) fn new(transport: T, guard: ExitGuard) -> Self {
        let outbox = Outbox::new(
            transport.name(),
            transport.telemetry(),
            transport.limits().capacity,
        );
        OutboxActor {
            transport,
            link: None,
            outbox,
            _guard: guard,
        }
    }

    /// Starts sends while there is room.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        let Some(link) = &self.link else {
            return;
        };
        let concurrency = self.transport.limits().concurrency;
        while let Some(item) = self.outbox.next(concurrency) {
            let send = self.transport.send(link.clone(), item);
            ctx.spawn(send.into_actor(self).map(|sent, act, ctx| {
                act.outbox.done();
                match sent {
                    Sent::Delivered => {}
                    Sent::Dropped(why) => act.outbox.drop_events(1, &why),
                    Sent::Disabled(why) => {
                        act.outbox.drop_events(1, &why);
                        act.outbox.drop_queued(&why);
                    }
                }
                act.pump(ctx);
                act.outbox.wake_if_idle();
            }));
        }
    }
}

impl<T: Transport> Actor for OutboxActor<T> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.spawn(
            self.transport
                .link()
                .into_actor(self)
                .map(|link, act, ctx| match link {
                    Some(link) => {
                        if let Some(watch) = act.transport.watch(&link) {
                            ctx.spawn(watch.into_actor(act));
                        }
                        act.link = Some(link);
                        act.pump(ctx);
                    }
                    // It cannot work at all: let the supervisor decide.
                    None => ctx.stop(),
                }),
        );
    }
}

impl<T: Transport> Handler<Delivery> for OutboxActor<T> {
    type Result = ();

    fn handle(&mut self, delivery: Delivery, ctx: &mut Context<Self>) {
        let Delivery { event, ticket } = delivery;
        // Handed over: what happens next is the outbox's to count.
        ticket.delivered();
        match self.transport.prepare(&event) {
            Ok(item) => {
                let full = self.transport.full();
                self.outbox.offer(item, full);
                self.pump(ctx);
            }
            Err(why) => self.outbox.drop_events(1, why),
        }
    }
}

impl<T: Transport> Handler<Flush> for OutboxActor<T> {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) -> Self::Result {
        let grace = self.transport.limits().flush_grace;
        let Some(idle) = self.outbox.idle() else {
            return Box::pin(actix::fut::ready(()));
        };
        Box::pin(
            async move { tokio::time::timeout(grace, idle).await.is_err() }
                .into_actor(self)
                .map(move |timed_out, act, _| {
                    if timed_out {
                        log::warn!(
                            "callback {}: {} event(s) still undelivered after the {grace:?} shutdown grace",
                            act.outbox.name(),
                            act.outbox.pending()
                        );
                    }
                }),
        )
    }
}
