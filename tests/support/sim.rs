//! A simulator on a loopback port the system picks, stopped when it goes
//! out of scope: a test that fails an assertion does not leave it serving.

use std::ops::Deref;

use futures_util::FutureExt;
use queuewatch::simulator::{self, Simulator, SimulatorConfig};

/// A running simulator (derefs to [`Simulator`]); stops on drop.
pub struct RunningSim {
    sim: Option<Simulator>,
}

/// Starts `config` on 127.0.0.1, port 0 (`Simulator::addr` tells which).
pub async fn start(config: SimulatorConfig) -> RunningSim {
    let sim = simulator::start(config, ([127, 0, 0, 1], 0).into())
        .await
        .expect("simulator starts");
    RunningSim { sim: Some(sim) }
}

impl RunningSim {
    /// Stops it now, waiting for the requests in flight (as
    /// `Simulator::stop`); for tests that need it gone before they end.
    pub async fn stop(mut self) {
        if let Some(sim) = self.sim.take() {
            sim.stop().await;
        }
    }
}

impl Deref for RunningSim {
    type Target = Simulator;

    fn deref(&self) -> &Simulator {
        self.sim.as_ref().expect("running")
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            // Drop cannot wait: the first poll sends the stop command to the
            // server (`ServerHandle::stop` sends before it waits), which
            // stops accepting and ends its workers without the test
            // waiting for them.
            let _ = sim.stop().now_or_never();
        }
    }
}
