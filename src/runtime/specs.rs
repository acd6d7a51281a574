//! From settings to the spec of each queue's poller: its interval,
//! thresholds and phase on the tick grid (a pure decision).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::actors::poller::PollerSpec;
use crate::config::{Settings, Source};
use crate::genesys::wire::OBSERVATIONS_MAX_QUEUES;
use crate::schedule;

/// The spec of every configured queue. Each queue ticks on a phase of its
/// own, except with `observations` (and `notifications`, whose fallback
/// polls observations), where queues of one interval are cut
/// into batches of at most 100 that tick together (one request each), and
/// the batches spread evenly over the interval.
pub(crate) fn poller_specs(settings: &Settings) -> Vec<PollerSpec> {
    let mut phases: HashMap<&str, f64> = HashMap::new();
    // The push source's fallback polls observations: batched the same way.
    if matches!(
        settings.poll.source,
        Source::Observations | Source::Notifications
    ) {
        let mut groups: BTreeMap<Duration, Vec<&str>> = BTreeMap::new();
        for queue in &settings.queues {
            groups
                .entry(settings.queue_interval(queue))
                .or_default()
                .push(&queue.id);
        }
        for (interval, mut ids) in groups {
            ids.sort_unstable();
            let batches = ids.len().div_ceil(OBSERVATIONS_MAX_QUEUES);
            // Offset each interval group so that groups do not tick together.
            let offset = schedule::phase_of(&interval.as_millis().to_string());
            for (index, chunk) in ids.chunks(OBSERVATIONS_MAX_QUEUES).enumerate() {
                let phase = (offset + index as f64 / batches as f64).fract();
                phases.extend(chunk.iter().map(|id| (*id, phase)));
            }
        }
    }
    settings
        .queues
        .iter()
        .map(|queue| PollerSpec {
            queue_id: queue.id.clone(),
            name: queue.name.clone(),
            source: settings.poll.source,
            interval: settings.queue_interval(queue),
            phase: phases
                .get(queue.id.as_str())
                .copied()
                .unwrap_or_else(|| schedule::phase_of(&queue.id)),
            thresholds: settings.queue_thresholds(queue),
        })
        .collect()
}
