//! `kind: nats` against a real `nats-server -js` started here: events land
//! in the stream with their ids, the duplicate window drops re-sends, and a
//! NATS crash mid-run loses no acknowledged event and drops nothing silently.

mod nats_support;

use std::collections::HashSet;
use std::time::Duration;

use nats_support::{binary_or_skip, read_stream, NatsServer, TempDir};
use queuewatch::config::{CallbackSettings, Settings};
use queuewatch::{Handle, QueueWatch};

const SUBJECT: &str = "qwtest.events";
const STREAM: &str = "QWTEST";
const NAME: &str = "nats:qwtest.events";

fn queue_ids(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("7a1c0000-0000-4000-8000-{i:012x}"))
        .collect()
}

fn settings(url: &str, queues: usize) -> Settings {
    let mut settings = Settings::for_queues(queue_ids(queues));
    settings.poll.interval = Duration::from_secs(5);
    settings.http.bind = None;
    settings.callbacks = vec![CallbackSettings::Nats {
        url: url.to_owned(),
        subject: SUBJECT.into(),
        stream: STREAM.into(),
    }];
    settings
}

/// Every event id seen by `handle`, collected in the background.
fn collect_ids(handle: &Handle) -> std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>> {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut events = handle.event_stream();
    let sink = seen.clone();
    actix_rt::spawn(async move {
        while let Ok(json) = events.recv().await {
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            sink.lock().unwrap().push((
                v["id"].as_str().unwrap().to_owned(),
                v["queue_id"].as_str().unwrap().to_owned(),
            ));
        }
    });
    seen
}

#[actix_rt::test]
async fn events_land_in_the_stream_with_their_ids() {
    let Some(binary) = binary_or_skip("events_land_in_the_stream_with_their_ids") else {
        return;
    };
    let store = TempDir::new("nats-sink");
    let server = NatsServer::start(&binary, &store.0);
    let handle = QueueWatch::new(settings(&server.url(), 10))
        .start()
        .await
        .expect("starts");
    let seen = collect_ids(&handle);
    tokio::time::sleep(Duration::from_millis(5_600)).await;
    handle.shutdown().await;
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 10, "a cycle of every queue: {}", seen.len());

    let stored = read_stream(&server.url(), STREAM).await;
    assert_eq!(stored.len(), seen.len(), "one message per event");
    for (id, queue) in &seen {
        let message = stored
            .iter()
            .find(|m| m.msg_id.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("event {id} is in the stream"));
        assert_eq!(message.subject, format!("{SUBJECT}.{queue}"));
        assert_eq!(message.payload["id"], id.as_str());
        assert_eq!(message.payload["queue_id"], queue.as_str());
    }
    assert_eq!(handle.telemetry().drops_for(NAME), 0);
    assert_eq!(handle.telemetry().deliveries_for(NAME), seen.len() as u64);
}

#[actix_rt::test]
async fn a_resent_event_is_dropped_by_the_duplicate_window() {
    let Some(binary) = binary_or_skip("a_resent_event_is_dropped_by_the_duplicate_window") else {
        return;
    };
    let store = TempDir::new("nats-dup");
    let server = NatsServer::start(&binary, &store.0);
    let handle = QueueWatch::new(settings(&server.url(), 3))
        .start()
        .await
        .expect("starts");
    tokio::time::sleep(Duration::from_millis(5_600)).await;
    handle.shutdown().await;
    let stored = read_stream(&server.url(), STREAM).await;
    assert!(stored.len() >= 3, "{}", stored.len());

    // Re-send every stored event as queuewatch would: same subject and Nats-Msg-Id.
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    for message in &stored {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", message.msg_id.as_deref().unwrap());
        let ack = js
            .publish_with_headers(
                message.subject.clone(),
                headers,
                message.payload.to_string().into(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(ack.duplicate, "the stream flags the re-send as a duplicate");
    }
    let again = read_stream(&server.url(), STREAM).await;
    assert_eq!(again.len(), stored.len(), "re-sends are not stored");
}

#[actix_rt::test]
async fn a_nats_crash_loses_no_acknowledged_event_and_drops_nothing_silently() {
    let test = "a_nats_crash_loses_no_acknowledged_event_and_drops_nothing_silently";
    let Some(binary) = binary_or_skip(test) else {
        return;
    };
    let store = TempDir::new("nats-crash");
    let mut server = NatsServer::start(&binary, &store.0);
    let handle = QueueWatch::new(settings(&server.url(), 20))
        .start()
        .await
        .expect("starts");
    let seen = collect_ids(&handle);
    tokio::time::sleep(Duration::from_secs(6)).await;
    // What the stream holds (has acknowledged) just before the crash.
    let acked: HashSet<String> = read_stream(&server.url(), STREAM)
        .await
        .into_iter()
        .filter_map(|m| m.msg_id)
        .collect();
    assert!(
        acked.len() >= 15,
        "published before the crash: {}",
        acked.len()
    );

    server.kill();
    let before_outage = seen.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let during = seen.lock().unwrap().len() - before_outage;
    server.restart();
    let restarted = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(8)).await;
    handle.shutdown().await;
    let seen = seen.lock().unwrap().clone();
    assert!(
        during >= 12,
        "polling went on during the outage: {during} events in 5 s"
    );

    let stored = read_stream(&server.url(), STREAM).await;
    let stored_ids: HashSet<String> = stored.iter().filter_map(|m| m.msg_id.clone()).collect();
    assert_eq!(stored_ids.len(), stored.len(), "no event is stored twice");
    let lost: Vec<&String> = acked.difference(&stored_ids).collect();
    assert!(
        lost.is_empty(),
        "acknowledged events lost in the crash: {lost:?}"
    );
    let dropped = handle.telemetry().drops_for(NAME);
    let missing: Vec<&String> = seen
        .iter()
        .map(|(id, _)| id)
        .filter(|id| !stored_ids.contains(*id))
        .collect();
    assert!(
        missing.len() as u64 <= dropped,
        "{} event(s) missing from the stream but only {dropped} counted as dropped",
        missing.len()
    );
    // A 5 s outage fits in the buffer: nothing is dropped at all.
    assert_eq!(dropped, 0, "{} of {} events dropped", dropped, seen.len());
    assert!(missing.is_empty());
    eprintln!(
        "{} events, {} stored ({} before the crash), {dropped} dropped; {:?} from restart to shutdown",
        seen.len(),
        stored.len(),
        acked.len(),
        restarted.elapsed()
    );
}
