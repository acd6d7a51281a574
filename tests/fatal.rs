//! A fatal stop tells every consumer why data stopped: the binary with a
//! wrong client secret exits 1, and before it does every queue emits one
//! `auth_failed` event, delivered to the audit file, stdout and a webhook.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpResponse, HttpServer};
use queuewatch::simulator::{self, SimulatorConfig};

const BIN: &str = env!("CARGO_BIN_EXE_queuewatch");
const WRONG_SECRET: &str = "not-the-secret-0451";

fn queue_ids(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{i:08x}-1111-4000-8000-{i:012x}"))
        .collect()
}

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
    let queues = queue_ids(3);
    let sim = simulator::start(
        SimulatorConfig::with_queues(queues.clone()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    // A webhook receiver keeping every body it gets.
    let hooks: Arc<Mutex<Vec<String>>> = Arc::default();
    let receiver = {
        let hooks = hooks.clone();
        HttpServer::new(move || {
            let hooks = hooks.clone();
            App::new().route(
                "/hook",
                web::post().to(move |body: String| {
                    hooks.lock().unwrap().push(body);
                    async { HttpResponse::Ok().finish() }
                }),
            )
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap()
    };
    let hook_addr = receiver.addrs()[0];
    let receiver = receiver.run();
    let stop_receiver = receiver.handle();
    actix_rt::spawn(receiver);

    let dir = std::env::temp_dir().join(format!("queuewatch-fatal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut yaml = format!(
        "genesys:\n  environment: mypurecloud.com\n  api_url: {base}\n  login_url: {base}\n\
         poll:\n  interval: 5s\n\
         callbacks:\n  - kind: jsonl\n    path: audit.jsonl\n  - kind: stdout\n  - kind: webhook\n    url: http://{hook_addr}/hook\n\
         http:\n  bind: null\nqueues:\n",
        base = sim.base_url()
    );
    for id in &queues {
        yaml.push_str(&format!("  - id: {id}\n"));
    }
    std::fs::write(dir.join("settings.yaml"), yaml).unwrap();

    let run_dir = dir.clone();
    let out = actix_rt::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["run", "--config", "settings.yaml", "--for", "60s"])
            .current_dir(&run_dir)
            .env("GENESYS_CLIENT_ID", simulator::DEFAULT_CLIENT_ID)
            .env("GENESYS_CLIENT_SECRET", WRONG_SECRET)
            .env("RUST_LOG", "debug")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
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
    let bodies = hooks.lock().unwrap().clone();
    assert_eq!(
        auth_failed_per_queue(bodies.iter().map(String::as_str)),
        every_queue_once,
        "webhook"
    );
    stop_receiver.stop(true).await;
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
