//! The actors: one file each.
//!
//! - [`token::TokenActor`] hands out OAuth tokens (single-flight, refresh, backoff).
//! - [`poller::PollerActor`], one per queue, runs ticks, cycles and retries.
//! - [`batcher::ObservationsBatcher`] turns many pollers' requests into one analytics query.
//! - [`metrics::MetricsActor`] holds the tracking matrices.
//!
//! The supervisor that restarts them is [`crate::supervisor`]; the callback
//! actors (fan-out, sinks, outboxes) live in [`crate::callbacks`].

pub mod batcher;
pub(crate) mod cycle;
pub mod metrics;
pub mod poller;
pub mod token;
