//! Clock-offset monitoring between nodes, and the rule that a node with a bad clock does not
//! lead.
//!
//! Why: palisade's safety never depends on time-of-day clocks agreeing, but its lock service
//! shows wall-clock times and hands out uncertainty intervals, and an operator must learn that
//! a node's clock is far off. Every node pings each voter every `time_probe_interval` (the
//! first round at start-up) and feeds each answer to a per-peer
//! [`palisade_clock::OffsetEstimator`] (NTP's exchange: offset ± rtt/2 + drift × age).
//!
//! A node that *definitely* (offset minus error) differs by more than `clock_offset_max` from
//! a majority of the voters — itself counted as within — is `clock_unfit`: it does not
//! campaign, and a leader in that state steps down. An unknown offset never counts as beyond,
//! so a node that cannot measure does not lose liveness for it. Nor, while a node hears from
//! a majority (itself included), does the offset of a peer that answered none of the last
//! [`OFFSET_PEER_SILENT_PROBES`] probe rounds (crashed, cut off): a dead node's old samples
//! must not keep the live ones from leading. A node that hears no majority keeps judging by
//! all its samples — it cannot be elected anyway, and a bad clock cut off for a while must not
//! look fit the moment the partition heals.

use std::collections::BTreeMap;
use std::time::Duration;

use palisade_clock::{MonoInstant, Now, OffsetConfig, OffsetEstimate, OffsetEstimator};

use crate::config::{Config, OFFSET_PEER_SILENT_PROBES, OFFSET_SAMPLES_KEPT, OFFSET_WINDOW};
use crate::message::{Message, TimePing, TimePong};
use crate::node::{RaftNode, Role};
use crate::progress::majority;
use crate::timer::Timer;
use crate::types::NodeId;

/// The offset estimate and the outstanding ping of one peer.
#[derive(Debug)]
struct PeerClock {
    estimator: OffsetEstimator,
    /// The last ping sent: its id and the local time it was sent at.
    pending: Option<(u64, Now)>,
    /// When the peer last answered a ping (local monotonic time).
    answered: Option<MonoInstant>,
}

/// Per-peer clock-offset estimation.
#[derive(Debug)]
pub(crate) struct ClockProbes {
    config: OffsetConfig,
    peers: BTreeMap<NodeId, PeerClock>,
    next_ping_id: u64,
}

impl ClockProbes {
    /// No peers yet.
    pub fn new(cfg: &Config) -> ClockProbes {
        let config = OffsetConfig {
            window: OFFSET_WINDOW,
            samples_max: OFFSET_SAMPLES_KEPT,
            drift_ppm: cfg.drift_bound_ppm,
        };
        ClockProbes { config, peers: BTreeMap::new(), next_ping_id: 0 }
    }

    /// Keeps only the peers for which `keep` holds.
    pub fn retain(&mut self, keep: impl Fn(NodeId) -> bool) {
        self.peers.retain(|&id, _| keep(id));
    }

    /// The current offset estimate of `peer` (remote minus local), if any.
    pub fn estimate(&self, peer: NodeId, now: Now) -> Option<OffsetEstimate> {
        self.peers.get(&peer).and_then(|p| p.estimator.estimate_at(now))
    }

    /// Whether `peer` answered a ping at most `silent_max` before `now`.
    fn answered_within(&self, peer: NodeId, now: Now, silent_max: Duration) -> bool {
        let answered = self.peers.get(&peer).and_then(|p| p.answered);
        answered.is_some_and(|at| now.mono.saturating_duration_since(at) <= silent_max)
    }

    fn peer(&mut self, id: NodeId) -> &mut PeerClock {
        let config = self.config;
        self.peers.entry(id).or_insert_with(|| PeerClock {
            estimator: OffsetEstimator::new(config),
            pending: None,
            answered: None,
        })
    }
}

impl RaftNode {
    /// The TimeProbe timer fired: ping every voter.
    pub(crate) fn probe_clocks(&mut self) {
        let now = self.now;
        for peer in self.peers() {
            self.clocks.next_ping_id += 1;
            let id = self.clocks.next_ping_id;
            self.clocks.peer(peer).pending = Some((id, now));
            self.send(peer, Message::TimePing(TimePing { id, sent_wall: now.wall }));
        }
        self.timers.set(Timer::TimeProbe, now.mono + self.cfg.time_probe_interval);
    }

    /// Answers a ping at once (receive and send times are the same reading).
    pub(crate) fn handle_time_ping(&mut self, from: NodeId, ping: TimePing) {
        let wall = self.now.wall;
        let pong = TimePong {
            id: ping.id,
            echo_sent_wall: ping.sent_wall,
            received_wall: wall,
            sent_wall: wall,
        };
        self.send(from, Message::TimePong(pong));
    }

