//! The settings module through its public API: loading, defaults, every
//! validation rule with its key path, parse errors, round trip, budget math.

use std::path::{Path, PathBuf};
use std::time::Duration;

use queuewatch::config::{
    CallbackSettings, ClusterSettings, ConfigError, Problem, Settings, Source, ThresholdOverrides,
};

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

fn parse_err(yaml: &str) -> (String, Option<usize>, Option<usize>) {
    match Settings::from_yaml_str(yaml) {
        Err(ConfigError::Parse {
            message,
            line,
            column,
        }) => (message, line, column),
        other => panic!("expected a parse error for {yaml:?}, got {other:?}"),
    }
}

fn queues_yaml() -> String {
    let mut out = String::from("queues:\n");
    for id in IDS {
        out.push_str(&format!("  - id: {id}\n"));
    }
    out
}

#[test]
fn shipped_settings_yaml_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("settings.yaml");
    let settings = Settings::load(&path).expect("shipped settings.yaml is valid");
    assert!(settings.genesys.is_simulated());
    assert_eq!(settings.poll.interval, secs(5));
    let names: Vec<_> = settings.queues.iter().map(|q| q.label()).collect();
    assert_eq!(names, ["support", "billing", "sales", "returns", "vip"]);
    assert_eq!(settings.callbacks, [CallbackSettings::Log]);
    assert_eq!(settings.cluster, None);
    assert_eq!(settings.warnings(), Vec::<Problem>::new());
}

#[test]
fn defaults_equal_spec_section_2() {
    let s = Settings::from_yaml_str(&queues_yaml()).unwrap();
    let g = &s.genesys;
    assert_eq!(g.environment, "simulated");
    assert_eq!((g.api_url.as_deref(), g.login_url.as_deref()), (None, None));
    assert_eq!(g.client_id_env, "GENESYS_CLIENT_ID");
    assert_eq!(g.client_secret_env, "GENESYS_CLIENT_SECRET");
    assert_eq!(g.request_timeout, secs(8));
    assert_eq!(g.token_refresh_margin, secs(60));
    assert_eq!(g.rate_limit_per_minute, 300);
    assert_eq!(s.poll.source, Source::GuestPosition);
    assert_eq!(s.poll.interval, secs(10));
    assert_eq!(s.poll.max_retries, 5);
    assert_eq!(s.poll.backoff_base, secs(1));
    assert_eq!(s.poll.backoff_max, secs(60));
    assert_eq!(s.poll.history_size, 720);
    assert_eq!(s.thresholds.max_acceptable_wait, secs(300));
    assert_eq!(s.thresholds.smoothing_factor, 0.8);
    assert_eq!(s.thresholds.max_queue_depth, 50);
    assert_eq!(s.thresholds.min_agent_count, 3);
    assert_eq!(s.callbacks, [CallbackSettings::Log]);
    assert_eq!(s.http.bind, Some("127.0.0.1:9464".parse().unwrap()));
    assert_eq!(s.http.auth_token_env, None);
    assert_eq!(s.cluster, None);
    assert_eq!(s, base(), "for_queues builds the same defaults");
    // Empty sections (every key commented out) read as defaults too.
    let empty = format!(
        "genesys:\npoll:\nthresholds:\nhttp:\ncallbacks:\n{}",
        queues_yaml()
    );
    assert_eq!(Settings::from_yaml_str(&empty).unwrap(), s);
}

