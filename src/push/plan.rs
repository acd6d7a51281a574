//! Channel planning for the notifications socket: how queue topics are packed
//! into channels, when a channel is renewed, and whether a new channel may be
//! had (reused, created, or not at all). Pure decisions; the actor does the
//! requests.
//!
//! Genesys allows [`MAX_CHANNELS`] channels per OAuth client and user, each
//! with up to [`TOPICS_PER_CHANNEL`] topics; creating one more evicts the
//! oldest, which would silently cut off a socket of ours. [`ChannelBook`]
//! keeps count so that never happens.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// Most topics Genesys accepts on one channel.
pub(crate) const TOPICS_PER_CHANNEL: usize = 1000;
/// Most channels Genesys keeps per OAuth client; one more evicts the oldest.
pub(crate) const MAX_CHANNELS: usize = 20;

/// When to replace a channel created at `created` that expires at `expires`:
/// at 90% of its life; at `created` when it has none.
pub(crate) fn renew_at(created: Instant, expires: Instant) -> Instant {
    let life = expires.saturating_duration_since(created);
    let renew_after = life.saturating_sub(life / 10);
    created.checked_add(renew_after).unwrap_or(created)
}

/// Why a [`ChannelBook`] could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InvalidChannelBook {
    /// A book that allows no channel is of no use.
    #[error("the channel limit must be at least 1")]
    Zero,
    /// More than Genesys keeps: the extra ones would evict ours.
    #[error("the channel limit {0} is above Genesys' {MAX_CHANNELS}")]
    AboveGenesys(usize),
}

/// What the book knows of one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Channel {
    expires: Instant,
    state: State,
}

/// Whether a channel carries a socket of ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// A socket on it.
    InUse,
    /// No socket, no subscriptions: the first to reuse.
    Released,
    /// Given up after its socket stayed silent from its opening: reused
    /// only when the limit leaves no other way to get a channel.
    Retired,
}

/// Whether to get a new channel, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NewChannel {
    /// Create one: the count allows it.
    Create,
    /// Reuse this released channel (call [`ChannelBook::taken`] with it).
    Reuse(String),
    /// Neither: creating one would make Genesys evict one of ours.
    None,
}

/// Every channel this client created and that is not known to have expired
/// or gone, whether in use (a socket on it), released (no socket, no
/// subscriptions, but still counted by Genesys until it expires) or retired
/// (released after its socket stayed silent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChannelBook {
    max_channels: usize,
    channels: BTreeMap<String, Channel>,
}

impl ChannelBook {
    /// An empty book allowing `max_channels` channels, in `1..=MAX_CHANNELS`.
    pub(crate) fn new(max_channels: usize) -> Result<Self, InvalidChannelBook> {
        if max_channels == 0 {
            return Err(InvalidChannelBook::Zero);
        }
        if max_channels > MAX_CHANNELS {
            return Err(InvalidChannelBook::AboveGenesys(max_channels));
        }
        Ok(ChannelBook {
            max_channels,
            channels: BTreeMap::new(),
        })
    }

    /// The channel limit the book was built with.
    #[cfg(test)]
    pub(crate) fn max_channels(&self) -> usize {
        self.max_channels
    }

    /// Records a channel just created (in use) that expires at `expires`.
    /// A known id is updated and taken.
    pub(crate) fn created(&mut self, id: String, expires: Instant) {
        self.channels.insert(
            id,
            Channel {
                expires,
                state: State::InUse,
            },
        );
    }

    /// Forgets a channel Genesys no longer has (closed, evicted, 404).
    /// Returns whether it was known.
    pub(crate) fn gone(&mut self, id: &str) -> bool {
        self.channels.remove(id).is_some()
    }

    /// Marks a channel as no longer used (no socket, subscriptions cleared);
    /// it still exists at Genesys until it expires. Returns whether it was known.
    pub(crate) fn released(&mut self, id: &str) -> bool {
        self.set(id, State::Released)
    }

    /// Marks a channel as given up (its socket stayed silent): still
    /// counted until it expires, reused only as a last resort. Returns
    /// whether it was known.
    pub(crate) fn retired(&mut self, id: &str) -> bool {
        self.set(id, State::Retired)
    }

