//! The fixed-timeout and the phi-accrual elections compared, under the same seeds.
//!
//! Why: the design chose a phi accrual detector for followers watching the leader because it
//! adapts to the observed heartbeat jitter, so it should notice a dead leader sooner on a quiet
//! network without more false alarms on a noisy one. This measures both halves of that claim
//! on the real Raft code: for each seed and each election kind, a 5-node cluster with a
//! proposing client runs on the seed's network (clean or lossy, the same for both kinds) with
//! no random faults; every `interval` the current leader is lost (crashed, or isolated, in
//! turn) for `outage`. The **failover time** of a loss is the time from the loss until a new
//! leader commits its first entry (it can serve again); a **spurious election** is a
//! campaign (a node becoming a candidate) while the cluster had a healthy leader, i.e.
//! outside the windows from a loss to its failover. The checkers run as in any seed, so the
//! comparison is also a safety run.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use palisade_raft::{Role, Term};

use crate::raft::checker::CheckerKind;
use crate::raft::msg::RaftObs;
use crate::raft::options::{ElectionKind, FaultSelection, RaftSimOptions, SeedOptions};
use crate::raft::report::secs;
use crate::raft::run::World;
use crate::raft::targeted::current_leader;
use crate::{Fault, Partition, ProcId, TraceSink};

/// How a failover comparison runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailoverOptions {
    /// The seeds (each runs once per election kind).
    pub seeds: Range<u64>,
    /// Cluster size.
    pub nodes: usize,
    /// Time before the first loss (the first leader is elected in it).
    pub warmup: Duration,
    /// Leader losses per run.
    pub losses: u32,
    /// Time between two losses.
    pub interval: Duration,
    /// How long a lost leader stays crashed or isolated.
    pub outage: Duration,
}

impl FailoverOptions {
    /// 5 nodes, 5 s of warm-up, then 5 losses 10 s apart, each lasting 5 s.
    pub fn new(seeds: Range<u64>) -> FailoverOptions {
        FailoverOptions {
            seeds,
            nodes: 5,
            warmup: Duration::from_secs(5),
            losses: 5,
            interval: Duration::from_secs(10),
            outage: Duration::from_secs(5),
        }
    }
}

/// What one election kind did over the seeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailoverStats {
    /// The election kind.
    pub election: ElectionKind,
    /// Leaders lost (a loss is skipped when there is no leader to lose).
    pub losses: u64,
    /// Losses after which a new leader committed before the next loss.
    pub failovers: u64,
    /// Sum of the failover times, in nanoseconds.
    pub failover_nanos_total: u64,
    /// Longest failover time.
    pub failover_nanos_max: u64,
    /// Failovers after crashes, and their total time.
    pub crash_failovers: (u64, u64),
    /// Failovers after isolations, and their total time.
    pub isolate_failovers: (u64, u64),
    /// Campaigns while a healthy leader existed.
    pub spurious_elections: u64,
    /// Leaders elected while a healthy leader existed.
    pub spurious_leaders: u64,
    /// Runs in which a checker found a violation (safety must hold here too).
    pub failed_runs: u64,
}

impl FailoverStats {
    /// Nothing measured yet.
    pub fn new(election: ElectionKind) -> FailoverStats {
        FailoverStats {
            election,
            losses: 0,
            failovers: 0,
            failover_nanos_total: 0,
            failover_nanos_max: 0,
            crash_failovers: (0, 0),
            isolate_failovers: (0, 0),
            spurious_elections: 0,
            spurious_leaders: 0,
            failed_runs: 0,
        }
    }

    /// Mean failover time in nanoseconds, if any failover happened.
    pub fn mean_nanos(&self) -> Option<u64> {
        self.failover_nanos_total.checked_div(self.failovers)
    }

    /// Adds the measurements of `other` (of the same election kind).
    pub fn add(&mut self, other: &FailoverStats) {
        assert_eq!(self.election, other.election, "adding stats of another election");
        self.losses += other.losses;
        self.failovers += other.failovers;
        self.failover_nanos_total += other.failover_nanos_total;
        self.failover_nanos_max = self.failover_nanos_max.max(other.failover_nanos_max);
        self.crash_failovers.0 += other.crash_failovers.0;
        self.crash_failovers.1 += other.crash_failovers.1;
        self.isolate_failovers.0 += other.isolate_failovers.0;
        self.isolate_failovers.1 += other.isolate_failovers.1;
        self.spurious_elections += other.spurious_elections;
        self.spurious_leaders += other.spurious_leaders;
        self.failed_runs += other.failed_runs;
    }
}

impl fmt::Display for FailoverStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mean = |(n, total): (u64, u64)| total.checked_div(n).map_or("-".into(), secs);
        write!(
            f,
            "{:<5}  losses {:>4}  failovers {:>4}  mean {:>8}  max {:>8}  after crash {:>8}  \
             after isolation {:>8}  spurious elections {:>3}  spurious leaders {:>3}  \
             failed runs {}",
            self.election.name(),
            self.losses,
            self.failovers,
            self.mean_nanos().map_or("-".into(), secs),
            secs(self.failover_nanos_max),
            mean(self.crash_failovers),
            mean(self.isolate_failovers),
            self.spurious_elections,
            self.spurious_leaders,
            self.failed_runs
        )
    }
}