#[test]
fn section_7_defaults() {
    let yaml = format!(
        "{}cluster: {{}}\ncallbacks:\n  - kind: nats\n  - kind: jsonl\n",
        queues_yaml()
    );
    let s = Settings::from_yaml_str(&yaml).unwrap();
    let cluster = s.cluster.unwrap();
    assert_eq!(cluster.nats_url, "nats://127.0.0.1:4222");
    assert_eq!(cluster.instance_id, None);
    assert_eq!(cluster.lease_ttl, secs(15));
    let nats = CallbackSettings::Nats {
        url: "nats://127.0.0.1:4222".into(),
        subject: "queuewatch.events".into(),
        stream: "QUEUEWATCH".into(),
    };
    let jsonl = CallbackSettings::Jsonl {
        path: "queuewatch-audit.jsonl".into(),
    };
    assert_eq!(s.callbacks, [nats, jsonl]);
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
    expect_only(&s, "poll.backoff_max", "greater than 0s");
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

#[test]
fn every_problem_is_reported_at_once() {
    let yaml = format!(
        "poll:\n  interval: 2s\n  backoff_base: 2m\n  backoff_max: 1m\n\
         thresholds:\n  smoothing_factor: 1.5\n{}  - id: nope\n    interval: 1s\n    thresholds:\n      max_queue_depth: 0\n\
         callbacks:\n  - kind: webhook\n    url: http://example.com/x\ncluster:\n  lease_ttl: 1s\n",
        queues_yaml()
    );
    let err = Settings::from_yaml_str(&yaml).unwrap_err();
    let paths: Vec<&str> = err.problems().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "poll.interval",
            "poll.backoff_base",
            "thresholds.smoothing_factor",
            "queues[3].id",
            "queues[3].interval",
            "queues[3].thresholds.max_queue_depth",
            "callbacks[0].url",
            "cluster.lease_ttl",
        ]
    );
    let text = err.to_string();
    assert!(text.starts_with("invalid settings (8 problems):"), "{text}");
    assert!(
        text.contains("\n  queues[3].interval: 1s is below the 5s minimum"),
        "{text}"
    );
}

#[test]
fn unknown_key_names_the_key() {
    let (message, line, column) = parse_err(&format!("poll:\n  intervall: 5s\n{}", queues_yaml()));
    assert!(
        message.starts_with("poll.intervall: unknown field `intervall`"),
        "{message}"
    );
    assert_eq!((line, column), (Some(2), Some(3)));
    let (message, line, _) = parse_err(&format!("{}    colour: red\n", queues_yaml()));
    assert!(
        message.starts_with("queues[2].colour: unknown field `colour`"),
        "{message}"
    );
    assert_eq!(line, Some(5));
    let (message, ..) = parse_err(&format!(
        "{}callbacks:\n  - kind: log\n    path: x\n",
        queues_yaml()
    ));
    assert!(
        message.contains("callbacks[0]") && message.contains("unknown field `path`"),
        "{message}"
    );
    let (message, ..) = parse_err(&format!("{}callbacks:\n  - kind: email\n", queues_yaml()));
    assert!(
        message.contains("callbacks[0].kind") && message.contains("email"),
        "{message}"
    );
    let (message, ..) = parse_err(&format!("{}extra: 1\n", queues_yaml()));
    assert!(
        message.starts_with("extra: unknown field `extra`"),
        "{message}"
    );
    let (message, ..) = parse_err("poll: {}\n");
    assert!(message.contains("missing field `queues`"), "{message}");
}

#[test]
fn yaml_syntax_error_has_line_and_column() {
    let (message, line, column) = parse_err("poll:\n  interval: 10s\nqueues: [{id: a}\n");
    assert!(line.is_some() && column.is_some(), "{message}");
    assert_eq!(line, Some(3));
    let err = Settings::from_yaml_str("genesys:\n  environment: \"unclosed\n").unwrap_err();
    let text = err.to_string();
    assert!(text.contains(" at line "), "{text}");
    let (_, line, column) = parse_err("genesys:\n  environment: simulated\n bad: [\n");
    assert!(line >= Some(2) && column.is_some());
}

