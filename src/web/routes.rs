//! The route handlers of the status API.

use std::net::{IpAddr, SocketAddr};

use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use ring::hmac;
use ring::rand::SystemRandom;

use super::{sse, Status};
use crate::genesys::wire;
use crate::secret::Secret;

const PAGE: &str = include_str!("page.html");
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

struct State<S> {
    handle: S,
    access: Access,
}

pub(super) fn register<S: Status>(cfg: &mut web::ServiceConfig, handle: S) {
    let access = Access::new(handle.http_token(), handle.http_bind());
    cfg.app_data(web::Data::new(State { handle, access }))
        .service(get_and_head("/healthz", healthz))
        .service(get_and_head("/readyz", readyz::<S>))
        .service(get_and_head("/metrics", metrics::<S>))
        .service(get_and_head("/api/queues", queues::<S>))
        .service(get_and_head("/api/queues/{id}", queue::<S>))
        .service(get_and_head("/api/events", events::<S>))
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
    log::debug!("http: {} {} is not allowed", req.method(), req.path());
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "GET, HEAD"))
        .json(serde_json::json!({"error": "method_not_allowed", "allow": ["GET", "HEAD"]}))
}

/// Who may use the API: the bearer token holder when a token is set;
/// otherwise anyone who reaches the socket, as long as the `Host` names this
/// server (so a web page cannot reach it through DNS rebinding).
struct Access {
    token: Option<TokenCheck>,
    bind: Option<SocketAddr>,
}

/// The configured token, kept only as an HMAC under a random key: checking
/// a candidate is HMAC-ing it and comparing tags in constant time, so the
/// time taken says nothing about the token's bytes or its length.
struct TokenCheck {
    key: hmac::Key,
    tag: hmac::Tag,
}

impl TokenCheck {
    fn new(token: &Secret) -> Option<TokenCheck> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new()).ok()?;
        let tag = hmac::sign(&key, token.expose().as_bytes());
        Some(TokenCheck { key, tag })
    }

    fn matches(&self, candidate: &str) -> bool {
        hmac::verify(&self.key, candidate.as_bytes(), self.tag.as_ref()).is_ok()
    }
}

impl Access {
    fn new(token: Option<Secret>, bind: Option<SocketAddr>) -> Access {
        let token = token.map(|token| {
            // No randomness means no safe way to keep the token: refuse everyone.
            TokenCheck::new(&token).unwrap_or_else(|| {
                log::error!("http: no randomness for the token check; refusing every request");
                let key = hmac::Key::new(hmac::HMAC_SHA256, &[0; 32]);
                let tag = hmac::sign(&key, b"");
                TokenCheck { key, tag }
            })
        });
        Access { token, bind }
    }

    /// `Some(response)` when the request may not be answered.
    fn denied(&self, req: &HttpRequest) -> Option<HttpResponse> {
        match &self.token {
            Some(check) => {
                let given = bearer(req).or_else(|| query_token(req));
                if given.as_deref().is_some_and(|given| check.matches(given)) {
                    None
                } else {
                    log::debug!(
                        "http: {} {} without a valid token",
                        req.method(),
                        req.path()
                    );
                    Some(
                        HttpResponse::Unauthorized()
                            .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
                            .json(serde_json::json!({"error": "unauthorized"})),
                    )
                }
            }
            None => {
                let local = req.app_config().local_addr();
                if host_allowed(host(req).as_deref(), self.bind, local) {
                    None
                } else {
                    log::debug!(
                        "http: {} {} refused: Host {:?} is not this server",
                        req.method(),
                        req.path(),
                        host(req).map(|h| wire::truncate(&h))
                    );
                    Some(HttpResponse::build(StatusCode::MISDIRECTED_REQUEST).json(
                        serde_json::json!({
                            "error": "misdirected_request",
                            "detail": "the Host header must name this server \
                                       (its bind address, localhost, 127.0.0.1 or [::1])",
                        }),
                    ))
                }
            }
        }
    }
}

/// The token of `Authorization: Bearer <token>`; the scheme is case-insensitive.
fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once([' ', '\t'])?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// `?access_token=` (the page's event stream; browsers cannot send headers there).
fn query_token(req: &HttpRequest) -> Option<String> {
    web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("access_token").cloned())
}

/// The `Host` header, or the authority of an absolute URI (HTTP/2).
fn host(req: &HttpRequest) -> Option<String> {
    match req.headers().get(header::HOST) {
        Some(value) => value.to_str().ok().map(str::to_owned),
        None => req.uri().authority().map(|a| a.as_str().to_owned()),
    }
}

/// Whether `host` (a `Host` header value) names this server: a loopback
/// name or address, or the address it is bound to (any port). With an
/// unspecified bind address (`0.0.0.0`, `[::]`), any IP address: only
/// names can be rebound to another address, addresses cannot.
pub(super) fn host_allowed(
    host: Option<&str>,
    bind: Option<SocketAddr>,
    local: SocketAddr,
) -> bool {
    let Some(name) = host.and_then(host_name) else {
        return false;
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let Ok(ip) = name.parse::<IpAddr>() else {
        return false;
    };
    ip.is_loopback()
        || [bind, Some(local)]
            .into_iter()
            .flatten()
            .any(|addr| addr.ip().is_unspecified() || addr.ip() == ip)
}

/// The name part of a `Host` value: without the port, IPv6 without brackets,
/// a trailing dot dropped. `None` if it is not a plausible host.
fn host_name(host: &str) -> Option<&str> {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || port_ok(after.strip_prefix(':')?)) {
            return None;
        }
        inside
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port_ok(port) => name,
            Some(_) => return None,
            None => host,
        }
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    (!name.is_empty()).then_some(name)
}

fn port_ok(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

async fn readyz<S: Status>(state: web::Data<State<S>>) -> HttpResponse {
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

async fn queues<S: Status>(state: web::Data<State<S>>, req: HttpRequest) -> HttpResponse {
    if let Some(denied) = state.access.denied(&req) {
        return denied;
    }
    HttpResponse::Ok().json(state.handle.queues().await)
}

async fn queue<S: Status>(
    state: web::Data<State<S>>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Some(denied) = state.access.denied(&req) {
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
    if let Some(denied) = state.access.denied(&req) {
        return denied;
    }
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(PAGE)
}
