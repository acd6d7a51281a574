#![cfg(feature = "simulator")]
//! queuewatch with a real Prometheus (Debian's `prometheus` and `promtool`,
//! 2.42): `/metrics` passes `promtool check metrics`, a Prometheus scrapes a
//! live instance (OpenMetrics, as it asks for it) and evaluates the alert
//! rules of `docs/prometheus/` on it, the rules pass `promtool check rules`
//! and `promtool test rules`, and they read only families queuewatch serves.
//!
//! Without `promtool` or `prometheus` on the PATH a test prints a skip
//! notice, or fails when `CI` is set (`.ci/run` installs them).

mod support;

use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use queuewatch::config::Source;
use support::live::Live;
use support::metrics::{parse_openmetrics, PROMETHEUS_ACCEPT};
use support::TempDir;

/// Longest wait for Prometheus: its start, a few scrapes and rule rounds.
const PROMETHEUS_WAIT: Duration = Duration::from_secs(60);

/// `Some(path)` of `name` on the PATH; otherwise a skip notice, or a
/// failure under CI.
fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(found) = std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
    {
        return Some(found);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{name} is not on the PATH; CI must install it: apt-get install -y prometheus");
    }
    eprintln!("SKIPPED: {name} not on the PATH (apt-get install prometheus)");
    None
}

fn docs(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/prometheus")
        .join(file)
}

/// Runs `command` with `stdin` (if any); its output.
fn run(command: &mut Command, stdin: Option<&str>) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[actix_rt::test]
async fn openmetrics_to_prometheus_the_classic_text_to_curl() {
    let live = Live::start(Source::GuestPosition, 0x9a0e_0000, 2).await;
    live.serving(&["queuewatch_queue_depth"]).await;
    // Prometheus names OpenMetrics first: it gets it.
    let scraped = live.metrics(Some(PROMETHEUS_ACCEPT)).await;
    assert!(
        scraped
            .content_type
            .starts_with("application/openmetrics-text; version=1.0.0"),
        "{}",
        scraped.content_type
    );
    assert_eq!(scraped.vary.as_deref(), Some("Accept"));
    parse_openmetrics(&scraped.body).unwrap_or_else(|e| panic!("{e}\n{}", scraped.body));
    // curl (`*/*`), no Accept, `text/plain`: the classic text.
    for accept in [Some("*/*"), None, Some("text/plain;version=0.0.4")] {
        let answer = live.metrics(accept).await;
        assert_eq!(
            answer.content_type, "text/plain; version=0.0.4; charset=utf-8",
            "{accept:?}"
        );
        assert_eq!(answer.vary.as_deref(), Some("Accept"));
        let body = &answer.body;
        assert!(
            body.contains("# TYPE queuewatch_polls_total counter\n")
                && !body.contains("# EOF")
                && !body.contains("# UNIT"),
            "{accept:?}: {body}"
        );
    }
    live.stop().await;
}

#[actix_rt::test]
async fn metrics_pass_promtool_check_metrics() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    for (source, gauge, tag) in [
        (
            Source::GuestPosition,
            "queuewatch_queue_estimated_wait_seconds",
            0x9a0e_1000,
        ),
        (Source::Observations, "queuewatch_queue_agents", 0x9a0e_2000),
    ] {
        let live = Live::start(source, tag, 3).await;
        // Every family this source gives, the event drops included.
        live.serving(&[
            "queuewatch_queue_depth",
            gauge,
            "queuewatch_event_drops_total",
        ])
        .await;
        // What `curl -s …/metrics | promtool check metrics` reads.
        let served = live.metrics(Some("*/*")).await.body;
        let output = run(
            Command::new(&promtool).args(["check", "metrics"]),
            Some(&served),
        );
        let said = text(&output);
        assert!(
            output.status.success() && said.trim().is_empty(),
            "promtool check metrics ({source:?}): {}\n{said}\n{served}",
            output.status
        );
        live.stop().await;
    }
}

#[test]
fn alert_rules_pass_promtool() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    for args in [
        ["check", "rules", "alerts.yaml"],
        ["test", "rules", "alerts_test.yaml"],
    ] {
        let output = run(
            Command::new(&promtool).args(args).current_dir(docs("")),
            None,
        );
        let said = text(&output);
        println!("promtool {}:\n{said}", args.join(" "));
        assert!(output.status.success(), "promtool {args:?}: {said}");
        assert!(said.contains("SUCCESS"), "{said}");
    }
}

/// Every `expr` of the alert rules file.
fn alert_exprs() -> Vec<(String, String)> {
    let yaml = std::fs::read_to_string(docs("alerts.yaml")).unwrap();
    let rules: Value = serde_saphyr::from_str(&yaml).expect("alerts.yaml is YAML");
    let groups = rules["groups"].as_array().expect("groups");
    let exprs: Vec<(String, String)> = groups
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").iter())
        .map(|r| {
            let name = r["alert"].as_str().expect("alert rules only");
            (
                name.to_owned(),
                r["expr"].as_str().expect("expr").to_owned(),
            )
        })
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    exprs
}

