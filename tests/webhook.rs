//! `kind: webhook` against receivers written here (actix-web on 127.0.0.1:0):
//! Standard Webhooks signatures checked with an HMAC computed independently,
//! a `webhook-id` stable across retries, no retry on 400, 410 disabling the
//! endpoint, and dead endpoints that neither slow polling nor drop silently.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine as _;
use queuewatch::config::{CallbackSettings, Settings};
use queuewatch::{Event, Handle, QueueWatch};
use tokio::sync::{broadcast, watch};

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

/// HMAC-SHA256 (RFC 2104) built here from plain SHA-256, independent of the
/// crate's signing code.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use ring::digest::{digest, SHA256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(digest(&SHA256, key).as_ref());
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let mut inner = pad(0x36);
    inner.extend_from_slice(message);
    let mut outer = pad(0x5c);
    outer.extend_from_slice(digest(&SHA256, &inner).as_ref());
    digest(&SHA256, &outer).as_ref().to_vec()
}

/// The Standard Webhooks signature check, as a receiver does it.
fn verify(key: &[u8], id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let expected = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(key, &signed));
    // The header may hold several space-separated signatures.
    header
        .split(' ')
        .any(|sig| sig.strip_prefix("v1,") == Some(expected.as_str()))
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

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Hit {
    at: Instant,
    id: Option<String>,
    timestamp: Option<String>,
    signature: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
    answered: u16,
}

type Answer = dyn Fn(usize, &str) -> u16 + Send + Sync;

struct ReceiverState {
    hits: Mutex<Vec<Hit>>,
    count: watch::Sender<usize>,
    /// Given the request's number (0-based) and its `webhook-id`: the status.
    answer: Box<Answer>,
    /// Sleep this long before answering.
    delay: Duration,
}

/// A webhook receiver on 127.0.0.1:0.
struct Receiver {
    state: Arc<ReceiverState>,
    port: u16,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    fn start(delay: Duration, answer: impl Fn(usize, &str) -> u16 + Send + Sync + 'static) -> Self {
        let state = Arc::new(ReceiverState {
            hits: Mutex::new(Vec::new()),
            count: watch::channel(0).0,
            answer: Box::new(answer),
            delay,
        });
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Receiver {
            state,
            port,
            server: handle,
        }
    }

    fn url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/hooks/queue?token=query-token-5150",
            self.port
        )
    }

    fn name(&self) -> String {
        format!("webhook:127.0.0.1:{}", self.port)
    }

    fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for the hits so far.
    async fn until(&self, pred: impl Fn(&[Hit]) -> bool) -> Vec<Hit> {
        let mut count = self.state.count.subscribe();
        tokio::time::timeout(WAIT, async {
            loop {
                let hits = self.hits();
                if pred(&hits) {
                    return hits;
                }
                count.changed().await.unwrap();
            }
        })
        .await
        .unwrap_or_else(|_| panic!("receiver condition not met; hits: {:?}", self.hits()))
    }
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<ReceiverState>,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let id = header("webhook-id");
    let n = state.hits.lock().unwrap().len();
    let status = (state.answer)(n, id.as_deref().unwrap_or_default());
    state.hits.lock().unwrap().push(Hit {
        at: Instant::now(),
        id,
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        content_type: header("content-type"),
        body: body.to_vec(),
        answered: status,
    });
    state.count.send_modify(|c| *c += 1);
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    let mut response = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    if status == 429 {
        response.insert_header(("Retry-After", "2"));
    }
    response.finish()
}

fn queue_ids(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{i:08x}-5eb0-4000-8000-00000000abcd"))
        .collect()
}

fn settings(queues: usize, webhooks: Vec<CallbackSettings>) -> Settings {
    let mut settings = Settings::for_queues(queue_ids(queues));
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
    tokio::time::timeout(WAIT, async {
        let mut got = Vec::new();
        while got.len() < n {
            let json = events.recv().await.expect("event stream open");
            got.push(serde_json::from_str::<Event>(&json).unwrap());
        }
        got
    })
    .await
    .expect("events keep coming")
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
    let (handle, mut events) =
        start(settings(3, vec![webhook(receiver.url(), Some(SECRET_VAR))])).await;
    let hits = receiver
        .until(|hits| hits.iter().filter(|h| h.answered == 200).count() >= 3)
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
    receiver.server.stop(true).await;
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
    let (handle, _events) = start(settings(2, vec![webhook(receiver.url(), None)])).await;
    let hits = receiver
        .until(|hits| hits.iter().filter(|h| h.answered == 200).count() >= 2)
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
    receiver.server.stop(true).await;
}

#[actix_rt::test]
async fn a_400_is_not_retried_and_unsigned_hooks_carry_no_signature() {
    // The first three requests get 400, later ones 200.
    let receiver = Receiver::start(Duration::ZERO, |n, _| if n < 3 { 400 } else { 200 });
    let (handle, mut events) = start(settings(3, vec![webhook(receiver.url(), None)])).await;
    receiver.until(|hits| hits.len() >= 3).await;
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
    let hits = receiver.until(|hits| hits.len() >= 6).await;
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
    receiver.server.stop(true).await;
}

#[actix_rt::test]
async fn gone_disables_the_endpoint() {
    let receiver = Receiver::start(Duration::ZERO, |_, _| 410);
    let (handle, mut events) = start(settings(3, vec![webhook(receiver.url(), None)])).await;
    receiver.until(|hits| !hits.is_empty()).await;
    // Two more rounds of every queue: all dropped, none posted.
    next_events(&mut events, 6).await;
    let deadline = Instant::now() + WAIT;
    while handle.telemetry().drops_for(&receiver.name()) < 6 {
        assert!(Instant::now() < deadline, "drops counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hits = receiver.hits();
    assert!(
        hits.len() <= 4,
        "only deliveries already in flight reach a gone endpoint: {}",
        hits.len()
    );
    handle.shutdown().await;
    receiver.server.stop(true).await;
}

#[actix_rt::test]
async fn dead_endpoints_do_not_slow_polling_and_drops_are_counted() {
    // One endpoint refuses connections; one accepts and never answers in time.
    let refused_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = format!("http://127.0.0.1:{refused_port}/hook");
    let sleeper = Receiver::start(Duration::from_secs(60), |_, _| 200);
    const QUEUES: usize = 500;
    let (handle, mut events) = start(settings(
        QUEUES,
        vec![
            webhook(refused, Some(SECRET_VAR)),
            webhook(sleeper.url(), None),
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
    sleeper.server.stop(false).await;
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
