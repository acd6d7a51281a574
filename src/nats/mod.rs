//! NATS: the `kind: nats` callback (events to a JetStream stream) and what
//! it shares with cluster mode (connecting). SPEC section 7.
//!
//! The client is `async-nats` (tokio-based, rustls with the `ring`
//! provider). URLs are never logged: they may carry credentials.

pub(crate) mod cluster;
pub(crate) mod sink;

use std::sync::Arc;
use std::time::Duration;

/// Longest wait for one TCP/TLS connection attempt.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// The servers of a `nats://` / `tls://` URL or a comma-separated list.
pub(crate) fn server_list(url: &str) -> Vec<String> {
    url.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A client for `url` named `name`. Returns at once: the connection is made
/// (and remade after an outage) in the background, forever; requests made
/// meanwhile wait or time out. Must run inside a tokio runtime.
pub(crate) async fn connect(
    url: &str,
    name: &str,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<async_nats::Client, String> {
    let mut tls = (**tls).clone();
    // The shared config may announce HTTP protocols; NATS speaks none of them.
    tls.alpn_protocols.clear();
    let log_name: Arc<str> = name.into();
    let options = async_nats::ConnectOptions::new()
        .name(format!("queuewatch {name}"))
        .retry_on_initial_connect()
        .connection_timeout(CONNECTION_TIMEOUT)
        .tls_client_config(tls)
        .event_callback(move |event| {
            let name = log_name.clone();
            async move {
                use async_nats::Event;
                match event {
                    Event::Connected => log::info!("{name}: connected to NATS"),
                    Event::Disconnected => {
                        log::warn!("{name}: disconnected from NATS; reconnecting")
                    }
                    Event::LameDuckMode => {
                        log::info!("{name}: the NATS server is going away (lame duck mode)")
                    }
                    Event::SlowConsumer(_) => log::warn!("{name}: NATS slow consumer"),
                    Event::ServerError(error) => log::warn!("{name}: NATS server error: {error}"),
                    Event::ClientError(error) => log::warn!("{name}: NATS client error: {error}"),
                    Event::Draining | Event::Closed => log::debug!("{name}: NATS {event}"),
                }
            }
        });
    options
        .connect(server_list(url))
        .await
        .map_err(|e| format!("cannot use the NATS URL: {}", e.kind()))
}

/// Whether NATS subject `subject` matches `pattern` (`*` one token, `>` the rest).
pub(crate) fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut tokens = subject.split('.');
    for part in pattern.split('.') {
        match (part, tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (p, Some(t)) if p == t => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_match_like_nats() {
        assert!(subject_matches("a.>", "a.b"));
        assert!(subject_matches("a.>", "a.b.c"));
        assert!(!subject_matches("a.>", "a"));
        assert!(subject_matches("a.*", "a.b"));
        assert!(!subject_matches("a.*", "a.b.c"));
        assert!(subject_matches(">", "x.y"));
        assert!(subject_matches("a.b", "a.b"));
        assert!(!subject_matches("a.b", "a.c"));
    }

    #[test]
    fn server_lists_split_on_commas() {
        assert_eq!(
            server_list("nats://a:4222, nats://b:4222,"),
            ["nats://a:4222", "nats://b:4222"]
        );
    }
}
