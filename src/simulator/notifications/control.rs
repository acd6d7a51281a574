//! The run-time switches of the Notifications API, as the [`Simulator`]
//! handle and the admin routes call them.

use std::time::Instant;

use super::super::server::Simulator;
use super::super::shared::Shared;
use super::info::{ChannelInfo, NotificationStats};

pub(crate) fn drop_socket(shared: &Shared, channel_id: &str) -> bool {
    log::info!("simulator drops the socket of channel {channel_id}");
    shared.notifications().drop_socket(channel_id)
}

pub(crate) fn stall(shared: &Shared, channel_id: &str, stalled: bool) -> bool {
    log::info!("simulator stalls the socket of channel {channel_id}: {stalled}");
    shared.notifications().stall(channel_id, stalled)
}

pub(crate) fn announce_socket_closing(shared: &Shared, channel_id: &str) -> bool {
    log::info!("simulator announces the closing of channel {channel_id}'s socket");
    shared.notifications().announce_closing(channel_id)
}

pub(crate) fn expire_channel(shared: &Shared, channel_id: &str) -> bool {
    log::info!("simulator expires channel {channel_id}");
    shared.notifications().expire(channel_id)
}

pub(crate) fn evict_channel(shared: &Shared, channel_id: &str) -> bool {
    log::info!("simulator evicts channel {channel_id}");
    shared.notifications().evict(channel_id)
}

pub(crate) fn refuse_topics(shared: &Shared, queue_ids: Vec<String>) {
    log::info!(
        "simulator refuses the topics of {} queue(s)",
        queue_ids.len()
    );
    shared.notifications().refuse(queue_ids);
}

pub(crate) fn pin_waiting(shared: &Shared, queue_id: &str, waiting: Option<u32>) -> bool {
    log::info!("simulator pins the waiting count of queue {queue_id}: {waiting:?}");
    shared
        .state()
        .pin_waiting(queue_id, waiting, Instant::now())
}

/// The Notifications API faults and views.
impl Simulator {
    /// Closes the channel's socket abruptly (no close frame); the channel
    /// stays and the client may reconnect. False when it has no socket.
    pub fn drop_socket(&self, channel_id: &str) -> bool {
        drop_socket(&self.shared, channel_id)
    }

    /// `true`: the channel's socket sends nothing (no heartbeats, pongs or
    /// topic messages) but stays open; `false`: it talks again, and the next
    /// publisher pass sends what changed meanwhile. False for an unknown channel.
    pub fn stall(&self, channel_id: &str, stalled: bool) -> bool {
        stall(&self.shared, channel_id, stalled)
    }

    /// Sends `v2.system.socket_closing` on the channel's socket and closes it
    /// after `socket_closing_grace`. False when it has no socket.
    pub fn announce_socket_closing(&self, channel_id: &str) -> bool {
        announce_socket_closing(&self.shared, channel_id)
    }

    /// The channel is gone now (404 everywhere, its socket closed).
    /// False for an unknown channel.
    pub fn expire_channel(&self, channel_id: &str) -> bool {
        expire_channel(&self.shared, channel_id)
    }

    /// Like [`Self::expire_channel`], counted in `channels_evicted`.
    pub fn evict_channel(&self, channel_id: &str) -> bool {
        evict_channel(&self.shared, channel_id)
    }

    /// From now on subscriptions to these queues' topics are refused (left
    /// out of `entities`); an empty list refuses none. Topics already
    /// subscribed stay.
    pub fn refuse_topics(&self, queue_ids: Vec<String>) {
        refuse_topics(&self.shared, queue_ids);
    }

    /// `Some(n)`: the queue stands still with `n` customers waiting (REST and
    /// push) until released with `None`, when it moves again from there.
    /// False when the queue does not exist.
    pub fn pin_waiting(&self, queue_id: &str, waiting: Option<u32>) -> bool {
        pin_waiting(&self.shared, queue_id, waiting)
    }

    /// The live channels (not expired or evicted), in creation order.
    pub fn channels(&self) -> Vec<ChannelInfo> {
        self.shared.notifications().infos(Instant::now())
    }

    /// The Notifications API counters since start.
    pub fn notification_stats(&self) -> NotificationStats {
        self.shared.notifications().stats()
    }

    /// Sockets connected now.
    pub fn connected_sockets(&self) -> usize {
        self.shared.notifications().connected_sockets()
    }

    /// Runs one publisher pass now (besides the periodic ones); returns the
    /// number of topic messages sent.
    pub fn publish_now(&self) -> u64 {
        super::publisher::pass(&self.shared)
    }
}
