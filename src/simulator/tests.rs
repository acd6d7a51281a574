//! Unit tests of the pure parts: queue evolution, windows, faults, parsing.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;

use super::config::SimulatorConfig;
use super::faults::{Fault, FaultRule, FaultSet, Faults};
use super::observations;
use super::queue_model::{evolve, queue_rng, Guest, QueueProfile, MAX_AGENTS, MAX_DEPTH};
use super::rate::SlidingWindow;
use super::state::SimState;
use super::token::parse_basic;

fn new_queue(seed: u64, id: &str) -> (QueueProfile, super::queue_model::QueueState, fastrand::Rng) {
    let mut rng = queue_rng(seed, id);
    let profile = QueueProfile::random(&mut rng);
    let state = profile.initial_state(&mut rng);
    (profile, state, rng)
}

#[test]
fn no_time_no_change() {
    let (profile, state, mut rng) = new_queue(7, "q");
    let same = evolve(&state, &profile, Duration::from_millis(999), &mut rng);
    assert_eq!(same, state);
}

#[test]
fn queues_move_within_seconds() {
    let (profile, state, mut rng) = new_queue(7, "q");
    let later = evolve(&state, &profile, Duration::from_secs(10), &mut rng);
    assert_ne!(later, state);
    assert_ne!(later.guest_wait_secs(), state.guest_wait_secs());
}

#[test]
fn evolution_is_deterministic_per_seed_and_queue() {
    let run = |seed, id| {
        let (profile, state, mut rng) = new_queue(seed, id);
        evolve(&state, &profile, Duration::from_secs(120), &mut rng)
    };
    assert_eq!(run(1, "a"), run(1, "a"));
    assert_ne!(run(1, "a"), run(2, "a"));
    let profiles: Vec<QueueProfile> = ["a", "b", "c", "d"]
        .iter()
        .map(|id| new_queue(1, id).0)
        .collect();
    assert!(profiles.windows(2).all(|pair| pair[0] != pair[1]));
}

#[test]
fn queues_stay_within_bounds() {
    for id in ["a", "b", "c", "d", "e", "f"] {
        let (profile, mut state, mut rng) = new_queue(3, id);
        assert!(profile.agents_max <= MAX_AGENTS);
        for _ in 0..3_000 {
            state = evolve(&state, &profile, Duration::from_secs(1), &mut rng);
            assert!(state.waiting <= MAX_DEPTH);
            assert!((profile.agents_min..=profile.agents_max).contains(&state.agents()));
            assert!((profile.aht_min..=profile.aht_max).contains(&state.aht_secs));
            match state.guest {
                Guest::Waiting { position } => {
                    assert!((1..=state.waiting).contains(&position));
                    assert_eq!(state.guest_status(), "waiting");
                }
                Guest::Connecting { .. } => {
                    assert_eq!(state.guest_position(), 0);
                    assert_eq!(state.guest_wait_secs(), 0.0);
                    assert_eq!(state.guest_status(), "connecting");
                }
            }
            let wait = state.guest_wait_secs();
            assert_eq!((wait * 10.0).round() / 10.0, wait);
        }
    }
}

#[test]
fn guest_moves_forward_then_a_new_guest_joins_at_the_back() {
    let (profile, mut state, mut rng) = new_queue(11, "guest");
    let (mut went_down, mut served, mut rejoined) = (false, false, false);
    for _ in 0..3_600 {
        let next = evolve(&state, &profile, Duration::from_secs(1), &mut rng);
        match (state.guest, next.guest) {
            (Guest::Waiting { position: a }, Guest::Waiting { position: b }) if b < a => {
                went_down = true;
            }
            (Guest::Waiting { .. }, Guest::Connecting { .. }) => served = true,
            (Guest::Connecting { .. }, Guest::Waiting { position }) => {
                // Joins at the back; later arrivals of the same second queue behind.
                assert!((1..=next.waiting).contains(&position));
                rejoined = true;
            }
            _ => {}
        }
        state = next;
    }
    assert!(went_down && served && rejoined);
}

