//! `kind: webhook`: POSTs every event to one endpoint, as a [`Transport`] of
//! the generic outbox (queueing, drops and `Flush` are the outbox's), from
//! its own arbiter thread. Signing is [`signing`].
//!
//! - A small fixed number of deliveries run at once
//!   ([`WebhookLimits::concurrency`]); events are POSTed roughly in order, but
//!   retries can reorder them (receivers deduplicate and order by
//!   `webhook-id` / the event `timestamp`).
//! - A delivery is retried with the crate's full-jitter backoff on timeouts,
//!   connection errors, 5xx, 408 and 429, up to [`WebhookLimits::max_attempts`]
//!   attempts; a `Retry-After` pauses the whole endpoint. Other statuses are
//!   not retried; `410 Gone` disables the endpoint for the life of the
//!   process (logged once; later events are counted as dropped). An event
//!   that is not delivered (refused, out of attempts, gone) is counted as a drop.
//!
//! The URL is never logged (its path or query may hold a token): logs and
//! metrics name the endpoint `webhook:<host>`.

pub(crate) mod signing;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::web::Bytes;
use awc::http::header::{CONTENT_TYPE, RETRY_AFTER};
use awc::http::Uri;
use futures_util::future::LocalBoxFuture;
use tokio::time::Instant;

use super::outbox::{Limits, Sent, Transport};
use super::shared::SharedEvent;
use crate::backoff::ExponentialBackoff;
use crate::genesys::headers::{parse_retry_after, LONG_RETRY_AFTER};
use crate::telemetry::Telemetry;
use signing::{SigningKey, Verdict, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};

/// Largest response body read (and discarded) from a receiver.
const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// Bounds of one webhook endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookLimits {
    /// Events queued (not yet being delivered) before new ones are dropped.
    pub capacity: usize,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Attempts per event, the first included.
    pub max_attempts: u32,
    /// Delay between attempts (full jitter); `Retry-After` is a lower bound.
    pub backoff: ExponentialBackoff,
    /// Bound on one attempt: connect, send, response head and body.
    pub request_timeout: Duration,
    /// How long `Flush` (shutdown) waits for the queue to empty.
    pub flush_grace: Duration,
}

impl Default for WebhookLimits {
    fn default() -> Self {
        WebhookLimits {
            capacity: 1024,
            concurrency: 4,
            max_attempts: 8,
            backoff: ExponentialBackoff::try_new(
                Duration::from_millis(500),
                Duration::from_secs(30),
            )
            .unwrap_or_else(|_| unreachable!("constant backoff is valid")),
            request_timeout: Duration::from_secs(10),
            flush_grace: Duration::from_secs(5),
        }
    }
}

/// Everything a webhook actor needs; shared by its incarnations.
pub struct WebhookConfig {
    /// `webhook:<host>`, for logs and metrics.
    pub name: String,
    /// Where to POST. Never logged.
    pub uri: Uri,
    /// The signing key, when `secret_env` is set.
    pub key: Option<SigningKey>,
    /// TLS for https endpoints.
    pub tls: Arc<rustls::ClientConfig>,
    /// Bounds.
    pub limits: WebhookLimits,
    /// Metrics (drops).
    pub telemetry: Telemetry,
    /// Set once the endpoint answered 410 Gone; survives restarts.
    pub gone: Arc<AtomicBool>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("signed", &self.key.is_some())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// One queued event: its id and its JSON body (the shared serialisation).
pub(crate) struct Pending {
    event: SharedEvent,
    body: Bytes,
}

impl Pending {
    fn id(&self) -> &str {
        self.event.event().id()
    }
}

/// What the deliveries of one incarnation share (on its thread).
pub(crate) struct Delivery {
    config: Arc<WebhookConfig>,
    client: awc::Client,
    /// A `Retry-After` pauses every delivery to the endpoint until then.
    paused_until: Cell<Option<Instant>>,
}

/// The transport of one endpoint.
pub(crate) struct Webhook(pub Arc<WebhookConfig>);

/// Why events are dropped once the endpoint answered 410.
const DISABLED: &str = "the endpoint is disabled (410 Gone)";

impl Transport for Webhook {
    type Item = Pending;
    type Link = Rc<Delivery>;

    fn name(&self) -> &str {
        &self.0.name
    }

    fn limits(&self) -> Limits {
        let limits = &self.0.limits;
        Limits {
            capacity: limits.capacity,
            concurrency: limits.concurrency,
            flush_grace: limits.flush_grace,
        }
    }

    fn telemetry(&self) -> &Telemetry {
        &self.0.telemetry
    }

    fn full(&self) -> &'static str {
        "queue full (the endpoint is slow or down)"
    }

    fn prepare(&self, event: &SharedEvent) -> Result<Pending, &'static str> {
        if self.0.gone.load(Ordering::Relaxed) {
            return Err(DISABLED);
        }
        Ok(Pending {
            event: event.clone(),
            body: event.json_bytes(),
        })
    }

    fn link(&self) -> LocalBoxFuture<'static, Option<Rc<Delivery>>> {
        // Built on the actor's thread: awc clients are `!Send`.
        let config = self.0.clone();
        let client = crate::genesys::tls::http_client(&config.tls, config.limits.request_timeout);
        Box::pin(std::future::ready(Some(Rc::new(Delivery {
            config,
            client,
            paused_until: Cell::new(None),
        }))))
    }

    fn send(&self, link: Rc<Delivery>, item: Pending) -> LocalBoxFuture<'static, Sent> {
        Box::pin(deliver(link, item))
    }
}

