//! Configuration of a simulator instance.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::notifications::NotificationsConfig;

/// Client id the simulator accepts unless configured otherwise.
pub const DEFAULT_CLIENT_ID: &str = "simulated-client";
/// Client secret the simulator accepts unless configured otherwise.
pub const DEFAULT_CLIENT_SECRET: &str = "simulated-secret";

/// Settings of a simulated Genesys Cloud organisation.
///
/// `Debug` never shows the client secret.
#[derive(Clone)]
pub struct SimulatorConfig {
    /// Queues that exist; requests about any other queue get a 404 (or are left
    /// out of observation results).
    pub queue_ids: Vec<String>,
    /// Client id accepted by `POST /oauth/token`.
    pub client_id: String,
    /// Client secret accepted by `POST /oauth/token`.
    pub client_secret: String,
    /// Lifetime of issued tokens, reported as `expires_in` (whole seconds).
    /// `Duration::ZERO` issues tokens that are already expired.
    pub token_lifetime: Duration,
    /// API requests allowed per token in a sliding 60 s window; `None` turns
    /// the limit and the `inin-ratelimit-*` headers off.
    pub rate_limit_per_minute: Option<u32>,
    /// Token requests allowed per client in a sliding 60 s window; `None` = off.
    pub token_rate_limit_per_minute: Option<u32>,
    /// Seed of the queue evolution: the same seed and queue id give the same
    /// queue characteristics and the same evolution for the same elapsed times.
    pub seed: u64,
    /// Number of actix-web worker threads (at least 1 is used).
    pub workers: usize,
    /// Requests kept in the log that [`super::Simulator::requests`] returns
    /// (the oldest are dropped; 0 keeps only the counters).
    pub request_log_capacity: usize,
    /// Every queue changes every second (where the model leaves its waiting
    /// count as it was, the count steps by one): push-source benchmarks.
    pub churn: bool,
    /// The Notifications API: channels, sockets, heartbeats and the publisher.
    pub notifications: NotificationsConfig,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            queue_ids: Vec::new(),
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            client_secret: DEFAULT_CLIENT_SECRET.to_owned(),
            token_lifetime: Duration::from_secs(86_400),
            rate_limit_per_minute: Some(300),
            token_rate_limit_per_minute: Some(300),
            seed: time_seed(),
            workers: 1,
            request_log_capacity: super::REQUEST_LOG_CAPACITY,
            churn: false,
            notifications: NotificationsConfig::default(),
        }
    }
}

impl SimulatorConfig {
    /// Default settings with the given queues.
    pub fn with_queues(ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            queue_ids: ids.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

impl fmt::Debug for SimulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatorConfig")
            .field("queues", &self.queue_ids.len())
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("token_lifetime", &self.token_lifetime)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field(
                "token_rate_limit_per_minute",
                &self.token_rate_limit_per_minute,
            )
            .field("seed", &self.seed)
            .field("workers", &self.workers)
            .field("request_log_capacity", &self.request_log_capacity)
            .field("churn", &self.churn)
            .field("notifications", &self.notifications)
            .finish()
    }
}

/// A seed taken from the clock, for runs that do not ask for determinism.
fn time_seed() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
        d.as_secs() ^ u64::from(d.subsec_nanos()).rotate_left(32)
    })
}
