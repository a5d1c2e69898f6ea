//! Saving a snapshot and compacting the log behind it.
//!
//! The steps, and what a crash after each leaves (the recovered state is in brackets):
//!
//! 1. sync the entries appended so far, so the snapshot never gets ahead of the log it
//!    summarises [old] (a new hard state is written only in step 4, after the snapshot, as
//!    its commit index may be the snapshot's);
//! 2. write `snapshot.tmp` and sync it [old; recovery deletes the stale temporary file];
//! 3. rename it to `snapshot` and sync the directory [old or new until the directory sync,
//!    new after it];
//! 4. if the log does not hold the snapshot's last entry with the snapshot's term, write a
//!    reset record; write the hard state if it changed; sync [new: recovery applies the same
//!    rule to the log it replays, and writes the reset itself if the crash came first];
//! 5. if the segments about to be deleted hold the last hard-state record, write it again
//!    into the last segment and sync [new];
//! 6. delete, oldest first, each segment before the last whose entries the snapshot covers,
//!    syncing the directory after each [new: the log left starts where the snapshot ends
//!    or earlier, and its lower entries are dropped on replay].

use palisade_raft::Snapshot;

use crate::blob::{decode_blob, encode_blob, replace_file};
use crate::disk::Disk;
use crate::limits::SNAPSHOT_BYTES_MAX;
use crate::wal::record::RecordRef;
use crate::wal::{Wal, WalError};

/// Name of the snapshot file.
pub const SNAPSHOT_FILE: &str = "snapshot";
/// Name the snapshot is written under before it is renamed into place.
pub const SNAPSHOT_TMP_FILE: &str = "snapshot.tmp";

const SNAPSHOT_MAGIC: [u8; 4] = *b"PLSN";
const SNAPSHOT_FILE_VERSION: u32 = 1;

/// Reads and checks the snapshot file, `None` if there is none.
pub(crate) fn read_snapshot_file<D: Disk + ?Sized>(disk: &D) -> Result<Option<Snapshot>, WalError> {
    if !disk.exists(SNAPSHOT_FILE)? {
        return Ok(None);
    }
    let corrupt = |reason: String| WalError::CorruptFile { name: SNAPSHOT_FILE.into(), reason };
    let len = disk.len(SNAPSHOT_FILE)?;
    if len > SNAPSHOT_BYTES_MAX {
        return Err(corrupt(format!("{len} bytes, more than SNAPSHOT_BYTES_MAX")));
    }
    let bytes = disk.read(SNAPSHOT_FILE)?;
    let body = decode_blob(
        SNAPSHOT_FILE,
        &bytes,
        SNAPSHOT_MAGIC,
        SNAPSHOT_FILE_VERSION,
        SNAPSHOT_BYTES_MAX,
    )?;
    match postcard::take_from_bytes::<Snapshot>(body) {
        Ok((snapshot, [])) => Ok(Some(snapshot)),
        Ok(_) => Err(corrupt("bytes after the snapshot".into())),
        Err(e) => Err(corrupt(format!("does not decode: {e}"))),
    }
}

impl<D: Disk> Wal<D> {
    /// Saves `snapshot` durably and compacts the log behind it (see the module doc for the
    /// steps). Entries after the snapshot are kept only if the log holds the snapshot's last
    /// entry with its term (Raft figure 13); otherwise the log is discarded and the next entry
    /// appended must have index `snapshot.meta.index + 1`. Also syncs the entries appended and the
    /// hard state (written after the snapshot, so its commit index may be the snapshot's).
    pub fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), WalError> {
        self.guarded(|wal| {
            let saved = wal.snapshot.index;
            if snapshot.meta.index < saved {
                return Err(WalError::SnapshotRegression { index: snapshot.meta.index, saved });
            }
            let body = postcard::to_allocvec(snapshot).expect("snapshots serialize");
            let bytes = encode_blob(SNAPSHOT_MAGIC, SNAPSHOT_FILE_VERSION, &body);
            drop(body);
            if bytes.len() as u64 > SNAPSHOT_BYTES_MAX {
                let (bytes, max) = (bytes.len() as u64, SNAPSHOT_BYTES_MAX);
                return Err(WalError::SnapshotTooLarge { bytes, max });
            }
            let (index, term) = (snapshot.meta.index, snapshot.meta.term);
            let kept = wal.terms.term_at(index) == Some(term);
            let last = if kept { wal.terms.last_index() } else { index };
            if wal.hard_state.commit > last {
                return Err(WalError::CommitBeyondLog { commit: wal.hard_state.commit, last });
            }
            wal.sync_segment()?;
            replace_file(&mut wal.disk, SNAPSHOT_FILE, SNAPSHOT_TMP_FILE, &bytes)?;
            wal.stats.syncs += 1;
            wal.stats.dir_syncs += 1;
            assert_eq!(wal.terms.install_snapshot(index, term), kept);
            wal.snapshot = snapshot.meta.clone();
            if !kept {
                wal.write_record(&RecordRef::Reset { index, term })?;
            }
            wal.sync_inner()?;
            wal.compact()
        })
    }

    /// Reads the saved snapshot back from disk (to send it to a follower), `None` if none.
    pub fn read_snapshot(&self) -> Result<Option<Snapshot>, WalError> {
        read_snapshot_file(&self.disk)
    }

    /// Deletes the oldest segments (never the last) whose entries the snapshot covers.
    fn compact(&mut self) -> Result<(), WalError> {
        let index = self.snapshot.index;
        let last = self.segments.len() - 1;
        let removable = self.segments[..last]
            .iter()
            .take_while(|segment| segment.max_entry.is_none_or(|max| max <= index))
            .count();
        if removable == 0 {
            return Ok(());
        }
        let first_kept = self.segments[removable].seq;
        if self.hard_state_seq.is_some_and(|seq| seq < first_kept) {
            self.write_hard_state()?;
            self.sync_inner()?;
        }
        for _ in 0..removable {
            self.disk.remove(&self.segments[0].name)?;
            self.disk.sync_dir()?;
            self.segments.remove(0);
            self.stats.dir_syncs += 1;
            self.stats.segments_removed += 1;
        }
        Ok(())
    }
}
