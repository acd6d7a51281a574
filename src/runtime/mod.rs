//! Starting and stopping a queuewatch instance: the [`QueueWatch`] builder
//! wires the actors under the supervisor; the [`Handle`] queries and stops it.

mod builder;
mod callbacks;
mod handle;

pub use builder::{QueueWatch, StartError};
pub use handle::{Handle, Readiness};

#[cfg(test)]
mod tests;
