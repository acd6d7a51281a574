#![cfg(feature = "simulator")]
//! The binary as an operator runs it: exit codes, `check`, `simulate`
//! answering hand-written HTTP, and a clean SIGTERM stop of `run`.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use support::bin::{signal, status_api_addr, Lines, BIN};
use support::http::raw as raw_http;
use support::wait::eventually_blocking;
use support::TempDir;

fn temp_dir(name: &str) -> TempDir {
    TempDir::new(&format!("cli-{name}"))
}

fn queuewatch(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("GENESYS_CLIENT_ID")
        .env_remove("GENESYS_CLIENT_SECRET")
        .output()
        .unwrap()
}

#[test]
fn check_accepts_the_shipped_settings() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("settings.yaml");
    let out = queuewatch(
        &["check", "--config", shipped.to_str().unwrap()],
        temp_dir("check").path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("queues:") && stdout.contains("budget:"),
        "{stdout}"
    );
}

#[test]
fn bad_settings_exit_2_naming_every_key() {
    let dir = temp_dir("bad");
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "poll:\n  interval: 2s\n  backoff_base: 2m\nthresholds:\n  smoothing_factor: 1.5\nqueues:\n  - id: not-a-uuid\n",
    )
    .unwrap();
    for command in ["check", "run"] {
        let out = queuewatch(&[command, "--config", file.to_str().unwrap()], dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        for key in [
            "poll.interval",
            "poll.backoff_base",
            "thresholds.smoothing_factor",
            "queues[0].id",
        ] {
            assert!(stderr.contains(key), "{command}: {key} missing in {stderr}");
        }
        assert!(!stderr.contains("panicked"));
    }
    let out = queuewatch(&["check", "--config", "missing.yaml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let out = queuewatch(&["frobnicate"], dir.path());
    assert_eq!(out.status.code(), Some(2), "bad usage");
}

#[test]
fn missing_credentials_exit_2_naming_the_key() {
    let dir = temp_dir("creds");
    let file = dir.join("real.yaml");
    std::fs::write(
        &file,
        "genesys:\n  environment: mypurecloud.ie\nqueues:\n  - id: 0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10\nhttp:\n  bind: null\n",
    )
    .unwrap();
    let out = queuewatch(&["run", "--config", file.to_str().unwrap()], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("genesys.client_id_env") && stderr.contains("GENESYS_CLIENT_ID"),
        "{stderr}"
    );
}

/// Starts `queuewatch simulate` on a port the system picks and returns it
/// with its address (its first stdout line says where it listens).
fn simulate(extra: &[&str]) -> (Child, SocketAddr) {
    let mut child = Command::new(BIN)
        .args(["simulate", "--bind", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = Lines::read(child.stdout.take().unwrap());
    let addr = stdout.wait_for("the simulator listens", Duration::from_secs(30), |line| {
        line.strip_prefix("Genesys simulator on http://")?
            .split(' ')
            .next()?
            .parse()
            .ok()
    });
    (child, addr)
}

#[test]
fn simulate_answers_hand_written_requests() {
    let queue = "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10";
    let (mut child, addr) = simulate(&["--queue", queue]);
    // base64("simulated-client:simulated-secret")
    let basic = "c2ltdWxhdGVkLWNsaWVudDpzaW11bGF0ZWQtc2VjcmV0";
    let form = "grant_type=client_credentials";
    let (status, body) = raw_http(
        addr,
        &format!(
            "POST /oauth/token HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {basic}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
    );
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let access = token["access_token"].as_str().unwrap();
    let (status, body) = raw_http(
        addr,
        &format!(
            "GET /api/v2/guest/messaging/queues/{queue}/position HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {access}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 200, "{body}");
    let position: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(position["queueId"], queue);
    assert!(position["position"].is_u64());
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn rejected_credentials_exit_1() {
    let queue = "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10";
    let (mut sim, addr) = simulate(&["--queue", queue]);
    let dir = temp_dir("rejected");
    let file = dir.join("s.yaml");
    std::fs::write(
        &file,
        format!(
            "genesys:\n  environment: mypurecloud.com\n  api_url: http://{addr}\n  login_url: http://{addr}\nqueues:\n  - id: {queue}\nhttp:\n  bind: null\n"
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["run", "--config", file.to_str().unwrap(), "--for", "20s"])
        .env("GENESYS_CLIENT_ID", "simulated-client")
        .env("GENESYS_CLIENT_SECRET", "not-the-secret")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("invalid_client"), "{stderr}");
    assert!(
        !stderr.contains("not-the-secret"),
        "the secret leaked: {stderr}"
    );
    sim.kill().unwrap();
    sim.wait().unwrap();
}

#[cfg(unix)]
#[test]
fn sigterm_stops_cleanly_with_a_complete_audit() {
    let dir = temp_dir("sigterm");
    let audit = dir.join("audit.jsonl");
    let file = dir.join("s.yaml");
    let mut yaml = String::from("poll:\n  interval: 5s\ncallbacks:\n  - kind: jsonl\n    path: audit.jsonl\nhttp:\n  bind: null\nqueues:\n");
    for id in support::queue_ids(0, 20) {
        yaml.push_str(&format!("  - id: {id}\n"));
    }
    std::fs::write(&file, yaml).unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config", file.to_str().unwrap()])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until every queue has been polled once (the file is the signal).
    eventually_blocking("20 audit lines", Duration::from_secs(30), || {
        std::fs::read_to_string(&audit).map_or(0, |t| t.lines().count()) >= 20
    });
    signal(&child, "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0), "clean stop");
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(text.ends_with('\n'), "the last line is complete");
    let mut ids = std::collections::HashSet::new();
    for line in text.lines() {
        let event: queuewatch::Event =
            serde_json::from_str(line).expect("every line is a whole event");
        assert!(ids.insert(event.id().to_string()), "no duplicate lines");
    }
    assert!(ids.len() >= 20);
}

/// Runs the binary and returns its exit code and stderr, or `None` (after
/// killing it) if it has not finished within `limit`.
fn finishes_within(args: &[&str], dir: &Path, limit: Duration) -> Option<(Option<i32>, String)> {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("GENESYS_CLIENT_ID")
        .env_remove("GENESYS_CLIENT_SECRET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = Lines::read(child.stderr.take().unwrap());
    if stderr.closed_within(limit) {
        Some((child.wait().unwrap().code(), stderr.text()))
    } else {
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

#[cfg(unix)]
#[test]
fn special_settings_files_exit_2_at_once() {
    let dir = temp_dir("fifo");
    let fifo = dir.join("settings.yaml");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let zero = dir.join("zero.yaml");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    for file in [&fifo, &zero] {
        for command in ["check", "run"] {
            let path = file.to_str().unwrap();
            let (code, stderr) =
                finishes_within(&[command, "--config", path], &dir, Duration::from_secs(20))
                    .unwrap_or_else(|| panic!("{command} --config {path} hung"));
            assert_eq!(code, Some(2), "{command} {path}: {stderr}");
            assert!(stderr.contains(path), "{command}: {stderr}");
            assert!(stderr.contains("not a regular file"), "{command}: {stderr}");
        }
    }
}

/// Starts `simulate` with no queue flags in `dir`; its first stdout lines
/// (what it serves, where it listens).
fn simulate_in(dir: &std::path::Path) -> (Child, Lines, Vec<String>) {
    let mut child = Command::new(BIN)
        .args(["simulate", "--bind", "127.0.0.1:0"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = Lines::read(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    stdout.wait_for("the simulator listens", Duration::from_secs(30), |line| {
        seen.push(line.to_string());
        line.starts_with("Genesys simulator on http://")
            .then_some(())
    });
    (child, stdout, seen)
}

#[test]
fn simulate_without_queue_flags_serves_settings_yaml_or_five_generated_queues() {
    let dir = temp_dir("simulate-defaults");
    let (mut child, _, lines) = simulate_in(dir.path());
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("no ./settings.yaml: serving 5 generated queue(s)")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with("serving 5 queue(s)")),
        "{lines:?}"
    );
    std::fs::write(
        dir.join("settings.yaml"),
        "queues:\n  - id: 0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10\n  - id: 0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a11\n",
    )
    .unwrap();
    let (mut child, mut stdout, lines) = simulate_in(dir.path());
    assert!(
        lines
            .iter()
            .any(|l| l.contains("serving the 2 queue(s) of ./settings.yaml")),
        "{lines:?}"
    );
    // The settings' queues are the ones served (listed after the address).
    stdout.wait_for(
        "the settings' queue listed",
        Duration::from_secs(10),
        |line| {
            line.contains("0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a11")
                .then_some(())
        },
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn version_names_the_crate_version() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim(),
        format!("queuewatch {}", env!("CARGO_PKG_VERSION"))
    );
}

/// `--log-format json`: every stderr line is one JSON object with time,
/// level, target and message; event lines carry the event's fields.
#[test]
fn json_logs_are_one_object_per_line_with_the_event_fields() {
    let dir = temp_dir("json-logs");
    let file = dir.join("s.yaml");
    std::fs::write(
        &file,
        "http:\n  bind: null\npoll:\n  interval: 5s\nqueues:\n  - id: 0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10\n    name: support\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&file)
        .args(["--for", "3s", "--log-format", "json"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for line in &lines {
        for key in ["time", "level", "target", "message"] {
            assert!(line.get(key).is_some(), "{key} missing: {line}");
        }
    }
    let event = lines
        .iter()
        .find(|l| l["target"] == "queuewatch::event")
        .unwrap_or_else(|| panic!("no event line: {stderr}"));
    assert_eq!(event["queue_id"], "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10");
    assert_eq!(event["queue_name"], "support");
    assert_eq!(event["type"], "poll");
    assert!(event["id"].is_string(), "{event}");
    // Start-up stays readable: the HTTP server's chatter is filtered out.
    assert!(
        !lines.iter().any(|l| l["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("actix_server"))),
        "{stderr}"
    );
    // The environment variable does the same.
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&file)
        .env("QUEUEWATCH_LOG_FORMAT", "yaml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a bad format is a usage error");
}

#[test]
fn simulate_generate_is_bounded() {
    let dir = temp_dir("generate");
    for n in ["100001", "18446744073709551615"] {
        let (code, stderr) = finishes_within(
            &["simulate", "--bind", "127.0.0.1:0", "--generate", n],
            &dir,
            Duration::from_secs(20),
        )
        .unwrap_or_else(|| panic!("simulate --generate {n} did not stop"));
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("--generate"), "{stderr}");
        assert!(stderr.contains("100000"), "{stderr}");
    }
}

/// A client's malformed request gets its 400, and the log shows it at debug
/// level, not as an error of queuewatch.
#[cfg(unix)]
#[test]
fn malformed_client_requests_are_not_logged_as_errors() {
    let dir = temp_dir("malformed");
    let file = dir.join("s.yaml");
    std::fs::write(
        &file,
        "callbacks: []\nhttp:\n  bind: 127.0.0.1:0\nqueues:\n  - id: 0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10\n",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config", file.to_str().unwrap()])
        .current_dir(&dir)
        .env("RUST_LOG", "info,actix_http=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = Lines::read(child.stderr.take().unwrap());
    // The status API says when it listens, and where.
    let addr = stderr.wait_for(
        "the status API starts",
        Duration::from_secs(30),
        status_api_addr,
    );
    for garbage in [
        "GARBAGE\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n",
    ] {
        let (status, _) = raw_http(addr, garbage);
        assert_eq!(status, 400, "{garbage:?}");
    }
    let (status, _) = raw_http(
        addr,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200, "still serving");
    signal(&child, "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let log = stderr.all();
    let reports: Vec<&String> = log.iter().filter(|l| l.contains("stream error")).collect();
    assert!(
        !reports.is_empty(),
        "the bad requests are logged at debug: {log:#?}"
    );
    for line in reports {
        assert!(line.contains("DEBUG"), "{line}");
    }
    assert!(
        !log.iter().any(|l| l.contains(" ERROR ")),
        "no error lines: {log:#?}"
    );
}

#[test]
fn at_most_fifty_problems_are_printed() {
    let dir = temp_dir("many");
    let file = dir.join("many.yaml");
    let mut yaml = String::from("queues:\n");
    for i in 0..70 {
        yaml.push_str(&format!("  - id: bad-{i}\n"));
    }
    std::fs::write(&file, yaml).unwrap();
    let out = queuewatch(&["check", "--config", file.to_str().unwrap()], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("70 problem(s)"), "{stderr}");
    let listed = stderr.lines().filter(|l| l.contains("queues[")).count();
    assert_eq!(listed, 50, "{stderr}");
    assert!(stderr.contains("queues[49].id") && !stderr.contains("queues[50].id"));
    assert_eq!(
        stderr.lines().last().map(str::trim),
        Some("... and 20 more"),
        "{stderr}"
    );
}
