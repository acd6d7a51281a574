//! Turning callback settings and user callbacks into supervised children
//! and fan-out subscribers. Each callback runs on its own arbiter thread.

use std::sync::Arc;

use actix::prelude::*;

use super::StartError;
use crate::actors::callback::{Subscriber, DEFAULT_CAPACITY};
use crate::actors::sink::{Flush, SinkActor};
use crate::actors::supervisor::{ExitGuard, Factory, Slot, Supervise};
use crate::actors::webhook::{WebhookActor, WebhookConfig, WebhookLimits};
use crate::actors::Fatal;
use crate::callbacks::webhook::{endpoint_name, SigningKey};
use crate::callbacks::{EventSink, JsonlSink, LogSink, StdoutSink};
use crate::config::CallbackSettings;
use crate::event::Event;
use crate::nats::sink::{NatsConfig, NatsLimits, NatsSink};
use crate::secret::Secret;
use crate::telemetry::Telemetry;

/// A callback to start: its fan-out entry and how to (re)start it.
pub(crate) struct CallbackChild {
    pub subscriber: Arc<Subscriber>,
    pub supervise: Option<Supervise>,
}

type MakeSink = Arc<dyn Fn() -> std::io::Result<Box<dyn EventSink + Send>> + Send + Sync>;

/// A built-in callback from settings. Fails with [`StartError::Config`]
/// (naming the key) for settings that cannot be used, and with
/// [`StartError::Runtime`] for a NATS server that answers but is not
/// supported. `fatal` receives what is fatal once running.
pub(crate) async fn builtin(
    index: usize,
    settings: &CallbackSettings,
    telemetry: &Telemetry,
    tls: &Arc<rustls::ClientConfig>,
    fatal: Recipient<Fatal>,
) -> Result<CallbackChild, StartError> {
    let (name, make): (String, MakeSink) = match settings {
        CallbackSettings::Log => ("log".into(), Arc::new(|| Ok(Box::new(LogSink) as _))),
        CallbackSettings::Stdout => ("stdout".into(), Arc::new(|| Ok(Box::new(StdoutSink) as _))),
        CallbackSettings::Jsonl { path } => {
            let path = path.clone();
            (
                format!("jsonl:{}", path.display()),
                Arc::new(move || Ok(Box::new(JsonlSink::open(&path)?) as _)),
            )
        }
        CallbackSettings::Webhook { url, secret_env } => {
            return webhook(index, url, secret_env.as_deref(), telemetry, tls)
                .map_err(StartError::Config)
        }
        CallbackSettings::Nats {
            url,
            subject,
            stream,
        } => {
            let name = format!("nats:{subject}");
            // A server that answers but cannot be used fails the start; an
            // unreachable one is waited for in the background.
            crate::nats::check_at_start(url, tls).await.map_err(|why| {
                StartError::Runtime(format!("callbacks[{index}] ({name}): {why}"))
            })?;
            return Ok(nats(index, url, subject, stream, telemetry, tls, fatal));
        }
    };
    // Fail at start, not in the background, when a sink cannot open.
    make().map_err(|e| StartError::Config(format!("callbacks[{index}] ({name}): {e}")))?;
    Ok(sink_child(name, make))
}

/// The fan-out entry of a callback that buffers (so it gets `Flush`), and
/// the slots its incarnations fill.
fn flushable(
    name: &str,
) -> (
    Arc<Subscriber>,
    Slot<Recipient<Event>>,
    Slot<Recipient<Flush>>,
) {
    let events: Slot<Recipient<Event>> = Slot::default();
    let flush: Slot<Recipient<Flush>> = Slot::default();
    let subscriber = Arc::new(Subscriber {
        name: name.to_string(),
        events: events.clone(),
        flush: Some(flush.clone()),
        capacity: DEFAULT_CAPACITY,
    });
    (subscriber, events, flush)
}

fn sink_child(name: String, make: MakeSink) -> CallbackChild {
    let (subscriber, events, flush) = flushable(&name);
    let arbiter = Arbiter::new().handle();
    let child_name = name.clone();
    let factory: Factory = Arc::new(move |guard: ExitGuard| {
        let sink = match make() {
            Ok(sink) => sink,
            Err(error) => {
                log::error!("callback {child_name}: cannot start: {error}");
                return; // dropping the guard reports the failure to the supervisor
            }
        };
        let name = child_name.clone();
        let addr =
            SinkActor::start_in_arbiter(&arbiter, move |_| SinkActor::new(name, sink, guard));
        events.set(addr.clone().recipient());
        flush.set(addr.recipient());
    });
    CallbackChild {
        subscriber,
        supervise: Some(Supervise {
            id: format!("callback:{name}"),
            kind: crate::telemetry::ChildKind::Callback,
            factory,
        }),
    }
}

