#![cfg(feature = "simulator")]
//! The Genesys simulator over real loopback HTTP, seen by a plain awc client.
//! Each test's simulator stops when the test ends, passed or failed
//! (`support::sim::RunningSim`).

mod support;

use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use awc::error::{PayloadError, SendRequestError};
use awc::http::header::HeaderMap;
use awc::Client;
use futures_util::Stream;
use queuewatch::simulator::{
    Fault, FaultRule, FaultSet, SimStats, Simulator, SimulatorConfig, STATUS_DROPPED,
};
use serde_json::{json, Value};
use support::sim::RunningSim;

const Q1: &str = "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10";
const Q2: &str = "5d1e0c2a-8b7f-4e0d-9f3a-2c4b6d8e0f12";
const Q3: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
const UNKNOWN: &str = "00000000-0000-4000-8000-000000000000";

async fn start(config: SimulatorConfig) -> RunningSim {
    support::sim::start(config).await
}

async fn start_default() -> RunningSim {
    start(SimulatorConfig::with_queues([Q1, Q2, Q3])).await
}

fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(5)).finish()
}

/// Status, headers and raw body of a response.
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!("not JSON ({err}): {}", String::from_utf8_lossy(&self.body))
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn header_u64(&self, name: &str) -> u64 {
        self.header(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("numeric header {name}"))
    }
}

async fn read<S>(sent: Result<awc::ClientResponse<S>, SendRequestError>) -> Reply
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    let mut response = sent.expect("a response");
    let body = response.body().await.expect("a body");
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: body.to_vec(),
    }
}

async fn request_token(sim: &Simulator) -> Reply {
    read(
        client()
            .post(format!("{}/oauth/token", sim.base_url()))
            .basic_auth("simulated-client", "simulated-secret")
            .send_form(&[("grant_type", "client_credentials")])
            .await,
    )
    .await
}

async fn token(sim: &Simulator) -> String {
    let reply = request_token(sim).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

fn position_path(queue_id: &str) -> String {
    format!("/api/v2/guest/messaging/queues/{queue_id}/position")
}

fn wait_path(queue_id: &str) -> String {
    format!("/api/v2/routing/queues/{queue_id}/mediatypes/message/estimatedwaittime")
}

const OBSERVATIONS: &str = "/api/v2/analytics/queues/observations/query";

async fn get(sim: &Simulator, path: &str, token: &str) -> Reply {
    read(
        client()
            .get(format!("{}{path}", sim.base_url()))
            .bearer_auth(token)
            .send()
            .await,
    )
    .await
}

fn observation_query(ids: &[&str]) -> Value {
    let predicates: Vec<Value> = ids
        .iter()
        .map(|id| json!({"type":"dimension","dimension":"queueId","operator":"matches","value":id}))
        .collect();
    json!({
        "filter": {"type": "or", "predicates": predicates},
        "metrics": ["oWaiting", "oInteracting", "oOnQueueUsers"],
    })
}

async fn observe(sim: &Simulator, token: &str, body: &Value) -> Reply {
    read(
        client()
            .post(format!("{}{OBSERVATIONS}", sim.base_url()))
            .bearer_auth(token)
            .send_json(body)
            .await,
    )
    .await
}

fn assert_genesys_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(
        reply.status,
        status,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let body = reply.json();
    assert_eq!(body["status"], status);
    assert_eq!(body["code"], code);
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(reply.header("inin-correlation-id").is_some());
}

// ---------------------------------------------------------------- OAuth

#[actix_rt::test]
async fn token_with_basic_and_form() {
    let sim = start_default().await;
    let reply = request_token(&sim).await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 86_400);
    let token = body["access_token"].as_str().expect("token");
    assert!(token.len() >= 32);
    assert_ne!(token, self::token(&sim).await, "tokens are unique");
}

#[actix_rt::test]
async fn token_request_with_json_body_is_refused() {
    let sim = start_default().await;
    let reply = read(
        client()
            .post(format!("{}/oauth/token", sim.base_url()))
            .basic_auth("simulated-client", "simulated-secret")
            .send_json(&json!({"grant_type": "client_credentials", "scope": "analytics"}))
            .await,
    )
    .await;
    assert_eq!(reply.status, 400);
    let body = reply.json();
    assert_eq!(body["error"], "invalid_request");
    assert!(body["description"].is_string() && body["error_description"].is_string());
}

