//! NATS as the `kind: nats` callback and cluster mode both use it:
//! connecting, and the supported servers.
//! docs/cluster.md.
//!
//! The client is `async-nats` (tokio-based, rustls with the `ring`
//! provider). URLs are never logged as given: they may carry credentials
//! ([`redacted`] drops them).
//!
//! Supported servers: 2.10 and newer, with JetStream enabled. [`check_at_start`]
//! makes one connection at start and reads the server's `INFO`; an
//! unsupported server fails the start. The running clients check again on
//! every connection ([`unsupported_now`]), and a JetStream that keeps
//! answering with errors for [`JETSTREAM_FATAL_AFTER`] while the connection
//! is up is fatal too ([`Persistence`]).
//!
//! (Past 400 lines: a third is the version check's table tests.)

#[cfg(test)]
pub(crate) mod fake;

use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use tokio::time::Instant;

/// Longest wait for one TCP/TLS connection attempt.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// The oldest NATS server version supported.
pub(crate) const MIN_VERSION: Version = Version {
    major: 2,
    minor: 10,
    patch: 0,
};

/// What an unsupported server is told it lacks.
const NEEDS: &str = "queuewatch needs 2.10 or newer with JetStream enabled";

/// How long JetStream requests may keep failing (error answers while the
/// connection is up, not timeouts or outages) before that is fatal.
pub(crate) const JETSTREAM_FATAL_AFTER: Duration = if cfg!(test) {
    Duration::from_secs(2)
} else {
    Duration::from_secs(60)
};

/// Why a NATS server or URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NatsError {
    /// Not a version as servers report it.
    #[error("{0:?} is not a version")]
    NotAVersion(String),
    /// The server reports something that is not a version.
    #[error("NATS server at {at} reports version {version:?}, which is not a version: {NEEDS}")]
    UnknownVersion {
        /// What it reports.
        version: String,
        /// The server, redacted.
        at: String,
    },
    /// Older than 2.10.
    #[error("NATS server {version} at {at} is not supported: {NEEDS}")]
    TooOld {
        /// Its version.
        version: String,
        /// The server, redacted.
        at: String,
    },
    /// JetStream is off.
    #[error(
        "NATS server {version} at {at} is not supported: JetStream is disabled \
         (start it with -js); {NEEDS}"
    )]
    NoJetStream {
        /// Its version.
        version: String,
        /// The server, redacted.
        at: String,
    },
    /// The URL cannot be used at all.
    #[error("cannot use the NATS URL: {0}")]
    BadUrl(String),
}

/// A NATS server version, `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Reads a version as servers report it in `INFO`: `2.10.25`, `v2.11.0-beta`,
/// `2.10` (a pre-release or build suffix is ignored: `2.11.0-beta` counts as
/// 2.11.0). Anything else is an error.
pub(crate) fn parse_version(text: &str) -> Result<Version, NatsError> {
    let bad = || NatsError::NotAVersion(text.to_owned());
    let trimmed = text.trim();
    let bare = trimmed
        .strip_prefix('v')
        .or_else(|| trimmed.strip_prefix('V'))
        .unwrap_or(trimmed);
    let core = bare.split(['-', '+']).next().unwrap_or_default();
    let mut numbers = Vec::with_capacity(3);
    for part in core.split('.') {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        numbers.push(part.parse::<u64>().map_err(|_| bad())?);
    }
    match numbers[..] {
        [major, minor] => Ok(Version {
            major,
            minor,
            patch: 0,
        }),
        [major, minor, patch] => Ok(Version {
            major,
            minor,
            patch,
        }),
        _ => Err(bad()),
    }
}

/// `Err(why)` when the server that sent `info` cannot be used; `at` names it
/// (a [`redacted`] URL).
pub(crate) fn check_server(info: &async_nats::ServerInfo, at: &str) -> Result<(), NatsError> {
    let (version, at) = (info.version.clone(), at.to_owned());
    match parse_version(&info.version) {
        Err(_) => Err(NatsError::UnknownVersion { version, at }),
        Ok(v) if v < MIN_VERSION => Err(NatsError::TooOld { version, at }),
        Ok(_) if !info.jetstream => Err(NatsError::NoJetStream { version, at }),
        Ok(_) => Ok(()),
    }
}

