//! One queue's freshest observed counts, merged from partial pushes and
//! complete REST snapshots, and the one reduction of metric-level counts to
//! `waiting` and `agents_on_queue` (shared with
//! [`parse_observations`](crate::genesys::wire::parse_observations)).
//!
//! Every count carries the instant it was observed at; older data never
//! overwrites newer data, whatever order the messages arrive in.

use std::collections::BTreeMap;

use tokio::time::Instant;

use crate::genesys::wire::{MetricCount, MetricKey, METRIC_ON_QUEUE_USERS, METRIC_WAITING};

/// Sums `(key, count)` pairs into `(waiting, agents_on_queue)`: every
/// `oWaiting` count (over media types) and every `oOnQueueUsers` count (over
/// qualifiers and media types). `None` for a metric without any count.
/// Saturating: the caller checks its own cap.
fn sum<'a>(counts: impl IntoIterator<Item = (&'a MetricKey, u32)>) -> (Option<u32>, Option<u32>) {
    let (mut waiting, mut agents): (Option<u32>, Option<u32>) = (None, None);
    for (key, count) in counts {
        let total = match key.metric.as_str() {
            METRIC_WAITING => &mut waiting,
            METRIC_ON_QUEUE_USERS => &mut agents,
            _ => continue,
        };
        *total = Some(total.unwrap_or(0).saturating_add(count));
    }
    (waiting, agents)
}

/// The shared reduction of metric-level counts: `(waiting, agents_on_queue)`,
/// saturating sums, `None` for a metric that has no count in `metrics`.
pub(crate) fn reduce(metrics: &[MetricCount]) -> (Option<u32>, Option<u32>) {
    sum(metrics.iter().map(|m| (&m.metric, m.count)))
}

/// The later of two optional instants.
fn later(a: Option<Instant>, b: Instant) -> Instant {
    a.map_or(b, |a| a.max(b))
}

/// One queue's freshest counts per [`MetricKey`], each with the instant it
/// was observed at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct QueueLive {
    entries: BTreeMap<MetricKey, (u32, Instant)>,
    snapshot_at: Option<Instant>,
    updated_at: Option<Instant>,
}

impl QueueLive {
    /// An empty state: no data, no snapshot.
    pub(crate) fn new() -> Self {
        QueueLive::default()
    }

    /// Whether data observed at `at` may set a key that has no entry: not
    /// when a newer snapshot said the key was gone.
    fn may_insert(&self, at: Instant) -> bool {
        self.snapshot_at.is_none_or(|snapshot| at >= snapshot)
    }

    /// Sets `key` to `count` observed at `at` unless what is stored is newer.
    /// Returns `(applied, changed)`: whether the data was taken, and whether
    /// the count it reports changed (a new key, or another count).
    fn set(&mut self, key: &MetricKey, count: u32, at: Instant) -> (bool, bool) {
        let may_insert = self.may_insert(at);
        match self.entries.get_mut(key) {
            Some(entry) if at >= entry.1 => {
                let changed = entry.0 != count;
                *entry = (count, at);
                (true, changed)
            }
            Some(_) => (false, false),
            None if may_insert => {
                self.entries.insert(key.clone(), (count, at));
                (true, true)
            }
            None => (false, false),
        }
    }

    /// Applies a push observed at `at`: a partial set, only the given keys
    /// change, each only if `at` is not older than what it holds (or, for a
    /// key without an entry, than the last snapshot). Returns whether a
    /// reported count changed; a repeated key takes its last count.
    pub(crate) fn apply_push(&mut self, metrics: &[MetricCount], at: Instant) -> bool {
        let mut changed = false;
        let mut applied = false;
        for m in metrics {
            let (took, differs) = self.set(&m.metric, m.count, at);
            applied |= took;
            changed |= differs;
        }
        if applied {
            self.updated_at = Some(later(self.updated_at, at));
        }
        changed
    }

    /// Applies a complete set observed at `at` (a REST snapshot): each given
    /// key is set unless what it holds is newer, and every key left out whose
    /// entry is older than `at` is removed (the snapshot says it is gone, so
    /// it counts 0). Entries newer than `at` stay. A snapshot older than the
    /// last one adds no keys.
    pub(crate) fn apply_snapshot(&mut self, metrics: &[MetricCount], at: Instant) {
        for m in metrics {
            self.set(&m.metric, m.count, at);
        }
        self.entries
            .retain(|key, (_, stored)| *stored >= at || metrics.iter().any(|m| &m.metric == key));
        self.snapshot_at = Some(later(self.snapshot_at, at));
        self.updated_at = Some(later(self.updated_at, at));
    }

