//! Talking to Genesys Cloud: hosts, TLS, the wire format, and a classified
//! HTTP client. Everything Genesys-specific lives here.

pub mod channels;
mod client;
pub mod endpoint;
pub mod headers;
mod prepared;
pub mod tls;
pub mod wire;

pub use client::{AccessToken, ClientOptions, Credentials, GenesysClient, Outcome, TokenError};
pub use endpoint::EnvError;
pub use headers::RateLimitInfo;
pub use prepared::QueueUrl;
pub use wire::Sample;
