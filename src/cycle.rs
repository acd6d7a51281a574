//! One poll cycle of one queue: token, rate slot, request, and retries as
//! the [`RetryPolicy`] decides, until a sample or a final failure.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;

use crate::actors::batcher::{ObservationsBatcher, Observe};
use crate::actors::supervisor::Slot;
use crate::actors::token::{GetToken, Invalidate, Lease, TokenActor};
use crate::config::Source;
use crate::error::{ErrorKind, PollError};
use crate::genesys::{ClientOptions, GenesysClient, Outcome, Sample, TokenError};
use crate::ratelimit::RateLimiter;
use crate::retry::{Decision, RetryPolicy};
use crate::telemetry::Telemetry;

/// What a cycle needs; shared by every cycle of one poller.
pub(crate) struct CycleContext {
    pub queue_id: Arc<str>,
    pub source: Source,
    pub options: Arc<ClientOptions>,
    pub tokens: Slot<Addr<TokenActor>>,
    pub limiter: RateLimiter,
    pub retry: RetryPolicy,
    pub telemetry: Telemetry,
    pub batcher: Slot<Addr<ObservationsBatcher>>,
}

/// How far a cycle got; readable even if the cycle is cancelled.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    pub attempts: Cell<u32>,
    pub rate_limited: Cell<u32>,
}

/// The end of a cycle.
#[derive(Debug)]
pub(crate) struct CycleResult {
    pub result: Result<Sample, PollError>,
    /// Latency of the last request that got an answer (or timed out).
    pub latency: Option<Duration>,
}

pub(crate) async fn run_cycle(
    cx: Rc<CycleContext>,
    progress: Rc<Progress>,
    mut rng: fastrand::Rng,
) -> CycleResult {
    let mut retries = 0;
    let mut refetched = false;
    let mut latency = None;
    loop {
        progress.attempts.set(progress.attempts.get() + 1);
        let (error, lease) = match token(&cx).await {
            Err(TokenError::Rejected(reason)) => {
                // Fatal for the process; this cycle ends now.
                let error = PollError::new(
                    ErrorKind::AuthFailed,
                    format!("credentials rejected: {reason}"),
                );
                return CycleResult {
                    result: Err(error),
                    latency,
                };
            }
            Err(TokenError::Unavailable(cause)) => (
                PollError::new(ErrorKind::AuthFailed, format!("no token: {}", cause.detail))
                    .with_retry_after(cause.retry_after),
                None,
            ),
            Ok(lease) => {
                let outcome = fetch(&cx, &lease).await;
                cx.limiter.observe(&outcome.rate);
                latency = Some(outcome.latency);
                match outcome.result {
                    Ok(sample) => {
                        return CycleResult {
                            result: Ok(sample),
                            latency,
                        }
                    }
                    Err(error) => (error, Some(lease)),
                }
            }
        };
        if error.kind == ErrorKind::RateLimited {
            progress.rate_limited.set(progress.rate_limited.get() + 1);
            cx.telemetry.rate_limited();
            if error.status == Some(429) {
                cx.limiter.on_rate_limited();
            }
            if let Some(after) = error.retry_after {
                // The limit is per token: every poller on it waits.
                cx.limiter.pause_until(tokio::time::Instant::now() + after);
            }
        }
        match cx.retry.decide(&error, retries, refetched, &mut rng) {
            Decision::GiveUp => {
                return CycleResult {
                    result: Err(error),
                    latency,
                }
            }
            Decision::RefetchToken => {
                refetched = true;
                if let (Some(tokens), Some(lease)) = (cx.tokens.get(), lease) {
                    tokens.do_send(Invalidate {
                        generation: lease.generation,
                    });
                }
            }
            Decision::Retry(delay) => {
                retries += 1;
                cx.telemetry.retried();
                log::debug!(
                    "queue {}: {error}; retry {retries} in {delay:?}",
                    cx.queue_id
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}

async fn token(cx: &CycleContext) -> Result<Lease, TokenError> {
    let unavailable = |detail: &str| {
        TokenError::Unavailable(PollError::new(ErrorKind::AuthFailed, detail.to_string()))
    };
    let tokens = cx
        .tokens
        .get()
        .ok_or_else(|| unavailable("token actor restarting"))?;
    tokens
        .send(GetToken)
        .await
        .map_err(|_| unavailable("token actor restarting"))?
}

/// One request for this queue, after waiting for a slot in the token's
/// budget (the batcher reserves one slot per batch for `observations`).
async fn fetch(cx: &CycleContext, lease: &Lease) -> Outcome<Sample> {
    if cx.source == Source::Observations {
        let Some(batcher) = cx.batcher.get() else {
            return unavailable("the observations batcher is restarting");
        };
        let observe = Observe {
            queue_id: cx.queue_id.clone(),
            token: lease.token.clone(),
        };
        return batcher
            .send(observe)
            .await
            .unwrap_or_else(|_| unavailable("the observations batcher is restarting"));
    }
    let slot = cx.limiter.reserve();
    cx.telemetry.set_budget(&cx.limiter);
    tokio::time::sleep_until(slot).await;
    let client = GenesysClient::for_thread(&cx.options);
    let id = &*cx.queue_id;
    match cx.source {
        Source::EstimatedWaitTime => client.estimated_wait(&lease.token, id).await,
        _ => client.queue_position(&lease.token, id).await,
    }
}

fn unavailable(detail: &str) -> Outcome<Sample> {
    Outcome {
        result: Err(PollError::new(ErrorKind::Connection, detail)),
        rate: Default::default(),
        latency: Duration::ZERO,
    }
}
