//! Full-jitter exponential backoff (as in linkerd's `exp-backoff`): the delay
//! before retry `n` is uniform in `[0, min(max, base * 2^n)]`.
//!
//! The one backoff used everywhere: poll retries, token retries, supervisor
//! restarts, webhook redelivery.

use std::time::Duration;

/// Why a backoff could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBackoff {
    /// `base` was zero.
    #[error("backoff base must be greater than zero")]
    ZeroBase,
    /// `base` was larger than `max`.
    #[error("backoff base {base:?} is larger than its maximum {max:?}")]
    BaseAboveMax {
        /// The base given.
        base: Duration,
        /// The maximum given.
        max: Duration,
    },
}

/// A validated exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExponentialBackoff {
    base: Duration,
    max: Duration,
}

impl Default for ExponentialBackoff {
    /// 1 s doubling up to 60 s (the `poll.backoff_*` defaults).
    fn default() -> Self {
        ExponentialBackoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

impl ExponentialBackoff {
    /// Builds a backoff; `base` must be non-zero and not above `max`.
    pub fn try_new(base: Duration, max: Duration) -> Result<Self, InvalidBackoff> {
        if base.is_zero() {
            return Err(InvalidBackoff::ZeroBase);
        }
        if base > max {
            return Err(InvalidBackoff::BaseAboveMax { base, max });
        }
        Ok(ExponentialBackoff { base, max })
    }

    /// The largest delay for retry `attempt` (0-based): `min(max, base * 2^attempt)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// A random delay in `[0, ceiling(attempt)]` drawn from `rng`.
    pub fn delay(&self, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = self.ceiling(attempt);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.u64(0..=nanos))
    }

    /// The configured maximum delay.
    pub fn max(&self) -> Duration {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn rejects_bad_parameters() {
        assert_eq!(
            ExponentialBackoff::try_new(Duration::ZERO, MS),
            Err(InvalidBackoff::ZeroBase)
        );
        assert!(matches!(
            ExponentialBackoff::try_new(2 * MS, MS),
            Err(InvalidBackoff::BaseAboveMax { .. })
        ));
    }

    #[test]
    fn ceiling_doubles_then_caps() {
        let b =
            ExponentialBackoff::try_new(Duration::from_secs(1), Duration::from_secs(60)).unwrap();
        let ceilings: Vec<u64> = (0..8).map(|n| b.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn delays_stay_within_bounds_and_spread() {
        let b =
            ExponentialBackoff::try_new(Duration::from_secs(1), Duration::from_secs(60)).unwrap();
        let mut rng = fastrand::Rng::with_seed(7);
        for attempt in 0..10 {
            let delays: Vec<Duration> = (0..500).map(|_| b.delay(attempt, &mut rng)).collect();
            let ceiling = b.ceiling(attempt);
            assert!(delays.iter().all(|d| *d <= ceiling));
            // Full jitter: both halves of the range are used.
            assert!(delays.iter().any(|d| *d < ceiling / 2));
            assert!(delays.iter().any(|d| *d > ceiling / 2));
        }
    }
}
