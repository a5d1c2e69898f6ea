//! [`TimedDisk`]: the real disk, with every fsync timed.
//!
//! Why a wrapper and not a timer in the core: the core is sans-IO and never reads a clock, and
//! the fsync is the one cost that decides a lock service's throughput (every grant waits for
//! one on a majority). So the driver wraps the [`Disk`] the core writes through: each
//! [`Disk::sync`] is measured with `std::time::Instant`, reported to the `fsync_seconds`
//! histogram, and counted, so the throughput check can say how many fsyncs one lock cycle
//! costs. Everything else is passed through untouched.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use palisade_storage::{Disk, StorageError};

use crate::metrics::Metrics;

type Result<T> = std::result::Result<T, StorageError>;

/// Counts the fsyncs of one node, shared between its disk and whoever reports them.
#[derive(Debug, Default)]
pub struct FsyncCounter {
    syncs: AtomicU64,
    nanos: AtomicU64,
}

impl FsyncCounter {
    /// File fsyncs so far.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Total time spent in them, in nanoseconds.
    pub fn nanos(&self) -> u64 {
        self.nanos.load(Ordering::Relaxed)
    }
}

/// A [`Disk`] whose file syncs are timed into [`Metrics::observe_fsync`] and counted.
#[derive(Debug)]
pub struct TimedDisk<D> {
    inner: D,
    metrics: Arc<Metrics>,
    counter: Arc<FsyncCounter>,
}

impl<D: Disk> TimedDisk<D> {
    /// Wraps `inner`.
    pub fn new(inner: D, metrics: Arc<Metrics>, counter: Arc<FsyncCounter>) -> TimedDisk<D> {
        TimedDisk { inner, metrics, counter }
    }

    /// The fsync counter.
    pub fn counter(&self) -> &Arc<FsyncCounter> {
        &self.counter
    }
}

impl<D: Disk> Disk for TimedDisk<D> {
    fn list(&self) -> Result<Vec<String>> {
        self.inner.list()
    }
    fn exists(&self, name: &str) -> Result<bool> {
        self.inner.exists(name)
    }
    fn len(&self, name: &str) -> Result<u64> {
        self.inner.len(name)
    }
    fn read(&self, name: &str) -> Result<Vec<u8>> {
        self.inner.read(name)
    }
    fn read_at(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        self.inner.read_at(name, offset, len)
    }
    fn append(&mut self, name: &str, data: &[u8]) -> Result<()> {
        self.inner.append(name, data)
    }
    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<()> {
        self.inner.write_at(name, offset, data)
    }
    fn truncate(&mut self, name: &str, len: u64) -> Result<()> {
        self.inner.truncate(name, len)
    }
    fn sync(&mut self, name: &str) -> Result<()> {
        let start = Instant::now();
        let result = self.inner.sync(name);
        let took = start.elapsed();
        self.metrics.observe_fsync(took);
        self.counter.syncs.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.counter.nanos.fetch_add(nanos, Ordering::Relaxed);
        result
    }
    fn sync_dir(&mut self) -> Result<()> {
        self.inner.sync_dir()
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&mut self, name: &str) -> Result<()> {
        self.inner.remove(name)
    }
}

#[cfg(test)]
mod tests {
    use palisade_storage::FileDisk;

    use super::*;

    #[test]
    fn syncs_are_timed_counted_and_passed_through() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new());
        let counter = Arc::new(FsyncCounter::default());
        let inner = FileDisk::open(dir.path()).unwrap();
        let mut disk = TimedDisk::new(inner, Arc::clone(&metrics), Arc::clone(&counter));
        disk.append("a.log", b"hello").unwrap();
        disk.sync("a.log").unwrap();
        disk.sync("a.log").unwrap();
        assert_eq!(counter.syncs(), 2);
        assert_eq!(disk.read("a.log").unwrap(), b"hello");
        assert!(metrics.encode().lines().any(|l| l == "palisade_fsync_seconds_count 2"));
        assert!(disk.sync("missing.log").is_err(), "errors pass through");
    }
}
