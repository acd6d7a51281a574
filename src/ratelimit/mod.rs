//! The client-side rate budget of one access token, shared by every request
//! made with that token (Genesys limits per token, ~300 requests/minute).
//!
//! - A GCRA (generic cell rate algorithm): each request reserves the next
//!   free slot; slots are evenly spaced, so requests never burst.
//! - A `Retry-After` is a hard gate for the whole token: no request leaves
//!   inside the pause, including those that had their slot before it came.
//! - A waiter never waits past its deadline (its queue's next tick): it is
//!   told at once that the token is paused or the budget full beyond it
//!   ([`Denied`]), and reserves nothing then.
//! - The rate adapts: an `inin-ratelimit-allowed` below the configured budget
//!   lowers it; a 429 halves it (at most once per [`DECREASE_HOLD`]) and it
//!   recovers by a tenth of the budget every [`RECOVERY_STEP`] without one.
//! - Demand above the rate stretches every queue's interval by the same
//!   factor ([`RateLimiter::stretch`]), so all queues stay polled, fairly.
//!
//! (Past 400 lines: acquiring, pausing and closing are one waiting protocol
//! whose invariants hold across them; its tests are in `tests.rs`.)

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::genesys::RateLimitInfo;

/// Share of the budget actually used: a little headroom so that network
/// jitter bunching two requests never makes a 301st in Genesys' minute.
pub const HEADROOM: f64 = 0.97;
/// After a 429 the rate is not cut again for this long.
pub const DECREASE_HOLD: Duration = Duration::from_secs(10);
/// Without 429s, the rate recovers a tenth of the budget this often.
pub const RECOVERY_STEP: Duration = Duration::from_secs(10);
/// The rate never adapts below this share of the budget.
const MIN_FACTOR: f64 = 1.0 / 64.0;

/// A shared, cloneable rate budget for one token.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    gcra: Mutex<Gcra>,
    /// Bumped on every pause and on close: waiters look again.
    changes: watch::Sender<u64>,
    /// Requests waiting in [`RateLimiter::acquire`] now.
    waiting: std::sync::atomic::AtomicUsize,
}

/// Counts one waiter for as long as it lives.
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(counter: &'a std::sync::atomic::AtomicUsize) -> Self {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Waiting(counter)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How long a request may wait for its slot: until its queue's next tick.
/// That tick moves out when the stretch grows (a 429 halved the rate, the
/// server lowered its allowance): a cycle may then wait for a slot until
/// its start plus its interval stretched as it is now, so that a sudden
/// drop of the rate is absorbed by the stretch, not by failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// The next tick as scheduled.
    pub next_tick: Instant,
    /// When the cycle started.
    pub started: Instant,
    /// The queue's interval as configured (before stretching).
    pub interval: Duration,
}

impl Deadline {
    /// A deadline at `at`, whatever the stretch.
    #[cfg(test)]
    pub fn fixed(at: Instant) -> Deadline {
        Deadline {
            next_tick: at,
            started: at,
            interval: Duration::ZERO,
        }
    }

    fn stretched(&self, stretch: f64) -> Duration {
        Duration::try_from_secs_f64(self.interval.as_secs_f64() * stretch).unwrap_or(Duration::MAX)
    }

    /// The deadline under `stretch`.
    fn resolve(&self, stretch: f64) -> Instant {
        let moved = self
            .started
            .checked_add(self.stretched(stretch))
            .unwrap_or(self.next_tick);
        self.next_tick.max(moved)
    }

    /// How far ahead a slot may be reserved at `now`: up to the deadline,
    /// and at least one stretched interval ahead (a cycle that waited for
    /// its token past its tick may still queue up briefly for a slot).
    fn horizon(&self, now: Instant, stretch: f64) -> Instant {
        let ahead = now.checked_add(self.stretched(stretch)).unwrap_or(now);
        self.resolve(stretch).max(ahead)
    }
}

/// Why [`RateLimiter::acquire`] gave no right to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The token is paused by a `Retry-After` until at least the deadline.
    Paused {
        /// When the pause ends.
        until: Instant,
    },
    /// The next free slot lies past the deadline.
    NoSlot {
        /// The next free slot (not reserved).
        slot: Instant,
    },
    /// The limiter was closed (a clean stop).
    Closed,
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denied::Paused { until } => {
                let left = until.saturating_duration_since(Instant::now());
                write!(
                    f,
                    "the token is paused by Retry-After until {} ({} from now); no request sent",
                    wall_clock(left),
                    whole_seconds(left)
                )
            }
            Denied::NoSlot { slot } => write!(
                f,
                "the rate budget has no free slot before the next tick (next in {}); no request sent",
                whole_seconds(slot.saturating_duration_since(Instant::now()))
            ),
            Denied::Closed => f.write_str("shutdown: the cycle was waiting for a rate budget slot"),
        }
    }
}

