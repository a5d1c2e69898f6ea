//! What one seed of the Raft simulation decides, and what a caller may pin.
//!
//! Swarm testing (TigerBeetle's VOPR, Groce et al.): instead of one configuration with every
//! fault at a middling rate, every seed draws its own: 3 or 5 nodes, the fixed-timeout or the
//! phi-accrual election, PreVote on or off, how often the log is compacted, how many entries
//! fit in a message, how slow the disk is, how lossy the network is, and which kinds of fault
//! happen at all and how many of each. Some bugs need a quiet run with one odd fault; others
//! need everything at once. [`RaftSimOptions`] pins any of these from the command line;
//! [`SeedOptions::derive`] draws the rest from the seed, deterministically, and the report
//! prints them all, so a failing seed is understood before it is rerun.

use std::fmt;
use std::time::Duration;

use palisade_raft::{Config, ElectionConfig, Membership, TestingFault};
use palisade_storage::WalOptions;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::raft::client::ClientConfig;
use crate::raft::server::ServerConfig;
use crate::{DelayConfig, FaultKinds, FaultOptions, NetworkConfig};

/// After the liveness phase begins, a leader must exist within this much true time.
pub const LIVENESS_LEADER_NANOS_MAX: u64 = 10_000_000_000;
/// After the liveness phase begins, a command proposed in it must be acknowledged within this.
pub const LIVENESS_COMMIT_NANOS_MAX: u64 = 15_000_000_000;
/// After the liveness phase begins, every live server must have applied that command within
/// this.
pub const LIVENESS_CONVERGE_NANOS_MAX: u64 = 30_000_000_000;

/// Tag mixed into the seed for drawing the options.
const OPTIONS_SEED_TAG: u64 = 0x5241_4654_4f50_5453;
/// Tag mixed into the seed for drawing the fault plan.
const PLAN_SEED_TAG: u64 = 0x5241_4654_504c_414e;
/// Tag mixed into the seed for drawing when clock steps are corrected.
const CLOCK_SEED_TAG: u64 = 0x5241_4654_434c_4f4b;

/// How followers detect a failed leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ElectionKind {
    /// Raft's randomized election timeout (10 to 20 heartbeats: 1–2 s with 100 ms).
    Fixed,
    /// The phi accrual detector ([`ElectionConfig::phi_default`]).
    Phi,
}

impl ElectionKind {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            ElectionKind::Fixed => "fixed",
            ElectionKind::Phi => "phi",
        }
    }

    /// Parses `fixed` or `phi`.
    pub fn parse(s: &str) -> Result<ElectionKind, String> {
        match s {
            "fixed" => Ok(ElectionKind::Fixed),
            "phi" => Ok(ElectionKind::Phi),
            _ => Err(format!("unknown election {s:?} (fixed or phi)")),
        }
    }

    /// Raft's election configuration for this kind.
    /// Raft's election configuration for this kind, scaled to `heartbeat` as Raft's defaults
    /// are to 100 ms (randomized timeout 10 to 20 heartbeats; phi as `phi_default`).
    pub fn config(self, heartbeat: Duration) -> ElectionConfig {
        match self {
            ElectionKind::Fixed => {
                ElectionConfig::RandomizedTimeout { min: heartbeat * 10, max: heartbeat * 20 }
            }
            ElectionKind::Phi => ElectionConfig::phi_default(heartbeat),
        }
    }
}

/// A deliberately broken Raft, for tests of the checkers only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
    /// [`TestingFault::DoubleCountOwnVote`].
    DoubleVote,
    /// [`TestingFault::CommitEarlierTermByCount`].
    EarlierTerm,
}

impl Broken {
    /// Parses `double-vote` or `earlier-term`.
    pub fn parse(s: &str) -> Result<Broken, String> {
        match s {
            "double-vote" => Ok(Broken::DoubleVote),
            "earlier-term" => Ok(Broken::EarlierTerm),
            _ => Err(format!("unknown broken variant {s:?} (double-vote or earlier-term)")),
        }
    }

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Broken::DoubleVote => "double-vote",
            Broken::EarlierTerm => "earlier-term",
        }
    }

    /// Raft's testing fault.
    pub fn fault(self) -> TestingFault {
        match self {
            Broken::DoubleVote => TestingFault::DoubleCountOwnVote,
            Broken::EarlierTerm => TestingFault::CommitEarlierTermByCount,
        }
    }
}

