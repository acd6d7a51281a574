//! The rules settings must follow beyond their shape. Every broken rule is
//! collected, so one run of `queuewatch check` shows them all.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::PathBuf;

use super::paths::resolve_file;
use std::time::Duration;

use super::callbacks::CallbackSettings;
use super::duration::format_duration;
use super::error::{ConfigError, Problem};
use super::net;
use super::queues::{ThresholdOverrides, Thresholds};
use super::settings::{ClusterSettings, GenesysSettings, PollSettings, Settings, Source};

/// The shortest interval `source` allows.
pub(crate) fn min_interval(source: Source) -> Duration {
    match source {
        Source::Notifications => MIN_PUSH_INTERVAL,
        _ => MIN_INTERVAL,
    }
}

/// Shortest poll interval, global or per queue.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// Shortest event interval with `poll.source: notifications` (no request per event).
pub const MIN_PUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Shortest `poll.reconcile_interval`.
pub const MIN_RECONCILE_INTERVAL: Duration = Duration::from_secs(10);
/// Most queues with `poll.source: notifications`: 20 channels per OAuth
/// client, 1,000 topics each.
pub const MAX_PUSH_QUEUES: usize = 20_000;
/// Shortest `cluster.lease_ttl`.
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(3);
/// Longest value of any duration setting (keeps timer arithmetic far from overflow).
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Most queues one settings file may list.
pub const MAX_QUEUES: usize = 100_000;
/// Longest `queues[i].name`, in characters.
pub const MAX_QUEUE_NAME: usize = 256;
/// Largest `poll.history_size`.
pub const MAX_HISTORY: usize = 100_000;
/// Largest `poll.max_retries`.
pub const MAX_RETRIES: u32 = 100;
/// The Genesys Cloud region domains (docs/settings.md, `genesys.environment`);
/// others are accepted, with a warning.
pub const KNOWN_REGIONS: &[&str] = &[
    "mypurecloud.com",
    "mypurecloud.ie",
    "mypurecloud.de",
    "mypurecloud.com.au",
    "mypurecloud.jp",
    "usw2.pure.cloud",
    "cac1.pure.cloud",
    "apne2.pure.cloud",
    "euw2.pure.cloud",
    "aps1.pure.cloud",
    "use2.us-gov-pure.cloud",
    "sae1.pure.cloud",
    "mec1.pure.cloud",
    "apne3.pure.cloud",
    "euc2.pure.cloud",
    "mxc1.pure.cloud",
    "apse1.pure.cloud",
];

/// Collects problems in document order.
#[derive(Default)]
pub(crate) struct Problems(pub(crate) Vec<Problem>);

impl Problems {
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(path, message));
    }

    fn duration(&mut self, path: &str, value: Duration, min: Duration) {
        if min.is_zero() && value.is_zero() {
            self.push(path, "must be greater than 0s");
        } else if value < min {
            let (v, m) = (format_duration(value), format_duration(min));
            self.push(path, format!("{v} is below the {m} minimum"));
        } else if value > MAX_DURATION {
            let (v, m) = (format_duration(value), format_duration(MAX_DURATION));
            self.push(path, format!("{v} is above the {m} maximum"));
        }
    }

    fn env_name(&mut self, path: &str, name: &str) {
        let mut bytes = name.bytes();
        let ok = matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            self.push(
                path,
                format!(
                    "{:?} is not an environment variable name \
                     (letters, digits and _, not starting with a digit)",
                    shorten(name)
                ),
            );
        }
    }
}

/// Checks every rule; `Err(Invalid)` lists every problem found.
pub(crate) fn validate(settings: &Settings) -> Result<(), ConfigError> {
    let mut p = Problems::default();
    genesys(&mut p, &settings.genesys);
    poll(&mut p, &settings.poll);
    thresholds(&mut p, "thresholds", &settings.thresholds);
    queues(&mut p, settings);
    callbacks(&mut p, &settings.callbacks);
    if let Some(name) = &settings.http.auth_token_env {
        p.env_name("http.auth_token_env", name);
    }
    if let Some(cluster_settings) = &settings.cluster {
        cluster(&mut p, cluster_settings);
    }
    if p.0.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid(p.0))
    }
}

/// Findings that do not stop a run; see [`Settings::warnings`].
pub(crate) fn warnings(settings: &Settings) -> Vec<Problem> {
    let mut p = Problems::default();
    let env = &settings.genesys.environment;
    if !settings.genesys.is_simulated() && !KNOWN_REGIONS.contains(&env.as_str()) {
        p.push(
            "genesys.environment",
            format!("{env:?} is not a region this version knows; using https://api.{env}"),
        );
    }
    if let Some(bind) = settings.http.bind {
        if !bind.ip().is_loopback() && settings.http.auth_token_env.is_none() {
            p.push(
                "http.bind",
                format!("{bind} is reachable from other hosts and http.auth_token_env is not set"),
            );
        }
    }
    let budget = settings.budget();
    if budget.is_stretched() {
        p.push("genesys.rate_limit_per_minute", budget.to_string());
    }
    p.0
}

