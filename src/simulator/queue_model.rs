//! How a simulated queue moves: a pure function of (state, elapsed time, rng).
//!
//! Time advances in whole-second ticks. Each tick, interacting agents finish
//! conversations (mean duration = average handle time), staffing drifts, new
//! customers arrive (Poisson), and idle agents take customers from the head of
//! the queue. One waiting customer is "the guest" whose position the
//! guest-position endpoint reports: it drops as customers ahead are served;
//! when the guest is taken it is `connecting` for a moment and then a new
//! guest joins at the back.

use std::time::Duration;

use fastrand::Rng;

/// Most customers a queue holds; later arrivals are turned away.
pub(crate) const MAX_DEPTH: u32 = 80;
/// Most agents on a queue.
pub(crate) const MAX_AGENTS: u32 = 20;
/// Longest stretch simulated at once; beyond this the queue is in a steady state anyway.
const MAX_CATCH_UP: Duration = Duration::from_secs(600);
/// Seconds the guest stays `connecting` before a new guest joins.
const CONNECTING_SECS: u32 = 2;
/// Chance per second that one agent joins or leaves the queue.
const STAFF_CHANGE_PER_SEC: f64 = 0.05;
/// Relative drift of the average handle time per second (+/-).
const AHT_DRIFT: f64 = 0.02;

/// Fixed characteristics of one queue.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct QueueProfile {
    /// Mean customer arrivals per second.
    pub arrivals_per_sec: f64,
    /// Lowest average handle time, seconds.
    pub aht_min: f64,
    /// Highest average handle time, seconds.
    pub aht_max: f64,
    /// Fewest agents on queue.
    pub agents_min: u32,
    /// Most agents on queue.
    pub agents_max: u32,
}

/// The guest customer followed by the guest-position endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Guest {
    /// Waiting at this 1-based position.
    Waiting {
        /// Customers ahead plus one.
        position: u32,
    },
    /// Taken by an agent; a new guest joins after `secs_left` seconds.
    Connecting {
        /// Seconds until a new guest joins.
        secs_left: u32,
    },
}

/// What a queue looks like at one moment.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct QueueState {
    /// Customers waiting (the guest included while it waits).
    pub waiting: u32,
    /// Agents on queue without a conversation.
    pub idle: u32,
    /// Agents on queue handling a conversation.
    pub interacting: u32,
    /// Current average handle time, seconds.
    pub aht_secs: f64,
    /// The guest.
    pub guest: Guest,
}

impl QueueProfile {
    /// Random characteristics: 2-12 agents, handle time 10-60 s, load 75-115 %.
    /// (Short handle times keep a demo lively.)
    pub(crate) fn random(rng: &mut Rng) -> Self {
        let agents = rng.u32(2..=12);
        let aht = 10.0 + rng.f64() * 50.0;
        let load = 0.75 + rng.f64() * 0.4;
        Self {
            arrivals_per_sec: f64::from(agents) / aht * load,
            aht_min: aht * 0.7,
            aht_max: aht * 1.3,
            agents_min: agents.saturating_sub(3),
            agents_max: (agents + 4).min(MAX_AGENTS),
        }
    }

    /// A starting state within this profile.
    pub(crate) fn initial_state(&self, rng: &mut Rng) -> QueueState {
        let agents = (self.agents_min + self.agents_max) / 2;
        let interacting = rng.u32(0..=agents);
        let waiting = rng.u32(1..=15);
        QueueState {
            waiting,
            idle: agents - interacting,
            interacting,
            aht_secs: (self.aht_min + self.aht_max) / 2.0,
            guest: Guest::Waiting {
                position: rng.u32(1..=waiting),
            },
        }
    }
}

impl QueueState {
    /// Agents on queue.
    pub(crate) fn agents(&self) -> u32 {
        self.idle + self.interacting
    }

    /// The guest's position; 0 while connecting.
    pub(crate) fn guest_position(&self) -> u32 {
        match self.guest {
            Guest::Waiting { position } => position,
            Guest::Connecting { .. } => 0,
        }
    }