/// Which kinds of fault a run may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultSelection {
    /// Each kind on or off as the seed decides (the default).
    Swarm,
    /// Every kind on.
    All,
    /// No fault at all.
    None,
    /// Exactly these kinds on.
    Only {
        /// The simulator core's kinds (each `Some(true)` or `Some(false)`).
        kinds: FaultKinds,
        /// Faults aimed at the current leader (see [`SeedOptions::leader_faults`]).
        leader: bool,
        /// Crashes during an fsync (see [`SeedOptions::io_crashes`]).
        io: bool,
    },
}

/// The fault kind names: the core's, in the order of [`FaultKinds`]' fields, then `leader`
/// and `io-crashes`.
const KIND_NAMES: [&str; 10] = [
    "partitions",
    "crashes",
    "pauses",
    "mid-handler-pauses",
    "drift",
    "wall-steps",
    "bit-flips",
    "network",
    "leader",
    "io-crashes",
];

impl FaultSelection {
    /// Parses `swarm`, `all`, `none` or a comma-separated list of kinds (`partitions`,
    /// `crashes`, `pauses`, `mid-handler-pauses`, `drift`, `wall-steps`, `bit-flips`,
    /// `network`, `leader`, `io-crashes`).
    pub fn parse(s: &str) -> Result<FaultSelection, String> {
        match s {
            "swarm" => return Ok(FaultSelection::Swarm),
            "all" => return Ok(FaultSelection::All),
            "none" => return Ok(FaultSelection::None),
            _ => {}
        }
        let mut on = [false; 10];
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let i = KIND_NAMES.iter().position(|k| *k == name).ok_or_else(|| {
                format!(
                    "unknown fault kind {name:?} (swarm, all, none or {})",
                    KIND_NAMES.join(",")
                )
            })?;
            on[i] = true;
        }
        let core = [on[0], on[1], on[2], on[3], on[4], on[5], on[6], on[7]];
        Ok(FaultSelection::Only { kinds: kinds_of(core.map(Some)), leader: on[8], io: on[9] })
    }

    /// The core kinds to pass to [`crate::FaultPlan::random`].
    pub fn kinds(self) -> FaultKinds {
        match self {
            FaultSelection::Swarm => FaultKinds::default(),
            FaultSelection::All => kinds_of([Some(true); 8]),
            FaultSelection::None => kinds_of([Some(false); 8]),
            FaultSelection::Only { kinds, .. } => kinds,
        }
    }

    /// Whether faults aimed at the leader are on: `None` lets the seed decide.
    pub fn leader(self) -> Option<bool> {
        match self {
            FaultSelection::Swarm => None,
            FaultSelection::All => Some(true),
            FaultSelection::None => Some(false),
            FaultSelection::Only { leader, .. } => Some(leader),
        }
    }

    /// Whether crashes during an fsync are on: `None` lets the seed decide.
    pub fn io(self) -> Option<bool> {
        match self {
            FaultSelection::Swarm => None,
            FaultSelection::All => Some(true),
            FaultSelection::None => Some(false),
            FaultSelection::Only { io, .. } => Some(io),
        }
    }
}

impl fmt::Display for FaultSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultSelection::Swarm => f.write_str("swarm"),
            FaultSelection::All => f.write_str("all"),
            FaultSelection::None => f.write_str("none"),
            FaultSelection::Only { kinds, leader, io } => {
                let mut on = flags_of(*kinds).to_vec();
                on.push(Some(*leader));
                on.push(Some(*io));
                let names: Vec<&str> = KIND_NAMES
                    .iter()
                    .zip(on)
                    .filter(|(_, o)| *o == Some(true))
                    .map(|(n, _)| *n)
                    .collect();
                f.write_str(&names.join(","))
            }
        }
    }
}

fn kinds_of(f: [Option<bool>; 8]) -> FaultKinds {
    FaultKinds {
        partitions: f[0],
        crashes: f[1],
        pauses: f[2],
        mid_handler_pauses: f[3],
        drift: f[4],
        wall_steps: f[5],
        bit_flips: f[6],
        network: f[7],
    }
}

