//! Test helpers shared by the actors' unit tests: a supervised start and a
//! ready-made event.

use actix::prelude::*;

use crate::config::Source;
use crate::error::ErrorKind;
use crate::event::{new_event_id, now_timestamp, Event, PollFailedEvent};
use crate::supervisor::{start_in_slot, ExitGuard, Fatal, RestartPolicy, Supervisor};
use crate::telemetry::{ChildKind, Telemetry};

/// Fails the test on any escalation.
struct Escalations;

impl Actor for Escalations {
    type Context = Context<Self>;
}

impl Handler<Fatal> for Escalations {
    type Result = ();
    fn handle(&mut self, msg: Fatal, _: &mut Context<Self>) {
        panic!("unexpected escalation: {}", msg.reason);
    }
}

/// A fresh supervisor (default policy) that fails the test on any escalation.
pub(crate) fn supervisor(telemetry: &Telemetry) -> Addr<Supervisor> {
    Supervisor::new(RestartPolicy::default(), telemetry.clone(), escalations()).start()
}

/// Where `Fatal` goes in tests: failing the test.
pub(crate) fn escalations() -> Recipient<Fatal> {
    Escalations.start().recipient()
}

/// Starts an actor under a fresh supervisor (as the runtime does) and
/// returns its first incarnation's address.
pub(crate) async fn supervised<A>(
    telemetry: &Telemetry,
    start: impl Fn(ExitGuard) -> Addr<A> + Send + Sync + 'static,
) -> Addr<A>
where
    A: Actor,
{
    let supervisor = supervisor(telemetry);
    let slot = start_in_slot(&supervisor, "callback:test", ChildKind::Callback, start).await;
    slot.get().expect("started")
}

/// A `poll_failed` event of queue number `queue`.
pub(crate) fn failed_event(queue: usize) -> Event {
    Event::PollFailed(PollFailedEvent {
        id: new_event_id(),
        timestamp: now_timestamp(),
        queue_id: format!("7a1c0000-0000-4000-8000-{queue:012x}").into(),
        queue_name: None,
        source: Source::GuestPosition,
        error: ErrorKind::Timeout,
        detail: "test".into(),
        attempts: 1,
    })
}

/// CPU time of this process so far (user + system), from /proc.
pub(crate) fn cpu_time() -> std::time::Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks: u64 = fields
        .get(11..13)
        .map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    std::time::Duration::from_millis(ticks * 10) // USER_HZ = 100
}
