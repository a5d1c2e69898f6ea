//! What one seed of the lab decides, and what a caller may pin.
//!
//! Swarm testing, as in the Raft harness: every seed draws its own world — 3 or 5 servers, 2
//! to 10 clients, how many locks they fight over, the session TTL and the lock-delay, how
//! good the clocks are, the system model of the network, and which kinds of fault happen at
//! all and how many of each. A run with only client pauses finds different bugs from one where
//! everything happens at once. [`LabOptions`] pins any of these; [`LabSeed::derive`] draws
//! the rest from the seed, and the report prints them all.

use std::fmt;
use std::time::Duration;

use palisade_node::lock::{ClientTestingFault, LockTestingFault};
use palisade_node::raft::NodeId;
use palisade_node::{ClientConfig, NodeConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{DelayConfig, FaultKinds, FaultOptions, NetworkConfig, NetworkModel, ProcId};

/// Tag mixed into the seed for drawing the options.
const OPTIONS_SEED_TAG: u64 = 0x4c41_424f_5054_5321;
/// Tag mixed into the seed for drawing the fault plan.
const PLAN_SEED_TAG: u64 = 0x4c41_4250_4c41_4e21;
/// Tag mixed into the seed for the workload.
const WORKLOAD_SEED_TAG: u64 = 0x4c41_4257_4f52_4b21;

/// The cluster id of every lab run.
pub const LAB_CLUSTER_ID: u64 = 0x1ab;
/// The drift bound of seeds with good clocks (the cluster's default).
pub const DRIFT_GOOD_PPM: u32 = palisade_clock::DRIFT_BOUND_PPM_DEFAULT;
/// The drift bound of seeds with bad clocks (2%: cheap oscillators, virtual machines).
pub const DRIFT_BAD_PPM: u32 = 20_000;
/// The delay bound of the synchronous model, and of the partially synchronous one after GST.
pub const DELAY_BOUND_NANOS: u64 = 100_000_000;
/// The heavy tail of messages before stabilisation (and always, in the asynchronous model).
pub const TAIL_MAX_UNSTABLE_NANOS: u64 = 8_000_000_000;

/// The system model of the network (`--network`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkKind {
    /// Every delay bounded by [`DELAY_BOUND_NANOS`].
    Synchronous,
    /// Unbounded delays until the faults stop (the GST), bounded after.
    Partial,
    /// No bound on delays: only safety is checked.
    Asynchronous,
}

impl NetworkKind {
    /// Parses `synchronous`, `partial` or `asynchronous`.
    pub fn parse(s: &str) -> Result<NetworkKind, String> {
        match s {
            "synchronous" | "sync" => Ok(NetworkKind::Synchronous),
            "partial" | "partially-synchronous" => Ok(NetworkKind::Partial),
            "asynchronous" | "async" => Ok(NetworkKind::Asynchronous),
            _ => Err(format!("unknown network {s:?} (synchronous, partial or asynchronous)")),
        }
    }

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            NetworkKind::Synchronous => "synchronous",
            NetworkKind::Partial => "partial",
            NetworkKind::Asynchronous => "asynchronous",
        }
    }

    /// Whether liveness is demanded once the faults stop.
    pub fn checks_liveness(self) -> bool {
        self != NetworkKind::Asynchronous
    }
}

/// A deliberately broken build, for tests of the checkers only (`--broken`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabBroken {
    /// [`LockTestingFault::FenceCheckOff`]: palisade's kv accepts any token.
    FenceCheckOff,
    /// [`LockTestingFault::ExpireWithoutLog`]: the leader expires sessions on its own clock.
    ExpireWithoutLog,
    /// [`ClientTestingFault::TrustLeaseWithoutDriftMargin`]: clients trust `sent + TTL`.
    TrustLeaseWithoutDrift,
}

impl LabBroken {
    /// Every variant.
    pub const ALL: [LabBroken; 3] =
        [LabBroken::FenceCheckOff, LabBroken::ExpireWithoutLog, LabBroken::TrustLeaseWithoutDrift];

    /// Parses `fence-check-off`, `expire-without-log` or `trust-lease-without-drift`.
    pub fn parse(s: &str) -> Result<LabBroken, String> {
        LabBroken::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| {
            format!(
                "unknown broken build {s:?} (fence-check-off, expire-without-log or \
                 trust-lease-without-drift)"
            )
        })
    }

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            LabBroken::FenceCheckOff => "fence-check-off",
            LabBroken::ExpireWithoutLog => "expire-without-log",
            LabBroken::TrustLeaseWithoutDrift => "trust-lease-without-drift",
        }
    }
}

