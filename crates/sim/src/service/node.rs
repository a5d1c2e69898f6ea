//! [`NodeProcess`]: a palisade node (`ServerCore` over the simulated disk) as a process.
//!
//! The wrapper does nothing clever, like the tokio server: it hands each message and timer to
//! the core with the process's clock reading, then moves the core's outputs to the network
//! and its observations to the simulator. Persistence is synchronous inside the core (the WAL
//! over `SimDisk`), so a crash after a handler returned keeps every batch that handler made
//! durable, and loses exactly what the disk model says for anything else.

use palisade_clock::MonoInstant;
use palisade_node::raft::{Membership, NodeId};
use palisade_node::storage::SimDisk;
use palisade_node::{NodeConfig, Output, ServerCore};

use super::{Msg, NodeObs, Obs, SvcCtx, node_proc};
use crate::{Boot, ProcId};

#[derive(Debug)]
enum State {
    Running(Box<ServerCore<SimDisk>>),
    Refused(String),
}

/// One palisade node of a simulated cluster.
#[derive(Debug)]
pub struct NodeProcess {
    state: State,
    incarnation: u32,
    /// Nodes in the layout: peers outside it are never sent to.
    nodes: usize,
}

impl NodeProcess {
    /// Opens the node on the boot's disk; a node that cannot open (corrupt WAL or snapshot)
    /// refuses to start and stays inert.
    pub fn boot(config: NodeConfig, membership: Membership, nodes: usize, boot: Boot) -> Self {
        let state = match ServerCore::open(config, boot.disk, membership, boot.now, boot.seed) {
            Ok(core) => State::Running(Box::new(core)),
            Err(e) => State::Refused(e.to_string()),
        };
        NodeProcess { state, incarnation: boot.incarnation, nodes }
    }

    /// The running core (`None` if the node refused to start).
    pub fn core(&self) -> Option<&ServerCore<SimDisk>> {
        match &self.state {
            State::Running(core) => Some(core),
            State::Refused(_) => None,
        }
    }

    /// The running core, mutably: for administrative calls (drain, membership) made through
    /// `Simulation::invoke`, followed by [`NodeProcess::flush`].
    pub fn core_mut(&mut self) -> Option<&mut ServerCore<SimDisk>> {
        match &mut self.state {
            State::Running(core) => Some(core),
            State::Refused(_) => None,
        }
    }

    /// Why the node refused to start, if it did.
    pub fn refused(&self) -> Option<&str> {
        match &self.state {
            State::Running(_) => None,
            State::Refused(reason) => Some(reason),
        }
    }

    pub(super) fn handle_start(&mut self, ctx: &mut SvcCtx<'_>) {
        let obs = match &self.state {
            State::Running(_) => NodeObs::Started { incarnation: self.incarnation },
            State::Refused(reason) => NodeObs::RefusedToStart { reason: reason.clone() },
        };
        ctx.observe(Obs::Node(obs));
        self.flush(ctx);
    }

    pub(super) fn handle_message(&mut self, ctx: &mut SvcCtx<'_>, from: ProcId, msg: Msg) {
        let now = ctx.now();
        let nodes = self.nodes;
        let State::Running(core) = &mut self.state else { return };
        match msg {
            Msg::Peer(m) if from.index() < nodes => {
                core.handle_peer_message(now, from.index() as NodeId + 1, m);
            }
            Msg::Request(req) => core.handle_client_request(now, u64::from(from.0), *req),
            _ => {}
        }
        self.flush(ctx);
    }

    pub(super) fn handle_timeout(&mut self, ctx: &mut SvcCtx<'_>) {
        if let State::Running(core) = &mut self.state {
            core.handle_timeout(ctx.now());
        }
        self.flush(ctx);
    }

    pub(super) fn poll_timeout(&self) -> Option<MonoInstant> {
        self.core().and_then(ServerCore::poll_timeout)
    }

    /// Moves the core's outputs to the network and its events to the observations.
    pub fn flush(&mut self, ctx: &mut SvcCtx<'_>) {
        let nodes = self.nodes as NodeId;
        let State::Running(core) = &mut self.state else { return };
        while let Some(out) = core.poll_output() {
            match out {
                Output::Peer { to, msg } if (1..=nodes).contains(&to) => {
                    ctx.send(node_proc(to), Msg::Peer(msg));
                }
                Output::Peer { .. } => {}
                Output::Reply { conn, reply } => {
                    let to = ProcId(u32::try_from(conn).expect("connections are process ids"));
                    ctx.send(to, Msg::Reply(Box::new(reply)));
                }
            }
        }
        while let Some(event) = core.poll_event() {
            ctx.observe(Obs::Node(NodeObs::Event(event)));
        }
    }
}