/// `kind: webhook`: its own actor on its own arbiter, supervised. The secret
/// is read from the environment now, so a missing one fails the start.
fn webhook(
    index: usize,
    url: &str,
    secret_env: Option<&str>,
    telemetry: &Telemetry,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<CallbackChild, String> {
    // The URL itself is never echoed: it may hold a token.
    let uri: awc::http::Uri = url
        .trim()
        .parse()
        .map_err(|_| format!("callbacks[{index}].url: not a valid URL"))?;
    let name = endpoint_name(&uri);
    let key = match secret_env {
        Some(var) => {
            let secret =
                Secret::from_env(var).map_err(|e| format!("callbacks[{index}].secret_env: {e}"))?;
            let key = SigningKey::from_secret(&secret)
                .map_err(|e| format!("callbacks[{index}].secret_env: ${var}: {e}"))?;
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
    let (subscriber, events, flush) = flushable(&name);
    let arbiter = Arbiter::new().handle();
    let factory: Factory = Arc::new(move |guard: ExitGuard| {
        let config = config.clone();
        // Built on the arbiter's thread: the actor's HTTP client is `!Send`.
        let addr =
            WebhookActor::start_in_arbiter(&arbiter, move |_| WebhookActor::new(config, guard));
        events.set(addr.clone().recipient());
        flush.set(addr.recipient());
    });
    Ok(CallbackChild {
        subscriber,
        supervise: Some(Supervise {
            // Two webhooks may share a host: the index keeps the ids apart.
            id: format!("callback:{name}#{index}"),
            kind: crate::telemetry::ChildKind::Callback,
            factory,
        }),
    })
}

/// `kind: nats`: its own actor on its own arbiter, supervised. It connects
/// in the background: an unreachable NATS does not fail the start.
fn nats(
    index: usize,
    url: &str,
    subject: &str,
    stream: &str,
    telemetry: &Telemetry,
    tls: &Arc<rustls::ClientConfig>,
    fatal: Recipient<Fatal>,
) -> CallbackChild {
    let name = format!("nats:{subject}");
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
    let events: Slot<Recipient<Event>> = Slot::default();
    let flush: Slot<Recipient<Flush>> = Slot::default();
    let arbiter = Arbiter::new().handle();
    let subscriber = Arc::new(Subscriber {
        name: name.clone(),
        events: events.clone(),
        flush: Some(flush.clone()),
        capacity: DEFAULT_CAPACITY,
    });
    let factory: Factory = Arc::new(move |guard: ExitGuard| {
        let config = config.clone();
        // Built on the arbiter's thread: the client's tasks run on its runtime.
        let addr = NatsSink::start_in_arbiter(&arbiter, move |_| NatsSink::new(config, guard));
        events.set(addr.clone().recipient());
        flush.set(addr.recipient());
    });
    CallbackChild {
        subscriber,
        supervise: Some(Supervise {
            id: format!("callback:{name}#{index}"),
            kind: crate::telemetry::ChildKind::Callback,
            factory,
        }),
    }
}

/// A user actor built by `factory` on its own thread; restarted after a panic.
pub(crate) fn custom<A, F>(name: String, factory: F) -> CallbackChild
where
    A: Actor<Context = Context<A>> + Handler<Event>,
    F: Fn() -> A + Send + Sync + 'static,
{
    let events: Slot<Recipient<Event>> = Slot::default();
    let slot = events.clone();
    let arbiter = Arbiter::new().handle();
    let factory = Arc::new(factory);
    let start: Factory = Arc::new(move |guard: ExitGuard| {
        let factory = factory.clone();
        let addr = A::start_in_arbiter(&arbiter, move |ctx: &mut Context<A>| {
            // The guard lives in a future of the actor's own context: when
            // the actor stops or panics, the context is dropped, and so is it.
            ctx.spawn(actix::fut::wrap_future(async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            }));
            factory()
        });
        slot.set(addr.recipient());
    });
    CallbackChild {
        subscriber: Arc::new(Subscriber {
            name: name.clone(),
            events,
            flush: None,
            capacity: DEFAULT_CAPACITY,
        }),
        supervise: Some(Supervise {
            id: format!("callback:{name}"),
            kind: crate::telemetry::ChildKind::Callback,
            factory: start,
        }),
    }
}

/// Any recipient, unsupervised (its owner supervises it).
pub(crate) fn recipient(name: String, recipient: Recipient<Event>) -> CallbackChild {
    let events = Slot::default();
    events.set(recipient);
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
