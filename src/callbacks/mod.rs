//! Built-in callbacks: blocking sinks that each run on their own thread
//! inside a [`crate::actors::sink::SinkActor`].

mod jsonl;
mod log_sink;
mod stdout;
pub mod webhook;

pub use jsonl::JsonlSink;
pub use log_sink::LogSink;
pub use stdout::StdoutSink;

use crate::event::Event;

/// A synchronous event consumer.
pub trait EventSink: Send {
    /// Handles one event. Errors are logged by the caller; the sink goes on.
    fn deliver(&mut self, event: &Event) -> std::io::Result<()>;

    /// Makes everything delivered so far durable (flush, fsync).
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
