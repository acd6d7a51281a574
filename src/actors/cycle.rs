//! One poll cycle of one queue: token, rate slot, request, and retries as
//! the [`RetryPolicy`] decides, until a sample or a final failure.
//!
//! A cycle never waits past its deadline (the queue's next tick) for the
//! rate budget: a `Retry-After` pause or a full budget beyond it ends the
//! cycle at once with `rate_limited`, without a request. A clean stop
//! (the limiter closed) ends a cycle that is only waiting with `cancelled`.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use tokio::time::Instant;

use crate::actors::batcher::{ObservationsBatcher, Observe};
use crate::actors::token::{GetToken, Invalidate, Lease, TokenActor, TokenBoard};
use crate::config::Source;
use crate::error::{ErrorKind, PollError};
use crate::genesys::{ClientOptions, GenesysClient, Outcome, QueueUrl, Sample, TokenError};
use crate::ratelimit::{Deadline, Denied, RateLimiter};
use crate::retry::{Decision, RetryPolicy};
use crate::supervisor::Slot;
use crate::telemetry::Telemetry;
use crate::QueueId;

/// What a cycle needs; shared by every cycle of one poller.
pub(crate) struct CycleContext {
    pub queue_id: QueueId,
    pub source: Source,
    pub options: Arc<ClientOptions>,
    pub tokens: Slot<Addr<TokenActor>>,
    pub token_board: TokenBoard,
    pub limiter: RateLimiter,
    pub retry: RetryPolicy,
    pub telemetry: Telemetry,
    pub batcher: Slot<Addr<ObservationsBatcher>>,
    /// The queue's request URL, for the sources with one request per queue.
    pub url: Option<QueueUrl>,
}

impl CycleContext {
    /// The request URL of `queue_id` for `source`, if it has its own
    /// request (`guest_position`, `estimated_wait_time`).
    pub(crate) fn url_for(
        options: &ClientOptions,
        source: Source,
        queue_id: &str,
    ) -> Option<QueueUrl> {
        match source {
            Source::GuestPosition => Some(QueueUrl::position(&options.api_base, queue_id)),
            Source::EstimatedWaitTime => {
                Some(QueueUrl::estimated_wait(&options.api_base, queue_id))
            }
            Source::Observations | Source::Notifications => None,
        }
    }
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
    /// When the sample's response was in (for `data_age_ms`).
    pub received: Option<Instant>,
}

/// Runs one cycle; `deadline` is the queue's next tick.
pub(crate) async fn run_cycle(
    cx: Rc<CycleContext>,
    progress: Rc<Progress>,
    deadline: Option<Deadline>,
    mut rng: fastrand::Rng,
) -> CycleResult {
    let mut retries = 0;
    let mut refetched = false;
    // The generation this cycle saw refused (401): never taken from the
    // board again, even before the token actor has read the `Invalidate`.
    let mut refused = None;
    let mut latency = None;
    loop {
        progress.attempts.set(progress.attempts.get() + 1);
        let (error, lease) = match token(&cx.tokens, &cx.token_board, refused).await {
            Err(error @ TokenError::Rejected(_)) => {
                // Fatal for the process; this cycle ends now.
                return CycleResult {
                    result: Err(token_failure(error)),
                    latency,
                    received: None,
                };
            }
            Err(error @ TokenError::Unavailable(_)) => (token_failure(error), None),
            Ok(lease) => {
                let outcome = fetch(&cx, &lease, deadline).await;
                cx.limiter.observe(&outcome.rate);
                latency = Some(outcome.latency);
                match outcome.result {
                    Ok(sample) => {
                        return CycleResult {
                            result: Ok(sample),
                            latency,
                            received: Some(Instant::now()),
                        }
                    }
                    Err(error) => (error, Some(lease)),
                }
            }
        };
        if server_limited(&cx.limiter, &cx.telemetry, &error) {
            progress.rate_limited.set(progress.rate_limited.get() + 1);
        }
        let decision = cx.retry.decide(&error, retries, refetched, &mut rng);
        let decision = match decision {
            // Waiting out a rate limit past the next tick would be silent:
            // end now; the next tick reports the pause again.
            Decision::Retry(delay)
                if error.kind == ErrorKind::RateLimited
                    && deadline
                        .is_some_and(|d| Instant::now() + delay >= cx.limiter.resolve(d)) =>
            {
                Decision::GiveUp
            }
            other => other,
        };
        match decision {
            Decision::GiveUp => {
                return CycleResult {
                    result: Err(error),
                    latency,
                    received: None,
                }
            }
            Decision::RefetchToken => {
                refetched = true;
                if let Some(lease) = lease {
                    refused = Some(lease.generation);
                    invalidate(&cx.tokens, lease.generation);
                }
            }
            Decision::Retry(delay) => {
                retries += 1;
                cx.telemetry.retried();
                log::debug!(
                    "queue {}: {error}; retry {retries} in {delay:?}",
                    cx.queue_id
                );
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    // A clean stop: a cycle between attempts sent nothing.
                    () = cx.limiter.closed() => {
                        return CycleResult {
                            result: Err(PollError::new(
                                ErrorKind::Cancelled,
                                "shutdown: the cycle was waiting to retry",
                            )),
                            latency,
                            received: None,
                        };
                    }
                }
            }
        }
    }
}

