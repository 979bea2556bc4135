//! Read tracking: which input bits decided a packet's fate, and the fate as datapath
//! actions.
//!
//! The interpreter reports every read and write to a [`Track`]er. [`NoTrack`] ignores
//! them (the per-packet path, compiled away); [`Tracker`] records:
//!
//! * **Reads**, bit by bit, in a *key space*: 2 bytes of `ingress_port`, 4 bytes of
//!   `packet_length`, 2 spare bytes, then the first [`MAX_TRACKED`] bytes of the packet.
//!   Every field remembers where its value came from (its *provenance*): packet bits
//!   after `extract`, those bits again after a plain copy (`meta.x = hdr.y`), nothing
//!   after a computation (whose inputs were marked read when it was computed).
//!   Reading a field marks the source bits under the read's mask: a table key marks
//!   only the masks of the tuple-space groups probed (so an LPM key marks the prefix
//!   bits that decided, a ternary key only the masked bits), a condition or an
//!   arithmetic input marks the whole field, a select key the whole key, a hash its
//!   inputs. Copies that are never read mark nothing.
//! * **The outcome** for each copy that leaves: the output port and an [`Edit`] that
//!   turns the input into the output: strip the parsed headers, emit segments copied
//!   from the input or constant bytes, patch changed fields, recompute checksums. A
//!   field written from packet bits that were never read is marked read at emission,
//!   so every constant in the edit is constant over the megaflow.
//! * **Lengths**: a field computed from `packet_length` by adding or subtracting
//!   constants and truncating (`(bit<16>) packet_length - meta.strip + 36`: a tunnel's
//!   outer IPv4 total length and UDP length) keeps that form as its provenance
//!   ([`Track::length_relative`]). Emitted, it becomes a [`LenPatch`], computed per
//!   packet from the packet's length, so one megaflow serves every length; read any
//!   other way (a condition, a key), it marks the length bits as `packet_length` does.
//! * **Effects**: tables hit or missed (with the entry), counters, meters, digests,
//!   selector groups, clone sessions and multicast groups used — what a cached flow
//!   must re-execute or be invalidated by.
//! * **Meter points**: the configured meter cells that colored the packet, in order.
//!   A color is not a function of the packet, so the cache explores every color
//!   (dry runs, [`super::interp::Interp::dry_run`]) and branches on them.
//! * **Why it cannot be cached**, when it cannot: registers, recirculation, resubmit,
//!   varbit assignments (and varbit bytes moved from elsewhere), headers beyond the
//!   tracked bytes, more than [`MAX_METER_POINTS`]
//!   configured meters.
//!
//! A packet whose fate depended on its length (a parser error, a lookahead past the
//! end, a read of `packet_length`) marks the length bits; otherwise a megaflow needs
//! only "at least [`ReadSet::parsed`] bytes".

use super::interp::{DropCause, Interp};
use super::ir::*;

/// Packet bytes covered by tracking; reads beyond make the result uncacheable.
pub const MAX_TRACKED: usize = 256;
/// Byte offset of the packet in the key space.
pub const KEY_PACKET_OFFSET: usize = 8;
/// Size of the key space in bytes.
pub const KEY_BYTES: usize = KEY_PACKET_OFFSET + MAX_TRACKED;
const INGRESS_PORT_END: u32 = 16;
const PACKET_LENGTH_END: u32 = 48;

/// Where the interpreter is (for profiling the cost split).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Parsing and checksum verification.
    Parse,
    /// Ingress control and the traffic manager.
    Ingress,
    /// Egress control.
    Egress,
    /// Checksum update and deparsing.
    Deparse,
    /// The copy is done.
    Done,
}

