//! The periodic reconcile: a batched observations snapshot of every queue
//! on push, once per `poll.reconcile_interval` (stretched when the budget
//! is short), so a lost message never leaves a queue wrong for long.

use std::rc::Rc;
use std::time::Duration;

use tokio::time::sleep;

use super::pool::PoolShared;
use super::store::Link;
use crate::error::ErrorKind;
use crate::QueueId;

/// Runs until the pool stops (the future is dropped) or the budget closes.
pub(crate) async fn run(shared: Rc<PoolShared>, interval: Duration) {
    loop {
        let stretch = shared.rest.limiter.stretch();
        let wait =
            Duration::try_from_secs_f64(interval.as_secs_f64() * stretch).unwrap_or(interval);
        sleep(wait).await;
        let on_push: Vec<QueueId> = shared
            .store
            .cells()
            .into_iter()
            .filter(|(_, cell)| cell.view().link == Link::Push)
            .map(|(id, _)| id)
            .collect();
        if on_push.is_empty() {
            continue;
        }
        match shared.rest.snapshot(&shared.store, &on_push).await {
            Ok(()) => log::debug!("push: reconciled {} queue(s)", on_push.len()),
            Err(error) if error.kind == ErrorKind::Cancelled => return,
            Err(error) => log::warn!("push: reconcile snapshot failed: {error}"),
        }
    }
}
