//! The event of a push tick: built from the queue's freshest data, without
//! a request (a pure function of the spec, the view and the time, as the
//! monotonic clock for the data's age and the wall clock for the record).

use std::time::SystemTime;

use tokio::time::Instant;

use super::store::View;
use crate::actors::poller::PollerSpec;
use crate::config::Source;
use crate::event::{new_event_id, timestamp_of, Event, PollEvent};
use crate::state::QueueState;
use crate::tracking::CycleReport;

/// The event and the matrix report of one tick of `spec`'s queue.
pub(crate) fn event(
    spec: &PollerSpec,
    view: &View,
    now: Instant,
    at: SystemTime,
) -> (Event, CycleReport) {
    let sample = view.sample();
    let state = QueueState::evaluate(&sample, &spec.thresholds);
    let data_age_ms = view
        .updated_at
        .map(|at| now.saturating_duration_since(at).as_secs_f64() * 1000.0);
    let event = Event::Poll(PollEvent {
        id: new_event_id(),
        timestamp: timestamp_of(at),
        queue_id: spec.queue_id.clone(),
        queue_name: spec.name.clone(),
        source: Source::Notifications,
        position: None,
        estimated_wait_seconds: sample.estimated_wait_seconds,
        smoothed_wait_seconds: None,
        waiting: sample.waiting,
        agents_on_queue: sample.agents_on_queue,
        status: None,
        over_capacity: state.over_capacity,
        exceeds_wait_directive: state.exceeds_wait_directive,
        below_min_agents: state.below_min_agents,
        agent_availability: state.agent_availability,
        latency_ms: 0.0,
        data_age_ms,
        attempts: 0,
    });
    let report = CycleReport {
        outcome: Ok(sample),
        latency: None,
        attempts: 0,
        rate_limited: 0,
        smoothing_factor: spec.thresholds.smoothing_factor,
        at,
    };
    (event, report)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::push::store::Link;

    fn spec() -> PollerSpec {
        PollerSpec {
            queue_id: "q1".into(),
            name: Some("support".into()),
            source: Source::Notifications,
            interval: Duration::from_secs(1),
            phase: 0.0,
            thresholds: crate::config::Thresholds::default(),
        }
    }

    #[test]
    fn a_tick_carries_the_view_and_its_age() {
        let now = Instant::now();
        let view = View {
            link: Link::Push,
            waiting: Some(60),
            agents_on_queue: Some(1),
            estimated_wait_seconds: Some(400.0),
            updated_at: Some(now - Duration::from_millis(250)),
        };
        let at = std::time::UNIX_EPOCH + Duration::from_millis(1_764_000_000_123);
        let (event, report) = event(&spec(), &view, now, at);
        let Event::Poll(e) = event else {
            panic!("a poll event")
        };
        assert_eq!((e.waiting, e.agents_on_queue), (Some(60), Some(1)));
        assert_eq!(e.data_age_ms, Some(250.0));
        assert_eq!((e.position, e.status, e.attempts), (None, None, 0));
        assert!(e.over_capacity && e.exceeds_wait_directive);
        assert_eq!(e.below_min_agents, Some(true));
        assert_eq!(report.attempts, 0);
        assert_eq!(report.at, at);
        assert_eq!(e.timestamp, "2025-11-24T16:00:00.123Z");
    }

    #[test]
    fn no_data_yet_is_null_not_invented() {
        let view = View {
            link: Link::Connecting,
            waiting: None,
            agents_on_queue: None,
            estimated_wait_seconds: None,
            updated_at: None,
        };
        let (event, _) = event(&spec(), &view, Instant::now(), SystemTime::now());
        let Event::Poll(e) = event else {
            panic!("a poll event")
        };
        assert_eq!(
            (e.waiting, e.data_age_ms, e.agent_availability),
            (None, None, None)
        );
        assert!(!e.over_capacity);
    }
}
