//! The `queuewatch` binary as the tests spawn it: signals, output read off
//! the test's thread, and a child's pipe read line by line as it comes.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Output};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_queuewatch");

/// Sends `signal` (`-TERM`, `-KILL`, …) to `child` with kill(1).
pub fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {}", child.id());
}

/// Runs `command` to its end on a thread of its own, so that the servers of
/// this test (simulator, receivers) keep serving on this one.
pub async fn output(mut command: Command) -> Output {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(command.output().expect("runs"));
    });
    rx.await.unwrap()
}

/// A child's pipe, read line by line on a thread as the child writes, to
/// its end (also after this is dropped).
pub struct Lines {
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    pub fn read(pipe: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        // Reads to the end even when nobody listens any more: a closed pipe
        // would fail (and may kill) a child that still writes.
        std::thread::spawn(move || {
            let mut pipe = BufReader::new(pipe);
            let mut line = Vec::new();
            loop {
                line.clear();
                match pipe.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if line.ends_with(b"\n") {
                            line.pop();
                        }
                        let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
                    }
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits for the first line that `pick` maps to a value; panics naming
    /// `what` (with the lines so far) after `within` or at the pipe's end.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        within: Duration,
        mut pick: impl FnMut(&str) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    let picked = pick(&line);
                    self.seen.push(line);
                    if let Some(value) = picked {
                        return value;
                    }
                }
                Err(why) => panic!("{what}: no such line ({why}); read: {:#?}", self.seen),
            }
        }
    }

    /// Waits (at most `within`) until the pipe is closed: whether it was.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return true,
                Err(mpsc::RecvTimeoutError::Timeout) => return false,
            }
        }
    }

    /// Every line, once the pipe is closed (blocks until then).
    pub fn all(mut self) -> Vec<String> {
        self.seen.extend(self.rx.iter());
        self.seen
    }

    /// [`Lines::all`] as one text, a `\n` after each line.
    pub fn text(self) -> String {
        self.all().iter().map(|l| format!("{l}\n")).collect()
    }
}

/// The address in the binary's `status API on http://ADDR/` log line.
pub fn status_api_addr(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once("status API on http://")?;
    rest.split('/').next()?.parse().ok()
}
