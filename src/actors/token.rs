//! TokenActor: one per OAuth client. Caches the access token, refreshes it
//! before expiry, and is single-flight: however many pollers ask during a
//! fetch, one token request goes out. A 401 reported by many pollers for the
//! same token causes one refetch. Token endpoint failures back off;
//! rejected credentials are fatal. A hostile `expires_in` is tamed: capped
//! at a year, and under a minute planned as a minute, with refetches of
//! tokens the API keeps refusing spaced by backoff.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::backoff::ExponentialBackoff;
use crate::error::{ErrorKind, PollError};
use crate::genesys::{ClientOptions, Credentials, GenesysClient, TokenError};
use crate::secret::Secret;
use crate::supervisor::{ExitGuard, Fatal};
use crate::telemetry::{Telemetry, TokenIssued, TokenRejected, TokenUnavailable};

/// Longest token lifetime believed (`expires_in` beyond it is capped, so no
/// clock arithmetic can overflow on a hostile value).
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// Shortest lifetime refreshes are scheduled for: a token endpoint that says
/// `expires_in: 0` must not cause a request storm.
pub const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// A token handed to a poller, tagged with its generation so that a 401
/// invalidates only the token that failed.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The bearer token.
    pub token: Secret,
    /// Which fetch produced it.
    pub generation: u64,
}

/// Ask for a valid token.
#[derive(Message)]
#[rtype(result = "Result<Lease, TokenError>")]
pub struct GetToken;

/// The API answered 401 to the token of `generation`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Invalidate {
    /// The generation of the lease that failed.
    pub generation: u64,
}

/// The token the token actor holds, readable without a message. A poll
/// cycle asks for a token every time and nearly every time one is held: it
/// reads it here, and sends [`GetToken`] only when none is posted (none
/// fetched yet, expired, refused by the API, rejected credentials, or the
/// actor restarting), which leaves every decision to the actor.
#[derive(Clone, Default)]
pub struct TokenBoard(Arc<RwLock<Option<(Lease, Instant)>>>);

impl TokenBoard {
    /// The posted lease, unless it has expired at `now`.
    pub fn current(&self, now: Instant) -> Option<Lease> {
        let posted = self.0.read().unwrap_or_else(|e| e.into_inner());
        posted
            .as_ref()
            .filter(|(_, expires_at)| *expires_at > now)
            .map(|(lease, _)| lease.clone())
    }

    fn post(&self, held: Option<&Held>) {
        let posted = held.map(|held| (TokenActor::lease(held), held.expires_at));
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = posted;
    }
}

/// Whether a valid token is held now.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct TokenHeld;

/// Everything a TokenActor needs; cloned into each incarnation.
#[derive(Clone)]
pub struct TokenConfig {
    /// Where Genesys is.
    pub options: Arc<ClientOptions>,
    /// The OAuth client.
    pub credentials: Credentials,
    /// Refresh when less than `min(margin, lifetime / 2)` is left.
    pub refresh_margin: Duration,
    /// Backoff after token endpoint failures.
    pub backoff: ExponentialBackoff,
    /// Metrics.
    pub telemetry: Telemetry,
    /// Told when the credentials are rejected.
    pub fatal: Recipient<Fatal>,
    /// Where the held token is posted for the pollers.
    pub board: TokenBoard,
}

struct Held {
    token: Secret,
    generation: u64,
    fetched_at: Instant,
    expires_at: Instant,
    refresh_at: Instant,
}

type Waiter = oneshot::Sender<Result<Lease, TokenError>>;

/// The token actor.
pub struct TokenActor {
    config: TokenConfig,
    held: Option<Held>,
    generation: u64,
    fetching: bool,
    waiters: Vec<Waiter>,
    failures: u32,
    /// Tokens refused by the API within [`MIN_TOKEN_LIFETIME`] of being
    /// issued, in a row: from the second on, refetches back off.
    refused_young: u32,
    not_before: Option<Instant>,
    last_error: Option<PollError>,
    rejected: Option<String>,
    refresh_timer: Option<SpawnHandle>,
    rng: fastrand::Rng,
    _guard: ExitGuard,
}

