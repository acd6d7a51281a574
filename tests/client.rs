#![cfg(feature = "simulator")]
//! The Genesys client against the built-in simulator over loopback HTTP:
//! every source's happy path and every failure mapped to its error kind.

mod support;

use std::sync::Arc;
use std::time::Duration;

use queuewatch::error::ErrorKind;
use queuewatch::genesys::{tls, ClientOptions, Credentials, GenesysClient, TokenError};
use queuewatch::secret::Secret;
use queuewatch::simulator::{Fault, FaultRule, SimulatorConfig};
use support::sim::RunningSim;

const Q1: &str = "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10";
const Q2: &str = "1c7d4c8f-5a2e-4d68-8b9f-4a2a3e8d0b21";
const UNKNOWN: &str = "99999999-9999-4999-8999-999999999999";

async fn setup(timeout: Duration) -> (RunningSim, GenesysClient, Credentials) {
    let config = SimulatorConfig::with_queues([Q1, Q2]);
    let credentials = Credentials {
        client_id: Secret::new(config.client_id.clone()),
        client_secret: Secret::new(config.client_secret.clone()),
    };
    let sim = support::sim::start(config).await;
    let options = Arc::new(ClientOptions {
        api_base: sim.base_url(),
        login_base: sim.base_url(),
        request_timeout: timeout,
        tls: tls::client_config(&[]).unwrap(),
    });
    (sim, GenesysClient::new(options), credentials)
}

async fn token(client: &GenesysClient, credentials: &Credentials) -> Secret {
    client.fetch_token(credentials).await.expect("token").token
}

#[actix_rt::test]
async fn token_then_each_source() {
    let (sim, client, creds) = setup(Duration::from_secs(5)).await;
    let issued = client.fetch_token(&creds).await.unwrap();
    assert_eq!(issued.expires_in, Duration::from_secs(86400));
    let token = issued.token;

    let outcome = client.queue_position(&token, Q1).await;
    let sample = outcome.result.unwrap();
    assert!(sample.position.is_some());
    assert!(sample.estimated_wait_seconds.unwrap() >= 0.0);
    assert!(sample.status.is_some());
    assert_eq!(sample.waiting, None);
    assert_eq!(outcome.rate.allowed, Some(300));
    assert_eq!(outcome.rate.count, Some(1));

    let sample = client.estimated_wait(&token, Q1).await.result.unwrap();
    assert!(sample.estimated_wait_seconds.is_some());
    assert_eq!(sample.position, None);

    let outcome = client.observations(&token, &[Q1, Q2, UNKNOWN]).await;
    let map = outcome.result.unwrap();
    assert_eq!(map.len(), 2, "the unknown queue is left out");
    for q in [Q1, Q2] {
        assert!(map[q].waiting.is_some() && map[q].agents_on_queue.is_some());
        assert_eq!(map[q].position, None);
    }
    assert_eq!(sim.stats().token_requests, 1);
}

