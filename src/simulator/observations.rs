//! `POST /api/v2/analytics/queues/observations/query`: request checks and results.

use std::time::Instant;

use actix_web::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::state::SimState;

/// Most predicates one query may carry.
pub(crate) const MAX_PREDICATES: usize = 100;

/// Metrics the simulator can observe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Metric {
    Waiting,
    Interacting,
    Alerting,
    OnQueueUsers,
}

impl Metric {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "oWaiting" => Some(Self::Waiting),
            "oInteracting" => Some(Self::Interacting),
            "oAlerting" => Some(Self::Alerting),
            "oOnQueueUsers" => Some(Self::OnQueueUsers),
            _ => None,
        }
    }
}

/// A checked query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ObservationQuery {
    /// Queue ids of the filter, without duplicates, in request order.
    pub queue_ids: Vec<String>,
    metrics: Vec<Metric>,
    /// An `and` of different queue ids: no queue can match.
    matches_nothing: bool,
}

/// A refused query: status and message for the Genesys error body.
pub(crate) type Rejection = (StatusCode, String);

#[derive(Deserialize)]
struct RawQuery {
    filter: RawFilter,
    metrics: Vec<String>,
}

#[derive(Deserialize)]
struct RawFilter {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    predicates: Vec<RawPredicate>,
    #[serde(default)]
    clauses: Vec<Value>,
}

#[derive(Deserialize)]
struct RawPredicate {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    dimension: Option<String>,
    operator: Option<String>,
    value: Option<String>,
}

/// Checks the content type and the body of a query.
pub(crate) fn parse(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<ObservationQuery, Rejection> {
    let essence = content_type.and_then(|value| value.split(';').next());
    if !essence.is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json")) {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json".to_owned(),
        ));
    }
    let raw: RawQuery = serde_json::from_slice(body)
        .map_err(|err| bad_request(format!("Unable to parse the request body: {err}")))?;
    check(raw).map_err(|error| bad_request(error.to_string()))
}

fn bad_request(message: String) -> Rejection {
    (StatusCode::BAD_REQUEST, message)
}

/// Why a query body is refused (the message of the 400 answer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum QueryError {
    #[error("filter.type '{0}' must be 'and' or 'or'")]
    FilterType(String),
    #[error("filter.clauses are not supported by the simulator")]
    Clauses,
    #[error("filter.predicates must not be empty")]
    NoPredicates,
    #[error("filter.predicates has {0} entries; at most {max} are allowed", max = MAX_PREDICATES)]
    TooManyPredicates(usize),
    #[error("filter.predicates[{index}]: {error}")]
    Predicate { index: usize, error: PredicateError },
    #[error("metrics must not be empty")]
    NoMetrics,
    #[error("metric '{0}' is not supported")]
    Metric(String),
}

/// Why one filter predicate is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum PredicateError {
    #[error("type '{0}' is not supported")]
    Type(String),
    #[error("dimension '{0}' is not supported")]
    Dimension(String),
    #[error("dimension is required")]
    NoDimension,
    #[error("operator '{0}' is not supported")]
    Operator(String),
    #[error("value is required")]
    NoValue,
}

fn check(raw: RawQuery) -> Result<ObservationQuery, QueryError> {
    let filter = raw.filter;
    let conjunctive = match filter.kind.as_str() {
        "and" => true,
        "or" => false,
        _ => return Err(QueryError::FilterType(filter.kind)),
    };
    if !filter.clauses.is_empty() {
        return Err(QueryError::Clauses);
    }
    match filter.predicates.len() {
        0 => return Err(QueryError::NoPredicates),
        n if n > MAX_PREDICATES => return Err(QueryError::TooManyPredicates(n)),
        _ => {}
    }
    let mut queue_ids: Vec<String> = Vec::new();
    for (index, predicate) in filter.predicates.into_iter().enumerate() {
        let id = queue_id_of(predicate).map_err(|error| QueryError::Predicate { index, error })?;
        if !queue_ids.contains(&id) {
            queue_ids.push(id);
        }
    }
    if raw.metrics.is_empty() {
        return Err(QueryError::NoMetrics);
    }
    let metrics = raw
        .metrics
        .iter()
        .map(|name| Metric::parse(name).ok_or_else(|| QueryError::Metric(name.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ObservationQuery {
        matches_nothing: conjunctive && queue_ids.len() > 1,
        queue_ids,
        metrics,
    })
}

fn queue_id_of(predicate: RawPredicate) -> Result<String, PredicateError> {
    let kind = predicate.kind.as_deref().unwrap_or("dimension");
    if kind != "dimension" {
        return Err(PredicateError::Type(kind.to_owned()));
    }
    match predicate.dimension {
        Some(dimension) if dimension == "queueId" => {}
        Some(other) => return Err(PredicateError::Dimension(other)),
        None => return Err(PredicateError::NoDimension),
    }
    let operator = predicate.operator.as_deref().unwrap_or("matches");
    if operator != "matches" {
        return Err(PredicateError::Operator(operator.to_owned()));
    }
    match predicate.value {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(PredicateError::NoValue),
    }
}

/// `{"results":[...]}` for the queues that exist, in random order.
/// With `wrong_queue_id`, every group names a made-up queue.
pub(crate) fn results(
    query: &ObservationQuery,
    state: &mut SimState,
    now: Instant,
    wrong_queue_id: bool,
) -> Value {
    let mut results: Vec<Value> = Vec::new();
    if !query.matches_nothing {
        for id in &query.queue_ids {
            let Some(queue) = state.queue(id, now) else {
                continue;
            };
            // As Genesys does: media metrics in a group with `mediaType`,
            // user metrics (oOnQueueUsers) in a group of their own.
            let mut media: Vec<Value> = Vec::new();
            let mut users: Vec<Value> = Vec::new();
            for metric in &query.metrics {
                match metric {
                    Metric::Waiting => media.push(count("oWaiting", queue.waiting)),
                    Metric::Interacting => media.push(count("oInteracting", queue.interacting)),
                    Metric::Alerting => media.push(count("oAlerting", 0)),
                    Metric::OnQueueUsers => {
                        users.push(qualified("oOnQueueUsers", "IDLE", queue.idle));
                        users.push(qualified("oOnQueueUsers", "INTERACTING", queue.interacting));
                    }
                }
            }
            let group_id = if wrong_queue_id {
                uuid::Uuid::new_v4().to_string()
            } else {
                id.clone()
            };
            if !media.is_empty() {
                results.push(json!({
                    "group": {"queueId": group_id, "mediaType": "message"},
                    "data": media,
                }));
            }
            if !users.is_empty() {
                results.push(json!({"group": {"queueId": group_id}, "data": users}));
            }
        }
    }
    state.shuffle(&mut results);
    json!({ "results": results })
}

fn count(metric: &str, value: u32) -> Value {
    json!({"metric": metric, "stats": {"count": value}})
}

fn qualified(metric: &str, qualifier: &str, value: u32) -> Value {
    json!({"metric": metric, "qualifier": qualifier, "stats": {"count": value}})
}
