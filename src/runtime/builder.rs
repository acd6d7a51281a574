//! [`QueueWatch`]: settings plus extras (custom callbacks, restart policy,
//! TLS roots) in; a running, supervised instance out.

use std::sync::{Arc, Mutex};

use actix::prelude::*;
use tokio::sync::watch;
use tokio::time::Instant;

use super::handle::{Handle, Inner, Sentinel, Simulated};
use super::pollers::{Introduce, PollerSet};
use super::{poller_specs, StartError};
use crate::actors::batcher::ObservationsBatcher;
use crate::actors::metrics::{MatrixStore, MetricsActor};
use crate::actors::poller::PollerShared;
use crate::actors::token::{TokenActor, TokenBoard, TokenConfig};
use crate::backoff::ExponentialBackoff;
use crate::callbacks::fanout::CallbackActor;
use crate::callbacks::spawn::{self as callbacks, CallbackChild, CallbackError};
use crate::config::{Settings, Source};
use crate::event::Event;
use crate::genesys::{endpoint, tls, ClientOptions, Credentials};
use crate::push::pool::{ChannelPool, PoolConfig, PushTuning};
use crate::push::rest::Rest;
use crate::push::store::LiveStore;
use crate::ratelimit::RateLimiter;
use crate::retry::RetryPolicy;
#[cfg(feature = "simulator")]
use crate::secret::Secret;
#[cfg(feature = "simulator")]
use crate::simulator::{self, SimulatorConfig};
use crate::supervisor::{start_in_slot, RestartPolicy, Supervisor};
use crate::telemetry::{ChildKind, Telemetry};
use crate::web::EventHub;

/// Builds and starts a queuewatch instance.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let settings = queuewatch::config::Settings::load("settings.yaml".as_ref())?;
/// let handle = queuewatch::QueueWatch::new(settings).start().await?;
/// println!("{} queues", handle.queues().await.len());
/// handle.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct QueueWatch {
    settings: Settings,
    policy: RestartPolicy,
    credentials: Option<Credentials>,
    extra_roots_pem: Vec<u8>,
    callbacks: Vec<CallbackChild>,
    push_tuning: crate::push::pool::PushTuning,
    #[cfg(feature = "simulator")]
    simulator: Option<SimulatorConfig>,
}

impl QueueWatch {
    /// An instance of validated `settings`.
    pub fn new(settings: Settings) -> QueueWatch {
        QueueWatch {
            settings,
            policy: RestartPolicy::default(),
            credentials: None,
            extra_roots_pem: Vec::new(),
            callbacks: Vec::new(),
            push_tuning: crate::push::pool::PushTuning::default(),
            #[cfg(feature = "simulator")]
            simulator: None,
        }
    }

    /// The timing of `poll.source: notifications` (watchdog, ping, channel
    /// limits). The defaults follow Genesys; tests shorten them.
    #[doc(hidden)]
    pub fn push_tuning(mut self, tuning: crate::push::pool::PushTuning) -> Self {
        self.push_tuning = tuning;
        self
    }

    #[cfg(feature = "simulator")]
    /// With `environment: simulated`: start the simulator with this
    /// configuration (its queues, faults, limits) instead of the default one
    /// serving the configured queues.
    pub fn simulator(mut self, config: SimulatorConfig) -> Self {
        self.simulator = Some(config);
        self
    }

