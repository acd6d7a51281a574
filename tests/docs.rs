#![cfg(feature = "simulator")]
//! The reference docs against the code: `docs/settings.md` (every key, its
//! default, the complete example, what broken files report), `docs/events.md`
//! and `docs/event.schema.json` (real events of every source and error kind),
//! `docs/metrics.md` (every family a running instance serves),
//! `docs/http-api.md` (routes and response fields), `docs/simulator.md`
//! (faults, admin routes, `simulate` flags), and links that stay inside the
//! repository.
//!
//! The docs mark what is checked: `<!-- full-example -->` and the like
//! before a fenced block, and tables whose first cell is the `key`.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use queuewatch::config::{
    parse_duration, CallbackSettings, ClusterSettings, GenesysSettings, HttpSettings, PollSettings,
    QueueSettings, Settings, Source, ThresholdOverrides, Thresholds, WaitTime,
};
use queuewatch::error::ErrorKind;
use queuewatch::event::{Availability, Event, PollEvent, PollFailedEvent};
use queuewatch::genesys::Credentials;
use queuewatch::secret::Secret;
use queuewatch::simulator::{Fault, FaultRule, FaultSet, SimStats, SimulatorConfig};
use queuewatch::{Handle, QueueWatch};
use serde_json::{json, Value};
use support::bin::BIN;

/// Longest wait for one event: an interval, retries and a slow CI box.
const WAIT: Duration = Duration::from_secs(30);

// ---- reading the docs -------------------------------------------------------

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn doc(name: &str) -> String {
    read(&format!("docs/{name}"))
}

/// The text of the fenced block right after `<!-- marker -->` (once in `text`).
fn marked_block(text: &str, marker: &str) -> String {
    let tag = format!("<!-- {marker} -->");
    let mut found = text.match_indices(&tag).map(|(at, _)| at);
    let at = found
        .next()
        .unwrap_or_else(|| panic!("no {tag} in the doc"));
    assert!(found.next().is_none(), "{tag} appears twice");
    let rest = text[at + tag.len()..].trim_start();
    assert!(
        rest.starts_with("```"),
        "{tag} is not followed by a fenced block"
    );
    let body = &rest[rest.find('\n').expect("a fence line") + 1..];
    if body.starts_with("```") {
        return String::new();
    }
    let end = body
        .find("\n```")
        .unwrap_or_else(|| panic!("{tag}: unclosed block"));
    body[..=end].to_string()
}

/// Every fenced block opened with ```` ```lang ````.
fn fenced_blocks(text: &str, lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match &mut current {
            None if line.trim() == format!("```{lang}") => current = Some(String::new()),
            None => {}
            Some(_) if line.trim() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    assert!(current.is_none(), "unclosed ```{lang} block");
    blocks
}

/// Table rows whose first cell is one code span: that text and the other
/// cells, in document order.
fn keyed_rows(text: &str) -> Vec<(String, Vec<String>)> {
    text.lines()
        .filter(|line| line.starts_with("| `"))
        .filter_map(|line| {
            let cells: Vec<String> = line
                .trim()
                .trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().to_string())
                .collect();
            let key = cells[0].strip_prefix('`')?.strip_suffix('`')?;
            (!key.contains('`')).then(|| (key.to_string(), cells[1..].to_vec()))
        })
        .collect()
}

/// The keys of [`keyed_rows`].
fn row_keys(text: &str) -> BTreeSet<String> {
    keyed_rows(text).into_iter().map(|(key, _)| key).collect()
}

/// The first code span of a cell.
fn first_code(cell: &str) -> Option<&str> {
    let start = cell.find('`')? + 1;
    let end = start + cell[start..].find('`')?;
    Some(&cell[start..end])
}

/// Whether `cell` holds the code span `` `text` ``.
fn has_code(cell: &str, text: &str) -> bool {
    cell.contains(&format!("`{text}`"))
}

// ---- docs/settings.md -------------------------------------------------------

const Q1: &str = "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10";

/// Every value of `poll.source`. The match has no wildcard: a new source
/// does not compile until it is listed here (and then documented).
fn every_source() -> Vec<Source> {
    let all = vec![
        Source::GuestPosition,
        Source::EstimatedWaitTime,
        Source::Observations,
        Source::Notifications,
    ];
    for source in &all {
        match source {
            Source::GuestPosition
            | Source::EstimatedWaitTime
            | Source::Observations
            | Source::Notifications => {}
        }
    }
    all
}

/// One callback of every kind, every key set. No wildcard: a new kind does
/// not compile until it is listed here.
fn every_callback_kind() -> Vec<CallbackSettings> {
    let all = vec![
        CallbackSettings::Log,
        CallbackSettings::Stdout,
        CallbackSettings::Jsonl {
            path: "audit.jsonl".into(),
        },
        CallbackSettings::Webhook {
            url: "https://hooks.example.com/queuewatch".into(),
            secret_env: Some("QUEUEWATCH_WEBHOOK_SECRET".into()),
        },
        CallbackSettings::Nats {
            url: "nats://127.0.0.1:4222".into(),
            subject: "queuewatch.events".into(),
            stream: "QUEUEWATCH".into(),
        },
    ];
    for callback in &all {
        match callback {
            CallbackSettings::Log
            | CallbackSettings::Stdout
            | CallbackSettings::Jsonl { .. }
            | CallbackSettings::Webhook { .. }
            | CallbackSettings::Nats { .. } => {}
        }
    }
    all
}

