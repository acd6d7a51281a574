//! Request parts a poller sends every cycle, built once: a queue's data URL
//! (parsed when its poller starts) and the token's `Authorization` header
//! (built when the token changes). Per request that is a clone of shared
//! bytes, not a `format!`, a URL parse and a header check.

use std::cell::RefCell;

use awc::http::header::{HeaderValue, AUTHORIZATION};
use awc::http::Uri;
use awc::ClientRequest;

use super::wire;
use crate::secret::Secret;

/// Which per-queue endpoint a [`QueueUrl`] is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum QueueEndpoint {
    /// `guest_position`.
    Position,
    /// `estimated_wait_time`.
    EstimatedWait,
}

/// The URL of one queue's data request (`guest_position` or
/// `estimated_wait_time`), parsed once.
#[derive(Clone, Debug)]
pub struct QueueUrl {
    pub(super) endpoint: QueueEndpoint,
    target: Target,
}

#[derive(Clone, Debug)]
enum Target {
    Parsed(Uri),
    /// Not a valid URL: sent as it is, so the request fails as it always
    /// did (a configuration validated up front never gets here).
    Unparsed(String),
}

impl QueueUrl {
    /// `GET {api_base}/api/v2/guest/messaging/queues/{queue_id}/position`.
    pub fn position(api_base: &str, queue_id: &str) -> QueueUrl {
        let url = format!("{api_base}{}", wire::position_path(queue_id));
        QueueUrl::new(QueueEndpoint::Position, url)
    }

    /// `GET {api_base}/api/v2/routing/queues/{queue_id}/mediatypes/message/estimatedwaittime`.
    pub fn estimated_wait(api_base: &str, queue_id: &str) -> QueueUrl {
        let url = format!("{api_base}{}", wire::estimated_wait_path(queue_id));
        QueueUrl::new(QueueEndpoint::EstimatedWait, url)
    }

    fn new(endpoint: QueueEndpoint, url: String) -> QueueUrl {
        let target = match Uri::try_from(url.as_str()) {
            Ok(uri) => Target::Parsed(uri),
            Err(_) => Target::Unparsed(url),
        };
        QueueUrl { endpoint, target }
    }

    /// A GET of this URL on `http`.
    pub(super) fn get(&self, http: &awc::Client) -> ClientRequest {
        match &self.target {
            Target::Parsed(uri) => http.get(uri.clone()),
            Target::Unparsed(url) => http.get(url.as_str()),
        }
    }
}

/// The `Authorization` header of the last token this thread sent (every
/// poller of a thread sends the same token until it is refreshed).
#[derive(Default)]
pub(super) struct BearerCache {
    last: RefCell<Option<(Secret, HeaderValue)>>,
}

impl BearerCache {
    /// `request` with `Authorization: Bearer {token}`. A token that is no
    /// valid header value goes through awc's own `bearer_auth`, which
    /// fails the request as before.
    pub(super) fn authorize(&self, request: ClientRequest, token: &Secret) -> ClientRequest {
        match self.header(token) {
            Some(value) => request.insert_header((AUTHORIZATION, value)),
            None => request.bearer_auth(token.expose()),
        }
    }

    fn header(&self, token: &Secret) -> Option<HeaderValue> {
        let mut last = self.last.borrow_mut();
        if let Some((held, value)) = last.as_ref() {
            if held == token {
                return Some(value.clone());
            }
        }
        let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose())).ok()?;
        // Sensitive: `Debug` of the header map shows `Sensitive`, not the token.
        value.set_sensitive(true);
        *last = Some((token.clone(), value.clone()));
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: &str = "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10";

    #[actix_rt::test]
    async fn urls_are_the_endpoints_paths() {
        let http = awc::Client::default();
        let position = QueueUrl::position("https://api.mypurecloud.com", Q);
        assert_eq!(position.endpoint, QueueEndpoint::Position);
        assert_eq!(
            position.get(&http).get_uri().to_string(),
            format!("https://api.mypurecloud.com/api/v2/guest/messaging/queues/{Q}/position")
        );
        let wait = QueueUrl::estimated_wait("http://127.0.0.1:8089", Q);
        assert_eq!(wait.endpoint, QueueEndpoint::EstimatedWait);
        assert_eq!(
            wait.get(&http).get_uri().to_string(),
            format!(
                "http://127.0.0.1:8089/api/v2/routing/queues/{Q}/mediatypes/message/estimatedwaittime"
            )
        );
        // Not a URL: kept as text; awc refuses it when the request is sent.
        let bad = QueueUrl::position("http://bad host", Q);
        assert!(matches!(bad.target, Target::Unparsed(_)));
    }

    #[actix_rt::test]
    async fn the_header_is_built_once_per_token() {
        let http = awc::Client::default();
        let cache = BearerCache::default();
        let header = |request: &ClientRequest| request.headers().get(AUTHORIZATION).cloned();
        let first = Secret::new("token-1");
        let sent = header(&cache.authorize(http.get("http://127.0.0.1/"), &first)).unwrap();
        assert_eq!(sent.to_str().unwrap(), "Bearer token-1");
        assert!(sent.is_sensitive());
        assert_eq!(format!("{sent:?}"), "Sensitive");
        // The same token again: the cached header.
        let again = header(&cache.authorize(http.get("http://127.0.0.1/"), &first.clone()));
        assert_eq!(again.as_ref(), Some(&sent));
        // A refreshed token replaces it.
        let second = Secret::new("token-2");
        let sent = header(&cache.authorize(http.get("http://127.0.0.1/"), &second)).unwrap();
        assert_eq!(sent.to_str().unwrap(), "Bearer token-2");
        // A token no header can carry (a hostile token endpoint): not cached,
        // and the request carries no Authorization header.
        let hostile = Secret::new("a\r\nX-Injected: 1");
        let request = cache.authorize(http.get("http://127.0.0.1/"), &hostile);
        assert!(request.headers().get("x-injected").is_none());
        assert_ne!(
            header(&request).and_then(|v| v.to_str().ok().map(str::to_owned)),
            Some("Bearer a\r\nX-Injected: 1".to_owned())
        );
        assert_eq!(
            cache.last.borrow().as_ref().map(|(t, _)| t.clone()),
            Some(second)
        );
    }
}
