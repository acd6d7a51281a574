//! The route handlers of the status API.

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};

use super::access::{bearer, over_tls, unauthorized, Access};
use super::{paging, session, sse, Status};
use crate::genesys::wire;

const PAGE: &str = include_str!("page.html");
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Largest `POST /api/session` body (it holds one token).
const SESSION_BODY_LIMIT: usize = 8 * 1024;

struct State<S> {
    handle: S,
    access: Arc<Access>,
}

pub(super) fn register<S: Status>(cfg: &mut web::ServiceConfig, handle: S, access: Arc<Access>) {
    cfg.app_data(web::Data::new(State { handle, access }))
        .service(get_and_head("/healthz", healthz))
        .service(get_and_head("/readyz", readyz::<S>))
        .service(get_and_head("/metrics", metrics::<S>))
        .service(get_and_head("/api/queues", queues::<S>))
        .service(get_and_head("/api/queues/{id}", queue::<S>))
        .service(get_and_head("/api/events", events::<S>))
        .service(session_resource::<S>())
        .service(get_and_head("/", page::<S>));
}

/// A resource answering GET and HEAD with `handler` (HEAD sends the same
/// head without the body) and any other method with 405 and `Allow`.
fn get_and_head<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args> + Clone,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
        .default_service(web::to(method_not_allowed))
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    not_allowed(&req, &["GET", "HEAD"])
}

fn not_allowed(req: &HttpRequest, allow: &[&str]) -> HttpResponse {
    log::debug!("http: {} {} is not allowed", req.method(), req.path());
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, allow.join(", ")))
        .json(serde_json::json!({"error": "method_not_allowed", "allow": allow}))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

/// 200 when ready, 503 otherwise; the body says why:
/// `{"ready":false,"reason":"no poll succeeded in the last 15s","token":true,
/// "successful_polls":12,"last_success_seconds_ago":16.2,"window_seconds":15.0}`.
async fn readyz<S: Status>(state: web::Data<State<S>>) -> HttpResponse {
    let readiness = state.handle.readiness().await;
    let reason = readiness.reason();
    let body = serde_json::json!({
        "ready": reason.is_none(),
        "reason": reason,
        "token": readiness.token_held,
        "successful_polls": readiness.successful_polls,
        "last_success_seconds_ago": readiness.since_last_success.map(|d| d.as_secs_f64()),
        "window_seconds": readiness.window.map(|d| d.as_secs_f64()),
    });
    if reason.is_none() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics<S: Status>(state: web::Data<State<S>>, req: HttpRequest) -> HttpResponse {
    if let Some(denied) = state.access.denied(&req) {
        return denied;
    }
    // OpenMetrics for scrapers that name it (Prometheus does), the classic
    // text for the rest (curl's `*/*`, promtool): `metrics::Format::negotiate`.
    let accept = req.headers().get_all(header::ACCEPT);
    let format = super::metrics::Format::negotiate(accept.filter_map(|v| v.to_str().ok()));
    let text = state.handle.metrics_text();
    let (content_type, body) = match format {
        super::metrics::Format::OpenMetrics => (OPENMETRICS, text),
        super::metrics::Format::Prometheus => (
            super::metrics::PROMETHEUS_TEXT,
            super::metrics::to_prometheus_text(&text),
        ),
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::VARY, "Accept"))
        .body(body)
}

/// `GET /api/queues[?limit=N][&after=<queue id>]`: a JSON array of queue
/// summaries sorted by id, at most `limit` (default and largest 1000),
/// those after `after`. The shape is the same with or without paging
/// parameters; when more queues follow, a `Link` header names the next
/// page (`</api/queues?limit=N&after=<last id>>; rel="next"`), and its
/// absence means this page is the last.
async fn queues<S: Status>(state: web::Data<State<S>>, req: HttpRequest) -> HttpResponse {
    if let Some(denied) = state.access.denied(&req) {
        return denied;
    }
    let paging = match paging::paging(req.query_string()) {
        Ok(paging) => paging,
        Err(bad) => return bad.response(),
    };
    let page = state
        .handle
        .queues(paging.after.as_deref(), paging.limit)
        .await;
    let mut response = HttpResponse::Ok();
    if let Some(last) = &page.next_after {
        response.insert_header((
            header::LINK,
            paging::next_link(req.path(), paging.limit, last),
        ));
    }
    response.json(page.queues)
}

/// `GET /api/queues/{id}[?points=N]`: one queue in full; with `points`,
/// only the newest N snapshots of its history.
async fn queue<S: Status>(
    state: web::Data<State<S>>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Some(denied) = state.access.denied(&req) {
        return denied;
    }
    let points = match paging::points(req.query_string()) {
        Ok(points) => points,
        Err(bad) => return bad.response(),
    };
    match state.handle.queue(&id, points).await {
        Some(detail) => HttpResponse::Ok().json(detail),
        None => HttpResponse::NotFound().json(serde_json::json!({
            "error": "not_found",
            "queue_id": wire::truncate(&id),
        })),
    }
}