/// Receives the interpreter's reads and writes.
#[allow(unused_variables)]
pub trait Track {
    /// Whether the tracker wants what decides the reads: the masks a table lookup
    /// reports to [`Track::read_field`] (for an LPM table, its prefix trie's walk). An
    /// untracked run skips working them out.
    const READS: bool = true;
    /// The interpreter enters a phase.
    fn phase(&mut self, p: Phase) {}
    /// A new packet (or a re-parse of it for a clone) starts.
    fn start(&mut self, ir: &Ir, len: usize) {}
    /// Header `h` was extracted at byte `at`, with `vl` bytes in its varbit field.
    fn extracted(&mut self, ir: &Ir, h: HeaderId, at: usize, vl: usize) {}
    /// The bits of field `f` under `mask` were read.
    fn read_field(&mut self, f: FieldId, mask: Value) {}
    /// Packet bits were read directly (lookahead).
    fn read_packet(&mut self, bit: usize, width: u32) {}
    /// The outcome depends on the packet's exact length.
    fn length_dependent(&mut self) {}
    /// Parsing ended; the payload starts at this byte.
    fn parsed(&mut self, payload: usize) {}
    /// The outcome cannot be cached.
    fn uncacheable(&mut self, why: &'static str) {}
    /// A field was written with a computed value.
    fn wrote_field(&mut self, f: FieldId) {}
    /// Whether `expr` is the packet's length plus a constant, truncated: `Some((off,
    /// w))` when its value is `(packet_length + off) mod 2^w` for every packet of the
    /// flow (given the values in `values` and action arguments `args`). The caller then
    /// evaluates it untracked and reports [`Track::wrote_length`]: reading the length
    /// that way decides nothing.
    fn length_relative(
        &self,
        ir: &Ir,
        expr: &Expr,
        args: &[Value],
        values: &[Value],
        dst: FieldId,
    ) -> Option<(i32, u32)> {
        None
    }
    /// Field `f` was written with `(packet_length + off) mod 2^w`.
    fn wrote_length(&mut self, f: FieldId, off: i32, w: u32) {}
    /// The interpreter saved its field values (before clones and replicas).
    fn save(&mut self) {}
    /// The interpreter restored the saved field values.
    fn restore(&mut self) {}
    /// The interpreter saved its state for the E2E clones of nesting depth `depth`.
    fn save_at(&mut self, depth: usize) {}
    /// The interpreter restored the state saved at `depth`.
    fn restore_at(&mut self, depth: usize) {}
    /// An E2E clone's metadata were reset to zero but the `kept` fields (its field
    /// list); `packet_length` is the received length again.
    fn metadata_reset(&mut self, ir: &Ir, kept: &[(FieldId, Value)]) {}
    /// A clone got field `f`'s saved value (a preserved field list).
    fn kept_field(&mut self, f: FieldId) {}
    /// A field was written with another field's value.
    fn copied_field(&mut self, ir: &Ir, dst: FieldId, src: FieldId) {}
    /// Two headers of one type exchanged their fields (a stack shifted).
    fn swapped_headers(&mut self, ir: &Ir, a: HeaderId, b: HeaderId) {}
    /// A checksum was verified; `received`: it was computed from the `len` received
    /// bytes at `at` (a whole header as received), not from its input fields.
    fn checksum_verified(&mut self, ir: &Ir, ck: &ChecksumDef, received: Option<(usize, usize)>) {}
    /// A checksum was updated.
    fn checksum_updated(&mut self, ir: &Ir, ck: &ChecksumDef) {}
    /// A table was applied: the entry hit, or a miss.
    fn table_hit(&mut self, t: TableId, entry: Option<u32>) {}
    /// A counter cell was counted.
    fn count(&mut self, counter: u32, index: Value) {}
    /// A meter cell was executed.
    fn meter(&mut self, meter: u32, index: Value) {}
    /// A *configured* meter cell colored the packet: the outcome depends on the color
    /// (a megaflow branches on it, see [`Tracker::points`]).
    fn metered(&mut self, meter: u32, cell: u32) {}
    /// A selector group picked a member by hash.
    fn selector(&mut self, profile: u32, group: u32) {}
    /// A digest was generated.
    fn digest(&mut self, list: u32) {}
    /// A parser value set was consulted.
    fn value_set(&mut self, set: u32) {}
    /// A clone session was used.
    fn clone_session(&mut self, session: u32) {}
    /// A multicast group was used.
    fn mcast_group(&mut self, group: u32) {}
    /// A copy enters egress.
    fn egress_copy(&mut self, port: u32, rid: u32, instance: Value) {}
    /// The copy was deparsed (into a recirculation when `recirc`).
    fn emitted_view(&mut self, ir: &Ir, view: &EmitView, recirc: bool) {}
    /// Whether the run's output bytes are needed. A tracker whose outcome will be
    /// cached says no: the packet leaves by the megaflow's actions, and the
    /// interpreter may skip deparsing the last copy (asking again after
    /// [`Track::emitted_view`], which may still refuse).
    fn needs_bytes(&self) -> bool {
        true
    }
}

/// No tracking (the per-packet path).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTrack;

impl Track for NoTrack {
    const READS: bool = false;
}

/// What the interpreter had when it deparsed a copy.
#[derive(Debug)]
pub struct EmitView<'a> {
    /// Field values.
    pub values: &'a [Value],
    /// Header validity.
    pub valid: &'a [bool],
    /// Per header: extraction offset + 1, or 0.
    pub src: &'a [u32],
    /// Per header: bytes in its varbit field.
    pub vlen: &'a [u16],
    /// The varbit fields' bytes.
    pub vbytes: &'a [u8],
    /// The copy's output bytes (`None`: not deparsed, see [`Track::needs_bytes`]).
    pub bytes: Option<&'a [u8]>,
    /// Truncated to this length, if asked.
    pub truncate: Option<usize>,
}

/// Where a field's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prov {
    /// Constant or computed from bits already marked.
    Fixed,
    /// The low `n` bits are key-space bits ending (exclusive) at bit `end`.
    Bits { end: u32, n: u32 },
    /// The result of checksum verification.
    Verified,
    /// Written by a checksum update.
    Checksum,
    /// A varbit field's `bits` key-space bits from `start`.
    Range { start: u32, bits: u32 },
    /// `(packet_length + off) mod 2^w`.
    Len { off: i32, w: u32 },
}

/// A length field in the output: `width` bits at output bit `bit` become the input
/// packet's length plus `off`, modulo `2^modw` (`modw <= width`, at most 64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LenPatch {
    /// Output bit offset.
    pub bit: u32,
    /// Field width.
    pub width: u32,
    /// Added to the input length.
    pub off: i32,
    /// The value is taken modulo `2^modw`.
    pub modw: u32,
}

impl LenPatch {
    /// The value for an input of `len` bytes.
    #[inline(always)]
    pub fn value(&self, len: usize) -> Value {
        ((len as u64).wrapping_add(self.off as i64 as u64) & (u64::MAX >> (64 - self.modw))) as Value
    }

    /// Write the value for an input of `len` bytes into `out`.
    #[inline]
    pub fn write(&self, out: &mut [u8], len: usize) {
        let v = self.value(len);
        if self.bit.is_multiple_of(8) && self.width == 16 {
            let b = self.bit as usize / 8;
            out[b..b + 2].copy_from_slice(&(v as u16).to_be_bytes());
        } else {
            super::bits::write_bits(out, self.bit as usize, self.width, v);
        }
    }
}

/// A symbolic value while [`Tracker::length_relative`] walks an expression.
#[derive(Clone, Copy)]
enum Sym {
    Const(Value),
    /// Congruent to `len + off` modulo `2^w`; `exact`: equal to it (bits above `w`
    /// are zero).
    Len {
        off: i64,
        w: u32,
        exact: bool,
    },
}

/// Key-space bits that were read, and the length conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSet {
    /// One bit per key-space bit (MSB first within each byte).
    mask: [u8; KEY_BYTES],
    /// Bit `w` set when the mask's 64-bit word `w` (bytes `8w..8w + 8`) has a bit:
    /// an install visits those words only, not all of the key space.
    words: u64,
    /// Bytes the parser consumed: a megaflow needs at least this many.
    pub parsed: usize,
}

const _: () = assert!(KEY_BYTES.is_multiple_of(8) && KEY_BYTES / 8 <= 64);

impl Default for ReadSet {
    fn default() -> Self {
        ReadSet { mask: [0; KEY_BYTES], words: 0, parsed: 0 }
    }
}

impl ReadSet {
    /// The bits read: one per key-space bit (MSB first within each byte).
    pub fn mask(&self) -> &[u8; KEY_BYTES] {
        &self.mask
    }

    /// Forget every read: only the words marked are zeroed (a flow setup marks a few
    /// of the 33; the whole mask was a `memset` call).
    #[inline]
    pub fn clear(&mut self) {
        for w in bits_of(self.words) {
            self.mask[w * 8..w * 8 + 8].fill(0);
        }
        self.words = 0;
        self.parsed = 0;
        debug_assert_eq!(*self, ReadSet::default());
    }