    /// Feeds an answer to our latest ping into the peer's estimator.
    pub(crate) fn handle_time_pong(&mut self, from: NodeId, pong: TimePong) {
        if !self.members.current.contains(from) {
            return;
        }
        let now = self.now;
        let peer = self.clocks.peer(from);
        let Some((id, sent)) = peer.pending else { return };
        if id != pong.id || sent.wall != pong.echo_sent_wall {
            return;
        }
        peer.pending = None;
        peer.answered = Some(now.mono);
        peer.estimator.handle_sample(sent, pong.received_wall, pong.sent_wall, now);
        if self.role == Role::Leader && self.clock_unfit() {
            self.become_follower(self.term, None);
        }
    }

    /// Whether this node's clock is definitely beyond `clock_offset_max` from a majority of
    /// the voters (itself counted as within; while it hears a majority, peers silent for
    /// [`OFFSET_PEER_SILENT_PROBES`] probe rounds are not counted). Such a node does not
    /// campaign or lead.
    pub fn clock_unfit(&self) -> bool {
        let max = self.cfg.clock_offset_max;
        let silent_max = self.cfg.time_probe_interval.saturating_mul(OFFSET_PEER_SILENT_PROBES);
        let voters = &self.members.current.voters;
        let peers = || voters.iter().copied().filter(|&v| v != self.cfg.id);
        let answering = |v: NodeId| self.clocks.answered_within(v, self.now, silent_max);
        // Hearing a majority (itself included), a node judges by the peers that answer; one
        // that does not cannot be elected anyway, and keeps every sample it has, so that a
        // bad clock cut off for a while is not taken for a good one the moment it is heard.
        let hears_majority =
            1 + peers().filter(|&v| answering(v)).count() >= majority(voters.len());
        let beyond = peers()
            .filter(|&v| !hears_majority || answering(v))
            .filter(|&v| self.clocks.estimate(v, self.now).is_some_and(|e| e.exceeds(max)))
            .count();
        beyond >= majority(voters.len())
    }
}

#[cfg(test)]
mod tests {
    use palisade_clock::{MonoInstant, Now, WallTime};

    use crate::config::Config;
    use crate::message::{Message, TimePong};
    use crate::node::{RaftNode, Recovered};
    use crate::types::Membership;

    const SECOND: u64 = 1_000_000_000;

    fn at(mono_ms: u64) -> Now {
        let nanos = mono_ms * 1_000_000;
        Now::new(MonoInstant::from_nanos(nanos), WallTime::from_nanos(100 * SECOND + nanos))
    }

    /// Answers node 1's pending pings from `peers`, whose clocks are `ahead` nanos ahead.
    fn answer(node: &mut RaftNode, pings: &[(u64, Message)], peers: &[u64], ahead: u64) {
        for (to, msg) in pings {
            let Message::TimePing(ping) = msg else { continue };
            if !peers.contains(to) {
                continue;
            }
            let remote = WallTime::from_nanos(ping.sent_wall.as_nanos() + SECOND / 1000 + ahead);
            let pong = TimePong {
                id: ping.id,
                echo_sent_wall: ping.sent_wall,
                received_wall: remote,
                sent_wall: remote,
            };
            node.handle_message(at(2), *to, Message::TimePong(pong));
        }
    }

    #[test]
    fn beyond_the_maximum_from_a_majority_is_unfit() {
        let recovered = Recovered::bootstrap(Membership::new([1, 2, 3]));
        let mut node = RaftNode::new(Config::default_for(1), recovered, at(0), 9).expect("ok");
        node.handle_timeout(at(0));
        let pings = node.ready().messages;
        answer(&mut node, &pings, &[2], 5 * SECOND);
        assert!(!node.clock_unfit(), "one peer of two is not a majority");
        let offset = node.status().peers[0].offset.expect("measured");
        assert!(offset.offset_nanos > 4 * SECOND as i64);
        answer(&mut node, &pings, &[3], 5 * SECOND);
        assert!(node.clock_unfit());
        assert!(!node.campaign(at(3)), "an unfit node does not campaign");
    }

    #[test]
    fn stale_or_unknown_pongs_are_ignored() {
        let recovered = Recovered::bootstrap(Membership::new([1, 2, 3]));
        let mut node = RaftNode::new(Config::default_for(1), recovered, at(0), 9).expect("ok");
        let pong = TimePong {
            id: 77,
            echo_sent_wall: WallTime::from_nanos(1),
            received_wall: WallTime::from_nanos(1),
            sent_wall: WallTime::from_nanos(1),
        };
        node.handle_message(at(1), 2, Message::TimePong(pong));
        assert_eq!(node.status().peers[0].offset, None);
    }
}
