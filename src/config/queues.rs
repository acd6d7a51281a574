//! `queues:` entries and the alert `thresholds:` (global, and per-queue overrides).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use super::{duration, number};
use crate::QueueId;

/// One watched queue (`queues[i]`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    /// The Genesys queue id: a lowercase hyphenated UUID
    /// (`0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10`).
    pub id: QueueId,
    /// Optional label shown in events, logs and the status page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Optional per-queue override of `poll.interval`; at least 5s.
    #[serde(
        default,
        with = "duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub interval: Option<Duration>,
    /// Optional per-queue override of any of the global `thresholds`.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "ThresholdOverrides::is_empty"
    )]
    pub thresholds: ThresholdOverrides,
}

impl QueueSettings {
    /// A queue with this id and no name or overrides.
    pub fn new(id: impl Into<QueueId>) -> QueueSettings {
        QueueSettings {
            id: id.into(),
            name: None,
            interval: None,
            thresholds: ThresholdOverrides::default(),
        }
    }

    /// The name if set, else the id (for logs and display).
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// `thresholds:` — when a poll result raises a flag in its event.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// A wait above this sets `exceeds_wait_directive`. Must be above 0.
    #[serde(default = "default_max_acceptable_wait", with = "duration")]
    pub max_acceptable_wait: Duration,
    /// Alpha of the smoothed wait `s = alpha*sample + (1-alpha)*s_prev`, with `0 < alpha <= 1`
    /// (1 = no smoothing).
    #[serde(
        default = "default_smoothing_factor",
        deserialize_with = "number::strict"
    )]
    pub smoothing_factor: f64,
    /// A position (or, for `observations`, a waiting count) above this sets
    /// `over_capacity`. At least 1.
    #[serde(
        default = "default_max_queue_depth",
        deserialize_with = "number::strict"
    )]
    pub max_queue_depth: u32,
    /// Fewer agents on queue than this sets `below_min_agents` (`observations`
    /// source only); 0 disables the check.
    #[serde(
        default = "default_min_agent_count",
        deserialize_with = "number::strict"
    )]
    pub min_agent_count: u32,
}

pub(crate) fn default_max_acceptable_wait() -> Duration {
    Duration::from_secs(300)
}
pub(crate) fn default_smoothing_factor() -> f64 {
    0.8
}
pub(crate) fn default_max_queue_depth() -> u32 {
    50
}
pub(crate) fn default_min_agent_count() -> u32 {
    3
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_acceptable_wait: default_max_acceptable_wait(),
            smoothing_factor: default_smoothing_factor(),
            max_queue_depth: default_max_queue_depth(),
            min_agent_count: default_min_agent_count(),
        }
    }
}

impl Thresholds {
    /// These thresholds with every value the overrides set replaced.
    pub fn with_overrides(&self, overrides: &ThresholdOverrides) -> Thresholds {
        Thresholds {
            max_acceptable_wait: overrides
                .max_acceptable_wait
                .unwrap_or(self.max_acceptable_wait),
            smoothing_factor: overrides.smoothing_factor.unwrap_or(self.smoothing_factor),
            max_queue_depth: overrides.max_queue_depth.unwrap_or(self.max_queue_depth),
            min_agent_count: overrides.min_agent_count.unwrap_or(self.min_agent_count),
        }
    }
}

/// `queues[i].thresholds:` — any subset of [`Thresholds`]; unset keys keep the global value.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ThresholdOverrides {
    /// Overrides `thresholds.max_acceptable_wait`.
    #[serde(
        default,
        with = "duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_acceptable_wait: Option<Duration>,
    /// Overrides `thresholds.smoothing_factor`.
    #[serde(
        default,
        deserialize_with = "number::strict_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub smoothing_factor: Option<f64>,
    /// Overrides `thresholds.max_queue_depth`.
    #[serde(
        default,
        deserialize_with = "number::strict_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_queue_depth: Option<u32>,
    /// Overrides `thresholds.min_agent_count`.
    #[serde(
        default,
        deserialize_with = "number::strict_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_agent_count: Option<u32>,
}

impl ThresholdOverrides {
    /// Whether no threshold is overridden.
    pub fn is_empty(&self) -> bool {
        *self == ThresholdOverrides::default()
    }
}

/// `thresholds:` with nothing under it reads as `null`: no overrides.
fn null_as_empty<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<ThresholdOverrides, D::Error> {
    Ok(Option::deserialize(deserializer)?.unwrap_or_default())
}
