#![cfg(feature = "simulator")]
//! The HTTP status API (docs/http-api.md) over real loopback HTTP: every
//! endpoint of a live instance polling the built-in simulator.
//!
//! Waits are on events (`Handle::event_stream`, or the SSE stream itself),
//! never on fixed sleeps; every wait has a deadline.

mod support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use queuewatch::config::Settings;
use queuewatch::genesys::Credentials;
use queuewatch::secret::Secret;
use queuewatch::simulator::{Fault, FaultRule, SimulatorConfig};
use queuewatch::{Handle, QueueWatch};
use support::metrics::{check_histogram, parse_openmetrics, Family, PROMETHEUS_ACCEPT};

const Q1: &str = "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10";
const Q2: &str = "1c7d4c8f-5a2e-4d68-8b9f-4a2a3e8d0b21";
const Q3: &str = "2d8e5d90-6b3f-4e79-9ca0-5b3b4f9e1c32";
const UNKNOWN: &str = "99999999-9999-4999-8999-999999999999";

/// Longest wait for an event: one 5 s interval, retries and a slow CI box.
const EVENT_WAIT: Duration = Duration::from_secs(30);

// ---- harness --------------------------------------------------------------

/// Settings for `queues` (id, name) on the simulator, served on a loopback
/// port the system picks (`Handle::http_addr` tells which).
fn settings(queues: &[(&str, &str)]) -> Settings {
    let mut s = Settings::for_queues(queues.iter().map(|(id, _)| *id));
    for (queue, (_, name)) in s.queues.iter_mut().zip(queues) {
        queue.name = Some((*name).to_string());
    }
    // Port 0: the system picks one; the handle tells which.
    s.http.bind = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    s.poll.interval = Duration::from_secs(5);
    s.poll.backoff_base = Duration::from_millis(50);
    s.poll.backoff_max = Duration::from_millis(200);
    s.callbacks = vec![];
    s
}

struct Instance {
    handle: Handle,
    addr: SocketAddr,
    base: String,
    events: broadcast::Receiver<Arc<str>>,
    client: awc::Client,
}

impl Instance {
    async fn start(settings: Settings) -> Instance {
        Instance::start_with(QueueWatch::new(settings.clone()), &settings).await
    }

