//! Byte counters of the clone threads and the statistics the master derives
//! from them once a second: the progress added to the current stage, the
//! speeds, the per-thread throttling targets and the auto-tuning decision.

use super::autotune::{Decision, Tuner};
use super::throttle::per_thread_target;
use super::MIB;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Statistics are taken at most this often.
const TICK_MS: u64 = 1000;

/// What one clone thread has moved so far.
#[derive(Debug, Default)]
pub struct Counters {
    pub data: AtomicU64,
    pub network: AtomicU64,
}

impl Counters {
    pub fn add(&self, data: u64, network: u64) {
        self.data.fetch_add(data, Relaxed);
        self.network.fetch_add(network, Relaxed);
    }
}

/// State shared by all threads of one clone.
#[derive(Debug)]
pub struct Shared {
    /// One slot per possible thread; 0 is the master.
    pub slots: Vec<Counters>,
    /// Per-thread throttling targets in bytes/s (0 = unlimited).
    pub data_target: AtomicU64,
    pub network_target: AtomicU64,
}

impl Shared {
    pub fn new(max_threads: u32) -> Shared {
        Shared { slots: (0..max_threads.max(1)).map(|_| Counters::default()).collect(), data_target: AtomicU64::new(0), network_target: AtomicU64::new(0) }
    }

    fn totals(&self) -> (u64, u64) {
        self.slots.iter().fold((0, 0), |(d, n), c| (d + c.data.load(Relaxed), n + c.network.load(Relaxed)))
    }
}

/// Limits and knobs captured when the clone starts.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub max_threads: u32,
    pub autotune: bool,
    /// MiB/s; 0 = unlimited.
    pub max_data_mib: u64,
    pub max_network_mib: u64,
}

impl Config {
    /// How many threads (master included) the bandwidth limits allow: one per
    /// 64 MiB/s of the tighter limit.
    pub fn allowed_threads(&self, wanted: u32) -> u32 {
        let mut n = wanted.min(self.max_threads).max(1);
        for limit in [self.max_data_mib, self.max_network_mib] {
            if limit > 0 {
                n = n.min(((limit / 64) as u32).saturating_add(1));
            }
        }
        n.max(1)
    }

    fn tightest_limit_mib(&self) -> u64 {
        match (self.max_data_mib, self.max_network_mib) {
            (0, n) => n,
            (d, 0) => d,
            (d, n) => d.min(n),
        }
    }
}

/// What a statistics tick produced.
#[derive(Debug, Default, PartialEq)]
pub struct Tick {
    pub data: u64,
    pub network: u64,
    pub data_speed: u64,
    pub network_speed: u64,
    /// Auto-tuning wants this many threads (master included).
    pub grow_to: Option<u32>,
    pub tune_log: Option<String>,
}

/// Totals logged when a storage state ends.
#[derive(Debug, PartialEq)]
pub struct Summary {
    pub data_mib: u64,
    pub data_mib_per_s: u64,
    pub network_mib: u64,
    pub network_mib_per_s: u64,
}

/// The master thread's view of the statistics.
#[derive(Debug)]
pub struct Monitor {
    config: Config,
    tuner: Tuner,
    start_ms: Option<u64>,
    last_ms: u64,
    last: (u64, u64),
    start_totals: (u64, u64),
}

impl Monitor {
    pub fn new(config: Config, shared: &Shared) -> Monitor {
        let monitor = Monitor { config, tuner: Tuner::new(), start_ms: None, last_ms: 0, last: (0, 0), start_totals: (0, 0) };
        monitor.reset_targets(shared);
        monitor
    }

    /// Right after a reset each thread may use the whole limit; ticks split it.
    fn reset_targets(&self, shared: &Shared) {
        shared.data_target.store(self.config.max_data_mib * MIB, Relaxed);
        shared.network_target.store(self.config.max_network_mib * MIB, Relaxed);
    }

