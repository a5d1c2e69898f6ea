//! Crashes timed to land while a server's fsync is in flight.
//!
//! Raft's persist-before-send rule, the WAL's torn-tail recovery and the vote that must be
//! durable before it is announced all guard one window: between a write and the end of its
//! fsync. Crashes placed at random times fall into that window only by luck (a few
//! milliseconds out of every hundred), so a driver that sent its messages one fsync too
//! early would pass thousands of seeds. This fault waits for the window instead: from a time
//! drawn from the seed it is *armed*, and at the first moment afterwards that a server has an
//! fsync in flight (for half of them: an fsync that carries a new term or vote) the runner
//! crashes that server, and restarts it a little later. The crash loses or tears the unsynced
//! writes, exactly as a power cut in the middle of `fsync` does. The leader churn of
//! `targeted.rs` arms such crashes for newly elected leaders too.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::raft::msg::RaftProc;
use crate::raft::options::SeedOptions;
use crate::{Fault, ProcId, Simulation};

/// Tag mixed into the seed for drawing the fsync crashes.
const IO_SEED_TAG: u64 = 0x5241_4654_4653_594e;
/// An armed crash that found no fsync in flight for this long is dropped.
const ARMED_NANOS_MAX: u64 = 5_000_000_000;
/// Shortest time a server crashed during an fsync stays down.
const DOWN_NANOS_MIN: u64 = 10_000_000;
/// Longest time a server crashed during an fsync stays down.
const DOWN_NANOS_MAX: u64 = 2_000_000_000;

/// One crash that waits for an fsync.
#[derive(Clone, Copy, Debug)]
struct Pending {
    /// When it is armed.
    at: u64,
    /// Only an fsync that carries a hard state (term, vote or commit) will do.
    hard_state_only: bool,
    /// How long the server stays down.
    down: u64,
    /// Which server to look at first (so victims vary).
    first: usize,
    /// Only this server will do.
    only: Option<ProcId>,
}

/// The fsync crashes of one run.
#[derive(Debug)]
pub(crate) struct IoCrashes {
    pending: Vec<Pending>,
    next: usize,
    armed: Vec<Pending>,
    end: u64,
    /// Crashes that found their fsync.
    pub applied: u32,
}

impl IoCrashes {
    /// Draws `o.io_crashes` crashes armed in `[0, end)`.
    pub fn draw(o: &SeedOptions, end: u64) -> IoCrashes {
        let mut rng = ChaCha8Rng::seed_from_u64(o.seed ^ IO_SEED_TAG);
        let mut pending: Vec<Pending> = (0..o.io_crashes)
            .map(|_| Pending {
                at: rng.random_range(0..end.max(1)),
                hard_state_only: rng.random_bool(0.5),
                down: rng.random_range(DOWN_NANOS_MIN..=DOWN_NANOS_MAX),
                first: rng.random_range(0..o.nodes),
                only: None,
            })
            .collect();
        pending.sort_by_key(|p| p.at);
        IoCrashes { pending, next: 0, armed: Vec::new(), end, applied: 0 }
    }

    /// Arms, from now on, a crash of `p` during its next fsync, `down` long.
    pub fn arm_for(&mut self, p: ProcId, now: u64, down: u64) {
        let crash = Pending { at: now, hard_state_only: false, down, first: 0, only: Some(p) };
        self.armed.push(crash);
    }

    /// Whether [`IoCrashes::check`] has anything to do at true time `now`.
    pub fn wants(&self, now: u64) -> bool {
        !self.armed.is_empty() || self.pending.get(self.next).is_some_and(|p| p.at <= now)
    }

    /// Arms what is due, and crashes each armed victim whose fsync is in flight now.
    pub fn check(&mut self, sim: &mut Simulation<RaftProc>, servers: &[ProcId]) {
        let now = sim.now_nanos();
        while let Some(p) = self.pending.get(self.next).filter(|p| p.at <= now) {
            self.armed.push(*p);
            self.next += 1;
        }
        if now >= self.end {
            self.armed.clear();
            return;
        }
        let mut k = 0;
        while k < self.armed.len() {
            let p = self.armed[k];
            if now - p.at > ARMED_NANOS_MAX {
                self.armed.swap_remove(k);
                continue;
            }
            let Some(victim) = victim(sim, servers, p) else {
                k += 1;
                continue;
            };
            self.armed.swap_remove(k);
            if sim.apply(Fault::Crash(victim)).is_ok() {
                self.applied += 1;
                sim.schedule(now + p.down, Fault::Restart(victim));
            }
        }
    }
}

/// The first server, from `p.first` on (or `p.only`), with a matching fsync in flight.
fn victim(sim: &Simulation<RaftProc>, servers: &[ProcId], p: Pending) -> Option<ProcId> {
    let only = p.only.map(|o| vec![o]);
    let order: Vec<ProcId> = only.unwrap_or_else(|| {
        (0..servers.len()).map(|i| servers[(p.first + i) % servers.len()]).collect()
    });
    order.into_iter().find(|&s| {
        let in_flight = sim.process(s).and_then(|q| q.server()?.fsync_in_flight());
        in_flight.is_some_and(|(_, hard_state)| hard_state || !p.hard_state_only)
    })
}
