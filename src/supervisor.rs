//! An OTP-style supervisor: restarts a child that stops **or panics**, with
//! jittered exponential backoff, and escalates when a child restarts more
//! than `max_restarts` times within `window` (log why, stop with exit 1).
//!
//! actix's own `Supervisor` only sees actors that stop themselves. A panic
//! inside a handler makes tokio drop the actor's task, and with it the actor
//! value; so every supervised actor owns an [`ExitGuard`] whose `Drop`
//! reports the exit. That covers clean stops and panics alike.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix::prelude::*;
use tokio::time::Instant;

use crate::backoff::ExponentialBackoff;
use crate::telemetry::{ActorRestarted, ChildKind, Telemetry};

/// Something happened that must end the process with exit code 1
/// (credentials rejected, supervisor gave up).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Fatal {
    /// Why, for the log and the caller.
    pub reason: String,
    /// The error every queue's last event carries before the process exits
    /// (`auth_failed` for rejected credentials, `cancelled` otherwise).
    pub kind: crate::error::ErrorKind,
}

/// When and how often the supervisor restarts a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// More restarts of one child than this within `window` escalates.
    pub max_restarts: u32,
    /// The intensity window.
    pub window: Duration,
    /// Delay before a restart, by the child's recent restart count.
    pub backoff: ExponentialBackoff,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            max_restarts: 5,
            window: Duration::from_secs(60),
            backoff: ExponentialBackoff::try_new(
                Duration::from_millis(100),
                Duration::from_secs(5),
            )
            .unwrap_or_else(|_| unreachable!("constant backoff is valid")),
        }
    }
}

/// The current address of a restartable actor (or recipient). Holders read
/// it at each use, so they follow restarts.
pub struct Slot<T>(Arc<RwLock<Option<T>>>);

impl<T> Clone for Slot<T> {
    fn clone(&self) -> Self {
        Slot(self.0.clone())
    }
}

impl<T: Clone> Default for Slot<T> {
    fn default() -> Self {
        Slot(Arc::new(RwLock::new(None)))
    }
}

impl<T: Clone> Slot<T> {
    /// The current value, if the actor is running.
    pub fn get(&self) -> Option<T> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Calls `f` with the current value, without cloning it.
    pub fn with<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        f(self.0.read().unwrap_or_else(|e| e.into_inner()).as_ref())
    }

    /// Replaces the value (on each start).
    pub fn set(&self, value: T) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(value);
    }
}

/// Starts one incarnation of a child; must store the guard in the actor.
pub type Factory = Arc<dyn Fn(ExitGuard) + Send + Sync>;

/// Owned by a supervised actor; reports the actor's end when dropped.
pub struct ExitGuard {
    id: Arc<str>,
    generation: u64,
    supervisor: Recipient<ChildExited>,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        self.supervisor.do_send(ChildExited {
            id: self.id.clone(),
            generation: self.generation,
        });
    }
}

/// A child ended (sent by its [`ExitGuard`]).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChildExited {
    id: Arc<str>,
    generation: u64,
}

/// Start a child now and keep it running.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Supervise {
    /// Unique child id, e.g. `poller:<queue id>`.
    pub id: String,
    /// The child kind (the `actor` label of its restarts).
    pub kind: ChildKind,
    /// Starts one incarnation.
    pub factory: Factory,
}

impl Supervise {
    /// A child whose every incarnation, started by `start`, is put into
    /// `slot`, so holders of the slot follow restarts.
    pub fn into_slot<A: Actor>(
        id: impl Into<String>,
        kind: ChildKind,
        slot: &Slot<Addr<A>>,
        start: impl Fn(ExitGuard) -> Addr<A> + Send + Sync + 'static,
    ) -> Supervise {
        let slot = slot.clone();
        Supervise {
            id: id.into(),
            kind,
            factory: Arc::new(move |guard| slot.set(start(guard))),
        }
    }
}

