//! Topic names and the body of the subscription calls.

use serde::Deserialize;

/// Most topics one channel may hold.
pub(crate) const MAX_TOPICS: usize = 1_000;

const TOPIC_PREFIX: &str = "v2.analytics.queues.";
const TOPIC_SUFFIX: &str = ".observations";

/// The topic of a queue's observations.
pub(crate) fn topic_of(queue_id: &str) -> String {
    format!("{TOPIC_PREFIX}{queue_id}{TOPIC_SUFFIX}")
}

/// The queue id of `v2.analytics.queues.{queueId}.observations`.
pub(crate) fn queue_of(topic: &str) -> Option<&str> {
    let id = topic
        .strip_prefix(TOPIC_PREFIX)?
        .strip_suffix(TOPIC_SUFFIX)?;
    (!id.is_empty() && !id.contains('.')).then_some(id)
}

/// Why a subscription body is refused (the message of the 400 answer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TopicError {
    /// Not a JSON array of `{"id": "<topic>"}`.
    #[error("Unable to parse the request body: {0}")]
    Body(String),
    /// A topic the simulator does not serve.
    #[error("Topic '{0}' is not supported: expected v2.analytics.queues.{{queueId}}.observations")]
    Unsupported(String),
    /// The channel would hold too many topics.
    #[error("A channel may hold at most {max} topics; this request would leave {0}", max = MAX_TOPICS)]
    TooMany(usize),
}

#[derive(Deserialize)]
struct RawTopic {
    id: String,
}

/// The queue ids of a `[{"id":"<topic>"},...]` body, without duplicates, in
/// request order.
pub(crate) fn parse_body(body: &[u8]) -> Result<Vec<String>, TopicError> {
    let raw: Vec<RawTopic> =
        serde_json::from_slice(body).map_err(|err| TopicError::Body(err.to_string()))?;
    let mut ids: Vec<String> = Vec::with_capacity(raw.len());
    let mut seen = std::collections::HashSet::with_capacity(raw.len());
    for topic in raw {
        let id = queue_of(&topic.id).ok_or_else(|| TopicError::Unsupported(topic.id.clone()))?;
        if seen.insert(id.to_owned()) {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        assert_eq!(queue_of(&topic_of("q-1")), Some("q-1"));
        assert_eq!(queue_of("v2.analytics.queues..observations"), None);
        assert_eq!(queue_of("v2.analytics.queues.a.b.observations"), None);
        assert_eq!(queue_of("v2.users.u.presence"), None);
    }

    #[test]
    fn bodies_are_checked() {
        let body = br#"[{"id":"v2.analytics.queues.a.observations"},
            {"id":"v2.analytics.queues.b.observations","extra":1},
            {"id":"v2.analytics.queues.a.observations"}]"#;
        assert_eq!(parse_body(body), Ok(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(parse_body(b"[]"), Ok(Vec::new()));
        for bad in [&b"{}"[..], b"[{}]", b"[1]", b"not json", b""] {
            assert!(
                matches!(parse_body(bad), Err(TopicError::Body(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_body(br#"[{"id":"channel.metadata"}]"#),
            Err(TopicError::Unsupported("channel.metadata".to_owned()))
        );
    }
}
