//! Properties of the hybrid logical clock and the Lamport clock (Kulkarni et al. 2014,
//! theorems 1 and 2): on one node timestamps strictly increase; across nodes, if `e` happened
//! before `f` then `ts(e) < ts(f)`; and `l` never exceeds the largest physical reading in the
//! system. All of it whatever the physical clocks do, backward steps included.

use std::time::Duration;

use palisade_clock::{Hlc, HlcError, HlcTimestamp, Lamport, WallTime};
use proptest::prelude::*;

/// A move of a physical clock: small jitter either way, or a large step either way.
fn clock_move() -> impl Strategy<Value = i64> {
    prop_oneof![4 => -1_000i64..=1_000, 1 => -10_000_000i64..=10_000_000]
}

/// Maybe a remote timestamp, as (skew from the local reading, logical).
fn remote_timestamp() -> impl Strategy<Value = Option<(i64, u32)>> {
    prop::option::of((-200_000i64..200_000, 0u32..8))
}

fn moved(pt: u64, delta: i64) -> u64 {
    pt.saturating_add_signed(delta)
}

proptest! {
    /// Strictly increasing on one node, for any physical readings and any remote timestamps;
    /// a refused remote leaves the clock unchanged, and an accepted one is within max_offset.
    #[test]
    fn hlc_strictly_increases_on_one_node(
        start in 0u64..1 << 62,
        max_offset in prop::option::of(0u64..100_000),
        ops in prop::collection::vec((clock_move(), remote_timestamp()), 1..200),
    ) {
        let max_offset = max_offset.map(Duration::from_nanos);
        let mut hlc = Hlc::with_max_offset(max_offset);
        let mut pt = start;
        let mut previous = hlc.last();
        for (delta, remote) in ops {
            pt = moved(pt, delta);
            let physical = WallTime::from_nanos(pt);
            let issued = match remote {
                None => hlc.now(physical),
                Some((skew, logical)) => {
                    let remote = HlcTimestamp::new(moved(pt, skew), logical);
                    match hlc.update(physical, remote) {
                        Ok(ts) => {
                            prop_assert!(ts > remote);
                            if let Some(max) = max_offset {
                                prop_assert!(remote.wall_nanos <= pt + max.as_nanos() as u64);
                            }
                            ts
                        }
                        Err(HlcError::RemoteAhead { .. }) => {
                            prop_assert_eq!(hlc.last(), previous, "refusal changed the clock");
                            continue;
                        }
                        Err(e) => return Err(TestCaseError::fail(format!("unexpected {e}"))),
                    }
                }
            };
            prop_assert!(issued > previous, "{} not after {}", issued, previous);
            prop_assert!(issued.wall_nanos >= pt, "l below the physical reading");
            previous = issued;
        }
    }

    /// Two or three nodes with arbitrary physical clocks exchange messages: every event's HLC
    /// and Lamport timestamps exceed those of every event that happened before it (by vector
    /// clocks), and `l` never exceeds the largest physical reading taken anywhere so far.
    #[test]
    fn hlc_and_lamport_respect_happens_before(
        nodes in 2usize..=3,
        starts in prop::collection::vec(1_000_000_000u64..1_000_100_000, 3),
        events in prop::collection::vec((0u8..3, 0usize..3, 0usize..3, clock_move()), 1..120),
    ) {
        let mut system = System::new(nodes, &starts);
        for (kind, node, other, delta) in events {
            system.step(kind, node % nodes, other % nodes, delta);
        }
        system.check()?;
    }
}

/// One event as recorded for the check.
#[derive(Debug, Clone)]
struct Event {
    vector: Vec<u64>,
    /// The largest physical reading taken anywhere up to this event.
    physical_max: u64,
    hlc: HlcTimestamp,
    lamport: u64,
}

#[derive(Debug, Clone)]
struct Message {
    to: usize,
    vector: Vec<u64>,
    hlc: HlcTimestamp,
    lamport: u64,
}

/// A little system of nodes with a vector clock each, as the reference for happens-before.
#[derive(Debug)]
struct System {
    physical: Vec<u64>,
    hlcs: Vec<Hlc>,
    lamports: Vec<Lamport>,
    vectors: Vec<Vec<u64>>,
    in_flight: Vec<Message>,
    events: Vec<Event>,
    /// The largest physical reading taken anywhere so far.
    physical_max: u64,
}

impl System {
    fn new(nodes: usize, starts: &[u64]) -> Self {
        System {
            physical: starts[..nodes].to_vec(),
            hlcs: vec![Hlc::new(); nodes],
            lamports: vec![Lamport::new(); nodes],
            vectors: vec![vec![0; nodes]; nodes],
            in_flight: Vec::new(),
            events: Vec::new(),
            physical_max: 0,
        }
    }

    /// kind 0: local event; 1: send to `other`; 2: receive one message for `node`, if any.
    fn step(&mut self, kind: u8, node: usize, other: usize, delta: i64) {
        self.physical[node] = moved(self.physical[node], delta);
        let pt = self.physical[node];
        self.physical_max = self.physical_max.max(pt);
        let pt = WallTime::from_nanos(pt);
        self.vectors[node][node] += 1;
        let waiting = self.in_flight.iter().position(|m| m.to == node);
        let (hlc, lamport) = match (kind, waiting) {
            (2, Some(i)) => {
                let m = self.in_flight.remove(i);
                for (mine, theirs) in self.vectors[node].iter_mut().zip(&m.vector) {
                    *mine = (*mine).max(*theirs);
                }
                let hlc = self.hlcs[node].update(pt, m.hlc).expect("no max_offset configured");
                (hlc, self.lamports[node].update(m.lamport))
            }
            _ => (self.hlcs[node].now(pt), self.lamports[node].tick()),
        };
        let vector = self.vectors[node].clone();
        if kind == 1 {
            self.in_flight.push(Message { to: other, vector: vector.clone(), hlc, lamport });
        }
        self.events.push(Event { vector, physical_max: self.physical_max, hlc, lamport });
    }

    fn check(&self) -> Result<(), TestCaseError> {
        for e in &self.events {
            prop_assert!(e.hlc.wall_nanos <= e.physical_max, "l beyond every physical reading");
        }
        for (i, e) in self.events.iter().enumerate() {
            for f in &self.events[i + 1..] {
                // Events are recorded in real-time order, so only e -> f is possible here.
                let before = e.vector.iter().zip(&f.vector).all(|(a, b)| a <= b);
                if before {
                    prop_assert!(
                        e.hlc < f.hlc,
                        "hlc {} !< {} for {:?} -> {:?}",
                        e.hlc,
                        f.hlc,
                        e,
                        f
                    );
                    prop_assert!(e.lamport < f.lamport, "lamport {:?} -> {:?}", e, f);
                }
            }
        }
        Ok(())
    }
}
