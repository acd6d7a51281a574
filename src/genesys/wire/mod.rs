//! The Genesys Cloud wire format: request bodies, response bodies, and their
//! validation into a [`Sample`]. Pure functions, no I/O.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, PollError};
use crate::push::merge::reduce;

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

/// Strings borrowed from the body where they hold no escapes: one
/// allocation a poll (the kept status) instead of three.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PositionBody<'a> {
    position: i64,
    estimated_wait_time: f64,
    #[serde(default, borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    queue_id: Cow<'a, str>,
}

/// Parses and checks a guest position body for `queue_id`.
pub fn parse_position(queue_id: &str, body: &[u8]) -> Result<Sample, PollError> {
    let parsed: PositionBody<'_> =
        serde_json::from_slice(body).map_err(|e| invalid(e, "position"))?;
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
        status: parsed.status.as_deref().map(truncate),
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
    #[serde(default)]
    media_type: Option<String>,
}

#[derive(Deserialize)]
struct ObservationData {
    metric: String,
    #[serde(default)]
    qualifier: Option<String>,
    stats: ObservationStats,
}

#[derive(Deserialize)]
struct ObservationStats {
    #[serde(default)]
    count: Option<i64>,
}

/// Name of the observation metric counting interactions waiting in a queue.
pub const METRIC_WAITING: &str = "oWaiting";
/// Name of the observation metric counting agents on queue (split by qualifier:
/// `IDLE`, `INTERACTING`, ...).
pub const METRIC_ON_QUEUE_USERS: &str = "oOnQueueUsers";

/// Whether queuewatch keeps observations of `metric` (the others are ignored).
pub fn is_kept_metric(metric: &str) -> bool {
    metric == METRIC_WAITING || metric == METRIC_ON_QUEUE_USERS
}

/// Which count an observation is of: the metric, its qualifier (e.g. `IDLE`
/// for `oOnQueueUsers`) and the media type of its group (`message`, `voice`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricKey {
    /// The metric name, e.g. `oWaiting`.
    pub metric: String,
    /// The qualifier, when the metric is split by one.
    pub qualifier: Option<String>,
    /// The media type of the group, when the group names one.
    pub media_type: Option<String>,
}

/// One observed count of one [`MetricKey`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricCount {
    /// What was counted.
    pub metric: MetricKey,
    /// The count, in `0..=MAX_COUNT`.
    pub count: u32,
}

/// Parses an observations body at metric level: per queue id that the
/// response names and that was asked for (keyed by the asked spelling, ids
/// compared case-insensitively), its `oWaiting` and `oOnQueueUsers` counts
/// keyed by metric, qualifier and the group's media type, sorted by key.
/// A key repeated for one queue is summed. A queue the response names with no
/// kept metric maps to an empty list; queues left out are absent.
///
/// A count outside `0..=MAX_COUNT` (a repeated key's sum included) is
/// `invalid_response`.
pub fn parse_observation_metrics(
    asked: &[&str],
    body: &[u8],
) -> Result<HashMap<String, Vec<MetricCount>>, PollError> {
    let parsed: ObservationsBody =
        serde_json::from_slice(body).map_err(|e| invalid(e, "observations"))?;
    let mut by_queue: HashMap<String, BTreeMap<MetricKey, u32>> = HashMap::new();
    for result in parsed.results {
        let Some(id) = result.group.queue_id else {
            continue;
        };
        let Some(asked_id) = asked.iter().find(|a| a.eq_ignore_ascii_case(&id)) else {
            continue; // a queue we did not ask about: ignore rather than trust
        };
        let counts = by_queue.entry((*asked_id).to_string()).or_default();
        for data in result.data {
            if !is_kept_metric(&data.metric) {
                continue;
            }
            let count = data.stats.count.unwrap_or(0);
            let out_of_range = |count: i64| {
                PollError::new(
                    ErrorKind::InvalidResponse,
                    format!(
                        "{} count {count} for queue {} is outside 0..={MAX_COUNT}",
                        data.metric,
                        truncate(&id)
                    ),
                )
            };
            let checked = u32::try_from(count)
                .ok()
                .filter(|c| *c <= MAX_COUNT)
                .ok_or_else(|| out_of_range(count))?;
            let key = MetricKey {
                metric: data.metric.clone(),
                qualifier: data.qualifier.clone(),
                media_type: result.group.media_type.clone(),
            };
            let slot = counts.entry(key).or_insert(0);
            let total = slot.saturating_add(checked);
            if total > MAX_COUNT {
                return Err(out_of_range(i64::from(total)));
            }
            *slot = total;
        }
    }
    Ok(by_queue
        .into_iter()
        .map(|(id, counts)| {
            let metrics = counts
                .into_iter()
                .map(|(metric, count)| MetricCount { metric, count })
                .collect();
            (id, metrics)
        })
        .collect())
}

/// Parses an observations body into one sample per queue id that the
/// response names and that was asked for. Counts of a metric split by
/// qualifier (or media type) are summed. Queues left out of the response are
/// absent from the map: the caller turns them into `not_found` failures.
pub fn parse_observations(
    asked: &[&str],
    body: &[u8],
) -> Result<HashMap<String, Sample>, PollError> {
    let mut out = HashMap::new();
    for (id, metrics) in parse_observation_metrics(asked, body)? {
        let (waiting, agents) = reduce(&metrics);
        // A queue that the response names but with no oWaiting had nothing waiting.
        let (waiting, agents) = (waiting.unwrap_or(0), agents.unwrap_or(0));
        for (metric, total) in [(METRIC_WAITING, waiting), (METRIC_ON_QUEUE_USERS, agents)] {
            if total > MAX_COUNT {
                return Err(PollError::new(
                    ErrorKind::InvalidResponse,
                    format!(
                        "{metric} total {total} for queue {} is outside 0..={MAX_COUNT}",
                        truncate(&id)
                    ),
                ));
            }
        }
        let sample = Sample {
            waiting: Some(waiting),
            agents_on_queue: Some(agents),
            ..Sample::default()
        };
        out.insert(id, sample);
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
mod tests;
