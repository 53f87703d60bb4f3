//! Bandwidth throttling (`clone_max_data_bandwidth`,
//! `clone_max_network_bandwidth`). Each thread paces itself against a
//! per-thread byte rate that the master recomputes from the measured speed.

use std::time::Duration;

/// Checks are made at most this often while a thread is under its limit.
const BASE_INTERVAL_MS: u64 = 100;
/// Never sleep longer than this at once, so KILL stays responsive.
const MAX_SLEEP_MS: u64 = 1000;

/// One thread's pacing state.
#[derive(Debug)]
pub struct Throttle {
    last_ms: u64,
    last_data: u64,
    last_network: u64,
    interval_ms: u64,
}

impl Throttle {
    pub fn new(now_ms: u64) -> Throttle {
        Throttle { last_ms: now_ms, last_data: 0, last_network: 0, interval_ms: BASE_INTERVAL_MS }
    }

    /// Given this thread's running byte totals and its targets in bytes/s
    /// (0 = unlimited), how long the thread should sleep now.
    pub fn pause(&mut self, now_ms: u64, data: u64, network: u64, data_target: u64, network_target: u64) -> Duration {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        if elapsed < self.interval_ms {
            return Duration::ZERO;
        }
        let expected = |bytes: u64, target: u64| bytes.saturating_mul(1000).checked_div(target).unwrap_or(0);
        let expected_ms = expected(data - self.last_data.min(data), data_target).max(expected(network - self.last_network.min(network), network_target));
        self.last_ms = now_ms;
        self.last_data = data;
        self.last_network = network;
        if expected_ms > elapsed {
            let mut sleep = expected_ms - elapsed;
            if sleep > MAX_SLEEP_MS {
                sleep = MAX_SLEEP_MS;
                // Far over the limit: look again sooner next time.
                self.interval_ms = (self.interval_ms / 2).max(1);
            }
            self.last_ms = now_ms + sleep;
            Duration::from_millis(sleep)
        } else {
            self.interval_ms = BASE_INTERVAL_MS;
            Duration::ZERO
        }
    }
}

/// Per-thread target for a limit of `limit_bytes` per second shared by the
/// threads that are really moving data: the measured total speed divided by
/// the current per-thread target says how many of `threads` are active.
pub fn per_thread_target(limit_bytes: u64, total_speed: u64, current_target: u64, threads: u32) -> u64 {
    if limit_bytes == 0 {
        return 0;
    }
    let active = total_speed.checked_div(current_target).unwrap_or(threads as u64);
    let active = active.clamp(1, threads.max(1) as u64);
    (limit_bytes / active).max(super::MIB)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_limit_never_sleeps() {
        let mut t = Throttle::new(0);
        assert_eq!(t.pause(200, 1 << 30, 0, 0, 0), Duration::ZERO);
    }

    #[test]
    fn sleeps_to_hold_the_rate() {
        let mut t = Throttle::new(0);
        // 1 MiB in 100 ms against a 1 MiB/s target: 900 ms to go.
        let d = t.pause(100, 1 << 20, 0, 1 << 20, 0);
        assert_eq!(d, Duration::from_millis(900));
    }

    #[test]
    fn long_sleeps_are_capped_and_checks_tighten() {
        let mut t = Throttle::new(0);
        let d = t.pause(100, 10 << 20, 0, 1 << 20, 0);
        assert_eq!(d, Duration::from_millis(1000));
        assert_eq!(t.interval_ms, 50);
    }

    #[test]
    fn network_limit_counts_too() {
        let mut t = Throttle::new(0);
        let d = t.pause(500, 0, 1 << 20, 0, 1 << 20);
        assert_eq!(d, Duration::from_millis(500));
    }

    #[test]
    fn checks_wait_for_the_interval() {
        let mut t = Throttle::new(0);
        assert_eq!(t.pause(50, 100 << 20, 0, 1 << 20, 0), Duration::ZERO);
    }

    #[test]
    fn targets_split_among_active_threads() {
        assert_eq!(per_thread_target(0, 0, 0, 4), 0);
        // At the start every thread may use the whole limit... then it is split.
        assert_eq!(per_thread_target(64 << 20, 64 << 20, 16 << 20, 4), 16 << 20);
        // never below 1 MiB/s
        assert_eq!(per_thread_target(2 << 20, 100 << 20, 1 << 20, 8), 1 << 20);
    }
}
