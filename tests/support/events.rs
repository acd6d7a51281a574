//! Reading an instance's events (`Handle::event_stream`): the next one that
//! matches, or all of them collected in the background.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use queuewatch::{Event, Handle};
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, watch};

/// The next event (parsed as `T`: `Event` or `serde_json::Value`) for which
/// `pred` holds; panics naming `what` after `within`. Events missed by a
/// lagging receiver are skipped.
pub async fn next<T: DeserializeOwned>(
    events: &mut broadcast::Receiver<Arc<str>>,
    what: &str,
    within: Duration,
    pred: impl Fn(&T) -> bool,
) -> T {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(json) => {
                    let event: T = serde_json::from_str(&json).expect("event JSON");
                    if pred(&event) {
                        return event;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => panic!("event stream closed"),
            }
        }
    };
    tokio::time::timeout(within, wait)
        .await
        .unwrap_or_else(|_| panic!("no {what} event within {within:?}"))
}

/// The next `n` events, within `within` for all of them.
pub async fn next_n(
    events: &mut broadcast::Receiver<Arc<str>>,
    n: usize,
    within: Duration,
) -> Vec<Event> {
    let started = Instant::now();
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let left = within.saturating_sub(started.elapsed());
        got.push(
            next(
                events,
                &format!("{} more", n - got.len()),
                left,
                |_: &Event| true,
            )
            .await,
        );
    }
    got
}

/// Every event of an instance with when it arrived, collected in the background.
#[derive(Clone)]
pub struct Collector {
    events: Arc<Mutex<Vec<(Instant, Event)>>>,
    count: watch::Receiver<usize>,
}

impl Collector {
    pub fn start(handle: &Handle) -> Collector {
        let mut stream = handle.event_stream();
        let events: Arc<Mutex<Vec<(Instant, Event)>>> = Arc::default();
        let (tx, count) = watch::channel(0);
        let sink = events.clone();
        actix_rt::spawn(async move {
            loop {
                match stream.recv().await {
                    Ok(json) => {
                        let event: Event = serde_json::from_str(&json).expect("event JSON");
                        let mut events = sink.lock().unwrap();
                        events.push((Instant::now(), event));
                        tx.send_replace(events.len());
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        panic!("the collector lagged by {n} events")
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        Collector { events, count }
    }

    pub fn snapshot(&self) -> Vec<(Instant, Event)> {
        self.events.lock().unwrap().clone()
    }

    /// How many events arrived so far.
    pub fn len(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    /// Waits (at most `within`) until `pred` holds for the events so far.
    pub async fn until(
        &self,
        within: Duration,
        pred: impl Fn(&[(Instant, Event)]) -> bool,
    ) -> bool {
        let mut count = self.count.clone();
        tokio::time::timeout(within, async {
            loop {
                if pred(&self.snapshot()) {
                    return;
                }
                if count.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
        .await
        .is_ok()
    }

    /// [`Collector::until`], panicking naming `what`; how long it took.
    pub async fn wait(
        &self,
        what: &str,
        within: Duration,
        pred: impl Fn(&[(Instant, Event)]) -> bool,
    ) -> Duration {
        let started = Instant::now();
        assert!(
            self.until(within, pred).await,
            "not within {within:?}: {what}"
        );
        started.elapsed()
    }
}
