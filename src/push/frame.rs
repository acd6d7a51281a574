//! The text frames of the Genesys Notifications WebSocket, parsed into a
//! [`Frame`]. Pure: no I/O, no panics on any input.
//!
//! Shapes read (everything else is [`Frame::Other`]):
//!
//! - `{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}`
//!   (and `"pong"`, the answer to [`PING`]);
//! - `{"topicName":"v2.system.socket_closing",...}`;
//! - `{"topicName":"v2.analytics.queues.<id>.observations","eventBody":{"group":
//!   {"queueId":"<id>","mediaType":"message"},"data":[{"metrics":[{"metric":
//!   "oWaiting","stats":{"count":3}}]}]}}`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::genesys::wire::{is_kept_metric, truncate, MetricCount, MetricKey, MAX_COUNT};

/// What the client sends to ask for a `pong`.
pub(crate) const PING: &str = r#"{"message":"ping"}"#;

/// The largest frame parsed, in bytes (1 MiB); a larger one is
/// [`FrameError::TooLarge`] without being read.
pub(crate) const MAX_FRAME_BYTES: usize = 1 << 20;

const METADATA_TOPIC: &str = "channel.metadata";
const SOCKET_CLOSING_TOPIC: &str = "v2.system.socket_closing";
const QUEUE_TOPIC_PREFIX: &str = "v2.analytics.queues.";
const OBSERVATIONS_TOPIC_SUFFIX: &str = ".observations";

/// One parsed frame of the notifications socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A `channel.metadata` message other than `pong` (normally the
    /// `WebSocket Heartbeat`): the channel is alive.
    Heartbeat,
    /// The answer to [`PING`].
    Pong,
    /// Genesys is about to close the socket (maintenance); reconnect.
    SocketClosing,
    /// A queue observations notification.
    Observation(Observation),
    /// Any other topic (truncated), e.g. a subscription of another client.
    Other {
        /// The frame's `topicName`, truncated.
        topic: String,
    },
}

/// The counts one observations notification carries for one queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Observation {
    /// The queue id, as the notification spells it.
    pub queue_id: String,
    /// The kept metrics (`oWaiting`, `oOnQueueUsers`), one per key, sorted by key.
    pub metrics: Vec<MetricCount>,
}

/// Why a frame could not be read.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub(crate) enum FrameError {
    /// The frame is larger than [`MAX_FRAME_BYTES`] (its length in bytes).
    #[error("frame of {0} bytes is larger than {MAX_FRAME_BYTES}")]
    TooLarge(usize),
    /// The frame is not JSON (serde's message, truncated).
    #[error("frame is not JSON: {0}")]
    Json(String),
    /// The frame is JSON but not a valid notification.
    #[error("invalid frame: {0}")]
    Invalid(String),
    /// The topic names another queue than the body's group.
    #[error("topic is for queue {topic:?}, its body for queue {group:?}")]
    QueueMismatch {
        /// The queue id of the topic name (truncated).
        topic: String,
        /// The queue id of the body's group (truncated).
        group: String,
    },
}

/// The observations topic of one queue: `v2.analytics.queues.{id}.observations`.
pub(crate) fn topic_for(queue_id: &str) -> String {
    format!("{QUEUE_TOPIC_PREFIX}{queue_id}{OBSERVATIONS_TOPIC_SUFFIX}")
}

