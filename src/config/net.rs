//! Rules for network-facing values: region domains, URLs, NATS names.

use std::net::IpAddr;

use awc::http::Uri;

use super::validate::{shorten, Problems};

/// How `genesys.environment` should be written.
const ENVIRONMENT_HINT: &str = "a region domain such as mypurecloud.com, or simulated";

/// Why a `genesys.environment` is refused (each holds the value, shortened).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EnvironmentError {
    /// A URL with a scheme.
    #[error(
        "{0:?} has a scheme; write only {hint} (genesys.api_url takes a full URL)",
        hint = ENVIRONMENT_HINT
    )]
    Scheme(String),
    /// A path after the domain.
    #[error("{0:?} has a path; write only {hint}", hint = ENVIRONMENT_HINT)]
    Path(String),
    /// The API or login host instead of the region.
    #[error(
        "{0:?}: leave out the api./login. prefix; write only {hint}",
        hint = ENVIRONMENT_HINT
    )]
    HostPrefix(String),
    /// Uppercase letters.
    #[error("{0:?} must be lowercase")]
    Uppercase(String),
    /// Not a domain name.
    #[error("{0:?} is not {hint}", hint = ENVIRONMENT_HINT)]
    NotADomain(String),
}

/// `simulated` or a plausible region domain (`mypurecloud.com`, `usw2.pure.cloud`).
/// Domains outside [`super::KNOWN_REGIONS`] are accepted: new regions appear.
pub(crate) fn check_environment(env: &str) -> Result<(), EnvironmentError> {
    if env == "simulated" {
        return Ok(());
    }
    let shown = shorten(env);
    if env.contains("://") {
        return Err(EnvironmentError::Scheme(shown));
    }
    if env.contains('/') {
        return Err(EnvironmentError::Path(shown));
    }
    if env.starts_with("api.") || env.starts_with("login.") {
        return Err(EnvironmentError::HostPrefix(shown));
    }
    if env.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(EnvironmentError::Uppercase(shown));
    }
    let labels_ok = env.len() <= 253
        && env.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if !labels_ok || !env.contains('.') {
        return Err(EnvironmentError::NotADomain(shown));
    }
    Ok(())
}

/// Whether a URL host is loopback: `localhost`, 127.0.0.0/8 or `::1`.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Parses an absolute URL with a host and no credentials; reports why not.
fn parse_url(p: &mut Problems, path: &str, text: &str) -> Option<Uri> {
    // The URL text is not echoed: it could carry credentials.
    let uri = match text.trim().parse::<Uri>() {
        Ok(uri) => uri,
        Err(err) => {
            p.push(path, format!("not a valid URL ({err})"));
            return None;
        }
    };
    let Some(authority) = uri.authority() else {
        p.push(path, "not an absolute URL (scheme://host...)");
        return None;
    };
    if uri.scheme().is_none() || uri.host().is_none_or(str::is_empty) {
        p.push(path, "not an absolute URL (scheme://host...)");
        return None;
    }
    if authority.as_str().contains('@') {
        p.push(
            path,
            "credentials do not belong in settings.yaml; remove the user:password@ part",
        );
        return None;
    }
    // After an IPv6 literal's `]`, a `:` can only start the port.
    let after_host = authority.as_str().rsplit(']').next().unwrap_or_default();
    if after_host.contains(':') && authority.port_u16().is_none() {
        p.push(path, "has an invalid port");
        return None;
    }
    Some(uri)
}

/// An http(s) URL: https unless the host is loopback; `base` URLs (API and
/// OAuth hosts, which get paths appended) take no query.
pub(crate) fn check_http_url(p: &mut Problems, path: &str, text: &str, base: bool) {
    let Some(uri) = parse_url(p, path, text) else {
        return;
    };
    let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
    let host = uri.host().unwrap_or_default();
    match scheme.as_str() {
        "https" => {}
        "http" if is_loopback_host(host) => {}
        "http" => p.push(
            path,
            "must use https (plain http is only allowed to localhost, 127.0.0.0/8 or ::1)",
        ),
        other => p.push(
            path,
            format!("scheme {:?} is not http or https", shorten(other)),
        ),
    }
    if base && uri.query().is_some() {
        p.push(
            path,
            "must not have a query (?...): paths are appended to it",
        );
    }
}

/// One `nats://` / `tls://` URL or a comma-separated list of them.
pub(crate) fn check_nats_urls(p: &mut Problems, path: &str, text: &str) {
    if text.trim().is_empty() {
        p.push(path, "must not be empty");
        return;
    }
    for part in text.split(',') {
        let Some(uri) = parse_url(p, path, part) else {
            continue;
        };
        let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
        if scheme != "nats" && scheme != "tls" {
            p.push(
                path,
                format!("scheme {:?} is not nats or tls", shorten(&scheme)),
            );
        }
    }
}

/// Why a NATS subject or stream name is refused (each holds the value, shortened).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NatsNameError {
    /// Not a subject one can publish to.
    #[error("{0:?} is not a NATS subject (dot-separated tokens without spaces or wildcards)")]
    Subject(String),
    /// Not a JetStream stream name.
    #[error("{0:?} is not a JetStream stream name (letters, digits, - and _)")]
    Stream(String),
}

/// A NATS subject to publish to: dot-separated non-empty tokens of printable
/// characters, no spaces and no wildcards (`*`, `>`).
pub(crate) fn check_nats_subject(subject: &str) -> Result<(), NatsNameError> {
    let ok = subject.len() <= 255
        && subject.split('.').all(|token| {
            !token.is_empty()
                && token
                    .chars()
                    .all(|c| !c.is_whitespace() && !c.is_control() && c != '*' && c != '>')
        });
    if ok {
        Ok(())
    } else {
        Err(NatsNameError::Subject(shorten(subject)))
    }
}

/// A JetStream stream name: letters, digits, `-` and `_`, at most 255.
pub(crate) fn check_stream_name(stream: &str) -> Result<(), NatsNameError> {
    let ok = !stream.is_empty()
        && stream.len() <= 255
        && stream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(NatsNameError::Stream(shorten(stream)))
    }
}
