//! The Notifications API: channels, their topic subscriptions (REST, on
//! the token's budget like every API call) and the channel's WebSocket.
//!
//! A channel's `connectUri` is a credential of sorts (whoever holds it
//! reads the channel): it is never logged and `Debug` leaves it out.

use std::time::{Duration, SystemTime};

use awc::ws::Codec;
use awc::BoxedSocket;
use serde::Deserialize;

use super::client::{GenesysClient, Outcome};
use super::wire::truncate;
use crate::error::{ErrorKind, PollError};
use crate::secret::Secret;

/// `POST` creates a channel; `/{id}` and `/{id}/subscriptions` below it.
pub const CHANNELS_PATH: &str = "/api/v2/notifications/channels";

/// Largest WebSocket frame accepted (observation messages are ~1 KiB).
pub const MAX_FRAME: usize = 1024 * 1024;

/// A channel as Genesys created it.
#[derive(Clone)]
pub struct Channel {
    /// The channel id.
    pub id: String,
    /// Where its WebSocket is (`wss://`, or `ws://` on loopback).
    pub connect_uri: Secret,
    /// When Genesys drops it (24 h after creation).
    pub expires: SystemTime,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("id", &self.id)
            .field("expires", &humantime::format_rfc3339_seconds(self.expires))
            .finish_non_exhaustive()
    }
}

/// A connected channel WebSocket.
pub type Socket = actix_codec::Framed<BoxedSocket, Codec>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChannelBody {
    id: String,
    connect_uri: String,
    #[serde(default)]
    expires: Option<String>,
}

#[derive(Deserialize)]
struct Entities {
    #[serde(default)]
    entities: Vec<Entity>,
}

#[derive(Deserialize, serde::Serialize)]
struct Entity {
    id: String,
}

impl GenesysClient {
    /// `POST /api/v2/notifications/channels`.
    pub async fn create_channel(&self, token: &Secret) -> Outcome<Channel> {
        let url = format!("{}{CHANNELS_PATH}", self.options().api_base);
        let request = self.authorize(self.http().post(url), token);
        self.timed(request.send(), |body| {
            parse_channel(body, SystemTime::now())
        })
        .await
    }

    /// `HEAD /api/v2/notifications/channels/{id}`: `Ok(true)` when it
    /// exists, `Ok(false)` on a 404.
    pub async fn channel_exists(&self, token: &Secret, id: &str) -> Outcome<bool> {
        let url = format!("{}{CHANNELS_PATH}/{}", self.options().api_base, escape(id));
        let request = self.authorize(self.http().head(url), token);
        let mut outcome = self.timed_with(request.send(), false, |_| Ok(true)).await;
        if matches!(&outcome.result, Err(e) if e.kind == ErrorKind::NotFound) {
            outcome.result = Ok(false);
        }
        outcome
    }

    /// `PUT .../{id}/subscriptions`: the channel's topics become `topics`;
    /// answers the topics Genesys lists afterwards (a refused one is missing).
    pub async fn set_subscriptions(
        &self,
        token: &Secret,
        id: &str,
        topics: &[String],
    ) -> Outcome<Vec<String>> {
        let url = format!(
            "{}{CHANNELS_PATH}/{}/subscriptions",
            self.options().api_base,
            escape(id)
        );
        let body: Vec<Entity> = topics.iter().map(|t| Entity { id: t.clone() }).collect();
        let request = self.authorize(self.http().put(url), token);
        self.timed(request.send_json(&body), parse_entities).await
    }

    /// `DELETE .../{id}/subscriptions`: the channel keeps no topic.
    pub async fn clear_subscriptions(&self, token: &Secret, id: &str) -> Outcome<()> {
        let url = format!(
            "{}{CHANNELS_PATH}/{}/subscriptions",
            self.options().api_base,
            escape(id)
        );
        let request = self.authorize(self.http().delete(url), token);
        self.timed_with(request.send(), false, |_| Ok(())).await
    }

    /// Opens the channel's WebSocket, bounded by `request_timeout`.
    pub async fn connect_channel(&self, channel: &Channel) -> Result<Socket, PollError> {
        let uri = channel.connect_uri.expose();
        check_connect_uri(uri)?;
        let timeout = self.options().request_timeout;
        let connect = self.http().ws(uri).max_frame_size(MAX_FRAME).connect();
        match tokio::time::timeout(timeout, connect).await {
            Ok(Ok((_, socket))) => Ok(socket),
            Ok(Err(error)) => Err(classify_ws(&error)),
            Err(_) => Err(PollError::new(
                ErrorKind::Timeout,
                format!(
                    "channel {}: no WebSocket within {}",
                    channel.id,
                    humantime::format_duration(timeout)
                ),
            )),
        }
    }
}