/// Settings with every field and every option set, written out field by
/// field: a field added to a settings type does not compile until it is
/// set here, and then the tests below want it documented.
fn fully_populated() -> Settings {
    let secs = Duration::from_secs;
    Settings {
        genesys: GenesysSettings {
            environment: "mypurecloud.ie".into(),
            api_url: Some("https://genesys-proxy.example.com/api".into()),
            login_url: Some("https://genesys-proxy.example.com/login".into()),
            client_id_env: "GENESYS_CLIENT_ID".into(),
            client_secret_env: "GENESYS_CLIENT_SECRET".into(),
            request_timeout: secs(8),
            token_refresh_margin: secs(60),
            rate_limit_per_minute: 300,
        },
        poll: PollSettings {
            source: Source::Observations,
            interval: secs(10),
            max_retries: 5,
            backoff_base: secs(1),
            backoff_max: secs(60),
            history_size: 720,
            reconcile_interval: secs(300),
            wait_time: WaitTime::Active,
        },
        thresholds: Thresholds {
            max_acceptable_wait: secs(300),
            smoothing_factor: 0.8,
            max_queue_depth: 50,
            min_agent_count: 3,
        },
        queues: vec![QueueSettings {
            id: Q1.into(),
            name: Some("support".into()),
            interval: Some(secs(15)),
            thresholds: ThresholdOverrides {
                max_acceptable_wait: Some(secs(120)),
                smoothing_factor: Some(0.5),
                max_queue_depth: Some(20),
                min_agent_count: Some(2),
            },
        }],
        callbacks: every_callback_kind(),
        http: HttpSettings {
            bind: Some("127.0.0.1:9464".parse().unwrap()),
            auth_token_env: Some("QUEUEWATCH_HTTP_TOKEN".into()),
        },
        cluster: Some(ClusterSettings {
            nats_url: "nats://127.0.0.1:4222".into(),
            instance_id: Some("queuewatch-a".into()),
            lease_ttl: secs(15),
        }),
    }
}

/// Every node of a serialised `Settings` with its key path: `genesys.api_url`,
/// `queues[]`, `queues[].thresholds.max_queue_depth`, `callbacks[].kind`,
/// `callbacks[kind=webhook].url`.
fn walk(path: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    if !path.is_empty() {
        out.push((path.to_string(), value.clone()));
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk(&child_path, child, out);
            }
        }
        Value::Array(items) if path == "callbacks" => {
            for item in items {
                let kind = item["kind"].as_str().expect("a callback kind");
                out.push(("callbacks[].kind".into(), item["kind"].clone()));
                for (key, child) in item.as_object().expect("a callback mapping") {
                    if key != "kind" {
                        walk(&format!("callbacks[kind={kind}].{key}"), child, out);
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(&format!("{path}[]"), item, out);
            }
        }
        _ => {}
    }
}

fn nodes(settings: &Settings) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    walk("", &serde_json::to_value(settings).unwrap(), &mut out);
    out
}

/// The value at a key path of [`walk`]; `[]` takes the first element,
/// `[kind=K]` the first callback of kind K.
fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut value = root;
    for segment in path.split('.') {
        let (name, selector) = match segment.split_once('[') {
            Some((name, rest)) => (name, Some(rest.trim_end_matches(']'))),
            None => (segment, None),
        };
        value = value.get(name)?;
        value = match selector {
            None => value,
            Some("") => value.as_array()?.first()?,
            Some(selector) => {
                let kind = selector.strip_prefix("kind=")?;
                value.as_array()?.iter().find(|item| item["kind"] == kind)?
            }
        };
    }
    Some(value)
}

/// Removes the key at `path` wherever it occurs (every list entry that matches).
fn remove(value: &mut Value, path: &str) {
    let (segment, rest) = match path.split_once('.') {
        Some((segment, rest)) => (segment, Some(rest)),
        None => (path, None),
    };
    let (name, selector) = match segment.split_once('[') {
        Some((name, sel)) => (name, Some(sel.trim_end_matches(']').to_string())),
        None => (segment, None),
    };
    let Some(map) = value.as_object_mut() else {
        return;
    };
    match (selector, rest) {
        (None, None) => {
            map.remove(name);
        }
        (None, Some(rest)) => {
            if let Some(child) = map.get_mut(name) {
                remove(child, rest);
            }
        }
        (Some(selector), Some(rest)) => {
            if let Some(Value::Array(items)) = map.get_mut(name) {
                for item in items {
                    let wanted = selector
                        .strip_prefix("kind=")
                        .is_none_or(|kind| item["kind"] == kind);
                    if wanted {
                        remove(item, rest);
                    }
                }
            }
        }
        (Some(_), None) => panic!("{path}: nothing to remove after a list selector"),
    }
}

/// The settings a minimal file gives: `queues` only (`with_sections`:
/// also one callback of every kind and `cluster: {}`, for their defaults).
fn defaults(with_sections: bool) -> Value {
    let mut yaml = format!("queues:\n  - id: {Q1}\n");
    if with_sections {
        yaml.push_str(
            "callbacks:\n  - kind: log\n  - kind: stdout\n  - kind: jsonl\n  - kind: webhook\n    \
             url: https://hooks.example.com/x\n  - kind: nats\ncluster: {}\n",
        );
    }
    serde_json::to_value(Settings::from_yaml_str(&yaml).expect("a minimal file loads")).unwrap()
}

/// A documented default against the code's: durations compare as durations
/// (`300s` is `5m`).
fn same_value(documented: &Value, code: &Value) -> bool {
    match (documented, code) {
        (Value::String(a), Value::String(b)) => {
            a == b || matches!((parse_duration(a), parse_duration(b)), (Ok(x), Ok(y)) if x == y)
        }
        _ => documented == code,
    }
}

