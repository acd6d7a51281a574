//! Response headers that steer retries and rate budgets: `Retry-After` and
//! Genesys' `inin-ratelimit-*` trio. Parsing is pure and never panics.

use std::time::{Duration, SystemTime};

/// The longest `Retry-After` honoured as given; larger (hostile or absurd)
/// values are clamped to this. Anything over 180 s already means "stop
/// retrying" (see [`LONG_RETRY_AFTER`]), so a day is plenty.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// A `Retry-After` above this signals a long (daily) limit: the official SDKs
/// stop retrying, and so do we.
pub const LONG_RETRY_AFTER: Duration = Duration::from_secs(180);

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date (RFC 9110).
/// Negative, garbage or empty values give `None`; huge ones are clamped to
/// [`MAX_RETRY_AFTER`]; dates in the past give zero.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: seconds. Too many digits for u64 is still "huge".
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    if let Ok(secs) = value.parse::<f64>() {
        // Not RFC-conformant but seen in the wild ("1.5"); reject negatives and NaN.
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// The `inin-ratelimit-*` headers of one response, where present and numeric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitInfo {
    /// `inin-ratelimit-count`: requests used in the current window.
    pub count: Option<u32>,
    /// `inin-ratelimit-allowed`: requests allowed per window.
    pub allowed: Option<u32>,
    /// `inin-ratelimit-reset`: seconds until the window resets.
    pub reset: Option<Duration>,
}

impl RateLimitInfo {
    /// Reads the trio from a header map.
    pub fn from_headers(headers: &awc::http::header::HeaderMap) -> RateLimitInfo {
        let num = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        RateLimitInfo {
            count: num("inin-ratelimit-count").map(saturate),
            allowed: num("inin-ratelimit-allowed").map(saturate),
            reset: num("inin-ratelimit-reset").map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER)),
        }
    }

    /// Whether any of the three headers was present.
    pub fn is_present(&self) -> bool {
        self.count.is_some() || self.allowed.is_some() || self.reset.is_some()
    }
}

fn saturate(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        httpdate::parse_http_date("Wed, 25 Nov 2026 12:00:00 GMT").unwrap()
    }

    #[test]
    fn seconds_form() {
        assert_eq!(
            parse_retry_after("42", now()),
            Some(Duration::from_secs(42))
        );
        assert_eq!(parse_retry_after(" 0 ", now()), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.5", now()),
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn hostile_values() {
        assert_eq!(parse_retry_after("-5", now()), None);
        assert_eq!(parse_retry_after("", now()), None);
        assert_eq!(parse_retry_after("soon", now()), None);
        assert_eq!(parse_retry_after("NaN", now()), None);
        assert_eq!(parse_retry_after("inf", now()), None);
        assert_eq!(
            parse_retry_after("99999999999999999999999999", now()),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(parse_retry_after("1e308", now()), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn date_form() {
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 12:01:30 GMT", now()),
            Some(Duration::from_secs(90))
        );
        // In the past: retry now.
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 11:00:00 GMT", now()),
            Some(Duration::ZERO)
        );
        // Far future: clamped.
        assert_eq!(
            parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT", now()),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn ratelimit_headers() {
        let mut h = awc::http::header::HeaderMap::new();
        h.insert(
            "inin-ratelimit-count".parse().unwrap(),
            "12".parse().unwrap(),
        );
        h.insert(
            "inin-ratelimit-allowed".parse().unwrap(),
            "300".parse().unwrap(),
        );
        h.insert(
            "inin-ratelimit-reset".parse().unwrap(),
            "garbage".parse().unwrap(),
        );
        let info = RateLimitInfo::from_headers(&h);
        assert_eq!(info.count, Some(12));
        assert_eq!(info.allowed, Some(300));
        assert_eq!(info.reset, None);
        assert!(info.is_present());
        assert!(!RateLimitInfo::default().is_present());
    }
}
