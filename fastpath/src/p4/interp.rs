//! The interpreter: runs a compiled program on one packet, as BMv2's simple_switch
//! runs v1model.
//!
//! One [`Interp`] per worker holds every buffer a packet needs (field values, validity,
//! the expression stack, output buffers), so running a packet allocates nothing once
//! the buffers have grown to the program's needs.
//!
//! # The architecture, as simple_switch does it
//! 1. Parse (standard metadata reset; `ingress_port`, `packet_length`, `instance_type`
//!    set), verify checksums (a failure sets `checksum_error`), run ingress.
//! 2. Traffic manager, in simple_switch's order: an I2E clone re-parses the *original*
//!    packet, keeps the field list's metadata and goes to egress for each replica of
//!    its session; a digest is sampled; `resubmit` restarts ingress with the original
//!    packet (field list kept); `mcast_grp != 0` replicates to the group; otherwise
//!    `egress_spec == 511` drops, else the packet goes to egress on `egress_spec`.
//! 3. Egress: an E2E clone requested by egress takes the headers as egress left them
//!    (before checksums and deparsing), resets the metadata but its field list, and
//!    goes through egress again on each port of its session, as `EGRESS_CLONE`, after
//!    the copy that cloned it, which goes on: `egress_spec == 511` drops it; checksums
//!    are updated, headers deparsed, the packet truncated if asked; `recirculate` sends
//!    the deparsed packet back to ingress.
//! 4. At most [`MAX_PASSES`] passes through ingress (resubmit + recirculate); beyond,
//!    the packet is dropped with [`DropCause::PassLimit`]. E2E clones of E2E clones
//!    nest at most [`MAX_E2E_DEPTH`] deep (simple_switch has no limit), the same cause.
//!
//! Differences from simple_switch, by design or not yet done: a recirculated packet
//! keeps its original `ingress_port`; when several copies of one packet recirculate,
//! only the last one does; a parser loop stops after 1000 states with `ParserTimeout`.
//!
//! A tracked run whose outcome will be cached (the miss path) does not deparse the
//! packet's last copy: the packet leaves by the megaflow's actions
//! ([`super::track::Track::needs_bytes`]; the bytes are made after all if the tracker
//! refuses while building the copy's edit).
//!
//! Deparsing copies an extracted header's received bytes and writes over them only the
//! fields written since (a per-header mask of written fields); a whole-header checksum
//! (IPv4's) of such a header is updated from the written fields' old and new values
//! (RFC 1624's incremental update) instead of being summed again. An untracked run's
//! table lookups skip what only tracking needs (the LPM prefix trie's walk).
//!
//! Parser errors do not drop: as in BMv2, parsing stops, `parser_error` is set and
//! ingress runs. Meters color with `rte_meter` ([`super::meters`]) at [`Interp::now`];
//! an unconfigured meter marks GREEN.

use super::bits::{self, read_bits, write_bits, BitWriter};
use super::ir::*;
use super::tables::{EntryAction, Runtime};
use super::track::{NoTrack, Phase, Track};

mod deparse;

/// Most passes through ingress per received packet (first + resubmits/recirculations).
pub const MAX_PASSES: u32 = 6;

/// Most nested egress-to-egress clones (a clone of a clone of ...) per copy.
pub const MAX_E2E_DEPTH: usize = 4;

/// v1model meter colors.
pub const GREEN: Value = 0;

/// Bytes of room behind a header in a scratch buffer, so that [`write_bits`] can take
/// its fixed-size fast path for the header's last fields.
const SLACK: usize = 16;

/// A header's dirty mask when it must be written whole from its fields.
const ALL_DIRTY: u64 = ALL_FIELDS;

/// Why a copy of a packet was dropped by the program or the architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropCause {
    /// `egress_spec` was the drop port (511) after ingress (`mark_to_drop`, or set).
    Ingress,
    /// `egress_spec` was the drop port after egress.
    Egress,
    /// `mcast_grp` names a group with no replicas or that does not exist.
    NoMcastGroup,
    /// More than [`MAX_PASSES`] passes through ingress, or E2E clones nested more
    /// than [`MAX_E2E_DEPTH`] deep.
    PassLimit,
    /// An `assert`/`assume` failed.
    Assert,
}

/// A packet leaving the pipeline.
#[derive(Debug, Clone, Default)]
pub struct OutPacket {
    /// P4 output port.
    pub port: u32,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// `instance_type` in egress (normal, clone, replica, ...).
    pub instance: Value,
    /// When the bytes are new headers followed by the received packet's payload:
    /// how many received bytes the headers replace. `None` after truncation or
    /// recirculation (the bytes are the whole packet).
    pub strip: Option<u32>,
}

/// A digest sample.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestSample {
    /// Learn list index.
    pub list: u32,
    /// Values of its fields.
    pub values: Vec<Value>,
}

/// Everything one received packet produced.
#[derive(Debug, Default)]
pub struct Outputs {
    packets: Vec<OutPacket>,
    used: usize,
    /// Digests sampled: the first `sampled` (the rest keep their storage for reuse).
    digests: Vec<DigestSample>,
    sampled: usize,
    /// Copies dropped, with why.
    pub drops: Vec<DropCause>,
}

impl Outputs {
    fn clear(&mut self) {
        self.used = 0;
        self.sampled = 0;
        self.drops.clear();
    }

    /// Digests sampled, in order.
    pub fn digests(&self) -> &[DigestSample] {
        &self.digests[..self.sampled]
    }

    /// Record a sample of `list` (no allocation once a run has sampled as many).
    fn sample(&mut self, list: u32, values: impl Iterator<Item = Value>) {
        if self.sampled == self.digests.len() {
            self.digests.push(DigestSample::default());
        }
        let d = &mut self.digests[self.sampled];
        d.list = list;
        d.values.clear();
        d.values.extend(values);
        self.sampled += 1;
    }

    /// Packets produced, in order.
    pub fn packets(&self) -> &[OutPacket] {
        &self.packets[..self.used]
    }

    fn next(&mut self) -> &mut OutPacket {
        if self.used == self.packets.len() {
            self.packets.push(OutPacket::default());
        }
        self.used += 1;
        let p = &mut self.packets[self.used - 1];
        p.bytes.clear();
        p
    }
}

/// A table's verdict before the action runs.
#[derive(Debug, Clone, Copy)]
enum Resolved {
    Nothing,
    Slot(usize),
    Member(u32),
    Group(u32),
}

/// Pending architecture requests raised by primitives during one pipeline run.
#[derive(Debug, Default, Clone, Copy)]
struct Requests {
    clone: Option<(Value, Option<u32>)>,
    resubmit: Option<Option<u32>>,
    recirculate: Option<Option<u32>>,
    digest: Option<u32>,
    truncate: Option<Value>,
    exit: bool,
    assert_failed: bool,
}

/// A snapshot of the packet state (for replicas and clones).
#[derive(Debug, Default, Clone)]
struct Snapshot {
    values: Vec<Value>,
    valid: Vec<bool>,
    src: Vec<u32>,
    dirty: Vec<u64>,
    next: Vec<u32>,
    vlen: Vec<u16>,
    vbytes: Vec<u8>,
}