/// The queue id of an observations topic name: `None` unless `topic` is
/// `v2.analytics.queues.{id}.observations` with a non-empty id without dots.
pub(crate) fn queue_of_topic(topic: &str) -> Option<&str> {
    let id = topic
        .strip_prefix(QUEUE_TOPIC_PREFIX)?
        .strip_suffix(OBSERVATIONS_TOPIC_SUFFIX)?;
    (!id.is_empty() && !id.contains('.')).then_some(id)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[serde(default)]
    topic_name: Option<String>,
    #[serde(default)]
    event_body: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct MetadataBody {
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct ObservationBody {
    #[serde(default)]
    group: Option<Group>,
    #[serde(default)]
    data: Option<Vec<Data>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Group {
    #[serde(default)]
    queue_id: Option<String>,
    #[serde(default)]
    media_type: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(default)]
    metrics: Option<Vec<Metric>>,
}

#[derive(Deserialize)]
struct Metric {
    metric: String,
    #[serde(default)]
    qualifier: Option<String>,
    stats: Stats,
}

#[derive(Deserialize)]
struct Stats {
    // A number of any size: a count out of range is `Invalid`, not `Json`.
    #[serde(default)]
    count: Option<serde_json::Number>,
}

/// Parses one text frame of the notifications socket. Frames over
/// [`MAX_FRAME_BYTES`] are refused before parsing.
pub(crate) fn parse(text: &str) -> Result<Frame, FrameError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(text.len()));
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(json)?;
    if !value.is_object() {
        return Err(FrameError::Invalid("frame is not a JSON object".into()));
    }
    let envelope: Envelope = serde_json::from_value(value).map_err(invalid)?;
    let topic = envelope
        .topic_name
        .ok_or_else(|| FrameError::Invalid("frame has no topicName".into()))?;
    match topic.as_str() {
        METADATA_TOPIC => Ok(metadata(envelope.event_body)),
        SOCKET_CLOSING_TOPIC => Ok(Frame::SocketClosing),
        _ => match queue_of_topic(&topic) {
            Some(topic_queue) => {
                let body = envelope.event_body.ok_or_else(|| {
                    FrameError::Invalid("observations frame has no eventBody".into())
                })?;
                observation(topic_queue, body).map(Frame::Observation)
            }
            None => Ok(Frame::Other {
                topic: truncate(&topic),
            }),
        },
    }
}

fn metadata(body: Option<serde_json::Value>) -> Frame {
    let message = body
        .and_then(|b| serde_json::from_value::<MetadataBody>(b).ok())
        .and_then(|b| b.message);
    match message {
        Some(m) if m.eq_ignore_ascii_case("pong") => Frame::Pong,
        _ => Frame::Heartbeat,
    }
}

fn observation(topic_queue: &str, body: serde_json::Value) -> Result<Observation, FrameError> {
    if !body.is_object() {
        return Err(FrameError::Invalid(
            "observations eventBody is not an object".into(),
        ));
    }
    let body: ObservationBody = serde_json::from_value(body).map_err(invalid)?;
    let (group_queue, media_type) = match body.group {
        Some(group) => (group.queue_id, group.media_type),
        None => (None, None),
    };
    let queue_id = match group_queue {
        Some(group) if !group.eq_ignore_ascii_case(topic_queue) => {
            return Err(FrameError::QueueMismatch {
                topic: truncate(topic_queue),
                group: truncate(&group),
            });
        }
        Some(group) => group,
        None => topic_queue.to_string(),
    };
    let mut counts: BTreeMap<MetricKey, u32> = BTreeMap::new();
    for metric in body
        .data
        .unwrap_or_default()
        .into_iter()
        .flat_map(|d| d.metrics.unwrap_or_default())
    {
        if !is_kept_metric(&metric.metric) {
            continue;
        }
        let count = match metric.stats.count {
            None => 0,
            Some(n) => n
                .as_u64()
                .and_then(|c| u32::try_from(c).ok())
                .filter(|c| *c <= MAX_COUNT)
                .ok_or_else(|| {
                    FrameError::Invalid(format!(
                        "{} count {} for queue {} is outside 0..={MAX_COUNT}",
                        metric.metric,
                        truncate(&n.to_string()),
                        truncate(&queue_id)
                    ))
                })?,
        };
        let key = MetricKey {
            metric: metric.metric,
            qualifier: metric.qualifier,
            media_type: media_type.clone(),
        };
        counts.insert(key, count); // a later duplicate wins
    }
    let metrics = counts
        .into_iter()
        .map(|(metric, count)| MetricCount { metric, count })
        .collect();
    Ok(Observation { queue_id, metrics })
}

fn json(err: serde_json::Error) -> FrameError {
    FrameError::Json(truncate(&err.to_string()))
}

