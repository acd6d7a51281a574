#![cfg(feature = "simulator")]
//! The push source (`poll.source: notifications`) against the simulator's
//! Notifications API over loopback: channels, push, fallback, swaps,
//! watchdog, refused topics, the channel limit, the one budget and
//! wait-time polling. Timing knobs are shortened (heartbeats, lifetimes,
//! the watchdog); every wait is on the instance's events or the
//! simulator's state, with a deadline.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use queuewatch::config::{Settings, Source, WaitTime};
use queuewatch::simulator::{Fault, FaultRule, Simulator, SimulatorConfig};
use queuewatch::{Event, Handle, PushTuning, QueueWatch};
use support::wait::{eventually, eventually_some};

const TAG: u32 = 0x9005;
const LONG: Duration = Duration::from_secs(40);

/// What one event of one queue said.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    attempts: u32,
    waiting: Option<u32>,
    wait: Option<f64>,
    age_ms: Option<f64>,
    failed: bool,
}

impl Seen {
    /// An event made from pushed data, without a request.
    fn pushed(&self) -> bool {
        !self.failed && self.attempts == 0 && self.waiting.is_some()
    }
}

/// Every event of an instance, by queue, gathered in the background.
#[derive(Clone, Default)]
struct Tracker {
    by_queue: Arc<Mutex<HashMap<String, Vec<Seen>>>>,
}