/// Starts a child under `supervisor` into a new slot, and waits until its
/// first incarnation runs: the slot is filled when this returns.
pub(crate) async fn start_in_slot<A: Actor>(
    supervisor: &Addr<Supervisor>,
    id: impl Into<String>,
    kind: ChildKind,
    start: impl Fn(ExitGuard) -> Addr<A> + Send + Sync + 'static,
) -> Slot<Addr<A>> {
    let slot = Slot::default();
    let _ = supervisor
        .send(Supervise::into_slot(id, kind, &slot, start))
        .await;
    slot
}

/// Stop supervising a child (it is being removed on purpose).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Forget {
    /// The child id.
    pub id: String,
}

/// Stop all restarts: the process is shutting down.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ShutdownSupervisor;

struct Child {
    kind: ChildKind,
    factory: Factory,
    generation: u64,
    restarts: VecDeque<Instant>,
}

/// The supervisor actor.
pub struct Supervisor {
    children: HashMap<Arc<str>, Child>,
    policy: RestartPolicy,
    telemetry: Telemetry,
    escalate: Recipient<Fatal>,
    shutting_down: bool,
    rng: fastrand::Rng,
}

impl Supervisor {
    /// A supervisor that reports escalations to `escalate`.
    pub fn new(policy: RestartPolicy, telemetry: Telemetry, escalate: Recipient<Fatal>) -> Self {
        Supervisor {
            children: HashMap::new(),
            policy,
            telemetry,
            escalate,
            shutting_down: false,
            rng: fastrand::Rng::new(),
        }
    }

    fn start_child(&self, id: &Arc<str>, ctx: &Context<Self>) {
        if let Some(child) = self.children.get(id) {
            let guard = ExitGuard {
                id: id.clone(),
                generation: child.generation,
                supervisor: ctx.address().recipient(),
            };
            (child.factory)(guard);
        }
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;
}

impl Handler<Supervise> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Supervise, ctx: &mut Context<Self>) {
        let id: Arc<str> = msg.id.into();
        let generation = self.children.get(&id).map_or(0, |c| c.generation + 1);
        self.children.insert(
            id.clone(),
            Child {
                kind: msg.kind,
                factory: msg.factory,
                generation,
                restarts: VecDeque::new(),
            },
        );
        self.start_child(&id, ctx);
    }
}

impl Handler<Forget> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Forget, _: &mut Context<Self>) {
        self.children.remove(msg.id.as_str());
    }
}

impl Handler<ShutdownSupervisor> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: ShutdownSupervisor, _: &mut Context<Self>) {
        self.shutting_down = true;
    }
}

impl Handler<ChildExited> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildExited, ctx: &mut Context<Self>) {
        if self.shutting_down {
            return;
        }
        let policy = self.policy;
        let Some(child) = self.children.get_mut(&msg.id) else {
            return; // forgotten on purpose
        };
        if child.generation != msg.generation {
            return; // an older incarnation
        }
        let now = Instant::now();
        while child
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > policy.window)
        {
            child.restarts.pop_front();
        }
        if child.restarts.len() >= policy.max_restarts as usize {
            let reason = format!(
                "{} exited {} times within {}: giving up",
                msg.id,
                child.restarts.len() + 1,
                humantime::format_duration(policy.window)
            );
            log::error!("supervisor: {reason}");
            self.shutting_down = true;
            self.escalate.do_send(Fatal {
                reason,
                kind: crate::error::ErrorKind::Cancelled,
            });
            return;
        }
        let delay = policy
            .backoff
            .delay(child.restarts.len() as u32, &mut self.rng);
        child.restarts.push_back(now);
        child.generation += 1;
        self.telemetry.emit(ActorRestarted {
            id: &msg.id,
            kind: child.kind,
            delay,
        });
        let id = msg.id.clone();
        ctx.run_later(delay, move |act, ctx| {
            if !act.shutting_down {
                act.start_child(&id, ctx);
            }
        });
    }
}