    async fn start_with(builder: QueueWatch, settings: &Settings) -> Instance {
        assert!(settings.http.bind.is_some(), "http.bind is set");
        let handle = builder.start().await.expect("queuewatch starts");
        let events = handle.event_stream();
        let bind = handle.http_addr().expect("the status API listens");
        Instance {
            handle,
            addr: bind,
            base: format!("http://{bind}"),
            events,
            client: awc::Client::builder()
                .timeout(Duration::from_secs(10))
                .finish(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET `path` (with an optional bearer token): status, content type, body.
    async fn get(&self, path: &str, bearer: Option<&str>) -> (u16, String, Vec<u8>) {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        self.send(path, request).await
    }

    /// GET `path` with an `Accept` header: status, content type, body.
    async fn get_accepting(&self, path: &str, accept: &str) -> (u16, String, Vec<u8>) {
        let request = self
            .client
            .get(self.url(path))
            .insert_header(("Accept", accept));
        self.send(path, request).await
    }

    async fn send(&self, path: &str, request: awc::ClientRequest) -> (u16, String, Vec<u8>) {
        let mut response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = response
            .body()
            .limit(16 << 20)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: body: {e}"));
        (response.status().as_u16(), content_type, body.to_vec())
    }

    /// GET `path` expecting `status` and a JSON body.
    async fn get_json(&self, path: &str, status: u16) -> Value {
        let (got, content_type, body) = self.get(path, None).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(got, status, "GET {path}: {text}");
        assert!(
            content_type.starts_with("application/json"),
            "GET {path}: content type {content_type:?}"
        );
        serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {text}"))
    }

    /// The next event (as JSON) that `matches`, from the instance's own stream.
    async fn event(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        support::events::next(&mut self.events, what, EVENT_WAIT, matches).await
    }
}

fn is_poll(event: &Value) -> bool {
    event["type"] == "poll"
}

fn unix_ms(rfc3339: &str) -> u64 {
    let at = humantime::parse_rfc3339(rfc3339).unwrap_or_else(|e| panic!("{rfc3339:?}: {e}"));
    at.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

// ---- /healthz, /readyz -----------------------------------------------------

#[actix_rt::test]
async fn healthz_answers_ok() {
    let qw = Instance::start(settings(&[(Q1, "support")])).await;
    let (status, content_type, body) = qw.get("/healthz", None).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(body, b"ok\n");
    qw.handle.shutdown().await;
}

/// Not ready while every poll fails (a token is held, but no poll succeeded);
/// ready once one succeeds. The simulator runs outside the instance so its
/// faults are in force before the first poll.
#[actix_rt::test]
async fn readyz_is_503_until_a_poll_succeeds() {
    let config = SimulatorConfig::with_queues([Q1]);
    let credentials = Credentials {
        client_id: Secret::new(config.client_id.clone()),
        client_secret: Secret::new(config.client_secret.clone()),
    };
    let sim = support::sim::start(config).await;
    sim.faults()
        .push(FaultRule::always(Fault::ServerError { status: 503 }));

    let mut s = settings(&[(Q1, "support")]);
    s.genesys.environment = "mypurecloud.com".into();
    s.genesys.api_url = Some(sim.base_url());
    s.genesys.login_url = Some(sim.base_url());
    s.poll.max_retries = 0;
    let mut qw =
        Instance::start_with(QueueWatch::new(s.clone()).credentials(credentials), &s).await;

    let before = qw.get_json("/readyz", 503).await;
    assert_eq!(before["ready"], false, "{before}");
    assert_eq!(before["successful_polls"], 0, "{before}");

    let failed = qw
        .event("poll_failed", |e| e["type"] == "poll_failed")
        .await;
    assert_eq!(failed["error"], "server_error", "{failed}");
    let after_failure = qw.get_json("/readyz", 503).await;
    assert_eq!(
        after_failure["ready"], false,
        "a failed poll does not make it ready"
    );
    assert_eq!(after_failure["token"], true, "{after_failure}");

    sim.faults().clear();
    qw.event("poll", is_poll).await;
    let ready = qw.get_json("/readyz", 200).await;
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["token"], true, "{ready}");
    assert!(ready["successful_polls"].as_u64().unwrap() >= 1, "{ready}");
    assert_eq!(ready["reason"], Value::Null, "{ready}");

    qw.handle.shutdown().await;
}

/// Ready means a poll succeeded within the last three intervals: once every
/// poll fails, `/readyz` stays 200 for a while (the last success is recent),
/// then turns 503 with the reason; the first success after makes it 200.
#[actix_rt::test]
async fn readyz_goes_503_with_a_reason_when_polls_stop_succeeding() {
    let mut s = settings(&[(Q1, "support")]);
    s.poll.max_retries = 0;
    let mut qw = Instance::start(s).await;
    qw.event("poll", is_poll).await;
    let ready = qw.get_json("/readyz", 200).await;
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["reason"], Value::Null, "{ready}");
    assert_eq!(
        ready["window_seconds"], 15.0,
        "three 5 s intervals: {ready}"
    );
    assert!(ready["last_success_seconds_ago"].as_f64().unwrap() < 15.0);

    let faults = qw.handle.simulator().expect("simulator").faults().clone();
    faults.push(FaultRule::always(Fault::ServerError { status: 503 }));
    let failing_since = std::time::Instant::now();
    qw.event("poll_failed", |e| e["type"] == "poll_failed")
        .await;
    let still = qw.get_json("/readyz", 200).await;
    assert_eq!(
        still["ready"], true,
        "one failed poll after a recent success is still ready: {still}"
    );

    let mut unready = Value::Null;
    support::wait::eventually("/readyz turns 503", EVENT_WAIT, async || {
        let (status, _, body) = qw.get("/readyz", None).await;
        unready = serde_json::from_slice(&body).unwrap_or(Value::Null);
        status == 503
    })
    .await;
    assert!(
        failing_since.elapsed() >= Duration::from_secs(10),
        "503 only once the window passed without a success ({:?}): {unready}",
        failing_since.elapsed()
    );
    assert_eq!(unready["ready"], false, "{unready}");
    assert_eq!(
        unready["reason"], "no poll succeeded in the last 15s",
        "{unready}"
    );
    assert_eq!(unready["token"], true, "{unready}");
    let age = unready["last_success_seconds_ago"].as_f64().unwrap();
    assert!(age > 15.0, "{unready}");

    faults.clear();
    qw.event("poll", is_poll).await;
    let again = qw.get_json("/readyz", 200).await;
    assert_eq!(again["ready"], true, "{again}");
    qw.handle.shutdown().await;
}

/// The window stretches with the intervals when the demand exceeds the rate
/// budget: 12 requests a minute against 6 stretch them about 2x.
#[actix_rt::test]
async fn readyz_window_is_three_stretched_intervals() {
    let mut s = settings(&[(Q1, "support")]);
    s.genesys.rate_limit_per_minute = 6;
    let qw = Instance::start(s).await;
    let (_, _, body) = qw.get("/readyz", None).await;
    let readiness: Value = serde_json::from_slice(&body).unwrap();
    let window = readiness["window_seconds"].as_f64().unwrap();
    assert!(
        (30.0..=32.0).contains(&window),
        "3 x 5 s x ~2.06: {readiness}"
    );
    qw.handle.shutdown().await;
}

// ---- /metrics ----------------------------------------------------------------

/// The parser must reject what is not a valid exposition, or the metrics
/// test below would prove nothing.
#[test]
fn openmetrics_parser_rejects_malformed_text() {
    let good =
        "# HELP a_total_x Things.\n# TYPE a_total_x counter\na_total_x_total{k=\"v\"} 1\n# EOF\n";
    assert!(
        parse_openmetrics(good).is_ok(),
        "{:?}",
        parse_openmetrics(good)
    );
    let bad = [
        ("no EOF", "# TYPE a counter\na_total 1\n"),
        ("sample before TYPE", "a_total 1\n# EOF\n"),
        ("value missing", "# TYPE a counter\na_total\n# EOF\n"),
        ("bad value", "# TYPE a counter\na_total one\n# EOF\n"),
        (
            "unquoted label",
            "# TYPE a counter\na_total{k=v} 1\n# EOF\n",
        ),
        (
            "unterminated labels",
            "# TYPE a counter\na_total{k=\"v\" 1\n# EOF\n",
        ),
        ("counter without _total", "# TYPE a counter\na 1\n# EOF\n"),
        ("negative counter", "# TYPE a counter\na_total -1\n# EOF\n"),
        ("foreign sample", "# TYPE a gauge\nb 1\n# EOF\n"),
        ("unknown type", "# TYPE a countr\na_total 1\n# EOF\n"),
        (
            "unit not in name",
            "# TYPE a gauge\n# UNIT a seconds\na 1\n# EOF\n",
        ),
        (
            "repeated TYPE",
            "# TYPE a gauge\n# TYPE a gauge\na 1\n# EOF\n",
        ),
        (
            "interleaved",
            "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\n# EOF\n",
        ),
        ("blank line", "# TYPE a gauge\n\na 1\n# EOF\n"),
        ("text after EOF", "# TYPE a gauge\na 1\n# EOF\na 2\n"),
        ("bad name", "# TYPE 1a gauge\n1a 1\n# EOF\n"),
    ];
    for (why, text) in bad {
        assert!(
            parse_openmetrics(text).is_err(),
            "accepted ({why}): {text:?}"
        );
    }
}

#[actix_rt::test]
async fn metrics_are_valid_openmetrics_with_every_family() {
    let mut s = settings(&[(Q1, "support"), (Q2, "billing")]);
    s.poll.max_retries = 1;
    let mut qw = Instance::start(s).await;
    // Q2's next cycle fails twice (the first attempt and its one retry).
    qw.handle
        .simulator()
        .expect("in-process simulator")
        .faults()
        .push(FaultRule::times(Fault::ServerError { status: 503 }, 2).for_queue(Q2));
    let failed = qw
        .event("poll_failed", |e| e["type"] == "poll_failed")
        .await;
    assert_eq!(
        (failed["queue_id"].as_str(), failed["attempts"].as_u64()),
        (Some(Q2), Some(2))
    );
    qw.event("poll", is_poll).await;

    // As Prometheus asks for it (the classic text: tests/prometheus.rs).
    let (status, content_type, body) = qw.get_accepting("/metrics", PROMETHEUS_ACCEPT).await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "content type {content_type:?}"
    );
    let text = String::from_utf8(body).expect("UTF-8");
    let families = parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let family = |name: &str, kind: &str| -> &Family {
        let family = families
            .get(name)
            .unwrap_or_else(|| panic!("family {name} missing:\n{text}"));
        assert_eq!(family.kind, kind, "type of {name}");
        assert!(family.help.is_some(), "{name} has no HELP");
        family
    };

    let polls = family("queuewatch_polls", "counter");
    let ok = polls
        .value("queuewatch_polls_total", &[("outcome", "success")])
        .unwrap();
    let bad = polls
        .value("queuewatch_polls_total", &[("outcome", "failure")])
        .unwrap();
    assert!(ok >= 1.0 && bad >= 1.0, "polls: {ok} ok, {bad} failed");
    let failures = family("queuewatch_poll_failures", "counter");
    let kind = failures.value(
        "queuewatch_poll_failures_total",
        &[("kind", "server_error")],
    );
    assert!(kind >= Some(1.0), "server_error failures: {kind:?}");

    let latency = family("queuewatch_request_latency_seconds", "histogram");
    assert_eq!(latency.unit.as_deref(), Some("seconds"));
    check_histogram("queuewatch_request_latency_seconds", latency);
    let observed = latency
        .value("queuewatch_request_latency_seconds_count", &[])
        .unwrap();
    assert!(
        observed >= ok,
        "one latency per successful poll: {observed} < {ok}"
    );

    let retries = family("queuewatch_retries", "counter");
    assert!(
        retries.value("queuewatch_retries_total", &[]) >= Some(1.0),
        "the failed cycle retried once"
    );
    let limited = family("queuewatch_rate_limited_responses", "counter");
    assert_eq!(
        limited.value("queuewatch_rate_limited_responses_total", &[]),
        Some(0.0)
    );
    let tokens = family("queuewatch_token_requests", "counter");
    let issued = tokens.value("queuewatch_token_requests_total", &[("result", "success")]);
    assert!(issued >= Some(1.0), "token requests: {issued:?}");
    let deliveries = family("queuewatch_event_deliveries", "counter");
    let delivered = deliveries.value(
        "queuewatch_event_deliveries_total",
        &[("callback", "api_events")],
    );
    assert!(
        delivered >= Some(2.0),
        "deliveries to the SSE hub: {delivered:?}"
    );
    // The budget in force: the configured 300 a minute, less headroom and
    // any adaptation, never above it.
    let budget = family("queuewatch_rate_budget_per_minute", "gauge");
    let per_minute = budget
        .value("queuewatch_rate_budget_per_minute", &[])
        .expect("a budget sample");
    assert!(
        per_minute > 0.0 && per_minute <= 300.0,
        "rate budget {per_minute}"
    );
    let queues = family("queuewatch_queues", "gauge");
    assert_eq!(queues.value("queuewatch_queues", &[]), Some(2.0));

    // prometheus-client leaves a family without series out entirely: the
    // restart counter appears with the first restart.
    match families.get("queuewatch_actor_restarts") {
        Some(restarts) => assert_eq!(restarts.kind, "counter"),
        None => assert_eq!(
            qw.handle.telemetry().restarts_total(),
            0,
            "restarts counted but not exposed"
        ),
    }

    qw.handle.shutdown().await;
}

// ---- /api/queues, /api/queues/{id} ----------------------------------------

#[actix_rt::test]
async fn api_queues_lists_every_queue() {
    let queues = [(Q1, "support"), (Q2, "billing"), (Q3, "sales")];
    let mut qw = Instance::start(settings(&queues)).await;
    let mut polled = HashSet::new();
    while polled.len() < queues.len() {
        let event = qw.event("poll", is_poll).await;
        polled.insert(event["queue_id"].as_str().unwrap().to_string());
    }

    let list = qw.get_json("/api/queues", 200).await;
    let list = list.as_array().expect("a JSON array");
    let ids: Vec<&str> = list
        .iter()
        .map(|q| q["queue_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [Q1, Q2, Q3], "every queue, sorted by id");
    for (entry, (id, name)) in list.iter().zip(queues) {
        assert_eq!(entry["queue_name"], name, "{entry}");
        assert!(entry["polls"].as_u64().unwrap() >= 1, "{entry}");
        assert_eq!(entry["failures"], 0, "{entry}");
        let last = &entry["last_event"];
        assert_eq!(last["type"], "poll", "{entry}");
        assert_eq!(last["queue_id"], id, "{entry}");
        assert_eq!(last["queue_name"], name, "{entry}");
        assert_eq!(last["source"], "guest_position", "{entry}");
        assert!(
            last["position"].is_u64() && last["estimated_wait_seconds"].is_number(),
            "{entry}"
        );
    }
    qw.handle.shutdown().await;
}

#[actix_rt::test]
async fn api_queue_detail_has_history_latency_accuracy_and_counters() {
    let mut qw = Instance::start(settings(&[(Q1, "support"), (Q2, "billing")])).await;
    let event = qw
        .event("poll of Q1", |e| is_poll(e) && e["queue_id"] == Q1)
        .await;

    let detail = qw.get_json(&format!("/api/queues/{Q1}"), 200).await;
    assert_eq!(detail["queue_id"], Q1);
    assert_eq!(detail["queue_name"], "support");
    let polls = detail["polls"].as_u64().unwrap();
    assert!(polls >= 1, "{detail}");

    let history = detail["history"].as_array().expect("history array");
    assert_eq!(
        history.len() as u64,
        polls,
        "one snapshot per cycle: {detail}"
    );
    let keys: HashSet<&str> = history[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected: HashSet<&str> = [
        "at_unix_ms",
        "depth",
        "estimated_wait_seconds",
        "smoothed_wait_seconds",
        "latency_ms",
        "attempts",
        "error",
    ]
    .into();
    assert_eq!(keys, expected, "snapshot fields");
    assert!(history
        .windows(2)
        .all(|w| w[0]["at_unix_ms"].as_u64() < w[1]["at_unix_ms"].as_u64()));
    let at = unix_ms(event["timestamp"].as_str().unwrap());
    let snapshot = history
        .iter()
        .find(|h| h["at_unix_ms"].as_u64() == Some(at))
        .unwrap_or_else(|| panic!("no snapshot at the event's time {at}: {detail}"));
    assert_eq!(
        snapshot["depth"], event["position"],
        "{snapshot} vs {event}"
    );
    assert_eq!(snapshot["attempts"], event["attempts"]);
    assert_eq!(snapshot["error"], Value::Null);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        at <= now && now - at < 60_000,
        "snapshot time {at} vs now {now}"
    );

    let latency = &detail["latency"];
    assert!(latency["mean_ms"].as_f64().unwrap() > 0.0, "{latency}");
    for key in ["p50_ms", "p95_ms", "p99_ms"] {
        assert!(latency[key].is_number(), "latency.{key}: {latency}");
    }
    assert!(
        detail.get("position_accuracy").is_some(),
        "position_accuracy is always present (null until two polls)"
    );
    if let Some(accuracy) = detail["position_accuracy"].as_f64() {
        assert!((0.0..=1.0).contains(&accuracy), "{accuracy}");
    }
    let counters = &detail["counters"];
    assert_eq!(counters["total"].as_u64(), Some(polls), "{counters}");
    assert_eq!(counters["success"].as_u64(), Some(polls), "{counters}");
    assert_eq!(counters["failures"], serde_json::json!({}), "{counters}");
    assert_eq!(counters["retries"], 0, "{counters}");
    assert_eq!(counters["rate_limited_responses"], 0, "{counters}");
    assert!(detail["smoothed_wait_seconds"].is_number(), "{detail}");
    qw.handle.shutdown().await;
}

#[actix_rt::test]
async fn unknown_queue_is_a_json_404() {
    let qw = Instance::start(settings(&[(Q1, "support")])).await;
    let body = qw.get_json(&format!("/api/queues/{UNKNOWN}"), 404).await;
    assert_eq!(body["error"], "not_found", "{body}");
    assert_eq!(body["queue_id"], UNKNOWN, "{body}");
    let body = qw.get_json("/api/queues/not-a-queue", 404).await;
    assert_eq!(body["error"], "not_found", "{body}");
    qw.handle.shutdown().await;
}

/// The `after` of a `Link: <...>; rel="next"` header.
fn next_after(link: &str) -> String {
    let (target, rel) = link.split_once(';').expect("<target>; rel");
    assert_eq!(rel.trim(), "rel=\"next\"", "{link}");
    let target = target
        .trim()
        .strip_prefix('<')
        .unwrap()
        .strip_suffix('>')
        .unwrap();
    let (path, query) = target.split_once('?').expect("a query");
    assert_eq!(path, "/api/queues", "{link}");
    let after = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("after="))
        .unwrap_or_else(|| panic!("no after in {link}"));
    assert!(
        query.split('&').any(|pair| pair.starts_with("limit=")),
        "{link}"
    );
    after.to_owned()
}

/// `limit` and `after` walk the whole set, sorted by id, each queue once;
/// every page is the same JSON array as the unpaged list, and a `Link`
/// header names the next page until the last.
#[actix_rt::test]
async fn api_queues_pages_walk_the_whole_set_exactly_once() {
    let ids = support::queue_ids(0x0000_7a9e, 7);
    let mut s = Settings::for_queues(ids.iter().rev().map(String::as_str));
    s.http.bind = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    s.poll.interval = Duration::from_secs(5);
    s.callbacks = vec![];
    let qw = Instance::start(s).await;
    let mut sorted = ids.clone();
    sorted.sort();

    let listed = |list: &Value| -> Vec<String> {
        list.as_array()
            .expect("a JSON array")
            .iter()
            .map(|q| q["queue_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let get_page = async |path: String| -> (Vec<String>, Option<String>) {
        let mut response = qw.client.get(qw.url(&path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let link = response
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap();
        (listed(&body), link)
    };

    let (all, link) = get_page("/api/queues".into()).await;
    assert_eq!(all, sorted, "unpaged: every queue, sorted by id");
    assert_eq!(link, None, "one page holds them all");

    let mut walked = Vec::new();
    let mut path = "/api/queues?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let (page, link) = get_page(path.clone()).await;
        pages += 1;
        assert!(!page.is_empty() && page.len() <= 3, "{path}: {page:?}");
        walked.extend(page);
        match link {
            Some(link) => path = format!("/api/queues?limit=3&after={}", next_after(&link)),
            None => break,
        }
        assert!(pages < 10, "the walk does not end");
    }
    assert_eq!(pages, 3, "7 queues in pages of 3");
    assert_eq!(walked, sorted, "each queue once, in order");

    // An exact fit has no next page; `after` need not be a known id.
    let (page, link) = get_page("/api/queues?limit=7".into()).await;
    assert_eq!((page.len(), link), (7, None));
    let between = format!("{}0", sorted[1]);
    let (page, _) = get_page(format!("/api/queues?after={between}&limit=2")).await;
    assert_eq!(page, sorted[2..4]);
    let (page, link) = get_page(format!("/api/queues?after={}", sorted[6])).await;
    assert_eq!((page.len(), link), (0, None));

    for (query, parameter) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=-3", "limit"),
        ("limit=ten", "limit"),
        ("limit=2&limit=3", "limit"),
        ("after=", "after"),
    ] {
        let body = qw.get_json(&format!("/api/queues?{query}"), 400).await;
        assert_eq!(body["error"], "bad_request", "{query}: {body}");
        assert_eq!(body["parameter"], parameter, "{query}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains(parameter),
            "{body}"
        );
    }
    qw.handle.shutdown().await;
}

/// `?points=N` returns the newest N snapshots of the history.
#[actix_rt::test]
async fn api_queue_points_returns_the_newest_snapshots() {
    let mut qw = Instance::start(settings(&[(Q1, "support")])).await;
    qw.event("poll", is_poll).await;
    qw.event("second poll", is_poll).await;
    let path = format!("/api/queues/{Q1}");
    let full = qw.get_json(&path, 200).await;
    let history = full["history"].as_array().unwrap().clone();
    assert!(history.len() >= 2, "{full}");
    // No poll lands between the two requests: the next is ~5 s away.
    let newest = qw.get_json(&format!("{path}?points=1"), 200).await;
    assert_eq!(
        newest["history"].as_array().unwrap().as_slice(),
        &history[history.len() - 1..],
        "{newest}"
    );
    assert_eq!(newest["polls"], full["polls"], "the rest is unchanged");
    assert_eq!(newest["counters"], full["counters"]);
    let two = qw.get_json(&format!("{path}?points=2"), 200).await;
    assert_eq!(
        two["history"].as_array().unwrap().as_slice(),
        &history[history.len() - 2..]
    );
    let none = qw.get_json(&format!("{path}?points=0"), 200).await;
    assert_eq!(none["history"], serde_json::json!([]));
    let more = qw.get_json(&format!("{path}?points=1000"), 200).await;
    assert_eq!(more["history"].as_array().unwrap().len(), history.len());
    for bad in ["x", "-1", "1.5", ""] {
        let body = qw.get_json(&format!("{path}?points={bad}"), 400).await;
        assert_eq!(body["parameter"], "points", "{bad}: {body}");
    }
    qw.handle.shutdown().await;
}

// ---- /api/events -------------------------------------------------------------

/// Reads an SSE response until a complete `event:`/`data:` frame arrives.
async fn first_sse_frame(response: &mut awc::ClientResponse) -> (String, Value) {
    let mut buffer = String::new();
    let read = async {
        loop {
            let chunk = response
                .next()
                .await
                .expect("the stream stays open")
                .expect("the stream reads");
            buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                let mut kind = None;
                let mut data = None;
                let mut id = None;
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        kind = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str::<Value>(v).expect("data is JSON"));
                    } else {
                        assert!(
                            line.is_empty() || line.starts_with(':'),
                            "unexpected SSE line {line:?}"
                        );
                    }
                }
                if let Some(data) = data {
                    // The SSE id is the event id, so a client can resume by it.
                    assert_eq!(id.as_deref(), data["id"].as_str(), "id: line");
                    return (kind.expect("an event: line before data:"), data);
                }
            }
        }
    };
    tokio::time::timeout(EVENT_WAIT, read)
        .await
        .unwrap_or_else(|_| panic!("no SSE data within {EVENT_WAIT:?}"))
}

