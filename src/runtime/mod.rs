//! Starting and stopping a queuewatch instance: the [`QueueWatch`] builder
//! wires the actors under the supervisor; the [`Handle`] queries and stops it.

mod builder;
mod callbacks;
mod handle;
mod reload;

pub(crate) use builder::poller_specs;
pub use builder::{QueueWatch, StartError};
pub use handle::{Handle, Readiness};
pub use reload::ReloadSummary;

#[cfg(test)]
mod budget_tests;
#[cfg(test)]
mod pressure_tests;
#[cfg(test)]
mod tests;