async fn events<S: Status>(state: web::Data<State<S>>, req: HttpRequest) -> HttpResponse {
    if let Some(denied) = state.access.denied(&req) {
        return denied;
    }
    let mut response = HttpResponse::Ok();
    response
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"));
    if req.method() == Method::HEAD {
        // The head only: no subscription, no stream left open.
        return response.finish();
    }
    response.streaming(sse::client_stream(state.handle.event_stream()))
}

async fn page<S: Status>(state: web::Data<State<S>>, req: HttpRequest) -> HttpResponse {
    if let Some(denied) = state.access.page_denied(&req) {
        return denied;
    }
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(PAGE)
}

// ---- sessions ----------------------------------------------------------------

/// `/api/session`: `POST` exchanges the token for a session cookie,
/// `DELETE` ends the session; other methods get 405 with `Allow`.
fn session_resource<S: Status>() -> actix_web::Resource {
    web::resource("/api/session")
        .app_data(web::PayloadConfig::new(SESSION_BODY_LIMIT))
        .route(web::post().to(create_session::<S>))
        .route(web::delete().to(end_session::<S>))
        .default_service(web::to(session_method_not_allowed))
}

async fn session_method_not_allowed(req: HttpRequest) -> HttpResponse {
    not_allowed(&req, &["POST", "DELETE"])
}

/// The token of a `POST /api/session` body: `{"token":"..."}`
/// (`application/json`) or `token=...` (a form).
#[derive(serde::Deserialize)]
struct TokenBody {
    token: String,
}

/// `POST /api/session` with the token as `Authorization: Bearer` or in the
/// body: 200 and `Set-Cookie: queuewatch_session=...; HttpOnly;
/// SameSite=Strict; Path=/; Max-Age=43200` (`Secure` over TLS); a wrong or
/// missing token is a 401 without a cookie. Without a configured token
/// there is nothing to exchange: 404.
async fn create_session<S: Status>(
    state: web::Data<State<S>>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let access = &state.access;
    if !access.token_required() {
        if let Some(denied) = access.host_denied(&req) {
            return denied;
        }
        return HttpResponse::NotFound().json(serde_json::json!({
            "error": "not_found",
            "detail": "no API token is configured (http.auth_token_env): no session is needed",
        }));
    }
    let given = match bearer(&req) {
        Some(token) => Some(token),
        None => match body_token(&req, &body) {
            Ok(token) => token,
            Err(bad) => return bad.response(),
        },
    };
    if !given.is_some_and(|token| access.token_matches(&token)) {
        log::debug!("http: POST /api/session without the right token");
        return unauthorized();
    }
    let sessions = access.sessions();
    let Some(id) = sessions.create(Instant::now()) else {
        log::error!("http: no randomness for a session id");
        return HttpResponse::InternalServerError()
            .json(serde_json::json!({"error": "no_randomness"}));
    };
    HttpResponse::Ok()
        .insert_header((
            header::SET_COOKIE,
            session::set_cookie(&id, sessions.ttl(), over_tls(&req)),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({"expires_in_seconds": sessions.ttl().as_secs()}))
}

/// A `POST /api/session` body that carries no usable token.
enum BodyError {
    /// Neither JSON nor a form.
    UnsupportedType,
    /// JSON or a form without a `token` string.
    Malformed,
}

impl BodyError {
    fn response(&self) -> HttpResponse {
        match self {
            BodyError::UnsupportedType => {
                HttpResponse::UnsupportedMediaType().json(serde_json::json!({
                    "error": "unsupported_media_type",
                    "detail": "send {\"token\": \"...\"} as application/json, \
                               token=... as a form, or Authorization: Bearer",
                }))
            }
            BodyError::Malformed => HttpResponse::BadRequest().json(serde_json::json!({
                "error": "bad_request",
                "parameter": "token",
                "detail": "the body must carry the token: {\"token\": \"...\"}",
            })),
        }
    }
}

/// The token in the body, if there is a body.
fn body_token(req: &HttpRequest, body: &[u8]) -> Result<Option<String>, BodyError> {
    if body.is_empty() {
        return Ok(None);
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let parsed = match essence.as_str() {
        "application/json" => serde_json::from_slice::<TokenBody>(body).ok(),
        "application/x-www-form-urlencoded" => std::str::from_utf8(body)
            .ok()
            .and_then(|text| web::Query::<TokenBody>::from_query(text).ok())
            .map(web::Query::into_inner),
        _ => return Err(BodyError::UnsupportedType),
    };
    parsed
        .map(|body| Some(body.token))
        .ok_or(BodyError::Malformed)
}

/// `DELETE /api/session`: ends the cookie's session (if any) and clears
/// the cookie; 204 either way.
async fn end_session<S: Status>(state: web::Data<State<S>>, req: HttpRequest) -> HttpResponse {
    let access = &state.access;
    if !access.token_required() {
        if let Some(denied) = access.host_denied(&req) {
            return denied;
        }
    }
    if let Some(id) = session::cookie(&req) {
        access.sessions().end(id);
    }
    HttpResponse::NoContent()
        .insert_header((header::SET_COOKIE, session::clear_cookie(over_tls(&req))))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}
