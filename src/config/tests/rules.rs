//! One test per validation rule, each checking the exact key path of the
//! problem it reports (through the public API, on settings built in code).
//!
//! (Past 400 lines: a suite of independent tests, one per rule.)

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{CallbackSettings, ClusterSettings, ConfigError, Problem, Settings};

const IDS: [&str; 3] = [
    "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10",
    "5f2d9a44-1c3e-4b8f-a7d6-92e1b0c4f388",
    "c81e728d-9d4c-4f63-8e7b-2b6f1a0d5e97",
];

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn base() -> Settings {
    Settings::for_queues(IDS)
}

fn problems(settings: &Settings) -> Vec<Problem> {
    match settings.validate() {
        Ok(()) => Vec::new(),
        Err(ConfigError::Invalid(problems)) => problems,
        Err(other) => panic!("validate gave a non-Invalid error: {other}"),
    }
}

/// Exactly one problem, at `path`, whose message contains `fragment`.
#[track_caller]
fn expect_only(settings: &Settings, path: &str, fragment: &str) {
    let found = problems(settings);
    assert!(
        found.len() == 1 && found[0].path == path && found[0].message.contains(fragment),
        "expected only `{path}: ..{fragment}..`, got {found:#?}"
    );
}

#[track_caller]
fn expect_valid(settings: &Settings) {
    assert_eq!(problems(settings), Vec::<Problem>::new());
}

#[test]
fn interval_minimum() {
    let mut s = base();
    s.poll.interval = secs(2);
    expect_only(&s, "poll.interval", "2s is below the 5s minimum");
    let mut s = base();
    s.queues[2].interval = Some(secs(2));
    expect_only(&s, "queues[2].interval", "2s is below the 5s minimum");
    s.queues[2].interval = Some(secs(5));
    expect_valid(&s);
    s.queues[2].interval = Some(secs(2 * 24 * 3600));
    expect_only(&s, "queues[2].interval", "maximum");
}

#[test]
fn smoothing_factor_range() {
    for bad in [0.0, -0.5, 1.01, f64::NAN, f64::INFINITY] {
        let mut s = base();
        s.thresholds.smoothing_factor = bad;
        expect_only(
            &s,
            "thresholds.smoothing_factor",
            "outside 0 < smoothing_factor <= 1",
        );
    }
    let mut s = base();
    s.thresholds.smoothing_factor = 1.0;
    expect_valid(&s);
    s.queues[1].thresholds.smoothing_factor = Some(f64::NAN);
    expect_only(&s, "queues[1].thresholds.smoothing_factor", "outside");
}

#[test]
fn positive_thresholds() {
    let mut s = base();
    s.thresholds.max_acceptable_wait = Duration::ZERO;
    expect_only(&s, "thresholds.max_acceptable_wait", "greater than 0s");
    let mut s = base();
    s.thresholds.max_queue_depth = 0;
    expect_only(&s, "thresholds.max_queue_depth", "at least 1");
    let mut s = base();
    s.queues[2].thresholds.max_queue_depth = Some(0);
    expect_only(&s, "queues[2].thresholds.max_queue_depth", "at least 1");
    let mut s = base();
    s.queues[0].thresholds.max_acceptable_wait = Some(Duration::ZERO);
    expect_only(
        &s,
        "queues[0].thresholds.max_acceptable_wait",
        "greater than 0s",
    );
    let mut s = base();
    s.thresholds.min_agent_count = 0;
    s.queues[0].thresholds.min_agent_count = Some(0);
    expect_valid(&s);
}

/// A change to default settings, the key path it breaks, and a message fragment.
type Case = (fn(&mut Settings), &'static str, &'static str);

