//! The palisade service on the simulator: nodes, clients and a fenced (or unfenced) storage
//! service as [`Process`]es, ready for scenario tests, workloads and checkers.
//!
//! Why these three: the chapter's fencing story has three parties — the lock service, the
//! clients that hold locks and pause, and the storage they write to. Each is a thin wrapper
//! around a sans-IO core, so what runs here is exactly what the server and the Rust client run:
//!
//! - [`NodeProcess`] (`node.rs`) wraps `palisade_node::ServerCore` over the simulated disk: a
//!   crash loses what was not fsynced, a restart recovers through the real WAL, and a disk
//!   whose synced data is corrupt makes the node *refuse to start* (it records why and stays
//!   inert). Every `NodeEvent` becomes an observation.
//! - [`ClientProcess`] (`client.rs`) wraps `palisade_node::ClientCore` and a script of
//!   [`Action`]s; tests can also hand it operations through `Simulation::invoke`. Every
//!   operation's invocation and completion is observed with the client's clock, and the
//!   simulator stamps the true time, which is what a linearizability checker needs.
//! - [`StoreProcess`] (`store.rs`) is a tiny external storage service that either checks
//!   fencing tokens with a `FenceGuard` or, like most storage, does not.
//!
//! Process ids follow [`ServiceLayout`]: nodes first (node id `i + 1` is process `i`), then
//! clients, then stores. A client's connection id at a node is its process index.

mod client;
mod node;
mod store;

use std::rc::Rc;

use palisade_clock::{MonoInstant, Now};
use palisade_node::event::NodeEvent;
use palisade_node::lock::{LeaseState, Token};
use palisade_node::raft::{Membership, NodeId};
use palisade_node::{
    ClientConfig, ClientReply, ClientRequest, NodeConfig, OpId, OpOutcome, UserOp,
};
use serde::{Deserialize, Serialize};

use crate::{Boot, Ctx, Factory, Fnv1a64, NetworkConfig, ProcId, Process, Simulation};

pub use client::{Action, COMPLETED_KEPT_MAX, ClientProcess, ScriptStep};
pub use node::NodeProcess;
pub use store::{StoreProcess, StoreValue};

/// What processes of the service send each other.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Msg {
    /// Raft between nodes.
    Peer(palisade_node::raft::Message),
    /// Client to node (boxed, as the reply: they are the largest variants by far, and every
    /// message is moved several times on its way through the simulator's queue).
    Request(Box<ClientRequest>),
    /// Node to client.
    Reply(Box<ClientReply>),
    /// Client to store: write `value` under `key`, presenting `token` (if fenced).
    StoreWrite {
        /// Correlates the acknowledgement.
        id: u64,
        /// The key.
        key: String,
        /// The value.
        value: Vec<u8>,
        /// The fencing token presented, if any.
        token: Option<Token>,
    },
    /// Store to client: whether the write was accepted.
    StoreAck {
        /// The write's `id`.
        id: u64,
        /// Accepted or rejected.
        accepted: bool,
    },
}

/// What a node reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum NodeObs {
    /// The node opened its disk and runs.
    Started {
        /// The incarnation.
        incarnation: u32,
    },
    /// The node refused to start (corrupt WAL or snapshot, bad configuration); it stays inert.
    RefusedToStart {
        /// Why.
        reason: String,
    },
    /// An observation of the running node.
    Event(NodeEvent),
}

/// What a client reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum ClientObs {
    /// An operation was handed to the client core.
    Invoked {
        /// Its id.
        op: OpId,
        /// What it is.
        user: UserOp,
        /// The client's clock.
        at: Now,
    },
    /// An operation ended.
    Completed {
        /// Its id.
        op: OpId,
        /// What it was.
        user: UserOp,
        /// How it ended.
        outcome: OpOutcome,
        /// The client's clock.
        at: Now,
    },
    /// The lease's state or its end changed.
    Lease {
        /// The state (`None`: no session).
        state: Option<LeaseState>,
        /// The end of the local lease on the client's monotonic clock.
        valid_until: Option<MonoInstant>,
    },
    /// A blocking acquire or a wait got the lock.
    Granted {
        /// The lock.
        lock: String,
        /// Its token.
        token: Token,
    },
    /// The client sent a write to a store.
    StoreWriteSent {
        /// The store.
        store: ProcId,
        /// The write's id.
        id: u64,
        /// The key.
        key: String,
        /// The token presented.
        token: Option<Token>,
    },
    /// A guarded write (fenced put, store write) was not sent: the lock was not held or the
    /// lease not safe.
    WriteSkipped {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A store answered a write.
    StoreAcked {
        /// The write's id.
        id: u64,
        /// Whether it was accepted.
        accepted: bool,
    },
}

