//! Datapath actions: what a megaflow does to each packet it matches, compiled once
//! from the pipeline's tracked outcome ([`Tracker`]) when the megaflow is installed.
//!
//! * **Outputs**, in the order the pipeline emitted them: a P4 port and an edit. Each
//!   edit is compiled to the cheapest way to apply it:
//!   [`Apply::InPlace`] when the output keeps the input's layout (field rewrites such
//!   as MAC rewrite and TTL decrement: byte patches, then Internet checksums
//!   recomputed over their header), [`Apply::Rebuild`] when headers are pushed or
//!   popped (VLAN, tunnels, packet-in headers: the new headers are assembled from
//!   input segments and constants, patched, and replace the parsed ones in front of
//!   the untouched payload), [`Apply::Copy`] otherwise (truncation).
//! * **Drops** with the pipeline's reason.
//! * **Replays**: the counters the pipeline touched (table-entry hits and direct
//!   counters, indexed counter cells), credited once per group of packets. A
//!   megaflow installed from a tracked run keeps them itself ([`Replays`], inline):
//!   megaflows of different table entries with equal outputs (every route through
//!   one next hop) then share one copy of their actions, and a new megaflow whose
//!   outputs exist already allocates nothing.
//! * **Meter branches** ([`MeterBranch`]): a flow that executed a configured meter
//!   executes it again per packet and takes the outputs, drops and counters the
//!   pipeline would have taken for that color (its counters credited per packet).
//! * **Dependencies** ([`deps`]): what state the outcome was read from, for exact
//!   invalidation.
//!
//! Outcomes that produce digests are not cached (the digest's data would have to be
//! replayed per packet); nor is anything [`Tracker::uncacheable`] names.

use super::Change;
use crate::p4::bits::{csum16, fold16, ones_sum_without, write_bits};
use crate::p4::interp::DropCause;
use crate::p4::ir::{mask_of, Ir, Value};
use crate::p4::tables::Runtime;
use crate::p4::track::{ChecksumFix, Edit, Effect, Fate, Patch, Segment, Tracker};

/// One byte of a patch: `b = b & keep | set`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BytePatch {
    /// Output offset.
    pub off: u16,
    /// Bits kept.
    pub keep: u8,
    /// Bits set.
    pub set: u8,
}

/// Byte changes of an output, compiled: whole bytes outside every checksummed
/// header as runs of constant bytes (one copy each: MAC rewrites), the rest byte by
/// byte (they adjust the checksums incrementally).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Patches {
    /// Runs of constant bytes (held inline: no allocation per run).
    pub runs: Box<[Run]>,
    /// Single-byte patches.
    pub bytes: Box<[BytePatch]>,
}

/// Longest [`Run`]: longer runs are split.
pub const RUN_MAX: usize = 16;

/// Constant bytes written at an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Run {
    /// Output offset.
    pub off: u16,
    len: u8,
    /// The bytes (zero past `len`).
    data: [u8; RUN_MAX],
}

impl Run {
    /// The bytes written.
    #[inline(always)]
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }
}

impl Patches {
    /// Compile byte patches (sorted by offset) given the checksums that will be fixed
    /// after them. Allocates exactly what it keeps.
    pub fn new(all: &[BytePatch], checksums: &[ChecksumFix]) -> Patches {
        let summed = |off: u16| checksums.iter().any(|c| (off as u32) >= c.at && (off as u32) < c.at + c.len);
        let in_run = |p: &BytePatch| p.keep == 0 && !summed(p.off);
        // The run bytes, each with whether it starts a run: it does not follow the
        // previous run byte, or that run is full. Walked twice, to count the runs and
        // then fill them, so that both lists are allocated exactly once.
        let run_bytes = || {
            let mut at = (usize::MAX, 0);
            all.iter().filter(move |p| in_run(p)).map(move |p| {
                let starts = at.0.wrapping_add(at.1) != p.off as usize || at.1 == RUN_MAX;
                at = if starts { (p.off as usize, 1) } else { (at.0, at.1 + 1) };
                (p, starts)
            })
        };
        let mut runs: Vec<Run> = Vec::with_capacity(run_bytes().filter(|(_, s)| *s).count());
        for (p, starts) in run_bytes() {
            match runs.last_mut() {
                Some(r) if !starts => {
                    r.data[r.len as usize] = p.set;
                    r.len += 1;
                }
                _ => {
                    let mut data = [0; RUN_MAX];
                    data[0] = p.set;
                    runs.push(Run { off: p.off, len: 1, data });
                }
            }
        }
        let mut bytes = Vec::with_capacity(all.iter().filter(|p| !in_run(p)).count());
        bytes.extend(all.iter().filter(|p| !in_run(p)));
        Patches { runs: runs.into(), bytes: bytes.into() }
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty() && self.bytes.is_empty()
    }

    /// Bytes changed.
    pub fn len(&self) -> usize {
        self.runs.iter().map(|r| r.len as usize).sum::<usize>() + self.bytes.len()
    }
}