impl TokenActor {
    /// A token actor with no token yet.
    pub fn new(config: TokenConfig, guard: ExitGuard) -> Self {
        TokenActor {
            config,
            held: None,
            generation: 0,
            fetching: false,
            waiters: Vec::new(),
            failures: 0,
            refused_young: 0,
            not_before: None,
            last_error: None,
            rejected: None,
            refresh_timer: None,
            rng: fastrand::Rng::new(),
            _guard: guard,
        }
    }

    fn lease(held: &Held) -> Lease {
        Lease {
            token: held.token.clone(),
            generation: held.generation,
        }
    }

    fn start_fetch(&mut self, ctx: &mut Context<Self>) {
        if self.fetching || self.rejected.is_some() {
            return;
        }
        self.fetching = true;
        let client = GenesysClient::for_thread(&self.config.options);
        let credentials = self.config.credentials.clone();
        let fetch = async move { client.fetch_token(&credentials).await };
        ctx.spawn(fetch.into_actor(self).map(|result, act, ctx| {
            act.fetching = false;
            act.fetched(result, ctx);
        }));
    }

    fn fetched(
        &mut self,
        result: Result<crate::genesys::AccessToken, TokenError>,
        ctx: &mut Context<Self>,
    ) {
        let now = Instant::now();
        let outcome = match result {
            Ok(token) => {
                self.generation += 1;
                self.failures = 0;
                self.not_before = None;
                let lifetime = lifetime_for_scheduling(token.expires_in);
                let lead = self.config.refresh_margin.min(lifetime / 2);
                let held = Held {
                    token: token.token,
                    generation: self.generation,
                    fetched_at: now,
                    expires_at: now + lifetime,
                    refresh_at: now + lifetime.saturating_sub(lead),
                };
                self.config.telemetry.emit(TokenIssued { lifetime });
                self.schedule_refresh(held.refresh_at - now, ctx);
                let lease = Self::lease(&held);
                self.config.board.post(Some(&held));
                self.held = Some(held);
                Ok(lease)
            }
            Err(TokenError::Rejected(reason)) => {
                let event = TokenRejected { reason: &reason };
                self.config.telemetry.emit(event);
                self.rejected = Some(reason.clone());
                self.held = None;
                self.config.board.post(None);
                self.config.fatal.do_send(Fatal {
                    reason: format!("credentials rejected: {reason}"),
                    kind: ErrorKind::AuthFailed,
                });
                Err(TokenError::Rejected(reason))
            }
            Err(TokenError::Unavailable(error)) => {
                let delay = self
                    .config
                    .backoff
                    .delay(self.failures, &mut self.rng)
                    .max(error.retry_after.unwrap_or_default());
                self.failures = self.failures.saturating_add(1);
                self.not_before = Some(now + delay);
                let event = TokenUnavailable {
                    error: &error,
                    retry_in: delay,
                };
                self.config.telemetry.emit(event);
                self.last_error = Some(error.clone());
                // A still-valid token keeps serving; retry the refresh later.
                if self.held.as_ref().is_some_and(|h| h.expires_at > now) {
                    self.schedule_refresh(delay, ctx);
                }
                Err(TokenError::Unavailable(error))
            }
        };
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(outcome.clone());
        }
    }

    fn schedule_refresh(&mut self, after: Duration, ctx: &mut Context<Self>) {
        if let Some(handle) = self.refresh_timer.take() {
            ctx.cancel_future(handle);
        }
        self.refresh_timer = Some(ctx.run_later(after, |act, ctx| {
            act.refresh_timer = None;
            act.start_fetch(ctx);
        }));
    }
}

/// The lifetime refreshes are planned for: `expires_in` capped at
/// [`MAX_TOKEN_LIFETIME`] and raised to [`MIN_TOKEN_LIFETIME`].
fn lifetime_for_scheduling(expires_in: Duration) -> Duration {
    expires_in.clamp(MIN_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME)
}

impl Actor for TokenActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(super::SHARED_MAILBOX);
        // A new incarnation holds nothing yet: until it does, cycles ask it.
        self.config.board.post(None);
        // Fetch at once so the first polls find a token waiting.
        self.start_fetch(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.config.board.post(None);
    }
}

impl Handler<GetToken> for TokenActor {
    /// An answer at once when it is known (a token held: every poll but a
    /// few), else a future that waits for the fetch.
    type Result = ActorResponse<Self, Result<Lease, TokenError>>;

