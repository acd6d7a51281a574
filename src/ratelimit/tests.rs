//! The limiter on a paused clock: spacing, adaptation, and the Retry-After
//! gate with requests already waiting when the pause arrives.

use std::sync::{Arc, Mutex};

use super::*;

fn ms(d: Duration) -> i128 {
    d.as_millis() as i128
}

/// Acquires (no deadline) and returns when the right to send came.
async fn sent_at(limiter: &RateLimiter) -> Instant {
    limiter
        .acquire(None)
        .await
        .expect("no deadline, not closed");
    Instant::now()
}

#[tokio::test(start_paused = true)]
async fn slots_are_evenly_spaced() {
    let limiter = RateLimiter::new(300);
    let start = Instant::now();
    // 300/min with 3% headroom: one request per 206.2 ms (a paused clock's
    // timers fire on the next whole millisecond).
    let emission = Duration::from_secs_f64(60.0 / (300.0 * HEADROOM));
    for k in 0..4 {
        let at = sent_at(&limiter).await - start;
        let slot = emission * k;
        assert!(
            at >= slot && at - slot < Duration::from_millis(2),
            "{k}: {at:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn idle_time_is_not_banked_as_burst() {
    let limiter = RateLimiter::new(60);
    sent_at(&limiter).await;
    tokio::time::advance(Duration::from_secs(30)).await;
    let now = Instant::now();
    assert_eq!(sent_at(&limiter).await, now);
    assert!(sent_at(&limiter).await - now > Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn pause_holds_every_request() {
    let limiter = RateLimiter::new(300);
    let now = Instant::now();
    limiter.pause_until(now + Duration::from_secs(42));
    limiter.pause_until(now + Duration::from_secs(5)); // shorter: ignored
    assert_eq!(sent_at(&limiter).await, now + Duration::from_secs(42));
    assert!(sent_at(&limiter).await > now + Duration::from_secs(42));
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(sent_at(&limiter).await, Instant::now(), "the pause is over");
}

/// The defect of the first round: requests that had their slot before the
/// 429 slept to it and were sent inside the Retry-After window.
#[tokio::test(start_paused = true)]
async fn waiting_requests_do_not_leave_inside_a_pause_that_came_after_them() {
    let limiter = RateLimiter::new(60); // one request per ~1.03 s
    let start = Instant::now();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (limiter, sent) = (limiter.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let at = sent_at(&limiter).await;
            sent.lock().unwrap().push(at - start);
        }));
        tokio::task::yield_now().await; // queue up in order
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pause_from = Instant::now() - start;
    limiter.pause_until(Instant::now() + Duration::from_secs(7));
    let pause_to = pause_from + Duration::from_secs(7);
    for task in tasks {
        task.await.unwrap();
    }
    let mut sent = sent.lock().unwrap().clone();
    sent.sort();
    assert_eq!(sent.len(), 6);
    let before = sent.iter().filter(|at| **at <= pause_from).count();
    assert_eq!(
        before, 2,
        "slots 0 s and 1.03 s went before the 429: {sent:?}"
    );
    for at in &sent[before..] {
        assert!(
            *at >= pause_to,
            "sent at {at:?}, inside the pause: {sent:?}"
        );
    }
    // After the pause, still evenly spaced: no burst of the voided slots.
    for pair in sent[before..].windows(2) {
        assert!(pair[1] - pair[0] >= Duration::from_millis(1000), "{sent:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_pause_past_the_deadline_is_reported_at_once() {
    let limiter = RateLimiter::new(300);
    let start = Instant::now();
    let until = start + Duration::from_secs(3600);
    limiter.pause_until(until);
    let deadline = Some(Deadline::fixed(start + Duration::from_secs(5)));
    assert_eq!(
        limiter.acquire(deadline).await,
        Err(Denied::Paused { until })
    );
    assert_eq!(Instant::now(), start, "no waiting");
    // A pause that ends before the deadline is waited out.
    let limiter = RateLimiter::new(300);
    limiter.pause_until(start + Duration::from_secs(2));
    assert_eq!(limiter.acquire(deadline).await, Ok(()));
    assert_eq!(Instant::now(), start + Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_pause_arriving_while_waiting_ends_the_wait_when_it_reaches_the_deadline() {
    let limiter = RateLimiter::new(60);
    let start = Instant::now();
    sent_at(&limiter).await; // slot 0; the next is at ~1.03 s
    let waiter = {
        let limiter = limiter.clone();
        tokio::spawn(async move {
            let result = limiter
                .acquire(Some(Deadline::fixed(start + Duration::from_secs(5))))
                .await;
            (result, Instant::now() - start)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let until = Instant::now() + Duration::from_secs(60);
    limiter.pause_until(until);
    let (result, at) = waiter.await.unwrap();
    assert_eq!(result, Err(Denied::Paused { until }));
    assert_eq!(at, Duration::from_millis(500), "told when the pause came");
}

#[tokio::test(start_paused = true)]
async fn a_slot_past_the_deadline_is_refused_and_not_held() {
    let limiter = RateLimiter::new(60);
    let start = Instant::now();
    sent_at(&limiter).await;
    let deadline = Some(Deadline::fixed(start + Duration::from_millis(500)));
    assert!(matches!(
        limiter.acquire(deadline).await,
        Err(Denied::NoSlot { .. })
    ));
    // Nothing was reserved: the next request gets the very next slot.
    let next = Duration::from_secs_f64(60.0 / (60.0 * HEADROOM));
    assert!(ms(sent_at(&limiter).await - start) - ms(next) <= 1);
}

#[tokio::test(start_paused = true)]
async fn close_ends_every_wait_at_once() {
    let limiter = RateLimiter::new(60);
    let start = Instant::now();
    limiter.pause_until(start + Duration::from_secs(30));
    let waiter = {
        let limiter = limiter.clone();
        tokio::spawn(async move { (limiter.acquire(None).await, Instant::now()) })
    };
    let watcher = {
        let limiter = limiter.clone();
        tokio::spawn(async move { limiter.closed().await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!watcher.is_finished());
    limiter.close();
    let (result, at) = waiter.await.unwrap();
    assert_eq!(result, Err(Denied::Closed));
    assert_eq!(at, start + Duration::from_secs(1));
    watcher.await.unwrap();
    assert_eq!(limiter.acquire(None).await, Err(Denied::Closed));
}

#[tokio::test(start_paused = true)]
async fn a_pause_reads_in_plain_words() {
    let until = Instant::now() + Duration::from_millis(3_599_376);
    let text = Denied::Paused { until }.to_string();
    assert!(text.contains("(1h from now)"), "{text}");
    assert!(!text.contains("ms"), "{text}");
    let year = humantime::format_rfc3339_seconds(SystemTime::now()).to_string()[..4].to_string();
    assert!(text.contains(&format!("until {year}")), "{text}");
}

#[tokio::test(start_paused = true)]
async fn use_is_counted_over_the_last_minute() {
    let limiter = RateLimiter::new(600);
    for _ in 0..30 {
        sent_at(&limiter).await;
    }
    assert_eq!(limiter.used_last_minute(), 30);
    // The 30 requests spanned ~3 s; 56 s later all are still within the minute.
    tokio::time::advance(Duration::from_secs(56)).await;
    assert_eq!(limiter.used_last_minute(), 30);
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(limiter.used_last_minute(), 0);
}

#[tokio::test(start_paused = true)]
async fn demand_over_the_rate_stretches_intervals() {
    let limiter = RateLimiter::new(300);
    limiter.set_demand(150.0);
    assert_eq!(limiter.stretch(), 1.0);
    limiter.set_demand(1800.0);
    let expected = 1800.0 / (300.0 * HEADROOM);
    assert!((limiter.stretch() - expected).abs() < 1e-9);
}

#[tokio::test(start_paused = true)]
async fn a_lower_advertised_allowance_is_followed() {
    let limiter = RateLimiter::new(300);
    let info = |allowed| RateLimitInfo {
        allowed: Some(allowed),
        ..RateLimitInfo::default()
    };
    limiter.observe(&info(120));
    assert!((limiter.rate_per_minute() - 120.0 * HEADROOM).abs() < 1e-9);
    limiter.observe(&info(1000)); // above the budget: the budget rules
    assert!((limiter.rate_per_minute() - 300.0 * HEADROOM).abs() < 1e-9);
}

#[tokio::test(start_paused = true)]
async fn a_429_halves_the_rate_which_recovers_gradually() {
    let limiter = RateLimiter::new(300);
    let full = limiter.rate_per_minute();
    limiter.on_rate_limited();
    assert!((limiter.rate_per_minute() - full / 2.0).abs() < 1e-9);
    limiter.on_rate_limited(); // within the hold: no second cut
    assert!((limiter.rate_per_minute() - full / 2.0).abs() < 1e-9);
    tokio::time::advance(RECOVERY_STEP).await;
    sent_at(&limiter).await;
    assert!((limiter.rate_per_minute() - full * 0.6).abs() < 1e-9);
    tokio::time::advance(RECOVERY_STEP * 10).await;
    sent_at(&limiter).await;
    assert!(
        (limiter.rate_per_minute() - full).abs() < 1e-9,
        "fully recovered"
    );
}

#[tokio::test(start_paused = true)]
async fn a_deadline_moves_out_with_the_stretch() {
    let limiter = RateLimiter::new(60);
    let start = Instant::now();
    sent_at(&limiter).await; // the next slot is at ~1.03 s
    let deadline = Deadline {
        next_tick: start + Duration::from_millis(500),
        started: start,
        interval: Duration::from_millis(500),
    };
    // No stretch: the next slot lies past the next tick.
    assert!(matches!(
        limiter.acquire(Some(deadline)).await,
        Err(Denied::NoSlot { .. })
    ));
    // Demand four times the rate: the next tick moves out to ~2 s.
    limiter.set_demand(4.0 * limiter.rate_per_minute());
    assert_eq!(limiter.acquire(Some(deadline)).await, Ok(()));
    // A cycle already past its deadline still takes a slot within one
    // stretched interval.
    tokio::time::advance(Duration::from_secs(5)).await;
    let late = Deadline {
        next_tick: start,
        started: start,
        interval: Duration::from_millis(500),
    };
    assert_eq!(limiter.acquire(Some(late)).await, Ok(()));
    assert_eq!(
        limiter.acquire(Some(late)).await,
        Ok(()),
        "~1 s ahead: within 2 s"
    );
}
