//! When a queue polls: a stable phase per queue (Prometheus-style) so that
//! many queues spread over their interval, and a next-tick rule that skips
//! missed ticks instead of bursting. Pure functions of time.
//!
//! Ticks are coalesced: each is rounded up to a grain of the clock
//! ([`grain`]: 250 ms for every polling interval, which is at least 5 s;
//! 20 ms for the 1 s ticks `notifications` allows), so the queues of one
//! grain tick together on one wake-up of the process instead of one
//! wake-up each.
//! At 1,000 queues every 5 s that is 50 polls per wake-up instead of one
//! every 5 ms (BENCHMARKS.md, "A 250 ms grain"); requests per second stay
//! as even as before (four grains a second), and no tick is more than a
//! grain after its point on the queue's grid.

use std::hash::{Hash, Hasher};
use std::time::Duration;

/// A stable phase in `[0, 1)` (a share of the interval) derived from the
/// queue id, so a queue keeps its slot across restarts and queues spread
/// evenly over their interval.
pub fn phase_of(queue_id: &str) -> f64 {
    // FNV-1a: stable across processes and Rust versions (unlike DefaultHasher).
    let mut hasher = Fnv1a::default();
    queue_id.hash(&mut hasher);
    // The top 53 bits as a fraction: uniform in [0, 1).
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The offset of `phase` (a share in `[0, 1)`) within `interval`.
pub fn offset(interval: Duration, phase: f64) -> Duration {
    let phase = if phase.is_finite() {
        phase.clamp(0.0, 1.0)
    } else {
        0.0
    };
    interval
        .mul_f64(phase)
        .min(interval.saturating_sub(Duration::from_nanos(1)))
}

/// The coarsest grain a tick is rounded up to.
pub const MAX_GRAIN: Duration = Duration::from_millis(250);

/// From this interval on, a tick makes a request (every polling source
/// polls at least this seldom) and gets the coarse grain.
const COARSE_FROM: Duration = Duration::from_secs(5);

/// The grain ticks of `interval` are rounded up to: a twentieth of the
/// interval, at most [`MAX_GRAIN`], for intervals of 5 s or more; a
/// fiftieth, at least 1 ms, for shorter ones (the ticks of
/// `notifications`, which cost no request, and whose fallback polls take
/// turns by tick, stay as fine as before).
pub fn grain(interval: Duration) -> Duration {
    if interval >= COARSE_FROM {
        (interval / 20).min(MAX_GRAIN)
    } else {
        (interval / 50).max(Duration::from_millis(1))
    }
}

/// The first tick strictly after `elapsed` (time since the shared epoch)
/// on the grid `phase + k * interval`, each grid point rounded up to a
/// multiple of `grain` (so queues whose points fall in one grain tick
/// together; the rounding never accumulates). Ticks that were missed (a
/// cycle ran long, the process stalled) are skipped, never caught up.
pub fn next_tick(
    elapsed: Duration,
    interval: Duration,
    phase: Duration,
    grain: Duration,
) -> Duration {
    let interval_ns = interval.as_nanos().max(1);
    let grain_ns = grain.as_nanos().clamp(1, interval_ns);
    let round_up = |t: u128| t.div_ceil(grain_ns) * grain_ns;
    let phase_ns = phase.as_nanos() % interval_ns;
    let now_ns = elapsed.as_nanos();
    let next = if now_ns < phase_ns {
        round_up(phase_ns)
    } else {
        let k = (now_ns - phase_ns) / interval_ns;
        // The point at or before now may still be ahead once rounded up.
        let last = round_up(phase_ns + k * interval_ns);
        if last > now_ns {
            last
        } else {
            round_up(phase_ns + (k + 1) * interval_ns)
        }
    };
    Duration::from_nanos(u64::try_from(next).unwrap_or(u64::MAX))
}

#[derive(Default)]
struct Fnv1a(u64);

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        // Final avalanche (splitmix64) so similar ids land far apart.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn phase_is_stable_and_in_range() {
        let id = "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10";
        assert_eq!(phase_of(id), phase_of(id));
        assert!((0.0..1.0).contains(&phase_of(id)));
        assert!(offset(10 * S, phase_of(id)) < 10 * S);
        assert!(offset(10 * S, 1.0) < 10 * S);
    }

    #[test]
    fn thousand_queues_spread_evenly() {
        let mut buckets = [0u32; 10];
        for _ in 0..1000 {
            let id = uuid::Uuid::new_v4().to_string();
            buckets[(phase_of(&id) * 10.0) as usize] += 1;
        }
        // 100 expected per bucket; allow generous random variation.
        assert!(
            buckets.iter().all(|b| (55..=145).contains(b)),
            "{buckets:?}"
        );
    }

    #[test]
    fn next_tick_follows_the_grid_and_skips_missed_ticks() {
        let (interval, ph, ns) = (10 * S, 3 * S, Duration::from_nanos(1));
        assert_eq!(next_tick(Duration::ZERO, interval, ph, ns), 3 * S);
        assert_eq!(next_tick(3 * S, interval, ph, ns), 13 * S);
        assert_eq!(next_tick(12 * S, interval, ph, ns), 13 * S);
        // A stall of 35 s: the next tick is the next grid point, not four catch-ups.
        assert_eq!(next_tick(48 * S, interval, ph, ns), 53 * S);
    }

    #[test]
    fn ticks_round_up_to_the_grain_without_drift() {
        let ms = Duration::from_millis;
        let g = ms(100);
        // (elapsed, interval, phase) -> next tick
        let cases = [
            // The phase rounds up to its grain.
            ((ms(0), ms(5000), ms(1234)), ms(1300)),
            // On the grain already: unchanged.
            ((ms(0), ms(5000), ms(1200)), ms(1200)),
            // Each later point is rounded on its own: 6234 -> 6300, not 1300 + 5000 drift.
            ((ms(1300), ms(5000), ms(1234)), ms(6300)),
            // An interval that is not a multiple of the grain: 1234 + 2 * 5370 = 11974 -> 12000.
            ((ms(6700), ms(5370), ms(1234)), ms(12000)),
            // Now past the raw point but before its rounded tick: that tick is still ahead.
            ((ms(1250), ms(5000), ms(1234)), ms(1300)),
            // A stall: the next rounded point, no catch-up.
            ((ms(23456), ms(5000), ms(1234)), ms(26300)),
        ];
        for ((elapsed, interval, phase), want) in cases {
            assert_eq!(
                next_tick(elapsed, interval, phase, g),
                want,
                "{elapsed:?} {interval:?} {phase:?}"
            );
        }
    }

    #[test]
    fn the_grain_is_a_twentieth_of_a_polling_interval_at_most_250ms() {
        let ms = Duration::from_millis;
        for (interval, want) in [
            (ms(5000), ms(250)),
            (ms(6000), ms(250)),
            (ms(300_000), ms(250)),
            (ms(4999), Duration::from_micros(99_980)),
            (ms(1000), ms(20)),
            (ms(10), ms(1)),
        ] {
            assert_eq!(grain(interval), want, "{interval:?}");
        }
    }

    #[test]
    fn a_thousand_queues_at_5s_share_20_wake_ups_and_stay_even() {
        let interval = 5 * S;
        let mut per_grain = std::collections::BTreeMap::<Duration, u32>::new();
        for i in 0..1000 {
            let phase = offset(interval, phase_of(&format!("queue-{i}")));
            let tick = next_tick(Duration::ZERO, interval, phase, grain(interval));
            assert!(tick >= phase && tick - phase < grain(interval));
            *per_grain.entry(tick).or_default() += 1;
        }
        assert!(per_grain.len() <= 21, "{}", per_grain.len());
        // Per second (four grains) the load stays near the mean of 200.
        let mut per_second = [0u32; 6];
        for (tick, n) in &per_grain {
            per_second[tick.as_secs() as usize] += n;
        }
        assert!(
            per_second[..5].iter().all(|n| (140..=260).contains(n)),
            "{per_second:?}"
        );
    }
}
