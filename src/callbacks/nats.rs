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
//!
//! (Past 400 lines: about two fifths are its tests against a fake and a
//! real server.)

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
use crate::backoff::ExponentialBackoff;
use crate::event::Event;
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

/// One queued event.
pub(crate) struct Pending {
    subject: String,
    id: String,
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

    fn prepare(&self, event: &Event) -> Result<Pending, &'static str> {
        Ok(Pending {
            subject: format!("{}.{}", self.config.subject, event.queue_id()),
            id: event.id().to_owned(),
            body: Bytes::from(event.to_json()),
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
            .message_id(&item.id)
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
mod tests {
    use super::*;
    use crate::callbacks::outbox::OutboxActor;
    use crate::callbacks::Flush;
    use crate::test_support::{failed_event, supervised};

    fn event(queue: usize) -> Event {
        failed_event(queue)
    }

    /// Passes on every [`Fatal`] it gets.
    struct Fatals(tokio::sync::mpsc::UnboundedSender<String>);

    impl Actor for Fatals {
        type Context = Context<Self>;
    }

    impl Handler<Fatal> for Fatals {
        type Result = ();
        fn handle(&mut self, msg: Fatal, _: &mut Context<Self>) {
            let _ = self.0.send(msg.reason);
        }
    }

    async fn start(
        url: &str,
        limits: NatsLimits,
        telemetry: &Telemetry,
    ) -> Addr<OutboxActor<Nats>> {
        start_reporting(url, limits, telemetry).await.0
    }

    /// The sink, and the reasons of what it reports as fatal.
    async fn start_reporting(
        url: &str,
        limits: NatsLimits,
        telemetry: &Telemetry,
    ) -> (
        Addr<OutboxActor<Nats>>,
        tokio::sync::mpsc::UnboundedReceiver<String>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let fatal = Fatals(tx).start().recipient();
        let config = Arc::new(NatsConfig {
            name: "nats:bench".into(),
            url: url.into(),
            subject: "qwbench".into(),
            stream: "QWBENCH".into(),
            tls: crate::genesys::tls::client_config(&[]).unwrap(),
            limits,
            telemetry: telemetry.clone(),
            fatal,
        });
        let addr = supervised(telemetry, move |guard| {
            OutboxActor::new(Nats::new(config.clone()), guard).start()
        })
        .await;
        (addr, rx)
    }

    #[actix_rt::test]
    async fn a_stream_jetstream_keeps_refusing_is_fatal_after_the_limit() {
        let url =
            crate::nats::fake::start("2.10.0", true, crate::nats::fake::JETSTREAM_NOT_ENABLED);
        let telemetry = Telemetry::new();
        let limits = NatsLimits {
            fatal_after: Duration::from_millis(800),
            backoff: ExponentialBackoff::try_new(
                Duration::from_millis(50),
                Duration::from_millis(200),
            )
            .unwrap(),
            ..NatsLimits::default()
        };
        let started = std::time::Instant::now();
        let (_addr, mut fatals) = start_reporting(&url, limits, &telemetry).await;
        let reason = tokio::time::timeout(Duration::from_secs(10), fatals.recv())
            .await
            .expect("fatal within 10 s")
            .expect("a reason");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(800), "{took:?}");
        assert!(
            reason.contains("jetstream not enabled for account")
                && reason.contains("2.10.0")
                && reason.contains("QWBENCH"),
            "{reason}"
        );
        // Reported once.
        assert!(
            tokio::time::timeout(Duration::from_millis(300), fatals.recv())
                .await
                .is_err()
        );
    }

    #[actix_rt::test]
    async fn an_old_server_found_once_connected_is_fatal() {
        let url =
            crate::nats::fake::start("2.9.10", true, crate::nats::fake::JETSTREAM_NOT_ENABLED);
        let telemetry = Telemetry::new();
        let (_addr, mut fatals) = start_reporting(&url, NatsLimits::default(), &telemetry).await;
        let reason = tokio::time::timeout(Duration::from_secs(10), fatals.recv())
            .await
            .expect("fatal within 10 s")
            .expect("a reason");
        assert!(
            reason.contains("NATS server 2.9.10 at nats://127.0.0.1:")
                && reason.contains("needs 2.10 or newer"),
            "{reason}"
        );
    }

    /// CPU time of this process so far (user + system), from /proc.
    fn cpu_time() -> Duration {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
        let ticks: u64 = fields
            .get(11..13)
            .map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
        Duration::from_millis(ticks * 10) // USER_HZ = 100
    }

    #[actix_rt::test]
    async fn nothing_reachable_answers_at_once_and_drops_beyond_the_buffer() {
        // A port nobody listens on: the sink buffers, then drops and counts.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let telemetry = Telemetry::new();
        let limits = NatsLimits {
            capacity: 50,
            flush_grace: Duration::from_millis(200),
            ..NatsLimits::default()
        };
        let (addr, mut fatals) =
            start_reporting(&format!("nats://127.0.0.1:{port}"), limits, &telemetry).await;
        let started = std::time::Instant::now();
        for i in 0..80 {
            addr.send(event(i)).await.unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "answered at once"
        );
        assert_eq!(telemetry.drops_for("nats:bench"), 30);
        let started = std::time::Instant::now();
        addr.send(Flush).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "flush is bounded"
        );
        assert!(fatals.try_recv().is_err(), "an outage is not fatal");
    }

    /// Throughput and CPU per event against a local `nats-server -js`
    /// (`NATS_SERVER_BIN` or on the PATH):
    /// `cargo test --release --lib callbacks::nats::tests::throughput -- --ignored --nocapture`
    #[actix_rt::test]
    #[ignore]
    async fn throughput() {
        let binary = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store = std::env::temp_dir().join(format!("queuewatch-bench-{}", std::process::id()));
        let mut server = std::process::Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&store)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let telemetry = Telemetry::new();
        let limits = NatsLimits {
            capacity: 1_000_000,
            flush_grace: Duration::from_secs(120),
            ..NatsLimits::default()
        };
        let addr = start(&format!("nats://127.0.0.1:{port}"), limits, &telemetry).await;
        // Warm up: connected and the stream created.
        addr.send(event(0)).await.unwrap();
        addr.send(Flush).await.unwrap();
        let n = 50_000;
        let events: Vec<Event> = (0..n).map(|i| event(i % 1000)).collect();
        let (wall, cpu) = (std::time::Instant::now(), cpu_time());
        for e in events {
            addr.do_send(e);
        }
        addr.send(Flush).await.unwrap();
        let (wall, cpu) = (wall.elapsed(), cpu_time() - cpu);
        let _ = server.kill();
        let _ = server.wait();
        let _ = std::fs::remove_dir_all(&store);
        assert_eq!(telemetry.drops_for("nats:bench"), 0);
        eprintln!(
            "{n} events in {wall:?}: {:.0} events/s; queuewatch CPU {cpu:?} = {:.1} us/event",
            n as f64 / wall.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / n as f64
        );
    }
}
