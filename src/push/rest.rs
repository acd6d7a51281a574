//! Every REST call of the push source goes through [`call`]: a token from
//! the token actor, a slot of the token's one budget, the `Retry-After`
//! gate (a 429 pauses every request on the token), and one token refetch on
//! a 401. [`snapshot`] is the batched observations snapshot built on it.

use std::future::Future;
use std::sync::Arc;

use actix::Addr;
use tokio::time::Instant;

use super::store::LiveStore;
use crate::actors::cycle::{denied_error, invalidate, server_limited, token, token_failure};
use crate::actors::token::{TokenActor, TokenBoard};
use crate::error::{ErrorKind, PollError};
use crate::genesys::wire::OBSERVATIONS_MAX_QUEUES;
use crate::genesys::{ClientOptions, GenesysClient, Outcome};
use crate::ratelimit::RateLimiter;
use crate::secret::Secret;
use crate::supervisor::Slot;
use crate::telemetry::Telemetry;
use crate::QueueId;

/// What the push source's REST calls need.
#[derive(Clone)]
pub(crate) struct Rest {
    pub options: Arc<ClientOptions>,
    pub tokens: Slot<Addr<TokenActor>>,
    pub token_board: TokenBoard,
    pub limiter: RateLimiter,
    pub telemetry: Telemetry,
}

impl Rest {
    /// One REST call, within the budget; a 401 refetches the token once.
    pub(crate) async fn call<T, F, Fut>(&self, send: F) -> Result<T, PollError>
    where
        F: Fn(GenesysClient, Secret) -> Fut,
        Fut: Future<Output = Outcome<T>>,
    {
        let mut refused = None;
        loop {
            let lease = token(&self.tokens, &self.token_board, refused)
                .await
                .map_err(token_failure)?;
            if let Err(denied) = self.limiter.acquire(None).await {
                return Err(denied_error(denied));
            }
            self.telemetry.set_budget(&self.limiter);
            let client = GenesysClient::for_thread(&self.options);
            let outcome = send(client, lease.token.clone()).await;
            self.limiter.observe(&outcome.rate);
            let error = match outcome.result {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            server_limited(&self.limiter, &self.telemetry, &error);
            if error.kind == ErrorKind::Unauthorized && refused.is_none() {
                refused = Some(lease.generation);
                invalidate(&self.tokens, lease.generation);
                continue;
            }
            return Err(error);
        }
    }

    /// A snapshot of `ids`, 100 queues a request, merged into `store`.
    /// Each batch's data counts as of when its request was sent, so a push
    /// that arrived meanwhile is never overwritten by it.
    pub(crate) async fn snapshot(
        &self,
        store: &LiveStore,
        ids: &[QueueId],
    ) -> Result<(), PollError> {
        for chunk in ids.chunks(OBSERVATIONS_MAX_QUEUES) {
            let names: Vec<&str> = chunk.iter().map(|id| id.as_str()).collect();
            // When the request left (after the budget's wait).
            let sent = std::cell::Cell::new(Instant::now());
            let metrics = self
                .call(|client, token| {
                    let names = names.clone();
                    sent.set(Instant::now());
                    async move { client.observation_metrics(&token, &names).await }
                })
                .await?;
            let sent = sent.get();
            for id in chunk {
                if let (Some(cell), Some(metrics)) = (store.cell(id), metrics.get(id.as_str())) {
                    cell.snapshot(metrics, sent);
                }
            }
        }
        Ok(())
    }
}
