//! [`Handle`]: a cheap, cloneable view of a running instance.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::join_all;
use tokio::sync::watch;

use super::pollers::PollerSet;
use crate::actors::metrics::{
    GetQueue, ListQueues, MetricsActor, QueueDetail, QueuePage, QueueSummary,
};
use crate::actors::poller::{Drain, DrainWithFarewell, Farewell, PollerActor};
use crate::actors::token::TokenHeld;
use crate::callbacks::fanout::{CallbackActor, FlushAll};
use crate::config::{Budget, Settings};
use crate::supervisor::{Fatal, ShutdownSupervisor, Slot, Supervisor};
use crate::telemetry::{BudgetApplied, Telemetry};
use crate::web::Readiness;

/// The in-process simulator of `environment: simulated`; nothing in a
/// build without it.
#[cfg(feature = "simulator")]
pub(crate) type Simulated = crate::simulator::Simulator;
#[cfg(not(feature = "simulator"))]
pub(crate) type Simulated = std::convert::Infallible;

/// How long flushing callbacks may take at shutdown.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Inner {
    pub tokens: Slot<Addr<crate::actors::token::TokenActor>>,
    pub events: tokio::sync::broadcast::Sender<Arc<str>>,
    pub http_token: Option<crate::secret::Secret>,
    /// The status API's server and the address it listens on.
    pub http_server: Mutex<Option<(actix_web::dev::ServerHandle, std::net::SocketAddr)>>,
    pub supervisor: Addr<Supervisor>,
    pub metrics: Slot<Addr<MetricsActor>>,
    pub callbacks: Slot<Addr<CallbackActor>>,
    pub pollers: PollerSet,
    pub telemetry: Telemetry,
    #[cfg_attr(not(feature = "simulator"), allow(dead_code))]
    pub simulator: Option<Simulated>,
    pub fatal: watch::Receiver<Option<Fatal>>,
    pub cancel: watch::Sender<bool>,
    pub request_timeout: Duration,
    pub settings: Mutex<Settings>,
    /// The lease manager, in cluster mode.
    pub cluster: Mutex<Option<crate::cluster::Cluster>>,
}

/// A running instance. Clones are cheap and all refer to the same instance.
#[derive(Clone)]
pub struct Handle {
    pub(crate) inner: Arc<Inner>,
}

impl Handle {
    /// Sets the rate demand to what the pollers running now need (in
    /// cluster mode: the queues this instance owns), and logs the interval
    /// stretch when it changed. Call after every change of the poller set.
    pub(crate) fn rebudget(&self) {
        let running = self.inner.pollers.intervals();
        let (source, per_minute, intervals) = {
            let settings = self
                .inner
                .settings
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let intervals: Vec<_> = (running.into_iter())
                .map(|interval| settings.budget_interval(interval))
                .collect();
            let per_minute = settings.genesys.rate_limit_per_minute;
            (settings.poll.source, per_minute, intervals)
        };
        let budget = Budget::of(source, intervals, per_minute);
        let limiter = &self.inner.pollers.shared().limiter;
        limiter.set_demand(budget.requests_per_minute);
        let event = BudgetApplied {
            budget: &budget,
            limiter,
        };
        self.inner.telemetry.emit(event);
    }

    /// Every queue's current state, sorted by id.
    pub async fn queues(&self) -> Vec<QueueSummary> {
        self.queue_page(ListQueues::default()).await.queues
    }

    /// One page of the queues, sorted by id: those whose id sorts after
    /// `after`, at most `limit`; [`QueuePage::next_after`] says where the
    /// next page starts, if there is one.
    pub async fn queues_after(&self, after: Option<&str>, limit: usize) -> QueuePage {
        self.queue_page(ListQueues {
            after: after.map(str::to_owned),
            limit: Some(limit),
        })
        .await
    }

    async fn queue_page(&self, list: ListQueues) -> QueuePage {
        let mut page = match self.inner.metrics.get() {
            Some(metrics) => metrics.send(list).await.unwrap_or_default(),
            None => QueuePage::default(),
        };
        if let Some(store) = &self.inner.pollers.shared().push {
            for queue in &mut page.queues {
                queue.feed = store.feed(&queue.queue_id);
            }
        }
        page
    }

    /// One queue with its tracking matrix, if it is known.
    pub async fn queue(&self, queue_id: &str) -> Option<QueueDetail> {
        self.queue_with_points(queue_id, None).await
    }

    /// One queue with only the newest `points` snapshots of its history
    /// (`None`: all of it), if it is known.
    pub async fn queue_with_points(
        &self,
        queue_id: &str,
        points: Option<usize>,
    ) -> Option<QueueDetail> {
        let metrics = self.inner.metrics.get()?;
        let get = GetQueue {
            queue_id: queue_id.into(),
            points,
        };
        let mut detail = metrics.send(get).await.ok().flatten()?;
        if let Some(store) = &self.inner.pollers.shared().push {
            detail.summary.feed = store.feed(queue_id);
        }
        Some(detail)
    }

    /// Whether the instance is ready: a token is held and a poll succeeded
    /// within the last three intervals of the queue set (the longest
    /// interval of the queues polled now, stretched as the rate budget
    /// requires; see [`Readiness`]).
    pub async fn readiness(&self) -> Readiness {
        let token_held = match self.inner.tokens.get() {
            Some(tokens) => tokens.send(TokenHeld).await.unwrap_or(false),
            None => false,
        };
        let telemetry = &self.inner.telemetry;
        Readiness {
            token_held,
            successful_polls: telemetry.polls_succeeded(),
            since_last_success: telemetry.last_poll_success().map(|at| at.elapsed()),
            window: self.readiness_window(),
        }
    }