/// Applies a server's rate-limit answer to the token's budget: a 429 cuts
/// the rate, a `Retry-After` pauses every request on the token. Whether
/// `error` was one. Only a server's answer counts; our own budget's refusal
/// (no status) just reports the pause already in force.
pub(crate) fn server_limited(
    limiter: &RateLimiter,
    telemetry: &Telemetry,
    error: &PollError,
) -> bool {
    if error.kind != ErrorKind::RateLimited || error.status.is_none() {
        return false;
    }
    telemetry.rate_limited();
    if error.status == Some(429) {
        limiter.on_rate_limited();
    }
    if let Some(after) = error.retry_after {
        // The limit is per token: every request on it waits.
        if let Some(until) = Instant::now().checked_add(after) {
            limiter.pause_until(until);
        }
        telemetry.set_budget(limiter);
    }
    true
}

/// Why no token could be had, as the failure of the request it was for
/// (`auth_failed`; an unavailable endpoint's `Retry-After` kept).
pub(crate) fn token_failure(error: TokenError) -> PollError {
    match error {
        TokenError::Rejected(reason) => PollError::new(
            ErrorKind::AuthFailed,
            format!("credentials rejected: {reason}"),
        ),
        TokenError::Unavailable(cause) => {
            PollError::new(ErrorKind::AuthFailed, format!("no token: {}", cause.detail))
                .with_retry_after(cause.retry_after)
        }
    }
}

/// A token: the one the token actor has posted (unless it is of the
/// `refused` generation), else the actor's answer (`Unavailable` while it
/// restarts). The message goes after any `Invalidate` already sent, so the
/// actor answers with a new token.
pub(crate) async fn token(
    tokens: &Slot<Addr<TokenActor>>,
    board: &TokenBoard,
    refused: Option<u64>,
) -> Result<Lease, TokenError> {
    let posted = board.current(Instant::now());
    if let Some(lease) = posted.filter(|lease| Some(lease.generation) != refused) {
        return Ok(lease);
    }
    let unavailable = |detail: &str| {
        TokenError::Unavailable(PollError::new(ErrorKind::AuthFailed, detail.to_string()))
    };
    // Sent from under the slot's lock, without cloning the address (a
    // clone of an actix address allocates).
    let request = tokens
        .with(|tokens| tokens.map(|tokens| tokens.send(GetToken)))
        .ok_or_else(|| unavailable("token actor restarting"))?;
    request
        .await
        .map_err(|_| unavailable("token actor restarting"))?
}

/// One request for this queue, after waiting for a slot in the token's
/// budget (the batcher takes one slot per batch for `observations`).
async fn fetch(cx: &CycleContext, lease: &Lease, deadline: Option<Deadline>) -> Outcome<Sample> {
    if cx.source == Source::Observations {
        let Some(batcher) = cx.batcher.get() else {
            return unavailable("the observations batcher is restarting");
        };
        let observe = Observe {
            queue_id: cx.queue_id.clone(),
            token: lease.token.clone(),
            deadline,
        };
        return batcher
            .send(observe)
            .await
            .unwrap_or_else(|_| unavailable("the observations batcher is restarting"));
    }
    let acquired = cx.limiter.acquire(deadline).await;
    cx.telemetry.set_budget(&cx.limiter);
    if let Err(denied) = acquired {
        return Outcome {
            result: Err(denied_error(denied)),
            rate: Default::default(),
            latency: Duration::ZERO,
        };
    }
    let Some(url) = &cx.url else {
        return unavailable("no request URL for this source");
    };
    GenesysClient::for_thread(&cx.options)
        .queue_data(&lease.token, &cx.queue_id, url)
        .await
}

/// Tells the token actor that the API refused token `generation` (a 401),
/// so it fetches a new one; nothing to tell while it restarts.
pub(crate) fn invalidate(tokens: &Slot<Addr<TokenActor>>, generation: u64) {
    tokens.with(|tokens| {
        if let Some(tokens) = tokens {
            tokens.do_send(Invalidate { generation });
        }
    });
}

/// The failure of a cycle the budget refused: `rate_limited` (with the
/// time left as its `retry_after`, but no status: nothing was sent) or
/// `cancelled` at a clean stop.
pub(crate) fn denied_error(denied: Denied) -> PollError {
    let now = Instant::now();
    match denied {
        Denied::Paused { until } => PollError::new(ErrorKind::RateLimited, denied.to_string())
            .with_retry_after(Some(until.saturating_duration_since(now))),
        Denied::NoSlot { slot } => PollError::new(ErrorKind::RateLimited, denied.to_string())
            .with_retry_after(Some(slot.saturating_duration_since(now))),
        Denied::Closed => PollError::new(ErrorKind::Cancelled, denied.to_string()),
    }
}

fn unavailable(detail: &str) -> Outcome<Sample> {
    Outcome {
        result: Err(PollError::new(ErrorKind::Connection, detail)),
        rate: Default::default(),
        latency: Duration::ZERO,
    }
}
