//! Turning callback settings and user callbacks into supervised children
//! and fan-out subscribers. Each callback runs on its own arbiter thread
//! ([`on_own_thread`]: the one way a callback is put there).

use std::sync::Arc;

use actix::prelude::*;

use super::blocking::{EventSink, Inbox, SinkActor};
use super::fanout::{Subscriber, Target, DEFAULT_CAPACITY};
use super::nats::{Nats, NatsConfig, NatsLimits};
use super::outbox::OutboxActor;
use super::shared::Delivery;
use super::webhook::signing::{endpoint_name, KeyError, SigningKey};
use super::webhook::{Webhook, WebhookConfig, WebhookLimits};
use super::{Flush, JsonlSink, LogSink, StdoutSink};
use crate::config::CallbackSettings;
use crate::event::Event;
use crate::nats::NatsError;
use crate::secret::{Secret, SecretError};
use crate::supervisor::Fatal;
use crate::supervisor::{ExitGuard, Factory, Slot, Supervise};
use crate::telemetry::{ChildKind, Telemetry};

/// Why a configured callback cannot start.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// The webhook URL does not parse (never echoed: it may hold a token).
    #[error("callbacks[{index}].url: not a valid URL")]
    Url {
        /// The callback's index in `callbacks`.
        index: usize,
    },
    /// The webhook secret's variable is missing or empty.
    #[error("callbacks[{index}].secret_env: {source}")]
    Secret {
        /// The callback's index in `callbacks`.
        index: usize,
        /// What is wrong with the variable.
        source: SecretError,
    },
    /// The webhook secret is not a usable key.
    #[error("callbacks[{index}].secret_env: ${var}: {source}")]
    Key {
        /// The callback's index in `callbacks`.
        index: usize,
        /// The variable's name.
        var: String,
        /// What is wrong with its value.
        source: KeyError,
    },
    /// A blocking sink cannot open (a jsonl file, say).
    #[error("callbacks[{index}] ({name}): {source}")]
    Open {
        /// The callback's index in `callbacks`.
        index: usize,
        /// The callback's name.
        name: String,
        /// Why.
        source: std::io::Error,
    },
    /// The NATS server answered and cannot be used.
    #[error("callbacks[{index}] ({name}): {source}")]
    Nats {
        /// The callback's index in `callbacks`.
        index: usize,
        /// The callback's name.
        name: String,
        /// Why.
        source: NatsError,
    },
    /// Two callbacks share a name.
    #[error("callbacks: more than one callback is named {0:?}")]
    Duplicate(String),
}

impl CallbackError {
    /// Whether the settings are at fault (exit 2), not the world outside.
    pub fn is_config(&self) -> bool {
        !matches!(self, CallbackError::Nats { .. })
    }
}

/// A callback to start: its fan-out entry and how to (re)start it.
pub(crate) struct CallbackChild {
    pub subscriber: Arc<Subscriber>,
    pub supervise: Option<Supervise>,
}

type MakeSink = Arc<dyn Fn() -> std::io::Result<Box<dyn EventSink + Send>> + Send + Sync>;

/// What one incarnation of a callback leaves behind: where its events and
/// (for callbacks that buffer) its `Flush` go.
struct Started {
    events: Target,
    flush: Option<Recipient<Flush>>,
}

