//! Queue state flags from one sample and the queue's thresholds (docs/events.md).

use crate::config::Thresholds;
use crate::event::Availability;
use crate::genesys::Sample;

/// The flags of one successful poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueState {
    /// Position (or waiting count) above `max_queue_depth`.
    pub over_capacity: bool,
    /// Estimated wait above `max_acceptable_wait`.
    pub exceeds_wait_directive: bool,
    /// Agents on queue below `min_agent_count`; `None` when the source gives no count.
    pub below_min_agents: Option<bool>,
    /// Availability; `None` when the source gives neither wait nor depth.
    pub agent_availability: Option<Availability>,
}

impl QueueState {
    /// Evaluates `sample` against `thresholds`.
    pub fn evaluate(sample: &Sample, thresholds: &Thresholds) -> QueueState {
        // `waiting` stands in for position where the source gives no position.
        let depth = sample.position.or(sample.waiting);
        let wait = sample.estimated_wait_seconds;
        QueueState {
            over_capacity: depth.is_some_and(|d| d > thresholds.max_queue_depth),
            exceeds_wait_directive: wait
                .is_some_and(|w| w > thresholds.max_acceptable_wait.as_secs_f64()),
            below_min_agents: sample
                .agents_on_queue
                .map(|agents| agents < thresholds.min_agent_count),
            agent_availability: availability(wait, depth),
        }
    }
}

/// `high` when wait < 60 s and depth <= 5, `moderate` when wait < 300 s and
/// depth <= 20, else `low`; a missing input is left out of the rule.
fn availability(wait: Option<f64>, depth: Option<u32>) -> Option<Availability> {
    if wait.is_none() && depth.is_none() {
        return None;
    }
    let fits = |max_wait: f64, max_depth: u32| {
        wait.is_none_or(|w| w < max_wait) && depth.is_none_or(|d| d <= max_depth)
    };
    Some(if fits(60.0, 5) {
        Availability::High
    } else if fits(300.0, 20) {
        Availability::Moderate
    } else {
        Availability::Low
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn thresholds() -> Thresholds {
        Thresholds {
            max_acceptable_wait: Duration::from_secs(300),
            smoothing_factor: 0.8,
            max_queue_depth: 50,
            min_agent_count: 3,
        }
    }

    fn position(pos: u32, wait: f64) -> Sample {
        Sample {
            position: Some(pos),
            estimated_wait_seconds: Some(wait),
            status: Some("waiting".into()),
            ..Sample::default()
        }
    }

    #[test]
    fn availability_rule() {
        let t = thresholds();
        let a = |s: Sample| QueueState::evaluate(&s, &t).agent_availability;
        assert_eq!(a(position(5, 59.9)), Some(Availability::High));
        assert_eq!(a(position(6, 10.0)), Some(Availability::Moderate));
        assert_eq!(a(position(3, 60.0)), Some(Availability::Moderate));
        assert_eq!(a(position(20, 299.0)), Some(Availability::Moderate));
        assert_eq!(a(position(21, 1.0)), Some(Availability::Low));
        assert_eq!(a(position(1, 300.0)), Some(Availability::Low));
        // estimated_wait_time: wait only.
        let ewt = Sample {
            estimated_wait_seconds: Some(30.0),
            ..Sample::default()
        };
        assert_eq!(a(ewt), Some(Availability::High));
        // observations: waiting stands in for position.
        let obs = Sample {
            waiting: Some(12),
            agents_on_queue: Some(4),
            ..Sample::default()
        };
        assert_eq!(a(obs), Some(Availability::Moderate));
        assert_eq!(a(Sample::default()), None);
    }

    #[test]
    fn flags() {
        let t = thresholds();
        let s = QueueState::evaluate(&position(51, 301.0), &t);
        assert!(s.over_capacity && s.exceeds_wait_directive);
        assert_eq!(s.below_min_agents, None);
        let s = QueueState::evaluate(&position(50, 300.0), &t);
        assert!(!s.over_capacity && !s.exceeds_wait_directive);
        let obs = Sample {
            waiting: Some(60),
            agents_on_queue: Some(2),
            ..Sample::default()
        };
        let s = QueueState::evaluate(&obs, &t);
        assert!(s.over_capacity);
        assert_eq!(s.below_min_agents, Some(true));
        assert!(!s.exceeds_wait_directive);
    }
}
