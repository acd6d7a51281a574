//! The REST side: channels, subscriptions, limits, faults, the request log.

use awc::http::Method;
use serde_json::{json, Value};

use super::*;
use crate::simulator::{Fault, FaultRule};

#[actix_rt::test]
async fn channels_are_created_and_subscribed() {
    let org = Org::start(config(&["q1", "q2"])).await;
    let (status, _, body) = org
        .call(Method::POST, "/api/v2/notifications/channels", None)
        .await;
    assert_eq!(status, 200);
    let id = body["id"].as_str().expect("id");
    let addr = org.sim.addr();
    assert_eq!(body["connectUri"], format!("ws://{addr}/channels/{id}"));
    let expires = body["expires"].as_str().expect("expires");
    let expires = humantime::parse_rfc3339(expires).expect("RFC 3339");
    let lifetime = expires
        .duration_since(std::time::SystemTime::now())
        .expect("in the future");
    assert!(lifetime > Duration::from_secs(86_000), "{lifetime:?}");
    assert_eq!(org.head(id).await, 200);
    assert_eq!(org.head("no-such-channel").await, 404);

    let (status, body) = org.subscriptions(Method::PUT, id, &["q1", "nowhere"]).await;
    assert_eq!((status, entities(&body)), (200, vec![topic("q1")]));
    let (status, body) = org.subscriptions(Method::POST, id, &["q2"]).await;
    assert_eq!(
        (status, entities(&body)),
        (200, vec![topic("q1"), topic("q2")])
    );
    let (_, body) = org.subscriptions(Method::GET, id, &[]).await;
    assert_eq!(entities(&body).len(), 2);
    let (status, body) = org.subscriptions(Method::DELETE, id, &[]).await;
    assert_eq!((status, entities(&body)), (200, Vec::<String>::new()));

    let (status, body) = org.subscriptions(Method::GET, "no-such-channel", &[]).await;
    assert_eq!((status, &body["code"]), (404, &json!("not.found")));
    let path = format!("/api/v2/notifications/channels/{id}/subscriptions");
    for bad in [
        json!({"id": topic("q1")}),
        json!([{"name": "x"}]),
        json!([{"id": "v2.users.u.presence"}]),
    ] {
        let (status, _, body) = org.call(Method::PUT, &path, Some(bad.clone())).await;
        assert_eq!(
            (status, &body["code"]),
            (400, &json!("bad.request")),
            "{bad}"
        );
    }
    let info = org.sim.channels();
    assert_eq!(info.len(), 1);
    assert_eq!(
        (info[0].id.as_str(), info[0].topics, info[0].connected),
        (id, 0, false)
    );

    // Without a bearer token: 401.
    let response = org
        .client
        .post(org.url("/api/v2/notifications/channels"))
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status().as_u16(), 401);
    org.stop().await;
}