/// The one way a callback runs: on an arbiter thread of its own, supervised
/// under `id`; `start` builds each incarnation there (`None`: it could not,
/// and dropping the guard reports the failure to the supervisor).
fn on_own_thread(
    id: String,
    name: String,
    flushable: bool,
    start: impl Fn(&ArbiterHandle, ExitGuard) -> Option<Started> + Send + Sync + 'static,
) -> CallbackChild {
    let events: Slot<Target> = Slot::default();
    let flush: Option<Slot<Recipient<Flush>>> = flushable.then(Slot::default);
    let subscriber = Arc::new(Subscriber {
        name,
        events: events.clone(),
        flush: flush.clone(),
        capacity: DEFAULT_CAPACITY,
    });
    let arbiter = Arbiter::new().handle();
    let factory: Factory = Arc::new(move |guard: ExitGuard| {
        if let Some(started) = start(&arbiter, guard) {
            events.set(started.events);
            if let (Some(slot), Some(recipient)) = (&flush, started.flush) {
                slot.set(recipient);
            }
        }
    });
    CallbackChild {
        subscriber,
        supervise: Some(Supervise {
            id,
            kind: ChildKind::Callback,
            factory,
        }),
    }
}

/// An actor that takes events and `Flush`, built by `make` on `arbiter`.
fn start_flushable<A>(
    arbiter: &ArbiterHandle,
    make: impl FnOnce(&mut Context<A>) -> A + Send + 'static,
) -> Started
where
    A: Actor<Context = Context<A>> + Handler<Delivery> + Handler<Flush>,
{
    let addr = A::start_in_arbiter(arbiter, make);
    Started {
        events: Target::Shared(addr.clone().recipient()),
        flush: Some(addr.recipient()),
    }
}

/// A built-in callback from settings. A NATS server that answers but is not
/// supported fails the start here; `fatal` receives what is fatal once running.
pub(crate) async fn builtin(
    index: usize,
    settings: &CallbackSettings,
    telemetry: &Telemetry,
    tls: &Arc<rustls::ClientConfig>,
    fatal: Recipient<Fatal>,
) -> Result<CallbackChild, CallbackError> {
    // The audit batches: its events wait in an inbox, its thread wakes
    // a few times a second (log and stdout take each event at once).
    let batched = matches!(settings, CallbackSettings::Jsonl { .. });
    let (name, make): (String, MakeSink) = match settings {
        CallbackSettings::Log => ("log".into(), Arc::new(|| Ok(Box::new(LogSink) as _))),
        CallbackSettings::Stdout => (
            "stdout".into(),
            Arc::new(|| Ok(Box::new(StdoutSink::default()) as _)),
        ),
        CallbackSettings::Jsonl { path } => {
            let path = path.clone();
            (
                format!("jsonl:{}", path.display()),
                Arc::new(move || Ok(Box::new(JsonlSink::open(&path)?) as _)),
            )
        }
        CallbackSettings::Webhook { url, secret_env } => {
            return webhook(index, url, secret_env.as_deref(), telemetry, tls)
        }
        CallbackSettings::Nats {
            url,
            subject,
            stream,
        } => {
            let name = format!("nats:{subject}");
            // A server that answers but cannot be used fails the start; an
            // unreachable one is waited for in the background.
            if let Err(source) = crate::nats::check_at_start(url, tls).await {
                return Err(CallbackError::Nats {
                    index,
                    name,
                    source,
                });
            }
            let config = Arc::new(NatsConfig {
                name: name.clone(),
                url: url.to_owned(),
                subject: subject.to_owned(),
                stream: stream.to_owned(),
                tls: tls.clone(),
                limits: NatsLimits::default(),
                telemetry: telemetry.clone(),
                fatal,
            });
            // Built on the arbiter's thread: the client's tasks run on its
            // runtime. It connects in the background.
            return Ok(on_own_thread(
                format!("callback:{name}#{index}"),
                name,
                true,
                move |arbiter, guard| {
                    let transport = Nats::new(config.clone());
                    Some(start_flushable(arbiter, move |_| {
                        OutboxActor::new(transport, guard)
                    }))
                },
            ));
        }
    };
    // Fail at start, not in the background, when a sink cannot open.
    if let Err(source) = make() {
        return Err(CallbackError::Open {
            index,
            name,
            source,
        });
    }
    let child_name = name.clone();
    Ok(on_own_thread(
        format!("callback:{name}"),
        name,
        true,
        move |arbiter, guard| {
            let sink = match make() {
                Ok(sink) => sink,
                Err(error) => {
                    log::error!("callback {child_name}: cannot start: {error}");
                    return None;
                }
            };
            let name = child_name.clone();
            if !batched {
                return Some(start_flushable(arbiter, move |_| {
                    SinkActor::new(name, sink, guard)
                }));
            }
            let inbox = Arc::new(Inbox::default());
            let actor_inbox = inbox.clone();
            let addr = SinkActor::start_in_arbiter(arbiter, move |_| {
                SinkActor::batched(name, sink, actor_inbox, guard)
            });
            Some(Started {
                events: Target::Batched(inbox, addr.clone().recipient()),
                flush: Some(addr.recipient()),
            })
        },
    ))
}

