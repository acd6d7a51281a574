//! The typed settings tree: every key of settings.yaml with its default.
//!
//! The doc comments here are the user documentation of each key; the default
//! of each key is the `default_*` function next to it (docs/settings.md).

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use super::budget::Budget;
use super::callbacks::CallbackSettings;
use super::error::ConfigError;
use super::queues::{QueueSettings, Thresholds};
use super::{duration, number, parse, validate};

/// The whole of settings.yaml. Only `queues` is required.
///
/// Build one with [`Settings::load`] / [`Settings::from_yaml_str`] (parse and
/// validate), or in code with [`Settings::for_queues`] and then adjust fields.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Which Genesys Cloud region to talk to and how (`genesys:`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub genesys: GenesysSettings,
    /// How and how often queues are polled (`poll:`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub poll: PollSettings,
    /// Alert thresholds applied to every queue unless a queue overrides them.
    #[serde(default, deserialize_with = "null_as_default")]
    pub thresholds: Thresholds,
    /// The queues to watch: 1 to 100 000 entries, each a Genesys queue UUID.
    pub queues: Vec<QueueSettings>,
    /// Where events go. Absent (or `null`) means `[{kind: log}]`; `[]` means nowhere.
    #[serde(
        default = "default_callbacks",
        deserialize_with = "null_as_default_callbacks"
    )]
    pub callbacks: Vec<CallbackSettings>,
    /// The HTTP status API and page (`http:`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub http: HttpSettings,
    /// Several instances sharing the queues over NATS; absent = this one owns every queue.
    #[serde(default)]
    pub cluster: Option<ClusterSettings>,
}

/// `genesys:` — the region, the credentials' environment variables and the request budget.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GenesysSettings {
    /// `simulated` (the built-in simulator, no credentials needed) or a region
    /// domain such as `mypurecloud.com`, `mypurecloud.de` or `usw2.pure.cloud`.
    #[serde(default = "default_environment")]
    pub environment: String,
    /// Overrides the API host, e.g. `http://127.0.0.1:8089` (tests, proxies).
    /// Must be https unless the host is loopback.
    #[serde(default)]
    pub api_url: Option<String>,
    /// Overrides the OAuth host (`https://login.<domain>` otherwise).
    #[serde(default)]
    pub login_url: Option<String>,
    /// Name of the environment variable holding the OAuth client id.
    #[serde(default = "default_client_id_env")]
    pub client_id_env: String,
    /// Name of the environment variable holding the OAuth client secret.
    #[serde(default = "default_client_secret_env")]
    pub client_secret_env: String,
    /// Longest wait for one complete HTTP response.
    #[serde(default = "default_request_timeout", with = "duration")]
    pub request_timeout: Duration,
    /// Refresh the token when less than `min(margin, lifetime/2)` of it is left.
    #[serde(default = "default_token_refresh_margin", with = "duration")]
    pub token_refresh_margin: Duration,
    /// Client-side budget shared by every request on one token (Genesys allows ~300).
    #[serde(
        default = "default_rate_limit_per_minute",
        deserialize_with = "number::strict"
    )]
    pub rate_limit_per_minute: u32,
}

/// Where queue data comes from (`poll.source`; docs/settings.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `GET /api/v2/guest/messaging/queues/{id}/position`: position, wait and status.
    GuestPosition,
    /// `GET /api/v2/routing/queues/{id}/mediatypes/message/estimatedwaittime`: wait only.
    EstimatedWaitTime,
    /// `POST /api/v2/analytics/queues/observations/query`: depth and agents, 100 queues a request.
    Observations,
    /// Depth and agents pushed over the Notifications API WebSocket within a
    /// second of a change (1,000 queues per channel), reconciled by batched
    /// observations snapshots, with observations polling as the fallback.
    Notifications,
}

