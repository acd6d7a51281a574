//! The client-side rate budget of one access token, shared by every request
//! made with that token (Genesys limits per token, ~300 requests/minute).
//!
//! - A GCRA (generic cell rate algorithm): each request reserves the next
//!   free slot; slots are evenly spaced, so requests never burst.
//! - A `Retry-After` pauses the whole token: every reservation lands after it.
//! - The rate adapts: an `inin-ratelimit-allowed` below the configured budget
//!   lowers it; a 429 halves it (at most once per [`DECREASE_HOLD`]) and it
//!   recovers by a tenth of the budget every [`RECOVERY_STEP`] without one.
//! - Demand above the rate stretches every queue's interval by the same
//!   factor ([`RateLimiter::stretch`]), so all queues stay polled, fairly.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

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
    inner: Arc<Mutex<Gcra>>,
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

    fn update_emission(&mut self) {
        self.emission = Duration::from_secs_f64(60.0 / self.rate());
    }

    fn recover(&mut self, now: Instant) {
        while self.factor < 1.0 && now.duration_since(self.last_change) >= RECOVERY_STEP {
            self.factor = (self.factor + 0.1).min(1.0);
            self.last_change += RECOVERY_STEP;
            self.update_emission();
        }
    }
}

/// Requests per second over the last minute, in a ring of 60 buckets (O(1)).
#[derive(Debug)]
struct UseWindow {
    origin: Instant,
    second: u64,
    buckets: [u32; 60],
}

impl UseWindow {
    fn advance(&mut self, at: Instant) {
        let second = at.saturating_duration_since(self.origin).as_secs();
        if second > self.second {
            for s in (self.second + 1)..=second.min(self.second + 60) {
                self.buckets[(s % 60) as usize] = 0;
            }
            self.second = second;
        }
    }

    fn record(&mut self, at: Instant) {
        self.advance(at);
        let second = at.saturating_duration_since(self.origin).as_secs();
        let bucket = &mut self.buckets[(second % 60) as usize];
        *bucket = bucket.saturating_add(1);
    }

    fn total(&self) -> u32 {
        self.buckets.iter().sum()
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
            window: UseWindow {
                origin: now,
                second: 0,
                buckets: [0; 60],
            },
        };
        gcra.update_emission();
        RateLimiter {
            inner: Arc::new(Mutex::new(gcra)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Gcra> {
        // Every write is a plain assignment: the state is consistent even after a panic.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves the next slot and returns when the request may be sent
    /// (now or later). The caller must wait until then.
    pub fn reserve(&self) -> Instant {
        let now = Instant::now();
        let mut g = self.lock();
        g.recover(now);
        let mut slot = g.tat.max(now);
        if let Some(until) = g.paused_until {
            if until > slot {
                slot = until;
            } else if until <= now {
                g.paused_until = None;
            }
        }
        g.tat = slot + g.emission;
        g.window.record(slot);
        slot
    }

    /// Pauses every request on this token until `until` (a `Retry-After`).
    /// A shorter pause never shortens a longer one already in force.
    pub fn pause_until(&self, until: Instant) {
        let mut g = self.lock();
        if g.paused_until.is_none_or(|p| p < until) {
            g.paused_until = Some(until);
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

    /// The factor (>= 1) every interval is multiplied by so that the demand
    /// fits the rate in force.
    pub fn stretch(&self) -> f64 {
        let mut g = self.lock();
        g.recover(Instant::now());
        (g.demand / g.rate()).max(1.0)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[tokio::test(start_paused = true)]
    async fn slots_are_evenly_spaced() {
        let limiter = RateLimiter::new(300);
        let start = Instant::now();
        let slots: Vec<u128> = (0..4).map(|_| ms(limiter.reserve() - start)).collect();
        // 300/min with 3% headroom: one request per 206 ms.
        assert_eq!(slots, [0, 206, 412, 618]);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_is_not_banked_as_burst() {
        let limiter = RateLimiter::new(60);
        limiter.reserve();
        tokio::time::advance(Duration::from_secs(30)).await;
        let now = Instant::now();
        assert_eq!(limiter.reserve(), now);
        assert!(limiter.reserve() - now > Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn pause_holds_every_reservation() {
        let limiter = RateLimiter::new(300);
        let now = Instant::now();
        limiter.pause_until(now + Duration::from_secs(42));
        limiter.pause_until(now + Duration::from_secs(5)); // shorter: ignored
        assert_eq!(limiter.reserve(), now + Duration::from_secs(42));
        assert!(limiter.reserve() > now + Duration::from_secs(42));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(limiter.reserve(), Instant::now(), "the pause is over");
    }

    #[tokio::test(start_paused = true)]
    async fn use_is_counted_over_the_last_minute() {
        let limiter = RateLimiter::new(600);
        for _ in 0..30 {
            tokio::time::sleep_until(limiter.reserve()).await;
        }
        assert_eq!(limiter.used_last_minute(), 30);
        // The 30 requests spanned ~3 s; 56 s later all are still within the minute.
        tokio::time::advance(Duration::from_secs(56)).await;
        assert_eq!(limiter.used_last_minute(), 30);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(limiter.used_last_minute(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn demand_over_the_rate_stretches_intervals() {
        let limiter = RateLimiter::new(300);
        limiter.set_demand(150.0);
        assert_eq!(limiter.stretch(), 1.0);
        limiter.set_demand(1800.0);
        let expected = 1800.0 / (300.0 * HEADROOM);
        assert!((limiter.stretch() - expected).abs() < 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lower_advertised_allowance_is_followed() {
        let limiter = RateLimiter::new(300);
        let info = |allowed| RateLimitInfo {
            allowed: Some(allowed),
            ..RateLimitInfo::default()
        };
        limiter.observe(&info(120));
        assert!((limiter.rate_per_minute() - 120.0 * HEADROOM).abs() < 1e-9);
        limiter.observe(&info(1000)); // above the budget: the budget rules
        assert!((limiter.rate_per_minute() - 300.0 * HEADROOM).abs() < 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_halves_the_rate_which_recovers_gradually() {
        let limiter = RateLimiter::new(300);
        let full = limiter.rate_per_minute();
        limiter.on_rate_limited();
        assert!((limiter.rate_per_minute() - full / 2.0).abs() < 1e-9);
        limiter.on_rate_limited(); // within the hold: no second cut
        assert!((limiter.rate_per_minute() - full / 2.0).abs() < 1e-9);
        tokio::time::advance(RECOVERY_STEP).await;
        limiter.reserve();
        assert!((limiter.rate_per_minute() - full * 0.6).abs() < 1e-9);
        tokio::time::advance(RECOVERY_STEP * 10).await;
        limiter.reserve();
        assert!(
            (limiter.rate_per_minute() - full).abs() < 1e-9,
            "fully recovered"
        );
    }
}