/// `kind: webhook`. The secret is read from the environment now, so a
/// missing one fails the start.
fn webhook(
    index: usize,
    url: &str,
    secret_env: Option<&str>,
    telemetry: &Telemetry,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<CallbackChild, CallbackError> {
    // The URL itself is never echoed: it may hold a token.
    let uri: awc::http::Uri = url
        .trim()
        .parse()
        .map_err(|_| CallbackError::Url { index })?;
    let name = endpoint_name(&uri);
    let key = match secret_env {
        Some(var) => {
            let secret =
                Secret::from_env(var).map_err(|source| CallbackError::Secret { index, source })?;
            let key = SigningKey::from_secret(&secret).map_err(|source| CallbackError::Key {
                index,
                var: var.to_owned(),
                source,
            })?;
            Some(key)
        }
        None => None,
    };
    let config = Arc::new(WebhookConfig {
        name: name.clone(),
        uri,
        key,
        tls: tls.clone(),
        limits: WebhookLimits::default(),
        telemetry: telemetry.clone(),
        gone: Arc::default(),
    });
    Ok(on_own_thread(
        // Two webhooks may share a host: the index keeps the ids apart.
        format!("callback:{name}#{index}"),
        name,
        true,
        move |arbiter, guard| {
            let transport = Webhook(config.clone());
            Some(start_flushable(arbiter, move |_| {
                OutboxActor::new(transport, guard)
            }))
        },
    ))
}

/// A user actor built by `factory` on its own thread; restarted after a panic.
pub(crate) fn custom<A, F>(name: String, factory: F) -> CallbackChild
where
    A: Actor<Context = Context<A>> + Handler<Event>,
    F: Fn() -> A + Send + Sync + 'static,
{
    let factory = Arc::new(factory);
    on_own_thread(
        format!("callback:{name}"),
        name,
        false,
        move |arbiter, guard| {
            let factory = factory.clone();
            let addr = A::start_in_arbiter(arbiter, move |ctx: &mut Context<A>| {
                // The guard lives in a future of the actor's own context: when
                // the actor stops or panics, the context is dropped, and so is it.
                ctx.spawn(actix::fut::wrap_future(async move {
                    let _guard = guard;
                    std::future::pending::<()>().await;
                }));
                factory()
            });
            Some(Started {
                events: Target::Event(addr.recipient()),
                flush: None,
            })
        },
    )
}

/// Any recipient, unsupervised (its owner supervises it).
pub(crate) fn recipient(name: String, recipient: Recipient<Event>) -> CallbackChild {
    unsupervised(name, Target::Event(recipient))
}

/// A built-in recipient of shared events (the SSE hub), unsupervised.
pub(crate) fn shared(name: String, recipient: Recipient<Delivery>) -> CallbackChild {
    unsupervised(name, Target::Shared(recipient))
}

fn unsupervised(name: String, target: Target) -> CallbackChild {
    let events = Slot::default();
    events.set(target);
    CallbackChild {
        subscriber: Arc::new(Subscriber {
            name,
            events,
            flush: None,
            capacity: DEFAULT_CAPACITY,
        }),
        supervise: None,
    }
}