#[test]
fn long_idle_periods_are_capped() {
    let (profile, state, mut rng) = new_queue(5, "q");
    let started = Instant::now();
    let _ = evolve(
        &state,
        &profile,
        Duration::from_secs(86_400 * 365),
        &mut rng,
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn window_limits_and_frees_slots() {
    let t0 = Instant::now();
    let mut window = SlidingWindow::default();
    for i in 1..=5 {
        let at = t0 + Duration::from_secs(i);
        let usage = window.try_acquire(at, 5).expect("within the limit");
        assert_eq!(usage.count, u32::try_from(i).expect("small"));
        assert_eq!(usage.allowed, 5);
        assert_eq!(usage.reset_secs, 60);
    }
    let limited = window
        .try_acquire(t0 + Duration::from_millis(5_500), 5)
        .expect_err("sixth request refused");
    assert_eq!(limited.usage.count, 5);
    // The first request (at 1 s) leaves the window at 61 s: 55.5 s -> 56.
    assert_eq!(limited.retry_after_secs, 56);
    assert!(window.try_acquire(t0 + Duration::from_secs(61), 5).is_ok());
    // Lowered allowance: the third-newest must leave first.
    let lowered = window
        .try_acquire(t0 + Duration::from_secs(61), 3)
        .expect_err("lowered allowance");
    assert_eq!(lowered.retry_after_secs, 3);
    assert_eq!(lowered.usage.allowed, 3);
    let zero = window.try_acquire(t0, 0).expect_err("nothing allowed");
    assert!(zero.retry_after_secs >= 1);
    assert!(!window.is_empty(t0 + Duration::from_secs(100)));
    assert!(window.is_empty(t0 + Duration::from_secs(200)));
}

#[test]
fn counted_rules_apply_exactly_n_times() {
    let faults = Faults::default();
    faults.push(FaultRule::times(Fault::DropConnection, 2));
    let ids = vec!["q".to_owned()];
    assert_eq!(
        faults.take_api("/api/v2/x", &ids),
        Some(Fault::DropConnection)
    );
    assert_eq!(faults.current().rules[0].remaining, Some(1));
    assert_eq!(
        faults.take_api("/api/v2/x", &ids),
        Some(Fault::DropConnection)
    );
    assert_eq!(faults.take_api("/api/v2/x", &ids), None);
    assert_eq!(faults.current(), FaultSet::default());
}

#[test]
fn rules_match_their_scope() {
    let faults = Faults::default();
    faults.set(FaultSet {
        rules: vec![
            FaultRule::always(Fault::TokenOutage { status: 503 }),
            FaultRule::always(Fault::MalformedBody).for_queue("b"),
            FaultRule::times(Fault::Status { status: 403 }, 0),
            FaultRule::always(Fault::Slow { delay_ms: 5 }),
        ],
    });
    let batch = vec!["a".to_owned(), "b".to_owned()];
    assert_eq!(
        faults.take_api("/api/v2/x", &batch),
        Some(Fault::MalformedBody)
    );
    assert_eq!(
        faults.take_api("/api/v2/x", &["a".to_owned()]),
        Some(Fault::Slow { delay_ms: 5 })
    );
    assert_eq!(
        faults.take_token(),
        Some(Fault::TokenOutage { status: 503 })
    );
    assert_eq!(faults.current().rules.len(), 3, "exhausted rule dropped");
    faults.clear();
    assert_eq!(faults.take_token(), None);
}

#[test]
fn rules_can_target_paths() {
    let faults = Faults::default();
    faults.push(
        FaultRule::times(
            Fault::RateLimit {
                retry_after_secs: 3,
            },
            1,
        )
        .for_path_containing("/notifications/"),
    );
    let ids: Vec<String> = Vec::new();
    assert_eq!(
        faults.take_api("/api/v2/analytics/queues/observations/query", &ids),
        None
    );
    assert_eq!(
        faults.take_api("/api/v2/notifications/channels", &ids),
        Some(Fault::RateLimit {
            retry_after_secs: 3
        })
    );
    let json = r#"{"fault":{"kind":"drop_connection"},"path_contains":"/notifications/"}"#;
    let rule: FaultRule = serde_json::from_str(json).expect("valid rule");
    assert_eq!(
        rule,
        FaultRule::always(Fault::DropConnection).for_path_containing("/notifications/")
    );
    let plain = serde_json::to_value(FaultRule::always(Fault::DropConnection)).expect("serializes");
    assert!(
        plain.get("path_contains").is_none(),
        "left out when None: {plain}"
    );
}

#[test]
fn fault_set_serde_form() {
    let json = r#"{"rules":[{"fault":{"kind":"rate_limit","retry_after_secs":3},"remaining":2},
        {"fault":{"kind":"drop_connection"},"queue_id":"q1"}]}"#;
    let set: FaultSet = serde_json::from_str(json).expect("valid fault set");
    assert_eq!(
        set.rules,
        vec![
            FaultRule::times(
                Fault::RateLimit {
                    retry_after_secs: 3
                },
                2
            ),
            FaultRule::always(Fault::DropConnection).for_queue("q1"),
        ]
    );
    let back: FaultSet =
        serde_json::from_value(serde_json::to_value(&set).expect("serializes")).expect("parses");
    assert_eq!(back, set);
}

