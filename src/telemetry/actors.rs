//! The actors: supervised restarts and the token actor's requests, each an
//! event that is counted and logged in one call.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::labels::{ActorLabels, ChildKind, TokenLabels, TokenResult};
use super::{InternalEvent, Telemetry};
use crate::error::PollError;

pub(super) struct ActorMetrics {
    token_requests: Family<TokenLabels, Counter>,
    pub restarts: Family<ActorLabels, Counter>,
}

impl ActorMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let token_requests = Family::<TokenLabels, Counter>::default();
        registry.register(
            "token_requests",
            "OAuth token requests, by result",
            token_requests.clone(),
        );
        let restarts = Family::<ActorLabels, Counter>::default();
        registry.register(
            "actor_restarts",
            "Supervised actor restarts, by actor kind",
            restarts.clone(),
        );
        for &actor in ChildKind::ALL {
            let _ = restarts.get_or_create(&ActorLabels { actor });
        }
        for &result in TokenResult::ALL {
            let _ = token_requests.get_or_create(&TokenLabels { result });
        }
        ActorMetrics {
            token_requests,
            restarts,
        }
    }

    fn token_request(&self, result: TokenResult) {
        self.token_requests
            .get_or_create(&TokenLabels { result })
            .inc();
    }
}

/// A supervised child exited unexpectedly and starts again after `delay`.
pub(crate) struct ActorRestarted<'a> {
    /// The child id, e.g. `poller:<queue id>`.
    pub id: &'a str,
    pub kind: ChildKind,
    pub delay: Duration,
}

impl InternalEvent for ActorRestarted<'_> {
    fn emit(self, telemetry: &Telemetry) {
        let actor = self.kind;
        let restarts = &telemetry.inner.actors.restarts;
        restarts.get_or_create(&ActorLabels { actor }).inc();
        log::warn!(
            "supervisor: {} exited unexpectedly; restarting in {:?}",
            self.id,
            self.delay
        );
    }
}

/// The token endpoint issued a token, valid (for scheduling) for `lifetime`.
pub(crate) struct TokenIssued {
    pub lifetime: Duration,
}

impl InternalEvent for TokenIssued {
    fn emit(self, telemetry: &Telemetry) {
        telemetry.inner.actors.token_request(TokenResult::Success);
        log::debug!("token: new token, lifetime {}s", self.lifetime.as_secs());
    }
}

/// The token endpoint rejected the credentials (fatal).
pub(crate) struct TokenRejected<'a> {
    pub reason: &'a str,
}

impl InternalEvent for TokenRejected<'_> {
    fn emit(self, telemetry: &Telemetry) {
        telemetry.inner.actors.token_request(TokenResult::Rejected);
        log::error!(
            "token: the token endpoint rejected the credentials: {}",
            self.reason
        );
    }
}

/// No token could be had this time; the next try is in `retry_in`.
pub(crate) struct TokenUnavailable<'a> {
    pub error: &'a PollError,
    pub retry_in: Duration,
}

impl InternalEvent for TokenUnavailable<'_> {
    fn emit(self, telemetry: &Telemetry) {
        telemetry
            .inner
            .actors
            .token_request(TokenResult::Unavailable);
        log::warn!(
            "token: no token ({}); next try in {:?}",
            self.error,
            self.retry_in
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn restarts_and_token_results_are_counted_by_label() {
        let t = Telemetry::new();
        t.emit(ActorRestarted {
            id: "batcher",
            kind: ChildKind::Batcher,
            delay: Duration::from_millis(100),
        });
        t.emit(TokenRejected {
            reason: "invalid_client",
        });
        let error = PollError::new(ErrorKind::Timeout, "slow".to_string());
        t.emit(TokenUnavailable {
            error: &error,
            retry_in: Duration::from_secs(1),
        });
        t.emit(TokenUnavailable {
            error: &error,
            retry_in: Duration::from_secs(2),
        });
        let text = t.encode();
        for line in [
            r#"queuewatch_actor_restarts_total{actor="batcher"} 1"#,
            r#"queuewatch_actor_restarts_total{actor="poller"} 0"#,
            r#"queuewatch_token_requests_total{result="rejected"} 1"#,
            r#"queuewatch_token_requests_total{result="unavailable"} 2"#,
            r#"queuewatch_token_requests_total{result="success"} 0"#,
        ] {
            assert!(text.contains(&format!("{line}\n")), "{line}: {text}");
        }
        assert_eq!(t.restarts_total(), 1);
    }
}