    fn handle(&mut self, _: GetToken, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(reason) = &self.rejected {
            return ActorResponse::reply(Err(TokenError::Rejected(reason.clone())));
        }
        let now = Instant::now();
        if let Some(held) = self.held.as_ref().filter(|h| h.expires_at > now) {
            return ActorResponse::reply(Ok(Self::lease(held)));
        }
        if self.not_before.is_some_and(|t| t > now) && !self.fetching {
            let error = self.last_error.clone().unwrap_or_else(|| {
                PollError::new(ErrorKind::AuthFailed, "token endpoint backing off")
            });
            return ActorResponse::reply(Err(TokenError::Unavailable(error)));
        }
        let (tx, rx) = oneshot::channel();
        self.waiters.push(tx);
        self.start_fetch(ctx);
        ActorResponse::r#async(fut::wrap_future(async move {
            rx.await.unwrap_or_else(|_| {
                Err(TokenError::Unavailable(PollError::new(
                    ErrorKind::AuthFailed,
                    "token actor stopped",
                )))
            })
        }))
    }
}

impl Handler<Invalidate> for TokenActor {
    type Result = ();

    fn handle(&mut self, msg: Invalidate, ctx: &mut Context<Self>) {
        let Some(held) = self.held.take_if(|h| h.generation == msg.generation) else {
            return;
        };
        self.config.board.post(None);
        let now = Instant::now();
        if now.duration_since(held.fetched_at) >= MIN_TOKEN_LIFETIME {
            self.refused_young = 0;
        } else {
            self.refused_young = self.refused_young.saturating_add(1);
        }
        // A token refused as soon as it is issued again and again (a broken
        // token endpoint, `expires_in: 0`): space the token requests.
        let delay = match self.refused_young {
            0 | 1 => Duration::ZERO,
            n => self.config.backoff.delay(n - 2, &mut self.rng),
        };
        if delay.is_zero() {
            log::info!("token: the API refused the current token; fetching a new one");
            self.start_fetch(ctx);
        } else {
            log::warn!(
                "token: the API refused {} new tokens in a row; next token request in {delay:?}",
                self.refused_young
            );
            self.not_before = Some(now + delay);
            self.last_error = Some(PollError::new(
                ErrorKind::AuthFailed,
                "new tokens are refused by the API; backing off",
            ));
            self.schedule_refresh(delay, ctx);
        }
    }
}

impl Handler<TokenHeld> for TokenActor {
    type Result = bool;

    fn handle(&mut self, _: TokenHeld, _: &mut Context<Self>) -> bool {
        self.held
            .as_ref()
            .is_some_and(|h| h.expires_at > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_serves_a_posted_lease_until_it_expires() {
        let board = TokenBoard::default();
        let now = Instant::now();
        assert!(board.current(now).is_none(), "nothing posted yet");
        let held = Held {
            token: Secret::new("t-1"),
            generation: 7,
            fetched_at: now,
            expires_at: now + Duration::from_secs(60),
            refresh_at: now + Duration::from_secs(30),
        };
        board.post(Some(&held));
        let lease = board.current(now).expect("posted");
        assert_eq!((lease.token.expose(), lease.generation), ("t-1", 7));
        // A clone reads the same board; an expired lease is not served.
        let reader = board.clone();
        assert!(reader.current(now + Duration::from_secs(59)).is_some());
        assert!(reader.current(now + Duration::from_secs(60)).is_none());
        board.post(None);
        assert!(reader.current(now).is_none(), "withdrawn");
    }

    #[test]
    fn hostile_lifetimes_are_tamed() {
        for (given, planned) in [
            (0, 60),
            (1, 60),
            (300, 300),
            (86_400, 86_400),
            (u64::MAX, MAX_TOKEN_LIFETIME.as_secs()),
            (i64::MAX as u64, MAX_TOKEN_LIFETIME.as_secs()),
        ] {
            let lifetime = lifetime_for_scheduling(Duration::from_secs(given));
            assert_eq!(lifetime.as_secs(), planned, "expires_in {given}");
            // No overflow at any instant this process can see.
            let _ = Instant::now() + lifetime;
        }
    }
}
