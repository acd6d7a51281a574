use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::shared::SharedEvent;
use super::EventSink;

/// Lines buffered beyond this many bytes are written out at once.
pub const WRITE_OUT_AT: usize = 64 * 1024;

/// `kind: jsonl`: the audit file. One JSON line per event, gathered in a
/// buffer and appended a batch at a time (one `write` each, once
/// [`WRITE_OUT_AT`] bytes wait or [`super::blocking::WRITE_OUT_AFTER`] after
/// the batch's first line), so a crash loses at most the batch not yet
/// written, can at worst cut its last line, and never corrupts earlier ones;
/// `flush` writes out and makes the file durable (fsync).
#[derive(Debug)]
pub struct JsonlSink {
    file: File,
    buffer: Vec<u8>,
}

impl JsonlSink {
    /// Opens (creating if needed) `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<JsonlSink> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(JsonlSink {
            file,
            buffer: Vec::new(),
        })
    }
}

impl EventSink for JsonlSink {
    fn deliver(&mut self, event: &SharedEvent) -> std::io::Result<()> {
        self.buffer.extend_from_slice(event.json().as_bytes());
        self.buffer.push(b'\n');
        if self.buffer.len() >= WRITE_OUT_AT {
            self.write_out()
        } else {
            Ok(())
        }
    }

    fn buffered(&self) -> bool {
        !self.buffer.is_empty()
    }

    fn write_out(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        // A batch that fails is not retried (as a single line was not):
        // the error is reported, and later lines still get their chance.
        let written = self.file.write_all(&self.buffer);
        self.buffer.clear();
        written
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let written = self.write_out();
        let synced = self.file.sync_data();
        written.and(synced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::test_support::failed_event;

    fn lines(path: &Path) -> Vec<Event> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn lines_wait_in_the_buffer_until_written_out_or_flushed() {
        let dir = std::env::temp_dir().join(format!("queuewatch-jsonl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut sink = JsonlSink::open(&path).unwrap();
        let events: Vec<Event> = (0..3).map(failed_event).collect();
        sink.deliver(&events[0].clone().into()).unwrap();
        sink.deliver(&events[1].clone().into()).unwrap();
        assert!(sink.buffered());
        assert!(lines(&path).is_empty(), "nothing written yet");
        sink.write_out().unwrap();
        assert!(!sink.buffered());
        assert_eq!(lines(&path), events[..2]);
        sink.deliver(&events[2].clone().into()).unwrap();
        sink.flush().unwrap();
        assert_eq!(lines(&path), events);

        // Past the threshold, a batch goes out at once.
        let mut written = 3;
        loop {
            sink.deliver(&failed_event(written).into()).unwrap();
            written += 1;
            if !sink.buffered() {
                break;
            }
            assert_eq!(lines(&path).len(), 3, "held until {WRITE_OUT_AT} bytes");
        }
        let size = std::fs::metadata(&path).unwrap().len() as usize;
        assert!(size >= WRITE_OUT_AT, "{written} lines, {size} bytes");
        assert_eq!(lines(&path).len(), written);
        drop(sink);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
