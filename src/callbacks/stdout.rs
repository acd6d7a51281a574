use std::io::Write;

use super::EventSink;
use crate::event::Event;

/// `kind: stdout`: one JSON line per event on standard output.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl EventSink for StdoutSink {
    fn deliver(&mut self, event: &Event) -> std::io::Result<()> {
        let mut line = event.to_json();
        line.push('\n');
        let mut out = std::io::stdout().lock();
        out.write_all(line.as_bytes())?;
        out.flush()
    }
}
