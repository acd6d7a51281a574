//! The Genesys Cloud HTTP client on awc: the OAuth token request and the
//! three queue data sources, each failure classified into an [`ErrorKind`].
//!
//! awc's client is `!Send`: build one [`GenesysClient`] per arbiter thread
//! and clone it (cheaply) to the actors on that thread.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use awc::error::{ConnectError, PayloadError, SendRequestError};
use awc::http::StatusCode;

use super::headers::{parse_retry_after, RateLimitInfo};
use super::prepared::{BearerCache, QueueEndpoint, QueueUrl};
use super::wire::{self, Sample};
use crate::error::{ErrorKind, PollError};
use crate::secret::Secret;

/// Largest response body accepted (observations for 100 queues are ~50 KiB).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Where and how to reach Genesys. `Send + Sync`: build once, share by `Arc`.
#[derive(Clone)]
pub struct ClientOptions {
    /// API base URL, e.g. `https://api.mypurecloud.com` (no trailing slash).
    pub api_base: String,
    /// OAuth base URL, e.g. `https://login.mypurecloud.com`.
    pub login_base: String,
    /// Bound on one request: connect, send, headers and body together.
    pub request_timeout: Duration,
    /// TLS configuration (see [`super::tls::client_config`]).
    pub tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("api_base", &self.api_base)
            .field("login_base", &self.login_base)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

/// OAuth client credentials. Both parts are redacted in `Debug`.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The OAuth client id.
    pub client_id: Secret,
    /// The OAuth client secret.
    pub client_secret: Secret,
}

/// An access token as the token endpoint gave it.
#[derive(Clone, Debug)]
pub struct AccessToken {
    /// The bearer token.
    pub token: Secret,
    /// Lifetime as given by the server (`expires_in`), not clamped.
    pub expires_in: Duration,
}

/// Why no token could be had.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TokenError {
    /// The token endpoint refused the credentials (400/401, e.g.
    /// `invalid_client`): retrying cannot help. Fatal for the binary.
    #[error("credentials rejected: {0}")]
    Rejected(String),
    /// The endpoint was unreachable, slow, rate limited, 5xx, or answered
    /// nonsense: retry with backoff.
    #[error("token endpoint unavailable: {0}")]
    Unavailable(PollError),
}

/// The result of one request plus what is known even when it failed.
#[derive(Debug, Clone)]
pub struct Outcome<T> {
    /// The parsed value or the classified failure.
    pub result: Result<T, PollError>,
    /// `inin-ratelimit-*` headers, when a response arrived.
    pub rate: RateLimitInfo,
    /// Wall time from sending to the end of the body (or the failure).
    pub latency: Duration,
}

/// A Genesys client for one thread. Clones share the connection pool.
#[derive(Clone)]
pub struct GenesysClient {
    http: awc::Client,
    options: Arc<ClientOptions>,
    bearer: Rc<BearerCache>,
}

struct RawResponse {
    status: StatusCode,
    /// The `Content-Type` header, if it was readable text.
    content_type: Option<String>,
    retry_after: Option<Duration>,
    rate: RateLimitInfo,
    body: actix_web::web::Bytes,
}

impl GenesysClient {
    /// Builds a client (and its connection pool) for the current thread.
    pub fn new(options: Arc<ClientOptions>) -> GenesysClient {
        let http = super::tls::http_client(&options.tls, options.request_timeout);
        GenesysClient {
            http,
            options,
            bearer: Rc::default(),
        }
    }

    /// The client of the current thread for `options`: built on first use,
    /// then shared by every actor of this thread (awc clients are `!Send`).
    pub fn for_thread(options: &Arc<ClientOptions>) -> GenesysClient {
        thread_local! {
            static CLIENTS: std::cell::RefCell<Vec<GenesysClient>> =
                const { std::cell::RefCell::new(Vec::new()) };
        }
        CLIENTS.with(|clients| {
            let mut clients = clients.borrow_mut();
            if let Some(client) = clients.iter().find(|c| Arc::ptr_eq(&c.options, options)) {
                return client.clone();
            }
            // Few distinct options exist per process; drop ones nobody else holds.
            clients.retain(|c| Arc::strong_count(&c.options) > 1);
            let client = GenesysClient::new(options.clone());
            clients.push(client.clone());
            client
        })
    }

    /// The options this client was built with.
    pub fn options(&self) -> &Arc<ClientOptions> {
        &self.options
    }