#[actix_rt::test]
async fn events_stream_delivers_poll_events() {
    let qw = Instance::start(settings(&[(Q1, "support"), (Q2, "billing")])).await;
    let mut response = qw
        .client
        .get(qw.url("/api/events"))
        .timeout(EVENT_WAIT + Duration::from_secs(10))
        .send()
        .await
        .expect("GET /api/events");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-cache");

    let (kind, event) = first_sse_frame(&mut response).await;
    assert_eq!(
        kind,
        event["type"].as_str().unwrap(),
        "event name matches the type"
    );
    assert_eq!(event["type"], "poll", "{event}");
    assert!(
        [Q1, Q2].contains(&event["queue_id"].as_str().unwrap()),
        "{event}"
    );
    assert!(!event["id"].as_str().unwrap().is_empty(), "{event}");
    assert!(unix_ms(event["timestamp"].as_str().unwrap()) > 0);
    assert!(event["position"].is_u64(), "{event}");
    qw.handle.shutdown().await;
}

// ---- / -----------------------------------------------------------------------

#[actix_rt::test]
async fn status_page_is_served() {
    let qw = Instance::start(settings(&[(Q1, "support")])).await;
    let (status, content_type, body) = qw.get("/", None).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = String::from_utf8(body).unwrap();
    assert!(
        page.starts_with("<!doctype html>"),
        "{}",
        &page[..page.len().min(80)]
    );
    for hook in [
        "id=\"event-count\"",
        "id=\"login\"",
        "id=\"totals\"",
        "new EventSource(\"api/events\")",
        "\"api/queues?limit=\"",
        "\"?points=\"",
        "\"api/session\"",
    ] {
        assert!(page.contains(hook), "the page lacks {hook}");
    }
    assert!(
        !page.contains("access_token"),
        "the page puts no token into a URL"
    );
    for absolute in ["src=\"http", "href=\"http", "\"/api/"] {
        assert!(
            !page.contains(absolute),
            "the page must be self-contained with relative URLs: {absolute}"
        );
    }
    qw.handle.shutdown().await;
}

