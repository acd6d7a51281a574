//! The Genesys API routes and the pipeline every API request goes through:
//! bearer check (401), injected faults, per-token rate limit (429), answer.

use std::time::{Duration, Instant, SystemTime};

use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::faults::Fault;
use super::observations::{self, Rejection};
use super::record::{Endpoint, RequestRecord, STATUS_DROPPED};
use super::responses::{
    add_correlation_header, add_usage_headers, correlation_id, default_message, dropped_connection,
    genesys_error, malformed_body, rate_limited, raw_json, redirect, set_content_type, status_code,
};
use super::shared::Shared;
use super::state::SimState;
use super::{admin, notifications, token};

/// Path of the OAuth token endpoint.
pub(crate) const TOKEN_PATH: &str = "/oauth/token";
const POSITION_PATH: &str = "/api/v2/guest/messaging/queues/{queue_id}/position";
const WAIT_PATH: &str = "/api/v2/routing/queues/{queue_id}/mediatypes/message/estimatedwaittime";
const OBSERVATIONS_PATH: &str = "/api/v2/analytics/queues/observations/query";

/// Registers every route of the simulator.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(TOKEN_PATH, web::post().to(token::issue))
        .route(POSITION_PATH, web::get().to(position))
        .route(WAIT_PATH, web::get().to(estimated_wait))
        .route(OBSERVATIONS_PATH, web::post().to(observations))
        .configure(notifications::configure)
        .configure(admin::configure)
        .default_service(web::to(not_found));
}

/// `GET .../guest/messaging/queues/{queueId}/position`.
async fn position(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let queue_id = path_queue_id(&req);
    let ids = vec![queue_id.clone()];
    api_call(&req, &shared, ids, move |state, now, wrong_queue_id| {
        let queue = state
            .queue(&queue_id, now)
            .ok_or_else(|| queue_not_found(&queue_id))?;
        let named = if wrong_queue_id {
            uuid::Uuid::new_v4().to_string()
        } else {
            queue_id.clone()
        };
        Ok(json!({
            "position": queue.guest_position(),
            "estimatedWaitTime": queue.guest_wait_secs(),
            "status": queue.guest_status(),
            "queueId": named,
        }))
    })
    .await
}

/// `GET .../routing/queues/{queueId}/mediatypes/message/estimatedwaittime`.
async fn estimated_wait(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let queue_id = path_queue_id(&req);
    let ids = vec![queue_id.clone()];
    api_call(&req, &shared, ids, move |state, now, _| {
        let queue = state
            .queue(&queue_id, now)
            .ok_or_else(|| queue_not_found(&queue_id))?;
        Ok(json!({"results": [{
            "intent": "MESSAGE",
            "formula": "BEST",
            "estimatedWaitTimeSeconds": queue.new_arrival_wait_secs(),
        }]}))
    })
    .await
}

/// `POST /api/v2/analytics/queues/observations/query`.
async fn observations(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let query = observations::parse(content_type, &body);
    let ids = query
        .as_ref()
        .map(|query| query.queue_ids.clone())
        .unwrap_or_default();
    api_call(&req, &shared, ids, move |state, now, wrong_queue_id| {
        let query = query?;
        Ok(observations::results(&query, state, now, wrong_queue_id))
    })
    .await
}

/// Any other path: a Genesys 404 (no authentication asked).
async fn not_found(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let at = SystemTime::now();
    let correlation = correlation_id();
    let status = StatusCode::NOT_FOUND;
    let mut response = genesys_error(status, default_message(status), &correlation);
    add_correlation_header(&mut response, &correlation);
    shared.record(
        Endpoint::Api,
        record(&req, at, Vec::new(), None, status.as_u16()),
    );
    response
}

