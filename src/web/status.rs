//! What the status API reads of a running instance: the [`Status`] trait,
//! which [`crate::Handle`] implements, and [`Readiness`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::actors::metrics::{QueueDetail, QueueSummary};
use crate::secret::Secret;

/// Readiness as `/readyz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// A valid token is held.
    pub token_held: bool,
    /// Successful polls so far.
    pub successful_polls: u64,
}

impl Readiness {
    /// Ready: a token is held and at least one poll succeeded.
    pub fn ready(&self) -> bool {
        self.token_held && self.successful_polls > 0
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
    /// Every queue's current state.
    fn queues(&self) -> impl Future<Output = Vec<QueueSummary>>;
    /// One queue with its tracking matrix.
    fn queue(&self, queue_id: &str) -> impl Future<Output = Option<QueueDetail>>;
    /// Every event from now on, as JSON text.
    fn event_stream(&self) -> tokio::sync::broadcast::Receiver<Arc<str>>;
}