// ---- http.auth_token_env -----------------------------------------------------

#[actix_rt::test]
async fn token_guards_the_api_but_not_the_health_checks_or_the_page() {
    const VAR: &str = "QUEUEWATCH_TEST_HTTP_TOKEN_5F3A";
    const TOKEN: &str = "t0ken-for-the-http-test";
    std::env::set_var(VAR, TOKEN);
    let mut s = settings(&[(Q1, "support")]);
    s.http.auth_token_env = Some(VAR.into());
    let mut qw = Instance::start(s).await;
    qw.event("poll", is_poll).await;

    for open in ["/healthz", "/readyz", "/"] {
        let (status, _, body) = qw.get(open, None).await;
        assert_eq!(
            status,
            200,
            "{open} needs no token: {}",
            String::from_utf8_lossy(&body)
        );
    }
    // The page loads without the token (it asks for it), from any Host.
    let (status, _, _) = raw(
        &qw.addr.to_string(),
        "GET / HTTP/1.1\r\nHost: queuewatch.internal\r\nConnection: close\r\n\r\n".into(),
    )
    .await;
    assert_eq!(status, 200);
    let guarded = ["/metrics", "/api/queues", &format!("/api/queues/{Q1}")];
    for path in guarded {
        for wrong in [None, Some("wrong"), Some("t0ken-for-the-http-tes")] {
            let mut request = qw.client.get(qw.url(path));
            if let Some(token) = wrong {
                request = request.bearer_auth(token);
            }
            let mut response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), 401, "{path} with {wrong:?}");
            assert_eq!(
                response.headers().get("www-authenticate").unwrap(),
                "Bearer"
            );
            let body: Value = response.json().await.expect("a JSON 401 body");
            assert_eq!(body["error"], "unauthorized");
        }
        let (status, _, _) = qw.get(path, Some(TOKEN)).await;
        assert_eq!(status, 200, "{path} with the token");
        // The token is not accepted in a URL any more.
        let (status, _, _) = qw.get(&format!("{path}?access_token={TOKEN}"), None).await;
        assert_eq!(status, 401, "{path} with ?access_token=");
    }

    // The event stream: 401 without, or with the token in the query.
    let (status, _, _) = qw
        .get(&format!("/api/events?access_token={TOKEN}"), None)
        .await;
    assert_eq!(status, 401, "?access_token= is refused for the stream too");
    let mut response = qw
        .client
        .get(qw.url("/api/events"))
        .bearer_auth(TOKEN)
        .timeout(EVENT_WAIT + Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        200,
        "the header works for the stream"
    );
    let (_, event) = first_sse_frame(&mut response).await;
    assert_eq!(event["queue_id"], Q1);
    drop(response);

    qw.handle.shutdown().await;
    std::env::remove_var(VAR);
}

