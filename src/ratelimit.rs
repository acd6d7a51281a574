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
    window: UseWindow,
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
        let per_minute = per_minute.max(1);
        RateLimiter {
            inner: Arc::new(Mutex::new(Gcra {
                per_minute,
                emission: emission(per_minute),
                tat: Instant::now(),
                paused_until: None,
                window: UseWindow {
                    origin: Instant::now(),
                    second: 0,
                    buckets: [0; 60],
                },
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
        g.window.record(slot);
        slot
    }

    /// Requests reserved in the last 60 seconds (the budget in use).
    pub fn used_last_minute(&self) -> u32 {
        let mut g = self.lock();
        g.window.advance(Instant::now());
        g.window.total()
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
    async fn use_is_counted_over_the_last_minute() {
        let limiter = RateLimiter::new(600);
        for _ in 0..30 {
            tokio::time::sleep_until(limiter.reserve()).await;
        }
        assert_eq!(limiter.used_last_minute(), 30);
        // The 30 requests spanned 3 s; 56 s later all are still within the minute.
        tokio::time::advance(Duration::from_secs(56)).await;
        assert_eq!(limiter.used_last_minute(), 30);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(limiter.used_last_minute(), 0);
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
