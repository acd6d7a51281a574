//! Settings of the simulated Notifications API.

use std::time::Duration;

/// Settings of the Notifications API of a simulator
/// ([`SimulatorConfig::notifications`](crate::simulator::SimulatorConfig::notifications)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationsConfig {
    /// Time between two heartbeats of a socket (30 s; at least 1 ms is used).
    pub heartbeat_period: Duration,
    /// Lifetime of a channel from its creation (`expires`; 24 h).
    pub channel_lifetime: Duration,
    /// Time between a `v2.system.socket_closing` message and the close (60 s).
    pub socket_closing_grace: Duration,
    /// Most channels of the client (one client per simulator; 20): creating
    /// one more evicts the least recently used.
    pub max_channels: usize,
    /// Time between two passes of the change publisher (1 s; at least 1 ms is used).
    pub publish_period: Duration,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            heartbeat_period: Duration::from_secs(30),
            channel_lifetime: Duration::from_secs(86_400),
            socket_closing_grace: Duration::from_secs(60),
            max_channels: 20,
            publish_period: Duration::from_secs(1),
        }
    }
}
