//! Response bodies and headers shaped like Genesys Cloud's.

use std::io;

use actix_web::http::header::{HeaderName, HeaderValue, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use futures_util::stream;
use serde_json::json;

use super::rate::Usage;

/// `ININ-Correlation-Id`: the id Genesys gives every response.
const CORRELATION_HEADER: &str = "inin-correlation-id";
const COUNT_HEADER: &str = "inin-ratelimit-count";
const ALLOWED_HEADER: &str = "inin-ratelimit-allowed";
const RESET_HEADER: &str = "inin-ratelimit-reset";

/// A fresh correlation id.
pub(crate) fn correlation_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The status for a configured code; codes outside 200..=599 become 500.
pub(crate) fn status_code(code: u16) -> StatusCode {
    match StatusCode::from_u16(code) {
        Ok(status) if (200..=599).contains(&code) => status,
        _ => {
            log::warn!("simulator: status {code} is not usable, sending 500");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// The Genesys error `code` for a status.
fn error_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad.request",
        401 => "bad.credentials",
        403 => "not.authorized",
        404 => "not.found",
        408 => "request.timeout",
        429 => "too.many.requests",
        500 => "internal.server.error",
        502 => "bad.gateway",
        503 => "service.unavailable",
        504 => "gateway.timeout",
        _ => "error",
    }
}

/// The message Genesys would give for a status without more detail.
pub(crate) fn default_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "Invalid login credentials.",
        403 => "You are not authorized to perform the requested action.",
        404 => "The requested resource was not found.",
        429 => "Rate limit exceeded the maximum.",
        500..=599 => "The service is currently unavailable. Please try again later.",
        _ => status.canonical_reason().unwrap_or("Error"),
    }
}

/// A Genesys API error: `{"message","code","status","messageParams","contextId","details","errors"}`.
pub(crate) fn genesys_error(status: StatusCode, message: &str, correlation: &str) -> HttpResponse {
    genesys_error_with_code(status, error_code(status), message, correlation)
}

fn genesys_error_with_code(
    status: StatusCode,
    code: &str,
    message: &str,
    correlation: &str,
) -> HttpResponse {
    HttpResponse::build(status).json(json!({
            "message": message,
            "code": code,
            "status": status.as_u16(),
            "messageParams": {},
            "contextId": correlation,
            "details": [],
            "errors": [],
    }))
}

/// A Genesys 429 with `Retry-After`.
pub(crate) fn rate_limited(retry_after_secs: u64, correlation: &str) -> HttpResponse {
    let message = format!(
        "Rate limit exceeded the maximum. Retry the request in [{retry_after_secs}] seconds"
    );
    let mut response = genesys_error_with_code(
        StatusCode::TOO_MANY_REQUESTS,
        "too.many.requests.retry.after",
        &message,
        correlation,
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

/// An OAuth error: `{"error","description","error_description"}`.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "error": error,
        "description": description,
        "error_description": description,
    }))
}

/// A 200 whose body is cut off in the middle of the JSON.
pub(crate) fn malformed_body() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"results":[{"group":{"queueId":"#)
}

/// A redirect to `location` with no body (invalid header values are left out).
pub(crate) fn redirect(status: StatusCode, location: &str) -> HttpResponse {
    let mut response = HttpResponse::build(status).finish();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// A 200 JSON response with exactly this body text.
pub(crate) fn raw_json(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}

/// Replaces the `Content-Type` of a response; empty (or invalid) removes it.
pub(crate) fn set_content_type(response: &mut HttpResponse, content_type: &str) {
    let headers = response.headers_mut();
    headers.remove(CONTENT_TYPE);
    if let Ok(value) = HeaderValue::from_str(content_type) {
        if !content_type.is_empty() {
            headers.insert(CONTENT_TYPE, value);
        }
    }
}

/// A response whose body fails at once: actix-web drops the connection
/// before the buffered head is flushed, so the client gets no response.
pub(crate) fn dropped_connection() -> HttpResponse {
    let failing = stream::once(async {
        Err::<Bytes, _>(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "connection dropped by simulator fault",
        ))
    });
    HttpResponse::Ok().streaming(failing)
}

/// Adds the `inin-ratelimit-*` headers (when a limit is in force).
pub(crate) fn add_usage_headers(response: &mut HttpResponse, usage: Option<Usage>) {
    let Some(usage) = usage else { return };
    let headers = response.headers_mut();
    for (name, value) in [
        (COUNT_HEADER, u64::from(usage.count)),
        (ALLOWED_HEADER, u64::from(usage.allowed)),
        (RESET_HEADER, usage.reset_secs),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}

/// Adds `ININ-Correlation-Id` (invalid ids are skipped; ours are UUIDs).
pub(crate) fn add_correlation_header(response: &mut HttpResponse, correlation: &str) {
    if let Ok(value) = HeaderValue::from_str(correlation) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(CORRELATION_HEADER), value);
    }
}
