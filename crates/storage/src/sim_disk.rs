//! [`SimDisk`]: an in-memory [`Disk`] that crashes the way the trait's contract allows.
//!
//! # Why a model rather than a mock
//!
//! The WAL's recovery code is the part of a storage engine that runs least and matters most,
//! and the faults it must survive (lost writes, torn writes, bit rot) never happen on a
//! developer's machine. This disk keeps, per file, the bytes that are durable and, apart from
//! them, the writes since the last sync in order; and, for the directory, the names as of the
//! last `sync_dir` and the creates, renames and removes since. A crash then keeps the durable
//! state plus a random prefix of each of those queues, possibly tearing the last write kept:
//! every outcome [`Disk`] allows, drawn from a seeded [`ChaCha8Rng`], and nothing it does not
//! (writes of one file are never reordered; unsynced directory operations survive as a prefix,
//! in the order they were made, like a journaling file system commits them).
//!
//! Files live in "inodes" separate from names, as on a real file system, so a synced file whose
//! creation was never made durable by `sync_dir` vanishes in a crash, and a rename that was not
//! made durable may be undone while the renamed file keeps its contents.
//!
//! # Sharing
//!
//! A `SimDisk` is a cheap [`Clone`] handle (`Rc<RefCell<..>>`): the simulated node owns one
//! (usually inside its WAL) and the simulator keeps another to crash, corrupt or fail it. After
//! [`SimDisk::crash`] every handle sees the disk as it is after the restart.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::rc::Rc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::disk::{Disk, Result, StorageError, check_range, validate_name};

/// Probability that a random crash tears the first write it does not keep whole.
pub const CRASH_TEAR_PROBABILITY: f64 = 0.5;

/// Counters of what a [`SimDisk`] did, for reports and assertions in tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimDiskStats {
    /// `append` and `write_at` calls that succeeded.
    pub writes: u64,
    /// Bytes those calls wrote.
    pub bytes_written: u64,
    /// `sync` calls that succeeded.
    pub syncs: u64,
    /// `sync_dir` calls that succeeded.
    pub dir_syncs: u64,
    /// Crashes applied.
    pub crashes: u64,
    /// Unsynced writes that crashes dropped entirely.
    pub writes_lost: u64,
    /// Unsynced writes that crashes tore (kept only a prefix of).
    pub writes_torn: u64,
    /// Bits flipped in durable data.
    pub bits_flipped: u64,
    /// Operations failed on purpose (see [`SimDisk::fail_ops`]).
    pub faults_injected: u64,
}

/// A write to a file that has not been synced yet.
#[derive(Clone, Debug)]
enum Pending {
    /// Bytes written at an offset (an `append` is a write at the old end); the bytes are
    /// `written[start..start + len]` of the file's [`Inode::written`].
    Write { offset: u64, start: usize, len: usize },
    /// The file was shortened to `len` bytes.
    Truncate { len: u64 },
}

impl Pending {
    /// The bytes of a write (`written` is the inode's [`Inode::written`]); empty otherwise.
    fn data<'a>(&self, written: &'a [u8]) -> &'a [u8] {
        match *self {
            Pending::Write { start, len, .. } => &written[start..start + len],
            Pending::Truncate { .. } => &[],
        }
    }

    fn apply(&self, written: &[u8], bytes: &mut Vec<u8>) {
        match self {
            Pending::Write { offset, .. } => apply_write(bytes, *offset, self.data(written)),
            Pending::Truncate { len } => {
                let len = usize::try_from(*len).expect("file length fits in memory");
                assert!(len <= bytes.len(), "replayed truncate must shorten");
                bytes.truncate(len);
            }
        }
    }
}

fn apply_write(bytes: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = usize::try_from(offset).expect("file offset fits in memory");
    assert!(start <= bytes.len(), "writes never leave holes");
    if start == bytes.len() {
        // An append: no zero fill to overwrite.
        bytes.extend_from_slice(data);
        return;
    }
    let end = start + data.len();
    if end > bytes.len() {
        bytes.resize(end, 0);
    }
    bytes[start..end].copy_from_slice(data);
}

