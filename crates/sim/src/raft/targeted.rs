//! Faults aimed at whoever leads at the moment.
//!
//! The fault plan of the simulator core picks its victims blindly, so with 3 or 5 nodes most
//! crashes and pauses hit followers, which Raft shrugs off. The schedules that break a
//! consensus protocol nearly always involve the leader: deposed between appending and
//! replicating (divergent tails, Raft figure 8), paused between a decision and its effect,
//! isolated while clients still talk to it. So, when the seed turns this kind on, the runner
//! looks up the current leader at random moments and crashes it, isolates it, stops it, or
//! stops it in the middle of its next handler (its messages and observations held back), each
//! for a random while. What and when is drawn from the seed up front; who is decided by the
//! run, so the schedule follows the cluster wherever it goes. With the same switch, each newly
//! elected leader is, with a probability the seed draws, crashed (possibly in the middle of
//! its first fsync) or paused mid-handler within milliseconds of its election ("churn"),
//! before its first entry is safely replicated.

use palisade_raft::Role;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::raft::msg::RaftProc;
use crate::raft::options::SeedOptions;
use crate::{Fault, Partition, ProcId, Simulation};

/// Tag mixed into the seed for drawing the leader faults.
const LEADER_SEED_TAG: u64 = 0x5241_4654_4c45_4144;
/// Shortest leader fault.
const LEADER_FAULT_NANOS_MIN: u64 = 100_000_000;

/// Longest wait between a new leader's election and its churn crash: about the time it needs
/// to replicate its first entry (an fsync on each side and a round trip).
const CHURN_DELAY_NANOS_MAX: u64 = 10_000_000;
/// Shortest time a churned leader stays down (or paused).
const CHURN_DOWN_NANOS_MIN: u64 = 100_000_000;
/// Longest time a churned leader stays down (or paused).
const CHURN_DOWN_NANOS_MAX: u64 = 2_000_000_000;

/// What is done to the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Crash,
    Isolate,
    Pause,
    PauseMidHandler,
}

/// The leader faults of one run, in order of time.
#[derive(Debug)]
pub(crate) struct LeaderFaults {
    /// (true time, what, for how long).
    events: Vec<(u64, Kind, u64)>,
    next: usize,
    /// Faults that found a leader and were applied.
    pub applied: u32,
    /// Probability that a newly elected leader is crashed before it can replicate much.
    churn_probability: f64,
    /// Draws for the churn, made in the order leaders are elected.
    churn_rng: ChaCha8Rng,
    /// End of the safety phase: no churn after it.
    end: u64,
    /// New leaders crashed by the churn.
    pub churned: u32,
}

impl LeaderFaults {
    /// Draws `o.leader_faults` faults in `[0, end)`.
    pub fn draw(o: &SeedOptions, end: u64) -> LeaderFaults {
        let mut rng = ChaCha8Rng::seed_from_u64(o.seed ^ LEADER_SEED_TAG);
        let f = &o.fault_options;
        let mut events: Vec<(u64, Kind, u64)> = (0..o.leader_faults)
            .map(|_| {
                let at = rng.random_range(0..end.max(1));
                let (kind, max) = match rng.random_range(0..4) {
                    0 => (Kind::Crash, f.down_nanos_max),
                    1 => (Kind::Isolate, f.partition_nanos_max),
                    2 => (Kind::Pause, f.pause_nanos_max),
                    _ => (Kind::PauseMidHandler, f.pause_nanos_max),
                };
                let length =
                    rng.random_range(LEADER_FAULT_NANOS_MIN..=max.max(LEADER_FAULT_NANOS_MIN));
                (at, kind, length)
            })
            .collect();
        events.sort_by_key(|&(at, ..)| at);
        let churn_probability = if o.leader_faults > 0 { o.leader_churn } else { 0.0 };
        LeaderFaults {
            events,
            next: 0,
            applied: 0,
            churn_probability,
            churn_rng: ChaCha8Rng::seed_from_u64(rng.random()),
            end,
            churned: 0,
        }
    }

    /// `leader` was just elected (now): with the churn probability, before its first entry
    /// is safely replicated, crash it during its next fsync (returned: the caller arms it,
    /// with how long the leader then stays down), or crash it within a few milliseconds and
    /// restart it a little later, or stop it in the middle of its next handler call for a
    /// while (its decisions taken, its messages held back). This is what makes the schedules
    /// of Raft figure 8 likely: leaders whose first entries stay on a minority, deposed
    /// between committing an older entry and replicating their own.
    pub fn on_leader(&mut self, sim: &mut Simulation<RaftProc>, leader: ProcId) -> Option<u64> {
        let now = sim.now_nanos();
        if self.churn_probability == 0.0 || now >= self.end {
            return None;
        }
        if !self.churn_rng.random_bool(self.churn_probability) {
            return None;
        }
        self.churned += 1;
        let at = now + self.churn_rng.random_range(0..=CHURN_DELAY_NANOS_MAX);
        let down = self.churn_rng.random_range(CHURN_DOWN_NANOS_MIN..=CHURN_DOWN_NANOS_MAX);
        match self.churn_rng.random_range(0..3) {
            0 => return Some(down),
            1 => {
                sim.schedule(at, Fault::Crash(leader));
                sim.schedule(at + down, Fault::Restart(leader));
            }
            _ => sim.schedule(at, Fault::PauseMidHandler(leader, down)),
        }
        None
    }

    /// True time of the next fault, if any.
    pub fn next_at(&self) -> Option<u64> {
        self.events.get(self.next).map(|&(at, ..)| at)
    }

    /// Applies the next fault (its time has come) to the current leader, if there is one,
    /// and schedules its end.
    pub fn fire(&mut self, sim: &mut Simulation<RaftProc>, servers: &[ProcId]) {
        let Some(&(_, kind, length)) = self.events.get(self.next) else { return };
        self.next += 1;
        let Some(leader) = current_leader(sim, servers) else { return };
        let now = sim.now_nanos();
        let end = now.saturating_add(length);
        let applied = match kind {
            Kind::Crash => {
                let ok = sim.apply(Fault::Crash(leader)).is_ok();
                sim.schedule(end, Fault::Restart(leader));
                ok
            }
            Kind::Isolate if sim.partition().is_none() => {
                let ok = sim.apply(Fault::Partition(Partition::isolate(leader))).is_ok();
                sim.schedule(end, Fault::Heal);
                ok
            }
            Kind::Isolate => false,
            Kind::Pause => sim.apply(Fault::Pause(leader, length)).is_ok(),
            Kind::PauseMidHandler => sim.apply(Fault::PauseMidHandler(leader, length)).is_ok(),
        };
        self.applied += u32::from(applied);
    }
}

/// The running server that leads in the highest term, if any.
pub(crate) fn current_leader(sim: &Simulation<RaftProc>, servers: &[ProcId]) -> Option<ProcId> {
    servers
        .iter()
        .filter_map(|&p| Some((p, sim.process(p)?.server()?.node()?)))
        .filter(|(_, n)| n.role() == Role::Leader)
        .max_by_key(|(p, n)| (n.term(), std::cmp::Reverse(*p)))
        .map(|(p, _)| p)
}