/// `url` without user names, passwords or tokens, for messages.
pub(crate) fn redacted(url: &str) -> String {
    server_list(url)
        .iter()
        .map(|server| {
            let (scheme, rest) = match server.split_once("://") {
                Some((scheme, rest)) => (Some(scheme), rest),
                None => (None, server.as_str()),
            };
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(authority_end);
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            match scheme {
                Some(scheme) => format!("{scheme}://{host}{tail}"),
                None => format!("{host}{tail}"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Connects once to `url` (one attempt per server, bounded) and checks the
/// server's version and JetStream. `Err(why)` only when a server answered
/// and is unsupported; an unreachable NATS is `Ok` (the running client keeps
/// trying, and checks again once connected).
pub(crate) async fn check_at_start(
    url: &str,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<(), NatsError> {
    let options = base_options(tls).name("queuewatch version check");
    let attempt = tokio::time::timeout(CONNECTION_TIMEOUT, options.connect(server_list(url)));
    match attempt.await {
        Ok(Ok(client)) => {
            let info = client.server_info();
            // Dropping the last handle closes the connection.
            drop(client);
            check_server(&info, &redacted(url))
        }
        Ok(Err(error)) => {
            log::debug!(
                "NATS at {} not reachable at start ({}): checking its version once connected",
                redacted(url),
                error.kind()
            );
            Ok(())
        }
        Err(_) => {
            log::debug!(
                "NATS at {} did not answer at start: checking its version once connected",
                redacted(url)
            );
            Ok(())
        }
    }
}

/// Why the server `client` is connected to cannot be used, if it cannot.
/// `None` while not connected.
pub(crate) fn unsupported_now(client: &async_nats::Client, url: &str) -> Option<NatsError> {
    if client.connection_state() != State::Connected {
        return None;
    }
    let info = client.try_server_info()?;
    check_server(&info, &redacted(url)).err()
}

/// Whether `client` is connected now.
pub(crate) fn connected(client: &async_nats::Client) -> bool {
    client.connection_state() == State::Connected
}

/// Whether a JetStream error (as text) is a timeout: an outage, not an answer.
pub(crate) fn is_timeout(error: &str) -> bool {
    error.contains("timed out")
}

/// Consecutive JetStream failures (error answers while connected): fatal
/// once they have lasted `limit`. A success, or a failure while the
/// connection is down (an outage), starts the count afresh.
#[derive(Debug)]
pub(crate) struct Persistence {
    limit: Duration,
    since: Option<Instant>,
}

impl Persistence {
    pub(crate) fn new(limit: Duration) -> Self {
        Persistence { limit, since: None }
    }

    /// A request failed at `now`; `connected`: the connection was up. How
    /// long the failures have lasted, once that reaches the limit.
    pub(crate) fn failed(&mut self, connected: bool, now: Instant) -> Option<Duration> {
        if !connected {
            self.since = None;
            return None;
        }
        let since = *self.since.get_or_insert(now);
        let lasted = now.saturating_duration_since(since);
        (lasted >= self.limit).then_some(lasted)
    }

    /// A request succeeded.
    pub(crate) fn succeeded(&mut self) {
        self.since = None;
    }
}

/// Options every client shares: name, TLS, connection timeout.
fn base_options(tls: &Arc<rustls::ClientConfig>) -> async_nats::ConnectOptions {
    let mut tls = (**tls).clone();
    // The shared config may announce HTTP protocols; NATS speaks none of them.
    tls.alpn_protocols.clear();
    async_nats::ConnectOptions::new()
        .connection_timeout(CONNECTION_TIMEOUT)
        .tls_client_config(tls)
}

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
) -> Result<async_nats::Client, NatsError> {
    let log_name: Arc<str> = name.into();
    let options = base_options(tls)
        .name(format!("queuewatch {name}"))
        .retry_on_initial_connect()
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
        .map_err(|e| NatsError::BadUrl(e.kind().to_string()))
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
    fn versions_parse_robustly() {
        let v = |major, minor, patch| {
            Ok(Version {
                major,
                minor,
                patch,
            })
        };
        let table: &[(&str, Result<Version, ()>)] = &[
            ("2.10.25", v(2, 10, 25)),
            ("2.9.10", v(2, 9, 10)),
            ("v2.11.0-beta", v(2, 11, 0)),
            ("2.15.1+build.7", v(2, 15, 1)),
            (" 2.10 ", v(2, 10, 0)),
            ("V3.0.0-RC.1", v(3, 0, 0)),
            ("", Err(())),
            ("garbage", Err(())),
            ("2", Err(())),
            ("2.", Err(())),
            (".10.1", Err(())),
            ("2.x.1", Err(())),
            ("2.10.1.4", Err(())),
            ("-2.10.1", Err(())),
            ("2.+10.1", Err(())),
            ("99999999999999999999.1.1", Err(())),
            ("２.10.1", Err(())),
        ];
        for (text, want) in table {
            let got = parse_version(text).map_err(|_| ());
            assert_eq!(&got, want, "{text:?}");
        }
        assert!(parse_version("2.9.10").unwrap() < MIN_VERSION);
        assert!(parse_version("2.10.0-beta").unwrap() >= MIN_VERSION);
        assert!(parse_version("10.0.0").unwrap() > MIN_VERSION);
    }

    fn info(version: &str, jetstream: bool) -> async_nats::ServerInfo {
        async_nats::ServerInfo {
            version: version.into(),
            jetstream,
            ..async_nats::ServerInfo::default()
        }
    }

    #[test]
    fn only_2_10_and_newer_with_jetstream_are_supported() {
        let at = "nats://127.0.0.1:4222";
        assert_eq!(check_server(&info("2.10.25", true), at), Ok(()));
        assert_eq!(check_server(&info("2.15.1", true), at), Ok(()));
        assert_eq!(
            check_server(&info("2.9.10", true), at)
                .unwrap_err()
                .to_string(),
            "NATS server 2.9.10 at nats://127.0.0.1:4222 is not supported: \
             queuewatch needs 2.10 or newer with JetStream enabled"
        );
        let off = check_server(&info("2.10.25", false), at)
            .unwrap_err()
            .to_string();
        assert!(
            off.contains("2.10.25") && off.contains("JetStream is disabled"),
            "{off}"
        );
        let odd = check_server(&info("nightly", true), at)
            .unwrap_err()
            .to_string();
        assert!(
            odd.contains("\"nightly\"") && odd.contains("2.10 or newer"),
            "{odd}"
        );
    }

    #[test]
    fn redacted_urls_keep_no_credentials() {
        assert_eq!(
            redacted("nats://user:pa@ss@a:4222, tls://tok@b:4443/x,c:4222"),
            "nats://a:4222, tls://b:4443/x, c:4222"
        );
        assert_eq!(redacted("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }

    #[test]
    fn persisting_failures_become_fatal_after_the_limit() {
        let limit = Duration::from_secs(60);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut p = Persistence::new(limit);
        assert_eq!(p.failed(true, at(0)), None);
        assert_eq!(p.failed(true, at(59)), None);
        assert_eq!(p.failed(true, at(60)), Some(limit));
        // A success starts afresh.
        p.succeeded();
        assert_eq!(p.failed(true, at(61)), None);
        assert_eq!(p.failed(true, at(120)), None);
        // So does an outage: failures while disconnected are not counted.
        assert_eq!(p.failed(false, at(121)), None);
        assert_eq!(p.failed(true, at(130)), None);
        assert_eq!(p.failed(true, at(189)), None);
        assert_eq!(p.failed(true, at(190)), Some(limit));
        assert!(is_timeout("jetstream request timed out"));
        assert!(!is_timeout(
            "JetStream error: jetstream not enabled for account"
        ));
    }

    #[test]
    fn server_lists_split_on_commas() {
        assert_eq!(
            server_list("nats://a:4222, nats://b:4222,"),
            ["nats://a:4222", "nats://b:4222"]
        );
    }
}
