//! The Genesys Notifications API: channels, topic subscriptions and the
//! WebSocket that pushes queue observation changes.
//!
//! - `channels`: the registry (channels, topics, what each socket was told);
//! - `routes`: the REST calls (through the API pipeline) and the upgrade;
//! - `socket`: one WebSocket session; `publisher`: the once-a-period pass;
//! - `admin` and `control`: the faults, over HTTP and on [`Simulator`](super::Simulator).

mod admin;
mod channels;
mod config;
mod control;
mod info;
mod messages;
mod publisher;
mod routes;
mod socket;
mod topics;

#[cfg(test)]
mod tests;

pub use config::NotificationsConfig;
pub use info::{ChannelInfo, NotificationStats};

pub(crate) use channels::Registry;
pub(crate) use publisher::spawn as spawn_publisher;

/// Registers the Notifications routes and their admin routes.
pub(crate) fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    routes::configure(cfg);
    admin::configure(cfg);
}