/// What a store reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum StoreObs {
    /// A write was accepted and applied.
    Accepted {
        /// The writer.
        from: ProcId,
        /// The key.
        key: String,
        /// The value written.
        value: Vec<u8>,
        /// The token it presented.
        token: Option<Token>,
        /// The value it replaced (a lost update when the writer's lock was stale).
        replaced: Option<Vec<u8>>,
    },
    /// A write was rejected by the fence check.
    Rejected {
        /// The writer.
        from: ProcId,
        /// The key.
        key: String,
        /// The token it presented.
        token: Option<Token>,
        /// The highest token accepted for the key.
        highest: Option<Token>,
    },
}

/// Any observation of the service.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Obs {
    /// From a node.
    Node(NodeObs),
    /// From a client.
    Client(ClientObs),
    /// From a store.
    Store(StoreObs),
}

/// A process of the service.
#[derive(Debug)]
pub enum Service {
    /// A palisade node.
    Node(Box<NodeProcess>),
    /// A client.
    Client(Box<ClientProcess>),
    /// An external store.
    Store(Box<StoreProcess>),
}

/// The context every service process gets.
pub type SvcCtx<'a> = Ctx<'a, Msg, Obs>;

impl Service {
    /// The node, if this is one.
    pub fn as_node(&self) -> Option<&NodeProcess> {
        match self {
            Service::Node(n) => Some(n),
            _ => None,
        }
    }

    /// The client, if this is one.
    pub fn as_client(&self) -> Option<&ClientProcess> {
        match self {
            Service::Client(c) => Some(c),
            _ => None,
        }
    }

    /// The client, mutably, if this is one.
    pub fn as_client_mut(&mut self) -> Option<&mut ClientProcess> {
        match self {
            Service::Client(c) => Some(c),
            _ => None,
        }
    }

    /// The store, if this is one.
    pub fn as_store(&self) -> Option<&StoreProcess> {
        match self {
            Service::Store(s) => Some(s),
            _ => None,
        }
    }
}

impl Process for Service {
    type Msg = Msg;
    type Obs = Obs;

    fn handle_start(&mut self, ctx: &mut SvcCtx<'_>) {
        match self {
            Service::Node(n) => n.handle_start(ctx),
            Service::Client(c) => c.handle_start(ctx),
            Service::Store(_) => {}
        }
    }

    fn handle_message(&mut self, ctx: &mut SvcCtx<'_>, from: ProcId, msg: Msg) {
        match self {
            Service::Node(n) => n.handle_message(ctx, from, msg),
            Service::Client(c) => c.handle_message(ctx, from, msg),
            Service::Store(s) => s.handle_message(ctx, from, msg),
        }
    }

    fn handle_timeout(&mut self, ctx: &mut SvcCtx<'_>) {
        match self {
            Service::Node(n) => n.handle_timeout(ctx),
            Service::Client(c) => c.handle_timeout(ctx),
            Service::Store(_) => {}
        }
    }

    fn poll_timeout(&self) -> Option<MonoInstant> {
        match self {
            Service::Node(n) => n.poll_timeout(),
            Service::Client(c) => c.poll_timeout(),
            Service::Store(_) => None,
        }
    }

    /// The observation's serde fields, a word each, streamed into the hasher: a node reports
    /// an event per applied entry, and formatting each as `Debug` text cost more than applying
    /// it.
    fn digest_obs(obs: &Obs, hasher: &mut Fnv1a64) {
        assert!(hasher.write_serialized(obs), "service observations encode with postcard");
    }
}

/// A client of the layout.
#[derive(Clone, Debug)]
pub struct ClientSpec {
    /// Its configuration (`servers` should be the layout's node ids).
    pub config: ClientConfig,
    /// What its first incarnation does, in order (a restarted client starts idle).
    pub script: Vec<ScriptStep>,
}

/// A store of the layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreSpec {
    /// Whether it checks fencing tokens (with a `FenceGuard`, per key).
    pub checked: bool,
}

/// Which processes a simulation of the service has, in process-id order: nodes, clients,
/// stores.
#[derive(Clone, Debug)]
pub struct ServiceLayout {
    /// The nodes' configurations; node `i` has id `i + 1` and process id `i`.
    pub nodes: Vec<NodeConfig>,
    /// The clients.
    pub clients: Vec<ClientSpec>,
    /// The stores.
    pub stores: Vec<StoreSpec>,
}

impl ServiceLayout {
    /// `nodes` nodes with `node_config(id)`, and no clients or stores yet.
    pub fn new(nodes: u32, node_config: impl Fn(NodeId) -> NodeConfig) -> ServiceLayout {
        let nodes = (1..=u64::from(nodes)).map(node_config).collect();
        ServiceLayout { nodes, clients: Vec::new(), stores: Vec::new() }
    }

    /// The node ids, in order.
    pub fn node_ids(&self) -> Vec<NodeId> {
        (1..=self.nodes.len() as u64).collect()
    }

