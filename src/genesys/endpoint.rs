//! Where Genesys is and who we are: the hosts of the configured region (or
//! the overrides) and the OAuth client's credentials from the environment.

use super::Credentials;
use crate::config::GenesysSettings;
use crate::secret::{Secret, SecretError};

/// An environment variable named in the settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {source}")]
pub struct EnvError {
    /// The settings key that names the variable.
    pub key: &'static str,
    /// What is wrong with it (never its value).
    pub source: SecretError,
}

/// The secret in the variable `var`, named by settings key `key`.
pub fn env_secret(key: &'static str, var: &str) -> Result<Secret, EnvError> {
    Secret::from_env(var).map_err(|source| EnvError { key, source })
}

/// The client credentials from the variables the settings name.
pub fn credentials_from_env(settings: &GenesysSettings) -> Result<Credentials, EnvError> {
    Ok(Credentials {
        client_id: env_secret("genesys.client_id_env", &settings.client_id_env)?,
        client_secret: env_secret("genesys.client_secret_env", &settings.client_secret_env)?,
    })
}

/// The API and login base URLs of a real region (validated settings).
pub fn bases(settings: &GenesysSettings) -> (String, String) {
    (
        settings.api_base().unwrap_or_default(),
        settings.login_base().unwrap_or_default(),
    )
}