    /// Requests a token with the client-credentials grant: `POST
    /// {login}/oauth/token`, Basic auth, form body `grant_type=client_credentials`.
    pub async fn fetch_token(&self, credentials: &Credentials) -> Result<AccessToken, TokenError> {
        let url = format!("{}{}", self.options.login_base, wire::TOKEN_PATH);
        let request = self
            .http
            .post(url)
            .basic_auth(
                credentials.client_id.expose(),
                credentials.client_secret.expose(),
            )
            .insert_header((awc::http::header::ACCEPT, "application/json"));
        let raw = self
            .exchange(request.send_form(&[("grant_type", "client_credentials")]))
            .await
            .map_err(TokenError::Unavailable)?;
        match raw.status.as_u16() {
            200 => {
                let token = wire::parse_token(&raw.body).map_err(TokenError::Unavailable)?;
                Ok(AccessToken {
                    token: Secret::new(token.access_token),
                    expires_in: Duration::from_secs(token.expires_in),
                })
            }
            status @ (400 | 401) => {
                let body: wire::OAuthErrorBody =
                    serde_json::from_slice(&raw.body).unwrap_or_default();
                let code = body.error.as_deref().unwrap_or("no error code");
                let text = body
                    .error_description
                    .or(body.description)
                    .map(|d| format!(": {}", wire::truncate(&d)))
                    .unwrap_or_default();
                Err(TokenError::Rejected(format!("{status} {code}{text}")))
            }
            _ => Err(TokenError::Unavailable(status_error(
                &raw,
                "token endpoint",
            ))),
        }
    }

    /// `guest_position`: one queue's guest position and wait.
    pub async fn queue_position(&self, token: &Secret, queue_id: &str) -> Outcome<Sample> {
        let url = QueueUrl::position(&self.options.api_base, queue_id);
        self.queue_data(token, queue_id, &url).await
    }

    /// `estimated_wait_time`: one queue's estimated wait for messages.
    pub async fn estimated_wait(&self, token: &Secret, queue_id: &str) -> Outcome<Sample> {
        let url = QueueUrl::estimated_wait(&self.options.api_base, queue_id);
        self.queue_data(token, queue_id, &url).await
    }

    /// Queue `queue_id`'s data at `url`, built once by its poller
    /// ([`QueueUrl::position`] or [`QueueUrl::estimated_wait`] of the same queue).
    pub async fn queue_data(
        &self,
        token: &Secret,
        queue_id: &str,
        url: &QueueUrl,
    ) -> Outcome<Sample> {
        let request = self.authorize(url.get(&self.http), token);
        match url.endpoint {
            QueueEndpoint::Position => {
                self.timed(request.send(), |body| wire::parse_position(queue_id, body))
                    .await
            }
            QueueEndpoint::EstimatedWait => {
                self.timed(request.send(), wire::parse_estimated_wait).await
            }
        }
    }

    /// `request` with the token's `Authorization` header.
    pub(super) fn authorize(
        &self,
        request: awc::ClientRequest,
        token: &Secret,
    ) -> awc::ClientRequest {
        self.bearer.authorize(request, token)
    }

    /// `observations`: waiting counts and agents for up to
    /// [`wire::OBSERVATIONS_MAX_QUEUES`] queues in one request. Queues left
    /// out of the response are absent from the map.
    pub async fn observations(
        &self,
        token: &Secret,
        queue_ids: &[&str],
    ) -> Outcome<HashMap<String, Sample>> {
        let url = format!("{}{}", self.options.api_base, wire::OBSERVATIONS_PATH);
        let request = self.authorize(self.http.post(url), token);
        let body = wire::observations_query(queue_ids);
        self.timed(request.send_json(&body), |b| {
            wire::parse_observations(queue_ids, b)
        })
        .await
    }

    /// The HTTP client (for the Notifications WebSocket).
    pub(super) fn http(&self) -> &awc::Client {
        &self.http
    }

    /// [`Self::observations`] at metric level (the push source's snapshot):
    /// each queue's counts by metric, qualifier and media type.
    pub async fn observation_metrics(
        &self,
        token: &Secret,
        queue_ids: &[&str],
    ) -> Outcome<HashMap<String, Vec<wire::MetricCount>>> {
        let url = format!("{}{}", self.options.api_base, wire::OBSERVATIONS_PATH);
        let request = self.authorize(self.http.post(url), token);
        let body = wire::observations_query(queue_ids);
        self.timed(request.send_json(&body), |b| {
            wire::parse_observation_metrics(queue_ids, b)
        })
        .await
    }