/// Both election kinds over the same seeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailoverReport {
    /// The options.
    pub options: FailoverOptions,
    /// The randomized-timeout election.
    pub fixed: FailoverStats,
    /// The phi-accrual election.
    pub phi: FailoverStats,
}

impl fmt::Display for FailoverReport {
    /// A few lines, each ending in a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        writeln!(
            f,
            "failover: seeds {}..{}, {} nodes, heartbeat 100ms, {} leader losses per run \
             (crash and isolation in turn) every {}, each for {}",
            o.seeds.start,
            o.seeds.end,
            o.nodes,
            o.losses,
            secs(duration_nanos(o.interval)),
            secs(duration_nanos(o.outage))
        )?;
        writeln!(f, "{}", self.fixed)?;
        writeln!(f, "{}", self.phi)
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Runs every seed with both election kinds.
pub fn failover_compare(options: &FailoverOptions) -> FailoverReport {
    let mut fixed = FailoverStats::new(ElectionKind::Fixed);
    let mut phi = FailoverStats::new(ElectionKind::Phi);
    for seed in options.seeds.clone() {
        fixed.add(&failover_seed(seed, ElectionKind::Fixed, options));
        phi.add(&failover_seed(seed, ElectionKind::Phi, options));
    }
    FailoverReport { options: options.clone(), fixed, phi }
}

/// One leader loss.
#[derive(Clone, Copy, Debug)]
struct Loss {
    at: u64,
    leader: ProcId,
    term: Term,
    crash: bool,
    /// When a new leader committed its first entry.
    recovered: Option<u64>,
}

/// One run of `seed` with `election`.
pub fn failover_seed(
    seed: u64,
    election: ElectionKind,
    options: &FailoverOptions,
) -> FailoverStats {
    let mut pinned = RaftSimOptions::new(seed);
    pinned.nodes = Some(options.nodes);
    pinned.election = Some(election);
    pinned.faults = FaultSelection::None;
    let mut o = SeedOptions::derive(&pinned);
    o.heartbeat = Duration::from_millis(100);
    o.pre_vote = true;
    let mut w = World::build(&o, TraceSink::HashOnly);
    w.tap = Some(Vec::new());
    let mut losses: Vec<Loss> = Vec::new();
    let mut serving = false;
    let mut stats = FailoverStats::new(election);
    let outage = duration_nanos(options.outage);
    for k in 0..options.losses {
        let at = duration_nanos(options.warmup) + u64::from(k) * duration_nanos(options.interval);
        advance(&mut w, at, &mut losses, &mut serving, &mut stats);
        let servers = w.servers.clone();
        let Some(leader) = current_leader(&w.sim, &servers) else { continue };
        let term = w.sim.process(leader).and_then(|p| p.server()?.node()).map_or(0, |n| n.term());
        let crash = k % 2 == 0;
        if crash {
            w.sim.apply(Fault::Crash(leader)).expect("the leader is up");
            w.sim.schedule(at + outage, Fault::Restart(leader));
        } else {
            w.sim.apply(Fault::Partition(Partition::isolate(leader))).expect("partitions apply");
            w.sim.schedule(at + outage, Fault::Heal);
        }
        losses.push(Loss { at, leader, term, crash, recovered: None });
        stats.losses += 1;
    }
    let end = duration_nanos(options.warmup)
        + u64::from(options.losses) * duration_nanos(options.interval);
    advance(&mut w, end, &mut losses, &mut serving, &mut stats);
    w.check_logs();
    for loss in &losses {
        let Some(t) = loss.recovered else { continue };
        let d = t - loss.at;
        stats.failovers += 1;
        stats.failover_nanos_total += d;
        stats.failover_nanos_max = stats.failover_nanos_max.max(d);
        let slot =
            if loss.crash { &mut stats.crash_failovers } else { &mut stats.isolate_failovers };
        slot.0 += 1;
        slot.1 += d;
    }
    let failed = CheckerKind::ALL.iter().any(|&k| w.checkers.count(k) > 0);
    stats.failed_runs = u64::from(failed);
    stats
}

/// Runs to true time `t`, attributing each observation to the latest loss. `serving` turns
/// true once the run's first leader has committed (campaigns before that are the start-up).
fn advance(
    w: &mut World,
    t: u64,
    losses: &mut [Loss],
    serving: &mut bool,
    stats: &mut FailoverStats,
) {
    w.run_to(t);
    let observed = std::mem::take(w.tap.as_mut().expect("tapped"));
    for o in observed {
        let open = losses.last_mut().filter(|l| l.recovered.is_none() && o.t_nanos >= l.at);
        let healthy = *serving && open.is_none();
        match (o.obs, open) {
            (RaftObs::LeaderCommit { term, .. }, Some(loss))
                if term > loss.term && o.proc != loss.leader =>
            {
                loss.recovered = Some(o.t_nanos);
            }
            (RaftObs::LeaderCommit { .. }, None) => *serving = true,
            (RaftObs::Role { role: Role::Candidate, .. }, _) if healthy => {
                stats.spurious_elections += 1;
            }
            (RaftObs::Role { role: Role::Leader, .. }, _) if healthy => {
                stats.spurious_leaders += 1;
            }
            _ => {}
        }
    }
}
