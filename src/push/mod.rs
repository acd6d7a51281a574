//! The push source (`poll.source: notifications`): queue observations
//! pushed over the Genesys Notifications API, 1,000 topics per WebSocket
//! channel; batched REST snapshots to reconcile; observations polling as
//! the fallback while a channel is down; estimated wait time polled only
//! where customers wait.
//!
//! Decisions are pure and tested beside them (`frame`, `merge`, `plan`,
//! `assign`, `pace`, `wait_time`, `tick`, `timers`); the pool actor and its tasks
//! (`pool`, `channel`, `reconcile`, `estimates`) carry them out, every REST
//! call through `rest` (one budget, one Retry-After gate).

pub(crate) mod assign;
pub(crate) mod channel;
pub(crate) mod estimates;
pub(crate) mod frame;
pub(crate) mod merge;
pub(crate) mod pace;
pub(crate) mod plan;
pub(crate) mod pool;
pub(crate) mod reconcile;
pub(crate) mod rest;
pub(crate) mod store;
pub(crate) mod tick;
pub(crate) mod timers;
pub(crate) mod wait_time;
