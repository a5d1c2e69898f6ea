//! The bounded window of heartbeat inter-arrival intervals behind the phi detector.
//!
//! The window keeps the last `capacity` intervals in a ring buffer, with their sum and the sum
//! of their squares kept as exact integers (nanoseconds; `u64` for the sum, which stays below
//! 1e4 * 8.64e13 = 8.64e17, `u128` for the squares), so that the mean and the
//! variance cost O(1) per query and never drift the way running float sums do. Exactness also
//! means the variance can never come out negative: `n * Σx² - (Σx)²` is computed in integers.
//!
//! Bounds: an interval is at most [`SAMPLE_INTERVAL_MAX`] (about 8.64e13 ns) and the window
//! holds at most [`SAMPLE_SIZE_MAX`] of them, so `n * Σx²` stays below 1e4 * 1e4 * 7.5e27 =
//! 7.5e35, far under `u128::MAX` (3.4e38).

use std::collections::VecDeque;
use std::time::Duration;

use palisade_clock::duration_nanos;

use crate::{SAMPLE_INTERVAL_MAX, SAMPLE_SIZE_MAX};

/// The last `capacity` inter-arrival intervals, in nanoseconds, with exact running sums.
#[derive(Debug, Clone)]
pub(crate) struct IntervalWindow {
    intervals_nanos: VecDeque<u64>,
    capacity: usize,
    /// At most `SAMPLE_SIZE_MAX * SAMPLE_INTERVAL_MAX` (8.64e17): fits in 64 bits.
    sum_nanos: u64,
    sum_squares_nanos: u128,
}

impl IntervalWindow {
    /// An empty window that will hold at most `capacity` intervals.
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(capacity >= 1, "window capacity must be at least 1");
        assert!(capacity <= SAMPLE_SIZE_MAX, "window capacity above SAMPLE_SIZE_MAX");
        IntervalWindow {
            intervals_nanos: VecDeque::new(),
            capacity,
            sum_nanos: 0,
            sum_squares_nanos: 0,
        }
    }

    /// Appends `interval` (clamped to [`SAMPLE_INTERVAL_MAX`]), dropping the oldest interval
    /// when the window is full.
    pub(crate) fn push(&mut self, interval: Duration) {
        self.push_nanos(duration_nanos(interval));
    }

    /// [`IntervalWindow::push`] of an interval given in nanoseconds.
    pub(crate) fn push_nanos(&mut self, interval_nanos: u64) {
        let x = interval_nanos.min(duration_nanos(SAMPLE_INTERVAL_MAX));
        if self.intervals_nanos.len() == self.capacity {
            let old = self.intervals_nanos.pop_front().expect("a full window is not empty");
            self.sum_nanos -= old;
            self.sum_squares_nanos -= u128::from(old) * u128::from(old);
        }
        self.intervals_nanos.push_back(x);
        self.sum_nanos += x;
        self.sum_squares_nanos += u128::from(x) * u128::from(x);
        assert!(self.intervals_nanos.len() <= self.capacity);
    }

    /// Forgets every interval.
    pub(crate) fn clear(&mut self) {
        self.intervals_nanos.clear();
        self.sum_nanos = 0;
        self.sum_squares_nanos = 0;
    }

    /// Number of intervals held.
    pub(crate) fn len(&self) -> usize {
        self.intervals_nanos.len()
    }

    /// Mean interval in nanoseconds. The window must not be empty.
    pub(crate) fn mean_nanos(&self) -> f64 {
        assert!(!self.intervals_nanos.is_empty(), "mean of an empty window");
        self.sum_nanos as f64 / self.intervals_nanos.len() as f64
    }

    /// Population standard deviation of the intervals in nanoseconds (divides by n, as Akka
    /// does). The window must not be empty.
    pub(crate) fn std_deviation_nanos(&self) -> f64 {
        assert!(!self.intervals_nanos.is_empty(), "standard deviation of an empty window");
        let n = self.intervals_nanos.len() as u128;
        let sum = u128::from(self.sum_nanos);
        let spread = n * self.sum_squares_nanos - sum * sum;
        let variance = to_f64(spread) / to_f64(n * n);
        variance.sqrt()
    }
}

/// `x as f64`, through the cheaper `u64` conversion when `x` fits in 64 bits (the sum always
/// does, see the module documentation). Both conversions round the same integer to the
/// nearest `f64`, so the result is the same bit for bit.
fn to_f64(x: u128) -> f64 {
    match u64::try_from(x) {
        Ok(small) => small as f64,
        Err(_) => x as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(xs: &[u64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    /// The window keeps exactly the last `capacity` intervals, and its statistics are those of
    /// that suffix computed the slow way.
    #[test]
    fn keeps_the_last_capacity_intervals() {
        let mut w = IntervalWindow::new(3);
        let xs = [10_u64, 20, 40, 80, 160];
        for &x in &xs {
            w.push(Duration::from_nanos(x));
        }
        assert_eq!(w.len(), 3);
        let (mean, std) = naive(&xs[2..]);
        assert_eq!(w.mean_nanos(), mean);
        assert!((w.std_deviation_nanos() - std).abs() < 1e-9);
        w.clear();
        assert_eq!(w.len(), 0);
    }

    /// Equal intervals have a standard deviation of exactly zero, not a tiny negative variance.
    #[test]
    fn equal_intervals_have_zero_deviation() {
        let mut w = IntervalWindow::new(1000);
        for _ in 0..2000 {
            w.push(Duration::from_millis(1000) + Duration::from_nanos(1));
        }
        assert_eq!(w.len(), 1000);
        assert_eq!(w.std_deviation_nanos(), 0.0);
    }

    /// The narrow conversion agrees with the wide one on both sides of 2^64.
    #[test]
    fn conversion_is_exact_either_way() {
        for x in
            [0u128, 1, (1 << 53) + 1, u128::from(u64::MAX), u128::from(u64::MAX) + 1, u128::MAX]
        {
            assert_eq!(to_f64(x).to_bits(), (x as f64).to_bits(), "{x}");
        }
    }

    /// Intervals past the maximum are clamped, and a full window of them does not overflow.
    #[test]
    fn huge_intervals_are_clamped_without_overflow() {
        let mut w = IntervalWindow::new(SAMPLE_SIZE_MAX);
        for _ in 0..SAMPLE_SIZE_MAX + 5 {
            w.push(Duration::MAX);
        }
        assert_eq!(w.mean_nanos(), duration_nanos(SAMPLE_INTERVAL_MAX) as f64);
        assert_eq!(w.std_deviation_nanos(), 0.0);
    }
}
