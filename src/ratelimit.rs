//! The client-side rate budget of one access token, shared by every request
//! made with that token (Genesys limits per token, ~300 requests/minute).
//!
//! A GCRA (generic cell rate algorithm): each request reserves the next free
//! slot; slots are `60s / per_minute` apart, so requests never burst. A
//! `Retry-After` pauses the whole token: every reservation lands after it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// A shared, cloneable rate budget for one token.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    inner: Arc<Mutex<Gcra>>,
}

#[derive(Debug)]
struct Gcra {
    per_minute: u32,
    emission: Duration,
    /// Theoretical arrival time of the next request.
    tat: Instant,
    paused_until: Option<Instant>,
}

impl RateLimiter {
    /// A budget of `per_minute` requests per minute (at least 1).
    pub fn new(per_minute: u32) -> RateLimiter {
        let per_minute = per_minute.max(1);
        RateLimiter {
            inner: Arc::new(Mutex::new(Gcra {
                per_minute,
                emission: emission(per_minute),
                tat: Instant::now(),
                paused_until: None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Gcra> {
        // The state stays consistent even if a holder panicked: every write is one assignment.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves the next slot and returns when the request may be sent
    /// (now or later). The caller must wait until then.
    pub fn reserve(&self) -> Instant {
        let now = Instant::now();
        let mut g = self.lock();
        let mut slot = g.tat.max(now);
        if let Some(until) = g.paused_until {
            if until > slot {
                slot = until;
            } else if until <= now {
                g.paused_until = None;
            }
        }
        g.tat = slot + g.emission;
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

    /// The budget in requests per minute.
    pub fn per_minute(&self) -> u32 {
        self.lock().per_minute
    }
}

fn emission(per_minute: u32) -> Duration {
    Duration::from_secs(60) / per_minute
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_evenly_spaced() {
        let limiter = RateLimiter::new(300);
        let start = Instant::now();
        let slots: Vec<Duration> = (0..5).map(|_| limiter.reserve() - start).collect();
        let ms: Vec<u128> = slots.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [0, 200, 400, 600, 800]);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_is_not_banked_as_burst() {
        let limiter = RateLimiter::new(60);
        limiter.reserve();
        tokio::time::advance(Duration::from_secs(30)).await;
        let now = Instant::now();
        assert_eq!(limiter.reserve(), now);
        assert_eq!(limiter.reserve() - now, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn pause_holds_every_reservation() {
        let limiter = RateLimiter::new(300);
        let now = Instant::now();
        limiter.pause_until(now + Duration::from_secs(42));
        limiter.pause_until(now + Duration::from_secs(5)); // shorter: ignored
        assert_eq!(limiter.reserve(), now + Duration::from_secs(42));
        assert_eq!(limiter.reserve(), now + Duration::from_millis(42_200));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(limiter.reserve(), Instant::now(), "the pause is over");
    }
}