fn classify_ws(error: &awc::error::WsClientError) -> PollError {
    use awc::error::WsClientError;
    let kind = match error {
        WsClientError::InvalidResponseStatus(status) => ErrorKind::from_status(status.as_u16()),
        WsClientError::SendRequest(awc::error::SendRequestError::Timeout) => ErrorKind::Timeout,
        WsClientError::SendRequest(_) => ErrorKind::Connection,
        _ => ErrorKind::InvalidResponse,
    };
    PollError::new(kind, format!("channel WebSocket: {error}"))
}

/// A channel id goes into a path: anything but `[A-Za-z0-9._-]` is escaped.
fn escape(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The channel of a create answer; a missing or unreadable `expires` is
/// taken as the documented 24 h.
fn parse_channel(body: &[u8], now: SystemTime) -> Result<Channel, PollError> {
    let parsed: ChannelBody = serde_json::from_slice(body).map_err(|e| {
        PollError::new(
            ErrorKind::InvalidResponse,
            format!("channel body does not parse: {e}"),
        )
    })?;
    if parsed.id.is_empty() || parsed.id.len() > 200 {
        return Err(PollError::new(
            ErrorKind::InvalidResponse,
            "channel id is empty or longer than 200 bytes",
        ));
    }
    check_connect_uri(&parsed.connect_uri)?;
    let expires = parsed
        .expires
        .as_deref()
        .and_then(|text| humantime::parse_rfc3339_weak(text).ok())
        .unwrap_or(now + Duration::from_secs(24 * 3600));
    Ok(Channel {
        id: parsed.id,
        connect_uri: Secret::new(parsed.connect_uri),
        expires,
    })
}

fn parse_entities(body: &[u8]) -> Result<Vec<String>, PollError> {
    let parsed: Entities = serde_json::from_slice(body).map_err(|e| {
        PollError::new(
            ErrorKind::InvalidResponse,
            format!("subscriptions body does not parse: {e}"),
        )
    })?;
    Ok(parsed.entities.into_iter().map(|e| e.id).collect())
}

/// `wss://`, or `ws://` when the host is loopback (the simulator).
fn check_connect_uri(uri: &str) -> Result<(), PollError> {
    let invalid = |why: &str| {
        PollError::new(
            ErrorKind::InvalidResponse,
            format!("channel connectUri {why}"),
        )
    };
    let parsed: awc::http::Uri = uri.parse().map_err(|_| invalid("is not a URI"))?;
    let host = parsed.host().ok_or_else(|| invalid("has no host"))?;
    match parsed.scheme_str() {
        Some("wss") => Ok(()),
        Some("ws") if crate::config::net::is_loopback_host(host) => Ok(()),
        Some("ws") => Err(invalid("is ws:// to a host that is not loopback")),
        Some(other) => Err(invalid(&format!("has scheme {:?}", truncate(other)))),
        None => Err(invalid("has no scheme")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_parses_and_hides_its_uri() {
        let body = br#"{"id":"c1","connectUri":"wss://streaming.mypurecloud.com/channels/c1","expires":"2026-12-02T10:00:00.000Z"}"#;
        let channel = parse_channel(body, SystemTime::UNIX_EPOCH).expect("parses");
        assert_eq!(channel.id, "c1");
        assert_eq!(
            humantime::format_rfc3339_seconds(channel.expires).to_string(),
            "2026-12-02T10:00:00Z"
        );
        assert!(!format!("{channel:?}").contains("streaming"));
    }

    #[test]
    fn hostile_channels_are_refused() {
        let now = SystemTime::UNIX_EPOCH;
        for body in [
            &br#"{"id":"c1","connectUri":"ws://evil.example.com/channels/c1"}"#[..],
            br#"{"id":"c1","connectUri":"https://streaming.example.com/c1"}"#,
            br#"{"id":"","connectUri":"wss://streaming.example.com/c1"}"#,
            br#"{"id":"c1","connectUri":"not a uri"}"#,
            br#"{"id":"c1"}"#,
            br#"[]"#,
            b"",
        ] {
            let error = parse_channel(body, now).expect_err("refused");
            assert_eq!(error.kind, ErrorKind::InvalidResponse, "{body:?}");
        }
    }

    #[test]
    fn loopback_ws_and_a_missing_expiry_are_accepted() {
        let now = SystemTime::UNIX_EPOCH;
        let body =
            br#"{"id":"c1","connectUri":"ws://127.0.0.1:8089/channels/c1","expires":"soon"}"#;
        let channel = parse_channel(body, now).expect("parses");
        assert_eq!(channel.expires, now + Duration::from_secs(86_400));
    }

    #[test]
    fn ids_are_escaped_in_paths() {
        assert_eq!(escape("a-b_c.9"), "a-b_c.9");
        assert_eq!(escape("../x y"), "..%2Fx%20y");
    }
}