/// Write `src` at `dst` (the same length): 8 to 16 bytes as two possibly overlapping
/// 8-byte stores instead of a `memcpy` call.
#[inline(always)]
fn put(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if (8..=16).contains(&n) {
        dst[..8].copy_from_slice(&src[..8]);
        dst[n - 8..n].copy_from_slice(&src[n - 8..]);
    } else {
        dst.copy_from_slice(src);
    }
}

/// How an output is produced.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Apply {
    /// Same layout as the input: patch bytes, fix checksums.
    InPlace {
        /// Byte patches (then the edit's checksums are recomputed).
        patches: Patches,
    },
    /// New headers (`edit.segments`, then patches and checksums, all inside them)
    /// replace the first `edit.strip` input bytes.
    Rebuild {
        /// Byte patches, relative to the new headers.
        patches: Patches,
        /// The segments precompiled, where the headers fit one (see [`Template`]).
        template: Option<Box<Template>>,
    },
    /// Anything else: [`Edit::apply`] into a new buffer.
    Copy,
}

/// Longest new headers a [`Template`] builds: a VXLAN encapsulation in IPv6 with the
/// inner Ethernet, IPv6 and TCP headers fits. Longer ones are assembled segment by
/// segment ([`Output::headers`]).
pub const TEMPLATE_MAX: usize = 192;

/// Granule of a template's copy: its constant bytes are copied in whole chunks (the
/// header buffer is [`TEMPLATE_MAX`] long, so a chunk may run past the headers).
const TEMPLATE_CHUNK: usize = 32;

/// An input range a [`Template`] copies into the new headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Piece {
    dst: u16,
    src: u16,
    len: u16,
}

/// A rebuild's new headers precompiled (per megaflow, once): the constant bytes
/// already in place, and the input ranges to copy over them (adjacent ranges merged).
/// Building a packet's headers is then a chunked copy of the constants and one short
/// copy per range, into a fixed buffer: no segment walk, no growable buffer and no
/// `memcpy` call (a VLAN push: 12 bytes of addresses and 2 of EtherType around a
/// constant tag).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Template {
    len: u16,
    base: [u8; TEMPLATE_MAX],
    pieces: Box<[Piece]>,
}

impl Template {
    /// The template of `segments`, if the headers fit [`TEMPLATE_MAX`] and every
    /// copied range lies inside the first `strip` input bytes (what the caller checks
    /// the input has).
    fn new(segments: &[Segment], strip: u32) -> Option<Template> {
        let mut base = [0u8; TEMPLATE_MAX];
        let mut pieces: Vec<Piece> = Vec::with_capacity(segments.len());
        let mut at = 0usize;
        for s in segments {
            match s {
                Segment::Copy { from, len } => {
                    if from.checked_add(*len)? > strip || at + *len as usize > TEMPLATE_MAX {
                        return None;
                    }
                    let (dst, src, len) = (at as u16, *from as u16, *len as u16);
                    match pieces.last_mut() {
                        Some(p) if p.dst + p.len == dst && p.src + p.len == src => p.len += len,
                        _ => pieces.push(Piece { dst, src, len }),
                    }
                    at += len as usize;
                }
                Segment::Bytes(b) => {
                    base.get_mut(at..at + b.len())?.copy_from_slice(b);
                    at += b.len();
                }
            }
        }
        pieces.retain(|p| p.len > 0);
        Some(Template { len: at as u16, base, pieces: pieces.into() })
    }

    /// Length of the new headers.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the new headers are empty (everything parsed is popped).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The new headers for `input` (at least `strip` bytes) into `out[..self.len()]`.
    #[inline(always)]
    fn build(&self, input: &[u8], out: &mut [u8; TEMPLATE_MAX]) {
        for c in (0..self.len as usize).step_by(TEMPLATE_CHUNK) {
            out[c..c + TEMPLATE_CHUNK].copy_from_slice(&self.base[c..c + TEMPLATE_CHUNK]);
        }
        for p in self.pieces.iter() {
            let (d, s, n) = (p.dst as usize, p.src as usize, p.len as usize);
            copy_short(&mut out[d..d + n], &input[s..s + n]);
        }
    }
}

/// `dst = src` (the same length) without a `memcpy` call for the short ranges of
/// header copies: two possibly overlapping loads and stores of the largest power of
/// two not above the length.
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    fn two<const W: usize>(dst: &mut [u8], src: &[u8], n: usize) {
        dst[..W].copy_from_slice(&src[..W]);
        dst[n - W..n].copy_from_slice(&src[n - W..]);
    }
    match n {
        32..=64 => two::<32>(dst, src, n),
        16..=31 => two::<16>(dst, src, n),
        8..=15 => two::<8>(dst, src, n),
        4..=7 => two::<4>(dst, src, n),
        2..=3 => two::<2>(dst, src, n),
        _ => dst.copy_from_slice(src),
    }
}

