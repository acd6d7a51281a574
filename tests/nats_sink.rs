#![cfg(feature = "simulator")]
//! `kind: nats` against a real `nats-server -js` started here: events land
//! in the stream with their ids, the duplicate window drops re-sends, and a
//! NATS crash mid-run loses no acknowledged event and drops nothing silently.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use queuewatch::config::{CallbackSettings, Settings};
use queuewatch::{Event, Handle, QueueWatch};
use support::events::Collector;
use support::nats::{binary_or_skip, read_stream, stream_len, NatsServer};
use support::wait::eventually;
use support::TempDir;

const SUBJECT: &str = "qwtest.events";
const STREAM: &str = "QWTEST";
const NAME: &str = "nats:qwtest.events";

fn settings(url: &str, queues: usize) -> Settings {
    let mut settings = Settings::for_queues(support::queue_ids(0x7a1c_0000, queues));
    settings.poll.interval = Duration::from_secs(5);
    settings.http.bind = None;
    settings.callbacks = vec![CallbackSettings::Nats {
        url: url.to_owned(),
        subject: SUBJECT.into(),
        stream: STREAM.into(),
    }];
    settings
}

/// A NATS server of the test's own and an instance of `queues` queues
/// publishing to it, every event collected.
struct Rig {
    handle: Handle,
    seen: Collector,
    server: NatsServer,
    store: TempDir,
}

/// The rig; `None` (after a notice) without a nats-server.
async fn start(test: &str, queues: usize) -> Option<Rig> {
    let binary = binary_or_skip(test)?;
    let store = TempDir::new("nats-sink");
    let server = NatsServer::start(&binary, &store.0);
    let handle = QueueWatch::new(settings(&server.url(), queues))
        .start()
        .await
        .expect("starts");
    let seen = Collector::start(&handle);
    Some(Rig {
        handle,
        seen,
        server,
        store,
    })
}

/// Of how many queues `events` are.
fn queues_seen(events: &[(Instant, Event)]) -> usize {
    let queues: HashSet<&str> = events.iter().map(|(_, e)| e.queue_id()).collect();
    queues.len()
}

/// Waits until the collector holds an event of each of `queues` queues.
async fn wait_for_every_queue(seen: &Collector, queues: usize) {
    seen.wait(
        &format!("an event of each of {queues} queue(s)"),
        Duration::from_secs(20),
        |events| queues_seen(events) >= queues,
    )
    .await;
}

/// After shutdown: waits until the collector has every event the callback got.
async fn wait_for_collector(seen: &Collector, handle: &Handle) {
    eventually(
        "the collector saw every event delivered",
        Duration::from_secs(5),
        async || seen.len() as u64 >= handle.telemetry().deliveries_for(NAME),
    )
    .await;
}

/// The (id, queue id) of every event seen.
fn ids(seen: &Collector) -> Vec<(String, String)> {
    seen.snapshot()
        .iter()
        .map(|(_, e)| (e.id().to_owned(), e.queue_id().to_owned()))
        .collect()
}

#[actix_rt::test]
async fn events_land_in_the_stream_with_their_ids() {
    // (`store` first: bindings drop last to first, the server before its store.)
    let Some(Rig {
        store: _store,
        server,
        handle,
        seen,
    }) = start("events_land_in_the_stream_with_their_ids", 10).await
    else {
        return;
    };
    wait_for_every_queue(&seen, 10).await;
    handle.shutdown().await;
    wait_for_collector(&seen, &handle).await;
    let seen = ids(&seen);
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
    let Some(Rig {
        store: _store,
        server,
        handle,
        seen,
    }) = start("a_resent_event_is_dropped_by_the_duplicate_window", 3).await
    else {
        return;
    };
    wait_for_every_queue(&seen, 3).await;
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
    let Some(Rig {
        store: _store,
        mut server,
        handle,
        seen,
    }) = start(test, 20).await
    else {
        return;
    };
    let url = server.url();
    wait_for_every_queue(&seen, 20).await;
    eventually(
        "15 events stored before the crash",
        Duration::from_secs(10),
        async || stream_len(&url, STREAM).await.unwrap_or(0) >= 15,
    )
    .await;
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
    let before_outage = seen.len();
    // 20 queues every 5 s: 12 events take 3 s; the bound leaves room.
    let outage = seen
        .wait(
            "polling goes on during the outage: 12 events",
            Duration::from_secs(8),
            |events| events.len() - before_outage >= 12,
        )
        .await;
    server.restart();
    // Everything seen so far (buffered during the outage) ends up stored.
    let backlog = seen.len() as u64;
    let drained = eventually(
        "every event up to the restart is stored",
        Duration::from_secs(30),
        async || stream_len(&url, STREAM).await.unwrap_or(0) >= backlog,
    )
    .await;
    handle.shutdown().await;
    wait_for_collector(&seen, &handle).await;
    let seen = ids(&seen);

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
        "{} events, {} stored ({} before the crash), {dropped} dropped; outage {outage:?}; \
         the {backlog} events up to the restart were stored {drained:?} after it",
        seen.len(),
        stored.len(),
        acked.len(),
    );
}
