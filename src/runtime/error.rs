//! [`StartError`]: why an instance could not start, typed by cause.

use crate::backoff::InvalidBackoff;
use crate::callbacks::spawn::CallbackError;
use crate::cluster::ClusterError;
use crate::config::ConfigError;
use crate::genesys::tls::TlsError;
use crate::genesys::EnvError;

/// Why an instance could not start. [`StartError::is_config`] tells the
/// settings' faults (the binary exits 2) from the world's (exit 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The settings are invalid (every problem, each naming its key).
    #[error(transparent)]
    Settings(#[from] ConfigError),
    /// A variable the settings name is missing or unusable.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// `poll.backoff_base` / `poll.backoff_max` do not make a backoff.
    #[error("poll.backoff_base: {0}")]
    Backoff(#[from] InvalidBackoff),
    /// A callback cannot start.
    #[error(transparent)]
    Callback(#[from] CallbackError),
    /// Cluster mode cannot start.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The TLS configuration (extra root certificates) is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The in-process simulator could not start.
    #[error("starting the simulator: {0}")]
    Simulator(std::io::Error),
    /// `environment: simulated` in a build without the simulator.
    #[error(
        "genesys.environment: \"simulated\" needs the built-in simulator, which this build \
         leaves out (cargo feature `simulator`, on by default)"
    )]
    NoSimulator,
    /// The push source's tuning is out of range (a library caller's mistake).
    #[error("push tuning: {0}")]
    PushTuning(String),
    /// The status API cannot listen on `http.bind`.
    #[error("http.bind: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

impl StartError {
    /// Whether the settings are at fault (exit 2) rather than something
    /// outside them (a NATS server, a port in use, a file: exit 1).
    pub fn is_config(&self) -> bool {
        match self {
            StartError::Settings(_)
            | StartError::Env(_)
            | StartError::Backoff(_)
            | StartError::NoSimulator
            | StartError::PushTuning(_) => true,
            StartError::Callback(e) => e.is_config(),
            StartError::Cluster(e) => matches!(e, ClusterError::BadUrl(_)),
            StartError::Tls(_) | StartError::Simulator(_) | StartError::Bind { .. } => false,
        }
    }
}