/// Write headers built by [`Output::headers_from`] (`h[..front.len()]`) into a
/// packet's new front.
#[inline(always)]
pub fn put_headers(front: &mut [u8], h: &[u8; TEMPLATE_MAX]) {
    let n = front.len();
    copy_short(front, &h[..n]);
}

/// One output copy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Output {
    /// P4 port.
    pub port: u32,
    /// The tracked edit.
    pub edit: Edit,
    /// Its compiled form.
    pub apply: Apply,
}

/// A counter to credit on every packet of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Replay {
    /// A table entry hit (its hit count, and its direct counter if the table has one).
    Hit {
        /// Table.
        table: u32,
        /// Entry handle.
        handle: u32,
        /// The table has a direct counter.
        direct: bool,
    },
    /// An indexed counter cell.
    Count {
        /// Counter array.
        counter: u32,
        /// Cell.
        index: u32,
    },
}

/// The counters one megaflow credits: inline for the usual few (no allocation per
/// megaflow), spilled to the heap beyond.
#[derive(Debug, Clone)]
pub struct Replays {
    len: u8,
    inline: [Replay; INLINE_REPLAYS],
    spill: Box<[Replay]>,
}

const INLINE_REPLAYS: usize = 4;

impl Replays {
    /// Hold `r`.
    pub fn new(r: &[Replay]) -> Replays {
        let mut inline = [Replay::Count { counter: 0, index: 0 }; INLINE_REPLAYS];
        if r.len() <= INLINE_REPLAYS {
            // Element by element, not `copy_from_slice`: its `memcpy` stores 32 bytes
            // at two overlapping offsets that the moves of the megaflow into its slot
            // then load 16 at a time, at offsets no store forwards to. Each such load
            // waits for every older store to reach the cache, and a flow setup has
            // just made many to cold lines (~18 % of its install's profile).
            for (i, d) in inline.iter_mut().enumerate() {
                if i < r.len() {
                    *d = r[i];
                }
            }
            Replays { len: r.len() as u8, inline, spill: Box::new([]) }
        } else {
            Replays { len: 0, inline, spill: r.into() }
        }
    }

    /// The counters.
    #[inline(always)]
    pub fn as_slice(&self) -> &[Replay] {
        if self.spill.is_empty() {
            &self.inline[..self.len as usize]
        } else {
            &self.spill
        }
    }
}

/// A megaflow's actions.
///
/// A flow whose outcome depends on a configured meter's color is a tree: the root
/// has no outputs, drops or counters of its own, only [`Actions::metered`], whose
/// three branches are the whole outcome for GREEN, YELLOW and RED (each may branch
/// again on the next meter). [`Actions::leaf`] walks it for a packet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Actions {
    /// Copies sent, in emission order.
    pub outputs: Box<[Output]>,
    /// Copies dropped, with the reason.
    pub drops: Box<[DropCause]>,
    /// Counters to credit.
    pub replay: Box<[Replay]>,
    /// The meter to execute first and the outcome per color, for metered flows.
    pub metered: Option<Box<MeterBranch>>,
}

/// A configured meter cell executed per packet and what each color leads to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MeterBranch {
    /// Meter array.
    pub meter: u32,
    /// Cell (a direct meter's: the entry handle).
    pub cell: u32,
    /// A bytes meter (else packets).
    pub bytes: bool,
    /// The outcome for GREEN, YELLOW and RED.
    pub colors: [Actions; 3],
}

/// `patches` compiled into [`Patches`] given the checksums fixed after them. The byte
/// patches are built on the stack for the usual header sizes: a flow setup allocates
/// only what the megaflow keeps.
fn compile_patches(patches: &[Patch], checksums: &[ChecksumFix]) -> Patches {
    let end = patches.iter().map(|p| (p.bit + p.width).div_ceil(8) as usize).max().unwrap_or(0);
    if end <= 64 {
        let (mut keep, mut set, mut out) = ([0u8; 64], [0u8; 64], [BytePatch { off: 0, keep: 0, set: 0 }; 64]);
        let n = byte_patches(patches, &mut keep[..end], &mut set[..end], &mut out);
        Patches::new(&out[..n], checksums)
    } else {
        let (mut keep, mut set, mut out) =
            (vec![0u8; end], vec![0u8; end], vec![BytePatch { off: 0, keep: 0, set: 0 }; end]);
        let n = byte_patches(patches, &mut keep, &mut set, &mut out);
        Patches::new(&out[..n], checksums)
    }
}

/// Write `patches` as bytes into `out` (sorted by offset), using `keep` and `set`
/// (zeroed, one byte per patched output byte) as scratch; returns how many.
fn byte_patches(patches: &[Patch], keep: &mut [u8], set: &mut [u8], out: &mut [BytePatch]) -> usize {
    for p in patches {
        write_bits(keep, p.bit as usize, p.width, mask_of(p.width));
        write_bits(set, p.bit as usize, p.width, p.value);
    }
    let mut n = 0;
    for (i, (k, s)) in keep.iter().zip(set.iter()).enumerate().filter(|(_, (k, _))| **k != 0) {
        out[n] = BytePatch { off: i as u16, keep: !k, set: *s };
        n += 1;
    }
    n
}

