//! The actor system against the simulator over loopback: scheduling,
//! retries, the shared token and budget, supervision, exactly one event per
//! cycle. Intervals here are below the 5 s floor of the settings (tests
//! start without validation) so that each test runs in seconds.
//!
//! (Past 400 lines: a suite of independent tests.)

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::prelude::*;
use tokio::sync::mpsc;

use super::{Handle, QueueWatch};
use crate::actors::poller::Drain;
use crate::backoff::ExponentialBackoff;
use crate::config::Settings;
use crate::error::ErrorKind;
use crate::event::Event;
use crate::simulator::{Fault, FaultRule, RequestRecord, SimulatorConfig};
use crate::supervisor::RestartPolicy;

/// Forwards every event into a channel the test awaits (no sleeping).
pub(super) struct Collector(mpsc::UnboundedSender<Event>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<Event> for Collector {
    type Result = ();
    fn handle(&mut self, event: Event, _: &mut Context<Self>) {
        let _ = self.0.send(event);
    }
}

pub(super) fn ids(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{i:08x}-0000-4000-8000-{i:012x}"))
        .collect()
}

pub(super) fn settings(queues: &[String], interval_ms: u64) -> Settings {
    let mut s = Settings::for_queues(queues.iter().cloned());
    s.poll.interval = Duration::from_millis(interval_ms);
    s.poll.backoff_base = Duration::from_millis(50);
    s.poll.backoff_max = Duration::from_millis(400);
    s.genesys.request_timeout = Duration::from_secs(2);
    s.genesys.rate_limit_per_minute = 100_000;
    s.callbacks = Vec::new();
    s.http.bind = None;
    s
}

pub(super) struct Run {
    pub(super) handle: Handle,
    pub(super) events: mpsc::UnboundedReceiver<Event>,
}

pub(super) async fn start(builder: QueueWatch) -> Run {
    let (tx, events) = mpsc::unbounded_channel();
    let collector = Collector(tx).start();
    let handle = builder
        .subscribe("collector", collector.recipient())
        .launch()
        .await
        .expect("start");
    Run { handle, events }
}

impl Run {
    pub(super) async fn next(&mut self) -> Event {
        tokio::time::timeout(Duration::from_secs(20), self.events.recv())
            .await
            .expect("an event within 20s")
            .expect("channel open")
    }

    /// Collects events until `done` says so.
    pub(super) async fn until(&mut self, mut done: impl FnMut(&[Event]) -> bool) -> Vec<Event> {
        let mut seen = Vec::new();
        while !done(&seen) {
            seen.push(self.next().await);
        }
        seen
    }

    pub(super) fn sim_requests(&self) -> Vec<RequestRecord> {
        self.handle.simulator().expect("simulated").requests()
    }
}

pub(super) fn api(records: &[RequestRecord]) -> Vec<&RequestRecord> {
    records
        .iter()
        .filter(|r| r.path.starts_with("/api/"))
        .collect()
}

pub(super) fn per_queue(events: &[Event]) -> HashMap<&str, usize> {
    let mut counts = HashMap::new();
    for e in events {
        *counts.entry(e.queue_id()).or_default() += 1;
    }
    counts
}

/// An instance pointed at a simulator started (and faulted) beforehand,
/// as an operator would point it at a real org.
pub(super) async fn start_external(
    queues: &[String],
    interval_ms: u64,
    sim: &crate::simulator::Simulator,
) -> Run {
    let mut s = settings(queues, interval_ms);
    s.genesys.environment = "mypurecloud.com".into();
    s.genesys.api_url = Some(sim.base_url());
    s.genesys.login_url = Some(sim.base_url());
    let credentials = crate::genesys::Credentials {
        client_id: crate::secret::Secret::new(crate::simulator::DEFAULT_CLIENT_ID),
        client_secret: crate::secret::Secret::new(crate::simulator::DEFAULT_CLIENT_SECRET),
    };
    start(QueueWatch::new(s).credentials(credentials)).await
}

#[actix_rt::test]
async fn single_flight_token_for_200_pollers() {
    let queues = ids(200);
    let sim = crate::simulator::start(
        SimulatorConfig::with_queues(queues.clone()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    // The token takes longer than the interval: every poller asks while it is being fetched.
    sim.faults()
        .push(FaultRule::times(Fault::TokenSlow { delay_ms: 1500 }, 1));
    let mut run = start_external(&queues, 1000, &sim).await;
    let events = run.until(|seen| per_queue(seen).len() == 200).await;
    assert!(
        events.iter().all(|e| e.error().is_none()),
        "all polls succeed"
    );
    assert_eq!(
        sim.stats().token_requests,
        1,
        "one token request for 200 pollers"
    );
    run.handle.shutdown().await;
    sim.stop().await;
}

#[actix_rt::test]
async fn phases_spread_the_first_polls_across_the_interval() {
    let queues = ids(40);
    let mut run = start(QueueWatch::new(settings(&queues, 2000))).await;
    run.until(|seen| per_queue(seen).len() == 40).await;
    let mut firsts: Vec<SystemTime> = Vec::new();
    let mut seen = HashSet::new();
    for r in api(&run.sim_requests()) {
        if seen.insert(r.queue_ids[0].clone()) {
            firsts.push(r.at);
        }
    }
    let span = firsts.last().unwrap().duration_since(firsts[0]).unwrap();
    // 40 queues on a 2 s grid: the first polls cover most of it, never one burst.
    assert!(
        span > Duration::from_millis(1200),
        "first polls within {span:?}"
    );
    let in_any_200ms = firsts
        .iter()
        .map(|t| {
            firsts
                .iter()
                .filter(|u| {
                    u.duration_since(*t)
                        .is_ok_and(|d| d < Duration::from_millis(200))
                })
                .count()
        })
        .max()
        .unwrap();
    assert!(in_any_200ms <= 12, "{in_any_200ms} polls within 200 ms");
    run.handle.shutdown().await;
}

#[actix_rt::test]
async fn slow_cycles_never_overlap_and_missed_ticks_are_skipped() {
    let queues = ids(1);
    let mut run = start(QueueWatch::new(settings(&queues, 200))).await;
    run.next().await;
    let sim = run.handle.simulator().unwrap().clone();
    sim.faults()
        .push(FaultRule::times(Fault::Slow { delay_ms: 900 }, 3));
    // Three slow cycles (each spans ~4 ticks), then five normal ones.
    let slow_start = SystemTime::now();
    run.until(|seen| seen.len() >= 8).await;
    let requests: Vec<SystemTime> = api(&sim.requests())
        .iter()
        .map(|r| r.at)
        .filter(|t| *t >= slow_start)
        .collect();
    for pair in requests.windows(2).take(3) {
        let gap = pair[1].duration_since(pair[0]).unwrap();
        assert!(
            gap >= Duration::from_millis(880),
            "a cycle started {gap:?} after a 900 ms one"
        );
    }
    // After the slow phase: one request per tick, no catch-up burst.
    for pair in requests.windows(2).skip(3) {
        let gap = pair[1].duration_since(pair[0]).unwrap();
        assert!(
            gap >= Duration::from_millis(100),
            "burst: {gap:?} between requests"
        );
    }
    assert!(run
        .handle
        .telemetry()
        .encode()
        .contains("queuewatch_ticks_skipped_total"));
    run.handle.shutdown().await;
}

#[actix_rt::test]
async fn retry_after_pauses_every_poller_on_the_token() {
    let queues = ids(6);
    let mut run = start(QueueWatch::new(settings(&queues, 250))).await;
    run.until(|seen| per_queue(seen).len() == 6).await;
    let sim = run.handle.simulator().unwrap().clone();
    sim.faults().push(
        FaultRule::times(
            Fault::RateLimit {
                retry_after_secs: 2,
            },
            1,
        )
        .for_queue(&queues[0]),
    );
    let events = run
        .until(|seen| {
            seen.iter()
                .any(|e| e.queue_id() == queues[0] && e.error().is_none() && seen.len() > 12)
        })
        .await;
    let log = sim.requests();
    let limited = log.iter().find(|r| r.status == 429).expect("a 429");
    let resumed: Vec<&RequestRecord> = api(&log)
        .into_iter()
        .filter(|r| r.at > limited.at)
        .collect();
    let first_after = resumed
        .first()
        .expect("polling resumed")
        .at
        .duration_since(limited.at)
        .unwrap();
    assert!(
        first_after >= Duration::from_millis(1950),
        "a request {first_after:?} after a 2 s Retry-After"
    );
    // The pause reaches past the next tick (250 ms): the 429'd cycle ended
    // at once with `rate_limited`, and the queue was polled after the pause.
    let limited_at = events
        .iter()
        .position(|e| e.queue_id() == queues[0] && e.error() == Some(ErrorKind::RateLimited))
        .expect("the 429 reported");
    assert!(
        events[limited_at + 1..]
            .iter()
            .any(|e| e.queue_id() == queues[0] && e.error().is_none()),
        "polled again after the pause"
    );
    run.handle.shutdown().await;
}

#[actix_rt::test]
async fn token_is_refreshed_before_expiry() {
    let queues = ids(3);
    let mut sim = SimulatorConfig::with_queues(queues.clone());
    // The shortest lifetime planned as given (shorter ones count as 60 s).
    sim.token_lifetime = Duration::from_secs(60);
    let mut run = start(QueueWatch::new(settings(&queues, 200)).simulator(sim)).await;
    // A 60 s token is refreshed after 30 s (half the lifetime), before it expires.
    let simulator = run.handle.simulator().unwrap().clone();
    let events = run.until(|_| simulator.stats().token_requests >= 2).await;
    let first_token = simulator
        .requests()
        .iter()
        .find(|r| r.path == "/oauth/token")
        .map(|r| r.at)
        .unwrap();
    let second_token = simulator
        .requests()
        .iter()
        .filter(|r| r.path == "/oauth/token")
        .nth(1)
        .map(|r| r.at)
        .unwrap();
    let refreshed_after = second_token.duration_since(first_token).unwrap();
    assert!(
        refreshed_after < Duration::from_secs(59) && refreshed_after >= Duration::from_secs(29),
        "refreshed after {refreshed_after:?}"
    );
    assert!(
        events.iter().all(|e| e.error().is_none()),
        "no poll ever failed"
    );
    let sim = run.handle.simulator().unwrap();
    assert!(
        api(&sim.requests()).iter().all(|r| r.status == 200),
        "no request used an expired token"
    );
    run.handle.shutdown().await;
}

#[actix_rt::test]
async fn a_revoked_token_is_refetched_once_for_all_pollers() {
    let queues = ids(20);
    let mut run = start(QueueWatch::new(settings(&queues, 300))).await;
    run.until(|seen| per_queue(seen).len() == 20).await;
    let sim = run.handle.simulator().unwrap().clone();
    let before = sim.stats().token_requests;
    sim.revoke_tokens();
    let events = run.until(|seen| seen.len() >= 60).await;
    assert_eq!(sim.stats().token_requests, before + 1, "one refetch");
    assert!(
        events.iter().all(|e| e.error().is_none()),
        "401s were cured by the refetch"
    );
    assert!(sim.requests().iter().any(|r| r.status == 401));
    run.handle.shutdown().await;
}

#[actix_rt::test]
async fn missing_queues_slow_down() {
    let queues = ids(2);
    let sim = SimulatorConfig::with_queues([queues[0].clone()]); // queues[1] is unknown: 404
    let mut run = start(QueueWatch::new(settings(&queues, 200)).simulator(sim)).await;
    let events = run
        .until(|seen| seen.iter().filter(|e| e.queue_id() == queues[0]).count() >= 20)
        .await;
    let missing: Vec<&Event> = events
        .iter()
        .filter(|e| e.queue_id() == queues[1])
        .collect();
    assert!(missing
        .iter()
        .all(|e| e.error() == Some(ErrorKind::NotFound)));
    assert!(
        missing
            .iter()
            .all(|e| matches!(e, Event::PollFailed(f) if f.attempts == 1)),
        "404 is not retried"
    );
    // 20 healthy polls span ~4 s; the 404 queue backs off 0.4, 0.8, 1.6 s...: at most 5 polls.
    assert!(
        (1..=5).contains(&missing.len()),
        "{} polls of the missing queue",
        missing.len()
    );
    run.handle.shutdown().await;
}

#[actix_rt::test]
async fn exactly_one_event_per_cycle_under_faults() {
    let queues = ids(5);
    let mut run = start(QueueWatch::new(settings(&queues, 200))).await;
    run.next().await;
    let sim = run.handle.simulator().unwrap().clone();
    let start_at = SystemTime::now();
    for fault in [
        Fault::ServerError { status: 503 },
        Fault::MalformedBody,
        Fault::DropConnection,
        Fault::WrongQueueId,
    ] {
        sim.faults().push(FaultRule::times(fault, 4));
    }
    let events = run.until(|seen| seen.len() >= 60).await;
    run.handle.shutdown().await;
    let mut events = events;
    while let Ok(e) = run.events.try_recv() {
        events.push(e);
    }
    let ids: HashSet<&str> = events.iter().map(Event::id).collect();
    assert_eq!(ids.len(), events.len(), "event ids are unique");
    // Every request belongs to exactly one event's attempts.
    let after: Vec<&Event> = events
        .iter()
        .filter(|e| humantime::parse_rfc3339(timestamp(e)).unwrap() >= start_at)
        .collect();
    let attempts_total: u32 = after.iter().map(|e| attempts(e)).sum();
    let requests = api(&sim.requests())
        .iter()
        .filter(|r| r.at >= start_at)
        .count() as u32;
    // Cycles that straddle `start_at` may own a request or two on either side.
    assert!(
        attempts_total.abs_diff(requests) <= 5,
        "{attempts_total} attempts vs {requests} requests"
    );
    assert!(
        after.iter().any(|e| attempts(e) > 1),
        "faults caused retries"
    );
}

fn timestamp(e: &Event) -> &str {
    match e {
        Event::Poll(p) => &p.timestamp,
        Event::PollFailed(f) => &f.timestamp,
    }
}

fn attempts(e: &Event) -> u32 {
    match e {
        Event::Poll(p) => p.attempts,
        Event::PollFailed(f) => f.attempts,
    }
}

/// Panics on every `n`th event it handles.
struct Fragile {
    every: usize,
    handled: Arc<AtomicUsize>,
}

impl Actor for Fragile {
    type Context = Context<Self>;
}

impl Handler<Event> for Fragile {
    type Result = ();
    fn handle(&mut self, _: Event, _: &mut Context<Self>) {
        let n = self.handled.fetch_add(1, Ordering::SeqCst) + 1;
        if n % self.every == 0 {
            panic!("fragile callback: planned panic at event {n}");
        }
    }
}

#[actix_rt::test]
async fn a_panicking_callback_is_restarted_while_polling_continues() {
    let queues = ids(3);
    let handled = Arc::new(AtomicUsize::new(0));
    let counter = handled.clone();
    let builder = QueueWatch::new(settings(&queues, 200)).callback("fragile", move || Fragile {
        every: 10,
        handled: counter.clone(),
    });
    let mut run = start(builder).await;
    // Panics at its 10th and 20th event: two restarts, within the default intensity.
    run.until(|_| handled.load(Ordering::SeqCst) >= 25).await;
    assert!(
        run.handle.telemetry().restarts_total() >= 2,
        "restarts counted"
    );
    assert!(
        handled.load(Ordering::SeqCst) >= 10,
        "the callback kept receiving events after its panics"
    );
    assert!(run.handle.inner.fatal.borrow().is_none(), "no escalation");
    run.handle.shutdown().await;
}

#[actix_rt::test]
async fn too_many_restarts_escalate() {
    let queues = ids(2);
    let handled = Arc::new(AtomicUsize::new(0));
    let counter = handled.clone();
    let policy = RestartPolicy {
        max_restarts: 2,
        window: Duration::from_secs(60),
        backoff: ExponentialBackoff::try_new(Duration::from_millis(10), Duration::from_millis(50))
            .unwrap(),
    };
    let builder = QueueWatch::new(settings(&queues, 200))
        .restart_policy(policy)
        .callback("doomed", move || Fragile {
            every: 1,
            handled: counter.clone(),
        });
    let run = start(builder).await;
    let reason = tokio::time::timeout(Duration::from_secs(20), run.handle.fatal())
        .await
        .expect("escalated");
    assert!(
        reason.contains("callback:doomed") && reason.contains("giving up"),
        "{reason}"
    );
    assert_eq!(
        handled.load(Ordering::SeqCst),
        3,
        "first run plus two restarts, then no more"
    );
    let mut run = run;
    run.handle.shutdown().await;
    // Every queue's last event says polling ended: one `cancelled` each.
    let mut last: HashMap<String, Event> = HashMap::new();
    while let Ok(e) = run.events.try_recv() {
        last.insert(e.queue_id().to_string(), e);
    }
    assert_eq!(last.len(), 2, "{last:?}");
    for event in last.values() {
        assert_eq!(event.error(), Some(ErrorKind::Cancelled), "{event:?}");
    }
}

#[actix_rt::test]
async fn a_restarted_poller_keeps_its_matrix() {
    let queues = ids(1);
    let mut run = start(QueueWatch::new(settings(&queues, 200))).await;
    run.until(|seen| seen.len() >= 5).await;
    let before = run.handle.queue(&queues[0]).await.unwrap();
    assert!(before.counters.total >= 5);
    // Stop the poller behind the supervisor's back: it must come back.
    let poller = run.handle.inner.pollers.addrs().pop().unwrap();
    poller.send(Drain).await.unwrap();
    run.until(|seen| seen.len() >= 5).await;
    let after = run.handle.queue(&queues[0]).await.unwrap();
    assert!(
        after.counters.total >= before.counters.total + 5,
        "history continued"
    );
    assert!(after.history.len() > before.history.len());
    assert_eq!(run.handle.telemetry().restarts_total(), 1);
    run.handle.shutdown().await;
}

#[actix_rt::test]
async fn shutdown_cancels_a_cycle_that_outlives_the_grace_period() {
    let queues = ids(1);
    let mut s = settings(&queues, 200);
    s.genesys.request_timeout = Duration::from_millis(500);
    s.poll.max_retries = 50;
    let mut run = start(QueueWatch::new(s)).await;
    run.next().await;
    let sim = run.handle.simulator().unwrap().clone();
    sim.faults()
        .push(FaultRule::always(Fault::ServerError { status: 503 }));
    // Let a failing cycle get going, then stop.
    while !sim.requests().iter().any(|r| r.status == 503) {
        tokio::task::yield_now().await;
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    run.handle.shutdown().await;
    let mut last = None;
    while let Ok(e) = run.events.try_recv() {
        last = Some(e);
    }
    let last = last.expect("an event for the cancelled cycle");
    assert_eq!(last.error(), Some(ErrorKind::Cancelled), "{last:?}");
}
