//! Unit tests of the settings module's helpers (the public behaviour is
//! covered through the API in `tests/config.rs`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::net::{check_environment, check_nats_subject, check_stream_name, is_loopback_host};
use super::validate::shorten;
use super::*;

mod rules;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Timed {
    #[serde(with = "duration")]
    every: Duration,
    #[serde(default, with = "duration::option")]
    maybe: Option<Duration>,
}

fn timed(yaml: &str) -> Result<Timed, serde_saphyr::Error> {
    serde_saphyr::from_str(yaml)
}

#[test]
fn durations_parse_and_print_the_same_notation() {
    for (text, value) in [
        ("500ms", Duration::from_millis(500)),
        ("10s", Duration::from_secs(10)),
        ("5m", Duration::from_secs(300)),
        ("1m 30s", Duration::from_secs(90)),
        ("2h", Duration::from_secs(7200)),
        ("1s 500ms", Duration::from_millis(1500)),
    ] {
        assert_eq!(parse_duration(text).unwrap(), value, "{text}");
        assert_eq!(parse_duration(&format_duration(value)).unwrap(), value);
    }
    assert_eq!(format_duration(Duration::from_secs(10)), "10s");
    assert_eq!(format_duration(Duration::ZERO), "0s");
}

#[test]
fn duration_serde() {
    let t = timed("every: 10s\nmaybe: 250ms\n").unwrap();
    assert_eq!(t.every, Duration::from_secs(10));
    assert_eq!(t.maybe, Some(Duration::from_millis(250)));
    assert_eq!(timed("every: 1m\nmaybe: null\n").unwrap().maybe, None);
    assert_eq!(timed("every: 1m\n").unwrap().maybe, None);
    let yaml = serde_saphyr::to_string(&t).unwrap();
    assert!(
        yaml.contains("every: 10s") && yaml.contains("maybe: 250ms"),
        "{yaml}"
    );
    assert_eq!(timed(&yaml).unwrap(), t);
    for bad in [
        "every: 10",
        "every: ten seconds",
        "every: ''",
        "every: -5s",
        "every: 1e3",
    ] {
        let err = timed(bad).unwrap_err().to_string();
        assert!(
            err.contains("duration"),
            "{bad:?} gave {err:?}, which does not mention durations"
        );
    }
    assert!(timed("every: 10")
        .unwrap_err()
        .to_string()
        .contains("\"10s\""));
    assert!(timed("every: [1]").is_err());
}

#[test]
fn every_spec_region_is_a_valid_environment() {
    for region in KNOWN_REGIONS {
        assert_eq!(check_environment(region), Ok(()), "{region}");
    }
    assert_eq!(check_environment("simulated"), Ok(()));
    assert!(check_environment("Simulated").is_err());
    assert!(check_environment(&format!("{}.com", "a".repeat(64))).is_err());
    assert!(check_environment("a.b-").is_err());
}

#[test]
fn loopback_hosts() {
    for host in [
        "localhost",
        "LOCALHOST",
        "127.0.0.1",
        "127.255.0.9",
        "[::1]",
        "::1",
    ] {
        assert!(is_loopback_host(host), "{host}");
    }
    for host in [
        "10.0.0.1",
        "[::2]",
        "localhost.example.com",
        "128.0.0.1",
        "0.0.0.0",
        "",
    ] {
        assert!(!is_loopback_host(host), "{host}");
    }
}

