//! The Genesys Cloud wire format: request bodies, response bodies, and their
//! validation into a [`Sample`]. Pure functions, no I/O.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, PollError};

/// Path of the OAuth token endpoint on the login host.
pub const TOKEN_PATH: &str = "/oauth/token";
/// Path of the batched analytics observations query on the API host.
pub const OBSERVATIONS_PATH: &str = "/api/v2/analytics/queues/observations/query";
/// Genesys accepts at most this many queue predicates in one observations query.
pub const OBSERVATIONS_MAX_QUEUES: usize = 100;
/// The metrics queuewatch asks the observations query for.
pub const OBSERVATION_METRICS: [&str; 3] = ["oWaiting", "oInteracting", "oOnQueueUsers"];

/// Longest estimated wait believed, in seconds (7 days). A longer one (say
/// `1e300`) is `invalid_response`: no contact center queues a guest for a week,
/// and such values would poison averages, smoothing and the page's charts.
pub const MAX_WAIT_SECONDS: f64 = 7.0 * 24.0 * 3600.0;
/// Largest queue position, waiting count or agent count believed; larger is
/// `invalid_response`.
pub const MAX_COUNT: u32 = 1_000_000;

/// Whether a `Content-Type` says JSON: `application/json` (any parameters,
/// e.g. `; charset=UTF-8`) or an `application/*+json` type. Case-insensitive.
pub fn is_json_content_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    if !kind.trim().eq_ignore_ascii_case("application") {
        return false;
    }
    let subtype = subtype.trim().to_ascii_lowercase();
    subtype == "json" || (subtype.len() > "+json".len() && subtype.ends_with("+json"))
}

/// Path of the guest position endpoint for one queue.
pub fn position_path(queue_id: &str) -> String {
    format!("/api/v2/guest/messaging/queues/{queue_id}/position")
}

/// Path of the routing estimated-wait-time endpoint for one queue.
pub fn estimated_wait_path(queue_id: &str) -> String {
    format!("/api/v2/routing/queues/{queue_id}/mediatypes/message/estimatedwaittime")
}

/// What one successful poll of one queue observed. Fields a source does not
/// give stay `None` (never invented).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Position of the guest in the queue (`guest_position`).
    pub position: Option<u32>,
    /// Estimated wait in seconds (`guest_position`, `estimated_wait_time`).
    pub estimated_wait_seconds: Option<f64>,
    /// Genesys status string (`guest_position`).
    pub status: Option<String>,
    /// Interactions waiting in the queue (`observations`: `oWaiting`).
    pub waiting: Option<u32>,
    /// Agents on queue (`observations`: sum of `oOnQueueUsers` over qualifiers).
    pub agents_on_queue: Option<u32>,
}

/// The OAuth token response.
#[derive(Deserialize)]
pub struct TokenResponse {
    /// The bearer token.
    pub access_token: String,
    /// Normally `bearer`.
    #[serde(default)]
    pub token_type: Option<String>,
    /// Lifetime in seconds.
    pub expires_in: u64,
}

// Hand-written so the token never reaches a log through `{:?}`.
impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// An OAuth error body: `{"error":"invalid_client","error_description":...}`.
#[derive(Debug, Default, Deserialize)]
pub struct OAuthErrorBody {
    /// Machine-readable error code.
    #[serde(default)]
    pub error: Option<String>,
    /// Human-readable description (Genesys sends both spellings).
    #[serde(default)]
    pub error_description: Option<String>,
    /// Human-readable description.
    #[serde(default)]
    pub description: Option<String>,
}

/// Parses a token response body.
pub fn parse_token(body: &[u8]) -> Result<TokenResponse, PollError> {
    let token: TokenResponse = serde_json::from_slice(body).map_err(|e| invalid(e, "token"))?;
    if token.access_token.is_empty() {
        return Err(PollError::new(
            ErrorKind::InvalidResponse,
            "token response has an empty access_token",
        ));
    }
    if let Some(kind) = token.token_type.as_deref() {
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(PollError::new(
                ErrorKind::InvalidResponse,
                format!("token_type {kind:?} is not bearer"),
            ));
        }
    }
    Ok(token)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PositionBody {
    position: i64,
    estimated_wait_time: f64,
    #[serde(default)]
    status: Option<String>,
    queue_id: String,
}