fn compile_edit(e: &Edit) -> Apply {
    if e.truncate.is_some() {
        return Apply::Copy;
    }
    let same_layout = match &*e.segments {
        [] => e.strip == 0,
        [Segment::Copy { from: 0, len }] => *len == e.strip,
        _ => false,
    };
    let fits = |limit: u32| {
        e.patches.iter().all(|p| p.bit + p.width <= limit * 8)
            && e.len_patches.iter().all(|p| p.bit + p.width <= limit * 8)
            && e.checksums.iter().all(|c| c.at + c.len <= limit && c.field_bit % 8 == 0 && c.field_bit / 8 + 2 <= limit)
    };
    if same_layout && e.strip <= u16::MAX as u32 && fits(e.strip) {
        let patches = compile_patches(&e.patches, &e.checksums);
        return Apply::InPlace { patches };
    }
    let hdr = e.header_len();
    if hdr <= u16::MAX as u32 && fits(hdr) {
        let template = Template::new(&e.segments, e.strip).map(Box::new);
        return Apply::Rebuild { patches: compile_patches(&e.patches, &e.checksums), template };
    }
    Apply::Copy
}

/// Checksums [`patch`] updates incrementally at most; more take the plain way.
const MAX_FAST_CHECKSUMS: usize = 4;

/// Patch bytes and recompute checksums in place.
///
/// Each checksum is the Internet checksum of its header as BMv2 computes it (over the
/// patched bytes, the checksum field taken as zero), but computed without a store
/// before the loads: the header is summed first, as it arrives and without the
/// checksum field, then every patched byte inside it adjusts the sum (RFC 1624:
/// subtract the old word, add the new). Summing after the patches would load 8 bytes
/// across just-written single bytes: a store-forwarding stall per packet.
#[inline(always)]
pub fn patch(bytes: &mut [u8], patches: &Patches, checksums: &[ChecksumFix]) {
    for r in patches.runs.iter() {
        let run = r.bytes();
        put(&mut bytes[r.off as usize..r.off as usize + run.len()], run);
    }
    patch_bytes(bytes, &patches.bytes, checksums);
}

/// The byte-by-byte part of [`patch`], with the checksums. Inlined where it is
/// used for the common cases (no checksum, or one: an IPv4 header), whose sum stays
/// in a register; the rest is a call.
#[inline(always)]
fn patch_bytes(bytes: &mut [u8], patches: &[BytePatch], checksums: &[ChecksumFix]) {
    match checksums {
        [] => patches.iter().for_each(|p| _ = p.apply(bytes)),
        [c] if (c.field_bit / 8 - c.at).is_multiple_of(2) => {
            let mut s = Summed::new(bytes, c);
            for p in patches {
                let (old, new) = p.apply(bytes);
                s.adjust(p.off as usize, old, new);
            }
            s.store(bytes)
        }
        _ => patch_sums(bytes, patches, checksums),
    }
}

/// [`patch_bytes`] with several checksums (or one at an odd distance).
#[inline(never)]
fn patch_sums(bytes: &mut [u8], patches: &[BytePatch], checksums: &[ChecksumFix]) {
    let fast =
        checksums.len() <= MAX_FAST_CHECKSUMS && checksums.iter().all(|c| (c.field_bit / 8 - c.at).is_multiple_of(2));
    if !fast {
        return patch_plain(bytes, patches, checksums);
    }
    let mut sums = [Summed::NONE; MAX_FAST_CHECKSUMS];
    for (s, c) in sums.iter_mut().zip(checksums) {
        *s = Summed::new(bytes, c);
    }
    let sums = &mut sums[..checksums.len()];
    for p in patches {
        let (old, new) = p.apply(bytes);
        sums.iter_mut().for_each(|s| s.adjust(p.off as usize, old, new));
    }
    sums.iter().for_each(|s| s.store(bytes));
}

impl BytePatch {
    /// Patch the byte; returns (old, new).
    #[inline(always)]
    fn apply(&self, bytes: &mut [u8]) -> (u8, u8) {
        let b = &mut bytes[self.off as usize];
        let old = *b;
        *b = old & self.keep | self.set;
        (old, *b)
    }
}

/// A checksum being recomputed: its header's sum without the field, as it arrived,
/// adjusted for each patched byte (RFC 1624), then stored.
#[derive(Clone, Copy)]
struct Summed {
    at: usize,
    field: usize,
    end: usize,
    sum: u64,
}

impl Summed {
    const NONE: Summed = Summed { at: 0, field: 0, end: 0, sum: 0 };

    /// `c`'s header summed (its field at an even distance from its start).
    #[inline(always)]
    fn new(bytes: &[u8], c: &ChecksumFix) -> Summed {
        let (at, field, end) = (c.at as usize, c.field_bit as usize / 8, (c.at + c.len) as usize);
        Summed { at, field, end, sum: ones_sum_without(bytes, at, field, end) }
    }

