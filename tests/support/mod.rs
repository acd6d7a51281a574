//! What the integration tests share: loopback ports, temp dirs, queue ids,
//! waits with a deadline ([`wait`]), the spawned binary ([`bin`]), an event
//! collector ([`events`]), a blocking HTTP client for child processes
//! ([`http`]), a live instance serving every `/metrics` family ([`live`]),
//! the OpenMetrics parser ([`metrics`]), NATS servers ([`nats`]), the
//! metric names of PromQL expressions ([`promql`]), a simulator that stops
//! on drop ([`sim`]) and the webhook receiver ([`webhook`]).
//!
//! Each test file takes it with `mod support;` and uses what it needs.

#![allow(dead_code)]

pub mod bin;
pub mod events;
pub mod http;
pub mod live;
pub mod metrics;
pub mod nats;
pub mod promql;
pub mod sim;
pub mod wait;
pub mod webhook;

use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// A loopback port nobody listens on (bound, then released): for refused
/// connections, or for a server that must keep one port across restarts.
/// A server that can bind port 0 and tell its address should do that
/// instead (`Handle::http_addr`, `Simulator::addr`, the binary's log).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A fresh, empty directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let path =
            std::env::temp_dir().join(format!("queuewatch-{label}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Queue `i` of a test file's set: `TTTTTTTT-0000-4000-8000-IIIIIIIIIIII`
/// (a UUID v4 shape; `tag` keeps the files' ids apart).
pub fn queue_id(tag: u32, i: usize) -> String {
    format!("{tag:08x}-0000-4000-8000-{i:012x}")
}

/// Queues `0..n` of the set `tag` (see [`queue_id`]).
pub fn queue_ids(tag: u32, n: usize) -> Vec<String> {
    (0..n).map(|i| queue_id(tag, i)).collect()
}
