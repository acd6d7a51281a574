//! Durations in settings.yaml: human-readable strings such as `500ms`, `10s`,
//! `5m` or `1h 30m` (parsed and printed by [`humantime`]).
//!
//! Use as `#[serde(with = "duration")]` on a [`Duration`] field, or
//! `#[serde(with = "duration::option")]` on an `Option<Duration>`. Values
//! serialise back in the same notation, so a serialised [`super::Settings`]
//! reads back unchanged.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;

/// Parses a duration string such as `"10s"`, `"500ms"` or `"1m 30s"`.
///
/// A bare number (`"10"`) is refused: the unit must be written out.
pub fn parse_duration(text: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(text.trim())
}

/// Formats a duration the way settings.yaml writes it: `"10s"`, `"1m 30s"`, `"500ms"`.
pub fn format_duration(value: Duration) -> String {
    humantime::format_duration(value).to_string()
}

/// Serialises a [`Duration`] as a string such as `"10s"`.
pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_duration(*value))
}

/// Deserialises a [`Duration`] from a string such as `"10s"`.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_str(DurationVisitor)
}

/// Serde support for `Option<Duration>` (`null` or absent means `None`).
pub mod option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises `Some(d)` as `"10s"` and `None` as `null`.
    pub fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => serializer.serialize_some(&super::format_duration(*d)),
            None => serializer.serialize_none(),
        }
    }

    /// Deserialises `null` as `None` and `"10s"` as `Some(10s)`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        /// One duration, read through the parent module's rules.
        struct Wrapped(Duration);

        impl<'de> Deserialize<'de> for Wrapped {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                super::deserialize(deserializer).map(Wrapped)
            }
        }

        Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|w| w.0))
    }
}

/// Accepts strings; explains the expected notation for anything else.
struct DurationVisitor;

impl DurationVisitor {
    fn bare_number<E: de::Error>(shown: impl fmt::Display) -> E {
        E::custom(format_args!(
            "invalid duration {shown}: write the unit too, e.g. \"{shown}s\" or \"{shown}ms\""
        ))
    }
}

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration such as \"10s\", \"500ms\" or \"5m\"")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        if !text.is_empty() && text.trim().bytes().all(|b| b.is_ascii_digit()) {
            return Err(Self::bare_number(text.trim()));
        }
        parse_duration(text).map_err(|err| {
            E::custom(format_args!(
                "invalid duration {:?}: {err} (write e.g. \"10s\", \"500ms\", \"5m\")",
                super::validate::shorten(text)
            ))
        })
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Duration, E> {
        Err(Self::bare_number(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Duration, E> {
        Err(Self::bare_number(value))
    }
}
