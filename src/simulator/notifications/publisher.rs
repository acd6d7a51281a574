//! The change publisher: one task per simulator that, every
//! `publish_period`, sends each connected channel what changed in its queues.

use std::sync::{Arc, Weak};
use std::time::{Instant, SystemTime};

use tokio::task::AbortHandle;
use tokio::time::MissedTickBehavior;

use super::super::shared::Shared;
use super::routes::figures;
use super::socket::clamp_period;

/// Starts the publisher on the current arbiter; it ends when aborted or when
/// the simulator is gone.
pub(crate) fn spawn(shared: &Arc<Shared>) -> AbortHandle {
    let weak: Weak<Shared> = Arc::downgrade(shared);
    let period = clamp_period(shared.notifications().config().publish_period);
    let task = actix_rt::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            ticks.tick().await;
            let Some(shared) = weak.upgrade() else { break };
            pass(&shared);
        }
    });
    task.abort_handle()
}

/// One pass over every channel; returns the number of messages sent.
/// Locks the state, then the registry, and awaits nothing.
pub(crate) fn pass(shared: &Shared) -> u64 {
    let now = Instant::now();
    let at = SystemTime::now();
    let mut state = shared.state();
    let mut registry = shared.notifications();
    registry.publish(now, at, |queue_id| figures(&mut state, queue_id, now))
}
