//! Log output: text for people (the default) or one JSON object per line
//! for log shippers (`--log-format json`, `QUEUEWATCH_LOG_FORMAT=json`).
//!
//! A JSON line carries `time` (RFC 3339, UTC, milliseconds), `level`,
//! `target` and `message`, then the record's key-values: the `log`
//! callback attaches the whole event as `event`, whose fields are put at the
//! top level (`queue_id`, `type`, `error`, …), so a shipper can index them
//! without parsing the message.
//!
//! [`DEFAULT_FILTER`] keeps start-up readable: `info`, except the HTTP
//! server's own start-up chatter (`RUST_LOG` overrides it all).

use std::io::Write;

use log::kv::{Error as KvError, Key, Value, VisitSource};
use log::Record;
use serde_json::{Map, Value as Json};

/// The filter when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "info,actix_server=warn";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `env_logger`'s text lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<LogFormat, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("{text:?}: expected text or json")),
        }
    }
}

/// A logger builder for `format`, honouring `RUST_LOG` (else [`DEFAULT_FILTER`]).
pub fn builder(format: LogFormat) -> env_logger::Builder {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(DEFAULT_FILTER));
    if format == LogFormat::Json {
        builder.format(|buf, record| {
            let mut line = json_line(record, &queuewatch_now());
            line.push('\n');
            buf.write_all(line.as_bytes())
        });
    }
    builder
}

fn queuewatch_now() -> String {
    crate::event::now_timestamp()
}

/// The JSON object of one record, written at `time`: `time`, `level`,
/// `target` and `message` first, then the key-values in name order.
pub fn json_line(record: &Record<'_>, time: &str) -> String {
    let head = [
        ("time", Json::from(time)),
        ("level", Json::from(record.level().as_str())),
        ("target", Json::from(record.target())),
        ("message", Json::from(record.args().to_string())),
    ];
    let mut rest = Map::new();
    for (key, value) in &head {
        rest.insert((*key).to_owned(), value.clone());
    }
    let _ = record.key_values().visit(&mut Fields(&mut rest));
    let mut line = String::from("{");
    for (key, value) in head.iter().map(|(k, v)| (*k, v)).chain(
        rest.iter()
            .filter(|(k, _)| !HEAD.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str(), v)),
    ) {
        if line.len() > 1 {
            line.push(',');
        }
        // Strings and JSON values always serialise.
        line.push_str(&serde_json::to_string(key).unwrap_or_default());
        line.push(':');
        line.push_str(&serde_json::to_string(value).unwrap_or_default());
    }
    line.push('}');
    line
}

/// The keys every line starts with.
const HEAD: [&str; 4] = ["time", "level", "target", "message"];

/// Puts key-values into the object: an `event` object's fields at the top
/// level (without overwriting `time`, `level`, `target`, `message`), any
/// other key as itself.
struct Fields<'a>(&'a mut Map<String, Json>);

impl<'kvs> VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), KvError> {
        let json = serde_json::to_value(&value).unwrap_or_else(|_| Json::from(value.to_string()));
        match (key.as_str(), json) {
            ("event", Json::Object(fields)) => {
                for (name, field) in fields {
                    self.0.entry(name).or_insert(field);
                }
            }
            (name, json) => {
                self.0.entry(name.to_owned()).or_insert(json);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Ev {
        queue_id: &'static str,
        message: &'static str,
        waiting: Option<u32>,
    }

    #[test]
    fn a_record_with_an_event_becomes_one_flat_object() {
        let event = Ev {
            queue_id: "q1",
            message: "not this",
            waiting: None,
        };
        let kvs: [(&str, Value<'_>); 2] = [
            ("event", Value::from_serde(&event)),
            ("attempt", Value::from(2u32)),
        ];
        let record = Record::builder()
            .args(format_args!("queue=q1 \"quoted\""))
            .level(log::Level::Warn)
            .target("queuewatch::event")
            .key_values(&kvs)
            .build();
        let line = json_line(&record, "2026-12-02T00:00:00.000Z");
        let parsed: Json = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["time"], "2026-12-02T00:00:00.000Z");
        assert_eq!(parsed["level"], "WARN");
        assert_eq!(parsed["target"], "queuewatch::event");
        assert_eq!(parsed["message"], "queue=q1 \"quoted\"", "the message wins");
        assert_eq!(parsed["queue_id"], "q1");
        assert_eq!(parsed["waiting"], Json::Null);
        assert_eq!(parsed["attempt"], 2);
        assert!(!line.contains('\n'), "one line: {line}");
        assert!(
            line.starts_with(r#"{"time":"2026-12-02T00:00:00.000Z","level":"WARN","target":"queuewatch::event","message":"#),
            "{line}"
        );
    }

    #[test]
    fn formats_parse() {
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert!("yaml".parse::<LogFormat>().is_err());
    }
}
