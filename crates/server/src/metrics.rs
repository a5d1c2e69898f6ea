//! The Prometheus metrics of a node, registered once and set by the node loop.
//!
//! Why one struct with typed setters instead of a registry everyone writes to: the families
//! and their labels are an interface (dashboards and alerts are built on them), so they are
//! declared in one place, with their help texts, and the node loop can only set values, not
//! invent names. Values the core computes (term, indices, phi, offsets) are gauges set from
//! its `Status`; things that happen (requests, elections, frames) are counters. Transport
//! counters are copied from [`TransportStats`] snapshots, which only grow, so the counters
//! stay monotonic.
//!
//! Families (all prefixed `palisade_`): `term`, `commit_index`, `applied_index`, `role`
//! (numeric: 0 follower, 1 pre-candidate, 2 candidate, 3 leader), `apply_lag` (commit minus
//! applied), `sessions`, `locks`, `waiters`; histograms `fsync_seconds` and
//! `request_seconds{op,outcome}`; gauges `phi{peer}`, `clock_offset_seconds{peer}` (the
//! peer's clock minus ours), `clock_offset_error_seconds{peer}`; counters
//! `requests_total{op,outcome}`, `elections_total`, `frames_sent_total`,
//! `frames_received_total`, `frames_dropped_total`, `handshakes_refused_total`,
//! `handshakes_failed_total`.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use palisade_raft::{NodeId, Role};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::transport::TransportStats;

/// Smallest upper bound of the latency histograms' buckets: 50 µs.
const LATENCY_BUCKET_START_SECONDS: f64 = 0.000_05;
/// Each bucket's bound is this many times the previous one.
const LATENCY_BUCKET_FACTOR: f64 = 2.0;
/// Number of buckets: 50 µs to about 26 s.
const LATENCY_BUCKETS: u16 = 20;

/// Labels of the request families: the API operation and how it ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The operation: `acquire`, `release`, `keepalive`, `kv_put`, ...
    pub op: String,
    /// How it ended: `ok`, `refused`, `not_leader`, `timeout`, `unknown`, ...
    pub outcome: String,
}

/// The label of the per-peer families.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    /// The peer's node id.
    pub peer: String,
}

impl PeerLabels {
    fn of(peer: NodeId) -> PeerLabels {
        PeerLabels { peer: peer.to_string() }
    }
}

type FloatGauge = Gauge<f64, AtomicU64>;
type RequestHistograms = Family<RequestLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(
        LATENCY_BUCKET_START_SECONDS,
        LATENCY_BUCKET_FACTOR,
        LATENCY_BUCKETS,
    ))
}

/// The transport counters, kept apart so one snapshot updates them together.
#[derive(Default)]
struct FrameCounters {
    sent: Counter,
    received: Counter,
    dropped: Counter,
    handshakes_refused: Counter,
    handshakes_failed: Counter,
}