fn genesys(p: &mut Problems, g: &GenesysSettings) {
    if let Err(error) = net::check_environment(&g.environment) {
        p.push("genesys.environment", error.to_string());
    }
    if let Some(url) = &g.api_url {
        net::check_http_url(p, "genesys.api_url", url, true);
    }
    if let Some(url) = &g.login_url {
        net::check_http_url(p, "genesys.login_url", url, true);
    }
    p.env_name("genesys.client_id_env", &g.client_id_env);
    p.env_name("genesys.client_secret_env", &g.client_secret_env);
    p.duration("genesys.request_timeout", g.request_timeout, Duration::ZERO);
    p.duration(
        "genesys.token_refresh_margin",
        g.token_refresh_margin,
        Duration::ZERO,
    );
    if g.rate_limit_per_minute == 0 {
        p.push("genesys.rate_limit_per_minute", "must be at least 1");
    }
}

fn poll(p: &mut Problems, poll: &PollSettings) {
    p.duration("poll.interval", poll.interval, min_interval(poll.source));
    p.duration(
        "poll.reconcile_interval",
        poll.reconcile_interval,
        MIN_RECONCILE_INTERVAL,
    );
    if poll.max_retries > MAX_RETRIES {
        let n = poll.max_retries;
        p.push(
            "poll.max_retries",
            format!("{n} is above the {MAX_RETRIES} maximum"),
        );
    }
    p.duration("poll.backoff_base", poll.backoff_base, Duration::ZERO);
    p.duration("poll.backoff_max", poll.backoff_max, Duration::ZERO);
    if poll.backoff_base > poll.backoff_max {
        p.push(
            "poll.backoff_base",
            format!(
                "{} is above poll.backoff_max ({})",
                format_duration(poll.backoff_base),
                format_duration(poll.backoff_max)
            ),
        );
    }
    if poll.history_size == 0 {
        p.push("poll.history_size", "must be at least 1");
    } else if poll.history_size > MAX_HISTORY {
        let n = poll.history_size;
        p.push(
            "poll.history_size",
            format!("{n} is above the {MAX_HISTORY} maximum"),
        );
    }
}

fn thresholds(p: &mut Problems, at: &str, t: &Thresholds) {
    overrides(
        p,
        at,
        &ThresholdOverrides {
            max_acceptable_wait: Some(t.max_acceptable_wait),
            smoothing_factor: Some(t.smoothing_factor),
            max_queue_depth: Some(t.max_queue_depth),
            min_agent_count: Some(t.min_agent_count),
        },
    );
}

fn overrides(p: &mut Problems, at: &str, o: &ThresholdOverrides) {
    if let Some(wait) = o.max_acceptable_wait {
        p.duration(&format!("{at}.max_acceptable_wait"), wait, Duration::ZERO);
    }
    if let Some(alpha) = o.smoothing_factor {
        if !(alpha > 0.0 && alpha <= 1.0) {
            p.push(
                format!("{at}.smoothing_factor"),
                format!("{alpha} is outside 0 < smoothing_factor <= 1"),
            );
        }
    }
    if o.max_queue_depth == Some(0) {
        p.push(format!("{at}.max_queue_depth"), "must be at least 1");
    }
    // min_agent_count: any value; 0 disables the check.
}

fn queues(p: &mut Problems, settings: &Settings) {
    let list = &settings.queues;
    if list.is_empty() {
        p.push("queues", "at least one queue is required");
    } else if list.len() > MAX_QUEUES {
        let n = list.len();
        p.push(
            "queues",
            format!("{n} queues is above the {MAX_QUEUES} maximum"),
        );
    } else if settings.poll.source == Source::Notifications && list.len() > MAX_PUSH_QUEUES {
        let n = list.len();
        p.push(
            "queues",
            format!(
                "{n} queues is above the {MAX_PUSH_QUEUES} maximum of poll.source notifications \
                 (20 channels of 1000 topics per OAuth client)"
            ),
        );
    }
    let mut first_seen: HashMap<&str, usize> = HashMap::with_capacity(list.len());
    for (i, queue) in list.iter().enumerate() {
        // The key is written out only for a problem: thousands of queues
        // are checked at every start.
        let at = QueueKey(i);
        if let Err(error) = check_queue_id(&queue.id) {
            p.push(format!("{at}.id"), error.to_string());
        } else {
            match first_seen.entry(&queue.id) {
                Entry::Occupied(first) => {
                    let first = *first.get();
                    p.push(
                        format!("{at}.id"),
                        format!("duplicate of queues[{first}].id"),
                    );
                }
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
        if let Some(name) = &queue.name {
            if let Err(error) = check_queue_name(name) {
                p.push(format!("{at}.name"), error.to_string());
            }
        }
        if let Some(interval) = queue.interval {
            p.duration(
                &format!("{at}.interval"),
                interval,
                min_interval(settings.poll.source),
            );
        }
        if queue.thresholds != ThresholdOverrides::default() {
            overrides(p, &format!("{at}.thresholds"), &queue.thresholds);
        }
    }
}

/// `queues[i]`, written out only when a problem needs it.
#[derive(Clone, Copy)]
struct QueueKey(usize);

impl std::fmt::Display for QueueKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "queues[{}]", self.0)
    }
}

