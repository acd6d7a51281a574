//! The actors: one file each.
//!
//! - [`token::TokenActor`] hands out OAuth tokens (single-flight, refresh, backoff).
//! - [`poller::PollerActor`], one per queue, runs ticks, cycles and retries.
//! - [`metrics::MetricsActor`] holds the tracking matrices.
//! - [`callback::CallbackActor`] fans events out to bounded per-callback buffers.
//! - [`sink::SinkActor`] runs one built-in callback (log, stdout, jsonl) on its own thread.
//! - [`supervisor::Supervisor`] restarts any of them that stops or panics.

pub mod callback;
pub mod metrics;
pub mod poller;
pub mod sink;
pub mod supervisor;
pub mod token;

use actix::Message;

/// Something happened that must end the process with exit code 1
/// (credentials rejected, supervisor gave up).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Fatal {
    /// Why, for the log and the caller.
    pub reason: String,
}
