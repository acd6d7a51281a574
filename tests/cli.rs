//! The binary as an operator runs it: exit codes, `check`, `simulate`
//! answering hand-written HTTP, and a clean SIGTERM stop of `run`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_queuewatch");

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("queuewatch-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
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
        &temp_dir("check"),
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
        let out = queuewatch(&[command, "--config", file.to_str().unwrap()], &dir);
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
    let out = queuewatch(&["check", "--config", "missing.yaml"], &dir);
    assert_eq!(out.status.code(), Some(2));
    let out = queuewatch(&["frobnicate"], &dir);
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
    let out = queuewatch(&["run", "--config", file.to_str().unwrap()], &dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("genesys.client_id_env") && stderr.contains("GENESYS_CLIENT_ID"),
        "{stderr}"
    );
}

/// Starts `queuewatch simulate` on a free port and returns it with its address.
fn simulate(extra: &[&str]) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args(["simulate", "--bind", &bind])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first stdout line says it listens.
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("simulator"), "{line}");
    (child, bind)
}

/// One HTTP/1.1 request written by hand; returns (status, body).
fn raw_http(addr: &str, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

#[test]
fn simulate_answers_hand_written_requests() {
    let queue = "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10";
    let (mut child, addr) = simulate(&["--queue", queue]);
    // base64("simulated-client:simulated-secret")
    let basic = "c2ltdWxhdGVkLWNsaWVudDpzaW11bGF0ZWQtc2VjcmV0";
    let form = "grant_type=client_credentials";
    let (status, body) = raw_http(
        &addr,
        &format!(
            "POST /oauth/token HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {basic}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
    );
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let access = token["access_token"].as_str().unwrap();
    let (status, body) = raw_http(
        &addr,
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
    for i in 0..20 {
        yaml.push_str(&format!("  - id: {i:08x}-0000-4000-8000-000000000000\n"));
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
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&audit).map_or(0, |t| t.lines().count()) < 20 {
        assert!(Instant::now() < deadline, "no audit lines");
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
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
