//! Cluster mode (`cluster:`): instances share the queue set through leases
//! in JetStream key-value buckets (docs/cluster.md).
//!
//! - [`plan`]: the ownership decision, pure (who should release and take what).
//! - [`kv`]: the two buckets (heartbeats and leases) and their operations.
//! - [`manager`]: the task that carries the plan out through the instance's
//!   poller set ([`Pollers`]).
//!
//! A lease is valid while its owner is live, so leases need no renewal:
//! only heartbeats are written periodically. An unsupported server (below
//! 2.10, or JetStream off) fails the start when it answers then, and is
//! fatal for the process when it is found later (once connected); so are
//! JetStream requests that keep failing with errors (not timeouts) for
//! [`crate::nats::JETSTREAM_FATAL_AFTER`] while the connection is up.

mod kv;
mod manager;
mod plan;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use actix::Recipient;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

pub(crate) use manager::Pollers;
use manager::{Command, Manager};

use crate::config::ClusterSettings;
use crate::nats::NatsError;
use crate::supervisor::Fatal;
use crate::telemetry::{LeaseChange, Telemetry};

/// Why cluster mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The server answered but cannot be used (version, JetStream).
    #[error("cluster.nats_url: {0}")]
    Unsupported(NatsError),
    /// The URL cannot be used at all.
    #[error("cluster.nats_url: {0}")]
    BadUrl(NatsError),
}

/// This instance's id: the setting, or `<hostname>-<pid>`.
pub(crate) fn instance_id(settings: &ClusterSettings) -> String {
    if let Some(id) = &settings.instance_id {
        return id.clone();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "queuewatch".into());
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let host = if host.is_empty() {
        "queuewatch".into()
    } else {
        host
    };
    format!("{host}-{}", std::process::id())
}

/// An epoch shared by every instance (a wall-clock grid), so that a queue
/// handed over keeps its tick times: the new owner polls one interval after
/// the old one did, not sooner. `None` when the intervals have no common
/// period of a day or less (then each instance keeps its own epoch).
pub(crate) fn shared_epoch(intervals: impl IntoIterator<Item = Duration>) -> Option<Instant> {
    fn gcd(a: u128, b: u128) -> u128 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    const DAY_MS: u128 = 86_400_000;
    let mut period: u128 = 1;
    for interval in intervals {
        let ms = interval.as_millis().max(1);
        period = period / gcd(period, ms) * ms;
        if period > DAY_MS {
            return None;
        }
    }
    let since_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis();
    let offset = Duration::from_millis(u64::try_from(since_unix % period).ok()?);
    Instant::now().checked_sub(offset)
}

/// The running lease manager, as the instance holds it. Dropping it ends
/// the manager without releasing anything (as a crash would).
pub(crate) struct Cluster {
    commands: mpsc::Sender<Command>,
}

impl Cluster {
    /// Starts the lease manager for `pollers`. Connects in the background:
    /// an unreachable NATS delays ownership, it does not fail the start; a
    /// server that answers but is not supported does. `fatal` receives what
    /// is fatal later.
    pub(crate) async fn start(
        pollers: Box<dyn Pollers>,
        telemetry: Telemetry,
        settings: &ClusterSettings,
        tls: &Arc<rustls::ClientConfig>,
        fatal: Recipient<Fatal>,
    ) -> Result<Cluster, ClusterError> {
        let me = instance_id(settings);
        crate::nats::check_at_start(&settings.nats_url, tls)
            .await
            .map_err(ClusterError::Unsupported)?;
        let client = crate::nats::connect(&settings.nats_url, &format!("cluster {me}"), tls)
            .await
            .map_err(ClusterError::BadUrl)?;
        let (commands, receiver) = mpsc::channel(4);
        let ttl = settings.lease_ttl;
        log::info!("cluster: instance {me}, lease_ttl {ttl:?}");
        telemetry.set_cluster_owned(0);
        for &change in LeaseChange::ALL {
            telemetry.lease_changed(change, 0);
        }
        let manager = Manager {
            pollers,
            telemetry,
            me,
            ttl,
            client,
            url: settings.nats_url.clone(),
            fatal,
            fatal_sent: false,
            jetstream: crate::nats::Persistence::new(crate::nats::JETSTREAM_FATAL_AFTER),
            buckets: None,
            watch: None,
            watch_since: None,
            view: HashMap::new(),
            live: BTreeSet::new(),
            owned: HashMap::new(),
            last_heartbeat: None,
            started: Instant::now(),
            frozen: false,
            warnings: crate::throttle::Throttled::default(),
        };
        actix_rt::spawn(manager.run(receiver));
        Ok(Cluster { commands })
    }

    /// Stops taking and releasing queues (the start of a clean shutdown).
    pub(crate) async fn freeze(&self) {
        self.command(Command::Freeze).await;
    }

    /// Releases every lease at once (after the pollers drained).
    pub(crate) async fn release(&self) {
        self.command(Command::Release).await;
    }

    async fn command(&self, command: fn(oneshot::Sender<()>) -> Command) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(command(tx)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_instance_ids_are_valid() {
        let id = instance_id(&ClusterSettings::default());
        assert!(id.ends_with(&format!("-{}", std::process::id())), "{id}");
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')));
    }

    #[test]
    fn the_shared_epoch_lies_on_the_wall_clock_grid() {
        let epoch = shared_epoch([Duration::from_secs(5), Duration::from_secs(15)]).unwrap();
        let since = Instant::now().duration_since(epoch);
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let drift = (unix.as_millis() % 15_000) as i128 - since.as_millis() as i128;
        assert!(drift.abs() <= 5 || drift.abs() >= 14_995, "{drift}");
        assert!(
            shared_epoch([Duration::from_millis(86_400_001), Duration::from_secs(7)]).is_none()
        );
    }

    fn settings(url: &str) -> crate::config::Settings {
        let mut settings =
            crate::config::Settings::for_queues(["c1a50000-0000-4000-8000-000000000001"]);
        settings.http.bind = None;
        settings.cluster = Some(ClusterSettings {
            nats_url: url.into(),
            instance_id: Some("unit".into()),
            lease_ttl: Duration::from_secs(3),
        });
        settings
    }

    #[actix_rt::test]
    async fn jetstream_errors_that_persist_are_fatal_for_the_process() {
        // A 2.10 server with JetStream on whose account may not use it: every
        // request is answered with an error, while the connection is up.
        let url =
            crate::nats::fake::start("2.10.0", true, crate::nats::fake::JETSTREAM_NOT_ENABLED);
        let started = std::time::Instant::now();
        let handle = crate::QueueWatch::new(settings(&url))
            .start()
            .await
            .expect("a supported server starts");
        let reason = tokio::time::timeout(Duration::from_secs(15), handle.fatal())
            .await
            .expect("fatal within 15 s");
        let took = started.elapsed();
        handle.shutdown().await;
        assert!(took >= crate::nats::JETSTREAM_FATAL_AFTER, "{took:?}");
        assert!(
            reason.contains("jetstream not enabled for account") && reason.contains("2.10.0"),
            "{reason}"
        );
        let metrics = handle.telemetry().encode();
        assert!(
            metrics.contains("queuewatch_cluster_owned_queues 0\n"),
            "{metrics}"
        );
    }
}
