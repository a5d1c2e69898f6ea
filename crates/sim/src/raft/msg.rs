//! What crosses the simulated network in a Raft simulation, what the processes report, and the
//! one process type the simulator drives.
//!
//! The simulator drives processes of a single type, so servers and the client are two variants
//! of [`RaftProc`] and their messages two families of [`SimMsg`]: Raft's own messages between
//! servers, and a three-message client protocol (propose, committed, rejected). Process ids map
//! to Raft node ids by `node = proc + 1` (Raft reserves node id 0).
//!
//! Observations ([`RaftObs`]) are the checkers' only view of what happened inside a process,
//! besides reading the durable logs. They are small on purpose: every one is hashed into the
//! trace, so an `Applied` carries hashes of the entry and of the state, not the entry itself.

use std::fmt;

use palisade_clock::MonoInstant;
use palisade_raft::{LogIndex, Message, NodeId, Payload, Role, Term};
use serde::{Deserialize, Serialize};

use crate::raft::client::RaftClient;
use crate::raft::server::RaftServer;
use crate::{Ctx, Fnv1a64, ProcId, Process};

/// A message of the Raft simulation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SimMsg {
    /// Raft's own messages, server to server.
    Raft(Message),
    /// Client to server: append this command (the `seq`-th of the client).
    Propose {
        /// The client's sequence number of the command.
        seq: u64,
        /// The command's bytes.
        command: Vec<u8>,
    },
    /// Server to client: the command was committed and applied at `index` in `term`.
    Committed {
        /// The client's sequence number.
        seq: u64,
        /// Index of the entry.
        index: LogIndex,
        /// Term of the entry.
        term: Term,
    },
    /// Server to client: not accepted here; try `leader` (a process index) if known.
    Rejected {
        /// The client's sequence number.
        seq: u64,
        /// The leader the server knows of, as a process index.
        leader: Option<u32>,
    },
}

/// What the processes of a Raft simulation report.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub enum RaftObs {
    /// A server opened its WAL and started.
    Started {
        /// Incarnation (0 at the first boot).
        incarnation: u32,
        /// Index of the snapshot it recovered (0: none).
        snapshot_index: LogIndex,
        /// Last index of the log it recovered.
        last_index: LogIndex,
        /// Term it starts in.
        term: Term,
        /// Bytes of a torn tail the WAL cut off.
        torn_bytes: u64,
    },
    /// A server refused to start from its disk (it counts as stopped).
    Refused {
        /// Why (the WAL's or Raft's error).
        reason: String,
    },
    /// A server's role changed to `role` in `term` (followers are not reported).
    Role {
        /// The new role.
        role: Role,
        /// Its term.
        term: Term,
    },
    /// A server applied the entry at `index`.
    Applied {
        /// Index of the entry.
        index: LogIndex,
        /// Term of the entry.
        term: Term,
        /// [`payload_hash`] of the entry.
        payload: u64,
        /// The state machine's hash chain after applying it.
        chain: u64,
    },
    /// A server restored its state machine from a snapshot it received.
    Restored {
        /// Index of the snapshot.
        index: LogIndex,
        /// The state machine's hash chain in the snapshot.
        chain: u64,
    },
    /// A leader applied the first entry of its own term: it is serving.
    LeaderCommit {
        /// The leader's term.
        term: Term,
        /// Index of that entry.
        index: LogIndex,
    },
    /// A server compacted its log into a snapshot at `index`.
    Compacted {
        /// Index of the snapshot.
        index: LogIndex,
    },
    /// The client got `Committed` for command `seq`.
    Acked {
        /// The client's sequence number.
        seq: u64,
        /// Index of the entry.
        index: LogIndex,
        /// Term of the entry.
        term: Term,
        /// [`payload_hash`] of the command the client sent.
        payload: u64,
    },
}

