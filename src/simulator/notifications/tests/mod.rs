//! Loopback tests of the Notifications API: a real simulator, awc as the client.

use std::time::Duration;

use awc::error::WsProtocolError;
use awc::http::Method;
use awc::ws::{Frame, Message};
use futures_util::{SinkExt as _, Stream, StreamExt as _};
use serde_json::{json, Value};
use tokio::time::{timeout_at, Instant};

use crate::simulator::{
    self, Simulator, SimulatorConfig, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET,
};

mod rest;
mod socket;

/// The publish period of the tests.
const PERIOD: Duration = Duration::from_millis(100);
/// Longest wait for something that must happen (generous: shared machines).
const PATIENCE: Duration = Duration::from_secs(5);

/// A simulator, a client and a token.
struct Org {
    sim: Simulator,
    client: awc::Client,
    token: String,
}

/// Settings for tests: fast publisher, quiet heartbeats (unless a test wants them).
fn config(queues: &[&str]) -> SimulatorConfig {
    let mut config = SimulatorConfig::with_queues(queues.iter().copied());
    config.notifications.publish_period = PERIOD;
    config.notifications.heartbeat_period = Duration::from_secs(3_600);
    config.notifications.socket_closing_grace = Duration::from_millis(300);
    config
}

impl Org {
    async fn start(config: SimulatorConfig) -> Self {
        let sim = simulator::start(config, "127.0.0.1:0".parse().expect("address"))
            .await
            .expect("simulator starts");
        let client = awc::Client::new();
        let mut response = client
            .post(format!("{}/oauth/token", sim.base_url()))
            .basic_auth(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
            .send_form(&[("grant_type", "client_credentials")])
            .await
            .expect("token response");
        let body: Value = response.json().await.expect("token body");
        let token = body["access_token"].as_str().expect("a token").to_owned();
        Self { sim, client, token }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    /// An authenticated API call; returns the status, `Retry-After` and the body (`Null` if none).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Option<String>, Value) {
        let request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        let sent = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        };
        let mut response = sent.expect("a response");
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let bytes = response.body().await.expect("a body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (response.status().as_u16(), retry_after, body)
    }

    /// Creates a channel; returns its id and `connectUri`.
    async fn channel(&self) -> (String, String) {
        let (status, _, body) = self
            .call(Method::POST, "/api/v2/notifications/channels", None)
            .await;
        assert_eq!(status, 200, "{body}");
        let id = body["id"].as_str().expect("an id").to_owned();
        let uri = body["connectUri"]
            .as_str()
            .expect("a connectUri")
            .to_owned();
        (id, uri)
    }

    /// A subscription call; returns the status and the body.
    async fn subscriptions(&self, method: Method, channel: &str, queues: &[&str]) -> (u16, Value) {
        let body = (method == Method::PUT || method == Method::POST).then(|| topics(queues));
        let path = format!("/api/v2/notifications/channels/{channel}/subscriptions");
        let (status, _, body) = self.call(method, &path, body).await;
        (status, body)
    }

    /// `HEAD /api/v2/notifications/channels/{id}`.
    async fn head(&self, channel: &str) -> u16 {
        let path = format!("/api/v2/notifications/channels/{channel}");
        self.call(Method::HEAD, &path, None).await.0
    }

    async fn stop(self) {
        self.sim.stop().await;
    }
}

/// `[{"id":"v2.analytics.queues.<q>.observations"},...]`.
fn topics(queues: &[&str]) -> Value {
    queues
        .iter()
        .map(|q| json!({ "id": format!("v2.analytics.queues.{q}.observations") }))
        .collect()
}

/// The topic names of `{"entities":[...]}`.
fn entities(body: &Value) -> Vec<String> {
    body["entities"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|e| e["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// What a socket gave.
#[derive(Debug, PartialEq)]
enum Received {
    /// A text frame, as JSON.
    Text(Value),
    /// A close frame.
    Close,
    /// The connection ended without a close frame.
    Ended,
    /// Nothing within the wait.
    Nothing,
}

/// Opens a socket on a `connectUri`.
async fn connect(
    uri: &str,
) -> impl Stream<Item = Result<Frame, WsProtocolError>>
       + futures_util::Sink<Message, Error = WsProtocolError>
       + Unpin {
    let (response, framed) = awc::Client::new()
        .ws(uri)
        .connect()
        .await
        .expect("the socket opens");
    assert_eq!(response.status().as_u16(), 101);
    framed
}

/// The status refusing a socket on `uri` (`None`: it opened, or no response).
async fn refused_status(uri: &str) -> Option<u16> {
    match awc::Client::new().ws(uri).connect().await {
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => Some(status.as_u16()),
        _ => None,
    }
}

/// The next text frame, close or end within `wait` (pings and pongs skipped).
async fn recv<S>(socket: &mut S, wait: Duration) -> Received
where
    S: Stream<Item = Result<Frame, WsProtocolError>> + Unpin,
{
    let deadline = Instant::now() + wait;
    loop {
        match timeout_at(deadline, socket.next()).await {
            Err(_) => return Received::Nothing,
            Ok(None | Some(Err(_))) => return Received::Ended,
            Ok(Some(Ok(Frame::Close(_)))) => return Received::Close,
            Ok(Some(Ok(Frame::Text(bytes)))) => {
                return Received::Text(serde_json::from_slice(&bytes).expect("JSON text frames"))
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// The next message whose `topicName` is `topic` (others skipped), within [`PATIENCE`].
async fn recv_topic<S>(socket: &mut S, topic: &str) -> Value
where
    S: Stream<Item = Result<Frame, WsProtocolError>> + Unpin,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        match recv(socket, deadline.saturating_duration_since(Instant::now())).await {
            Received::Text(message) if message["topicName"] == topic => return message,
            Received::Text(_) => {}
            other => panic!("no {topic} message: {other:?}"),
        }
    }
}

/// Sends `{"message":"ping"}`.
async fn ping<S>(socket: &mut S)
where
    S: futures_util::Sink<Message, Error = WsProtocolError> + Unpin,
{
    socket
        .send(Message::Text(r#"{"message":"ping"}"#.into()))
        .await
        .expect("ping sent");
}

/// The topic name of a queue.
fn topic(queue: &str) -> String {
    format!("v2.analytics.queues.{queue}.observations")
}
