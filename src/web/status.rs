//! What the status API reads of a running instance: the [`Status`] trait,
//! which [`crate::Handle`] implements, and [`Readiness`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::actors::metrics::{QueueDetail, QueuePage};
use crate::secret::Secret;

/// Readiness as `/readyz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// A valid token is held.
    pub token_held: bool,
    /// Successful polls so far.
    pub successful_polls: u64,
    /// How long ago the last poll (of any queue) succeeded; `None`: none yet.
    pub since_last_success: Option<Duration>,
    /// A poll must have succeeded within this: three times the longest
    /// interval in force (configured interval times the rate-budget
    /// stretch). `None` when no queue is polled (a cluster member holding
    /// no lease): then a held token is enough.
    pub window: Option<Duration>,
}

impl Readiness {
    /// Ready: a token is held and a poll succeeded within [`Readiness::window`].
    pub fn ready(&self) -> bool {
        self.reason().is_none()
    }

    /// Why the instance is not ready (`None` when it is).
    pub fn reason(&self) -> Option<String> {
        if !self.token_held {
            return Some("no token held".to_owned());
        }
        // No queue polled: nothing that could have failed.
        let window = self.window?;
        match self.since_last_success {
            None => Some("no poll succeeded yet".to_owned()),
            Some(age) if age > window => Some(format!(
                "no poll succeeded in the last {}",
                humantime::format_duration(readable(window))
            )),
            Some(_) => None,
        }
    }
}

/// `window` rounded for a message: whole seconds, or milliseconds below one.
fn readable(window: Duration) -> Duration {
    if window >= Duration::from_secs(1) {
        Duration::from_secs(window.as_secs_f64().round() as u64)
    } else {
        Duration::from_millis(window.as_millis() as u64)
    }
}

/// What the status API reads of a running instance.
pub trait Status: Clone + 'static {
    /// The bearer token the API requires, if any.
    fn http_token(&self) -> Option<Secret>;
    /// The address the API is meant to be reached at (`http.bind`), which
    /// the `Host` check accepts besides loopback names.
    fn http_bind(&self) -> Option<SocketAddr>;
    /// Whether the instance is ready.
    fn readiness(&self) -> impl Future<Output = Readiness>;
    /// The metrics, as OpenMetrics text.
    fn metrics_text(&self) -> String;
    /// One page of the queues' current state, sorted by id: the queues
    /// whose id sorts after `after`, at most `limit` of them.
    fn queues(&self, after: Option<&str>, limit: usize) -> impl Future<Output = QueuePage>;
    /// One queue with its tracking matrix; with `points`, only the newest
    /// that many snapshots of its history.
    fn queue(
        &self,
        queue_id: &str,
        points: Option<usize>,
    ) -> impl Future<Output = Option<QueueDetail>>;
    /// Every event from now on, as JSON text.
    fn event_stream(&self) -> tokio::sync::broadcast::Receiver<Arc<str>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readiness(token_held: bool, since: Option<u64>, window: Option<u64>) -> Readiness {
        Readiness {
            token_held,
            successful_polls: u64::from(since.is_some()),
            since_last_success: since.map(Duration::from_secs),
            window: window.map(Duration::from_secs),
        }
    }

    #[test]
    fn ready_needs_a_token_and_a_recent_success() {
        assert_eq!(readiness(true, Some(3), Some(15)).reason(), None);
        assert!(readiness(true, Some(15), Some(15)).ready());
        assert_eq!(
            readiness(false, Some(3), Some(15)).reason().as_deref(),
            Some("no token held")
        );
        assert_eq!(
            readiness(true, None, Some(15)).reason().as_deref(),
            Some("no poll succeeded yet")
        );
        assert_eq!(
            readiness(true, Some(16), Some(15)).reason().as_deref(),
            Some("no poll succeeded in the last 15s")
        );
        // No queue polled (a cluster member without leases): the token suffices.
        assert!(readiness(true, None, None).ready());
        assert!(!readiness(false, None, None).ready());
    }

    #[test]
    fn the_window_reads_in_whole_seconds_or_milliseconds() {
        assert_eq!(
            readable(Duration::from_millis(18_450)),
            Duration::from_secs(18)
        );
        assert_eq!(
            readable(Duration::from_micros(600_700)),
            Duration::from_millis(600)
        );
        let r = Readiness {
            token_held: true,
            successful_polls: 1,
            since_last_success: Some(Duration::from_secs(200)),
            window: Some(Duration::from_secs(90)),
        };
        assert_eq!(
            r.reason().as_deref(),
            Some("no poll succeeded in the last 1m 30s")
        );
    }
}
