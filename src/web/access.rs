//! Who may use the status API: with a token (`http.auth_token_env`), the
//! holder of the token (`Authorization: Bearer`) or of a session made with
//! it (the page's cookie, see [`super::session`]); without one, anyone who
//! reaches the socket, as long as the `Host` names this server (so a web
//! page cannot reach it through DNS rebinding).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use ring::hmac;
use ring::rand::SystemRandom;

use super::session::{self, Sessions};
use crate::genesys::wire;
use crate::secret::Secret;

pub(super) struct Access {
    token: Option<TokenCheck>,
    bind: Option<SocketAddr>,
    sessions: Sessions,
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
    pub(super) fn new(token: Option<Secret>, bind: Option<SocketAddr>) -> Access {
        let token = token.map(|token| {
            // No randomness means no safe way to keep the token: refuse everyone.
            TokenCheck::new(&token).unwrap_or_else(|| {
                log::error!("http: no randomness for the token check; refusing every request");
                let key = hmac::Key::new(hmac::HMAC_SHA256, &[0; 32]);
                let tag = hmac::sign(&key, b"");
                TokenCheck { key, tag }
            })
        });
        Access {
            token,
            bind,
            sessions: Sessions::new(),
        }
    }

    /// Whether a token is configured.
    pub(super) fn token_required(&self) -> bool {
        self.token.is_some()
    }

    /// Whether `candidate` is the token (constant time); `false` without one.
    pub(super) fn token_matches(&self, candidate: &str) -> bool {
        self.token
            .as_ref()
            .is_some_and(|check| check.matches(candidate))
    }

    pub(super) fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// For the API routes: `Some(response)` when the request may not be
    /// answered. With a token: unless it carries the token as a bearer or
    /// a live session cookie (never `?access_token=`: a token does not go
    /// into URLs, which end up in logs and histories). Without: unless the
    /// `Host` names this server.
    pub(super) fn denied(&self, req: &HttpRequest) -> Option<HttpResponse> {
        if self.token.is_none() {
            return self.host_denied(req);
        }
        let by_bearer = bearer(req).is_some_and(|given| self.token_matches(&given));
        let by_session =
            || session::cookie(req).is_some_and(|id| self.sessions.valid(id, Instant::now()));
        if by_bearer || by_session() {
            return None;
        }
        log::debug!(
            "http: {} {} without a valid token or session",
            req.method(),
            req.path()
        );
        Some(unauthorized())
    }

    /// For the page: with a token it loads for anyone (it holds no data and
    /// asks for the token itself); without, the `Host` check.
    pub(super) fn page_denied(&self, req: &HttpRequest) -> Option<HttpResponse> {
        if self.token.is_some() {
            None
        } else {
            self.host_denied(req)
        }
    }

    /// `Some(421)` unless the `Host` names this server.
    pub(super) fn host_denied(&self, req: &HttpRequest) -> Option<HttpResponse> {
        let local = req.app_config().local_addr();
        if host_allowed(host(req).as_deref(), self.bind, local) {
            return None;
        }
        log::debug!(
            "http: {} {} refused: Host {:?} is not this server",
            req.method(),
            req.path(),
            host(req).map(|h| wire::truncate(&h))
        );
        Some(
            HttpResponse::build(StatusCode::MISDIRECTED_REQUEST).json(serde_json::json!({
                "error": "misdirected_request",
                "detail": "the Host header must name this server \
                           (its bind address, localhost, 127.0.0.1 or [::1])",
            })),
        )
    }
}

/// 401 with `WWW-Authenticate: Bearer` and a JSON body.
pub(super) fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({"error": "unauthorized"}))
}

/// The token of `Authorization: Bearer <token>`; the scheme is case-insensitive.
pub(super) fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once([' ', '\t'])?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// Whether the request came over TLS (to this server, or to a proxy that
/// says so): then the session cookie is `Secure`.
pub(super) fn over_tls(req: &HttpRequest) -> bool {
    req.app_config().secure() || req.connection_info().scheme().eq_ignore_ascii_case("https")
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