fn predicates(n: usize) -> serde_json::Value {
    (0..n)
        .map(|i| serde_json::json!({"type":"dimension","dimension":"queueId","operator":"matches","value":format!("q{i}")}))
        .collect()
}

fn parse(body: &serde_json::Value) -> Result<observations::ObservationQuery, (StatusCode, String)> {
    observations::parse(
        Some("application/json; charset=UTF-8"),
        body.to_string().as_bytes(),
    )
}

#[test]
fn observation_queries_are_checked() {
    let ok = serde_json::json!({"filter":{"type":"or","predicates":predicates(100)},"metrics":["oWaiting","oOnQueueUsers"]});
    assert_eq!(parse(&ok).expect("valid").queue_ids.len(), 100);
    let single = serde_json::json!({"filter":{"type":"and","predicates":predicates(1)},"metrics":["oWaiting"]});
    assert_eq!(
        parse(&single).expect("valid").queue_ids,
        vec!["q0".to_owned()]
    );

    let too_many = serde_json::json!({"filter":{"type":"or","predicates":predicates(101)},"metrics":["oWaiting"]});
    let unknown_metric =
        serde_json::json!({"filter":{"type":"or","predicates":predicates(1)},"metrics":["oBogus"]});
    let no_metrics =
        serde_json::json!({"filter":{"type":"or","predicates":predicates(1)},"metrics":[]});
    let bad_type = serde_json::json!({"filter":{"type":"xor","predicates":predicates(1)},"metrics":["oWaiting"]});
    let other_dimension = serde_json::json!({"filter":{"type":"or","predicates":[{"dimension":"userId","value":"u"}]},"metrics":["oWaiting"]});
    let no_value = serde_json::json!({"filter":{"type":"or","predicates":[{"dimension":"queueId"}]},"metrics":["oWaiting"]});
    let wrong_shape = serde_json::json!({"filter":"q1","metrics":["oWaiting"]});
    let clauses = serde_json::json!({"filter":{"type":"or","predicates":predicates(1),"clauses":[{}]},"metrics":["oWaiting"]});
    let no_predicates =
        serde_json::json!({"filter":{"type":"or","predicates":[]},"metrics":["oWaiting"]});
    let other_kind = serde_json::json!({"filter":{"type":"or","predicates":[{"type":"metric","dimension":"queueId","value":"q"}]},"metrics":["oWaiting"]});
    let no_dimension = serde_json::json!({"filter":{"type":"or","predicates":[{"value":"q"}]},"metrics":["oWaiting"]});
    let other_operator = serde_json::json!({"filter":{"type":"or","predicates":[predicates(1)[0].clone(), {"dimension":"queueId","operator":"exists","value":"q"}]},"metrics":["oWaiting"]});
    for (body, want) in [
        (
            too_many,
            "filter.predicates has 101 entries; at most 100 are allowed",
        ),
        (unknown_metric, "metric 'oBogus' is not supported"),
        (no_metrics, "metrics must not be empty"),
        (bad_type, "filter.type 'xor' must be 'and' or 'or'"),
        (
            other_dimension,
            "filter.predicates[0]: dimension 'userId' is not supported",
        ),
        (no_value, "filter.predicates[0]: value is required"),
        (wrong_shape, "Unable to parse the request body: "),
        (clauses, "filter.clauses are not supported by the simulator"),
        (no_predicates, "filter.predicates must not be empty"),
        (
            other_kind,
            "filter.predicates[0]: type 'metric' is not supported",
        ),
        (no_dimension, "filter.predicates[0]: dimension is required"),
        (
            other_operator,
            "filter.predicates[1]: operator 'exists' is not supported",
        ),
    ] {
        let (status, message) = parse(&body).expect_err("refused");
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        if want.ends_with(": ") {
            assert!(message.starts_with(want), "{message}");
        } else {
            assert_eq!(message, want, "{body}");
        }
    }
    assert_eq!(
        observations::parse(Some("text/plain"), ok.to_string().as_bytes()).map_err(|e| e.0),
        Err(StatusCode::UNSUPPORTED_MEDIA_TYPE)
    );
    assert_eq!(
        observations::parse(Some("application/json"), b"{not json").map_err(|e| e.0),
        Err(StatusCode::BAD_REQUEST)
    );
}