#[actix_rt::test]
async fn token_request_needs_the_right_basic_credentials() {
    let sim = start_default().await;
    let url = format!("{}/oauth/token", sim.base_url());
    let form = [("grant_type", "client_credentials")];
    let missing = read(client().post(&url).send_form(&form).await).await;
    let wrong = read(
        client()
            .post(&url)
            .basic_auth("simulated-client", "wrong")
            .send_form(&form)
            .await,
    )
    .await;
    for reply in [missing, wrong] {
        assert_eq!(reply.status, 401);
        assert_eq!(reply.json()["error"], "invalid_client");
        assert!(!String::from_utf8_lossy(&reply.body).contains("simulated-secret"));
    }
    let grant = read(
        client()
            .post(&url)
            .basic_auth("simulated-client", "simulated-secret")
            .send_form(&[("grant_type", "password")])
            .await,
    )
    .await;
    assert_eq!(grant.status, 400);
    assert_eq!(grant.json()["error"], "unsupported_grant_type");
}

#[actix_rt::test]
async fn token_requests_are_rate_limited_per_client() {
    let sim = start(SimulatorConfig {
        token_rate_limit_per_minute: Some(2),
        ..SimulatorConfig::with_queues([Q1])
    })
    .await;
    token(&sim).await;
    token(&sim).await;
    let reply = request_token(&sim).await;
    assert_genesys_error(&reply, 429, "too.many.requests.retry.after");
    assert!(reply.header_u64("retry-after") >= 1);
}

// ---------------------------------------------------------------- bearer

#[actix_rt::test]
async fn api_routes_need_a_valid_bearer_token() {
    let sim = start_default().await;
    let url = format!("{}{}", sim.base_url(), position_path(Q1));
    let none = read(client().get(&url).send().await).await;
    assert_genesys_error(&none, 401, "bad.credentials");
    assert_genesys_error(
        &get(&sim, &position_path(Q1), "made-up").await,
        401,
        "bad.credentials",
    );
    let basic = read(
        client()
            .get(&url)
            .basic_auth("simulated-client", "simulated-secret")
            .send()
            .await,
    )
    .await;
    assert_genesys_error(&basic, 401, "bad.credentials");
    let observed = observe(&sim, "made-up", &observation_query(&[Q1])).await;
    assert_genesys_error(&observed, 401, "bad.credentials");
}

#[actix_rt::test]
async fn expired_and_revoked_tokens_get_401() {
    let sim = start(SimulatorConfig {
        token_lifetime: Duration::ZERO,
        ..SimulatorConfig::with_queues([Q1])
    })
    .await;
    let reply = request_token(&sim).await;
    assert_eq!(reply.json()["expires_in"], 0);
    let expired = reply.json()["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_genesys_error(
        &get(&sim, &position_path(Q1), &expired).await,
        401,
        "bad.credentials",
    );
    sim.stop().await;

    let sim = start_default().await;
    let token = token(&sim).await;
    assert_eq!(get(&sim, &position_path(Q1), &token).await.status, 200);
    sim.revoke_tokens();
    assert_genesys_error(
        &get(&sim, &position_path(Q1), &token).await,
        401,
        "bad.credentials",
    );

    let token = self::token(&sim).await;
    let revoked = read(
        client()
            .post(format!("{}/simulator/revoke-tokens", sim.base_url()))
            .send()
            .await,
    )
    .await;
    assert_eq!(revoked.json()["revoked"], 1);
    assert_eq!(get(&sim, &position_path(Q1), &token).await.status, 401);
}

// ---------------------------------------------------------------- data endpoints

#[actix_rt::test]
async fn guest_position_shape() {
    let sim = start_default().await;
    let token = token(&sim).await;
    let reply = get(&sim, &position_path(Q2), &token).await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["queueId"], Q2);
    assert!(body["position"].is_u64());
    assert!(body["estimatedWaitTime"].is_number());
    let status = body["status"].as_str().expect("status");
    assert!(["waiting", "connecting"].contains(&status));
    assert_eq!(reply.header_u64("inin-ratelimit-count"), 1);
    assert_eq!(reply.header_u64("inin-ratelimit-allowed"), 300);
    assert!(reply.header_u64("inin-ratelimit-reset") <= 60);
    assert!(reply.header("inin-correlation-id").is_some());
}