/// Per-worker interpreter state.
#[derive(Debug)]
pub struct Interp {
    values: Vec<Value>,
    valid: Vec<bool>,
    /// Per header: byte offset it was extracted at + 1 (0: not from the packet).
    src: Vec<u32>,
    /// Per header: its fields written since extraction, one bit per field in
    /// declaration order ([`HeaderDef::field_bit`]); [`ALL_DIRTY`] when the header as a whole
    /// was (made valid, a varbit assigned). Deparsing and whole-header checksums copy
    /// an extracted header's received bytes and write only its dirty fields.
    dirty: Vec<u64>,
    /// Per header stack: its next index.
    next: Vec<u32>,
    /// Per header: bytes in its varbit field this packet.
    vlen: Vec<u16>,
    /// The varbit fields' bytes (each at its [`Varbit::base`]).
    vbytes: Vec<u8>,
    stack: Vec<Value>,
    args: Vec<Value>,
    hashbuf: Vec<u8>,
    key: [Value; MAX_KEYS],
    snap: Snapshot,
    /// Per E2E clone depth: the state egress left and the clone's field list.
    e2e: Vec<(Snapshot, Vec<(FieldId, Value)>)>,
    preserved: Vec<(FieldId, Value)>,
    kept: Vec<(FieldId, Value)>,
    /// The packet currently in ingress (original or recirculated).
    current: Vec<u8>,
    recirc: Vec<u8>,
    payload: usize,
    req: Requests,
    first_pass: bool,
    /// The copy entering egress is the pass's unicast copy (no replicas follow it).
    unicast: bool,
    /// Results of the last [`Interp::run`].
    pub out: Outputs,
    /// The time meters see (TSC cycles), set by the caller before a run.
    pub now: u64,
    /// A dry run ([`Interp::dry_run`]): no state changes, forced meter colors.
    dry: bool,
    /// The colors a dry run's configured meters return, in execution order (GREEN
    /// past the end).
    forced: Vec<Value>,
    /// Configured meters executed so far in this run.
    forced_at: usize,
}

struct Pkt<'a> {
    data: &'a [u8],
    cursor: usize,
}

impl Interp {
    /// Color a packet of `len` bytes with cell `cell` of meter `m`: GREEN when the
    /// cell is unconfigured (or out of range), else its marker's color (in a dry run,
    /// the forced color) — a *meter point* the cached outcome branches on.
    fn meter<T: Track>(&mut self, ir: &Ir, rt: &mut Runtime, m: u32, cell: usize, len: u64, t: &mut T) -> Value {
        let Some(Some(c)) = rt.meters.get_mut(m as usize).and_then(|cells| cells.get_mut(cell)) else {
            return GREEN;
        };
        t.metered(m, cell as u32);
        if self.dry {
            let k = self.forced_at;
            self.forced_at += 1;
            return self.forced.get(k).copied().unwrap_or(GREEN);
        }
        let units = if ir.meters[m as usize].bytes { len.min(u32::MAX as u64) as u32 } else { 1 };
        c.check(self.now, units, len)
    }

    /// A field's value as the last copy left it (tests).
    #[cfg(test)]
    pub(crate) fn value_of(&self, ir: &Ir, field: &str) -> Value {
        self.values[ir.field(field).unwrap_or_else(|| panic!("no field {field}")) as usize]
    }

    /// State sized for `ir`.
    pub fn new(ir: &Ir) -> Interp {
        Interp {
            values: vec![0; ir.fields.len()],
            valid: vec![false; ir.headers.len()],
            src: vec![0; ir.headers.len()],
            dirty: vec![0; ir.headers.len()],
            next: vec![0; ir.stacks.len()],
            vlen: vec![0; ir.headers.len()],
            vbytes: vec![0; ir.headers.iter().filter_map(|h| h.varbit).map(|v| v.max_bytes as usize).sum()],
            stack: Vec::with_capacity(64),
            args: Vec::with_capacity(16),
            hashbuf: vec![0; 64],
            key: [0; MAX_KEYS],
            snap: Snapshot::default(),
            e2e: vec![],
            preserved: vec![],
            kept: vec![],
            current: Vec::with_capacity(2048),
            recirc: Vec::with_capacity(2048),
            payload: 0,
            req: Requests::default(),
            first_pass: true,
            unicast: false,
            out: Outputs::default(),
            now: 0,
            dry: false,
            forced: Vec::with_capacity(4),
            forced_at: 0,
        }
    }

    fn reset(&mut self, ir: &Ir) {
        self.values.iter_mut().for_each(|v| *v = 0);
        // The per-header state in one pass: a few headers each, where separate
        // fills were a `memset` call apiece.
        let per_header = self.valid.iter_mut().zip(&mut self.src).zip(&mut self.dirty).zip(&mut self.vlen);
        for ((((valid, src), dirty), vlen), h) in per_header.zip(&ir.headers) {
            (*valid, *src, *dirty, *vlen) = (h.metadata, 0, 0, 0);
        }
        self.next.iter_mut().for_each(|n| *n = 0);
        self.req = Requests::default();
    }

    /// Mark `h` valid; the other members of its union, if any, become invalid.
    fn make_valid(&mut self, ir: &Ir, h: HeaderId) {
        self.valid[h as usize] = true;
        if let Some(u) = ir.headers[h as usize].union {
            for &m in &ir.unions[u as usize].headers {
                if m != h {
                    self.valid[m as usize] = false;
                }
            }
        }
    }

    /// `dst = src` for headers of one type (BMv2's `assign_header`): the fields, where
    /// they came from, and validity (an invalid source makes `dst` invalid).
    fn copy_header<T: Track>(&mut self, ir: &Ir, dst: HeaderId, src: HeaderId, t: &mut T) {
        let (d, sr) = (&ir.headers[dst as usize], &ir.headers[src as usize]);
        for (fd, fs) in d.fields.clone().zip(sr.fields.clone()) {
            self.values[fd as usize] = self.values[fs as usize];
            t.copied_field(ir, fd, fs);
        }
        self.copy_varbit(ir, dst, src);
        // Same type, same bytes: a clean extracted source is still the packet's bytes.
        self.src[dst as usize] = self.src[src as usize];
        self.dirty[dst as usize] = self.dirty[src as usize];
        if self.valid[src as usize] {
            self.make_valid(ir, dst);
        } else {
            self.valid[dst as usize] = false;
        }
    }

    /// The varbit bytes of `src` into `dst` (no-op without varbit fields).
    fn copy_varbit(&mut self, ir: &Ir, dst: HeaderId, src: HeaderId) {
        if let (Some(d), Some(sv)) = (ir.headers[dst as usize].varbit, ir.headers[src as usize].varbit) {
            let n = (self.vlen[src as usize] as usize).min(d.max_bytes as usize);
            self.vbytes.copy_within(sv.base as usize..sv.base as usize + n, d.base as usize);
            self.vlen[dst as usize] = n as u16;
        }
    }

