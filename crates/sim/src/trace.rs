//! The event trace: one hash that proves two runs were the same, and optionally the events.
//!
//! Determinism is the simulator's whole promise: a seed that found a bug must find it again,
//! byte for byte, on another day and another machine. The cheap way to check that promise is to
//! hash every event as it happens and compare one `u64` at the end, so every event goes into a
//! 64-bit FNV-1a hash (written here: it is a dozen lines, and its output is fixed by its
//! definition, unlike `std`'s `DefaultHasher`, which may change between Rust releases).
//!
//! The hash takes each event's fields directly (time, kind, endpoints, message id) and then its
//! detail: a message's serde fields, one 64-bit word per primitive ([`Fnv1a64::write_serialized`],
//! nothing collected), an observation's digest as its process type defines it
//! ([`crate::Process::digest_obs`]: its `Debug` text unless the type says otherwise), or any
//! other value's `Debug` text streamed into the hasher. Nothing is formatted into a `String`
//! unless the [`TraceSink`] keeps or streams the events, so a run with the trace off allocates
//! nothing per event for it. For speed, fixed fields and serde primitives go in as whole 64-bit
//! words ([`Fnv1a64::write_word`]: FNV-1a's xor-multiply step on a word rather than a byte, plus
//! a fold of the high half into the low half); `Debug` text goes in byte by byte, as in
//! textbook FNV-1a. Every step is a
//! bijection of the state for a given input, so two traces that differ in a single event
//! always differ in their hash.
//!
//! Kept events ([`TraceEvent`]) are plain serde data for reports and `--trace run.jsonl`.

use std::fmt;

use serde::{Deserialize, Serialize, ser};

use crate::ProcId;

/// The 64-bit FNV-1a offset basis.
const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// The 64-bit FNV prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// A 64-bit FNV-1a hasher. Its output depends only on the bytes written, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv1a64 {
    state: u64,
}

impl Fnv1a64 {
    /// A hasher that has seen no bytes.
    pub const fn new() -> Self {
        Fnv1a64 { state: FNV_OFFSET_BASIS }
    }

    /// Feeds bytes, in order.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.state ^= u64::from(b);
            self.state = self.state.wrapping_mul(FNV_PRIME);
        }
    }

    /// Feeds a `u64` as its 8 little-endian bytes (textbook FNV-1a).
    pub fn write_u64(&mut self, v: u64) {
        self.write_bytes(&v.to_le_bytes());
    }

    /// Feeds a whole 64-bit word in one step: xor, multiply by the FNV prime, fold the high
    /// half into the low half (so high input bits reach the low output bits). Eight times
    /// fewer steps than [`Fnv1a64::write_u64`]; not interchangeable with it.
    pub fn write_word(&mut self, v: u64) {
        self.state = (self.state ^ v).wrapping_mul(FNV_PRIME);
        self.state ^= self.state >> 32;
    }

    /// Feeds bytes as little-endian words (the last one zero-padded), then their length.
    pub fn write_bytes_wide(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_word(u64::from_le_bytes(c.try_into().expect("8-byte chunk")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.write_word(u64::from_le_bytes(last));
        }
        self.write_word(bytes.len() as u64);
    }

    /// Feeds `value` through serde, one 64-bit word per primitive (see [`WordSink`]).
    /// Returns `false` if the value cannot be serialized without knowing a sequence's length
    /// up front, as postcard also refuses (the words fed before the error stay fed).
    pub fn write_serialized<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> bool {
        let mut sink = WordSink { state: self.state, run: 0, run_bits: 0 };
        let ok = value.serialize(&mut sink).is_ok();
        if ok {
            sink.end_run();
        }
        self.state = sink.state;
        ok
    }

    /// The hash of everything fed so far (the hasher can keep going).
    pub const fn finish(&self) -> u64 {
        self.state
    }
}