/// Why a `queues[i].name` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum QueueNameError {
    /// Empty or only whitespace.
    #[error("must not be empty (leave the key out instead)")]
    Blank,
    /// Above [`MAX_QUEUE_NAME`] characters.
    #[error("{length} characters is above the {max} maximum", max = MAX_QUEUE_NAME)]
    TooLong {
        /// Its length in characters.
        length: usize,
    },
    /// Holds a control character.
    #[error("{shown:?} contains the control character {control:?}")]
    Control {
        /// The name, shortened.
        shown: String,
        /// The first control character.
        control: char,
    },
}

/// A label for events, logs and the page: not blank, at most
/// [`MAX_QUEUE_NAME`] characters, no control characters.
fn check_queue_name(name: &str) -> Result<(), QueueNameError> {
    if name.trim().is_empty() {
        return Err(QueueNameError::Blank);
    }
    let length = name.chars().count();
    if length > MAX_QUEUE_NAME {
        return Err(QueueNameError::TooLong { length });
    }
    if let Some(control) = name.chars().find(|c| c.is_control()) {
        return Err(QueueNameError::Control {
            shown: shorten(name),
            control,
        });
    }
    Ok(())
}

/// Why a `queues[i].id` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum QueueIdError {
    /// Not shaped 8-4-4-4-12 (the id shortened).
    #[error(
        "{0:?} is not a queue UUID (8-4-4-4-12 hex digits, \
         e.g. 0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10)"
    )]
    NotAUuid(String),
    /// Has uppercase hex digits.
    #[error("{0:?} must be lowercase, as Genesys writes queue ids")]
    Uppercase(String),
}

/// Canonical hyphenated lowercase UUID (8-4-4-4-12): also guarantees the id
/// is safe to put in a URL path.
fn check_queue_id(id: &str) -> Result<(), QueueIdError> {
    let shape_ok = id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    if !shape_ok {
        Err(QueueIdError::NotAUuid(shorten(id)))
    } else if id.bytes().any(|b| b.is_ascii_uppercase()) {
        Err(QueueIdError::Uppercase(id.to_owned()))
    } else {
        Ok(())
    }
}

fn callbacks(p: &mut Problems, list: &[CallbackSettings]) {
    let mut jsonl_paths: HashMap<PathBuf, usize> = HashMap::new();
    for (i, callback) in list.iter().enumerate() {
        let at = format!("callbacks[{i}]");
        match callback {
            CallbackSettings::Log | CallbackSettings::Stdout => {}
            CallbackSettings::Jsonl { path } => {
                if path.as_os_str().is_empty() {
                    p.push(format!("{at}.path"), "must not be empty");
                } else {
                    match jsonl_paths.entry(resolve_file(path)) {
                        Entry::Occupied(first) => {
                            let first = *first.get();
                            p.push(
                                format!("{at}.path"),
                                format!("same file as callbacks[{first}].path"),
                            );
                        }
                        Entry::Vacant(slot) => {
                            slot.insert(i);
                        }
                    }
                }
            }
            CallbackSettings::Webhook { url, secret_env } => {
                net::check_http_url(p, &format!("{at}.url"), url, false);
                if let Some(name) = secret_env {
                    p.env_name(&format!("{at}.secret_env"), name);
                }
            }
            CallbackSettings::Nats {
                url,
                subject,
                stream,
            } => {
                net::check_nats_urls(p, &format!("{at}.url"), url);
                if let Err(error) = net::check_nats_subject(subject) {
                    p.push(format!("{at}.subject"), error.to_string());
                }
                if let Err(error) = net::check_stream_name(stream) {
                    p.push(format!("{at}.stream"), error.to_string());
                }
            }
        }
    }
}

fn cluster(p: &mut Problems, c: &ClusterSettings) {
    net::check_nats_urls(p, "cluster.nats_url", &c.nats_url);
    if let Some(id) = &c.instance_id {
        let ok = !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !ok {
            p.push(
                "cluster.instance_id",
                format!(
                    "{:?} is not an instance id (1 to 128 letters, digits, _, - or .)",
                    shorten(id)
                ),
            );
        }
    }
    p.duration("cluster.lease_ttl", c.lease_ttl, MIN_LEASE_TTL);
}

/// User text for a message: at most 60 characters, with an ellipsis if cut.
pub(crate) fn shorten(text: &str) -> String {
    const KEEP: usize = 60;
    match text.char_indices().nth(KEEP) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}...", &text[..cut]),
    }
}