    /// Byte `off` changed from `old` to `new`.
    #[inline(always)]
    fn adjust(&mut self, off: usize, old: u8, new: u8) {
        if old != new && off >= self.at && off < self.end && off != self.field && off != self.field + 1 {
            // Little-endian words: a byte at an even distance is the low byte.
            let shift = if (off - self.at).is_multiple_of(2) { 0 } else { 8 };
            self.sum += (!((old as u16) << shift)) as u64 + (((new as u16) << shift) as u64);
        }
    }

    /// Write the checksum.
    #[inline(always)]
    fn store(&self, bytes: &mut [u8]) {
        let f = self.field;
        let sum = fold16(self.sum);
        // 0xffff is one's-complement zero twice over: a sum of all-zero words is
        // 0x0000 when computed directly; recompute that rare case plainly.
        let v = if sum == 0xffff {
            bytes[f] = 0;
            bytes[f + 1] = 0;
            csum16(&bytes[self.at..self.end])
        } else {
            !sum
        };
        bytes[f..f + 2].copy_from_slice(&v.to_be_bytes());
    }
}

/// [`patch`] the plain way: patch, zero the field, sum.
fn patch_plain(bytes: &mut [u8], patches: &[BytePatch], checksums: &[ChecksumFix]) {
    for p in patches {
        p.apply(bytes);
    }
    for c in checksums {
        let (lo, hi) = (c.field_bit as usize / 8, c.at as usize);
        bytes[lo] = 0;
        bytes[lo + 1] = 0;
        let v = csum16(&bytes[hi..hi + c.len as usize]);
        bytes[lo..lo + 2].copy_from_slice(&v.to_be_bytes());
    }
}

impl Output {
    /// A copy to P4 port `port` made by `edit`, compiled.
    pub fn new(port: u32, edit: Edit) -> Output {
        let apply = compile_edit(&edit);
        Output { port, edit, apply }
    }

    /// The new headers of a [`Apply::Rebuild`] output with a template, into
    /// `out[..template.len()]`; `input` holds at least `edit.strip` bytes.
    #[inline(always)]
    pub fn headers_from(&self, template: &Template, input: &[u8], patches: &Patches, out: &mut [u8; TEMPLATE_MAX]) {
        template.build(input, out);
        let h = &mut out[..template.len()];
        self.fix_lengths(h, input.len());
        patch(h, patches, &self.edit.checksums);
    }

    /// The new headers of a [`Apply::Rebuild`] output, into `out` (cleared first).
    pub fn headers(&self, input: &[u8], patches: &Patches, out: &mut Vec<u8>) {
        out.clear();
        for s in &self.edit.segments {
            match s {
                Segment::Copy { from, len } => out.extend_from_slice(&input[*from as usize..(*from + *len) as usize]),
                Segment::Bytes(b) => out.extend_from_slice(b),
            }
        }
        self.fix_lengths(out, input.len());
        patch(out, patches, &self.edit.checksums);
    }

    /// Write the edit's length fields for an input of `len` bytes (before [`patch`]:
    /// the checksums cover them).
    #[inline(always)]
    pub fn fix_lengths(&self, bytes: &mut [u8], len: usize) {
        for p in &self.edit.len_patches {
            p.write(bytes, len);
        }
    }

    /// The output for `input`, appended to `out` (what the datapath sends).
    pub fn render(&self, input: &[u8], out: &mut Vec<u8>) {
        match &self.apply {
            Apply::InPlace { patches } => {
                let start = out.len();
                out.extend_from_slice(input);
                self.fix_lengths(&mut out[start..], input.len());
                patch(&mut out[start..], patches, &self.edit.checksums);
            }
            Apply::Rebuild { patches, .. } => {
                let mut h = vec![];
                self.headers(input, patches, &mut h);
                out.extend_from_slice(&h);
                out.extend_from_slice(&input[(self.edit.strip as usize).min(input.len())..]);
            }
            Apply::Copy => self.edit.apply(input, out),
        }
    }
}

/// Why a tracked outcome was not made a megaflow ([`Tracker::refusal`]).
pub fn refusal(t: &Tracker) -> Option<&'static str> {
    t.refusal()
}

/// The dependency bits of an outcome's effects (see [`Change::bit`]).
pub fn deps(ir: &Ir, effects: &[Effect]) -> u64 {
    let mut d = 0;
    for e in effects {
        d |= match *e {
            Effect::Table(t, _) => {
                Change::Table(t).bit() | ir.tables[t as usize].profile.map_or(0, |p| Change::Profile(p).bit())
            }
            Effect::Selector(p, _) => Change::Profile(p).bit() | Change::Ports.bit(),
            Effect::McastGroup(_) => Change::Mcast.bit(),
            Effect::CloneSession(_) => Change::Clone.bit(),
            Effect::ValueSet(s) => Change::ValueSet(s).bit(),
            Effect::Meter(..) => Change::Meters.bit(),
            Effect::Count(..) | Effect::Digest(_) => 0,
        };
    }
    d
}