/// `POST /api/session` with the body `body` (content type, text) and an
/// optional bearer: status, the `Set-Cookie` header, the body.
async fn post_session(
    qw: &Instance,
    body: Option<(&str, String)>,
    bearer: Option<&str>,
) -> (u16, Option<String>, Vec<u8>) {
    let mut request = qw.client.post(qw.url("/api/session"));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let sent = match body {
        Some((content_type, text)) => {
            request
                .insert_header(("content-type", content_type))
                .send_body(text)
                .await
        }
        None => request.send().await,
    };
    let mut response = sent.expect("POST /api/session");
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(cookies.len() <= 1, "one cookie at most: {cookies:?}");
    let body = response.body().await.unwrap().to_vec();
    (response.status().as_u16(), cookies.into_iter().next(), body)
}

/// The `name=value` of a `Set-Cookie` header and its attributes.
fn cookie_parts(set_cookie: &str) -> (String, Vec<String>) {
    let mut parts = set_cookie.split(';').map(|p| p.trim().to_owned());
    (parts.next().unwrap(), parts.collect())
}

/// The page's exchange: the token (once, in a POST body or header) buys an
/// HttpOnly, SameSite=Strict session cookie that works for every API route
/// and the event stream; a wrong token buys nothing; `DELETE` ends it.
#[actix_rt::test]
async fn session_cookie_is_exchanged_for_the_token() {
    const VAR: &str = "QUEUEWATCH_TEST_HTTP_TOKEN_SESSION_91B4";
    const TOKEN: &str = "s3ssion-exchange-token";
    std::env::set_var(VAR, TOKEN);
    let mut s = settings(&[(Q1, "support")]);
    s.http.auth_token_env = Some(VAR.into());
    let qw = Instance::start(s).await;
    let json = |token: &str| Some(("application/json", json!({ "token": token }).to_string()));

    // Wrong or missing tokens: 401 and no cookie.
    for (body, bearer) in [
        (json("wrong"), None),
        (json(&TOKEN[..TOKEN.len() - 1]), None),
        (json(""), None),
        (None, Some("wrong")),
        (None, None),
        (
            Some(("application/x-www-form-urlencoded", "token=nope".into())),
            None,
        ),
    ] {
        let what = format!("{body:?} / {bearer:?}");
        let (status, cookie, reply) = post_session(&qw, body, bearer).await;
        assert_eq!(status, 401, "{what}: {}", String::from_utf8_lossy(&reply));
        assert_eq!(cookie, None, "{what}");
    }
    let (status, cookie, _) = post_session(&qw, Some(("application/json", "{".into())), None).await;
    assert_eq!((status, cookie), (400, None), "malformed JSON");
    let (status, cookie, _) = post_session(&qw, Some(("text/plain", TOKEN.into())), None).await;
    assert_eq!((status, cookie), (415, None), "an unknown body type");

    // The right token, three ways: each a fresh session.
    let mut sessions = Vec::new();
    for (body, bearer) in [
        (json(TOKEN), None),
        (None, Some(TOKEN)),
        (
            Some((
                "application/x-www-form-urlencoded",
                format!("token={TOKEN}"),
            )),
            None,
        ),
    ] {
        let (status, cookie, reply) = post_session(&qw, body, bearer).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
        let reply: Value = serde_json::from_slice(&reply).unwrap();
        assert_eq!(reply["expires_in_seconds"], 43_200, "{reply}");
        let cookie = cookie.expect("a session cookie");
        let (pair, attributes) = cookie_parts(&cookie);
        let (name, value) = pair.split_once('=').unwrap();
        assert_eq!(name, "queuewatch_session", "{cookie}");
        assert!(value.len() >= 32, "a long random id: {cookie}");
        assert!(!value.contains(TOKEN), "{cookie}");
        for wanted in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
            assert!(
                attributes.iter().any(|a| a == wanted),
                "{wanted} missing: {cookie}"
            );
        }
        assert!(
            !attributes.iter().any(|a| a.eq_ignore_ascii_case("secure")),
            "plain HTTP: no Secure, or the browser never sends it back: {cookie}"
        );
        sessions.push(pair);
    }
    assert_eq!(
        sessions.iter().collect::<HashSet<_>>().len(),
        3,
        "{sessions:?}"
    );

    // The cookie opens every API route and the stream, without the token.
    let session = sessions[0].clone();
    let with_cookie = |path: &str, cookie: &str| {
        qw.client
            .get(qw.url(path))
            .insert_header(("cookie", format!("theme=dark; {cookie}")))
            .timeout(EVENT_WAIT + Duration::from_secs(10))
    };
    for path in ["/api/queues", &format!("/api/queues/{Q1}"), "/metrics"] {
        let response = with_cookie(path, &session).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path} with the cookie");
    }
    let mut stream = with_cookie("/api/events", &session).send().await.unwrap();
    assert_eq!(stream.status().as_u16(), 200, "the stream with the cookie");
    let (_, event) = first_sse_frame(&mut stream).await;
    assert_eq!(event["queue_id"], Q1);
    drop(stream);
    // Bearer still works; a made-up session does not.
    let (status, _, _) = qw.get("/api/queues", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let forged = format!("queuewatch_session={}", "A".repeat(43));
    for cookie in [forged.as_str(), "queuewatch_session=", TOKEN] {
        let response = with_cookie("/api/queues", cookie).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{cookie}");
    }

    // DELETE ends the session and clears the cookie; the others live on.
    let mut response = qw
        .client
        .delete(qw.url("/api/session"))
        .insert_header(("cookie", session.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let cleared = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        cleared.starts_with("queuewatch_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let _ = response.body().await;
    let ended = with_cookie("/api/queues", &session).send().await.unwrap();
    assert_eq!(ended.status().as_u16(), 401, "the ended session");
    let other = with_cookie("/api/queues", &sessions[1])
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 200, "another session");

    qw.handle.shutdown().await;
    std::env::remove_var(VAR);
}

/// Without a configured token there is nothing to exchange.
#[actix_rt::test]
async fn without_a_token_there_is_no_session_to_make() {
    let qw = Instance::start(settings(&[(Q1, "support")])).await;
    let (status, cookie, body) = post_session(
        &qw,
        Some(("application/json", r#"{"token":"x"}"#.into())),
        None,
    )
    .await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    assert_eq!(cookie, None);
    qw.handle.shutdown().await;
}

// ---- methods, Host, bearer scheme ---------------------------------------------

/// Every GET route of the API (with an id for the detail route).
fn get_routes() -> [String; 7] {
    [
        "/".to_owned(),
        "/healthz".to_owned(),
        "/readyz".to_owned(),
        "/metrics".to_owned(),
        "/api/queues".to_owned(),
        format!("/api/queues/{Q1}"),
        "/api/events".to_owned(),
    ]
}

/// One hand-written HTTP/1.1 request over loopback; returns the status line's
/// code, the headers (lowercase names) and the body. The server closes the
/// connection after the answer (`Connection: close`).
async fn raw(addr: &str, request: String) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await.unwrap();
        bytes
    };
    let bytes = tokio::time::timeout(Duration::from_secs(20), work)
        .await
        .unwrap_or_else(|_| panic!("no complete answer to {request:?}"));
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&bytes)));
    let head = String::from_utf8_lossy(&bytes[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, bytes[split + 4..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[actix_rt::test]
async fn head_answers_on_every_get_route() {
    let s = settings(&[(Q1, "support")]);
    let mut qw = Instance::start(s).await;
    let addr = qw.addr.to_string();
    qw.event("poll", is_poll).await;
    for path in get_routes() {
        let (status, headers, body) = raw(
            &addr,
            format!("HEAD {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status, 200, "HEAD {path}");
        assert!(body.is_empty(), "HEAD {path} sent a body");
        let content_type = header(&headers, "content-type").unwrap_or_default();
        if path != "/api/events" {
            let (get_status, get_type, get_body) = qw.get(&path, None).await;
            assert_eq!(
                (status, content_type),
                (get_status, get_type.as_str()),
                "{path}"
            );
            if path != "/metrics" && path != "/readyz" && !path.starts_with("/api/") {
                // A fixed body: HEAD announces its length.
                assert_eq!(
                    header(&headers, "content-length"),
                    Some(get_body.len().to_string().as_str()),
                    "{path}"
                );
            }
        } else {
            assert_eq!(content_type, "text/event-stream");
        }
    }
    qw.handle.shutdown().await;
}

#[actix_rt::test]
async fn wrong_methods_get_405_with_allow() {
    let s = settings(&[(Q1, "support")]);
    let qw = Instance::start(s).await;
    let addr = qw.addr.to_string();
    for path in get_routes() {
        for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            let (status, headers, _) = raw(
                &addr,
                format!(
                    "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                ),
            )
            .await;
            assert_eq!(status, 405, "{method} {path}");
            let allow =
                header(&headers, "allow").unwrap_or_else(|| panic!("{method} {path}: no Allow"));
            let mut allowed: Vec<&str> = allow.split(',').map(str::trim).collect();
            allowed.sort_unstable();
            assert_eq!(allowed, ["GET", "HEAD"], "{method} {path}");
        }
    }
    // The session route is a POST (and DELETE) route.
    for method in ["GET", "HEAD", "PUT", "PATCH", "OPTIONS"] {
        let (status, headers, _) = raw(
            &addr,
            format!(
                "{method} /api/session HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        assert_eq!(status, 405, "{method} /api/session");
        let allow = header(&headers, "allow").unwrap_or_else(|| panic!("{method}: no Allow"));
        let mut allowed: Vec<&str> = allow.split(',').map(str::trim).collect();
        allowed.sort_unstable();
        assert_eq!(allowed, ["DELETE", "POST"], "{method} /api/session");
    }
    // Unknown paths stay 404.
    let (status, _, _) = raw(
        &addr,
        format!("GET /nope HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 404);
    qw.handle.shutdown().await;
}

#[actix_rt::test]
async fn without_a_token_only_local_host_names_are_answered() {
    let s = settings(&[(Q1, "support")]);
    let qw = Instance::start(s).await;
    let bind = qw.addr;
    let addr = bind.to_string();
    let guarded = [
        "/",
        "/metrics",
        "/api/queues",
        &format!("/api/queues/{Q1}"),
        "/api/events",
    ];
    let allowed = [
        addr.clone(),
        "127.0.0.1".to_owned(),
        "localhost".to_owned(),
        "LOCALHOST:80".to_owned(),
        "localhost.:9464".to_owned(),
        "[::1]".to_owned(),
        "[::1]:1234".to_owned(),
        "127.0.0.2:9".to_owned(),
    ];
    for path in guarded {
        for host in &allowed {
            let (status, _, _) = raw(
                &addr,
                format!("HEAD {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
            )
            .await;
            assert_eq!(status, 200, "{path} with Host {host}");
        }
        for host in [
            format!("evil.example:{}", bind.port()),
            "evil.example".to_owned(),
            "localhost.evil.example".to_owned(),
            "127.0.0.1.nip.io".to_owned(),
            "10.1.2.3".to_owned(),
            "[::1".to_owned(),
            "localhost:http".to_owned(),
            String::new(),
        ] {
            let (status, headers, body) = raw(
                &addr,
                format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
            )
            .await;
            assert_eq!(status, 421, "{path} with Host {host:?}");
            assert!(header(&headers, "content-type")
                .unwrap()
                .starts_with("application/json"));
            let body: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["error"], "misdirected_request");
        }
        // HTTP/1.0 without any Host header.
        let (status, _, _) = raw(&addr, format!("GET {path} HTTP/1.0\r\n\r\n")).await;
        assert_eq!(status, 421, "{path} without Host");
    }
    // The session route too (though without a token it has nothing to give).
    let (status, _, _) = raw(
        &addr,
        "POST /api/session HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
    )
    .await;
    assert_eq!(status, 421, "POST /api/session with a foreign Host");
    // The health checks answer anyone.
    for path in ["/healthz", "/readyz"] {
        let (status, _, _) = raw(
            &addr,
            format!("GET {path} HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(status == 200 || status == 503, "{path}: {status}");
    }
    qw.handle.shutdown().await;
}

#[actix_rt::test]
async fn bearer_scheme_is_case_insensitive_and_the_token_exact() {
    const VAR: &str = "QUEUEWATCH_TEST_HTTP_TOKEN_SCHEME_7C21";
    const TOKEN: &str = "s3cret-scheme-test-token";
    std::env::set_var(VAR, TOKEN);
    let mut s = settings(&[(Q1, "support")]);
    s.http.auth_token_env = Some(VAR.into());
    let qw = Instance::start(s).await;
    let addr = qw.addr.to_string();
    let ask = |authorization: String, host: &'static str| {
        let addr = addr.clone();
        async move {
            raw(
                &addr,
                format!(
                    "GET /api/queues HTTP/1.1\r\nHost: {host}\r\nAuthorization: {authorization}\r\nConnection: close\r\n\r\n"
                ),
            )
            .await
            .0
        }
    };
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        assert_eq!(
            ask(format!("{scheme} {TOKEN}"), "127.0.0.1").await,
            200,
            "{scheme}"
        );
    }
    assert_eq!(ask(format!("Bearer   {TOKEN}  "), "127.0.0.1").await, 200);
    // With a token the Host does not matter: the token is the guard.
    assert_eq!(
        ask(format!("bearer {TOKEN}"), "queuewatch.internal").await,
        200
    );
    for wrong in [
        format!("Bearer {TOKEN}x"),
        format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]),
        format!("Bearer {}", TOKEN.to_uppercase()),
        format!("Basic {TOKEN}"),
        format!("Bearer{TOKEN}"),
        TOKEN.to_owned(),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        format!("Bearer {}", "x".repeat(4096)),
    ] {
        assert_eq!(ask(wrong.clone(), "127.0.0.1").await, 401, "{wrong:.40}");
    }
    qw.handle.shutdown().await;
    std::env::remove_var(VAR);
}