#[test]
fn nats_names() {
    for ok in ["queuewatch.events", "a", "acme-1.q_2.x"] {
        assert_eq!(check_nats_subject(ok), Ok(()), "{ok}");
    }
    for bad in ["", ".a", "a.", "a..b", "a b", "a.*", "a.>", "a.b*", "a\tb"] {
        assert!(check_nats_subject(bad).is_err(), "{bad:?}");
    }
    for ok in ["QUEUEWATCH", "q-1_x"] {
        assert_eq!(check_stream_name(ok), Ok(()), "{ok}");
    }
    for bad in ["", "A.B", "A B", "A/B", "A*", "A>", &"S".repeat(256)] {
        assert!(check_stream_name(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn shorten_cuts_on_char_boundaries() {
    assert_eq!(shorten("short"), "short");
    let long = "é".repeat(100);
    let cut = shorten(&long);
    assert_eq!(cut.chars().count(), 63);
    assert!(cut.ends_with("..."));
}

#[test]
fn odd_keys_are_quoted_in_paths() {
    let err = Settings::from_yaml_str("poll:\n  \"we ird\\n\": 1\n").unwrap_err();
    let ConfigError::Parse { message, .. } = err else {
        panic!("{err:?}")
    };
    assert!(message.starts_with("poll.\"we ird\\n\": "), "{message}");
}

#[test]
fn non_utf8_location() {
    let err = parse::utf8(b"a: 1\nb: \xff").unwrap_err();
    assert!(matches!(
        err,
        ConfigError::Parse {
            line: Some(2),
            column: Some(4),
            ..
        }
    ));
    assert_eq!(parse::utf8(b"ok").unwrap(), "ok");
}

#[test]
fn error_display() {
    let one = ConfigError::Invalid(vec![Problem::new(
        "poll.interval",
        "2s is below the 5s minimum",
    )]);
    assert_eq!(
        one.to_string(),
        "invalid settings: poll.interval: 2s is below the 5s minimum"
    );
    let many: Vec<Problem> = (0..60)
        .map(|i| Problem::new(format!("queues[{i}].id"), "bad"))
        .collect();
    let text = ConfigError::Invalid(many).to_string();
    assert!(text.starts_with("invalid settings (60 problems):\n  queues[0].id: bad\n"));
    assert!(
        text.ends_with("\n  queues[49].id: bad\n  ... and 10 more"),
        "{text}"
    );
    let parse = ConfigError::Parse {
        message: "poll.interval: invalid duration".into(),
        line: Some(3),
        column: Some(13),
    };
    assert_eq!(
        parse.to_string(),
        "poll.interval: invalid duration at line 3, column 13"
    );
    let io = ConfigError::Io {
        path: "/nope/settings.yaml".into(),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    };
    assert!(io
        .to_string()
        .starts_with("cannot read /nope/settings.yaml: "));
    assert!(std::error::Error::source(&io).is_some());
    assert!(io.problems().is_empty());
}

#[test]
fn budget_edges() {
    let none: [&str; 0] = [];
    let empty = Settings::for_queues(none).budget();
    assert_eq!((empty.requests_per_minute, empty.stretch), (0.0, 1.0));
    let mut s = Settings::for_queues(["0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10"]);
    s.genesys.rate_limit_per_minute = 0;
    let b = s.budget();
    assert_eq!(
        b.stretch, 6.0,
        "a zero budget counts as 1 and cannot divide by zero"
    );
    let huge = Budget { stretch: 1e30, ..b };
    assert_eq!(
        huge.stretched(Duration::from_secs(5)),
        Duration::from_secs(7 * 24 * 3600)
    );
}

#[test]
fn sources_and_kinds_have_their_yaml_names() {
    for source in [
        Source::GuestPosition,
        Source::EstimatedWaitTime,
        Source::Observations,
    ] {
        let yaml = serde_saphyr::to_string(&source).unwrap();
        assert_eq!(yaml.trim(), source.as_str());
        assert_eq!(source.to_string(), source.as_str());
        let back: Source = serde_saphyr::from_str(source.as_str()).unwrap();
        assert_eq!(back, source);
    }
    let callbacks = [
        CallbackSettings::Log,
        CallbackSettings::Stdout,
        CallbackSettings::Jsonl { path: "a".into() },
        CallbackSettings::Webhook {
            url: "https://x".into(),
            secret_env: None,
        },
        CallbackSettings::Nats {
            url: "nats://x".into(),
            subject: "s".into(),
            stream: "S".into(),
        },
    ];
    for callback in callbacks {
        let yaml = serde_saphyr::to_string(&callback).unwrap();
        assert!(
            yaml.starts_with(&format!("kind: {}", callback.kind())),
            "{yaml}"
        );
    }
}