    /// Exchange two headers of one type (fields, validity, origin), as BMv2's stacks
    /// shift their elements.
    fn swap_headers<T: Track>(&mut self, ir: &Ir, a: HeaderId, b: HeaderId, t: &mut T) {
        for (fa, fb) in ir.headers[a as usize].fields.clone().zip(ir.headers[b as usize].fields.clone()) {
            self.values.swap(fa as usize, fb as usize);
        }
        self.valid.swap(a as usize, b as usize);
        self.src.swap(a as usize, b as usize);
        self.dirty.swap(a as usize, b as usize);
        if let (Some(va), Some(vb)) = (ir.headers[a as usize].varbit, ir.headers[b as usize].varbit) {
            let n = va.max_bytes.min(vb.max_bytes) as usize;
            for k in 0..n {
                self.vbytes.swap(va.base as usize + k, vb.base as usize + k);
            }
            self.vlen.swap(a as usize, b as usize);
        }
        t.swapped_headers(ir, a, b);
    }

    /// `push_front(n)` as BMv2 does it for P4_16.
    fn push_front<T: Track>(&mut self, ir: &Ir, stack: u32, n: u32, t: &mut T) {
        let el = &ir.stacks[stack as usize].headers;
        let (size, n) = (el.len(), n as usize);
        if n == 0 {
            return;
        }
        self.next[stack as usize] = (self.next[stack as usize] as usize + n).min(size) as u32;
        for i in (n..size).rev() {
            self.swap_headers(ir, el[i], el[i - n], t);
        }
        for &h in &el[..n.min(size)] {
            self.valid[h as usize] = false;
        }
    }

    /// `pop_front(n)` as BMv2 does it for P4_16.
    fn pop_front<T: Track>(&mut self, ir: &Ir, stack: u32, n: u32, t: &mut T) {
        let el = &ir.stacks[stack as usize].headers;
        let (size, n) = (el.len(), n as usize);
        if n == 0 {
            return;
        }
        let next = &mut self.next[stack as usize];
        *next -= (*next).min(n as u32);
        let moved = size.saturating_sub(n);
        for i in 0..moved {
            self.swap_headers(ir, el[i], el[i + n], t);
        }
        for &h in &el[moved..] {
            self.valid[h as usize] = false;
        }
    }

    /// The field `field` of element `index` of a stack, if the index is in range.
    fn stack_field(ir: &Ir, stack: u32, index: Value, field: u32) -> Option<FieldId> {
        let h = *ir.stacks[stack as usize].headers.get(usize::try_from(index).ok()?)?;
        Some(ir.headers[h as usize].fields.start + field)
    }

    fn set(&mut self, ir: &Ir, f: FieldId, v: Value) {
        let def = &ir.fields[f as usize];
        self.values[f as usize] = v & def.mask;
        self.dirty[def.header as usize] |= def.set_bit;
    }

    /// Run `data` as [`Interp::run`] would, but without changing any state (table
    /// hit counts, counters, registers and meters stay as they are) and with the
    /// configured meters returning `colors` in execution order (GREEN past its end):
    /// what the packet's outcome would be with those colors. The cache explores a
    /// metered flow's other colors this way.
    pub fn dry_run<T: Track>(
        &mut self,
        ir: &Ir,
        rt: &mut Runtime,
        data: &[u8],
        in_port: u32,
        colors: &[Value],
        t: &mut T,
    ) {
        self.dry = true;
        self.forced.clear();
        self.forced.extend_from_slice(colors);
        self.run(ir, rt, data, in_port, t);
        self.dry = false;
    }

    /// Run one received packet through the program. Results are in [`Interp::out`].
    pub fn run<T: Track>(&mut self, ir: &Ir, rt: &mut Runtime, data: &[u8], in_port: u32, t: &mut T) {
        self.out.clear();
        self.forced_at = 0;
        self.preserved.clear();
        let mut instance = instance::NORMAL;
        // The received bytes are read in place; only a recirculated packet needs a
        // buffer of its own (`current`, filled from `recirc`).
        let mut recirculated = false;
        for pass in 0..MAX_PASSES {
            if pass > 0 {
                t.uncacheable("resubmit or recirculate");
            }
            self.first_pass = pass == 0;
            let again = if recirculated {
                let cur = std::mem::take(&mut self.current);
                let r = self.ingress_pass(ir, rt, &cur, in_port, instance, t);
                self.current = cur;
                r
            } else {
                self.ingress_pass(ir, rt, data, in_port, instance, t)
            };
            match again {
                None => return,
                Some(next) => {
                    if next == instance::RECIRC {
                        std::mem::swap(&mut self.current, &mut self.recirc);
                        recirculated = true;
                    }
                    instance = next;
                }
            }
        }
        self.out.drops.push(DropCause::PassLimit);
    }

    /// One pass: parse, ingress, traffic manager, egress. Returns the instance type of
    /// the next pass when the packet is resubmitted or recirculated.
    fn ingress_pass<T: Track>(
        &mut self,
        ir: &Ir,
        rt: &mut Runtime,
        data: &[u8],
        in_port: u32,
        inst: Value,
        t: &mut T,
    ) -> Option<Value> {
        self.start_packet(ir, rt, data, in_port, inst, t);
        t.phase(Phase::Ingress);
        self.control(ir, rt, ir.ingress, data, t);
        let req = self.req;
        if req.assert_failed {
            self.out.drops.push(DropCause::Assert);
            return None;
        }
        let need_snapshot = req.clone.is_some() || self.mcast(ir) != 0;
        if need_snapshot {
            self.save();
            t.save();
        }
        // I2E clone: the original packet, re-parsed, with the field list kept.
        if let Some((session, fl)) = req.clone {
            t.clone_session(session as u32);
            let mut kept = std::mem::take(&mut self.kept);
            Self::field_list_into(&self.values, ir, fl, &mut kept);
            let n = rt.clone_sessions.get(&(session as u32)).map_or(0, |(r, _)| r.len());
            {
                for i in 0..n {
                    let Some((port, rid, trunc)) = rt
                        .clone_sessions
                        .get(&(session as u32))
                        .and_then(|(r, tr)| r.get(i).map(|(p, x)| (*p, *x, *tr)))
                    else {
                        break;
                    };
                    self.start_packet(ir, rt, data, in_port, instance::INGRESS_CLONE, t);
                    for (f, v) in kept.iter() {
                        self.values[*f as usize] = *v;
                        t.kept_field(*f);
                    }
                    self.req = Requests::default();
                    if trunc > 0 {
                        self.req.truncate = Some(trunc as Value);
                    }
                    self.egress(ir, rt, port, rid, instance::INGRESS_CLONE, data, t, 0);
                }
            }
            self.kept = kept;
            self.restore();
            t.restore();
        }
        if let Some(list) = req.digest {
            let values = ir.learn_lists[list as usize].fields.iter().map(|f| self.values[*f as usize]);
            self.out.sample(list, values);
        }
        if let Some(fl) = req.resubmit {
            Self::field_list_into(&self.values, ir, fl, &mut self.preserved);
            return Some(instance::RESUBMIT);
        }
        let mgid = self.mcast(ir);
        if let Some(f) = ir.std.mcast_grp {
            // The traffic manager's decision (replicate or not, which group) reads it.
            t.read_field(f, Value::MAX);
        }
        let mut next = None;
        if mgid != 0 {
            t.mcast_group(mgid as u32);
            let n = rt.mcast.get(&(mgid as u32)).map_or(0, Vec::len);
            match n {
                0 => self.out.drops.push(DropCause::NoMcastGroup),
                n => {
                    for i in 0..n {
                        // Looked up again per replica: egress may touch the runtime.
                        let Some(&(port, rid)) = rt.mcast.get(&(mgid as u32)).and_then(|r| r.get(i)) else { break };
                        self.restore();
                        t.restore();
                        self.req = Requests { truncate: req.truncate, ..Requests::default() };
                        if let Some(n) = self.egress(ir, rt, port, rid, instance::REPLICATION, data, t, 0) {
                            next = Some(n);
                        }
                    }
                }
            }
        } else {
            let spec = self.values[ir.std.egress_spec as usize];
            t.read_field(ir.std.egress_spec, Value::MAX);
            if spec == DROP_PORT {
                self.out.drops.push(DropCause::Ingress);
            } else {
                self.req = Requests { truncate: req.truncate, ..Requests::default() };
                self.unicast = true;
                next = self.egress(ir, rt, spec as u32, 0, instance::NORMAL, data, t, 0);
            }
        }
        next
    }

