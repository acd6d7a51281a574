//! Starting and stopping a queuewatch instance: the [`QueueWatch`] builder
//! wires the actors under the supervisor; the [`Handle`] queries and stops
//! it; the poller set ([`pollers`]) is the one place pollers start and stop.

mod builder;
mod error;
mod handle;
mod pollers;
mod reload;
mod specs;

pub use builder::QueueWatch;
pub use error::StartError;
pub use handle::Handle;
use pollers::OwnedPollers;
pub use reload::ReloadSummary;
pub(crate) use specs::poller_specs;

#[cfg(test)]
mod budget_tests;
#[cfg(test)]
mod pressure_tests;
#[cfg(test)]
mod tests;
