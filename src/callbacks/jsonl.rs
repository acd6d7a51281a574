use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::EventSink;
use crate::event::Event;

/// `kind: jsonl`: the audit file. One JSON line per event, appended with a
/// single `write` each, so a crash can at worst cut the last line and never
/// corrupts earlier ones; `flush` makes the file durable (fsync).
#[derive(Debug)]
pub struct JsonlSink {
    file: File,
}

impl JsonlSink {
    /// Opens (creating if needed) `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<JsonlSink> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(JsonlSink { file })
    }
}

impl EventSink for JsonlSink {
    fn deliver(&mut self, event: &Event) -> std::io::Result<()> {
        let mut line = event.to_json();
        line.push('\n');
        self.file.write_all(line.as_bytes())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}