#[actix_rt::test]
async fn wrong_credentials_are_rejected_not_retried() {
    let (_sim, client, mut creds) = setup(Duration::from_secs(5)).await;
    creds.client_secret = Secret::new("wrong");
    match client.fetch_token(&creds).await {
        Err(TokenError::Rejected(detail)) => {
            assert!(
                detail.contains("401") && detail.contains("invalid_client"),
                "{detail}"
            );
            assert!(!detail.contains("wrong"));
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[actix_rt::test]
async fn token_endpoint_outage_is_transient() {
    let (sim, client, creds) = setup(Duration::from_millis(500)).await;
    sim.faults()
        .push(FaultRule::times(Fault::TokenOutage { status: 503 }, 1));
    match client.fetch_token(&creds).await {
        Err(TokenError::Unavailable(e)) => assert_eq!(e.kind, ErrorKind::ServerError),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    sim.faults()
        .push(FaultRule::times(Fault::TokenSlow { delay_ms: 2000 }, 1));
    match client.fetch_token(&creds).await {
        Err(TokenError::Unavailable(e)) => assert_eq!(e.kind, ErrorKind::Timeout),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(client.fetch_token(&creds).await.is_ok());
}

#[actix_rt::test]
async fn failures_map_to_their_kinds() {
    let (sim, client, creds) = setup(Duration::from_millis(500)).await;
    let token = token(&client, &creds).await;
    let kind_of = |rule: FaultRule| {
        let (sim, client, token) = (sim.clone(), client.clone(), token.clone());
        async move {
            sim.faults().clear();
            sim.faults().push(rule);
            let error = client.queue_position(&token, Q1).await.result.unwrap_err();
            sim.faults().clear();
            error
        }
    };
    let cases = [
        (Fault::Status { status: 403 }, ErrorKind::Forbidden),
        (Fault::Status { status: 404 }, ErrorKind::NotFound),
        (Fault::ServerError { status: 503 }, ErrorKind::ServerError),
        (Fault::ServerError { status: 500 }, ErrorKind::ServerError),
        (Fault::Slow { delay_ms: 1500 }, ErrorKind::Timeout),
        (Fault::DropConnection, ErrorKind::Connection),
        (Fault::MalformedBody, ErrorKind::InvalidResponse),
        (Fault::WrongQueueId, ErrorKind::QueueMismatch),
    ];
    for (fault, expected) in cases {
        let error = kind_of(FaultRule::times(fault.clone(), 1)).await;
        assert_eq!(error.kind, expected, "{fault:?}: {error}");
    }

    let error = kind_of(FaultRule::times(
        Fault::RateLimit {
            retry_after_secs: 42,
        },
        1,
    ))
    .await;
    assert_eq!(error.kind, ErrorKind::RateLimited);
    assert_eq!(error.retry_after, Some(Duration::from_secs(42)));
    assert_eq!(error.status, Some(429));
    assert!(
        error.detail.starts_with("429, retry after 42s"),
        "{}",
        error.detail
    );

    // Unknown queue: a real 404.
    let error = client
        .queue_position(&token, UNKNOWN)
        .await
        .result
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound);

    // A revoked token: 401.
    sim.revoke_tokens();
    let error = client.queue_position(&token, Q1).await.result.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unauthorized);
}

#[actix_rt::test]
async fn real_rate_limit_gives_retry_after() {
    let mut config = SimulatorConfig::with_queues([Q1]);
    config.rate_limit_per_minute = Some(3);
    let creds = Credentials {
        client_id: Secret::new(config.client_id.clone()),
        client_secret: Secret::new(config.client_secret.clone()),
    };
    let sim = support::sim::start(config).await;
    let client = GenesysClient::new(Arc::new(ClientOptions {
        api_base: sim.base_url(),
        login_base: sim.base_url(),
        request_timeout: Duration::from_secs(5),
        tls: tls::client_config(&[]).unwrap(),
    }));
    let token = token(&client, &creds).await;
    for _ in 0..3 {
        client.queue_position(&token, Q1).await.result.unwrap();
    }
    let outcome = client.queue_position(&token, Q1).await;
    let error = outcome.result.unwrap_err();
    assert_eq!(error.kind, ErrorKind::RateLimited);
    let after = error.retry_after.expect("Retry-After");
    assert!(
        after >= Duration::from_secs(1) && after <= Duration::from_secs(60),
        "{after:?}"
    );
    assert_eq!(outcome.rate.allowed, Some(3));
}

#[actix_rt::test]
async fn redirects_are_invalid_final_and_not_followed() {
    let (sim, client, creds) = setup(Duration::from_secs(5)).await;
    let token = token(&client, &creds).await;
    // The redirect points at a working URL: following it would succeed.
    let target = format!(
        "{}/api/v2/guest/messaging/queues/{Q1}/position",
        sim.base_url()
    );
    for status in [301, 302, 303, 307, 308] {
        sim.faults().push(FaultRule::times(
            Fault::Redirect {
                status,
                location: target.clone(),
            },
            1,
        ));
        let before = sim.stats().api_requests;
        let error = client.queue_position(&token, Q1).await.result.unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidResponse, "{status}: {error}");
        assert_eq!(error.status, Some(status));
        assert!(!error.is_transient(), "{status} must not be retried");
        assert!(error.detail.contains("redirect"), "{}", error.detail);
        assert_eq!(
            sim.stats().api_requests,
            before + 1,
            "{status} was followed"
        );
    }
    // Observations (POST) too.
    sim.faults().push(FaultRule::times(
        Fault::Redirect {
            status: 307,
            location: format!(
                "{}/api/v2/analytics/queues/observations/query",
                sim.base_url()
            ),
        },
        1,
    ));
    let error = client.observations(&token, &[Q1]).await.result.unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidResponse);
    assert!(!error.is_transient());
    // Without a fault the same request works.
    client.queue_position(&token, Q1).await.result.unwrap();
}

#[actix_rt::test]
async fn non_json_bodies_are_invalid() {
    let (sim, client, creds) = setup(Duration::from_secs(5)).await;
    let token = token(&client, &creds).await;
    for content_type in [
        "text/html",
        "text/plain; charset=utf-8",
        "application/jsonp",
        "",
    ] {
        sim.faults().push(FaultRule::times(
            Fault::ContentType {
                content_type: content_type.into(),
            },
            1,
        ));
        // The body itself is the normal, valid JSON.
        let error = client.queue_position(&token, Q1).await.result.unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidResponse, "{content_type:?}");
        assert!(error.detail.contains("Content-Type"), "{}", error.detail);
        assert!(error.is_transient(), "a proxy page may be a hiccup");
    }
    for content_type in [
        "application/json; charset=UTF-8",
        "application/vnd.genesys+json",
        "APPLICATION/JSON",
    ] {
        sim.faults().push(FaultRule::times(
            Fault::ContentType {
                content_type: content_type.into(),
            },
            1,
        ));
        let sample = client.queue_position(&token, Q1).await.result;
        assert!(sample.is_ok(), "{content_type}: {sample:?}");
    }
    sim.faults().push(FaultRule::times(
        Fault::ContentType {
            content_type: "text/html".into(),
        },
        2,
    ));
    let error = client.estimated_wait(&token, Q1).await.result.unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidResponse);
    let error = client.observations(&token, &[Q1]).await.result.unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidResponse);
}

