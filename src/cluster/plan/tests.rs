//! Table tests of the ownership plan.

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
    let released: BTreeSet<QueueId> = view.releases().release.into_iter().map(|r| r.0).collect();
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
