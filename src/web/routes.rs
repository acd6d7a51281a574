//! The route handlers of the status API.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::sse;
use crate::runtime::Handle;
use crate::secret::Secret;

const PAGE: &str = include_str!("page.html");
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

struct State {
    handle: Handle,
    token: Option<Secret>,
}

pub(super) fn register(cfg: &mut web::ServiceConfig, handle: Handle) {
    let token = handle.http_token();
    cfg.app_data(web::Data::new(State { handle, token }))
        .route("/healthz", web::get().to(healthz))
        .route("/healthz", web::head().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/readyz", web::head().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/api/queues", web::get().to(queues))
        .route("/api/queues/{id}", web::get().to(queue))
        .route("/api/events", web::get().to(events))
        .route("/", web::get().to(page));
}

/// A 401 response unless the request carries the configured bearer token.
fn denied(state: &State, req: &HttpRequest) -> Option<HttpResponse> {
    let expected = state.token.as_ref()?;
    let from_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let from_query =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("access_token").cloned());
    let given = from_header.map(str::to_string).or(from_query);
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), expected.expose().as_bytes()) => None,
        _ => Some(
            HttpResponse::Unauthorized()
                .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
                .json(serde_json::json!({"error": "unauthorized"})),
        ),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

async fn readyz(state: web::Data<State>) -> HttpResponse {
    let readiness = state.handle.readiness().await;
    let body = serde_json::json!({
        "ready": readiness.ready(),
        "token": readiness.token_held,
        "successful_polls": readiness.successful_polls,
    });
    if readiness.ready() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let Some(denied) = denied(&state, &req) {
        return denied;
    }
    HttpResponse::Ok()
        .content_type(OPENMETRICS)
        .body(state.handle.telemetry().encode())
}

async fn queues(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let Some(denied) = denied(&state, &req) {
        return denied;
    }
    HttpResponse::Ok().json(state.handle.queues().await)
}

async fn queue(state: web::Data<State>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    if let Some(denied) = denied(&state, &req) {
        return denied;
    }
    match state.handle.queue(&id).await {
        Some(detail) => HttpResponse::Ok().json(detail),
        None => HttpResponse::NotFound().json(serde_json::json!({
            "error": "not_found",
            "queue_id": crate::genesys::wire::truncate(&id),
        })),
    }
}

async fn events(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let Some(denied) = denied(&state, &req) {
        return denied;
    }
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(sse::client_stream(state.handle.event_stream()))
}

async fn page(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let Some(denied) = denied(&state, &req) {
        return denied;
    }
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(PAGE)
}