#[actix_rt::test]
async fn estimated_wait_time_shape() {
    let sim = start_default().await;
    let token = token(&sim).await;
    let reply = get(&sim, &wait_path(Q1), &token).await;
    assert_eq!(reply.status, 200);
    let results = reply.json()["results"].clone();
    assert_eq!(results.as_array().map(Vec::len), Some(1));
    assert_eq!(results[0]["intent"], "MESSAGE");
    assert_eq!(results[0]["formula"], "BEST");
    assert!(results[0]["estimatedWaitTimeSeconds"].is_u64());
}

#[actix_rt::test]
async fn unknown_queues_get_404() {
    let sim = start_default().await;
    let token = token(&sim).await;
    assert_genesys_error(
        &get(&sim, &position_path(UNKNOWN), &token).await,
        404,
        "not.found",
    );
    assert_genesys_error(
        &get(&sim, &wait_path(UNKNOWN), &token).await,
        404,
        "not.found",
    );
    assert_genesys_error(
        &get(&sim, "/api/v2/nothing/here", &token).await,
        404,
        "not.found",
    );
    sim.remove_queue(Q1);
    assert_eq!(get(&sim, &position_path(Q1), &token).await.status, 404);
    sim.add_queue(UNKNOWN);
    assert_eq!(get(&sim, &position_path(UNKNOWN), &token).await.status, 200);
}

#[actix_rt::test]
async fn observations_shape() {
    let sim = start_default().await;
    let token = token(&sim).await;
    let reply = observe(&sim, &token, &observation_query(&[Q1, Q2, Q3, UNKNOWN])).await;
    assert_eq!(reply.status, 200);
    let results = reply.json()["results"]
        .as_array()
        .cloned()
        .expect("results");
    let mut seen: Vec<&str> = results
        .iter()
        .map(|r| r["group"]["queueId"].as_str().expect("queueId"))
        .collect();
    seen.sort_unstable();
    seen.dedup();
    let mut expected = vec![Q1, Q2, Q3];
    expected.sort_unstable();
    assert_eq!(seen, expected, "unknown queue left out");
    // As in Genesys: per queue, one group with mediaType for the media
    // metrics and one without for the user metrics.
    assert_eq!(results.len(), 6);
    for result in &results {
        let data = result["data"].as_array().expect("data");
        if result["group"].get("mediaType").is_some() {
            assert_eq!(result["group"]["mediaType"], "message");
            let waiting: Vec<&Value> = data.iter().filter(|d| d["metric"] == "oWaiting").collect();
            assert_eq!(waiting.len(), 1);
            assert!(waiting[0]["stats"]["count"].is_u64());
        } else {
            let qualifiers: Vec<&str> = data
                .iter()
                .filter(|d| d["metric"] == "oOnQueueUsers")
                .map(|d| d["qualifier"].as_str().expect("qualifier"))
                .collect();
            assert_eq!(qualifiers, ["IDLE", "INTERACTING"]);
        }
    }

    // Results come in no promised order: over a few calls, more than one order shows up.
    let mut orders = std::collections::HashSet::new();
    for _ in 0..12 {
        let reply = observe(&sim, &token, &observation_query(&[Q1, Q2, Q3])).await;
        let order: Vec<String> = reply.json()["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["group"]["queueId"].to_string())
            .collect();
        orders.insert(order);
    }
    assert!(orders.len() > 1, "results are shuffled");

    let single = json!({
        "filter": {"type": "and", "predicates": [
            {"type": "dimension", "dimension": "queueId", "operator": "matches", "value": Q3}
        ]},
        "metrics": ["oWaiting"],
    });
    let reply = observe(&sim, &token, &single).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["results"][0]["group"]["queueId"], Q3);
}

