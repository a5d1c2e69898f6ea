//! The client's conservative lease against the server's deadline (design notes: "Client lease").
//!
//! Property: for every drift of the client's and the servers' clocks within the bound, and any
//! network and apply delays, the client's local lease (counted from the keepalive's send,
//! shortened by the drift margin) ends, in real time, no later than the deadline of the leader
//! that applied the keepalive — or of a later leader that took over from a checkpoint. The
//! `TrustLeaseWithoutDriftMargin` fault (lease = sent + T) breaks it for a slow client clock.

mod common;

use std::time::Duration;

use common::world::DriftClock;
use palisade_lock::{
    Applied, ClientLease, ClientTestingFault, Command, Event, LockConfig, LockStateMachine, Op,
    Request, RequestId, SessionId, SessionTracker,
};
use proptest::prelude::*;

const MS: u64 = 1_000_000;
const PPM: u32 = 20_000;

fn config() -> LockConfig {
    LockConfig { ttl_min: Duration::from_secs(1), drift_bound_ppm: PPM, ..LockConfig::default() }
}

struct Outcome {
    client_end_real: u64,
    leader_deadline_real: u64,
    successor_deadline_real: u64,
}

/// Client sends OpenSession at real `send`; the leader applies it `apply_delay` later; the
/// ack reaches the client `ack_delay` after that. The leader checkpoints at `checkpoint_at`;
/// a follower applies that checkpoint `follower_lag` later and becomes the new leader.
fn scenario(
    clocks: [DriftClock; 3],
    ttl: Duration,
    delays: (u64, u64, u64, u64),
    fault: Option<ClientTestingFault>,
) -> Outcome {
    let (apply_delay, ack_delay, checkpoint_at, follower_lag) = delays;
    let [client_clock, leader_clock, follower_clock] = clocks;
    let send = 1_000 * MS;
    let mut lease = ClientLease::new(ttl, PPM);
    if let Some(f) = fault {
        lease = lease.with_testing_fault(f);
    }
    let kid = lease.handle_keepalive_sent(client_clock.local(send));

    let open = Command::Client(Request {
        id: RequestId { client: 1, seq: 1 },
        op: Op::OpenSession { ttl },
    });
    let (mut leader_sm, mut follower_sm) =
        (LockStateMachine::new(config()), LockStateMachine::new(config()));
    let mut leader = SessionTracker::new(config());
    let mut follower = SessionTracker::new(config());
    let applied_at = send + apply_delay;
    let a: Applied = leader_sm.apply(1, &open);
    leader.handle_applied(leader_clock.now(applied_at), &a);
    let f = follower_sm.apply(1, &open);
    follower.handle_applied(follower_clock.now(applied_at + follower_lag), &f);
    lease.handle_keepalive_acked(kid, client_clock.local(applied_at + ack_delay));

    leader.handle_role(leader_clock.now(applied_at), true, true);
    let session = SessionId(1);
    let leader_deadline = leader.deadline(session).expect("timed");
    // Drive the leader like a driver would, until `checkpoint_at`; every op it proposes
    // commits at once and reaches the follower `follower_lag` later.
    let stop = applied_at + checkpoint_at;
    let mut index = 1;
    let mut expired_at = None;
    let mut tick = applied_at;
    while tick <= stop && expired_at.is_none() {
        for op in leader.handle_timeout(leader_clock.now(tick)) {
            index += 1;
            let cmd = Command::Leader(op);
            let own = leader_sm.apply(index, &cmd);
            leader.handle_applied(leader_clock.now(tick), &own);
            let applied = follower_sm.apply(index, &cmd);
            follower.handle_applied(follower_clock.now(tick + follower_lag), &applied);
            if applied.events.iter().any(|e| matches!(e, Event::SessionExpired { .. })) {
                expired_at = Some(tick);
            }
        }
        let next = leader.poll_timeout().expect("a ready leader always has a timer");
        tick = leader_clock.real_at(next).max(tick + 1);
    }
    // The follower takes over: its deadline, or the expiry the old leader committed.
    let successor_deadline_real = match follower.deadline(session) {
        Some(d) => follower_clock.real_at(d),
        None => expired_at.expect("only an expiry removes the timer"),
    };
    Outcome {
        client_end_real: client_clock.real_at(lease.valid_until().expect("acked")),
        leader_deadline_real: leader_clock.real_at(leader_deadline),
        successor_deadline_real,
    }
}

fn drift() -> std::ops::RangeInclusive<i64> {
    -i64::from(PPM)..=i64::from(PPM)
}

fn clock(offset_ms: u64, ppm: i64) -> DriftClock {
    DriftClock { offset_ns: offset_ms * MS, ppm }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn client_lease_never_outlives_the_server_deadline(
        ppms in [drift(), drift(), drift()],
        offsets in [0u64..100_000, 0u64..100_000, 0u64..100_000],
        ttl_ms in 1_000u64..60_000,
        apply_ms in 0u64..2_000,
        ack_ms in 0u64..2_000,
        checkpoint_ms in 0u64..60_000,
        lag_ms in 0u64..5_000,
    ) {
        let clocks = [
            clock(offsets[0], ppms[0]),
            clock(offsets[1], ppms[1]),
            clock(offsets[2], ppms[2]),
        ];
        let ttl = Duration::from_millis(ttl_ms);
        let delays = (apply_ms * MS, ack_ms * MS, checkpoint_ms * MS, lag_ms * MS);
        let o = scenario(clocks, ttl, delays, None);
        prop_assert!(o.client_end_real <= o.leader_deadline_real);
        prop_assert!(o.client_end_real <= o.successor_deadline_real);
    }
}

#[test]
fn without_the_drift_margin_a_slow_client_outlives_the_server() {
    // The client's clock runs slow by the full bound, the leader's fast; no delays at all.
    let clocks = [clock(5, -(PPM as i64)), clock(7, PPM as i64), clock(9, 0)];
    let ttl = Duration::from_secs(10);
    let sound = scenario(clocks, ttl, (0, 0, 0, 0), None);
    assert!(sound.client_end_real <= sound.leader_deadline_real);
    let faulty =
        scenario(clocks, ttl, (0, 0, 0, 0), Some(ClientTestingFault::TrustLeaseWithoutDriftMargin));
    println!(
        "faulty client lease ends {} ms after the server's deadline",
        (faulty.client_end_real - faulty.leader_deadline_real) / MS
    );
    assert!(faulty.client_end_real > faulty.leader_deadline_real, "the fault must show");
}
