//! [`QueueId`]: a Genesys queue id, allocated once (when the settings are
//! read) and shared from there on: poller, cycle, event, matrices,
//! callbacks and the cluster all hold clones of the same `Arc<str>`.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Genesys queue id (`0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10`).
///
/// Cloning is cheap (an `Arc`); it reads as a `&str` (`Deref`, `AsRef`,
/// `Borrow`: a `HashMap<QueueId, _>` is looked up by `&str`), compares with
/// strings, and is a plain string in JSON and YAML.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(Arc<str>);

impl QueueId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for QueueId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for QueueId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for QueueId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl fmt::Debug for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<&str> for QueueId {
    fn from(id: &str) -> Self {
        QueueId(id.into())
    }
}

impl From<&String> for QueueId {
    fn from(id: &String) -> Self {
        QueueId(id.as_str().into())
    }
}

impl From<String> for QueueId {
    fn from(id: String) -> Self {
        QueueId(id.into())
    }
}

impl From<Arc<str>> for QueueId {
    fn from(id: Arc<str>) -> Self {
        QueueId(id)
    }
}

impl From<QueueId> for Arc<str> {
    fn from(id: QueueId) -> Self {
        id.0
    }
}

impl From<QueueId> for String {
    fn from(id: QueueId) -> Self {
        id.0.as_ref().to_owned()
    }
}

impl PartialEq<str> for QueueId {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for QueueId {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for QueueId {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<QueueId> for str {
    fn eq(&self, other: &QueueId) -> bool {
        *self == *other.0
    }
}

impl PartialEq<QueueId> for &str {
    fn eq(&self, other: &QueueId) -> bool {
        **self == *other.0
    }
}

impl PartialEq<QueueId> for String {
    fn eq(&self, other: &QueueId) -> bool {
        **self == *other.0
    }
}

impl Serialize for QueueId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for QueueId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // As `String` reads itself (same calls, same "expected" text), but
        // straight into the shared allocation.
        struct QueueIdVisitor;

        impl Visitor<'_> for QueueIdVisitor {
            type Value = QueueId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<QueueId, E> {
                Ok(QueueId::from(v))
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<QueueId, E> {
                match std::str::from_utf8(v) {
                    Ok(s) => Ok(QueueId::from(s)),
                    Err(_) => Err(E::invalid_value(Unexpected::Bytes(v), &self)),
                }
            }
        }

        deserializer.deserialize_string(QueueIdVisitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::QueueId;

    const ID: &str = "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10";

    #[test]
    fn clones_share_one_allocation() {
        let id = QueueId::from(ID);
        let clone = id.clone();
        assert!(std::ptr::eq(id.as_str(), clone.as_str()));
    }

    #[test]
    fn a_plain_json_string() {
        let id = QueueId::from(ID);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{ID}\""));
        assert_eq!(serde_json::from_str::<QueueId>(&json).unwrap(), id);
        let err = serde_json::from_str::<QueueId>("5").unwrap_err();
        let like_string = serde_json::from_str::<String>("5").unwrap_err();
        assert_eq!(err.to_string(), like_string.to_string());
    }

    #[test]
    fn reads_and_compares_as_a_str() {
        let id = QueueId::from(ID.to_string());
        assert_eq!(id, ID);
        assert_eq!(id, *ID);
        assert_eq!(id, ID.to_string());
        assert_eq!(ID, id);
        assert_eq!(ID.to_string(), id);
        assert_eq!(id.len(), ID.len());
        assert_eq!(format!("{id}"), ID);
        assert_eq!(format!("{id:?}"), format!("{ID:?}"));
        let map: HashMap<QueueId, u8> = HashMap::from([(id.clone(), 1)]);
        assert_eq!(map.get(ID), Some(&1));
        let (a, b) = (QueueId::from("a"), QueueId::from("b"));
        assert!(a < b);
    }
}