/// Delivers one event: attempts with backoff until a verdict or out of attempts.
async fn deliver(delivery: Rc<Delivery>, item: Pending) -> Sent {
    let limits = delivery.config.limits;
    let mut rng = fastrand::Rng::new();
    let mut attempt: u32 = 0;
    loop {
        if let Some(until) = delivery.paused_until.get() {
            tokio::time::sleep_until(until).await;
        }
        if delivery.config.gone.load(Ordering::Relaxed) {
            return Sent::Disabled(DISABLED.into());
        }
        attempt += 1;
        let (why, retry_after) = match delivery.attempt(&item).await {
            Ok((status, retry_after)) => match Verdict::of(status) {
                Verdict::Delivered => return Sent::Delivered,
                Verdict::Gone => {
                    if !delivery.config.gone.swap(true, Ordering::Relaxed) {
                        log::error!(
                            "callback {}: the receiver answered 410 Gone: endpoint disabled; \
                             later events are dropped until queuewatch restarts",
                            delivery.config.name
                        );
                    }
                    return Sent::Disabled(DISABLED.into());
                }
                Verdict::Rejected => {
                    return Sent::Dropped(format!(
                        "refused by the receiver with {status}; not retried"
                    ))
                }
                Verdict::Retry => (format!("answered {status}"), retry_after),
            },
            Err(why) => (why, None),
        };
        if let Some(after) = retry_after {
            // The receiver asked every sender to wait: pause the endpoint.
            let until = Instant::now() + after;
            if delivery.paused_until.get().is_none_or(|t| t < until) {
                delivery.paused_until.set(Some(until));
            }
            if after > LONG_RETRY_AFTER {
                return Sent::Dropped(format!("not delivered: {why}, retry after {after:?}"));
            }
        }
        if attempt >= limits.max_attempts {
            return Sent::Dropped(format!("not delivered: {why}, after {attempt} attempt(s)"));
        }
        let delay = limits.backoff.delay(attempt - 1, &mut rng);
        tokio::time::sleep(delay.max(retry_after.unwrap_or_default())).await;
    }
}

impl Delivery {
    /// One POST; the status and `Retry-After`, or why no response came.
    async fn attempt(&self, item: &Pending) -> Result<(u16, Option<Duration>), String> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut request = self
            .client
            .post(self.config.uri.clone())
            .insert_header((CONTENT_TYPE, "application/json"))
            .insert_header((HEADER_ID, item.id()))
            .insert_header((HEADER_TIMESTAMP, timestamp.to_string()));
        if let Some(key) = &self.config.key {
            request = request
                .insert_header((HEADER_SIGNATURE, key.sign(item.id(), timestamp, &item.body)));
        }
        let body = item.body.clone();
        let work = async move {
            let mut response = request
                .send_body(body)
                .await
                .map_err(|e| describe_send_error(&e))?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            // Read (and discard) the body so the connection can be reused.
            let _ = response.body().limit(MAX_RESPONSE_BODY).await;
            Ok((status, retry_after))
        };
        let timeout = self.config.limits.request_timeout;
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or_else(|_| Err(format!("no response within {timeout:?}")))
    }
}

/// A send error in a few words (no URL: awc's errors do not carry it).
fn describe_send_error(error: &awc::error::SendRequestError) -> String {
    use awc::error::{ConnectError, SendRequestError};
    match error {
        SendRequestError::Timeout | SendRequestError::Connect(ConnectError::Timeout) => {
            "timeout".into()
        }
        SendRequestError::Connect(e) => format!("connection failed: {e}"),
        other => format!("request failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callbacks::outbox::OutboxActor;
    use crate::callbacks::shared::Delivery;
    use crate::callbacks::Flush;
    use crate::event::Event;
    use crate::test_support::{failed_event, supervised};
    use actix::prelude::*;

    fn event() -> Event {
        failed_event(0)
    }

    /// A supervised webhook actor posting to `port` with `limits`.
    async fn start(
        port: u16,
        limits: WebhookLimits,
        telemetry: &Telemetry,
    ) -> (Addr<OutboxActor<Webhook>>, Arc<WebhookConfig>) {
        let config = Arc::new(WebhookConfig {
            name: format!("webhook:127.0.0.1:{port}"),
            uri: format!("http://127.0.0.1:{port}/hook").parse().unwrap(),
            key: None,
            tls: crate::genesys::tls::client_config(&[]).unwrap(),
            limits,
            telemetry: telemetry.clone(),
            gone: Arc::new(AtomicBool::new(false)),
        });
        let factory_config = config.clone();
        let addr = supervised(telemetry, move |guard| {
            OutboxActor::new(Webhook(factory_config.clone()), guard).start()
        })
        .await;
        (addr, config)
    }

    #[actix_rt::test]
    async fn a_full_queue_drops_and_counts_and_flush_is_bounded() {
        // A receiver that accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        actix_rt::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let telemetry = Telemetry::new();
        let limits = WebhookLimits {
            capacity: 3,
            concurrency: 1,
            flush_grace: Duration::from_millis(300),
            ..WebhookLimits::default()
        };
        let (addr, config) = start(port, limits, &telemetry).await;
        let started = std::time::Instant::now();
        for _ in 0..10 {
            addr.send(Delivery::from(event())).await.unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "events are answered at once"
        );
        // One in flight, three queued, six dropped.
        assert_eq!(telemetry.drops_for(&config.name), 6);
        let started = std::time::Instant::now();
        addr.send(Flush).await.unwrap();
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
            "flush waits its grace, then gives up: {waited:?}"
        );
    }

    #[actix_rt::test]
    async fn flush_of_an_idle_webhook_returns_at_once() {
        let telemetry = Telemetry::new();
        let (addr, _) = start(9, WebhookLimits::default(), &telemetry).await;
        let started = std::time::Instant::now();
        addr.send(Flush).await.unwrap();
        assert!(started.elapsed() < Duration::from_millis(100));
    }
}
