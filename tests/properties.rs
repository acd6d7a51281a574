#![cfg(feature = "simulator")]
//! Property tests: parsers and validators never panic on hostile input, and
//! valid values round-trip. Few cases by default (CI); `PROPTEST_CASES=N`
//! runs N per property.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use queuewatch::config::{Settings, Source};
use queuewatch::error::ErrorKind;
use queuewatch::event::{Availability, PollEvent, PollFailedEvent};
use queuewatch::genesys::headers::{parse_retry_after, MAX_RETRY_AFTER};
use queuewatch::genesys::wire::{
    parse_estimated_wait, parse_observations, parse_position, parse_token,
};
use queuewatch::Event;
use serde_json::{json, Value};

const Q: &str = "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10";
const Q2: &str = "22222222-2222-4222-8222-222222222222";

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A settings file touching every section.
const VALID_YAML: &str = r#"genesys:
  environment: simulated
  api_url: http://127.0.0.1:8089
  login_url: null
  client_id_env: GENESYS_CLIENT_ID
  client_secret_env: GENESYS_CLIENT_SECRET
  request_timeout: 8s
  token_refresh_margin: 60s
  rate_limit_per_minute: 300
poll:
  source: guest_position
  interval: 10s
  max_retries: 5
  backoff_base: 1s
  backoff_max: 60s
  history_size: 720
thresholds:
  max_acceptable_wait: 300s
  smoothing_factor: 0.8
  max_queue_depth: 50
  min_agent_count: 3
queues:
  - id: 0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10
    name: support
    interval: 15s
    thresholds: {max_queue_depth: 7}
  - id: 22222222-2222-4222-8222-222222222222
callbacks:
  - kind: log
  - kind: jsonl
    path: audit.jsonl
  - kind: webhook
    url: https://example.com/hooks/queue
    secret_env: QUEUEWATCH_WEBHOOK_SECRET
http:
  bind: 127.0.0.1:9464
  auth_token_env: null
"#;

/// Characters that matter to YAML, durations and URLs.
const SPICY: &[&str] = &[
    ":",
    "-",
    " ",
    "\n",
    "  ",
    "[",
    "]",
    "{",
    "}",
    "'",
    "\"",
    "&a",
    "*a",
    "!!str",
    "#",
    "|",
    ">",
    "?",
    ",",
    "0",
    "-1",
    "1e999",
    "NaN",
    ".inf",
    "~",
    "null",
    "5m",
    "0s",
    "999999999h",
    "\t",
    "\u{0}",
    "\u{feff}",
    "é",
    "%",
    "../",
    "\\",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, text: String },
    Spice { at: usize, which: usize },
    DuplicateLine { line: usize },
    SwapLines { a: usize, b: usize },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..20).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), ".{0,8}").prop_map(|(at, text)| Mutation::Insert { at, text }),
        (any::<usize>(), any::<usize>()).prop_map(|(at, which)| Mutation::Spice { at, which }),
        any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

/// The nearest char boundary at or below `at % (len + 1)`.
fn boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &mut String, m: &Mutation) {
    match m {
        Mutation::Delete { at, len } => {
            let start = boundary(text, *at);
            let end = boundary(text, (start + len).min(text.len()));
            if end > start {
                text.replace_range(start..end, "");
            }
        }
        Mutation::Insert { at, text: insert } => {
            let at = boundary(text, *at);
            text.insert_str(at, insert);
        }
        Mutation::Spice { at, which } => {
            let at = boundary(text, *at);
            text.insert_str(at, SPICY[which % SPICY.len()]);
        }
        Mutation::DuplicateLine { line } => {
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            if !lines.is_empty() {
                let i = line % lines.len();
                lines.insert(i, lines[i].clone());
                *text = lines.join("\n");
            }
        }
        Mutation::SwapLines { a, b } => {
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            if !lines.is_empty() {
                let n = lines.len();
                lines.swap(a % n, b % n);
                *text = lines.join("\n");
            }
        }
        Mutation::Truncate { at } => {
            let at = boundary(text, *at);
            text.truncate(at);
        }
    }
}

/// Accepted settings are valid and survive a YAML round trip.
fn check_accepted(settings: &Settings) {
    settings
        .validate()
        .expect("from_yaml_str returned unvalidated settings");
    let yaml = serde_saphyr::to_string(settings).expect("settings serialise");
    let back = Settings::from_yaml_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(&back, settings, "{yaml}");
}

