//! The channel registry: channels, their topics and what each socket was
//! last told, behind one mutex of [`Shared`](super::super::shared::Shared).
//!
//! Lock order: the simulator state first, then the registry (the REST
//! answers run with the state locked). Nothing here awaits: sockets are fed
//! through unbounded tokio channels.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::config::NotificationsConfig;
use super::info::{ChannelInfo, NotificationStats};
use super::messages::{self, Figures};
use super::topics::{topic_of, TopicError, MAX_TOPICS};

/// Longest channel lifetime used (keeps `expires` printable).
const MAX_LIFETIME: Duration = Duration::from_secs(100 * 365 * 86_400);

/// What the registry tells a socket session.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Send this text frame.
    Text(String),
    /// Send this text frame, then close after `grace`.
    Closing {
        /// The `v2.system.socket_closing` message.
        text: String,
        /// Time before the close.
        grace: Duration,
    },
    /// Close the connection at once, without a close frame.
    Drop,
}

/// What a subscription call does.
#[derive(Debug)]
pub(crate) enum Subscription {
    /// `GET`: list.
    List,
    /// `PUT`: replace the topic set by these queues' topics.
    Replace(Vec<String>),
    /// `POST`: add these queues' topics.
    Add(Vec<String>),
    /// `DELETE`: remove every topic.
    Clear,
}

/// Why a subscription call is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ChannelError {
    /// Unknown, expired or evicted channel.
    #[error("Channel {0} not found")]
    NotFound(String),
    /// The body is refused (400).
    #[error(transparent)]
    Topics(#[from] TopicError),
}

/// The socket connected to a channel.
struct Socket {
    generation: u64,
    tx: UnboundedSender<Outbound>,
}

/// A new socket's end of the registry.
pub(crate) struct Attached {
    /// Tells this socket apart from later ones on the same channel.
    pub generation: u64,
    /// Frames to send and close orders.
    pub rx: UnboundedReceiver<Outbound>,
    /// Set while the `stall` fault holds the socket silent.
    pub stalled: Arc<AtomicBool>,
}

struct Channel {
    created: u64,
    expires: SystemTime,
    expires_at: Option<Instant>,
    last_used: u64,
    /// Queue id -> the figures last published to this channel.
    topics: BTreeMap<String, Figures>,
    socket: Option<Socket>,
    stalled: Arc<AtomicBool>,
}

/// Every channel of the simulator's one client.
pub(crate) struct Registry {
    config: NotificationsConfig,
    channels: HashMap<String, Channel>,
    /// Logical clock of the last uses (LRU).
    uses: u64,
    created: u64,
    generations: u64,
    refused: HashSet<String>,
    stats: NotificationStats,
}

impl Registry {
    pub(crate) fn new(config: &NotificationsConfig) -> Self {
        Self {
            config: config.clone(),
            channels: HashMap::new(),
            uses: 0,
            created: 0,
            generations: 0,
            refused: HashSet::new(),
            stats: NotificationStats::default(),
        }
    }

    /// The settings.
    pub(crate) fn config(&self) -> &NotificationsConfig {
        &self.config
    }

    /// Creates a channel (evicting the least recently used one beyond the
    /// limit); returns its id and expiry.
    pub(crate) fn create(&mut self, now: Instant, at: SystemTime) -> (String, SystemTime) {
        self.prune(now);
        while !self.channels.is_empty() && self.channels.len() >= self.config.max_channels.max(1) {
            self.evict_lru();
        }
        let lifetime = self.config.channel_lifetime.min(MAX_LIFETIME);
        let id = uuid::Uuid::new_v4().to_string();
        let expires = at.checked_add(lifetime).unwrap_or(at);
        self.created += 1;
        let channel = Channel {
            created: self.created,
            expires,
            expires_at: now.checked_add(lifetime),
            last_used: self.tick(),
            topics: BTreeMap::new(),
            socket: None,
            stalled: Arc::new(AtomicBool::new(false)),
        };
        self.channels.insert(id.clone(), channel);
        self.stats.channels_created += 1;
        (id, expires)
    }

