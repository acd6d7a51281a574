//! The actors: one file each.
//!
//! - [`token::TokenActor`] hands out OAuth tokens (single-flight, refresh, backoff).
//! - [`poller::PollerActor`], one per queue, runs ticks, cycles and retries.
//! - [`batcher::ObservationsBatcher`] turns many pollers' requests into one analytics query.
//! - [`metrics::MetricsActor`] holds the tracking matrices.
//! - [`callback::CallbackActor`] fans events out to bounded per-callback buffers.
//! - [`sink::SinkActor`] runs one built-in callback (log, stdout, jsonl) on its own thread.
//! - [`webhook::WebhookActor`] delivers events to one webhook endpoint (queue, retries, signing).
//! - [`supervisor::Supervisor`] restarts any of them that stops or panics.

pub mod batcher;
pub mod callback;
pub mod metrics;
pub(crate) mod outbox;
pub mod poller;
pub mod sink;
pub mod supervisor;
#[cfg(test)]
pub(crate) mod test_support;
pub mod token;
pub mod webhook;

use actix::Message;

/// Something happened that must end the process with exit code 1
/// (credentials rejected, supervisor gave up).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Fatal {
    /// Why, for the log and the caller.
    pub reason: String,
    /// The error every queue's last event carries before the process exits
    /// (`auth_failed` for rejected credentials, `cancelled` otherwise).
    pub kind: crate::error::ErrorKind,
}