    /// The 64-bit words of [`ReadSet::mask`] with a bit, as a set (bit `w`: bytes
    /// `8w..8w + 8`). Every other word is zero.
    #[inline(always)]
    pub fn used_words(&self) -> u64 {
        self.words
    }

    /// Mark key-space bits `[from, to)`, a 64-bit word at a time (the bytes as one
    /// big-endian word: key bit 0 is the first byte's top bit). Not a byte-wise
    /// `fill`: that was a `memset` call for every field read. (The key space is whole
    /// words: see `cache::key`.)
    fn mark_range(&mut self, from: u32, to: u32) {
        if from >= to {
            return;
        }
        let (from, to) = (from as usize, to as usize);
        let (first, last) = (from / 64, (to - 1) / 64);
        self.words |= (u64::MAX >> (63 - last)) & (u64::MAX << first);
        for w in first..=last {
            let lo = if w == first { from % 64 } else { 0 };
            let hi = if w == last { (to - 1) % 64 } else { 63 };
            let bits = (u64::MAX >> lo) & (u64::MAX << (63 - hi));
            let b: &mut [u8; 8] = (&mut self.mask[w * 8..w * 8 + 8]).try_into().expect("8 bytes");
            *b = (u64::from_be_bytes(*b) | bits).to_be_bytes();
        }
    }

    /// Add the bits and length condition of `other`.
    pub fn union(&mut self, other: &ReadSet) {
        self.mask.iter_mut().zip(other.mask.iter()).for_each(|(a, b)| *a |= b);
        self.words |= other.words;
        self.parsed = self.parsed.max(other.parsed);
    }

    /// Whether packet byte `i` has a bit read.
    pub fn packet_byte(&self, i: usize) -> u8 {
        self.mask.get(KEY_PACKET_OFFSET + i).copied().unwrap_or(0)
    }

    /// Build the key-space bytes of a packet.
    pub fn key_of(ingress_port: u32, data: &[u8]) -> [u8; KEY_BYTES] {
        let mut k = [0u8; KEY_BYTES];
        k[0..2].copy_from_slice(&(ingress_port as u16).to_be_bytes());
        k[2..6].copy_from_slice(&(data.len() as u32).to_be_bytes());
        let n = data.len().min(MAX_TRACKED);
        k[KEY_PACKET_OFFSET..KEY_PACKET_OFFSET + n].copy_from_slice(&data[..n]);
        k
    }

    /// Whether a packet matches this read set's bits of `reference` (same key space).
    pub fn matches(&self, reference: &[u8; KEY_BYTES], ingress_port: u32, data: &[u8]) -> bool {
        if data.len() < self.parsed {
            return false;
        }
        let k = Self::key_of(ingress_port, data);
        self.mask.iter().zip(k.iter().zip(reference)).all(|(m, (a, b))| a & m == b & m)
    }
}

/// One segment of an output packet's headers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Copy `len` input bytes from `from`.
    Copy {
        /// Input offset.
        from: u32,
        /// Length.
        len: u32,
    },
    /// Constant bytes.
    Bytes(Vec<u8>),
}

/// A field patch in the output: `width` bits at output bit `bit` become `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Patch {
    /// Output bit offset.
    pub bit: u32,
    /// Width.
    pub width: u32,
    /// Value.
    pub value: Value,
}

/// A checksum to recompute in the output: the Internet checksum of `len` bytes at
/// `at` (with the checksum field itself taken as zero), stored at bit `field_bit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChecksumFix {
    /// Output offset of the covered header.
    pub at: u32,
    /// Its length in bytes.
    pub len: u32,
    /// Output bit offset of the 16-bit checksum field.
    pub field_bit: u32,
}

/// How to turn the input packet into one output copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edit {
    /// Input bytes replaced by `segments` (the parsed headers).
    pub strip: u32,
    /// The new headers.
    pub segments: Vec<Segment>,
    /// Field changes inside copied segments.
    pub patches: Vec<Patch>,
    /// Length fields, computed per packet (after patches, before checksums).
    pub len_patches: Vec<LenPatch>,
    /// Checksums to recompute, after patches.
    pub checksums: Vec<ChecksumFix>,
    /// Truncate the result to this length.
    pub truncate: Option<u32>,
}

/// Hashed as a few packed words rather than field by field. The cache hashes every
/// new megaflow's edits to find equal actions to share, with FxHash, whose writes
/// are one multiply each on a single dependency chain: derived, simple_router's
/// edit took 24 of them (a field each, two per 128-bit value; ~3 % of a flow
/// setup's profile), packed 11 (`pipeline_bench --only-setup`, 7 interleaved runs,
/// medians: 2,237 → 2,225 cycles per setup into a full cache, 2,382 → 2,348 with
/// flow events). Equal edits hash equal; edits that differ only where two
/// fields share a word collide, which costs sharing, not correctness (the cache
/// compares the actions too).
impl std::hash::Hash for Edit {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let lens = |n: usize| n as u64 & 0xffff;
        h.write_u64(
            lens(self.segments.len())
                | lens(self.patches.len()) << 16
                | lens(self.len_patches.len()) << 32
                | lens(self.checksums.len()) << 48,
        );
        h.write_u64(self.strip as u64 | (self.truncate.unwrap_or(u32::MAX) as u64) << 32);
        let pair = |a: u32, b: u32| a as u64 | (b as u64) << 32;
        for s in &self.segments {
            match s {
                Segment::Copy { from, len } => h.write_u64(pair(*from, *len)),
                Segment::Bytes(b) => {
                    h.write_u64(1 << 63 | b.len() as u64);
                    h.write(b);
                }
            }
        }
        for p in &self.patches {
            h.write_u64(pair(p.bit, p.width));
            h.write_u64(p.value as u64 ^ ((p.value >> 64) as u64).rotate_left(29));
        }
        for p in &self.len_patches {
            h.write_u64(pair(p.bit, p.width));
            h.write_u64(pair(p.off as u32, p.modw));
        }
        for c in &self.checksums {
            h.write_u64(pair(c.at, c.len));
            h.write_u32(c.field_bit);
        }
    }
}

