//! `kind: nats`: publishes every event to a JetStream stream, as a
//! [`Transport`] of the generic outbox (queueing, drops and `Flush` are the
//! outbox's), from its own arbiter thread.
//!
//! - An event goes to `<subject>.<queue_id>` with its `id` as `Nats-Msg-Id`,
//!   so the stream's duplicate window drops re-sends; each publish waits for
//!   the stream's acknowledgement.
//! - The stream is created if missing (subjects `<subject>.>`), at start and
//!   again when a publish finds it gone.
//! - A NATS outage never slows polling or the other callbacks: the queue
//!   ([`NatsLimits::capacity`]) fills, and drains once NATS is back.
//! - Up to [`NatsLimits::concurrency`] publishes are in flight. A publish
//!   that fails for want of NATS (timeout, connection lost, no stream) is
//!   retried with the crate's full-jitter backoff for as long as it takes; a
//!   publish the server refuses is retried [`NatsLimits::max_refusals`] times,
//!   then dropped and counted. Retries can reorder events; consumers order
//!   by `timestamp`.
//! - Fatal for the process ([`NatsConfig::fatal`]): a server found
//!   unsupported once connected (below 2.10, or JetStream off; the start
//!   checks this too), and a stream that JetStream keeps answering with
//!   errors for [`NatsLimits::fatal_after`] while the connection is up (not
//!   an outage: those are waited out).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use actix_web::web::Bytes;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use futures_util::future::LocalBoxFuture;

use super::outbox::{Limits, Sent, Transport};
use super::shared::SharedEvent;
use crate::backoff::ExponentialBackoff;
use crate::nats::{self as nats_client, Persistence};
use crate::supervisor::Fatal;
use crate::telemetry::Telemetry;
use crate::throttle::Throttled;

/// How often the server connected to is checked for support, once running.
const RECHECK: Duration = Duration::from_secs(1);

/// Bounds of one `nats` callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NatsLimits {
    /// Events queued (not yet being published) before new ones are dropped.
    pub capacity: usize,
    /// Publishes awaiting their acknowledgement at once.
    pub concurrency: usize,
    /// Delay between attempts of one event (full jitter).
    pub backoff: ExponentialBackoff,
    /// Bound on one attempt: sending and the stream's acknowledgement.
    pub publish_timeout: Duration,
    /// Attempts of an event the server refuses (not for want of NATS).
    pub max_refusals: u32,
    /// How long `Flush` (shutdown) waits for the queue to empty.
    pub flush_grace: Duration,
    /// How long JetStream may keep refusing the stream (error answers while
    /// connected) before that is fatal.
    pub fatal_after: Duration,
}

impl Default for NatsLimits {
    fn default() -> Self {
        NatsLimits {
            capacity: 10_000,
            concurrency: 256,
            backoff: ExponentialBackoff::try_new(
                Duration::from_millis(100),
                Duration::from_secs(5),
            )
            .unwrap_or_else(|_| unreachable!("constant backoff is valid")),
            publish_timeout: Duration::from_secs(5),
            max_refusals: 5,
            flush_grace: Duration::from_secs(5),
            fatal_after: nats_client::JETSTREAM_FATAL_AFTER,
        }
    }
}

/// Everything a `nats` callback needs; shared by its incarnations.
pub(crate) struct NatsConfig {
    /// `nats:<subject>`, for logs and metrics.
    pub name: String,
    /// The server(s). Never logged: it may hold credentials.
    pub url: String,
    /// Subject prefix: events go to `<subject>.<queue_id>`.
    pub subject: String,
    /// The JetStream stream, created if missing.
    pub stream: String,
    /// TLS for `tls://` servers.
    pub tls: Arc<rustls::ClientConfig>,
    /// Bounds.
    pub limits: NatsLimits,
    /// Metrics (drops).
    pub telemetry: Telemetry,
    /// Where a fatal problem goes (the process exits 1).
    pub fatal: Recipient<Fatal>,
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConfig")
            .field("name", &self.name)
            .field("stream", &self.stream)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl NatsConfig {
    fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.stream.clone(),
            subjects: vec![format!("{}.>", self.subject)],
            ..stream::Config::default()
        }
    }
}

/// One queued event; its payload is the shared serialisation.
pub(crate) struct Pending {
    subject: String,
    event: SharedEvent,
    body: Bytes,
}