    /// True while the channel exists and has not expired.
    pub(crate) fn is_live(&mut self, id: &str, now: Instant) -> bool {
        self.prune(now);
        self.channels.contains_key(id)
    }

    /// Runs a subscription call; returns the channel's topics afterwards.
    /// `observe` gives a queue's figures now (`None`: no such queue).
    pub(crate) fn subscribe(
        &mut self,
        id: &str,
        call: Subscription,
        now: Instant,
        mut observe: impl FnMut(&str) -> Option<Figures>,
    ) -> Result<Vec<String>, ChannelError> {
        self.prune(now);
        let used = self.uses + 1;
        let refused = &self.refused;
        let channel = self
            .channels
            .get_mut(id)
            .ok_or_else(|| ChannelError::NotFound(id.to_owned()))?;
        let mut accept = |queue_id: &str, old: Option<Figures>| {
            if refused.contains(queue_id) {
                return None;
            }
            old.or_else(|| observe(queue_id))
        };
        let changed = match call {
            Subscription::List => false,
            Subscription::Clear => {
                channel.topics.clear();
                true
            }
            Subscription::Replace(ids) => {
                if ids.len() > MAX_TOPICS {
                    return Err(TopicError::TooMany(ids.len()).into());
                }
                let mut topics = BTreeMap::new();
                for queue_id in ids {
                    let old = channel.topics.get(&queue_id).copied();
                    if let Some(figures) = accept(&queue_id, old) {
                        topics.insert(queue_id, figures);
                    }
                }
                channel.topics = topics;
                true
            }
            Subscription::Add(ids) => {
                let new: Vec<String> = ids
                    .into_iter()
                    .filter(|queue_id| !channel.topics.contains_key(queue_id))
                    .collect();
                let total = channel.topics.len() + new.len();
                if total > MAX_TOPICS {
                    return Err(TopicError::TooMany(total).into());
                }
                for queue_id in new {
                    if let Some(figures) = accept(&queue_id, None) {
                        channel.topics.insert(queue_id, figures);
                    }
                }
                true
            }
        };
        if changed {
            channel.last_used = used;
            self.uses = used;
        }
        Ok(channel
            .topics
            .keys()
            .map(|queue_id| topic_of(queue_id))
            .collect())
    }

    /// Attaches a new socket to a live channel; an older socket is closed.
    pub(crate) fn connect(&mut self, id: &str, now: Instant) -> Option<Attached> {
        self.prune(now);
        self.generations += 1;
        let generation = self.generations;
        let used = self.tick();
        let channel = self.channels.get_mut(id)?;
        let (tx, rx) = unbounded_channel();
        // Dropping the old sender ends the old session, which closes its socket.
        channel.socket = Some(Socket { generation, tx });
        channel.last_used = used;
        self.stats.sockets_opened += 1;
        Some(Attached {
            generation,
            rx,
            stalled: channel.stalled.clone(),
        })
    }

    /// The session of `generation` has ended.
    pub(crate) fn socket_ended(&mut self, id: &str, generation: u64) {
        if let Some(channel) = self.channels.get_mut(id) {
            if channel.socket.as_ref().map(|s| s.generation) == Some(generation) {
                channel.socket = None;
            }
        }
    }

    /// Counts a ping frame.
    pub(crate) fn count_ping(&mut self) {
        self.stats.pings += 1;
    }

    /// One publisher pass: for each connected, not stalled channel, one
    /// message per topic whose figures changed since last published to it.
    /// Returns the number of messages sent.
    pub(crate) fn publish(
        &mut self,
        now: Instant,
        at: SystemTime,
        mut observe: impl FnMut(&str) -> Option<Figures>,
    ) -> u64 {
        self.prune(now);
        let period = self.config.publish_period;
        let mut sent = 0;
        for channel in self.channels.values_mut() {
            if channel.stalled.load(Ordering::Relaxed) {
                continue;
            }
            let Some(socket) = &channel.socket else {
                continue;
            };
            let mut gone = false;
            for (queue_id, last) in &mut channel.topics {
                let Some(figures) = observe(queue_id) else {
                    continue;
                };
                let Some(text) = messages::observation(queue_id, *last, figures, at, period) else {
                    continue;
                };
                if socket.tx.send(Outbound::Text(text)).is_err() {
                    gone = true;
                    break;
                }
                *last = figures;
                sent += 1;
            }
            if gone {
                channel.socket = None;
            }
        }
        self.stats.messages_published += sent;
        sent
    }