/// `in` from now on the wall clock, RFC 3339 to the second (UTC).
fn wall_clock(left: Duration) -> String {
    let at = SystemTime::now()
        .checked_add(left)
        .unwrap_or_else(SystemTime::now);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// A duration in plain words, rounded up to whole seconds ("59m 59s").
fn whole_seconds(d: Duration) -> String {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

/// What a waiter does with its slot after something changed.
enum Check {
    Keep,
    Void,
    Deny(Denied),
}

#[derive(Debug)]
struct Gcra {
    configured: u32,
    advertised: Option<u32>,
    factor: f64,
    last_change: Instant,
    demand: f64,
    emission: Duration,
    /// Theoretical arrival time of the next request.
    tat: Instant,
    paused_until: Option<Instant>,
    closed: bool,
    window: UseWindow,
}

impl Gcra {
    /// Requests per minute in force.
    fn rate(&self) -> f64 {
        let base = self
            .advertised
            .map_or(self.configured, |a| a.min(self.configured));
        (f64::from(base.max(1)) * self.factor * HEADROOM).max(0.5)
    }

    /// The factor (>= 1) the demand needs intervals stretched by.
    fn stretch(&self) -> f64 {
        (self.demand / self.rate()).max(1.0)
    }

    fn update_emission(&mut self) {
        self.emission = Duration::from_secs_f64(60.0 / self.rate());
    }

    /// The slot of a request asked for at `now`, reserved, unless the
    /// token is paused or the budget full past `deadline` (then nothing is
    /// reserved).
    fn reserve(&mut self, now: Instant, deadline: Option<Deadline>) -> Result<Instant, Denied> {
        if self.closed {
            return Err(Denied::Closed);
        }
        self.recover(now);
        let stretch = self.stretch();
        let horizon = deadline.map(|d| d.horizon(now, stretch));
        let deadline = deadline.map(|d| d.resolve(stretch));
        let mut slot = self.tat.max(now);
        match self.paused_until {
            Some(until) if until <= now => self.paused_until = None,
            // (until > now here: waiting past a deadline is what is refused.)
            Some(until) if deadline.is_some_and(|d| until >= d) => {
                return Err(Denied::Paused { until })
            }
            Some(until) => slot = slot.max(until),
            None => {}
        }
        if slot > now && horizon.is_some_and(|h| slot >= h) {
            return Err(Denied::NoSlot { slot });
        }
        self.tat = slot + self.emission;
        Ok(slot)
    }

    /// Whether a slot at `slot` may still be used now that something changed.
    fn check(&self, slot: Instant, deadline: Option<Deadline>) -> Check {
        if self.closed {
            return Check::Deny(Denied::Closed);
        }
        let deadline = deadline.map(|d| d.resolve(self.stretch()));
        match self.paused_until {
            Some(until) if until > slot => {
                if deadline.is_some_and(|d| until >= d) {
                    Check::Deny(Denied::Paused { until })
                } else {
                    Check::Void
                }
            }
            _ => Check::Keep,
        }
    }

    fn recover(&mut self, now: Instant) {
        while self.factor < 1.0 && now.duration_since(self.last_change) >= RECOVERY_STEP {
            self.factor = (self.factor + 0.1).min(1.0);
            self.last_change += RECOVERY_STEP;
            self.update_emission();
        }
    }
}

impl RateLimiter {
    /// A budget of `per_minute` requests per minute (at least 1).
    pub fn new(per_minute: u32) -> RateLimiter {
        let now = Instant::now();
        let mut gcra = Gcra {
            configured: per_minute.max(1),
            advertised: None,
            factor: 1.0,
            last_change: now,
            demand: 0.0,
            emission: Duration::ZERO,
            tat: now,
            paused_until: None,
            closed: false,
            window: UseWindow::new(now),
        };
        gcra.update_emission();
        RateLimiter {
            inner: Arc::new(Shared {
                gcra: Mutex::new(gcra),
                changes: watch::channel(0).0,
                waiting: std::sync::atomic::AtomicUsize::new(0),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Gcra> {
        // Every write is a plain assignment: the state is consistent even after a panic.
        self.inner.gcra.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells every waiter to look again (a pause arrived, or the limiter closed).
    fn changed(&self) {
        self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Waits for the right to send one request now.
    ///
    /// The answer is [`Denied::Paused`] at once when a `Retry-After` pause
    /// reaches past `deadline` (the caller's next tick), and later when one
    /// announced while waiting does: no request leaves inside a pause, even
    /// one that had its slot before the pause arrived. [`Denied::NoSlot`]
    /// when the next free slot lies past `deadline` (nothing is reserved
    /// then, so waiters never hold slots far ahead); [`Denied::Closed`] when
    /// [`RateLimiter::close`] is called.
    pub async fn acquire(&self, deadline: Option<Deadline>) -> Result<(), Denied> {
        let _waiting = Waiting::new(&self.inner.waiting);
        let mut changes = self.inner.changes.subscribe();
        'reserve: loop {
            changes.borrow_and_update();
            let slot = self.lock().reserve(Instant::now(), deadline)?;
            loop {
                // A slot already due needs no timer (registering one wakes
                // the runtime's driver: a syscall and a loop turn per request).
                if slot > Instant::now() {
                    tokio::select! {
                        () = tokio::time::sleep_until(slot) => {}
                        changed = changes.changed() => {
                            if changed.is_err() {
                                return Err(Denied::Closed);
                            }
                            // A pause covering the slot voids it; one ending
                            // before the slot leaves it valid.
                            match self.lock().check(slot, deadline) {
                                Check::Keep => continue,
                                Check::Void => continue 'reserve,
                                Check::Deny(denied) => return Err(denied),
                            }
                        }
                    }
                }
                let mut g = self.lock();
                return match g.check(Instant::now(), deadline) {
                    Check::Keep => {
                        g.window.record(Instant::now());
                        Ok(())
                    }
                    Check::Void => {
                        drop(g);
                        continue 'reserve;
                    }
                    Check::Deny(denied) => Err(denied),
                };
            }
        }
    }

    /// Ends every wait for a slot at once with [`Denied::Closed`], now and
    /// from now on (a clean stop: cycles that sent nothing need no grace).
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed();
    }

    /// Resolves once the limiter is closed.
    pub async fn closed(&self) {
        let mut changes = self.inner.changes.subscribe();
        while !self.lock().closed {
            if changes.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// When `deadline` falls under the stretch in force.
    pub fn resolve(&self, deadline: Deadline) -> Instant {
        let mut g = self.lock();
        g.recover(Instant::now());
        deadline.resolve(g.stretch())
    }

    /// Requests waiting for their slot now.
    pub fn waiting(&self) -> usize {
        self.inner
            .waiting
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// When the `Retry-After` pause in force ends, if one is.
    pub fn paused_until(&self) -> Option<Instant> {
        let now = Instant::now();
        self.lock().paused_until.filter(|until| *until > now)
    }

    /// Pauses every request on this token until `until` (a `Retry-After`).
    /// A shorter pause never shortens a longer one already in force.
    pub fn pause_until(&self, until: Instant) {
        let mut g = self.lock();
        if g.paused_until.is_none_or(|p| p < until) {
            g.paused_until = Some(until);
            drop(g);
            self.changed();
        }
    }

    /// A 429 arrived although we kept to the budget: halve the rate (at most
    /// once per [`DECREASE_HOLD`]); it recovers gradually.
    pub fn on_rate_limited(&self) {
        let now = Instant::now();
        let mut g = self.lock();
        if g.factor < 1.0 && now.duration_since(g.last_change) < DECREASE_HOLD {
            return;
        }
        g.factor = (g.factor / 2.0).max(MIN_FACTOR);
        g.last_change = now;
        g.update_emission();
        log::warn!(
            "rate budget: 429 received; cutting the rate to {:.0}/min",
            g.rate()
        );
    }

    /// Follows the server's `inin-ratelimit-allowed` when it is below the budget.
    pub fn observe(&self, info: &RateLimitInfo) {
        let Some(allowed) = info.allowed.filter(|a| *a > 0) else {
            return;
        };
        let mut g = self.lock();
        let advertised = (allowed < g.configured).then_some(allowed);
        if g.advertised != advertised {
            g.advertised = advertised;
            g.update_emission();
            log::warn!(
                "rate budget: Genesys allows {allowed}/min on this token; using {:.0}/min",
                g.rate()
            );
        }
    }

    /// Sets the configured demand (requests per minute all queues need).
    pub fn set_demand(&self, per_minute: f64) {
        self.lock().demand = per_minute.max(0.0);
    }

    /// The configured demand (see [`Self::set_demand`]).
    pub fn demand_per_minute(&self) -> f64 {
        self.lock().demand
    }

    /// The factor (>= 1) every interval is multiplied by so that the demand
    /// fits the rate in force.
    pub fn stretch(&self) -> f64 {
        let mut g = self.lock();
        g.recover(Instant::now());
        g.stretch()
    }

    /// Requests per minute in force (after headroom and adaptation).
    pub fn rate_per_minute(&self) -> f64 {
        self.lock().rate()
    }

    /// Requests reserved in the last 60 seconds (the budget in use).
    pub fn used_last_minute(&self) -> u32 {
        let mut g = self.lock();
        g.window.advance(Instant::now());
        g.window.total()
    }
}

mod window;

use window::UseWindow;

#[cfg(test)]
mod tests;
