//! Property tests of a follower fed AppendEntries and arbitrary peer input.
//!
//! - Log Matching (§5.3): whatever order and overlap the leader's AppendEntries arrive in,
//!   an acknowledged prefix equals the leader's log, and the follower converges to it.
//! - Robustness: a stream of arbitrary (including malformed) messages from one peer never
//!   panics the node and never breaks its basic invariants.

use palisade_clock::{MonoInstant, Now, WallTime};
use palisade_raft::{
    AppendEntries, AppendResult, Config, Entry, HardState, InstallSnapshot, Membership, Message,
    Payload, RaftNode, Ready, Recovered, SnapshotMeta, TimePing, TimePong, VoteRequest,
};
use proptest::prelude::*;

fn now(ms: u64) -> Now {
    Now::new(MonoInstant::from_nanos(ms * 1_000_000), WallTime::from_nanos(ms * 1_000_000))
}

fn entry(index: u64, term: u64) -> Entry {
    let payload = Payload::Command(format!("{index}@{term}").into_bytes());
    Entry { term, index, payload }
}

/// A log whose terms come from `steps` (non-decreasing), mapped by `term_of`.
fn log(from: u64, steps: &[u64], mut term: u64, term_of: impl Fn(u64) -> u64) -> Vec<Entry> {
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            term += step;
            entry(from + i as u64, term_of(term))
        })
        .collect()
}

/// The on-disk log as the driver keeps it from `Ready::entries`.
fn persist(disk: &mut Vec<Entry>, ready: &Ready) {
    if let Some(first) = ready.entries.first() {
        disk.retain(|e| e.index < first.index);
        disk.extend(ready.entries.iter().cloned());
    }
}

fn follower(entries: Vec<Entry>, term: u64) -> RaftNode {
    let recovered = Recovered {
        hard_state: HardState { term, vote: None, commit: 0 },
        snapshot: None,
        entries,
        initial_membership: Membership::new([1, 2, 3]),
    };
    RaftNode::new(Config::default_for(1), recovered, now(0), 5).expect("valid follower")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// §5.3 Log Matching: acknowledged prefixes equal the leader's log; the follower's log
    /// converges to the leader's (odd terms) and drops its divergent tail (even terms).
    #[test]
    fn follower_converges_to_the_leader_log(
        leader_steps in prop::collection::vec(0u64..2, 1..30),
        tail_steps in prop::collection::vec(0u64..2, 0..20),
        common in 0usize..30,
        ops in prop::collection::vec((0u64..32, 0usize..8), 1..40),
    ) {
        let leader = log(1, &leader_steps, 0, |t| 2 * t + 1);
        let common = common.min(leader.len());
        let mut mine: Vec<Entry> = leader[..common].to_vec();
        let base = mine.last().map_or(0, |e| e.term);
        mine.extend(log(common as u64 + 1, &tail_steps, base / 2 + 1, |t| 2 * t));
        let term = leader.iter().chain(&mine).map(|e| e.term).max().unwrap_or(0) + 1;
        let mut node = follower(mine.clone(), term);
        let mut disk = mine;
        let len = leader.len() as u64;
        let full = (0, leader.len());
        for (i, (prev, count)) in ops.into_iter().chain([full]).enumerate() {
            let prev = prev.min(len);
            let end = (prev as usize + count).min(leader.len());
            let prev_term = if prev == 0 { 0 } else { leader[prev as usize - 1].term };
            let msg = AppendEntries {
                term,
                prev_log_index: prev,
                prev_log_term: prev_term,
                entries: leader[prev as usize..end].to_vec(),
                leader_commit: 0,
                read_round: 0,
            };
            node.handle_message(now(i as u64 + 1), 2, Message::AppendEntries(msg));
            let ready = node.ready();
            persist(&mut disk, &ready);
            node.handle_persisted(now(i as u64 + 1), ready.token());
            for (_, reply) in &ready.messages {
                let Message::AppendEntriesResponse(r) = reply else { continue };
                if let AppendResult::Success { match_index } = r.result {
                    let acked = match_index as usize;
                    prop_assert_eq!(&disk[..acked], &leader[..acked]);
                }
            }
        }
        prop_assert_eq!(&disk[..leader.len()], &leader[..]);
        prop_assert_eq!(node.status().last_index, disk.len() as u64);
    }

    /// Arbitrary input from one peer never panics the node; commit stays within the log.
    #[test]
    fn arbitrary_peer_input_never_panics(
        msgs in prop::collection::vec(arbitrary_message(), 1..60),
    ) {
        let mut node = follower(Vec::new(), 0);
        for (i, msg) in msgs.into_iter().enumerate() {
            let t = now(i as u64 * 50);
            node.handle_message(t, 2, msg);
            node.handle_timeout(t);
            while node.has_ready() {
                let ready = node.ready();
                node.handle_persisted(t, ready.token());
            }
            let status = node.status();
            prop_assert!(status.commit <= status.last_index);
            prop_assert!(status.applied <= status.commit);
        }
    }
}

fn arbitrary_message() -> impl Strategy<Value = Message> {
    let entries = prop::collection::vec((1u64..8, 0u64..6, 0usize..3), 0..6);
    let append = (1u64..6, 0u64..10, 0u64..6, entries).prop_map(|(term, prev, prev_term, es)| {
        let entries = es
            .into_iter()
            .enumerate()
            .map(|(k, (t, jump, kind))| Entry {
                term: t,
                index: prev + 1 + k as u64 + jump / 5,
                payload: match kind {
                    0 => Payload::Noop,
                    1 => Payload::Command(vec![k as u8]),
                    _ => Payload::Membership(Membership::new([1, 2, 3])),
                },
            })
            .collect();
        Message::AppendEntries(AppendEntries {
            term,
            prev_log_index: prev,
            prev_log_term: prev_term,
            entries,
            leader_commit: 0,
            read_round: 0,
        })
    });
    let snapshot = (1u64..6, 0u64..12, 0u64..6, 0u64..64, 0u64..64, 0usize..40).prop_map(
        |(term, index, snap_term, total, offset, len)| {
            Message::InstallSnapshot(Box::new(InstallSnapshot {
                term,
                meta: SnapshotMeta { index, term: snap_term, membership: Membership::new([1, 2]) },
                total_bytes: total,
                offset,
                data: vec![7; len],
            }))
        },
    );
    let vote = (1u64..6, 0u64..10, 0u64..6, any::<bool>(), any::<bool>()).prop_map(
        |(term, last_log_index, last_log_term, transfer, pre)| {
            let r = VoteRequest { term, last_log_index, last_log_term, transfer };
            if pre { Message::PreVote(r) } else { Message::RequestVote(r) }
        },
    );
    let other = (0u64..6, any::<u64>(), 0usize..4).prop_map(|(term, x, kind)| match kind {
        0 => Message::TimeoutNow { term },
        1 => Message::TimePing(TimePing { id: x, sent_wall: WallTime::from_nanos(x) }),
        2 => Message::TimePong(TimePong {
            id: x % 4,
            echo_sent_wall: WallTime::from_nanos(x),
            received_wall: WallTime::from_nanos(x / 2),
            sent_wall: WallTime::from_nanos(x / 3),
        }),
        _ => Message::AppendEntriesResponse(palisade_raft::AppendEntriesResponse {
            term,
            result: AppendResult::Success { match_index: x % 10 },
            read_round: x % 3,
        }),
    });
    prop_oneof![append, snapshot, vote, other]
}
