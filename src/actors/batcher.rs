//! ObservationsBatcher: the shared fetcher of the `observations` source.
//! Pollers of one batch tick together and ask for their queue; requests that
//! arrive within a short linger are sent as one analytics query of at most
//! 100 queues, and each poller gets its own queue's sample back (or a
//! `not_found` failure when the response leaves its queue out).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::error::{ErrorKind, PollError};
use crate::genesys::wire::OBSERVATIONS_MAX_QUEUES;
use crate::genesys::{ClientOptions, GenesysClient, Outcome, Sample};
use crate::ratelimit::RateLimiter;
use crate::secret::Secret;
use crate::supervisor::ExitGuard;
use crate::telemetry::Telemetry;
use crate::QueueId;

/// How long the first request of a batch waits for the others.
pub const LINGER: Duration = Duration::from_millis(25);

/// One poller's request for its queue's observation.
#[derive(Message)]
#[rtype(result = "Outcome<Sample>")]
pub struct Observe {
    /// The queue.
    pub queue_id: QueueId,
    /// The token the poller holds.
    pub token: Secret,
    /// The poller's next tick: the budget is not waited for past it.
    pub deadline: Option<crate::ratelimit::Deadline>,
}

struct Pending {
    queue_id: QueueId,
    token: Secret,
    deadline: Option<crate::ratelimit::Deadline>,
    reply: oneshot::Sender<Outcome<Sample>>,
}

/// The batching fetcher.
pub struct ObservationsBatcher {
    options: Arc<ClientOptions>,
    limiter: RateLimiter,
    telemetry: Telemetry,
    pending: Vec<Pending>,
    timer: Option<SpawnHandle>,
    _guard: ExitGuard,
}

impl ObservationsBatcher {
    /// A batcher sending on `options`' API host within `limiter`'s budget.
    pub fn new(
        options: Arc<ClientOptions>,
        limiter: RateLimiter,
        telemetry: Telemetry,
        guard: ExitGuard,
    ) -> Self {
        ObservationsBatcher {
            options,
            limiter,
            telemetry,
            pending: Vec::new(),
            timer: None,
            _guard: guard,
        }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        while !self.pending.is_empty() {
            let take = self.pending.len().min(OBSERVATIONS_MAX_QUEUES);
            let batch: Vec<Pending> = self.pending.drain(..take).collect();
            self.send(batch, ctx);
        }
    }

    fn send(&self, batch: Vec<Pending>, ctx: &mut Context<Self>) {
        let client = GenesysClient::for_thread(&self.options);
        let (limiter, telemetry) = (self.limiter.clone(), self.telemetry.clone());
        // The newest token asked with: all pollers share one token actor.
        let token = batch.last().map(|p| p.token.clone());
        // The batch waits no longer than its most urgent poller.
        let deadline = batch
            .iter()
            .filter_map(|p| p.deadline)
            .min_by_key(|d| d.next_tick);
        ctx.spawn(actix::fut::wrap_future(async move {
            let Some(token) = token else { return };
            let acquired = limiter.acquire(deadline).await;
            telemetry.set_budget(&limiter);
            if let Err(denied) = acquired {
                let error = crate::actors::cycle::denied_error(denied);
                for pending in batch {
                    let _ = pending.reply.send(Outcome {
                        result: Err(error.clone()),
                        rate: Default::default(),
                        latency: Duration::ZERO,
                    });
                }
                return;
            }
            let ids: Vec<&str> = batch.iter().map(|p| &*p.queue_id).collect();
            let outcome = client.observations(&token, &ids).await;
            let mut samples = outcome.result;
            for pending in batch {
                let result = match &mut samples {
                    Ok(map) => map.remove(&*pending.queue_id).ok_or_else(|| {
                        PollError::new(
                            ErrorKind::NotFound,
                            "queue missing from the observations result (deleted, or not visible to this OAuth client)",
                        )
                    }),
                    Err(error) => Err(error.clone()),
                };
                let _ = pending.reply.send(Outcome {
                    result,
                    rate: outcome.rate,
                    latency: outcome.latency,
                });
            }
        }));
    }
}

impl Actor for ObservationsBatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(super::SHARED_MAILBOX);
    }
}

impl Handler<Observe> for ObservationsBatcher {
    type Result = ResponseFuture<Outcome<Sample>>;

    fn handle(&mut self, msg: Observe, ctx: &mut Context<Self>) -> Self::Result {
        let (reply, rx) = oneshot::channel();
        self.pending.push(Pending {
            queue_id: msg.queue_id,
            token: msg.token,
            deadline: msg.deadline,
            reply,
        });
        if self.pending.len() >= OBSERVATIONS_MAX_QUEUES {
            self.flush(ctx);
        } else if self.timer.is_none() {
            self.timer = Some(ctx.run_later(LINGER, |act, ctx| {
                act.timer = None;
                act.flush(ctx);
            }));
        }
        Box::pin(async move {
            rx.await.unwrap_or_else(|_| Outcome {
                result: Err(PollError::new(
                    ErrorKind::Connection,
                    "the observations batcher stopped mid-request",
                )),
                rate: Default::default(),
                latency: Duration::ZERO,
            })
        })
    }
}
