//! The retry decision of a poll cycle, kept apart from the I/O (like
//! linkerd's `Recover`): given a failure and the cycle so far, retry after
//! some delay, refetch the token once, or give up.

use std::time::Duration;

use crate::backoff::ExponentialBackoff;
use crate::error::{ErrorKind, PollError};
use crate::genesys::headers::LONG_RETRY_AFTER;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try again after this delay.
    Retry(Duration),
    /// A 401: invalidate the token and try once more at once.
    RefetchToken,
    /// End the cycle with this failure.
    GiveUp,
}

/// Retry policy of a poll cycle: `max_retries` attempts after the first,
/// full-jitter backoff between them, `Retry-After` as a lower bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The backoff between attempts.
    pub backoff: ExponentialBackoff,
    /// Attempts per cycle after the first.
    pub max_retries: u32,
}

impl RetryPolicy {
    /// Decides after a failed attempt. `retries` is how many retries the
    /// cycle already made; `refetched` whether it already refetched the token.
    pub fn decide(
        &self,
        error: &PollError,
        retries: u32,
        refetched: bool,
        rng: &mut fastrand::Rng,
    ) -> Decision {
        if !error.is_transient() {
            return Decision::GiveUp;
        }
        if error.kind == ErrorKind::Unauthorized {
            // One refetch may cure a 401; a second 401 is final.
            return if refetched {
                Decision::GiveUp
            } else {
                Decision::RefetchToken
            };
        }
        if error
            .retry_after
            .is_some_and(|after| after > LONG_RETRY_AFTER)
        {
            return Decision::GiveUp; // a long (daily) limit: the SDKs stop too
        }
        if retries >= self.max_retries {
            return Decision::GiveUp;
        }
        let delay = self.backoff.delay(retries, rng);
        Decision::Retry(error.retry_after.map_or(delay, |after| delay.max(after)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            backoff: ExponentialBackoff::try_new(Duration::from_secs(1), Duration::from_secs(60))
                .unwrap(),
            max_retries: 5,
        }
    }

    fn err(kind: ErrorKind) -> PollError {
        PollError::new(kind, "test")
    }

    #[test]
    fn permanent_failures_are_not_retried() {
        let mut rng = fastrand::Rng::with_seed(1);
        for kind in [
            ErrorKind::Forbidden,
            ErrorKind::NotFound,
            ErrorKind::Cancelled,
        ] {
            assert_eq!(
                policy().decide(&err(kind), 0, false, &mut rng),
                Decision::GiveUp
            );
        }
    }

    #[test]
    fn redirects_are_not_retried() {
        let mut rng = fastrand::Rng::with_seed(1);
        let redirect = err(ErrorKind::InvalidResponse).with_status(302);
        assert_eq!(
            policy().decide(&redirect, 0, false, &mut rng),
            Decision::GiveUp
        );
        let garbled = err(ErrorKind::InvalidResponse);
        assert!(matches!(
            policy().decide(&garbled, 0, false, &mut rng),
            Decision::Retry(_)
        ));
    }

    #[test]
    fn retries_stop_at_max() {
        let mut rng = fastrand::Rng::with_seed(1);
        let e = err(ErrorKind::ServerError);
        assert!(matches!(
            policy().decide(&e, 4, false, &mut rng),
            Decision::Retry(_)
        ));
        assert_eq!(policy().decide(&e, 5, false, &mut rng), Decision::GiveUp);
    }

    #[test]
    fn retry_after_is_a_lower_bound_and_long_limits_give_up() {
        let mut rng = fastrand::Rng::with_seed(1);
        let e = err(ErrorKind::RateLimited).with_retry_after(Some(Duration::from_secs(42)));
        for _ in 0..50 {
            match policy().decide(&e, 0, false, &mut rng) {
                Decision::Retry(d) => assert!(d >= Duration::from_secs(42)),
                other => panic!("{other:?}"),
            }
        }
        let long = err(ErrorKind::RateLimited).with_retry_after(Some(Duration::from_secs(181)));
        assert_eq!(policy().decide(&long, 0, false, &mut rng), Decision::GiveUp);
    }

    #[test]
    fn unauthorized_refetches_once() {
        let mut rng = fastrand::Rng::with_seed(1);
        let e = err(ErrorKind::Unauthorized);
        assert_eq!(
            policy().decide(&e, 0, false, &mut rng),
            Decision::RefetchToken
        );
        assert_eq!(policy().decide(&e, 1, true, &mut rng), Decision::GiveUp);
    }
}
