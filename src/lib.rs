//! queuewatch
pub mod actors;
pub mod backoff;
pub mod callbacks;
pub mod config;
pub(crate) mod cycle;
pub mod error;
pub mod event;
pub mod genesys;
pub mod ratelimit;
pub mod retry;
pub mod runtime;
pub mod schedule;
pub mod secret;
pub mod simulator;
pub mod state;
pub mod telemetry;
pub mod tracking;
pub mod web;

pub use config::Settings;
pub use event::Event;
pub use runtime::{Handle, QueueWatch, StartError};