#[actix_rt::test]
async fn bad_observation_queries_get_400() {
    let sim = start(SimulatorConfig {
        rate_limit_per_minute: None,
        ..SimulatorConfig::with_queues([Q1])
    })
    .await;
    let token = token(&sim).await;
    let ids: Vec<String> = (0..101).map(|i| format!("queue-{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_genesys_error(
        &observe(&sim, &token, &observation_query(&refs)).await,
        400,
        "bad.request",
    );
    assert_eq!(
        observe(&sim, &token, &observation_query(&refs[..100]))
            .await
            .status,
        200
    );
    for body in [
        json!({"metrics": ["oWaiting"]}),
        json!([1, 2]),
        json!({"filter": {"type": "or"}}),
    ] {
        assert_genesys_error(&observe(&sim, &token, &body).await, 400, "bad.request");
    }
    let not_json = read(
        client()
            .post(format!("{}{OBSERVATIONS}", sim.base_url()))
            .bearer_auth(&token)
            .content_type("application/json")
            .send_body("{\"filter\":")
            .await,
    )
    .await;
    assert_genesys_error(&not_json, 400, "bad.request");
}

// ---------------------------------------------------------------- rate limit

#[actix_rt::test]
async fn sixth_request_over_a_limit_of_five_gets_429() {
    let sim = start(SimulatorConfig {
        rate_limit_per_minute: Some(5),
        ..SimulatorConfig::with_queues([Q1])
    })
    .await;
    let token = token(&sim).await;
    for count in 1..=5 {
        let reply = get(&sim, &position_path(Q1), &token).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header_u64("inin-ratelimit-count"), count);
        assert_eq!(reply.header_u64("inin-ratelimit-allowed"), 5);
    }
    let reply = get(&sim, &position_path(Q1), &token).await;
    assert_genesys_error(&reply, 429, "too.many.requests.retry.after");
    let retry_after = reply.header_u64("retry-after");
    assert!((1..=60).contains(&retry_after));
    let body = reply.json();
    assert_eq!(
        body["message"],
        format!("Rate limit exceeded the maximum. Retry the request in [{retry_after}] seconds")
    );
    assert_eq!(
        body["contextId"],
        reply.header("inin-correlation-id").expect("id")
    );
    for key in ["messageParams", "details", "errors"] {
        assert!(body.get(key).is_some(), "{key}");
    }
    assert_eq!(reply.header_u64("inin-ratelimit-count"), 5);
    assert_eq!(reply.header_u64("inin-ratelimit-allowed"), 5);
    assert!((1..=60).contains(&reply.header_u64("inin-ratelimit-reset")));

    // Another token has its own window.
    let other = self::token(&sim).await;
    assert_eq!(get(&sim, &wait_path(Q1), &other).await.status, 200);
    assert_eq!(sim.stats().rate_limited, 1);
}

#[actix_rt::test]
async fn allowance_can_be_lowered_or_turned_off() {
    let sim = start_default().await;
    let token = token(&sim).await;
    sim.set_advertised_allowed(Some(2));
    for _ in 0..2 {
        let reply = get(&sim, &position_path(Q1), &token).await;
        assert_eq!(reply.header_u64("inin-ratelimit-allowed"), 2);
    }
    assert_eq!(get(&sim, &position_path(Q1), &token).await.status, 429);
    sim.set_advertised_allowed(None);
    sim.set_rate_limit(None);
    let reply = get(&sim, &position_path(Q1), &token).await;
    assert_eq!(reply.status, 200);
    assert!(reply.header("inin-ratelimit-count").is_none());
    assert!(reply.header("inin-ratelimit-allowed").is_none());
    assert!(reply.header("inin-correlation-id").is_some());
}

// ---------------------------------------------------------------- faults

#[actix_rt::test]
async fn rate_limit_fault_is_a_genesys_429() {
    let sim = start_default().await;
    let token = token(&sim).await;
    sim.faults().push(FaultRule::always(Fault::RateLimit {
        retry_after_secs: 42,
    }));
    let reply = get(&sim, &position_path(Q1), &token).await;
    assert_genesys_error(&reply, 429, "too.many.requests.retry.after");
    assert_eq!(reply.header_u64("retry-after"), 42);
    assert!(reply.json()["message"]
        .as_str()
        .is_some_and(|m| m.contains("[42]")));
    assert!(reply.header("inin-ratelimit-allowed").is_some());
    assert_eq!(sim.stats().rate_limited, 1);
}

#[actix_rt::test]
async fn server_error_and_status_faults() {
    let sim = start_default().await;
    let token = token(&sim).await;
    sim.faults()
        .push(FaultRule::times(Fault::ServerError { status: 503 }, 1));
    sim.faults()
        .push(FaultRule::times(Fault::Status { status: 403 }, 1));
    sim.faults()
        .push(FaultRule::times(Fault::ServerError { status: 502 }, 1));
    assert_genesys_error(
        &get(&sim, &wait_path(Q1), &token).await,
        503,
        "service.unavailable",
    );
    assert_genesys_error(
        &get(&sim, &wait_path(Q1), &token).await,
        403,
        "not.authorized",
    );
    let observed = observe(&sim, &token, &observation_query(&[Q1])).await;
    assert_genesys_error(&observed, 502, "bad.gateway");
    assert_eq!(get(&sim, &wait_path(Q1), &token).await.status, 200);
}

