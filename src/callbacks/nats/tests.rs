//! The `nats` callback against a fake server (hostile answers) and, for
//! throughput, a real one.

use super::*;
use crate::callbacks::outbox::OutboxActor;
use crate::callbacks::shared::Delivery;
use crate::callbacks::Flush;
use crate::event::Event;
use crate::test_support::{cpu_time, failed_event, supervised};

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

async fn start(url: &str, limits: NatsLimits, telemetry: &Telemetry) -> Addr<OutboxActor<Nats>> {
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
    let url = crate::nats::fake::start("2.10.0", true, crate::nats::fake::JETSTREAM_NOT_ENABLED);
    let telemetry = Telemetry::new();
    let limits = NatsLimits {
        fatal_after: Duration::from_millis(800),
        backoff: ExponentialBackoff::try_new(Duration::from_millis(50), Duration::from_millis(200))
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
    let url = crate::nats::fake::start("2.9.10", true, crate::nats::fake::JETSTREAM_NOT_ENABLED);
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
        addr.send(Delivery::from(event(i))).await.unwrap();
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
    addr.send(Delivery::from(event(0))).await.unwrap();
    addr.send(Flush).await.unwrap();
    let n = 50_000;
    let events: Vec<Event> = (0..n).map(|i| event(i % 1000)).collect();
    let (wall, cpu) = (std::time::Instant::now(), cpu_time());
    for e in events {
        addr.do_send(Delivery::from(e));
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
