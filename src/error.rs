//! The one error taxonomy used everywhere a poll can fail.
//!
//! [`ErrorKind`] is exactly the set of `error` values of a `poll_failed` event
//! (docs/events.md). [`PollError`] carries a kind plus what a retry decision
//! needs (HTTP status, `Retry-After`) and a human-readable detail.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Why a poll (or a token request) failed. Serialises as the snake_case names of docs/events.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// HTTP 429 from Genesys (or our own budget refused to wait that long).
    RateLimited,
    /// HTTP 401 from the API that one token refetch did not cure.
    Unauthorized,
    /// HTTP 403: the OAuth client lacks a permission for this queue.
    Forbidden,
    /// HTTP 404, or a queue missing from an observations result.
    NotFound,
    /// HTTP 5xx (or any other unexpected status).
    ServerError,
    /// No complete response within `request_timeout`.
    Timeout,
    /// The connection could not be made or broke mid-response (includes TLS failures).
    Connection,
    /// The body did not parse or broke a rule (negative position, NaN wait, ...).
    InvalidResponse,
    /// The response describes another queue than the one asked for.
    QueueMismatch,
    /// No access token could be had.
    AuthFailed,
    /// The cycle was still running at shutdown after its grace period.
    Cancelled,
}

impl ErrorKind {
    /// Every kind, in declaration order (for metrics and tests).
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::RateLimited,
        ErrorKind::Unauthorized,
        ErrorKind::Forbidden,
        ErrorKind::NotFound,
        ErrorKind::ServerError,
        ErrorKind::Timeout,
        ErrorKind::Connection,
        ErrorKind::InvalidResponse,
        ErrorKind::QueueMismatch,
        ErrorKind::AuthFailed,
        ErrorKind::Cancelled,
    ];

    /// The documented name, e.g. `"rate_limited"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::ServerError => "server_error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connection => "connection",
            ErrorKind::InvalidResponse => "invalid_response",
            ErrorKind::QueueMismatch => "queue_mismatch",
            ErrorKind::AuthFailed => "auth_failed",
            ErrorKind::Cancelled => "cancelled",
        }
    }

    /// Whether another attempt in the same cycle may succeed.
    ///
    /// 403/404 describe configuration, not luck; a mismatch or a bad body
    /// repeats too, but is retried because a proxy hiccup can cause it.
    pub fn is_transient(self) -> bool {
        !matches!(
            self,
            ErrorKind::Forbidden | ErrorKind::NotFound | ErrorKind::Cancelled
        )
    }

    /// Maps an HTTP error status to its kind (non-success statuses only).
    /// A redirect is `invalid_response`: the Genesys API never sends one, and
    /// it is not followed (the bearer token must not travel elsewhere).
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            300..=399 => ErrorKind::InvalidResponse,
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::Forbidden,
            404 | 410 => ErrorKind::NotFound,
            408 | 504 => ErrorKind::Timeout,
            429 => ErrorKind::RateLimited,
            _ => ErrorKind::ServerError,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified failure of one request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct PollError {
    /// The documented error kind.
    pub kind: ErrorKind,
    /// Human-readable detail for the event's `detail` field. Never holds secrets.
    pub detail: String,
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// Server-requested wait before the next request (`Retry-After`), already clamped.
    pub retry_after: Option<Duration>,
}

impl PollError {
    /// A failure of `kind` with a detail message.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        PollError {
            kind,
            detail: detail.into(),
            status: None,
            retry_after: None,
        }
    }

    /// Whether another attempt in the same cycle may succeed: the rule of
    /// [`ErrorKind::is_transient`], except that a redirect (3xx) would only
    /// repeat, so it is final.
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient() && !self.status.is_some_and(|s| (300..=399).contains(&s))
    }

    /// Adds the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Adds the server's `Retry-After`.
    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_are_invalid_and_final() {
        for status in [300, 301, 302, 303, 304, 307, 308, 399] {
            assert_eq!(ErrorKind::from_status(status), ErrorKind::InvalidResponse);
            let error = PollError::new(ErrorKind::from_status(status), "x").with_status(status);
            assert!(!error.is_transient(), "{status}");
        }
        // A bad 200 body is still worth another try (a proxy hiccup).
        let body = PollError::new(ErrorKind::InvalidResponse, "x").with_status(200);
        assert!(body.is_transient());
        assert!(PollError::new(ErrorKind::ServerError, "x")
            .with_status(503)
            .is_transient());
        assert!(!PollError::new(ErrorKind::NotFound, "x")
            .with_status(404)
            .is_transient());
        assert_eq!(ErrorKind::from_status(500), ErrorKind::ServerError);
        assert_eq!(ErrorKind::from_status(418), ErrorKind::ServerError);
    }
}
