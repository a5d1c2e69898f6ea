//! The event queue: a min-heap of small keys over a slab of events.
//!
//! Events are ordered by `(true time, sequence number)`; the sequence number is the order of
//! insertion, so events at one instant run first-in first-out and the order never depends on
//! anything but the calls made. The heap holds only 16-byte keys and the events (which carry
//! messages of any size) stay put in a slab whose free slots are reused, so sifting moves little
//! memory and a steady-state run allocates nothing per event.
//!
//! A key is one `u128`: the time in the high 64 bits, then the sequence number, then the slot.
//! Sequence numbers are unique, so comparing keys compares `(time, sequence number)`, in one
//! wide comparison; the slot below them never decides anything.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Bits of a key's low word that hold the slot; the sequence number takes the rest.
const SLOT_BITS: u32 = 24;
/// Slots, and so events pending at once, a queue can hold.
const SLOTS_MAX: usize = 1 << SLOT_BITS;
/// Events a queue can take over its lifetime (sequence numbers fit the low word above the slot).
const SEQ_MAX: u64 = 1 << (64 - SLOT_BITS);

/// Events of type `E` ordered by `(t, insertion order)`.
#[derive(Debug)]
pub(crate) struct EventQueue<E> {
    heap: BinaryHeap<Reverse<u128>>,
    slab: Vec<Option<E>>,
    free: Vec<u32>,
    seq: u64,
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue { heap: BinaryHeap::new(), slab: Vec::new(), free: Vec::new(), seq: 0 }
    }

    pub fn push(&mut self, t: u64, ev: E) {
        let slot = match self.free.pop() {
            Some(s) => {
                assert!(self.slab[s as usize].is_none(), "reused a full slot");
                self.slab[s as usize] = Some(ev);
                s
            }
            None => {
                assert!(self.slab.len() < SLOTS_MAX, "fewer than 2^24 pending events");
                self.slab.push(Some(ev));
                (self.slab.len() - 1) as u32
            }
        };
        self.seq += 1;
        assert!(self.seq < SEQ_MAX, "fewer than 2^40 events per queue");
        let low = self.seq << SLOT_BITS | u64::from(slot);
        self.heap.push(Reverse(u128::from(t) << 64 | u128::from(low)));
    }

    /// The earliest event and its time.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        let Reverse(key) = self.heap.pop()?;
        let slot = (key as u32) & (SLOTS_MAX as u32 - 1);
        let ev = self.slab[slot as usize].take().expect("a queued slot holds an event");
        self.free.push(slot);
        Some(((key >> 64) as u64, ev))
    }

    /// Time of the earliest event.
    pub fn peek_t(&self) -> Option<u64> {
        self.heap.peek().map(|k| (k.0 >> 64) as u64)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_by_time_then_insertion_order() {
        let mut q = EventQueue::new();
        q.push(5, "c");
        q.push(1, "a");
        q.push(5, "d");
        q.push(1, "b");
        assert_eq!(q.pop(), Some((1, "a")));
        q.push(1, "b2");
        assert_eq!(q.pop(), Some((1, "b")));
        assert_eq!(q.pop(), Some((1, "b2")));
        assert_eq!(q.peek_t(), Some(5));
        assert_eq!(q.pop(), Some((5, "c")));
        assert_eq!(q.pop(), Some((5, "d")));
        assert_eq!(q.pop(), None);
        assert_eq!(q.slab.len(), 4, "slots are reused");
    }

    #[test]
    fn pops_in_key_order_under_random_pushes_and_pops() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut q = EventQueue::new();
        // The reference: every pending (t, insertion number), in order.
        let mut pending = std::collections::BTreeSet::new();
        let (mut now, mut pushed) = (0u64, 0u64);
        for _ in 0..20_000 {
            if rng.random_bool(0.55) || pending.is_empty() {
                let t = now + rng.random_range(0..50);
                pushed += 1;
                q.push(t, pushed);
                pending.insert((t, pushed));
            } else {
                let want = pending.pop_first().expect("pending");
                assert_eq!(q.peek_t(), Some(want.0));
                assert_eq!(q.pop(), Some(want));
                now = want.0;
            }
            assert_eq!(q.len(), pending.len());
        }
        while let Some(want) = pending.pop_first() {
            assert_eq!(q.pop(), Some(want));
        }
        assert_eq!(q.pop(), None);
    }
}
