//! One clone thread's bookkeeping, shared by the local and the remote flows:
//! it counts the bytes the thread moved, paces the thread against the
//! bandwidth limits, and, on the master, turns the counters into progress,
//! speeds and auto-tuning decisions once a second.

use clone_core::status::Tracker;
use clone_core::transfer::stats::{Config, Monitor, Shared};
use clone_core::transfer::throttle::Throttle;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::Scope;
use std::time::Instant;

/// What the threads of one clone share.
pub struct Team {
    pub config: Config,
    pub shared: Shared,
    /// Master + running workers.
    pub threads: AtomicU32,
    /// A worker thread could not be started: auto-tuning asks for no more.
    spawn_failed: AtomicBool,
    started: Instant,
    /// The plugin's status of its clones, where progress goes.
    pub status: Arc<Tracker>,
}

impl Team {
    pub fn new(config: Config, status: Arc<Tracker>) -> Team {
        Team {
            shared: Shared::new(config.max_threads),
            config,
            threads: AtomicU32::new(1),
            spawn_failed: AtomicBool::new(false),
            started: Instant::now(),
            status,
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn threads(&self) -> u32 {
        self.threads.load(Relaxed)
    }

    /// Starts workers until `total` threads run (master included); worker
    /// `i` runs `work(i)`. Workers report no errors of their own: the engine
    /// passes a worker's failure on to the master's task.
    pub fn spawn_workers<'s, F>(&'s self, scope: &'s Scope<'s, '_>, total: u32, name: &str, work: F)
    where
        F: Fn(usize) + Send + Copy + 's,
    {
        while !self.spawn_failed.load(Relaxed) && self.threads.load(Relaxed) < total.min(self.config.max_threads) {
            let index = self.threads.fetch_add(1, Relaxed) as usize;
            let spawned = std::thread::Builder::new().name(name.into()).spawn_scoped(scope, move || work(index));
            if let Err(e) = spawned {
                self.threads.fetch_sub(1, Relaxed);
                self.spawn_failed.store(true, Relaxed);
                log::info!("Failed to spawn worker: {}", e.raw_os_error().unwrap_or(0));
            }
        }
    }
}

pub struct Meter<'t> {
    team: &'t Team,
    index: usize,
    throttle: RefCell<Throttle>,
    /// Master only.
    monitor: Option<RefCell<Monitor>>,
}

impl<'t> Meter<'t> {
    pub fn new(team: &'t Team, index: usize) -> Meter<'t> {
        let monitor = (index == 0).then(|| RefCell::new(Monitor::new(team.config, &team.shared)));
        Meter { team, index, throttle: RefCell::new(Throttle::new(team.now_ms())), monitor }
    }

    pub fn is_master(&self) -> bool {
        self.monitor.is_some()
    }

    /// Counts a chunk, sleeps if the thread is over its limit, and returns
    /// the number of threads auto-tuning wants (master only).
    pub fn account(&self, data: u64, network: u64) -> Option<u32> {
        let team = self.team;
        let slot = &team.shared.slots[self.index.min(team.shared.slots.len() - 1)];
        slot.add(data, network);
        let now = team.now_ms();
        let mut grow = None;
        if let Some(monitor) = &self.monitor {
            let threads = team.threads();
            if let Some(tick) = monitor.borrow_mut().tick(now, &team.shared, threads) {
                self.team.status.add_progress(tick.data, tick.network, tick.data_speed, tick.network_speed, threads);
                if let Some(msg) = &tick.tune_log {
                    log::info!("{}", msg);
                }
                grow = tick.grow_to;
            }
        }
        let pause = self.throttle.borrow_mut().pause(
            now,
            slot.data.load(Relaxed),
            slot.network.load(Relaxed),
            team.shared.data_target.load(Relaxed),
            team.shared.network_target.load(Relaxed),
        );
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
        grow
    }

    /// Master: reports the bytes moved since the last statistics tick.
    pub fn flush(&self) {
        if let Some(monitor) = &self.monitor {
            let (data, network) = monitor.borrow_mut().flush(&self.team.shared);
            self.team.status.add_progress(data, network, 0, 0, self.team.threads());
        }
    }

    /// The apply side's notice of a state: a new stage begins (with its
    /// estimate, `Some`), which clone_progress shows; or the current state
    /// ends, to be acknowledged. True for a new stage.
    pub fn state_notice(&self, begins: Option<u64>) -> bool {
        match begins {
            Some(estimate) => self.team.status.next_stage(estimate, self.team.threads()),
            None => self.state_end(),
        }
        begins.is_some()
    }

    /// Master: a storage state ended; log its totals and start tuning over.
    fn state_end(&self) {
        if let Some(monitor) = &self.monitor {
            self.flush();
            let s = monitor.borrow_mut().state_end(self.team.now_ms(), &self.team.shared);
            log::info!("Total Data: {} MiB @ {} MiB/sec, Network: {} MiB @ {} MiB/sec", s.data_mib, s.data_mib_per_s, s.network_mib, s.network_mib_per_s);
        }
    }
}
