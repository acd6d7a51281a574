#![cfg(feature = "simulator")]
//! No loss in the audit file: SIGTERM during heavy polling leaves one whole
//! line per finished cycle (the same events as the `stdout` callback saw),
//! and `kill -9` loses at most the last batch not yet written (normally the
//! last 200 ms of events): what is left is whole lines, a prefix of the
//! events in order, and at worst a cut last line, never an earlier one.

#![cfg(unix)]

mod support;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use queuewatch::Event;
use support::bin::{signal, status_api_addr, Lines, BIN};
use support::metrics::parse_openmetrics;
use support::wait::eventually_blocking;
use support::TempDir;

const QUEUES: usize = 500;

/// A running binary with its output read as it comes.
struct Run {
    child: Child,
    stdout: Lines,
    stderr: Lines,
    /// Where its status API listens.
    status_api: SocketAddr,
}

/// 500 simulated queues every 5 s (100 polls a second), audited and on
/// stdout; the status API on a port the system picks (its log line says
/// which: the only info line let through, the rest is warnings).
fn spawn(dir: &Path) -> Run {
    let mut yaml = String::from(
        "genesys:\n  rate_limit_per_minute: 20000\n  request_timeout: 2s\npoll:\n  interval: 5s\n\
         callbacks:\n  - kind: jsonl\n    path: audit.jsonl\n  - kind: stdout\nhttp:\n  bind: 127.0.0.1:0\nqueues:\n",
    );
    for id in support::queue_ids(0xa0d1_0000, QUEUES) {
        yaml.push_str(&format!("  - id: {id}\n"));
    }
    std::fs::write(dir.join("settings.yaml"), yaml).unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config", "settings.yaml"])
        .current_dir(dir)
        .env("RUST_LOG", "warn,queuewatch::runtime::builder=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = Lines::read(child.stdout.take().unwrap());
    let mut stderr = Lines::read(child.stderr.take().unwrap());
    let status_api = stderr.wait_for(
        "the status API listens",
        Duration::from_secs(30),
        status_api_addr,
    );
    Run {
        child,
        stdout,
        stderr,
        status_api,
    }
}

/// Waits until the audit file has at least `lines` lines.
fn wait_for_lines(path: &Path, lines: usize, child: &mut Child) {
    eventually_blocking(
        &format!("{lines} audit lines"),
        Duration::from_secs(60),
        || {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the child exited early"
            );
            std::fs::read(path).map_or(0, |t| t.iter().filter(|b| **b == b'\n').count()) >= lines
        },
    );
}

fn parse_lines(text: &str) -> Vec<Event> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn sigterm_during_heavy_polling_loses_no_event() {
    let dir = TempDir::new("audit-term");
    let audit = dir.join("audit.jsonl");
    let mut run = spawn(&dir);
    // Two rounds of every queue.
    wait_for_lines(&audit, 2 * QUEUES, &mut run.child);
    // Before the stop: nothing dropped so far (the drop counter, by
    // callback), and how many cycles had finished.
    let accept = support::metrics::PROMETHEUS_ACCEPT;
    let metrics = support::http::get_accepting(run.status_api, "/metrics", accept);
    let families = parse_openmetrics(&metrics).unwrap_or_else(|e| panic!("{e}\n{metrics}"));
    let delivered = &families
        .get("queuewatch_event_deliveries")
        .unwrap_or_else(|| panic!("no deliveries counted:\n{metrics}"))
        .samples;
    for callback in ["jsonl:", "stdout"] {
        assert!(
            delivered
                .iter()
                .any(|s| s.labels["callback"].starts_with(callback) && s.value > 0.0),
            "{callback} deliveries are counted: {delivered:?}"
        );
    }
    // A family without series is left out: no drops at all.
    let dropped = families
        .get("queuewatch_event_drops")
        .map_or(0.0, |f| f.total("queuewatch_event_drops_total"));
    assert_eq!(dropped, 0.0, "events dropped before the stop");
    let finished = families
        .get("queuewatch_polls")
        .map_or(0.0, |f| f.total("queuewatch_polls_total"));
    assert!(
        finished >= (2 * QUEUES) as f64,
        "{finished} cycles finished"
    );

    signal(&run.child, "-TERM");
    let status = run.child.wait().unwrap();
    let stderr = run.stderr.text();
    assert_eq!(status.code(), Some(0), "clean stop: {stderr}");

    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(text.ends_with('\n'), "the last line is whole");
    let audited = parse_lines(&text);
    let printed = parse_lines(&run.stdout.text());
    let audited_ids: HashSet<&str> = audited.iter().map(Event::id).collect();
    let printed_ids: HashSet<&str> = printed.iter().map(Event::id).collect();
    assert_eq!(audited_ids.len(), audited.len(), "no line twice");
    assert_eq!(printed_ids.len(), printed.len(), "no event printed twice");
    assert_eq!(
        audited_ids, printed_ids,
        "the audit and stdout callbacks got the same events"
    );
    // One event per cycle and queue: every queue is there, none ran ahead.
    let mut per_queue: HashMap<&str, usize> = HashMap::new();
    for event in &audited {
        *per_queue.entry(event.queue_id()).or_default() += 1;
    }
    assert_eq!(per_queue.len(), QUEUES, "every queue was audited");
    let (least, most) = (
        per_queue.values().min().unwrap(),
        per_queue.values().max().unwrap(),
    );
    assert!(most - least <= 2, "queues polled evenly: {least}..{most}");
    assert!(
        audited.len() as f64 >= finished,
        "{} audited, but {finished} cycles had finished before the stop",
        audited.len()
    );
    // Drops during the stop are past the last scrape: the outbox logs them
    // ("dropped" while running, "lost" as a callback stops).
    assert!(
        !stderr.contains("dropped") && !stderr.contains("lost"),
        "no drops: {stderr}"
    );
}

#[test]
fn kill_9_loses_at_most_the_last_batch() {
    let dir = TempDir::new("audit-kill");
    let audit = dir.join("audit.jsonl");
    let mut run = spawn(&dir);
    wait_for_lines(&audit, QUEUES, &mut run.child);
    signal(&run.child, "-KILL");
    run.child.wait().unwrap();

    let text = std::fs::read_to_string(&audit).unwrap();
    let mut lines: Vec<&str> = text.split('\n').collect();
    let last = lines.pop().unwrap(); // after the final '\n': empty, or a cut line
    let audited: Vec<Event> = lines
        .iter()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a whole line is corrupt: {e}: {line}"))
        })
        .collect();
    let ids: HashSet<&str> = audited.iter().map(Event::id).collect();
    assert_eq!(ids.len(), audited.len(), "no line twice");
    assert!(audited.len() >= QUEUES);
    if !last.is_empty() {
        assert!(
            serde_json::from_str::<Event>(last).is_err(),
            "an unterminated last line is a cut one"
        );
    }
    // What is there is a prefix of the events in the order the fan-out
    // handed them out: the stdout callback printed a prefix of the same
    // sequence (its last line possibly cut), so one is a prefix of the other.
    let printed: Vec<String> = run
        .stdout
        .all()
        .iter()
        .map_while(|line| serde_json::from_str::<Event>(line).ok())
        .map(|event| event.id().to_owned())
        .collect();
    let audited: Vec<&str> = audited.iter().map(Event::id).collect();
    let common = audited.len().min(printed.len());
    assert!(common >= QUEUES, "{} printed", printed.len());
    assert!(
        audited[..common]
            .iter()
            .copied()
            .eq(printed[..common].iter().map(String::as_str)),
        "the audit is a prefix of the events, in their order"
    );
}
