#![cfg(feature = "simulator")]
//! The Grafana dashboard `docs/grafana/queuewatch.json`: its shape (an
//! overview row, a per-queue row driven by the `queue` variable, every panel
//! on the `datasource` variable), and that its queries read only the
//! metric families live instances serve on `/metrics`.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use support::promql::metric_names;

fn dashboard() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/grafana/queuewatch.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?} is not JSON: {e}"))
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel);
        if let Some(nested) = panel["panels"].as_array() {
            all.extend(nested);
        }
    }
    all
}

/// (panel title, expr) of every query.
fn queries(dashboard: &Value) -> Vec<(String, String)> {
    panels(dashboard)
        .into_iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or_default().to_owned();
            p["targets"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |t| (title.clone(), t["expr"].as_str().expect("expr").to_owned()))
        })
        .collect()
}

/// The query variables: name and the metric selector of `label_values(…, label)`.
fn variables(dashboard: &Value) -> Vec<(String, String)> {
    dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| {
            let query = v["query"]["query"].as_str().expect("a query");
            let inner = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .unwrap_or_else(|| panic!("not label_values(…): {query}"));
            let (selector, _label) = inner.rsplit_once(',').expect("label_values(metric, label)");
            (v["name"].as_str().unwrap().to_owned(), selector.to_owned())
        })
        .collect()
}

#[test]
fn the_dashboard_has_an_overview_and_a_per_queue_row() {
    let d = dashboard();
    assert_eq!(d["uid"], "queuewatch");
    let rows: Vec<&str> = panels(&d)
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    assert_eq!(rows, ["Overview", "Per queue ($queue)"]);
    let vars = &d["templating"]["list"];
    assert_eq!(vars[0]["type"], "datasource");
    assert_eq!(vars[0]["query"], "prometheus");
    let names: Vec<String> = variables(&d).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["instance", "queue"]);

    let mut ids = BTreeSet::new();
    let mut in_queue_row = false;
    for panel in panels(&d) {
        assert!(ids.insert(panel["id"].as_u64().expect("id")), "{panel}");
        assert!(panel["gridPos"]["w"].as_u64().is_some(), "{panel}");
        if panel["type"] == "row" {
            in_queue_row = panel["title"] != "Overview";
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            assert!(expr.contains("$instance"), "{expr}");
            assert_eq!(
                in_queue_row,
                expr.contains("queue_id=~\"$queue\""),
                "{expr}"
            );
        }
    }
    // The overview covers what the issue asked for.
    let all: String = queries(&d).into_iter().map(|(_, e)| e + "\n").collect();
    for needle in [
        "queuewatch_queues",
        "rate(queuewatch_polls_total",
        "queuewatch_poll_failures_total",
        "queuewatch_rate_budget_used_per_minute",
        "queuewatch_interval_stretch",
        "histogram_quantile(0.5, sum by (le) (rate(queuewatch_request_latency_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(queuewatch_request_latency_seconds_bucket",
        "queuewatch_event_drops_total",
        "queuewatch_queue_depth",
        "queuewatch_queue_estimated_wait_seconds",
        "queuewatch_queue_agents",
    ] {
        assert!(all.contains(needle), "no query has {needle}");
    }
}

#[actix_rt::test]
async fn the_dashboard_reads_only_served_families() {
    let d = dashboard();
    let served = support::live::served_names(0x6a0f_0000).await;
    let mut read = BTreeSet::new();
    let checked = queries(&d)
        .into_iter()
        .chain(variables(&d).into_iter().map(|(n, s)| (format!("${n}"), s)));
    for (what, expr) in checked {
        let names = metric_names(&expr);
        assert!(!names.is_empty(), "{what}: no metric in {expr}");
        for name in names {
            assert!(
                served.contains(&name),
                "{what} reads {name}, which /metrics does not serve: {expr}\nserved: {served:?}"
            );
            read.insert(name);
        }
    }
    assert!(read.len() >= 15, "{read:?}");
}

#[test]
fn metric_names_skip_matchers_functions_and_keywords() {
    let names = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (le) (rate(a_bucket{instance=~"$instance", x="}"}[$__rate_interval])))"#
        ),
        ["a_bucket"]
    );
    assert_eq!(
        names(
            "b >= 0.95 * c and on (job) sum without (x) (d offset 5m) > 0 or absent(up{job=\"q\"})"
        ),
        ["b", "c", "d", "up"]
    );
    assert_eq!(
        names("sum(rate(x_total[5m])) / ignoring(kind) group_left y"),
        ["x_total", "y"]
    );
    assert!(names("${queue} 1e3 inf").is_empty());
}
