//! The event every poll cycle of every queue ends in (docs/events.md).

use serde::{Deserialize, Serialize};

use crate::config::Source;
use crate::error::ErrorKind;
use crate::QueueId;

mod json;

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

    /// The event as one line of JSON (no trailing newline): the bytes of
    /// its `Serialize`, written field by field (`event/json.rs`).
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(512);
        json::write(self, &mut out);
        // serde_json writes UTF-8 and the keys are ASCII: this never falls back.
        String::from_utf8(out).unwrap_or_else(|_| serde_json::to_string(self).unwrap_or_default())
    }
}

/// A fresh unique event id: a random (version 4) UUID.
///
/// The bits come from a per-thread generator seeded once from the operating
/// system, not from a `getrandom` call per event (one system call a poll):
/// two SplitMix64 lanes over 128 seed bits, so a thread never repeats an id
/// and two threads (or processes) share one only if both 64-bit lanes of
/// their seeds line up.
pub fn new_event_id() -> String {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id = uuid::Builder::from_random_bytes(ids::next()).into_uuid();
    id.hyphenated().encode_lower(&mut buf).to_owned()
}

mod ids {
    use std::cell::Cell;

    thread_local! {
        static LANES: Cell<(u64, u64)> = Cell::new(seed());
    }

    fn seed() -> (u64, u64) {
        let seed = uuid::Uuid::new_v4().as_u64_pair();
        (seed.0, seed.1)
    }

    fn splitmix(state: u64) -> u64 {
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// 16 bytes from the thread's next step of both lanes.
    pub(super) fn next() -> [u8; 16] {
        const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
        LANES.with(|lanes| {
            let (a, b) = lanes.get();
            let (a, b) = (a.wrapping_add(GAMMA), b.wrapping_add(GAMMA));
            lanes.set((a, b));
            let mut out = [0u8; 16];
            out[..8].copy_from_slice(&splitmix(a).to_le_bytes());
            out[8..].copy_from_slice(&splitmix(b).to_le_bytes());
            out
        })
    }
}

/// Now as RFC 3339 UTC with milliseconds, e.g. `2026-11-24T12:00:00.123Z`.
pub fn now_timestamp() -> String {
    timestamp_of(std::time::SystemTime::now())
}

/// `at` as RFC 3339 UTC with milliseconds (truncated, as the history's
/// `at_unix_ms` is).
pub fn timestamp_of(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

#[cfg(test)]
mod id_tests {
    use std::collections::HashSet;

    #[test]
    fn event_ids_are_version_4_uuids_and_never_repeat() {
        let ids: Vec<String> = (0..50_000).map(|_| super::new_event_id()).collect();
        let other: Vec<String> =
            std::thread::spawn(|| (0..50_000).map(|_| super::new_event_id()).collect())
                .join()
                .unwrap();
        let mut seen = HashSet::new();
        for id in ids.iter().chain(&other) {
            let parsed = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(parsed.get_version_num(), 4, "{id}");
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert_eq!(id, &parsed.hyphenated().to_string());
            assert!(seen.insert(id.clone()), "repeated: {id}");
        }
    }
}