impl Tracker {
    fn start(handle: &Handle) -> Tracker {
        let tracker = Tracker::default();
        let sink = tracker.by_queue.clone();
        let mut stream = handle.event_stream();
        actix_rt::spawn(async move {
            loop {
                match stream.recv().await {
                    Ok(json) => {
                        let event: Event = serde_json::from_str(&json).expect("event JSON");
                        let seen = match &event {
                            Event::Poll(e) => Seen {
                                at: Instant::now(),
                                attempts: e.attempts,
                                waiting: e.waiting,
                                wait: e.estimated_wait_seconds,
                                age_ms: e.data_age_ms,
                                failed: false,
                            },
                            Event::PollFailed(e) => Seen {
                                at: Instant::now(),
                                attempts: e.attempts,
                                waiting: None,
                                wait: None,
                                age_ms: None,
                                failed: true,
                            },
                        };
                        let mut map = sink.lock().unwrap();
                        map.entry(event.queue_id().to_owned())
                            .or_default()
                            .push(seen);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        panic!("the tracker lagged by {n} events")
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        tracker
    }

    fn with<T>(&self, f: impl FnOnce(&HashMap<String, Vec<Seen>>) -> T) -> T {
        f(&self.by_queue.lock().unwrap())
    }

    /// The events of `queue` since `since`.
    fn since(&self, queue: &str, since: Instant) -> Vec<Seen> {
        self.with(|map| {
            map.get(queue)
                .map(|all| all.iter().filter(|s| s.at >= since).cloned().collect())
                .unwrap_or_default()
        })
    }

    /// Whether every one of `queues` had a pushed event since `since`.
    fn all_pushed_since(&self, queues: &[String], since: Instant) -> bool {
        self.with(|map| {
            queues.iter().all(|q| {
                map.get(q)
                    .is_some_and(|all| all.iter().any(|s| s.at >= since && s.pushed()))
            })
        })
    }
}

struct Setup {
    queues: usize,
    interval: Duration,
    wait_time: WaitTime,
    /// `genesys.rate_limit_per_minute`.
    budget: u32,
    tuning: PushTuning,
    sim: SimulatorConfig,
}

impl Setup {
    fn new(queues: usize) -> Setup {
        let mut sim = SimulatorConfig::with_queues(support::queue_ids(TAG, queues));
        sim.notifications.heartbeat_period = Duration::from_millis(300);
        sim.notifications.publish_period = Duration::from_millis(250);
        Setup {
            queues,
            interval: Duration::from_secs(1),
            wait_time: WaitTime::Off,
            budget: 300,
            tuning: PushTuning {
                watchdog: Duration::from_secs(3),
                ping_idle: Duration::from_millis(500),
                min_life: Duration::from_secs(1),
                backoff: queuewatch::ExponentialBackoff::try_new(
                    Duration::from_millis(50),
                    Duration::from_millis(500),
                )
                .expect("backoff"),
                ..PushTuning::default()
            },
            sim,
        }
    }

    async fn start(self) -> (Handle, Tracker, Vec<String>) {
        let ids = support::queue_ids(TAG, self.queues);
        let mut settings = Settings::for_queues(ids.clone());
        settings.poll.source = Source::Notifications;
        settings.poll.interval = self.interval;
        settings.poll.wait_time = self.wait_time;
        settings.poll.reconcile_interval = Duration::from_secs(600);
        settings.genesys.rate_limit_per_minute = self.budget;
        settings.http.bind = None;
        // The events are read from the stream; no callback is needed.
        settings.callbacks = Vec::new();
        let handle = QueueWatch::new(settings)
            .simulator(self.sim)
            .push_tuning(self.tuning)
            .start()
            .await
            .expect("queuewatch starts");
        let tracker = Tracker::start(&handle);
        (handle, tracker, ids)
    }
}

fn sim(handle: &Handle) -> &Simulator {
    handle.simulator().expect("in-process simulator")
}

/// Waits until every queue's events carry pushed data.
async fn all_on_push(tracker: &Tracker, ids: &[String]) -> Instant {
    let since = Instant::now();
    eventually("every queue on push", LONG, async || {
        tracker.all_pushed_since(ids, since)
    })
    .await;
    Instant::now()
}

/// Waits until `channels` channels have a socket and every queue is on push.
async fn settled(sim: &Simulator, tracker: &Tracker, ids: &[String], channels: usize) {
    eventually(
        &format!("{channels} channel(s) connected"),
        LONG,
        async || connected(sim).len() == channels,
    )
    .await;
    all_on_push(tracker, ids).await;
}

/// The simulator's channels with a socket.
fn connected(sim: &Simulator) -> Vec<queuewatch::simulator::ChannelInfo> {
    sim.channels().into_iter().filter(|c| c.connected).collect()
}

fn api_requests_since(sim: &Simulator, since: SystemTime) -> Vec<String> {
    sim.requests()
        .into_iter()
        .filter(|r| r.at >= since && r.path.starts_with("/api/"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[actix_rt::test]
async fn pushed_data_reaches_every_queue_of_three_channels() {
    let (handle, tracker, ids) = Setup::new(2500).start().await;
    let sim = sim(&handle);
    eventually("3 channels subscribed", LONG, async || {
        let channels = connected(sim);
        channels.len() == 3 && channels.iter().map(|c| c.topics).sum::<usize>() == 2500
    })
    .await;
    let mut topics: Vec<usize> = connected(sim).iter().map(|c| c.topics).collect();
    topics.sort_unstable();
    assert_eq!(topics, [500, 1000, 1000]);
    all_on_push(&tracker, &ids).await;

    // Steady state: no REST request at all (reconciles are 10 min apart).
    let quiet_from = SystemTime::now();
    let t0 = Instant::now();
    // A change reaches the queue's next events.
    let queue = &ids[1234];
    assert!(sim.pin_waiting(queue, Some(77)));
    eventually("the pinned count in an event", LONG, async || {
        tracker
            .since(queue, t0)
            .iter()
            .any(|s| s.pushed() && s.waiting == Some(77))
    })
    .await;
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "a change took {took:?} to reach an event"
    );
    assert_eq!(api_requests_since(sim, quiet_from), Vec::<String>::new());
    // Every tick an event: over 3 s, each queue had at least 2 events.
    let from = Instant::now();
    eventually("3 more ticks", LONG, async || {
        from.elapsed() > Duration::from_secs(3)
    })
    .await;
    let starved: Vec<&String> = ids
        .iter()
        .filter(|q| tracker.since(q, from).len() < 2)
        .collect();
    assert!(
        starved.is_empty(),
        "queues without events: {}",
        starved.len()
    );
    let ages: Vec<f64> = tracker.with(|map| {
        map.values()
            .flat_map(|all| all.iter().filter(|s| s.at >= from))
            .filter_map(|s| s.age_ms)
            .collect()
    });
    assert!(!ages.is_empty());
    assert_eq!(api_requests_since(sim, quiet_from), Vec::<String>::new());
    handle.shutdown().await;
}

#[actix_rt::test]
async fn a_dropped_socket_falls_back_to_polling_and_comes_back() {
    let mut setup = Setup::new(150);
    setup.tuning.topics_per_channel = 50;
    let (handle, tracker, ids) = setup.start().await;
    let sim = sim(&handle);
    settled(sim, &tracker, &ids, 3).await;
    let channels = connected(sim);
    let victim = channels[0].id.clone();
    let others: BTreeSet<String> = channels[1..].iter().map(|c| c.id.clone()).collect();

    // The channel calls fail for a while: the slot cannot come back at once.
    let outage = FaultRule::times(Fault::ServerError { status: 503 }, 6)
        .for_path_containing("/notifications/");
    sim.faults().push(outage);
    let dropped = Instant::now();
    assert!(sim.drop_socket(&victim));
    // Some queues poll (attempts >= 1) within the watchdog bound.
    eventually("fallback polls", LONG, async || {
        tracker.with(|map| {
            map.values()
                .any(|all| all.iter().any(|s| s.at >= dropped && s.attempts >= 1))
        })
    })
    .await;
    assert!(dropped.elapsed() < Duration::from_secs(3) + Duration::from_secs(2));
    let fell: BTreeSet<String> = tracker.with(|map| {
        map.iter()
            .filter(|(_, all)| all.iter().any(|s| s.at >= dropped && s.attempts >= 1))
            .map(|(q, _)| q.clone())
            .collect()
    });
    assert!(
        fell.len() <= 50,
        "{} queues fell back, one channel has 50",
        fell.len()
    );
    // Back on push: reconnected, resubscribed, reconciled.
    let back = all_on_push(&tracker, &ids).await;
    eventually("3 channels again", LONG, async || connected(sim).len() == 3).await;
    let now: BTreeSet<String> = connected(sim).iter().map(|c| c.id.clone()).collect();
    assert!(others.is_subset(&now), "the other channels were untouched");
    // No tick without an event: no queue went quiet for two intervals.
    for queue in &ids {
        let seen = tracker.since(queue, dropped);
        let gaps = seen.windows(2).map(|w| w[1].at - w[0].at);
        let worst = gaps.max().unwrap_or_default();
        assert!(
            worst < Duration::from_millis(2500),
            "{queue}: a {worst:?} gap"
        );
        assert!(seen.iter().any(|s| s.at <= back));
    }
    handle.shutdown().await;
}

#[actix_rt::test]
async fn a_failed_set_up_keeps_its_channel() {
    // Room for two channels: a set-up that lost the channel it had taken
    // would leave a phantom in use each time, and two leave none free.
    let mut setup = Setup::new(10);
    setup.tuning.max_channels = 2;
    let (handle, tracker, ids) = setup.start().await;
    let sim = sim(&handle);
    settled(sim, &tracker, &ids, 1).await;
    let channel = connected(sim)[0].id.clone();

    // The socket drops, and the next four subscription calls fail: four
    // set-ups in a row take a channel, connect it and fail.
    let since = SystemTime::now();
    let outage = FaultRule::times(Fault::ServerError { status: 503 }, 4)
        .for_path_containing("/subscriptions");
    sim.faults().push(outage);
    assert!(sim.drop_socket(&channel));
    eventually("the four failed subscriptions", LONG, async || {
        sim.requests()
            .iter()
            .filter(|r| r.at >= since && r.status == 503)
            .count()
            == 4
    })
    .await;
    // Back on push, on the same channel: nothing was created or evicted.
    settled(sim, &tracker, &ids, 1).await;
    assert_eq!(connected(sim)[0].id, channel);
    let stats = sim.notification_stats();
    assert_eq!(stats.channels_created, 1);
    assert_eq!(stats.channels_evicted, 0);
    handle.shutdown().await;
}

/// Waits for every queue on push, then checks the swap kept them there.
async fn swap_without_gap(handle: &Handle, tracker: &Tracker, ids: &[String], act: impl Fn(&str)) {
    let sim = sim(handle);
    settled(sim, tracker, ids, 2).await;
    let old = connected(sim)[0].id.clone();
    let swapped = Instant::now();
    act(&old);
    eventually("the old channel let go", LONG, async || {
        connected(sim).len() == 2
            && !sim
                .channels()
                .iter()
                .any(|c| c.id == old && (c.connected || c.topics > 0))
    })
    .await;
    // A few ticks more on the new channel.
    let after = Instant::now();
    eventually("ticks after the swap", LONG, async || {
        after.elapsed() > Duration::from_secs(2)
    })
    .await;
    for queue in ids {
        let seen = tracker.since(queue, swapped);
        assert!(
            seen.iter().all(|s| s.pushed()),
            "{queue}: an event without pushed data during the swap: {seen:?}"
        );
        // The replacement's snapshot refreshed every queue before the old
        // channel went (an unchanged queue's data otherwise ages: no push).
        let freshest = seen
            .iter()
            .filter_map(|s| s.age_ms)
            .fold(f64::MAX, f64::min);
        // Within a tick (1 s) and a request of the snapshot.
        assert!(
            freshest < 2000.0,
            "{queue}: no fresh data across the swap ({freshest} ms)"
        );
    }
}

#[actix_rt::test]
async fn socket_closing_swaps_channels_without_a_gap() {
    let mut setup = Setup::new(80);
    setup.tuning.topics_per_channel = 40;
    setup.sim.notifications.socket_closing_grace = Duration::from_secs(3);
    let (handle, tracker, ids) = setup.start().await;
    swap_without_gap(&handle, &tracker, &ids, |id| {
        assert!(sim(&handle).announce_socket_closing(id));
    })
    .await;
    handle.shutdown().await;
}

#[actix_rt::test]
async fn channels_are_replaced_before_they_expire() {
    let mut setup = Setup::new(80);
    setup.tuning.topics_per_channel = 40;
    setup.sim.notifications.channel_lifetime = Duration::from_secs(8);
    let (handle, tracker, ids) = setup.start().await;
    // The expiry itself is the act: nothing to do but watch.
    swap_without_gap(&handle, &tracker, &ids, |_| {}).await;
    assert_eq!(sim(&handle).notification_stats().channels_evicted, 0);
    handle.shutdown().await;
}

#[actix_rt::test]
async fn stalled_heartbeats_trip_the_watchdog() {
    let mut setup = Setup::new(60);
    setup.tuning.topics_per_channel = 30;
    let watchdog = setup.tuning.watchdog;
    let (handle, tracker, ids) = setup.start().await;
    let sim = sim(&handle);
    settled(sim, &tracker, &ids, 2).await;
    let before: BTreeSet<String> = connected(sim).into_iter().map(|c| c.id).collect();
    let victim = connected(sim)[0].id.clone();
    let stalled = Instant::now();
    // The first channel call after the trip (the reopen's HEAD) answers
    // after 1.5 s: the slot stays down longer than a tick (1 s), so every
    // queue of the silent channel ticks while it is down. Without it, the
    // window is a jittered backoff of up to 50 ms, and may hold no tick.
    let slow =
        FaultRule::times(Fault::Slow { delay_ms: 1_500 }, 1).for_path_containing("/notifications/");
    sim.faults().push(slow);
    // The channel stays silent, whatever socket is opened on it.
    assert!(sim.stall(&victim, true));
    // The queues whose events came from a fallback poll since the stall,
    // and when the first such event arrived.
    let fell_back = || {
        tracker.with(|map| {
            let polled = |all: &Vec<Seen>| {
                all.iter()
                    .filter(|s| s.at >= stalled && s.attempts >= 1)
                    .map(|s| s.at)
                    .min()
            };
            let firsts: Vec<Instant> = map.values().filter_map(polled).collect();
            (firsts.len(), firsts.into_iter().min())
        })
    };
    // Its queues fall back when the watchdog trips, not before.
    let first = eventually_some("the watchdog's fallback", LONG, async || fell_back().1).await;
    let took = first.duration_since(stalled);
    assert!(
        took >= Duration::from_secs(2),
        "before the watchdog bound: {took:?}"
    );
    // Opened again once; silent from that opening too, it is retired
    // (its topics cleared) and a new channel takes its queues.
    eventually(
        "a new channel in the silent one's place",
        LONG,
        async || {
            let now = connected(sim);
            now.len() == 2
                && now.iter().all(|c| c.id != victim)
                && now.iter().any(|c| !before.contains(&c.id))
        },
    )
    .await;
    let replaced = Instant::now();
    all_on_push(&tracker, &ids).await;
    // Only the silent channel's 30 queues fell back; the other channel's
    // stayed on push.
    let (queues, _) = fell_back();
    assert!((1..=30).contains(&queues), "{queues} queues fell back");
    let retired = sim.channels().into_iter().find(|c| c.id == victim);
    assert!(
        retired
            .as_ref()
            .is_some_and(|c| !c.connected && c.topics == 0),
        "{retired:?}"
    );
    let two_trips = || {
        let text = handle.telemetry().encode();
        assert!(
            text.contains(r#"queuewatch_push_reconnects_total{reason="watchdog"} 2"#),
            "one reopen and one replacement: {text}"
        );
    };
    two_trips();
    // The new channel serves past a watchdog period without a trip.
    eventually("a watchdog period on the new channel", LONG, async || {
        replaced.elapsed() > watchdog + Duration::from_secs(1)
    })
    .await;
    two_trips();
    all_on_push(&tracker, &ids).await;
    handle.shutdown().await;
}

#[actix_rt::test]
async fn a_refused_topic_stays_on_polling() {
    let setup = Setup::new(20);
    let ids = support::queue_ids(TAG, 20);
    let refused = ids[7].clone();
    let (handle, tracker, _) = setup.start().await;
    let sim = sim(&handle);
    // The refusal holds from the next subscription on: drop the socket so
    // that the channel resubscribes.
    sim.refuse_topics(vec![refused.clone()]);
    eventually("a channel", LONG, async || connected(sim).len() == 1).await;
    let channel = connected(sim)[0].id.clone();
    assert!(sim.drop_socket(&channel));
    let others: Vec<String> = ids.iter().filter(|q| **q != refused).cloned().collect();
    let since = all_on_push(&tracker, &others).await;
    let after = Instant::now();
    eventually("a few ticks", LONG, async || {
        after.elapsed() > Duration::from_secs(3)
    })
    .await;
    let seen = tracker.since(&refused, since);
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|s| !s.pushed()), "{seen:?}");
    assert!(seen.iter().any(|s| s.attempts >= 1), "polled: {seen:?}");
    assert_eq!(connected(sim)[0].topics, 19);
    // Accepted again at the channel's next set-up: back on push.
    sim.refuse_topics(Vec::new());
    assert!(sim.drop_socket(&connected(sim)[0].id));
    all_on_push(&tracker, &ids).await;
    handle.shutdown().await;
}

#[actix_rt::test]
async fn queuewatch_never_evicts_its_own_channel() {
    // 20 channels of one topic each: a swap has no room for a 21st.
    let mut setup = Setup::new(20);
    setup.tuning.topics_per_channel = 1;
    setup.sim.notifications.socket_closing_grace = Duration::from_secs(1);
    let (handle, tracker, ids) = setup.start().await;
    let sim = sim(&handle);
    settled(sim, &tracker, &ids, 20).await;
    let victim = connected(sim)[0].id.clone();
    assert!(sim.announce_socket_closing(&victim));
    let since = Instant::now();
    eventually("the socket closed and came back", LONG, async || {
        sim.notification_stats().sockets_opened > 20 && connected(sim).len() == 20
    })
    .await;
    all_on_push(&tracker, &ids).await;
    assert!(since.elapsed() < LONG);
    assert_eq!(sim.notification_stats().channels_evicted, 0);
    assert_eq!(sim.notification_stats().channels_created, 20);
    handle.shutdown().await;
}

#[actix_rt::test]
async fn retry_after_on_a_channel_call_pauses_the_whole_token() {
    let mut setup = Setup::new(30);
    setup.wait_time = WaitTime::Active;
    let (handle, tracker, ids) = setup.start().await;
    let sim = sim(&handle);
    settled(sim, &tracker, &ids, 1).await;
    // The next subscription call answers 429, Retry-After 3 s.
    let mut rule = FaultRule::times(
        Fault::RateLimit {
            retry_after_secs: 3,
        },
        1,
    );
    rule.path_contains = Some("/subscriptions".into());
    sim.faults().push(rule);
    let channel = connected(sim)[0].id.clone();
    assert!(sim.drop_socket(&channel));
    let limited = eventually_limited(sim).await;
    let during: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/") && r.at > limited)
        .filter(|r| r.at < limited + Duration::from_millis(2900))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        during,
        Vec::<String>::new(),
        "requests inside the Retry-After window"
    );
    all_on_push(&tracker, &ids).await;
    handle.shutdown().await;
}

/// When the simulator answered the injected 429.
async fn eventually_limited(sim: &Simulator) -> SystemTime {
    let mut at = None;
    support::wait::eventually_some("the 429", LONG, async || {
        at = sim
            .requests()
            .into_iter()
            .find(|r| r.status == 429)
            .map(|r| r.at);
        at
    })
    .await;
    // Wait past the window so the log holds what happened inside it.
    let end = at.expect("found") + Duration::from_secs(3);
    eventually("the window passed", LONG, async || SystemTime::now() > end).await;
    at.expect("found")
}

#[actix_rt::test]
async fn wait_time_is_polled_only_where_customers_wait() {
    let mut setup = Setup::new(40);
    setup.wait_time = WaitTime::Active;
    setup.sim.rate_limit_per_minute = Some(300);
    let ids = support::queue_ids(TAG, 40);
    let (idle, busy) = ids.split_at(20);
    let (handle, tracker, _) = setup.start().await;
    let sim = sim(&handle);
    for q in idle {
        sim.pin_waiting(q, Some(0));
    }
    for q in busy {
        sim.pin_waiting(q, Some(5));
    }
    let from = Instant::now();
    eventually("a wait on every busy queue", LONG, async || {
        busy.iter()
            .all(|q| tracker.since(q, from).iter().any(|s| s.wait.is_some()))
    })
    .await;
    // Pinned once the instance runs: an idle queue may have had customers
    // before; from a second after the pin on, none was polled.
    let pinned = SystemTime::now() - from.elapsed();
    let idle_set: BTreeSet<&str> = idle.iter().map(String::as_str).collect();
    let polled_idle: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|r| r.at > pinned + Duration::from_secs(1))
        .filter(|r| r.path.ends_with("/estimatedwaittime"))
        .filter(|r| r.queue_ids.iter().any(|q| idle_set.contains(q.as_str())))
        .map(|r| r.path)
        .collect();
    assert_eq!(polled_idle, Vec::<String>::new(), "idle queues polled");
    let polled_busy = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/estimatedwaittime"))
        .count();
    assert!(polled_busy >= busy.len(), "{polled_busy} wait polls");
    for q in idle {
        let seen = tracker.since(q, from + Duration::from_secs(2));
        assert!(seen.iter().all(|s| s.wait.is_none()), "{q}: {seen:?}");
    }
    assert_eq!(sim.stats().rate_limited, 0, "429s with the limit on");
    handle.shutdown().await;
}

#[actix_rt::test]
async fn a_server_that_drops_every_socket_gets_bounded_reconnects() {
    let mut setup = Setup::new(10);
    // A budget that does not slow the reconnects: only the backoff does.
    setup.budget = 100_000;
    setup.sim.rate_limit_per_minute = None;
    setup.tuning.backoff =
        queuewatch::ExponentialBackoff::try_new(Duration::from_millis(50), Duration::from_secs(2))
            .expect("backoff");
    let (handle, tracker, ids) = setup.start().await;
    let sim = sim(&handle);
    settled(sim, &tracker, &ids, 1).await;
    // For 6 s, every socket is dropped as soon as it is seen.
    let opened_before = sim.notification_stats().sockets_opened;
    let until = Instant::now() + Duration::from_secs(6);
    support::wait::poll(Duration::from_secs(7), async || {
        for channel in connected(sim) {
            sim.drop_socket(&channel.id);
        }
        (Instant::now() >= until).then_some(())
    })
    .await
    .expect("6 s of drops");
    let reconnects = sim.notification_stats().sockets_opened - opened_before;
    // Each reconnect waits its backoff (full jitter, doubling to 2 s, not
    // reset by a channel that did not last) and its set-up: no storm.
    assert!(reconnects <= 25, "{reconnects} reconnects in 6 s");
    assert!(reconnects >= 2, "it kept trying: {reconnects}");
    // The queues polled meanwhile, and come back once the drops stop.
    all_on_push(&tracker, &ids).await;
    handle.shutdown().await;
}
