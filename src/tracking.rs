//! The tracking matrix of one queue: a bounded ring of snapshots plus O(1)
//! running statistics (counters, latency mean and percentiles, position
//! accuracy, smoothed wait). Pure data, no I/O; owned by the MetricsActor.
//!
//! (Past 400 lines: about half is table tests of the ring's packing.)

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};

use crate::error::ErrorKind;
use crate::genesys::Sample;

/// One row of the matrix as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    at_unix_ms: u64,
    depth: Option<u32>,
    wait: Option<f32>,
    smoothed: Option<f64>,
    latency_ms: Option<f32>,
    attempts: u32,
    error: Option<ErrorKind>,
}

impl Snapshot {
    /// When the cycle ended (milliseconds since the Unix epoch).
    pub fn at_unix_ms(&self) -> u64 {
        self.at_unix_ms
    }
    /// Position, or waiting count for `observations`.
    pub fn depth(&self) -> Option<u32> {
        self.depth
    }
    /// Estimated wait in seconds.
    pub fn wait(&self) -> Option<f64> {
        self.wait.map(f64::from)
    }
    /// Smoothed wait in seconds.
    pub fn smoothed(&self) -> Option<f64> {
        self.smoothed
    }
    /// Latency of the last request in milliseconds (three significant digits).
    pub fn latency_ms(&self) -> Option<f64> {
        self.latency_ms.map(f64::from)
    }
    /// Requests made in the cycle.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
    /// The failure kind, `None` for a success.
    pub fn error(&self) -> Option<ErrorKind> {
        self.error
    }
}

/// One row as stored: 16 bytes, so 720 rows take 11.25 KiB. The time is
/// milliseconds after the matrix's base (49 days of range; the base moves
/// forward when a row would not fit), the latency a half-precision float.
/// The smoothed wait is not stored: [`Replay`] recomputes it from the waits.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Row {
    at_ms: u32,
    depth: u32,            // u32::MAX = none
    wait: f32,             // NaN = none
    latency_ms: half::f16, // NaN = none (a cycle that never got a response)
    attempts: u8,          // saturating
    error: u8,             // 0 = success, else 1 + index in ErrorKind::ALL
}

impl Row {
    const EMPTY: Row = Row {
        at_ms: 0,
        depth: u32::MAX,
        wait: f32::NAN,
        latency_ms: half::f16::NAN,
        attempts: 0,
        error: 0,
    };

    /// The row as the API shows it; `smoothed` is the replayed value after it.
    fn view(&self, base_ms: u64, smoothed: Option<f64>) -> Snapshot {
        let some = |v: f32| (!v.is_nan()).then_some(v);
        Snapshot {
            at_unix_ms: base_ms.saturating_add(u64::from(self.at_ms)),
            depth: (self.depth != u32::MAX).then_some(self.depth),
            wait: some(self.wait),
            smoothed: smoothed.filter(|_| !self.wait.is_nan()),
            latency_ms: some(self.latency_ms.to_f32()),
            attempts: u32::from(self.attempts),
            error: ErrorKind::ALL
                .get(usize::from(self.error).checked_sub(1).unwrap_or(usize::MAX))
                .copied(),
        }
    }
}

impl Serialize for Snapshot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Snapshot", 7)?;
        s.serialize_field("at_unix_ms", &self.at_unix_ms)?;
        s.serialize_field("depth", &self.depth())?;
        // Stored as f32: print the few digits that are meaningful, not f32 noise.
        let round = |v: Option<f64>| v.map(|v| (v * 1000.0).round() / 1000.0);
        s.serialize_field("estimated_wait_seconds", &round(self.wait()))?;
        s.serialize_field("smoothed_wait_seconds", &round(self.smoothed()))?;
        // Stored as f16 (three significant digits): print those.
        let significant = |v: Option<f64>| {
            v.map(|v| {
                if v == 0.0 || !v.is_finite() {
                    return v;
                }
                let scale = 10f64.powi(2 - v.abs().log10().floor() as i32);
                (v * scale).round() / scale
            })
        };
        s.serialize_field("latency_ms", &significant(self.latency_ms()))?;
        s.serialize_field("attempts", &self.attempts())?;
        s.serialize_field("error", &self.error())?;
        s.end()
    }
}

