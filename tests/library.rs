#![cfg(feature = "simulator")]
//! The library API as an integrator uses it: both examples' logic against
//! the simulator, queues added and removed at run time, reloads.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use queuewatch::config::{QueueSettings, Settings};
use queuewatch::simulator::{Fault, FaultRule};
use queuewatch::{Event, Handle, QueueWatch};
use tokio::sync::broadcast;

#[allow(dead_code)]
#[path = "../examples/custom_callback.rs"]
mod custom_callback;

#[allow(dead_code)]
#[path = "../examples/actix_web_app.rs"]
mod actix_web_app;

const WAIT: Duration = Duration::from_secs(30);

/// The next event (as parsed JSON) matching `pred`, within 30 s.
async fn next_event(
    events: &mut broadcast::Receiver<std::sync::Arc<str>>,
    pred: impl Fn(&Event) -> bool,
) -> Event {
    support::events::next(events, "matching", WAIT, pred).await
}

#[actix_rt::test]
async fn custom_callback_alerts_and_survives_its_panic() {
    let (tx, mut alerts) = tokio::sync::mpsc::unbounded_channel();
    let mut settings = custom_callback::demo_settings();
    settings.poll.max_retries = 0;
    let handle = custom_callback::watch(settings, tx).start().await.unwrap();
    let first = tokio::time::timeout(WAIT, alerts.recv())
        .await
        .expect("an alert")
        .unwrap();
    assert!(first.depth.unwrap() > 2, "{first:?}");

    // A failure event makes the alerter panic; the supervisor rebuilds it.
    let sim = handle.simulator().unwrap().clone();
    let mut events = handle.event_stream();
    sim.faults()
        .push(FaultRule::times(Fault::ServerError { status: 503 }, 1));
    next_event(&mut events, |e| e.error().is_some()).await;
    // The fresh alerter has forgotten which queues were over: it alerts again.
    let again = loop {
        let alert = tokio::time::timeout(WAIT, alerts.recv())
            .await
            .expect("alerts after the restart")
            .unwrap();
        if handle.telemetry().restarts_total() >= 1 {
            break alert;
        }
    };
    assert!(again.depth.unwrap() > 2);
    handle.shutdown().await;
}

#[actix_rt::test]
async fn web_app_serves_its_routes_beside_queuewatch() {
    let handle = QueueWatch::new(actix_web_app::demo_settings())
        .start()
        .await
        .unwrap();
    let mut events = handle.event_stream();
    let routes = actix_web_app::routes(handle.clone());
    let server =
        actix_web::HttpServer::new(move || actix_web::App::new().configure(routes.clone()))
            .workers(1)
            .disable_signals()
            .bind("127.0.0.1:0")
            .unwrap();
    let base = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let stop = server.handle();
    actix_rt::spawn(server);
    next_event(&mut events, |e| e.error().is_none()).await;

    let client = awc::Client::default();
    let mut hello = client.get(format!("{base}/hello")).send().await.unwrap();
    assert_eq!(hello.status(), 200);
    assert!(hello.body().await.unwrap().starts_with(b"hello"));
    let mut busiest = client.get(format!("{base}/busiest")).send().await.unwrap();
    assert_eq!(busiest.status(), 200);
    let body: serde_json::Value = busiest.json().await.unwrap();
    let ids: HashSet<String> = actix_web_app::demo_settings()
        .queues
        .into_iter()
        .map(|q| q.id.to_string())
        .collect();
    assert!(ids.contains(body["queue_id"].as_str().unwrap()), "{body}");
    let mut queues = client
        .get(format!("{base}/api/queues"))
        .send()
        .await
        .unwrap();
    let queues: serde_json::Value = queues.json().await.unwrap();
    assert_eq!(
        queues.as_array().unwrap().len(),
        2,
        "queuewatch's own route is mounted"
    );
    stop.stop(true).await;
    handle.shutdown().await;
}

const A: &str = "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10";
const B: &str = "1c7d4c8f-5a2e-4d68-8b9f-4a2a3e8d0b21";
const C: &str = "2d8e5d9a-6b3f-4e79-9c0a-5b3b4f9e1c32";

fn two_queues() -> Settings {
    let mut settings = Settings::for_queues([A, B]);
    settings.poll.interval = Duration::from_secs(5);
    settings.callbacks.clear();
    settings.http.bind = None;
    settings
}

async fn listed(handle: &Handle) -> HashSet<String> {
    handle
        .queues()
        .await
        .into_iter()
        .map(|q| q.queue_id.to_string())
        .collect()
}

#[actix_rt::test]
async fn queues_are_added_and_removed_at_run_time() {
    let handle = QueueWatch::new(two_queues()).start().await.unwrap();
    let mut events = handle.event_stream();
    handle.add_queue(QueueSettings::new(C)).await.unwrap();
    next_event(&mut events, |e| e.queue_id() == C && e.error().is_none()).await;

    let refused = handle
        .add_queue(QueueSettings::new("not-a-uuid"))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("queues[3].id"), "{refused}");
    let duplicate = handle.add_queue(QueueSettings::new(A)).await.unwrap_err();
    assert!(
        duplicate.to_string().contains("queues[3].id"),
        "{duplicate}"
    );

    assert!(handle.remove_queue(A).await);
    assert!(!handle.remove_queue(A).await, "already gone");
    assert_eq!(
        listed(&handle).await,
        HashSet::from([B.to_string(), C.to_string()])
    );
    // A full interval later B and C polled again; A did not.
    let mut seen = HashSet::new();
    while seen.len() < 2 {
        let e = next_event(&mut events, |_| true).await;
        assert_ne!(e.queue_id(), A, "a removed queue is not polled");
        seen.insert(e.queue_id().to_string());
    }
    handle.shutdown().await;
}

#[actix_rt::test]
async fn reload_applies_a_valid_file_and_refuses_an_invalid_one() {
    let dir = support::TempDir::new("reload");
    let handle = QueueWatch::new(two_queues()).start().await.unwrap();
    let mut events = handle.event_stream();
    next_event(&mut events, |e| e.queue_id() == B).await;

    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, format!("queues:\n  - id: {B}\n    interval: 1s\n")).unwrap();
    let refused = handle.reload_file(&bad).await.unwrap_err();
    assert!(
        refused.to_string().contains("queues[0].interval"),
        "{refused}"
    );
    assert_eq!(
        listed(&handle).await,
        HashSet::from([A.to_string(), B.to_string()]),
        "running set kept"
    );

    let good = dir.join("good.yaml");
    std::fs::write(
        &good,
        format!("poll:\n  interval: 5s\ncallbacks: []\nhttp:\n  bind: null\nqueues:\n  - id: {B}\n    name: renamed\n  - id: {C}\n"),
    )
    .unwrap();
    let summary = handle.reload_file(&good).await.unwrap();
    assert_eq!(summary.added, [C]);
    assert_eq!(summary.removed, [A]);
    assert_eq!(summary.restarted, [B]);
    assert_eq!(summary.unchanged, 0);
    let renamed = next_event(&mut events, |e| {
        e.queue_id() == B && matches!(e, Event::Poll(_))
    })
    .await;
    let Event::Poll(poll) = renamed else {
        unreachable!()
    };
    assert_eq!(poll.queue_name.as_deref(), Some("renamed"));
    next_event(&mut events, |e| e.queue_id() == C).await;
    let b = handle.queue(B).await.unwrap();
    assert!(b.counters.total >= 2, "B's matrix survived its restart");
    handle.shutdown().await;
}