/// A serde serializer that feeds a hash state one [`Fnv1a64::write_word`] step per primitive:
/// every integer, bool, char, float (its bits), enum variant index, option tag (`0`/`1`) and
/// length is one word; the bytes of a string or byte slice are their length, then their
/// little-endian words (the last one zero-padded); a run of consecutive `u8`s (a `Vec<u8>`
/// serializes as a sequence of them) is packed eight to a word, the last one zero-padded. The
/// words follow the shape of postcard's wire format (a length before sequences, maps, strings
/// and bytes; a variant index before a variant's fields; a tag before an option's value), so
/// they determine the value of a given type and where it ends, as postcard's bytes do (no word
/// count is needed after them); they are just not packed into varints, which cost more than a
/// word.
struct WordSink {
    /// The hash state, written back to the hasher at the end.
    state: u64,
    /// A run of `u8`s not fed yet, the first one in the low 8 bits (bits above are zero).
    run: u64,
    /// Bits of `run` in use: 0, 8, ..., 56.
    run_bits: u32,
}

/// Why a value could not be serialized (postcard refuses the same values).
#[derive(Debug)]
struct Unencodable;

impl fmt::Display for Unencodable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the value has no postcard encoding")
    }
}

impl std::error::Error for Unencodable {}

impl ser::Error for Unencodable {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Unencodable
    }
}

impl WordSink {
    /// [`Fnv1a64::write_word`]'s step on the state held here.
    #[inline(always)]
    fn step(&mut self, w: u64) {
        self.state = (self.state ^ w).wrapping_mul(FNV_PRIME);
        self.state ^= self.state >> 32;
    }

    /// Feeds a pending run of `u8`s, if any.
    #[inline(always)]
    fn end_run(&mut self) {
        if self.run_bits > 0 {
            let run = self.run;
            self.step(run);
            self.run = 0;
            self.run_bits = 0;
        }
    }

    /// Feeds one word, after any pending run of `u8`s.
    #[inline(always)]
    fn feed_word(&mut self, w: u64) {
        self.end_run();
        self.step(w);
    }

    /// Adds a `u8` to the pending run, feeding the run when it fills a word.
    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.run |= u64::from(b) << self.run_bits;
        self.run_bits += 8;
        if self.run_bits == 64 {
            self.end_run();
        }
    }

    /// The length, then the bytes as little-endian words, the last one zero-padded.
    fn bytes(&mut self, data: &[u8]) {
        self.feed_word(data.len() as u64);
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            self.step(u64::from_le_bytes(c.try_into().expect("8-byte chunk")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.step(u64::from_le_bytes(last));
        }
    }
}

type Done = Result<(), Unencodable>;

/// `fn serialize_x(self, v: X) -> Done` for each primitive hashed as one word, `to_word(v)`.
macro_rules! word_primitives {
    ($($method:ident($ty:ty) => $to_word:expr),* $(,)?) => {$(
        #[inline]
        fn $method(self, v: $ty) -> Done {
            self.feed_word(($to_word)(v));
            Ok(())
        }
    )*};
}

impl ser::Serializer for &mut WordSink {
    type Ok = ();
    type Error = Unencodable;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn is_human_readable(&self) -> bool {
        false
    }

    // Every primitive that is one word (signed integers sign-extended, floats by their bits).
    word_primitives!(
        serialize_bool(bool) => u64::from,
        serialize_i8(i8) => |v| v as u64,
        serialize_i16(i16) => |v| v as u64,
        serialize_i32(i32) => |v| v as u64,
        serialize_i64(i64) => |v| v as u64,
        serialize_u16(u16) => u64::from,
        serialize_u32(u32) => u64::from,
        serialize_u64(u64) => |v| v,
        serialize_f32(f32) => |v: f32| u64::from(v.to_bits()),
        serialize_f64(f64) => f64::to_bits,
        serialize_char(char) => u64::from,
    );

    fn serialize_i128(self, v: i128) -> Done {
        self.feed_word(v as u64);
        self.feed_word((v >> 64) as u64);
        Ok(())
    }

