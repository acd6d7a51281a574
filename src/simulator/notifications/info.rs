//! What the simulator shows of its channels: [`ChannelInfo`] and the counters.

use serde::{Deserialize, Serialize};

/// A live channel as [`Simulator::channels`](crate::simulator::Simulator::channels) shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelInfo {
    /// Channel id (the last segment of `connectUri`).
    pub id: String,
    /// Topics subscribed.
    pub topics: usize,
    /// True while a socket is connected.
    pub connected: bool,
    /// True while the `stall` fault holds its socket silent.
    pub stalled: bool,
    /// When the channel expires (RFC 3339, UTC).
    pub expires: String,
    /// Creation order: 1 for the first channel of the simulator, and so on.
    pub created: u64,
}

/// Counters of the Notifications API since the simulator started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationStats {
    /// Channels created (`POST /api/v2/notifications/channels` answered 200).
    pub channels_created: u64,
    /// Channels evicted: by the channel limit or by the `evict` fault.
    pub channels_evicted: u64,
    /// WebSockets opened (upgrades of `GET /channels/{id}`).
    pub sockets_opened: u64,
    /// Topic messages sent by the publisher.
    pub messages_published: u64,
    /// `{"message":"ping"}` frames received.
    pub pings: u64,
}