impl Edit {
    /// Bytes of the new headers (`segments`), which replace the first `strip` input bytes.
    pub fn header_len(&self) -> u32 {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Copy { len, .. } => *len,
                Segment::Bytes(b) => b.len() as u32,
            })
            .sum()
    }

    /// Apply to `input`, appending to `out`.
    pub fn apply(&self, input: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        for s in &self.segments {
            match s {
                Segment::Copy { from, len } => out.extend_from_slice(&input[*from as usize..(*from + *len) as usize]),
                Segment::Bytes(b) => out.extend_from_slice(b),
            }
        }
        out.extend_from_slice(&input[(self.strip as usize).min(input.len())..]);
        let o = &mut out[start..];
        for p in &self.patches {
            super::bits::write_bits(o, p.bit as usize, p.width, p.value);
        }
        for p in &self.len_patches {
            p.write(o, input.len());
        }
        for c in &self.checksums {
            super::bits::write_bits(o, c.field_bit as usize, 16, 0);
            let v = super::bits::csum16(&o[c.at as usize..(c.at + c.len) as usize]);
            super::bits::write_bits(o, c.field_bit as usize, 16, v as Value);
        }
        if let Some(n) = self.truncate {
            out.truncate(start + n as usize);
        }
    }
}

/// A side effect a cached flow must repeat or be invalidated by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// A table lookup: the entry hit (handle) or a miss.
    Table(TableId, Option<u32>),
    /// An indexed counter cell.
    Count(u32, Value),
    /// A meter cell (direct: the entry handle).
    Meter(u32, Value),
    /// A selector group was hashed.
    Selector(u32, u32),
    /// A digest.
    Digest(u32),
    /// A parser value set.
    ValueSet(u32),
    /// A clone session's replicas.
    CloneSession(u32),
    /// A multicast group's replicas.
    McastGroup(u32),
}

/// The fate of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Sent on a P4 port with an edit.
    Output {
        /// P4 port.
        port: u32,
        /// `instance_type` in egress.
        instance: Value,
        /// The edit.
        edit: Edit,
    },
    /// Dropped.
    Drop(DropCause),
}

/// Full tracking.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    prov: Vec<Prov>,
    /// Per header: the fields whose provenance was set since it was extracted
    /// ([`HeaderDef::fields_in`]); the others still hold the extracted bits, which
    /// [`Track::emitted_view`] need not look at.
    touched: Vec<u64>,
    /// Per field: its header and its bit in the header's `touched` set.
    loc: Vec<(HeaderId, u64)>,
    /// Per field: its extracted provenance's end bit and width relative to its
    /// header's first bit (a varbit field: its first bit, and 0).
    own: Vec<(u32, u32)>,
    saved: (Vec<Prov>, Vec<u64>),
    saved_at: Vec<(Vec<Prov>, Vec<u64>)>,
    /// Key-space bit ranges `[lo, hi)` a verified checksum read, merged where they
    /// follow each other (marked when the result is read).
    verify_bits: Vec<(i64, i64)>,
    /// Bits read.
    pub reads: ReadSet,
    /// Why the result cannot be cached (first reason).
    pub uncacheable: Option<&'static str>,
    /// Side effects, in order.
    pub effects: Vec<Effect>,
    /// Copies that left (drops are added by [`Tracker::finish`]).
    pub fates: Vec<Fate>,
    pending: Option<(u32, Value)>,
    /// The configured meter cells that colored the packet, in execution order
    /// (meter, cell): the cached outcome branches on each one's color.
    pub points: Vec<(u32, u32)>,
    /// Edits of earlier runs, emptied, for the next outputs (no allocation per run).
    spare: Vec<Edit>,
}

/// Configured meters one packet may execute and still be cached (a megaflow holds
/// one outcome per color combination: 3^n).
pub const MAX_METER_POINTS: usize = 2;

impl Tracker {
    /// A tracker for a program.
    pub fn new(ir: &Ir) -> Tracker {
        Tracker {
            prov: vec![Prov::Fixed; ir.fields.len()],
            touched: vec![0; ir.headers.len()],
            // The IR's own header and field-set bit per field, copied beside the
            // provenances (`put` has no `Ir` at hand).
            loc: ir.fields.iter().map(|fd| (fd.header, fd.set_bit)).collect(),
            own: ir.fields.iter().map(|fd| (fd.bit_offset + fd.width, fd.width)).collect(),
            ..Tracker::default()
        }
    }

    /// Set field `f`'s provenance.
    #[inline]
    fn put(&mut self, f: FieldId, p: Prov) {
        self.prov[f as usize] = p;
        let (h, bit) = self.loc[f as usize];
        self.touched[h as usize] |= bit;
    }

    /// Start a new received packet.
    pub fn begin(&mut self) {
        self.reads.clear();
        self.uncacheable = None;
        self.effects.clear();
        for f in self.fates.drain(..) {
            if let Fate::Output { mut edit, .. } = f {
                edit.segments.clear();
                edit.patches.clear();
                edit.len_patches.clear();
                edit.checksums.clear();
                self.spare.push(edit);
            }
        }
        self.verify_bits.clear();
        self.pending = None;
        self.points.clear();
    }

    /// Add the drops of a finished run to the fates.
    pub fn finish(&mut self, drops: &[DropCause]) {
        self.fates.extend(drops.iter().map(|d| Fate::Drop(*d)));
    }

