//! The data a run report draws: one [`Timeline`] per run, built by whoever ran the simulation
//! (the whole-service lab, a scenario) and rendered by `report::render_html`.
//!
//! The model is deliberately plain data (times in simulated nanoseconds since the run began,
//! lanes by index) so that the renderer knows nothing about Raft or locks, and so that a
//! timeline can be written to and read from JSON for tests.

use serde::{Deserialize, Serialize};

/// Simulated time in nanoseconds since the run began (the simulator's true, global time).
pub type Nanos = u64;

/// Everything one report shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Page title, e.g. `palisade sim --seed 42`.
    pub title: String,
    /// The seed, printed on the page so the run can be replayed.
    pub seed: u64,
    /// Free-form lines shown under the title: configuration, fault options, checker verdicts.
    pub summary: Vec<String>,
    /// Total simulated length of the run.
    pub end: Nanos,
    /// One horizontal lifeline per node, client and store, top to bottom in this order.
    pub lanes: Vec<Lane>,
    /// Messages between lanes.
    pub messages: Vec<Arrow>,
    /// Time intervals drawn on one lane: pauses, crashes, leases, partitions.
    pub bands: Vec<Band>,
    /// Instant events drawn on one lane: grants, writes, rejections, elections.
    pub marks: Vec<Mark>,
    /// Clock offset of each lane's local time-of-day clock from true time, sampled.
    pub clock_offsets: Vec<OffsetSample>,
    /// Operation latencies for the latency-over-time plot.
    pub latencies: Vec<LatencyPoint>,
    /// Global intervals shaded on the latency plot (any fault active: partition, pause, ...).
    pub fault_windows: Vec<FaultWindow>,
}

/// What a lane stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LaneKind {
    /// A palisade server.
    Node,
    /// A client process.
    Client,
    /// An external storage service.
    Store,
}

/// One lifeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lane {
    /// Label, e.g. `n1`, `client 3`, `store (fenced)`.
    pub name: String,
    /// Node, client or store.
    pub kind: LaneKind,
}

/// What happened to a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArrowFate {
    /// Delivered once.
    Delivered,
    /// Lost (random loss, partition, or destination down); drawn ending with a cross at `at`.
    Dropped,
    /// A duplicate copy that was delivered.
    Duplicated,
    /// Arrived corrupted and was rejected by the frame checksum.
    Corrupted,
}

/// A message arrow from one lane to another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Arrow {
    /// Sending lane (index into [`Timeline::lanes`]).
    pub from: usize,
    /// Receiving lane.
    pub to: usize,
    /// Send time.
    pub sent: Nanos,
    /// Arrival (or loss) time.
    pub at: Nanos,
    /// Delivered, dropped, duplicated or corrupted.
    pub fate: ArrowFate,
    /// Short label shown on hover (`<title>`), e.g. `AppendEntries t3 i17..19`.
    pub label: String,
}

/// What a band means (chooses its colour and its legend entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BandKind {
    /// A stop-the-world pause.
    Pause,
    /// Down (crashed, not yet restarted).
    Down,
    /// Cut off by a partition from some other lanes (label says from whom).
    Partitioned,
    /// The node was the leader.
    Leader,
    /// A lock lease as the client saw it (its local, drift-shortened lease was valid).
    LeaseClientView,
    /// A lock grant as the leader saw it (granted until released or expired through the log).
    LeaseServerView,
    /// The client's lease was in jeopardy (could not renew, not yet lost).
    Jeopardy,
    /// The client's lease had run out, but the client had not noticed yet (it was paused, or
    /// had checked before the end and was still acting): it may still behave as the holder.
    LeaseUnaware,
}

/// An interval on one lane.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Band {
    /// The lane.
    pub lane: usize,
    /// Start.
    pub start: Nanos,
    /// End (clamped to the run's end when still open).
    pub end: Nanos,
    /// What it is.
    pub kind: BandKind,
    /// Label, e.g. `lock a, token 33` or `pause 12 s`.
    pub label: String,
}

/// What a mark means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MarkKind {
    /// A lock was granted (label carries the token).
    Grant,
    /// A lock was released or expired.
    Release,
    /// A write accepted by storage (label carries the token presented).
    WriteAccepted,
    /// A stale write rejected by fencing: highlighted.
    WriteRejected,
    /// A write the unchecked store accepted although its token was stale: a lost update.
    LostUpdate,
    /// A node became leader (label carries the term).
    Elected,
    /// A time-of-day clock step or rate change.
    ClockChange,
    /// A checker violation, pinned where it was found.
    Violation,
    /// Anything else worth a label.
    Note,
}

/// An instant on one lane.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    /// The lane.
    pub lane: usize,
    /// When.
    pub at: Nanos,
    /// What.
    pub kind: MarkKind,
    /// Label, e.g. `token 34` or `write x=2 (token 33) rejected: stale`.
    pub label: String,
}

/// A lane's clock offset at one time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OffsetSample {
    /// The lane.
    pub lane: usize,
    /// When (true time).
    pub at: Nanos,
    /// Local time-of-day minus true time, in nanoseconds (may be negative).
    pub offset: i64,
}

/// How an operation ended, for colouring the latency plot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LatencyOutcome {
    /// Completed successfully.
    Ok,
    /// Completed with a definite failure (stale token, lock held, ...).
    Fail,
    /// The client could not learn the outcome (timed out).
    Unknown,
}

/// One operation on the latency-over-time plot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyPoint {
    /// Invocation time.
    pub at: Nanos,
    /// Latency (return minus invocation, or until given up for `Unknown`).
    pub latency: Nanos,
    /// Operation kind, e.g. `acquire`, `put`, `read`.
    pub op: String,
    /// How it ended.
    pub outcome: LatencyOutcome,
}

/// A global interval with some fault active, shaded on the latency plot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultWindow {
    /// Start.
    pub start: Nanos,
    /// End.
    pub end: Nanos,
    /// What fault, e.g. `partition {n1} | {n2,n3}`.
    pub label: String,
}
