//! What the simulator drives: any sans-IO state machine behind the small [`Process`] trait.
//!
//! A process never sees the simulator. It is built by a factory from a [`Boot`] (its disk, its
//! incarnation, a seed, its clock reading), and from then on it is only called: `handle_start`
//! once, then `handle_message` and `handle_timeout` as events reach it, each with a [`Ctx`]
//! that carries its local clock reading and collects what it sends and observes. Between calls
//! the simulator asks `poll_timeout` when it next wants `handle_timeout`, in the process's own
//! monotonic time, and converts that to true time through the process's drifting clock.
//!
//! A crash is the process value being dropped; a restart is the factory being called again
//! with the same disk, which lost what was not synced. So a process's state lives in its fields
//! (volatile) and on its disk (durable), exactly as on a real machine.

use std::fmt;

use palisade_clock::{MonoInstant, Now};
use palisade_storage::SimDisk;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Fnv1a64;

/// Identifies a process of a simulation: its index, in the order processes were added.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ProcId(pub u32);

impl ProcId {
    /// The index of the process in the simulation's tables.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for ProcId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

impl fmt::Display for ProcId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// A sans-IO node the simulator can drive: a server, a client, or a user's own protocol.
///
/// Call order: `handle_start` once after the factory built the value; then any sequence of
/// `handle_message` and `handle_timeout`; `poll_timeout` after every call. A spurious
/// `handle_timeout` (none of the process's deadlines has passed) must be a harmless no-op; the
/// simulator only calls it once `poll_timeout`'s instant has been reached on the local clock.
pub trait Process {
    /// The messages processes exchange. They cross the simulated network as values; with
    /// corruption on, they are encoded as `palisade_wire` frames, so they must round-trip.
    type Msg: Clone + fmt::Debug + Serialize + DeserializeOwned;
    /// What the process reports for checkers and reports (e.g. "granted lock L, token 34").
    type Obs: Clone + fmt::Debug;

    /// Called once per incarnation, right after the factory built the value.
    fn handle_start(&mut self, ctx: &mut Ctx<'_, Self::Msg, Self::Obs>);

    /// A message from `from` arrived.
    fn handle_message(
        &mut self,
        ctx: &mut Ctx<'_, Self::Msg, Self::Obs>,
        from: ProcId,
        msg: Self::Msg,
    );

    /// The instant from `poll_timeout` has been reached on the local monotonic clock.
    fn handle_timeout(&mut self, ctx: &mut Ctx<'_, Self::Msg, Self::Obs>);

    /// When the process next wants `handle_timeout`, in its local monotonic time; `None`: never.
    fn poll_timeout(&self) -> Option<MonoInstant>;

    /// Feeds what identifies `obs` into the trace hash. The default streams its `Debug` text;
    /// a process type whose observations are cheaper to digest another way (their serde
    /// fields through [`Fnv1a64::write_serialized`], a few words) overrides it. It must depend
    /// only on `obs`, so that the same run always gives the same hash.
    fn digest_obs(obs: &Self::Obs, hasher: &mut Fnv1a64) {
        // Writing to the hasher cannot fail; a `Debug` impl that reports an error would only
        // shorten what is hashed, identically on every run.
        let _ = fmt::write(hasher, format_args!("{obs:?}"));
    }
}

/// What a process may do during one handler call: read its clock, send, observe, draw random
/// numbers. Outputs are collected and applied by the simulator after the call returns.
pub struct Ctx<'a, M, O> {
    pub(crate) now: Now,
    pub(crate) me: ProcId,
    pub(crate) incarnation: u32,
    pub(crate) outbox: &'a mut Vec<(ProcId, M)>,
    pub(crate) observed: &'a mut Vec<O>,
    pub(crate) rng: &'a mut ChaCha8Rng,
}

impl<M, O> Ctx<'_, M, O> {
    /// The process's local clock readings at the moment of this call (not the true time).
    pub fn now(&self) -> Now {
        self.now
    }

    /// This process's id.
    pub fn me(&self) -> ProcId {
        self.me
    }

    /// How many times this process has been started (0 for the first boot).
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// Sends `msg` to `to` through the simulated network. Sending to oneself always arrives
    /// (after the minimum delay) and never meets a network fault. The simulator panics when it
    /// applies a send to a process id it does not know: that is a bug in the process.
    pub fn send(&mut self, to: ProcId, msg: M) {
        self.outbox.push((to, msg));
    }

    /// Reports an observation; the simulator records it with the true time its effects happen.
    pub fn observe(&mut self, obs: O) {
        self.observed.push(obs);
    }

    /// A random-number generator private to this process and incarnation, derived from the
    /// world seed, the process id and the incarnation.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        self.rng
    }
}

impl<M, O> fmt::Debug for Ctx<'_, M, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("me", &self.me)
            .field("now", &self.now)
            .field("incarnation", &self.incarnation)
            .field("outbox_len", &self.outbox.len())
            .finish_non_exhaustive()
    }
}

/// What a factory gets to build a process (the first time, and after every crash).
pub struct Boot {
    /// The process's disk: empty at first, after a crash whatever survived it.
    pub disk: SimDisk,
    /// 0 at the first boot, then one more at each restart.
    pub incarnation: u32,
    /// A seed private to this process and incarnation, for the process's own rng.
    pub seed: u64,
    /// The local clock readings at boot.
    pub now: Now,
}

impl fmt::Debug for Boot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Boot")
            .field("incarnation", &self.incarnation)
            .field("seed", &self.seed)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// Builds a process: called by `add_process` and by every restart.
pub type Factory<P> = Box<dyn FnMut(ProcId, Boot) -> P>;

/// Seed streams derived from the world seed, one tag per use, so that adding a draw to one
/// stream (say, the network) does not shift any other (say, the clocks).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stream {
    Network = 1,
    Faults = 2,
    Clocks = 3,
    ProcCtx = 4,
    ProcBoot = 5,
}

/// A sub-seed: SplitMix64 finalisation of the world seed, a stream tag and two indices.
pub(crate) fn derive_seed(seed: u64, stream: Stream, a: u64, b: u64) -> u64 {
    let mut z = seed;
    for word in [stream as u64, a, b] {
        z = splitmix(z ^ word.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    }
    z
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_seeds_differ_per_stream_and_index() {
        let a = derive_seed(1, Stream::ProcCtx, 0, 0);
        assert_ne!(a, derive_seed(1, Stream::ProcBoot, 0, 0));
        assert_ne!(a, derive_seed(1, Stream::ProcCtx, 1, 0));
        assert_ne!(a, derive_seed(1, Stream::ProcCtx, 0, 1));
        assert_ne!(a, derive_seed(2, Stream::ProcCtx, 0, 0));
        assert_eq!(a, derive_seed(1, Stream::ProcCtx, 0, 0));
    }
}
