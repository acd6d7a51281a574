//! Settings: everything settings.yaml can say (docs/settings.md, docs/cluster.md).
//!
//! One typed tree, rooted at [`Settings`], whose doc comments are the user
//! documentation of each key. Loading is two steps:
//!
//! 1. **Parse** ([`serde_saphyr`]): YAML syntax, unknown keys, wrong types and
//!    unparsable durations fail at once as [`ConfigError::Parse`], with the key
//!    path (`queues[2].interval: ...`) and the line and column.
//! 2. **Validate** ([`Settings::validate`]): value rules (intervals of at least
//!    5s, queue ids that are UUIDs, https URLs, ...). Every broken rule is
//!    reported together as [`ConfigError::Invalid`], each a [`Problem`] naming
//!    its key path with 0-based list indexes.
//!
//! ```
//! use queuewatch::config::Settings;
//!
//! let settings = Settings::from_yaml_str(
//!     "queues:\n  - id: 0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10\n    name: support\n",
//! )?;
//! assert_eq!(settings.poll.interval, std::time::Duration::from_secs(10));
//! assert_eq!(settings.budget().requests_per_minute, 6.0);
//! # Ok::<(), queuewatch::config::ConfigError>(())
//! ```

mod budget;
mod callbacks;
pub mod duration;
mod error;
pub(crate) mod net;
mod number;
mod parse;
mod paths;
mod queues;
mod settings;
mod validate;

#[cfg(test)]
mod tests;

pub use budget::{Budget, OBSERVATIONS_BATCH};
pub use callbacks::CallbackSettings;
pub use duration::{format_duration, parse_duration};
pub use error::{ConfigError, Problem, SHOWN_PROBLEMS};
pub use parse::MAX_SETTINGS_BYTES;
pub use queues::{QueueSettings, ThresholdOverrides, Thresholds};
pub use settings::{
    ClusterSettings, GenesysSettings, HttpSettings, PollSettings, Settings, Source, WaitTime,
};
pub use validate::{
    KNOWN_REGIONS, MAX_DURATION, MAX_HISTORY, MAX_PUSH_QUEUES, MAX_QUEUES, MAX_QUEUE_NAME,
    MAX_RETRIES, MIN_INTERVAL, MIN_LEASE_TTL, MIN_PUSH_INTERVAL, MIN_RECONCILE_INTERVAL,
};