    fn mcast(&self, ir: &Ir) -> Value {
        ir.std.mcast_grp.map(|f| self.values[f as usize]).unwrap_or(0)
    }

    /// The field list's current values, into a reused buffer.
    fn field_list_into(values: &[Value], ir: &Ir, fl: Option<u32>, out: &mut Vec<(FieldId, Value)>) {
        out.clear();
        if let Some(l) = fl {
            out.extend(ir.field_lists[l as usize].fields.iter().map(|f| (*f, values[*f as usize])));
        }
    }

    fn save(&mut self) {
        let mut snap = std::mem::take(&mut self.snap);
        self.save_into(&mut snap);
        self.snap = snap;
    }

    fn restore(&mut self) {
        let snap = std::mem::take(&mut self.snap);
        self.restore_from(&snap);
        self.snap = snap;
    }

    fn save_into(&self, snap: &mut Snapshot) {
        snap.values.clone_from(&self.values);
        snap.valid.clone_from(&self.valid);
        snap.src.clone_from(&self.src);
        snap.dirty.clone_from(&self.dirty);
        snap.next.clone_from(&self.next);
        snap.vlen.clone_from(&self.vlen);
        snap.vbytes.clone_from(&self.vbytes);
    }

    fn restore_from(&mut self, snap: &Snapshot) {
        self.values.clone_from(&snap.values);
        self.valid.clone_from(&snap.valid);
        self.src.clone_from(&snap.src);
        self.dirty.clone_from(&snap.dirty);
        self.next.clone_from(&snap.next);
        self.vlen.clone_from(&snap.vlen);
        self.vbytes.clone_from(&snap.vbytes);
    }

    /// Reset, set the standard metadata, parse, verify checksums.
    fn start_packet<T: Track>(&mut self, ir: &Ir, rt: &Runtime, data: &[u8], in_port: u32, inst: Value, t: &mut T) {
        self.reset(ir);
        let s = ir.std;
        self.values[s.ingress_port as usize] = in_port as Value & ir.fields[s.ingress_port as usize].mask;
        self.values[s.packet_length as usize] = data.len() as Value;
        self.values[s.instance_type as usize] = inst;
        for &(f, v) in &self.preserved {
            self.values[f as usize] = v;
        }
        self.preserved.clear();
        t.phase(Phase::Parse);
        t.start(ir, data.len());
        self.parse(ir, rt, data, t);
        for ck in &ir.verify_checksums {
            if let Some(c) = &ck.cond {
                if self.eval(ir, c, &[], &Pkt { data, cursor: 0 }, t) == 0 {
                    continue;
                }
            }
            let received = self.received(ir, ck);
            let computed = self.checksum_of(ir, ck, data, received);
            let got = self.values[ck.field as usize];
            t.checksum_verified(ir, ck, received);
            if computed != got {
                if let Some(e) = s.checksum_error {
                    self.values[e as usize] = 1;
                }
            }
        }
    }

