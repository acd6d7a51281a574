//! Cluster mode against a real `nats-server -js`: three `queuewatch run`
//! processes share 60 queues of one simulated Genesys through leases.
//! Every queue is polled by exactly one instance, the shares are balanced,
//! a crashed instance's queues (kill -9) are polled again within
//! `lease_ttl + interval`, and a clean stop (SIGTERM) hands its queues over
//! within one interval.

mod nats_support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use nats_support::{binary_or_skip, wait_for, wait_until, NatsServer, TempDir};
use queuewatch::simulator::{self, RequestRecord, SimulatorConfig};

const QUEUES: usize = 60;
const INTERVAL: Duration = Duration::from_secs(5);
const LEASE_TTL: Duration = Duration::from_secs(3);
/// How long the outage test keeps NATS down.
const OUTAGE: Duration = Duration::from_secs(6);

/// The tests measure takeover times: one at a time on a small machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn queue_ids() -> Vec<String> {
    queue_ids_n(QUEUES)
}

fn queue_ids_n(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("c1a50000-0000-4000-8000-{i:012x}"))
        .collect()
}

fn write_settings(
    dir: &Path,
    name: &str,
    sim_url: &str,
    nats_url: &str,
    bind: Option<u16>,
    queues: usize,
    rate: u32,
) -> std::path::PathBuf {
    let bind = bind.map_or("null".to_owned(), |port| format!("127.0.0.1:{port}"));
    let mut yaml = format!(
        "genesys:\n  environment: mypurecloud.com\n  api_url: {sim_url}\n  login_url: {sim_url}\n  \
         rate_limit_per_minute: {rate}\npoll:\n  interval: 5s\ncallbacks: []\nhttp:\n  bind: {bind}\n\
         cluster:\n  nats_url: {nats_url}\n  instance_id: {name}\n  lease_ttl: 3s\nqueues:\n"
    );
    for id in queue_ids_n(queues) {
        yaml.push_str(&format!("  - id: {id}\n"));
    }
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

struct Instance {
    child: Option<Child>,
}

impl Instance {
    fn start(
        dir: &Path,
        name: &str,
        sim_url: &str,
        nats_url: &str,
        bind: Option<u16>,
        queues: usize,
        rate: u32,
    ) -> Instance {
        let config = write_settings(dir, name, sim_url, nats_url, bind, queues, rate);
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_queuewatch"))
            .args(["run", "--config"])
            .arg(&config)
            .env("GENESYS_CLIENT_ID", simulator::DEFAULT_CLIENT_ID)
            .env("GENESYS_CLIENT_SECRET", simulator::DEFAULT_CLIENT_SECRET)
            .env(
                "RUST_LOG",
                std::env::var("QW_TEST_RUST_LOG").unwrap_or_else(|_| "queuewatch=info".into()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("queuewatch runs");
        Instance { child: Some(child) }
    }

    fn signal(&mut self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    fn wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.take().map(|mut c| c.wait().unwrap())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Instances named `names` on one simulator and one NATS (`urls`), each
/// serving its status API on a port of its own: the ports, the instances.
fn start_instances(
    dir: &Path,
    names: &[&str],
    (sim_url, nats_url): (&str, &str),
    queues: usize,
    rate: u32,
) -> (Vec<u16>, Vec<Instance>) {
    let ports: Vec<u16> = names.iter().map(|_| nats_support::free_port()).collect();
    let instances = names
        .iter()
        .zip(&ports)
        .map(|(name, port)| {
            Instance::start(dir, name, sim_url, nats_url, Some(*port), queues, rate)
        })
        .collect();
    (ports, instances)
}

/// Stops every instance with SIGTERM once a test body is done; on its
/// failure (or with `QW_TEST_DUMP`) prints their logs, and passes the
/// failure on.
fn stop_all(instances: &mut [Instance], dir: &Path, outcome: std::thread::Result<()>) {
    for instance in instances.iter_mut() {
        instance.signal("-TERM");
        instance.wait();
    }
    if let Err(panic) = outcome {
        dump_logs(dir);
        std::panic::resume_unwind(panic);
    }
    if std::env::var_os("QW_TEST_DUMP").is_some() {
        dump_logs(dir);
    }
}

/// Successful queue polls: (time, queue, token).
fn polls(records: &[RequestRecord]) -> Vec<(SystemTime, String, String)> {
    let mut out: Vec<_> = records
        .iter()
        .filter(|r| r.status == 200 && !r.queue_ids.is_empty())
        .flat_map(|r| {
            let token = r.token.clone().unwrap_or_default();
            r.queue_ids
                .iter()
                .map(move |q| (r.at, q.clone(), token.clone()))
        })
        .collect();
    out.sort();
    out
}

/// queue -> tokens that polled it in [from, to).
fn owners(
    polls: &[(SystemTime, String, String)],
    from: SystemTime,
    to: SystemTime,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (at, queue, token) in polls {
        if *at >= from && *at < to {
            map.entry(queue.clone()).or_default().insert(token.clone());
        }
    }
    map
}

/// Longest time from `since` until every queue in `queues` was polled by a token other than `gone`.
fn takeover(
    polls: &[(SystemTime, String, String)],
    queues: &BTreeSet<String>,
    gone: &str,
    since: SystemTime,
) -> Option<Duration> {
    let mut worst = Duration::ZERO;
    for queue in queues {
        let first = polls
            .iter()
            .find(|(at, q, token)| *at >= since && q == queue && token != gone)?;
        worst = worst.max(first.0.duration_since(since).unwrap_or_default());
    }
    Some(worst)
}

fn dump_logs(dir: &Path) {
    for name in ["node-a", "node-b", "node-c", "node-x", "node-y"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(format!("{name}.log"))) {
            let filter = std::env::var("QW_TEST_GREP").unwrap_or_default();
            let tail: Vec<&str> = text
                .lines()
                .rev()
                .filter(|l| l.contains(filter.as_str()))
                .take(40)
                .collect();
            eprintln!("--- {name}.log (last lines)");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

#[actix_rt::test]
async fn three_instances_share_sixty_queues_and_take_over_on_failure() {
    let test = "three_instances_share_sixty_queues_and_take_over_on_failure";
    let Some(binary) = binary_or_skip(test) else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let store = TempDir::new("nats-cluster");
    let dir = TempDir::new("cluster-run");
    let server = NatsServer::start(&binary, &store.0);
    let mut config = SimulatorConfig::with_queues(queue_ids());
    config.rate_limit_per_minute = Some(1200);
    config.request_log_capacity = 200_000;
    let sim = simulator::start(config, ([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let (sim_url, nats_url) = (sim.base_url(), server.url());
    // Each serves its status API (owned queues in /metrics); node-c's
    // /api/queues is checked too.
    let (ports, mut instances) = start_instances(
        &dir.0,
        &["node-a", "node-b", "node-c"],
        (&sim_url, &nats_url),
        QUEUES,
        1000,
    );
    let port = ports[2];

    let result = std::panic::AssertUnwindSafe(async {
        // Settled: each owns its share. Then every queue is polled twice.
        let settled = wait_until(
            "each instance owns 20 queues",
            Duration::from_secs(30),
            async || ports.iter().all(|p| owned(*p) == Some(QUEUES as u64 / 3)),
        )
        .await;
        let from = SystemTime::now();
        wait_until("every queue polled twice", INTERVAL * 3, async || {
            let all = polls(&sim.requests());
            let mut count: HashMap<&str, usize> = HashMap::new();
            for (at, queue, _) in &all {
                if *at >= from {
                    *count.entry(queue.as_str()).or_default() += 1;
                }
            }
            count.len() == QUEUES && count.values().all(|n| *n >= 2)
        })
        .await;
        let to = SystemTime::now();
        let all = polls(&sim.requests());
        let steady = owners(&all, from, to);
        assert_eq!(steady.len(), QUEUES, "every queue is polled");
        let mut share: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (queue, tokens) in &steady {
            assert_eq!(
                tokens.len(),
                1,
                "queue {queue} polled by {} instances",
                tokens.len()
            );
            share
                .entry(tokens.iter().next().unwrap().clone())
                .or_default()
                .insert(queue.clone());
        }
        assert_eq!(share.len(), 3, "three instances poll");
        for (token, queues) in &share {
            assert!(
                (16..=24).contains(&queues.len()),
                "balanced within 20%: {} queues on {}…",
                queues.len(),
                &token[..8.min(token.len())]
            );
        }
        let sizes: Vec<usize> = share.values().map(BTreeSet::len).collect();
        let listed: serde_json::Value =
            serde_json::from_str(&http_get(port, "/api/queues")).unwrap();
        let listed = listed.as_array().expect("a list of queues").len();
        assert!(
            sizes.contains(&listed),
            "/api/queues lists the {listed} queues node-c owns ({sizes:?})"
        );

        // Kill one instance (-9): a crash, no lease released.
        instances[0].signal("-KILL");
        let killed_at = SystemTime::now();
        instances[0].wait();
        // node-a's token is the one whose polls stop; wait until its queues
        // were all polled again by the others.
        let (_, crash_takeover) = wait_for(
            "every queue of the killed instance is polled again",
            LEASE_TTL + INTERVAL + Duration::from_secs(10),
            async || handed_over(&sim.requests(), &share, killed_at),
        )
        .await;

        // Clean stop (SIGTERM) of a second instance, once the two left poll
        // every queue, each queue by one of them (over a little more than
        // an interval, so that each queue's last poll is in it).
        let recent = wait_for(
            "every queue is polled by exactly one of the two left",
            INTERVAL * 3,
            async || {
                let now = SystemTime::now();
                let recent = owners(
                    &polls(&sim.requests()),
                    now - INTERVAL - Duration::from_millis(500),
                    now,
                );
                let steady = recent.len() == QUEUES && recent.values().all(|t| t.len() == 1);
                steady.then_some(recent)
            },
        )
        .await;
        let mut by_token: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (queue, tokens) in &recent {
            by_token
                .entry(tokens.iter().next().unwrap().clone())
                .or_default()
                .insert(queue.clone());
        }
        let two_sizes: Vec<usize> = by_token.values().map(BTreeSet::len).collect();
        instances[1].signal("-TERM");
        let stopped_at = SystemTime::now();
        let status = instances[1].wait().unwrap();
        assert!(status.success(), "clean exit: {status}");
        let (_, clean_takeover) = wait_for(
            "every queue of the stopped instance is polled again",
            INTERVAL + Duration::from_secs(10),
            async || handed_over(&sim.requests(), &by_token, stopped_at),
        )
        .await;

        // Never two instances within one interval: consecutive polls of a
        // queue by different instances are an interval apart.
        let all = polls(&sim.requests());
        let mut last: HashMap<&str, (SystemTime, &str)> = HashMap::new();
        let mut closest = Duration::MAX;
        for (at, queue, token) in &all {
            if let Some((prev_at, prev_token)) = last.get(queue.as_str()) {
                if prev_token != token {
                    closest = closest.min(at.duration_since(*prev_at).unwrap_or_default());
                }
            }
            last.insert(queue, (*at, token));
        }
        eprintln!(
            "settled {settled:?} after start; shares {sizes:?}, then {two_sizes:?}; \
             crash takeover {crash_takeover:?} \
             (bound {:?}); clean handover {clean_takeover:?} (bound {INTERVAL:?}); \
             closest polls of one queue by two instances {closest:?}",
            LEASE_TTL + INTERVAL
        );
        assert!(
            closest >= INTERVAL - Duration::from_millis(600),
            "a queue was polled by two instances {closest:?} apart"
        );
        assert!(
            crash_takeover <= LEASE_TTL + INTERVAL + Duration::from_millis(500),
            "crash takeover took {crash_takeover:?}"
        );
        assert!(
            clean_takeover <= INTERVAL + Duration::from_millis(500),
            "clean handover took {clean_takeover:?}"
        );
        // node-c, the last one, owns everything and says so.
        wait_until(
            "node-c owns every queue",
            Duration::from_secs(5),
            async || owned(port) == Some(QUEUES as u64),
        )
        .await;
        let metrics = http_get(port, "/metrics");
        let acquired = metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix("queuewatch_cluster_lease_changes_total{change=\"acquired\"} ")
            })
            .and_then(|v| v.trim().parse::<u64>().ok())
            .expect("lease changes in /metrics");
        assert!(
            acquired >= QUEUES as u64,
            "node-c acquired {acquired} leases"
        );
    });
    let outcome = futures_util::FutureExt::catch_unwind(result).await;
    stop_all(&mut instances, &dir.0, outcome);
}

/// A plain HTTP/1.0 GET on 127.0.0.1:`port`; the body.
fn http_get(port: u16, path: &str) -> String {
    try_http_get(port, path).expect("the status API answers")
}

/// [`http_get`], `None` when nothing answers (yet).
fn try_http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
}

/// `queuewatch_cluster_owned_queues` of the instance serving on `port`.
fn owned(port: u16) -> Option<u64> {
    gauge(port, "queuewatch_cluster_owned_queues")
}

/// A gauge of the instance serving on `port`.
fn gauge<T: std::str::FromStr>(port: u16, name: &str) -> Option<T> {
    let prefix = format!("{name} ");
    try_http_get(port, "/metrics")?
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))?
        .trim()
        .parse()
        .ok()
}

/// Once the instance that stopped at `since` is known (the one token of
/// `shares` that polls no more while the others do) and each of its queues
/// was polled again by another: its token and the longest time that took.
fn handed_over(
    records: &[RequestRecord],
    shares: &HashMap<String, BTreeSet<String>>,
    since: SystemTime,
) -> Option<(String, Duration)> {
    let all = polls(records);
    let after = owners(&all, since + Duration::from_secs(1), SystemTime::now());
    let active: BTreeSet<&String> = after.values().flatten().collect();
    let gone: Vec<&String> = shares.keys().filter(|t| !active.contains(t)).collect();
    let [gone] = gone.as_slice() else {
        return None;
    };
    if active.len() != shares.len() - 1 {
        return None;
    }
    let worst = takeover(&all, &shares[*gone], gone, since)?;
    Some(((*gone).clone(), worst))
}

#[actix_rt::test]
async fn a_nats_outage_pauses_polling_and_ownership_recovers() {
    let test = "a_nats_outage_pauses_polling_and_ownership_recovers";
    let Some(binary) = binary_or_skip(test) else {
        return;
    };
    let _serial = SERIAL.lock().await;
    const N: usize = 20;
    let store = TempDir::new("nats-cluster-outage");
    let dir = TempDir::new("cluster-outage-run");
    let mut server = NatsServer::start(&binary, &store.0);
    let mut config = SimulatorConfig::with_queues(queue_ids_n(N));
    config.rate_limit_per_minute = Some(1200);
    config.request_log_capacity = 100_000;
    let sim = simulator::start(config, ([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let (sim_url, nats_url) = (sim.base_url(), server.url());
    let (ports, mut instances) = start_instances(
        &dir.0,
        &["node-x", "node-y"],
        (&sim_url, &nats_url),
        N,
        1000,
    );
    let shares_are = |n: u64| {
        let ports = ports.clone();
        move || ports.iter().all(|p| owned(*p) == Some(n))
    };
    let result = std::panic::AssertUnwindSafe(async {
        let balanced = shares_are(N as u64 / 2);
        wait_until(
            "each instance owns 10 queues",
            Duration::from_secs(30),
            async || balanced(),
        )
        .await;
        server.kill();
        let killed_at = SystemTime::now();
        // Past lease_ttl / 3 without a heartbeat, both stop polling.
        let fenced = shares_are(0);
        let fence = wait_until("both instances stop polling", LEASE_TTL, async || fenced()).await;
        // The outage lasts 6 s (the fault injected, not a wait for anything).
        tokio::time::sleep(OUTAGE.saturating_sub(fence)).await;
        server.restart();
        let restarted_at = SystemTime::now();
        wait_until(
            "each instance owns 10 queues again",
            Duration::from_secs(30),
            async || balanced(),
        )
        .await;
        let rebalanced = restarted_at.elapsed().unwrap_or_default();
        let settled_at = SystemTime::now();
        wait_until("every queue is polled again", INTERVAL * 2, async || {
            owners(&polls(&sim.requests()), settled_at, SystemTime::now()).len() == N
        })
        .await;
        let all = polls(&sim.requests());
        let paused = owners(&all, killed_at + Duration::from_secs(3), restarted_at);
        assert!(
            paused.is_empty(),
            "no instance polls while ownership cannot be proven: {} queue(s) polled",
            paused.len()
        );
        let recovered = owners(&all, settled_at, SystemTime::now());
        assert_eq!(recovered.len(), N, "every queue is polled again");
        let mut per_token: HashMap<&String, usize> = HashMap::new();
        for (queue, tokens) in &recovered {
            assert_eq!(
                tokens.len(),
                1,
                "queue {queue} polled by {} instances",
                tokens.len()
            );
            *per_token.entry(tokens.iter().next().unwrap()).or_default() += 1;
        }
        let shares: Vec<usize> = per_token.values().copied().collect();
        assert_eq!(shares.len(), 2, "both instances poll again: {shares:?}");
        assert!(shares.iter().all(|s| (8..=12).contains(s)), "{shares:?}");
        let resumed = all
            .iter()
            .find(|(at, _, _)| *at >= restarted_at)
            .map(|(at, _, _)| at.duration_since(restarted_at).unwrap_or_default());
        eprintln!(
            "fenced {fence:?} after the kill; after NATS came back, polling resumed in \
             {resumed:?}, shares {shares:?} in {rebalanced:?}"
        );
    });
    let outcome = futures_util::FutureExt::catch_unwind(result).await;
    stop_all(&mut instances, &dir.0, outcome);
}

/// Each instance has its own token and budget: its interval stretch follows
/// the queues it owns, and grows when it takes over a dead one's share.
#[actix_rt::test]
async fn each_instances_stretch_follows_the_queues_it_owns() {
    let test = "each_instances_stretch_follows_the_queues_it_owns";
    let Some(binary) = binary_or_skip(test) else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let store = TempDir::new("nats-stretch");
    let dir = TempDir::new("stretch-run");
    let server = NatsServer::start(&binary, &store.0);
    // 30 queues at 5 s; a budget of 100 a minute per instance (97 with
    // headroom): 10 owned need 120 (x1.24), 15 owned need 180 (x1.86).
    const N: usize = 30;
    let config = SimulatorConfig::with_queues(queue_ids_n(N));
    let sim = simulator::start(config, ([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let (sim_url, nats_url) = (sim.base_url(), server.url());
    let (ports, mut instances) = start_instances(
        &dir.0,
        &["node-a", "node-b", "node-c"],
        (&sim_url, &nats_url),
        N,
        100,
    );
    let stretch_near = |port: u16, expected: f64| {
        gauge::<f64>(port, "queuewatch_interval_stretch")
            .is_some_and(|s| (s - expected).abs() < 0.02)
    };
    let result = std::panic::AssertUnwindSafe(async {
        wait_until(
            "each owns 10, stretched x1.24",
            Duration::from_secs(30),
            async || {
                ports
                    .iter()
                    .all(|p| owned(*p) == Some(10) && stretch_near(*p, 120.0 / 97.0))
            },
        )
        .await;
        instances[2].signal("-KILL");
        instances[2].wait();
        wait_until(
            "the survivors own 15 each, stretched x1.86",
            LEASE_TTL + INTERVAL * 4,
            async || {
                ports[..2]
                    .iter()
                    .all(|p| owned(*p) == Some(15) && stretch_near(*p, 180.0 / 97.0))
            },
        )
        .await;
    });
    let outcome = futures_util::FutureExt::catch_unwind(result).await;
    stop_all(&mut instances, &dir.0, outcome);
    sim.stop().await;
}