impl fmt::Debug for RaftObs {
    /// Short forms: every observation is hashed into the trace through this text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RaftObs::Started { incarnation, snapshot_index, last_index, term, torn_bytes } => {
                write!(
                    f,
                    "started inc {incarnation} snap {snapshot_index} last {last_index} \
                     t{term} torn {torn_bytes}"
                )
            }
            RaftObs::Refused { reason } => write!(f, "refused: {reason}"),
            RaftObs::Role { role, term } => write!(f, "{role:?} t{term}"),
            RaftObs::Applied { index, term, payload, chain } => {
                write!(f, "apply {index} t{term} {payload:x} {chain:x}")
            }
            RaftObs::Restored { index, chain } => write!(f, "restore {index} {chain:x}"),
            RaftObs::LeaderCommit { term, index } => write!(f, "leader-commit t{term} {index}"),
            RaftObs::Compacted { index } => write!(f, "compact {index}"),
            RaftObs::Acked { seq, index, term, payload } => {
                write!(f, "ack #{seq} {index} t{term} {payload:x}")
            }
        }
    }
}

/// A 64-bit hash of an entry's payload, with a tag per kind (so a no-op never equals a
/// command).
pub fn payload_hash(payload: &Payload) -> u64 {
    let mut h = Fnv1a64::new();
    match payload {
        Payload::Noop => h.write_word(1),
        Payload::Command(bytes) => {
            h.write_word(2);
            h.write_bytes_wide(bytes);
        }
        Payload::Membership(m) => {
            h.write_word(3);
            for v in &m.voters {
                h.write_word(*v);
            }
        }
    }
    h.finish()
}

/// The state machine's hash chain after applying the entry (`index`, `term`, `payload`) to a
/// state whose chain was `prev`.
pub(crate) fn chain_next(prev: u64, index: LogIndex, term: Term, payload: u64) -> u64 {
    let mut h = Fnv1a64::new();
    for word in [prev, index, term, payload] {
        h.write_word(word);
    }
    h.finish()
}

/// The Raft node id of a process.
pub(crate) fn node_of(p: ProcId) -> NodeId {
    u64::from(p.0) + 1
}

/// The process of a Raft node id.
pub(crate) fn proc_of(node: NodeId) -> ProcId {
    assert!(node > 0, "node id 0 is reserved");
    ProcId(u32::try_from(node - 1).expect("node ids fit u32"))
}

/// The process type of a Raft simulation: a server or the client.
#[derive(Debug)]
pub enum RaftProc {
    /// A Raft node.
    Server(Box<RaftServer>),
    /// The proposing client.
    Client(RaftClient),
}

impl RaftProc {
    /// The server, if this is one.
    pub fn server(&self) -> Option<&RaftServer> {
        match self {
            RaftProc::Server(s) => Some(s),
            RaftProc::Client(_) => None,
        }
    }

    /// The client, if this is one.
    pub fn client(&self) -> Option<&RaftClient> {
        match self {
            RaftProc::Client(c) => Some(c),
            RaftProc::Server(_) => None,
        }
    }
}

impl Process for RaftProc {
    type Msg = SimMsg;
    type Obs = RaftObs;

    fn handle_start(&mut self, ctx: &mut Ctx<'_, SimMsg, RaftObs>) {
        match self {
            RaftProc::Server(s) => s.handle_start(ctx),
            RaftProc::Client(c) => c.handle_start(ctx),
        }
    }

    fn handle_message(&mut self, ctx: &mut Ctx<'_, SimMsg, RaftObs>, from: ProcId, msg: SimMsg) {
        match self {
            RaftProc::Server(s) => s.handle_message(ctx, from, msg),
            RaftProc::Client(c) => c.handle_message(ctx, from, msg),
        }
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_, SimMsg, RaftObs>) {
        match self {
            RaftProc::Server(s) => s.handle_timeout(ctx),
            RaftProc::Client(c) => c.handle_timeout(ctx),
        }
    }

    fn poll_timeout(&self) -> Option<MonoInstant> {
        match self {
            RaftProc::Server(s) => s.poll_timeout(),
            RaftProc::Client(c) => c.poll_timeout(),
        }
    }

    /// The observation's serde fields: a few words, where its `Debug` text would be a
    /// formatted line per applied entry per server.
    fn digest_obs(obs: &RaftObs, hasher: &mut Fnv1a64) {
        assert!(hasher.write_serialized(obs), "raft observations encode with postcard");
    }
}