    /// Why the outcome cannot be made a megaflow: the first uncacheable reason, or a
    /// digest (the controller must see every packet's).
    pub fn refusal(&self) -> Option<&'static str> {
        if let Some(why) = self.uncacheable {
            return Some(why);
        }
        if self.effects.iter().any(|e| matches!(e, Effect::Digest(_))) {
            return Some("digest");
        }
        None
    }

    /// A verified checksum's input: `n` key-space bits ending at `end`, merged with
    /// the previous input when they follow it (a header's fields: one run, not one
    /// per field).
    fn verify_input(&mut self, end: u32, n: u32) {
        let lo = end as i64 - n as i64;
        if let Some(last) = self.verify_bits.last_mut() {
            if lo == last.1 {
                last.1 = end as i64;
                return;
            }
        }
        self.verify_bits.push((lo, end as i64));
    }

    /// Mark key-space bits `[lo, hi)`; a range outside the tracked bytes makes the
    /// outcome uncacheable.
    #[inline(always)]
    fn mark_bits(&mut self, lo: i64, hi: i64) {
        let limit = (KEY_BYTES * 8) as i64;
        if lo < 0 || hi > limit {
            self.uncacheable.get_or_insert("reads beyond the tracked bytes");
        }
        self.reads.mark_range(lo.max(0) as u32, hi.min(limit).max(0) as u32);
    }

    fn mark_prov(&mut self, p: Prov, mask: Value) {
        match p {
            Prov::Bits { end, n } => {
                let all = mask_of(n);
                if mask & all == all {
                    // The whole field (most reads): one range.
                    self.mark_bits(end as i64 - n as i64, end as i64);
                    return;
                }
                // Runs of ones in the mask, each marked as a bit range.
                let mut m = mask & all;
                while m != 0 {
                    let lo = m.trailing_zeros();
                    let run = (!(m >> lo)).trailing_zeros().min(128 - lo);
                    m &= !(mask_of(run) << lo);
                    // Key-space bits [end - lo - run, end - lo).
                    let hi = end as i64 - lo as i64;
                    self.mark_bits(hi - run as i64, hi);
                }
            }
            Prov::Verified => {
                for k in 0..self.verify_bits.len() {
                    let (lo, hi) = self.verify_bits[k];
                    self.mark_bits(lo, hi);
                }
            }
            Prov::Range { start, bits } => {
                if mask != 0 && bits > 0 {
                    let limit = (KEY_BYTES * 8) as u32;
                    if start + bits > limit {
                        self.uncacheable.get_or_insert("reads beyond the tracked bytes");
                    }
                    self.reads.mark_range(start.min(limit), (start + bits).min(limit));
                }
            }
            Prov::Len { off, w } => {
                let m = mask & mask_of(w);
                if m != 0 {
                    // Bit k of `len + off` depends on the length's bits 0..=k (carries).
                    let m = if off == 0 { m } else { mask_of(128 - m.leading_zeros()) };
                    self.mark_prov(Prov::Bits { end: PACKET_LENGTH_END, n: 32 }, m);
                }
            }
            Prov::Fixed | Prov::Checksum => {}
        }
    }

    /// [`Track::length_relative`] for an expression that reads a length.
    #[inline(never)]
    fn length_offset(&self, ir: &Ir, e: &Expr, args: &[Value], values: &[Value], dst: FieldId) -> Option<(i32, u32)> {
        let Sym::Len { off, w, exact } = self.sym(e, args, values)? else { return None };
        let width = ir.fields[dst as usize].width;
        // Stored in `width` bits: exact below them, or its known bits cover them.
        let w = if width <= w {
            width
        } else if exact {
            w
        } else {
            return None;
        };
        (w <= 64).then_some((i32::try_from(off).ok()?, w))
    }

    /// The symbolic value of `e` (see [`Track::length_relative`]); `None` for anything
    /// but constants and lengths plus constants, truncated by masks.
    fn sym(&self, e: &Expr, args: &[Value], values: &[Value]) -> Option<Sym> {
        let mut st: [Sym; 8] = [Sym::Const(0); 8];
        let mut n = 0usize;
        for op in &e.ops {
            let s = match *op {
                Op::Const(c) => Sym::Const(c),
                Op::Param(p) => Sym::Const(args.get(p as usize).copied().unwrap_or(0)),
                Op::Field(f) => match self.prov[f as usize] {
                    // Constant over the megaflow (its inputs are matched).
                    Prov::Fixed => Sym::Const(values[f as usize]),
                    Prov::Len { off, w } => Sym::Len { off: off as i64, w, exact: true },
                    _ => return None,
                },
                Op::Un(u) => match st[n.checked_sub(1)?] {
                    Sym::Const(a) => {
                        n -= 1;
                        Sym::Const(u.apply(a))
                    }
                    Sym::Len { .. } => return None,
                },
                Op::Bin(b) => {
                    let (l, r) = (st[n.checked_sub(2)?], st[n - 1]);
                    n -= 2;
                    match (b, l, r) {
                        (_, Sym::Const(l), Sym::Const(r)) => Sym::Const(b.apply(l, r)),
                        (BinOp::Add, Sym::Len { off, w, .. }, Sym::Const(c))
                        | (BinOp::Add, Sym::Const(c), Sym::Len { off, w, .. }) => {
                            Sym::Len { off: off.checked_add(i64::try_from(c).ok()?)?, w, exact: false }
                        }
                        (BinOp::Sub, Sym::Len { off, w, .. }, Sym::Const(c)) => {
                            Sym::Len { off: off.checked_sub(i64::try_from(c).ok()?)?, w, exact: false }
                        }
                        (BinOp::And, Sym::Len { off, w, .. }, Sym::Const(m))
                        | (BinOp::And, Sym::Const(m), Sym::Len { off, w, .. }) => {
                            // A truncation to k bits, k at most the known bits.
                            let k = 128 - m.leading_zeros();
                            if m == 0 || m != mask_of(k) || k > w {
                                return None;
                            }
                            Sym::Len { off, w: k, exact: true }
                        }
                        _ => return None,
                    }
                }
                _ => return None,
            };
            if n == st.len() {
                return None;
            }
            st[n] = s;
            n += 1;
        }
        (n == 1).then_some(st[0])
    }
}

impl Track for Tracker {
    fn start(&mut self, ir: &Ir, _len: usize) {
        self.prov.iter_mut().for_each(|p| *p = Prov::Fixed);
        self.touched.iter_mut().for_each(|t| *t = 0);
        let port_w = ir.fields[ir.std.ingress_port as usize].width.min(16);
        self.prov[ir.std.ingress_port as usize] = Prov::Bits { end: INGRESS_PORT_END, n: port_w };
        self.prov[ir.std.packet_length as usize] = Prov::Len { off: 0, w: 32 };
    }

    fn extracted(&mut self, ir: &Ir, h: HeaderId, at: usize, vl: usize) {
        let base = ((KEY_PACKET_OFFSET + at) * 8) as u32;
        self.touched[h as usize] = 0;
        let hd = &ir.headers[h as usize];
        let fields = hd.fields.start as usize..hd.fields.end as usize;
        // From the precomputed offsets: a load, an add and a store per field.
        for (p, &(end, n)) in self.prov[fields.clone()].iter_mut().zip(&self.own[fields.clone()]) {
            *p = Prov::Bits { end: base + end, n };
        }
        if hd.varbit.is_some() {
            // Always the last field.
            let f = fields.end - 1;
            debug_assert_eq!(ir.fields[f].width, 0, "a varbit header's last field is its varbit");
            self.prov[f] = Prov::Range { start: base + self.own[f].0, bits: vl as u32 * 8 };
        }
    }

