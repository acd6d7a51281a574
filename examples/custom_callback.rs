//! A custom callback actor: raises an alert when a queue goes over capacity,
//! and survives its own panic through queuewatch's supervisor.
//!
//! ```sh
//! cargo run --example custom_callback            # simulated Genesys, Ctrl-C to stop
//! ```
//!
//! The actor is registered by *factory* (`QueueWatch::callback`), so after a
//! panic the supervisor builds a fresh one and events keep flowing to it.

use std::collections::HashSet;
use std::time::Duration;

use actix::prelude::*;
use queuewatch::config::{QueueSettings, Settings};
use queuewatch::{Event, QueueId, QueueWatch};
use tokio::sync::mpsc;

/// An alert raised by [`CapacityAlert`].
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The queue that went over capacity.
    pub queue_id: QueueId,
    /// Its position (or depth) when it did.
    pub depth: Option<u32>,
}

/// Alerts once when a queue goes over capacity, again only after it recovered.
pub struct CapacityAlert {
    over: HashSet<QueueId>,
    alerts: mpsc::UnboundedSender<Alert>,
}

impl CapacityAlert {
    /// A fresh alerter (the supervisor calls this again after a panic).
    pub fn new(alerts: mpsc::UnboundedSender<Alert>) -> Self {
        CapacityAlert {
            over: HashSet::new(),
            alerts,
        }
    }
}

impl Actor for CapacityAlert {
    type Context = Context<Self>;
}

impl Handler<Event> for CapacityAlert {
    type Result = ();

    fn handle(&mut self, event: Event, _: &mut Context<Self>) {
        match event {
            Event::Poll(poll) if poll.over_capacity => {
                if self.over.insert(poll.queue_id.clone()) {
                    let _ = self.alerts.send(Alert {
                        queue_id: poll.queue_id,
                        depth: poll.position.or(poll.waiting),
                    });
                }
            }
            Event::Poll(poll) => {
                self.over.remove(&poll.queue_id);
            }
            // A stand-in for a bug in user code: the supervisor restarts us.
            Event::PollFailed(failed) => panic!("alerting cannot handle {}", failed.error),
        }
    }
}

/// A queuewatch instance with the alerter plugged in.
pub fn watch(settings: Settings, alerts: mpsc::UnboundedSender<Alert>) -> QueueWatch {
    QueueWatch::new(settings).callback("capacity-alert", move || CapacityAlert::new(alerts.clone()))
}

/// Three simulated queues with a low capacity threshold, so alerts come quickly.
pub fn demo_settings() -> Settings {
    let mut settings = Settings::for_queues(Vec::<String>::new());
    settings.queues = [
        "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10",
        "1c7d4c8f-5a2e-4d68-8b9f-4a2a3e8d0b21",
        "2d8e5d9a-6b3f-4e79-9c0a-5b3b4f9e1c32",
    ]
    .into_iter()
    .map(QueueSettings::new)
    .collect();
    settings.poll.interval = Duration::from_secs(5);
    settings.thresholds.max_queue_depth = 2;
    settings.callbacks.clear();
    settings.http.bind = None;
    settings
}

#[actix_rt::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let (tx, mut alerts) = mpsc::unbounded_channel();
    let handle = watch(demo_settings(), tx).start().await?;
    println!("watching 3 simulated queues; alerts appear below (Ctrl-C to stop)");
    loop {
        tokio::select! {
            Some(alert) = alerts.recv() => println!("ALERT: queue {} over capacity (depth {:?})", alert.queue_id, alert.depth),
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    handle.shutdown().await;
    Ok(())
}
