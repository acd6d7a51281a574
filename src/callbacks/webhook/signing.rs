//! Webhook signing and verdicts, pure. The delivery itself (retries, HTTP)
//! is the [`super::Webhook`] transport.
//!
//! Signing follows the Standard Webhooks specification
//! (<https://www.standardwebhooks.com/>): every request carries
//! `webhook-id` (the event id, the same on every retry of one event),
//! `webhook-timestamp` (unix seconds of this attempt) and, when a secret is
//! configured, `webhook-signature: v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>`.
//!
//! The secret comes from the environment variable named by `secret_env`.
//! A value `whsec_<base64>` (the spec's form) uses the base64-decoded bytes
//! as the HMAC key; any other value is used as raw bytes (its UTF-8).

use std::fmt;

use base64::Engine as _;
use ring::hmac;

use crate::secret::Secret;

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Header: the event id, stable across retries.
pub const HEADER_ID: &str = "webhook-id";
/// Header: unix seconds of this attempt.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header: `v1,<base64 signature>`.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// Standard base64, padded or not.
const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Why a secret is not a usable key. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// `whsec_` followed by something that is not base64.
    #[error("the value starts with {SECRET_PREFIX} but the rest is not valid base64")]
    NotBase64,
    /// Nothing to sign with.
    #[error("the secret is empty")]
    Empty,
}

/// The HMAC-SHA256 key of a webhook. `Debug` never shows it.
#[derive(Clone)]
pub struct SigningKey(hmac::Key);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    /// The key of a secret: `whsec_<base64>` decodes; anything else is raw bytes.
    ///
    /// The error never contains the secret.
    pub fn from_secret(secret: &Secret) -> Result<SigningKey, KeyError> {
        let value = secret.expose().trim();
        let bytes = match value.strip_prefix(SECRET_PREFIX) {
            Some(encoded) => LENIENT.decode(encoded).map_err(|_| KeyError::NotBase64)?,
            None => value.as_bytes().to_vec(),
        };
        if bytes.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(SigningKey(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
    }

    /// The `webhook-signature` header value for one attempt.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        let mut context = hmac::Context::with_key(&self.0);
        context.update(id.as_bytes());
        context.update(b".");
        context.update(timestamp.to_string().as_bytes());
        context.update(b".");
        context.update(body);
        let tag = context.sign();
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
        )
    }
}

/// The name of a webhook in logs and metrics: `webhook:<host>` (with the
/// port when the URL names one). Never the whole URL: its path or query may
/// hold a token.
pub fn endpoint_name(uri: &awc::http::Uri) -> String {
    let host = uri.host().unwrap_or("unknown");
    match uri.port_u16() {
        Some(port) => format!("webhook:{host}:{port}"),
        None => format!("webhook:{host}"),
    }
}

/// What one response status means for the delivery of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delivered.
    Delivered,
    /// 408, 429, 5xx: try again later (honouring `Retry-After`).
    Retry,
    /// 410 Gone: the receiver wants no more events; the endpoint is disabled.
    Gone,
    /// Any other status (other 4xx, 3xx: redirects are not followed): the
    /// receiver refused this event; retrying cannot help.
    Rejected,
}

impl Verdict {
    /// The verdict for an HTTP status.
    pub fn of(status: u16) -> Verdict {
        match status {
            200..=299 => Verdict::Delivered,
            410 => Verdict::Gone,
            408 | 429 | 500..=599 => Verdict::Retry,
            _ => Verdict::Rejected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_test_vector() {
        // The test vector of the Standard Webhooks reference libraries.
        let key = SigningKey::from_secret(&Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
            .unwrap();
        assert_eq!(
            key.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn raw_secrets_are_their_bytes() {
        let raw = SigningKey::from_secret(&Secret::new("plain secret")).unwrap();
        let encoded = SigningKey::from_secret(&Secret::new(format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode("plain secret")
        )))
        .unwrap();
        assert_eq!(raw.sign("a", 1, b"{}"), encoded.sign("a", 1, b"{}"));
    }

    #[test]
    fn bad_secrets_are_refused_without_echo() {
        let err = SigningKey::from_secret(&Secret::new("whsec_not*base64!"))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("not*base64"), "{err}");
        assert!(SigningKey::from_secret(&Secret::new("whsec_")).is_err());
        let key = SigningKey::from_secret(&Secret::new("whsec_c2VjcmV0")).unwrap();
        assert_eq!(format!("{key:?}"), "SigningKey(<redacted>)");
    }

    #[test]
    fn names_hide_path_and_query() {
        let uri: awc::http::Uri = "https://hooks.example.com/x/y?token=abc".parse().unwrap();
        assert_eq!(endpoint_name(&uri), "webhook:hooks.example.com");
        let uri: awc::http::Uri = "http://127.0.0.1:8080/hook?k=v".parse().unwrap();
        assert_eq!(endpoint_name(&uri), "webhook:127.0.0.1:8080");
    }

    #[test]
    fn verdicts() {
        assert_eq!(Verdict::of(200), Verdict::Delivered);
        assert_eq!(Verdict::of(204), Verdict::Delivered);
        for retry in [408, 429, 500, 502, 503, 504] {
            assert_eq!(Verdict::of(retry), Verdict::Retry, "{retry}");
        }
        assert_eq!(Verdict::of(410), Verdict::Gone);
        for reject in [301, 400, 401, 403, 404, 413, 422] {
            assert_eq!(Verdict::of(reject), Verdict::Rejected, "{reject}");
        }
    }
}
