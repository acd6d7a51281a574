//! Unit tests of the channel registry.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use super::*;

fn registry(max_channels: usize) -> Registry {
    Registry::new(&NotificationsConfig {
        max_channels,
        ..NotificationsConfig::default()
    })
}

fn figures(waiting: u32) -> Figures {
    Figures {
        waiting,
        interacting: 1,
        idle: 2,
    }
}

fn ids(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

#[test]
fn subscriptions_replace_add_clear_and_list() {
    let mut reg = registry(20);
    let t0 = Instant::now();
    let (id, _) = reg.create(t0, SystemTime::now());
    let known = |q: &str| (q != "unknown").then(|| figures(1));
    let topics = reg
        .subscribe(
            &id,
            Subscription::Replace(ids(&["a", "unknown", "b"])),
            t0,
            known,
        )
        .expect("subscribed");
    assert_eq!(topics, vec![topic_of("a"), topic_of("b")]);
    reg.refuse(ids(&["c"]));
    let topics = reg
        .subscribe(&id, Subscription::Add(ids(&["c", "d"])), t0, known)
        .expect("added");
    assert_eq!(topics.len(), 3, "{topics:?}");
    let listed = reg
        .subscribe(&id, Subscription::List, t0, known)
        .expect("listed");
    assert_eq!(listed, topics);
    let cleared = reg
        .subscribe(&id, Subscription::Clear, t0, known)
        .expect("cleared");
    assert!(cleared.is_empty());
    assert_eq!(
        reg.subscribe("nope", Subscription::List, t0, known),
        Err(ChannelError::NotFound("nope".to_owned()))
    );
}

#[test]
fn more_than_a_thousand_topics_change_nothing() {
    let mut reg = registry(20);
    let t0 = Instant::now();
    let (id, _) = reg.create(t0, SystemTime::now());
    let all = |_: &str| Some(figures(0));
    let thousand: Vec<String> = (0..1_000).map(|i| format!("q{i}")).collect();
    reg.subscribe(&id, Subscription::Replace(thousand), t0, all)
        .expect("1000 fit");
    let err = reg
        .subscribe(&id, Subscription::Add(ids(&["extra"])), t0, all)
        .expect_err("1001 do not");
    assert_eq!(err, ChannelError::Topics(TopicError::TooMany(1_001)));
    let many: Vec<String> = (0..1_001).map(|i| format!("x{i}")).collect();
    assert!(reg
        .subscribe(&id, Subscription::Replace(many), t0, all)
        .is_err());
    assert_eq!(reg.infos(t0)[0].topics, 1_000);
}

#[test]
fn the_least_recently_used_channel_without_a_socket_goes_first() {
    let mut reg = registry(3);
    let t0 = Instant::now();
    let at = SystemTime::now();
    let (a, _) = reg.create(t0, at);
    let (b, _) = reg.create(t0, at);
    let (c, _) = reg.create(t0, at);
    let _socket = reg.connect(&a, t0).expect("a is live");
    reg.subscribe(&b, Subscription::Clear, t0, |_| None)
        .expect("b is live");
    // a has a socket; c is the least recently used of the others.
    let (d, _) = reg.create(t0, at);
    assert!(!reg.is_live(&c, t0));
    // Now b is the least recently used without a socket.
    let (_e, _) = reg.create(t0, at);
    assert!(!reg.is_live(&b, t0));
    assert!(reg.is_live(&a, t0) && reg.is_live(&d, t0));
    let stats = reg.stats();
    assert_eq!((stats.channels_created, stats.channels_evicted), (5, 2));
}

#[test]
fn channels_expire() {
    let mut reg = Registry::new(&NotificationsConfig {
        channel_lifetime: Duration::from_secs(10),
        ..NotificationsConfig::default()
    });
    let t0 = Instant::now();
    let (id, _) = reg.create(t0, SystemTime::now());
    let mut socket = reg.connect(&id, t0).expect("live");
    assert!(reg.is_live(&id, t0 + Duration::from_secs(9)));
    assert!(!reg.is_live(&id, t0 + Duration::from_secs(10)));
    assert!(
        socket.rx.try_recv().is_err(),
        "sender dropped: the session ends"
    );
    assert!(reg.connect(&id, t0).is_none());
}

#[test]
fn the_publisher_sends_changes_once_per_pass() {
    let mut reg = registry(20);
    let t0 = Instant::now();
    let at = SystemTime::now();
    let (id, _) = reg.create(t0, at);
    let mut queues: HashMap<&str, Figures> = HashMap::from([("a", figures(1)), ("b", figures(1))]);
    reg.subscribe(&id, Subscription::Replace(ids(&["a", "b"])), t0, |q| {
        queues.get(q).copied()
    })
    .expect("subscribed");
    assert_eq!(
        reg.publish(t0, at, |q| queues.get(q).copied()),
        0,
        "no socket"
    );
    let mut socket = reg.connect(&id, t0).expect("live");
    assert_eq!(
        reg.publish(t0, at, |q| queues.get(q).copied()),
        0,
        "no change"
    );
    queues.insert("a", figures(5));
    assert_eq!(reg.publish(t0, at, |q| queues.get(q).copied()), 1);
    assert_eq!(
        reg.publish(t0, at, |q| queues.get(q).copied()),
        0,
        "published once"
    );
    let Ok(Outbound::Text(text)) = socket.rx.try_recv() else {
        panic!("a message");
    };
    assert!(
        text.contains("v2.analytics.queues.a.observations"),
        "{text}"
    );
    assert!(reg.stall(&id, true));
    queues.insert("b", figures(9));
    assert_eq!(
        reg.publish(t0, at, |q| queues.get(q).copied()),
        0,
        "stalled"
    );
    assert!(reg.stall(&id, false));
    assert_eq!(reg.publish(t0, at, |q| queues.get(q).copied()), 1);
    assert_eq!(reg.stats().messages_published, 2);
    assert!(reg.drop_socket(&id));
    assert!(matches!(socket.rx.try_recv(), Ok(Outbound::Text(_))));
    assert!(matches!(socket.rx.try_recv(), Ok(Outbound::Drop)));
    assert_eq!(reg.connected_sockets(), 0);
    assert!(!reg.drop_socket(&id));
}

#[test]
fn a_new_socket_replaces_the_old_one() {
    let mut reg = registry(20);
    let t0 = Instant::now();
    let (id, _) = reg.create(t0, SystemTime::now());
    let mut first = reg.connect(&id, t0).expect("live");
    let second = reg.connect(&id, t0).expect("live");
    assert!(first.rx.try_recv().is_err());
    reg.socket_ended(&id, first.generation);
    assert_eq!(
        reg.connected_sockets(),
        1,
        "an old session ending changes nothing"
    );
    reg.socket_ended(&id, second.generation);
    assert_eq!(reg.connected_sockets(), 0);
    assert_eq!(reg.stats().sockets_opened, 2);
}

#[test]
fn a_pass_over_ten_thousand_topics_is_cheap() {
    use super::super::super::config::SimulatorConfig;
    use super::super::super::state::SimState;
    use super::super::routes::figures;

    let queues: Vec<String> = (0..10_000).map(|i| format!("queue-{i}")).collect();
    let t0 = Instant::now();
    let mut state = SimState::new(&SimulatorConfig::with_queues(queues.clone()), t0);
    let mut reg = registry(20);
    let mut sockets = Vec::new();
    for chunk in queues.chunks(1_000) {
        let (id, _) = reg.create(t0, SystemTime::now());
        reg.subscribe(&id, Subscription::Replace(chunk.to_vec()), t0, |q| {
            figures(&mut state, q, t0)
        })
        .expect("subscribed");
        sockets.push(reg.connect(&id, t0).expect("live"));
    }
    let later = t0 + Duration::from_secs(5);
    let started = Instant::now();
    let sent = reg.publish(later, SystemTime::now(), |q| figures(&mut state, q, later));
    let took = started.elapsed();
    assert!(sent > 1_000, "queues moved in 5 s: {sent}");
    // A debug build on a busy machine; a release pass takes a few milliseconds.
    assert!(took < Duration::from_secs(2), "{took:?}");
    let started = Instant::now();
    assert_eq!(
        reg.publish(later, SystemTime::now(), |q| figures(&mut state, q, later)),
        0
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}