/// The key paths the settings page must have a row for: every leaf, and the
/// sections and lists that may be left out or are lists (`queues`,
/// `callbacks`, `cluster`, `queues[].thresholds`).
fn documented_paths() -> BTreeSet<String> {
    let base = defaults(false);
    nodes(&fully_populated())
        .into_iter()
        .filter(|(path, value)| {
            let container = value.is_object() || value.is_array();
            let optional_or_list = matches!(
                lookup(&base, path),
                None | Some(Value::Null | Value::Array(_))
            );
            path != "queues[]" && (!container || optional_or_list)
        })
        .map(|(path, _)| path)
        .collect()
}

#[test]
fn the_complete_settings_example_loads_and_sets_every_key() {
    let yaml = marked_block(&doc("settings.md"), "full-example");
    let settings =
        Settings::from_yaml_str(&yaml).unwrap_or_else(|e| panic!("the example: {e}\n{yaml}"));
    // Through the file loader too (regular file, size, UTF-8).
    let dir = support::TempDir::new("docs-settings");
    let file = dir.join("settings.yaml");
    std::fs::write(&file, &yaml).unwrap();
    assert_eq!(Settings::load(&file).expect("loads from a file"), settings);
    assert_eq!(settings.warnings(), [], "the example is clean");

    let paths =
        |s: &Settings| -> BTreeSet<String> { nodes(s).into_iter().map(|(path, _)| path).collect() };
    let used = paths(&settings);
    let every = paths(&fully_populated());
    let unused: Vec<_> = every.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "keys the complete example leaves out: {unused:?}"
    );
    assert_eq!(used, every);
}

#[test]
fn every_settings_key_has_a_row_with_the_codes_default() {
    let page = doc("settings.md");
    let rows = keyed_rows(&page);
    let mut seen = BTreeSet::new();
    for (key, _) in &rows {
        assert!(seen.insert(key.clone()), "two rows for `{key}`");
    }
    let wanted = documented_paths();
    let missing: Vec<_> = wanted.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "keys without a row in settings.md: {missing:?}"
    );
    let known: BTreeSet<String> = nodes(&fully_populated())
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let stale: Vec<_> = seen.difference(&known).collect();
    assert!(
        stale.is_empty(),
        "rows for keys the settings do not have: {stale:?}"
    );

    let (base, sections) = (defaults(false), defaults(true));
    let example: Value = serde_json::to_value(
        Settings::from_yaml_str(&marked_block(&page, "full-example")).unwrap(),
    )
    .unwrap();
    for (key, cells) in &rows {
        let default = first_code(&cells[0])
            .unwrap_or_else(|| panic!("`{key}`: the default cell has no code span"));
        // Leaving the key out of the complete example: an error exactly when required.
        let mut without = example.clone();
        remove(&mut without, key);
        let loaded = Settings::from_yaml_str(&without.to_string());
        if default == "required" {
            assert!(
                loaded.is_err(),
                "`{key}` is documented as required, but a file without it loads"
            );
            continue;
        }
        if let Err(e) = loaded {
            panic!("`{key}` is documented with a default, but a file without it fails: {e}");
        }
        let from = if key.starts_with("cluster.") || key.starts_with("callbacks[kind=") {
            &sections
        } else {
            &base
        };
        let code = lookup(from, key).cloned().unwrap_or(Value::Null);
        let documented: Value = serde_saphyr::from_str(default)
            .unwrap_or_else(|e| panic!("`{key}`: default {default:?} is not YAML: {e}"));
        assert!(
            same_value(&documented, &code),
            "`{key}`: settings.md says the default is {documented}, the code has {code}"
        );
    }

    // Enumerated values: every one is named in its row.
    let row = |key: &str| -> String {
        rows.iter()
            .find(|(k, _)| k == key)
            .map(|(_, cells)| cells.join(" | "))
            .unwrap_or_else(|| panic!("no row for `{key}`"))
    };
    for source in every_source() {
        assert!(
            has_code(&row("poll.source"), source.as_str()),
            "poll.source: {source}"
        );
    }
    for callback in every_callback_kind() {
        let kind = callback.kind();
        assert!(
            has_code(&row("callbacks[].kind"), kind),
            "callbacks[].kind: {kind}"
        );
    }
}

