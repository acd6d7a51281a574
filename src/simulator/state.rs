//! Mutable simulator state: tokens, rate windows and queues.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fastrand::Rng;

use super::config::SimulatorConfig;
use super::queue_model::{evolve, queue_rng, QueueProfile, QueueState};
use super::rate::{Limited, SlidingWindow, Usage};

/// One queue and the clock of its last evolution.
struct QueueSim {
    profile: QueueProfile,
    state: QueueState,
    rng: Rng,
    /// Time up to which `state` is simulated (whole seconds after creation).
    clock: Instant,
    /// While set, the queue stands still with this many customers waiting.
    pinned_waiting: Option<u32>,
    /// Changes waiting whenever the model leaves it (see `SimulatorConfig::churn`).
    churn: bool,
}

impl QueueSim {
    fn new(seed: u64, queue_id: &str, now: Instant, churn: bool) -> Self {
        let mut rng = queue_rng(seed, queue_id);
        let profile = QueueProfile::random(&mut rng);
        let state = profile.initial_state(&mut rng);
        Self {
            profile,
            state,
            rng,
            clock: now,
            pinned_waiting: None,
            churn,
        }
    }

    /// Brings the state up to `now` and returns it.
    fn observe(&mut self, now: Instant) -> &QueueState {
        let whole = Duration::from_secs(now.saturating_duration_since(self.clock).as_secs());
        if !whole.is_zero() {
            if self.pinned_waiting.is_none() {
                let before = self.state.waiting;
                self.state = evolve(&self.state, &self.profile, whole, &mut self.rng);
                if self.churn && self.state.waiting == before {
                    // Unchanged by the model: one up (or down from the top).
                    self.state.waiting = if before < super::queue_model::MAX_DEPTH {
                        before + 1
                    } else {
                        before - 1
                    };
                }
            }
            self.clock += whole;
        }
        &self.state
    }

    /// `Some(n)`: brings the queue up to `now`, then freezes it with `n` waiting;
    /// `None`: it moves again from where it stands.
    fn pin_waiting(&mut self, waiting: Option<u32>, now: Instant) {
        self.observe(now);
        self.pinned_waiting = waiting;
        if let Some(waiting) = waiting {
            self.state.pin_waiting(waiting);
        }
    }
}

/// Everything the handlers change, behind one mutex.
pub(crate) struct SimState {
    seed: u64,
    churn: bool,
    token_lifetime: Duration,
    rate_limit: Option<u32>,
    advertised_allowed: Option<u32>,
    token_rate_limit: Option<u32>,
    /// Access token -> expiry (`None`: beyond what `Instant` can hold).
    tokens: HashMap<String, Option<Instant>>,
    /// Access token -> its API requests.
    api_windows: HashMap<String, SlidingWindow>,
    /// Client id -> its token requests.
    token_windows: HashMap<String, SlidingWindow>,
    queues: HashMap<String, QueueSim>,
    /// Tokens and result order; seeded from entropy, not from `seed`.
    rng: Rng,
}

impl SimState {
    pub(crate) fn new(config: &SimulatorConfig, now: Instant) -> Self {
        let mut state = Self {
            seed: config.seed,
            churn: config.churn,
            token_lifetime: config.token_lifetime,
            rate_limit: config.rate_limit_per_minute,
            advertised_allowed: None,
            token_rate_limit: config.token_rate_limit_per_minute,
            tokens: HashMap::new(),
            api_windows: HashMap::new(),
            token_windows: HashMap::new(),
            queues: HashMap::new(),
            rng: Rng::new(),
        };
        for id in &config.queue_ids {
            state.add_queue(id, now);
        }
        state
    }

    /// Issues a token; returns it with its `expires_in` (whole seconds).
    pub(crate) fn issue_token(&mut self, now: Instant) -> (String, u64) {
        self.prune_tokens(now);
        let token: String = (0..48).map(|_| self.rng.alphanumeric()).collect();
        let expiry = now.checked_add(self.token_lifetime);
        self.tokens.insert(token.clone(), expiry);
        (token, self.token_lifetime.as_secs())
    }

