//! Where estimated-wait polling is spent when counts arrive by push: the
//! push source gives `waiting` and `agents_on_queue` for free, but an
//! estimated wait still costs one request per queue, so the spare request
//! budget goes to the busiest queues first. Pure decisions.

use std::cmp::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use crate::QueueId;

/// One queue that might have its estimated wait polled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// The queue.
    pub queue_id: QueueId,
    /// Interactions waiting in it now (from the push source).
    pub waiting: u32,
    /// When its estimated wait was last polled, if ever.
    pub last_polled: Option<Instant>,
}

/// Busiest first; then never polled, then polled longest ago; then queue id.
fn priority(a: &Candidate, b: &Candidate) -> Ordering {
    b.waiting
        .cmp(&a.waiting)
        // `None < Some`, and an older instant is smaller.
        .then_with(|| a.last_polled.cmp(&b.last_polled))
        .then_with(|| a.queue_id.cmp(&b.queue_id))
}

/// Picks at most `slots` queues to poll at `now`: those with someone waiting
/// and not polled within `min_age`, busiest first (ties: never polled, then
/// the oldest poll, then the queue id).
pub(crate) fn pick(
    candidates: &[Candidate],
    slots: usize,
    now: Instant,
    min_age: Duration,
) -> Vec<QueueId> {
    if slots == 0 {
        return Vec::new();
    }
    let mut due: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.waiting > 0)
        .filter(|c| {
            c.last_polled
                .is_none_or(|at| now.saturating_duration_since(at) >= min_age)
        })
        .collect();
    due.sort_unstable_by(|a, b| priority(a, b));
    due.into_iter()
        .take(slots)
        .map(|c| c.queue_id.clone())
        .collect()
}

/// Requests per minute left for estimated-wait polling out of
/// `budget_per_minute`, after keeping `headroom` (a fraction in `[0, 1)`,
/// e.g. 0.1) spare and `reserved_per_minute` for other requests:
/// `floor(budget × (1 − headroom) − reserved)`, never negative. A headroom
/// outside `[0, 1]` is clamped into it, a negative reserve counts as 0, and
/// a NaN in either leaves nothing.
pub(crate) fn spare_per_minute(
    budget_per_minute: u32,
    reserved_per_minute: f64,
    headroom: f64,
) -> u32 {
    if headroom.is_nan() || reserved_per_minute.is_nan() {
        return 0;
    }
    let usable = f64::from(budget_per_minute) * (1.0 - headroom.clamp(0.0, 1.0));
    let spare = (usable - reserved_per_minute.max(0.0)).floor();
    if spare >= 1.0 {
        // In 1..=budget_per_minute, so the cast is exact.
        spare.min(f64::from(budget_per_minute)) as u32
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn c(id: &str, waiting: u32, last_polled: Option<Instant>) -> Candidate {
        Candidate {
            queue_id: QueueId::from(id),
            waiting,
            last_polled,
        }
    }

    fn names(ids: &[QueueId]) -> Vec<&str> {
        ids.iter().map(QueueId::as_str).collect()
    }

    #[test]
    fn pick_busiest_first_with_ties() {
        let base = Instant::now();
        let now = base + 100 * SEC;
        let all = [
            c("idle", 0, None),
            c("small", 1, None),
            c("big-old", 9, Some(base)),
            c("big-never", 9, None),
            c("big-recent", 9, Some(base + 50 * SEC)),
            c("mid-b", 5, None),
            c("mid-a", 5, None),
            c("fresh", 50, Some(now - 5 * SEC)),
        ];
        let cases: [(usize, Duration, &[&str]); 5] = [
            (0, 10 * SEC, &[]),
            (1, 10 * SEC, &["big-never"]),
            (3, 10 * SEC, &["big-never", "big-old", "big-recent"]),
            (
                100,
                10 * SEC,
                &[
                    "big-never",
                    "big-old",
                    "big-recent",
                    "mid-a",
                    "mid-b",
                    "small",
                ],
            ),
            // A longer min age holds back the recently polled.
            (
                100,
                60 * SEC,
                &["big-never", "big-old", "mid-a", "mid-b", "small"],
            ),
        ];
        for (slots, min_age, want) in cases {
            assert_eq!(
                names(&pick(&all, slots, now, min_age)),
                want,
                "{slots} {min_age:?}"
            );
        }
        // With no min age, everyone waiting is due.
        assert_eq!(names(&pick(&all, 1, now, Duration::ZERO)), ["fresh"]);
    }

    #[test]
    fn idle_queues_are_never_picked() {
        let now = Instant::now();
        let idle = [c("a", 0, None), c("b", 0, None)];
        assert!(pick(&idle, 10, now, Duration::ZERO).is_empty());
        assert!(pick(&[], 10, now, Duration::ZERO).is_empty());
    }

    #[test]
    fn polled_in_the_future_is_not_due() {
        let now = Instant::now();
        let odd = [c("a", 3, Some(now + 5 * SEC))];
        assert!(pick(&odd, 1, now, SEC).is_empty());
    }

    #[test]
    fn spare_budget() {
        let cases = [
            (300, 0.0, 0.1, 270),
            (300, 100.0, 0.1, 170),
            (300, 269.5, 0.1, 0),
            (300, 300.0, 0.0, 0),
            (300, 1000.0, 0.1, 0),
            (300, 0.0, 0.0, 300),
            (300, -5.0, 0.0, 300),
            (300, 0.0, 1.0, 0),
            (300, 0.0, 2.0, 0),
            (300, 0.0, -1.0, 300),
            (0, 0.0, 0.1, 0),
            (u32::MAX, 0.0, 0.0, u32::MAX),
            (300, f64::NAN, 0.1, 0),
            (300, 0.0, f64::NAN, 0),
            (300, f64::NEG_INFINITY, 0.0, 300),
            (300, f64::INFINITY, 0.0, 0),
            (7, 0.5, 0.1, 5),
        ];
        for (budget, reserved, headroom, want) in cases {
            assert_eq!(
                spare_per_minute(budget, reserved, headroom),
                want,
                "{budget} {reserved} {headroom}"
            );
        }
    }
}