#[test]
fn bad_values_are_parse_errors_with_paths() {
    let cases = [
        (
            "poll:\n  interval: fast\n",
            "poll.interval: invalid duration \"fast\"",
            2,
        ),
        (
            "poll:\n  interval: 10\n",
            "poll.interval: invalid duration 10",
            2,
        ),
        (
            "genesys:\n  request_timeout: -1s\n",
            "genesys.request_timeout: invalid duration",
            2,
        ),
        (
            "poll:\n  source: carrier_pigeon\n",
            "poll.source: unknown variant `carrier_pigeon`",
            2,
        ),
        ("poll:\n  max_retries: -1\n", "poll.max_retries", 2),
        ("http:\n  bind: localhost:80\n", "http.bind", 2),
        (
            "queues:\n  - id: 0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10\n    interval: soon\n",
            "queues[0].interval: invalid duration",
            3,
        ),
    ];
    for (yaml, prefix, expected_line) in cases {
        let yaml = if yaml.contains("queues:") {
            yaml.to_owned()
        } else {
            format!("{yaml}{}", queues_yaml())
        };
        let (message, line, column) = parse_err(&yaml);
        assert!(
            message.starts_with(prefix),
            "{message:?} should start with {prefix:?}"
        );
        assert_eq!(line, Some(expected_line), "{message}");
        assert!(column.is_some());
    }
}

#[test]
fn serialize_round_trips() {
    let mut s = base();
    s.genesys.environment = "mypurecloud.ie".into();
    s.genesys.api_url = Some("https://proxy.example.com/genesys".into());
    s.genesys.request_timeout = Duration::from_millis(2500);
    s.poll.source = Source::Observations;
    s.poll.interval = secs(90);
    s.thresholds.smoothing_factor = 0.35;
    s.queues[0].name = Some("support: tier \"1\"".into());
    s.queues[1].interval = Some(Duration::from_millis(7500));
    s.queues[1].thresholds = ThresholdOverrides {
        max_acceptable_wait: Some(secs(45)),
        smoothing_factor: Some(1.0),
        max_queue_depth: Some(7),
        min_agent_count: Some(0),
    };
    s.callbacks = vec![
        CallbackSettings::Stdout,
        CallbackSettings::Jsonl {
            path: "/var/log/qw.jsonl".into(),
        },
        CallbackSettings::Webhook {
            url: "https://example.com/h".into(),
            secret_env: None,
        },
        CallbackSettings::Nats {
            url: "tls://n:4222".into(),
            subject: "x.y".into(),
            stream: "S".into(),
        },
    ];
    s.http.bind = None;
    s.cluster = Some(ClusterSettings {
        instance_id: Some("a-1".into()),
        ..ClusterSettings::default()
    });
    for settings in [s, base()] {
        let yaml = serde_saphyr::to_string(&settings).unwrap();
        let back = Settings::from_yaml_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        assert_eq!(back, settings, "{yaml}");
    }
}

#[test]
fn budget_math() {
    let ids = |n: u32| (0..n).map(|i| format!("00000000-0000-4000-8000-{i:012x}"));
    let mut s = Settings::for_queues(ids(120));
    let b = s.budget();
    assert_eq!(
        (b.queues, b.requests_per_minute, b.budget_per_minute),
        (120, 720.0, 300)
    );
    assert!((b.stretch - 2.4).abs() < 1e-9);
    assert_eq!(
        b.to_string(),
        "120 queues at 10s need 720 req/min; budget 300: intervals stretched x2.40"
    );
    assert_eq!(b.stretched(secs(10)), secs(24));
    s.poll.source = Source::EstimatedWaitTime;
    assert_eq!(s.budget().requests_per_minute, 720.0);
    assert_eq!(s.warnings()[0].path, "genesys.rate_limit_per_minute");

    let mut s = Settings::for_queues(ids(250));
    s.poll.source = Source::Observations;
    let b = s.budget();
    assert_eq!((b.requests_per_minute, b.stretch), (18.0, 1.0));
    assert_eq!(
        b.to_string(),
        "250 queues at 10s need 18 req/min; budget 300: fits (6% used)"
    );
    assert!(!b.is_stretched());
    assert_eq!(b.stretched(secs(10)), secs(10));
    // Grouped by interval: 200 at 10s -> 2 per 10s, 50 at 30s -> 1 per 30s.
    for q in &mut s.queues[200..] {
        q.interval = Some(secs(30));
    }
    let b = s.budget();
    assert_eq!(b.requests_per_minute, 14.0);
    assert_eq!(
        (b.shortest_interval, b.longest_interval),
        (secs(10), secs(30))
    );
    assert!(b
        .to_string()
        .starts_with("250 queues at 10s to 30s need 14 req/min"));

    let one = Settings::for_queues([IDS[0]]).budget();
    assert_eq!(
        one.to_string(),
        "1 queue at 10s need 6 req/min; budget 300: fits (2% used)"
    );
}

