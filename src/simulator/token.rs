//! `POST /oauth/token`: the OAuth client-credentials grant as Genesys serves it.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use actix_web::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;
use serde_json::json;

use super::faults::Fault;
use super::record::Endpoint;
use super::responses::{
    add_correlation_header, correlation_id, oauth_error, rate_limited, status_code,
};
use super::routes::record;
use super::shared::Shared;

const FORM: &str = "application/x-www-form-urlencoded";

/// Handles a token request and logs it (with the token issued, if any).
pub(crate) async fn issue(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let at = SystemTime::now();
    let correlation = correlation_id();
    let (mut response, token) = respond(&req, &body, &shared, &correlation).await;
    add_correlation_header(&mut response, &correlation);
    let status = response.status().as_u16();
    shared.record(Endpoint::Token, record(&req, at, Vec::new(), token, status));
    response
}

async fn respond(
    req: &HttpRequest,
    body: &[u8],
    shared: &Shared,
    correlation: &str,
) -> (HttpResponse, Option<String>) {
    match shared.faults.take_token() {
        Some(Fault::TokenOutage { status }) => {
            log::debug!("simulator injects a token outage ({status})");
            return (outage(status_code(status)), None);
        }
        Some(Fault::TokenSlow { delay_ms }) => {
            log::debug!("simulator delays a token request by {delay_ms} ms");
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        _ => {}
    }
    let client_id = match check_request(req, body, shared) {
        Ok(client_id) => client_id,
        Err(rejection) => {
            let response = oauth_error(rejection.status, rejection.error, &rejection.description);
            return (response, None);
        }
    };
    let now = Instant::now();
    let mut state = shared.state();
    if let Err(limited) = state.acquire_token_request(&client_id, now) {
        return (rate_limited(limited.retry_after_secs, correlation), None);
    }
    let (token, expires_in) = state.issue_token(now);
    drop(state);
    let response = HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header((PRAGMA, "no-cache"))
        .json(json!({
            "access_token": token,
            "token_type": "bearer",
            "expires_in": expires_in,
        }));
    (response, Some(token))
}

/// Why a token request is refused: the fields of the OAuth error body.
struct Rejection {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl Rejection {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
        }
    }
}

/// Checks content type, body, client credentials and grant type, in that
/// order; returns the client id.
fn check_request(req: &HttpRequest, body: &[u8], shared: &Shared) -> Result<String, Rejection> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(str::trim);
    if !content_type.is_some_and(|essence| essence.eq_ignore_ascii_case(FORM)) {
        return Err(invalid_request(format!("Content-Type must be {FORM}")));
    }
    let form = std::str::from_utf8(body)
        .ok()
        .and_then(|text| web::Query::<HashMap<String, String>>::from_query(text).ok())
        .ok_or_else(|| invalid_request("The request body is not a valid form"))?;

    let Some((client_id, client_secret)) = basic_credentials(req) else {
        return Err(Rejection::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication with HTTP Basic is required",
        ));
    };
    if !shared.credentials_match(&client_id, &client_secret) {
        log::warn!("simulator: token request with bad credentials for client id '{client_id}'");
        return Err(Rejection::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Bad client credentials",
        ));
    }

    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => Ok(client_id),
        Some(other) => Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("Unsupported grant type: {other}"),
        )),
        None => Err(invalid_request("Missing grant_type")),
    }
}

fn invalid_request(description: impl Into<String>) -> Rejection {
    Rejection::new(StatusCode::BAD_REQUEST, "invalid_request", description)
}

/// The answer of a token endpoint that is down (injected fault).
fn outage(status: StatusCode) -> HttpResponse {
    let error = match status.as_u16() {
        400 => "invalid_request",
        401 => "invalid_client",
        403 => "unauthorized_client",
        429 | 500..=599 => "temporarily_unavailable",
        _ => "server_error",
    };
    oauth_error(status, error, "The authorization server is unavailable")
}

/// The id and secret of an `Authorization: Basic base64(id:secret)` header.
fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    parse_basic(req.headers().get(AUTHORIZATION)?.to_str().ok()?)
}

/// Parses the value of a Basic `Authorization` header.
pub(crate) fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}
