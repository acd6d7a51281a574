#![cfg(feature = "simulator")]
//! The supported NATS servers (docs/cluster.md): 2.10 and newer with
//! JetStream. A server that answers but is older, or has JetStream off, fails
//! the start with a clear error naming its version and the minimum (exit 1
//! for the binary), for cluster mode and the `kind: nats` callback alike; an
//! unreachable NATS does not fail the start.
//!
//! The servers here are fakes (no nats-server needed): a loopback listener
//! that sends the `INFO` a given version would send and answers `PING` with
//! `PONG`, which is all a client needs to connect.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use queuewatch::config::{CallbackSettings, ClusterSettings, Settings};
use queuewatch::QueueWatch;

const NEEDS: &str = "queuewatch needs 2.10 or newer with JetStream enabled";

/// A fake NATS server reporting `version` and `jetstream`; its URL. Its
/// threads end with the test process.
fn fake_nats(version: &str, jetstream: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let info = format!(
        "INFO {{\"server_id\":\"x\",\"server_name\":\"x\",\"version\":\"{version}\",\"proto\":1,\
         \"host\":\"127.0.0.1\",\"port\":{port},\"headers\":true,\"jetstream\":{jetstream},\
         \"max_payload\":1048576}}\r\n"
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let info = info.clone();
            std::thread::spawn(move || serve(stream, &info));
        }
    });
    format!("nats://127.0.0.1:{port}")
}

/// `INFO` first, then `PONG` for every `PING`; everything else (CONNECT, SUB,
/// PUB) is ignored.
fn serve(stream: TcpStream, info: &str) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    if out.write_all(info.as_bytes()).is_err() {
        return;
    }
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        if line.trim() == "PING" && out.write_all(b"PONG\r\n").is_err() {
            return;
        }
    }
}

fn queue_ids() -> Vec<String> {
    support::queue_ids(0x5e5e_0000, 3)
}

fn callback_settings(url: &str) -> Settings {
    let mut settings = Settings::for_queues(queue_ids());
    settings.http.bind = None;
    // No poll (so no event to flush at shutdown) within a test's lifetime.
    settings.poll.interval = Duration::from_secs(24 * 3600);
    settings.callbacks = vec![CallbackSettings::Nats {
        url: url.to_owned(),
        subject: "qwversion.events".into(),
        stream: "QWVERSION".into(),
    }];
    settings
}

fn cluster_settings(url: &str) -> Settings {
    let mut settings = Settings::for_queues(queue_ids());
    settings.http.bind = None;
    settings.callbacks = vec![];
    settings.cluster = Some(ClusterSettings {
        nats_url: url.to_owned(),
        instance_id: Some("version-test".into()),
        lease_ttl: Duration::from_secs(3),
    });
    settings
}

/// The runtime error `settings` fail to start with.
async fn start_error(settings: Settings) -> String {
    match QueueWatch::new(settings).start().await {
        Ok(handle) => {
            handle.shutdown().await;
            panic!("started against an unsupported server");
        }
        Err(error) if !error.is_config() => error.to_string(),
        Err(error) => panic!("a configuration error: {error}"),
    }
}

#[actix_rt::test]
async fn an_old_server_fails_the_nats_callback_at_start() {
    let url = fake_nats("2.9.10", true);
    let message = start_error(callback_settings(&url)).await;
    assert_eq!(
        message,
        format!(
            "callbacks[0] (nats:qwversion.events): NATS server 2.9.10 at {url} is not supported: \
             {NEEDS}"
        )
    );
}

#[actix_rt::test]
async fn an_old_server_fails_cluster_mode_at_start() {
    let url = fake_nats("2.9.10", true);
    let message = start_error(cluster_settings(&url)).await;
    assert_eq!(
        message,
        format!("cluster.nats_url: NATS server 2.9.10 at {url} is not supported: {NEEDS}")
    );
}

#[actix_rt::test]
async fn jetstream_off_fails_the_start() {
    let url = fake_nats("2.10.25", false);
    for settings in [callback_settings(&url), cluster_settings(&url)] {
        let message = start_error(settings).await;
        assert!(
            message.contains(&format!("NATS server 2.10.25 at {url} is not supported"))
                && message.contains("JetStream is disabled")
                && message.contains(NEEDS),
            "{message}"
        );
    }
}

#[actix_rt::test]
async fn a_version_that_cannot_be_read_fails_the_start() {
    let url = fake_nats("garbage", true);
    let message = start_error(cluster_settings(&url)).await;
    assert!(
        message.contains("\"garbage\"") && message.contains(NEEDS),
        "{message}"
    );
}

#[actix_rt::test]
async fn an_unreachable_nats_does_not_fail_the_start() {
    // Nobody listens there: queuewatch starts and keeps trying, as before.
    let url = format!("nats://127.0.0.1:{}", support::free_port());
    for settings in [callback_settings(&url), cluster_settings(&url)] {
        let started = Instant::now();
        let handle = QueueWatch::new(settings)
            .start()
            .await
            .expect("an unreachable NATS does not fail the start");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "started in {:?}",
            started.elapsed()
        );
        handle.shutdown().await;
    }
}

#[actix_rt::test]
async fn a_supported_server_starts() {
    // (The `nats` callback against real servers: tests/nats_sink.rs. This
    // fake acknowledges nothing, so a callback's shutdown would wait out its
    // flush grace.)
    let url = fake_nats("2.10.0", true);
    let handle = QueueWatch::new(cluster_settings(&url))
        .start()
        .await
        .expect("2.10 with JetStream starts");
    handle.shutdown().await;
}

#[test]
fn the_binary_exits_1_naming_the_version() {
    let dir = support::TempDir::new("nats-version");
    // The fake server's threads need no runtime: start it here.
    let url = fake_nats("2.9.10", true);
    let mut yaml = format!(
        "callbacks: []\nhttp:\n  bind: null\ncluster:\n  nats_url: {url}\n  lease_ttl: 3s\nqueues:\n"
    );
    for id in queue_ids() {
        yaml.push_str(&format!("  - id: {id}\n"));
    }
    let config = dir.0.join("settings.yaml");
    std::fs::write(&config, yaml).unwrap();
    let started = Instant::now();
    // `--for` bounds a run that would not stop by itself (the old behaviour).
    let output = std::process::Command::new(support::bin::BIN)
        .args(["run", "--for", "20s", "--config"])
        .arg(&config)
        .env("RUST_LOG", "error")
        .output()
        .expect("queuewatch runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "NATS server 2.9.10 at {url} is not supported: {NEEDS}"
        )),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "exited at start, not at --for: {:?}",
        started.elapsed()
    );
}
