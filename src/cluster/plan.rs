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
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn ids(items: &[&str]) -> BTreeSet<QueueId> {
        items.iter().map(|&s| s.into()).collect()
    }

    fn leases(items: &[(&str, &str, u64)]) -> HashMap<QueueId, Lease> {
        items
            .iter()
            .map(|(queue, owner, revision)| {
                (
                    (*queue).into(),
                    Lease {
                        owner: owner.to_string(),
                        revision: *revision,
                    },
                )
            })
            .collect()
    }

    fn owned(items: &[(&str, u64)]) -> HashMap<QueueId, u64> {
        items.iter().map(|&(q, r)| (q.into(), r)).collect()
    }

    fn queues(n: usize) -> BTreeSet<QueueId> {
        (0..n).map(|i| format!("q{i:02}").into()).collect()
    }

    struct Case {
        name: &'static str,
        live: BTreeSet<String>,
        queues: BTreeSet<QueueId>,
        leases: HashMap<QueueId, Lease>,
        owned: HashMap<QueueId, u64>,
        /// (queue, why) released as lost or unconfigured, in any order.
        released: Vec<(&'static str, Release)>,
        /// How many are released as excess.
        excess: usize,
        target: usize,
        want: usize,
        /// How many candidates, and queues that must (not) be among them.
        candidates: usize,
        among: Vec<&'static str>,
        not_among: Vec<&'static str>,
    }

    #[test]
    fn releases_and_candidates() {
        let cases = [
            Case {
                name: "alone: everything free is a candidate",
                live: set(&["me"]),
                queues: queues(5),
                leases: leases(&[]),
                owned: owned(&[]),
                released: vec![],
                excess: 0,
                target: 5,
                want: 5,
                candidates: 5,
                among: vec!["q00", "q04"],
                not_among: vec![],
            },
            Case {
                name: "two live: half each, a live peer's leases are not taken",
                live: set(&["me", "peer"]),
                queues: queues(4),
                leases: leases(&[("q00", "peer", 7), ("q01", "peer", 8)]),
                owned: owned(&[]),
                released: vec![],
                excess: 0,
                target: 2,
                want: 2,
                candidates: 2,
                among: vec!["q02", "q03"],
                not_among: vec!["q00", "q01"],
            },
            Case {
                name: "a dead owner's queues are candidates",
                live: set(&["me"]),
                queues: queues(2),
                leases: leases(&[("q00", "gone", 3), ("q01", "gone", 4)]),
                owned: owned(&[]),
                released: vec![],
                excess: 0,
                target: 2,
                want: 2,
                candidates: 2,
                among: vec!["q00", "q01"],
                not_among: vec![],
            },
            Case {
                name: "own leases from before an outage are candidates",
                live: set(&["me", "peer"]),
                queues: queues(2),
                leases: leases(&[("q00", "me", 9)]),
                owned: owned(&[]),
                released: vec![],
                excess: 0,
                target: 1,
                want: 1,
                candidates: 2,
                among: vec!["q00", "q01"],
                not_among: vec![],
            },
            Case {
                name: "a lease another instance took is lost; the share is refilled",
                live: set(&["me", "peer"]),
                queues: queues(4),
                leases: leases(&[("q00", "peer", 5), ("q01", "me", 2)]),
                owned: owned(&[("q00", 1), ("q01", 2)]),
                released: vec![("q00", Release::Lost)],
                excess: 0,
                target: 2,
                want: 1,
                candidates: 2,
                among: vec!["q02", "q03"],
                not_among: vec!["q00", "q01"],
            },
            Case {
                name: "a queue no longer configured is released",
                live: set(&["me"]),
                queues: ids(&["q00"]),
                leases: leases(&[("q00", "me", 1), ("old", "me", 2)]),
                owned: owned(&[("q00", 1), ("old", 2)]),
                released: vec![("old", Release::Unconfigured)],
                excess: 0,
                target: 1,
                want: 0,
                candidates: 0,
                among: vec![],
                not_among: vec!["old"],
            },
            Case {
                name: "a peer joins: the excess over the share is released",
                live: set(&["me", "peer", "third"]),
                queues: queues(6),
                leases: leases(&[]),
                owned: owned(&[
                    ("q00", 1),
                    ("q01", 1),
                    ("q02", 1),
                    ("q03", 1),
                    ("q04", 1),
                    ("q05", 1),
                ]),
                released: vec![],
                excess: 4,
                target: 2,
                want: 0,
                candidates: 0,
                among: vec![],
                not_among: vec![],
            },
        ];
        for case in &cases {
            let view = View {
                me: "me",
                live: &case.live,
                queues: &case.queues,
                leases: &case.leases,
                owned: &case.owned,
            };
            let releases = view.releases();
            assert_eq!(releases.target, case.target, "{}", case.name);
            assert_eq!(releases.want, case.want, "{}", case.name);
            let excess = releases
                .release
                .iter()
                .filter(|(_, _, why)| *why == Release::Excess)
                .count();
            assert_eq!(excess, case.excess, "{}", case.name);
            let mut got: Vec<(String, Release)> = releases
                .release
                .iter()
                .filter(|(_, _, why)| *why != Release::Excess)
                .map(|(q, _, why)| (q.to_string(), *why))
                .collect();
            got.sort_by(|a, b| a.0.cmp(&b.0));
            let want: Vec<(String, Release)> = case
                .released
                .iter()
                .map(|(q, why)| (q.to_string(), *why))
                .collect();
            assert_eq!(got, want, "{}", case.name);
            let candidates = view.candidates();
            let names: Vec<&str> = candidates.iter().map(|(q, _)| q.as_str()).collect();
            assert_eq!(names.len(), case.candidates, "{}: {names:?}", case.name);
            for queue in &case.among {
                assert!(names.contains(queue), "{}: {queue} in {names:?}", case.name);
            }
            for queue in &case.not_among {
                assert!(
                    !names.contains(queue),
                    "{}: {queue} not in {names:?}",
                    case.name
                );
            }
        }
    }

    #[test]
    fn candidates_carry_the_revision_to_update_at() {
        let (live, queues) = (set(&["me"]), ids(&["a", "b"]));
        let leases = leases(&[("a", "dead", 41)]);
        let owned = owned(&[]);
        let view = View {
            me: "me",
            live: &live,
            queues: &queues,
            leases: &leases,
            owned: &owned,
        };
        let mut candidates = view.candidates();
        candidates.sort();
        assert_eq!(candidates, vec![("a".into(), Some(41)), ("b".into(), None)]);
        assert_eq!(view.absent_owners(), set(&["dead"]));
    }

    #[test]
    fn the_excess_released_is_what_this_instance_likes_least() {
        let live = set(&["me", "peer"]);
        let queues = queues(10);
        let owned: HashMap<QueueId, u64> = queues.iter().map(|q| (q.clone(), 1)).collect();
        let leases = HashMap::new();
        let view = View {
            me: "me",
            live: &live,
            queues: &queues,
            leases: &leases,
            owned: &owned,
        };
        let released: BTreeSet<QueueId> =
            view.releases().release.into_iter().map(|r| r.0).collect();
        assert_eq!(released.len(), 5);
        let worst_kept = queues
            .iter()
            .filter(|q| !released.contains(*q))
            .map(|q| preference("me", q))
            .min()
            .unwrap();
        assert!(released.iter().all(|q| preference("me", q) < worst_kept));
    }

    #[test]
    fn every_queue_is_taken_once_when_instances_follow_the_plan() {
        // Three instances take turns, each taking its candidates up to its
        // want; the bucket ends with every queue leased exactly once.
        let live = set(&["a", "b", "c"]);
        let queues = queues(50);
        let mut bucket: HashMap<QueueId, Lease> = HashMap::new();
        let mut held: HashMap<&str, HashMap<QueueId, u64>> = HashMap::new();
        for _round in 0..3 {
            for me in ["a", "b", "c"] {
                let owned = held.entry(me).or_default().clone();
                let view = View {
                    me,
                    live: &live,
                    queues: &queues,
                    leases: &bucket,
                    owned: &owned,
                };
                let want = view.releases().want;
                let take: Vec<QueueId> = view
                    .candidates()
                    .into_iter()
                    .take(want)
                    .map(|(q, _)| q)
                    .collect();
                for queue in take {
                    bucket.insert(
                        queue.clone(),
                        Lease {
                            owner: me.into(),
                            revision: 1,
                        },
                    );
                    held.get_mut(me).unwrap().insert(queue, 1);
                }
            }
        }
        assert_eq!(bucket.len(), 50);
        let counts: Vec<usize> = ["a", "b", "c"].iter().map(|m| held[m].len()).collect();
        assert!(counts.iter().all(|c| (16..=17).contains(c)), "{counts:?}");
    }

    #[test]
    fn enforce_runs_exactly_the_owned_configured_queues() {
        let owned = owned(&[("a", 1), ("b", 1), ("gone", 1)]);
        let running = ids(&["b", "c"]);
        let queues = ids(&["a", "b", "c"]);
        assert_eq!(
            enforce(&owned, &running, &queues),
            Enforce {
                stop: vec!["c".into()],
                start: ids(&["a"]),
            }
        );
    }

    #[test]
    fn preferences_differ_between_instances() {
        let queues: Vec<String> = (0..60).map(|i| format!("q{i}")).collect();
        let top = |me: &str| {
            let mut q = queues.clone();
            q.sort_by_key(|q| std::cmp::Reverse(preference(me, q)));
            q.truncate(20);
            q
        };
        let (a, b) = (top("a-1"), top("b-2"));
        let common = a.iter().filter(|q| b.contains(q)).count();
        assert!(common < 15, "{common}");
    }
}
