//! Session timing across leaders (design notes: "Sessions"; tracker module doc).
//!
//! - Never early: whatever the drifts (within the bound), lags, elections and restarts, the
//!   entry that expires a session is created no earlier than the moment the client's own
//!   conservative lease ran out.
//! - etcd #9395: repeated leader changes cannot keep an unrenewed session alive.
//! - A leader's self-pause extends deadlines before anything is expired (unit test in
//!   `src/tracker/tests.rs`, and end to end below).

mod common;

use std::time::Duration;

use common::world::{DriftClock, World, WorldSpec};
use palisade_lock::LockConfig;
use proptest::prelude::*;

const S: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
const TTL: Duration = Duration::from_secs(5);
/// A generous drift bound, so the drift margins are large against rounding.
const PPM: u32 = 20_000;

fn config() -> LockConfig {
    LockConfig {
        ttl_min: Duration::from_secs(1),
        drift_bound_ppm: PPM,
        lock_delay: Duration::from_secs(1),
        ..LockConfig::default()
    }
}

fn spec(ppms: [i64; 4], lags_ms: [u64; 3], appends: bool, dies_at: u64) -> WorldSpec {
    let clock = |i: usize| DriftClock { offset_ns: (i as u64 + 1) * 7_777 * MS, ppm: ppms[i] };
    WorldSpec {
        config: config(),
        clocks: (0..3).map(clock).collect(),
        lags_ns: lags_ms.iter().map(|l| l * MS).collect(),
        report_appends: appends,
        client_clock: clock(3),
        client_net_ns: 3 * MS,
        client_dies_at: dies_at,
        ttl: TTL,
        client_fault: None,
    }
}

/// One scripted leadership event.
#[derive(Clone, Debug)]
struct Change {
    at_ms: u64,
    gap_ms: u64,
    next: usize,
    restart_next: bool,
}

fn run(world: &mut World, changes: &[Change], end: u64) {
    world.elect(0, 0);
    let mut leader = 0;
    for c in changes {
        let at = c.at_ms * MS;
        if at <= world.now {
            continue;
        }
        world.depose(at);
        let next = if c.next == leader { (c.next + 1) % 3 } else { c.next };
        let elected = at + c.gap_ms * MS;
        if c.restart_next {
            world.restart(next, elected);
        }
        world.elect(next, elected);
        leader = next;
    }
    world.advance_to(end);
}

fn drift() -> impl Strategy<Value = i64> {
    -i64::from(PPM)..=i64::from(PPM)
}

fn change() -> impl Strategy<Value = Change> {
    (0u64..40_000, 0u64..3_000, 0usize..3, prop::bool::weighted(0.3)).prop_map(
        |(at_ms, gap_ms, next, restart_next)| Change { at_ms, gap_ms, next, restart_next },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Never early: the expiry entry is created after the client's lease ran out (real time),
    /// for every drift within the bound, any lags, elections and restarts. And (liveness) once
    /// leadership is stable the dead client's session does expire.
    #[test]
    fn expiry_never_precedes_the_client_lease(
        ppms in [drift(), drift(), drift(), drift()],
        lags in [1u64..40, 1u64..400, 1u64..400],
        appends in any::<bool>(),
        dies_at_ms in 0u64..30_000,
        mut changes in prop::collection::vec(change(), 0..8),
    ) {
        changes.sort_by_key(|c| c.at_ms);
        let mut world = World::new(spec(ppms, lags, appends, dies_at_ms * MS));
        run(&mut world, &changes, 120 * S);
        // Safety: if the client ever held a lease, the expiry came after it ended.
        if let (Some(lease_end), Some(expired)) = (world.lease_end_max, world.expired_at) {
            prop_assert!(
                expired >= lease_end,
                "expired at {} ns, client lease ran until {} ns", expired, lease_end
            );
        }
        // Liveness: with a stable leader, the dead client's session is gone everywhere.
        for node in &world.nodes {
            prop_assert_eq!(node.sm.session_of_client(world.client.id), None);
        }
    }
}

/// etcd #9395: with leadership changing every 700 ms (300 ms without a leader), a session
/// whose client died is still expired within T (plus lags and the 4ρT drift allowance) of its
/// last renewal. A "reset every lease to the full TTL at each election" policy would keep it
/// alive for as long as the flapping lasts (60 s here).
#[test]
fn flapping_leadership_cannot_keep_a_session_alive() {
    let mut world = World::new(spec([PPM as i64, -(PPM as i64), 0, 0], [2, 5, 5], false, 3 * S));
    let changes: Vec<Change> = (1..86)
        .map(|k| Change {
            at_ms: k * 700,
            gap_ms: 300,
            next: (k % 3) as usize,
            restart_next: false,
        })
        .collect();
    run(&mut world, &changes, 61 * S);
    let renewed = world.last_acked_send.expect("renewed");
    let expired = world.expired_at.expect("expired despite 85 leader changes");
    let ttl = TTL.as_nanos() as u64;
    let bound = renewed + ttl + 4 * ttl * u64::from(PPM) / 1_000_000 + 50 * MS;
    println!("last renewal sent {renewed} ns, expired {expired} ns, bound {bound} ns");
    assert!(expired <= bound, "expired at {expired}, bound {bound}");
    assert!(expired >= world.lease_end_max.unwrap());
}

/// The worst case the module doc names: every new leader restarted just before winning and
/// learns the session only by replaying the log. Each such change extends the session by the
/// new leader's learning lag, but as long as each leader leads for longer than that (here 1.7 s
/// against a 0.3 s gap), the remaining time still drains and the session expires.
#[test]
fn restarted_leaders_extend_only_by_their_lag() {
    let mut world = World::new(spec([0, 0, 0, 0], [2, 2, 2], false, 3 * S));
    let changes: Vec<Change> = (1..30)
        .map(|k| Change {
            at_ms: k * 2_000,
            gap_ms: 300,
            next: (k % 3) as usize,
            restart_next: true,
        })
        .collect();
    run(&mut world, &changes, 61 * S);
    let renewed = world.last_acked_send.expect("renewed");
    let expired = world.expired_at.expect("expired despite restarted leaders");
    println!("last renewal sent {renewed} ns, expired {expired} ns");
    assert!(expired >= world.lease_end_max.unwrap());
    assert!(expired < renewed + 3 * TTL.as_nanos() as u64, "bounded extension");
}

/// Followers that tracked the session since its renewal gain nothing from a leader change:
/// the new leader expires it at the same moment (up to drift) as the old leader would have.
#[test]
fn a_following_node_inherits_the_deadline_not_a_fresh_ttl() {
    let mut world = World::new(spec([0, 0, 0, 0], [1, 1, 1], true, S));
    let changes = vec![Change { at_ms: 4_000, gap_ms: 100, next: 1, restart_next: false }];
    run(&mut world, &changes, 30 * S);
    let renewed = world.last_acked_send.unwrap();
    let expired = world.expired_at.unwrap();
    let ttl = TTL.as_nanos() as u64;
    assert!(expired >= world.lease_end_max.unwrap());
    assert!(expired <= renewed + ttl + 4 * ttl * u64::from(PPM) / 1_000_000 + 20 * MS);
}
