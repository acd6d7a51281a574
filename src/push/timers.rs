//! What a channel in service needs next, and when (a pure decision): a
//! ping after `ping_idle` without traffic, the watchdog after `watchdog`
//! without any frame (a ping we sent does not count: only the server's
//! answer proves the socket alive), the replacement at its renew time.

use std::time::Duration;

use tokio::time::Instant;

/// What is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Nothing arrived for the watchdog bound: the channel is down.
    Watchdog,
    /// Idle: send a ping.
    Ping,
    /// Replace the channel (before it expires, or retry a failed swap).
    Renew,
}

/// What to do with a channel whose watchdog tripped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterSilence {
    /// The socket heard the server before it went silent: the channel
    /// itself is fine, open a socket on it again (its topics stay).
    Reopen,
    /// Not one frame since the socket opened (a channel opened again after
    /// a silence and still silent): retire the channel and set up a new
    /// one, instead of reopening a dead channel once per watchdog period.
    Replace,
}

/// The clocks of one channel in service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timers {
    /// When the socket opened.
    pub opened: Instant,
    /// When the last frame arrived (or the socket opened).
    pub last_frame: Instant,
    /// When we last sent something (a ping).
    pub last_sent: Instant,
    /// When to replace the channel.
    pub renew: Instant,
}

impl Timers {
    /// All clocks start at `now`; the channel is replaced at `renew`.
    pub(crate) fn new(now: Instant, renew: Instant) -> Timers {
        Timers {
            opened: now,
            last_frame: now,
            last_sent: now,
            renew,
        }
    }

    /// The earliest thing due and when. `renewing`: a swap is under way,
    /// so the renew time does not count. On a tie the watchdog wins, then
    /// the renewal, then the ping.
    pub(crate) fn next(
        &self,
        watchdog: Duration,
        ping_idle: Duration,
        renewing: bool,
    ) -> (Instant, Due) {
        let mut due = (self.last_frame + watchdog, Due::Watchdog);
        if !renewing && self.renew < due.0 {
            due = (self.renew, Due::Renew);
        }
        let ping = self.last_frame.max(self.last_sent) + ping_idle;
        if ping < due.0 {
            due = (ping, Due::Ping);
        }
        due
    }

    /// What to do after the watchdog tripped on this channel.
    pub(crate) fn after_silence(&self) -> AfterSilence {
        if self.last_frame > self.opened {
            AfterSilence::Reopen
        } else {
            AfterSilence::Replace
        }
    }
}

/// The backoff attempt after a channel served for `served`: it starts over
/// only when the channel was stable (served at least `stable`), so a server
/// that accepts and drops at once meets a growing backoff.
pub(crate) fn attempt_after(attempt: u32, served: Duration, stable: Duration) -> u32 {
    if served >= stable {
        0
    } else {
        attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// What falls due, in order, on a channel that hears nothing after
    /// `start`: we ping when idle, each ping restarts the idle clock but
    /// not the watchdog's.
    fn silent(timers: &mut Timers, watchdog: Duration, ping: Duration) -> Vec<(u64, Due)> {
        let start = timers.last_frame;
        let mut seen = Vec::new();
        loop {
            let (at, due) = timers.next(watchdog, ping, false);
            seen.push(((at - start).as_secs(), due));
            match due {
                Due::Ping => timers.last_sent = at,
                Due::Watchdog | Due::Renew => return seen,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_channel_is_pinged_then_declared_down() {
        let now = Instant::now();
        let mut timers = Timers::new(now, now + S * 3600);
        let seen = silent(&mut timers, S * 65, S * 30);
        assert_eq!(
            seen,
            [(30, Due::Ping), (60, Due::Ping), (65, Due::Watchdog)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn frames_keep_it_alive_and_the_renewal_comes_first_when_due() {
        let start = Instant::now();
        let mut timers = Timers::new(start, start + S * 100);
        // A heartbeat every 30 s: never idle long enough to ping.
        for beat in 1..=3 {
            tokio::time::advance(S * 30).await;
            timers.last_frame = Instant::now();
            let (at, due) = timers.next(S * 65, S * 31, false);
            assert_eq!(due, if beat < 3 { Due::Ping } else { Due::Renew });
            assert!(at > Instant::now());
        }
        // Mid-swap the renewal does not count: the ping does.
        let (at, due) = timers.next(S * 65, S * 31, true);
        assert_eq!((at - start, due), (S * 121, Due::Ping));
    }

    #[test]
    fn ties_go_to_the_watchdog() {
        let now = Instant::now();
        let timers = Timers::new(now, now + S * 10);
        assert_eq!(
            timers.next(S * 10, S * 10, false),
            (now + S * 10, Due::Watchdog)
        );
        assert_eq!(
            timers.next(S * 20, S * 10, false),
            (now + S * 10, Due::Renew)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_channel_silent_from_its_opening_is_replaced() {
        let opened = Instant::now();
        // (a frame arrived after the opening?, decision)
        for (heard, expected) in [
            (None, AfterSilence::Replace),
            (Some(Duration::ZERO), AfterSilence::Replace),
            (Some(S / 1000), AfterSilence::Reopen),
            (Some(S * 30), AfterSilence::Reopen),
        ] {
            let mut timers = Timers::new(opened, opened + S * 3600);
            if let Some(after) = heard {
                timers.last_frame = opened + after;
            }
            assert_eq!(timers.after_silence(), expected, "{heard:?}");
        }
        // A silence then a reopened socket that stays silent: the first
        // trip reopens, the second replaces.
        let mut timers = Timers::new(opened, opened + S * 3600);
        timers.last_frame = opened + S * 10;
        let (at, due) = timers.next(S * 65, S * 65, false);
        assert_eq!((at - opened, due), (S * 75, Due::Watchdog));
        assert_eq!(timers.after_silence(), AfterSilence::Reopen);
        let reopened = Timers::new(opened + S * 76, opened + S * 3600);
        let (at, due) = reopened.next(S * 65, S * 65, false);
        assert_eq!((at - opened, due), (S * 141, Due::Watchdog));
        assert_eq!(reopened.after_silence(), AfterSilence::Replace);
    }

    #[test]
    fn the_backoff_starts_over_only_after_a_stable_channel() {
        for (attempt, served, expected) in
            [(5, 0, 5), (5, 64, 5), (5, 65, 0), (0, 1, 0), (9, 3600, 0)]
        {
            assert_eq!(
                attempt_after(attempt, S * served, S * 65),
                expected,
                "{attempt} after {served} s"
            );
        }
    }
}