#[actix_rt::test]
async fn slow_fault_delays_a_correct_answer() {
    let sim = start_default().await;
    let token = token(&sim).await;
    sim.faults()
        .push(FaultRule::times(Fault::Slow { delay_ms: 400 }, 1));
    let started = Instant::now();
    let reply = get(&sim, &position_path(Q1), &token).await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["queueId"], Q1);

    sim.faults()
        .push(FaultRule::times(Fault::Slow { delay_ms: 1_000 }, 1));
    let timed_out = client()
        .get(format!("{}{}", sim.base_url(), position_path(Q1)))
        .bearer_auth(&token)
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(matches!(timed_out, Err(SendRequestError::Timeout)));
}

#[actix_rt::test]
async fn drop_connection_fault_gives_no_response() {
    let sim = start_default().await;
    let token = token(&sim).await;
    sim.faults()
        .push(FaultRule::times(Fault::DropConnection, 2));
    let dropped = client()
        .get(format!("{}{}", sim.base_url(), position_path(Q1)))
        .bearer_auth(&token)
        .send()
        .await;
    // awc reports `Connect(Disconnected)`: the connection closed before a response head.
    assert!(
        matches!(dropped, Err(ref err) if !matches!(err, SendRequestError::Timeout)),
        "expected a connection error"
    );
    let dropped = client()
        .post(format!("{}{OBSERVATIONS}", sim.base_url()))
        .bearer_auth(&token)
        .send_json(&observation_query(&[Q1]))
        .await;
    assert!(dropped.is_err(), "expected a connection error");
    assert_eq!(get(&sim, &position_path(Q1), &token).await.status, 200);
    assert_eq!(sim.stats().dropped_connections, 2);
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, STATUS_DROPPED, STATUS_DROPPED, 200]);
}

#[actix_rt::test]
async fn malformed_body_fault_is_not_json() {
    let sim = start_default().await;
    let token = token(&sim).await;
    sim.faults().push(FaultRule::times(Fault::MalformedBody, 1));
    let reply = get(&sim, &position_path(Q1), &token).await;
    assert_eq!(reply.status, 200);
    assert!(serde_json::from_slice::<Value>(&reply.body).is_err());
}

#[actix_rt::test]
async fn wrong_queue_id_fault_names_another_queue() {
    let sim = start_default().await;
    let token = token(&sim).await;
    sim.faults().push(FaultRule::times(Fault::WrongQueueId, 2));
    let reply = get(&sim, &position_path(Q1), &token).await;
    assert_eq!(reply.status, 200);
    let named = reply.json()["queueId"]
        .as_str()
        .expect("queueId")
        .to_owned();
    assert_ne!(named, Q1);
    let observed = observe(&sim, &token, &observation_query(&[Q1, Q2])).await;
    for result in observed.json()["results"].as_array().expect("results") {
        let id = &result["group"]["queueId"];
        assert!(id != Q1 && id != Q2);
    }
}

#[actix_rt::test]
async fn token_endpoint_faults() {
    let sim = start_default().await;
    sim.faults()
        .push(FaultRule::times(Fault::TokenOutage { status: 503 }, 1));
    sim.faults()
        .push(FaultRule::times(Fault::TokenSlow { delay_ms: 300 }, 1));
    let reply = request_token(&sim).await;
    assert_eq!(reply.status, 503);
    assert!(reply.json()["error"].is_string());
    let started = Instant::now();
    assert_eq!(request_token(&sim).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Token faults leave the API alone.
    let token = token(&sim).await;
    sim.faults()
        .push(FaultRule::always(Fault::TokenOutage { status: 500 }));
    assert_eq!(get(&sim, &position_path(Q1), &token).await.status, 200);
    assert_eq!(request_token(&sim).await.status, 500);
}

#[actix_rt::test]
async fn counted_fault_applies_exactly_twice() {
    let sim = start_default().await;
    let token = token(&sim).await;
    sim.faults()
        .push(FaultRule::times(Fault::ServerError { status: 500 }, 2));
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(&sim, &position_path(Q1), &token).await.status);
    }
    assert_eq!(statuses, [500, 500, 200, 200]);
    assert_eq!(sim.faults().current(), FaultSet::default());
}