    /// Sends, times, classifies non-2xx statuses, and parses a 2xx body.
    pub(super) async fn timed<T>(
        &self,
        send: impl std::future::Future<Output = Result<awc::ClientResponse, SendRequestError>>,
        parse: impl FnOnce(&[u8]) -> Result<T, PollError>,
    ) -> Outcome<T> {
        self.timed_with(send, true, parse).await
    }

    /// [`Self::timed`]; `json`: a 2xx must say it is JSON (HEAD and DELETE
    /// answers carry no body).
    pub(super) async fn timed_with<T>(
        &self,
        send: impl std::future::Future<Output = Result<awc::ClientResponse, SendRequestError>>,
        json: bool,
        parse: impl FnOnce(&[u8]) -> Result<T, PollError>,
    ) -> Outcome<T> {
        let started = Instant::now();
        let raw = self.exchange(send).await;
        let latency = started.elapsed();
        match raw {
            Err(error) => Outcome {
                result: Err(error),
                rate: RateLimitInfo::default(),
                latency,
            },
            Ok(raw) => {
                let result = if raw.status.is_success() {
                    (if json { check_json(&raw) } else { Ok(()) })
                        .and_then(|()| parse(&raw.body))
                        .map_err(|e| e.with_status(raw.status.as_u16()))
                } else {
                    Err(status_error(&raw, "API"))
                };
                Outcome {
                    result,
                    rate: raw.rate,
                    latency,
                }
            }
        }
    }

    /// One request and its whole body, bounded by `request_timeout`.
    async fn exchange(
        &self,
        send: impl std::future::Future<Output = Result<awc::ClientResponse, SendRequestError>>,
    ) -> Result<RawResponse, PollError> {
        let timeout = self.options.request_timeout;
        let work = async {
            let mut response = send.await.map_err(classify_send)?;
            let headers = response.headers();
            let retry_after = headers
                .get(awc::http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            let rate = RateLimitInfo::from_headers(headers);
            let content_type = headers
                .get(awc::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let status = response.status();
            let body = response
                .body()
                .limit(MAX_BODY)
                .await
                .map_err(classify_payload)?;
            Ok(RawResponse {
                status,
                content_type,
                retry_after,
                rate,
                body,
            })
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(PollError::new(
                ErrorKind::Timeout,
                format!(
                    "no complete response within {}",
                    humantime::format_duration(timeout)
                ),
            )),
        }
    }
}

/// A non-success status as a classified error with its Retry-After.
fn status_error(raw: &RawResponse, what: &str) -> PollError {
    let status = raw.status.as_u16();
    let kind = ErrorKind::from_status(status);
    let message = serde_json::from_slice::<serde_json::Value>(&raw.body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(wire::truncate)
        });
    let mut detail = match (kind, raw.retry_after) {
        (ErrorKind::RateLimited, Some(after)) => {
            format!(
                "{status}, retry after {}",
                // Whole seconds: a date gives "59m 59s", not nanoseconds.
                humantime::format_duration(std::time::Duration::from_secs(
                    after.as_secs() + u64::from(after.subsec_nanos() > 0)
                ))
            )
        }
        (ErrorKind::InvalidResponse, _) => {
            format!("{what} answered {status}, a redirect (not followed)")
        }
        _ => format!("{what} answered {status}"),
    };
    if let Some(message) = message {
        detail.push_str(": ");
        detail.push_str(&message);
    }
    PollError::new(kind, detail)
        .with_status(status)
        .with_retry_after(raw.retry_after)
}

/// A 2xx body must say it is JSON before it is parsed (an HTML error page
/// of a proxy or captive portal is `invalid_response`, not a parse attempt).
fn check_json(raw: &RawResponse) -> Result<(), PollError> {
    match raw.content_type.as_deref() {
        Some(value) if wire::is_json_content_type(value) => Ok(()),
        Some(value) => Err(PollError::new(
            ErrorKind::InvalidResponse,
            format!(
                "response Content-Type {:?} is not application/json",
                wire::truncate(value)
            ),
        )),
        None => Err(PollError::new(
            ErrorKind::InvalidResponse,
            "response has no Content-Type (expected application/json)",
        )),
    }
}

fn classify_send(error: SendRequestError) -> PollError {
    let kind = match &error {
        SendRequestError::Timeout | SendRequestError::Connect(ConnectError::Timeout) => {
            ErrorKind::Timeout
        }
        _ => ErrorKind::Connection,
    };
    PollError::new(kind, error.to_string())
}

fn classify_payload(error: PayloadError) -> PollError {
    let kind = match &error {
        PayloadError::Overflow => ErrorKind::InvalidResponse,
        _ => ErrorKind::Connection,
    };
    PollError::new(kind, format!("reading the body: {error}"))
}
