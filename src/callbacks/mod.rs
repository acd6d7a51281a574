//! Callbacks: everything that happens to an event after its poll cycle.
//!
//! - [`shared`]: the event as every callback shares it (one allocation, its
//!   JSON serialised once) and the accounted delivery that carries it.
//! - [`fanout`]: the `CallbackActor`, handing every event to every callback
//!   with a bounded number in flight each.
//! - [`blocking`]: blocking sinks ([`log_sink`], [`stdout`], [`jsonl`]) on
//!   threads of their own.
//! - [`outbox`]: the one outbox actor of the asynchronous callbacks, generic
//!   over a transport: [`webhook`] (signed POSTs) and [`nats`] (JetStream).
//! - [`spawn`]: callback settings and user actors into supervised children.

pub(crate) mod blocking;
pub(crate) mod fanout;
mod jsonl;
mod log_sink;
pub(crate) mod nats;
pub(crate) mod outbox;
pub(crate) mod shared;
pub(crate) mod spawn;
mod stdout;
pub(crate) mod webhook;

use actix::Message;

pub use blocking::EventSink;
pub use jsonl::JsonlSink;
pub use log_sink::LogSink;
pub use stdout::StdoutSink;

/// Make everything delivered so far durable (sinks), or wait, bounded,
/// until it is delivered (outboxes).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Flush;