/// The fault kinds of the lab: the simulator core's, then the lab's own.
pub const KIND_NAMES: [&str; 14] = [
    "partitions",
    "crashes",
    "pauses",
    "mid-handler-pauses",
    "drift",
    "wall-steps",
    "bit-flips",
    "network",
    "client-crashes",
    "check-write-pauses",
    "quiet-clients",
    "stale-tokens",
    "bad-clocks",
    "clock-offsets",
];

/// Which kinds of fault a run may have: each `None` (the seed decides) or pinned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LabFaults {
    /// One entry per name of [`KIND_NAMES`].
    pub on: [Option<bool>; 14],
}

impl LabFaults {
    /// Each kind on or off as the seed decides.
    pub const SWARM: LabFaults = LabFaults { on: [None; 14] };
    /// Every kind on.
    pub const ALL: LabFaults = LabFaults { on: [Some(true); 14] };
    /// No fault at all.
    pub const NONE: LabFaults = LabFaults { on: [Some(false); 14] };

    /// Parses `swarm`, `all`, `none` or a comma-separated list of [`KIND_NAMES`] (exactly
    /// those on).
    pub fn parse(s: &str) -> Result<LabFaults, String> {
        match s {
            "swarm" => return Ok(LabFaults::SWARM),
            "all" => return Ok(LabFaults::ALL),
            "none" => return Ok(LabFaults::NONE),
            _ => {}
        }
        let mut f = LabFaults::NONE;
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let i = KIND_NAMES.iter().position(|k| *k == name).ok_or_else(|| {
                format!(
                    "unknown fault kind {name:?} (swarm, all, none or {})",
                    KIND_NAMES.join(",")
                )
            })?;
            f.on[i] = Some(true);
        }
        Ok(f)
    }

    /// The pin of kind `name` (one of [`KIND_NAMES`]).
    pub fn pinned(&self, name: &str) -> Option<bool> {
        let i = KIND_NAMES.iter().position(|k| *k == name).expect("a known fault kind");
        self.on[i]
    }

    /// The simulator core's kinds.
    pub fn core(&self) -> FaultKinds {
        let o = self.on;
        FaultKinds {
            partitions: o[0],
            crashes: o[1],
            pauses: o[2],
            mid_handler_pauses: o[3],
            drift: o[4],
            wall_steps: o[5],
            bit_flips: o[6],
            network: o[7],
        }
    }
}

impl fmt::Display for LabFaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == LabFaults::SWARM {
            return f.write_str("swarm");
        }
        if *self == LabFaults::ALL {
            return f.write_str("all");
        }
        if *self == LabFaults::NONE {
            return f.write_str("none");
        }
        let names: Vec<&str> = KIND_NAMES
            .iter()
            .zip(self.on)
            .filter(|(_, o)| *o == Some(true))
            .map(|(n, _)| *n)
            .collect();
        f.write_str(&names.join(","))
    }
}

/// What a caller pins for one run; everything else is drawn from the seed.
#[derive(Clone, Debug, PartialEq)]
pub struct LabOptions {
    /// The seed.
    pub seed: u64,
    /// Servers; `None`: 3 or 5.
    pub nodes: Option<usize>,
    /// Clients; `None`: 2 to 10.
    pub clients: Option<usize>,
    /// Which kinds of fault may happen.
    pub faults: LabFaults,
    /// Length of the safety phase (faults happen in it).
    pub safety: Duration,
    /// Length of the liveness phase that follows.
    pub liveness: Duration,
    /// The system model; `None`: drawn.
    pub network: Option<NetworkKind>,
    /// A deliberately broken build (tests only).
    pub broken: Option<LabBroken>,
}

/// The default safety phase.
pub const SAFETY_DEFAULT: Duration = Duration::from_secs(60);
/// The default liveness phase.
pub const LIVENESS_DEFAULT: Duration = Duration::from_secs(30);

impl LabOptions {
    /// Everything drawn from `seed`, 60 s of faults and 30 s of calm.
    pub fn new(seed: u64) -> LabOptions {
        LabOptions {
            seed,
            nodes: None,
            clients: None,
            faults: LabFaults::SWARM,
            safety: SAFETY_DEFAULT,
            liveness: LIVENESS_DEFAULT,
            network: None,
            broken: None,
        }
    }

