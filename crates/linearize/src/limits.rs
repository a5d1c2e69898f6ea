//! Every limit of the checker, in one place.
//!
//! Why limits: the checker reads files other tools wrote, and its search is exponential in the
//! worst case (deciding linearizability is NP-complete, Gibbons & Korach 1997). A history file
//! past [`HISTORY_FILE_BYTES_MAX`] is refused before it is read; a history with more than
//! [`HISTORY_EVENTS_MAX`] events or [`OPERATIONS_MAX`] operations is refused with a typed
//! error; and a search that would run past its budget ([`CheckOptions`]) stops and answers
//! "unknown" instead of running for hours or exhausting memory. The budget counts search
//! steps, not seconds, so the same history gives the same answer on every machine and in the
//! simulator.
//!
//! [`CheckOptions`]: crate::CheckOptions

use std::fmt;

use serde::{Deserialize, Serialize};

/// Largest history file `palisade check` reads, in bytes.
pub const HISTORY_FILE_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// Most entries in a JSON history's `operations` array (events or operations).
pub const HISTORY_EVENTS_MAX: usize = 4_000_000;
/// Most operations one check accepts (all partitions together).
pub const OPERATIONS_MAX: usize = 2_000_000;
/// Default budget of search steps per partition (one step = one candidate considered or one
/// backtrack). A 10,000-operation register history typically needs a few times its length.
pub const SEARCH_STEPS_MAX_DEFAULT: u64 = 20_000_000;
/// Default most entries in one partition's memo cache (each holds a bitset of the partition's
/// operations and a model state): bounds the checker's memory.
pub const CACHE_ENTRIES_MAX_DEFAULT: usize = 2_000_000;
/// Most operations of the longest linearizable prefix shown in an explanation (the last ones).
pub const EXPLAIN_PREFIX_OPS_MAX: usize = 8;
/// Most pending operations listed in an explanation.
pub const EXPLAIN_PENDING_OPS_MAX: usize = 8;

const _: () = assert!(OPERATIONS_MAX <= HISTORY_EVENTS_MAX);
const _: () = assert!(OPERATIONS_MAX < u32::MAX as usize);
const _: () = assert!(CACHE_ENTRIES_MAX_DEFAULT as u64 <= SEARCH_STEPS_MAX_DEFAULT);

/// Which search budget a check ran out of.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Budget {
    /// [`crate::CheckOptions::steps_max`].
    SearchSteps,
    /// [`crate::CheckOptions::cache_entries_max`].
    CacheEntries,
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Budget::SearchSteps => f.write_str("search steps"),
            Budget::CacheEntries => f.write_str("memo cache entries"),
        }
    }
}
