//! A simulated Genesys Cloud organisation, served over HTTP for tests and demos.
//!
//! One actix-web server answers both the OAuth host path (`POST /oauth/token`)
//! and the API host paths, the way Genesys Cloud does:
//!
//! - `POST /oauth/token`: client-credentials grant (HTTP Basic + form body);
//! - `GET /api/v2/guest/messaging/queues/{queueId}/position`;
//! - `GET /api/v2/routing/queues/{queueId}/mediatypes/message/estimatedwaittime`;
//! - `POST /api/v2/analytics/queues/observations/query`;
//! - the Notifications API: `POST /api/v2/notifications/channels`,
//!   `HEAD /api/v2/notifications/channels/{id}`,
//!   `GET|PUT|POST|DELETE /api/v2/notifications/channels/{id}/subscriptions`
//!   (topics `v2.analytics.queues.{queueId}.observations`, at most 1,000 per
//!   channel, at most [`NotificationsConfig::max_channels`] channels), and the
//!   WebSocket `GET /channels/{id}` (the `connectUri`; no bearer): heartbeats,
//!   `{"message":"ping"}` -> pong, `v2.system.socket_closing`, and once a
//!   [`NotificationsConfig::publish_period`] one message per subscribed topic
//!   whose queue changed, carrying only the metrics that changed.
//!
//! API routes need a valid bearer token (401 otherwise) and are rate-limited
//! per token over a sliding 60 s window (429 with `Retry-After` and the
//! Genesys body); their responses carry `ININ-Correlation-Id` and, while a
//! limit is in force, `inin-ratelimit-count`/`-allowed`/`-reset`.
//! Each API request goes through: bearer check, injected [`Faults`], rate
//! limit, answer. Queues evolve over wall time, deterministically from
//! [`SimulatorConfig::seed`]. Admin routes under `/simulator/` change faults
//! and read counters from other processes (see the `admin` and
//! `notifications::admin` module sources); the Notifications faults
//! ([`Simulator::drop_socket`], [`Simulator::stall`],
//! [`Simulator::announce_socket_closing`], [`Simulator::expire_channel`],
//! [`Simulator::evict_channel`], [`Simulator::refuse_topics`]) and
//! [`Simulator::pin_waiting`] are on the handle too.
//!
//! This module shares no code with the production client on purpose.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use queuewatch::simulator::{self, Fault, FaultRule, SimulatorConfig};
//! let sim = simulator::start(
//!     SimulatorConfig::with_queues(["q1", "q2"]),
//!     "127.0.0.1:0".parse().expect("address"),
//! )
//! .await?;
//! sim.faults().push(FaultRule::times(Fault::ServerError { status: 503 }, 2));
//! println!("point api_url and login_url at {}", sim.base_url());
//! sim.stop().await;
//! # Ok(())
//! # }
//! ```

mod admin;
mod config;
mod faults;
mod notifications;
mod observations;
mod queue_model;
mod rate;
mod record;
mod responses;
mod routes;
mod server;
mod shared;
mod state;
mod token;

#[cfg(test)]
mod tests;

pub use config::{SimulatorConfig, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
pub use faults::{Fault, FaultRule, FaultSet, Faults};
pub use notifications::{ChannelInfo, NotificationStats, NotificationsConfig};
pub use record::{RequestRecord, SimStats, REQUEST_LOG_CAPACITY, STATUS_DROPPED};
pub use server::{start, Simulator};
