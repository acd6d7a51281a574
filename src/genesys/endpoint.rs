//! Where Genesys is and who we are to it: the hosts of a region (Genesys:
//! `https://api.<domain>`, `https://login.<domain>`) and the OAuth client's
//! credentials (and any other secret the settings name) from the environment.

use super::Credentials;
use crate::secret::{Secret, SecretError};

/// The two hosts of a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// `api.<domain>`: the platform API.
    Api,
    /// `login.<domain>`: OAuth.
    Login,
}

impl Host {
    /// The base URL of this host in region `domain` (e.g. `mypurecloud.ie`).
    pub fn of_region(self, domain: &str) -> String {
        let prefix = match self {
            Host::Api => "api",
            Host::Login => "login",
        };
        format!("https://{prefix}.{domain}")
    }
}

/// An override URL as a base: without its trailing slashes.
pub fn trimmed(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}

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

/// The client credentials from the variables named by
/// `genesys.client_id_env` and `genesys.client_secret_env`.
pub fn credentials_from_env(id_var: &str, secret_var: &str) -> Result<Credentials, EnvError> {
    Ok(Credentials {
        client_id: env_secret("genesys.client_id_env", id_var)?,
        client_secret: env_secret("genesys.client_secret_env", secret_var)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_a_region() {
        assert_eq!(
            Host::Api.of_region("mypurecloud.ie"),
            "https://api.mypurecloud.ie"
        );
        assert_eq!(
            Host::Login.of_region("usw2.pure.cloud"),
            "https://login.usw2.pure.cloud"
        );
        assert_eq!(trimmed("http://127.0.0.1:8089//"), "http://127.0.0.1:8089");
    }
}
