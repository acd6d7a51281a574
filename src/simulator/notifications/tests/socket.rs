//! The WebSocket side: pushes, heartbeats, pongs and the socket faults.

use awc::http::Method;
use serde_json::json;

use super::*;

/// A channel subscribed to `queues` (all pinned first, so that nothing
/// moves until a test says so) with a socket.
async fn subscribed(
    org: &Org,
    queues: &[&str],
) -> (
    String,
    String,
    impl Stream<Item = Result<Frame, WsProtocolError>>
        + futures_util::Sink<Message, Error = WsProtocolError>
        + Unpin,
) {
    for queue in queues {
        assert!(org.sim.pin_waiting(queue, Some(0)));
    }
    let (id, uri) = org.channel().await;
    let (status, body) = org.subscriptions(Method::PUT, &id, queues).await;
    assert_eq!((status, entities(&body).len()), (200, queues.len()));
    let socket = connect(&uri).await;
    (id, uri, socket)
}

#[actix_rt::test]
async fn a_pinned_change_arrives_as_a_partial_message() {
    let org = Org::start(config(&["q1", "q2"])).await;
    let (_, _, mut socket) = subscribed(&org, &["q1", "q2"]).await;
    let started = Instant::now();
    assert!(org.sim.pin_waiting("q1", Some(7)));
    let message = recv_topic(&mut socket, &topic("q1")).await;
    let took = started.elapsed();
    assert_eq!(message["version"], "2");
    assert_eq!(
        message["eventBody"]["group"],
        json!({"queueId": "q1", "mediaType": "message"})
    );
    let data = &message["eventBody"]["data"][0];
    assert_eq!(
        data["metrics"],
        json!([{"metric": "oWaiting", "stats": {"count": 7}}]),
        "only what changed"
    );
    let interval = data["interval"].as_str().expect("interval");
    let (from, to) = interval.split_once('/').expect("start/end");
    assert!(humantime::parse_rfc3339(from).is_ok() && humantime::parse_rfc3339(to).is_ok());
    assert!(message["metadata"]["CorrelationId"].is_string());
    // Within about two periods (lenient on a busy machine).
    assert!(took < PERIOD * 10, "{took:?}");
    // Nothing more: q2 and q1 stand still, and q1 was published once.
    assert_eq!(recv(&mut socket, PERIOD * 4).await, Received::Nothing);
    assert_eq!(org.sim.notification_stats().messages_published, 1);
    org.stop().await;
}

#[actix_rt::test]
async fn heartbeats_and_pongs() {
    let mut fast = config(&["q1"]);
    fast.notifications.heartbeat_period = PERIOD;
    let org = Org::start(fast).await;
    let (_, uri) = org.channel().await;
    let mut socket = connect(&uri).await;
    let heartbeat = recv_topic(&mut socket, "channel.metadata").await;
    assert_eq!(
        heartbeat,
        json!({"topicName": "channel.metadata", "eventBody": {"message": "WebSocket Heartbeat"}})
    );
    ping(&mut socket).await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let message = recv_topic(&mut socket, "channel.metadata").await;
        if message["eventBody"]["message"] == "pong" {
            break;
        }
        assert!(Instant::now() < deadline, "no pong");
    }
    assert_eq!(org.sim.notification_stats().pings, 1);
    org.stop().await;
}

#[actix_rt::test]
async fn a_stalled_socket_sends_nothing_then_catches_up() {
    let mut fast = config(&["q1"]);
    fast.notifications.heartbeat_period = PERIOD;
    let org = Org::start(fast).await;
    let (id, _, mut socket) = subscribed(&org, &["q1"]).await;
    recv_topic(&mut socket, "channel.metadata").await;
    assert!(org.sim.stall(&id, true));
    // A frame already on its way may still arrive; then silence.
    let _ = recv(&mut socket, PERIOD).await;
    assert!(org.sim.pin_waiting("q1", Some(2)));
    ping(&mut socket).await;
    assert_eq!(recv(&mut socket, PERIOD * 6).await, Received::Nothing);
    assert!(org.sim.channels()[0].connected, "still open");
    assert!(org.sim.stall(&id, false));
    let message = recv_topic(&mut socket, &topic("q1")).await;
    assert_eq!(
        message["eventBody"]["data"][0]["metrics"],
        json!([{"metric": "oWaiting", "stats": {"count": 2}}])
    );
    org.stop().await;
}

#[actix_rt::test]
async fn socket_closing_is_announced_then_the_socket_closes() {
    let org = Org::start(config(&["q1"])).await;
    let (id, uri) = org.channel().await;
    let mut socket = connect(&uri).await;
    let started = Instant::now();
    assert!(org.sim.announce_socket_closing(&id));
    let closing = recv_topic(&mut socket, "v2.system.socket_closing").await;
    assert!(closing["eventBody"]["message"].is_string());
    assert!(closing["metadata"].is_object());
    assert_eq!(recv(&mut socket, PATIENCE).await, Received::Close);
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "after the grace"
    );
    // The channel stays: a new socket may connect.
    assert_eq!(org.head(&id).await, 200);
    let _again = connect(&uri).await;
    org.stop().await;
}

#[actix_rt::test]
async fn a_second_socket_closes_the_first() {
    let org = Org::start(config(&["q1"])).await;
    let (_, uri) = org.channel().await;
    let mut first = connect(&uri).await;
    let mut second = connect(&uri).await;
    assert_eq!(recv(&mut first, PATIENCE).await, Received::Close);
    ping(&mut second).await;
    let pong = recv_topic(&mut second, "channel.metadata").await;
    assert_eq!(pong["eventBody"]["message"], "pong");
    assert_eq!(org.sim.connected_sockets(), 1);
    assert_eq!(org.sim.notification_stats().sockets_opened, 2);
    org.stop().await;
}

#[actix_rt::test]
async fn a_dropped_socket_can_reconnect() {
    let org = Org::start(config(&["q1"])).await;
    let (id, uri, mut socket) = subscribed(&org, &["q1"]).await;
    assert!(org.sim.drop_socket(&id));
    assert_eq!(recv(&mut socket, PATIENCE).await, Received::Ended);
    assert_eq!(org.head(&id).await, 200);
    assert_eq!(org.sim.connected_sockets(), 0);
    let mut again = connect(&uri).await;
    assert!(org.sim.pin_waiting("q1", Some(3)));
    let message = recv_topic(&mut again, &topic("q1")).await;
    assert_eq!(
        message["eventBody"]["data"][0]["metrics"][0]["stats"]["count"],
        3
    );
    assert_eq!(org.sim.connected_sockets(), 1);
    org.stop().await;
}

#[actix_rt::test]
async fn unknown_channels_have_no_socket() {
    let org = Org::start(config(&["q1"])).await;
    assert_eq!(
        refused_status(
            &org.url("/channels/no-such-channel")
                .replacen("http", "ws", 1)
        )
        .await,
        Some(404)
    );
    org.stop().await;
}