    /// How the supervisor restarts failing actors.
    pub fn restart_policy(mut self, policy: RestartPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Credentials to use instead of the environment variables named in settings.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Extra trusted root certificates (PEM), e.g. a TLS-inspecting proxy's CA.
    pub fn extra_root_certificates(mut self, pem: &[u8]) -> Self {
        self.extra_roots_pem.extend_from_slice(pem);
        self
    }

    /// Adds a custom callback actor, built by `factory` on its own thread.
    /// After a panic the supervisor builds a fresh one with `factory`.
    pub fn callback<A, F>(mut self, name: impl Into<String>, factory: F) -> Self
    where
        A: Actor<Context = Context<A>> + Handler<Event>,
        F: Fn() -> A + Send + Sync + 'static,
    {
        self.callbacks.push(callbacks::custom(name.into(), factory));
        self
    }

    /// Sends every event to `recipient` too (you supervise it).
    pub fn subscribe(mut self, name: impl Into<String>, recipient: Recipient<Event>) -> Self {
        self.callbacks
            .push(callbacks::recipient(name.into(), recipient));
        self
    }

    /// Validates the settings and starts everything. Must run inside an actix `System`.
    pub async fn start(self) -> Result<Handle, StartError> {
        self.settings.validate()?;
        // The budget finding is logged below with the stretch actually applied.
        for warning in self.settings.warnings() {
            if warning.path != "genesys.rate_limit_per_minute" {
                log::warn!("{warning}");
            }
        }
        self.launch().await
    }

    /// Starts without validating (tests use intervals below the 5 s floor).
    pub(crate) async fn launch(self) -> Result<Handle, StartError> {
        let settings = self.settings;
        let telemetry = Telemetry::new();

        // Where Genesys is, and who we are.
        let (simulator, api_base, login_base, credentials) = if settings.genesys.is_simulated() {
            #[cfg(feature = "simulator")]
            let config = self.simulator;
            #[cfg(not(feature = "simulator"))]
            let config = None;
            let (sim, base, credentials) = start_simulated(config, &settings).await?;
            (Some(sim), base.clone(), base, credentials)
        } else {
            let credentials = match self.credentials {
                Some(c) => c,
                None => endpoint::credentials_from_env(
                    &settings.genesys.client_id_env,
                    &settings.genesys.client_secret_env,
                )?,
            };
            let api = settings.genesys.api_base().unwrap_or_default();
            let login = settings.genesys.login_base().unwrap_or_default();
            (None, api, login, credentials)
        };
        let options = Arc::new(ClientOptions {
            api_base,
            login_base,
            request_timeout: settings.genesys.request_timeout,
            tls: tls::client_config(&self.extra_roots_pem)?,
        });
        let backoff =
            ExponentialBackoff::try_new(settings.poll.backoff_base, settings.poll.backoff_max)?;

        // Supervisor and the process-fatal channel.
        let (fatal_tx, fatal_rx) = watch::channel(None);
        let sentinel = Sentinel::new(fatal_tx).start();
        let supervisor =
            Supervisor::new(self.policy, telemetry.clone(), sentinel.clone().recipient()).start();

        // Callbacks first, so no event finds them missing.
        let mut children = Vec::new();
        for (index, callback) in settings.callbacks.iter().enumerate() {
            children.push(
                callbacks::builtin(
                    index,
                    callback,
                    &telemetry,
                    &options.tls,
                    sentinel.clone().recipient(),
                )
                .await?,
            );
        }
        children.extend(self.callbacks);
        let hub = EventHub::new();
        let events = hub.sender();
        children.push(callbacks::shared(
            "api_events".into(),
            hub.start().recipient(),
        ));
        let mut subscribers = Vec::new();
        let mut names = std::collections::HashSet::new();
        for child in children {
            if !names.insert(child.subscriber.name.clone()) {
                return Err(CallbackError::Duplicate(child.subscriber.name.clone()).into());
            }
            subscribers.push(child.subscriber);
            if let Some(supervise) = child.supervise {
                supervisor.do_send(supervise);
            }
        }
        let callbacks = {
            let telemetry = telemetry.clone();
            start_in_slot(
                &supervisor,
                "callbacks",
                ChildKind::Callbacks,
                move |guard| CallbackActor::new(&subscribers, telemetry.clone(), guard).start(),
            )
            .await
        };
        let store = MatrixStore::new(settings.poll.history_size);
        let metrics = {
            let callbacks = callbacks.clone();
            start_in_slot(&supervisor, "metrics", ChildKind::Metrics, move |guard| {
                MetricsActor::new(store.clone(), callbacks.clone(), guard).start()
            })
            .await
        };
        let token_board = TokenBoard::default();
        let tokens = {
            let config = TokenConfig {
                options: options.clone(),
                credentials,
                refresh_margin: settings.genesys.token_refresh_margin,
                backoff,
                telemetry: telemetry.clone(),
                fatal: sentinel.clone().recipient(),
                board: token_board.clone(),
            };
            start_in_slot(&supervisor, "token", ChildKind::Token, move |guard| {
                TokenActor::new(config.clone(), guard).start()
            })
            .await
        };
        let limiter = RateLimiter::new(settings.genesys.rate_limit_per_minute);

        // The demand follows the pollers started (see `Handle::rebudget`).
        telemetry.set_budget(&limiter);
        let batcher = {
            let (options, limiter, telemetry) =
                (options.clone(), limiter.clone(), telemetry.clone());
            start_in_slot(&supervisor, "batcher", ChildKind::Batcher, move |guard| {
                ObservationsBatcher::new(options.clone(), limiter.clone(), telemetry.clone(), guard)
                    .start()
            })
            .await
        };
        let push = match settings.poll.source {
            Source::Notifications => Some(
                start_push(
                    &supervisor,
                    &settings,
                    self.push_tuning,
                    Rest {
                        options: options.clone(),
                        tokens: tokens.clone(),
                        token_board: token_board.clone(),
                        limiter: limiter.clone(),
                        telemetry: telemetry.clone(),
                    },
                )
                .await?,
            ),
            _ => None,
        };
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let tls_roots = options.tls.clone();
        let shared = PollerShared {
            options,
            tokens: tokens.clone(),
            token_board,
            limiter,
            retry: RetryPolicy {
                backoff,
                max_retries: settings.poll.max_retries,
            },
            telemetry: telemetry.clone(),
            metrics: metrics.clone(),
            callbacks: callbacks.clone(),
            batcher,
            // Cluster mode: ticks on a wall-clock grid shared by every
            // instance, so a queue handed over keeps its tick times.
            epoch: settings
                .cluster
                .as_ref()
                .and_then(|_| {
                    crate::cluster::shared_epoch(
                        settings.queues.iter().map(|q| settings.queue_interval(q)),
                    )
                })
                .unwrap_or_else(Instant::now),
            cancel: cancel_rx,
            push,
        };
        let http_token = match &settings.http.auth_token_env {
            Some(var) => Some(endpoint::env_secret("http.auth_token_env", var)?),
            None => None,
        };
        let introduce = simulator.as_ref().map(introducer);
        let pollers = PollerSet::new(
            supervisor.clone(),
            shared,
            metrics.clone(),
            telemetry.clone(),
            introduce,
        );
        let inner = Arc::new(Inner {
            tokens,
            events,
            http_token,
            http_server: Mutex::new(None),
            supervisor,
            metrics,
            callbacks,
            pollers,
            telemetry,
            simulator,
            fatal: fatal_rx,
            cancel: cancel_tx,
            request_timeout: settings.genesys.request_timeout,
            settings: Mutex::new(settings.clone()),
            cluster: Mutex::new(None),
        });
        let handle = Handle { inner };
        match &settings.cluster {
            // Only the queues whose leases this instance gains are polled.
            Some(cluster) => {
                let manager = crate::cluster::Cluster::start(
                    Box::new(super::OwnedPollers(handle.clone())),
                    handle.telemetry().clone(),
                    cluster,
                    &tls_roots,
                    sentinel.clone().recipient(),
                )
                .await?;
                *handle
                    .inner
                    .cluster
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(manager);
            }
            None => {
                for spec in poller_specs(&settings) {
                    handle.inner.pollers.start(spec);
                }
                handle.rebudget();
            }
        }
        if let Some(bind) = settings.http.bind {
            let (server, addr) = serve_http(handle.clone(), bind)?;
            *handle
                .inner
                .http_server
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some((server, addr));
        }
        Ok(handle)
    }
}

/// The push source: the store the pollers read and the channel pool (under
/// the supervisor) that fills it.
async fn start_push(
    supervisor: &Addr<Supervisor>,
    settings: &Settings,
    tuning: PushTuning,
    rest: Rest,
) -> Result<Arc<LiveStore>, StartError> {
    let book = crate::push::plan::ChannelBook::new(tuning.max_channels)
        .map_err(|e| StartError::PushTuning(e.to_string()))?;
    let store = Arc::new(LiveStore::default());
    let shortest = (settings.queues.iter())
        .map(|q| settings.queue_interval(q))
        .min()
        .unwrap_or(settings.poll.interval);
    let config = PoolConfig {
        rest,
        store: store.clone(),
        book: Arc::new(Mutex::new(book)),
        tuning,
        reconcile_interval: settings.poll.reconcile_interval,
        wait_time: settings.poll.wait_time,
        interval: shortest,
        released: Arc::default(),
    };
    let _pool = start_in_slot(
        supervisor,
        "channel_pool",
        ChildKind::ChannelPool,
        move |guard| ChannelPool::new(config.clone(), guard).start(),
    )
    .await;
    Ok(store)
}

/// The in-process simulator of `environment: simulated` (`config`, or by
/// default one that serves the configured queues and allows what the
/// settings budget for): its base URL and its credentials.
#[cfg(feature = "simulator")]
async fn start_simulated(
    config: Option<SimulatorConfig>,
    settings: &Settings,
) -> Result<(Simulated, String, Credentials), StartError> {
    let config = config.unwrap_or_else(|| {
        let mut config =
            SimulatorConfig::with_queues(settings.queues.iter().map(|q| q.id.to_string()));
        config.rate_limit_per_minute = Some(settings.genesys.rate_limit_per_minute);
        // A long-running demo needs no long request log.
        config.request_log_capacity = 10_000;
        config
    });
    let credentials = Credentials {
        client_id: Secret::new(config.client_id.clone()),
        client_secret: Secret::new(config.client_secret.clone()),
    };
    let sim = simulator::start(config, ([127, 0, 0, 1], 0).into())
        .await
        .map_err(StartError::Simulator)?;
    log::info!("simulated Genesys at {}", sim.base_url());
    let base = sim.base_url();
    Ok((sim, base, credentials))
}

/// A build without the simulator cannot run `environment: simulated`.
#[cfg(not(feature = "simulator"))]
async fn start_simulated(
    _: Option<std::convert::Infallible>,
    _: &Settings,
) -> Result<(Simulated, String, Credentials), StartError> {
    Err(StartError::NoSimulator)
}

/// Tells the simulator about queues that join the poller set.
#[cfg(feature = "simulator")]
fn introducer(sim: &Simulated) -> Introduce {
    let sim = sim.clone();
    Box::new(move |queue: &str| sim.add_queue(queue))
}

#[cfg(not(feature = "simulator"))]
fn introducer(sim: &Simulated) -> Introduce {
    match *sim {}
}

/// Starts the status API on `bind` (one worker: it only reads actor state).
fn serve_http(
    handle: Handle,
    bind: std::net::SocketAddr,
) -> Result<(actix_web::dev::ServerHandle, std::net::SocketAddr), StartError> {
    // Configured once: every worker shares the page's sessions.
    let routes = crate::web::configure(handle);
    let server =
        actix_web::HttpServer::new(move || actix_web::App::new().configure(routes.clone()))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(2)
            .bind(bind)
            .map_err(|source| StartError::Bind { addr: bind, source })?;
    // With port 0 the system picks one: this is the address to tell.
    let addr = server.addrs().first().copied().unwrap_or(bind);
    let server = server.run();
    let stop = server.handle();
    actix_rt::spawn(async move {
        if let Err(error) = server.await {
            log::error!("status API stopped: {error}");
        }
    });
    log::info!("status API on http://{addr}/");
    Ok((stop, addr))
}