/// Arbitrary JSON values, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![Just(Q), Just(Q2)].prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("position".to_string()),
            Just("estimatedWaitTime".to_string()),
            Just("queueId".to_string()),
            Just("status".to_string()),
            Just("results".to_string()),
            Just("group".to_string()),
            Just("data".to_string()),
            Just("metric".to_string()),
            Just("stats".to_string()),
            Just("count".to_string()),
            Just("estimatedWaitTimeSeconds".to_string()),
            Just("access_token".to_string()),
            Just("token_type".to_string()),
            Just("expires_in".to_string()),
            Just("oWaiting".to_string()),
            Just("oOnQueueUsers".to_string()),
            ".{0,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn parse_everything(body: &[u8]) {
    let _ = parse_position(Q, body);
    let _ = parse_estimated_wait(body);
    let _ = parse_observations(&[Q, Q2], body);
    let _ = parse_token(body);
}

fn finite() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("finite", |f| f.is_finite())
}

fn source() -> impl Strategy<Value = Source> {
    prop_oneof![
        Just(Source::GuestPosition),
        Just(Source::EstimatedWaitTime),
        Just(Source::Observations),
    ]
}

fn availability() -> impl Strategy<Value = Option<Availability>> {
    prop::option::of(prop_oneof![
        Just(Availability::High),
        Just(Availability::Moderate),
        Just(Availability::Low),
    ])
}