    /// Closes the channel's socket abruptly; false without one.
    pub(crate) fn drop_socket(&mut self, id: &str) -> bool {
        let socket = self.channels.get_mut(id).and_then(|c| c.socket.take());
        socket.is_some_and(|socket| {
            let _ = socket.tx.send(Outbound::Drop);
            true
        })
    }

    /// Holds the channel's socket silent (or lets it talk again); false for an unknown channel.
    pub(crate) fn stall(&mut self, id: &str, stalled: bool) -> bool {
        self.channels.get(id).is_some_and(|channel| {
            channel.stalled.store(stalled, Ordering::Relaxed);
            true
        })
    }

    /// Sends `v2.system.socket_closing`, the close follows after the grace;
    /// false without a socket.
    pub(crate) fn announce_closing(&mut self, id: &str) -> bool {
        let grace = self.config.socket_closing_grace;
        let socket = self.channels.get(id).and_then(|c| c.socket.as_ref());
        socket.is_some_and(|socket| {
            let text = messages::socket_closing();
            socket.tx.send(Outbound::Closing { text, grace }).is_ok()
        })
    }

    /// Makes the channel gone now (its socket closes); false for an unknown channel.
    pub(crate) fn expire(&mut self, id: &str) -> bool {
        self.channels.remove(id).is_some()
    }

    /// Like [`Self::expire`], counted as an eviction.
    pub(crate) fn evict(&mut self, id: &str) -> bool {
        let evicted = self.expire(id);
        if evicted {
            self.stats.channels_evicted += 1;
        }
        evicted
    }

    /// Subscriptions to these queues' topics are refused from now on (empty: none).
    pub(crate) fn refuse(&mut self, queue_ids: Vec<String>) {
        self.refused = queue_ids.into_iter().collect();
    }

    /// The live channels, in creation order.
    pub(crate) fn infos(&mut self, now: Instant) -> Vec<ChannelInfo> {
        self.prune(now);
        let mut infos: Vec<ChannelInfo> = self
            .channels
            .iter()
            .map(|(id, channel)| ChannelInfo {
                id: id.clone(),
                topics: channel.topics.len(),
                connected: channel.socket.is_some(),
                stalled: channel.stalled.load(Ordering::Relaxed),
                expires: humantime::format_rfc3339_millis(channel.expires).to_string(),
                created: channel.created,
            })
            .collect();
        infos.sort_by_key(|info| info.created);
        infos
    }

    /// The counters.
    pub(crate) fn stats(&self) -> NotificationStats {
        self.stats.clone()
    }

    /// Closes every socket (the channels stay): the server is stopping.
    pub(crate) fn close_sockets(&mut self) {
        for channel in self.channels.values_mut() {
            channel.socket = None;
        }
    }

    /// Sockets connected now.
    pub(crate) fn connected_sockets(&self) -> usize {
        self.channels
            .values()
            .filter(|c| c.socket.is_some())
            .count()
    }

    fn tick(&mut self) -> u64 {
        self.uses += 1;
        self.uses
    }

    /// Forgets expired channels (dropping their senders closes their sockets).
    fn prune(&mut self, now: Instant) {
        self.channels
            .retain(|_, channel| channel.expires_at.is_none_or(|at| now < at));
    }

    /// Evicts the least recently used channel, one without a socket first.
    fn evict_lru(&mut self) {
        let victim = self
            .channels
            .iter()
            .min_by_key(|(_, channel)| (channel.socket.is_some(), channel.last_used))
            .map(|(id, _)| id.clone());
        if let Some(id) = victim {
            log::debug!("simulator evicts notification channel {id}");
            self.evict(&id);
        }
    }
}

#[cfg(test)]
#[path = "channels_tests.rs"]
mod tests;
