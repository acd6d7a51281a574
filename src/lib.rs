//! queuewatch watches Genesys Cloud contact-center queues, thousands at once:
//! it polls queue position, wait time or depth, stays inside Genesys' per-token
//! rate limits, keeps a bounded history (a tracking matrix) per queue, and
//! hands every result to callbacks, all on supervised actix actors.
//!
//! # Quick start
//!
//! Poll one queue of the built-in simulated Genesys (no credentials needed)
//! and print the first event:
//!
//! ```
//! use std::time::Duration;
//! use queuewatch::{QueueWatch, Settings};
//!
//! #[actix_rt::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut settings = Settings::for_queues(["0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10"]);
//!     settings.poll.interval = Duration::from_secs(5);
//!     settings.callbacks.clear(); // no log lines; we read the events ourselves
//!     settings.http.bind = None; // no status API
//!
//!     let handle = QueueWatch::new(settings).start().await?;
//!     let mut events = handle.event_stream();
//!     println!("{}", events.recv().await?);
//!     handle.shutdown().await;
//!     Ok(())
//! }
//! ```
//!
//! For a real org, set `settings.genesys.environment` to its region domain
//! (e.g. `mypurecloud.ie`) and export `GENESYS_CLIENT_ID` and
//! `GENESYS_CLIENT_SECRET`.
//!
//! # The pieces
//!
//! - [`config`]: `settings.yaml` as typed, validated structs.
//! - [`QueueWatch`]: the builder; add your own callback actors with
//!   [`QueueWatch::callback`] (restarted by the supervisor after a panic) or
//!   any `Recipient<Event>` with [`QueueWatch::subscribe`].
//! - [`Handle`]: query queues and their matrices, add or remove queues,
//!   reload settings, shut down.
//! - [`web::configure`]: mount the status API and page into your actix-web app.
//! - [`Event`]: what every poll cycle ends in (serde types).
//! - [`QueueId`]: a queue id, one shared allocation from settings to events.
//! - [`genesys`]: the Genesys Cloud client on its own; [`simulator`]: a
//!   simulated Genesys for tests and demos.

#![warn(missing_docs)]

pub(crate) mod actors;
pub(crate) mod backoff;
pub(crate) mod callbacks;
pub(crate) mod cluster;
pub mod config;

pub mod error;
pub mod event;
pub mod genesys;
pub mod logs;
pub(crate) mod nats;
pub(crate) mod push;
mod queue_id;
pub(crate) mod ratelimit;
pub(crate) mod retry;
pub(crate) mod runtime;
pub(crate) mod schedule;
pub mod secret;
#[cfg(feature = "simulator")]
pub mod simulator;
pub(crate) mod state;
pub(crate) mod supervisor;
pub mod telemetry;
#[cfg(test)]
pub(crate) mod test_support;
pub(crate) mod throttle;
pub mod tracking;
pub mod web;

pub use actors::metrics::{QueueDetail, QueueSummary};
pub use backoff::{ExponentialBackoff, InvalidBackoff};
pub use callbacks::spawn::CallbackError;
pub use callbacks::webhook::signing::KeyError;
pub use cluster::ClusterError;
pub use config::Settings;
pub use event::Event;
pub use nats::NatsError;
#[doc(hidden)]
pub use push::pool::PushTuning;
pub use queue_id::QueueId;
pub use runtime::{Handle, QueueWatch, ReloadSummary, StartError};
pub use supervisor::RestartPolicy;
pub use web::Readiness;
