#![cfg(feature = "simulator")]
//! The status page in a real browser: Debian's headless `chromium`, driven
//! over the DevTools protocol on a pipe (`--remote-debugging-pipe`: no port,
//! no extra crates), against a live in-process run on the simulator.
//!
//! The instance requires an API token (`http.auth_token_env`): the page
//! asks for it, the test types it in, and no URL the browser requested (as
//! the DevTools network events report them) carries it.
//!
//! Without `/usr/bin/chromium` the test prints a skip notice, or fails when
//! `CI` is set. With `QUEUEWATCH_SCREENSHOT=1` it also writes
//! `docs/status-page.png` (1280x800).
//!
//! Why not `--dump-dom`: chromium dumps at the load event, before the page's
//! fetches and events arrived, and `--virtual-time-budget` never expires
//! while the page's event stream is open.

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use queuewatch::config::Settings;
use queuewatch::simulator::{Fault, FaultRule};
use queuewatch::QueueWatch;
use support::wait::poll_blocking;
use support::TempDir;

const CHROMIUM: &str = "/usr/bin/chromium";
const QUEUES: [(&str, &str); 5] = [
    ("0987f3d0-8080-443c-96e9-e7e71b53f301", "support"),
    ("28973de8-cd8c-434c-85f7-168c9b2338c9", "billing"),
    ("ebd9082a-621c-4feb-b6e3-a114de2dec2e", "sales"),
    ("0d568e3c-f3c9-4603-860c-1f25381350d9", "returns"),
    ("6559796b-9eed-4bf5-9926-709d200cda90", "vip"),
];
/// Longest wait for any one state of the page.
const PAGE_WAIT: Duration = Duration::from_secs(45);
/// Longest wait for one DevTools reply.
const CDP_WAIT: Duration = Duration::from_secs(20);
/// The status API's token, from this variable.
const TOKEN_VAR: &str = "QUEUEWATCH_TEST_BROWSER_TOKEN_4D2E";
const TOKEN: &str = "br0wser-test-token-9f41c";

/// `Some(path)` when chromium is installed; otherwise a skip notice, or a
/// failure under CI (the CI script installs chromium).
fn chromium() -> Option<PathBuf> {
    let path = PathBuf::from(CHROMIUM);
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{CHROMIUM} is missing; CI must install it: apt-get install -y chromium");
    }
    eprintln!("SKIPPED status page browser test: {CHROMIUM} not found (apt-get install chromium)");
    None
}

/// Headless chromium with a DevTools session on one page.
struct Browser {
    child: Child,
    to_browser: ChildStdin,
    from_browser: mpsc::Receiver<Value>,
    next_id: u64,
    session: String,
    /// Every URL the page requested (`Network.requestWillBeSent`), in order.
    requested: Vec<String>,
    /// Removed when the browser is gone (fields drop after `Drop::drop`).
    _profile: TempDir,
}

impl Browser {
    fn launch(chromium: &Path) -> Browser {
        let profile = TempDir::new("chromium");
        // The DevTools pipe is fds 3 (commands in) and 4 (replies out); the
        // shell maps them onto the pipes we hold, then execs chromium.
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null"#)
            .arg(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--no-first-run",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-pipe",
                "--window-size=1280,800",
            ])
            .arg(format!("--user-data-dir={}", profile.0.display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let to_browser = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, from_browser) = mpsc::channel();
        std::thread::spawn(move || {
            let mut pending = Vec::new();
            let mut chunk = [0u8; 64 * 1024];
            while let Ok(n @ 1..) = stdout.read(&mut chunk) {
                pending.extend_from_slice(&chunk[..n]);
                while let Some(end) = pending.iter().position(|&b| b == 0) {
                    let message: Vec<u8> = pending.drain(..=end).collect();
                    let Ok(value) = serde_json::from_slice(&message[..end]) else {
                        continue;
                    };
                    if tx.send(value).is_err() {
                        return;
                    }
                }
            }
        });
        let mut browser = Browser {
            child,
            to_browser,
            from_browser,
            next_id: 0,
            session: String::new(),
            requested: Vec::new(),
            _profile: profile,
        };
        let target = browser.call(false, "Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = browser.call(
            false,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        browser.call(
            true,
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": false}),
        );
        browser
    }

    /// Sends one command (to the page's session if `on_page`) and waits for its result.
    fn call(&mut self, on_page: bool, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if on_page {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .and_then(|()| self.to_browser.flush())
            .unwrap_or_else(|e| panic!("{method}: chromium is gone: {e}"));
        let deadline = Instant::now() + CDP_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = self
                .from_browser
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("{method}: no reply from chromium ({e})"));
            if reply["id"] == id {
                if let Some(error) = reply.get("error") {
                    panic!("{method}: {error}");
                }
                return reply["result"].clone();
            }
            self.note(&reply);
        }
    }