    #[inline]
    fn serialize_u8(self, v: u8) -> Done {
        self.byte(v);
        Ok(())
    }

    fn serialize_u128(self, v: u128) -> Done {
        self.feed_word(v as u64);
        self.feed_word((v >> 64) as u64);
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Done {
        self.bytes(v.as_bytes());
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Done {
        self.bytes(v);
        Ok(())
    }

    #[inline]
    fn serialize_none(self) -> Done {
        self.feed_word(0);
        Ok(())
    }

    #[inline]
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Done {
        self.feed_word(1);
        value.serialize(self)
    }

    fn serialize_unit(self) -> Done {
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Done {
        Ok(())
    }

    #[inline]
    fn serialize_unit_variant(self, _: &'static str, index: u32, _: &'static str) -> Done {
        self.feed_word(u64::from(index));
        Ok(())
    }

    #[inline]
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, v: &T) -> Done {
        v.serialize(self)
    }

    #[inline]
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Done {
        self.feed_word(u64::from(index));
        value.serialize(self)
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self, Unencodable> {
        self.feed_word(len.ok_or(Unencodable)? as u64);
        Ok(self)
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self, Unencodable> {
        Ok(self)
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, Unencodable> {
        Ok(self)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, Unencodable> {
        self.feed_word(u64::from(index));
        Ok(self)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self, Unencodable> {
        self.feed_word(len.ok_or(Unencodable)? as u64);
        Ok(self)
    }

    #[inline]
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self, Unencodable> {
        Ok(self)
    }

    #[inline]
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, Unencodable> {
        self.feed_word(u64::from(index));
        Ok(self)
    }
}

/// The compound serializers: every element or field in order, nothing at the end.
macro_rules! compound {
    ($($trait:ident :: $method:ident $(($key:ty))?),* $(,)?) => {$(
        impl ser::$trait for &mut WordSink {
            type Ok = ();
            type Error = Unencodable;

            #[inline]
            fn $method<T: ?Sized + Serialize>(&mut self, $(_: $key,)? value: &T) -> Done {
                value.serialize(&mut **self)
            }

            #[inline]
            fn end(self) -> Done {
                Ok(())
            }
        }
    )*};
}

compound!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
    SerializeStruct::serialize_field(&'static str),
    SerializeStructVariant::serialize_field(&'static str),
);

impl ser::SerializeMap for &mut WordSink {
    type Ok = ();
    type Error = Unencodable;

    #[inline]
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Done {
        key.serialize(&mut **self)
    }

    #[inline]
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Done {
        value.serialize(&mut **self)
    }

    #[inline]
    fn end(self) -> Done {
        Ok(())
    }
}

impl Default for Fnv1a64 {
    fn default() -> Self {
        Fnv1a64::new()
    }
}

impl fmt::Write for Fnv1a64 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

/// What happened, for each [`TraceEvent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TraceKind {
    /// A process was created and its `handle_start` ran (detail: incarnation).
    Start,
    /// A process handed a message to the network (detail: the message).
    Send,
    /// A message reached its destination's handler (detail: the message).
    Deliver,
    /// The network lost a message at random.
    Drop,
    /// A message met a cut link, at send or at arrival.
    DropPartition,
    /// A message arrived at a crashed process, or was queued for one that then crashed.
    DropDown,
    /// The network sent a second copy of a message (both copies are then delivered or lost).
    Duplicate,
    /// A message skipped ahead of earlier messages on its link.
    Reorder,
    /// A message arrived with a flipped bit and its frame failed to decode: dropped.
    CorruptDetected,
    /// A message arrived with a flipped bit and still decoded: delivered (a CRC hole).
    CorruptUndetected,
    /// A message arrived at a paused process and waits in its backlog.
    Queue,
    /// A process's timer fired and its `handle_timeout` ran.
    Timer,
    /// The harness called into a process through `Simulation::invoke`.
    Invoke,
    /// A process crashed: its value was dropped and its disk lost unsynced writes.
    Crash,
    /// A crashed process was built again from its disk (detail: incarnation).
    Restart,
    /// A process entered a stop-the-world pause (detail: duration and why).
    Pause,
    /// A paused process resumed.
    Resume,
    /// The outputs of a handler call were held back by a pause in the middle of that call.
    Hold,
    /// A process's local clock changed rate or stepped (detail: what changed).
    Clock,
    /// A bit flipped on a process's disk (detail: file and bit).
    DiskFlip,
    /// The partition or the network configuration changed (detail: the new one).
    Network,
    /// A fault was applied (detail: the fault).
    Fault,
    /// A fault could not be applied and did nothing (detail: why).
    FaultNoop,
    /// A process reported an observation (detail: the observation).
    Observe,
}

impl TraceKind {
    /// Stable short name, as in the JSON form.
    pub const fn name(self) -> &'static str {
        match self {
            TraceKind::Start => "start",
            TraceKind::Send => "send",
            TraceKind::Deliver => "deliver",
            TraceKind::Drop => "drop",
            TraceKind::DropPartition => "drop-partition",
            TraceKind::DropDown => "drop-down",
            TraceKind::Duplicate => "duplicate",
            TraceKind::Reorder => "reorder",
            TraceKind::CorruptDetected => "corrupt-detected",
            TraceKind::CorruptUndetected => "corrupt-undetected",
            TraceKind::Queue => "queue",
            TraceKind::Timer => "timer",
            TraceKind::Invoke => "invoke",
            TraceKind::Crash => "crash",
            TraceKind::Restart => "restart",
            TraceKind::Pause => "pause",
            TraceKind::Resume => "resume",
            TraceKind::Hold => "hold",
            TraceKind::Clock => "clock",
            TraceKind::DiskFlip => "disk-flip",
            TraceKind::Network => "network",
            TraceKind::Fault => "fault",
            TraceKind::FaultNoop => "fault-noop",
            TraceKind::Observe => "observe",
        }
    }

    /// The tag hashed for this kind: its declaration order, so new kinds go at the end and
    /// hashes of existing traces stay comparable.
    const fn tag(self) -> u8 {
        self as u8
    }
}

/// One event of a run, as kept by [`TraceSink::Keep`] or streamed by [`TraceSink::Stream`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// True (simulated, global) time of the event, in nanoseconds since the run began.
    pub t: u64,
    /// What happened.
    pub kind: TraceKind,
    /// The sender of a message, or the process the event happened to.
    pub from: Option<ProcId>,
    /// The destination of a message.
    pub to: Option<ProcId>,
    /// The id of the message (unique per send; a duplicate keeps its original's id), which
    /// pairs a `send` with its `deliver` or drop, e.g. for space-time diagrams.
    pub msg: Option<u64>,
    /// The `Debug` text of the message, observation, fault or parameters.
    pub detail: String,
}

impl fmt::Display for TraceEvent {
    /// One line: `t=<nanos> <kind> [from][->to] [#msg] <detail>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={} {}", self.t, self.kind.name())?;
        match (self.from, self.to) {
            (Some(a), Some(b)) => write!(f, " {a}->{b}")?,
            (Some(a), None) => write!(f, " {a}")?,
            (None, Some(b)) => write!(f, " ->{b}")?,
            (None, None) => {}
        }
        if let Some(m) = self.msg {
            write!(f, " #{m}")?;
        }
        if !self.detail.is_empty() {
            write!(f, " {}", self.detail)?;
        }
        Ok(())
    }
}

/// Where trace events go besides the hash (which is always computed).
pub enum TraceSink {
    /// Only the hash: the fastest setting, and the default.
    HashOnly,
    /// Keep every event in memory ([`crate::Simulation::trace_events`]).
    Keep,
    /// Hand every event to a callback as it happens (e.g. to write JSON lines).
    Stream(Box<dyn FnMut(&TraceEvent)>),
}

impl fmt::Debug for TraceSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceSink::HashOnly => f.write_str("HashOnly"),
            TraceSink::Keep => f.write_str("Keep"),
            TraceSink::Stream(_) => f.write_str("Stream(..)"),
        }
    }
}

/// The fixed fields of an event, hashed before its detail.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Head {
    pub t: u64,
    pub kind: TraceKind,
    pub from: Option<ProcId>,
    pub to: Option<ProcId>,
    pub msg: Option<u64>,
}

