//! The key-value adapter: the two JetStream buckets of cluster mode and the
//! few operations the manager needs, each bounded by a timeout and answering
//! with a typed [`KvError`] (an outage, or an answer that is an error).
//!
//! - `queuewatch_instances`: one key per live instance (its id), put every
//!   period; the bucket's `max_age` (half of `lease_ttl`) removes the key of
//!   an instance that went silent.
//! - `queuewatch_leases`: one key per queue whose value is the owning
//!   instance. Taking a lease is a compare-and-set (create if absent,
//!   update at the seen revision), so two instances never both win.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;

use super::plan::Lease;
use crate::QueueId;

/// The bucket of queue leases.
pub(crate) const LEASES_BUCKET: &str = "queuewatch_leases";
/// The bucket of instance heartbeats.
pub(crate) const INSTANCES_BUCKET: &str = "queuewatch_instances";

/// Why a key-value operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KvError {
    /// No answer in time: an outage, waited out.
    #[error("NATS does not answer")]
    Timeout,
    /// JetStream answered with an error.
    #[error("{0}")]
    Failed(String),
}

impl KvError {
    fn of(error: impl std::fmt::Display) -> KvError {
        let text = error.to_string();
        if crate::nats::is_timeout(&text) {
            KvError::Timeout
        } else {
            KvError::Failed(text)
        }
    }
}

/// A lease write that lost: the lease as read now, when it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Taken(pub Option<Lease>);

/// The two buckets.
#[derive(Clone)]
pub(crate) struct Buckets {
    leases: kv::Store,
    instances: kv::Store,
    timeout: Duration,
}

/// Runs `work` within `timeout`.
async fn bounded<T>(
    timeout: Duration,
    work: impl Future<Output = Result<T, KvError>>,
) -> Result<T, KvError> {
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or(Err(KvError::Timeout))
}

impl Buckets {
    /// Opens (creating if missing) both buckets; heartbeats vanish
    /// `heartbeat_max_age` after their last write.
    pub(crate) async fn open(
        client: &async_nats::Client,
        heartbeat_max_age: Duration,
        timeout: Duration,
    ) -> Result<Buckets, KvError> {
        let js = jetstream::new(client.clone());
        bounded(timeout, async {
            let leases = bucket(&js, LEASES_BUCKET, Duration::ZERO).await?;
            let instances = bucket(&js, INSTANCES_BUCKET, heartbeat_max_age).await?;
            Ok(Buckets {
                leases,
                instances,
                timeout,
            })
        })
        .await
    }

    /// Writes the heartbeat of `me`, within `timeout`.
    pub(crate) async fn heartbeat(&self, me: &str, timeout: Duration) -> Result<(), KvError> {
        bounded(timeout, async {
            self.instances
                .put(me, bytes_of("live"))
                .await
                .map(|_| ())
                .map_err(KvError::of)
        })
        .await
    }

    /// Deletes the heartbeat of `me` (a clean stop).
    pub(crate) async fn forget(&self, me: &str) {
        let _ = bounded(self.timeout, async {
            self.instances.delete(me).await.map_err(KvError::of)
        })
        .await;
    }

    /// The ids of the live instances (the keys of the heartbeat bucket).
    pub(crate) async fn live(&self) -> Result<BTreeSet<String>, KvError> {
        bounded(self.timeout, async {
            let mut keys = self.instances.keys().await.map_err(KvError::of)?;
            let mut live = BTreeSet::new();
            while let Some(key) = keys.next().await {
                live.insert(key.map_err(KvError::of)?);
            }
            Ok(live)
        })
        .await
    }

    /// Whether `owner` is known to be dead (no heartbeat); `None` when that
    /// cannot be told now.
    pub(crate) async fn is_dead(&self, owner: &str) -> Option<bool> {
        let read = bounded(self.timeout, async {
            self.instances.entry(owner).await.map_err(KvError::of)
        });
        match read.await {
            Ok(None) => Some(true),
            Ok(Some(entry)) => Some(entry.operation != kv::Operation::Put),
            Err(_) => None,
        }
    }

    /// A watch of every change of the lease bucket.
    pub(crate) async fn watch(&self) -> Result<kv::Watch, KvError> {
        bounded(self.timeout, async {
            self.leases.watch_all().await.map_err(KvError::of)
        })
        .await
    }

    /// Takes the lease of `queue` for `me`: a create when no lease is known,
    /// else an update at the `known` revision. The revision written, or the
    /// lease as read now when a create lost to one the watch had not shown.
    pub(crate) async fn take(
        &self,
        me: &str,
        queue: &str,
        known: Option<u64>,
    ) -> Result<u64, Taken> {
        let value = bytes_of(me);
        let write = async {
            match known {
                Some(revision) => self
                    .leases
                    .update(queue, value, revision)
                    .await
                    .map_err(|e| {
                        log::debug!("cluster: cannot take queue {queue}: {e}");
                        Taken(None)
                    }),
                None => match self.leases.create(queue, value).await {
                    Ok(revision) => Ok(revision),
                    Err(e) => {
                        log::debug!("cluster: cannot take queue {queue}: {e}");
                        match self.leases.entry(queue).await {
                            Ok(Some(entry)) if entry.operation == kv::Operation::Put => {
                                Err(Taken(Some(lease_of(&entry))))
                            }
                            _ => Err(Taken(None)),
                        }
                    }
                },
            }
        };
        tokio::time::timeout(self.timeout, write)
            .await
            .unwrap_or(Err(Taken(None)))
    }

    /// Deletes the lease of `queue` if it is still at `revision`.
    pub(crate) async fn release(&self, queue: &str, revision: u64) {
        let delete = self.leases.delete_expect_revision(queue, Some(revision));
        let _ = tokio::time::timeout(self.timeout, delete).await;
    }
}

/// One change of the lease bucket.
pub(crate) enum Change {
    /// `queue` is leased as `lease`.
    Leased(QueueId, Lease),
    /// `queue`'s lease is gone.
    Freed(QueueId),
}

/// The next change of the lease bucket; pending forever without a watch,
/// `None` when the watch broke.
pub(crate) async fn next_change(watch: &mut Option<kv::Watch>) -> Option<Change> {
    match watch {
        Some(watch) => match watch.next().await {
            Some(Ok(entry)) => Some(match entry.operation {
                kv::Operation::Put => {
                    let lease = lease_of(&entry);
                    Change::Leased(entry.key.into(), lease)
                }
                kv::Operation::Delete | kv::Operation::Purge => Change::Freed(entry.key.into()),
            }),
            Some(Err(e)) => {
                log::debug!("cluster: the lease watch failed: {e}");
                None
            }
            None => {
                log::debug!("cluster: the lease watch ended");
                None
            }
        },
        None => std::future::pending().await,
    }
}

fn lease_of(entry: &kv::Entry) -> Lease {
    Lease {
        owner: String::from_utf8_lossy(&entry.value).into_owned(),
        revision: entry.revision,
    }
}

/// Gets a key-value bucket, creating it if missing.
async fn bucket(
    js: &jetstream::Context,
    name: &str,
    max_age: Duration,
) -> Result<kv::Store, KvError> {
    match js.get_key_value(name).await {
        Ok(store) => Ok(store),
        Err(_) => js
            .create_key_value(kv::Config {
                bucket: name.to_owned(),
                history: 1,
                max_age,
                ..kv::Config::default()
            })
            .await
            .map_err(KvError::of),
    }
}

fn bytes_of(text: &str) -> actix_web::web::Bytes {
    actix_web::web::Bytes::copy_from_slice(text.as_bytes())
}