    #[inline(always)]
    fn read_field(&mut self, f: FieldId, mask: Value) {
        let p = self.prov[f as usize];
        // A whole received field (most reads: a table key's too where its mask
        // covers the field, as an exact or a full-length LPM key's does) marks one
        // range, inline; the rest go through `mark_prov`. The mask covers the field
        // when its low `n` bits are ones: shifted out of `!mask`, nothing is left
        // (`n` is at least 1 where it matters; at 0 both ways mark nothing).
        // A fixed field (metadata an action set, say) has nothing to mark.
        match p {
            Prov::Bits { end, n } if (!mask).wrapping_shl(128 - n) == 0 => {
                self.mark_bits(end as i64 - n as i64, end as i64)
            }
            Prov::Fixed => {}
            p => self.mark_prov(p, mask),
        }
    }

    fn read_packet(&mut self, bit: usize, width: u32) {
        let end = (KEY_PACKET_OFFSET * 8 + bit) as u32 + width;
        self.mark_prov(Prov::Bits { end, n: width }, Value::MAX);
    }

    fn length_dependent(&mut self) {
        self.mark_prov(Prov::Bits { end: PACKET_LENGTH_END, n: 32 }, Value::MAX);
    }

    fn parsed(&mut self, payload: usize) {
        self.reads.parsed = self.reads.parsed.max(payload);
    }

    fn uncacheable(&mut self, why: &'static str) {
        self.uncacheable.get_or_insert(why);
    }

    fn wrote_field(&mut self, f: FieldId) {
        self.put(f, Prov::Fixed);
    }

    #[inline(always)]
    fn length_relative(&self, ir: &Ir, e: &Expr, args: &[Value], values: &[Value], dst: FieldId) -> Option<(i32, u32)> {
        // Most assignments read no length: one pass over the ops, inline, says so.
        if !e.ops.iter().any(|op| matches!(op, Op::Field(f) if matches!(self.prov[*f as usize], Prov::Len { .. }))) {
            return None;
        }
        self.length_offset(ir, e, args, values, dst)
    }

    fn wrote_length(&mut self, f: FieldId, off: i32, w: u32) {
        self.put(f, Prov::Len { off, w });
    }

    fn save(&mut self) {
        self.saved.0.clone_from(&self.prov);
        self.saved.1.clone_from(&self.touched);
    }

    fn restore(&mut self) {
        self.prov.clone_from(&self.saved.0);
        self.touched.clone_from(&self.saved.1);
    }

    fn save_at(&mut self, depth: usize) {
        if self.saved_at.len() <= depth {
            self.saved_at.resize_with(depth + 1, Default::default);
        }
        self.saved_at[depth].0.clone_from(&self.prov);
        self.saved_at[depth].1.clone_from(&self.touched);
    }

    fn restore_at(&mut self, depth: usize) {
        if let Some((prov, touched)) = self.saved_at.get(depth) {
            self.prov.clone_from(prov);
            self.touched.clone_from(touched);
        }
    }

    fn metadata_reset(&mut self, ir: &Ir, kept: &[(FieldId, Value)]) {
        for h in ir.headers.iter().filter(|h| h.metadata) {
            for f in h.fields.clone() {
                if !kept.iter().any(|(k, _)| *k == f) {
                    self.put(f, Prov::Fixed);
                }
            }
        }
        self.put(ir.std.packet_length, Prov::Len { off: 0, w: 32 });
    }

    fn kept_field(&mut self, f: FieldId) {
        // The same input packet is re-parsed: the saved provenance still names the
        // right key-space bits.
        self.put(f, self.saved.0[f as usize]);
    }

    fn copied_field(&mut self, ir: &Ir, dst: FieldId, src: FieldId) {
        let w = ir.fields[dst as usize].width;
        let p = match self.prov[src as usize] {
            Prov::Bits { end, n } => Prov::Bits { end, n: n.min(w) },
            Prov::Len { off, w: lw } => Prov::Len { off, w: lw.min(w) },
            other => other,
        };
        self.put(dst, p);
    }

    fn swapped_headers(&mut self, ir: &Ir, a: HeaderId, b: HeaderId) {
        for (fa, fb) in ir.headers[a as usize].fields.clone().zip(ir.headers[b as usize].fields.clone()) {
            self.prov.swap(fa as usize, fb as usize);
        }
        self.touched.swap(a as usize, b as usize);
    }

    fn checksum_verified(&mut self, ir: &Ir, ck: &ChecksumDef, received: Option<(usize, usize)>) {
        if let Some((at, len)) = received {
            // Computed from the received header's bytes as they lie: exactly those.
            let lo = ((KEY_PACKET_OFFSET + at) * 8) as u32;
            self.verify_input(lo + len as u32 * 8, len as u32 * 8);
            if let Some(f) = ir.std.checksum_error {
                self.put(f, Prov::Verified);
            }
            return;
        }
        for (e, _) in &ir.calcs[ck.calc as usize].inputs {
            match e.as_field().map(|f| self.prov[f as usize]) {
                Some(Prov::Bits { end, n }) => self.verify_input(end, n),
                Some(Prov::Range { start, bits }) => {
                    // A varbit input, in chunks of at most 128 bits.
                    let mut at = start;
                    while at < start + bits {
                        let n = (start + bits - at).min(128);
                        self.verify_input(at + n, n);
                        at += n;
                    }
                }
                Some(Prov::Len { .. }) => self.verify_input(PACKET_LENGTH_END, 32),
                _ => {}
            }
        }
        match self.prov[ck.field as usize] {
            Prov::Bits { end, n } => self.verify_input(end, n),
            Prov::Len { .. } => self.verify_input(PACKET_LENGTH_END, 32),
            _ => {}
        }
        if let Some(f) = ir.std.checksum_error {
            self.put(f, Prov::Verified);
        }
    }

