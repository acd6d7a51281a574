//! The freshest data of every queue of the push source, shared by its
//! writers (the channel pool, fallback polls, wait-time polls) and its
//! readers (each queue's poller, at its tick). One small lock per queue:
//! no reader ever waits for another queue.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tokio::sync::watch;
use tokio::time::Instant;

use super::merge::QueueLive;
use crate::genesys::wire::MetricCount;
use crate::genesys::Sample;
use crate::QueueId;

/// How a queue's data arrives now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    /// Its channel is being set up for the first time: no fallback yet.
    Connecting,
    /// Pushed over a live, subscribed and reconciled channel.
    Push,
    /// Its channel is down (or its topic was refused): polled with
    /// batched observations at its interval, inside the budget.
    Fallback,
}

impl Link {
    /// The name the status API shows (`feed`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Link::Connecting => "connecting",
            Link::Push => "push",
            Link::Fallback => "fallback",
        }
    }
}

/// What a tick reads of its queue.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct View {
    /// How the data arrives.
    pub link: Link,
    /// Interactions waiting (`None` before any data).
    pub waiting: Option<u32>,
    /// Agents on queue (`None` before any data).
    pub agents_on_queue: Option<u32>,
    /// The estimated wait, while customers wait and `wait_time: active` has one.
    pub estimated_wait_seconds: Option<f64>,
    /// When the newest data in the view arrived.
    pub updated_at: Option<Instant>,
}

impl View {
    /// The view as a sample for the thresholds and the matrix.
    pub(crate) fn sample(&self) -> Sample {
        Sample {
            waiting: self.waiting,
            agents_on_queue: self.agents_on_queue,
            estimated_wait_seconds: self.estimated_wait_seconds,
            ..Sample::default()
        }
    }
}

#[derive(Debug)]
struct CellState {
    live: QueueLive,
    link: Link,
    /// The last fallback poll's sample and when it arrived.
    polled: Option<(Sample, Instant)>,
    /// The last estimated wait and when it arrived.
    wait: Option<(f64, Instant)>,
    /// Its topic was refused: it stays on fallback polling.
    refused: bool,
}

/// One queue's state.
#[derive(Debug)]
pub(crate) struct QueueCell {
    state: Mutex<CellState>,
}