/// The counters an outcome's effects credit, into `out` (cleared first).
pub fn replay_of(ir: &Ir, effects: &[Effect], out: &mut Vec<Replay>) {
    out.clear();
    out.extend(effects.iter().filter_map(|e| match *e {
        Effect::Table(t, Some(h)) => {
            Some(Replay::Hit { table: t, handle: h, direct: ir.tables[t as usize].direct_counter.is_some() })
        }
        Effect::Count(c, i) if i <= u32::MAX as Value => Some(Replay::Count { counter: c, index: i as u32 }),
        _ => None,
    }));
}

/// The key under which megaflows with equal outcomes share one copy of their
/// actions: a hash of the outputs (port and edit), drops, counters and meter
/// branches. Computed alike from built [`Actions`] ([`Actions::share_hash`]) and from
/// a tracked run ([`Tracked::share_hash`]), so that a new megaflow can find its
/// actions before building them.
fn share_hash<'a>(
    outputs: impl Iterator<Item = (u32, &'a Edit)>,
    drops: impl Iterator<Item = DropCause>,
    replay: &[Replay],
    metered: Option<&MeterBranch>,
) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    for (port, edit) in outputs {
        port.hash(&mut h);
        edit.hash(&mut h);
    }
    0xffu8.hash(&mut h);
    for d in drops {
        d.hash(&mut h);
    }
    replay.hash(&mut h);
    if let Some(b) = metered {
        (b.meter, b.cell, b.bytes).hash(&mut h);
        for c in &b.colors {
            c.share_hash().hash(&mut h);
        }
    }
    h.finish()
}

/// A tracked, cacheable outcome ([`refusal`] is `None`) before its actions are built:
/// the cache first looks for equal actions to share, and builds only when there are
/// none (most new megaflows of a busy switch have the actions of an existing one).
pub struct Tracked<'a> {
    /// The tracker after the run.
    pub tracker: &'a Tracker,
    /// Its counters ([`replay_of`] its effects).
    pub replay: &'a [Replay],
}

impl Tracked<'_> {
    fn outputs(&self) -> impl Iterator<Item = (u32, &Edit)> {
        self.tracker.fates.iter().filter_map(|f| match f {
            Fate::Output { port, edit, .. } => Some((*port, edit)),
            Fate::Drop(_) => None,
        })
    }

    fn drops(&self) -> impl Iterator<Item = DropCause> + '_ {
        self.tracker.fates.iter().filter_map(|f| match f {
            Fate::Drop(c) => Some(*c),
            Fate::Output { .. } => None,
        })
    }

    /// [`Actions::share_hash`] of the actions [`Tracked::build`] would build.
    pub fn share_hash(&self) -> u64 {
        share_hash(self.outputs(), self.drops(), &[], None)
    }

    /// Whether `a` are the actions [`Tracked::build`] would build.
    pub fn same_as(&self, a: &Actions) -> bool {
        a.metered.is_none()
            && a.replay.is_empty()
            && a.outputs.len() == self.outputs().count()
            && a.outputs.iter().zip(self.outputs()).all(|(o, (port, edit))| o.port == port && o.edit == *edit)
            && a.drops.iter().copied().eq(self.drops())
    }

    /// Build the actions, without the counters: the megaflow holds those
    /// ([`Replays`]), so that megaflows of different table entries share actions.
    pub fn build(self) -> Actions {
        let mut outputs = Vec::with_capacity(self.tracker.fates.len());
        let mut drops = vec![];
        for f in &self.tracker.fates {
            match f {
                // Cloned (exactly sized), not taken: the tracker reuses its edits.
                Fate::Output { port, edit, .. } => {
                    outputs.push(Output { port: *port, apply: compile_edit(edit), edit: edit.clone() })
                }
                Fate::Drop(c) => drops.push(*c),
            }
        }
        Actions { outputs: outputs.into(), drops: drops.into(), replay: Box::new([]), metered: None }
    }
}

impl Actions {
    /// The actions of a tracked, cacheable outcome ([`refusal`] is `None`).
    pub fn from_tracker(ir: &Ir, t: &mut Tracker) -> Actions {
        let mut replay = vec![];
        replay_of(ir, &t.effects, &mut replay);
        let mut a = Tracked { tracker: t, replay: &replay }.build();
        a.replay = replay.into();
        a
    }

    /// The key under which megaflows with equal actions share one copy.
    pub fn share_hash(&self) -> u64 {
        share_hash(
            self.outputs.iter().map(|o| (o.port, &o.edit)),
            self.drops.iter().copied(),
            &self.replay,
            self.metered.as_deref(),
        )
    }

    /// Outcomes that execute cell `cell` of meter `meter` first and continue with
    /// `colors[color]`.
    pub fn metered(meter: u32, cell: u32, bytes: bool, colors: [Actions; 3]) -> Actions {
        Actions {
            outputs: Box::new([]),
            drops: Box::new([]),
            replay: Box::new([]),
            metered: Some(Box::new(MeterBranch { meter, cell, bytes, colors })),
        }
    }

