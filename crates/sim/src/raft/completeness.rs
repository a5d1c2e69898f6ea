//! Leader completeness, checked before it can be broken.
//!
//! Raft §5.4 proves that a committed entry is in the log of every later leader: it is durable
//! on a majority, and each of those nodes refuses its vote to a candidate whose log is less
//! up-to-date than its own, which any log lacking the entry is. The checker states that
//! argument as an invariant over the cluster's *current* disks and logs, so a broken commit
//! rule is caught the moment it commits, not only in the rare schedule that later overwrites
//! the entry (Raft figure 8): whenever an index is committed (first applied anywhere), no node
//! whose log lacks that entry may be able to collect a majority of votes, counting as voters
//! itself and every node whose *durable* log is not more up-to-date than its log.
//!
//! Both sides are estimated so that a correct Raft can never trip it: a running candidate's
//! log is taken to be its WAL (Raft's memory may be ahead of it; the nodes that hold the
//! entry durably refuse such a candidate all the same, and they are a majority); a running
//! voter's durable log ends where its WAL stood at its last fsync (a crash may keep more,
//! which never makes a log end lower, as replacing entries have higher terms); a crashed
//! node's log is read from its disk, which after the crash is all durable. Servers that refuse
//! to start take no part.

use std::collections::BTreeMap;

use palisade_raft::{LogIndex, Term};
use palisade_storage::{Disk, SimDisk, SimDiskStats, Wal, WalOptions};

use crate::ProcId;
use crate::raft::server::LogMirror;

/// What the check needs to know of one server.
#[derive(Debug)]
pub(crate) struct View<'a> {
    /// The server.
    pub proc: ProcId,
    /// Its log as a candidate would campaign with it (at least).
    pub log: &'a LogMirror,
    /// The end of its durable log, (term, index): it refuses its vote to any less
    /// up-to-date candidate.
    pub durable_end: (Term, LogIndex),
}

pub(crate) use crate::raft::server::mirror_end as log_end;

/// If some server lacking the committed entry (`index`, `term`, `payload`) could be elected,
/// says who and by whom.
pub(crate) fn electable_without(
    (index, term, payload): (LogIndex, Term, u64),
    views: &[View<'_>],
    servers: usize,
) -> Option<String> {
    let majority = servers / 2 + 1;
    for candidate in views {
        let log = candidate.log;
        let covered = index < log.first_index();
        if covered || log.get(index) == Some((term, payload)) {
            continue;
        }
        let end = log_end(log);
        let voters: Vec<ProcId> = views
            .iter()
            .filter(|v| v.proc == candidate.proc || v.durable_end <= end)
            .map(|v| v.proc)
            .collect();
        if voters.len() >= majority {
            return Some(format!(
                "{} lacks committed entry {index} (term {term}) yet could be elected by \
                 {voters:?} (its log ends at term {}, index {})",
                candidate.proc, end.0, end.1
            ));
        }
    }
    None
}

/// The logs of crashed servers, read from their disks (once per state of each disk).
#[derive(Debug, Default)]
pub(crate) struct DiskLogs {
    cache: BTreeMap<ProcId, (SimDiskStats, Option<LogMirror>)>,
}

impl DiskLogs {
    /// The log server `p` would restart with from `disk`, `None` if it would refuse to
    /// start. The disk is copied first: opening a WAL repairs it, and this must not touch
    /// the crashed server's disk.
    pub fn log_of(&mut self, p: ProcId, disk: &SimDisk, wal: WalOptions) -> Option<&LogMirror> {
        let stats = disk.stats();
        let fresh = self.cache.get(&p).is_some_and(|(s, _)| *s == stats);
        if !fresh {
            self.cache.insert(p, (stats, read_log(disk, wal)));
        }
        self.cache.get(&p).and_then(|(_, log)| log.as_ref())
    }
}

fn read_log(disk: &SimDisk, wal: WalOptions) -> Option<LogMirror> {
    let mut copy = SimDisk::new();
    for name in disk.list().ok()? {
        let bytes = disk.read(&name).ok()?;
        copy.append(&name, &bytes).ok()?;
        copy.sync(&name).ok()?;
    }
    copy.sync_dir().ok()?;
    let (_, recovered) = Wal::open_with(copy, wal).ok()?;
    let (base_index, base_term) =
        recovered.snapshot.as_ref().map_or((0, 0), |s| (s.meta.index, s.meta.term));
    Some(LogMirror::recovered(base_index, base_term, &recovered.entries))
}

#[cfg(test)]
mod tests {
    use palisade_raft::{Entry, Payload};

    use super::*;
    use crate::raft::msg::payload_hash;

    fn log(terms: &[Term]) -> LogMirror {
        let entries: Vec<Entry> = terms
            .iter()
            .enumerate()
            .map(|(i, &term)| Entry { term, index: i as u64 + 1, payload: Payload::Noop })
            .collect();
        LogMirror::recovered(0, 0, &entries)
    }

    /// Raft figure 8 (c): entry 2 of term 2 is on S1, S2, S3, but S5, whose log ends with
    /// term 3, can still be elected by S2, S3, S4 (their logs end with terms 2, 2, 1).
    #[test]
    fn figure_8_is_caught_when_the_entry_is_committed() {
        let noop = payload_hash(&Payload::Noop);
        let logs = [log(&[1, 2, 4]), log(&[1, 2]), log(&[1, 2]), log(&[1]), log(&[1, 3])];
        let views: Vec<View<'_>> = logs
            .iter()
            .enumerate()
            .map(|(i, l)| View { proc: ProcId(i as u32), log: l, durable_end: log_end(l) })
            .collect();
        let found = electable_without((2, 2, noop), &views, 5).expect("S5 is electable");
        assert!(found.starts_with("p4 lacks committed entry 2"), "{found}");
        // Once S1's entry of term 4 is durable on S2 and S3 too, nobody lacking entry 2 can win.
        let logs = [log(&[1, 2, 4]), log(&[1, 2, 4]), log(&[1, 2, 4]), log(&[1]), log(&[1, 3])];
        let views: Vec<View<'_>> = logs
            .iter()
            .enumerate()
            .map(|(i, l)| View { proc: ProcId(i as u32), log: l, durable_end: log_end(l) })
            .collect();
        assert_eq!(electable_without((2, 2, noop), &views, 5), None);
    }
}
