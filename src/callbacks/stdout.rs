use std::io::Write;

use super::shared::SharedEvent;
use super::EventSink;

/// `kind: stdout`: one JSON line per event on standard output, written and
/// flushed at once.
#[derive(Debug, Default)]
pub struct StdoutSink {
    line: Vec<u8>,
}

impl EventSink for StdoutSink {
    fn deliver(&mut self, event: &SharedEvent) -> std::io::Result<()> {
        // One write of the whole line.
        self.line.clear();
        self.line.extend_from_slice(event.json().as_bytes());
        self.line.push(b'\n');
        let mut out = std::io::stdout().lock();
        out.write_all(&self.line)?;
        out.flush()
    }
}