#[actix_rt::test]
async fn queue_scoped_fault_hits_only_that_queue() {
    let sim = start_default().await;
    let token = token(&sim).await;
    sim.faults()
        .push(FaultRule::always(Fault::Status { status: 404 }).for_queue(Q2));
    assert_eq!(get(&sim, &position_path(Q1), &token).await.status, 200);
    assert_eq!(get(&sim, &position_path(Q2), &token).await.status, 404);
    assert_eq!(
        observe(&sim, &token, &observation_query(&[Q1, Q3]))
            .await
            .status,
        200
    );
    assert_eq!(
        observe(&sim, &token, &observation_query(&[Q1, Q2]))
            .await
            .status,
        404
    );
}

// ---------------------------------------------------------------- admin, log, stats

#[actix_rt::test]
async fn admin_routes_set_and_clear_faults() {
    let sim = start_default().await;
    let token = token(&sim).await;
    let url = format!("{}/simulator/faults", sim.base_url());
    let set = json!({"rules": [{"fault": {"kind": "server_error", "status": 502}, "queue_id": Q1, "remaining": 1}]});
    let put = read(client().put(&url).send_json(&set).await).await;
    assert_eq!(put.status, 200);
    assert_eq!(put.json(), set);
    let expected = FaultSet {
        rules: vec![FaultRule::times(Fault::ServerError { status: 502 }, 1).for_queue(Q1)],
    };
    assert_eq!(sim.faults().current(), expected);
    let listed = read(client().get(&url).send().await).await;
    assert_eq!(
        serde_json::from_value::<FaultSet>(listed.json()).expect("fault set"),
        expected
    );

    assert_eq!(get(&sim, &position_path(Q1), &token).await.status, 502);

    read(
        client()
            .put(&url)
            .send_json(&json!({"rules": [{"fault": {"kind": "drop_connection"}}]}))
            .await,
    )
    .await;
    let cleared = read(client().delete(&url).send().await).await;
    assert_eq!(cleared.json(), json!({"rules": []}));
    assert_eq!(get(&sim, &position_path(Q1), &token).await.status, 200);

    let bad = read(
        client()
            .put(&url)
            .send_json(&json!({"rules": [{"fault": {"kind": "nope"}}]}))
            .await,
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(sim.faults().current(), FaultSet::default());

    let stats = read(
        client()
            .get(format!("{}/simulator/stats", sim.base_url()))
            .send()
            .await,
    )
    .await;
    let stats: SimStats = serde_json::from_value(stats.json()).expect("stats");
    assert_eq!(stats, sim.stats());
    assert_eq!(stats.token_requests, 1);
    assert_eq!(stats.api_requests, 2);
    assert_eq!(stats.by_status.get(&502), Some(&1));
    assert_eq!(stats.by_status.get(&200), Some(&2));
}

#[actix_rt::test]
async fn requests_are_logged() {
    let sim = start(SimulatorConfig {
        workers: 2,
        ..SimulatorConfig::with_queues([Q1, Q2])
    })
    .await;
    let token = token(&sim).await;
    get(&sim, &position_path(Q1), &token).await;
    observe(&sim, &token, &observation_query(&[Q2, Q1])).await;
    get(&sim, &wait_path(UNKNOWN), "bogus").await;
    let log = sim.requests();
    assert_eq!(log.len(), 4);
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str()),
        ("POST", "/oauth/token")
    );
    assert_eq!(log[0].token.as_deref(), Some(token.as_str()));
    assert_eq!(log[1].path, position_path(Q1));
    assert_eq!(log[1].queue_ids, [Q1]);
    assert_eq!(log[1].token.as_deref(), Some(token.as_str()));
    assert_eq!(log[2].queue_ids, [Q2, Q1]);
    assert_eq!((log[2].method.as_str(), log[2].status), ("POST", 200));
    assert_eq!(log[3].queue_ids, [UNKNOWN]);
    assert_eq!(
        (log[3].token.as_deref(), log[3].status),
        (Some("bogus"), 401)
    );
    assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
}

#[actix_rt::test]
async fn stopped_simulator_refuses_connections() {
    let sim = start_default().await;
    let url = sim.base_url();
    assert!(url.starts_with("http://127.0.0.1:"));
    assert_eq!(url, format!("http://{}", sim.addr()));
    sim.stop().await;
    let refused = Client::default()
        .get(format!("{url}/simulator/stats"))
        .send()
        .await;
    assert!(refused.is_err());
}
