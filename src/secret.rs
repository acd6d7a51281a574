//! A string that must never be printed: client secrets, access tokens,
//! webhook keys. `Debug` and `Display` show `<redacted>`.

use std::fmt;
use std::sync::Arc;

/// A secret value. Read it with [`Secret::expose`], only where it is sent.
/// Clones share the value (a token is handed to every poll cycle).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Arc::from(value.into()))
    }

    /// Reads the value from the environment variable `name`.
    ///
    /// Errors name the variable, never its value.
    pub fn from_env(name: &str) -> Result<Secret, SecretError> {
        match std::env::var(name) {
            Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v)),
            Ok(_) => Err(SecretError::Empty(name.to_string())),
            Err(std::env::VarError::NotPresent) => Err(SecretError::Missing(name.to_string())),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(SecretError::NotUnicode(name.to_string()))
            }
        }
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a secret could not be read from the environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The variable is not set.
    #[error("environment variable {0} is not set")]
    Missing(String),
    /// The variable is set but empty.
    #[error("environment variable {0} is empty")]
    Empty(String),
    /// The variable is not valid UTF-8.
    #[error("environment variable {0} is not valid UTF-8")]
    NotUnicode(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(s, Secret::new("hunter2"));
    }

    #[test]
    fn env_errors_name_the_variable() {
        let err = Secret::from_env("QUEUEWATCH_TEST_SURELY_UNSET_VAR").unwrap_err();
        assert_eq!(
            err,
            SecretError::Missing("QUEUEWATCH_TEST_SURELY_UNSET_VAR".into())
        );
    }
}