    /// Marks a channel as in use again. Returns whether it was known.
    pub(crate) fn taken(&mut self, id: &str) -> bool {
        self.set(id, State::InUse)
    }

    fn set(&mut self, id: &str, state: State) -> bool {
        match self.channels.get_mut(id) {
            Some(channel) => {
                channel.state = state;
                true
            }
            None => false,
        }
    }

    /// Drops the channels expired at `now`; returns their ids (sorted).
    pub(crate) fn prune(&mut self, now: Instant) -> Vec<String> {
        let expired: Vec<String> = self
            .channels
            .iter()
            .filter(|(_, c)| c.expires <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            self.channels.remove(id);
        }
        expired
    }

    /// Decides how to get one more channel at `now`: reuse the released
    /// channel with the most life left if that is at least `min_life`, else
    /// create one if fewer than the limit are unexpired, else reuse a
    /// retired one the same way (better a channel that went silent once
    /// than none until one expires), else none.
    pub(crate) fn decide_new(&self, now: Instant, min_life: Duration) -> NewChannel {
        if let Some(id) = self.reusable(State::Released, now, min_life) {
            return NewChannel::Reuse(id.clone());
        }
        if self.unexpired(now) < self.max_channels {
            return NewChannel::Create;
        }
        match self.reusable(State::Retired, now, min_life) {
            Some(id) => NewChannel::Reuse(id.clone()),
            None => NewChannel::None,
        }
    }

    /// The channel in `state` with the most life left, if that is at least
    /// `min_life`; on a tie the smallest id.
    fn reusable(&self, state: State, now: Instant, min_life: Duration) -> Option<&String> {
        self.channels
            .iter()
            .filter(|(_, c)| c.state == state && c.expires > now)
            .filter(|(_, c)| c.expires.saturating_duration_since(now) >= min_life)
            // Iteration is sorted and `max_by_key` keeps the last maximum,
            // so compare by hand to keep the first.
            .fold(None::<(&String, &Channel)>, |best, (id, c)| match best {
                Some((_, b)) if b.expires >= c.expires => best,
                _ => Some((id, c)),
            })
            .map(|(id, _)| id)
    }

    /// How many known channels have not expired at `now`.
    pub(crate) fn unexpired(&self, now: Instant) -> usize {
        self.channels.values().filter(|c| c.expires > now).count()
    }