impl Source {
    /// The settings.yaml / event name, e.g. `"guest_position"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::GuestPosition => "guest_position",
            Source::EstimatedWaitTime => "estimated_wait_time",
            Source::Observations => "observations",
            Source::Notifications => "notifications",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `poll.wait_time` — estimated wait time with the `notifications` source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitTime {
    /// Poll the estimated wait time only of queues with customers waiting,
    /// busiest first, with what the rate budget leaves after channel upkeep
    /// and fallback polling; idle queues report `null`.
    Active,
    /// Never: `estimated_wait_seconds` is always `null`.
    Off,
}

/// `poll:` — what is polled, how often, and how failures are retried.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PollSettings {
    /// `guest_position` | `estimated_wait_time` | `observations` | `notifications`.
    #[serde(default = "default_source")]
    pub source: Source,
    /// Time between two polls (two events, with `notifications`) of one
    /// queue; at least 5s, or 1s with `notifications`. Queues may override it.
    #[serde(default = "default_interval", with = "duration")]
    pub interval: Duration,
    /// Attempts per cycle after the first (0..=100).
    #[serde(default = "default_max_retries", deserialize_with = "number::strict")]
    pub max_retries: u32,
    /// First retry delay; doubles per attempt (with jitter) up to `backoff_max`.
    #[serde(default = "default_backoff_base", with = "duration")]
    pub backoff_base: Duration,
    /// Longest retry delay.
    #[serde(default = "default_backoff_max", with = "duration")]
    pub backoff_max: Duration,
    /// Snapshots kept per queue (the tracking matrix; bounded memory), 1..=100 000.
    #[serde(default = "default_history_size", deserialize_with = "number::strict")]
    pub history_size: usize,
    /// `notifications` only: a batched observations snapshot of every queue
    /// this often (besides one on every subscribe and reconnect); at least 10s.
    #[serde(default = "default_reconcile_interval", with = "duration")]
    pub reconcile_interval: Duration,
    /// `notifications` only: `active` | `off` (see [`WaitTime`]).
    #[serde(default = "default_wait_time")]
    pub wait_time: WaitTime,
}

/// `http:` — the status API and page.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Address to listen on; `null` disables the HTTP server.
    #[serde(default = "default_bind")]
    pub bind: Option<SocketAddr>,
    /// Environment variable holding a bearer token the HTTP API then requires.
    #[serde(default)]
    pub auth_token_env: Option<String>,
}

/// `cluster:` — several instances share the queues through NATS (docs/cluster.md).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// NATS server(s): `nats://` or `tls://` URL, or a comma-separated list of them.
    #[serde(default = "default_nats_url")]
    pub nats_url: String,
    /// This instance's name in the lease bucket; default: hostname and process id.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// A silent instance's queues move to others after this; at least 3s.
    #[serde(default = "default_lease_ttl", with = "duration")]
    pub lease_ttl: Duration,
}

pub(crate) fn default_environment() -> String {
    "simulated".to_owned()
}
pub(crate) fn default_client_id_env() -> String {
    "GENESYS_CLIENT_ID".to_owned()
}
pub(crate) fn default_client_secret_env() -> String {
    "GENESYS_CLIENT_SECRET".to_owned()
}
pub(crate) fn default_request_timeout() -> Duration {
    Duration::from_secs(8)
}
pub(crate) fn default_token_refresh_margin() -> Duration {
    Duration::from_secs(60)
}
pub(crate) fn default_rate_limit_per_minute() -> u32 {
    300
}
pub(crate) fn default_source() -> Source {
    Source::GuestPosition
}
pub(crate) fn default_interval() -> Duration {
    Duration::from_secs(10)
}
pub(crate) fn default_max_retries() -> u32 {
    5
}
pub(crate) fn default_backoff_base() -> Duration {
    Duration::from_secs(1)
}
pub(crate) fn default_backoff_max() -> Duration {
    Duration::from_secs(60)
}
pub(crate) fn default_history_size() -> usize {
    720
}
pub(crate) fn default_reconcile_interval() -> Duration {
    Duration::from_secs(300)
}
pub(crate) fn default_wait_time() -> WaitTime {
    WaitTime::Active
}
pub(crate) fn default_callbacks() -> Vec<CallbackSettings> {
    vec![CallbackSettings::Log]
}
pub(crate) fn default_bind() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 9464)))
}
pub(crate) fn default_nats_url() -> String {
    "nats://127.0.0.1:4222".to_owned()
}
pub(crate) fn default_lease_ttl() -> Duration {
    Duration::from_secs(15)
}

/// A section written as `genesys:` with nothing under it reads as `null`: take the defaults.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `callbacks:` with nothing under it means the default, like an absent key.
fn null_as_default_callbacks<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<CallbackSettings>, D::Error> {
    Ok(Option::deserialize(deserializer)?.unwrap_or_else(default_callbacks))
}

