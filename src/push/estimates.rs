//! `poll.wait_time: active`: the estimated wait time, polled only for
//! queues with customers waiting, busiest first, with what the token's
//! budget leaves after channel upkeep, reconciles and fallback polling.
//! No topic carries it; idle queues report `null`.

use std::rc::Rc;
use std::time::Duration;

use tokio::time::{sleep, Instant};

use super::pace::fallback_demand;
use super::pool::PoolShared;
use super::wait_time::{pick, spare_per_minute, Candidate};
use crate::error::ErrorKind;

/// Share of the rate in force never planned for wait-time polls (room for
/// set-ups and snapshots after a reconnect).
const HEADROOM: f64 = 0.1;

/// A queue's wait is polled at most this often.
const MIN_AGE: Duration = Duration::from_secs(5);

/// Runs one round per `interval` (at least 1 s) until the pool stops.
pub(crate) async fn run(shared: Rc<PoolShared>, interval: Duration) {
    let round = interval.max(Duration::from_secs(1));
    let mut carry = 0.0_f64;
    loop {
        sleep(round).await;
        let limiter = &shared.rest.limiter;
        let store = &shared.store;
        // Reserved: the reconcile demand (the configured demand) and the
        // fallback polls at the shortest interval.
        let reserved = limiter.demand_per_minute() + fallback_demand(store.on_fallback(), interval);
        let rate = limiter.rate_per_minute().max(0.0) as u32;
        let spare = f64::from(spare_per_minute(rate, reserved, HEADROOM));
        carry += spare * round.as_secs_f64() / 60.0;
        let slots = carry.floor();
        carry -= slots;
        if slots < 1.0 {
            continue;
        }
        let now = Instant::now();
        let cells = store.cells();
        let candidates: Vec<Candidate> = cells
            .iter()
            .map(|(id, cell)| {
                let (waiting, last_polled) = cell.wait_candidate();
                Candidate {
                    queue_id: id.clone(),
                    waiting,
                    last_polled,
                }
            })
            .collect();
        let picked = pick(&candidates, slots as usize, now, MIN_AGE.max(round));
        for id in picked {
            let Some(cell) = store.cell(&id) else {
                continue;
            };
            // Checked again at the last moment: never poll an idle queue.
            if cell.view().waiting.unwrap_or(0) == 0 {
                continue;
            }
            let result = shared
                .rest
                .call(|client, token| {
                    let id = id.clone();
                    async move { client.estimated_wait(&token, &id).await }
                })
                .await;
            match result {
                Ok(sample) => {
                    shared.telemetry().push_wait_polled();
                    if let Some(wait) = sample.estimated_wait_seconds {
                        cell.waited(wait, Instant::now());
                    }
                }
                Err(error) if error.kind == ErrorKind::Cancelled => return,
                Err(error) => log::debug!("push: estimated wait of queue {id}: {error}"),
            }
        }
    }
}