    /// How many channels the book holds (expired ones until [`Self::prune`]).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.channels.len()
    }

    /// Whether the book holds no channel.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// How many channels are in use.
    #[cfg(test)]
    pub(crate) fn in_use(&self) -> usize {
        self.channels
            .values()
            .filter(|c| c.state == State::InUse)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn at(base: Instant, minutes: u64) -> Instant {
        base + MIN * u32::try_from(minutes).unwrap()
    }

    #[test]
    fn renew_at_ninety_percent() {
        let base = Instant::now();
        let cases = [
            (0, 1440, base + Duration::from_secs(1296 * 60)),
            (0, 10, base + Duration::from_secs(9 * 60)),
            (5, 5, at(base, 5)),
            (10, 5, at(base, 10)),
        ];
        for (created, expires, want) in cases {
            assert_eq!(renew_at(at(base, created), at(base, expires)), want);
        }
    }

    #[test]
    fn book_limits_are_validated() {
        assert_eq!(ChannelBook::new(0), Err(InvalidChannelBook::Zero));
        assert_eq!(
            ChannelBook::new(21),
            Err(InvalidChannelBook::AboveGenesys(21))
        );
        assert!(ChannelBook::new(1).is_ok());
        assert_eq!(
            ChannelBook::new(MAX_CHANNELS).map(|b| b.max_channels()),
            Ok(20)
        );
    }

    #[test]
    fn reuse_prefers_most_life_left() {
        let base = Instant::now();
        let mut book = ChannelBook::new(3).unwrap();
        assert_eq!(book.decide_new(base, MIN), NewChannel::Create);
        book.created("a".into(), at(base, 100));
        book.created("b".into(), at(base, 300));
        book.created("c".into(), at(base, 200));
        assert_eq!((book.len(), book.in_use()), (3, 3));
        assert_eq!(book.decide_new(base, MIN), NewChannel::None);
        assert!(book.released("a"));
        assert!(book.released("c"));
        assert!(!book.released("zz"));
        assert_eq!(book.decide_new(base, MIN), NewChannel::Reuse("c".into()));
        // Too little life left to reuse: at 150 a has expired, c has 50 minutes.
        assert_eq!(book.decide_new(at(base, 150), MIN * 60), NewChannel::Create);
        assert_eq!(
            book.decide_new(at(base, 150), Duration::from_secs(40 * 60)),
            NewChannel::Reuse("c".into())
        );
        assert!(book.taken("c"));
        assert_eq!(book.decide_new(base, MIN), NewChannel::Reuse("a".into()));
        assert!(book.taken("a"));
        assert_eq!(book.in_use(), 3);
        assert_eq!(book.decide_new(base, MIN), NewChannel::None);
    }

    #[test]
    fn a_retired_channel_is_the_last_resort() {
        let base = Instant::now();
        let mut book = ChannelBook::new(2).unwrap();
        book.created("a".into(), at(base, 100));
        assert!(book.retired("a"));
        assert!(!book.retired("zz"));
        // Room for one more: create rather than reuse a silent channel.
        assert_eq!(book.decide_new(base, MIN), NewChannel::Create);
        book.created("b".into(), at(base, 50));
        assert_eq!(book.decide_new(base, MIN), NewChannel::Reuse("a".into()));
        // A released channel comes first, retired or not.
        assert!(book.released("b"));
        assert_eq!(book.decide_new(base, MIN), NewChannel::Reuse("b".into()));
        assert!(book.taken("b"));
        assert!(book.taken("a"));
        assert_eq!(book.in_use(), 2);
        assert_eq!(book.decide_new(base, MIN), NewChannel::None);
    }

    #[test]
    fn reuse_tie_takes_smallest_id() {
        let base = Instant::now();
        let mut book = ChannelBook::new(5).unwrap();
        for id in ["b", "a", "c"] {
            book.created(id.into(), at(base, 100));
            book.released(id);
        }
        assert_eq!(book.decide_new(base, MIN), NewChannel::Reuse("a".into()));
    }

    #[test]
    fn gone_and_prune_free_room() {
        let base = Instant::now();
        let mut book = ChannelBook::new(2).unwrap();
        book.created("a".into(), at(base, 10));
        book.created("b".into(), at(base, 20));
        assert_eq!(book.decide_new(base, MIN), NewChannel::None);
        assert!(book.gone("a"));
        assert!(!book.gone("a"));
        assert_eq!(book.decide_new(base, MIN), NewChannel::Create);
        book.created("c".into(), at(base, 5));
        // Expired channels do not count even before a prune.
        assert_eq!(book.decide_new(at(base, 5), MIN), NewChannel::Create);
        assert_eq!(book.unexpired(at(base, 5)), 1);
        assert_eq!(book.prune(at(base, 5)), vec!["c".to_string()]);
        assert_eq!(book.len(), 1);
        assert_eq!(book.prune(at(base, 30)), vec!["b".to_string()]);
        assert!(book.is_empty());
        assert_eq!(book.in_use(), 0);
    }

    #[test]
    fn never_exceeds_max() {
        let base = Instant::now();
        for max in 1..=MAX_CHANNELS {
            let mut book = ChannelBook::new(max).unwrap();
            let mut created = 0;
            for step in 0..100u32 {
                let now = base + Duration::from_secs(u64::from(step));
                // Now and then, release one of the first three channels.
                let victim = step as usize % 3;
                if step % 7 == 0 && victim < created {
                    book.released(&format!("ch{victim}"));
                }
                match book.decide_new(now, MIN) {
                    NewChannel::Create => {
                        book.created(format!("ch{created}"), now + Duration::from_secs(3600));
                        created += 1;
                    }
                    NewChannel::Reuse(id) => assert!(book.taken(&id)),
                    NewChannel::None => {}
                }
                assert!(book.unexpired(now) <= max, "max {max} step {step}");
            }
            assert_eq!(created, max);
        }
    }
}