fn flags_of(k: FaultKinds) -> [Option<bool>; 8] {
    [
        k.partitions,
        k.crashes,
        k.pauses,
        k.mid_handler_pauses,
        k.drift,
        k.wall_steps,
        k.bit_flips,
        k.network,
    ]
}

/// What a caller pins for one run; everything else is drawn from the seed.
#[derive(Clone, Debug, PartialEq)]
pub struct RaftSimOptions {
    /// The seed.
    pub seed: u64,
    /// Cluster size; `None`: 3 or 5.
    pub nodes: Option<usize>,
    /// Election kind; `None`: either.
    pub election: Option<ElectionKind>,
    /// Which kinds of fault may happen.
    pub faults: FaultSelection,
    /// Length of the safety phase (faults happen in it), in true time.
    pub safety: Duration,
    /// A deliberately broken Raft (tests only).
    pub broken: Option<Broken>,
    /// The client proposes a new command every this long.
    pub client_interval: Duration,
}

/// The client's default proposal interval.
pub const CLIENT_INTERVAL_DEFAULT: Duration = Duration::from_millis(20);

impl RaftSimOptions {
    /// The defaults for `seed`: everything drawn, 60 s of faults.
    pub fn new(seed: u64) -> RaftSimOptions {
        RaftSimOptions {
            seed,
            nodes: None,
            election: None,
            faults: FaultSelection::Swarm,
            safety: Duration::from_secs(60),
            broken: None,
            client_interval: CLIENT_INTERVAL_DEFAULT,
        }
    }

    /// The command-line flags that pin what differs from [`RaftSimOptions::new`] (each with a
    /// leading space), so a report can say how to reproduce it.
    pub fn flags(&self) -> String {
        let mut out = String::new();
        if let Some(n) = self.nodes {
            out.push_str(&format!(" --nodes {n}"));
        }
        if let Some(e) = self.election {
            out.push_str(&format!(" --election {}", e.name()));
        }
        if self.faults != FaultSelection::Swarm {
            out.push_str(&format!(" --faults {}", self.faults));
        }
        if self.safety != Duration::from_secs(60) {
            out.push_str(&format!(" --duration {}ms", self.safety.as_millis()));
        }
        if let Some(b) = self.broken {
            out.push_str(&format!(" --broken {}", b.name()));
        }
        if self.client_interval != CLIENT_INTERVAL_DEFAULT {
            out.push_str(&format!(" --client-interval {}", short_duration(self.client_interval)));
        }
        out
    }
}

/// Everything one seed decided, printed at the start of its report.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedOptions {
    /// The seed.
    pub seed: u64,
    /// Cluster size.
    pub nodes: usize,
    /// Election kind.
    pub election: ElectionKind,
    /// PreVote on or off.
    pub pre_vote: bool,
    /// Raft's heartbeat interval (election timeouts scale with it).
    pub heartbeat: Duration,
    /// Compact every this many applied entries.
    pub compact_every: u64,
    /// Raft's `entries_per_message_max`.
    pub entries_per_message_max: usize,
    /// Shortest fsync.
    pub fsync_min: Duration,
    /// Longest fsync.
    pub fsync_max: Duration,
    /// The client's behaviour.
    pub client: ClientConfig,
    /// The selection the fault kinds came from.
    pub faults: FaultSelection,
    /// The fault generator's options (kinds, intensities, base network).
    pub fault_options: FaultOptions,
    /// Faults aimed at whoever leads at the moment (crash, isolate, pause, pause in the
    /// middle of a handler), this many in the safety phase; 0: off.
    pub leader_faults: u32,
    /// With leader faults on: the probability that a newly elected leader is crashed
    /// within milliseconds.
    pub leader_churn: f64,
    /// Crashes that wait for a server's fsync to be in flight, this many; 0: off.
    pub io_crashes: u32,
    /// Length of the safety phase, in true nanoseconds.
    pub safety_nanos: u64,
    /// A deliberately broken Raft.
    pub broken: Option<Broken>,
    /// The flags that pin options ([`RaftSimOptions::flags`]).
    pub flags: String,
}

