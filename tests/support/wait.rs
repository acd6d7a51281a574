//! Waiting for a state with a deadline: the one place where a test sleeps
//! between checks. Waits on an event (a channel, the event stream, a
//! child's output) are better where there is one; these are for state that
//! announces nothing (a file, a counter, another process's answers).

use std::time::{Duration, Instant};

/// How long to sleep between two checks.
pub const STEP: Duration = Duration::from_millis(25);

/// Checks `ready` until it gives a value or `within` has passed (`None`).
pub async fn poll<T>(within: Duration, mut ready: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = ready().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(STEP).await;
    }
}

/// Waits until `ready` gives a value; panics naming `what` after `within`.
pub async fn eventually_some<T>(
    what: &str,
    within: Duration,
    ready: impl AsyncFnMut() -> Option<T>,
) -> T {
    poll(within, ready)
        .await
        .unwrap_or_else(|| panic!("not within {within:?}: {what}"))
}

/// Waits until `ready` holds (see [`eventually_some`]); how long that took.
pub async fn eventually(
    what: &str,
    within: Duration,
    mut ready: impl AsyncFnMut() -> bool,
) -> Duration {
    let started = Instant::now();
    eventually_some(what, within, async || ready().await.then_some(())).await;
    started.elapsed()
}

/// [`poll`] for code off the event loop (the thread sleeps between checks).
pub fn poll_blocking<T>(within: Duration, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = ready() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(STEP);
    }
}

/// [`eventually`] off the event loop.
pub fn eventually_blocking(
    what: &str,
    within: Duration,
    mut ready: impl FnMut() -> bool,
) -> Duration {
    let started = Instant::now();
    poll_blocking(within, || ready().then_some(()))
        .unwrap_or_else(|| panic!("not within {within:?}: {what}"));
    started.elapsed()
}