    /// The command-line flags that pin what differs from [`LabOptions::new`], each with a
    /// leading space, so a report can say how to reproduce it.
    pub fn flags(&self) -> String {
        let mut out = String::new();
        if let Some(n) = self.nodes {
            out.push_str(&format!(" --nodes {n}"));
        }
        if let Some(n) = self.clients {
            out.push_str(&format!(" --clients {n}"));
        }
        if self.faults != LabFaults::SWARM {
            out.push_str(&format!(" --faults {}", self.faults));
        }
        if self.safety != SAFETY_DEFAULT {
            out.push_str(&format!(" --duration {}ms", self.safety.as_millis()));
        }
        if self.liveness != LIVENESS_DEFAULT {
            out.push_str(&format!(" --liveness {}ms", self.liveness.as_millis()));
        }
        if let Some(n) = self.network {
            out.push_str(&format!(" --network {}", n.name()));
        }
        if let Some(b) = self.broken {
            out.push_str(&format!(" --broken {}", b.name()));
        }
        out
    }
}

/// How many of each lab-specific fault a seed drew (0: off).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LabSwarm {
    /// Client crashes (some restart, some stay dead).
    pub client_crashes: u32,
    /// Probability, in percent, that a guarded write is paused between its check and its send.
    pub check_write_pause_pct: u32,
    /// Times a lock-holding client stops renewing its session for a while.
    pub quiet_clients: u32,
    /// Probability, in percent, that a write presents a remembered (maybe stale) token.
    pub stale_token_pct: u32,
    /// Clocks drift up to [`DRIFT_BAD_PPM`], starting at the extremes.
    pub bad_clocks: bool,
    /// A minority of servers start with a time-of-day offset beyond the cluster's maximum.
    pub clock_offsets: bool,
}

/// Everything one seed decided.
#[derive(Clone, Debug, PartialEq)]
pub struct LabSeed {
    /// The pinned options.
    pub options: LabOptions,
    /// Servers.
    pub nodes: usize,
    /// Clients.
    pub clients: usize,
    /// Locks the clients fight over.
    pub locks: usize,
    /// The sessions' TTL.
    pub ttl: Duration,
    /// The lock-delay after an expiry.
    pub lock_delay: Duration,
    /// Snapshot every this many applied entries.
    pub snapshot_every: u64,
    /// A client's think time between operations: uniform up to this.
    pub think_max: Duration,
    /// Interval between a lock holder's guarded store writes.
    pub write_every: Duration,
    /// The network's system model.
    pub network: NetworkKind,
    /// The drift bound of every clock (and of the cluster's configuration).
    pub drift_bound_ppm: u32,
    /// The lab's own fault counts.
    pub swarm: LabSwarm,
    /// The core fault generator's options.
    pub fault_options: FaultOptions,
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, from: &[T]) -> T {
    from[rng.random_range(0..from.len())]
}

