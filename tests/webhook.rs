#![cfg(feature = "simulator")]
//! `kind: webhook` against the tests' receiver (`support::webhook`, actix-web
//! on 127.0.0.1:0): Standard Webhooks signatures checked with an HMAC
//! computed independently,
//! a `webhook-id` stable across retries, no retry on 400, 410 disabling the
//! endpoint, and dead endpoints that neither slow polling nor drop silently.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use queuewatch::config::{CallbackSettings, Settings};
use queuewatch::{Event, Handle, QueueWatch};
use support::wait::eventually;
use support::webhook::{verify, Hit, Receiver};
use tokio::sync::broadcast;

const SECRET_VAR: &str = "QUEUEWATCH_TEST_WEBHOOK_SECRET";
const KEY: &[u8] = b"queuewatch webhook test key \x00\x01\x02";
const WAIT: Duration = Duration::from_secs(40);

fn init_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(KEY)
        );
        std::env::set_var(SECRET_VAR, secret);
        std::env::set_var("QUEUEWATCH_TEST_BAD_WEBHOOK_SECRET", "whsec_%%%not-base64");
        std::env::remove_var("QUEUEWATCH_TEST_UNSET_WEBHOOK_SECRET");
    });
}

#[test]
fn the_independent_hmac_matches_the_spec_vector() {
    let key = base64::engine::general_purpose::STANDARD
        .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .unwrap();
    assert!(verify(
        &key,
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        br#"{"test": 2432232314}"#,
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    ));
}

/// The receiver's URL, with a query token the logs must not show.
fn hook_url(receiver: &Receiver) -> String {
    receiver.url("/hooks/queue?token=query-token-5150")
}

fn settings(queues: usize, webhooks: Vec<CallbackSettings>) -> Settings {
    let mut settings = Settings::for_queues(support::queue_ids(0x5eb0_0000, queues));
    settings.poll.interval = Duration::from_secs(5);
    settings.poll.max_retries = 0;
    settings.genesys.rate_limit_per_minute = 30_000;
    settings.callbacks = webhooks;
    settings.http.bind = None;
    settings
}

fn webhook(url: String, secret_env: Option<&str>) -> CallbackSettings {
    CallbackSettings::Webhook {
        url,
        secret_env: secret_env.map(str::to_owned),
    }
}

async fn start(settings: Settings) -> (Handle, broadcast::Receiver<Arc<str>>) {
    init_env();
    let handle = QueueWatch::new(settings).start().await.expect("starts");
    let events = handle.event_stream();
    (handle, events)
}