    fn checksum_updated(&mut self, ir: &Ir, ck: &ChecksumDef) {
        // Recomputed by the datapath when the calculation is the Internet checksum of
        // the field's own header (IPv4-style); otherwise its inputs decide the value.
        if ck.whole_header {
            self.put(ck.field, Prov::Checksum);
        } else {
            for (e, _) in &ir.calcs[ck.calc as usize].inputs {
                if let Some(f) = e.as_field() {
                    self.read_field(f, Value::MAX);
                }
            }
            self.put(ck.field, Prov::Fixed);
        }
    }

    fn table_hit(&mut self, t: TableId, entry: Option<u32>) {
        self.effects.push(Effect::Table(t, entry));
    }

    fn count(&mut self, counter: u32, index: Value) {
        self.effects.push(Effect::Count(counter, index));
    }

    fn meter(&mut self, meter: u32, index: Value) {
        self.effects.push(Effect::Meter(meter, index));
    }

    fn metered(&mut self, meter: u32, cell: u32) {
        self.points.push((meter, cell));
        if self.points.len() > MAX_METER_POINTS {
            self.uncacheable.get_or_insert("more than 2 configured meters");
        }
    }

    fn selector(&mut self, profile: u32, group: u32) {
        self.effects.push(Effect::Selector(profile, group));
    }

    fn digest(&mut self, list: u32) {
        self.effects.push(Effect::Digest(list));
    }

    fn value_set(&mut self, set: u32) {
        self.effects.push(Effect::ValueSet(set));
    }

    fn clone_session(&mut self, session: u32) {
        self.effects.push(Effect::CloneSession(session));
    }

    fn mcast_group(&mut self, group: u32) {
        self.effects.push(Effect::McastGroup(group));
    }

    fn egress_copy(&mut self, port: u32, _rid: u32, instance: Value) {
        self.pending = Some((port, instance));
    }

    fn needs_bytes(&self) -> bool {
        // Refused or metered outcomes leave as the interpreter's output.
        self.refusal().is_some() || !self.points.is_empty()
    }

