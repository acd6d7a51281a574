//! How much of the token's budget fallback polling may take, and which
//! ticks of a queue on fallback poll (pure decisions).
//!
//! A queue on fallback polls with batched observations (100 queues a
//! request). When every queue on fallback polling at its interval would
//! need more than [`FALLBACK_SHARE`] of the rate in force, each polls only
//! every n-th tick (the other ticks emit the freshest data it has, its
//! `data_age_ms` growing), so channel upkeep and snapshots keep a slot.

use std::time::Duration;

use crate::genesys::wire::OBSERVATIONS_MAX_QUEUES;

/// The share of the rate in force that fallback polling may use.
pub(crate) const FALLBACK_SHARE: f64 = 0.8;

/// Requests per minute `queues` on fallback need at `interval`.
pub(crate) fn fallback_demand(queues: usize, interval: Duration) -> f64 {
    let secs = interval.as_secs_f64();
    if queues == 0 || secs <= 0.0 {
        return 0.0;
    }
    queues.div_ceil(OBSERVATIONS_MAX_QUEUES) as f64 * 60.0 / secs
}

/// Every how many ticks a queue on fallback polls (at least 1).
pub(crate) fn fallback_every(queues: usize, interval: Duration, rate_per_minute: f64) -> u64 {
    let allowed = rate_per_minute * FALLBACK_SHARE;
    let demand = fallback_demand(queues, interval);
    if demand <= allowed || demand <= 0.0 {
        return 1;
    }
    if allowed <= 0.0 {
        return u64::MAX;
    }
    // Finite and positive here; the cast saturates.
    (demand / allowed).ceil() as u64
}

/// Whether the tick numbered `tick` of a queue in batch `slot` polls when
/// queues poll every `every` ticks: batches take turns, each batch together.
pub(crate) fn is_turn(tick: u64, slot: u64, every: u64) -> bool {
    every <= 1 || tick % every == slot % every
}

/// The tick number of a tick due `since_epoch` after the grid's origin.
pub(crate) fn tick_number(since_epoch: Duration, interval: Duration) -> u64 {
    let interval = interval.as_nanos().max(1);
    u64::try_from(since_epoch.as_nanos() / interval).unwrap_or(u64::MAX)
}

/// The batch slot of a queue's phase (queues of one batch share a phase).
pub(crate) fn slot_of(phase: f64) -> u64 {
    // A phase is in [0, 1); the cast saturates on anything else.
    (phase * 1_000_000.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn fallback_polling_fits_the_share_of_the_budget() {
        // (queues on fallback, interval, rate) -> every
        let cases = [
            (0, S, 270.0, 1),
            (100, S * 5, 270.0, 1),  // 12/min
            (1000, S * 5, 270.0, 1), // 120/min of 216 allowed
            (1000, S, 270.0, 3),     // 600/min of 216
            (10_000, S, 270.0, 28),  // 6000/min of 216
            (1, S, 0.0, u64::MAX),
            (1, Duration::ZERO, 270.0, 1),
        ];
        for (queues, interval, rate, every) in cases {
            assert_eq!(
                fallback_every(queues, interval, rate),
                every,
                "{queues} at {interval:?}, {rate}/min"
            );
        }
    }

    #[test]
    fn batches_take_turns() {
        let every = 3;
        let turns: Vec<u64> = (0..9).filter(|&t| is_turn(t, 7, every)).collect();
        assert_eq!(turns, [1, 4, 7]);
        assert!((0..5).all(|t| is_turn(t, 7, 1)));
        assert!(is_turn(7, 7, u64::MAX));
        assert!(!is_turn(5, 7, u64::MAX));
    }

    #[test]
    fn ticks_and_slots_are_numbered_safely() {
        assert_eq!(tick_number(S * 10, S * 5), 2);
        assert_eq!(tick_number(S * 10, Duration::ZERO), 10_000_000_000);
        assert_eq!(slot_of(0.5), 500_000);
        assert_eq!(slot_of(f64::NAN), 0);
    }
}