impl LabSeed {
    /// Draws what `options` leaves open.
    pub fn derive(options: &LabOptions) -> LabSeed {
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ OPTIONS_SEED_TAG);
        let nodes = options.nodes.unwrap_or_else(|| pick(&mut rng, &[3, 5]));
        let clients = options.clients.unwrap_or_else(|| rng.random_range(2..=10));
        let locks = rng.random_range(1..=3);
        let ttl = pick(&mut rng, &[Duration::from_secs(2), Duration::from_secs(4)]);
        let lock_delay = pick(&mut rng, &[Duration::from_millis(200), Duration::from_secs(1)]);
        let snapshot_every = pick(&mut rng, &[50, 500]);
        let think_max = pick(&mut rng, &[Duration::from_millis(50), Duration::from_millis(300)]);
        let write_every = pick(&mut rng, &[Duration::from_millis(20), Duration::from_millis(100)]);
        let network = options.network.unwrap_or_else(|| {
            pick(
                &mut rng,
                &[NetworkKind::Synchronous, NetworkKind::Partial, NetworkKind::Asynchronous],
            )
        });
        let f = options.faults;
        let mut on = |name: &str| f.pinned(name).unwrap_or_else(|| rng.random_bool(0.5));
        let (crash, pause, quiet, stale, bad, offsets) = (
            on("client-crashes"),
            on("check-write-pauses"),
            on("quiet-clients"),
            on("stale-tokens"),
            on("bad-clocks"),
            on("clock-offsets"),
        );
        let swarm = LabSwarm {
            client_crashes: if crash { rng.random_range(1..=4) } else { 0 },
            check_write_pause_pct: if pause { pick(&mut rng, &[2, 10, 30]) } else { 0 },
            quiet_clients: if quiet { rng.random_range(1..=6) } else { 0 },
            stale_token_pct: if stale { pick(&mut rng, &[2, 10]) } else { 0 },
            bad_clocks: bad,
            clock_offsets: offsets,
        };
        let drift_bound_ppm = if bad { DRIFT_BAD_PPM } else { DRIFT_GOOD_PPM };
        let safety_nanos = nanos(options.safety);
        let fault_options =
            fault_options(&mut rng, f, nodes, network, safety_nanos, ttl, drift_bound_ppm);
        LabSeed {
            options: options.clone(),
            nodes,
            clients,
            locks,
            ttl,
            lock_delay,
            snapshot_every,
            think_max,
            write_every,
            network,
            drift_bound_ppm,
            swarm,
            fault_options,
        }
    }

    /// The rng the core fault plan is drawn from.
    pub fn plan_rng(&self) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.options.seed ^ PLAN_SEED_TAG)
    }

    /// The rng the workload and the lab's own faults are drawn from.
    pub fn workload_rng(&self) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.options.seed ^ WORKLOAD_SEED_TAG)
    }

    /// The safety phase in nanoseconds.
    pub fn safety_nanos(&self) -> u64 {
        nanos(self.options.safety)
    }

    /// The liveness phase in nanoseconds.
    pub fn liveness_nanos(&self) -> u64 {
        nanos(self.options.liveness)
    }

    /// The node ids.
    pub fn node_ids(&self) -> Vec<NodeId> {
        (1..=self.nodes as u64).collect()
    }

    /// The configuration of node `id`.
    pub fn node_config(&self, id: NodeId) -> NodeConfig {
        let mut c = NodeConfig::default_for(LAB_CLUSTER_ID, id);
        c.lock.ttl_min = Duration::from_secs(1);
        c.lock.lock_delay = self.lock_delay;
        c.lock.drift_bound_ppm = self.drift_bound_ppm;
        c.raft.drift_bound_ppm = self.drift_bound_ppm;
        c.snapshot_every_entries = self.snapshot_every;
        c.lock.testing_fault = match self.options.broken {
            Some(LabBroken::FenceCheckOff) => Some(LockTestingFault::FenceCheckOff),
            Some(LabBroken::ExpireWithoutLog) => Some(LockTestingFault::ExpireWithoutLog),
            _ => None,
        };
        c
    }

    /// The configuration of every client.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new(self.node_ids(), self.ttl);
        c.attempt_timeout = Duration::from_millis(300);
        c.op_timeout = Duration::from_secs(5);
        c.drift_bound_ppm = self.drift_bound_ppm;
        if self.options.broken == Some(LabBroken::TrustLeaseWithoutDrift) {
            c.testing_fault = Some(ClientTestingFault::TrustLeaseWithoutDriftMargin);
        }
        c
    }

    /// The lock names.
    pub fn lock_names(&self) -> Vec<String> {
        (0..self.locks).map(|i| format!("L{i}")).collect()
    }
}

/// Nanoseconds of a duration, saturated.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The network of the run: a LAN, lossy or not, under the seed's system model.
fn base_network(rng: &mut ChaCha8Rng, kind: NetworkKind, safety_nanos: u64) -> NetworkConfig {
    let lossy = rng.random_bool(0.5);
    let mut n = NetworkConfig::default();
    if lossy {
        n.drop_probability = rng.random_range(0.0..0.05);
        n.duplicate_probability = rng.random_range(0.0..0.02);
        n.reorder_probability = rng.random_range(0.0..0.05);
        n.corrupt_probability = rng.random_range(0.0..0.01);
    }
    n.delay = DelayConfig {
        tail_probability: pick(rng, &[0.01, 0.05]),
        tail_max_nanos: if kind == NetworkKind::Synchronous {
            DELAY_BOUND_NANOS
        } else {
            TAIL_MAX_UNSTABLE_NANOS
        },
        ..DelayConfig::default()
    };
    n.model = match kind {
        NetworkKind::Synchronous => {
            NetworkModel::Synchronous { delay_max_nanos: DELAY_BOUND_NANOS }
        }
        NetworkKind::Partial => NetworkModel::PartiallySynchronous {
            gst_nanos: safety_nanos,
            delay_max_after_gst_nanos: DELAY_BOUND_NANOS,
        },
        NetworkKind::Asynchronous => NetworkModel::Asynchronous,
    };
    n
}

