//! Runtime-switchable fault injection.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

/// One kind of misbehaviour. Serialized with a `kind` tag, e.g.
/// `{"kind":"rate_limit","retry_after_secs":42}` or `{"kind":"drop_connection"}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// API answers 429 with `Retry-After` and the Genesys body (counted as a 429).
    RateLimit {
        /// Value of `Retry-After` and of the `[n]` in the message.
        retry_after_secs: u64,
    },
    /// API answers a server error (500, 502, 503...) with a Genesys JSON body.
    ServerError {
        /// HTTP status; values outside 200..=599 become 500.
        status: u16,
    },
    /// API answers correctly after a delay.
    Slow {
        /// Delay before the request is handled.
        delay_ms: u64,
    },
    /// API closes the connection without sending a response.
    DropConnection,
    /// API answers 200 with a body that is not valid JSON.
    MalformedBody,
    /// API answers 200 naming another queue id (position and observations
    /// bodies; the estimated-wait body names no queue and is unchanged).
    WrongQueueId,
    /// API answers this status with a Genesys JSON body (no `Retry-After`, even for 429).
    Status {
        /// HTTP status; values outside 200..=599 become 500.
        status: u16,
    },
    /// API answers this status (normally 3xx) with a `Location` header and no body.
    Redirect {
        /// HTTP status; values outside 200..=599 become 500.
        status: u16,
        /// Value of the `Location` header.
        location: String,
    },
    /// API answers its normal 200 body with this `Content-Type` instead of
    /// `application/json`; an empty string sends no `Content-Type` at all.
    ContentType {
        /// The header value.
        content_type: String,
    },
    /// API answers 200 `application/json` with exactly this body (absurd
    /// values, wrong shapes).
    Body {
        /// The body sent.
        body: String,
    },
    /// Token endpoint answers this status with an OAuth error body.
    TokenOutage {
        /// HTTP status; values outside 200..=599 become 500.
        status: u16,
    },
    /// Token endpoint answers after a delay.
    TokenSlow {
        /// Delay before the token request is handled.
        delay_ms: u64,
    },
}

impl Fault {
    /// True for faults of the token endpoint, false for faults of the API routes.
    pub fn is_token_fault(&self) -> bool {
        matches!(self, Fault::TokenOutage { .. } | Fault::TokenSlow { .. })
    }
}

/// A fault with its scope.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FaultRule {
    /// What happens.
    pub fault: Fault,
    /// Only requests about this queue (for observations: batches that include
    /// it); `None` = every request. Ignored by token faults.
    #[serde(default)]
    pub queue_id: Option<String>,
    /// `Some(n)`: applies to the next `n` matching requests, then disappears;
    /// `None`: applies until cleared.
    #[serde(default)]
    pub remaining: Option<u32>,
    /// Only API requests whose path contains this text (e.g.
    /// `/notifications/`); `None` = every path. Ignored by token faults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_contains: Option<String>,
}

impl FaultRule {
    /// A rule for every matching request until cleared.
    pub fn always(fault: Fault) -> Self {
        Self {
            fault,
            queue_id: None,
            remaining: None,
            path_contains: None,
        }
    }

    /// A rule for the next `n` matching requests.
    pub fn times(fault: Fault, n: u32) -> Self {
        Self {
            fault,
            queue_id: None,
            remaining: Some(n),
            path_contains: None,
        }
    }

    /// The same rule restricted to one queue.
    pub fn for_queue(self, queue_id: impl Into<String>) -> Self {
        Self {
            queue_id: Some(queue_id.into()),
            ..self
        }
    }

    /// The same rule restricted to request paths that contain `text`.
    pub fn for_path_containing(self, text: impl Into<String>) -> Self {
        Self {
            path_contains: Some(text.into()),
            ..self
        }
    }

    fn matches_api(&self, path: &str, queue_ids: &[String]) -> bool {
        !self.fault.is_token_fault()
            && self
                .queue_id
                .as_ref()
                .is_none_or(|id| queue_ids.contains(id))
            && self
                .path_contains
                .as_deref()
                .is_none_or(|text| path.contains(text))
    }
}

/// The active rules; the first matching rule applies to a request.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FaultSet {
    /// Rules in priority order.
    #[serde(default)]
    pub rules: Vec<FaultRule>,
}

/// Cheap cloneable handle on the simulator's fault set.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    inner: Arc<Mutex<FaultSet>>,
}

impl Faults {
    /// Replaces every rule.
    pub fn set(&self, set: FaultSet) {
        log::info!("simulator faults set: {} rule(s)", set.rules.len());
        *self.lock() = set;
    }

    /// Appends a rule (lowest priority).
    pub fn push(&self, rule: FaultRule) {
        log::info!("simulator fault added: {rule:?}");
        self.lock().rules.push(rule);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        log::info!("simulator faults cleared");
        self.lock().rules.clear();
    }

    /// The rules now in force (counted-down `remaining` included).
    pub fn current(&self) -> FaultSet {
        self.lock().clone()
    }

    /// The fault for an API request to `path` about `queue_ids`, consuming
    /// one use of its rule.
    pub(crate) fn take_api(&self, path: &str, queue_ids: &[String]) -> Option<Fault> {
        self.take(|rule| rule.matches_api(path, queue_ids))
    }

    /// The fault for a token request, consuming one use of its rule.
    pub(crate) fn take_token(&self) -> Option<Fault> {
        self.take(|rule| rule.fault.is_token_fault())
    }

    fn take(&self, applies: impl Fn(&FaultRule) -> bool) -> Option<Fault> {
        let mut set = self.lock();
        set.rules.retain(|rule| rule.remaining != Some(0));
        let index = set.rules.iter().position(applies)?;
        let rule = &mut set.rules[index];
        let fault = rule.fault.clone();
        if let Some(left) = rule.remaining.as_mut() {
            *left -= 1;
            if *left == 0 {
                set.rules.remove(index);
            }
        }
        Some(fault)
    }

    fn lock(&self) -> MutexGuard<'_, FaultSet> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