fn event() -> impl Strategy<Value = Event> {
    let text = ".{0,24}";
    let poll = (
        (text, text, text, prop::option::of(text), source()),
        (
            prop::option::of(any::<u32>()),
            prop::option::of(finite()),
            prop::option::of(finite()),
            prop::option::of(any::<u32>()),
            prop::option::of(any::<u32>()),
            prop::option::of(text),
        ),
        (
            any::<bool>(),
            any::<bool>(),
            prop::option::of(any::<bool>()),
            availability(),
            finite(),
            any::<u32>(),
        ),
    )
        .prop_map(|((id, timestamp, queue_id, queue_name, source), a, b)| {
            Event::Poll(PollEvent {
                id,
                timestamp,
                queue_id: queue_id.into(),
                queue_name,
                source,
                position: a.0,
                estimated_wait_seconds: a.1,
                smoothed_wait_seconds: a.2,
                waiting: a.3,
                agents_on_queue: a.4,
                status: a.5,
                over_capacity: b.0,
                exceeds_wait_directive: b.1,
                below_min_agents: b.2,
                agent_availability: b.3,
                latency_ms: b.4,
                data_age_ms: None,
                attempts: b.5,
            })
        });
    let failed = (
        (text, text, text, prop::option::of(text), source()),
        (
            prop::sample::select(ErrorKind::ALL.to_vec()),
            text,
            any::<u32>(),
        ),
    )
        .prop_map(
            |((id, timestamp, queue_id, queue_name, source), (error, detail, attempts))| {
                Event::PollFailed(PollFailedEvent {
                    id,
                    timestamp,
                    queue_id: queue_id.into(),
                    queue_name,
                    source,
                    error,
                    detail,
                    attempts,
                })
            },
        );
    prop_oneof![poll, failed]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn settings_parser_never_panics_on_arbitrary_text(text in ".{0,300}") {
        if let Ok(settings) = Settings::from_yaml_str(&text) {
            check_accepted(&settings);
        }
    }

    #[test]
    fn settings_parser_never_panics_on_mutated_yaml(
        mutations in prop::collection::vec(mutation(), 1..6)
    ) {
        let mut text = VALID_YAML.to_string();
        for m in &mutations {
            apply(&mut text, m);
        }
        match Settings::from_yaml_str(&text) {
            Ok(settings) => check_accepted(&settings),
            // Errors are reports, never secrets or panics: each names something.
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }

    #[test]
    fn response_parsers_never_panic_on_arbitrary_bytes(
        body in prop::collection::vec(any::<u8>(), 0..512)
    ) {
        parse_everything(&body);
    }

    #[test]
    fn response_parsers_never_panic_on_arbitrary_json(value in json_value()) {
        parse_everything(value.to_string().as_bytes());
        // And the same value wrapped where each parser looks first.
        for wrapped in [
            json!({"results": [value.clone()]}),
            json!({"results": [{"group": {"queueId": Q}, "data": [value.clone()]}]}),
            json!({"position": value.clone(), "estimatedWaitTime": 1, "queueId": Q}),
            json!({"access_token": value.clone(), "expires_in": 300}),
        ] {
            parse_everything(wrapped.to_string().as_bytes());
        }
    }

    #[test]
    fn valid_position_bodies_round_trip(
        position in 0u32..=1_000_000,
        wait in 0.0f64..=604_800.0,
        status in prop::option::of("[a-zA-Z]{0,20}"),
    ) {
        let body = json!({"position": position, "estimatedWaitTime": wait, "status": status, "queueId": Q});
        let sample = parse_position(Q, body.to_string().as_bytes()).unwrap();
        prop_assert_eq!(sample.position, Some(position));
        prop_assert_eq!(sample.estimated_wait_seconds, Some(wait));
        prop_assert_eq!(sample.status, status);
        prop_assert_eq!(sample.waiting, None);
        // Another queue's body is a mismatch, never a sample.
        let err = parse_position(Q2, body.to_string().as_bytes()).unwrap_err();
        prop_assert_eq!(err.kind, ErrorKind::QueueMismatch);
    }

    #[test]
    fn valid_wait_bodies_round_trip(wait in 0.0f64..=604_800.0) {
        let body = json!({"results": [{"intent": "MESSAGE", "formula": "BEST", "estimatedWaitTimeSeconds": wait}]});
        let sample = parse_estimated_wait(body.to_string().as_bytes()).unwrap();
        prop_assert_eq!(sample.estimated_wait_seconds, Some(wait));
        prop_assert_eq!(sample.position, None);
    }

    #[test]
    fn valid_observation_bodies_round_trip(
        // Within the sane bounds (sums included) a response may carry.
        waiting in prop::collection::vec(0u32..333_333, 1..4),
        agents in prop::collection::vec(0u32..333_333, 0..4),
        shuffle in any::<bool>(),
    ) {
        let mut data: Vec<Value> = waiting
            .iter()
            .map(|n| json!({"metric": "oWaiting", "stats": {"count": n}}))
            .chain(agents.iter().enumerate().map(|(i, n)| {
                json!({"metric": "oOnQueueUsers", "qualifier": format!("Q{i}"), "stats": {"count": n}})
            }))
            .collect();
        if shuffle {
            data.reverse();
        }
        let body = json!({"results": [
            {"group": {"queueId": Q2, "mediaType": "message"}, "data": []},
            {"group": {"queueId": Q, "mediaType": "message"}, "data": data},
        ]});
        let map = parse_observations(&[Q, Q2], body.to_string().as_bytes()).unwrap();
        let sum = |v: &[u32]| v.iter().fold(0u32, |a, b| a.saturating_add(*b));
        prop_assert_eq!(map[Q].waiting, Some(sum(&waiting)));
        prop_assert_eq!(map[Q].agents_on_queue, Some(sum(&agents)));
        prop_assert_eq!(map[Q2].waiting, Some(0));
    }

    #[test]
    fn valid_token_bodies_round_trip(
        token in "[A-Za-z0-9._~+/-]{1,64}",
        expires_in in any::<u64>(),
    ) {
        let body = json!({"access_token": token, "token_type": "bearer", "expires_in": expires_in});
        let parsed = parse_token(body.to_string().as_bytes()).unwrap();
        prop_assert_eq!(&parsed.access_token, &token);
        prop_assert_eq!(parsed.expires_in, expires_in);
        let shown = format!("{parsed:?}");
        prop_assert!(!shown.contains(&token) || token.len() < 4, "{}", shown);
    }

    #[test]
    fn retry_after_never_panics_and_is_bounded(value in prop_oneof![
        ".{0,40}",
        any::<u128>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        "[0-9]{20,400}",
        (0u64..8_000_000_000).prop_map(|s| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(s))),
        "(Mon|Tue|Sun), [0-9]{1,3} (Jan|Feb|Foo) [0-9]{1,6} [0-9]{1,3}:[0-9]{2}:[0-9]{2} (GMT|UTC)",
    ], now_secs in 0u64..8_000_000_000) {
        let now = UNIX_EPOCH + Duration::from_secs(now_secs);
        if let Some(after) = parse_retry_after(&value, now) {
            prop_assert!(after <= MAX_RETRY_AFTER, "{value:?} gave {after:?}");
        }
        let _ = parse_retry_after(&value, SystemTime::now());
    }

    #[test]
    fn retry_after_seconds_are_exact_below_the_cap(secs in 0u64..=86_400) {
        prop_assert_eq!(
            parse_retry_after(&secs.to_string(), SystemTime::now()),
            Some(Duration::from_secs(secs))
        );
        prop_assert_eq!(parse_retry_after(&format!("-{}", secs + 1), SystemTime::now()), None);
    }

    #[test]
    fn events_round_trip_through_json(event in event()) {
        let json = event.to_json();
        let back: Event = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &event, "{}", json);
        let value: Value = serde_json::from_str(&json).unwrap();
        let kind = if matches!(event, Event::Poll(_)) { "poll" } else { "poll_failed" };
        prop_assert_eq!(value["type"].as_str(), Some(kind));
    }
}
