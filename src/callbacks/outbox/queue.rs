//! The bounded delivery queue of an asynchronous callback: events wait in a
//! queue of fixed capacity, a few are in flight, and every event that never
//! arrives is counted as a drop and logged, rate-limited. Whatever is left
//! when the queue itself is dropped is counted as lost.

use std::collections::VecDeque;

use tokio::sync::oneshot;

use crate::telemetry::Telemetry;
use crate::throttle::Throttled;

/// Queued and in-flight deliveries of one callback.
pub(crate) struct Outbox<T> {
    name: String,
    telemetry: Telemetry,
    capacity: usize,
    queue: VecDeque<T>,
    in_flight: usize,
    drops: Throttled,
    idle_waiters: Vec<oneshot::Sender<()>>,
}

impl<T> Outbox<T> {
    /// An empty outbox of callback `name` holding at most `capacity` queued items.
    pub(crate) fn new(name: &str, telemetry: &Telemetry, capacity: usize) -> Self {
        Outbox {
            name: name.to_string(),
            telemetry: telemetry.clone(),
            capacity,
            queue: VecDeque::new(),
            in_flight: 0,
            drops: Throttled::default(),
            idle_waiters: Vec::new(),
        }
    }

    /// Queues `item`, or drops it (counted, logged with `why_full`) when full.
    pub(crate) fn offer(&mut self, item: T, why_full: &str) {
        if self.queue.len() >= self.capacity {
            self.drop_events(1, why_full);
        } else {
            self.queue.push_back(item);
        }
    }

    /// The next item to send, if fewer than `concurrency` are in flight.
    pub(crate) fn next(&mut self, concurrency: usize) -> Option<T> {
        if self.in_flight >= concurrency.max(1) {
            return None;
        }
        let item = self.queue.pop_front()?;
        self.in_flight += 1;
        Some(item)
    }

    /// One in-flight item finished (delivered or not).
    pub(crate) fn done(&mut self) {
        self.in_flight -= 1;
    }

    /// Counts `count` events that will never arrive; logs at most every 10 s.
    pub(crate) fn drop_events(&mut self, count: u64, why: &str) {
        if count == 0 {
            return;
        }
        for _ in 0..count {
            self.telemetry.dropped(&self.name);
        }
        if let Some(n) = self.drops.note(count) {
            log::warn!("callback {}: dropped {n} event(s): {why}", self.name);
        }
    }

    /// Drops everything queued (not what is in flight).
    pub(crate) fn drop_queued(&mut self, why: &str) {
        let queued = self.queue.len() as u64;
        self.queue.clear();
        self.drop_events(queued, why);
    }

    /// Queued and in flight.
    pub(crate) fn pending(&self) -> usize {
        self.queue.len() + self.in_flight
    }

    /// The name of the callback.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Resolves once nothing is queued or in flight (`None`: idle now).
    pub(crate) fn idle(&mut self) -> Option<oneshot::Receiver<()>> {
        if self.pending() == 0 {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        self.idle_waiters.push(tx);
        Some(rx)
    }

    /// Wakes `Flush` waiters once nothing is queued or in flight.
    pub(crate) fn wake_if_idle(&mut self) {
        if self.pending() == 0 {
            for waiter in self.idle_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }
}

impl<T> Drop for Outbox<T> {
    fn drop(&mut self) {
        let lost = self.pending();
        if lost > 0 {
            for _ in 0..lost {
                self.telemetry.dropped(&self.name);
            }
            log::warn!(
                "callback {}: {lost} undelivered event(s) lost as the callback stopped",
                self.name
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_bounds_counts_and_tracks_in_flight() {
        let telemetry = Telemetry::new();
        let mut outbox = Outbox::new("test", &telemetry, 2);
        for i in 0..5 {
            outbox.offer(i, "full");
        }
        assert_eq!(telemetry.drops_for("test"), 3);
        assert_eq!(outbox.next(1), Some(0));
        assert_eq!(outbox.next(1), None, "one in flight at most");
        outbox.done();
        assert_eq!(outbox.next(1), Some(1));
        outbox.drop_queued("gone");
        drop(outbox); // one still in flight: lost
        assert_eq!(telemetry.drops_for("test"), 4);
    }
}
