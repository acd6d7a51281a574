#![cfg(feature = "simulator")]
//! Chaos against the simulator's fault injection, through the public API:
//! 5xx, responses slower than the request timeout, dropped connections,
//! malformed bodies, wrong queue ids, 429 bursts, token endpoint outages and
//! slowness, revoked tokens, mixed together for a while, then cleared.
//! And a supervisor soak: a callback that keeps panicking.
//!
//! Durations: `QUEUEWATCH_CHAOS_SECS` (default 20) and `QUEUEWATCH_SOAK_SECS`
//! (default 30) lengthen the runs.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use queuewatch::error::ErrorKind;
use queuewatch::simulator::{Fault, FaultRule, FaultSet, Simulator, STATUS_DROPPED};
use queuewatch::{Event, ExponentialBackoff, Handle, QueueWatch, RestartPolicy, Settings};
use support::events::Collector;

const INTERVAL: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
const MAX_RETRIES: u32 = 2;

fn secs_from_env(var: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

fn settings(queues: &[String]) -> Settings {
    let mut settings = Settings::for_queues(queues.iter().cloned());
    settings.poll.interval = INTERVAL;
    settings.poll.max_retries = MAX_RETRIES;
    settings.poll.backoff_base = Duration::from_millis(100);
    settings.poll.backoff_max = BACKOFF_MAX;
    settings.genesys.request_timeout = REQUEST_TIMEOUT;
    // Injected 429s halve the adaptive budget; keep it far above demand.
    settings.genesys.rate_limit_per_minute = 20_000;
    settings.callbacks.clear();
    settings.http.bind = None;
    settings
}

/// A queue, the faults aimed at it, and the error kinds its failures may have.
struct Role {
    id: String,
    name: &'static str,
    rule: Option<Fault>,
    kinds: &'static [ErrorKind],
}

fn roles() -> Vec<Role> {
    use ErrorKind::*;
    let role = |i: usize, name, rule, kinds| Role {
        id: support::queue_id(0xc4a0_0000, i),
        name,
        rule,
        kinds,
    };
    vec![
        role(0, "control", None, &[]),
        role(
            1,
            "5xx",
            Some(Fault::ServerError { status: 503 }),
            &[ServerError],
        ),
        role(2, "slow", Some(Fault::Slow { delay_ms: 1_500 }), &[Timeout]),
        role(3, "dropped", Some(Fault::DropConnection), &[Connection]),
        role(
            4,
            "malformed",
            Some(Fault::MalformedBody),
            &[InvalidResponse],
        ),
        role(
            5,
            "wrong_queue",
            Some(Fault::WrongQueueId),
            &[QueueMismatch],
        ),
        // 429 bursts and a random mix are pushed round by round.
        role(6, "429_bursts", None, &[RateLimited]),
        role(
            7,
            "mixed",
            None,
            &[
                ServerError,
                Timeout,
                Connection,
                InvalidResponse,
                QueueMismatch,
                RateLimited,
            ],
        ),
    ]
}

/// The API faults the `mixed` queue draws from.
fn random_api_fault(rng: &mut fastrand::Rng) -> Fault {
    match rng.u8(0..6) {
        0 => Fault::ServerError {
            status: [500, 502, 503, 504][rng.usize(0..4)],
        },
        1 => Fault::Slow { delay_ms: 1_500 },
        2 => Fault::DropConnection,
        3 => Fault::MalformedBody,
        4 => Fault::WrongQueueId,
        _ => Fault::RateLimit {
            retry_after_secs: 1,
        },
    }
}

/// The per-queue rules in force all through the chaos.
fn standing_rules(roles: &[Role]) -> Vec<FaultRule> {
    roles
        .iter()
        .filter_map(|r| {
            r.rule
                .clone()
                .map(|fault| FaultRule::always(fault).for_queue(r.id.clone()))
        })
        .collect()
}

/// What a run saw, for the checks.
struct Run {
    handle: Handle,
    sim: Simulator,
    collector: Collector,
    /// Every event, read after shutdown (1,024 fit: minutes of chaos).
    all: tokio::sync::broadcast::Receiver<Arc<str>>,
}

async fn start(roles: &[Role]) -> Run {
    let ids: Vec<String> = roles.iter().map(|r| r.id.clone()).collect();
    let handle = QueueWatch::new(settings(&ids))
        .start()
        .await
        .expect("starts");
    let collector = Collector::start(&handle);
    let all = handle.event_stream();
    let sim = handle.simulator().expect("simulated").clone();
    // Before any poll (the actors have not run yet): every request is faulty.
    sim.faults().set(FaultSet {
        rules: standing_rules(roles),
    });
    Run {
        handle,
        sim,
        collector,
        all,
    }
}

/// Runs rounds of mixed faults for `duration`; returns when they were cleared.
async fn chaos(run: &Run, roles: &[Role], duration: Duration, token_faults: bool) -> Instant {
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let started = Instant::now();
    let burst = &roles.iter().find(|r| r.name == "429_bursts").unwrap().id;
    let mixed = &roles.iter().find(|r| r.name == "mixed").unwrap().id;
    let mut round = 0u32;
    while started.elapsed() < duration {
        let mut rules = standing_rules(roles);
        // Counted rules left over from the last round are kept.
        rules.extend(
            run.sim
                .faults()
                .current()
                .rules
                .into_iter()
                .filter(|r| r.remaining.is_some() && !r.fault.is_token_fault()),
        );
        if round % 2 == 0 {
            rules.push(
                FaultRule::times(
                    Fault::RateLimit {
                        retry_after_secs: 1,
                    },
                    3,
                )
                .for_queue(burst.clone()),
            );
        }
        for _ in 0..3 {
            rules.push(FaultRule::times(random_api_fault(&mut rng), 1).for_queue(mixed.clone()));
        }
        if token_faults {
            match round % 4 {
                0 => rules.push(FaultRule::always(Fault::TokenOutage { status: 503 })),
                1 => run.sim.revoke_tokens(),
                2 => rules.push(FaultRule::always(Fault::TokenSlow { delay_ms: 1_500 })),
                _ => {
                    run.sim.revoke_tokens();
                    rules.push(FaultRule::times(Fault::TokenOutage { status: 502 }, 2));
                }
            }
        }
        run.sim.faults().set(FaultSet { rules });
        round += 1;
        // Not a synchronisation: the fault schedule's own clock. Each round
        // of faults stands for 2.5 s of real time (half an interval, so
        // rounds change within cycles); nothing is awaited here.
        tokio::time::sleep(Duration::from_millis(2_500)).await;
    }
    run.sim.faults().clear();
    Instant::now()
}

/// Every queue has a success that arrived after `cleared` within the bound.
async fn every_queue_recovers(run: &Run, roles: &[Role], cleared: Instant) {
    // A cycle in flight at the clear ends within request_timeout plus a
    // backoff; a finished one is followed by a tick within an interval; a
    // token in backoff is retried within backoff_max. Plus 1 s for delivery.
    let bound = INTERVAL + BACKOFF_MAX + REQUEST_TIMEOUT + Duration::from_secs(1);
    let ids: HashSet<&str> = roles.iter().map(|r| r.id.as_str()).collect();
    let recovered = run
        .collector
        .until(bound, |events| {
            let ok: HashSet<&str> = events
                .iter()
                .filter(|(at, e)| *at >= cleared && e.error().is_none())
                .map(|(_, e)| e.queue_id())
                .collect();
            ids.iter().all(|id| ok.contains(id))
        })
        .await;
    if !recovered {
        let late: Vec<&str> = roles
            .iter()
            .filter(|r| {
                !run.collector
                    .snapshot()
                    .iter()
                    .any(|(at, e)| *at >= cleared && e.error().is_none() && e.queue_id() == r.id)
            })
            .map(|r| r.name)
            .collect();
        panic!("not recovered within {bound:?} of the faults clearing: {late:?}");
    }
}

/// Stops the instance and checks the invariants of the whole run.
async fn finish_and_check(mut run: Run, roles: &[Role], cleared: Instant, token_faults: bool) {
    assert_eq!(run.handle.telemetry().restarts_total(), 0, "no actor died");
    assert!(
        tokio::time::timeout(Duration::ZERO, run.handle.fatal())
            .await
            .is_err(),
        "nothing fatal"
    );
    run.handle.shutdown().await;
    // After shutdown every cycle has ended and its event was delivered.
    let seen: HashMap<String, Instant> = run
        .collector
        .snapshot()
        .into_iter()
        .map(|(at, e)| (e.id().to_owned(), at))
        .collect();
    let mut events = Vec::new();
    while let Ok(json) = run.all.try_recv() {
        let event: Event = serde_json::from_str(&json).unwrap();
        let at = seen.get(event.id()).copied().unwrap_or_else(Instant::now);
        events.push((at, event));
    }
    let requests = run.sim.requests();

    let mut ids = HashSet::new();
    for (_, event) in &events {
        assert!(
            ids.insert(event.id().to_owned()),
            "duplicate event {}",
            event.id()
        );
    }
    let token_kinds = [ErrorKind::AuthFailed, ErrorKind::Unauthorized];
    let mut report = BTreeMap::new();
    for role in roles {
        let mine: Vec<&(Instant, Event)> = events
            .iter()
            .filter(|(_, e)| e.queue_id() == role.id)
            .collect();
        assert!(mine.len() >= 3, "{}: {} events", role.name, mine.len());
        // Error kinds match the faults aimed at the queue.
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for (at, event) in &mine {
            let label = event.error().map_or("ok".to_string(), |k| k.to_string());
            *kinds.entry(label).or_default() += 1;
            if let Some(kind) = event.error() {
                let allowed = role.kinds.contains(&kind)
                    || (token_faults && token_kinds.contains(&kind))
                    || (kind == ErrorKind::Cancelled && *at >= cleared);
                assert!(allowed, "{}: unexpected {kind} in {event:?}", role.name);
            } else if role.rule.is_some() && *at < cleared {
                panic!("{}: a success while its fault stood: {event:?}", role.name);
            }
        }
        // One event per cycle: every request to the queue belongs to an
        // attempt of some event's cycle (none lost), and no event claims more
        // attempts than were made, except attempts that had no token.
        let sent = requests
            .iter()
            .filter(|r| r.queue_ids.contains(&role.id))
            .count() as u64;
        let attempts: u64 = mine.iter().map(|(_, e)| attempts_of(e)).sum();
        assert!(
            sent <= attempts,
            "{}: {sent} requests but only {attempts} attempts in events: a cycle lost its event",
            role.name
        );
        if !token_faults {
            assert_eq!(sent, attempts, "{}: requests vs attempts", role.name);
        }
        // Cycles never overlap and a tick never runs twice: no more events
        // than ticks; and no long silence (a lost event would leave one).
        let mut arrivals: Vec<Instant> = mine.iter().map(|(at, _)| *at).collect();
        arrivals.sort();
        let span = arrivals.last().unwrap().duration_since(arrivals[0]);
        let ticks = span.as_secs_f64() / INTERVAL.as_secs_f64() + 1.0;
        assert!(
            mine.len() as f64 <= ticks + 1.0,
            "{}: {} events in {span:?}",
            role.name,
            mine.len()
        );
        for pair in arrivals.windows(2) {
            let gap = pair[1].duration_since(pair[0]);
            assert!(
                gap <= 3 * INTERVAL,
                "{}: {gap:?} without an event",
                role.name
            );
        }
        report.insert(role.name, (kinds, sent, attempts));
    }
    if token_faults {
        let token_requests = requests.iter().filter(|r| r.path == "/oauth/token").count();
        assert!(
            token_requests >= 3,
            "token refetches happened: {token_requests}"
        );
        assert!(
            requests.iter().any(|r| r.status == 401),
            "a revoked token was presented"
        );
        assert!(
            requests
                .iter()
                .any(|r| r.path == "/oauth/token" && r.status >= 500),
            "the token endpoint was out"
        );
    }
    let dropped = requests
        .iter()
        .filter(|r| r.status == STATUS_DROPPED)
        .count();
    assert!(dropped > 0);
    eprintln!("chaos report (kinds, requests, attempts): {report:#?}");
}

fn attempts_of(event: &Event) -> u64 {
    match event {
        Event::Poll(e) => u64::from(e.attempts),
        Event::PollFailed(e) => u64::from(e.attempts),
    }
}

/// A whole run: chaos (with token faults or without), recovery, the checks.
async fn chaos_run(token_faults: bool) {
    let roles = roles();
    let run = start(&roles).await;
    let duration = secs_from_env("QUEUEWATCH_CHAOS_SECS", 20);
    let cleared = chaos(&run, &roles, duration, token_faults).await;
    every_queue_recovers(&run, &roles, cleared).await;
    finish_and_check(run, &roles, cleared, token_faults).await;
}

#[actix_rt::test]
async fn api_faults_mixed_then_cleared() {
    chaos_run(false).await;
}

#[actix_rt::test]
async fn api_and_token_faults_mixed_then_cleared() {
    chaos_run(true).await;
}

/// A callback that panics at every `every`-th event it handles.
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

fn soak_queues(n: usize) -> Vec<String> {
    support::queue_ids(0x50a4_0000, n)
}

#[actix_rt::test]
async fn a_panicking_callback_soaks_within_a_lenient_policy() {
    const QUEUES: usize = 20;
    const EVERY: usize = 10; // 4 events/s: a panic every ~2.5 s
    let soak = secs_from_env("QUEUEWATCH_SOAK_SECS", 30);
    let handled = Arc::new(AtomicUsize::new(0));
    let counter = handled.clone();
    let policy = RestartPolicy {
        max_restarts: 1_000,
        window: Duration::from_secs(60),
        backoff: ExponentialBackoff::try_new(Duration::from_millis(10), Duration::from_millis(100))
            .unwrap(),
    };
    let handle = QueueWatch::new(settings(&soak_queues(QUEUES)))
        .restart_policy(policy)
        .callback("fragile", move || Fragile {
            every: EVERY,
            handled: counter.clone(),
        })
        .start()
        .await
        .unwrap();
    let collector = Collector::start(&handle);
    let started = Instant::now();
    let fatal = tokio::time::timeout(soak, handle.fatal()).await;
    assert!(fatal.is_err(), "escalated: {fatal:?}");
    let elapsed = started.elapsed();
    let events = collector.snapshot();
    let mut per_queue: HashMap<&str, usize> = HashMap::new();
    for (_, e) in &events {
        *per_queue.entry(e.queue_id()).or_default() += 1;
    }
    let expected = elapsed.as_secs_f64() / INTERVAL.as_secs_f64();
    assert_eq!(per_queue.len(), QUEUES, "every queue kept polling");
    for (queue, n) in &per_queue {
        assert!(
            *n as f64 >= expected - 2.0,
            "{queue}: {n} events in {elapsed:?}"
        );
    }
    assert!(
        events.iter().all(|(_, e)| e.error().is_none()),
        "polling unaffected"
    );
    let panics = handled.load(Ordering::SeqCst) / EVERY;
    let restarts = handle.telemetry().restarts_total() as usize;
    assert!(panics >= 3, "{panics} panics");
    assert!(
        restarts >= panics.saturating_sub(1) && restarts <= panics,
        "{restarts} restarts for {panics} panics"
    );
    assert!(
        handle.telemetry().deliveries_for("fragile") > 0,
        "the callback got events between its panics"
    );
    handle.shutdown().await;
}

#[actix_rt::test]
async fn a_panicking_callback_escalates_under_a_strict_policy() {
    let handled = Arc::new(AtomicUsize::new(0));
    let counter = handled.clone();
    let policy = RestartPolicy {
        max_restarts: 2,
        window: Duration::from_secs(60),
        backoff: ExponentialBackoff::try_new(Duration::from_millis(10), Duration::from_millis(50))
            .unwrap(),
    };
    let handle = QueueWatch::new(settings(&soak_queues(10)))
        .restart_policy(policy)
        .callback("doomed", move || Fragile {
            every: 2,
            handled: counter.clone(),
        })
        .start()
        .await
        .unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(30), handle.fatal())
        .await
        .expect("escalated");
    assert!(
        reason.contains("callback:doomed") && reason.contains("giving up"),
        "{reason}"
    );
    assert_eq!(
        handle.telemetry().restarts_total(),
        2,
        "restarts up to the limit"
    );
    assert_eq!(
        handled.load(Ordering::SeqCst),
        6,
        "three lives of two events each"
    );
    handle.shutdown().await;
}