    fn reduced(&self) -> (Option<u32>, Option<u32>) {
        let (waiting, agents) = sum(self.entries.iter().map(|(key, (count, _))| (key, *count)));
        // After a snapshot, a metric without entries is known to be zero.
        let known = |total: Option<u32>| match (total, self.snapshot_at) {
            (None, Some(_)) => Some(0),
            (total, _) => total,
        };
        (known(waiting), known(agents))
    }

    /// Interactions waiting: the sum of every `oWaiting` entry (over media
    /// types); 0 after a snapshot without any, `None` before any data.
    pub(crate) fn waiting(&self) -> Option<u32> {
        self.reduced().0
    }

    /// Agents on queue: the sum of every `oOnQueueUsers` entry (over
    /// qualifiers and media types); 0 after a snapshot without any, `None`
    /// before any data.
    pub(crate) fn agents_on_queue(&self) -> Option<u32> {
        self.reduced().1
    }

    /// The newest instant of any applied data (push or snapshot), for
    /// `data_age_ms`; `None` before any.
    pub(crate) fn updated_at(&self) -> Option<Instant> {
        self.updated_at
    }

    /// The instant of the newest snapshot applied, if any.
    #[cfg(test)]
    pub(crate) fn snapshot_at(&self) -> Option<Instant> {
        self.snapshot_at
    }