/// A file's contents, apart from the names that refer to it.
#[derive(Clone, Debug, Default)]
struct Inode {
    /// What a crash keeps for sure.
    durable: Vec<u8>,
    /// Writes since the last sync, in order.
    pending: Vec<Pending>,
    /// The bytes of those writes, one after the other (one buffer rather than one
    /// allocation per write; emptied, its capacity kept, by every sync).
    written: Vec<u8>,
    /// `durable` with `pending` applied: what reads return.
    current: Vec<u8>,
}

/// A directory operation that has not been made durable by `sync_dir` yet.
#[derive(Clone, Debug)]
enum DirOp {
    Create { name: String, inode: u64 },
    Rename { from: String, to: String },
    Remove { name: String },
}

impl DirOp {
    fn apply(&self, dir: &mut BTreeMap<String, u64>) {
        match self {
            DirOp::Create { name, inode } => {
                assert!(dir.insert(name.clone(), *inode).is_none(), "create of an existing name");
            }
            DirOp::Rename { from, to } => {
                let inode = dir.remove(from).expect("replayed rename has its source");
                dir.insert(to.clone(), inode);
            }
            DirOp::Remove { name } => {
                assert!(dir.remove(name).is_some(), "replayed remove has its file");
            }
        }
    }
}

/// How a crash decides what survives.
enum Plan<'a> {
    /// Random prefixes, random tears.
    Random(&'a mut ChaCha8Rng),
    /// Only durable state survives.
    LoseAll,
    /// Only the first `bytes` unsynced bytes of `name` survive.
    KeepBytes { name: &'a str, bytes: u64 },
}

impl Plan<'_> {
    /// How many of `count` unsynced directory operations survive.
    fn dir_ops_kept(&mut self, count: usize) -> usize {
        match self {
            Plan::Random(rng) => rng.random_range(0..=count),
            Plan::LoseAll | Plan::KeepBytes { .. } => 0,
        }
    }

    /// How many of a file's pending writes survive whole, and how many bytes of the next one.
    fn file_kept(&mut self, name: &str, pending: &[Pending]) -> (usize, Option<usize>) {
        match self {
            Plan::Random(rng) => {
                let kept = rng.random_range(0..=pending.len());
                let torn = match pending.get(kept) {
                    Some(&Pending::Write { len, .. })
                        if len >= 2 && rng.random_bool(CRASH_TEAR_PROBABILITY) =>
                    {
                        Some(rng.random_range(1..len))
                    }
                    _ => None,
                };
                (kept, torn)
            }
            Plan::LoseAll => (0, None),
            Plan::KeepBytes { name: keep_name, bytes } => {
                if name != *keep_name {
                    return (0, None);
                }
                let mut budget = *bytes;
                for (i, op) in pending.iter().enumerate() {
                    if let &Pending::Write { len, .. } = op {
                        let len = len as u64;
                        if len > budget {
                            let torn = usize::try_from(budget).expect("budget < len");
                            return (i, (torn > 0).then_some(torn));
                        }
                        budget -= len;
                    }
                }
                (pending.len(), None)
            }
        }
    }
}

/// Operations to let through, then operations to fail.
#[derive(Clone, Copy, Debug, Default)]
struct Faults {
    pass: u64,
    fail: u64,
}

#[derive(Default)]
struct State {
    inodes: BTreeMap<u64, Inode>,
    inode_next: u64,
    /// Names as reads see them.
    dir: BTreeMap<String, u64>,
    /// Names as of the last `sync_dir`.
    dir_durable: BTreeMap<String, u64>,
    /// Directory operations since the last `sync_dir`, in order.
    dir_pending: Vec<DirOp>,
    /// The last name found in `dir` and its inode: a WAL appends to and syncs one segment
    /// over and over. Cleared whenever a name leaves `dir` or changes inode.
    recent: Option<(String, u64)>,
    faults: Faults,
    stats: SimDiskStats,
}

/// An in-memory [`Disk`] that can crash, tear writes, flip bits and fail operations.
///
/// Cloning gives another handle to the same disk.
#[derive(Clone, Default)]
pub struct SimDisk {
    state: Rc<RefCell<State>>,
}