    /// Three times the longest interval in force; `None` without pollers.
    fn readiness_window(&self) -> Option<Duration> {
        let longest = self.inner.pollers.intervals().into_iter().max()?;
        let stretch = self.inner.pollers.shared().limiter.stretch();
        let secs = 3.0 * longest.as_secs_f64() * stretch;
        Some(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
    }

    /// Every event from now on, as its JSON text (bounded: a receiver that
    /// falls more than 1,024 events behind gets `Lagged`).
    pub fn event_stream(&self) -> tokio::sync::broadcast::Receiver<Arc<str>> {
        self.inner.events.subscribe()
    }

    pub(crate) fn http_token(&self) -> Option<crate::secret::Secret> {
        self.inner.http_token.clone()
    }

    /// Where the status API listens (with `http.bind` on port 0, the port
    /// the system chose); `None` when it is disabled.
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner
            .http_server
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(_, addr)| *addr)
    }

    /// The instance's metrics.
    pub fn telemetry(&self) -> &Telemetry {
        &self.inner.telemetry
    }

    /// The in-process simulator, when `environment: simulated`.
    #[cfg(feature = "simulator")]
    pub fn simulator(&self) -> Option<&Simulated> {
        self.inner.simulator.as_ref()
    }

    /// The settings in force.
    pub fn settings(&self) -> Settings {
        self.inner
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Resolves when something fatal happened (credentials rejected, the
    /// supervisor gave up), with the reason. Never resolves otherwise.
    pub async fn fatal(&self) -> String {
        let mut fatal = self.inner.fatal.clone();
        let reason = match fatal.wait_for(Option::is_some).await {
            Ok(fatal) => fatal.as_ref().map(|f| f.reason.clone()),
            Err(_) => None,
        };
        match reason {
            Some(reason) => reason,
            None => std::future::pending().await,
        }
    }

    /// Stops cleanly: no new cycles; a cycle only waiting for the rate
    /// budget ends at once, one with a request in flight gets up to
    /// `request_timeout` to finish, then ends with a `cancelled` event;
    /// then every callback is flushed.
    ///
    /// After something fatal ([`Handle::fatal`]), every queue's last event
    /// says why: `auth_failed` when the credentials were rejected,
    /// `cancelled` when the supervisor gave up; one per queue, delivered
    /// before the callbacks are flushed.
    pub async fn shutdown(&self) {
        // Cluster mode: take no more queues; release the leases once drained.
        let cluster = self
            .inner
            .cluster
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(cluster) = &cluster {
            cluster.freeze().await;
        }
        let _ = self.inner.supervisor.send(ShutdownSupervisor).await;
        // Cycles only waiting for a budget slot (or to retry) end at once
        // with `cancelled`; only requests on the wire get the grace below.
        self.inner.pollers.shared().limiter.close();
        let pollers: Vec<Addr<PollerActor>> = self.inner.pollers.addrs();
        let farewell = self.inner.fatal.borrow().clone().map(|fatal| Farewell {
            kind: fatal.kind,
            detail: fatal.reason,
        });
        let mut drained = Box::pin(join_all(pollers.iter().map(|p| {
            let p = p.clone();
            let farewell = farewell.clone();
            async move {
                match farewell {
                    Some(farewell) => p.send(DrainWithFarewell(farewell)).await,
                    None => p.send(Drain).await,
                }
            }
        })));
        if tokio::time::timeout(self.inner.request_timeout, &mut drained)
            .await
            .is_err()
        {
            log::info!("shutdown: cancelling the cycles still running");
            self.inner.cancel.send_replace(true);
            let _ = tokio::time::timeout(Duration::from_secs(5), drained).await;
        }
        if let Some(cluster) = cluster {
            cluster.release().await;
        }
        if let Some(callbacks) = self.inner.callbacks.get() {
            if tokio::time::timeout(FLUSH_TIMEOUT, callbacks.send(FlushAll))
                .await
                .is_err()
            {
                log::warn!("shutdown: callbacks did not flush within {FLUSH_TIMEOUT:?}");
            }
        }
        let server = self
            .inner
            .http_server
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((server, _)) = server {
            server.stop(true).await;
        }
        #[cfg(feature = "simulator")]
        if let Some(simulator) = &self.inner.simulator {
            simulator.stop().await;
        }
    }
}

/// Receives [`Fatal`] and publishes it to [`Handle::fatal`].
pub(crate) struct Sentinel {
    fatal: watch::Sender<Option<Fatal>>,
}

impl Sentinel {
    pub(crate) fn new(fatal: watch::Sender<Option<Fatal>>) -> Self {
        Sentinel { fatal }
    }
}

impl Actor for Sentinel {
    type Context = Context<Self>;
}

impl Handler<Fatal> for Sentinel {
    type Result = ();

    fn handle(&mut self, msg: Fatal, _: &mut Context<Self>) {
        self.fatal.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(msg);
                true
            } else {
                false
            }
        });
    }
}

/// The status API reads the instance through its handle.
impl crate::web::Status for Handle {
    fn http_token(&self) -> Option<crate::secret::Secret> {
        Handle::http_token(self)
    }

    fn http_bind(&self) -> Option<std::net::SocketAddr> {
        self.settings().http.bind
    }

    async fn readiness(&self) -> Readiness {
        Handle::readiness(self).await
    }

    fn metrics_text(&self) -> String {
        self.telemetry().encode()
    }

    async fn queues(&self, after: Option<&str>, limit: usize) -> QueuePage {
        Handle::queues_after(self, after, limit).await
    }

    async fn queue(&self, queue_id: &str, points: Option<usize>) -> Option<QueueDetail> {
        Handle::queue_with_points(self, queue_id, points).await
    }

    fn event_stream(&self) -> tokio::sync::broadcast::Receiver<Arc<str>> {
        Handle::event_stream(self)
    }
}
