//! The wire format against hand-written bodies, good and hostile.

use super::*;

const Q: &str = "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10";

#[test]
fn position_happy_path() {
    let body =
        format!(r#"{{"position":3,"estimatedWaitTime":42.5,"status":"waiting","queueId":"{Q}"}}"#);
    let s = parse_position(Q, body.as_bytes()).unwrap();
    assert_eq!(s.position, Some(3));
    assert_eq!(s.estimated_wait_seconds, Some(42.5));
    assert_eq!(s.status.as_deref(), Some("waiting"));
    assert_eq!(s.waiting, None);
}

#[test]
fn position_rejects_mismatch_negative_and_nan() {
    let other = r#"{"position":3,"estimatedWaitTime":1,"queueId":"x"}"#;
    assert_eq!(
        parse_position(Q, other.as_bytes()).unwrap_err().kind,
        ErrorKind::QueueMismatch
    );
    let neg = format!(r#"{{"position":-1,"estimatedWaitTime":1,"queueId":"{Q}"}}"#);
    assert_eq!(
        parse_position(Q, neg.as_bytes()).unwrap_err().kind,
        ErrorKind::InvalidResponse
    );
    let negwait = format!(r#"{{"position":1,"estimatedWaitTime":-0.5,"queueId":"{Q}"}}"#);
    assert_eq!(
        parse_position(Q, negwait.as_bytes()).unwrap_err().kind,
        ErrorKind::InvalidResponse
    );
    let huge = format!(r#"{{"position":1,"estimatedWaitTime":1e400,"queueId":"{Q}"}}"#);
    assert_eq!(
        parse_position(Q, huge.as_bytes()).unwrap_err().kind,
        ErrorKind::InvalidResponse
    );
    assert_eq!(
        parse_position(Q, b"<html>").unwrap_err().kind,
        ErrorKind::InvalidResponse
    );
}

#[test]
fn absurd_waits_and_counts_are_invalid() {
    let position = |position: &str, wait: &str| {
        let body =
            format!(r#"{{"position":{position},"estimatedWaitTime":{wait},"queueId":"{Q}"}}"#);
        parse_position(Q, body.as_bytes())
    };
    assert!(position("3", "604800").is_ok());
    assert!(position("1000000", "0").is_ok());
    for (p, w) in [
        ("3", "1e300"),
        ("3", "604800.5"),
        ("3", "-1"),
        ("3", "-0.0000001"),
        ("1000001", "1"),
        ("4294967295", "1"),
        ("99999999999999999999", "1"),
        ("1.5", "1"),
        ("3", "\"NaN\""),
        ("3", "null"),
    ] {
        let error = position(p, w).unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidResponse, "{p} {w}: {error}");
    }
    for wait in ["1e300", "604801", "-5"] {
        let body = format!(r#"{{"results":[{{"estimatedWaitTimeSeconds":{wait}}}]}}"#);
        let error = parse_estimated_wait(body.as_bytes()).unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidResponse, "{wait}");
    }
    let observation = |count: i64, again: i64| {
        let body = format!(
            r#"{{"results":[{{"group":{{"queueId":"{Q}"}},"data":[
               {{"metric":"oOnQueueUsers","qualifier":"IDLE","stats":{{"count":{count}}}}},
               {{"metric":"oOnQueueUsers","qualifier":"INTERACTING","stats":{{"count":{again}}}}}]}}]}}"#
        );
        parse_observations(&[Q], body.as_bytes())
    };
    assert_eq!(
        observation(500_000, 500_000).unwrap()[Q].agents_on_queue,
        Some(1_000_000)
    );
    for (a, b) in [(500_000, 500_001), (1_000_001, 0), (-1, 0), (i64::MAX, 1)] {
        let error = observation(a, b).unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidResponse, "{a} {b}");
    }
}

#[test]
fn json_content_types() {
    for good in [
        "application/json",
        "application/json; charset=UTF-8",
        "Application/JSON;charset=utf-8",
        " application/json ",
        "application/problem+json",
        "application/vnd.genesys+json; v=2",
    ] {
        assert!(is_json_content_type(good), "{good}");
    }
    for bad in [
        "",
        "text/html",
        "text/json",
        "application/jsonp",
        "application/+json",
        "application/octet-stream",
        "application",
        "json",
        "text/plain; application/json",
    ] {
        assert!(!is_json_content_type(bad), "{bad}");
    }
}

#[test]
fn estimated_wait_takes_first_value() {
    let body =
        r#"{"results":[{"intent":"MESSAGE","formula":"BEST","estimatedWaitTimeSeconds":42}]}"#;
    let s = parse_estimated_wait(body.as_bytes()).unwrap();
    assert_eq!(s.estimated_wait_seconds, Some(42.0));
    assert_eq!(s.position, None);
    assert!(parse_estimated_wait(br#"{"results":[]}"#).is_err());
}

#[test]
fn observations_sum_qualifiers_and_map_ids() {
    let a = "11111111-1111-1111-1111-111111111111";
    let b = "22222222-2222-2222-2222-222222222222";
    let missing = "33333333-3333-3333-3333-333333333333";
    let body = format!(
        r#"{{"results":[
          {{"group":{{"queueId":"{b}","mediaType":"message"}},"data":[
             {{"metric":"oWaiting","stats":{{"count":7}}}},
             {{"metric":"oOnQueueUsers","qualifier":"IDLE","stats":{{"count":2}}}},
             {{"metric":"oOnQueueUsers","qualifier":"INTERACTING","stats":{{"count":3}}}}]}},
          {{"group":{{"queueId":"{a}","mediaType":"message"}},"data":[
             {{"metric":"oWaiting","stats":{{"count":1}}}}]}},
          {{"group":{{"queueId":"99999999-9999-9999-9999-999999999999"}},"data":[]}}
        ]}}"#
    );
    let map = parse_observations(&[a, b, missing], body.as_bytes()).unwrap();
    assert_eq!(map.len(), 2);
    assert_eq!(map[b].waiting, Some(7));
    assert_eq!(map[b].agents_on_queue, Some(5));
    assert_eq!(map[a].waiting, Some(1));
    assert_eq!(map[a].agents_on_queue, Some(0));
    assert!(!map.contains_key(missing));
}

