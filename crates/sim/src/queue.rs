//! The event queue: a min-heap of small keys over a slab of events.
//!
//! Events are ordered by `(true time, sequence number)`; the sequence number is the order of
//! insertion, so events at one instant run first-in first-out and the order never depends on
//! anything but the calls made. The heap holds only 24-byte keys and the events (which carry
//! messages of any size) stay put in a slab whose free slots are reused, so sifting moves little
//! memory and a steady-state run allocates nothing per event.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// The heap entry: when, in which order, and where the event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    t: u64,
    seq: u64,
    slot: u32,
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    /// Reversed, so that `BinaryHeap` pops the earliest `(t, seq)` first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.t, other.seq).cmp(&(self.t, self.seq))
    }
}

/// Events of type `E` ordered by `(t, insertion order)`.
#[derive(Debug)]
pub(crate) struct EventQueue<E> {
    heap: BinaryHeap<Key>,
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
                self.slab.push(Some(ev));
                u32::try_from(self.slab.len() - 1).expect("fewer than 2^32 pending events")
            }
        };
        self.seq += 1;
        self.heap.push(Key { t, seq: self.seq, slot });
    }

    /// The earliest event and its time.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        let key = self.heap.pop()?;
        let ev = self.slab[key.slot as usize].take().expect("a queued slot holds an event");
        self.free.push(key.slot);
        Some((key.t, ev))
    }

    /// Time of the earliest event.
    pub fn peek_t(&self) -> Option<u64> {
        self.heap.peek().map(|k| k.t)
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
}