#[test]
fn basic_credentials_parse() {
    // base64("id:se:cret")
    assert_eq!(
        parse_basic("Basic aWQ6c2U6Y3JldA=="),
        Some(("id".to_owned(), "se:cret".to_owned()))
    );
    assert_eq!(
        parse_basic("basic aWQ6c2U6Y3JldA=="),
        parse_basic("Basic aWQ6c2U6Y3JldA==")
    );
    assert_eq!(parse_basic("Bearer aWQ6c2U6Y3JldA=="), None);
    assert_eq!(parse_basic("Basic !!!"), None);
    assert_eq!(parse_basic("Basic aWQ="), None, "no colon");
    assert_eq!(parse_basic("Basic"), None);
}

#[test]
fn tokens_expire_and_are_revoked() {
    let t0 = Instant::now();
    let config = SimulatorConfig {
        token_lifetime: Duration::from_secs(10),
        ..SimulatorConfig::with_queues(["q"])
    };
    let mut state = SimState::new(&config, t0);
    let (token, expires_in) = state.issue_token(t0);
    assert_eq!(expires_in, 10);
    assert!(state.token_valid(&token, t0 + Duration::from_secs(9)));
    assert!(!state.token_valid(&token, t0 + Duration::from_secs(10)));
    let (token, _) = state.issue_token(t0);
    assert_eq!(state.revoke_tokens(), 1);
    assert!(!state.token_valid(&token, t0));
    assert!(!state.token_valid("never-issued", t0));

    let forever = SimulatorConfig {
        token_lifetime: Duration::MAX,
        ..SimulatorConfig::default()
    };
    let mut state = SimState::new(&forever, t0);
    let (token, _) = state.issue_token(t0);
    assert!(state.token_valid(&token, t0 + Duration::from_secs(86_400 * 3650)));
}

#[test]
fn config_debug_hides_the_secret() {
    let config = SimulatorConfig::default();
    assert!(!format!("{config:?}").contains(&config.client_secret));
}