#[actix_rt::test]
async fn more_than_a_thousand_topics_are_refused_and_change_nothing() {
    let org = Org::start(config(&["q1", "q2"])).await;
    let (id, _) = org.channel().await;
    org.subscriptions(Method::PUT, &id, &["q1", "q2"]).await;
    let many: Vec<String> = (0..1_001).map(|i| format!("queue-{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let (status, body) = org.subscriptions(Method::PUT, &id, &many).await;
    assert_eq!(status, 400);
    assert_eq!(
        (&body["code"], &body["status"]),
        (&json!("bad.request"), &json!(400))
    );
    assert!(
        body["message"].as_str().is_some_and(|m| m.contains("1000")),
        "{body}"
    );
    let (status, _) = org.subscriptions(Method::POST, &id, &many[..999]).await;
    assert_eq!(status, 400, "2 + 999 > 1000");
    let (_, body) = org.subscriptions(Method::GET, &id, &[]).await;
    assert_eq!(entities(&body), vec![topic("q1"), topic("q2")], "unchanged");
    let (status, _) = org.subscriptions(Method::PUT, &id, &many[..1_000]).await;
    assert_eq!(status, 200, "exactly 1000 is fine");
    org.stop().await;
}

#[actix_rt::test]
async fn the_21st_channel_evicts_the_least_recently_used_without_a_socket() {
    let org = Org::start(config(&["q1"])).await;
    let mut channels = Vec::new();
    for _ in 0..20 {
        channels.push(org.channel().await);
    }
    // The oldest has a socket; the second oldest is the LRU without one,
    // unless used: subscribe on it, so the third is.
    let mut socket = connect(&channels[0].1).await;
    org.subscriptions(Method::PUT, &channels[1].0, &["q1"])
        .await;
    let (newest, _) = org.channel().await;
    assert_eq!(org.head(&channels[2].0).await, 404, "evicted");
    for (id, _) in channels.iter().take(2).chain(channels.iter().skip(3)) {
        assert_eq!(org.head(id).await, 200);
    }
    assert_eq!(org.head(&newest).await, 200);
    let stats = org.sim.notification_stats();
    assert_eq!((stats.channels_created, stats.channels_evicted), (21, 1));
    assert_eq!(org.sim.channels().len(), 20);
    let (status, _) = org.subscriptions(Method::GET, &channels[2].0, &[]).await;
    assert_eq!(status, 404);

    // The evict fault: counted, and the socket closes.
    assert!(org.sim.evict_channel(&channels[0].0));
    assert_eq!(recv(&mut socket, PATIENCE).await, Received::Close);
    assert_eq!(org.sim.notification_stats().channels_evicted, 2);
    assert_eq!(org.head(&channels[0].0).await, 404);
    org.stop().await;
}

#[actix_rt::test]
async fn refused_topics_are_left_out() {
    let org = Org::start(config(&["q1", "q2", "q3"])).await;
    let (id, _) = org.channel().await;
    org.sim.refuse_topics(vec!["q2".to_owned()]);
    let (status, body) = org
        .subscriptions(Method::PUT, &id, &["q1", "q2", "q9"])
        .await;
    assert_eq!((status, entities(&body)), (200, vec![topic("q1")]));
    let response = org
        .client
        .put(org.url("/simulator/refused-topics"))
        .send_json(&json!(["q3"]))
        .await
        .expect("admin");
    assert_eq!(response.status().as_u16(), 200);
    let (_, body) = org.subscriptions(Method::POST, &id, &["q2", "q3"]).await;
    assert_eq!(entities(&body), vec![topic("q1"), topic("q2")]);
    org.sim.refuse_topics(Vec::new());
    let (_, body) = org.subscriptions(Method::POST, &id, &["q3"]).await;
    assert_eq!(entities(&body).len(), 3);
    org.stop().await;
}

#[actix_rt::test]
async fn channels_expire_and_the_expire_fault_makes_them_gone() {
    let mut short = config(&["q1"]);
    short.notifications.channel_lifetime = Duration::from_millis(300);
    let org = Org::start(short).await;
    let (id, uri) = org.channel().await;
    assert_eq!(org.head(&id).await, 200);
    let deadline = Instant::now() + PATIENCE;
    while org.head(&id).await == 200 {
        assert!(Instant::now() < deadline, "the channel never expired");
        tokio::time::sleep(PERIOD).await;
    }
    assert_eq!(refused_status(&uri).await, Some(404));
    org.stop().await;

    let org = Org::start(config(&["q1"])).await;
    let (id, uri) = org.channel().await;
    let mut socket = connect(&uri).await;
    assert!(org.sim.expire_channel(&id));
    assert_eq!(org.head(&id).await, 404);
    assert_eq!(recv(&mut socket, PATIENCE).await, Received::Close);
    assert!(org.sim.channels().is_empty());
    assert_eq!(org.sim.notification_stats().channels_evicted, 0);
    org.stop().await;
}

#[actix_rt::test]
async fn channel_calls_are_rate_limited_and_logged() {
    let org = Org::start(config(&["q1"])).await;
    org.sim.faults().push(
        FaultRule::times(
            Fault::RateLimit {
                retry_after_secs: 7,
            },
            1,
        )
        .for_path_containing("/notifications/"),
    );
    let (status, _, _) = org
        .call(
            Method::GET,
            "/api/v2/routing/queues/q1/mediatypes/message/estimatedwaittime",
            None,
        )
        .await;
    assert_eq!(status, 200, "other paths are not touched");
    let (status, retry_after, body) = org
        .call(Method::POST, "/api/v2/notifications/channels", None)
        .await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("7")), "{body}");
    let (id, _) = org.channel().await;

    // The per-token limit counts channel calls like any other.
    // Two counted calls so far (the estimated wait, the second POST).
    org.sim.set_rate_limit(Some(3));
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(org.subscriptions(Method::PUT, &id, &["q1"]).await.0);
    }
    assert_eq!(statuses, vec![200, 429, 429], "3 calls in the window");

    let log = org.sim.requests();
    let channel_calls: Vec<(String, u16)> = log
        .iter()
        .filter(|r| r.path.starts_with("/api/v2/notifications/channels"))
        .map(|r| (r.method.clone(), r.status))
        .collect();
    assert_eq!(
        channel_calls,
        vec![
            ("POST".to_owned(), 429),
            ("POST".to_owned(), 200),
            ("PUT".to_owned(), 200),
            ("PUT".to_owned(), 429),
            ("PUT".to_owned(), 429),
        ]
    );
    let subscribed = log.iter().find(|r| r.method == "PUT").expect("logged");
    assert_eq!(subscribed.queue_ids, vec!["q1".to_owned()]);
    assert_eq!(subscribed.token.as_deref(), Some(org.token.as_str()));
    org.stop().await;
}