fn fault_options(
    rng: &mut ChaCha8Rng,
    faults: LabFaults,
    nodes: usize,
    kind: NetworkKind,
    safety_nanos: u64,
    ttl: Duration,
    drift_bound_ppm: u32,
) -> FaultOptions {
    let network = base_network(rng, kind, safety_nanos);
    let ttl = nanos(ttl);
    FaultOptions {
        servers: (0..nodes).map(|i| ProcId(i as u32)).collect(),
        partition_clients: true,
        pause_clients: true,
        kinds: faults.core(),
        faults_per_kind_max: pick(rng, &[2, 4, 8]),
        pause_nanos_max: pick(rng, &[500_000_000, 3 * ttl]),
        down_nanos_max: pick(rng, &[1_000_000_000, 5_000_000_000]),
        partition_nanos_max: pick(rng, &[1_000_000_000, 5_000_000_000, 10_000_000_000]),
        drift_ppm_max: drift_bound_ppm,
        network,
        ..FaultOptions::default()
    }
}

impl fmt::Display for LabSeed {
    /// Several lines, each ending in a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "options: {} servers, {} clients, {} locks, ttl {}ms, lock-delay {}ms, snapshot \
             every {}, think up to {}ms, guarded writes every {}ms",
            self.nodes,
            self.clients,
            self.locks,
            self.ttl.as_millis(),
            self.lock_delay.as_millis(),
            self.snapshot_every,
            self.think_max.as_millis(),
            self.write_every.as_millis()
        )?;
        let n = &self.fault_options.network;
        writeln!(
            f,
            "network: {}, drop {:.4}, duplicate {:.4}, reorder {:.4}, corrupt {:.4}, tail {:.2} \
             up to {}ms",
            self.network.name(),
            n.drop_probability,
            n.duplicate_probability,
            n.reorder_probability,
            n.corrupt_probability,
            n.delay.tail_probability,
            n.delay.tail_max_nanos / 1_000_000
        )?;
        let o = &self.fault_options;
        writeln!(
            f,
            "fault intensity: up to {} per kind, pauses up to {}ms, down up to {}ms, partitions \
             up to {}ms; clocks: drift bound {} ppm",
            o.faults_per_kind_max,
            o.pause_nanos_max / 1_000_000,
            o.down_nanos_max / 1_000_000,
            o.partition_nanos_max / 1_000_000,
            self.drift_bound_ppm
        )?;
        let s = &self.swarm;
        writeln!(
            f,
            "lab faults: client crashes {}, check-write pauses {}%, quiet clients {}, stale \
             tokens {}%, bad clocks {}, clock offsets {}",
            s.client_crashes,
            s.check_write_pause_pct,
            s.quiet_clients,
            s.stale_token_pct,
            s.bad_clocks,
            s.clock_offsets
        )?;
        if let Some(b) = self.options.broken {
            writeln!(f, "BROKEN BUILD (testing fault): {}", b.name())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_selections_parse_and_print_back() {
        for s in ["swarm", "all", "none", "crashes,stale-tokens", "bad-clocks"] {
            let parsed = LabFaults::parse(s).expect("valid");
            assert_eq!(LabFaults::parse(&parsed.to_string()), Ok(parsed), "{s}");
        }
        assert!(LabFaults::parse("crashes,floods").is_err());
        assert_eq!(LabFaults::parse("crashes").unwrap().core().crashes, Some(true));
    }

    #[test]
    fn a_seed_draws_the_same_options_and_valid_configs() {
        for seed in 0..40 {
            let a = LabSeed::derive(&LabOptions::new(seed));
            assert_eq!(a, LabSeed::derive(&LabOptions::new(seed)));
            assert!([3, 5].contains(&a.nodes));
            assert!((2..=10).contains(&a.clients));
            for id in a.node_ids() {
                a.node_config(id).validate().expect("valid node config");
            }
            a.client_config().validate().expect("valid client config");
        }
    }

    #[test]
    fn flags_reproduce_the_pinned_options() {
        let mut o = LabOptions::new(1);
        assert_eq!(o.flags(), "");
        o.nodes = Some(5);
        o.network = Some(NetworkKind::Partial);
        o.broken = Some(LabBroken::FenceCheckOff);
        assert_eq!(o.flags(), " --nodes 5 --network partial --broken fence-check-off");
    }
}
