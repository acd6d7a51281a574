//! The token's rate budget: the rate in force, its use, the interval
//! stretch, a `Retry-After` pause and the requests waiting for a slot.

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{InternalEvent, Telemetry};
use crate::config::Budget;
use crate::ratelimit::RateLimiter;

pub(super) struct BudgetMetrics {
    rate_budget: Gauge,
    rate_budget_used: Gauge,
    interval_stretch: Gauge<f64, AtomicU64>,
    rate_budget_paused: Gauge<f64, AtomicU64>,
    rate_budget_waiting: Gauge,
    /// The interval stretch last logged (see [`BudgetApplied`]).
    stretch_logged: Mutex<f64>,
}

impl BudgetMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let rate_budget = Gauge::default();
        registry.register(
            "rate_budget_per_minute",
            "Client-side request rate in force per token (after headroom and adaptation)",
            rate_budget.clone(),
        );
        let rate_budget_used = Gauge::default();
        registry.register(
            "rate_budget_used_per_minute",
            "Requests sent on the token in the last 60 s",
            rate_budget_used.clone(),
        );
        let interval_stretch = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "interval_stretch",
            "Factor every poll interval is multiplied by to fit the rate budget (1 = as configured)",
            interval_stretch.clone(),
        );
        let rate_budget_paused = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "rate_budget_paused_seconds",
            "Seconds left of the Retry-After pause on the token (0 = not paused); no request is sent while it lasts",
            rate_budget_paused.clone(),
        );
        let rate_budget_waiting = Gauge::default();
        registry.register(
            "rate_budget_waiting",
            "Requests waiting for a slot in the token's rate budget (as of the last request)",
            rate_budget_waiting.clone(),
        );
        BudgetMetrics {
            rate_budget,
            rate_budget_used,
            interval_stretch,
            rate_budget_paused,
            rate_budget_waiting,
            stretch_logged: Mutex::new(1.0),
        }
    }
}

impl Telemetry {
    /// The token's budget as the limiter sees it now.
    pub(crate) fn set_budget(&self, limiter: &RateLimiter) {
        let m = &self.inner.budget;
        m.rate_budget.set(limiter.rate_per_minute().round() as i64);
        m.rate_budget_used
            .set(i64::from(limiter.used_last_minute()));
        m.interval_stretch.set(limiter.stretch());
        let paused = limiter.paused_until().map_or(0.0, |until| {
            until
                .saturating_duration_since(tokio::time::Instant::now())
                .as_secs_f64()
        });
        m.rate_budget_paused.set(paused);
        m.rate_budget_waiting
            .set(i64::try_from(limiter.waiting()).unwrap_or(i64::MAX));
    }
}

/// The rate demand was set to `budget` (the poller set changed): the gauges
/// follow, and the interval stretch is logged when it moved by more than 0.5%.
pub(crate) struct BudgetApplied<'a> {
    pub budget: &'a Budget,
    pub limiter: &'a RateLimiter,
}

impl InternalEvent for BudgetApplied<'_> {
    fn emit(self, telemetry: &Telemetry) {
        telemetry.set_budget(self.limiter);
        let (budget, stretch) = (self.budget, self.limiter.stretch());
        let mut logged = telemetry
            .inner
            .budget
            .stretch_logged
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if (stretch - *logged).abs() <= 0.005 * *logged {
            return;
        }
        let headroom = (1.0 - crate::ratelimit::HEADROOM) * 100.0;
        if stretch > 1.0 {
            log::warn!(
                "rate budget: {budget}; with {headroom:.0}% headroom every interval is stretched x{stretch:.2} (was x{:.2})",
                *logged
            );
        } else {
            log::info!(
                "rate budget: {budget}; intervals as configured (was stretched x{:.2})",
                *logged
            );
        }
        *logged = stretch;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logged(t: &Telemetry) -> f64 {
        *t.inner.budget.stretch_logged.lock().unwrap()
    }

    #[test]
    fn the_stretch_is_served_and_logged_when_it_moves() {
        let t = Telemetry::new();
        let limiter = RateLimiter::new(300);
        let interval = std::time::Duration::from_secs(10);
        let budget = Budget::of(
            crate::config::Source::EstimatedWaitTime,
            [interval; 100],
            300,
        );
        limiter.set_demand(600.0);
        t.emit(BudgetApplied {
            budget: &budget,
            limiter: &limiter,
        });
        let stretch = limiter.stretch();
        assert!(stretch > 2.0, "{stretch}");
        assert_eq!(logged(&t), stretch);
        let text = t.encode();
        let served: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("queuewatch_interval_stretch "))
            .and_then(|v| v.parse().ok())
            .expect("the stretch gauge");
        assert!((served - stretch).abs() < 1e-9, "{text}");
        assert!(
            text.contains("queuewatch_rate_budget_per_minute 291\n"),
            "{text}"
        );
        assert!(
            text.contains("queuewatch_rate_budget_paused_seconds 0.0\n"),
            "{text}"
        );
        limiter.set_demand(0.0);
        t.emit(BudgetApplied {
            budget: &budget,
            limiter: &limiter,
        });
        assert_eq!(logged(&t), 1.0);
        assert!(t.encode().contains("queuewatch_interval_stretch 1.0\n"));
    }
}