/// The smoothed wait of every stored row, replayed from the stored waits
/// (an EWMA: `s = alpha * wait + (1 - alpha) * s_prev`), so rows need not
/// keep it. It knows the value before the oldest row and the factor each
/// row was recorded with (a reload may change it). The replay runs on the
/// waits as stored (`f32`); the events carry the exact value.
#[derive(Debug, Clone, Default)]
struct Replay {
    /// The smoothed wait before the oldest stored row.
    before: Option<f64>,
    /// The smoothed wait after the newest row.
    newest: Option<f64>,
    /// Sequence number of the oldest stored row (rows dropped so far).
    oldest: u64,
    /// The factor of the rows from a sequence number on: the newest rows'.
    factor: (u64, f64),
    /// Earlier factors that stored rows still use, oldest first (empty
    /// unless a reload changed the factor within the last `history_size` rows).
    earlier: Vec<(u64, f64)>,
}

impl Replay {
    /// The smoothed wait after a row with `wait` (NaN = none).
    fn step(prev: Option<f64>, wait: f32, alpha: f64) -> Option<f64> {
        if wait.is_nan() {
            return prev;
        }
        let wait = f64::from(wait);
        Some(match prev {
            Some(prev) => alpha * wait + (1.0 - alpha) * prev,
            None => wait,
        })
    }

    /// The factor of row `seq`.
    fn factor_of(&self, seq: u64) -> f64 {
        if seq >= self.factor.0 {
            return self.factor.1;
        }
        self.earlier
            .iter()
            .rev()
            .find(|(from, _)| *from <= seq)
            .map_or(self.factor.1, |f| f.1)
    }

    /// Row `seq` (the newest, `stored` rows held) is recorded with `alpha`.
    fn push(&mut self, seq: u64, stored: usize, wait: f32, alpha: f64) {
        if stored == 0 {
            self.earlier.clear();
            self.factor = (seq, alpha);
        } else if self.factor.1.to_bits() != alpha.to_bits() {
            self.earlier.push(self.factor);
            self.factor = (seq, alpha);
        }
        self.newest = Self::step(self.newest, wait, alpha);
    }

    /// The oldest row (with `wait`) leaves the ring.
    fn drop_oldest(&mut self, wait: f32) {
        self.before = Self::step(self.before, wait, self.factor_of(self.oldest));
        self.oldest += 1;
        // A factor whose successor starts at or before the oldest row is unused.
        while self.earlier.len() > 1 && self.earlier[1].0 <= self.oldest {
            self.earlier.remove(0);
        }
        if self.factor.0 <= self.oldest {
            self.earlier.clear();
        }
    }
}

/// What one finished cycle tells the matrix.
#[derive(Debug, Clone)]
pub struct CycleReport {
    /// The sample, or the failure kind.
    pub outcome: Result<Sample, ErrorKind>,
    /// Latency of the last request, if one got an answer or timed out.
    pub latency: Option<Duration>,
    /// Requests made in the cycle.
    pub attempts: u32,
    /// How many of those got a 429.
    pub rate_limited: u32,
    /// EWMA weight of the new sample (the queue's `smoothing_factor`).
    pub smoothing_factor: f64,
    /// When the cycle ended: the snapshot's time and the event's timestamp.
    pub at: SystemTime,
}

/// Counters of one queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counters {
    /// Cycles finished.
    pub total: u64,
    /// Cycles that succeeded.
    pub success: u64,
    /// Failed cycles by error kind (only kinds seen).
    pub failures: std::collections::BTreeMap<ErrorKind, u64>,
    /// Retries (requests beyond the first of each cycle).
    pub retries: u64,
    /// 429 responses received.
    pub rate_limited_responses: u64,
}