#[test]
fn genesys_and_poll_numbers() {
    let cases: [Case; 10] = [
        (
            |s| s.genesys.request_timeout = Duration::ZERO,
            "genesys.request_timeout",
            "greater than 0s",
        ),
        (
            |s| s.genesys.token_refresh_margin = Duration::ZERO,
            "genesys.token_refresh_margin",
            "greater than 0s",
        ),
        (
            |s| s.genesys.rate_limit_per_minute = 0,
            "genesys.rate_limit_per_minute",
            "at least 1",
        ),
        (
            |s| s.poll.backoff_max = secs(100_000),
            "poll.backoff_max",
            "above the 1day maximum",
        ),
        (
            |s| s.poll.backoff_base = secs(120),
            "poll.backoff_base",
            "2m is above poll.backoff_max (1m)",
        ),
        (
            |s| s.poll.history_size = 0,
            "poll.history_size",
            "at least 1",
        ),
        (
            |s| s.poll.history_size = 100_001,
            "poll.history_size",
            "100001 is above the 100000 maximum",
        ),
        (
            |s| s.poll.max_retries = 101,
            "poll.max_retries",
            "101 is above the 100 maximum",
        ),
        (
            |s| s.http.auth_token_env = Some("1TOKEN".into()),
            "http.auth_token_env",
            "not an environment variable name",
        ),
        (
            |s| s.genesys.client_secret_env = "MY-SECRET".into(),
            "genesys.client_secret_env",
            "not an environment variable name",
        ),
    ];
    for (change, path, fragment) in cases {
        let mut s = base();
        change(&mut s);
        expect_only(&s, path, fragment);
    }
    // Zero backoffs are reported each, and base <= max still holds.
    let mut s = base();
    s.poll.backoff_base = Duration::ZERO;
    expect_only(&s, "poll.backoff_base", "greater than 0s");
    s.poll.backoff_max = Duration::ZERO;
    let found: Vec<String> = problems(&s).iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        [
            "poll.backoff_base: must be greater than 0s",
            "poll.backoff_max: must be greater than 0s"
        ]
    );
    let mut s = base();
    s.poll.max_retries = 0;
    s.poll.history_size = 100_000;
    s.genesys.client_id_env = "_QW_ID2".into();
    expect_valid(&s);
}

#[test]
fn queue_list_rules() {
    let none: [&str; 0] = [];
    expect_only(&Settings::for_queues(none), "queues", "at least one queue");
    let many = (0..100_001u32).map(|i| format!("00000000-0000-4000-8000-{i:012x}"));
    expect_only(
        &Settings::for_queues(many),
        "queues",
        "100001 queues is above the 100000 maximum",
    );

    let mut s = base();
    s.queues[1].id = "not-a-uuid".into();
    expect_only(&s, "queues[1].id", "not a queue UUID");
    s.queues[1].id = "0b6c3b7e4f1d4c579a8e3f1f2d7c9a10".into();
    expect_only(&s, "queues[1].id", "not a queue UUID");
    s.queues[1].id = "../../admin/0000-0000-0000-000000000000".into();
    expect_only(&s, "queues[1].id", "not a queue UUID");
    s.queues[1].id = "5F2D9A44-1C3E-4B8F-A7D6-92E1B0C4F388".into();
    expect_only(&s, "queues[1].id", "lowercase");

    let mut s = Settings::for_queues([IDS[0], IDS[1], IDS[0], IDS[2], IDS[1], IDS[1]]);
    let found: Vec<String> = problems(&s).iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        [
            "queues[2].id: duplicate of queues[0].id",
            "queues[4].id: duplicate of queues[1].id",
            "queues[5].id: duplicate of queues[1].id",
        ]
    );
    s.queues.truncate(2);
    s.queues[0].name = Some("  ".into());
    expect_only(&s, "queues[0].name", "must not be empty");
}

#[test]
fn environment_rules() {
    for good in [
        "simulated",
        "mypurecloud.com",
        "usw2.pure.cloud",
        "use2.us-gov-pure.cloud",
        "zzz9.pure.cloud",
    ] {
        let mut s = base();
        s.genesys.environment = good.into();
        expect_valid(&s);
    }
    let bad = [
        ("https://mypurecloud.com", "scheme"),
        ("mypurecloud.com/api", "path"),
        ("api.mypurecloud.com", "prefix"),
        ("MyPureCloud.com", "lowercase"),
        ("localhost", "not a region domain"),
        ("", "not a region domain"),
        ("my_purecloud.com", "not a region domain"),
        ("-x.pure.cloud", "not a region domain"),
        ("mypurecloud..com", "not a region domain"),
    ];
    for (env, fragment) in bad {
        let mut s = base();
        s.genesys.environment = env.into();
        expect_only(&s, "genesys.environment", fragment);
    }
    // An unknown but plausible region is no error, only a warning.
    let mut s = base();
    s.genesys.environment = "zzz9.pure.cloud".into();
    assert_eq!(s.warnings()[0].path, "genesys.environment");
    assert_eq!(
        s.genesys.api_base().as_deref(),
        Some("https://api.zzz9.pure.cloud")
    );
    assert_eq!(
        s.genesys.login_base().as_deref(),
        Some("https://login.zzz9.pure.cloud")
    );
}