    /// Keeps what an event (a message without an id) tells about requests.
    fn note(&mut self, message: &Value) {
        if message["method"] == "Network.requestWillBeSent" {
            if let Some(url) = message["params"]["request"]["url"].as_str() {
                self.requested.push(url.to_owned());
            }
        }
    }

    /// Every URL requested so far (the events still in the pipe included).
    fn requested_urls(&mut self) -> Vec<String> {
        while let Ok(message) = self.from_browser.try_recv() {
            self.note(&message);
        }
        self.requested.clone()
    }

    /// Types `text` into the focused element and presses Enter, as a user would.
    fn type_and_enter(&mut self, text: &str) {
        self.call(true, "Input.insertText", json!({"text": text}));
        for kind in ["keyDown", "keyUp"] {
            let mut key = json!({
                "type": kind, "key": "Enter", "code": "Enter",
                "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13,
            });
            if kind == "keyDown" {
                key["text"] = json!("\r");
            }
            self.call(true, "Input.dispatchKeyEvent", key);
        }
    }

    /// Evaluates `expression` in the page; its value (JSON), or `Null` on an exception.
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            true,
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if result.get("exceptionDetails").is_some() {
            return Value::Null;
        }
        result["result"]["value"].clone()
    }

    /// Polls `snapshot()` until `done` holds for it; panics with the last one after `PAGE_WAIT`.
    fn wait_for(&mut self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        poll_blocking(PAGE_WAIT, || {
            let state = self.eval(SNAPSHOT);
            if done(&state) {
                return Some(state);
            }
            last = state;
            None
        })
        .unwrap_or_else(|| panic!("page: {what} not within {PAGE_WAIT:?}; last state:\n{last:#}"))
    }

    fn screenshot(&mut self, path: &Path) {
        let shot = self.call(true, "Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64 PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let mut bytes = serde_json::to_vec(&json!({"id": 0, "method": "Browser.close"})).unwrap();
        bytes.push(0);
        let _ = self.to_browser.write_all(&bytes);
        let child = &mut self.child;
        let exited = poll_blocking(Duration::from_secs(10), || {
            matches!(child.try_wait(), Ok(Some(_))).then_some(())
        });
        if exited.is_some() {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The page as the test sees it: rows in display order with every
/// `data-field` cell's text, the totals above the table, the sign-in form.
const SNAPSHOT: &str = r##"(() => {
  if (!document.body || !document.getElementById("event-count")) return null;
  const total = id => document.getElementById(id);
  const login = document.getElementById("login");
  const rows = Array.from(document.querySelectorAll("#rows tr[data-queue-id]")).map(tr => {
    const fields = {};
    tr.querySelectorAll("[data-field]").forEach(c => { fields[c.dataset.field] = c.textContent.trim(); });
    const history = tr.querySelector('[data-field="history"]');
    const time = tr.querySelector('[data-field="updated"] time');
    return {
      id: tr.dataset.queueId,
      state: tr.dataset.state || "",
      fields,
      flags: tr.querySelector('[data-field="flags"]').dataset.flags || "",
      badges: tr.querySelectorAll('[data-field="flags"] .badge').length,
      history: history.dataset.history || "",
      wait: tr.querySelector('[data-field="estimated_wait"]').dataset.value || "",
      points: Number(history.dataset.points || 0),
      lines: history.querySelectorAll("svg polyline, svg circle").length,
      updated: time ? time.getAttribute("datetime") || "" : "",
    };
  });
  return {
    ready: document.body.dataset.ready,
    events: Number(document.getElementById("event-count").textContent),
    stream: document.getElementById("stream-state").textContent,
    shown: Number(document.getElementById("shown-count").textContent),
    marker: window.__qwTestMarker === true,
    navigations: performance.getEntriesByType("navigation").length,
    login: !login.hidden,
    login_error: document.getElementById("login-error").textContent,
    auth: document.body.dataset.auth || "",
    logout: !document.getElementById("logout").hidden,
    totals: {
      over_capacity: Number(total("total-over-capacity").dataset.value),
      over_wait: Number(total("total-over-wait").dataset.value),
      failing: Number(total("total-failing").dataset.value),
      longest_wait: total("total-longest-wait").dataset.value,
      longest_queue: total("total-longest-wait").dataset.queueId || "",
      longest_text: total("total-longest-wait").querySelector("dd").textContent,
    },
    rows,
  };
})()"##;

fn rows(state: &Value) -> &[Value] {
    state["rows"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn row<'a>(state: &'a Value, id: &str) -> &'a Value {
    rows(state)
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no row for {id}: {state:#}"))
}

fn filled(text: &Value) -> bool {
    text.as_str()
        .is_some_and(|t| !t.is_empty() && t != "\u{2014}")
}

/// Every queue has a row with its name, id, numbers, a badge, a time and a sparkline.
fn all_rows_filled(state: &Value) -> bool {
    state["ready"] == "1"
        && state["login"] == false
        && rows(state).len() == QUEUES.len()
        && rows(state).iter().all(|r| {
            let f = &r["fields"];
            r["state"] == "ok"
                && filled(&f["position"])
                && filled(&f["estimated_wait"])
                && filled(&f["smoothed_wait"])
                && r["badges"].as_u64() >= Some(1)
                && !r["updated"].as_str().unwrap_or_default().is_empty()
                && r["history"] == "loaded"
                && r["points"].as_u64() >= Some(1)
        })
}

/// The totals above the table agree with the rows (all shown): flags of the
/// last poll, failed rows, and the longest estimated wait with its queue.
fn check_totals(state: &Value) {
    let totals = &state["totals"];
    let count = |flag: &str| {
        rows(state)
            .iter()
            .filter(|r| r["state"] == "ok" && r["flags"].as_str().unwrap().contains(flag))
            .count()
    };
    assert_eq!(totals["over_capacity"], count("over_capacity"), "{state:#}");
    assert_eq!(
        totals["over_wait"],
        count("exceeds_wait_directive"),
        "{state:#}"
    );
    let failed = rows(state)
        .iter()
        .filter(|r| r["state"] == "failed")
        .count();
    assert_eq!(totals["failing"], failed, "{state:#}");
    let longest = rows(state)
        .iter()
        .filter_map(|r| Some((r["wait"].as_str()?.parse::<f64>().ok()?, r)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match longest {
        Some((wait, _)) => {
            let shown: f64 = totals["longest_wait"].as_str().unwrap().parse().unwrap();
            assert_eq!(shown, wait, "{state:#}");
            let queue = totals["longest_queue"].as_str().unwrap();
            assert_eq!(
                row(state, queue)["wait"]
                    .as_str()
                    .unwrap()
                    .parse::<f64>()
                    .unwrap(),
                wait,
                "the named queue has that wait: {state:#}"
            );
            let text = totals["longest_text"].as_str().unwrap();
            let name = row(state, queue)["fields"]["name"].as_str().unwrap();
            assert!(
                !text.is_empty()
                    && QUEUES
                        .iter()
                        .any(|(_, n)| text.contains(n) && name.contains(n)),
                "{text:?} names a queue with the longest wait: {state:#}"
            );
        }
        None => assert_eq!(totals["longest_wait"], "", "{state:#}"),
    }
}

#[actix_rt::test]
async fn status_page_shows_every_queue_and_updates_live() {
    let Some(chromium) = chromium() else { return };
    let screenshot = std::env::var("QUEUEWATCH_SCREENSHOT").is_ok_and(|v| v == "1");

    let mut settings = Settings::for_queues(QUEUES.iter().map(|(id, _)| *id));
    for (queue, (_, name)) in settings.queues.iter_mut().zip(QUEUES) {
        queue.name = Some(name.into());
    }
    // Port 0: the system picks one; the handle tells which.
    settings.http.bind = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    settings.poll.interval = Duration::from_secs(5);
    settings.poll.max_retries = 0;
    settings.callbacks = vec![];
    // Tight thresholds on one queue, so the totals have flags to count.
    settings.queues[0].thresholds.max_queue_depth = Some(1);
    settings.queues[0].thresholds.max_acceptable_wait = Some(Duration::from_secs(1));
    std::env::set_var(TOKEN_VAR, TOKEN);
    settings.http.auth_token_env = Some(TOKEN_VAR.into());
    let handle = QueueWatch::new(settings)
        .start()
        .await
        .expect("queuewatch starts");
    let faults = handle
        .simulator()
        .expect("in-process simulator")
        .faults()
        .clone();
    let url = format!(
        "http://{}/",
        handle.http_addr().expect("the status API listens")
    );

    // The browser blocks; the instance must keep running on this thread.
    let driven = actix_rt::task::spawn_blocking(move || {
        let mut browser = Browser::launch(&chromium);
        browser.call(true, "Page.enable", json!({}));
        browser.call(true, "Network.enable", json!({}));
        browser.call(true, "Page.navigate", json!({"url": url}));

        // 0. The page loads without the token and asks for it; a wrong one
        // is refused, the right one (typed once) shows the data.
        let asked = browser.wait_for("the sign-in form", |s| s["login"] == true);
        assert_eq!(asked["auth"], "required", "{asked:#}");
        assert!(
            rows(&asked).is_empty(),
            "no data without the token: {asked:#}"
        );
        browser.eval(r#"document.getElementById("login-token").focus()"#);
        browser.type_and_enter("not-the-token");
        let refused = browser.wait_for("the wrong token refused", |s| {
            s["login_error"].as_str().is_some_and(|e| !e.is_empty())
        });
        assert_eq!(refused["login"], true, "{refused:#}");
        browser.eval(
            r#"(() => { const t = document.getElementById("login-token"); t.value = ""; t.focus(); })()"#,
        );
        browser.type_and_enter(TOKEN);

        // 1. Every queue appears with filled values and a loaded history.
        let first = browser.wait_for("every row filled", all_rows_filled);
        assert_eq!(first["auth"], "session", "{first:#}");
        assert_eq!(first["logout"], true, "{first:#}");
        check_totals(&first);
        assert_eq!(
            browser.eval("document.cookie"),
            json!(""),
            "the session cookie is HttpOnly"
        );
        for (id, name) in QUEUES {
            let r = row(&first, id);
            let queue_cell = r["fields"]["name"].as_str().unwrap();
            assert!(
                queue_cell.contains(name) && queue_cell.contains(id),
                "{r:#}"
            );
            assert_eq!(
                r["fields"]["agents"], "\u{2014}",
                "guest_position gives no agent count: {r:#}"
            );
            assert!(
                r["flags"].as_str().unwrap().contains("availability_"),
                "{r:#}"
            );
        }
        assert_eq!(first["shown"], QUEUES.len());

        // 2. Events arrive over SSE and change rows in place, without a reload.
        browser.eval("window.__qwTestMarker = true");
        let events_before = first["events"].as_u64().unwrap();
        let later = browser.wait_for("a row updated by a new event", |s| {
            s["events"].as_u64() > Some(events_before)
                && rows(s)
                    .iter()
                    .any(|r| r["updated"] != row(&first, r["id"].as_str().unwrap())["updated"])
                && rows(s).iter().any(|r| {
                    r["points"].as_u64() > row(&first, r["id"].as_str().unwrap())["points"].as_u64()
                })
        });
        assert_eq!(later["marker"], true, "the page reloaded");
        assert_eq!(later["navigations"], 1);
        assert_eq!(later["stream"], "live");
        assert!(later["events"].as_u64().unwrap() >= 1);

        // 3. A failed poll shows its error kind, keeping the last values.
        if screenshot {
            // A few more points per sparkline make a more telling picture.
            browser.wait_for("more history", |s| {
                rows(s).iter().all(|r| r["points"].as_u64() >= Some(6))
            });
        }
        let (failing, _) = QUEUES[4];
        faults.push(FaultRule::times(Fault::ServerError { status: 503 }, 1).for_queue(failing));
        let failed = browser.wait_for("the failed poll's badge", |s| {
            row(s, failing)["state"] == "failed"
        });
        let r = row(&failed, failing);
        assert!(
            r["flags"].as_str().unwrap().contains("server_error"),
            "{r:#}"
        );
        assert_eq!(failed["totals"]["failing"], 1, "{failed:#}");
        check_totals(&failed);
        assert!(filled(&r["fields"]["position"]), "last values stay: {r:#}");
        if screenshot {
            browser.screenshot(&Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/status-page.png"));
        }
        browser.wait_for("recovery after the fault", |s| {
            row(s, failing)["state"] == "ok"
        });

        // 4. The filter narrows the table to matching names or ids.
        browser.eval(
            r#"(() => { const f = document.getElementById("filter");
                f.value = "BILL"; f.dispatchEvent(new Event("input")); })()"#,
        );
        let filtered = browser.wait_for("the filter", |s| s["shown"] == 1 && rows(s).len() == 1);
        assert_eq!(rows(&filtered)[0]["id"], QUEUES[1].0);
        browser.eval(
            r#"(() => { const f = document.getElementById("filter");
                f.value = ""; f.dispatchEvent(new Event("input")); })()"#,
        );
        browser.wait_for("the filter cleared", |s| rows(s).len() == QUEUES.len());

        // 5. Sorting by position (a header click sorts descending first).
        browser.eval(r#"document.querySelector('th[data-sort="position"] button').click()"#);
        let sorted = browser.wait_for("rows sorted by position", |s| {
            let positions: Vec<u64> = rows(s)
                .iter()
                .filter_map(|r| r["fields"]["position"].as_str()?.parse().ok())
                .collect();
            positions.len() == QUEUES.len() && positions.windows(2).all(|w| w[0] >= w[1])
        });
        let header = browser.eval(
            r#"document.querySelector('th[data-sort="position"]').getAttribute("aria-sort")"#,
        );
        assert_eq!(header, "descending", "{sorted:#}");
        check_totals(&sorted);

        // 6. A reload keeps the session: no second prompt.
        browser.call(true, "Page.reload", json!({}));
        let reloaded = browser.wait_for("the data again after a reload", |s| {
            s["marker"] != true && all_rows_filled(s)
        });
        assert_eq!(reloaded["logout"], true, "{reloaded:#}");

        // 7. No URL the page requested carried the token; the stream, the
        // paged list and the histories (only the points drawn) were asked for.
        let urls = browser.requested_urls();
        for url in &urls {
            assert!(!url.contains(TOKEN), "the token in a URL: {url}");
            assert!(!url.contains("access_token"), "{url}");
        }
        for wanted in ["/api/events", "/api/queues?limit=", "?points=120"] {
            assert!(
                urls.iter().any(|u| u.contains(wanted)),
                "no request for {wanted}: {urls:#?}"
            );
        }

        // 8. Signing out ends the session: the prompt is back, the API refuses.
        browser.eval(r#"document.getElementById("logout").click()"#);
        browser.wait_for("the sign-in form after signing out", |s| {
            s["login"] == true && s["logout"] == false
        });
        let status =
            browser.eval(r#"fetch("api/queues", {cache: "no-store"}).then(r => r.status)"#);
        assert_eq!(status, 401, "the session ended");
    });
    let outcome = tokio::time::timeout(Duration::from_secs(240), driven).await;
    handle.shutdown().await;
    std::env::remove_var(TOKEN_VAR);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(panic)) => std::panic::resume_unwind(panic.into_panic()),
        Err(_) => panic!("the browser test did not finish within 240 s"),
    }
}
