//! The event's JSON line, written field by field: the same bytes as serde's
//! derive (a property test holds them equal for arbitrary events), without
//! the derive's map machinery for an internally tagged enum. The keys are
//! constants; each value goes through serde_json, so strings are escaped
//! and numbers formatted exactly as before.
//!
//! It runs once per event (the shared JSON of every sink), so at 1,000
//! polls a second it is a visible share of the process (BENCHMARKS.md).

use serde::Serialize;

use super::{Event, PollEvent, PollFailedEvent};
use crate::config::Source;
use crate::QueueId;

/// Appends `event` as one line of JSON (no newline) to `out`.
pub(super) fn write(event: &Event, out: &mut Vec<u8>) {
    match event {
        Event::Poll(e) => poll(e, out),
        Event::PollFailed(e) => poll_failed(e, out),
    }
}

/// The fields both kinds of event start with, after `{"type":<kind>`.
struct Head<'a> {
    id: &'a str,
    timestamp: &'a str,
    queue_id: &'a QueueId,
    queue_name: &'a Option<String>,
    source: Source,
}

fn head(out: &mut Vec<u8>, opening: &[u8], h: &Head<'_>) {
    out.extend_from_slice(opening);
    value(out, h.id);
    field(out, "timestamp", h.timestamp);
    field(out, "queue_id", h.queue_id);
    field(out, "queue_name", h.queue_name);
    field(out, "source", &h.source);
}

fn poll(e: &PollEvent, out: &mut Vec<u8>) {
    let h = Head {
        id: &e.id,
        timestamp: &e.timestamp,
        queue_id: &e.queue_id,
        queue_name: &e.queue_name,
        source: e.source,
    };
    head(out, br#"{"type":"poll","id":"#, &h);
    field(out, "position", &e.position);
    field(out, "estimated_wait_seconds", &e.estimated_wait_seconds);
    field(out, "smoothed_wait_seconds", &e.smoothed_wait_seconds);
    field(out, "waiting", &e.waiting);
    field(out, "agents_on_queue", &e.agents_on_queue);
    field(out, "status", &e.status);
    field(out, "over_capacity", &e.over_capacity);
    field(out, "exceeds_wait_directive", &e.exceeds_wait_directive);
    field(out, "below_min_agents", &e.below_min_agents);
    field(out, "agent_availability", &e.agent_availability);
    field(out, "latency_ms", &e.latency_ms);
    field(out, "data_age_ms", &e.data_age_ms);
    field(out, "attempts", &e.attempts);
    out.push(b'}');
}

fn poll_failed(e: &PollFailedEvent, out: &mut Vec<u8>) {
    let h = Head {
        id: &e.id,
        timestamp: &e.timestamp,
        queue_id: &e.queue_id,
        queue_name: &e.queue_name,
        source: e.source,
    };
    head(out, br#"{"type":"poll_failed","id":"#, &h);
    field(out, "error", &e.error);
    field(out, "detail", &e.detail);
    field(out, "attempts", &e.attempts);
    out.push(b'}');
}

/// `,"key":value`. Keys are plain identifiers: nothing to escape.
fn field<T: Serialize + ?Sized>(out: &mut Vec<u8>, key: &'static str, v: &T) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    value(out, v);
}

fn value<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Writing these plain values into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::config::Source;
    use crate::error::ErrorKind;
    use crate::event::Availability;

    fn by_serde(event: &Event) -> String {
        serde_json::to_string(event).unwrap()
    }

    fn by_hand(event: &Event) -> String {
        let mut out = Vec::new();
        write(event, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn number() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-0.0),
            0.0..1e6f64
        ]
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9-]{0,40}",
            any::<String>(),
            Just("quote \" backslash \\ newline \n tab \t nul \u{0} del \u{7f} é 😀".to_string()),
        ]
    }

    fn source() -> impl Strategy<Value = Source> {
        prop_oneof![
            Just(Source::GuestPosition),
            Just(Source::EstimatedWaitTime),
            Just(Source::Observations),
            Just(Source::Notifications),
        ]
    }

    prop_compose! {
        fn poll_event()(
            id in text(), timestamp in text(), queue in text(),
            name in proptest::option::of(text()), source in source(),
            position in proptest::option::of(any::<u32>()),
            wait in proptest::option::of(number()), smoothed in proptest::option::of(number()),
            waiting in proptest::option::of(any::<u32>()), agents in proptest::option::of(any::<u32>()),
            status in proptest::option::of(text()),
            flags in any::<(bool, bool, Option<bool>)>(),
            availability in proptest::option::of(prop_oneof![
                Just(Availability::High), Just(Availability::Moderate), Just(Availability::Low)
            ]),
            latency in number(), age in proptest::option::of(number()), attempts in any::<u32>(),
        ) -> Event {
            Event::Poll(PollEvent {
                id, timestamp, queue_id: queue.as_str().into(), queue_name: name, source,
                position, estimated_wait_seconds: wait, smoothed_wait_seconds: smoothed,
                waiting, agents_on_queue: agents, status,
                over_capacity: flags.0, exceeds_wait_directive: flags.1, below_min_agents: flags.2,
                agent_availability: availability, latency_ms: latency, data_age_ms: age, attempts,
            })
        }
    }

    prop_compose! {
        fn failed_event()(
            id in text(), timestamp in text(), queue in text(),
            name in proptest::option::of(text()), source in source(),
            error in proptest::sample::select(ErrorKind::ALL.to_vec()),
            detail in text(), attempts in any::<u32>(),
        ) -> Event {
            Event::PollFailed(PollFailedEvent {
                id, timestamp, queue_id: queue.as_str().into(), queue_name: name, source,
                error, detail, attempts,
            })
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn the_same_bytes_as_serde(event in prop_oneof![poll_event(), failed_event()]) {
            prop_assert_eq!(by_hand(&event), by_serde(&event));
        }
    }
}
