//! Load benchmark: N pollers against the in-process simulator (its rate
//! limit off), measured from the outside: polls, CPU, memory, tick
//! lateness, and how evenly requests spread over time.
//!
//! ```sh
//! cargo bench --bench load -- --queues 10000 --interval 5s --duration 60s
//! ```
//!
//! Options: `--queues N` (1000), `--interval D` (5s), `--duration D` (60s),
//! `--history-size N` (720), `--source guest_position|estimated_wait_time|observations|notifications`,
//! `--jsonl PATH` (also audit every event into a `jsonl` callback writing
//! PATH, truncated first; the CPU per poll then includes it).
//! With `--source notifications` (the simulator then changes every queue
//! every second): `--reconcile D` (5m) and `--wait-time active|off` (off);
//! the figures add the data age at the event (p50/p99, after a warm-up of
//! `--warmup D`, 10s) and the REST requests per minute in steady state.
//! The last line printed is one JSON object with the figures.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use queuewatch::config::{CallbackSettings, Settings, Source, WaitTime};
use queuewatch::simulator::SimulatorConfig;
use queuewatch::{Event, QueueWatch};

struct Args {
    queues: usize,
    interval: Duration,
    duration: Duration,
    history_size: usize,
    source: Source,
    jsonl: Option<PathBuf>,
    reconcile: Duration,
    wait_time: WaitTime,
    warmup: Duration,
}

fn parse_args() -> Args {
    let mut args = Args {
        queues: 1000,
        interval: Duration::from_secs(5),
        duration: Duration::from_secs(60),
        history_size: 720,
        source: Source::GuestPosition,
        jsonl: None,
        reconcile: Duration::from_secs(300),
        wait_time: WaitTime::Off,
        warmup: Duration::from_secs(10),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--queues" => args.queues = value().parse().expect("--queues N"),
            "--interval" => {
                args.interval = humantime::parse_duration(&value()).expect("--interval 5s")
            }
            "--duration" => {
                args.duration = humantime::parse_duration(&value()).expect("--duration 60s")
            }
            "--history-size" => args.history_size = value().parse().expect("--history-size N"),
            "--source" => {
                args.source =
                    serde_json::from_value(serde_json::Value::String(value())).expect("--source")
            }
            "--jsonl" => args.jsonl = Some(PathBuf::from(value())),
            "--reconcile" => {
                args.reconcile = humantime::parse_duration(&value()).expect("--reconcile 5m")
            }
            "--warmup" => args.warmup = humantime::parse_duration(&value()).expect("--warmup 10s"),
            "--wait-time" => {
                args.wait_time = serde_json::from_value(serde_json::Value::String(value()))
                    .expect("--wait-time active|off")
            }
            "--bench" => {} // cargo bench passes this
            other => panic!("unknown option {other}"),
        }
    }
    args
}

/// Counts events as a callback would see them, and keeps the data ages
/// (`data_age_ms`) of the events after the warm-up.
struct Counter(Arc<AtomicU64>, Arc<Mutex<Ages>>);

#[derive(Default)]
struct Ages {
    from: Option<Instant>,
    ms: Vec<f32>,
}

impl Actor for Counter {
    type Context = Context<Self>;
}

impl Handler<Event> for Counter {
    type Result = ();
    fn handle(&mut self, event: Event, _: &mut Context<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
        if let Event::Poll(poll) = event {
            let mut ages = self.1.lock().unwrap();
            if ages.from.is_some_and(|from| from <= Instant::now()) {
                ages.ms
                    .push(poll.data_age_ms.unwrap_or(f64::INFINITY) as f32);
            }
        }
    }
}

/// Process CPU time (user + system), from /proc/self/stat.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    // After the command name: state is field 3, utime 14, stime 15 (1-based).
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(14) + ticks(15)) * 10) // CLK_TCK = 100 on Linux
}

/// Resident set size in bytes, from /proc/self/status.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn main() {
    let args = parse_args();
    actix_rt::System::new().block_on(run(args));
}