fn invalid(err: serde_json::Error) -> FrameError {
    FrameError::Invalid(truncate(&err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesys::wire::{METRIC_ON_QUEUE_USERS, METRIC_WAITING};

    const Q: &str = "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10";

    fn mc(metric: &str, qualifier: Option<&str>, media: Option<&str>, count: u32) -> MetricCount {
        MetricCount {
            metric: MetricKey {
                metric: metric.to_string(),
                qualifier: qualifier.map(str::to_string),
                media_type: media.map(str::to_string),
            },
            count,
        }
    }

    fn observation_frame(group: &str, data: &str) -> String {
        format!(
            r#"{{"topicName":"{}","version":"2","eventBody":{{"group":{group},"data":{data}}},"metadata":{{"CorrelationId":"c-1"}}}}"#,
            topic_for(Q)
        )
    }

    #[test]
    fn channel_frames() {
        let meta = |body: &str| format!(r#"{{"topicName":"channel.metadata"{body}}}"#);
        let other = |topic: &str| {
            (
                format!(r#"{{"topicName":"{topic}"}}"#),
                Frame::Other {
                    topic: topic.into(),
                },
            )
        };
        let cases = [
            (
                meta(r#","eventBody":{"message":"WebSocket Heartbeat"}"#),
                Frame::Heartbeat,
            ),
            (meta(r#","eventBody":{"message":"pong"}"#), Frame::Pong),
            (meta(""), Frame::Heartbeat),
            (meta(r#","eventBody":[1,2]"#), Frame::Heartbeat),
            (
                r#"{"topicName":"v2.system.socket_closing","eventBody":{"message":"bye"}}"#.into(),
                Frame::SocketClosing,
            ),
            other("v2.users.abc.presence"),
            other("v2.analytics.queues.abc.conversations"),
        ];
        for (text, want) in cases {
            assert_eq!(parse(&text), Ok(want), "{text}");
        }
    }

    #[test]
    fn observation_with_media_type_and_qualifier() {
        let text = observation_frame(
            &format!(r#"{{"queueId":"{Q}","mediaType":"message"}}"#),
            r#"[{"interval":"2024-01-01T00:00:00Z/2024-01-01T00:00:01Z","metrics":[
                {"metric":"oWaiting","stats":{"count":3}},
                {"metric":"oInteracting","stats":{"count":9}},
                {"metric":"oOnQueueUsers","qualifier":"IDLE","stats":{"count":2}}]}]"#,
        );
        let want = Observation {
            queue_id: Q.into(),
            metrics: vec![
                mc(METRIC_ON_QUEUE_USERS, Some("IDLE"), Some("message"), 2),
                mc(METRIC_WAITING, None, Some("message"), 3),
            ],
        };
        assert_eq!(parse(&text), Ok(Frame::Observation(want)));
    }

    #[test]
    fn observation_queue_id_sources() {
        let data = r#"[{"metrics":[{"metric":"oWaiting","stats":{}}]}]"#;
        let from_topic = Observation {
            queue_id: Q.into(),
            metrics: vec![mc(METRIC_WAITING, None, None, 0)],
        };
        assert_eq!(
            parse(&observation_frame("{}", data)),
            Ok(Frame::Observation(from_topic.clone()))
        );
        assert_eq!(
            parse(&observation_frame("null", data)),
            Ok(Frame::Observation(from_topic))
        );
        // The group's spelling is kept; case does not make a mismatch.
        let upper = Q.to_ascii_uppercase();
        match parse(&observation_frame(
            &format!(r#"{{"queueId":"{upper}"}}"#),
            data,
        )) {
            Ok(Frame::Observation(o)) => assert_eq!(o.queue_id, upper),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse(&observation_frame(r#"{"queueId":"other"}"#, data)),
            Err(FrameError::QueueMismatch {
                topic: Q.into(),
                group: "other".into()
            })
        );
    }

    #[test]
    fn several_data_entries_later_duplicate_wins() {
        let text = observation_frame(
            r#"{"mediaType":"voice"}"#,
            r#"[{"metrics":[{"metric":"oWaiting","stats":{"count":1}},
                            {"metric":"oOnQueueUsers","qualifier":"IDLE","stats":{"count":4}}]},
                {"metrics":[{"metric":"oWaiting","stats":{"count":5}}]},
                {}]"#,
        );
        let Ok(Frame::Observation(o)) = parse(&text) else {
            panic!("{:?}", parse(&text));
        };
        assert_eq!(
            o.metrics,
            vec![
                mc(METRIC_ON_QUEUE_USERS, Some("IDLE"), Some("voice"), 4),
                mc(METRIC_WAITING, None, Some("voice"), 5),
            ]
        );
        let empty = observation_frame("{}", "[]");
        assert!(matches!(parse(&empty), Ok(Frame::Observation(o)) if o.metrics.is_empty()));
    }

    #[test]
    fn counts_are_range_checked() {
        let frame = |count: &str| {
            parse(&observation_frame(
                "{}",
                &format!(
                    r#"[{{"metrics":[{{"metric":"oWaiting","stats":{{"count":{count}}}}}]}}]"#
                ),
            ))
        };
        assert!(frame("1000000").is_ok());
        assert!(frame("0").is_ok());
        for bad in [
            "1000001",
            "-1",
            "4294967296",
            "99999999999999999999",
            "1e300",
            "1.5",
            "\"3\"",
        ] {
            assert!(
                matches!(frame(bad), Err(FrameError::Invalid(_))),
                "{bad}: {:?}",
                frame(bad)
            );
        }
        // An ignored metric is not checked.
        let ignored = observation_frame(
            "{}",
            r#"[{"metrics":[{"metric":"oInteracting","stats":{"count":-5}}]}]"#,
        );
        assert!(parse(&ignored).is_ok());
    }

    #[test]
    fn hostile_frames() {
        let long = "x".repeat(2 << 20);
        assert_eq!(parse(&long), Err(FrameError::TooLarge(2 << 20)));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(parse(&deep), Err(FrameError::Json(_))));
        for text in [
            "",
            "not json",
            "{",
            "\u{0}",
            "{\"topicName\":\"a\"} trailing",
        ] {
            assert!(matches!(parse(text), Err(FrameError::Json(_))), "{text:?}");
        }
        let topic = topic_for(Q);
        let plain = [
            "[]",
            r#"["channel.metadata"]"#,
            "42",
            "null",
            "{}",
            r#"{"topicName":5}"#,
        ];
        for text in plain.map(String::from).into_iter().chain([
            format!(r#"{{"topicName":"{topic}"}}"#),
            format!(r#"{{"topicName":"{topic}","eventBody":null}}"#),
            format!(r#"{{"topicName":"{topic}","eventBody":[1]}}"#),
            format!(r#"{{"topicName":"{topic}","eventBody":{{"data":5}}}}"#),
            format!(
                r#"{{"topicName":"{topic}","eventBody":{{"data":[{{"metrics":[{{"metric":"oWaiting"}}]}}]}}}}"#
            ),
        ]) {
            let got = parse(&text);
            assert!(
                matches!(got, Err(FrameError::Invalid(_))),
                "{text}: {got:?}"
            );
        }
        // Unicode everywhere, truncated where it is echoed.
        let wide = "é".repeat(500);
        let got = parse(&format!(r#"{{"topicName":"{wide}"}}"#));
        let Ok(Frame::Other { topic }) = got else {
            panic!("{got:?}");
        };
        assert!(topic.chars().count() <= 121 && topic.starts_with('é'));
        let mismatch = observation_frame(&format!(r#"{{"queueId":"{wide}"}}"#), "[]");
        assert!(
            matches!(parse(&mismatch), Err(FrameError::QueueMismatch { group, .. }) if group.chars().count() <= 121)
        );
    }

    #[test]
    fn topic_round_trip() {
        assert_eq!(
            topic_for(Q),
            format!("v2.analytics.queues.{Q}.observations")
        );
        assert_eq!(queue_of_topic(&topic_for(Q)), Some(Q));
        for bad in [
            "",
            "v2.analytics.queues..observations",
            "v2.analytics.queues.a.b.observations",
            "v2.analytics.queues.abc",
            "analytics.queues.abc.observations",
            "v2.analytics.queues.abc.observations.x",
            "channel.metadata",
        ] {
            assert_eq!(queue_of_topic(bad), None, "{bad}");
        }
        assert_eq!(PING, r#"{"message":"ping"}"#);
    }
}
