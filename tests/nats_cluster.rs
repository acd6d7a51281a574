#![cfg(feature = "simulator")]
//! Cluster mode against a real `nats-server -js`: three `queuewatch run`
//! processes share 60 queues of one simulated Genesys through leases.
//! Every queue is polled by exactly one instance, the shares are balanced,
//! a crashed instance's queues (kill -9) are polled again within
//! `lease_ttl + interval`, and a clean stop (SIGTERM) hands its queues over
//! within one interval.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use queuewatch::simulator::{self, RequestRecord, SimulatorConfig};
use support::bin::{status_api_addr, BIN};
use support::http::{get as http_get, try_get};
use support::metrics::sample;
use support::nats::{binary_or_skip, NatsServer};
use support::sim::RunningSim;
use support::wait::{eventually, eventually_some};
use support::TempDir;

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
    support::queue_ids(0xc1a5_0000, n)
}

/// A `queuewatch run` child; killed on drop.
struct Instance {
    child: Option<Child>,
}

impl Instance {
    /// Writes `name`'s settings (its status API on a port the system picks)
    /// and starts it, logging to `name.log` in `dir`.
    fn start(
        dir: &Path,
        name: &str,
        sim_url: &str,
        nats_url: &str,
        queues: usize,
        rate: u32,
    ) -> Instance {
        let mut yaml = format!(
            "genesys:\n  environment: mypurecloud.com\n  api_url: {sim_url}\n  login_url: {sim_url}\n  \
             rate_limit_per_minute: {rate}\npoll:\n  interval: 5s\ncallbacks: []\nhttp:\n  bind: 127.0.0.1:0\n\
             cluster:\n  nats_url: {nats_url}\n  instance_id: {name}\n  lease_ttl: 3s\nqueues:\n"
        );
        for id in queue_ids_n(queues) {
            yaml.push_str(&format!("  - id: {id}\n"));
        }
        let config = dir.join(format!("{name}.yaml"));
        std::fs::write(&config, yaml).unwrap();
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        // Whatever else is logged, the status API's address is.
        let filter = std::env::var("QW_TEST_RUST_LOG").unwrap_or_else(|_| "queuewatch=info".into());
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .env("GENESYS_CLIENT_ID", simulator::DEFAULT_CLIENT_ID)
            .env("GENESYS_CLIENT_SECRET", simulator::DEFAULT_CLIENT_SECRET)
            .env(
                "RUST_LOG",
                format!("{filter},queuewatch::runtime::builder=info"),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("queuewatch runs");
        Instance { child: Some(child) }
    }

    fn signal(&mut self, signal: &str) {
        if let Some(child) = &self.child {
            support::bin::signal(child, signal);
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
/// serving its status API on a port of its own: the addresses of those,
/// the instances.
async fn start_instances(
    dir: &Path,
    names: &[&str],
    (sim_url, nats_url): (&str, &str),
    queues: usize,
    rate: u32,
) -> (Vec<SocketAddr>, Vec<Instance>) {
    let instances: Vec<Instance> = names
        .iter()
        .map(|name| Instance::start(dir, name, sim_url, nats_url, queues, rate))
        .collect();
    let mut addrs = Vec::new();
    for name in names {
        let log = dir.join(format!("{name}.log"));
        let addr = eventually_some(
            &format!("{name} logs where its status API listens"),
            Duration::from_secs(30),
            async || {
                std::fs::read_to_string(&log)
                    .ok()?
                    .lines()
                    .find_map(status_api_addr)
            },
        )
        .await;
        addrs.push(addr);
    }
    (addrs, instances)
}

/// One cluster test's world: a NATS server, a simulator, and `queuewatch
/// run` instances on both; one such test at a time.
struct Cluster {
    /// The instances' status APIs, in the order of their names.
    apis: Vec<SocketAddr>,
    instances: Vec<Instance>,
    sim: RunningSim,
    server: NatsServer,
    dir: TempDir,
    _store: TempDir,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl Cluster {
    /// Instances named `names`, each polling `queues` queues of a simulator
    /// of `config` at `rate` requests a minute; `None` (after a notice)
    /// without a nats-server.
    async fn start(
        test: &str,
        config: SimulatorConfig,
        names: &[&str],
        queues: usize,
        rate: u32,
    ) -> Option<Cluster> {
        let binary = binary_or_skip(test)?;
        let serial = SERIAL.lock().await;
        let store = TempDir::new("nats-cluster");
        let dir = TempDir::new("cluster-run");
        let server = NatsServer::start(&binary, &store.0);
        let sim = support::sim::start(config).await;
        let urls = (sim.base_url(), server.url());
        let (apis, instances) =
            start_instances(&dir.0, names, (&urls.0, &urls.1), queues, rate).await;
        Some(Cluster {
            apis,
            instances,
            sim,
            server,
            dir,
            _store: store,
            _serial: serial,
        })
    }

    /// Runs the test's `body`, then [`stop_all`].
    async fn run(mut self, body: impl AsyncFnOnce(&mut Cluster)) {
        let outcome = AssertUnwindSafe(body(&mut self)).catch_unwind().await;
        stop_all(&mut self.instances, &self.dir.0, outcome);
    }
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
    let mut config = SimulatorConfig::with_queues(queue_ids());
    config.rate_limit_per_minute = Some(1200);
    config.request_log_capacity = 200_000;
    // Each serves its status API (owned queues in /metrics); node-c's
    // /api/queues is checked too.
    let names = ["node-a", "node-b", "node-c"];
    let Some(cluster) = Cluster::start(test, config, &names, QUEUES, 1000).await else {
        return;
    };
    cluster
        .run(async |c| {
            let Cluster {
                apis,
                instances,
                sim,
                ..
            } = c;
            let api = apis[2];
            // Settled: each owns its share. Then every queue is polled twice.
            let settled = eventually(
                "each instance owns 20 queues",
                Duration::from_secs(30),
                async || apis.iter().all(|p| owned(*p) == Some(QUEUES as u64 / 3)),
            )
            .await;
            let from = SystemTime::now();
            eventually("every queue polled twice", INTERVAL * 3, async || {
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
                serde_json::from_str(&http_get(api, "/api/queues")).unwrap();
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
            let (_, crash_takeover) = eventually_some(
                "every queue of the killed instance is polled again",
                LEASE_TTL + INTERVAL + Duration::from_secs(10),
                async || handed_over(&sim.requests(), &share, killed_at),
            )
            .await;

            // Clean stop (SIGTERM) of a second instance, once the two left poll
            // every queue, each queue by one of them (over a little more than
            // an interval, so that each queue's last poll is in it).
            let recent = eventually_some(
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
            let (_, clean_takeover) = eventually_some(
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
            eventually(
                "node-c owns every queue",
                Duration::from_secs(5),
                async || owned(api) == Some(QUEUES as u64),
            )
            .await;
            let metrics = http_get(api, "/metrics");
            let acquired: u64 = sample(
                &metrics,
                "queuewatch_cluster_lease_changes_total{change=\"acquired\"}",
            )
            .expect("lease changes in /metrics");
            assert!(
                acquired >= QUEUES as u64,
                "node-c acquired {acquired} leases"
            );
        })
        .await;
}

/// `queuewatch_cluster_owned_queues` of the instance serving on `addr`.
fn owned(addr: SocketAddr) -> Option<u64> {
    gauge(addr, "queuewatch_cluster_owned_queues")
}

/// A gauge of the instance serving on `addr`.
fn gauge<T: std::str::FromStr>(addr: SocketAddr, name: &str) -> Option<T> {
    sample(&try_get(addr, "/metrics")?, name)
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
    const N: usize = 20;
    let mut config = SimulatorConfig::with_queues(queue_ids_n(N));
    config.rate_limit_per_minute = Some(1200);
    config.request_log_capacity = 100_000;
    let names = ["node-x", "node-y"];
    let Some(cluster) = Cluster::start(test, config, &names, N, 1000).await else {
        return;
    };
    cluster
        .run(async |c| {
            let Cluster {
                apis, sim, server, ..
            } = c;
            let shares_are = |n: u64| {
                let apis = apis.clone();
                move || apis.iter().all(|p| owned(*p) == Some(n))
            };
            let balanced = shares_are(N as u64 / 2);
            eventually(
                "each instance owns 10 queues",
                Duration::from_secs(30),
                async || balanced(),
            )
            .await;
            server.kill();
            let killed_at = SystemTime::now();
            // Past lease_ttl / 3 without a heartbeat, both stop polling.
            let fenced = shares_are(0);
            let fence =
                eventually("both instances stop polling", LEASE_TTL, async || fenced()).await;
            // Not a synchronisation: the fault itself. NATS stays down for
            // OUTAGE in all (well past lease_ttl), a span of real time the
            // instances must ride out fenced; nothing announces its end.
            tokio::time::sleep(OUTAGE.saturating_sub(fence)).await;
            server.restart();
            let restarted_at = SystemTime::now();
            eventually(
                "each instance owns 10 queues again",
                Duration::from_secs(30),
                async || balanced(),
            )
            .await;
            let rebalanced = restarted_at.elapsed().unwrap_or_default();
            let settled_at = SystemTime::now();
            eventually("every queue is polled again", INTERVAL * 2, async || {
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
        })
        .await;
}

/// Each instance has its own token and budget: its interval stretch follows
/// the queues it owns, and grows when it takes over a dead one's share.
#[actix_rt::test]
async fn each_instances_stretch_follows_the_queues_it_owns() {
    let test = "each_instances_stretch_follows_the_queues_it_owns";
    // 30 queues at 5 s; a budget of 100 a minute per instance (97 with
    // headroom): 10 owned need 120 (x1.24), 15 owned need 180 (x1.86).
    const N: usize = 30;
    let config = SimulatorConfig::with_queues(queue_ids_n(N));
    let names = ["node-a", "node-b", "node-c"];
    let Some(cluster) = Cluster::start(test, config, &names, N, 100).await else {
        return;
    };
    let stretch_near = |api: SocketAddr, expected: f64| {
        gauge::<f64>(api, "queuewatch_interval_stretch")
            .is_some_and(|s| (s - expected).abs() < 0.02)
    };
    cluster
        .run(async |c| {
            let Cluster {
                apis, instances, ..
            } = c;
            eventually(
                "each owns 10, stretched x1.24",
                Duration::from_secs(30),
                async || {
                    apis.iter()
                        .all(|p| owned(*p) == Some(10) && stretch_near(*p, 120.0 / 97.0))
                },
            )
            .await;
            instances[2].signal("-KILL");
            instances[2].wait();
            eventually(
                "the survivors own 15 each, stretched x1.86",
                LEASE_TTL + INTERVAL * 4,
                async || {
                    apis[..2]
                        .iter()
                        .all(|p| owned(*p) == Some(15) && stretch_near(*p, 180.0 / 97.0))
                },
            )
            .await;
        })
        .await;
}