#[test]
fn api_and_login_urls() {
    for good in [
        "https://api.example.com",
        "http://127.0.0.1:8089",
        "http://127.9.8.7",
        "http://localhost:1/",
        "http://[::1]:8089",
        "https://proxy.example.com/genesys",
    ] {
        let mut s = base();
        s.genesys.api_url = Some(good.into());
        s.genesys.login_url = Some(good.into());
        expect_valid(&s);
    }
    let bad = [
        ("http://api.example.com", "must use https"),
        ("http://10.0.0.1:8089", "must use https"),
        ("ftp://api.example.com", "not http or https"),
        ("api.example.com", "not an absolute URL"),
        ("/just/a/path", "not an absolute URL"),
        ("https://user:pw@api.example.com", "credentials"),
        ("https://api.example.com/?x=1", "query"),
        ("https://api example.com", "not a valid URL"),
        ("", "not a valid URL"),
    ];
    for (url, fragment) in bad {
        let mut s = base();
        s.genesys.api_url = Some(url.into());
        expect_only(&s, "genesys.api_url", fragment);
        let mut s = base();
        s.genesys.login_url = Some(url.into());
        expect_only(&s, "genesys.login_url", fragment);
    }
    let mut s = base();
    assert_eq!(s.genesys.api_base(), None, "simulated without override");
    s.genesys.api_url = Some("http://127.0.0.1:8089/".into());
    assert_eq!(
        s.genesys.api_base().as_deref(),
        Some("http://127.0.0.1:8089")
    );
    s.genesys.environment = "mypurecloud.de".into();
    assert_eq!(
        s.genesys.login_base().as_deref(),
        Some("https://login.mypurecloud.de")
    );
}

#[test]
fn callback_rules() {
    let webhook = |url: &str, secret: Option<&str>| CallbackSettings::Webhook {
        url: url.into(),
        secret_env: secret.map(Into::into),
    };
    let jsonl = |path: &str| CallbackSettings::Jsonl {
        path: PathBuf::from(path),
    };
    let nats = |url: &str, subject: &str, stream: &str| CallbackSettings::Nats {
        url: url.into(),
        subject: subject.into(),
        stream: stream.into(),
    };
    let mut s = base();
    s.callbacks = vec![
        CallbackSettings::Log,
        CallbackSettings::Stdout,
        jsonl("a.jsonl"),
        jsonl("b.jsonl"),
        webhook("https://example.com/hook?team=ops", Some("HOOK_SECRET")),
        webhook("http://localhost:9000/hook", None),
        nats(
            "nats://10.0.0.5:4222,tls://nats.example.com",
            "acme.queues",
            "ACME_Q-1",
        ),
    ];
    expect_valid(&s);
    s.callbacks = Vec::new();
    expect_valid(&s);

    let cases = [
        (
            webhook("http://example.com/hook", None),
            "callbacks[1].url",
            "must use https",
        ),
        (
            webhook("https://example.com/hook", Some("bad name")),
            "callbacks[1].secret_env",
            "not an environment variable name",
        ),
        (jsonl(""), "callbacks[1].path", "must not be empty"),
        (
            jsonl("audit.jsonl"),
            "callbacks[1].path",
            "same file as callbacks[0].path",
        ),
        (
            nats("https://nats.example.com", "a.b", "S"),
            "callbacks[1].url",
            "not nats or tls",
        ),
        (
            nats("nats://a:4222,", "a.b", "S"),
            "callbacks[1].url",
            "not a valid URL",
        ),
        (
            nats("nats://a:4222", "a..b", "S"),
            "callbacks[1].subject",
            "not a NATS subject",
        ),
        (
            nats("nats://a:4222", "events.>", "S"),
            "callbacks[1].subject",
            "not a NATS subject",
        ),
        (
            nats("nats://a:4222", "a.b", "MY.STREAM"),
            "callbacks[1].stream",
            "not a JetStream stream name",
        ),
        (
            nats("nats://a:4222", "a.b", ""),
            "callbacks[1].stream",
            "not a JetStream stream name",
        ),
    ];
    for (second, path, fragment) in cases {
        let mut s = base();
        s.callbacks = vec![jsonl("audit.jsonl"), second];
        expect_only(&s, path, fragment);
    }
}

