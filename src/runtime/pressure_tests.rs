//! `Retry-After` as a hard gate, under the pressure where it once broke: a
//! tight budget with requests waiting when the 429 arrives, a pause far
//! past the next tick, and a stop while cycles wait for the budget. Checked
//! against the simulator's request log.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use super::tests::{api, ids, per_queue, settings, start};
use super::QueueWatch;
use crate::error::ErrorKind;
use crate::event::Event;
use crate::simulator::{Fault, FaultRule, SimulatorConfig};

/// Waits (re-checking every 10 ms) until `done` holds; panics after `limit`.
async fn eventually(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < until, "not within {limit:?}: {what}");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

fn detail(event: &Event) -> &str {
    match event {
        Event::PollFailed(f) => &f.detail,
        Event::Poll(_) => "",
    }
}

#[actix_rt::test]
async fn a_429_burst_on_a_tight_budget_lets_no_request_inside_its_windows() {
    // The first round's failing run: 30 queues at 5 s on 60 requests a
    // minute (intervals stretched x6.2, about one request a second).
    let queues = ids(30);
    let mut s = settings(&queues, 5_000);
    s.genesys.rate_limit_per_minute = 60;
    let mut run = start(QueueWatch::new(s)).await;
    let sim = run.handle.simulator().unwrap().clone();
    // Mid-run, with cycles waiting for their slots: a burst of two 429s.
    run.until(|seen| seen.len() >= 8).await;
    const RETRY_AFTER: u64 = 7;
    sim.faults().push(FaultRule::times(
        Fault::RateLimit {
            retry_after_secs: RETRY_AFTER,
        },
        2,
    ));
    eventually(Duration::from_secs(60), "two 429s", || {
        sim.requests().iter().filter(|r| r.status == 429).count() == 2
    })
    .await;
    let last_429 = sim
        .requests()
        .iter()
        .filter(|r| r.status == 429)
        .map(|r| r.at)
        .max()
        .unwrap();
    let gate_opens = last_429 + Duration::from_secs(RETRY_AFTER);
    // Every queue polled again after the last window.
    let polled_after = |log: &[crate::simulator::RequestRecord]| -> HashSet<String> {
        api(log)
            .iter()
            .filter(|r| r.status == 200 && r.at >= gate_opens)
            .flat_map(|r| r.queue_ids.clone())
            .collect()
    };
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(150);
    while polled_after(&sim.requests()).len() < queues.len() {
        assert!(
            Instant::now() < deadline,
            "only {} of 30 queues polled after the pause",
            polled_after(&sim.requests()).len()
        );
        events.push(run.next().await);
    }
    let log = sim.requests();
    let windows: Vec<SystemTime> = log
        .iter()
        .filter(|r| r.status == 429)
        .map(|r| r.at)
        .collect();
    // A request the client had sent before the 429 reached it may land a
    // moment after the 429 in the log: allow 20 ms for that.
    let inside: Vec<_> = api(&log)
        .into_iter()
        .filter(|r| {
            windows.iter().any(|w| {
                r.at.duration_since(*w).is_ok_and(|d| {
                    d > Duration::from_millis(20)
                        && d < Duration::from_secs(RETRY_AFTER) - Duration::from_millis(20)
                })
            })
        })
        .collect();
    eprintln!(
        "pressure: {} API requests, {} 429s, {} inside Retry-After windows, {} events",
        api(&log).len(),
        windows.len(),
        inside.len(),
        events.len()
    );
    assert!(inside.is_empty(), "requests inside a window: {inside:?}");
    let limited = events
        .iter()
        .filter(|e| e.error() == Some(ErrorKind::RateLimited))
        .count();
    // (Both 429s may fall in one cycle: it waits out the first and retries.)
    assert!(limited >= 1, "the 429s were reported ({limited})");
    run.handle.shutdown().await;
}

