//! Starting, observing and stopping a simulator.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpServer};
use tokio::task::AbortHandle;

use super::config::SimulatorConfig;
use super::faults::Faults;
use super::notifications;
use super::record::{RequestRecord, SimStats};
use super::routes;
use super::shared::Shared;

/// Seconds a stopping server waits for requests in flight.
const SHUTDOWN_TIMEOUT_SECS: u64 = 2;

/// Handle on a running simulator; clones share the same server.
#[derive(Clone)]
pub struct Simulator {
    addr: SocketAddr,
    pub(super) shared: web::Data<Shared>,
    handle: ServerHandle,
    publisher: AbortHandle,
}

/// Starts a simulator listening on `bind` (port 0 picks a free port).
///
/// Must be called inside an actix `System` (e.g. `#[actix_rt::main]`,
/// `#[actix_rt::test]`): the server and the Notifications publisher run as
/// tasks of the current arbiter.
/// The simulator installs no signal handlers.
pub async fn start(config: SimulatorConfig, bind: SocketAddr) -> io::Result<Simulator> {
    let shared = web::Data::new(Shared::new(&config));
    let data = shared.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .configure(routes::configure)
    })
    .workers(config.workers.max(1))
    .disable_signals()
    .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
    .bind(bind)?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| io::Error::other("the simulator is bound to no address"))?;
    let server = server.run();
    let handle = server.handle();
    let publisher = notifications::spawn_publisher(&shared.clone().into_inner());
    actix_rt::spawn(async move {
        if let Err(err) = server.await {
            log::error!("Genesys simulator stopped with an error: {err}");
        }
    });
    log::info!(
        "Genesys simulator listening on http://{addr} ({} queue(s), client id '{}', seed {})",
        config.queue_ids.len(),
        config.client_id,
        config.seed
    );
    Ok(Simulator {
        addr,
        shared,
        handle,
        publisher,
    })
}

impl Simulator {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, usable as both `api_url` and `login_url`
    /// (an unspecified bind address is given as loopback).
    pub fn base_url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// Runtime fault injection.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The request log, oldest first (the last 200 000 requests).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.log().records()
    }

    /// Counters since start.
    pub fn stats(&self) -> SimStats {
        self.shared.log().stats()
    }

    /// Invalidates every token issued so far: they get 401 from now on.
    pub fn revoke_tokens(&self) {
        let revoked = self.shared.state().revoke_tokens();
        log::info!("simulator revoked {revoked} token(s)");
    }

    /// Creates a queue (no change if it exists).
    pub fn add_queue(&self, id: &str) {
        self.shared.state().add_queue(id, Instant::now());
    }

    /// Deletes a queue: it gets 404 and is left out of observations.
    pub fn remove_queue(&self, id: &str) {
        self.shared.state().remove_queue(id);
    }

    /// Changes the per-token API limit per sliding minute; `None` turns the
    /// limit and the `inin-ratelimit-*` headers off.
    pub fn set_rate_limit(&self, per_minute: Option<u32>) {
        self.shared.state().set_rate_limit(per_minute);
    }

    /// `Some(n)`: advertise `n` in `inin-ratelimit-allowed` and enforce `n`
    /// (even when the rate limit is off); `None`: back to the rate limit.
    pub fn set_advertised_allowed(&self, allowed: Option<u32>) {
        self.shared.state().set_advertised_allowed(allowed);
    }

    /// Stops the server gracefully (requests in flight get 2 s to finish)
    /// and the Notifications publisher.
    pub async fn stop(&self) {
        self.publisher.abort();
        self.shared.notifications().close_sockets();
        self.handle.stop(true).await;
        log::info!("Genesys simulator on {} stopped", self.addr);
    }
}