/// A node's metrics registry. Cheap to share behind an `Arc`; every setter takes `&self`.
pub struct Metrics {
    registry: Registry,
    term: Gauge,
    commit_index: Gauge,
    applied_index: Gauge,
    role: Gauge,
    apply_lag: Gauge,
    sessions: Gauge,
    locks: Gauge,
    waiters: Gauge,
    fsync_seconds: Histogram,
    request_seconds: RequestHistograms,
    requests: Family<RequestLabels, Counter>,
    elections: Counter,
    phi: Family<PeerLabels, FloatGauge>,
    clock_offset_seconds: Family<PeerLabels, FloatGauge>,
    clock_offset_error_seconds: Family<PeerLabels, FloatGauge>,
    frames: FrameCounters,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").field("term", &self.term.get()).finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// A `u64` as a gauge value, saturating at `i64::MAX`.
fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Metrics {
    /// Registers every family under the prefix `palisade`.
    pub fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("palisade"),
            term: Gauge::default(),
            commit_index: Gauge::default(),
            applied_index: Gauge::default(),
            role: Gauge::default(),
            apply_lag: Gauge::default(),
            sessions: Gauge::default(),
            locks: Gauge::default(),
            waiters: Gauge::default(),
            fsync_seconds: latency_histogram(),
            request_seconds: Family::new_with_constructor(latency_histogram),
            requests: Family::default(),
            elections: Counter::default(),
            phi: Family::default(),
            clock_offset_seconds: Family::default(),
            clock_offset_error_seconds: Family::default(),
            frames: FrameCounters::default(),
        };
        m.register_all();
        m
    }

    fn register_all(&mut self) {
        let r = &mut self.registry;
        r.register("term", "Current Raft term", self.term.clone());
        r.register("commit_index", "Raft commit index", self.commit_index.clone());
        r.register("applied_index", "Last log index applied", self.applied_index.clone());
        let role_help = "Raft role: 0 follower, 1 pre-candidate, 2 candidate, 3 leader";
        r.register("role", role_help, self.role.clone());
        r.register("apply_lag", "Entries committed but not applied", self.apply_lag.clone());
        r.register("sessions", "Open sessions", self.sessions.clone());
        r.register("locks", "Lock records (held, awaited or delayed)", self.locks.clone());
        r.register("waiters", "Sessions waiting for a lock", self.waiters.clone());
        let fsync_help = "Duration of WAL fsyncs";
        r.register("fsync_seconds", fsync_help, self.fsync_seconds.clone());
        let request_help = "Duration of API requests, by operation and outcome";
        r.register("request_seconds", request_help, self.request_seconds.clone());
        r.register("requests", "API requests, by operation and outcome", self.requests.clone());
        r.register("elections", "Elections this node started", self.elections.clone());
        r.register("phi", "Phi accrual suspicion of each peer", self.phi.clone());
        let offset_help = "Estimated clock offset of each peer (peer minus local)";
        r.register("clock_offset_seconds", offset_help, self.clock_offset_seconds.clone());
        let error_help = "Error bound of each peer's clock offset estimate";
        r.register(
            "clock_offset_error_seconds",
            error_help,
            self.clock_offset_error_seconds.clone(),
        );
        let f = &self.frames;
        r.register("frames_sent", "Frames written to peers", f.sent.clone());
        r.register("frames_received", "Frames read from peers", f.received.clone());
        let dropped_help = "Frames dropped: full queue, unknown peer, or too large";
        r.register("frames_dropped", dropped_help, f.dropped.clone());
        let refused_help = "Peer handshakes refused (by either side)";
        r.register("handshakes_refused", refused_help, f.handshakes_refused.clone());
        let failed_help = "Peer handshakes that failed: I/O error, timeout, garbage";
        r.register("handshakes_failed", failed_help, f.handshakes_failed.clone());
    }

    /// Sets the Raft gauges: term, role, commit and applied indices, and the apply lag.
    pub fn set_raft(&self, term: u64, role: Role, commit: u64, applied: u64) {
        self.term.set(gauge_value(term));
        self.role.set(role_value(role));
        self.commit_index.set(gauge_value(commit));
        self.applied_index.set(gauge_value(applied));
        self.apply_lag.set(gauge_value(commit.saturating_sub(applied)));
    }

    /// Sets the lock service gauges.
    pub fn set_lock_counts(&self, sessions: u64, locks: u64, waiters: u64) {
        self.sessions.set(gauge_value(sessions));
        self.locks.set(gauge_value(locks));
        self.waiters.set(gauge_value(waiters));
    }

    /// Records one fsync's duration.
    pub fn observe_fsync(&self, took: Duration) {
        self.fsync_seconds.observe(took.as_secs_f64());
    }

    /// Records one API request: its duration and one more in `requests_total`.
    pub fn observe_request(&self, op: &str, outcome: &str, took: Duration) {
        let labels = RequestLabels { op: op.to_owned(), outcome: outcome.to_owned() };
        self.request_seconds.get_or_create(&labels).observe(took.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    /// Counts an election this node started.
    pub fn inc_elections(&self) {
        self.elections.inc();
    }

    /// Sets a peer's phi and clock offset (seconds, peer minus local) with its error bound;
    /// `None` removes the offset series (no estimate yet).
    pub fn set_peer(&self, peer: NodeId, phi: f64, offset: Option<(f64, f64)>) {
        let labels = PeerLabels::of(peer);
        self.phi.get_or_create(&labels).set(phi);
        match offset {
            Some((offset_seconds, error_seconds)) => {
                self.clock_offset_seconds.get_or_create(&labels).set(offset_seconds);
                self.clock_offset_error_seconds.get_or_create(&labels).set(error_seconds);
            }
            None => {
                self.clock_offset_seconds.remove(&labels);
                self.clock_offset_error_seconds.remove(&labels);
            }
        }
    }

    /// Removes every series of a peer that left the cluster.
    pub fn remove_peer(&self, peer: NodeId) {
        let labels = PeerLabels::of(peer);
        self.phi.remove(&labels);
        self.clock_offset_seconds.remove(&labels);
        self.clock_offset_error_seconds.remove(&labels);
    }

    /// Brings the frame counters up to a transport's counters (which only grow).
    pub fn observe_transport(&self, stats: &TransportStats) {
        let f = &self.frames;
        for (counter, total) in [
            (&f.sent, stats.frames_sent),
            (&f.received, stats.frames_received),
            (&f.dropped, stats.frames_dropped),
            (&f.handshakes_refused, stats.handshakes_refused),
            (&f.handshakes_failed, stats.handshakes_failed),
        ] {
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }

    /// The registry, to register further families.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Every family in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The numeric value of a role in the `role` gauge.
pub fn role_value(role: Role) -> i64 {
    match role {
        Role::Follower => 0,
        Role::PreCandidate => 1,
        Role::Candidate => 2,
        Role::Leader => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_encoded_with_its_values() {
        let m = Metrics::new();
        m.set_raft(7, Role::Leader, 42, 40);
        m.set_lock_counts(3, 2, 1);
        m.observe_fsync(Duration::from_micros(300));
        m.observe_request("acquire", "ok", Duration::from_millis(2));
        m.observe_request("acquire", "ok", Duration::from_millis(3));
        m.inc_elections();
        m.set_peer(2, 0.5, Some((-0.004, 0.001)));
        m.set_peer(3, 9.0, None);
        let stats = TransportStats { frames_sent: 10, frames_dropped: 1, ..Default::default() };
        m.observe_transport(&stats);
        m.observe_transport(&TransportStats { frames_sent: 12, ..stats });
        let text = m.encode();
        for line in [
            "palisade_term 7",
            "palisade_commit_index 42",
            "palisade_applied_index 40",
            "palisade_role 3",
            "palisade_apply_lag 2",
            "palisade_sessions 3",
            "palisade_locks 2",
            "palisade_waiters 1",
            "palisade_fsync_seconds_count 1",
            "palisade_request_seconds_count{op=\"acquire\",outcome=\"ok\"} 2",
            "palisade_requests_total{op=\"acquire\",outcome=\"ok\"} 2",
            "palisade_elections_total 1",
            "palisade_phi{peer=\"2\"} 0.5",
            "palisade_phi{peer=\"3\"} 9.0",
            "palisade_clock_offset_seconds{peer=\"2\"} -0.004",
            "palisade_clock_offset_error_seconds{peer=\"2\"} 0.001",
            "palisade_frames_sent_total 12",
            "palisade_frames_received_total 0",
            "palisade_frames_dropped_total 1",
            "palisade_handshakes_refused_total 0",
            "palisade_handshakes_failed_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("palisade_clock_offset_seconds{peer=\"3\"}"));
        m.remove_peer(2);
        assert!(!m.encode().contains("peer=\"2\""));
    }

    #[test]
    fn roles_are_numbered_in_order_of_ambition() {
        let roles = [Role::Follower, Role::PreCandidate, Role::Candidate, Role::Leader];
        let values: Vec<i64> = roles.into_iter().map(role_value).collect();
        assert_eq!(values, vec![0, 1, 2, 3]);
    }
}