/// Parses and checks a guest position body for `queue_id`.
pub fn parse_position(queue_id: &str, body: &[u8]) -> Result<Sample, PollError> {
    let parsed: PositionBody = serde_json::from_slice(body).map_err(|e| invalid(e, "position"))?;
    if !parsed.queue_id.eq_ignore_ascii_case(queue_id) {
        return Err(PollError::new(
            ErrorKind::QueueMismatch,
            format!(
                "asked for queue {queue_id}, response is for {:?}",
                truncate(&parsed.queue_id)
            ),
        ));
    }
    let position = u32::try_from(parsed.position)
        .ok()
        .filter(|p| *p <= MAX_COUNT)
        .ok_or_else(|| {
            PollError::new(
                ErrorKind::InvalidResponse,
                format!("position {} is outside 0..={MAX_COUNT}", parsed.position),
            )
        })?;
    Ok(Sample {
        position: Some(position),
        estimated_wait_seconds: Some(check_wait(parsed.estimated_wait_time)?),
        status: parsed.status.map(|s| truncate(&s)),
        ..Sample::default()
    })
}

#[derive(Deserialize)]
struct EstimatedWaitBody {
    results: Vec<EstimatedWaitResult>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EstimatedWaitResult {
    #[serde(default)]
    estimated_wait_time_seconds: Option<f64>,
}

/// Parses an estimated-wait-time body (the first result that carries a value).
pub fn parse_estimated_wait(body: &[u8]) -> Result<Sample, PollError> {
    let parsed: EstimatedWaitBody =
        serde_json::from_slice(body).map_err(|e| invalid(e, "estimated wait time"))?;
    let wait = parsed
        .results
        .iter()
        .find_map(|r| r.estimated_wait_time_seconds)
        .ok_or_else(|| {
            PollError::new(
                ErrorKind::InvalidResponse,
                "estimated wait time response has no estimatedWaitTimeSeconds",
            )
        })?;
    Ok(Sample {
        estimated_wait_seconds: Some(check_wait(wait)?),
        ..Sample::default()
    })
}

/// Builds the observations query body for a batch of queue ids.
pub fn observations_query(queue_ids: &[&str]) -> serde_json::Value {
    let predicates: Vec<serde_json::Value> = queue_ids
        .iter()
        .map(|id| {
            serde_json::json!({
                "type": "dimension",
                "dimension": "queueId",
                "operator": "matches",
                "value": id,
            })
        })
        .collect();
    serde_json::json!({
        "filter": {"type": "or", "predicates": predicates},
        "metrics": OBSERVATION_METRICS,
    })
}

#[derive(Deserialize)]
struct ObservationsBody {
    #[serde(default)]
    results: Vec<ObservationResult>,
}

#[derive(Deserialize)]
struct ObservationResult {
    group: ObservationGroup,
    #[serde(default)]
    data: Vec<ObservationData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObservationGroup {
    #[serde(default)]
    queue_id: Option<String>,
}

#[derive(Deserialize)]
struct ObservationData {
    metric: String,
    stats: ObservationStats,
}

#[derive(Deserialize)]
struct ObservationStats {
    #[serde(default)]
    count: Option<i64>,
}

/// Parses an observations body into one sample per queue id that the
/// response names and that was asked for. Counts of a metric split by
/// qualifier are summed. Queues left out of the response are absent from the
/// map: the caller turns them into `not_found` failures.
pub fn parse_observations(
    asked: &[&str],
    body: &[u8],
) -> Result<HashMap<String, Sample>, PollError> {
    let parsed: ObservationsBody =
        serde_json::from_slice(body).map_err(|e| invalid(e, "observations"))?;
    let mut out: HashMap<String, Sample> = HashMap::new();
    for result in parsed.results {
        let Some(id) = result.group.queue_id else {
            continue;
        };
        let Some(asked_id) = asked.iter().find(|a| a.eq_ignore_ascii_case(&id)) else {
            continue; // a queue we did not ask about: ignore rather than trust
        };
        let sample = out.entry((*asked_id).to_string()).or_default();
        for data in result.data {
            let field = match data.metric.as_str() {
                "oWaiting" => &mut sample.waiting,
                "oOnQueueUsers" => &mut sample.agents_on_queue,
                _ => continue,
            };
            let count = data.stats.count.unwrap_or(0);
            let out_of_range = || {
                PollError::new(
                    ErrorKind::InvalidResponse,
                    format!(
                        "{} count {count} for queue {} is outside 0..={MAX_COUNT}",
                        data.metric,
                        truncate(&id)
                    ),
                )
            };
            let count = u32::try_from(count).map_err(|_| out_of_range())?;
            let total = field.unwrap_or(0).saturating_add(count);
            if total > MAX_COUNT {
                return Err(out_of_range());
            }
            *field = Some(total);
        }
    }
    // A queue that the response names but with no oWaiting had nothing waiting.
    for sample in out.values_mut() {
        sample.waiting.get_or_insert(0);
        sample.agents_on_queue.get_or_insert(0);
    }
    Ok(out)
}

fn check_wait(wait: f64) -> Result<f64, PollError> {
    // NaN fails both comparisons.
    if (0.0..=MAX_WAIT_SECONDS).contains(&wait) {
        Ok(wait)
    } else {
        Err(PollError::new(
            ErrorKind::InvalidResponse,
            format!("estimated wait {wait} is outside 0..={MAX_WAIT_SECONDS} seconds"),
        ))
    }
}

fn invalid(err: serde_json::Error, what: &str) -> PollError {
    PollError::new(
        ErrorKind::InvalidResponse,
        format!("{what} body does not parse: {err}"),
    )
}

/// Cuts server-provided text to a sane length before it goes into an event.
pub(crate) fn truncate(text: &str) -> String {
    const MAX: usize = 120;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: &str = "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10";

    #[test]
    fn position_happy_path() {
        let body = format!(
            r#"{{"position":3,"estimatedWaitTime":42.5,"status":"waiting","queueId":"{Q}"}}"#
        );
        let s = parse_position(Q, body.as_bytes()).unwrap();
        assert_eq!(s.position, Some(3));
        assert_eq!(s.estimated_wait_seconds, Some(42.5));
        assert_eq!(s.status.as_deref(), Some("waiting"));
        assert_eq!(s.waiting, None);
    }

    #[test]
    fn position_rejects_mismatch_negative_and_nan() {
        let other = r#"{"position":3,"estimatedWaitTime":1,"queueId":"x"}"#;
        assert_eq!(
            parse_position(Q, other.as_bytes()).unwrap_err().kind,
            ErrorKind::QueueMismatch
        );
        let neg = format!(r#"{{"position":-1,"estimatedWaitTime":1,"queueId":"{Q}"}}"#);
        assert_eq!(
            parse_position(Q, neg.as_bytes()).unwrap_err().kind,
            ErrorKind::InvalidResponse
        );
        let negwait = format!(r#"{{"position":1,"estimatedWaitTime":-0.5,"queueId":"{Q}"}}"#);
        assert_eq!(
            parse_position(Q, negwait.as_bytes()).unwrap_err().kind,
            ErrorKind::InvalidResponse
        );
        let huge = format!(r#"{{"position":1,"estimatedWaitTime":1e400,"queueId":"{Q}"}}"#);
        assert_eq!(
            parse_position(Q, huge.as_bytes()).unwrap_err().kind,
            ErrorKind::InvalidResponse
        );
        assert_eq!(
            parse_position(Q, b"<html>").unwrap_err().kind,
            ErrorKind::InvalidResponse
        );
    }

    #[test]
    fn absurd_waits_and_counts_are_invalid() {
        let position = |position: &str, wait: &str| {
            let body =
                format!(r#"{{"position":{position},"estimatedWaitTime":{wait},"queueId":"{Q}"}}"#);
            parse_position(Q, body.as_bytes())
        };
        assert!(position("3", "604800").is_ok());
        assert!(position("1000000", "0").is_ok());
        for (p, w) in [
            ("3", "1e300"),
            ("3", "604800.5"),
            ("3", "-1"),
            ("3", "-0.0000001"),
            ("1000001", "1"),
            ("4294967295", "1"),
            ("99999999999999999999", "1"),
            ("1.5", "1"),
            ("3", "\"NaN\""),
            ("3", "null"),
        ] {
            let error = position(p, w).unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidResponse, "{p} {w}: {error}");
        }
        for wait in ["1e300", "604801", "-5"] {
            let body = format!(r#"{{"results":[{{"estimatedWaitTimeSeconds":{wait}}}]}}"#);
            let error = parse_estimated_wait(body.as_bytes()).unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidResponse, "{wait}");
        }
        let observation = |count: i64, again: i64| {
            let body = format!(
                r#"{{"results":[{{"group":{{"queueId":"{Q}"}},"data":[
                   {{"metric":"oOnQueueUsers","qualifier":"IDLE","stats":{{"count":{count}}}}},
                   {{"metric":"oOnQueueUsers","qualifier":"INTERACTING","stats":{{"count":{again}}}}}]}}]}}"#
            );
            parse_observations(&[Q], body.as_bytes())
        };
        assert_eq!(
            observation(500_000, 500_000).unwrap()[Q].agents_on_queue,
            Some(1_000_000)
        );
        for (a, b) in [(500_000, 500_001), (1_000_001, 0), (-1, 0), (i64::MAX, 1)] {
            let error = observation(a, b).unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidResponse, "{a} {b}");
        }
    }

    #[test]
    fn json_content_types() {
        for good in [
            "application/json",
            "application/json; charset=UTF-8",
            "Application/JSON;charset=utf-8",
            " application/json ",
            "application/problem+json",
            "application/vnd.genesys+json; v=2",
        ] {
            assert!(is_json_content_type(good), "{good}");
        }
        for bad in [
            "",
            "text/html",
            "text/json",
            "application/jsonp",
            "application/+json",
            "application/octet-stream",
            "application",
            "json",
            "text/plain; application/json",
        ] {
            assert!(!is_json_content_type(bad), "{bad}");
        }
    }

    #[test]
    fn estimated_wait_takes_first_value() {
        let body =
            r#"{"results":[{"intent":"MESSAGE","formula":"BEST","estimatedWaitTimeSeconds":42}]}"#;
        let s = parse_estimated_wait(body.as_bytes()).unwrap();
        assert_eq!(s.estimated_wait_seconds, Some(42.0));
        assert_eq!(s.position, None);
        assert!(parse_estimated_wait(br#"{"results":[]}"#).is_err());
    }

    #[test]
    fn observations_sum_qualifiers_and_map_ids() {
        let a = "11111111-1111-1111-1111-111111111111";
        let b = "22222222-2222-2222-2222-222222222222";
        let missing = "33333333-3333-3333-3333-333333333333";
        let body = format!(
            r#"{{"results":[
              {{"group":{{"queueId":"{b}","mediaType":"message"}},"data":[
                 {{"metric":"oWaiting","stats":{{"count":7}}}},
                 {{"metric":"oOnQueueUsers","qualifier":"IDLE","stats":{{"count":2}}}},
                 {{"metric":"oOnQueueUsers","qualifier":"INTERACTING","stats":{{"count":3}}}}]}},
              {{"group":{{"queueId":"{a}","mediaType":"message"}},"data":[
                 {{"metric":"oWaiting","stats":{{"count":1}}}}]}},
              {{"group":{{"queueId":"99999999-9999-9999-9999-999999999999"}},"data":[]}}
            ]}}"#
        );
        let map = parse_observations(&[a, b, missing], body.as_bytes()).unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map[b].waiting, Some(7));
        assert_eq!(map[b].agents_on_queue, Some(5));
        assert_eq!(map[a].waiting, Some(1));
        assert_eq!(map[a].agents_on_queue, Some(0));
        assert!(!map.contains_key(missing));
    }

    #[test]
    fn observations_query_shape() {
        let q = observations_query(&["a", "b"]);
        assert_eq!(q["filter"]["type"], "or");
        assert_eq!(q["filter"]["predicates"][1]["value"], "b");
        assert_eq!(q["metrics"][0], "oWaiting");
    }

    #[test]
    fn token_parse_and_redacted_debug() {
        let t =
            parse_token(br#"{"access_token":"sekrit","token_type":"bearer","expires_in":86400}"#)
                .unwrap();
        assert_eq!(t.expires_in, 86400);
        assert!(!format!("{t:?}").contains("sekrit"));
        assert!(parse_token(br#"{"access_token":"","expires_in":1}"#).is_err());
        assert!(parse_token(br#"{"access_token":"x","expires_in":-1}"#).is_err());
    }
}
