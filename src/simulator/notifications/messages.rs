//! The JSON text frames a notification socket sends.

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::topics::topic_of;

/// The figures of a queue that the observation topic carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Figures {
    /// Customers waiting (`oWaiting`).
    pub waiting: u32,
    /// Agents interacting (`oInteracting`, `oOnQueueUsers` `INTERACTING`).
    pub interacting: u32,
    /// Agents idle (`oOnQueueUsers` `IDLE`).
    pub idle: u32,
}

/// `{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}`.
pub(crate) fn heartbeat() -> String {
    metadata("WebSocket Heartbeat")
}

/// `{"topicName":"channel.metadata","eventBody":{"message":"pong"}}`.
pub(crate) fn pong() -> String {
    metadata("pong")
}

fn metadata(message: &str) -> String {
    json!({"topicName": "channel.metadata", "eventBody": {"message": message}}).to_string()
}

/// True for a client text frame `{"message":"ping"}`.
pub(crate) fn is_ping(text: &str) -> bool {
    serde_json::from_str::<Value>(text)
        .ok()
        .is_some_and(|value| value.get("message").and_then(Value::as_str) == Some("ping"))
}

/// `v2.system.socket_closing`: the server closes the socket soon.
pub(crate) fn socket_closing() -> String {
    json!({
        "topicName": "v2.system.socket_closing",
        "eventBody": {"message": "The WebSocket will be closed shortly; open a new one"},
        "metadata": {"CorrelationId": uuid::Uuid::new_v4().to_string()},
    })
    .to_string()
}

/// An observation message carrying only the metrics that differ between
/// `before` and `after`; `None` when nothing differs.
pub(crate) fn observation(
    queue_id: &str,
    before: Figures,
    after: Figures,
    at: SystemTime,
    period: Duration,
) -> Option<String> {
    let mut metrics: Vec<Value> = Vec::with_capacity(4);
    if before.waiting != after.waiting {
        metrics.push(json!({"metric": "oWaiting", "stats": {"count": after.waiting}}));
    }
    if before.interacting != after.interacting {
        metrics.push(json!({"metric": "oInteracting", "stats": {"count": after.interacting}}));
    }
    if before.idle != after.idle {
        metrics.push(users("IDLE", after.idle));
    }
    if before.interacting != after.interacting {
        metrics.push(users("INTERACTING", after.interacting));
    }
    if metrics.is_empty() {
        return None;
    }
    let start = at.checked_sub(period).unwrap_or(at);
    let interval = format!(
        "{}/{}",
        humantime::format_rfc3339_millis(start),
        humantime::format_rfc3339_millis(at)
    );
    Some(
        json!({
            "topicName": topic_of(queue_id),
            "version": "2",
            "eventBody": {
                "group": {"queueId": queue_id, "mediaType": "message"},
                "data": [{"interval": interval, "metrics": metrics}],
            },
            "metadata": {"CorrelationId": uuid::Uuid::new_v4().to_string()},
        })
        .to_string(),
    )
}

fn users(qualifier: &str, count: u32) -> Value {
    json!({"metric": "oOnQueueUsers", "qualifier": qualifier, "stats": {"count": count}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_metrics_are_sent() {
        let before = Figures {
            waiting: 3,
            interacting: 1,
            idle: 2,
        };
        let at = SystemTime::now();
        let period = Duration::from_secs(1);
        assert_eq!(observation("q", before, before, at, period), None);
        let idle =
            observation("q", before, Figures { idle: 1, ..before }, at, period).expect("a change");
        let idle: Value = serde_json::from_str(&idle).expect("json");
        assert_eq!(idle["topicName"], "v2.analytics.queues.q.observations");
        assert_eq!(
            idle["eventBody"]["data"][0]["metrics"],
            json!([{"metric":"oOnQueueUsers","qualifier":"IDLE","stats":{"count":1}}])
        );
        let all = Figures {
            waiting: 4,
            interacting: 2,
            idle: 0,
        };
        let all: Value =
            serde_json::from_str(&observation("q", before, all, at, period).expect("a change"))
                .expect("json");
        assert_eq!(
            all["eventBody"]["data"][0]["metrics"]
                .as_array()
                .map(Vec::len),
            Some(4)
        );
        assert_eq!(
            all["eventBody"]["group"],
            json!({"queueId":"q","mediaType":"message"})
        );
    }

    #[test]
    fn pings_are_recognised() {
        assert!(is_ping(r#"{"message":"ping"}"#));
        assert!(!is_ping(r#"{"message":"pong"}"#));
        assert!(!is_ping("ping"));
    }
}
