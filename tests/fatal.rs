#![cfg(feature = "simulator")]
//! A fatal stop tells every consumer why data stopped: the binary with a
//! wrong client secret exits 1, and before it does every queue emits one
//! `auth_failed` event, delivered to the audit file, stdout and a webhook.

mod support;

use std::collections::HashMap;
use std::process::Command;

use queuewatch::simulator::{self, SimulatorConfig};
use support::bin::BIN;
use support::webhook::Receiver;

const WRONG_SECRET: &str = "not-the-secret-0451";

/// Counts the `auth_failed` events per queue in JSON lines, and checks
/// that nothing else came and no secret leaked into them.
fn auth_failed_per_queue<'a>(lines: impl Iterator<Item = &'a str>) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for line in lines.filter(|l| l.starts_with('{')) {
        let event: serde_json::Value = serde_json::from_str(line).expect(line);
        assert_eq!(event["type"], "poll_failed", "{line}");
        assert_eq!(event["error"], "auth_failed", "{line}");
        let detail = event["detail"].as_str().unwrap();
        assert!(detail.contains("invalid_client"), "{detail}");
        assert!(!line.contains(WRONG_SECRET), "{line}");
        *counts
            .entry(event["queue_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    counts
}

#[actix_rt::test]
async fn rejected_credentials_end_with_one_auth_failed_event_per_queue_everywhere() {
    let queues = support::queue_ids(0x1111_0000, 3);
    let sim = support::sim::start(SimulatorConfig::with_queues(queues.clone())).await;
    // A webhook receiver keeping every body it gets.
    let receiver = Receiver::answering(200);
    let hook = receiver.url("/hook");

    let dir = support::TempDir::new("fatal");
    let mut yaml = format!(
        "genesys:\n  environment: mypurecloud.com\n  api_url: {base}\n  login_url: {base}\n\
         poll:\n  interval: 5s\n\
         callbacks:\n  - kind: jsonl\n    path: audit.jsonl\n  - kind: stdout\n  - kind: webhook\n    url: {hook}\n\
         http:\n  bind: null\nqueues:\n",
        base = sim.base_url()
    );
    for id in &queues {
        yaml.push_str(&format!("  - id: {id}\n"));
    }
    std::fs::write(dir.join("settings.yaml"), yaml).unwrap();

    let mut command = Command::new(BIN);
    command
        .args(["run", "--config", "settings.yaml", "--for", "60s"])
        .current_dir(&dir)
        .env("GENESYS_CLIENT_ID", simulator::DEFAULT_CLIENT_ID)
        .env("GENESYS_CLIENT_SECRET", WRONG_SECRET)
        .env("RUST_LOG", "debug");
    let out = support::bin::output(command).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        !stderr.contains(WRONG_SECRET),
        "the secret leaked into the log"
    );

    let every_queue_once: HashMap<String, usize> = queues.iter().map(|q| (q.clone(), 1)).collect();
    let audit = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    assert_eq!(
        auth_failed_per_queue(audit.lines()),
        every_queue_once,
        "audit"
    );
    assert_eq!(
        auth_failed_per_queue(stdout.lines()),
        every_queue_once,
        "stdout"
    );
    let bodies: Vec<String> = receiver
        .hits()
        .into_iter()
        .filter(|hit| hit.path == "/hook")
        .map(|hit| String::from_utf8(hit.body).expect("a UTF-8 body"))
        .collect();
    assert_eq!(
        auth_failed_per_queue(bodies.iter().map(String::as_str)),
        every_queue_once,
        "webhook"
    );
    receiver.stop(true).await;
}
