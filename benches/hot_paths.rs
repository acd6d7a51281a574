//! Micro-benchmarks of the per-poll hot paths, timed with `std::time`
//! (no criterion: it would double this crate's build time on 2 cores).
//!
//! ```sh
//! cargo bench --bench hot_paths
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use queuewatch::config::Source;
use queuewatch::event::{Availability, Event, PollEvent};
use queuewatch::genesys::{wire, Sample};
use queuewatch::tracking::{CycleReport, QueueMatrix};

fn bench(name: &str, iterations: u32, mut f: impl FnMut()) {
    for _ in 0..iterations / 10 {
        f(); // warm up
    }
    let started = Instant::now();
    for _ in 0..iterations {
        f();
    }
    let per = started.elapsed() / iterations;
    println!("{name:<40} {:>9.0} ns/op", per.as_nanos() as f64);
}

fn main() {
    let id = "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10";
    let position =
        format!(r#"{{"position":3,"estimatedWaitTime":42.5,"status":"waiting","queueId":"{id}"}}"#);
    bench("wire::parse_position", 200_000, || {
        black_box(wire::parse_position(black_box(id), black_box(position.as_bytes())).ok());
    });

    let ids: Vec<String> = (0..100)
        .map(|i| format!("{i:08x}-0000-4000-8000-000000000000"))
        .collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let results: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| {
            serde_json::json!({"group": {"queueId": id, "mediaType": "message"}, "data": [
            {"metric": "oWaiting", "stats": {"count": 7}},
            {"metric": "oOnQueueUsers", "qualifier": "IDLE", "stats": {"count": 2}},
            {"metric": "oOnQueueUsers", "qualifier": "INTERACTING", "stats": {"count": 3}}]})
        })
        .collect();
    let observations = serde_json::to_vec(&serde_json::json!({ "results": results })).unwrap();
    bench("wire::parse_observations (100 queues)", 2_000, || {
        black_box(wire::parse_observations(black_box(&refs), black_box(&observations)).ok());
    });

    let event = Event::Poll(PollEvent {
        id: uuid::Uuid::new_v4().to_string(),
        timestamp: "2026-11-24T12:00:00.123Z".into(),
        queue_id: id.into(),
        queue_name: Some("support".into()),
        source: Source::GuestPosition,
        position: Some(3),
        estimated_wait_seconds: Some(42.5),
        smoothed_wait_seconds: Some(40.1),
        waiting: None,
        agents_on_queue: None,
        status: Some("waiting".into()),
        over_capacity: false,
        exceeds_wait_directive: false,
        below_min_agents: None,
        agent_availability: Some(Availability::High),
        latency_ms: 12.4,
        data_age_ms: Some(0.1),
        attempts: 1,
    });
    bench("Event::to_json", 200_000, || {
        black_box(black_box(&event).to_json());
    });
    bench("Event clone (fan-out, per user callback)", 200_000, || {
        black_box(black_box(&event).clone());
    });

    let mut matrix = QueueMatrix::new(720);
    let report = CycleReport {
        outcome: Ok(Sample {
            position: Some(3),
            estimated_wait_seconds: Some(42.5),
            ..Sample::default()
        }),
        latency: Some(Duration::from_millis(12)),
        attempts: 1,
        rate_limited: 0,
        smoothing_factor: 0.8,
        at: SystemTime::UNIX_EPOCH,
    };
    bench("QueueMatrix::record", 1_000_000, || {
        black_box(matrix.record(black_box(&report)));
    });
    bench("uuid v4 event id", 1_000_000, || {
        black_box(uuid::Uuid::new_v4().to_string());
    });
}