    /// True when `token` was issued, is not revoked and has not expired.
    pub(crate) fn token_valid(&mut self, token: &str, now: Instant) -> bool {
        match self.tokens.get(token) {
            Some(&expiry) if is_live(expiry, now) => true,
            Some(_) => {
                self.tokens.remove(token);
                self.api_windows.remove(token);
                false
            }
            None => false,
        }
    }

    /// Invalidates every issued token; returns how many there were.
    pub(crate) fn revoke_tokens(&mut self) -> usize {
        self.api_windows.clear();
        self.tokens.drain().count()
    }

    /// Sets the per-token API limit (`None` = off).
    pub(crate) fn set_rate_limit(&mut self, per_minute: Option<u32>) {
        self.rate_limit = per_minute;
    }

    /// Sets a lower allowance that is both advertised and enforced (`None` = the rate limit).
    pub(crate) fn set_advertised_allowed(&mut self, allowed: Option<u32>) {
        self.advertised_allowed = allowed;
    }

    fn api_limit(&self) -> Option<u32> {
        self.advertised_allowed.or(self.rate_limit)
    }

    /// Counts an API request of `token`; `None` when no limit is in force.
    pub(crate) fn acquire_api(
        &mut self,
        token: &str,
        now: Instant,
    ) -> Option<Result<Usage, Limited>> {
        let allowed = self.api_limit()?;
        let window = self.api_windows.entry(token.to_owned()).or_default();
        Some(window.try_acquire(now, allowed))
    }

    /// The window of `token` without counting; `None` when no limit is in force.
    pub(crate) fn api_usage(&mut self, token: &str, now: Instant) -> Option<Usage> {
        let allowed = self.api_limit()?;
        Some(match self.api_windows.get_mut(token) {
            Some(window) => window.usage(now, allowed),
            None => SlidingWindow::default().usage(now, allowed),
        })
    }

    /// Counts a token request of `client_id`.
    pub(crate) fn acquire_token_request(
        &mut self,
        client_id: &str,
        now: Instant,
    ) -> Result<(), Limited> {
        let Some(allowed) = self.token_rate_limit else {
            return Ok(());
        };
        self.token_windows.retain(|_, window| !window.is_empty(now));
        let window = self.token_windows.entry(client_id.to_owned()).or_default();
        window.try_acquire(now, allowed).map(|_| ())
    }

    /// Creates a queue (no change if it exists).
    pub(crate) fn add_queue(&mut self, queue_id: &str, now: Instant) {
        let (seed, churn) = (self.seed, self.churn);
        self.queues
            .entry(queue_id.to_owned())
            .or_insert_with(|| QueueSim::new(seed, queue_id, now, churn));
    }

    /// Deletes a queue; returns whether it existed.
    pub(crate) fn remove_queue(&mut self, queue_id: &str) -> bool {
        self.queues.remove(queue_id).is_some()
    }

    /// The queue as it is at `now`, if it exists.
    pub(crate) fn queue(&mut self, queue_id: &str, now: Instant) -> Option<&QueueState> {
        self.queues
            .get_mut(queue_id)
            .map(|queue| queue.observe(now))
    }

    /// `Some(n)`: the queue stands still with `n` customers waiting (REST and
    /// push) until released with `None`. False when the queue does not exist.
    pub(crate) fn pin_waiting(
        &mut self,
        queue_id: &str,
        waiting: Option<u32>,
        now: Instant,
    ) -> bool {
        match self.queues.get_mut(queue_id) {
            Some(queue) => {
                queue.pin_waiting(waiting, now);
                true
            }
            None => false,
        }
    }

    /// Puts `items` in random order.
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        self.rng.shuffle(items);
    }

    /// Forgets expired tokens and the windows of tokens that are gone.
    fn prune_tokens(&mut self, now: Instant) {
        self.tokens.retain(|_, &mut expiry| is_live(expiry, now));
        let tokens = &self.tokens;
        self.api_windows
            .retain(|token, _| tokens.contains_key(token));
    }
}

fn is_live(expiry: Option<Instant>, now: Instant) -> bool {
    expiry.is_none_or(|expiry| now < expiry)
}
