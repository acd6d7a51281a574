//! The event every poll cycle of every queue ends in (docs/events.md).

use serde::{Deserialize, Serialize};

use crate::config::Source;
use crate::error::ErrorKind;
use crate::QueueId;

/// One event: the outcome of one poll cycle of one queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The cycle succeeded.
    Poll(PollEvent),
    /// The cycle failed after its attempts.
    PollFailed(PollFailedEvent),
}

impl actix::Message for Event {
    type Result = ();
}

/// Agent availability estimate (docs/events.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Wait under 60 s and position at most 5.
    High,
    /// Wait under 300 s and position at most 20.
    Moderate,
    /// Anything else.
    Low,
}

/// A successful cycle (`"type":"poll"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PollEvent {
    /// Unique event id (also the webhook id).
    pub id: String,
    /// When the cycle ended, RFC 3339 UTC with milliseconds.
    pub timestamp: String,
    /// The Genesys queue id.
    pub queue_id: QueueId,
    /// The configured label, if any.
    pub queue_name: Option<String>,
    /// The data source polled.
    pub source: Source,
    /// Guest position (`guest_position` only).
    pub position: Option<u32>,
    /// Estimated wait in seconds.
    pub estimated_wait_seconds: Option<f64>,
    /// EWMA of the estimated wait with `smoothing_factor`.
    pub smoothed_wait_seconds: Option<f64>,
    /// Interactions waiting (`observations` only).
    pub waiting: Option<u32>,
    /// Agents on queue (`observations` only).
    pub agents_on_queue: Option<u32>,
    /// Genesys status string (`guest_position` only).
    pub status: Option<String>,
    /// Position (or waiting) above `max_queue_depth`.
    pub over_capacity: bool,
    /// Estimated wait above `max_acceptable_wait`.
    pub exceeds_wait_directive: bool,
    /// Agents below `min_agent_count`; `null` when the source gives no agent count.
    pub below_min_agents: Option<bool>,
    /// Availability estimate; `null` when the source gives neither wait nor position.
    pub agent_availability: Option<Availability>,
    /// Latency of the successful request in milliseconds (0 for an event
    /// of the `notifications` source made without a request).
    pub latency_ms: f64,
    /// Age of the newest data in the event, in milliseconds: for the polling
    /// sources the time from the response to the event; for `notifications`
    /// the time since the last push or snapshot; `null` before any data.
    pub data_age_ms: Option<f64>,
    /// Requests made in this cycle (1 = no retry; 0 = none, `notifications`).
    pub attempts: u32,
}

/// A failed cycle (`"type":"poll_failed"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PollFailedEvent {
    /// Unique event id.
    pub id: String,
    /// When the cycle ended, RFC 3339 UTC with milliseconds.
    pub timestamp: String,
    /// The Genesys queue id.
    pub queue_id: QueueId,
    /// The configured label, if any.
    pub queue_name: Option<String>,
    /// The data source polled.
    pub source: Source,
    /// The error kind of the last attempt.
    pub error: ErrorKind,
    /// Human-readable detail (never holds secrets).
    pub detail: String,
    /// Requests made in this cycle.
    pub attempts: u32,
}

impl Event {
    /// The event id.
    pub fn id(&self) -> &str {
        match self {
            Event::Poll(e) => &e.id,
            Event::PollFailed(e) => &e.id,
        }
    }

    /// The queue the event is about.
    pub fn queue_id(&self) -> &str {
        match self {
            Event::Poll(e) => &e.queue_id,
            Event::PollFailed(e) => &e.queue_id,
        }
    }

    /// The error kind of a failure, `None` for a success.
    pub fn error(&self) -> Option<ErrorKind> {
        match self {
            Event::Poll(_) => None,
            Event::PollFailed(e) => Some(e.error),
        }
    }

    /// The event as one line of JSON (no trailing newline).
    pub fn to_json(&self) -> String {
        // Serialising these plain types cannot fail (no maps with non-string keys).
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A fresh unique event id.
pub fn new_event_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Now as RFC 3339 UTC with milliseconds, e.g. `2026-11-24T12:00:00.123Z`.
pub fn now_timestamp() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