async fn run(args: Args) {
    let ids: Vec<String> = (0..args.queues)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let mut settings = Settings::for_queues(ids.clone());
    settings.poll.interval = args.interval;
    settings.poll.source = args.source;
    settings.poll.history_size = args.history_size;
    settings.poll.reconcile_interval = args.reconcile;
    settings.poll.wait_time = args.wait_time;
    settings.genesys.rate_limit_per_minute = u32::MAX;
    settings.callbacks.clear();
    if let Some(path) = &args.jsonl {
        std::fs::write(path, b"").expect("--jsonl PATH: cannot write it");
        settings
            .callbacks
            .push(CallbackSettings::Jsonl { path: path.clone() });
    }
    settings.http.bind = None;
    let mut sim = SimulatorConfig::with_queues(ids);
    sim.rate_limit_per_minute = None;
    sim.token_rate_limit_per_minute = None;
    sim.request_log_capacity = 0;
    let push = args.source == Source::Notifications;
    sim.churn = push;

    let rss_before = rss();
    let events = Arc::new(AtomicU64::new(0));
    let ages = Arc::new(Mutex::new(Ages {
        from: Some(Instant::now() + args.warmup),
        ms: Vec::new(),
    }));
    let counter = Counter(events.clone(), ages.clone()).start();
    let cpu_start = cpu_time();
    let started = Instant::now();
    let handle = QueueWatch::new(settings)
        .simulator(sim)
        .subscribe("bench", counter.recipient())
        .start()
        .await
        .expect("start");
    let sim = handle.simulator().expect("simulated").clone();

    // Requests per whole second, from the simulator's counter.
    let mut per_second = Vec::new();
    let mut last = sim.stats().api_requests;
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while started.elapsed() < args.duration {
        tick.tick().await;
        let now = sim.stats().api_requests;
        per_second.push(now - last);
        last = now;
        if per_second.len() % 30 == 0 {
            eprintln!(
                "t={}s rss={:.1} MiB polls={}",
                per_second.len(),
                rss() as f64 / f64::from(1 << 20),
                events.load(Ordering::Relaxed)
            );
        }
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time() - cpu_start;
    // Steady state: the seconds after the warm-up.
    let warm = (args.warmup.as_secs() as usize).min(per_second.len());
    let steady_requests: u64 = per_second[warm..].iter().sum();
    let steady_minutes = (per_second.len() - warm) as f64 / 60.0;
    let requests_per_minute = steady_requests as f64 / steady_minutes.max(1.0 / 60.0);
    let data_age = {
        let mut ms = std::mem::take(&mut ages.lock().unwrap().ms);
        ms.sort_by(f32::total_cmp);
        let at = |q: f64| {
            ms.get(((ms.len() as f64 * q) as usize).min(ms.len().saturating_sub(1)))
                .copied()
                .map(f64::from)
        };
        (at(0.5), at(0.99), ms.len())
    };
    let rss_after = rss();
    let polls = events.load(Ordering::Relaxed);
    let lateness = handle.telemetry().tick_lateness_ms().unwrap_or_default();
    handle.shutdown().await;
    // After a clean stop the audit holds every event, each on a whole line.
    let audit_lines = args.jsonl.as_ref().map(|path| {
        let text = std::fs::read(path).expect("the jsonl audit");
        assert!(
            text.is_empty() || text.ends_with(b"\n"),
            "the last audit line is whole"
        );
        text.iter().filter(|b| **b == b'\n').count() as u64
    });
    if let Some(lines) = audit_lines {
        assert!(
            lines >= polls,
            "{lines} audit lines, {polls} polls counted before the stop"
        );
    }

    // The first interval ramps up (phases spread over it): judge evenness after it.
    let skip = args.interval.as_secs().max(1) as usize;
    let steady = if per_second.len() > skip {
        &per_second[skip..]
    } else {
        &per_second[..]
    };
    let max_rps = steady.iter().copied().max().unwrap_or(0);
    let mean_rps = steady.iter().sum::<u64>() as f64 / steady.len().max(1) as f64;
    let expected = args.queues as f64 * elapsed.as_secs_f64() / args.interval.as_secs_f64();
    let rss_per_queue = rss_after.saturating_sub(rss_before) / args.queues.max(1) as u64;
    println!(
        "{} queues at {:?} for {:.1}s: {} polls ({:.1}% of {:.0} expected), {:.1} µs CPU/poll, RSS {} MiB ({} B/queue), lateness p50 {:.2} ms p99 {:.2} ms max {:.2} ms, requests/s mean {:.1} max {}",
        args.queues,
        args.interval,
        elapsed.as_secs_f64(),
        polls,
        100.0 * polls as f64 / expected,
        expected,
        cpu.as_micros() as f64 / polls.max(1) as f64,
        rss_after / (1 << 20),
        rss_per_queue,
        lateness.0,
        lateness.1,
        lateness.2,
        mean_rps,
        max_rps,
    );
    println!(
        "{}",
        serde_json::json!({
            "queues": args.queues,
            "interval": humantime::format_duration(args.interval).to_string(),
            "duration": humantime::format_duration(args.duration).to_string(),
            "source": args.source.as_str(),
            "callbacks": if args.jsonl.is_some() { vec!["jsonl"] } else { vec![] },
            "audit_lines": audit_lines,
            "polls": polls,
            "polls_per_sec": polls as f64 / elapsed.as_secs_f64(),
            "expected_polls": expected.round(),
            "cpu_us_per_poll": cpu.as_micros() as f64 / polls.max(1) as f64,
            "rss_bytes": rss_after,
            "rss_per_queue_bytes": rss_per_queue,
            "tick_lateness_ms": {"p50": lateness.0, "p99": lateness.1, "max": lateness.2},
            "max_requests_in_any_second": max_rps,
            "mean_requests_per_second": mean_rps,
            "steady_requests_per_minute": requests_per_minute,
            "data_age_ms": {"p50": data_age.0, "p99": data_age.1, "events": data_age.2},
        })
    );
}
