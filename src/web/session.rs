//! Browser sessions: the status page exchanges the API token for a random
//! session id once (`POST /api/session`) and from then on sends only the
//! session cookie, so the token never travels in a URL (an `EventSource`
//! cannot send headers).
//!
//! The store is bounded ([`MAX_SESSIONS`]) and every session expires
//! ([`SESSION_TTL`] after it was made, however much it is used). It keeps
//! only the SHA-256 of each id: looking one up compares digests, which
//! says nothing about the ids themselves.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

/// The cookie's name.
pub(super) const COOKIE: &str = "queuewatch_session";
/// How long a session lasts.
pub(super) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; a new one beyond this replaces the oldest.
pub(super) const MAX_SESSIONS: usize = 1024;
/// Random bytes per session id (43 characters of base64url).
const ID_BYTES: usize = 32;
const ID_CHARS: usize = 43;

type Digest = [u8; 32];

/// The live sessions, by the digest of their id, with their expiry.
pub(super) struct Sessions {
    random: SystemRandom,
    live: Mutex<HashMap<Digest, Instant>>,
    capacity: usize,
    ttl: Duration,
}

impl Sessions {
    pub(super) fn new() -> Sessions {
        Sessions::with_limits(MAX_SESSIONS, SESSION_TTL)
    }

    fn with_limits(capacity: usize, ttl: Duration) -> Sessions {
        Sessions {
            random: SystemRandom::new(),
            live: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            ttl,
        }
    }

    pub(super) fn ttl(&self) -> Duration {
        self.ttl
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, Instant>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session id, or `None` without randomness.
    pub(super) fn create(&self, now: Instant) -> Option<String> {
        let mut bytes = [0u8; ID_BYTES];
        self.random.fill(&mut bytes).ok()?;
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let mut live = self.live();
        live.retain(|_, expires| *expires > now);
        while live.len() >= self.capacity {
            let oldest = live
                .iter()
                .min_by_key(|(_, expires)| **expires)
                .map(|(key, _)| *key);
            match oldest {
                Some(key) => live.remove(&key),
                None => break,
            };
        }
        live.insert(key_of(&id), now + self.ttl);
        Some(id)
    }

    /// Whether `id` names a live session (an expired one is dropped).
    pub(super) fn valid(&self, id: &str, now: Instant) -> bool {
        if !plausible(id) {
            return false;
        }
        let key = key_of(id);
        let mut live = self.live();
        match live.get(&key) {
            Some(expires) if *expires > now => true,
            Some(_) => {
                live.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Ends the session `id`, if it exists.
    pub(super) fn end(&self, id: &str) {
        if plausible(id) {
            self.live().remove(&key_of(id));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.live().len()
    }
}

/// Only what [`Sessions::create`] makes is looked up at all.
fn plausible(id: &str) -> bool {
    id.len() == ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn key_of(id: &str) -> Digest {
    let mut key = [0u8; 32];
    key.copy_from_slice(digest::digest(&digest::SHA256, id.as_bytes()).as_ref());
    key
}

/// The value of the session cookie in the request's `Cookie` headers.
pub(super) fn cookie(req: &actix_web::HttpRequest) -> Option<&str> {
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"'))
}

/// `Set-Cookie` for session `id`: `HttpOnly`, `SameSite=Strict`, `Path=/`,
/// and `Secure` when the request came over TLS (a plain-HTTP loopback
/// server would otherwise hand out a cookie the browser never sends back).
pub(super) fn set_cookie(id: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that removes the session cookie.
pub(super) fn clear_cookie(secure: bool) -> String {
    set_cookie("", Duration::ZERO, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_random_valid_until_they_expire_and_end_on_request() {
        let sessions = Sessions::with_limits(8, Duration::from_secs(60));
        let now = Instant::now();
        let a = sessions.create(now).unwrap();
        let b = sessions.create(now).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), ID_CHARS);
        assert!(plausible(&a), "{a}");
        assert!(sessions.valid(&a, now + Duration::from_secs(59)));
        assert!(
            !sessions.valid(&a, now + Duration::from_secs(60)),
            "expired"
        );
        assert!(!sessions.valid(&a, now), "an expired session is gone");
        assert!(sessions.valid(&b, now));
        sessions.end(&b);
        assert!(!sessions.valid(&b, now));
        for bad in ["", "x", &"A".repeat(ID_CHARS), &format!("{}=", &a[1..])] {
            assert!(!sessions.valid(bad, now), "{bad:?}");
        }
    }

    #[test]
    fn the_store_is_bounded_and_drops_the_oldest_first() {
        let sessions = Sessions::with_limits(3, Duration::from_secs(60));
        let start = Instant::now();
        let ids: Vec<String> = (0..5)
            .map(|i| sessions.create(start + Duration::from_secs(i)).unwrap())
            .collect();
        assert_eq!(sessions.len(), 3);
        let now = start + Duration::from_secs(5);
        let valid: Vec<bool> = ids.iter().map(|id| sessions.valid(id, now)).collect();
        assert_eq!(valid, [false, false, true, true, true]);
        // Expired sessions make room before live ones are dropped.
        let later = start + Duration::from_secs(63);
        let fresh = sessions.create(later).unwrap();
        assert_eq!(sessions.len(), 2, "those made at 2 s and 3 s expired");
        assert!(sessions.valid(&fresh, later) && sessions.valid(&ids[4], later));
    }

    #[test]
    fn cookies_are_read_and_written() {
        let req = actix_web::test::TestRequest::default()
            .insert_header(("cookie", "a=1; queuewatch_session=abc ;b=2"))
            .to_http_request();
        assert_eq!(cookie(&req), Some("abc"));
        let none = actix_web::test::TestRequest::default()
            .insert_header(("cookie", "queuewatch_sessionx=1"))
            .to_http_request();
        assert_eq!(cookie(&none), None);
        assert_eq!(
            set_cookie("abc", Duration::from_secs(60), false),
            "queuewatch_session=abc; HttpOnly; SameSite=Strict; Path=/; Max-Age=60"
        );
        assert!(set_cookie("abc", Duration::from_secs(60), true).ends_with("; Secure"));
        assert!(clear_cookie(false).starts_with("queuewatch_session=; "));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
