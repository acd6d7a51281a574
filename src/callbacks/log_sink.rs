use super::shared::SharedEvent;
use super::EventSink;
use crate::event::Event;

/// `kind: log`: one log line per event (target `queuewatch::event`).
#[derive(Debug, Default)]
pub struct LogSink;

impl EventSink for LogSink {
    fn deliver(&mut self, event: &SharedEvent) -> std::io::Result<()> {
        let event = event.event();
        match event {
            Event::Poll(e) => {
                let fmt_u32 = |v: Option<u32>| v.map_or("-".to_string(), |v| v.to_string());
                let fmt_f64 = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}s"));
                log::info!(
                    target: "queuewatch::event",
                    event:serde = event;
                    "queue={} name={} position={} waiting={} agents={} wait={} smoothed={} over_capacity={} exceeds_wait={} availability={} latency={:.1}ms attempts={}",
                    e.queue_id,
                    e.queue_name.as_deref().unwrap_or("-"),
                    fmt_u32(e.position),
                    fmt_u32(e.waiting),
                    fmt_u32(e.agents_on_queue),
                    fmt_f64(e.estimated_wait_seconds),
                    fmt_f64(e.smoothed_wait_seconds),
                    e.over_capacity,
                    e.exceeds_wait_directive,
                    e.agent_availability
                        .map_or("-".to_string(), |a| format!("{a:?}").to_lowercase()),
                    e.latency_ms,
                    e.attempts,
                );
            }
            Event::PollFailed(e) => log::warn!(
                target: "queuewatch::event",
                event:serde = event;
                "queue={} name={} poll failed: {} ({}) after {} attempt(s)",
                e.queue_id,
                e.queue_name.as_deref().unwrap_or("-"),
                e.error,
                e.detail,
                e.attempts,
            ),
        }
        Ok(())
    }
}
