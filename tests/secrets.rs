#![cfg(feature = "simulator")]
//! Secrets stay secret: redacted in `Debug`, never logged at any level (the
//! binary at `RUST_LOG=trace` against a simulator, with a signed webhook),
//! and queue ids cannot smuggle anything into a URL path.

mod support;

use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use queuewatch::config::{QueueSettings, Settings};
use queuewatch::genesys::wire::parse_token;
use queuewatch::genesys::{AccessToken, Credentials};
use queuewatch::secret::Secret;
use queuewatch::simulator::SimulatorConfig;
use queuewatch::QueueWatch;
use support::bin::BIN;
use support::webhook::Receiver;
const CLIENT_ID: &str = "qw-test-client-id-7f3a9c";
const CLIENT_SECRET: &str = "qw-test-client-secret-e41b6d";
const WEBHOOK_KEY: &[u8] = b"qw-test-webhook-key-5d20a8";
const HTTP_TOKEN: &str = "qw-test-http-token-90c3f1";
const QUERY_TOKEN: &str = "qw-test-query-token-11ab47";
const QUEUES: [&str; 2] = [
    "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10",
    "1c7d4c8f-5a2e-4d68-8b9f-4a2a3e8d0b21",
];

fn webhook_secret() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(WEBHOOK_KEY)
    )
}

#[test]
fn debug_output_is_redacted() {
    let credentials = Credentials {
        client_id: Secret::new(CLIENT_ID),
        client_secret: Secret::new(CLIENT_SECRET),
    };
    let shown = format!("{credentials:?} {credentials:#?}");
    assert!(
        !shown.contains(CLIENT_ID) && !shown.contains(CLIENT_SECRET),
        "{shown}"
    );

    let secret = Secret::new(webhook_secret());
    let shown = format!("{secret:?} {secret}");
    assert!(!shown.contains("whsec_"), "{shown}");

    let token = AccessToken {
        token: Secret::new("a-bearer-token-value"),
        expires_in: Duration::from_secs(60),
    };
    assert!(!format!("{token:?}").contains("a-bearer-token-value"));
    let parsed =
        parse_token(br#"{"access_token":"a-bearer-token-value","expires_in":60}"#).unwrap();
    assert!(!format!("{parsed:?}").contains("a-bearer-token-value"));

    let mut config = SimulatorConfig::with_queues(QUEUES);
    config.client_id = CLIENT_ID.into();
    config.client_secret = CLIENT_SECRET.into();
    let shown = format!("{config:?}");
    assert!(!shown.contains(CLIENT_SECRET), "{shown}");

    // Settings hold only the names of the variables that hold secrets.
    let yaml = format!(
        "genesys:\n  environment: mypurecloud.com\nqueues:\n  - id: {}\ncallbacks:\n  - kind: webhook\n    url: https://hooks.example.com/q\n    secret_env: QW_SECRETS_WEBHOOK\n",
        QUEUES[0]
    );
    let settings = Settings::from_yaml_str(&yaml).unwrap();
    let shown = format!("{settings:?}");
    assert!(shown.contains("QW_SECRETS_WEBHOOK") && !shown.contains("whsec_"));
}

#[test]
fn queue_ids_cannot_reach_into_url_paths() {
    for id in [
        "../../x",
        "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10?x=1",
        "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10/../../oauth/token",
        "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10#f",
        "%2e%2e%2f%2e%2e%2fx",
        "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a1?",
        "0b6c3b7e/4f1d-4c57-9a8e-3f1f2d7c9a10",
        "..",
        "",
    ] {
        let yaml = format!("queues:\n  - id: {id:?}\n");
        let err = Settings::from_yaml_str(&yaml)
            .err()
            .unwrap_or_else(|| panic!("{id:?} was accepted"));
        assert!(err.to_string().contains("queues[0].id"), "{id:?}: {err}");
    }
}

#[actix_rt::test]
async fn a_running_instance_refuses_path_like_queue_ids() {
    let mut settings = Settings::for_queues([QUEUES[0]]);
    settings.poll.interval = Duration::from_secs(60);
    settings.callbacks.clear();
    settings.http.bind = None;
    let handle = QueueWatch::new(settings).start().await.unwrap();
    for id in ["../../x", "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10?x=1"] {
        let err = handle.add_queue(QueueSettings::new(id)).await.unwrap_err();
        assert!(err.to_string().contains(".id"), "{err}");
    }
    assert_eq!(handle.settings().queues.len(), 1, "nothing was added");
    handle.shutdown().await;
}

/// Whether `text` holds a run of `n` ASCII alphanumerics (the simulator's tokens).
fn has_alnum_run(text: &str, n: usize) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, b) in bytes.iter().enumerate() {
        if !b.is_ascii_alphanumeric() {
            start = i + 1;
        } else if i + 1 - start >= n {
            return Some(&text[start..=i]);
        }
    }
    None
}