    fn emitted_view(&mut self, ir: &Ir, v: &EmitView, recirc: bool) {
        if recirc {
            return;
        }
        let Some((port, instance)) = self.pending.take() else { return };
        let mut edit = self.spare.pop().unwrap_or_default();
        edit.strip = self.reads.parsed as u32;
        edit.truncate = v.truncate.map(|n| n as u32);
        let mut out_bit: u32 = 0;
        let mut const_run: Vec<u8> = vec![];
        for &h in &ir.deparser {
            if !v.valid[h as usize] {
                continue;
            }
            let hd = &ir.headers[h as usize];
            let len = hd.bytes + v.vlen[h as usize] as u32;
            let at = out_bit / 8;
            let from_packet = v.src[h as usize] != 0;
            let own_base = (KEY_PACKET_OFFSET as u32 + v.src[h as usize].saturating_sub(1)) * 8;
            if from_packet {
                if !const_run.is_empty() {
                    edit.segments.push(Segment::Bytes(std::mem::take(&mut const_run)));
                }
                let from = v.src[h as usize] - 1;
                match edit.segments.last_mut() {
                    Some(Segment::Copy { from: f, len: l }) if *f + *l == from => *l += len,
                    _ => edit.segments.push(Segment::Copy { from, len }),
                }
            } else {
                match v.bytes {
                    Some(b) => const_run.extend_from_slice(&b[at as usize..(at + len) as usize]),
                    None => {
                        // Not deparsed: the header from its fields (a whole-header
                        // checksum in it may be stale: the edit recomputes it).
                        let k = const_run.len();
                        const_run.resize(k + len as usize, 0);
                        Interp::write_header(ir, hd, v.values, v.vlen, v.vbytes, h as usize, &mut const_run[k..]);
                    }
                }
            }
            // The fields of an extracted header whose provenance was not set since
            // hold its bits as received (`own`): nothing to do for them.
            let look = if from_packet { self.touched[h as usize] } else { ALL_FIELDS };
            #[cfg(debug_assertions)]
            for f in hd.fields.clone().filter(|&f| look & hd.field_bit(f) == 0) {
                let fd = &ir.fields[f as usize];
                let own = match fd.width {
                    0 => Prov::Range { start: own_base + fd.bit_offset, bits: v.vlen[h as usize] as u32 * 8 },
                    w => Prov::Bits { end: own_base + fd.bit_offset + w, n: w },
                };
                debug_assert_eq!(self.prov[f as usize], own, "untouched field {}", fd.name);
            }
            for f in hd.fields_in(look) {
                let fd = &ir.fields[f as usize];
                let fbit = out_bit + fd.bit_offset;
                if fd.width == 0 {
                    // The varbit bytes: copied with the header from where it came from,
                    // or constant; bytes brought from elsewhere are not tracked.
                    let own = Prov::Range { start: own_base + fd.bit_offset, bits: v.vlen[h as usize] as u32 * 8 };
                    if from_packet && self.prov[f as usize] != own && v.vlen[h as usize] > 0 {
                        self.uncacheable.get_or_insert("varbit field moved");
                    }
                    continue;
                }
                let own = Prov::Bits { end: own_base + fd.bit_offset + fd.width, n: fd.width };
                match self.prov[f as usize] {
                    p if from_packet && p == own => {}
                    Prov::Checksum => edit.checksums.push(ChecksumFix { at, len, field_bit: fbit }),
                    // Computed per packet: nothing to match.
                    Prov::Len { off, w } => {
                        edit.len_patches.push(LenPatch { bit: fbit, width: fd.width, off, modw: w.min(fd.width) })
                    }
                    p => {
                        // Its value must be constant over the megaflow (a fixed one
                        // is: its inputs were marked when it was computed).
                        if p != Prov::Fixed {
                            self.mark_prov(p, Value::MAX);
                        }
                        if from_packet {
                            edit.patches.push(Patch { bit: fbit, width: fd.width, value: v.values[f as usize] });
                        }
                    }
                }
            }
            out_bit += len * 8;
        }
        if !const_run.is_empty() {
            edit.segments.push(Segment::Bytes(const_run));
        }
        self.fates.push(Fate::Output { port, instance, edit });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A random expression over the packet's length, a constant field and constants,
    /// in postfix: some are lengths plus constants, truncated; most are not.
    fn expr(len: FieldId, fixed: FieldId) -> impl Strategy<Value = Vec<Op>> {
        let leaf = prop_oneof![
            Just(vec![Op::Field(len)]),
            Just(vec![Op::Field(fixed)]),
            (0u128..70).prop_map(|c| vec![Op::Const(c)]),
            (1u32..40).prop_map(|k| vec![Op::Const(mask_of(k))]),
        ];
        leaf.prop_recursive(4, 16, 2, |inner| {
            let op = prop_oneof![
                Just(BinOp::Add),
                Just(BinOp::Sub),
                Just(BinOp::And),
                Just(BinOp::Mul),
                Just(BinOp::Shr),
                Just(BinOp::Lt)
            ];
            (inner.clone(), inner, op).prop_map(|(mut l, r, op)| {
                l.extend(r);
                l.push(Op::Bin(op));
                l
            })
        })
    }

    fn eval(ops: &[Op], values: &[Value]) -> Value {
        let mut st = vec![];
        for op in ops {
            match *op {
                Op::Field(f) => st.push(values[f as usize]),
                Op::Const(c) => st.push(c),
                Op::Bin(b) => {
                    let r = st.pop().unwrap();
                    let l = st.pop().unwrap();
                    st.push(b.apply(l, r));
                }
                _ => unreachable!(),
            }
        }
        st[0]
    }

    proptest! {
        /// Whenever an expression is taken for the length plus a constant, the length
        /// patch computes exactly what the expression does, for every length.
        #[test]
        fn length_relative_values_equal_the_expression(
            ops in expr(0, 1),
            fixed in 0u128..30,
            lens in proptest::collection::vec(0usize..70_000, 1..6),
            dst_width in prop_oneof![Just(8u32), Just(16), Just(32)],
        ) {
            let ir = super::super::compile::compile_bytes(super::super::default_tests::JSON).unwrap();
            let (len_f, dst) = (ir.std.packet_length, ir.std.egress_port);
            let fixed_f = ir.fields.iter().position(|f| f.name == "meta.strip_len").unwrap() as FieldId;
            let ops: Vec<Op> = ops.into_iter().map(|op| match op {
                Op::Field(0) => Op::Field(len_f),
                Op::Field(_) => Op::Field(fixed_f),
                other => other,
            }).collect();
            let mut t = Tracker::new(&ir);
            t.start(&ir, 0);
            let mut ir = ir;
            ir.fields[dst as usize].width = dst_width;
            ir.fields[dst as usize].mask = mask_of(dst_width);
            let mut values = vec![0 as Value; ir.fields.len()];
            values[fixed_f as usize] = fixed;
            let e = Expr { ops };
            if let Some((off, w)) = t.length_relative(&ir, &e, &[], &values, dst) {
                prop_assert!(w <= dst_width);
                let p = LenPatch { bit: 0, width: dst_width, off, modw: w };
                for len in lens {
                    values[len_f as usize] = len as Value;
                    let want = eval(&e.ops, &values) & mask_of(dst_width);
                    prop_assert_eq!(p.value(len), want, "len {}", len);
                }
            }
        }
    }

    #[test]
    fn tunnel_lengths_are_length_relative_and_other_uses_are_not() {
        let ir = super::super::compile::compile_bytes(super::super::default_tests::JSON).unwrap();
        let len = ir.std.packet_length;
        let strip = ir.fields.iter().position(|f| f.name == "meta.strip_len").unwrap() as FieldId;
        let total = ir.fields.iter().position(|f| f.name == "tun_ipv4.total_len").unwrap() as FieldId;
        let mut t = Tracker::new(&ir);
        t.start(&ir, 0);
        let mut values = vec![0 as Value; ir.fields.len()];
        values[strip as usize] = 4;
        let m16 = Op::Const(0xffff);
        let and = Op::Bin(BinOp::And);
        // ((len & 0xffff) - strip & 0xffff) + 36 & 0xffff, as p4c writes the tunnel's.
        let outer = [Op::Field(len), m16, and, Op::Field(strip), Op::Bin(BinOp::Sub), m16, and]
            .into_iter()
            .chain([Op::Const(36), Op::Bin(BinOp::Add), m16, and])
            .collect();
        let relative = |ops: Vec<Op>| t.length_relative(&ir, &Expr { ops }, &[], &values, total);
        assert_eq!(relative(outer), Some((32, 16)));
        // Wider than 16 bits, stored in 16: the low bits are still the length's.
        assert_eq!(relative(vec![Op::Field(len), Op::Const(1), Op::Bin(BinOp::Add)]), Some((1, 16)));
        // Truncated to 8 bits, then added to: the 16-bit result is not `len + c`.
        let narrow = vec![Op::Field(len), Op::Const(0xff), and, Op::Const(1), Op::Bin(BinOp::Add)];
        assert_eq!(relative(narrow), None);
        assert_eq!(relative(vec![Op::Const(100), Op::Field(len), Op::Bin(BinOp::Sub)]), None);
        assert_eq!(relative(vec![Op::Field(len), Op::Const(2), Op::Bin(BinOp::Mul)]), None);
        assert_eq!(relative(vec![Op::Field(len), Op::Const(100), Op::Bin(BinOp::Lt)]), None);
        assert_eq!(relative(vec![Op::Field(strip), Op::Const(1), Op::Bin(BinOp::Add)]), None, "no length in it");
    }

    proptest! {
        /// Byte-wise marking sets exactly the bits of the range, as marking them one
        /// at a time does, and keeps what was marked before.
        #[test]
        fn mark_range_marks_exactly_the_range(
            before in proptest::collection::vec((0u32..400, 0u32..140), 0..3),
            from in 0u32..(KEY_BYTES as u32 * 8),
            len in 0u32..200,
        ) {
            let to = (from + len).min(KEY_BYTES as u32 * 8);
            let mut fast = ReadSet::default();
            let mut slow = [0u8; KEY_BYTES];
            for (f, l) in before {
                fast.mark_range(f, f + l);
                for b in f..f + l {
                    slow[b as usize / 8] |= 0x80 >> (b % 8);
                }
            }
            fast.mark_range(from, to);
            for b in from..to {
                slow[b as usize / 8] |= 0x80 >> (b % 8);
            }
            proptest::prop_assert_eq!(fast.mask, slow);
            // The word set names exactly the words with a bit.
            let nonzero = (0..KEY_BYTES / 8).filter(|w| slow[w * 8..w * 8 + 8] != [0; 8]).fold(0u64, |s, w| s | 1 << w);
            proptest::prop_assert_eq!(fast.words, nonzero);
        }
    }
}
