//! `callbacks:` — where every poll event is delivered.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// One event sink (`callbacks[i]`), chosen by `kind`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case", from = "RawCallback")]
pub enum CallbackSettings {
    /// `kind: log` — one log line per event.
    Log,
    /// `kind: stdout` — one JSON line per event on standard output.
    Stdout,
    /// `kind: jsonl` — audit file: one JSON line per event, appended.
    Jsonl {
        /// The file to append to (created if missing).
        #[serde(default = "default_jsonl_path")]
        path: PathBuf,
    },
    /// `kind: webhook` — POST each event as JSON.
    Webhook {
        /// Where to POST; https unless the host is loopback.
        url: String,
        /// Environment variable holding the signing secret (Standard Webhooks); optional.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_env: Option<String>,
    },
    /// `kind: nats` — publish every event to JetStream as `<subject>.<queue_id>`.
    Nats {
        /// NATS server(s): `nats://` or `tls://` URL, or a comma-separated list.
        #[serde(default = "default_nats_url")]
        url: String,
        /// Subject prefix; an event goes to `<subject>.<queue_id>`.
        #[serde(default = "default_nats_subject")]
        subject: String,
        /// JetStream stream, created if missing.
        #[serde(default = "default_nats_stream")]
        stream: String,
    },
}

impl CallbackSettings {
    /// The `kind` name, e.g. `"webhook"`.
    pub fn kind(&self) -> &'static str {
        match self {
            CallbackSettings::Log => "log",
            CallbackSettings::Stdout => "stdout",
            CallbackSettings::Jsonl { .. } => "jsonl",
            CallbackSettings::Webhook { .. } => "webhook",
            CallbackSettings::Nats { .. } => "nats",
        }
    }
}

pub(crate) fn default_jsonl_path() -> PathBuf {
    PathBuf::from("queuewatch-audit.jsonl")
}
pub(crate) fn default_nats_url() -> String {
    super::settings::default_nats_url()
}
pub(crate) fn default_nats_subject() -> String {
    "queuewatch.events".to_owned()
}
pub(crate) fn default_nats_stream() -> String {
    "QUEUEWATCH".to_owned()
}

/// The reading side of [`CallbackSettings`]: serde's internally tagged unit
/// variants would silently accept extra keys (`{kind: log, path: x}`), so
/// `log` and `stdout` read through [`NoKeys`], which refuses any.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum RawCallback {
    Log(NoKeys),
    Stdout(NoKeys),
    Jsonl {
        #[serde(default = "default_jsonl_path")]
        path: PathBuf,
    },
    Webhook {
        url: String,
        #[serde(default)]
        secret_env: Option<String>,
    },
    Nats {
        #[serde(default = "default_nats_url")]
        url: String,
        #[serde(default = "default_nats_subject")]
        subject: String,
        #[serde(default = "default_nats_stream")]
        stream: String,
    },
}

impl From<RawCallback> for CallbackSettings {
    fn from(raw: RawCallback) -> Self {
        match raw {
            RawCallback::Log(NoKeys) => CallbackSettings::Log,
            RawCallback::Stdout(NoKeys) => CallbackSettings::Stdout,
            RawCallback::Jsonl { path } => CallbackSettings::Jsonl { path },
            RawCallback::Webhook { url, secret_env } => {
                CallbackSettings::Webhook { url, secret_env }
            }
            RawCallback::Nats {
                url,
                subject,
                stream,
            } => CallbackSettings::Nats {
                url,
                subject,
                stream,
            },
        }
    }
}

/// The rest of a callback mapping that must hold nothing besides `kind`.
struct NoKeys;

impl<'de> Deserialize<'de> for NoKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(NoKeysVisitor)
    }
}

struct NoKeysVisitor;

impl<'de> Visitor<'de> for NoKeysVisitor {
    type Value = NoKeys;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("no keys besides `kind`")
    }

    fn visit_unit<E: de::Error>(self) -> Result<NoKeys, E> {
        Ok(NoKeys)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NoKeys, A::Error> {
        match map.next_key::<String>()? {
            None => Ok(NoKeys),
            Some(key) => Err(de::Error::custom(format_args!(
                "unknown field `{}`: this callback kind takes no keys besides `kind`",
                super::validate::shorten(&key)
            ))),
        }
    }
}