impl fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("SimDisk")
            .field("files", &state.dir.keys().collect::<Vec<_>>())
            .field("dir_ops_unsynced", &state.dir_pending.len())
            .field("stats", &state.stats)
            .finish()
    }
}

impl SimDisk {
    /// An empty disk.
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    /// What the disk has done so far.
    pub fn stats(&self) -> SimDiskStats {
        self.state.borrow().stats
    }

    /// Unsynced bytes written to files (what a crash may lose).
    pub fn unsynced_bytes(&self) -> u64 {
        let state = self.state.borrow();
        let pending = state.inodes.values().flat_map(|inode| &inode.pending);
        pending
            .map(|op| match *op {
                Pending::Write { len, .. } => len as u64,
                Pending::Truncate { .. } => 0,
            })
            .sum()
    }

    /// A power loss: each file keeps its durable contents plus a random prefix of its unsynced
    /// writes, of which the write after the prefix is torn (a random strict prefix of its bytes
    /// kept) with probability [`CRASH_TEAR_PROBABILITY`]; the directory keeps its durable
    /// names plus a random prefix of the unsynced creates, renames and removes. Afterwards
    /// everything left is durable, and the handle goes on as the restarted machine's disk.
    pub fn crash(&self, rng: &mut ChaCha8Rng) {
        self.crash_by(&mut Plan::Random(rng));
    }

    /// A power loss in which nothing unsynced survives.
    pub fn crash_lose_unsynced(&self) {
        self.crash_by(&mut Plan::LoseAll);
    }

    /// A power loss in which nothing unsynced survives except the first `bytes` bytes of the
    /// unsynced writes to `name` (in the order written; a write straddling the boundary is
    /// torn there, truncations cost nothing). Unsynced directory operations are all lost.
    pub fn crash_keeping(&self, name: &str, bytes: u64) {
        self.crash_by(&mut Plan::KeepBytes { name, bytes });
    }

    fn crash_by(&self, plan: &mut Plan<'_>) {
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        let mut dir = state.dir_durable.clone();
        let dir_kept = plan.dir_ops_kept(state.dir_pending.len());
        for op in &state.dir_pending[..dir_kept] {
            op.apply(&mut dir);
        }
        let mut inodes = BTreeMap::new();
        for (name, &id) in &dir {
            let inode = &state.inodes[&id];
            let (kept, torn) = plan.file_kept(name, &inode.pending);
            let mut bytes = inode.durable.clone();
            for op in &inode.pending[..kept] {
                op.apply(&inode.written, &mut bytes);
            }
            if let (Some(cut), Some(op @ Pending::Write { offset, .. })) =
                (torn, inode.pending.get(kept))
            {
                apply_write(&mut bytes, *offset, &op.data(&inode.written)[..cut]);
                state.stats.writes_torn += 1;
            }
            let lost = inode.pending.len() - kept - usize::from(torn.is_some());
            state.stats.writes_lost += lost as u64;
            let inode = Inode { durable: bytes.clone(), current: bytes, ..Inode::default() };
            inodes.insert(id, inode);
        }
        state.inodes = inodes;
        state.dir_durable = dir.clone();
        state.dir = dir;
        state.recent = None;
        state.dir_pending.clear();
        state.stats.crashes += 1;
    }

    /// Flips bit `bit_index` (bit `bit_index % 8` of byte `bit_index / 8`) of the durable
    /// contents of the file durably named `name`: bit rot on the platter. Reads see it at once
    /// unless an unsynced write covers that byte.
    pub fn flip_bit(&self, name: &str, bit_index: u64) -> Result<()> {
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        let Some(&id) = state.dir_durable.get(name) else {
            return Err(StorageError::NotFound { name: name.to_owned() });
        };
        let inode = state.inodes.get_mut(&id).expect("named inodes exist");
        let byte = bit_index / 8;
        check_range("flip_bit", name, byte, 1, inode.durable.len() as u64)?;
        let byte = usize::try_from(byte).expect("checked against the file length");
        inode.durable[byte] ^= 1 << (bit_index % 8);
        let mut current = inode.durable.clone();
        for op in &inode.pending {
            op.apply(&inode.written, &mut current);
        }
        inode.current = current;
        state.stats.bits_flipped += 1;
        Ok(())
    }