#[actix_rt::test]
async fn the_admin_routes_switch_the_faults() {
    let org = Org::start(config(&["q1"])).await;
    let (id, uri) = org.channel().await;
    let mut socket = connect(&uri).await;
    let mut listed = org
        .client
        .get(org.url("/simulator/channels"))
        .send()
        .await
        .expect("admin");
    let listed: Value = listed.json().await.expect("json");
    assert_eq!(listed["channels"][0]["id"], json!(id));
    assert_eq!(listed["channels"][0]["connected"], json!(true));
    assert_eq!(listed["stats"]["sockets_opened"], json!(1));

    let post = |action: &str| {
        org.client
            .post(org.url(&format!("/simulator/channels/{id}/{action}")))
            .send()
    };
    let mut stalled = post("stall").await.expect("admin");
    assert_eq!(
        stalled.json::<Value>().await.expect("json")["applied"],
        json!(true)
    );
    assert!(org.sim.channels()[0].stalled);
    assert_eq!(post("unstall").await.expect("admin").status().as_u16(), 200);
    assert_eq!(post("meteor").await.expect("admin").status().as_u16(), 404);
    assert_eq!(post("drop").await.expect("admin").status().as_u16(), 200);
    assert_eq!(recv(&mut socket, PATIENCE).await, Received::Ended);

    let pin = |queue: &str, body: Value| {
        org.client
            .put(org.url(&format!("/simulator/queues/{queue}/waiting")))
            .send_json(&body)
    };
    assert_eq!(
        pin("q1", json!({"waiting": 4}))
            .await
            .expect("admin")
            .status()
            .as_u16(),
        200
    );
    let (_, _, body) = org
        .call(
            Method::GET,
            "/api/v2/guest/messaging/queues/q1/position",
            None,
        )
        .await;
    assert!(body["position"].as_u64().is_some_and(|p| p <= 4), "{body}");
    assert_eq!(
        pin("q1", json!({"waiting": null}))
            .await
            .expect("admin")
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        pin("nope", json!({"waiting": 1}))
            .await
            .expect("admin")
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        pin("q1", json!({"waiting": -1}))
            .await
            .expect("admin")
            .status()
            .as_u16(),
        400
    );

    assert_eq!(post("expire").await.expect("admin").status().as_u16(), 200);
    assert_eq!(post("expire").await.expect("admin").status().as_u16(), 404);
    org.stop().await;
}
