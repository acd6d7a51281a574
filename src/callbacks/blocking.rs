//! Blocking callbacks (log, stdout, jsonl): an [`EventSink`] each, run by a
//! [`SinkActor`] on its own arbiter thread, so a slow disk or terminal never
//! delays polling or the other callbacks.

use actix::prelude::*;

use super::Flush;
use crate::event::Event;
use crate::supervisor::ExitGuard;
use crate::throttle::Throttled;

/// A synchronous event consumer.
pub trait EventSink: Send {
    /// Handles one event. Errors are logged by the caller; the sink goes on.
    fn deliver(&mut self, event: &Event) -> std::io::Result<()>;

    /// Makes everything delivered so far durable (flush, fsync).
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

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