/// `queuewatch check` on `yaml`: exit code and standard error.
fn check(yaml: &str) -> (Option<i32>, String) {
    let dir = support::TempDir::new("docs-check");
    std::fs::write(dir.join("settings.yaml"), yaml).unwrap();
    let out = Command::new(BIN)
        .arg("check")
        .current_dir(&dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("queuewatch check runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn broken_settings_report_what_the_page_shows() {
    let page = doc("settings.md");
    for example in ["invalid-example", "parse-error-example"] {
        let (code, stderr) = check(&marked_block(&page, example));
        assert_eq!(code, Some(2), "{example}: {stderr}");
        let shown = marked_block(&page, &format!("{example}-output"));
        assert_eq!(
            stderr, shown,
            "{example}: `queuewatch check` prints (left), settings.md shows (right)"
        );
    }
}

// ---- docs/events.md and docs/event.schema.json ---------------------------

struct Schema {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl Schema {
    fn load() -> Schema {
        let path = repo().join("docs/event.schema.json");
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        compiler.enable_format_assertions();
        let index = compiler
            .compile(path.to_str().unwrap(), &mut schemas)
            .unwrap_or_else(|e| panic!("docs/event.schema.json: {e:#}"));
        Schema { schemas, index }
    }

    fn check(&self, event: &Value) -> Result<(), String> {
        self.schemas
            .validate(event, self.index)
            .map_err(|e| format!("{e:#}"))
    }

    fn assert_valid(&self, event: &Value) {
        if let Err(why) = self.check(event) {
            panic!("not valid against docs/event.schema.json:\n{why}\n{event}");
        }
    }

    /// The `enum` of `$defs/<name>` in the schema file.
    fn enumeration(name: &str) -> BTreeSet<String> {
        let schema: Value = serde_json::from_str(&doc("event.schema.json")).unwrap();
        schema["$defs"][name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("$defs/{name} has no enum"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }
}

fn sample_poll() -> PollEvent {
    PollEvent {
        id: queuewatch::event::new_event_id(),
        timestamp: queuewatch::event::now_timestamp(),
        queue_id: Q1.into(),
        queue_name: Some("support".into()),
        source: Source::GuestPosition,
        position: Some(3),
        estimated_wait_seconds: Some(42.5),
        smoothed_wait_seconds: Some(40.1),
        waiting: None,
        agents_on_queue: None,
        status: Some("waiting".into()),
        over_capacity: false,
        exceeds_wait_directive: false,
        below_min_agents: None,
        agent_availability: Some(Availability::High),
        latency_ms: 12.4,
        data_age_ms: Some(0.1),
        attempts: 1,
    }
}

fn sample_failure(kind: ErrorKind) -> PollFailedEvent {
    PollFailedEvent {
        id: queuewatch::event::new_event_id(),
        timestamp: queuewatch::event::now_timestamp(),
        queue_id: Q1.into(),
        queue_name: None,
        source: Source::Observations,
        error: kind,
        detail: format!("a {kind} failure"),
        attempts: 2,
    }
}

fn json_of(event: Event) -> Value {
    serde_json::from_str(&event.to_json()).unwrap()
}

/// Settings for an instance on its in-process simulator: `n` queues of
/// `source` (every other one named), 5 s apart, quick retries.
fn instance_settings(source: Source, tag: u32, n: usize) -> Settings {
    let mut s = Settings::for_queues(support::queue_ids(tag, n));
    for (i, queue) in s.queues.iter_mut().enumerate() {
        if i % 2 == 0 {
            queue.name = Some(format!("queue {i}"));
        }
    }
    s.poll.source = source;
    s.poll.interval = Duration::from_secs(5);
    s.poll.max_retries = 1;
    s.poll.backoff_base = Duration::from_millis(50);
    s.poll.backoff_max = Duration::from_millis(200);
    s.genesys.rate_limit_per_minute = 1000;
    s.callbacks.clear();
    s.http.bind = None;
    s
}

/// Reads events (as delivered JSON) until `done` says enough, within `WAIT`;
/// every one is checked against the schema on the way.
async fn events_until(
    handle: &Handle,
    events: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<str>>,
    schema: &Schema,
    mut done: impl FnMut(&Value) -> bool,
) -> Vec<Value> {
    let mut seen = Vec::new();
    let reading = async {
        loop {
            match events.recv().await {
                Ok(json) => {
                    let event: Value = serde_json::from_str(&json).expect("event JSON");
                    schema.assert_valid(&event);
                    let finished = done(&event);
                    seen.push(event);
                    if finished {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => panic!("event stream: {e}"),
            }
        }
    };
    if tokio::time::timeout(WAIT, reading).await.is_err() {
        handle.shutdown().await;
        panic!("not within {WAIT:?}; events so far: {seen:#?}");
    }
    seen
}

#[actix_rt::test]
async fn poll_events_of_every_source_match_the_schema() {
    let schema = Schema::load();
    let mut running = Vec::new();
    for (i, source) in every_source().into_iter().enumerate() {
        let settings = instance_settings(source, 0xd0c5_0000 + i as u32, 2);
        let handle = QueueWatch::new(settings.clone()).start().await.unwrap();
        let events = handle.event_stream();
        running.push((source, settings, handle, events));
    }
    for (source, settings, handle, events) in &mut running {
        let mut waiting: BTreeSet<String> =
            settings.queues.iter().map(|q| q.id.to_string()).collect();
        let seen = events_until(handle, events, &schema, |event| {
            if event["type"] == "poll" {
                waiting.remove(event["queue_id"].as_str().unwrap());
            }
            waiting.is_empty()
        })
        .await;
        for event in seen.iter().filter(|e| e["type"] == "poll") {
            assert_eq!(event["source"], source.as_str(), "{event}");
        }
        handle.shutdown().await;
    }
}

#[actix_rt::test]
async fn failure_events_of_the_api_faults_match_the_schema() {
    let schema = Schema::load();
    let wanted: [(ErrorKind, FaultRule); 9] = [
        // Two 429s: one cycle (and its retry), not a budget halved for good.
        (
            ErrorKind::RateLimited,
            FaultRule::times(
                Fault::RateLimit {
                    retry_after_secs: 1,
                },
                2,
            ),
        ),
        // Two 401s: the token is refetched once, then the cycle gives up.
        (
            ErrorKind::Unauthorized,
            FaultRule::times(Fault::Status { status: 401 }, 2),
        ),
        (
            ErrorKind::Forbidden,
            FaultRule::always(Fault::Status { status: 403 }),
        ),
        (
            ErrorKind::NotFound,
            FaultRule::always(Fault::Status { status: 404 }),
        ),
        (
            ErrorKind::ServerError,
            FaultRule::always(Fault::ServerError { status: 503 }),
        ),
        (
            ErrorKind::Timeout,
            FaultRule::always(Fault::Slow { delay_ms: 1_500 }),
        ),
        (
            ErrorKind::Connection,
            FaultRule::always(Fault::DropConnection),
        ),
        (
            ErrorKind::InvalidResponse,
            FaultRule::always(Fault::MalformedBody),
        ),
        (
            ErrorKind::QueueMismatch,
            FaultRule::always(Fault::WrongQueueId),
        ),
    ];
    let mut settings = instance_settings(Source::GuestPosition, 0xd0c5_1000, wanted.len());
    settings.genesys.request_timeout = Duration::from_secs(1);
    let handle = QueueWatch::new(settings.clone()).start().await.unwrap();
    let mut events = handle.event_stream();
    let sim = handle.simulator().expect("in-process simulator").clone();
    // Each queue's own fault; its first failure of that kind is what counts
    // (a neighbour's 429 pause may turn a tick away with `rate_limited` first).
    let mut missing: HashMap<String, ErrorKind> = HashMap::new();
    for (queue, (kind, rule)) in settings.queues.iter().zip(wanted) {
        sim.faults().push(rule.for_queue(queue.id.clone()));
        missing.insert(queue.id.to_string(), kind);
    }
    events_until(&handle, &mut events, &schema, |event| {
        let queue = event["queue_id"].as_str().unwrap();
        if missing
            .get(queue)
            .is_some_and(|kind| event["error"] == kind.as_str())
        {
            missing.remove(queue);
        }
        missing.is_empty()
    })
    .await;
    sim.faults().clear();
    handle.shutdown().await;
}

#[actix_rt::test]
async fn rejected_credentials_end_in_auth_failed_events_that_match_the_schema() {
    let schema = Schema::load();
    let ids = support::queue_ids(0xd0c5_2000, 3);
    let sim = support::sim::start(SimulatorConfig::with_queues(ids.clone())).await;
    let mut settings = instance_settings(Source::Observations, 0xd0c5_2000, 3);
    settings.genesys.environment = "mypurecloud.com".into();
    settings.genesys.api_url = Some(sim.base_url());
    settings.genesys.login_url = Some(sim.base_url());
    let wrong = Credentials {
        client_id: Secret::new(queuewatch::simulator::DEFAULT_CLIENT_ID.to_string()),
        client_secret: Secret::new("not-the-secret".to_string()),
    };
    let handle = QueueWatch::new(settings)
        .credentials(wrong)
        .start()
        .await
        .unwrap();
    let mut events = handle.event_stream();
    let reason = tokio::time::timeout(WAIT, handle.fatal())
        .await
        .expect("rejected credentials are fatal");
    assert!(reason.contains("invalid_client"), "{reason}");
    handle.shutdown().await;
    let mut last: HashMap<String, Value> = HashMap::new();
    while let Ok(json) = events.try_recv() {
        let event: Value = serde_json::from_str(&json).unwrap();
        schema.assert_valid(&event);
        last.insert(event["queue_id"].as_str().unwrap().to_string(), event);
    }
    assert_eq!(last.len(), ids.len(), "{last:#?}");
    for event in last.values() {
        assert_eq!(event["error"], "auth_failed", "{event}");
    }
}

#[actix_rt::test]
async fn a_cycle_cut_short_by_shutdown_is_a_cancelled_event_that_matches_the_schema() {
    let schema = Schema::load();
    let mut settings = instance_settings(Source::EstimatedWaitTime, 0xd0c5_3000, 1);
    settings.genesys.request_timeout = Duration::from_millis(500);
    settings.poll.max_retries = 50;
    let handle = QueueWatch::new(settings).start().await.unwrap();
    let mut events = handle.event_stream();
    events_until(&handle, &mut events, &schema, |_| true).await;
    let sim = handle.simulator().unwrap().clone();
    sim.faults()
        .push(FaultRule::always(Fault::ServerError { status: 503 }));
    // A failing cycle is retrying: stop now.
    let started = std::time::Instant::now();
    while !sim.requests().iter().any(|r| r.status == 503) {
        assert!(started.elapsed() < WAIT, "no 503 sent");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    handle.shutdown().await;
    let mut last = None;
    while let Ok(json) = events.try_recv() {
        let event: Value = serde_json::from_str(&json).unwrap();
        schema.assert_valid(&event);
        last = Some(event);
    }
    let last = last.expect("an event for the cut cycle");
    assert_eq!(last["error"], "cancelled", "{last}");
}

#[test]
fn every_error_kind_matches_the_schema_and_has_a_row() {
    let schema = Schema::load();
    let page = doc("events.md");
    let rows = row_keys(&page);
    for kind in ErrorKind::ALL {
        schema.assert_valid(&json_of(Event::PollFailed(sample_failure(kind))));
        assert!(
            rows.contains(kind.as_str()),
            "events.md has no row for `{kind}`"
        );
    }
    let names: BTreeSet<String> = ErrorKind::ALL.iter().map(|k| k.to_string()).collect();
    assert_eq!(
        Schema::enumeration("error_kind"),
        names,
        "the schema's error kinds"
    );
    let sources: BTreeSet<String> = every_source().iter().map(|s| s.to_string()).collect();
    assert_eq!(
        Schema::enumeration("source"),
        sources,
        "the schema's sources"
    );
    for source in every_source() {
        assert!(has_code(&page, source.as_str()), "events.md: {source}");
    }
}

#[test]
fn every_event_field_has_a_row() {
    let rows = row_keys(&doc("events.md"));
    let poll = json_of(Event::Poll(sample_poll()));
    let failed = json_of(Event::PollFailed(sample_failure(ErrorKind::Timeout)));
    for event in [poll, failed] {
        for field in event.as_object().unwrap().keys() {
            assert!(
                rows.contains(field),
                "events.md has no row for the field `{field}`"
            );
        }
    }
}

#[test]
fn the_events_page_examples_are_valid_events() {
    let schema = Schema::load();
    let examples = fenced_blocks(&doc("events.md"), "json");
    assert!(examples.len() >= 4, "the page has its examples");
    let mut types = BTreeSet::new();
    for example in examples {
        let value: Value = serde_json::from_str(&example).expect("example JSON");
        schema.assert_valid(&value);
        let event: Event = serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("not a queuewatch Event ({e}): {example}"));
        assert_eq!(json_of(event), value, "the example reads back unchanged");
        types.insert(value["type"].as_str().unwrap().to_string());
    }
    assert_eq!(types.len(), 2, "both types have an example");
}

#[test]
fn the_schema_refuses_events_that_break_it() {
    let schema = Schema::load();
    let poll = json_of(Event::Poll(sample_poll()));
    let failed = json_of(Event::PollFailed(sample_failure(ErrorKind::Timeout)));
    schema.assert_valid(&poll);
    schema.assert_valid(&failed);
    let broken = |base: &Value, change: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut event = base.clone();
        change(event.as_object_mut().unwrap());
        event
    };
    let cases: Vec<(&str, Value)> = vec![
        (
            "a position as a string",
            broken(&poll, &|e| {
                e.insert("position".into(), json!("3"));
            }),
        ),
        (
            "a negative wait",
            broken(&poll, &|e| {
                e.insert("estimated_wait_seconds".into(), json!(-1.0));
            }),
        ),
        (
            "an unknown error kind",
            broken(&failed, &|e| {
                e.insert("error".into(), json!("exploded"));
            }),
        ),
        (
            "an unknown source",
            broken(&failed, &|e| {
                e.insert("source".into(), json!("websocket"));
            }),
        ),
        (
            "an unknown field",
            broken(&poll, &|e| {
                e.insert("data_age".into(), json!(12));
            }),
        ),
        (
            "a missing field",
            broken(&failed, &|e| {
                e.remove("detail");
            }),
        ),
        (
            "a success with an error",
            broken(&poll, &|e| {
                e.insert("error".into(), json!("timeout"));
            }),
        ),
        (
            "a wrong type",
            broken(&failed, &|e| {
                e.insert("type".into(), json!("poll_succeeded"));
            }),
        ),
        (
            "a timestamp with an offset",
            broken(&poll, &|e| {
                e.insert("timestamp".into(), json!("2026-11-24T12:00:00.123+01:00"));
            }),
        ),
        (
            "an uppercase queue id",
            broken(&poll, &|e| {
                e.insert("queue_id".into(), json!(Q1.to_uppercase()));
            }),
        ),
        (
            "observations with a position",
            broken(&poll, &|e| {
                e.insert("source".into(), json!("observations"));
                e.insert("waiting".into(), json!(3));
                e.insert("agents_on_queue".into(), json!(2));
                e.insert("below_min_agents".into(), json!(true));
                e.insert("status".into(), json!(null));
                e.insert("estimated_wait_seconds".into(), json!(null));
                e.insert("smoothed_wait_seconds".into(), json!(null));
            }),
        ),
        (
            "estimated_wait_time without a wait",
            broken(&poll, &|e| {
                e.insert("source".into(), json!("estimated_wait_time"));
                e.insert("position".into(), json!(null));
                e.insert("status".into(), json!(null));
                e.insert("estimated_wait_seconds".into(), json!(null));
            }),
        ),
        (
            "guest_position with agents",
            broken(&poll, &|e| {
                e.insert("agents_on_queue".into(), json!(4));
            }),
        ),
        (
            "a success without attempts",
            broken(&poll, &|e| {
                e.insert("attempts".into(), json!(0));
            }),
        ),
    ];
    for (what, event) in cases {
        assert!(
            schema.check(&event).is_err(),
            "the schema accepts {what}: {event}"
        );
    }
}

// ---- a running instance: docs/metrics.md and docs/http-api.md -------------

/// An instance on its simulator with the status API on a free loopback
/// port, after one successful poll of each of its queues.
struct Served {
    handle: Handle,
    base: String,
    queues: Vec<String>,
    client: awc::Client,
}

impl Served {
    async fn start(source: Source, tag: u32) -> Served {
        let mut settings = instance_settings(source, tag, 2);
        settings.http.bind = Some(([127, 0, 0, 1], 0).into());
        settings.callbacks = vec![CallbackSettings::Log];
        let queues: Vec<String> = settings.queues.iter().map(|q| q.id.to_string()).collect();
        let handle = QueueWatch::new(settings).start().await.unwrap();
        let mut events = handle.event_stream();
        let mut waiting: BTreeSet<String> = queues.iter().cloned().collect();
        while !waiting.is_empty() {
            let event: Value =
                support::events::next(&mut events, "poll", WAIT, |e: &Value| e["type"] == "poll")
                    .await;
            waiting.remove(event["queue_id"].as_str().unwrap());
        }
        let base = format!("http://{}", handle.http_addr().expect("the API listens"));
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(10))
            .finish();
        Served {
            handle,
            base,
            queues,
            client,
        }
    }

    /// GET (or another method) `path`: status, headers, body.
    async fn call(&self, method: &str, path: &str) -> (u16, awc::http::header::HeaderMap, Vec<u8>) {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut response = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            // As Prometheus asks: the OpenMetrics form of `/metrics`.
            .insert_header(("Accept", support::metrics::PROMETHEUS_ACCEPT))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let headers = response.headers().clone();
        let body = if path == "/api/events" && method == awc::http::Method::GET {
            Vec::new() // an endless stream: the head is enough
        } else {
            response.body().limit(16 << 20).await.unwrap().to_vec()
        };
        (response.status().as_u16(), headers, body)
    }

    async fn json(&self, path: &str) -> Value {
        let (status, _, body) = self.call("GET", path).await;
        assert_eq!(status, 200, "GET {path}");
        serde_json::from_slice(&body).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

#[actix_rt::test]
async fn every_served_metric_family_has_a_row() {
    let page = doc("metrics.md");
    let rows: BTreeMap<String, Vec<String>> = keyed_rows(&page).into_iter().collect();
    let mut served = BTreeSet::new();
    // Both kinds of per-queue data: position and wait, depth and agents.
    for (source, tag) in [
        (Source::GuestPosition, 0xd0c5_4000),
        (Source::Observations, 0xd0c5_4100),
    ] {
        let instance = Served::start(source, tag).await;
        let (status, _, body) = instance.call("GET", "/metrics").await;
        assert_eq!(status, 200);
        let text = String::from_utf8(body).unwrap();
        let families =
            support::metrics::parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        for (name, family) in &families {
            let row = rows
                .get(name)
                .unwrap_or_else(|| panic!("metrics.md has no row for the family `{name}`"));
            assert_eq!(row[0], family.kind, "metrics.md: type of `{name}`");
            let labels: BTreeSet<&String> = family
                .samples
                .iter()
                .flat_map(|s| s.labels.keys())
                .filter(|label| *label != "le")
                .collect();
            for label in labels {
                assert!(
                    has_code(&row[1], label),
                    "metrics.md: `{name}` lacks its label `{label}`"
                );
            }
            served.insert(name.clone());
        }
        instance.handle.shutdown().await;
    }
    assert!(
        served.len() >= 18,
        "too few families to prove anything: {served:?}"
    );
}

/// Key paths of an API answer: `counters.total`, `history[].depth`; not
/// into events (documented in events.md) nor maps keyed by error kind.
fn api_paths(path: &str, value: &Value, out: &mut BTreeSet<String>) {
    if !path.is_empty() && !path.ends_with("[]") {
        out.insert(path.to_string());
    }
    if path.ends_with("last_event") || path == "counters.failures" {
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                api_paths(&child_path, child, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                let child_path = if path.is_empty() {
                    String::new()
                } else {
                    format!("{path}[]")
                };
                api_paths(&child_path, item, out);
            }
        }
        _ => {}
    }
}

#[actix_rt::test]
async fn every_route_answers_and_every_field_has_a_row() {
    let page = doc("http-api.md");
    let rows = row_keys(&page);
    let instance = Served::start(Source::GuestPosition, 0xd0c5_5000).await;
    let routes: Vec<&str> = rows
        .iter()
        .filter_map(|key| key.strip_prefix("GET "))
        // `/api/queues[?limit=N]`: the route without its optional parameters.
        .map(|route| route.split('[').next().unwrap_or(route))
        .collect();
    assert_eq!(routes.len(), 7, "http-api.md lists the routes: {routes:?}");
    for route in routes {
        let path = route.replace("{id}", &instance.queues[0]);
        let (status, _, _) = instance.call("GET", &path).await;
        assert_eq!(status, 200, "GET {path}");
        let (head, _, body) = instance.call("HEAD", &path).await;
        assert_eq!((head, body.len()), (200, 0), "HEAD {path}");
        let (wrong, headers, _) = instance.call("DELETE", &path).await;
        assert_eq!(wrong, 405, "DELETE {path}");
        let allow = headers
            .get("allow")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(allow.as_deref(), Some("GET, HEAD"), "DELETE {path}");
    }
    let mut fields = BTreeSet::new();
    api_paths("", &instance.json("/readyz").await, &mut fields);
    api_paths("", &instance.json("/api/queues").await, &mut fields);
    let detail = instance
        .json(&format!("/api/queues/{}", instance.queues[0]))
        .await;
    api_paths("", &detail, &mut fields);
    for field in fields {
        assert!(
            rows.contains(&field),
            "http-api.md has no row for the field `{field}`"
        );
    }
    let unknown = instance.call("GET", "/api/queues/not-a-queue").await;
    assert_eq!(unknown.0, 404);
    instance.handle.shutdown().await;
}

// ---- docs/simulator.md -------------------------------------------------------

/// One fault of every kind. No wildcard: a new kind does not compile until
/// it is listed here.
fn every_fault() -> Vec<(&'static str, Fault)> {
    let all = vec![
        Fault::RateLimit {
            retry_after_secs: 1,
        },
        Fault::ServerError { status: 503 },
        Fault::Slow { delay_ms: 1 },
        Fault::DropConnection,
        Fault::MalformedBody,
        Fault::WrongQueueId,
        Fault::Status { status: 404 },
        Fault::Redirect {
            status: 302,
            location: "https://elsewhere.example.com/".into(),
        },
        Fault::ContentType {
            content_type: "text/html".into(),
        },
        Fault::Body { body: "{}".into() },
        Fault::TokenOutage { status: 503 },
        Fault::TokenSlow { delay_ms: 1 },
    ];
    all.into_iter()
        .map(|fault| {
            let kind = match &fault {
                Fault::RateLimit { .. } => "rate_limit",
                Fault::ServerError { .. } => "server_error",
                Fault::Slow { .. } => "slow",
                Fault::DropConnection => "drop_connection",
                Fault::MalformedBody => "malformed_body",
                Fault::WrongQueueId => "wrong_queue_id",
                Fault::Status { .. } => "status",
                Fault::Redirect { .. } => "redirect",
                Fault::ContentType { .. } => "content_type",
                Fault::Body { .. } => "body",
                Fault::TokenOutage { .. } => "token_outage",
                Fault::TokenSlow { .. } => "token_slow",
            };
            (kind, fault)
        })
        .collect()
}

#[test]
fn every_fault_kind_and_simulate_flag_has_a_row() {
    let page = doc("simulator.md");
    let rows: BTreeMap<String, Vec<String>> = keyed_rows(&page).into_iter().collect();
    for (kind, fault) in every_fault() {
        let json = serde_json::to_value(&fault).unwrap();
        assert_eq!(json["kind"], kind, "{fault:?}");
        let row = rows
            .get(kind)
            .unwrap_or_else(|| panic!("simulator.md has no row for the fault `{kind}`"));
        for field in json.as_object().unwrap().keys().filter(|k| *k != "kind") {
            assert!(
                has_code(&row[0], field),
                "simulator.md: `{kind}` lacks its field `{field}`"
            );
        }
    }
    let help = Command::new(BIN)
        .args(["simulate", "--help"])
        .output()
        .expect("simulate --help runs");
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    let flags: BTreeSet<&str> = help
        .split_whitespace()
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(|word| word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|flag| *flag != "--help")
        .collect();
    assert!(flags.len() >= 7, "{help}");
    for flag in flags {
        assert!(
            rows.contains_key(flag),
            "simulator.md has no row for `simulate {flag}`"
        );
    }
}

#[actix_rt::test]
async fn the_simulator_admin_routes_answer_as_the_page_says() {
    let page = doc("simulator.md");
    let rows = row_keys(&page);
    let sim = support::sim::start(SimulatorConfig::with_queues([Q1])).await;
    let client = awc::Client::default();
    let url = |path: &str| format!("{}{path}", sim.base_url());
    let documented = marked_block(&page, "fault-set-example");
    let set: FaultSet = serde_json::from_str(&documented).expect("the page's fault set reads");
    let kinds: BTreeSet<String> = set
        .rules
        .iter()
        .map(|rule| {
            serde_json::to_value(&rule.fault).unwrap()["kind"]
                .as_str()
                .unwrap()
                .into()
        })
        .collect();
    assert_eq!(
        kinds.len(),
        every_fault().len(),
        "the example shows every kind"
    );

    let mut put = client
        .put(url("/simulator/faults"))
        .send_body(documented.clone())
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let answered: Value = put.json().await.unwrap();
    assert_eq!(answered, serde_json::to_value(&set).unwrap());
    assert_eq!(sim.faults().current(), set);
    let mut get = client.get(url("/simulator/faults")).send().await.unwrap();
    assert_eq!(get.json::<Value>().await.unwrap(), answered);

    let mut bad = client
        .put(url("/simulator/faults"))
        .send_body("{\"rules\":[{\"fault\":{\"kind\":\"meteor\"}}]}")
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["error"],
        "invalid_fault_set"
    );

    let mut cleared = client
        .delete(url("/simulator/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.json::<Value>().await.unwrap(), json!({"rules": []}));
    let mut revoked = client
        .post(url("/simulator/revoke-tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        revoked.json::<Value>().await.unwrap(),
        json!({"revoked": 0})
    );

    let mut stats = client.get(url("/simulator/stats")).send().await.unwrap();
    let stats: Value = stats.json().await.unwrap();
    serde_json::from_value::<SimStats>(stats.clone()).expect("the stats type");
    for field in stats.as_object().unwrap().keys() {
        assert!(
            rows.contains(field),
            "simulator.md has no row for the stats field `{field}`"
        );
    }
    sim.stop().await;
}

// ---- links ---------------------------------------------------------------------

/// GitHub's anchor of a heading: lowercase, punctuation dropped, spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            out.insert(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

/// The targets of the Markdown links `[text](target)` outside code blocks.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            targets.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    targets
}

#[test]
fn the_docs_link_only_inside_the_repository() {
    let mut files: Vec<PathBuf> = vec![repo().join("README.md")];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let readme = read("README.md");
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let name = file.strip_prefix(repo()).unwrap().display().to_string();
        for outside in ["../shared", "SPEC"] {
            assert!(!text.contains(outside), "{name} mentions {outside:?}");
        }
        for target in link_targets(&text) {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue; // the world outside: actix, NATS, ...
            }
            let (path, fragment) = match target.split_once('#') {
                Some((path, fragment)) => (path, Some(fragment)),
                None => (target.as_str(), None),
            };
            let linked = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            let resolved = linked
                .canonicalize()
                .unwrap_or_else(|_| panic!("{name}: the link {target:?} points at nothing"));
            assert!(
                resolved.starts_with(repo().canonicalize().unwrap()),
                "{name}: the link {target:?} leaves the repository"
            );
            if let Some(fragment) = fragment {
                let text = std::fs::read_to_string(&resolved).unwrap();
                assert!(
                    anchors(&text).contains(fragment),
                    "{name}: the link {target:?} names no heading there"
                );
            }
        }
        if name.starts_with("docs/") {
            let link = format!("]({name})");
            assert!(readme.contains(&link), "README.md does not link {name}");
        }
    }
}