/// Log-spaced latency histogram: O(1) record, percentiles without a re-scan.
#[derive(Debug, Clone)]
pub(crate) struct LatencyStats {
    count: u64,
    mean_ms: f64,
    max_ms: f64,
    buckets: [u32; BUCKETS],
}

const BUCKETS: usize = 48;
/// Bucket `i` holds latencies below `BASE_MS * GROWTH^i` (0.5 ms .. ~60 s).
const BASE_MS: f64 = 0.5;
const GROWTH: f64 = 1.29;

impl Default for LatencyStats {
    fn default() -> Self {
        LatencyStats {
            count: 0,
            mean_ms: 0.0,
            max_ms: 0.0,
            buckets: [0; BUCKETS],
        }
    }
}

impl LatencyStats {
    /// The largest value recorded.
    pub(crate) fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max_ms)
    }

    pub(crate) fn record(&mut self, ms: f64) {
        self.count += 1;
        self.max_ms = self.max_ms.max(ms);
        self.mean_ms += (ms - self.mean_ms) / self.count as f64;
        let index = if ms <= BASE_MS {
            0
        } else {
            ((ms / BASE_MS).ln() / GROWTH.ln()).ceil() as usize
        };
        let bucket = &mut self.buckets[index.min(BUCKETS - 1)];
        *bucket = bucket.saturating_add(1);
    }

    /// Upper bound of the bucket holding quantile `q` (within ~29%).
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let total: u64 = self.buckets.iter().map(|b| u64::from(*b)).sum();
        let rank = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += u64::from(*b);
            if seen >= rank {
                return Some(BASE_MS * GROWTH.powi(i as i32));
            }
        }
        None
    }
}

/// Latency summary for the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Running mean in ms.
    pub mean_ms: Option<f64>,
    /// Median (bucket upper bound) in ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile in ms.
    pub p95_ms: Option<f64>,
    /// 99th percentile in ms.
    pub p99_ms: Option<f64>,
}

/// The tracking matrix of one queue. Its ring is allocated (and touched)
/// whole at creation, so memory is known up front and never grows.
#[derive(Debug, Clone)]
pub struct QueueMatrix {
    ring: Box<[Row]>,
    /// What every row's `at_ms` counts from (ms since the Unix epoch).
    base_ms: u64,
    /// The rows' smoothed waits.
    replay: Replay,
    /// Index of the oldest row.
    head: usize,
    len: usize,
    counters: Counters,
    latency: LatencyStats,
    smoothed: Option<f64>,
    last_depth: Option<u32>,
    transitions: u64,
    steady_transitions: u64,
}

impl QueueMatrix {
    /// An empty matrix keeping at most `history_size` snapshots.
    pub fn new(history_size: usize) -> QueueMatrix {
        QueueMatrix {
            ring: vec![Row::EMPTY; history_size.max(1)].into_boxed_slice(),
            base_ms: 0,
            replay: Replay::default(),
            head: 0,
            len: 0,
            counters: Counters::default(),
            latency: LatencyStats::default(),
            smoothed: None,
            last_depth: None,
            transitions: 0,
            steady_transitions: 0,
        }
    }