#[actix_rt::test]
async fn absurd_values_are_invalid() {
    let (sim, client, creds) = setup(Duration::from_secs(5)).await;
    let token = token(&client, &creds).await;
    let position = |position: &str, wait: &str| {
        format!(
            r#"{{"position":{position},"estimatedWaitTime":{wait},"status":"waiting","queueId":"{Q1}"}}"#
        )
    };
    let bodies = [
        position("3", "1e300"),
        position("3", "-1"),
        position("3", "700000"),
        position("3", r#""NaN""#),
        position("2000000", "10"),
        position("-4", "10"),
    ];
    for body in bodies {
        sim.faults()
            .push(FaultRule::times(Fault::Body { body: body.clone() }, 1));
        let error = client.queue_position(&token, Q1).await.result.unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidResponse, "{body}: {error}");
        assert_eq!(error.status, Some(200));
    }
    sim.faults().push(FaultRule::times(
        Fault::Body {
            body: position("3", "604800"),
        },
        1,
    ));
    let sample = client.queue_position(&token, Q1).await.result.unwrap();
    assert_eq!(
        sample.estimated_wait_seconds,
        Some(queuewatch::genesys::wire::MAX_WAIT_SECONDS)
    );

    sim.faults().push(FaultRule::times(
        Fault::Body {
            body: r#"{"results":[{"estimatedWaitTimeSeconds":1e300}]}"#.into(),
        },
        1,
    ));
    let error = client.estimated_wait(&token, Q1).await.result.unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidResponse);

    sim.faults().push(FaultRule::times(
        Fault::Body {
            body: format!(
                r#"{{"results":[{{"group":{{"queueId":"{Q1}"}},"data":[{{"metric":"oWaiting","stats":{{"count":9000000000}}}}]}}]}}"#
            ),
        },
        1,
    ));
    let error = client.observations(&token, &[Q1]).await.result.unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidResponse);
}
