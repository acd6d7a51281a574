//! The actors: one file each.
//!
//! - [`token::TokenActor`] hands out OAuth tokens (single-flight, refresh, backoff).
//! - [`poller::PollerActor`], one per queue, runs ticks, cycles and retries.
//! - [`batcher::ObservationsBatcher`] turns many pollers' requests into one analytics query.
//! - [`metrics::MetricsActor`] holds the tracking matrices.
//!
//! The supervisor that restarts them is [`crate::supervisor`]; the callback
//! actors (fan-out, sinks, outboxes) live in [`crate::callbacks`].

/// The mailbox capacity of an actor that every poller `send`s to (the token
/// actor, the metrics actor, the observations batcher). A poller has at
/// most one such message in flight, so the pollers bound the queue, not
/// this number; what it prevents is actix's default of 16, past which each
/// sender parks and is woken again, as 50 cycles ending in one wake-up did.
pub(crate) const SHARED_MAILBOX: usize = 1 << 20;

pub mod batcher;
pub(crate) mod cycle;
pub mod metrics;
pub mod poller;
pub mod token;