/// Whether JetStream keeps failing, for one incarnation and its publishes.
pub(crate) struct Health {
    persistence: Mutex<Persistence>,
    reported: AtomicBool,
}

impl Health {
    fn new(limits: &NatsLimits) -> Self {
        Health {
            persistence: Mutex::new(Persistence::new(limits.fatal_after)),
            reported: AtomicBool::new(false),
        }
    }

    /// A JetStream request about the stream failed with `error`.
    fn failed(&self, config: &NatsConfig, client: &async_nats::Client, error: &StreamError) {
        if error.is_timeout() {
            return; // an outage, waited out
        }
        let lasted = self
            .persistence
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failed(nats_client::connected(client), tokio::time::Instant::now());
        if let Some(lasted) = lasted {
            let lasted = Duration::from_secs(lasted.as_secs());
            self.report(
                config,
                format!(
                    "callback {}: NATS server {} at {} has answered every request for stream {} \
                     with an error for {}: {error}",
                    config.name,
                    client.server_info().version,
                    nats_client::redacted(&config.url),
                    config.stream,
                    humantime::format_duration(lasted)
                ),
            );
        }
    }

    fn succeeded(&self) {
        self.persistence
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .succeeded();
    }

    /// Reports `reason` as fatal, once.
    fn report(&self, config: &NatsConfig, reason: String) {
        if !self.reported.swap(true, Ordering::Relaxed) {
            log::error!("{reason}");
            config.fatal.do_send(Fatal {
                reason,
                kind: crate::error::ErrorKind::Cancelled,
            });
        }
    }
}

/// The transport of one `nats` callback.
pub(crate) struct Nats {
    config: Arc<NatsConfig>,
    health: Arc<Health>,
}

impl Nats {
    pub(crate) fn new(config: Arc<NatsConfig>) -> Self {
        let health = Arc::new(Health::new(&config.limits));
        Nats { config, health }
    }
}

impl Transport for Nats {
    type Item = Pending;
    /// Connected, and the stream is there.
    type Link = jetstream::Context;

    fn name(&self) -> &str {
        &self.config.name
    }

    fn limits(&self) -> Limits {
        let limits = &self.config.limits;
        Limits {
            capacity: limits.capacity,
            concurrency: limits.concurrency,
            flush_grace: limits.flush_grace,
        }
    }

    fn telemetry(&self) -> &Telemetry {
        &self.config.telemetry
    }

    fn full(&self) -> &'static str {
        "buffer full (NATS is slow or unreachable)"
    }

    fn prepare(&self, event: &SharedEvent) -> Result<Pending, &'static str> {
        Ok(Pending {
            subject: format!("{}.{}", self.config.subject, event.event().queue_id()),
            event: event.clone(),
            body: event.json_bytes(),
        })
    }

    fn link(&self) -> LocalBoxFuture<'static, Option<jetstream::Context>> {
        let (config, health) = (self.config.clone(), self.health.clone());
        Box::pin(async move { setup(&config, &health).await })
    }

    /// Each connection may be to another server: check it while running.
    fn watch(&self, js: &jetstream::Context) -> Option<LocalBoxFuture<'static, ()>> {
        let (config, health, client) = (self.config.clone(), self.health.clone(), js.client());
        Some(Box::pin(async move {
            let mut every = tokio::time::interval(RECHECK);
            loop {
                every.tick().await;
                if let Some(why) = nats_client::unsupported_now(&client, &config.url) {
                    health.report(&config, format!("callback {}: {why}", config.name));
                }
            }
        }))
    }

    fn send(&self, js: jetstream::Context, item: Pending) -> LocalBoxFuture<'static, Sent> {
        // Deliveries are counted by the fan-out; drops by the outbox.
        Box::pin(publish(js, self.config.clone(), self.health.clone(), item))
    }
}

