//! The push source (`poll.source: notifications`): channels open, topics
//! subscribed, messages by kind, channel set-ups by reason, queues on
//! fallback polling, wait-time polls, and the data age at the event.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::labels::{PushMessage, PushMessageLabels, Reconnect, ReconnectLabels};
use super::Telemetry;

pub(super) struct PushMetrics {
    channels: Gauge,
    topics: Gauge,
    messages: Family<PushMessageLabels, Counter>,
    reconnects: Family<ReconnectLabels, Counter>,
    fallback: Gauge,
    wait_polls: Counter,
    data_age: Histogram,
}

impl PushMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let channels = Gauge::default();
        registry.register(
            "push_channels_open",
            "Notification channels with a live WebSocket",
            channels.clone(),
        );
        let topics = Gauge::default();
        registry.register(
            "push_topics_subscribed",
            "Queue topics subscribed on live channels",
            topics.clone(),
        );
        let messages = Family::<PushMessageLabels, Counter>::default();
        registry.register(
            "push_messages",
            "Frames received on channel WebSockets, by kind",
            messages.clone(),
        );
        let reconnects = Family::<ReconnectLabels, Counter>::default();
        registry.register(
            "push_reconnects",
            "Channels set up again, by reason",
            reconnects.clone(),
        );
        let fallback = Gauge::default();
        registry.register(
            "push_queues_on_fallback",
            "Queues polled with observations because their channel is down",
            fallback.clone(),
        );
        let wait_polls = Counter::default();
        registry.register(
            "push_wait_time_polls",
            "Estimated-wait-time requests of poll.wait_time: active",
            wait_polls.clone(),
        );
        let data_age =
            Histogram::new([0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]);
        registry.register_with_unit(
            "push_data_age",
            "Age of the newest data in a notifications event",
            Unit::Seconds,
            data_age.clone(),
        );
        for &kind in PushMessage::ALL {
            let _ = messages.get_or_create(&PushMessageLabels { kind });
        }
        for &reason in Reconnect::ALL {
            let _ = reconnects.get_or_create(&ReconnectLabels { reason });
        }
        PushMetrics {
            channels,
            topics,
            messages,
            reconnects,
            fallback,
            wait_polls,
            data_age,
        }
    }
}

fn gauge(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

impl Telemetry {
    /// Channels with a live socket, and the topics they carry.
    pub(crate) fn set_push_channels(&self, channels: usize, topics: usize) {
        self.inner.push.channels.set(gauge(channels));
        self.inner.push.topics.set(gauge(topics));
    }

    /// A frame arrived on a channel socket.
    pub(crate) fn push_message(&self, kind: PushMessage) {
        let messages = &self.inner.push.messages;
        messages.get_or_create(&PushMessageLabels { kind }).inc();
    }

    /// A channel is set up again.
    pub(crate) fn push_reconnect(&self, reason: Reconnect) {
        let reconnects = &self.inner.push.reconnects;
        reconnects.get_or_create(&ReconnectLabels { reason }).inc();
    }

    /// Queues on fallback polling now.
    pub(crate) fn set_push_fallback(&self, queues: usize) {
        self.inner.push.fallback.set(gauge(queues));
    }

    /// One estimated-wait-time request of `wait_time: active`.
    pub(crate) fn push_wait_polled(&self) {
        self.inner.push.wait_polls.inc();
    }

    /// The data age of one notifications event.
    pub(crate) fn push_data_age(&self, age: Duration) {
        self.inner.push.data_age.observe(age.as_secs_f64());
    }

    /// Frames received of `kind` so far.
    pub fn push_messages(&self, kind: &str) -> u64 {
        PushMessage::ALL
            .iter()
            .filter(|k| k.as_str() == kind)
            .filter_map(|&kind| {
                let messages = &self.inner.push.messages;
                messages.get(&PushMessageLabels { kind }).map(|c| c.get())
            })
            .sum()
    }
}
