//! Rate-budget discipline against the simulator: demand far over budget is
//! stretched with zero 429s, a lowered `inin-ratelimit-allowed` is followed,
//! and observations are batched 100 queues a request.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use super::tests::{api, ids, per_queue, settings, start, start_external};
use super::QueueWatch;
use crate::config::Source;
use crate::error::ErrorKind;
use crate::genesys::wire::OBSERVATIONS_PATH;
use crate::simulator::SimulatorConfig;

#[actix_rt::test]
async fn demand_six_times_the_budget_is_stretched_without_429s() {
    // 12 queues every second need 720 requests a minute; the token allows 120.
    let queues = ids(12);
    let mut s = settings(&queues, 1000);
    s.genesys.rate_limit_per_minute = 120;
    let secs: u64 = std::env::var("QUEUEWATCH_BUDGET_TEST_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(90, |s: u64| s.max(90));
    let mut run = start(QueueWatch::new(s)).await;
    let started = SystemTime::now();
    let deadline = started + Duration::from_secs(secs);
    let mut counts: HashMap<String, usize> = HashMap::new();
    while SystemTime::now() < deadline {
        let event = run.next().await;
        assert_eq!(event.error(), None, "{event:?}");
        *counts.entry(event.queue_id().to_string()).or_default() += 1;
    }
    let sim = run.handle.simulator().unwrap();
    assert_eq!(sim.stats().rate_limited, 0, "no 429 from our own overrun");
    // Stretched ~x6.2: each queue every ~6.2 s, so ~14 polls in 90 s each.
    let expected = secs as f64 / 6.2;
    assert_eq!(counts.len(), 12, "every queue still polled");
    for (queue, n) in &counts {
        assert!(
            *n as f64 >= expected * 0.75,
            "{queue} polled only {n} times"
        );
    }
    // And no more than the budget in any minute of the simulator's log.
    let times: Vec<SystemTime> = api(&sim.requests()).iter().map(|r| r.at).collect();
    let busiest_minute = times
        .iter()
        .map(|t| {
            times
                .iter()
                .filter(|u| {
                    u.duration_since(*t)
                        .is_ok_and(|d| d < Duration::from_secs(60))
                })
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(
        busiest_minute <= 120,
        "{busiest_minute} requests in one minute"
    );
    run.handle.shutdown().await;
}

#[actix_rt::test]
async fn a_lowered_allowance_is_followed() {
    // Budget 300/min, but Genesys says (and enforces) 30/min on this token.
    let queues = ids(10);
    let sim = crate::simulator::start(
        SimulatorConfig::with_queues(queues.clone()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    sim.set_advertised_allowed(Some(30));
    let mut run = start_external(&queues, 1000, &sim).await;
    let started = SystemTime::now();
    let events = run
        .until(|_| SystemTime::now().duration_since(started).unwrap() > Duration::from_secs(30))
        .await;
    assert!(events.iter().all(|e| e.error().is_none()), "no failures");
    assert_eq!(
        sim.stats().rate_limited,
        0,
        "no 429: the allowance was followed"
    );
    // After the first round, 30/min with headroom: ~12 requests in the next 25 s.
    let later = api(&sim.requests())
        .iter()
        .filter(|r| r.at >= started + Duration::from_secs(5))
        .count();
    assert!(
        later <= 14,
        "{later} requests in 25 s at an allowance of 30/min"
    );
    assert!(later >= 6, "still polling: {later}");
    run.handle.shutdown().await;
    sim.stop().await;
}

#[actix_rt::test]
async fn observations_batch_100_queues_a_request() {
    let queues = ids(250);
    let unknown = ids(252)[250..].to_vec();
    let mut all = queues.clone();
    all.extend(unknown.iter().cloned());
    let mut s = settings(&all, 1000);
    s.poll.source = Source::Observations;
    let sim = SimulatorConfig::with_queues(queues.clone());
    let mut run = start(QueueWatch::new(s).simulator(sim)).await;
    let events = run
        .until(|seen| per_queue(seen).len() == 252 && per_queue(seen).values().all(|n| *n >= 3))
        .await;
    for e in &events {
        if unknown.iter().any(|u| u == e.queue_id()) {
            assert_eq!(e.error(), Some(ErrorKind::NotFound), "{e:?}");
        } else {
            assert_eq!(e.error(), None, "{e:?}");
        }
    }
    let log = run.sim_requests();
    // Requests carrying at least one known queue (the unknown ones slow down
    // after their 404 and go on alone, rarely).
    let batches: Vec<usize> = api(&log)
        .iter()
        .filter(|r| r.path == OBSERVATIONS_PATH && r.queue_ids.iter().any(|id| queues.contains(id)))
        .map(|r| r.queue_ids.len())
        .collect();
    assert!(batches.iter().all(|n| *n <= 100), "{batches:?}");
    let cycles = per_queue(&events).values().copied().max().unwrap();
    // 252 queues are 3 batches a cycle; each batch may have one more cycle's
    // request in flight when the last event we wait for arrives.
    assert!(
        batches.len() <= 3 * (cycles + 1),
        "{} requests for {cycles} cycles: {batches:?}",
        batches.len()
    );
    assert!(
        batches.iter().filter(|n| **n >= 50).count() >= 3,
        "full batches: {batches:?}"
    );
    run.handle.shutdown().await;
}