#[test]
fn cluster_rules() {
    let mut s = base();
    s.cluster = Some(ClusterSettings::default());
    expect_valid(&s);
    s.cluster = Some(ClusterSettings {
        lease_ttl: secs(2),
        ..ClusterSettings::default()
    });
    expect_only(&s, "cluster.lease_ttl", "2s is below the 3s minimum");
    s.cluster = Some(ClusterSettings {
        nats_url: "http://127.0.0.1:4222".into(),
        ..ClusterSettings::default()
    });
    expect_only(&s, "cluster.nats_url", "not nats or tls");
    s.cluster = Some(ClusterSettings {
        instance_id: Some("node a".into()),
        ..ClusterSettings::default()
    });
    expect_only(&s, "cluster.instance_id", "not an instance id");
    s.cluster = Some(ClusterSettings {
        instance_id: Some("host-1.example_42".into()),
        ..ClusterSettings::default()
    });
    expect_valid(&s);
}

/// The typed rule errors (queue id and name, environment, NATS names) give
/// the messages word for word as before they were typed.
#[test]
fn typed_rule_errors_keep_their_text() {
    const HINT: &str = "a region domain such as mypurecloud.com, or simulated";
    type Change = Box<dyn Fn(&mut Settings)>;
    let cases: Vec<(Change, String)> = vec![
        (
            Box::new(|s| s.queues[0].id = "nope".into()),
            "queues[0].id: \"nope\" is not a queue UUID (8-4-4-4-12 hex digits, e.g. \
             0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10)"
                .into(),
        ),
        (
            Box::new(|s| s.queues[0].id = "5F2D9A44-1C3E-4B8F-A7D6-92E1B0C4F388".into()),
            "queues[0].id: \"5F2D9A44-1C3E-4B8F-A7D6-92E1B0C4F388\" must be lowercase, \
             as Genesys writes queue ids"
                .into(),
        ),
        (
            Box::new(|s| s.queues[0].name = Some(" ".into())),
            "queues[0].name: must not be empty (leave the key out instead)".into(),
        ),
        (
            Box::new(|s| s.queues[0].name = Some("x".repeat(300))),
            "queues[0].name: 300 characters is above the 256 maximum".into(),
        ),
        (
            Box::new(|s| s.queues[0].name = Some("a\u{1b}b".into())),
            "queues[0].name: \"a\\u{1b}b\" contains the control character '\\u{1b}'".into(),
        ),
        (
            Box::new(|s| s.genesys.environment = "https://mypurecloud.com".into()),
            format!(
                "genesys.environment: \"https://mypurecloud.com\" has a scheme; write only \
                 {HINT} (genesys.api_url takes a full URL)"
            ),
        ),
        (
            Box::new(|s| s.genesys.environment = "mypurecloud.com/x".into()),
            format!("genesys.environment: \"mypurecloud.com/x\" has a path; write only {HINT}"),
        ),
        (
            Box::new(|s| s.genesys.environment = "api.mypurecloud.com".into()),
            format!(
                "genesys.environment: \"api.mypurecloud.com\": leave out the api./login. \
                 prefix; write only {HINT}"
            ),
        ),
        (
            Box::new(|s| s.genesys.environment = "MyPureCloud.com".into()),
            "genesys.environment: \"MyPureCloud.com\" must be lowercase".into(),
        ),
        (
            Box::new(|s| s.genesys.environment = "x".repeat(300)),
            format!(
                "genesys.environment: \"{}...\" is not {HINT}",
                "x".repeat(60)
            ),
        ),
        (
            Box::new(|s| {
                s.callbacks = vec![CallbackSettings::Nats {
                    url: "nats://a:4222".into(),
                    subject: "a.*".into(),
                    stream: "MY.STREAM".into(),
                }]
            }),
            "callbacks[0].subject: \"a.*\" is not a NATS subject (dot-separated tokens \
             without spaces or wildcards)\n\
             callbacks[0].stream: \"MY.STREAM\" is not a JetStream stream name (letters, \
             digits, - and _)"
                .into(),
        ),
    ];
    for (change, want) in cases {
        let mut s = base();
        change(&mut s);
        let found: Vec<String> = problems(&s).iter().map(ToString::to_string).collect();
        assert_eq!(found.join("\n"), want);
    }
}