impl QueueCell {
    fn new() -> Self {
        QueueCell {
            state: Mutex::new(CellState {
                live: QueueLive::new(),
                link: Link::Connecting,
                polled: None,
                wait: None,
                refused: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CellState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The freshest data: pushed or snapshot data, or a newer fallback poll.
    pub(crate) fn view(&self) -> View {
        let state = self.lock();
        let live_at = state.live.updated_at();
        let (waiting, agents_on_queue, updated_at) = match state.polled {
            Some((ref sample, at)) if live_at.is_none_or(|live| at > live) => {
                (sample.waiting, sample.agents_on_queue, Some(at))
            }
            _ => (state.live.waiting(), state.live.agents_on_queue(), live_at),
        };
        // A wait only while customers wait: an idle queue reports none.
        let estimated_wait_seconds = match waiting {
            Some(n) if n > 0 => state.wait.map(|(wait, _)| wait),
            _ => None,
        };
        View {
            link: state.link,
            waiting,
            agents_on_queue,
            estimated_wait_seconds,
            updated_at,
        }
    }

    /// A pushed (partial) observation; whether anything changed.
    pub(crate) fn push(&self, metrics: &[MetricCount], at: Instant) -> bool {
        self.lock().live.apply_push(metrics, at)
    }

    /// A complete snapshot taken at `at` (when the request was sent).
    pub(crate) fn snapshot(&self, metrics: &[MetricCount], at: Instant) {
        self.lock().live.apply_snapshot(metrics, at);
    }

    /// A fallback poll's sample.
    pub(crate) fn polled(&self, sample: Sample, at: Instant) {
        self.lock().polled = Some((sample, at));
    }

    /// An estimated wait.
    pub(crate) fn waited(&self, seconds: f64, at: Instant) {
        self.lock().wait = Some((seconds, at));
    }

    /// The waiting count and when the wait was last polled (wait-time picks).
    pub(crate) fn wait_candidate(&self) -> (u32, Option<Instant>) {
        let view_waiting = self.view().waiting.unwrap_or(0);
        (view_waiting, self.lock().wait.map(|(_, at)| at))
    }

    fn set_link(&self, link: Link) -> (Link, Link) {
        let mut state = self.lock();
        let old = state.link;
        state.link = if state.refused { Link::Fallback } else { link };
        (old, state.link)
    }

    /// A subscription accepted its topic (again): it may go on push.
    fn accept(&self) {
        self.lock().refused = false;
    }

    fn refuse(&self) -> (Link, Link) {
        let mut state = self.lock();
        state.refused = true;
        let old = state.link;
        state.link = Link::Fallback;
        (old, Link::Fallback)
    }
}

/// Every queue of the push source on this instance.
#[derive(Debug)]
pub(crate) struct LiveStore {
    cells: RwLock<HashMap<QueueId, Arc<QueueCell>>>,
    /// Queues on `Fallback`.
    on_fallback: AtomicUsize,
    /// Bumped whenever the set of queues changes.
    changed: watch::Sender<u64>,
}

impl Default for LiveStore {
    fn default() -> Self {
        LiveStore {
            cells: RwLock::new(HashMap::new()),
            on_fallback: AtomicUsize::new(0),
            changed: watch::Sender::new(0),
        }
    }
}

impl LiveStore {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<QueueId, Arc<QueueCell>>> {
        self.cells.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<QueueId, Arc<QueueCell>>> {
        self.cells.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The cell of `id`, created (and the pool told) if it is new.
    pub(crate) fn join(&self, id: &QueueId) -> Arc<QueueCell> {
        if let Some(cell) = self.read().get(id) {
            return cell.clone();
        }
        let cell = {
            let mut cells = self.write();
            if let Some(cell) = cells.get(id) {
                return cell.clone();
            }
            let cell = Arc::new(QueueCell::new());
            cells.insert(id.clone(), cell.clone());
            cell
        };
        self.changed.send_modify(|v| *v += 1);
        cell
    }

    /// Forgets `id` (its poller stopped for good).
    pub(crate) fn leave(&self, id: &QueueId) {
        let removed = self.write().remove(id);
        if let Some(cell) = removed {
            if cell.lock().link == Link::Fallback {
                self.on_fallback.fetch_sub(1, Ordering::Relaxed);
            }
            self.changed.send_modify(|v| *v += 1);
        }
    }

    /// The cell of `id`, if it is a queue of this instance.
    pub(crate) fn cell(&self, id: &str) -> Option<Arc<QueueCell>> {
        self.read().get(id).cloned()
    }

    /// How `id`'s data arrives now, as the status API names it (`feed`).
    pub(crate) fn feed(&self, id: &str) -> Option<&'static str> {
        self.cell(id).map(|cell| cell.view().link.as_str())
    }

    /// Every queue id, sorted.
    pub(crate) fn ids(&self) -> BTreeSet<QueueId> {
        self.read().keys().cloned().collect()
    }

    /// Every cell (a copy of the map's values).
    pub(crate) fn cells(&self) -> Vec<(QueueId, Arc<QueueCell>)> {
        self.read()
            .iter()
            .map(|(id, cell)| (id.clone(), cell.clone()))
            .collect()
    }

    /// Changes of the queue set.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Moves `ids` to `link` (a refused queue stays on `Fallback`).
    pub(crate) fn set_link<'a>(&self, ids: impl IntoIterator<Item = &'a QueueId>, link: Link) {
        let cells = self.read();
        for id in ids {
            if let Some(cell) = cells.get(id) {
                self.count(cell.set_link(link));
            }
        }
    }

    /// `ids`' topics were accepted by a subscription: a refusal before no
    /// longer holds them on polling.
    pub(crate) fn accept<'a>(&self, ids: impl IntoIterator<Item = &'a QueueId>) {
        let cells = self.read();
        for id in ids {
            if let Some(cell) = cells.get(id) {
                cell.accept();
            }
        }
    }

    /// `id`'s topic was refused: it is polled until a later subscription
    /// (the channel's next set-up) accepts it.
    pub(crate) fn refuse(&self, id: &QueueId) {
        if let Some(cell) = self.cell(id) {
            self.count(cell.refuse());
        }
    }

    fn count(&self, (old, new): (Link, Link)) {
        if old == new {
            return;
        }
        if old == Link::Fallback {
            self.on_fallback.fetch_sub(1, Ordering::Relaxed);
        }
        if new == Link::Fallback {
            self.on_fallback.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues on fallback polling now.
    pub(crate) fn on_fallback(&self) -> usize {
        self.on_fallback.load(Ordering::Relaxed)
    }

    /// Queues whose data is not pushed now (derived from the cells).
    #[cfg(test)]
    fn off_push(&self) -> usize {
        let cells = self.read();
        cells
            .values()
            .filter(|c| c.lock().link != Link::Push)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<QueueId> {
        (0..n).map(|i| QueueId::from(format!("q{i}"))).collect()
    }

    #[test]
    fn links_are_counted_through_every_move() {
        let store = LiveStore::default();
        let ids = ids(4);
        for id in &ids {
            store.join(id);
        }
        store.join(&ids[0]); // twice: one cell
        assert_eq!((store.off_push(), store.on_fallback()), (4, 0));
        store.set_link(&ids[..3], Link::Push);
        assert_eq!((store.off_push(), store.on_fallback()), (1, 0));
        store.set_link(&ids[..2], Link::Fallback);
        assert_eq!((store.off_push(), store.on_fallback()), (3, 2));
        store.refuse(&ids[2]);
        store.set_link(&ids[..3], Link::Push);
        assert_eq!((store.off_push(), store.on_fallback()), (2, 1));
        store.leave(&ids[2]);
        store.leave(&ids[3]);
        assert_eq!((store.off_push(), store.on_fallback()), (0, 0));
        assert_eq!(store.ids().len(), 2);
    }

    #[test]
    fn a_newer_fallback_poll_wins_and_idle_queues_have_no_wait() {
        let cell = QueueCell::new();
        let t0 = Instant::now();
        assert_eq!(cell.view().waiting, None);
        cell.waited(42.0, t0);
        cell.polled(
            Sample {
                waiting: Some(0),
                agents_on_queue: Some(2),
                ..Sample::default()
            },
            t0,
        );
        let view = cell.view();
        assert_eq!((view.waiting, view.estimated_wait_seconds), (Some(0), None));
        cell.polled(
            Sample {
                waiting: Some(3),
                agents_on_queue: Some(2),
                ..Sample::default()
            },
            t0 + std::time::Duration::from_secs(1),
        );
        let view = cell.view();
        assert_eq!(
            (view.waiting, view.estimated_wait_seconds),
            (Some(3), Some(42.0))
        );
        assert_eq!(
            view.updated_at,
            Some(t0 + std::time::Duration::from_secs(1))
        );
    }
}
