//! Which channel carries which queue's topic (a pure decision).
//!
//! Topics are packed up to 1,000 per channel over as few channels as fit.
//! When the queue set changes (reload, cluster ownership), queues keep
//! their channel: only the channels that lose or gain a queue resubscribe.

use std::collections::BTreeSet;

use crate::QueueId;

/// The queues of each channel slot, from the current assignment and the
/// queues wanted now. Queues that no longer run leave their slot; new
/// queues (in id order) fill the slots with room in slot order, then new
/// slots, up to `max_channels`. Queues beyond `per_channel × max_channels`
/// get no slot (they stay on fallback polling). Slots are never renumbered:
/// a slot left empty stays, empty.
pub(crate) fn assign(
    current: &[BTreeSet<QueueId>],
    wanted: &BTreeSet<QueueId>,
    per_channel: usize,
    max_channels: usize,
) -> Vec<BTreeSet<QueueId>> {
    let per_channel = per_channel.max(1);
    let mut slots: Vec<BTreeSet<QueueId>> = current
        .iter()
        .map(|slot| slot.intersection(wanted).cloned().collect())
        .collect();
    let placed: BTreeSet<&QueueId> = slots.iter().flatten().collect();
    let new: Vec<QueueId> = wanted
        .iter()
        .filter(|id| !placed.contains(id))
        .cloned()
        .collect();
    let mut new = new.into_iter().peekable();
    let mut index = 0;
    while new.peek().is_some() {
        if index == slots.len() {
            if slots.len() >= max_channels {
                break;
            }
            slots.push(BTreeSet::new());
        }
        let slot = &mut slots[index];
        while slot.len() < per_channel {
            match new.next() {
                Some(id) => {
                    slot.insert(id);
                }
                None => break,
            }
        }
        index += 1;
    }
    slots
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(range: std::ops::Range<usize>) -> BTreeSet<QueueId> {
        range.map(|i| QueueId::from(format!("q{i:05}"))).collect()
    }

    fn sizes(slots: &[BTreeSet<QueueId>]) -> Vec<usize> {
        slots.iter().map(BTreeSet::len).collect()
    }

    #[test]
    fn topics_pack_into_as_few_channels_as_fit() {
        for (queues, expected) in [
            (0, vec![]),
            (1, vec![1]),
            (1000, vec![1000]),
            (1001, vec![1000, 1]),
            (2500, vec![1000, 1000, 500]),
            (20_000, vec![1000; 20]),
        ] {
            let slots = assign(&[], &ids(0..queues), 1000, 20);
            assert_eq!(sizes(&slots), expected, "{queues} queues");
        }
    }

    #[test]
    fn queues_beyond_the_channel_limit_get_no_slot() {
        let slots = assign(&[], &ids(0..25), 10, 2);
        assert_eq!(sizes(&slots), [10, 10]);
    }

    #[test]
    fn a_change_moves_only_what_changed() {
        let before = assign(&[], &ids(0..25), 10, 20);
        // q00003 leaves, q00100 and q00101 join.
        let mut wanted = ids(0..25);
        wanted.remove(&QueueId::from("q00003"));
        wanted.extend(ids(100..102));
        let after = assign(&before, &wanted, 10, 20);
        assert_eq!(sizes(&after), [10, 10, 6]);
        assert_eq!(after[1], before[1]);
        assert!(after[0].contains(&QueueId::from("q00100")));
        assert!(after[2].contains(&QueueId::from("q00101")));
        // Everything leaves: the slots stay, empty.
        let gone = assign(&after, &BTreeSet::new(), 10, 20);
        assert_eq!(sizes(&gone), [0, 0, 0]);
    }
}
