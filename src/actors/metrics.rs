//! MetricsActor: holds every queue's tracking matrix and last event, and
//! answers queries. The store outlives the actor (the supervisor hands it to
//! each incarnation), so neither a poller restart nor a metrics restart
//! loses a matrix.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use actix::prelude::*;
use serde::Serialize;

use crate::callbacks::fanout::{emit, CallbackActor};
use crate::callbacks::shared::SharedEvent;
use crate::event::Event;
use crate::supervisor::{ExitGuard, Slot};
use crate::tracking::{CycleReport, LatencySummary, QueueMatrix, Snapshot};
use crate::QueueId;

/// The matrices of all queues; shared with every MetricsActor incarnation.
#[derive(Clone)]
pub struct MatrixStore {
    inner: Arc<Mutex<Store>>,
}

struct Store {
    history_size: usize,
    /// Boxed, so that each bucket of the table, used or not, holds a
    /// pointer rather than a whole record (~400 bytes): a table of 1,000
    /// queues has 2,048 buckets, 48 KiB instead of 820 KiB.
    queues: HashMap<QueueId, Box<QueueRecord>>,
}

struct QueueRecord {
    name: Option<String>,
    matrix: QueueMatrix,
    /// The latest event: the same allocation the callbacks got.
    last: Option<Arc<Event>>,
}

impl MatrixStore {
    /// An empty store keeping `history_size` snapshots per queue.
    pub fn new(history_size: usize) -> MatrixStore {
        MatrixStore {
            inner: Arc::new(Mutex::new(Store {
                history_size,
                queues: HashMap::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A queue's current state, as listed by `/api/queues`.
#[derive(Debug, Clone, Serialize)]
pub struct QueueSummary {
    /// Queue id.
    pub queue_id: QueueId,
    /// Configured label.
    pub queue_name: Option<String>,
    /// The latest event, if the queue was polled yet.
    pub last_event: Option<Event>,
    /// Cycles finished.
    pub polls: u64,
    /// Failed cycles.
    pub failures: u64,
    /// `poll.source: notifications` only: how the queue's data arrives now,
    /// `push`, `fallback` (its channel is down: polled) or `connecting`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feed: Option<&'static str>,
}

/// One queue in full: state, tracking matrix and statistics.
#[derive(Debug, Clone, Serialize)]
pub struct QueueDetail {
    /// The summary fields.
    #[serde(flatten)]
    pub summary: QueueSummary,
    /// Counters.
    pub counters: crate::tracking::Counters,
    /// Latency mean and percentiles.
    pub latency: LatencySummary,
    /// Share of transitions where the position did not increase.
    pub position_accuracy: Option<f64>,
    /// Current smoothed wait.
    pub smoothed_wait_seconds: Option<f64>,
    /// The history, oldest first.
    pub history: Vec<Snapshot>,
}

/// Start tracking a queue (so it is listed before its first poll).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Track {
    /// Queue id.
    pub queue_id: QueueId,
    /// Label.
    pub name: Option<String>,
}

/// Forget a removed queue.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Untrack {
    /// Queue id.
    pub queue_id: QueueId,
}

/// Record a finished cycle, then hand the event, its smoothed wait filled
/// in, to the fan-out. The reply comes once it is there. A `Record` never
/// handled (the metrics actor stopped first) hands its event to the fan-out
/// as it goes, as the poller built it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Record {
    /// What the cycle observed.
    report: CycleReport,
    /// The event as built by the poller; `None` once handed on.
    event: Option<Event>,
    /// Where the event goes if the message is dropped unhandled.
    fallback: Slot<Addr<CallbackActor>>,
}

impl Record {
    /// The cycle's `report` and `event`; `callbacks` in case it is never handled.
    pub fn new(report: CycleReport, event: Event, callbacks: Slot<Addr<CallbackActor>>) -> Record {
        Record {
            report,
            event: Some(event),
            fallback: callbacks,
        }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        if let Some(event) = self.event.take() {
            emit(&self.fallback, event);
        }
    }
}

/// One page of the queues, sorted by id: those after `after` (any text;
/// not necessarily a known id), at most `limit` of them (`None`: all).
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "QueuePage")]
pub struct ListQueues {
    /// List only ids sorting after this one.
    pub after: Option<String>,
    /// At most this many queues (`None`: no limit).
    pub limit: Option<usize>,
}

/// The answer to [`ListQueues`].
#[derive(Debug, Clone, Default)]
pub struct QueuePage {
    /// The queues of the page, sorted by id.
    pub queues: Vec<QueueSummary>,
    /// More queues follow: the `after` of the next page (the last id here).
    pub next_after: Option<QueueId>,
}

/// One queue in full; with `points`, only the newest that many snapshots
/// of its history.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Option<QueueDetail>")]
pub struct GetQueue {
    /// Queue id.
    pub queue_id: QueueId,
    /// Newest snapshots to include (`None`: the whole history).
    pub points: Option<usize>,
}

/// The metrics actor.
pub struct MetricsActor {
    store: MatrixStore,
    callbacks: Slot<Addr<CallbackActor>>,
    _guard: ExitGuard,
}

impl MetricsActor {
    /// An incarnation over `store`, handing events to `callbacks`.
    pub fn new(store: MatrixStore, callbacks: Slot<Addr<CallbackActor>>, guard: ExitGuard) -> Self {
        MetricsActor {
            store,
            callbacks,
            _guard: guard,
        }
    }
}

impl Actor for MetricsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(super::SHARED_MAILBOX);
    }
}

impl Handler<Track> for MetricsActor {
    type Result = ();