    /// The founding membership: every node.
    pub fn membership(&self) -> Membership {
        Membership::new(self.node_ids())
    }

    /// The process of node `id`.
    pub fn node_proc(&self, id: NodeId) -> ProcId {
        assert!(id >= 1 && id <= self.nodes.len() as u64, "node {id} is not in the layout");
        node_proc(id)
    }

    /// The node id of process `p`, if it is a node.
    pub fn node_of(&self, p: ProcId) -> Option<NodeId> {
        (p.index() < self.nodes.len()).then(|| p.index() as u64 + 1)
    }

    /// The process of client `i` (in `clients` order).
    pub fn client_proc(&self, i: usize) -> ProcId {
        assert!(i < self.clients.len(), "client {i} is not in the layout");
        ProcId((self.nodes.len() + i) as u32)
    }

    /// The process of store `i`.
    pub fn store_proc(&self, i: usize) -> ProcId {
        assert!(i < self.stores.len(), "store {i} is not in the layout");
        ProcId((self.nodes.len() + self.clients.len() + i) as u32)
    }

    /// Builds the process `p` from `boot`.
    fn build(&self, p: ProcId, boot: Boot) -> Service {
        let i = p.index();
        let (n, c) = (self.nodes.len(), self.clients.len());
        if i < n {
            let config = self.nodes[i].clone();
            Service::Node(Box::new(NodeProcess::boot(config, self.membership(), n, boot)))
        } else if i < n + c {
            let spec = &self.clients[i - n];
            Service::Client(Box::new(ClientProcess::boot(p, spec, boot)))
        } else {
            let spec = self.stores[i - n - c];
            Service::Store(Box::new(StoreProcess::new(spec.checked)))
        }
    }

    /// The factory of every process of the layout.
    pub fn factory(self: Rc<Self>) -> Factory<Service> {
        Box::new(move |p, boot| self.build(p, boot))
    }

    /// A simulation with every process of the layout added, in order.
    pub fn simulation(self, seed: u64, network: NetworkConfig) -> Simulation<Service> {
        let count = self.nodes.len() + self.clients.len() + self.stores.len();
        let mut sim = Simulation::new(seed, network, Rc::new(self).factory());
        for _ in 0..count {
            sim.add_process();
        }
        sim
    }

    /// The node that leads and applied an entry of its term (the highest term if several
    /// believe so), among the running nodes.
    pub fn leader(&self, sim: &Simulation<Service>) -> Option<NodeId> {
        self.node_ids()
            .into_iter()
            .filter_map(|id| {
                let core = sim.process(node_proc(id))?.as_node()?.core()?;
                core.is_leader_ready().then(|| (core.raft().term(), id))
            })
            .max()
            .map(|(_, id)| id)
    }
}

/// The process of node `id` (`id - 1`).
pub fn node_proc(id: NodeId) -> ProcId {
    assert!(id >= 1, "node ids start at 1");
    ProcId(u32::try_from(id - 1).expect("node ids fit the process table"))
}

/// Runs `sim` until `done(sim)` holds (checked every `check_every_nanos` of true time) or the
/// true time reaches `limit_nanos`; returns whether `done` held.
pub fn run_until(
    sim: &mut Simulation<Service>,
    limit_nanos: u64,
    check_every_nanos: u64,
    mut done: impl FnMut(&Simulation<Service>) -> bool,
) -> bool {
    assert!(check_every_nanos > 0, "a positive check interval");
    loop {
        if done(sim) {
            return true;
        }
        if sim.now_nanos() >= limit_nanos {
            return false;
        }
        let next = sim.now_nanos().saturating_add(check_every_nanos).min(limit_nanos);
        sim.run_until(next);
    }
}

/// Hands `op` to client process `client` now; `None` if it is down or paused.
pub fn submit(sim: &mut Simulation<Service>, client: ProcId, op: UserOp) -> Option<OpId> {
    sim.invoke(client, |p, ctx| match p {
        Service::Client(c) => c.submit(ctx, op),
        _ => panic!("{client} is not a client"),
    })
    .ok()
}

/// Performs `action` on client process `client` now; the operation it started, if any.
/// `Err` if the client is down or paused.
pub fn act(
    sim: &mut Simulation<Service>,
    client: ProcId,
    action: Action,
) -> Result<Option<OpId>, crate::SimError> {
    sim.invoke(client, |p, ctx| match p {
        Service::Client(c) => c.act(ctx, action),
        _ => panic!("{client} is not a client"),
    })
}

/// The outcome of operation `op` of client process `client`, once it completed.
pub fn outcome(sim: &Simulation<Service>, client: ProcId, op: OpId) -> Option<OpOutcome> {
    sim.process(client)?.as_client()?.outcome(op).cloned()
}
