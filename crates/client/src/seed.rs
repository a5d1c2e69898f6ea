//! Client ids and seeds: unique per client process without an OS random source.
//!
//! A client id must not repeat across the clients of a cluster (it is half of every request
//! id, and the state machine deduplicates by it). The time of day in nanoseconds, the process
//! id, a process-wide counter and the monotonic reading, mixed by splitmix64, are unique enough
//! for that; the seed of the core's server choice comes from the same source.

use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh, well-mixed 64-bit value.
pub(crate) fn fresh_u64() -> u64 {
    let now = crate::driver::now();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut z = now.wall.as_nanos()
        ^ (u64::from(std::process::id()) << 32)
        ^ now.mono.as_nanos().rotate_left(17)
        ^ count.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_do_not_repeat() {
        let mut seen: Vec<u64> = (0..1000).map(|_| super::fresh_u64()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 1000);
    }
}