/// A duration as whole milliseconds if it is one, else microseconds (`20ms`, `2500us`).
fn short_duration(d: Duration) -> String {
    let micros = d.as_micros();
    if micros.is_multiple_of(1000) { format!("{}ms", micros / 1000) } else { format!("{micros}us") }
}

/// Picks one of `choices`.
fn pick<T: Copy>(rng: &mut ChaCha8Rng, choices: &[T]) -> T {
    choices[rng.random_range(0..choices.len())]
}

impl SeedOptions {
    /// Draws what `options` leaves open from its seed.
    ///
    /// # Panics
    /// If a pinned cluster size is 0 or above 9.
    pub fn derive(options: &RaftSimOptions) -> SeedOptions {
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ OPTIONS_SEED_TAG);
        let nodes = pick(&mut rng, &[3usize, 5]);
        let nodes = options.nodes.unwrap_or(nodes);
        assert!((1..=9).contains(&nodes), "cluster size {nodes} out of 1..=9");
        let election = pick(&mut rng, &[ElectionKind::Fixed, ElectionKind::Phi]);
        let fsync_max = pick(&mut rng, &[100_000u64, 1_000_000, 5_000_000]);
        let mut seed_options = SeedOptions {
            seed: options.seed,
            nodes,
            election: options.election.unwrap_or(election),
            pre_vote: rng.random_bool(0.8),
            heartbeat: Duration::from_millis(if rng.random_bool(0.3) { 20 } else { 100 }),
            compact_every: pick(&mut rng, &[4, 16, 64, 256]),
            entries_per_message_max: pick(&mut rng, &[1, 8, 64]),
            fsync_min: Duration::from_nanos(fsync_max / 10),
            fsync_max: Duration::from_nanos(fsync_max),
            client: ClientConfig {
                servers: u32::try_from(nodes).expect("small"),
                interval: options.client_interval,
                retry_after: Duration::from_millis(300),
                outstanding_max: 16,
            },
            faults: options.faults,
            fault_options: fault_options(&mut rng, options.faults, nodes),
            leader_faults: 0,
            leader_churn: 0.0,
            io_crashes: 0,
            safety_nanos: u64::try_from(options.safety.as_nanos()).unwrap_or(u64::MAX),
            broken: options.broken,
            flags: options.flags(),
        };
        let on = options.faults.leader().unwrap_or_else(|| rng.random_bool(0.5));
        let max = seed_options.fault_options.faults_per_kind_max;
        seed_options.leader_faults = if on { rng.random_range(1..=max * 2) } else { 0 };
        seed_options.leader_churn = if on { pick(&mut rng, &[0.3, 0.6, 0.9]) } else { 0.0 };
        let io = options.faults.io().unwrap_or_else(|| rng.random_bool(0.5));
        seed_options.io_crashes = if io { rng.random_range(1..=max * 2) } else { 0 };
        seed_options
    }

    /// The rng the fault plan is drawn from.
    pub fn plan_rng(&self) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.seed ^ PLAN_SEED_TAG)
    }

    /// The rng the corrections of time-of-day steps are drawn from.
    pub fn clock_correction_rng(&self) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.seed ^ CLOCK_SEED_TAG)
    }

    /// How every server is set up.
    pub fn server_config(&self) -> ServerConfig {
        let mut raft = Config::default_for(1);
        raft.heartbeat_interval = self.heartbeat;
        raft.election = self.election.config(self.heartbeat);
        raft.pre_vote = self.pre_vote;
        raft.entries_per_message_max = self.entries_per_message_max;
        raft.snapshot_chunk_bytes = 16;
        raft.testing_fault = self.broken.map(Broken::fault);
        ServerConfig {
            raft,
            voters: Membership::new(1..=self.nodes as u64),
            compact_every: self.compact_every,
            wal: WalOptions { segment_bytes_max: 4096 },
            fsync_min: self.fsync_min,
            fsync_max: self.fsync_max,
        }
    }
}

