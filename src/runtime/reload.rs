//! Changing the queue set of a running instance: add, remove, reload.
//! Unchanged queues keep polling untouched; changed ones restart (their
//! tracking matrices stay); settings outside the queue set need a restart.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::handle::Handle;
use super::poller_specs;
use crate::actors::poller::PollerSpec;
use crate::config::{ConfigError, QueueSettings, Settings};
use crate::QueueId;

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Queues started.
    pub added: Vec<QueueId>,
    /// Queues stopped.
    pub removed: Vec<QueueId>,
    /// Queues restarted with new settings (interval, name, thresholds, source).
    pub restarted: Vec<QueueId>,
    /// Queues left running as they were.
    pub unchanged: usize,
    /// Settings sections that changed but only take effect after a process restart.
    pub needs_restart: Vec<&'static str>,
}

impl Handle {
    /// Starts polling one more queue. The queue is validated like a
    /// settings entry (UUID, unique id, interval, thresholds).
    pub async fn add_queue(&self, queue: QueueSettings) -> Result<(), ConfigError> {
        let mut settings = self.settings();
        settings.queues.push(queue);
        self.reload(settings).await.map(|_| ())
    }

    /// Stops polling a queue and forgets its matrix; `false` if it was
    /// unknown or is the last one (settings need at least one queue).
    pub async fn remove_queue(&self, queue_id: &str) -> bool {
        let mut settings = self.settings();
        let before = settings.queues.len();
        settings.queues.retain(|q| q.id != queue_id);
        if settings.queues.len() == before || settings.queues.is_empty() {
            return false;
        }
        self.reload(settings).await.is_ok()
    }

    /// Reads, validates and applies a settings file (what SIGHUP does).
    ///
    /// The file is read and parsed on a blocking thread, so a slow disk or a
    /// huge file never stalls the actors of this event loop.
    pub async fn reload_file(&self, path: &std::path::Path) -> Result<ReloadSummary, ConfigError> {
        let owned = path.to_path_buf();
        let loaded = off_loop(move || Settings::load(&owned))
            .await
            .unwrap_or_else(|| {
                Err(ConfigError::Io {
                    path: path.to_path_buf(),
                    source: std::io::Error::other("the settings reader stopped unexpectedly"),
                })
            })?;
        self.reload(loaded).await
    }

    /// Applies new settings: added queues start, removed ones stop, changed
    /// ones restart, the others keep polling untouched. Invalid settings are
    /// refused as a whole and nothing changes.
    pub async fn reload(&self, mut settings: Settings) -> Result<ReloadSummary, ConfigError> {
        settings.validate()?;
        let old = self.settings();
        let mut summary = ReloadSummary {
            needs_restart: restart_only_changes(&old, &settings),
            ..ReloadSummary::default()
        };
        // The push source's channel pool starts with the process: a switch
        // to or from it waits for a restart (the queues keep their source).
        let push = |s: &Settings| s.poll.source == crate::config::Source::Notifications;
        if push(&old) != push(&settings) {
            settings.poll.source = old.poll.source;
        }
        let desired: HashMap<QueueId, PollerSpec> = poller_specs(&settings)
            .into_iter()
            .map(|spec| (spec.queue_id.clone(), spec))
            .collect();
        // In cluster mode the lease manager starts owned queues; it reads
        // the new settings itself.
        let clustered = self
            .inner
            .cluster
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        let pollers = &self.inner.pollers;
        let current: HashMap<QueueId, Arc<PollerSpec>> = pollers.specs();
        let ids: BTreeSet<&QueueId> = desired.keys().chain(current.keys()).collect();
        for id in ids {
            match (current.get(id), desired.get(id)) {
                (Some(_), None) => {
                    pollers.stop(id);
                    summary.removed.push(id.clone());
                }
                (None, Some(spec)) => {
                    // In cluster mode it starts once this instance owns it.
                    if !clustered {
                        pollers.introduce(spec.clone());
                    }
                    summary.added.push(id.clone());
                }
                (Some(old), Some(new)) if **old != *new => {
                    pollers.start(new.clone());
                    summary.restarted.push(id.clone());
                }
                _ => summary.unchanged += 1,
            }
        }
        *self
            .inner
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = settings;
        // The demand is what the pollers running now need.
        self.rebudget();
        for section in &summary.needs_restart {
            log::warn!("reload: changes to `{section}` take effect after a restart");
        }
        log::info!(
            "reload: {} added, {} removed, {} restarted, {} unchanged",
            summary.added.len(),
            summary.removed.len(),
            summary.restarted.len(),
            summary.unchanged
        );
        Ok(summary)
    }
}

/// Runs `work` on tokio's blocking pool, away from the actors' event loop;
/// `None` if it panicked or the runtime is shutting down.
async fn off_loop<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(work).await.ok()
}

/// Sections whose changes a running instance cannot apply.
fn restart_only_changes(old: &Settings, new: &Settings) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if old.genesys != new.genesys {
        changed.push("genesys");
    }
    if old.callbacks != new.callbacks {
        changed.push("callbacks");
    }
    if old.http != new.http {
        changed.push("http");
    }
    if old.cluster != new.cluster {
        changed.push("cluster");
    }
    if old.poll.history_size != new.poll.history_size
        || old.poll.max_retries != new.poll.max_retries
        || old.poll.backoff_base != new.poll.backoff_base
        || old.poll.backoff_max != new.poll.backoff_max
    {
        changed.push("poll (retries, backoff, history_size)");
    }
    let push = |s: &Settings| s.poll.source == crate::config::Source::Notifications;
    if push(old) != push(new)
        || (push(old)
            && (old.poll.reconcile_interval != new.poll.reconcile_interval
                || old.poll.wait_time != new.poll.wait_time))
    {
        changed.push("poll (source notifications, reconcile_interval, wait_time)");
    }
    changed
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::off_loop;

    /// The blocking work waits for a task of this event loop: it only gets
    /// the go-ahead if the loop keeps running while the work blocks.
    #[actix_rt::test]
    async fn blocking_work_leaves_the_event_loop_free() {
        let (go, wait) = mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
        let work = off_loop(move || {
            let _ = started_tx.send(());
            // Bound only for the failure case (work run on the loop itself).
            wait.recv_timeout(Duration::from_secs(10)).is_ok()
        });
        actix_rt::spawn(async move {
            let _ = started.await;
            let _ = go.send(());
        });
        assert_eq!(work.await, Some(true), "the event loop was blocked");
    }

    #[actix_rt::test]
    async fn settings_file_errors_come_back() {
        let missing = std::path::PathBuf::from("/nonexistent/queuewatch/settings.yaml");
        let result = off_loop(move || crate::config::Settings::load(&missing)).await;
        assert!(matches!(
            result,
            Some(Err(crate::config::ConfigError::Io { .. }))
        ));
    }
}
