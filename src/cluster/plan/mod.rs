//! The ownership decision, pure: from what this instance sees (live
//! instances, configured queues, the lease bucket, its own leases) to what
//! it should release, and which queues it should try to take. The manager
//! carries the plan out; nothing here does I/O.
//!
//! Each instance aims at `ceil(queues / live instances)` leases. Rendezvous
//! hashing of (instance, queue) orders the preferences: an instance
//! releases the queues it likes least and reaches first for those it likes
//! most, so instances mostly reach for different queues.

use std::collections::{BTreeSet, HashMap};

use crate::QueueId;

/// A lease as the bucket shows it: its owner and the revision written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lease {
    pub owner: String,
    pub revision: u64,
}

/// What one instance sees.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    /// This instance's id.
    pub me: &'a str,
    /// Live instances (this one included).
    pub live: &'a BTreeSet<String>,
    /// Every configured queue.
    pub queues: &'a BTreeSet<QueueId>,
    /// The lease bucket as last seen: queue id -> lease.
    pub leases: &'a HashMap<QueueId, Lease>,
    /// The leases this instance holds: queue id -> revision written.
    pub owned: &'a HashMap<QueueId, u64>,
}

/// Why a held lease is given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Release {
    /// Another instance holds it now: stop polling, delete nothing.
    Lost,
    /// The queue is no longer configured: stop polling, delete the lease.
    Unconfigured,
    /// More than the fair share is held: stop polling, delete the lease.
    Excess,
}

/// What to give up, and how many more leases to take.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Releases {
    /// Held leases to give up: queue id, revision held, why.
    pub release: Vec<(QueueId, u64, Release)>,
    /// The fair share of this instance.
    pub target: usize,
    /// Leases to take to reach the share (after the releases).
    pub want: usize,
}

impl<'a> View<'a> {
    /// The fair share: `ceil(queues / live instances)`.
    pub(crate) fn target(&self) -> usize {
        self.queues.len().div_ceil(self.live.len().max(1))
    }

    /// Lost and unconfigured leases, then the excess over the fair share
    /// (least preferred first).
    pub(crate) fn releases(&self) -> Releases {
        let mut release = Vec::new();
        let mut kept: Vec<(&QueueId, u64)> = Vec::new();
        let mut held: Vec<(&QueueId, &u64)> = self.owned.iter().collect();
        held.sort();
        for (queue, revision) in held {
            if !self.queues.contains(queue) {
                release.push((queue.clone(), *revision, Release::Unconfigured));
            } else if self
                .leases
                .get(queue)
                .is_some_and(|lease| lease.owner != self.me)
            {
                release.push((queue.clone(), *revision, Release::Lost));
            } else {
                kept.push((queue, *revision));
            }
        }
        let target = self.target();
        let mut want = 0;
        if kept.len() > target {
            kept.sort_by_key(|(queue, _)| preference(self.me, queue));
            let excess = kept.len() - target;
            release.extend(
                kept.into_iter()
                    .take(excess)
                    .map(|(queue, revision)| (queue.clone(), revision, Release::Excess)),
            );
        } else {
            want = target - kept.len();
        }
        Releases {
            release,
            target,
            want,
        }
    }

    /// Owners of leases on queues not held here that are not among the live
    /// instances. A listing of the instances can miss a heartbeat being
    /// replaced: the manager reads each one's heartbeat before taking its
    /// queues, and adds the living back to `live`.
    pub(crate) fn absent_owners(&self) -> BTreeSet<String> {
        self.queues
            .iter()
            .filter(|queue| !self.owned.contains_key(*queue))
            .filter_map(|queue| self.leases.get(queue))
            .map(|lease| lease.owner.clone())
            .filter(|owner| !self.live.contains(owner))
            .collect()
    }

    /// The queues this instance may try to take, most preferred first, with
    /// the revision to update at (`None`: no lease known, create one): free
    /// queues, those of instances not live, and its own from before an outage.
    pub(crate) fn candidates(&self) -> Vec<(QueueId, Option<u64>)> {
        let mut free: Vec<(u64, &QueueId, Option<u64>)> = self
            .queues
            .iter()
            .filter(|queue| !self.owned.contains_key(*queue))
            .filter_map(|queue| match self.leases.get(queue) {
                None => Some((preference(self.me, queue), queue, None)),
                Some(lease) if lease.owner == self.me || !self.live.contains(&lease.owner) => {
                    Some((preference(self.me, queue), queue, Some(lease.revision)))
                }
                Some(_) => None,
            })
            .collect();
        free.sort_unstable_by(|a, b| b.cmp(a));
        free.into_iter()
            .map(|(_, queue, revision)| (queue.clone(), revision))
            .collect()
    }
}

/// Which pollers to stop and start so that exactly the owned, configured
/// queues are polled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Enforce {
    pub stop: Vec<QueueId>,
    pub start: BTreeSet<QueueId>,
}

/// The difference between the pollers `running` and the leases `owned`.
pub(crate) fn enforce(
    owned: &HashMap<QueueId, u64>,
    running: &BTreeSet<QueueId>,
    queues: &BTreeSet<QueueId>,
) -> Enforce {
    Enforce {
        stop: running
            .iter()
            .filter(|queue| !owned.contains_key(*queue))
            .cloned()
            .collect(),
        start: owned
            .keys()
            .filter(|queue| !running.contains(*queue) && queues.contains(*queue))
            .cloned()
            .collect(),
    }
}

/// Rendezvous weight of (instance, queue): each instance prefers its own queues.
pub(crate) fn preference(instance: &str, queue: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in instance.bytes().chain([0]).chain(queue.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // A final mix: FNV's low bits are weak for short inputs.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^ (hash >> 33)
}

#[cfg(test)]
mod tests;