    /// `waiting` or `connecting`.
    pub(crate) fn guest_status(&self) -> &'static str {
        match self.guest {
            Guest::Waiting { .. } => "waiting",
            Guest::Connecting { .. } => "connecting",
        }
    }

    /// The guest's estimated wait, seconds with one decimal.
    pub(crate) fn guest_wait_secs(&self) -> f64 {
        let wait = f64::from(self.guest_position()) * self.aht_secs / self.agent_divisor();
        (wait * 10.0).round() / 10.0
    }

    /// Estimated wait of a customer arriving now, whole seconds.
    pub(crate) fn new_arrival_wait_secs(&self) -> u64 {
        let wait = f64::from(self.waiting + 1) * self.aht_secs / self.agent_divisor();
        // Bounded: at most 81 * 78 s.
        wait.round() as u64
    }

    /// Sets the waiting count to `waiting` (capped at [`MAX_DEPTH`]), keeping
    /// the guest within the queue: behind the last customer, or connecting
    /// when nobody waits.
    pub(crate) fn pin_waiting(&mut self, waiting: u32) {
        self.waiting = waiting.min(MAX_DEPTH);
        if let Guest::Waiting { position } = self.guest {
            self.guest = match self.waiting {
                0 => Guest::Connecting {
                    secs_left: CONNECTING_SECS,
                },
                n => Guest::Waiting {
                    position: position.min(n),
                },
            };
        }
    }

    fn agent_divisor(&self) -> f64 {
        f64::from(self.agents().max(1))
    }

    /// One second of queue life.
    fn tick(&mut self, profile: &QueueProfile, rng: &mut Rng) {
        let finish_chance = 1.0 / self.aht_secs.max(1.0);
        let finished = (0..self.interacting)
            .filter(|_| rng.f64() < finish_chance)
            .count() as u32;
        self.interacting -= finished;
        self.idle += finished;

        if rng.f64() < STAFF_CHANGE_PER_SEC {
            let agents = self.agents();
            if rng.bool() && agents < profile.agents_max {
                self.idle += 1;
            } else if agents > profile.agents_min {
                if self.idle > 0 {
                    self.idle -= 1;
                } else {
                    self.interacting -= 1;
                }
            }
        }

        if let Guest::Connecting { secs_left } = self.guest {
            self.guest = if secs_left <= 1 {
                self.waiting = (self.waiting + 1).min(MAX_DEPTH);
                Guest::Waiting {
                    position: self.waiting,
                }
            } else {
                Guest::Connecting {
                    secs_left: secs_left - 1,
                }
            };
        }

        self.waiting = (self.waiting + poisson(rng, profile.arrivals_per_sec)).min(MAX_DEPTH);

        let served = self.idle.min(self.waiting);
        self.waiting -= served;
        self.idle -= served;
        self.interacting += served;
        if let Guest::Waiting { position } = self.guest {
            self.guest = if served >= position {
                Guest::Connecting {
                    secs_left: CONNECTING_SECS,
                }
            } else {
                Guest::Waiting {
                    position: position - served,
                }
            };
        }

        let drift = 1.0 + (rng.f64() * 2.0 - 1.0) * AHT_DRIFT;
        self.aht_secs = (self.aht_secs * drift).clamp(profile.aht_min, profile.aht_max);
    }
}

/// The state after `elapsed` (whole seconds; at most ten minutes are simulated).
pub(crate) fn evolve(
    state: &QueueState,
    profile: &QueueProfile,
    elapsed: Duration,
    rng: &mut Rng,
) -> QueueState {
    let mut next = state.clone();
    for _ in 0..elapsed.min(MAX_CATCH_UP).as_secs() {
        next.tick(profile, rng);
    }
    next
}

/// A Poisson-distributed count with mean `mean` (Knuth; `mean` is small here).
fn poisson(rng: &mut Rng, mean: f64) -> u32 {
    let threshold = (-mean).exp();
    let mut product = rng.f64();
    let mut count = 0;
    while product > threshold && count < MAX_DEPTH {
        product *= rng.f64();
        count += 1;
    }
    count
}

/// A generator for one queue, derived from the simulator seed and the queue id
/// so that every queue has its own characteristics and its own random stream.
pub(crate) fn queue_rng(seed: u64, queue_id: &str) -> Rng {
    // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
    let hash = queue_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    Rng::with_seed(splitmix64(seed ^ hash))
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
