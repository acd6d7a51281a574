//! Numbers that must be written as numbers.
//!
//! serde-saphyr parses the text of any scalar into a typed target, so
//! `rate_limit_per_minute: "300"` would quietly read as 300. The keys here
//! read through `deserialize_any` instead, which keeps a quoted scalar a
//! string, and refuse strings with a type error naming the key.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};

/// A number type read strictly: what it accepts and how it says so.
pub(crate) trait Strict: Sized {
    /// `expected ...` part of a type error.
    const EXPECTING: &'static str;
    fn from_u64(value: u64) -> Option<Self>;
    fn from_i64(value: i64) -> Option<Self>;
    fn from_f64(value: f64) -> Option<Self>;
}

macro_rules! strict_unsigned {
    ($($t:ty: $expecting:expr),*) => {$(
        impl Strict for $t {
            const EXPECTING: &'static str = $expecting;
            fn from_u64(value: u64) -> Option<Self> {
                <$t>::try_from(value).ok()
            }
            fn from_i64(value: i64) -> Option<Self> {
                <$t>::try_from(value).ok()
            }
            fn from_f64(_: f64) -> Option<Self> {
                None
            }
        }
    )*};
}
strict_unsigned!(
    u32: "an unquoted whole number from 0 to 4294967295",
    usize: "an unquoted whole number of at least 0"
);

impl Strict for f64 {
    const EXPECTING: &'static str = "an unquoted number";
    fn from_u64(value: u64) -> Option<Self> {
        Some(value as f64)
    }
    fn from_i64(value: i64) -> Option<Self> {
        Some(value as f64)
    }
    fn from_f64(value: f64) -> Option<Self> {
        Some(value)
    }
}

/// A `T` that was written as a YAML number.
struct Number<T>(T);

impl<'de, T: Strict> Deserialize<'de> for Number<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(NumberVisitor(PhantomData))
            .map(Number)
    }
}

struct NumberVisitor<T>(PhantomData<T>);

impl<'de, T: Strict> Visitor<'de> for NumberVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<T, E> {
        T::from_u64(value).ok_or_else(|| E::invalid_value(Unexpected::Unsigned(value), &self))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<T, E> {
        T::from_i64(value).ok_or_else(|| E::invalid_value(Unexpected::Signed(value), &self))
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<T, E> {
        match u64::try_from(value) {
            Ok(small) => self.visit_u64(small),
            Err(_) => Err(E::invalid_value(
                Unexpected::Other("an integer beyond 64 bits"),
                &self,
            )),
        }
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> Result<T, E> {
        match i64::try_from(value) {
            Ok(small) => self.visit_i64(small),
            Err(_) => Err(E::invalid_value(
                Unexpected::Other("an integer beyond 64 bits"),
                &self,
            )),
        }
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<T, E> {
        T::from_f64(value).ok_or_else(|| E::invalid_type(Unexpected::Float(value), &self))
    }
}

/// `deserialize_with` for a number key.
pub(crate) fn strict<'de, D: Deserializer<'de>, T: Strict>(deserializer: D) -> Result<T, D::Error> {
    Number::<T>::deserialize(deserializer).map(|n| n.0)
}

/// `deserialize_with` for an optional number key (`null` = unset).
pub(crate) fn strict_option<'de, D: Deserializer<'de>, T: Strict>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    Option::<Number<T>>::deserialize(deserializer).map(|n| n.map(|n| n.0))
}