/// The fault generator's options: kinds from the selection, intensities and the base network
/// from the seed.
fn fault_options(rng: &mut ChaCha8Rng, faults: FaultSelection, nodes: usize) -> FaultOptions {
    let network = if rng.random_bool(0.5) {
        NetworkConfig::default()
    } else {
        NetworkConfig {
            drop_probability: rng.random_range(0.0..0.05),
            duplicate_probability: rng.random_range(0.0..0.02),
            reorder_probability: rng.random_range(0.0..0.05),
            corrupt_probability: rng.random_range(0.0..0.01),
            delay: DelayConfig {
                tail_probability: pick(rng, &[0.01, 0.05]),
                ..DelayConfig::default()
            },
            ..NetworkConfig::default()
        }
    };
    FaultOptions {
        servers: (0..nodes).map(|i| crate::ProcId(i as u32)).collect(),
        kinds: faults.kinds(),
        faults_per_kind_max: pick(rng, &[2, 4, 8, 16]),
        pause_nanos_max: pick(rng, &[500_000_000, 3_000_000_000]),
        down_nanos_max: pick(rng, &[1_000_000_000, 5_000_000_000]),
        partition_nanos_max: pick(rng, &[1_000_000_000, 5_000_000_000, 10_000_000_000]),
        network,
        ..FaultOptions::default()
    }
}

impl fmt::Display for SeedOptions {
    /// Several lines, each ending in a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "options: nodes {}, election {}, heartbeat {}ms, pre-vote {}, compact every {}, \
             entries/message {}, fsync {}..{}us",
            self.nodes,
            self.election.name(),
            self.heartbeat.as_millis(),
            if self.pre_vote { "on" } else { "off" },
            self.compact_every,
            self.entries_per_message_max,
            self.fsync_min.as_micros(),
            self.fsync_max.as_micros(),
        )?;
        let c = &self.client;
        writeln!(
            f,
            "client: a command every {}, re-sent after {}ms, at most {} waiting",
            short_duration(c.interval),
            c.retry_after.as_millis(),
            c.outstanding_max
        )?;
        let n = &self.fault_options.network;
        writeln!(
            f,
            "network: drop {:.4}, duplicate {:.4}, reorder {:.4}, corrupt {:.4}, tail {:.2}",
            n.drop_probability,
            n.duplicate_probability,
            n.reorder_probability,
            n.corrupt_probability,
            n.delay.tail_probability
        )?;
        let o = &self.fault_options;
        writeln!(
            f,
            "fault intensity: up to {} per kind, pauses up to {}ms, down up to {}ms, \
             partitions up to {}ms",
            o.faults_per_kind_max,
            o.pause_nanos_max / 1_000_000,
            o.down_nanos_max / 1_000_000,
            o.partition_nanos_max / 1_000_000
        )?;
        if let Some(b) = self.broken {
            writeln!(f, "BROKEN RAFT (testing fault): {}", b.name())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_selections_parse_and_print_back() {
        for s in ["swarm", "all", "none", "crashes,leader", "partitions,io-crashes,bit-flips"] {
            let parsed = FaultSelection::parse(s).expect("valid");
            assert_eq!(FaultSelection::parse(&parsed.to_string()), Ok(parsed), "{s}");
        }
        let only = FaultSelection::parse("crashes,leader").expect("valid");
        assert_eq!(only.kinds().crashes, Some(true));
        assert_eq!(only.kinds().partitions, Some(false));
        assert_eq!((only.leader(), only.io()), (Some(true), Some(false)));
        assert!(FaultSelection::parse("crashes,floods").is_err());
        assert_eq!(FaultSelection::Swarm.leader(), None);
    }

    #[test]
    fn flags_reproduce_the_pinned_options() {
        let mut o = RaftSimOptions::new(9);
        assert_eq!(o.flags(), "");
        o.nodes = Some(5);
        o.faults = FaultSelection::All;
        o.broken = Some(Broken::EarlierTerm);
        o.client_interval = Duration::from_micros(2500);
        assert_eq!(
            o.flags(),
            " --nodes 5 --faults all --broken earlier-term --client-interval 2500us"
        );
    }

    #[test]
    fn a_seed_draws_the_same_options_every_time() {
        let a = SeedOptions::derive(&RaftSimOptions::new(4));
        assert_eq!(a, SeedOptions::derive(&RaftSimOptions::new(4)));
        let differ = (0..20).any(|s| SeedOptions::derive(&RaftSimOptions::new(s)) != a);
        assert!(differ, "seeds draw different options");
        assert!([3, 5].contains(&a.nodes));
    }
}