impl Head {
    /// An event that happened to one process (or, with `None`, to the world).
    pub fn at(t: u64, kind: TraceKind, proc: Option<ProcId>) -> Head {
        Head { t, kind, from: proc, to: None, msg: None }
    }

    /// An event of one message on the link `from -> to`.
    pub fn link(t: u64, kind: TraceKind, from: ProcId, to: ProcId, msg: u64) -> Head {
        Head { t, kind, from: Some(from), to: Some(to), msg: Some(msg) }
    }
}

/// Hashes every event and keeps or streams them as the sink says.
pub(crate) struct Tracer {
    hasher: Fnv1a64,
    sink: TraceSink,
    kept: Vec<TraceEvent>,
    count: u64,
}

/// Hashed after a detail, so that where one detail ends and the next event begins is hashed.
const END_OF_DETAIL: u64 = 0xff;
/// Hashed in place of a missing message id.
const ABSENT: u64 = u64::MAX;
/// Hashed in place of a missing process id.
const ABSENT_PROC: u32 = u32::MAX;

impl Tracer {
    pub fn new(sink: TraceSink) -> Tracer {
        Tracer { hasher: Fnv1a64::new(), sink, kept: Vec::new(), count: 0 }
    }

    pub fn set_sink(&mut self, sink: TraceSink) {
        self.sink = sink;
    }