    /// Records a finished cycle; returns the smoothed wait after it.
    pub fn record(&mut self, report: &CycleReport) -> Option<f64> {
        let at = report.at;
        self.counters.total += 1;
        self.counters.retries += u64::from(report.attempts.saturating_sub(1));
        self.counters.rate_limited_responses += u64::from(report.rate_limited);
        let latency_ms = report.latency.map(|l| l.as_secs_f64() * 1000.0);
        let at_unix_ms = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut snapshot = Row {
            at_ms: self.offset_of(at_unix_ms),
            depth: u32::MAX,
            wait: f32::NAN,
            latency_ms: latency_ms.map_or(half::f16::NAN, half::f16::from_f64),
            attempts: u8::try_from(report.attempts).unwrap_or(u8::MAX),
            error: 0,
        };
        match &report.outcome {
            Ok(sample) => {
                self.counters.success += 1;
                if let Some(ms) = latency_ms {
                    self.latency.record(ms);
                }
                if let Some(wait) = sample.estimated_wait_seconds {
                    let alpha = report.smoothing_factor;
                    let next = match self.smoothed {
                        Some(prev) => alpha * wait + (1.0 - alpha) * prev,
                        None => wait,
                    };
                    self.smoothed = Some(next);
                    snapshot.wait = wait as f32;
                }
                if let Some(depth) = sample.position.or(sample.waiting) {
                    if let Some(prev) = self.last_depth {
                        self.transitions += 1;
                        if depth <= prev {
                            self.steady_transitions += 1;
                        }
                    }
                    self.last_depth = Some(depth);
                    snapshot.depth = depth;
                }
            }
            Err(kind) => {
                *self.counters.failures.entry(*kind).or_default() += 1;
                let index = ErrorKind::ALL.iter().position(|k| k == kind).unwrap_or(0);
                snapshot.error = u8::try_from(index + 1).unwrap_or(u8::MAX);
            }
        }
        let capacity = self.ring.len();
        let seq = self.replay.oldest + self.len as u64;
        if self.len == capacity {
            self.replay.drop_oldest(self.ring[self.head].wait);
        }
        let stored = self.len.min(capacity - 1);
        self.replay
            .push(seq, stored, snapshot.wait, report.smoothing_factor);
        if self.len == capacity {
            self.ring[self.head] = snapshot;
            self.head = (self.head + 1) % capacity;
        } else {
            self.ring[(self.head + self.len) % capacity] = snapshot;
            self.len += 1;
        }
        self.smoothed
    }

    /// `at_unix_ms` as an offset from the base; moves the base (and every
    /// row with it) when it does not fit: a clock that stepped back, or 49
    /// days after the base. Rows that cannot follow (older than 49 days
    /// before the newest) are shown at the oldest time that fits.
    fn offset_of(&mut self, at_unix_ms: u64) -> u32 {
        if self.len == 0 {
            self.base_ms = at_unix_ms;
            return 0;
        }
        if let Some(offset) = at_unix_ms
            .checked_sub(self.base_ms)
            .and_then(|d| u32::try_from(d).ok())
        {
            return offset;
        }
        let rows = self
            .history_rows()
            .map(|r| self.base_ms + u64::from(r.at_ms));
        let (oldest, newest) = rows.fold((at_unix_ms, at_unix_ms), |(lo, hi), t| {
            (lo.min(t), hi.max(t))
        });
        let base = oldest.max(newest.saturating_sub(u64::from(u32::MAX)));
        let old_base = self.base_ms;
        let capacity = self.ring.len();
        for i in 0..self.len {
            let row = &mut self.ring[(self.head + i) % capacity];
            let t = old_base + u64::from(row.at_ms);
            row.at_ms = u32::try_from(t.saturating_sub(base)).unwrap_or(u32::MAX);
        }
        self.base_ms = base;
        u32::try_from(at_unix_ms.saturating_sub(base)).unwrap_or(u32::MAX)
    }

