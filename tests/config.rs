#![cfg(feature = "simulator")]
//! The settings module through its public API: loading, defaults, every
//! validation rule with its key path, parse errors, round trip, budget math.

mod support;

use std::path::Path;
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
fn defaults_are_the_documented_ones() {
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
fn cluster_defaults() {
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
    let (message, line, _) = parse_err(&format!("poll: {{}}\n{}poll: {{}}\n", queues_yaml()));
    assert!(
        message.starts_with("duplicate mapping key `poll`"),
        "{message}"
    );
    assert_eq!(line, Some(6));
    let (message, ..) = parse_err(&format!("{}---\n{}", queues_yaml(), queues_yaml()));
    assert!(message.contains("multiple"), "{message}");
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
    let dir = scratch("io");
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

/// A fresh directory for one test's files (removed when the test ends).
fn scratch(name: &str) -> support::TempDir {
    support::TempDir::new(&format!("config-{name}"))
}

/// `Settings::load` on another thread, so a blocking open cannot hang the
/// test: the answer must come back within the bound.
#[cfg(unix)]
fn load_promptly(path: &Path) -> Result<Settings, ConfigError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let owned = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(Settings::load(&owned));
    });
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("Settings::load({}) blocked", path.display()))
}

#[cfg(unix)]
#[test]
fn only_regular_files_are_settings() {
    let dir = scratch("special");
    let fifo = dir.join("settings.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let zero = dir.join("zero.yaml");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let sub = dir.join("settings.d");
    std::fs::create_dir_all(&sub).unwrap();
    for (path, kind) in [
        (&fifo, "a FIFO"),
        (&zero, "a device"),
        (&sub, "a directory"),
    ] {
        match load_promptly(path) {
            Err(err @ ConfigError::NotAFile { .. }) => {
                let text = err.to_string();
                assert!(text.contains(&path.display().to_string()), "{text}");
                assert!(text.contains(kind), "{text}");
            }
            other => panic!("{}: {other:?}", path.display()),
        }
    }
    // A link to a good regular file is followed.
    let real = dir.join("real.yaml");
    std::fs::write(&real, queues_yaml()).unwrap();
    let link = dir.join("link.yaml");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    assert_eq!(load_promptly(&link).unwrap().queues.len(), 3);
}

#[test]
fn settings_files_are_at_most_16_mib() {
    let dir = scratch("large");
    let limit = queuewatch::config::MAX_SETTINGS_BYTES;
    assert_eq!(limit, 16 * 1024 * 1024);
    let at_limit = dir.join("at-limit.yaml");
    let mut text = queues_yaml();
    text.push_str(&"#".repeat(limit as usize - text.len() - 1));
    text.push('\n');
    assert_eq!(text.len() as u64, limit);
    std::fs::write(&at_limit, &text).unwrap();
    assert_eq!(Settings::load(&at_limit).unwrap().queues.len(), 3);
    let over = dir.join("over.yaml");
    text.push('\n');
    std::fs::write(&over, &text).unwrap();
    match Settings::load(&over) {
        Err(err @ ConfigError::TooLarge { .. }) => {
            let text = err.to_string();
            assert!(text.contains(&over.display().to_string()), "{text}");
            assert!(text.contains("16 MiB"), "{text}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn queue_names_are_bounded_printable_labels() {
    let mut s = base();
    s.queues[0].name = Some("é".repeat(256));
    s.queues[1].name = Some("support – tier 2 🎧".into());
    s.validate().unwrap();
    let problems = |s: &Settings| s.validate().unwrap_err().problems().to_vec();
    s.queues[0].name = Some("é".repeat(257));
    s.queues[1].name = Some("bell\u{7}".into());
    s.queues[2].name = Some("two\nlines".into());
    let found = problems(&s);
    let paths: Vec<&str> = found.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        ["queues[0].name", "queues[1].name", "queues[2].name"],
        "{found:?}"
    );
    assert!(found[0].message.contains("256"), "{found:?}");
    assert!(found[1].message.contains("control"), "{found:?}");
    // Escapes in the file are control characters too.
    let yaml = format!("queues:\n  - id: {}\n    name: \"esc\\e[31m\"\n", IDS[0]);
    match Settings::from_yaml_str(&yaml) {
        Err(ConfigError::Invalid(problems)) => assert_eq!(problems[0].path, "queues[0].name"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn two_jsonl_callbacks_on_one_file_are_an_error() {
    let dir = scratch("jsonl");
    let jsonl = |path: &Path| CallbackSettings::Jsonl {
        path: path.to_path_buf(),
    };
    let sub = dir.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let file = dir.join("audit.jsonl");
    let dotted = sub.join("..").join(".").join("audit.jsonl");
    let mut s = base();
    s.callbacks = vec![
        jsonl(&file),
        jsonl(&dir.join("other.jsonl")),
        jsonl(&dotted),
    ];
    let problems = s.validate().unwrap_err().problems().to_vec();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].path, "callbacks[2].path");
    assert!(
        problems[0].message.contains("callbacks[0].path"),
        "{problems:?}"
    );
    // A missing directory cannot be resolved on disk: `.` and `..` still are.
    let ghost = dir.join("ghost");
    s.callbacks = vec![
        jsonl(&ghost.join("a.jsonl")),
        jsonl(&ghost.join("x").join("..").join("a.jsonl")),
    ];
    assert_eq!(
        s.validate().unwrap_err().problems()[0].path,
        "callbacks[1].path"
    );
    #[cfg(unix)]
    {
        // Through a linked directory, and through a link to the file itself.
        let linked_dir = dir.join("linked");
        std::os::unix::fs::symlink(&sub, &linked_dir).unwrap();
        s.callbacks = vec![
            jsonl(&sub.join("b.jsonl")),
            jsonl(&linked_dir.join("b.jsonl")),
        ];
        assert_eq!(
            s.validate().unwrap_err().problems()[0].path,
            "callbacks[1].path"
        );
        std::fs::write(&file, b"").unwrap();
        let file_link = dir.join("audit-link.jsonl");
        std::os::unix::fs::symlink(&file, &file_link).unwrap();
        s.callbacks = vec![jsonl(&file), jsonl(&file_link)];
        assert_eq!(
            s.validate().unwrap_err().problems()[0].path,
            "callbacks[1].path"
        );
    }
}

#[test]
fn relative_jsonl_paths_resolve_against_the_working_directory() {
    let cwd = std::env::current_dir().unwrap();
    let here = cwd.file_name().unwrap().to_str().unwrap().to_owned();
    let mut s = base();
    s.callbacks = vec![
        CallbackSettings::Jsonl {
            path: "queuewatch-dup-test.jsonl".into(),
        },
        CallbackSettings::Jsonl {
            path: format!("../{here}/./queuewatch-dup-test.jsonl").into(),
        },
    ];
    let problems = s.validate().unwrap_err().problems().to_vec();
    assert_eq!(problems[0].path, "callbacks[1].path", "{problems:?}");
}

#[test]
fn quoted_numbers_are_type_errors() {
    let cases = [
        (
            "genesys:\n  rate_limit_per_minute: \"300\"\n",
            "genesys.rate_limit_per_minute",
        ),
        (
            "genesys:\n  rate_limit_per_minute: '300'\n",
            "genesys.rate_limit_per_minute",
        ),
        ("poll:\n  max_retries: \"5\"\n", "poll.max_retries"),
        ("poll:\n  history_size: \"720\"\n", "poll.history_size"),
        ("poll:\n  history_size: !!str 720\n", "poll.history_size"),
        (
            "thresholds:\n  smoothing_factor: \"0.5\"\n",
            "thresholds.smoothing_factor",
        ),
        (
            "thresholds:\n  max_queue_depth: \"50\"\n",
            "thresholds.max_queue_depth",
        ),
        (
            "thresholds:\n  min_agent_count: \"3\"\n",
            "thresholds.min_agent_count",
        ),
        (
            "genesys:\n  rate_limit_per_minute: 300.5\n",
            "genesys.rate_limit_per_minute",
        ),
        (
            "genesys:\n  rate_limit_per_minute: true\n",
            "genesys.rate_limit_per_minute",
        ),
        (
            "genesys:\n  rate_limit_per_minute: 4294967296\n",
            "genesys.rate_limit_per_minute",
        ),
    ];
    for (yaml, key) in cases {
        let (message, line, _) = parse_err(&format!("{yaml}{}", queues_yaml()));
        assert!(
            message.starts_with(&format!("{key}: ")),
            "{yaml:?}: {message}"
        );
        assert_eq!(line, Some(2), "{yaml:?}: {message}");
    }
    let per_queue = format!(
        "queues:\n  - id: {}\n    thresholds:\n      smoothing_factor: \"0.5\"\n",
        IDS[0]
    );
    let (message, _, _) = parse_err(&per_queue);
    assert!(
        message.starts_with("queues[0].thresholds.smoothing_factor: "),
        "{message}"
    );
    assert!(message.contains("string"), "{message}");
    // Numbers written as numbers still read, in every YAML spelling.
    let good = format!(
        "genesys:\n  rate_limit_per_minute: 0x12c\npoll:\n  history_size: 1_000\n  max_retries: 0\n\
         thresholds:\n  smoothing_factor: 1\n  max_queue_depth: 7\n{}    thresholds:\n      smoothing_factor: 0.25\n      min_agent_count: ~\n",
        queues_yaml()
    );
    let s = Settings::from_yaml_str(&good).unwrap();
    assert_eq!(s.genesys.rate_limit_per_minute, 300);
    assert_eq!((s.poll.history_size, s.poll.max_retries), (1000, 0));
    assert_eq!(s.thresholds.smoothing_factor, 1.0);
    assert_eq!(s.queues[2].thresholds.smoothing_factor, Some(0.25));
    assert_eq!(s.queues[2].thresholds.min_agent_count, None);
}

#[test]
fn unknown_yaml_tags_are_errors() {
    for yaml in [
        "genesys: !!python/object:os.system\n  environment: simulated\n",
        "genesys:\n  environment: !custom simulated\n",
        "poll:\n  interval: !secret 10s\n",
        "callbacks:\n  - !webhook {kind: log}\n",
    ] {
        let yaml = format!("{yaml}{}", queues_yaml());
        let (message, line, _) = parse_err(&yaml);
        assert!(line.is_some(), "{yaml:?}: {message}");
    }
    // Standard tags on matching nodes are fine.
    let yaml = format!(
        "genesys:\n  environment: !!str simulated\n{}",
        queues_yaml()
    );
    Settings::from_yaml_str(&yaml).unwrap();
}

#[test]
fn at_most_fifty_problems_are_shown() {
    let mut yaml = String::from("queues:\n");
    for i in 0..70 {
        yaml.push_str(&format!("  - id: bad-{i}\n"));
    }
    let err = Settings::from_yaml_str(&yaml).unwrap_err();
    assert_eq!(err.problems().len(), 70);
    let text = err.to_string();
    let listed = text.lines().filter(|l| l.contains("queues[")).count();
    assert_eq!(listed, 50, "{text}");
    assert_eq!(
        text.lines().last().map(str::trim),
        Some("... and 20 more"),
        "{text}"
    );
}