    /// The count held for `key` and when it was observed.
    #[cfg(test)]
    pub(crate) fn get(&self, key: &MetricKey) -> Option<(u32, Instant)> {
        self.entries.get(key).copied()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(metric: &str, qualifier: Option<&str>, media: Option<&str>) -> MetricKey {
        MetricKey {
            metric: metric.to_string(),
            qualifier: qualifier.map(str::to_string),
            media_type: media.map(str::to_string),
        }
    }

    fn mc(metric: &str, qualifier: Option<&str>, media: Option<&str>, count: u32) -> MetricCount {
        MetricCount {
            metric: key(metric, qualifier, media),
            count,
        }
    }

    fn w(media: &str, count: u32) -> MetricCount {
        mc(METRIC_WAITING, None, Some(media), count)
    }

    fn a(qualifier: &str, media: &str, count: u32) -> MetricCount {
        mc(METRIC_ON_QUEUE_USERS, Some(qualifier), Some(media), count)
    }

    fn t(base: Instant, secs: u64) -> Instant {
        base + Duration::from_secs(secs)
    }

    #[test]
    fn reduce_sums_metrics_over_qualifiers_and_media() {
        type Totals = (Option<u32>, Option<u32>);
        let cases: Vec<(Vec<MetricCount>, Totals)> = vec![
            (vec![], (None, None)),
            (vec![w("message", 3)], (Some(3), None)),
            (vec![a("IDLE", "message", 2)], (None, Some(2))),
            (
                vec![
                    w("message", 3),
                    w("voice", 4),
                    a("IDLE", "message", 2),
                    a("INTERACTING", "message", 5),
                    a("IDLE", "voice", 1),
                    mc("oInteracting", None, None, 99),
                ],
                (Some(7), Some(8)),
            ),
            (
                vec![w("message", u32::MAX), w("voice", 1)],
                (Some(u32::MAX), None),
            ),
        ];
        for (metrics, want) in cases {
            assert_eq!(reduce(&metrics), want, "{metrics:?}");
        }
    }

    #[test]
    fn nothing_known_before_data() {
        let live = QueueLive::new();
        assert_eq!(live.waiting(), None);
        assert_eq!(live.agents_on_queue(), None);
        assert_eq!(live.updated_at(), None);
    }

    #[test]
    fn partial_pushes_merge() {
        let base = Instant::now();
        let mut live = QueueLive::new();
        assert!(live.apply_push(&[w("message", 3)], t(base, 1)));
        assert_eq!((live.waiting(), live.agents_on_queue()), (Some(3), None));
        assert!(live.apply_push(&[a("IDLE", "message", 2)], t(base, 2)));
        assert_eq!((live.waiting(), live.agents_on_queue()), (Some(3), Some(2)));
        assert!(live.apply_push(&[a("INTERACTING", "message", 4)], t(base, 3)));
        assert!(live.apply_push(&[w("voice", 1)], t(base, 4)));
        assert_eq!((live.waiting(), live.agents_on_queue()), (Some(4), Some(6)));
        // Same count again: fresher, not a change.
        assert!(!live.apply_push(&[w("voice", 1)], t(base, 5)));
        assert_eq!(live.updated_at(), Some(t(base, 5)));
        assert_eq!(
            live.get(&key(METRIC_WAITING, None, Some("voice"))),
            Some((1, t(base, 5)))
        );
        // Nothing applied: no change, no freshness.
        assert!(!live.apply_push(&[], t(base, 6)));
        assert_eq!(live.updated_at(), Some(t(base, 5)));
    }

    #[test]
    fn older_after_newer_is_ignored() {
        let base = Instant::now();
        let mut live = QueueLive::new();
        live.apply_push(&[w("message", 5)], t(base, 10));
        assert!(!live.apply_push(&[w("message", 1)], t(base, 9)));
        assert_eq!(live.waiting(), Some(5));
        assert_eq!(live.updated_at(), Some(t(base, 10)));
        // Same instant: the later message wins.
        assert!(live.apply_push(&[w("message", 6)], t(base, 10)));
        assert_eq!(live.waiting(), Some(6));
        // An older message may still bring a key that is not held.
        assert!(live.apply_push(&[a("IDLE", "message", 2), w("message", 0)], t(base, 8)));
        assert_eq!((live.waiting(), live.agents_on_queue()), (Some(6), Some(2)));
        assert_eq!(live.updated_at(), Some(t(base, 10)));
        // An older snapshot changes nothing held newer.
        live.apply_snapshot(&[w("message", 1)], t(base, 7));
        assert_eq!((live.waiting(), live.agents_on_queue()), (Some(6), Some(2)));
    }

    #[test]
    fn snapshot_removes_stale_keys_but_keeps_newer_pushes() {
        let base = Instant::now();
        let mut live = QueueLive::new();
        live.apply_push(&[w("message", 3), a("IDLE", "message", 2)], t(base, 1));
        live.apply_push(&[a("INTERACTING", "message", 4)], t(base, 5));
        live.apply_snapshot(&[w("message", 1)], t(base, 3));
        // IDLE (older, absent from the snapshot) is gone; INTERACTING (newer) stays.
        assert_eq!((live.waiting(), live.agents_on_queue()), (Some(1), Some(4)));
        assert_eq!(
            live.get(&key(METRIC_ON_QUEUE_USERS, Some("IDLE"), Some("message"))),
            None
        );
        assert_eq!(live.updated_at(), Some(t(base, 5)));
        assert_eq!(live.snapshot_at(), Some(t(base, 3)));
        // A push older than the snapshot may not bring back a removed key.
        assert!(!live.apply_push(&[a("IDLE", "message", 9)], t(base, 2)));
        assert_eq!(live.agents_on_queue(), Some(4));
        // A snapshot with nothing: every older key goes, the metrics read 0.
        live.apply_snapshot(&[], t(base, 10));
        assert_eq!((live.waiting(), live.agents_on_queue()), (Some(0), Some(0)));
        assert_eq!(live.updated_at(), Some(t(base, 10)));
    }

    #[test]
    fn snapshot_sets_keys_and_zero_for_missing_metrics() {
        let base = Instant::now();
        let mut live = QueueLive::new();
        live.apply_snapshot(&[w("message", 2)], t(base, 1));
        assert_eq!((live.waiting(), live.agents_on_queue()), (Some(2), Some(0)));
        live.apply_push(&[w("message", 7)], t(base, 2));
        live.apply_snapshot(&[w("message", 4), a("IDLE", "voice", 1)], t(base, 3));
        assert_eq!((live.waiting(), live.agents_on_queue()), (Some(4), Some(1)));
    }

    #[test]
    fn sums_saturate() {
        let base = Instant::now();
        let mut live = QueueLive::new();
        live.apply_push(
            &[
                w("message", u32::MAX),
                w("voice", u32::MAX),
                a("IDLE", "message", u32::MAX),
                a("IDLE", "voice", 3),
            ],
            base,
        );
        assert_eq!(live.waiting(), Some(u32::MAX));
        assert_eq!(live.agents_on_queue(), Some(u32::MAX));
    }

    #[test]
    fn repeated_key_in_one_push_takes_the_last() {
        let base = Instant::now();
        let mut live = QueueLive::new();
        live.apply_push(&[w("message", 3), w("message", 8)], base);
        assert_eq!(live.waiting(), Some(8));
    }
}
