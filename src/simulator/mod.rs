//! A simulated Genesys Cloud organisation, served over HTTP for tests and demos.
//!
//! One actix-web server answers both the OAuth host path (`POST /oauth/token`)
//! and the API host paths, the way Genesys Cloud does:
//!
//! - `POST /oauth/token`: client-credentials grant (HTTP Basic + form body);
//! - `GET /api/v2/guest/messaging/queues/{queueId}/position`;
//! - `GET /api/v2/routing/queues/{queueId}/mediatypes/message/estimatedwaittime`;
//! - `POST /api/v2/analytics/queues/observations/query`.
//!
//! API routes need a valid bearer token (401 otherwise) and are rate-limited
//! per token over a sliding 60 s window (429 with `Retry-After` and the
//! Genesys body); their responses carry `ININ-Correlation-Id` and, while a
//! limit is in force, `inin-ratelimit-count`/`-allowed`/`-reset`.
//! Each API request goes through: bearer check, injected [`Faults`], rate
//! limit, answer. Queues evolve over wall time, deterministically from
//! [`SimulatorConfig::seed`]. Admin routes under `/simulator/` change faults
//! and read counters from other processes (see the `admin` module source).
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
pub use record::{RequestRecord, SimStats, REQUEST_LOG_CAPACITY, STATUS_DROPPED};
pub use server::{start, Simulator};