    pub fn hash(&self) -> u64 {
        self.hasher.finish()
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn kept(&self) -> &[TraceEvent] {
        &self.kept
    }

    pub fn take_kept(&mut self) -> Vec<TraceEvent> {
        std::mem::take(&mut self.kept)
    }

    fn hash_head(&mut self, h: &Head) {
        self.count += 1;
        let proc = |p: Option<ProcId>| p.map_or(u64::from(ABSENT_PROC), |p| u64::from(p.0));
        self.hasher.write_word(u64::from(h.kind.tag()));
        self.hasher.write_word(h.t);
        self.hasher.write_word(proc(h.from) << 32 | proc(h.to));
        self.hasher.write_word(h.msg.unwrap_or(ABSENT));
    }

    /// Records an event whose detail is a number (hashed as one word).
    pub fn event_u64(&mut self, head: Head, detail: u64) {
        self.hash_head(&head);
        self.hasher.write_word(detail);
        self.emit(head, &detail);
    }

    /// Records an event whose detail is hashed through its `Debug` text.
    pub fn event(&mut self, head: Head, detail: &dyn fmt::Debug) {
        self.hash_head(&head);
        // Writing to the hasher cannot fail; a `Debug` impl that reports an error would only
        // shorten what is hashed, identically on every run.
        let _ = fmt::write(&mut self.hasher, format_args!("{detail:?}"));
        self.hasher.write_word(END_OF_DETAIL);
        self.emit(head, detail);
    }

    /// Records a message event: the message is hashed through its serde fields
    /// ([`Fnv1a64::write_serialized`]), which is cheaper than its `Debug` text; a message that
    /// cannot be serialized that way is hashed through its `Debug` text as well.
    pub fn message<M: serde::Serialize + fmt::Debug>(&mut self, head: Head, msg: &M) {
        self.hash_head(&head);
        if !self.hasher.write_serialized(msg) {
            let _ = fmt::write(&mut self.hasher, format_args!("{msg:?}"));
        }
        self.hasher.write_word(END_OF_DETAIL);
        self.emit(head, msg);
    }

    /// Records an observation: `digest` feeds what identifies it into the hash (a process's
    /// [`crate::Process::digest_obs`]); a kept event shows its `Debug` text.
    pub fn observation<O: fmt::Debug>(
        &mut self,
        head: Head,
        obs: &O,
        digest: impl FnOnce(&O, &mut Fnv1a64),
    ) {
        self.hash_head(&head);
        digest(obs, &mut self.hasher);
        self.hasher.write_word(END_OF_DETAIL);
        self.emit(head, obs);
    }

    /// Records the arrival of a message whose content was hashed when it was sent: only the
    /// fixed fields (with the message id) are hashed; a kept event still shows the message.
    pub fn message_again<M: fmt::Debug>(&mut self, head: Head, msg: &M) {
        self.hash_head(&head);
        self.hasher.write_word(END_OF_DETAIL);
        self.emit(head, msg);
    }

    /// Hands the event to the sink, if it wants events: the check stays inline at every call
    /// site, the formatting does not.
    #[inline(always)]
    fn emit(&mut self, head: Head, detail: &dyn fmt::Debug) {
        if !matches!(self.sink, TraceSink::HashOnly) {
            self.emit_to_sink(head, detail);
        }
    }

    #[cold]
    #[inline(never)]
    fn emit_to_sink(&mut self, head: Head, detail: &dyn fmt::Debug) {
        let event = |h: Head| TraceEvent {
            t: h.t,
            kind: h.kind,
            from: h.from,
            to: h.to,
            msg: h.msg,
            detail: format!("{detail:?}"),
        };
        match &mut self.sink {
            TraceSink::HashOnly => {}
            TraceSink::Keep => self.kept.push(event(head)),
            TraceSink::Stream(f) => f(&event(head)),
        }
    }
}

impl fmt::Debug for Tracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracer")
            .field("hash", &format_args!("{:#018x}", self.hasher.finish()))
            .field("count", &self.count)
            .field("sink", &self.sink)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_published_vectors() {
        let mut h = Fnv1a64::new();
        assert_eq!(h.finish(), 0xcbf2_9ce4_8422_2325);
        h.write_bytes(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
        let mut h = Fnv1a64::new();
        h.write_bytes(b"foobar");
        assert_eq!(h.finish(), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn wide_bytes_hash_every_byte_and_the_length() {
        let hash = |b: &[u8]| {
            let mut h = Fnv1a64::new();
            h.write_bytes_wide(b);
            h.finish()
        };
        assert_ne!(hash(b"abcdefgh1"), hash(b"abcdefgh2"));
        assert_ne!(hash(b"abc"), hash(b"abc\0"), "zero padding is not a byte");
        let mut seen: Vec<u64> = (0..64).map(|bit| hash(&(1u64 << bit).to_le_bytes())).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 64, "every bit of a word changes the hash");
    }

    /// The hash of `value` through the word sink.
    fn words_hash<T: Serialize + ?Sized>(value: &T) -> u64 {
        let mut h = Fnv1a64::new();
        assert!(h.write_serialized(value));
        h.finish()
    }

    #[test]
    fn serialized_values_feed_one_word_per_primitive() {
        let value = (300u64, "abcdefghi", Some(-2i32), vec![7u8, 8]);
        let mut expected = Fnv1a64::new();
        let words = [
            300,
            9,
            u64::from_le_bytes(*b"abcdefgh"),
            u64::from(b'i'),
            1,
            -2i64 as u64,
            2,
            7 | 8 << 8,
        ];
        for w in words {
            expected.write_word(w);
        }
        assert_eq!(words_hash(&value), expected.finish());
    }

    #[derive(Debug, Serialize)]
    enum Shapes {
        Unit,
        Newtype(i64),
        Tuple(i16, u16, i32),
        Struct { a: Option<u32>, b: char, c: f64, d: f32 },
        Wide(u128, i128, i8),
        Nested(Vec<Shapes>, std::collections::BTreeMap<String, Option<bool>>),
        Unit2,
    }

    #[test]
    fn distinct_values_of_every_serde_shape_hash_apart() {
        let mut hashes = Vec::new();
        let edges = [0u64, 1, 0x7f, 0x80, 0xff, 1 << 32, u64::MAX - 1, u64::MAX];
        for &e in &edges {
            hashes.push(words_hash(&(7u8, e, e as u32, (e as u16, e as i16))));
            hashes.push(words_hash(&Shapes::Wide(u128::from(e) << 60, -(i128::from(e)), -1)));
            hashes.push(words_hash(&Shapes::Newtype(e as i64)));
        }
        for len in 0..20usize {
            let bytes: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37)).collect();
            let text: String = (0..len).map(|i| ['a', 'é', '€', '🦀'][i % 4]).collect();
            hashes.push(words_hash(&(&bytes, &text)));
            // The same bytes split differently between two fields.
            hashes.push(words_hash(&(&bytes[..len / 2], &bytes[len / 2..], 1u8)));
        }
        let mut map = std::collections::BTreeMap::new();
        map.insert("k".to_owned(), Some(true));
        map.insert("longer key than a word".to_owned(), None);
        let nested = vec![
            Shapes::Unit,
            Shapes::Newtype(i64::MIN),
            Shapes::Tuple(-300, 65_535, i32::MIN),
            Shapes::Struct { a: Some(u32::MAX), b: '🦀', c: -0.5, d: 1e30 },
            Shapes::Struct { a: None, b: 'x', c: f64::NAN, d: 0.0 },
            Shapes::Unit2,
        ];
        hashes.push(words_hash(&Shapes::Nested(nested, map)));
        hashes.push(words_hash(&Shapes::Unit));
        hashes.push(words_hash(&Shapes::Unit2));
        hashes.push(words_hash(&Shapes::Struct { a: None, b: 'x', c: 0.0, d: 0.0 }));
        hashes.push(words_hash(&Shapes::Struct { a: Some(0), b: 'x', c: 0.0, d: 0.0 }));
        let n = hashes.len();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), n, "two distinct values hashed alike");
    }

    #[test]
    fn a_value_postcard_refuses_is_refused() {
        struct Unsized;
        impl Serialize for Unsized {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq;
                let mut seq = s.serialize_seq(None)?;
                seq.serialize_element(&1u8)?;
                seq.end()
            }
        }
        assert!(postcard::to_allocvec(&Unsized).is_err());
        let mut h = Fnv1a64::new();
        assert!(!h.write_serialized(&Unsized));
        assert_eq!(h, Fnv1a64::new(), "nothing was fed");
    }

    #[test]
    fn debug_detail_is_hashed_without_the_sink() {
        let mut a = Tracer::new(TraceSink::HashOnly);
        let mut b = Tracer::new(TraceSink::Keep);
        let head = Head::at(5, TraceKind::Pause, Some(ProcId(1)));
        a.event(head, &format_args!("for {}ns", 10));
        b.event(head, &format_args!("for {}ns", 10));
        assert_eq!(a.hash(), b.hash());
        assert_eq!(b.kept()[0].to_string(), "t=5 pause p1 for 10ns");
        let mut c = Tracer::new(TraceSink::HashOnly);
        c.event(head, &format_args!("for {}ns", 11));
        assert_ne!(a.hash(), c.hash());
    }

    #[test]
    fn message_events_pair_by_id() {
        let mut t = Tracer::new(TraceSink::Keep);
        t.message(Head::link(1, TraceKind::Send, ProcId(0), ProcId(2), 7), &(3u8, "x"));
        let e = &t.kept()[0];
        assert_eq!(e.msg, Some(7));
        assert_eq!(e.to_string(), "t=1 send p0->p2 #7 (3, \"x\")");
        let json = serde_json::to_string(e).expect("trace events serialize");
        assert!(json.contains("\"kind\":\"send\""), "{json}");
    }
}