impl Default for GenesysSettings {
    fn default() -> Self {
        GenesysSettings {
            environment: default_environment(),
            api_url: None,
            login_url: None,
            client_id_env: default_client_id_env(),
            client_secret_env: default_client_secret_env(),
            request_timeout: default_request_timeout(),
            token_refresh_margin: default_token_refresh_margin(),
            rate_limit_per_minute: default_rate_limit_per_minute(),
        }
    }
}

impl Default for PollSettings {
    fn default() -> Self {
        PollSettings {
            source: default_source(),
            interval: default_interval(),
            max_retries: default_max_retries(),
            backoff_base: default_backoff_base(),
            backoff_max: default_backoff_max(),
            history_size: default_history_size(),
            reconcile_interval: default_reconcile_interval(),
            wait_time: default_wait_time(),
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            bind: default_bind(),
            auth_token_env: None,
        }
    }
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            nats_url: default_nats_url(),
            instance_id: None,
            lease_ttl: default_lease_ttl(),
        }
    }
}

impl GenesysSettings {
    /// Whether `environment` is `simulated` (built-in simulator, no credentials).
    pub fn is_simulated(&self) -> bool {
        self.environment == "simulated"
    }

    /// The API base URL without a trailing slash: `api_url` if set, else
    /// `https://api.<domain>`; `None` when simulated without an override
    /// (the simulator's address is only known once it runs).
    pub fn api_base(&self) -> Option<String> {
        self.base(crate::genesys::endpoint::Host::Api, self.api_url.as_deref())
    }

    /// The OAuth base URL without a trailing slash: `login_url` if set, else
    /// `https://login.<domain>`; `None` when simulated without an override.
    pub fn login_base(&self) -> Option<String> {
        self.base(
            crate::genesys::endpoint::Host::Login,
            self.login_url.as_deref(),
        )
    }

    fn base(&self, host: crate::genesys::endpoint::Host, url: Option<&str>) -> Option<String> {
        match url {
            Some(url) => Some(crate::genesys::endpoint::trimmed(url)),
            None if self.is_simulated() => None,
            None => Some(host.of_region(&self.environment)),
        }
    }
}

impl Settings {
    /// Settings with every default and these queue ids (no names, no overrides).
    /// Not validated: call [`Settings::validate`] after changing fields.
    pub fn for_queues(ids: impl IntoIterator<Item = impl Into<crate::QueueId>>) -> Settings {
        Settings {
            genesys: GenesysSettings::default(),
            poll: PollSettings::default(),
            thresholds: Thresholds::default(),
            queues: ids.into_iter().map(QueueSettings::new).collect(),
            callbacks: default_callbacks(),
            http: HttpSettings::default(),
            cluster: None,
        }
    }

    /// Parses settings.yaml text and validates it.
    pub fn from_yaml_str(text: &str) -> Result<Settings, ConfigError> {
        let settings = parse::parse(text)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Reads, parses and validates a settings file: a regular file (links are
    /// followed) of at most [`MAX_SETTINGS_BYTES`](super::MAX_SETTINGS_BYTES);
    /// a FIFO, device or directory is [`ConfigError::NotAFile`].
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let bytes = parse::read_file(path)?;
        let text = parse::utf8(&bytes)?;
        Settings::from_yaml_str(text)
    }

    /// Checks every rule and reports every problem at once as [`ConfigError::Invalid`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate::validate(self)
    }

    /// Soft findings that do not stop a run (unknown region, open HTTP API,
    /// demand over the rate budget), in the same `path: message` form.
    pub fn warnings(&self) -> Vec<super::Problem> {
        validate::warnings(self)
    }

    /// The configured poll interval of a queue: its override or `poll.interval`
    /// (before any stretching to fit the rate budget; see [`Budget::stretched`]).
    pub fn queue_interval(&self, queue: &QueueSettings) -> Duration {
        queue.interval.unwrap_or(self.poll.interval)
    }

    /// The interval at which a queue of `interval` costs requests: its own,
    /// or `poll.reconcile_interval` with `notifications` (events cost none).
    pub fn budget_interval(&self, interval: Duration) -> Duration {
        match self.poll.source {
            Source::Notifications => self.poll.reconcile_interval,
            _ => interval,
        }
    }

    /// The thresholds of a queue: the global ones with the queue's overrides applied.
    pub fn queue_thresholds(&self, queue: &QueueSettings) -> Thresholds {
        self.thresholds.with_overrides(&queue.thresholds)
    }

    /// The configured request demand against `genesys.rate_limit_per_minute`.
    pub fn budget(&self) -> Budget {
        Budget::compute(self)
    }
}