/// Reads events until `n` more arrived; returns them.
async fn next_events(events: &mut broadcast::Receiver<Arc<str>>, n: usize) -> Vec<Event> {
    support::events::next_n(events, n, WAIT).await
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[actix_rt::test]
async fn signed_retries_keep_their_id_and_their_signature_verifies() {
    // 503 twice, then 200, for every event.
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let tally = seen.clone();
    let receiver = Receiver::start(Duration::ZERO, move |_, id| {
        let mut seen = tally.lock().unwrap();
        let n = seen.entry(id.to_owned()).or_default();
        *n += 1;
        if *n <= 2 {
            503
        } else {
            200
        }
    });
    let (handle, mut events) = start(settings(
        3,
        vec![webhook(hook_url(&receiver), Some(SECRET_VAR))],
    ))
    .await;
    let hits = receiver
        .until(WAIT, |hits| {
            hits.iter().filter(|h| h.answered == 200).count() >= 3
        })
        .await;
    let mut emitted = HashSet::new();
    while let Ok(json) = events.try_recv() {
        emitted.insert(
            serde_json::from_str::<Event>(&json)
                .unwrap()
                .id()
                .to_owned(),
        );
    }

    let mut by_id: BTreeMap<String, Vec<&Hit>> = BTreeMap::new();
    for hit in &hits {
        by_id
            .entry(hit.id.clone().expect("webhook-id"))
            .or_default()
            .push(hit);
    }
    let delivered: Vec<&String> = by_id
        .iter()
        .filter(|(_, h)| h.iter().any(|h| h.answered == 200))
        .map(|(id, _)| id)
        .collect();
    assert!(delivered.len() >= 3, "{by_id:?}");
    for id in delivered {
        assert!(emitted.contains(id), "{id} is an event of this instance");
        let attempts = &by_id[id];
        assert_eq!(
            attempts.iter().map(|h| h.answered).collect::<Vec<_>>(),
            [503, 503, 200],
            "two 503s then a 200, all under one webhook-id"
        );
        let mut last_timestamp = 0;
        for hit in attempts {
            let event: Event =
                serde_json::from_slice(&hit.body).expect("the body is the event JSON");
            assert_eq!(event.id(), id, "webhook-id is the event id");
            assert_eq!(hit.body, attempts[0].body, "the same body on every attempt");
            assert_eq!(hit.content_type.as_deref(), Some("application/json"));
            let timestamp = hit.timestamp.as_deref().expect("webhook-timestamp");
            let secs: i64 = timestamp.parse().unwrap();
            assert!((secs - unix_now()).abs() < 60, "a current unix timestamp");
            assert!(
                secs >= last_timestamp,
                "each attempt has its own, later timestamp"
            );
            last_timestamp = secs;
            let signature = hit.signature.as_deref().expect("webhook-signature");
            assert!(
                verify(KEY, id, timestamp, &hit.body, signature),
                "signature {signature} does not verify"
            );
            assert!(
                !verify(b"another key", id, timestamp, &hit.body, signature),
                "the check can fail"
            );
        }
        assert!(attempts[1].at >= attempts[0].at && attempts[2].at >= attempts[1].at);
    }
    assert_eq!(handle.telemetry().drops_for(&receiver.name()), 0);
    handle.shutdown().await;
    receiver.stop(true).await;
}

#[actix_rt::test]
async fn retry_after_is_honoured() {
    // 429 with `Retry-After: 2` first, then 200, for every event.
    let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
    let tally = seen.clone();
    let receiver = Receiver::start(Duration::ZERO, move |_, id| {
        if tally.lock().unwrap().insert(id.to_owned()) {
            429
        } else {
            200
        }
    });
    let (handle, _events) = start(settings(2, vec![webhook(hook_url(&receiver), None)])).await;
    let hits = receiver
        .until(WAIT, |hits| {
            hits.iter().filter(|h| h.answered == 200).count() >= 2
        })
        .await;
    for done in hits.iter().filter(|h| h.answered == 200) {
        let first = hits
            .iter()
            .find(|h| h.id == done.id)
            .expect("a first attempt");
        assert_eq!(first.answered, 429);
        let gap = done.at.duration_since(first.at);
        assert!(
            gap >= Duration::from_millis(1_900) && gap < Duration::from_secs(5),
            "retried {gap:?} after a Retry-After of 2 s"
        );
    }
    assert_eq!(handle.telemetry().drops_for(&receiver.name()), 0);
    handle.shutdown().await;
    receiver.stop(true).await;
}

#[actix_rt::test]
async fn a_400_is_not_retried_and_unsigned_hooks_carry_no_signature() {
    // The first three requests get 400, later ones 200.
    let receiver = Receiver::start(Duration::ZERO, |n, _| if n < 3 { 400 } else { 200 });
    let (handle, mut events) = start(settings(3, vec![webhook(hook_url(&receiver), None)])).await;
    receiver.until(WAIT, |hits| hits.len() >= 3).await;
    // Every queue polls again (5 s later): far past any retry of the 400s.
    let mut queues = HashSet::new();
    while queues.len() < 3 {
        for event in next_events(&mut events, 1).await {
            queues.insert(event.queue_id().to_owned());
        }
    }
    queues.clear();
    while queues.len() < 3 {
        for event in next_events(&mut events, 1).await {
            queues.insert(event.queue_id().to_owned());
        }
    }
    let hits = receiver.until(WAIT, |hits| hits.len() >= 6).await;
    let refused: Vec<&String> = hits[..3].iter().map(|h| h.id.as_ref().unwrap()).collect();
    for id in &refused {
        assert_eq!(
            hits.iter().filter(|h| h.id.as_ref() == Some(*id)).count(),
            1,
            "{id} was retried after a 400"
        );
    }
    assert!(hits
        .iter()
        .all(|h| h.signature.is_none() && h.timestamp.is_some()));
    assert!(
        handle.telemetry().drops_for(&receiver.name()) >= 3,
        "refused events count as drops"
    );
    handle.shutdown().await;
    receiver.stop(true).await;
}

#[actix_rt::test]
async fn gone_disables_the_endpoint() {
    let receiver = Receiver::start(Duration::ZERO, |_, _| 410);
    let (handle, mut events) = start(settings(3, vec![webhook(hook_url(&receiver), None)])).await;
    receiver.until(WAIT, |hits| !hits.is_empty()).await;
    // Two more rounds of every queue: all dropped, none posted.
    next_events(&mut events, 6).await;
    eventually("drops counted", WAIT, async || {
        handle.telemetry().drops_for(&receiver.name()) >= 6
    })
    .await;
    let hits = receiver.hits();
    assert!(
        hits.len() <= 4,
        "only deliveries already in flight reach a gone endpoint: {}",
        hits.len()
    );
    handle.shutdown().await;
    receiver.stop(true).await;
}

#[actix_rt::test]
async fn dead_endpoints_do_not_slow_polling_and_drops_are_counted() {
    // One endpoint refuses connections; one accepts and never answers in time.
    let refused_port = support::free_port();
    let refused = format!("http://127.0.0.1:{refused_port}/hook");
    let sleeper = Receiver::start(Duration::from_secs(60), |_, _| 200);
    const QUEUES: usize = 500;
    let (handle, mut events) = start(settings(
        QUEUES,
        vec![
            webhook(refused, Some(SECRET_VAR)),
            webhook(hook_url(&sleeper), None),
        ],
    ))
    .await;
    let names = [format!("webhook:127.0.0.1:{refused_port}"), sleeper.name()];

    // Warm-up: the first round of every queue.
    let mut per_queue: HashMap<String, usize> = HashMap::new();
    while per_queue.len() < QUEUES {
        for event in next_events(&mut events, 1).await {
            *per_queue.entry(event.queue_id().to_owned()).or_default() += 1;
        }
    }
    // Then count events until both endpoints have overflowed their queues.
    let started = Instant::now();
    let mut counted = 0usize;
    while names.iter().any(|n| handle.telemetry().drops_for(n) == 0)
        || started.elapsed() < Duration::from_secs(15)
    {
        assert!(started.elapsed() < WAIT, "drops are counted");
        counted += next_events(&mut events, 50).await.len();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let expected = QUEUES as f64 * elapsed / 5.0;
    assert!(
        counted as f64 >= 0.85 * expected,
        "{counted} events in {elapsed:.1}s, expected about {expected:.0}: polling slowed down"
    );
    for name in &names {
        assert!(handle.telemetry().drops_for(name) > 0, "{name}");
    }
    // Shutdown waits a bounded grace for each webhook, no more.
    let stopping = Instant::now();
    handle.shutdown().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(25),
        "{:?}",
        stopping.elapsed()
    );
    sleeper.stop(false).await;
}

#[actix_rt::test]
async fn secrets_come_from_the_environment_or_the_start_fails() {
    init_env();
    for (var, expect) in [
        ("QUEUEWATCH_TEST_UNSET_WEBHOOK_SECRET", "is not set"),
        ("QUEUEWATCH_TEST_BAD_WEBHOOK_SECRET", "not valid base64"),
    ] {
        let settings = settings(
            1,
            vec![
                CallbackSettings::Log,
                webhook("http://127.0.0.1:9/hook".into(), Some(var)),
            ],
        );
        match QueueWatch::new(settings).start().await {
            Err(error) if error.is_config() => {
                let message = error.to_string();
                assert!(message.contains("callbacks[1].secret_env"), "{message}");
                assert!(message.contains(expect), "{message}");
                assert!(
                    !message.contains("not-base64"),
                    "the value is not echoed: {message}"
                );
            }
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("started without its webhook secret"),
        }
    }
}
