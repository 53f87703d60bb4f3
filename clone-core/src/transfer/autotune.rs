//! Auto-tuning of the number of clone threads (`clone_autotune_concurrency`).
//! The master starts alone and adds threads while each step still makes the
//! clone faster: it doubles its goal in windows (1→2→4→8→…, at most 4 new
//! threads a step), asks more of a step the nearer it is to the window's
//! goal, and stops at the first step that does not pay, at the thread limit,
//! or near a bandwidth limit. Threads are never taken away. Every storage
//! state change starts the tuning over.

/// Samples (one per second) between two decisions.
const SAMPLES_PER_DECISION: u32 = 5;
/// At most this many threads are added in one step.
const MAX_STEP: u32 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Init,
    Active,
    Done,
}

#[derive(Debug)]
pub struct Tuner {
    phase: Phase,
    samples: u32,
    /// Thread count at the start of the current window, and its goal.
    window_start: u32,
    window_goal: u32,
    /// Speed (MiB/s) when the window began, and at the previous step.
    window_speed: u64,
    step_speed: u64,
    /// The thread count the last decision asked for.
    asked: u32,
}

/// What the tuner decided after a sample.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Keep,
    /// Grow to this many threads (master included).
    Grow {
        from: u32,
        to: u32,
        window_start: u32,
        window_goal: u32,
    },
    /// Tuning is over for this state; `improved` tells whether the last step paid.
    Stop {
        speed: u64,
        goal_speed: u64,
    },
}

impl Default for Tuner {
    fn default() -> Self {
        Self::new()
    }
}

impl Tuner {
    pub fn new() -> Tuner {
        Tuner { phase: Phase::Init, samples: 0, window_start: 0, window_goal: 0, window_speed: 0, step_speed: 0, asked: 0 }
    }

    /// Starts over (at every storage state change).
    pub fn reset(&mut self) {
        *self = Tuner::new();
    }

    /// Feeds one speed sample (MiB/s) with the current thread count.
    /// `limit_mib` is the tighter configured bandwidth limit (0 = none).
    pub fn sample(&mut self, speed: u64, threads: u32, max_threads: u32, limit_mib: u64) -> Decision {
        if self.phase == Phase::Done {
            return Decision::Keep;
        }
        self.samples += 1;
        if self.samples < SAMPLES_PER_DECISION {
            return Decision::Keep;
        }
        self.samples = 0;
        if threads >= max_threads || (limit_mib > 0 && speed * 10 > limit_mib * 9) {
            self.phase = Phase::Done;
            return Decision::Stop { speed, goal_speed: self.step_speed };
        }
        match self.phase {
            Phase::Init => {
                self.phase = Phase::Active;
                self.open_window(threads, max_threads, speed);
                self.step(threads, speed)
            }
            Phase::Active => {
                if !self.improved(threads, speed) {
                    self.phase = Phase::Done;
                    return Decision::Stop { speed, goal_speed: self.goal_speed(threads) };
                }
                if threads >= self.window_goal {
                    self.open_window(threads, max_threads, speed);
                }
                self.step(threads, speed)
            }
            Phase::Done => Decision::Keep,
        }
    }

    fn open_window(&mut self, threads: u32, max_threads: u32, speed: u64) {
        self.window_start = threads;
        self.window_goal = (threads * 2).min(max_threads);
        self.window_speed = speed;
    }

    fn step(&mut self, threads: u32, speed: u64) -> Decision {
        let to = (threads + MAX_STEP).min(self.window_goal);
        self.step_speed = speed;
        self.asked = to;
        Decision::Grow { from: threads, to, window_start: self.window_start, window_goal: self.window_goal }
    }

    /// The speed the current thread count must reach to count as better.
    fn goal_speed(&self, threads: u32) -> u64 {
        let gap_goal = self.window_goal.saturating_sub(self.window_start);
        let gap_now = threads.saturating_sub(self.window_start);
        let (base, percent) = if gap_now >= gap_goal {
            (self.window_speed, 125)
        } else if gap_now >= gap_goal / 2 {
            (self.window_speed, 110)
        } else if gap_now >= gap_goal / 4 {
            (self.window_speed, 105)
        } else {
            (self.step_speed, 95)
        };
        base * percent / 100
    }

    fn improved(&self, threads: u32, speed: u64) -> bool {
        // Fewer threads than asked (a spawn failed): nothing to learn.
        threads == self.asked && speed >= self.goal_speed(threads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(t: &mut Tuner, speed: u64, threads: u32) -> Decision {
        let mut last = Decision::Keep;
        for _ in 0..SAMPLES_PER_DECISION {
            last = t.sample(speed, threads, 16, 0);
        }
        last
    }

    #[test]
    fn decides_only_every_five_samples() {
        let mut t = Tuner::new();
        for _ in 0..4 {
            assert_eq!(t.sample(100, 1, 16, 0), Decision::Keep);
        }
        assert!(matches!(t.sample(100, 1, 16, 0), Decision::Grow { from: 1, to: 2, .. }));
    }

    #[test]
    fn grows_while_each_step_pays() {
        let mut t = Tuner::new();
        let mut threads = 1;
        let mut speed = 100;
        let mut seen = vec![];
        while let Decision::Grow { to, .. } = run(&mut t, speed, threads) {
            seen.push(to);
            threads = to;
            speed *= 2;
        }
        assert_eq!(seen, vec![2, 4, 8, 12, 16]);
    }

    #[test]
    fn stops_when_a_step_does_not_pay() {
        let mut t = Tuner::new();
        assert!(matches!(run(&mut t, 100, 1), Decision::Grow { to: 2, .. }));
        assert!(matches!(run(&mut t, 110, 2), Decision::Stop { .. }));
        assert_eq!(run(&mut t, 1000, 2), Decision::Keep);
    }

    #[test]
    fn stops_near_the_bandwidth_limit() {
        let mut t = Tuner::new();
        let mut d = Decision::Keep;
        for _ in 0..SAMPLES_PER_DECISION {
            d = t.sample(95, 1, 16, 100);
        }
        assert!(matches!(d, Decision::Stop { .. }));
    }

    #[test]
    fn failed_spawn_stops_tuning() {
        let mut t = Tuner::new();
        assert!(matches!(run(&mut t, 100, 1), Decision::Grow { to: 2, .. }));
        assert!(matches!(run(&mut t, 500, 1), Decision::Stop { .. }));
    }

    #[test]
    fn reset_starts_over() {
        let mut t = Tuner::new();
        run(&mut t, 100, 1);
        run(&mut t, 100, 2);
        t.reset();
        assert!(matches!(run(&mut t, 100, 2), Decision::Grow { from: 2, to: 4, .. }));
    }
}