    /// Flips one bit chosen uniformly among all durable bits of all durably named files;
    /// returns the file and bit index, or `None` if no file holds a durable byte.
    pub fn flip_random_bit(&self, rng: &mut ChaCha8Rng) -> Option<(String, u64)> {
        let (name, bit) = {
            let state = self.state.borrow();
            let sizes: Vec<(&String, u64)> = state
                .dir_durable
                .iter()
                .map(|(name, id)| (name, state.inodes[id].durable.len() as u64 * 8))
                .filter(|&(_, bits)| bits > 0)
                .collect();
            let total: u64 = sizes.iter().map(|&(_, bits)| bits).sum();
            if total == 0 {
                return None;
            }
            let mut bit = rng.random_range(0..total);
            let mut chosen = None;
            for (name, bits) in sizes {
                if bit < bits {
                    chosen = Some(name.clone());
                    break;
                }
                bit -= bits;
            }
            (chosen.expect("bit < total"), bit)
        };
        self.flip_bit(&name, bit).expect("the bit was chosen inside a durable file");
        Some((name, bit))
    }

    /// Lets the next `pass` operations through, then fails the `fail` after them with an I/O
    /// error (every [`Disk`] method counts as one operation, reads included). A failed
    /// operation has no effect. Replaces any earlier plan; survives crashes.
    pub fn fail_ops(&self, pass: u64, fail: u64) {
        self.state.borrow_mut().faults = Faults { pass, fail };
    }

    /// Cancels [`SimDisk::fail_ops`].
    pub fn clear_faults(&self) {
        self.state.borrow_mut().faults = Faults::default();
    }
}

impl State {
    /// Counts one operation against the fault plan.
    fn fault(&mut self, op: &'static str, name: &str) -> Result<()> {
        if self.faults.pass > 0 {
            self.faults.pass -= 1;
            return Ok(());
        }
        if self.faults.fail > 0 {
            self.faults.fail -= 1;
            self.stats.faults_injected += 1;
            let source = io::Error::other("simulated I/O fault");
            return Err(StorageError::Io { op, name: name.to_owned(), source });
        }
        Ok(())
    }

    /// Fault check, name check, and the inode `name` refers to.
    fn file(&mut self, op: &'static str, name: &str) -> Result<u64> {
        self.fault(op, name)?;
        // Every name in the directory was validated when it was created (append, rename), so
        // only a name that is not there needs the check, to tell a bad name from a missing one.
        if let Some(id) = self.lookup(name) {
            return Ok(id);
        }
        validate_name(name)?;
        Err(StorageError::NotFound { name: name.to_owned() })
    }

    /// The inode `name` refers to, if it is in the directory.
    fn lookup(&mut self, name: &str) -> Option<u64> {
        if let Some((recent, id)) = &self.recent
            && recent == name
        {
            return Some(*id);
        }
        let id = *self.dir.get(name)?;
        self.recent = Some((name.to_owned(), id));
        Some(id)
    }

    fn inode(&self, id: u64) -> &Inode {
        &self.inodes[&id]
    }

    /// Writes `data` at `offset`, or at the end of the file (an append) if `None`.
    fn write(&mut self, id: u64, offset: Option<u64>, data: &[u8]) {
        self.stats.writes += 1;
        self.stats.bytes_written += data.len() as u64;
        if data.is_empty() {
            return;
        }
        let inode = self.inodes.get_mut(&id).expect("named inodes exist");
        let offset = offset.unwrap_or(inode.current.len() as u64);
        apply_write(&mut inode.current, offset, data);
        let start = inode.written.len();
        inode.written.extend_from_slice(data);
        inode.pending.push(Pending::Write { offset, start, len: data.len() });
    }
}

impl Disk for SimDisk {
    fn list(&self) -> Result<Vec<String>> {
        let mut state = self.state.borrow_mut();
        state.fault("list", "")?;
        Ok(state.dir.keys().cloned().collect())
    }

    fn exists(&self, name: &str) -> Result<bool> {
        let mut state = self.state.borrow_mut();
        state.fault("exists", name)?;
        validate_name(name)?;
        Ok(state.dir.contains_key(name))
    }

