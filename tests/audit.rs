//! No loss in the audit file: SIGTERM during heavy polling leaves one whole
//! line per finished cycle (the same events as the `stdout` callback saw),
//! and `kill -9` at worst cuts the last line, never an earlier one.

#![cfg(unix)]

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use queuewatch::Event;

const BIN: &str = env!("CARGO_BIN_EXE_queuewatch");
const QUEUES: usize = 500;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("queuewatch-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// 500 simulated queues every 5 s (100 polls a second), audited and on stdout.
fn spawn(dir: &Path) -> Child {
    let mut yaml = String::from(
        "genesys:\n  rate_limit_per_minute: 20000\n  request_timeout: 2s\npoll:\n  interval: 5s\n\
         callbacks:\n  - kind: jsonl\n    path: audit.jsonl\n  - kind: stdout\nhttp:\n  bind: null\nqueues:\n",
    );
    for i in 0..QUEUES {
        yaml.push_str(&format!("  - id: {i:08x}-a0d1-4000-8000-000000000000\n"));
    }
    std::fs::write(dir.join("settings.yaml"), yaml).unwrap();
    Command::new(BIN)
        .args(["run", "--config", "settings.yaml"])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the audit file has at least `lines` lines.
fn wait_for_lines(path: &Path, lines: usize, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read(path).map_or(0, |t| t.iter().filter(|b| **b == b'\n').count()) < lines {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child exited early"
        );
        assert!(Instant::now() < deadline, "fewer than {lines} audit lines");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Reads a pipe to the end on a thread.
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        pipe.read_to_string(&mut text).unwrap();
        text
    })
}

fn parse_lines(text: &str) -> Vec<Event> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn sigterm_during_heavy_polling_loses_no_event() {
    let dir = temp_dir("term");
    let audit = dir.join("audit.jsonl");
    let mut child = spawn(&dir);
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    // Two rounds of every queue.
    wait_for_lines(&audit, 2 * QUEUES, &mut child);
    signal(&child, "-TERM");
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert_eq!(status.code(), Some(0), "clean stop: {stderr}");

    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(text.ends_with('\n'), "the last line is whole");
    let audited = parse_lines(&text);
    let printed = parse_lines(&stdout.join().unwrap());
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
    assert!(!stderr.contains("dropped"), "no drops: {stderr}");
}

#[test]
fn kill_9_cuts_at_most_the_last_line() {
    let dir = temp_dir("kill");
    let audit = dir.join("audit.jsonl");
    let mut child = spawn(&dir);
    let _stdout = drain(child.stdout.take().unwrap());
    let _stderr = drain(child.stderr.take().unwrap());
    wait_for_lines(&audit, QUEUES, &mut child);
    signal(&child, "-KILL");
    child.wait().unwrap();

    let text = std::fs::read_to_string(&audit).unwrap();
    let mut lines: Vec<&str> = text.split('\n').collect();
    let last = lines.pop().unwrap(); // after the final '\n': empty, or a cut line
    let mut ids = HashSet::new();
    for line in &lines {
        let event: Event = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a whole line is corrupt: {e}: {line}"));
        assert!(ids.insert(event.id().to_string()), "no line twice");
    }
    assert!(ids.len() >= QUEUES);
    if !last.is_empty() {
        assert!(
            serde_json::from_str::<Event>(last).is_err(),
            "an unterminated last line is a cut one"
        );
    }
}