    fn history_rows(&self) -> impl Iterator<Item = &Row> + '_ {
        let capacity = self.ring.len();
        (0..self.len).map(move |i| &self.ring[(self.head + i) % capacity])
    }

    /// The snapshots, oldest first.
    pub fn history(&self) -> impl ExactSizeIterator<Item = Snapshot> + '_ {
        let capacity = self.ring.len();
        let mut smoothed = self.replay.before;
        (0..self.len).map(move |i| {
            let row = &self.ring[(self.head + i) % capacity];
            let alpha = self.replay.factor_of(self.replay.oldest + i as u64);
            smoothed = Replay::step(smoothed, row.wait, alpha);
            row.view(self.base_ms, smoothed)
        })
    }

    /// The most recent snapshot.
    pub fn last(&self) -> Option<Snapshot> {
        let index = (self.head + self.len.checked_sub(1)?) % self.ring.len();
        Some(self.ring[index].view(self.base_ms, self.replay.newest))
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The current smoothed wait.
    pub fn smoothed_wait(&self) -> Option<f64> {
        self.smoothed
    }

    /// Share of depth transitions where the position did not increase.
    pub fn position_accuracy(&self) -> Option<f64> {
        (self.transitions > 0).then(|| self.steady_transitions as f64 / self.transitions as f64)
    }

    /// Latency mean and percentiles of successful cycles.
    pub fn latency(&self) -> LatencySummary {
        LatencySummary {
            mean_ms: (self.latency.count > 0).then_some(self.latency.mean_ms),
            p50_ms: self.latency.quantile(0.50),
            p95_ms: self.latency.quantile(0.95),
            p99_ms: self.latency.quantile(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(position: u32, wait: f64, latency_ms: u64) -> CycleReport {
        CycleReport {
            outcome: Ok(Sample {
                position: Some(position),
                estimated_wait_seconds: Some(wait),
                ..Sample::default()
            }),
            latency: Some(Duration::from_millis(latency_ms)),
            attempts: 1,
            rate_limited: 0,
            smoothing_factor: 0.5,
            at: SystemTime::now(),
        }
    }

    #[test]
    fn a_row_is_compact() {
        assert_eq!(std::mem::size_of::<Row>(), 16);
    }

    #[test]
    fn rows_keep_their_times_to_the_millisecond_across_a_moving_base() {
        let day = Duration::from_secs(86_400);
        let t0 = UNIX_EPOCH + Duration::from_millis(1_764_000_000_123);
        // (offset from t0) in recording order: a normal step, 30 days, 30
        // more (past the 49-day range: the base moves), and a clock stepped
        // back by a minute.
        let steps = [
            Duration::ZERO,
            Duration::from_millis(5_007),
            30 * day,
            60 * day,
            60 * day - Duration::from_secs(60),
        ];
        let mut m = QueueMatrix::new(10);
        for step in steps {
            m.record(&CycleReport {
                at: t0 + step,
                ..ok(1, 1.0, 5)
            });
        }
        let want: Vec<u64> = steps
            .iter()
            .map(|s| (t0 + *s).duration_since(UNIX_EPOCH).unwrap().as_millis() as u64)
            .collect();
        let got: Vec<u64> = m.history().map(|s| s.at_unix_ms()).collect();
        // The two oldest rows are more than 49 days before the newest: they
        // show the oldest time that fits; the rest are exact.
        assert_eq!(got[2..], want[2..]);
        let floor = want[3] - u64::from(u32::MAX);
        assert_eq!(got[..2], [floor, floor]);
    }

    #[test]
    fn smoothed_waits_are_replayed_across_drops_and_factor_changes() {
        // (ring size, factor of each record): one factor; a change that
        // stays in the ring; changes that the ring drops again; a ring of one.
        let cases: [(usize, Vec<f64>); 5] = [
            (4, vec![0.5; 11]),
            (8, [vec![0.5; 5], vec![0.2; 5]].concat()),
            (3, [vec![0.5; 4], vec![0.9; 2], vec![0.3; 6]].concat()),
            (4, (0..12).map(|i| 0.1 + 0.07 * f64::from(i)).collect()),
            (1, vec![0.8, 0.8, 0.4]),
        ];
        for (size, factors) in cases {
            let mut m = QueueMatrix::new(size);
            let mut exact = Vec::new();
            let mut replayed: Option<f64> = None;
            let mut want = Vec::new();
            for (i, alpha) in factors.iter().enumerate() {
                // Every third cycle fails: it has no wait and leaves the EWMA be.
                let mut report = ok(1, 10.0 + 7.3 * i as f64, 5);
                if i % 3 == 2 {
                    report.outcome = Err(ErrorKind::Timeout);
                }
                report.smoothing_factor = *alpha;
                exact.push(m.record(&report));
                if let Ok(sample) = &report.outcome {
                    let wait = sample.estimated_wait_seconds.unwrap() as f32;
                    replayed = Replay::step(replayed, wait, *alpha);
                }
                want.push(report.outcome.is_ok().then_some(replayed).flatten());
            }
            let got: Vec<Option<f64>> = m.history().map(|s| s.smoothed()).collect();
            let tail = &want[want.len() - got.len()..];
            assert_eq!(got, tail, "size {size}, factors {factors:?}");
            assert_eq!(m.last().unwrap().smoothed(), *tail.last().unwrap());
            // The replay (on f32 waits) stays within f32 rounding of the
            // events' exact value.
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * b.abs().max(1.0);
            assert!(close(
                m.replay.newest.unwrap(),
                exact.last().unwrap().unwrap()
            ));
            assert!(m.replay.earlier.len() < size.max(1));
        }
    }

    #[test]
    fn latency_keeps_three_significant_digits() {
        // (µs, shown ms): within half a percent (1234.567 is stored as 1235).
        let mut m = QueueMatrix::new(4);
        for (micros, shown) in [
            (412, 0.412),
            (12_400, 12.4),
            (1_234_567, 1240.0),
            (8_000_000, 8000.0),
        ] {
            let mut report = ok(1, 1.0, 0);
            report.latency = Some(Duration::from_micros(micros));
            m.record(&report);
            let json = serde_json::to_value(m.last().unwrap()).unwrap();
            assert_eq!(json["latency_ms"], serde_json::json!(shown), "{micros} µs");
        }
    }

    #[test]
    fn ring_is_bounded_and_keeps_newest() {
        let mut m = QueueMatrix::new(3);
        for i in 0..10 {
            m.record(&ok(i, 1.0, 5));
        }
        let depths: Vec<_> = m.history().map(|s| s.depth().unwrap()).collect();
        assert_eq!(depths, [7, 8, 9]);
        assert_eq!(m.counters().total, 10);
        assert_eq!(m.last().unwrap().depth(), Some(9));
        assert_eq!(m.history().len(), 3);
    }

    #[test]
    fn ewma_and_accuracy() {
        let mut m = QueueMatrix::new(10);
        assert_eq!(m.record(&ok(5, 100.0, 5)), Some(100.0));
        assert_eq!(m.record(&ok(4, 50.0, 5)), Some(75.0));
        m.record(&ok(6, 50.0, 5)); // position went up
        m.record(&ok(6, 50.0, 5));
        assert_eq!(m.position_accuracy(), Some(2.0 / 3.0));
    }

    #[test]
    fn failures_are_counted_by_kind_and_kept_in_history() {
        let mut m = QueueMatrix::new(10);
        let failed = CycleReport {
            outcome: Err(ErrorKind::RateLimited),
            latency: None,
            attempts: 6,
            rate_limited: 6,
            smoothing_factor: 0.8,
            at: SystemTime::now(),
        };
        m.record(&failed);
        assert_eq!(m.counters().failures[&ErrorKind::RateLimited], 1);
        assert_eq!(m.counters().retries, 5);
        assert_eq!(m.counters().rate_limited_responses, 6);
        assert_eq!(m.last().unwrap().error(), Some(ErrorKind::RateLimited));
        assert_eq!(m.last().unwrap().latency_ms(), None);
        assert_eq!(m.smoothed_wait(), None);
    }

    #[test]
    fn latency_percentiles_without_rescan() {
        let mut m = QueueMatrix::new(5);
        for ms in 1..=100 {
            m.record(&ok(1, 1.0, ms));
        }
        let l = m.latency();
        assert!((l.mean_ms.unwrap() - 50.5).abs() < 0.01);
        let p50 = l.p50_ms.unwrap();
        assert!((50.0..=50.0 * GROWTH).contains(&p50), "{p50}");
        let p99 = l.p99_ms.unwrap();
        assert!((99.0..=99.0 * GROWTH).contains(&p99), "{p99}");
    }
}