#[actix_rt::test]
async fn alert_rules_read_only_served_families() {
    let served = support::live::served_names(0x9a0e_3000).await;
    for (alert, expr) in alert_exprs() {
        let names = support::promql::metric_names(&expr);
        assert!(!names.is_empty(), "{alert}: no metric in {expr}");
        for name in names {
            assert!(
                name == "up" || served.contains(&name),
                "{alert} reads {name}, which /metrics does not serve: {expr}\nserved: {served:?}"
            );
        }
    }
}

/// A Prometheus on loopback, killed on drop.
struct Prometheus {
    child: Child,
    base: String,
    dir: TempDir,
}

impl Prometheus {
    /// Scrapes `target` every second (job `queuewatch`) and evaluates the
    /// alert rules every second.
    fn start(binary: &Path, target: SocketAddr) -> Prometheus {
        let dir = TempDir::new("prometheus");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {rules}\n\
                 scrape_configs:\n  - job_name: queuewatch\n    static_configs:\n      - targets: ['{target}']\n",
                rules = docs("alerts.yaml").display()
            ),
        )
        .unwrap();
        let port = support::free_port();
        let log = File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// GET `/api/v1/{path}` with `query`; the JSON, or `None` while
    /// Prometheus does not answer.
    async fn api(&self, client: &awc::Client, path: &str, query: &[(&str, &str)]) -> Option<Value> {
        let request = client
            .get(format!("{}/api/v1/{path}", self.base))
            .query(&query)
            .ok()?;
        let mut response = request.send().await.ok()?;
        response.json::<Value>().limit(16 << 20).await.ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[actix_rt::test]
async fn prometheus_scrapes_a_live_instance_and_evaluates_the_rules() {
    let Some(binary) = tool("prometheus") else {
        return;
    };
    let live = Live::start(Source::GuestPosition, 0x9a0e_4000, 3).await;
    let prometheus = Prometheus::start(&binary, live.addr);
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();

    let polls = support::wait::poll(PROMETHEUS_WAIT, async || {
        let answer = prometheus
            .api(&client, "query", &[("query", "queuewatch_polls_total")])
            .await?;
        let result = answer["data"]["result"].as_array()?;
        (!result.is_empty()).then(|| result.clone())
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "no queuewatch_polls_total in Prometheus:\n{}",
            prometheus.log()
        )
    });
    assert!(
        polls
            .iter()
            .any(|s| s["metric"]["job"] == "queuewatch" && s["metric"]["outcome"] == "success"),
        "{polls:?}"
    );

    // Prometheus kept the OpenMetrics family name (`queuewatch_polls`, not
    // `queuewatch_polls_total`): it asked for OpenMetrics and got it.
    let metadata = prometheus
        .api(&client, "metadata", &[("metric", "queuewatch_polls")])
        .await
        .expect("metadata");
    assert_eq!(
        metadata["data"]["queuewatch_polls"][0]["type"], "counter",
        "{metadata}"
    );
    let classic = prometheus
        .api(&client, "metadata", &[("metric", "queuewatch_polls_total")])
        .await
        .expect("metadata");
    assert_eq!(classic["data"], serde_json::json!({}), "{classic}");

    // Every rule evaluated on the live series without an error, and the
    // webhook that drops every event fired QueuewatchCallbackDropping.
    let is = |rule: &Value, name: &str, state: &str| rule["name"] == name && rule["state"] == state;
    let rules = support::wait::poll(PROMETHEUS_WAIT, async || {
        let answer = prometheus.api(&client, "rules", &[]).await?;
        let rules: Vec<Value> = answer["data"]["groups"]
            .as_array()?
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        let evaluated = rules.iter().all(|r| {
            r["lastEvaluation"]
                .as_str()
                .is_some_and(|t| !t.starts_with("0001-"))
        });
        let dropping = rules
            .iter()
            .any(|r| is(r, "QueuewatchCallbackDropping", "firing"));
        (evaluated && dropping).then_some(rules)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "the rules were not evaluated, or the drops not alerted:\n{}",
            prometheus.log()
        )
    });
    assert_eq!(rules.len(), alert_exprs().len());
    for rule in &rules {
        assert_eq!(rule["health"], "ok", "{rule}");
    }
    // Nothing else fires on a healthy instance (the rules with a `for` are
    // at most pending this early).
    let firing: Vec<&str> = rules
        .iter()
        .filter(|r| r["state"] == "firing")
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(firing, ["QueuewatchCallbackDropping"]);

    // The dashboard's queries are PromQL Prometheus accepts.
    for expr in dashboard_exprs() {
        let expr = expr
            .replace("$__rate_interval", "1m")
            .replace("$instance", ".*")
            .replace("$queue", ".*");
        let answer = prometheus
            .api(&client, "query", &[("query", &expr)])
            .await
            .expect("an answer");
        assert_eq!(answer["status"], "success", "{expr}: {answer}");
    }

    drop(prometheus);
    live.stop().await;
}

/// Every panel query of the Grafana dashboard.
fn dashboard_exprs() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/grafana/queuewatch.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect()
}