    fn parse<T: Track>(&mut self, ir: &Ir, rt: &Runtime, data: &[u8], t: &mut T) {
        let mut pkt = Pkt { data, cursor: 0 };
        let mut state = Some(ir.start_state);
        let mut steps = 0;
        let error =
            |ir: &Ir, name: &str| ir.errors.iter().find(|(n, _)| n == name).map(|(_, v)| *v as Value).unwrap_or(0);
        'states: while let Some(s) = state {
            steps += 1;
            if steps > 1000 {
                // A parser loop: BMv2 would spin; stop with an error instead.
                self.parser_error(ir, error(ir, "ParserTimeout"));
                break;
            }
            let sd = &ir.states[s as usize];
            for op in &sd.ops {
                match op {
                    ParseOp::Extract(h) => {
                        if !self.extract(ir, *h, &mut pkt, t) {
                            self.parser_error(ir, error(ir, "PacketTooShort"));
                            break 'states;
                        }
                    }
                    ParseOp::ExtractVarbit(h, bits) => {
                        let bits = self.eval(ir, bits, &[], &pkt, t);
                        if let Err(e) = self.extract_varbit(ir, *h, bits, &mut pkt, t) {
                            self.parser_error(ir, error(ir, e));
                            break 'states;
                        }
                    }
                    ParseOp::ExtractNext(st) => {
                        let next = self.next[*st as usize] as usize;
                        let Some(&h) = ir.stacks[*st as usize].headers.get(next) else {
                            self.parser_error(ir, error(ir, "StackOutOfBounds"));
                            break 'states;
                        };
                        if !self.extract(ir, h, &mut pkt, t) {
                            self.parser_error(ir, error(ir, "PacketTooShort"));
                            break 'states;
                        }
                        self.next[*st as usize] += 1;
                    }
                    ParseOp::Advance(e) => {
                        let bits = self.eval(ir, e, &[], &pkt, t).min(usize::MAX as Value) as usize;
                        if !bits.is_multiple_of(8) {
                            self.parser_error(ir, error(ir, "ParserInvalidArgument"));
                            break 'states;
                        }
                        if pkt.cursor.saturating_add(bits / 8) > data.len() {
                            t.length_dependent();
                            self.parser_error(ir, error(ir, "PacketTooShort"));
                            break 'states;
                        }
                        pkt.cursor += bits / 8;
                    }
                    ParseOp::Verify { cond, error: err } => {
                        if self.eval(ir, cond, &[], &pkt, t) == 0 {
                            let code = self.eval(ir, err, &[], &pkt, t);
                            self.parser_error(ir, code);
                            break 'states;
                        }
                    }
                    ParseOp::Stmt(st) => {
                        self.stmt(ir, None, st, &[], &pkt, t);
                    }
                }
            }
            // Select.
            let mut key: Value = 0;
            for (e, w) in &sd.key {
                let v = self.eval(ir, e, &[], &pkt, t);
                key = if *w >= 128 { v } else { (key << w) | (v & mask_of(*w)) };
            }
            let mut next = None;
            for tr in &sd.transitions {
                let hit = match tr.kind {
                    TransitionKind::Default => true,
                    TransitionKind::Value { value, mask } => key & mask == value,
                    TransitionKind::ValueSet { set, mask } => {
                        t.value_set(set);
                        rt.value_sets[set as usize].iter().any(|(v, m)| key & mask & m == v & m)
                    }
                };
                if hit {
                    next = Some(tr.next);
                    break;
                }
            }
            match next {
                Some(n) => state = n,
                None => {
                    // No transition matched: BMv2 rejects with NoMatch.
                    self.parser_error(ir, error(ir, "NoMatch"));
                    break;
                }
            }
        }
        self.payload = pkt.cursor.min(data.len());
        t.parsed(self.payload);
    }

    /// Extract header `h` at the cursor; false (nothing changed) if the packet is too
    /// short.
    fn extract<T: Track>(&mut self, ir: &Ir, h: HeaderId, pkt: &mut Pkt, t: &mut T) -> bool {
        let hd = &ir.headers[h as usize];
        let end = pkt.cursor + hd.bytes as usize;
        if end > pkt.data.len() {
            t.length_dependent();
            return false;
        }
        self.extract_at(ir, h, pkt, 0, t);
        true
    }

    /// Extract header `h` with `bits` bits in its varbit field, or the error's name.
    fn extract_varbit<T: Track>(
        &mut self,
        ir: &Ir,
        h: HeaderId,
        bits: Value,
        pkt: &mut Pkt,
        t: &mut T,
    ) -> Result<(), &'static str> {
        let hd = &ir.headers[h as usize];
        let vb = hd.varbit.expect("compiled for varbit headers only");
        if !bits.is_multiple_of(8) {
            return Err("ParserInvalidArgument");
        }
        let vl = (bits / 8).min(u32::MAX as Value) as usize;
        if pkt.cursor.saturating_add(hd.bytes as usize).saturating_add(vl) > pkt.data.len() {
            t.length_dependent();
            return Err("PacketTooShort");
        }
        if vl > vb.max_bytes as usize {
            return Err("HeaderTooShort");
        }
        self.extract_at(ir, h, pkt, vl, t);
        Ok(())
    }

    /// Extract `h` (known to fit) with `vl` varbit bytes and advance past it.
    fn extract_at<T: Track>(&mut self, ir: &Ir, h: HeaderId, pkt: &mut Pkt, vl: usize, t: &mut T) {
        let hd = &ir.headers[h as usize];
        let fields = hd.fields.start as usize..hd.fields.end as usize;
        let at = pkt.cursor * 8;
        let span = pkt.data.get(pkt.cursor..pkt.cursor + hd.load_span as usize);
        match span {
            // The precomputed loads: per field one 8-byte load and two shifts, where
            // `read_bits` also works out where and how wide (Ethernet and IPv4: 918 ->
            // 766 instructions per flow setup with the tracker's part, by callgrind).
            Some(b) if !hd.loads.is_empty() => {
                for (v, l) in self.values[fields].iter_mut().zip(&hd.loads) {
                    let at = l.byte as usize;
                    let w = u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"));
                    *v = ((w << l.lead) >> l.rshift) as Value;
                }
            }
            // Zipped slices: one bounds check per header, not two per field.
            _ => {
                for (v, fd) in self.values[fields.clone()].iter_mut().zip(&ir.fields[fields]) {
                    if fd.width > 0 {
                        *v = read_bits(pkt.data, at + fd.bit_offset as usize, fd.width);
                    }
                }
            }
        }
        if let Some(vb) = hd.varbit {
            let from = pkt.cursor + hd.bytes as usize;
            self.vbytes[vb.base as usize..vb.base as usize + vl].copy_from_slice(&pkt.data[from..from + vl]);
        }
        self.vlen[h as usize] = vl as u16;
        self.make_valid(ir, h);
        self.src[h as usize] = pkt.cursor as u32 + 1;
        self.dirty[h as usize] = 0;
        t.extracted(ir, h, pkt.cursor, vl);
        pkt.cursor += hd.bytes as usize + vl;
    }

    fn parser_error(&mut self, ir: &Ir, code: Value) {
        if let Some(f) = ir.std.parser_error {
            self.values[f as usize] = code;
        }
    }

    fn control<T: Track>(&mut self, ir: &Ir, rt: &mut Runtime, start: Option<Node>, data: &[u8], t: &mut T) {
        let mut node = start;
        let pkt = Pkt { data, cursor: self.payload };
        while let Some(n) = node {
            node = match n {
                Node::Cond(c) => {
                    let cd = &ir.conditionals[c as usize];
                    if self.eval(ir, &cd.expr, &[], &pkt, t) != 0 {
                        cd.true_next
                    } else {
                        cd.false_next
                    }
                }
                Node::Table(tid) => self.apply(ir, rt, tid, &pkt, t),
            };
            if self.req.exit || self.req.assert_failed {
                break;
            }
        }
        self.req.exit = false;
    }

    fn apply<T: Track>(&mut self, ir: &Ir, rt: &mut Runtime, tid: TableId, pkt: &Pkt, t: &mut T) -> Option<Node> {
        let def = &ir.tables[tid as usize];
        // Key values: plain (and constant-masked) fields are read untracked here and
        // tracked below, bit by bit, through the masks of the groups probed.
        for (i, k) in def.keys.iter().enumerate() {
            self.key[i] = match k.expr.ops.as_slice() {
                [Op::Field(f)] => self.values[*f as usize],
                [Op::Field(f), Op::Const(m), Op::Bin(BinOp::And)] => self.values[*f as usize] & m,
                [Op::Valid(h)] => self.valid[*h as usize] as Value,
                _ => self.eval(ir, &k.expr, &[], pkt, t),
            };
        }
        let n = def.keys.len();
        let ts = &rt.tables[tid as usize];
        let hit = ts.lookup(&self.key[..n], T::READS, |masks| {
            for (k, m) in def.keys.iter().zip(masks) {
                match k.expr.ops.as_slice() {
                    [Op::Field(f)] => t.read_field(*f, *m),
                    [Op::Field(f), Op::Const(c), Op::Bin(BinOp::And)] => t.read_field(*f, *m & c),
                    _ => {}
                }
            }
        });
        t.table_hit(tid, hit.map(|(h, _)| h));
        let pkt_len = self.values[ir.std.packet_length as usize] as u64;
        // What to run, without cloning the entry: a direct call's arguments are
        // copied into the reusable `args` buffer here.
        self.args.clear();
        let (action, hit_handle) = {
            let (a, h) = match hit {
                Some((h, e)) => (Some(&e.action), Some(h)),
                None => (ts.default.as_ref(), None),
            };
            let r = match a {
                None => Resolved::Nothing,
                Some(EntryAction::Call(c)) => {
                    // One push per argument: `extend_from_slice` is a `memcpy` call
                    // for one or two values.
                    for v in c.args.iter() {
                        self.args.push(*v);
                    }
                    Resolved::Slot(c.slot as usize)
                }
                Some(EntryAction::Member(m)) => Resolved::Member(*m),
                Some(EntryAction::Group(g)) => Resolved::Group(*g),
            };
            (r, h)
        };
        if let Some(h) = hit_handle {
            if !self.dry {
                let ts = &mut rt.tables[tid as usize];
                ts.hits[h as usize] += 1;
                if def.direct_counter.is_some() {
                    let c = &mut ts.direct_counters[h as usize];
                    c.0 += 1;
                    c.1 += pkt_len;
                }
            }
            if let Some(m) = def.direct_meter {
                if let Some(f) = ir.meters[m as usize].result {
                    t.meter(m, h as Value);
                    let color = self.meter(ir, rt, m, h as usize, pkt_len, t);
                    self.set(ir, f, color);
                    t.wrote_field(f);
                }
            }
        }
        // Resolve the action to run.
        let slot = match action {
            Resolved::Nothing => None,
            Resolved::Slot(s) => Some(s),
            Resolved::Member(m) => self.member(ir, rt, def, m),
            Resolved::Group(g) => {
                let prof = def.profile.expect("indirect tables have a profile") as usize;
                let hash = match &ir.profiles[prof].selector {
                    Some((algo, inputs)) => {
                        for (e, _) in inputs {
                            if let Some(f) = e.as_field() {
                                t.read_field(f, Value::MAX);
                            }
                        }
                        self.hash_of(ir, inputs, *algo)
                    }
                    None => 0,
                };
                t.selector(prof as u32, g);
                match rt.profiles[prof].groups.get(&g).and_then(|gr| gr.pick(hash)) {
                    Some(m) => self.member(ir, rt, def, m),
                    None => None,
                }
            }
        };
        if let Some(slot) = slot {
            let aid = def.actions[slot];
            let args = std::mem::take(&mut self.args);
            self.exec(ir, rt, &ir.actions[aid as usize].body, &args, pkt, t);
            self.args = args;
        }
        match (def.hit_next, def.miss_next) {
            (Some(h), Some(m)) => {
                if hit_handle.is_some() {
                    h
                } else {
                    m
                }
            }
            _ => match slot {
                Some(s) => def.action_next[s],
                None => def.base_next,
            },
        }
    }

    fn member(&mut self, ir: &Ir, rt: &Runtime, def: &TableDef, m: u32) -> Option<usize> {
        let prof = def.profile? as usize;
        let mem = rt.profiles[prof].members.get(&m)?;
        self.args.clear();
        self.args.extend_from_slice(&mem.args);
        let _ = ir;
        def.actions.iter().position(|a| *a == mem.action)
    }

    fn exec<T: Track>(&mut self, ir: &Ir, rt: &mut Runtime, body: &[Stmt], args: &[Value], pkt: &Pkt, t: &mut T) {
        let mut pc = 0;
        let mut budget = 100_000;
        while pc < body.len() {
            budget -= 1;
            if budget == 0 {
                break;
            }
            match &body[pc] {
                Stmt::Jump(to) => {
                    pc = *to as usize;
                    continue;
                }
                Stmt::JumpIfZero(c, to) => {
                    if self.eval(ir, c, args, pkt, t) == 0 {
                        pc = *to as usize;
                        continue;
                    }
                }
                // Assignments, the commonest statements, without the call into
                // `stmt` (whose frame is the size of its largest arm).
                Stmt::Assign { dst, expr } => self.assign(ir, *dst, expr, args, pkt, t),
                s => {
                    self.stmt(ir, Some(&mut *rt), s, args, pkt, t);
                    if self.req.exit || self.req.assert_failed {
                        return;
                    }
                }
            }
            pc += 1;
        }
    }

    /// `dst = expr`, inline in the action loop. A field's copy keeps its provenance;
    /// another one-op expression (a parameter, a constant: most assignments) is
    /// [`Interp::eval`]'s inline case and never the length plus anything.
    #[inline(always)]
    fn assign<T: Track>(&mut self, ir: &Ir, dst: FieldId, expr: &Expr, args: &[Value], pkt: &Pkt, t: &mut T) {
        match expr.ops.as_slice() {
            [Op::Field(src)] => {
                let v = self.values[*src as usize];
                self.set(ir, dst, v);
                t.copied_field(ir, dst, *src);
            }
            [_] => {
                let v = self.eval(ir, expr, args, pkt, t);
                self.set(ir, dst, v);
                t.wrote_field(dst);
            }
            _ => match t.length_relative(ir, expr, args, &self.values, dst) {
                Some((off, w)) => {
                    // The packet's length plus a constant: its reads decide nothing.
                    let v = self.eval(ir, expr, args, pkt, &mut NoTrack);
                    self.set(ir, dst, v);
                    t.wrote_length(dst, off, w);
                }
                None => {
                    let v = self.eval(ir, expr, args, pkt, t);
                    self.set(ir, dst, v);
                    t.wrote_field(dst);
                }
            },
        }
    }

    fn stmt<T: Track>(
        &mut self,
        ir: &Ir,
        mut rt: Option<&mut Runtime>,
        s: &Stmt,
        args: &[Value],
        pkt: &Pkt,
        t: &mut T,
    ) {
        match s {
            Stmt::Assign { dst, expr } => self.assign(ir, *dst, expr, args, pkt, t),
            Stmt::AssignHeader { dst, src } => self.copy_header(ir, *dst, *src, t),
            Stmt::AssignVarbit { dst, src } => {
                self.copy_varbit(ir, *dst, *src);
                self.dirty[*dst as usize] = ALL_DIRTY;
                t.uncacheable("varbit assignment");
            }
            Stmt::AssignUnion { dst, src } => {
                let (d, sr) = (&ir.unions[*dst as usize].headers, &ir.unions[*src as usize].headers);
                // Invalid members first, so that the source's valid member, copied
                // last, is the one left valid.
                for pass_valid in [false, true] {
                    for (hd, hs) in d.iter().zip(sr) {
                        if self.valid[*hs as usize] == pass_valid {
                            self.copy_header(ir, *hd, *hs, t);
                        }
                    }
                }
            }
            Stmt::AssignStack { dst, src } => {
                let (d, sr) = (&ir.stacks[*dst as usize].headers, &ir.stacks[*src as usize].headers);
                for (hd, hs) in d.iter().zip(sr) {
                    self.copy_header(ir, *hd, *hs, t);
                }
                self.next[*dst as usize] = self.next[*src as usize];
            }
            Stmt::PushFront { stack, n } => self.push_front(ir, *stack, *n, t),
            Stmt::PopFront { stack, n } => self.pop_front(ir, *stack, *n, t),
            Stmt::AssignAt { stack, index, field, expr } => {
                let i = self.eval(ir, index, args, pkt, t);
                let v = self.eval(ir, expr, args, pkt, t);
                if let Some(dst) = Self::stack_field(ir, *stack, i, *field) {
                    match expr.as_field() {
                        Some(src) => t.copied_field(ir, dst, src),
                        None => t.wrote_field(dst),
                    }
                    self.set(ir, dst, v);
                }
            }
            Stmt::SetValid(h) => {
                // BMv2's add_header: an invalid header becomes valid with zero fields.
                if !self.valid[*h as usize] {
                    for f in ir.headers[*h as usize].fields.clone() {
                        self.values[f as usize] = 0;
                        t.wrote_field(f);
                    }
                    self.vlen[*h as usize] = 0;
                    self.make_valid(ir, *h);
                    self.dirty[*h as usize] = ALL_DIRTY;
                }
            }
            Stmt::SetInvalid(h) => self.valid[*h as usize] = false,
            Stmt::MarkToDrop => {
                self.set(ir, ir.std.egress_spec, DROP_PORT);
                t.wrote_field(ir.std.egress_spec);
                if let Some(m) = ir.std.mcast_grp {
                    self.set(ir, m, 0);
                    t.wrote_field(m);
                }
            }
            Stmt::Count { counter, index } => {
                let i = self.eval(ir, index, args, pkt, t);
                let len = self.values[ir.std.packet_length as usize] as u64;
                t.count(*counter, i);
                if let Some(rt) = rt.filter(|_| !self.dry) {
                    if let Some(c) = rt.counters[*counter as usize].get_mut(i as usize) {
                        c.0 += 1;
                        c.1 += len;
                    }
                }
            }
            Stmt::ExecuteMeter { meter, index, dst } => {
                let i = self.eval(ir, index, args, pkt, t);
                t.meter(*meter, i);
                let len = self.values[ir.std.packet_length as usize] as u64;
                let color = match rt.as_deref_mut() {
                    Some(rt) => self.meter(ir, rt, *meter, i.min(usize::MAX as Value) as usize, len, t),
                    None => GREEN,
                };
                self.set(ir, *dst, color);
                t.wrote_field(*dst);
            }
            Stmt::RegisterRead { dst, register, index } => {
                let i = self.eval(ir, index, args, pkt, t) as usize;
                t.uncacheable("register read");
                let v = rt.as_deref_mut().and_then(|rt| rt.registers[*register as usize].get(i).copied()).unwrap_or(0);
                self.set(ir, *dst, v);
                t.wrote_field(*dst);
            }
            Stmt::RegisterWrite { register, index, value } => {
                let i = self.eval(ir, index, args, pkt, t) as usize;
                let v = self.eval(ir, value, args, pkt, t) & mask_of(ir.registers[*register as usize].width);
                t.uncacheable("register write");
                if let Some(rt) = rt.filter(|_| !self.dry) {
                    if let Some(c) = rt.registers[*register as usize].get_mut(i) {
                        *c = v;
                    }
                }
            }
            Stmt::Clone { session, field_list } => {
                let sid = self.eval(ir, session, args, pkt, t);
                self.req.clone = Some((sid, *field_list));
            }
            Stmt::Resubmit(fl) => self.req.resubmit = Some(*fl),
            Stmt::Recirculate(fl) => self.req.recirculate = Some(*fl),
            Stmt::Truncate(e) => self.req.truncate = Some(self.eval(ir, e, args, pkt, t)),
            Stmt::Hash { dst, base, calc, size } => {
                let b = self.eval(ir, base, args, pkt, t);
                let m = self.eval(ir, size, args, pkt, t);
                let cd = &ir.calcs[*calc as usize];
                for (e, _) in &cd.inputs {
                    if let Some(f) = e.as_field() {
                        t.read_field(f, Value::MAX);
                    }
                }
                let h = self.hash_of(ir, &cd.inputs, cd.algo) as Value;
                let v = if m == 0 { b.wrapping_add(h) } else { b.wrapping_add(h % m) };
                self.set(ir, *dst, v);
                t.wrote_field(*dst);
            }
            Stmt::Digest { list } => {
                for f in &ir.learn_lists[*list as usize].fields {
                    t.read_field(*f, Value::MAX);
                }
                t.digest(*list);
                self.req.digest = Some(*list);
            }
            Stmt::Exit => self.req.exit = true,
            Stmt::Log => {}
            Stmt::Assert(e) => {
                if self.eval(ir, e, args, pkt, t) == 0 {
                    self.req.assert_failed = true;
                }
            }
            Stmt::Jump(_) | Stmt::JumpIfZero(..) => {}
        }
    }

    /// Concatenate inputs MSB first (zero padded to bytes) and hash them.
    fn hash_of(&mut self, ir: &Ir, inputs: &[(Expr, u32)], algo: HashAlgo) -> u64 {
        // A varbit input (width 0) is its bytes.
        let varbit = |e: &Expr| {
            let f = e.as_field()?;
            let h = ir.fields[f as usize].header;
            ir.headers[h as usize].varbit.filter(|v| v.field == f).map(|v| (v, h))
        };
        let vl_bits = |e: &Expr, vlen: &[u16]| varbit(e).map_or(0, |(_, h)| vlen[h as usize] as usize * 8);
        let total: usize = inputs.iter().map(|(e, w)| *w as usize + vl_bits(e, &self.vlen)).sum();
        let nbytes = total.div_ceil(8);
        if self.hashbuf.len() < nbytes {
            self.hashbuf.resize(nbytes, 0);
        }
        self.hashbuf[..nbytes].iter_mut().for_each(|b| *b = 0);
        let mut nbits = 0;
        for (e, w) in inputs {
            if let Some((vb, h)) = varbit(e) {
                for k in 0..self.vlen[h as usize] as usize {
                    bits::push_bits(&mut self.hashbuf, &mut nbits, 8, self.vbytes[vb.base as usize + k] as Value);
                }
                continue;
            }
            let v = match e.ops.as_slice() {
                [Op::Field(f)] => self.values[*f as usize],
                [Op::Const(c)] => *c,
                _ => 0,
            };
            bits::push_bits(&mut self.hashbuf, &mut nbits, *w, v & mask_of(*w));
        }
        bits::hash(algo, &self.hashbuf[..nbytes])
    }

    fn calc(&mut self, ir: &Ir, calc: u32) -> Value {
        let cd = &ir.calcs[calc as usize];
        self.hash_of(ir, &cd.inputs, cd.algo) as Value
    }

    /// Egress for one copy, `depth` E2E clones deep (0: not a clone of egress):
    /// returns the next pass's instance type if it recirculates.
    #[allow(clippy::too_many_arguments)]
    fn egress<T: Track>(
        &mut self,
        ir: &Ir,
        rt: &mut Runtime,
        port: u32,
        rid: u32,
        inst: Value,
        data: &[u8],
        t: &mut T,
        depth: usize,
    ) -> Option<Value> {
        let s = ir.std;
        // Only the unicast copy itself: its E2E clones come after it.
        let unicast = std::mem::take(&mut self.unicast);
        self.values[s.egress_port as usize] = port as Value & ir.fields[s.egress_port as usize].mask;
        self.values[s.instance_type as usize] = inst;
        if let Some(r) = s.egress_rid {
            self.values[r as usize] = rid as Value;
        }
        // simple_switch resets egress_spec so that a drop in egress is detectable.
        self.values[s.egress_spec as usize] = 0;
        t.egress_copy(port, rid, inst);
        t.phase(Phase::Egress);
        self.control(ir, rt, ir.egress, data, t);
        if self.req.assert_failed {
            self.out.drops.push(DropCause::Assert);
            return None;
        }
        // A clone requested in egress is an E2E clone: it takes the state as egress
        // left it, before this copy's checksums and deparsing.
        let e2e = self.req.clone;
        if let Some((_, fl)) = e2e {
            if self.e2e.len() <= depth {
                self.e2e.resize_with(depth + 1, Default::default);
            }
            let (mut snap, mut kept) = std::mem::take(&mut self.e2e[depth]);
            self.save_into(&mut snap);
            Self::field_list_into(&self.values, ir, fl, &mut kept);
            self.e2e[depth] = (snap, kept);
            t.save_at(depth);
        }
        let last = unicast && e2e.is_none();
        let mut next = self.finish_copy(ir, port, inst, data, t, last);
        if let Some((session, _)) = e2e {
            if let Some(n) = self.egress_clones(ir, rt, session as u32, data, t, depth) {
                next = Some(n);
            }
        }
        next
    }

    /// The copies of an E2E clone saved at `depth`: one egress pass per replica of the
    /// session, from the saved headers with the metadata reset but the field list.
    #[allow(clippy::too_many_arguments)]
    fn egress_clones<T: Track>(
        &mut self,
        ir: &Ir,
        rt: &mut Runtime,
        session: u32,
        data: &[u8],
        t: &mut T,
        depth: usize,
    ) -> Option<Value> {
        t.clone_session(session);
        let n = rt.clone_sessions.get(&session).map_or(0, |(r, _)| r.len());
        if n > 0 && depth + 1 >= MAX_E2E_DEPTH {
            self.out.drops.push(DropCause::PassLimit);
            return None;
        }
        let mut next = None;
        for i in 0..n {
            // Looked up again per replica: egress may touch the runtime.
            let Some((port, rid, trunc)) =
                rt.clone_sessions.get(&session).and_then(|(r, tr)| r.get(i).map(|(p, x)| (*p, *x, *tr)))
            else {
                break;
            };
            let (snap, kept) = std::mem::take(&mut self.e2e[depth]);
            self.restore_from(&snap);
            t.restore_at(depth);
            for h in ir.headers.iter().filter(|h| h.metadata) {
                self.values[h.fields.start as usize..h.fields.end as usize].iter_mut().for_each(|v| *v = 0);
            }
            for &(f, v) in &kept {
                self.values[f as usize] = v;
            }
            t.metadata_reset(ir, &kept);
            self.values[ir.std.packet_length as usize] = data.len() as Value;
            self.e2e[depth] = (snap, kept);
            self.req = Requests::default();
            if trunc > 0 {
                self.req.truncate = Some(trunc as Value);
            }
            if let Some(r) = self.egress(ir, rt, port, rid, instance::EGRESS_CLONE, data, t, depth + 1) {
                next = Some(r);
            }
        }
        next
    }

    /// Evaluate an expression: the one-op shapes (most assignments' sources) inline,
    /// without the stack machine's prologue.
    #[inline(always)]
    fn eval<T: Track>(&mut self, ir: &Ir, e: &Expr, args: &[Value], pkt: &Pkt, t: &mut T) -> Value {
        match e.ops.as_slice() {
            [Op::Const(c)] => *c,
            [Op::Field(f)] => {
                t.read_field(*f, Value::MAX);
                self.values[*f as usize]
            }
            [Op::Param(p)] => args.get(*p as usize).copied().unwrap_or(0),
            // `if (h.isValid())`: most programs' commonest condition.
            [Op::Valid(h)] => self.valid[*h as usize] as Value,
            _ => self.eval_ops(ir, e, args, pkt, t),
        }
    }

    /// Evaluate an expression on the value stack, its top kept in a local (`top`):
    /// an operator takes its right operand from there and leaves its result there,
    /// and a constant right operand (`x + 1`, `x & mask`, `x > 0`: most of them) is
    /// applied without being pushed. Popping an empty stack gives 0, as does the 0
    /// the first push moves below the first value.
    #[inline(never)]
    fn eval_ops<T: Track>(&mut self, ir: &Ir, e: &Expr, args: &[Value], pkt: &Pkt, t: &mut T) -> Value {
        let st = &mut self.stack;
        st.clear();
        let mut top: Value = 0;
        let ops = e.ops.as_slice();
        let mut i = 0;
        while i < ops.len() {
            let pushed = match ops[i] {
                Op::Field(f) => {
                    t.read_field(f, Value::MAX);
                    self.values[f as usize]
                }
                Op::Const(c) => match ops.get(i + 1) {
                    Some(&Op::Bin(b)) => {
                        top = b.apply(top, c);
                        i += 2;
                        continue;
                    }
                    _ => c,
                },
                Op::Param(p) => args.get(p as usize).copied().unwrap_or(0),
                Op::Valid(h) => self.valid[h as usize] as Value,
                Op::Lookahead { offset, width } => {
                    let bit = pkt.cursor * 8 + offset as usize;
                    if bit + width as usize > pkt.data.len() * 8 {
                        // BMv2 reads past the end as zeros.
                        t.length_dependent();
                        0
                    } else {
                        t.read_packet(bit, width);
                        read_bits(pkt.data, bit, width)
                    }
                }
                Op::StackLast { stack, field } => {
                    let last = (self.next[stack as usize] as Value).checked_sub(1);
                    match last.and_then(|i| Self::stack_field(ir, stack, i, field)) {
                        Some(f) => {
                            t.read_field(f, Value::MAX);
                            self.values[f as usize]
                        }
                        None => 0,
                    }
                }
                Op::StackNext(s) => self.next[s as usize] as Value,
                Op::UnionValid(u) => ir.unions[u as usize].headers.iter().any(|h| self.valid[*h as usize]) as Value,
                // The operators: in place on `top`.
                Op::Un(u) => {
                    top = u.apply(top);
                    i += 1;
                    continue;
                }
                Op::Bin(b) => {
                    let l = st.pop().unwrap_or(0);
                    top = b.apply(l, top);
                    i += 1;
                    continue;
                }
                Op::Select => {
                    let th = st.pop().unwrap_or(0);
                    let c = st.pop().unwrap_or(0);
                    if c != 0 {
                        top = th;
                    }
                    i += 1;
                    continue;
                }
                Op::StackAt { stack, field } => {
                    // The index on top becomes the element's field.
                    top = match Self::stack_field(ir, stack, top, field) {
                        Some(f) => {
                            t.read_field(f, Value::MAX);
                            self.values[f as usize]
                        }
                        None => 0,
                    };
                    i += 1;
                    continue;
                }
            };
            st.push(top);
            top = pushed;
            i += 1;
        }
        top
    }
}