    /// The outcome for one packet of `len` bytes: for a metered flow, its meters
    /// executed (they count the color) at `now` in `rt`, the branch of each color
    /// taken and its counters credited for the packet (they differ per color, so
    /// they are not credited per group); for others, `self` (credited per group).
    #[inline]
    pub fn leaf<'a>(&'a self, rt: &mut Runtime, now: u64, len: u64) -> &'a Actions {
        if self.metered.is_none() {
            return self;
        }
        let mut a = self;
        while let Some(b) = &a.metered {
            let color = match rt.meters.get_mut(b.meter as usize).and_then(|c| c.get_mut(b.cell as usize)) {
                Some(Some(cell)) => {
                    let units = if b.bytes { len.min(u32::MAX as u64) as u32 } else { 1 };
                    cell.check(now, units, len) as usize
                }
                // Unconfigured since install (the change invalidates this megaflow
                // before the next packet; GREEN as the pipeline would).
                _ => 0,
            };
            a = &b.colors[color.min(2)];
        }
        a.replay_into(rt, 1, len);
        a
    }

    /// Credit the counter effects (table-entry hits, direct and indexed
    /// counters) for `packets` and `bytes`, as the pipeline would have counted them.
    pub fn replay_into(&self, rt: &mut Runtime, packets: u64, bytes: u64) {
        credit(&self.replay, rt, packets, bytes);
    }

    /// Every outcome of the flow: itself, or its branches' leaves.
    pub fn leaves(&self) -> Vec<&Actions> {
        match &self.metered {
            None => vec![self],
            Some(b) => b.colors.iter().flat_map(|c| c.leaves()).collect(),
        }
    }
}