    /// Called by the master on every chunk; acts at most once a second.
    pub fn tick(&mut self, now_ms: u64, shared: &Shared, threads: u32) -> Option<Tick> {
        let Some(_) = self.start_ms else {
            self.start_ms = Some(now_ms);
            self.last_ms = now_ms;
            self.last = shared.totals();
            self.start_totals = self.last;
            return None;
        };
        let elapsed = now_ms.saturating_sub(self.last_ms);
        if elapsed < TICK_MS {
            return None;
        }
        let (data, network) = shared.totals();
        let tick_data = data.saturating_sub(self.last.0);
        let tick_network = network.saturating_sub(self.last.1);
        let data_speed = tick_data * 1000 / elapsed;
        let network_speed = tick_network * 1000 / elapsed;
        self.last_ms = now_ms;
        self.last = (data, network);

        let data_target = per_thread_target(self.config.max_data_mib * MIB, data_speed, shared.data_target.load(Relaxed), threads);
        let network_target = per_thread_target(self.config.max_network_mib * MIB, network_speed, shared.network_target.load(Relaxed), threads);
        shared.data_target.store(data_target, Relaxed);
        shared.network_target.store(network_target, Relaxed);

        let mut tick = Tick { data: tick_data, network: tick_network, data_speed, network_speed, ..Tick::default() };
        if self.config.autotune {
            let max = self.config.allowed_threads(self.config.max_threads);
            let speed_mib = data_speed.max(network_speed) / MIB;
            match self.tuner.sample(speed_mib, threads, max, self.config.tightest_limit_mib()) {
                Decision::Keep => {}
                Decision::Grow { from, to, window_start, window_goal } => {
                    tick.grow_to = Some(to);
                    tick.tune_log = Some(format!("Tune Threads from: {from} to: {to} prev: {window_start} target: {window_goal}"));
                }
                Decision::Stop { speed, goal_speed } => {
                    tick.tune_log = Some(format!("Tune stop, Data: {speed} MiB/sec, Target: {goal_speed} MiB/sec."));
                }
            }
        }
        Some(tick)
    }

    /// The bytes moved since the last tick, now taken as reported (so a
    /// stage that ends between ticks still shows everything it moved).
    pub fn flush(&mut self, shared: &Shared) -> (u64, u64) {
        let (data, network) = shared.totals();
        let delta = (data.saturating_sub(self.last.0), network.saturating_sub(self.last.1));
        self.last = (data, network);
        delta
    }

    /// Called when a storage state ends: summarises and starts tuning over.
    pub fn state_end(&mut self, now_ms: u64, shared: &Shared) -> Summary {
        let (data, network) = shared.totals();
        let secs = self.start_ms.map(|s| now_ms.saturating_sub(s) / 1000).unwrap_or(0).max(1);
        let data_mib = (data - self.start_totals.0.min(data)) / MIB;
        let network_mib = (network - self.start_totals.1.min(network)) / MIB;
        self.tuner.reset();
        self.start_ms = None;
        self.reset_targets(shared);
        Summary { data_mib, data_mib_per_s: data_mib / secs, network_mib, network_mib_per_s: network_mib / secs }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(autotune: bool) -> Config {
        Config { max_threads: 8, autotune, max_data_mib: 0, max_network_mib: 0 }
    }

    #[test]
    fn bandwidth_limits_bound_the_threads() {
        let mut c = config(false);
        assert_eq!(c.allowed_threads(8), 8);
        c.max_data_mib = 100;
        assert_eq!(c.allowed_threads(8), 2);
        c.max_network_mib = 10;
        assert_eq!(c.allowed_threads(8), 1);
    }

    #[test]
    fn ticks_once_a_second_with_deltas_and_speeds() {
        let shared = Shared::new(2);
        let mut m = Monitor::new(config(false), &shared);
        assert_eq!(m.tick(0, &shared, 1), None);
        shared.slots[0].add(3 * MIB, 0);
        shared.slots[1].add(MIB, 0);
        assert_eq!(m.tick(500, &shared, 2), None);
        let t = m.tick(2000, &shared, 2).unwrap();
        assert_eq!((t.data, t.data_speed), (4 * MIB, 2 * MIB));
        assert_eq!(t.grow_to, None);
    }

    #[test]
    fn autotune_asks_for_threads() {
        let shared = Shared::new(8);
        let mut m = Monitor::new(config(true), &shared);
        m.tick(0, &shared, 1);
        let mut grow = None;
        for s in 1..=5 {
            shared.slots[0].add(100 * MIB, 0);
            if let Some(t) = m.tick(s * 1000, &shared, 1) {
                grow = grow.or(t.grow_to);
            }
        }
        assert_eq!(grow, Some(2));
    }

    #[test]
    fn flush_reports_what_ticks_have_not() {
        let shared = Shared::new(1);
        let mut m = Monitor::new(config(false), &shared);
        m.tick(0, &shared, 1);
        shared.slots[0].add(5, 0);
        assert_eq!(m.flush(&shared), (5, 0));
        assert_eq!(m.flush(&shared), (0, 0));
        shared.slots[0].add(7, 0);
        assert_eq!(m.tick(1000, &shared, 1).map(|t| t.data), Some(7));
    }

    #[test]
    fn state_end_summarises() {
        let shared = Shared::new(1);
        let mut m = Monitor::new(config(false), &shared);
        m.tick(0, &shared, 1);
        shared.slots[0].add(10 * MIB, 0);
        let s = m.state_end(2000, &shared);
        assert_eq!((s.data_mib, s.data_mib_per_s), (10, 5));
    }
}
