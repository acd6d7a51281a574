//! Typed labels: callers pass these enums, and the label value text lives
//! only here (label sets derive `EncodeLabelSet`; the value enums implement
//! `EncodeLabelValue` by hand, as the derive writes the variant name verbatim,
//! e.g. `Poller` where `/metrics` has `poller`).

use std::fmt;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};

use crate::error::ErrorKind;
use crate::QueueId;

/// A closed set of label values: the enum, its `ALL` (every series starts at
/// zero) and its text.
macro_rules! label_values {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(crate) enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub(crate) const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The label value as served on `/metrics`.
            pub(crate) fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> fmt::Result {
                EncodeLabelValue::encode(&self.as_str(), encoder)
            }
        }
    };
}

label_values! {
    /// The actor kinds the supervisor restarts (`actor` of `actor_restarts`).
    ChildKind {
        /// One queue's poller.
        Poller => "poller",
        /// The token actor.
        Token => "token",
        /// The metrics (tracking) actor.
        Metrics => "metrics",
        /// The callback fan-out actor.
        Callbacks => "callbacks",
        /// One callback sink (webhook, NATS, custom actor, ...).
        Callback => "callback",
        /// The observations batcher.
        Batcher => "batcher",
        /// The Notifications channel pool (`poll.source: notifications`).
        ChannelPool => "channel_pool",
    }
}

label_values! {
    /// What arrived on a channel WebSocket (`kind` of `push_messages`).
    PushMessage {
        /// A queue observation.
        Observation => "observation",
        /// A heartbeat (or other channel metadata).
        Heartbeat => "heartbeat",
        /// The answer to our ping.
        Pong => "pong",
        /// The announcement that the server closes the socket soon.
        SocketClosing => "socket_closing",
        /// A topic we do not use.
        Other => "other",
        /// A frame that does not parse (logged, dropped).
        Invalid => "invalid",
    }
}

label_values! {
    /// Why a channel was set up again (`reason` of `push_reconnects`).
    Reconnect {
        /// The socket closed or failed.
        Closed => "closed",
        /// Nothing arrived within the watchdog bound.
        Watchdog => "watchdog",
        /// The channel is gone at Genesys (404).
        Gone => "gone",
        /// The server announced `socket_closing`.
        SocketClosing => "socket_closing",
        /// The channel neared its expiry.
        Expiry => "expiry",
        /// Setting the channel up failed; retried with backoff.
        Failed => "failed",
    }
}

label_values! {
    /// How a token request ended (`result` of `token_requests`).
    TokenResult {
        Success => "success",
        Unavailable => "unavailable",
        Rejected => "rejected",
    }
}

label_values! {
    /// A change of queue leases (`change` of `cluster_lease_changes`).
    LeaseChange {
        Acquired => "acquired",
        Released => "released",
        Lost => "lost",
    }
}

label_values! {
    /// How a poll cycle ended (`outcome` of `polls`).
    Outcome {
        Success => "success",
        Failure => "failure",
    }
}

/// `kind` of `poll_failures`: the documented name.
impl EncodeLabelValue for ErrorKind {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> fmt::Result {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct OutcomeLabels {
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct ErrorLabels {
    pub kind: ErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct ActorLabels {
    pub actor: ChildKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct TokenLabels {
    pub result: TokenResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct PushMessageLabels {
    pub kind: PushMessage,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct ReconnectLabels {
    pub reason: Reconnect,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct LeaseLabels {
    pub change: LeaseChange,
}

/// A callback's name (dynamic: the sink names of the configuration).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct CallbackLabels {
    pub callback: String,
}

impl CallbackLabels {
    pub fn new(callback: &str) -> Self {
        CallbackLabels {
            callback: callback.to_string(),
        }
    }
}

/// A queue id (dynamic: the configured queues); shares the id's allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct QueueLabels {
    pub queue_id: QueueId,
}

impl QueueLabels {
    pub fn new(queue_id: &QueueId) -> Self {
        QueueLabels {
            queue_id: queue_id.clone(),
        }
    }
}

impl EncodeLabelValue for QueueId {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::registry::Registry;

    /// The text of one label set as `/metrics` serves it.
    fn encoded<S>(labels: S) -> String
    where
        S: EncodeLabelSet + Clone + std::hash::Hash + Eq + fmt::Debug + Send + Sync + 'static,
    {
        let mut registry = Registry::default();
        let family = Family::<S, Counter>::default();
        registry.register("x", "x", family.clone());
        family.get_or_create(&labels).inc();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let line = text.lines().find(|l| l.starts_with("x_total{")).unwrap();
        line["x_total".len()..line.len() - " 1".len()].to_string()
    }

    #[test]
    fn values_encode_as_the_served_literals() {
        let texts = |all: &[&str]| all.join(",");
        let kinds: Vec<_> = ChildKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            texts(&kinds),
            "poller,token,metrics,callbacks,callback,batcher,channel_pool"
        );
        let messages: Vec<_> = PushMessage::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(
            texts(&messages),
            "observation,heartbeat,pong,socket_closing,other,invalid"
        );
        let reasons: Vec<_> = Reconnect::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            texts(&reasons),
            "closed,watchdog,gone,socket_closing,expiry,failed"
        );
        let results: Vec<_> = TokenResult::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(texts(&results), "success,unavailable,rejected");
        let changes: Vec<_> = LeaseChange::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(texts(&changes), "acquired,released,lost");
        let outcomes: Vec<_> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(texts(&outcomes), "success,failure");
    }

    #[test]
    fn label_sets_encode_as_before() {
        let actor = ActorLabels {
            actor: ChildKind::Callbacks,
        };
        assert_eq!(encoded(actor), r#"{actor="callbacks"}"#);
        let result = TokenLabels {
            result: TokenResult::Unavailable,
        };
        assert_eq!(encoded(result), r#"{result="unavailable"}"#);
        let change = LeaseLabels {
            change: LeaseChange::Acquired,
        };
        assert_eq!(encoded(change), r#"{change="acquired"}"#);
        let outcome = OutcomeLabels {
            outcome: Outcome::Failure,
        };
        assert_eq!(encoded(outcome), r#"{outcome="failure"}"#);
        let kind = ErrorLabels {
            kind: ErrorKind::InvalidResponse,
        };
        assert_eq!(encoded(kind), r#"{kind="invalid_response"}"#);
        assert_eq!(
            encoded(CallbackLabels::new("nats:bench")),
            r#"{callback="nats:bench"}"#
        );
        assert_eq!(
            encoded(QueueLabels::new(&"q-1".into())),
            r#"{queue_id="q-1"}"#
        );
    }
}
