//! The request log and counters.

use std::collections::{BTreeMap, VecDeque};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Records kept by the request log; older ones are dropped.
pub const REQUEST_LOG_CAPACITY: usize = 200_000;

/// `RequestRecord::status` of a request whose connection was dropped by a fault.
pub const STATUS_DROPPED: u16 = 0;

/// One request to the token endpoint or an API route (admin routes are not logged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// When the request arrived.
    pub at: SystemTime,
    /// HTTP method.
    pub method: String,
    /// Request path, without query string.
    pub path: String,
    /// Queues the request asked about (observations: every queue id of the filter).
    pub queue_ids: Vec<String>,
    /// API routes: the bearer token presented. Token endpoint: the token issued, if any.
    pub token: Option<String>,
    /// Status sent, or [`STATUS_DROPPED`].
    pub status: u16,
}

/// Counters since the simulator started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Requests to `POST /oauth/token`.
    pub token_requests: u64,
    /// Requests to the API routes (unknown paths included).
    pub api_requests: u64,
    /// Responses sent, by HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    /// 429 responses sent (rate limits and injected faults).
    pub rate_limited: u64,
    /// Connections dropped by the `drop_connection` fault.
    pub dropped_connections: u64,
}

/// Which counter a request goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `POST /oauth/token`.
    Token,
    /// Everything under `/api`, and unknown paths.
    Api,
}

/// Bounded log plus counters.
#[derive(Debug)]
pub(crate) struct RequestLog {
    records: VecDeque<RequestRecord>,
    capacity: usize,
    stats: SimStats,
}

impl RequestLog {
    /// A log keeping the last `capacity` records (0 keeps only the counters).
    pub(crate) fn new(capacity: usize) -> Self {
        RequestLog {
            records: VecDeque::new(),
            capacity,
            stats: SimStats::default(),
        }
    }

    pub(crate) fn record(&mut self, endpoint: Endpoint, record: RequestRecord) {
        match endpoint {
            Endpoint::Token => self.stats.token_requests += 1,
            Endpoint::Api => self.stats.api_requests += 1,
        }
        match record.status {
            STATUS_DROPPED => self.stats.dropped_connections += 1,
            status => {
                *self.stats.by_status.entry(status).or_default() += 1;
                if status == 429 {
                    self.stats.rate_limited += 1;
                }
            }
        }
        if self.capacity == 0 {
            return;
        }
        if self.records.len() == self.capacity {
            self.records.pop_front();
        }
        self.records.push_back(record);
    }

    pub(crate) fn records(&self) -> Vec<RequestRecord> {
        self.records.iter().cloned().collect()
    }

    pub(crate) fn stats(&self) -> SimStats {
        self.stats.clone()
    }
}