/// Runs the pipeline for one API request and logs it. `answer` gets the
/// state, the time, and whether the `wrong_queue_id` fault applies.
pub(crate) async fn api_call(
    req: &HttpRequest,
    shared: &Shared,
    queue_ids: Vec<String>,
    answer: impl FnOnce(&mut SimState, Instant, bool) -> Result<Value, Rejection>,
) -> HttpResponse {
    let at = SystemTime::now();
    let correlation = correlation_id();
    let token = bearer_token(req);
    let authorized = token
        .as_deref()
        .is_some_and(|token| shared.state().token_valid(token, Instant::now()));
    let outcome = match token.as_deref() {
        Some(token) if authorized => {
            authorized_call(shared, token, req.path(), &queue_ids, &correlation, answer).await
        }
        _ => {
            let status = StatusCode::UNAUTHORIZED;
            Some(genesys_error(status, default_message(status), &correlation))
        }
    };
    let (response, status) = match outcome {
        Some(mut response) => {
            add_correlation_header(&mut response, &correlation);
            let status = response.status().as_u16();
            (response, status)
        }
        None => (dropped_connection(), STATUS_DROPPED),
    };
    shared.record(Endpoint::Api, record(req, at, queue_ids, token, status));
    response
}

/// The part of the pipeline after the bearer check; `None` = drop the connection.
async fn authorized_call(
    shared: &Shared,
    token: &str,
    path: &str,
    queue_ids: &[String],
    correlation: &str,
    answer: impl FnOnce(&mut SimState, Instant, bool) -> Result<Value, Rejection>,
) -> Option<HttpResponse> {
    let fault = shared.faults.take_api(path, queue_ids);
    if let Some(fault) = &fault {
        log::debug!("simulator injects {fault:?}");
    }
    let early = match fault {
        Some(Fault::Slow { delay_ms }) => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            None
        }
        Some(Fault::DropConnection) => return None,
        Some(Fault::RateLimit { retry_after_secs }) => {
            Some(rate_limited(retry_after_secs, correlation))
        }
        Some(Fault::ServerError { status } | Fault::Status { status }) => {
            let status = status_code(status);
            Some(genesys_error(status, default_message(status), correlation))
        }
        Some(Fault::Redirect {
            status,
            ref location,
        }) => Some(redirect(status_code(status), location)),
        _ => None,
    };
    let now = Instant::now();
    let mut state = shared.state();
    if let Some(mut response) = early {
        add_usage_headers(&mut response, state.api_usage(token, now));
        return Some(response);
    }
    let usage = match state.acquire_api(token, now) {
        Some(Err(limited)) => {
            let mut response = rate_limited(limited.retry_after_secs, correlation);
            add_usage_headers(&mut response, Some(limited.usage));
            return Some(response);
        }
        Some(Ok(usage)) => Some(usage),
        None => None,
    };
    let mut response = match fault {
        Some(Fault::MalformedBody) => malformed_body(),
        Some(Fault::Body { body }) => raw_json(body),
        _ => match answer(&mut state, now, fault == Some(Fault::WrongQueueId)) {
            Ok(body) => {
                let mut response = HttpResponse::Ok().json(body);
                if let Some(Fault::ContentType { content_type }) = &fault {
                    set_content_type(&mut response, content_type);
                }
                response
            }
            Err((status, message)) => genesys_error(status, &message, correlation),
        },
    };
    drop(state);
    add_usage_headers(&mut response, usage);
    Some(response)
}

/// The log entry of a request.
pub(crate) fn record(
    req: &HttpRequest,
    at: SystemTime,
    queue_ids: Vec<String>,
    token: Option<String>,
    status: u16,
) -> RequestRecord {
    RequestRecord {
        at,
        method: req.method().to_string(),
        path: req.path().to_owned(),
        queue_ids,
        token,
        status,
    }
}

fn path_queue_id(req: &HttpRequest) -> String {
    req.match_info()
        .get("queue_id")
        .unwrap_or_default()
        .to_owned()
}

fn queue_not_found(queue_id: &str) -> Rejection {
    (StatusCode::NOT_FOUND, format!("Queue {queue_id} not found"))
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}