#[test]
fn per_queue_overrides() {
    let yaml = format!(
        "poll:\n  interval: 20s\nthresholds:\n  max_queue_depth: 40\n{}    interval: 7s\n    thresholds:\n      smoothing_factor: 0.5\n      max_acceptable_wait: 1m\n    name: vip\n",
        queues_yaml()
    );
    let s = Settings::from_yaml_str(&yaml).unwrap();
    let (plain, vip) = (&s.queues[0], &s.queues[2]);
    assert_eq!(s.queue_interval(plain), secs(20));
    assert_eq!(s.queue_interval(vip), secs(7));
    assert_eq!(s.queue_thresholds(plain), s.thresholds);
    let t = s.queue_thresholds(vip);
    assert_eq!((t.smoothing_factor, t.max_acceptable_wait), (0.5, secs(60)));
    assert_eq!((t.max_queue_depth, t.min_agent_count), (40, 3));
    assert_eq!(vip.label(), "vip");
    assert_eq!(plain.label(), IDS[0]);
}

#[test]
fn odd_inputs_are_errors_not_panics() {
    let deep = "[".repeat(10_000);
    let bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n");
    let inputs: Vec<String> = [
        "",
        " ",
        "\n",
        "~",
        "null",
        "[]",
        "{}",
        "42",
        "queues: 5",
        "queues:",
        "queues: [~]",
        "queues: [{}]",
        "queues: [{id: 1}]",
        "queues: {id: x}",
        "\u{feff}",
        "\0\u{1}\u{2}\u{7f}",
        "{",
        "}",
        "- - -",
        ": :",
        "&a *a",
        "*nope",
        "!!binary AAEC",
        "queues: !!str [x]",
        "queues: [{id: x, interval: 1e999s}]",
        "poll: {interval: 18446744073709551616s}",
        "poll: {history_size: 99999999999999999999999}",
        "thresholds: {smoothing_factor: .nan}",
        "queues: []\n---\nqueues: []",
        "\t",
        "queues:\n\t- id: x",
        "\u{ffff}\u{10ffff}",
    ]
    .into_iter()
    .map(String::from)
    .chain([
        deep,
        bomb,
        "queues:\n".to_owned() + &"  - id: x\n".repeat(3),
    ])
    .collect();
    for input in &inputs {
        assert!(
            Settings::from_yaml_str(input).is_err(),
            "accepted {input:?}"
        );
    }
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert!(Settings::from_yaml_str(&String::from_utf8_lossy(&junk)).is_err());
}

#[test]
fn load_reports_io_and_encoding_problems() {
    let dir = std::env::temp_dir().join(format!("queuewatch-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.yaml");
    match Settings::load(&missing) {
        Err(ConfigError::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
    let latin1 = dir.join("latin1.yaml");
    std::fs::write(&latin1, b"queues:\n  - id: caf\xe9\n").unwrap();
    match Settings::load(&latin1) {
        Err(ConfigError::Parse {
            message,
            line,
            column,
        }) => {
            assert!(message.contains("UTF-8"));
            assert_eq!((line, column), (Some(2), Some(12)));
        }
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_hundred_thousand_queues_parse() {
    let mut yaml = String::from("poll:\n  source: observations\nqueues:\n");
    for i in 0..100_000u32 {
        yaml.push_str(&format!(
            "  - id: 00000000-0000-4000-8000-{i:012x}\n    name: q{i}\n"
        ));
    }
    let s = Settings::from_yaml_str(&yaml).unwrap();
    assert_eq!(s.queues.len(), 100_000);
    assert_eq!(s.budget().requests_per_minute, 6000.0);
}
