//! SinkActor: runs one blocking built-in callback on its own arbiter thread,
//! so a slow disk or terminal never delays polling or other callbacks.

use actix::prelude::*;

use super::outbox::Throttled;
use super::supervisor::ExitGuard;
use crate::callbacks::EventSink;
use crate::event::Event;

/// Make everything delivered so far durable.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Flush;

/// The sink actor.
pub struct SinkActor {
    name: String,
    sink: Box<dyn EventSink>,
    errors: Throttled,
    _guard: ExitGuard,
}

impl SinkActor {
    /// Wraps `sink`, named `name` in logs and metrics.
    pub fn new(name: String, sink: Box<dyn EventSink>, guard: ExitGuard) -> Self {
        SinkActor {
            name,
            sink,
            errors: Throttled::default(),
            _guard: guard,
        }
    }

    fn report(&mut self, what: &str, error: std::io::Error) {
        // At most one line per 10 s per sink: a full disk must not flood the log.
        if let Some(n) = self.errors.note(1) {
            log::error!(
                "callback {}: {what} failed ({n} time(s)): {error}",
                self.name
            );
        }
    }
}

impl Actor for SinkActor {
    type Context = Context<Self>;
}

impl Handler<Event> for SinkActor {
    type Result = ();

    fn handle(&mut self, event: Event, _: &mut Context<Self>) {
        if let Err(error) = self.sink.deliver(&event) {
            self.report("delivery", error);
        }
    }
}

impl Handler<Flush> for SinkActor {
    type Result = ();

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) {
        if let Err(error) = self.sink.flush() {
            self.report("flush", error);
        }
    }
}

impl Drop for SinkActor {
    fn drop(&mut self) {
        // Whatever happens to the actor, written lines get their fsync.
        let _ = self.sink.flush();
    }
}
