//! When a queue polls: a stable phase per queue (Prometheus-style) so that
//! many queues spread over their interval, and a next-tick rule that skips
//! missed ticks instead of bursting. Pure functions of time.

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

/// The first tick strictly after `elapsed` (time since the shared epoch)
/// that lies on the grid `phase + k * interval`. Ticks that were missed (a
/// cycle ran long, the process stalled) are skipped, never caught up.
pub fn next_tick(elapsed: Duration, interval: Duration, phase: Duration) -> Duration {
    let interval_ns = interval.as_nanos().max(1);
    let phase_ns = phase.as_nanos() % interval_ns;
    let now_ns = elapsed.as_nanos();
    let next = if now_ns < phase_ns {
        phase_ns
    } else {
        let k = (now_ns - phase_ns) / interval_ns + 1;
        phase_ns + k * interval_ns
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
        let (interval, ph) = (10 * S, 3 * S);
        assert_eq!(next_tick(Duration::ZERO, interval, ph), 3 * S);
        assert_eq!(next_tick(3 * S, interval, ph), 13 * S);
        assert_eq!(next_tick(12 * S, interval, ph), 13 * S);
        // A stall of 35 s: the next tick is the next grid point, not four catch-ups.
        assert_eq!(next_tick(48 * S, interval, ph), 53 * S);
    }
}