#[test]
fn observations_query_shape() {
    let q = observations_query(&["a", "b"]);
    assert_eq!(q["filter"]["type"], "or");
    assert_eq!(q["filter"]["predicates"][1]["value"], "b");
    assert_eq!(q["metrics"][0], "oWaiting");
}

#[test]
fn token_parse_and_redacted_debug() {
    let t = parse_token(br#"{"access_token":"sekrit","token_type":"bearer","expires_in":86400}"#)
        .unwrap();
    assert_eq!(t.expires_in, 86400);
    assert!(!format!("{t:?}").contains("sekrit"));
    assert!(parse_token(br#"{"access_token":"","expires_in":1}"#).is_err());
    assert!(parse_token(br#"{"access_token":"x","expires_in":-1}"#).is_err());
}

#[test]
fn observation_metrics_keep_qualifier_and_media_type() {
    let key = |metric: &str, qualifier: Option<&str>, media: Option<&str>| MetricKey {
        metric: metric.to_string(),
        qualifier: qualifier.map(str::to_string),
        media_type: media.map(str::to_string),
    };
    let upper = Q.to_ascii_uppercase();
    let named = "22222222-2222-2222-2222-222222222222";
    let body = format!(
        r#"{{"results":[
          {{"group":{{"queueId":"{upper}","mediaType":"message"}},"data":[
             {{"metric":"oWaiting","stats":{{"count":7}}}},
             {{"metric":"oInteracting","stats":{{"count":-3}}}},
             {{"metric":"oOnQueueUsers","qualifier":"IDLE","stats":{{"count":2}}}},
             {{"metric":"oOnQueueUsers","qualifier":"IDLE","stats":{{"count":1}}}}]}},
          {{"group":{{"queueId":"{Q}"}},"data":[
             {{"metric":"oWaiting","stats":{{}}}}]}},
          {{"group":{{"queueId":"{named}","mediaType":"voice"}},"data":[
             {{"metric":"oInteracting","stats":{{"count":1}}}}]}},
          {{"group":{{"queueId":"99999999-9999-9999-9999-999999999999"}},"data":[
             {{"metric":"oWaiting","stats":{{"count":-1}}}}]}},
          {{"group":{{}},"data":[]}}
        ]}}"#
    );
    let map = parse_observation_metrics(&[Q, named], body.as_bytes()).unwrap();
    assert_eq!(map.len(), 2);
    assert_eq!(
        map[Q],
        vec![
            MetricCount {
                metric: key(METRIC_ON_QUEUE_USERS, Some("IDLE"), Some("message")),
                count: 3,
            },
            MetricCount {
                metric: key(METRIC_WAITING, None, None),
                count: 0,
            },
            MetricCount {
                metric: key(METRIC_WAITING, None, Some("message")),
                count: 7,
            },
        ]
    );
    assert_eq!(map[named], vec![]);
    let samples = parse_observations(&[Q, named], body.as_bytes()).unwrap();
    assert_eq!(samples[Q].waiting, Some(7));
    assert_eq!(samples[Q].agents_on_queue, Some(3));
    assert_eq!(samples[named].waiting, Some(0));
    assert_eq!(samples[named].agents_on_queue, Some(0));
}

#[test]
fn observation_metrics_range_checks() {
    let body = |a: i64, b: i64, media_b: &str| {
        format!(
            r#"{{"results":[
              {{"group":{{"queueId":"{Q}","mediaType":"message"}},"data":[
                 {{"metric":"oWaiting","stats":{{"count":{a}}}}}]}},
              {{"group":{{"queueId":"{Q}","mediaType":"{media_b}"}},"data":[
                 {{"metric":"oWaiting","stats":{{"count":{b}}}}}]}}]}}"#
        )
    };
    // Two media types: each in range, the sum is checked by parse_observations only.
    let split = body(600_000, 600_000, "voice");
    let metrics = parse_observation_metrics(&[Q], split.as_bytes()).unwrap();
    assert_eq!(metrics[Q].len(), 2);
    assert_eq!(
        parse_observations(&[Q], split.as_bytes()).unwrap_err().kind,
        ErrorKind::InvalidResponse
    );
    let ok = body(400_000, 600_000, "voice");
    assert_eq!(
        parse_observations(&[Q], ok.as_bytes()).unwrap()[Q].waiting,
        Some(1_000_000)
    );
    // The same key twice is summed, and the sum is checked.
    for (a, b, media) in [
        (600_000, 600_000, "message"),
        (1_000_001, 0, "voice"),
        (-1, 0, "voice"),
        (0, i64::MAX, "voice"),
    ] {
        let error = parse_observation_metrics(&[Q], body(a, b, media).as_bytes()).unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidResponse, "{a} {b} {media}");
    }
    assert_eq!(
        parse_observation_metrics(&[Q], b"[1]").unwrap_err().kind,
        ErrorKind::InvalidResponse
    );
}