#[actix_rt::test]
async fn the_binary_logs_no_secret_even_at_trace_level() {
    let mut config = SimulatorConfig::with_queues(QUEUES);
    config.client_id = CLIENT_ID.into();
    config.client_secret = CLIENT_SECRET.into();
    let sim = support::sim::start(config).await;
    let receiver = Receiver::answering(204);
    let hook = receiver.url(&format!("/hook?token={QUERY_TOKEN}"));

    let dir = support::TempDir::new("secrets");
    let file = dir.join("settings.yaml");
    let base = sim.base_url();
    std::fs::write(
        &file,
        format!(
            "genesys:
  environment: mypurecloud.com
  api_url: {base}
  login_url: {base}
  client_id_env: QW_SECRETS_CLIENT_ID
  client_secret_env: QW_SECRETS_CLIENT_SECRET
poll:
  interval: 5s
queues:
  - id: {}
  - id: {}
callbacks:
  - kind: log
  - kind: stdout
  - kind: webhook
    url: {hook}
    secret_env: QW_SECRETS_WEBHOOK
http:
  bind: 127.0.0.1:0
  auth_token_env: QW_SECRETS_HTTP_TOKEN
",
            QUEUES[0], QUEUES[1]
        ),
    )
    .unwrap();
    let mut command = Command::new(BIN);
    command
        .args(["run", "--config", file.to_str().unwrap(), "--for", "13s"])
        .current_dir(&dir)
        .env("RUST_LOG", "trace")
        .env("QW_SECRETS_CLIENT_ID", CLIENT_ID)
        .env("QW_SECRETS_CLIENT_SECRET", CLIENT_SECRET)
        .env("QW_SECRETS_WEBHOOK", webhook_secret())
        .env("QW_SECRETS_HTTP_TOKEN", HTTP_TOKEN);
    let run = actix_rt::spawn(support::bin::output(command));

    // Once events flow, revoke the token: the child fetches a second one.
    let wait = Duration::from_secs(30);
    receiver.until(wait, |hits| !hits.is_empty()).await;
    sim.revoke_tokens();
    receiver.until(wait, |hits| hits.len() >= 3).await;
    let out = run.await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("TRACE") || stderr.contains("DEBUG"),
        "trace logging was on"
    );
    assert!(stdout.contains("\"type\":\"poll\""), "events on stdout");
    eprintln!(
        "child output: {} stdout lines, {} stderr lines ({} TRACE)",
        stdout.lines().count(),
        stderr.lines().count(),
        stderr.matches("TRACE").count()
    );

    let tokens: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/oauth/token")
        .filter_map(|r| r.token)
        .collect();
    assert!(
        tokens.len() >= 2,
        "a token, and another after the revocation: {tokens:?}"
    );
    let webhook_b64 = base64::engine::general_purpose::STANDARD.encode(WEBHOOK_KEY);
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let mut forbidden: Vec<(&str, String)> = vec![
        ("client id", CLIENT_ID.into()),
        ("client secret", CLIENT_SECRET.into()),
        ("Basic credentials", basic),
        ("webhook secret", webhook_secret()),
        ("webhook key", webhook_b64),
        (
            "webhook key bytes",
            String::from_utf8_lossy(WEBHOOK_KEY).into(),
        ),
        ("status API token", HTTP_TOKEN.into()),
        ("webhook URL query token", QUERY_TOKEN.into()),
        ("a bearer header", "Bearer ".into()),
        ("a bearer header", "bearer ".into()),
    ];
    forbidden.extend(tokens.iter().map(|t| ("an issued access token", t.clone())));
    for (what, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        for (secret, value) in &forbidden {
            if let Some(at) = text.find(value.as_str()) {
                let line = text[..at].rsplit('\n').next().unwrap_or_default();
                panic!(
                    "{secret} appears in {what}: ...{line}{}",
                    &text[at..(at + value.len() + 40).min(text.len())]
                );
            }
        }
        if let Some(run) = has_alnum_run(text, 48) {
            panic!("something shaped like a simulator token appears in {what}: {run}");
        }
    }

    // The webhook was signed with the secret from the environment.
    for hit in receiver.hits() {
        let field = |value: &Option<String>| value.clone().unwrap_or_default();
        let expected = support::webhook::signature(
            WEBHOOK_KEY,
            &field(&hit.id),
            &field(&hit.timestamp),
            &hit.body,
        );
        assert_eq!(field(&hit.signature), expected);
    }
    receiver.stop(true).await;
}