/// Credit counters for `packets` and `bytes`, as the pipeline would have counted them.
#[inline]
pub fn credit(replay: &[Replay], rt: &mut Runtime, packets: u64, bytes: u64) {
    for r in replay.iter() {
        match *r {
            Replay::Hit { table, handle, direct } => {
                let t = &mut rt.tables[table as usize];
                if let Some(h) = t.hits.get_mut(handle as usize) {
                    *h += packets;
                }
                if direct {
                    if let Some(c) = t.direct_counters.get_mut(handle as usize) {
                        c.0 += packets;
                        c.1 += bytes;
                    }
                }
            }
            Replay::Count { counter, index } => {
                if let Some(c) = rt.counters[counter as usize].get_mut(index as usize) {
                    c.0 += packets;
                    c.1 += bytes;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn incremental_checksums_equal_plain_recomputation(
            mut bytes in proptest::collection::vec(any::<u8>(), 40..60),
            patches in proptest::collection::vec((0u16..40, any::<u8>(), any::<u8>()), 0..12),
            zero in any::<bool>(),
            one in any::<bool>(),
        ) {
            if zero {
                // The all-zero header: the one's-complement zero corner.
                bytes.iter_mut().take(20).for_each(|b| *b = 0);
            }
            let patches: Vec<BytePatch> = patches.into_iter().map(|(off, keep, set)| BytePatch { off, keep, set: set & !keep }).collect();
            let fix = [ChecksumFix { at: 0, len: 20, field_bit: 80 }, ChecksumFix { at: 20, len: 20, field_bit: 20 * 8 + 16 }];
            // One checksum (an IPv4 header: its own path) or two.
            let fix = if one { &fix[..1] } else { &fix[..] };
            let (mut a, mut b) = (bytes.clone(), bytes);
            // Merged per byte, as byte_patches makes them.
            let mut merged: Vec<BytePatch> = vec![];
            for p in patches {
                match merged.iter_mut().find(|m| m.off == p.off) {
                    Some(m) => { m.set = m.set & p.keep | p.set; m.keep &= p.keep; }
                    None => merged.push(p),
                }
            }
            merged.sort_by_key(|p| p.off);
            patch(&mut a, &Patches::new(&merged, fix), fix);
            patch_plain(&mut b, &merged, fix);
            prop_assert_eq!(a, b);
        }

        #[test]
        fn template_builds_what_the_segments_build(
            input in proptest::collection::vec(any::<u8>(), 64..100),
            strip in 0u32..64,
            segs in proptest::collection::vec((any::<bool>(), 0u32..64, 0u32..70, any::<u8>()), 0..6),
            patch_at in proptest::option::of(0u32..20),
        ) {
            // Copies inside the strip or not, of any length up to past the template,
            // constants of any length: the template exists exactly when the headers
            // fit it and every copy lies inside the strip, and then builds the same
            // bytes as the segment walk.
            let segments: Vec<Segment> = segs.iter().map(|&(copy, from, len, b)| {
                if copy { Segment::Copy { from, len: len.min(input.len() as u32 - from) } } else { Segment::Bytes(vec![b; len as usize]) }
            }).collect();
            let e = Edit { strip, segments, patches: patch_at.map(|at| Patch { bit: at * 8 + 3, width: 9, value: 0x1a5 }).into_iter().collect(), ..Edit::default() };
            let hdr = e.header_len() as usize;
            let o = Output::new(7, e.clone());
            let Apply::Rebuild { patches, template } = &o.apply else {
                // Not a rebuild (the same layout, or a patch beyond the headers).
                return Ok(());
            };
            let inside = e.segments.iter().all(|s| !matches!(s, Segment::Copy { from, len } if from + len > strip));
            prop_assert_eq!(template.is_some(), hdr <= TEMPLATE_MAX && inside);
            let Some(t) = template else { return Ok(()) };
            let mut want = vec![];
            o.headers(&input, patches, &mut want);
            let mut h = [0xeeu8; TEMPLATE_MAX];
            o.headers_from(t, &input, patches, &mut h);
            prop_assert_eq!(t.len(), hdr);
            prop_assert_eq!(&h[..hdr], &want[..]);
            let mut front = vec![0u8; hdr];
            put_headers(&mut front, &h);
            prop_assert_eq!(front, want);
        }
    }

    #[test]
    fn long_runs_of_constant_bytes_split_and_apply_whole() {
        // 40 constant bytes from offset 3, and one masked byte after a gap.
        let mut all: Vec<BytePatch> = (0..40u16).map(|i| BytePatch { off: 3 + i, keep: 0, set: i as u8 + 1 }).collect();
        all.push(BytePatch { off: 50, keep: 0x0f, set: 0xa0 });
        let p = Patches::new(&all, &[]);
        let lens: Vec<(u16, usize)> = p.runs.iter().map(|r| (r.off, r.bytes().len())).collect();
        assert_eq!(lens, [(3, RUN_MAX), (19, RUN_MAX), (35, 8)]);
        assert_eq!((p.bytes.len(), p.len()), (1, 41));
        let mut b = vec![0x55u8; 60];
        patch(&mut b, &p, &[]);
        let mut want = vec![0x55u8; 60];
        want[3..43].iter_mut().enumerate().for_each(|(i, x)| *x = i as u8 + 1);
        want[50] = 0xa5;
        assert_eq!(b, want);
    }

    #[test]
    fn byte_patches_merge_bit_fields() {
        // A 4-bit field at bit 4 and an 8-bit field at bit 8.
        let (mut keep, mut set, mut out) = ([0; 2], [0; 2], [BytePatch { off: 9, keep: 9, set: 9 }; 2]);
        let patches = [Patch { bit: 4, width: 4, value: 0xa }, Patch { bit: 8, width: 8, value: 0x5c }];
        let n = byte_patches(&patches, &mut keep, &mut set, &mut out);
        let p = &out[..n];
        assert_eq!(p, &[BytePatch { off: 0, keep: 0xf0, set: 0x0a }, BytePatch { off: 1, keep: 0, set: 0x5c }]);
        let mut b = [0xffu8, 0xff, 0xff];
        patch(&mut b, &Patches::new(p, &[]), &[]);
        assert_eq!(compile_patches(&patches, &[]), Patches::new(p, &[]));
        assert_eq!(b, [0xfa, 0x5c, 0xff]);
    }

    #[test]
    fn edits_compile_to_the_cheapest_form_and_render_like_apply() {
        let input: Vec<u8> = (0..40).collect();
        let fix = ChecksumFix { at: 0, len: 20, field_bit: 80 };
        let cases = [
            Edit {
                strip: 20,
                segments: vec![Segment::Copy { from: 0, len: 20 }],
                patches: vec![Patch { bit: 64, width: 8, value: 7 }],
                checksums: vec![fix],
                truncate: None,
                len_patches: vec![],
            },
            Edit {
                strip: 20,
                segments: vec![Segment::Bytes(vec![9; 4]), Segment::Copy { from: 0, len: 20 }],
                patches: vec![Patch { bit: 0, width: 16, value: 0xbeef }],
                checksums: vec![],
                truncate: None,
                len_patches: vec![],
            },
            Edit { strip: 10, segments: vec![Segment::Copy { from: 4, len: 6 }], truncate: Some(9), ..Edit::default() },
        ];
        let kinds: Vec<_> = cases.iter().map(|e| std::mem::discriminant(&compile_edit(e))).collect();
        assert_eq!(
            kinds,
            [
                std::mem::discriminant(&Apply::InPlace { patches: Patches::default() }),
                std::mem::discriminant(&Apply::Rebuild { patches: Patches::default(), template: None }),
                std::mem::discriminant(&Apply::Copy),
            ]
        );
        for e in cases {
            let o = Output { port: 1, apply: compile_edit(&e), edit: e.clone() };
            let (mut a, mut b) = (vec![], vec![]);
            o.render(&input, &mut a);
            e.apply(&input, &mut b);
            assert_eq!(a, b, "{e:?}");
        }
    }
}