/// Connects and makes sure the stream exists, retrying until it does.
/// `None` only when the URL cannot be used.
async fn setup(config: &NatsConfig, health: &Health) -> Option<jetstream::Context> {
    let nats = match nats_client::connect(&config.url, &config.name, &config.tls).await {
        Ok(nats) => nats,
        Err(error) => {
            log::error!("callback {}: {error}", config.name);
            return None;
        }
    };
    let mut js = jetstream::new(nats.clone());
    js.set_timeout(config.limits.publish_timeout);
    let mut rng = fastrand::Rng::new();
    let mut failures = Throttled::default();
    let mut attempt = 0u32;
    loop {
        if let Some(why) = nats_client::unsupported_now(&nats, &config.url) {
            health.report(config, format!("callback {}: {why}", config.name));
        }
        match ensure_stream(&js, config).await {
            Ok(()) => {
                health.succeeded();
                return Some(js);
            }
            Err(error) => {
                health.failed(config, &nats, &error);
                if let Some(n) = failures.note(1) {
                    log::warn!(
                        "callback {}: stream {} not ready ({n} attempt(s)): {error}; retrying",
                        config.name,
                        config.stream
                    );
                }
            }
        }
        tokio::time::sleep(config.limits.backoff.delay(attempt, &mut rng)).await;
        attempt = attempt.saturating_add(1);
    }
}

/// Why the stream could not be made ready.
#[derive(Debug, thiserror::Error)]
enum StreamError {
    /// JetStream could not get or create it (its text as async-nats gives it).
    #[error(transparent)]
    GetOrCreate(#[from] jetstream::context::CreateStreamError),
}

impl StreamError {
    /// No answer in time: an outage, waited out.
    fn is_timeout(&self) -> bool {
        nats_client::is_timeout(&self.to_string())
    }
}

/// Creates the stream if missing; warns when an existing one does not take our subjects.
async fn ensure_stream(js: &jetstream::Context, config: &NatsConfig) -> Result<(), StreamError> {
    let stream = js.get_or_create_stream(config.stream_config()).await?;
    let probe = format!("{}.probe", config.subject);
    let subjects = &stream.cached_info().config.subjects;
    if !subjects
        .iter()
        .any(|p| nats_client::subject_matches(p, &probe))
    {
        log::error!(
            "callback {}: stream {} exists but does not take subjects {}.>: publishes will fail",
            config.name,
            config.stream,
            config.subject
        );
    }
    Ok(())
}

/// Publishes one event until the stream acknowledges it (or refuses it).
async fn publish(
    js: jetstream::Context,
    config: Arc<NatsConfig>,
    health: Arc<Health>,
    item: Pending,
) -> Sent {
    let limits = config.limits;
    let mut rng = fastrand::Rng::new();
    let mut attempt: u32 = 0;
    let mut refusals: u32 = 0;
    loop {
        let message = PublishMessage::build()
            .payload(item.body.clone())
            .message_id(item.event.event().id())
            .header("Content-Type", "application/json");
        let result = tokio::time::timeout(limits.publish_timeout, async {
            js.send_publish(item.subject.clone(), message).await?.await
        })
        .await;
        let error = match result {
            Ok(Ok(_ack)) => {
                health.succeeded();
                return Sent::Delivered;
            }
            Ok(Err(error)) => error,
            Err(_) => async_nats::jetstream::context::PublishError::new(PublishErrorKind::TimedOut),
        };
        match error.kind() {
            // For want of NATS: retried for as long as it takes.
            PublishErrorKind::TimedOut
            | PublishErrorKind::BrokenPipe
            | PublishErrorKind::MaxAckPending => {}
            PublishErrorKind::StreamNotFound => {
                // Deleted, or a server that lost its store: create it again.
                match ensure_stream(&js, &config).await {
                    Ok(()) => health.succeeded(),
                    Err(why) => {
                        health.failed(&config, &js.client(), &why);
                        log::debug!("callback {}: {why}", config.name);
                    }
                }
            }
            PublishErrorKind::MaxPayloadExceeded
            | PublishErrorKind::WrongLastMessageId
            | PublishErrorKind::WrongLastSequence => {
                return Sent::Dropped(format!("refused by NATS: {error}"));
            }
            PublishErrorKind::Other => {
                refusals += 1;
                if refusals >= limits.max_refusals {
                    return Sent::Dropped(format!(
                        "refused by NATS after {refusals} attempt(s): {error}"
                    ));
                }
            }
        }
        log::debug!("callback {}: publish failed: {error}", config.name);
        tokio::time::sleep(limits.backoff.delay(attempt, &mut rng)).await;
        attempt = attempt.saturating_add(1);
    }
}

#[cfg(test)]
mod tests;