#[actix_rt::test]
async fn a_pause_past_the_next_tick_gives_one_event_per_tick_and_no_request() {
    let queues = ids(3);
    let interval = Duration::from_millis(300);
    let mut run = start(QueueWatch::new(settings(&queues, 300))).await;
    run.until(|seen| per_queue(seen).len() == 3).await;
    let sim = run.handle.simulator().unwrap().clone();
    // A hostile Retry-After (clamped to a day: far past any tick).
    sim.faults().push(FaultRule::times(
        Fault::RateLimit {
            retry_after_secs: 99_999_999_999,
        },
        1,
    ));
    let first = run
        .until(|seen| {
            seen.last()
                .is_some_and(|e| e.error() == Some(ErrorKind::RateLimited))
        })
        .await;
    let paused_at = Instant::now();
    let api_before = api(&sim.requests()).len();
    // Ten more ticks of every queue.
    let mut after: Vec<Event> = Vec::new();
    let counts = |events: &[Event]| per_queue(events).values().copied().min().unwrap_or(0);
    while per_queue(&after).len() < 3 || counts(&after) < 10 {
        after.push(run.next().await);
    }
    let span = paused_at.elapsed();
    assert_eq!(
        api(&sim.requests()).len(),
        api_before,
        "no request while the token is paused"
    );
    for event in &after {
        assert_eq!(event.error(), Some(ErrorKind::RateLimited), "{event:?}");
        let text = detail(event);
        assert!(
            text.contains("until 20") && text.contains("from now"),
            "{text}"
        );
        assert!(!text.contains("ms") && !text.contains("ns"), "{text}");
    }
    // One event per tick: as many events as ticks passed, give or take one.
    let ticks = span.as_secs_f64() / interval.as_secs_f64();
    for (queue, n) in per_queue(&after) {
        assert!(
            (n as f64) <= ticks + 2.0 && (n as f64) >= ticks - 2.0,
            "{queue}: {n} events in {ticks:.1} ticks"
        );
    }
    let text = run.handle.telemetry().encode();
    let paused: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("queuewatch_rate_budget_paused_seconds "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the pause gauge");
    assert!(paused > 80_000.0, "/metrics shows the pause: {paused}");
    eprintln!(
        "long pause: {} events per queue in {:.1} ticks ({} before it)",
        counts(&after),
        ticks,
        first.len()
    );
    run.handle.shutdown().await;
}

#[actix_rt::test]
async fn a_clean_stop_ends_cycles_waiting_for_the_budget_at_once() {
    let queues = ids(20);
    let mut s = settings(&queues, 30_000);
    // A long grace: only requests on the wire may use it.
    s.genesys.request_timeout = Duration::from_secs(20);
    let mut run = start(QueueWatch::new(s)).await;
    run.next().await;
    let sim = run.handle.simulator().unwrap().clone();
    sim.faults().push(FaultRule::times(
        Fault::RateLimit {
            retry_after_secs: 15,
        },
        1,
    ));
    eventually(Duration::from_secs(30), "a 429", || {
        sim.requests().iter().any(|r| r.status == 429)
    })
    .await;
    // Other queues tick during the pause and wait for it to end.
    let limiter = run.handle.inner.pollers.shared().limiter.clone();
    eventually(Duration::from_secs(15), "two cycles waiting", || {
        limiter.waiting() >= 2
    })
    .await;
    let api_before = api(&sim.requests()).len();
    let stopping = Instant::now();
    run.handle.shutdown().await;
    let took = stopping.elapsed();
    eprintln!("stop with cycles waiting for the budget took {took:?}");
    assert!(
        took < Duration::from_secs(5),
        "the stop waited {took:?} for cycles that had sent nothing"
    );
    assert_eq!(api(&sim.requests()).len(), api_before, "nothing sent");
    let mut cancelled: HashMap<&str, usize> = HashMap::new();
    let mut events = Vec::new();
    while let Ok(e) = run.events.try_recv() {
        events.push(e);
    }
    for event in &events {
        if event.error() == Some(ErrorKind::Cancelled) {
            *cancelled.entry(detail(event)).or_default() += 1;
        }
    }
    let waiting_for_slot = cancelled
        .iter()
        .filter(|(d, _)| d.contains("rate budget slot"))
        .map(|(_, n)| n)
        .sum::<usize>();
    assert!(waiting_for_slot >= 2, "{cancelled:?}");
    assert!(
        cancelled.keys().any(|d| d.contains("waiting to retry")),
        "the 429'd cycle was waiting to retry: {cancelled:?}"
    );
}

#[actix_rt::test]
async fn hostile_token_lifetimes_neither_crash_nor_storm() {
    // `expires_in` that overflows the clock: capped, no panic, no restart.
    for secs in [u64::MAX, i64::MAX as u64] {
        let queues = ids(2);
        let mut sim = SimulatorConfig::with_queues(queues.clone());
        sim.token_lifetime = Duration::from_secs(secs);
        let mut run = start(QueueWatch::new(settings(&queues, 200)).simulator(sim)).await;
        run.until(|seen| seen.iter().filter(|e| e.error().is_none()).count() >= 4)
            .await;
        assert_eq!(
            run.handle.telemetry().restarts_total(),
            0,
            "expires_in {secs}"
        );
        run.handle.shutdown().await;
    }
    // `expires_in: 0`: tokens the API refuses at once; token requests are
    // spaced by backoff, not one per poll (the first round: 850 in 20 s).
    let queues = ids(3);
    let mut sim = SimulatorConfig::with_queues(queues.clone());
    sim.token_lifetime = Duration::ZERO;
    let mut s = settings(&queues, 500);
    s.poll.backoff_base = Duration::from_millis(500);
    s.poll.backoff_max = Duration::from_secs(4);
    let started = Instant::now();
    let mut run = start(QueueWatch::new(s).simulator(sim)).await;
    let events = run.until(|seen| seen.len() >= 20).await;
    let secs = started.elapsed().as_secs_f64();
    let tokens = run.handle.simulator().unwrap().stats().token_requests;
    eprintln!(
        "expires_in 0: {tokens} token requests in {secs:.1} s ({} events)",
        events.len()
    );
    assert!(
        tokens as f64 <= 3.0 + secs,
        "{tokens} token requests in {secs:.1} s"
    );
    assert_eq!(run.handle.telemetry().restarts_total(), 0);
    run.handle.shutdown().await;
}

#[actix_rt::test]
async fn the_demand_follows_the_queues_polled() {
    // 10 queues at 5 s need 120 requests a minute; the budget is 60.
    let queues = ids(10);
    let mut s = settings(&queues, 5_000);
    s.poll.backoff_base = Duration::from_secs(1);
    s.poll.backoff_max = Duration::from_secs(60);
    s.genesys.rate_limit_per_minute = 60;
    let run = start(QueueWatch::new(s)).await;
    let limiter = run.handle.inner.pollers.shared().limiter.clone();
    let rate = limiter.rate_per_minute();
    assert!(
        (limiter.stretch() - 120.0 / rate).abs() < 1e-6,
        "{}",
        limiter.stretch()
    );
    for id in &queues[5..] {
        assert!(run.handle.remove_queue(id).await, "{id}");
    }
    assert!(
        (limiter.stretch() - 60.0 / rate).abs() < 1e-6,
        "{}",
        limiter.stretch()
    );
    for id in &queues[5..] {
        let queue = crate::config::QueueSettings {
            id: id.into(),
            ..run.handle.settings().queues[0].clone()
        };
        run.handle.add_queue(queue).await.unwrap();
    }
    assert!(
        (limiter.stretch() - 120.0 / rate).abs() < 1e-6,
        "{}",
        limiter.stretch()
    );
    run.handle.shutdown().await;
}