    fn handle(&mut self, msg: Track, _: &mut Context<Self>) {
        let mut store = self.store.lock();
        let size = store.history_size;
        let record = store.queues.entry(msg.queue_id).or_insert_with(|| {
            Box::new(QueueRecord {
                name: None,
                matrix: QueueMatrix::new(size),
                last: None,
            })
        });
        record.name = msg.name;
    }
}

impl Handler<Untrack> for MetricsActor {
    type Result = ();

    fn handle(&mut self, msg: Untrack, _: &mut Context<Self>) {
        self.store.lock().queues.remove(&msg.queue_id);
    }
}

impl Handler<Record> for MetricsActor {
    type Result = ();

    fn handle(&mut self, mut msg: Record, _: &mut Context<Self>) {
        let Some(event) = msg.event.as_mut() else {
            return;
        };
        let event = {
            let mut store = self.store.lock();
            // A queue removed while its last cycle ran stays removed.
            let mut record = store.queues.get_mut(event.queue_id());
            if let Some(record) = record.as_deref_mut() {
                let smoothed = record.matrix.record(&msg.report);
                if let Event::Poll(poll) = event {
                    poll.smoothed_wait_seconds = smoothed;
                }
            }
            // Taken only now: had the recording panicked, the message, as
            // it went, would have handed the event on.
            let Some(event) = msg.event.take() else {
                return;
            };
            // One allocation for the store and every callback.
            let event = Arc::new(event);
            if let Some(record) = record {
                record.last = Some(event.clone());
            }
            event
        };
        emit(&self.callbacks, SharedEvent::from_arc(event));
    }
}

fn summary(queue_id: &QueueId, record: &QueueRecord) -> QueueSummary {
    let counters = record.matrix.counters();
    QueueSummary {
        queue_id: queue_id.clone(),
        queue_name: record.name.clone(),
        last_event: record.last.as_deref().cloned(),
        polls: counters.total,
        failures: counters.total - counters.success,
        feed: None,
    }
}

impl Handler<ListQueues> for MetricsActor {
    type Result = MessageResult<ListQueues>;

    fn handle(&mut self, msg: ListQueues, _: &mut Context<Self>) -> Self::Result {
        MessageResult(list_page(&self.store.lock(), &msg))
    }
}

/// The page `msg` asks for: sorted by id, summaries built only for the page.
fn list_page(store: &Store, msg: &ListQueues) -> QueuePage {
    let mut ids: Vec<(&QueueId, &QueueRecord)> = store
        .queues
        .iter()
        .filter(|(id, _)| msg.after.as_deref().is_none_or(|after| id.as_str() > after))
        .map(|(id, record)| (id, &**record))
        .collect();
    ids.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let limit = msg.limit.unwrap_or(usize::MAX);
    let more = ids.len() > limit;
    ids.truncate(limit);
    let queues: Vec<QueueSummary> = ids.iter().map(|(id, r)| summary(id, r)).collect();
    let next_after = if more {
        queues.last().map(|q| q.queue_id.clone())
    } else {
        None
    };
    QueuePage { queues, next_after }
}

impl Handler<GetQueue> for MetricsActor {
    type Result = MessageResult<GetQueue>;

    fn handle(&mut self, msg: GetQueue, _: &mut Context<Self>) -> Self::Result {
        let store = self.store.lock();
        MessageResult(
            store
                .queues
                .get_key_value(&msg.queue_id)
                .map(|(id, record)| {
                    let history = record.matrix.history();
                    let skip = msg
                        .points
                        .map_or(0, |points| history.len().saturating_sub(points));
                    QueueDetail {
                        summary: summary(id, record),
                        counters: record.matrix.counters().clone(),
                        latency: record.matrix.latency(),
                        position_accuracy: record.matrix.position_accuracy(),
                        smoothed_wait_seconds: record.matrix.smoothed_wait(),
                        history: history.skip(skip).collect(),
                    }
                }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(ids: &[&str]) -> Store {
        let queues = ids
            .iter()
            .map(|&id| {
                let record = Box::new(QueueRecord {
                    name: None,
                    matrix: QueueMatrix::new(4),
                    last: None,
                });
                (QueueId::from(id), record)
            })
            .collect();
        Store {
            history_size: 4,
            queues,
        }
    }

    fn ids(page: &QueuePage) -> Vec<&str> {
        page.queues.iter().map(|q| q.queue_id.as_str()).collect()
    }

    #[test]
    fn pages_walk_the_sorted_set_once() {
        let store = store(&["d", "a", "c", "b", "e"]);
        let all = list_page(&store, &ListQueues::default());
        assert_eq!(ids(&all), ["a", "b", "c", "d", "e"]);
        assert_eq!(all.next_after, None);

        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = list_page(
                &store,
                &ListQueues {
                    after: after.clone(),
                    limit: Some(2),
                },
            );
            assert!(page.queues.len() <= 2);
            seen.extend(ids(&page).into_iter().map(str::to_owned));
            match page.next_after {
                Some(next) => after = Some(next.to_string()),
                None => break,
            }
        }
        assert_eq!(seen, ["a", "b", "c", "d", "e"]);

        // A full last page says nothing follows; `after` need not be an id.
        let exact = ListQueues {
            after: Some("b".into()),
            limit: Some(3),
        };
        assert_eq!(list_page(&store, &exact).next_after, None);
        let between = ListQueues {
            after: Some("bb".into()),
            limit: Some(1),
        };
        let page = list_page(&store, &between);
        assert_eq!(ids(&page), ["c"]);
        assert_eq!(page.next_after.as_deref(), Some("c"));
    }
}
