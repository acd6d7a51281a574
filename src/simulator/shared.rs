//! State shared by every worker thread.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::config::SimulatorConfig;
use super::faults::Faults;
use super::notifications::Registry;
use super::record::{Endpoint, RequestLog, RequestRecord};
use super::state::SimState;

/// Credentials, faults, state and log of one simulator.
pub(crate) struct Shared {
    client_id: String,
    client_secret: String,
    /// Fault rules in force.
    pub(crate) faults: Faults,
    state: Mutex<SimState>,
    log: Mutex<RequestLog>,
    notifications: Mutex<Registry>,
}

impl Shared {
    pub(crate) fn new(config: &SimulatorConfig) -> Self {
        Self {
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            faults: Faults::default(),
            state: Mutex::new(SimState::new(config, Instant::now())),
            log: Mutex::new(RequestLog::new(config.request_log_capacity)),
            notifications: Mutex::new(Registry::new(&config.notifications)),
        }
    }

    /// True when the pair is the configured client id and secret.
    pub(crate) fn credentials_match(&self, client_id: &str, client_secret: &str) -> bool {
        client_id == self.client_id && client_secret == self.client_secret
    }

    /// The mutable state; never hold the guard across an `.await`.
    pub(crate) fn state(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The request log; never hold the guard across an `.await`.
    pub(crate) fn log(&self) -> MutexGuard<'_, RequestLog> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The Notifications channels; lock the state first when both are
    /// needed, and never hold the guard across an `.await`.
    pub(crate) fn notifications(&self) -> MutexGuard<'_, Registry> {
        self.notifications
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends to the request log.
    pub(crate) fn record(&self, endpoint: Endpoint, record: RequestRecord) {
        log::debug!(
            "simulator {} {} -> {}",
            record.method,
            record.path,
            record.status
        );
        self.log().record(endpoint, record);
    }
}
