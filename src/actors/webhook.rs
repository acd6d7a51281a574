//! WebhookActor: delivers events to one webhook endpoint (`kind: webhook`)
//! from its own arbiter thread.
//!
//! - Each `Event` is answered at once: it is serialised and put in a bounded
//!   queue ([`WebhookLimits::capacity`]); when the queue is full the event is
//!   dropped, counted (`queuewatch_event_drops_total{callback="webhook:<host>"}`)
//!   and logged (at most one line per 10 s). A slow or dead endpoint never
//!   slows polling or the other callbacks.
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
//! - `Flush` (shutdown) waits, at most [`WebhookLimits::flush_grace`], until
//!   nothing is queued or in flight.
//!
//! The URL is never logged (its path or query may hold a token): logs and
//! metrics name the endpoint `webhook:<host>`.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use actix_web::web::Bytes;
use awc::http::header::{CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use awc::http::Uri;
use tokio::time::Instant;

use super::outbox::{flush_within, Outbox, Throttled};
use super::sink::Flush;
use super::supervisor::ExitGuard;
use crate::backoff::ExponentialBackoff;
use crate::callbacks::webhook::{
    SigningKey, Verdict, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use crate::event::Event;
use crate::genesys::headers::{parse_retry_after, LONG_RETRY_AFTER};
use crate::telemetry::Telemetry;

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

/// One queued event: its id and its JSON body.
struct Pending {
    id: String,
    body: Bytes,
}

/// How the delivery of one event ended.
enum Outcome {
    Delivered,
    /// The receiver refused it with this status.
    Rejected(u16),
    /// Out of attempts (or told to come back much later); the last failure.
    GaveUp(String),
    /// This delivery got the 410 (`true`) or found the endpoint disabled (`false`).
    Gone(bool),
}

/// What the deliveries of one incarnation share (on its thread).
struct Delivery {
    config: Arc<WebhookConfig>,
    client: awc::Client,
    /// A `Retry-After` pauses every delivery to the endpoint until then.
    paused_until: Cell<Option<Instant>>,
}

/// The webhook actor of one endpoint.
pub struct WebhookActor {
    delivery: Rc<Delivery>,
    outbox: Outbox<Pending>,
    failures: Throttled,
    _guard: ExitGuard,
}

impl WebhookActor {
    /// An actor for `config`. Must be called on the actor's own thread: it
    /// builds the HTTP client there (awc clients are `!Send`).
    pub fn new(config: Arc<WebhookConfig>, guard: ExitGuard) -> Self {
        let timeout = config.limits.request_timeout;
        let connector = awc::Connector::new()
            .rustls_0_23(config.tls.clone())
            .timeout(timeout)
            .handshake_timeout(timeout);
        let client = awc::Client::builder()
            .connector(connector)
            .timeout(timeout)
            .disable_redirects()
            .add_default_header((
                USER_AGENT,
                concat!("queuewatch/", env!("CARGO_PKG_VERSION")),
            ))
            .finish();
        let outbox = Outbox::new(&config.name, &config.telemetry, config.limits.capacity);
        WebhookActor {
            delivery: Rc::new(Delivery {
                config,
                client,
                paused_until: Cell::new(None),
            }),
            outbox,
            failures: Throttled::default(),
            _guard: guard,
        }
    }

    fn config(&self) -> &WebhookConfig {
        &self.delivery.config
    }

    fn is_gone(&self) -> bool {
        self.config().gone.load(Ordering::Relaxed)
    }

    /// Starts deliveries while there is room.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        let concurrency = self.config().limits.concurrency;
        while let Some(item) = self.outbox.next(concurrency) {
            let delivery = self.delivery.clone();
            ctx.spawn(
                deliver(delivery, item)
                    .into_actor(self)
                    .map(|outcome, act, ctx| {
                        act.outbox.done();
                        act.finished(outcome);
                        act.pump(ctx);
                        act.outbox.wake_if_idle();
                    }),
            );
        }
    }

    fn finished(&mut self, outcome: Outcome) {
        let name = self.config().name.clone();
        match outcome {
            Outcome::Delivered => {}
            Outcome::Rejected(status) => {
                self.config().telemetry.dropped(&name);
                if let Some(n) = self.failures.note(1) {
                    log::warn!(
                        "callback {name}: {n} event(s) refused by the receiver (last: {status}); not retried"
                    );
                }
            }
            Outcome::GaveUp(why) => {
                self.config().telemetry.dropped(&name);
                if let Some(n) = self.failures.note(1) {
                    log::warn!("callback {name}: {n} event(s) not delivered (last: {why})");
                }
            }
            Outcome::Gone(first) => {
                self.config().telemetry.dropped(&name);
                if first && !self.config().gone.swap(true, Ordering::Relaxed) {
                    log::error!(
                        "callback {name}: the receiver answered 410 Gone: endpoint disabled; \
                         later events are dropped until queuewatch restarts"
                    );
                }
                self.outbox
                    .drop_queued("the endpoint is disabled (410 Gone)");
            }
        }
    }
}

impl Actor for WebhookActor {
    type Context = Context<Self>;
}

impl Handler<Event> for WebhookActor {
    type Result = ();

    fn handle(&mut self, event: Event, ctx: &mut Context<Self>) {
        if self.is_gone() {
            self.outbox
                .drop_events(1, "the endpoint is disabled (410 Gone)");
            return;
        }
        let pending = Pending {
            id: event.id().to_owned(),
            body: Bytes::from(event.to_json()),
        };
        self.outbox
            .offer(pending, "queue full (the endpoint is slow or down)");
        self.pump(ctx);
    }
}

impl Handler<Flush> for WebhookActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) -> Self::Result {
        let grace = self.config().limits.flush_grace;
        flush_within(self, grace, |act| &mut act.outbox)
    }
}

/// Delivers one event: attempts with backoff until a verdict or out of attempts.
async fn deliver(delivery: Rc<Delivery>, item: Pending) -> Outcome {
    let limits = delivery.config.limits;
    let mut rng = fastrand::Rng::new();
    let mut attempt: u32 = 0;
    loop {
        if let Some(until) = delivery.paused_until.get() {
            tokio::time::sleep_until(until).await;
        }
        if delivery.config.gone.load(Ordering::Relaxed) {
            return Outcome::Gone(false);
        }
        attempt += 1;
        let (why, retry_after) = match delivery.attempt(&item).await {
            Ok((status, retry_after)) => match Verdict::of(status) {
                Verdict::Delivered => return Outcome::Delivered,
                Verdict::Gone => return Outcome::Gone(true),
                Verdict::Rejected => return Outcome::Rejected(status),
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
                return Outcome::GaveUp(format!("{why}, retry after {after:?}"));
            }
        }
        if attempt >= limits.max_attempts {
            return Outcome::GaveUp(format!("{why}, after {attempt} attempt(s)"));
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
            .insert_header((HEADER_ID, item.id.as_str()))
            .insert_header((HEADER_TIMESTAMP, timestamp.to_string()));
        if let Some(key) = &self.config.key {
            request = request
                .insert_header((HEADER_SIGNATURE, key.sign(&item.id, timestamp, &item.body)));
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
    use crate::actors::test_support::{failed_event, supervised};

    fn event() -> Event {
        failed_event(0)
    }

    /// A supervised webhook actor posting to `port` with `limits`.
    async fn start(
        port: u16,
        limits: WebhookLimits,
        telemetry: &Telemetry,
    ) -> (Addr<WebhookActor>, Arc<WebhookConfig>) {
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
            WebhookActor::new(factory_config.clone(), guard).start()
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
            addr.send(event()).await.unwrap();
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