    fn len(&self, name: &str) -> Result<u64> {
        let mut state = self.state.borrow_mut();
        let id = state.file("len", name)?;
        Ok(state.inode(id).current.len() as u64)
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let mut state = self.state.borrow_mut();
        let id = state.file("read", name)?;
        Ok(state.inode(id).current.clone())
    }

    fn read_at(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut state = self.state.borrow_mut();
        let id = state.file("read_at", name)?;
        let bytes = &state.inode(id).current;
        check_range("read_at", name, offset, len as u64, bytes.len() as u64)?;
        let start = usize::try_from(offset).expect("checked against the file length");
        Ok(bytes[start..start + len].to_vec())
    }

    fn append(&mut self, name: &str, data: &[u8]) -> Result<()> {
        let mut state = self.state.borrow_mut();
        state.fault("append", name)?;
        let id = match state.lookup(name) {
            // Validated when it was created.
            Some(id) => id,
            None => {
                validate_name(name)?;
                let id = state.inode_next;
                state.inode_next += 1;
                state.inodes.insert(id, Inode::default());
                state.dir.insert(name.to_owned(), id);
                state.dir_pending.push(DirOp::Create { name: name.to_owned(), inode: id });
                id
            }
        };
        state.write(id, None, data);
        Ok(())
    }

    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<()> {
        let mut state = self.state.borrow_mut();
        let id = state.file("write_at", name)?;
        check_range("write_at", name, offset, 0, state.inode(id).current.len() as u64)?;
        state.write(id, Some(offset), data);
        Ok(())
    }

    fn truncate(&mut self, name: &str, len: u64) -> Result<()> {
        let mut state = self.state.borrow_mut();
        let id = state.file("truncate", name)?;
        let inode = state.inodes.get_mut(&id).expect("named inodes exist");
        check_range("truncate", name, len, 0, inode.current.len() as u64)?;
        let op = Pending::Truncate { len };
        op.apply(&inode.written, &mut inode.current);
        inode.pending.push(op);
        Ok(())
    }

    fn sync(&mut self, name: &str) -> Result<()> {
        let mut state = self.state.borrow_mut();
        let id = state.file("sync", name)?;
        let inode = state.inodes.get_mut(&id).expect("named inodes exist");
        for op in &inode.pending {
            op.apply(&inode.written, &mut inode.durable);
        }
        let len = inode.current.len();
        assert!(inode.durable.len() == len, "a synced file is durable as read");
        // `durable` and `current` agreed outside the bytes the pending writes touch (this
        // check, at every earlier sync), so comparing the touched bytes proves the whole file
        // durable as read — without comparing the whole file at every fsync.
        for op in inode.pending.drain(..) {
            if let Pending::Write { offset, len: written, .. } = op {
                let start = usize::try_from(offset).expect("file offset fits in memory");
                let range = start.min(len)..(start + written).min(len);
                assert!(
                    inode.durable[range.clone()] == inode.current[range],
                    "a synced write is durable as read"
                );
            }
        }
        inode.written.clear();
        state.stats.syncs += 1;
        Ok(())
    }

    fn sync_dir(&mut self) -> Result<()> {
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        state.fault("sync_dir", "")?;
        state.dir_pending.clear();
        state.dir_durable = state.dir.clone();
        let dir = &state.dir;
        state.inodes.retain(|id, _| dir.values().any(|named| named == id));
        state.stats.dir_syncs += 1;
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        let mut state = self.state.borrow_mut();
        let id = state.file("rename", from)?;
        validate_name(to)?;
        if from == to {
            return Ok(());
        }
        state.dir.remove(from);
        state.dir.insert(to.to_owned(), id);
        state.recent = None;
        state.dir_pending.push(DirOp::Rename { from: from.to_owned(), to: to.to_owned() });
        Ok(())
    }

    fn remove(&mut self, name: &str) -> Result<()> {
        let mut state = self.state.borrow_mut();
        state.file("remove", name)?;
        state.dir.remove(name);
        state.recent = None;
        state.dir_pending.push(DirOp::Remove { name: name.to_owned() });
        Ok(())
    }
}

#[cfg(test)]
mod tests;
