//! The megaflow cache hierarchy in front of the P4 pipeline: EMC, then dpcls, then an
//! upcall into the pipeline with read tracking. Each worker owns one [`FlowCache`]
//! (no locks, no sharing).
//!
//! # Megaflows
//! A miss runs the pipeline with [`crate::p4::track::Tracker`], which records bit by
//! bit what the outcome was read from (the *mask*: ingress port and length bits, then
//! packet bits) and the outcome itself (per copy: output port and edit; drops with
//! reason; counters touched). The megaflow is `(packet & mask == key, length ≥
//! min_len) -> actions`. The tracker's invariant — every packet equal on the mask bits
//! and at least `min_len` long has the same outcome, given the same state — is what
//! makes a hit correct, so overlapping megaflows need no priorities: any match is
//! right. `min_len` is the larger of the bytes the parser consumed and the extent of
//! the mask. Outcomes the tracker calls uncacheable (registers, recirculation,
//! resubmit, varbit assignments, reads past the tracked bytes, more than two configured
//! meters) and digests are not installed: such packets take the pipeline every time
//! and are counted.
//!
//! # Metered megaflows
//! A configured meter's color is not a function of the packet: the same flow is
//! GREEN now and RED a moment later. A run that executed configured meters (its
//! *meter points*) is therefore explored: dry runs of the interpreter
//! ([`crate::p4::interp::Interp::dry_run`]: no state changes, the meters return
//! forced colors) give the outcome of every color combination — 3 runs per point,
//! depth first, 1 + 3 + 9 runs at most for two points — and the megaflow matches the
//! union of the bits any of them read. Its actions are a tree
//! ([`actions::MeterBranch`]): a hit executes the meter cell with `rte_meter` (the
//! packet's length, the burst's TSC), takes the color's branch, and credits that
//! branch's counters for the packet. The packet that missed keeps the real run's
//! outcome: its meters were executed once, by that run. Any refusal in any branch
//! (a digest on RED, say) makes the flow uncacheable.
//!
//! # Lookup (per burst)
//! [`emc`] first (exact match on the union of all masks), then [`dpcls`] (subtables
//! ranked by hits, each taking the whole burst's unmatched packets), then the upcall.
//! A dpcls hit is inserted into the EMC per its insertion policy. An EMC that misses
//! more than it hits over an upkeep period (more flows than entries) is skipped for a
//! while (`emc_pauses`): measured on the L3 benchmark at 65,536 flows, dpcls alone
//! costs ~200 cycles/packet where a thrashing EMC in front of it costs ~245.
//!
//! # Invalidation: exact, before the next packet, in constant time
//! Every megaflow carries a 64-bit dependency set built from the pipeline's effects
//! ([`actions::deps`]): the tables it applied (hit or miss), the action profiles of
//! those tables, the selector groups it hashed (and port liveness), multicast groups,
//! clone sessions and value sets, meters — everything, other than the packet, that
//! its outcome was read from (registers do not occur: they make a flow uncacheable;
//! a meter's configuration decides whether the megaflow branches on it or froze its
//! GREEN, so any meter change removes every megaflow that executed one). A state change names what
//! it touches ([`Change`]). Bits are per table (48 of them, table id mod 48) and per
//! object class, so a collision can only remove more megaflows than needed, never
//! fewer; entry-level overlap checks are a possible refinement.
//!
//! The worker applies a change between bursts and, in the same step, makes every
//! megaflow whose dependency set has the change's bits *stale*
//! ([`FlowCache::invalidate`]), without visiting them: invalidations are numbered
//! (epochs), each dependency bit remembers the epoch that last touched it, and each
//! megaflow the epoch it was installed in. A megaflow is stale if one of its bits was
//! touched after its install. While any may be stale (a *purge* is pending), every
//! megaflow a lookup finds is checked (its bits against the pending ones: a few
//! cycles, and nothing when no purge is pending); a stale one is removed on the spot
//! and the lookup goes on (dpcls looks the packet up again: another megaflow may
//! match it), so the packet takes a current megaflow or the pipeline. Flow marks,
//! cache scans (offload, dumps) and NIC counter credits refuse stale megaflows the
//! same way. The rest are removed by the purge, a slice of slots per burst
//! ([`BURST_PURGE`]) and per upkeep, as the worker forwards. So the first packet
//! processed after a change either hits a megaflow built after it or takes the
//! pipeline, and the write itself costs the same with 10 megaflows or 200,000.
//! Removing every dependent megaflow in the write's own step held the worker ~110
//! cycles per megaflow: 2.5–4 ms for 64,000, long enough for a NIC's receive rings to
//! overflow at 10 Mpps.
//!
//! A megaflow removed as stale has nothing to settle: the change came after a full
//! settle, and no lookup credits a stale megaflow. A new megaflow with a stale one's
//! exact key replaces it. After 2^32 invalidations the epochs would wrap: the purge
//! is then finished at once and the count starts over.
//!
//! # Counters
//! A hit must count what the pipeline would have counted: table-entry hits, direct
//! and indexed counters ([`actions::Replay`]). The hit path credits a group of packets
//! (once per megaflow per burst) to the megaflow only ([`FlowCache::credit`]: its
//! packets, bytes and last use) and lists the megaflow as *dirty* the first time.
//! Its counter effects are replayed into the worker's copy of the state later, for
//! all the packets since the last time at once ([`FlowCache::settle`]):
//! * by upkeep ([`FlowCache::maintain`]), for megaflows dirty for
//!   [`SETTLE_AFTER_MS`], a slice at a time, oldest first;
//! * before anything reads or changes the state: [`Datapath::settled`] (what control's
//!   counter and hit reads use), [`Datapath::apply`] and [`Datapath::update`] settle
//!   every dirty megaflow first, so a count is never credited to an entry or counter
//!   cell that a change deleted, reset or reused;
//! * when a megaflow is removed (idle, evicted, invalidated), before it goes.
//!
//! Settling every dirty megaflow at once holds the worker (~50–65 cycles a megaflow
//! on simple_router: over a millisecond for 64,000). So before a read or a change,
//! control first settles a slice at a time ([`Datapath::settle_some`], one mailbox
//! command per slice, forwarding between: `Workers::presettle` in control), and the
//! full settle finds about a slice left. [`CacheStats::unsettled`] is kept exact
//! (set when a megaflow is listed) for control to see which workers need it.
//!
//! So a read sees exactly what the pipeline would have counted, and a megaflow hit
//! often pays one replay per [`SETTLE_AFTER_MS`] instead of one per burst. Replaying
//! at once was a fifth of the cycles with 1,024 flows (a packet per megaflow per
//! burst, ~10 counter effects each for the default program's router). A first
//! version replayed from a dirty list soon after the hits; with many flows each hit
//! rarely, every settle missed the cache (65,536 ECMP flows: 880 cycles/packet). The
//! delay is what makes a settle credit many packets at once.
//!
//! [`Datapath::settled`]: datapath::Datapath::settled
//! [`Datapath::settle_some`]: datapath::Datapath::settle_some
//! [`Datapath::apply`]: datapath::Datapath::apply
//! [`Datapath::update`]: datapath::Datapath::update
//!
//! # Lifecycle
//! * **Idle expiry**: a megaflow unused for [`CacheConfig::max_idle_ms`] is removed by
//!   an incremental sweep ([`FlowCache::maintain`], a slice of the slots every call).
//! * **Limit**: at [`CacheConfig::max_flows`] an install first evicts the least
//!   recently used of a few slots after a clock hand (counted as evictions).
//! * **Versions**: a removed megaflow's slot gets a new version; EMC entries hold the
//!   version they saw, so they die with it without a scan.
//! * **Events**: installs and removals are pushed to the control side on a bounded
//!   ring ([`FlowEvent`], [`event_ring`]); a full ring drops the event and counts it,
//!   never blocks.

pub mod actions;
pub mod datapath;
pub mod dpcls;
pub mod emc;
pub mod event_ring;
pub mod events;
pub mod key;

use dpdk_sys::lcore::prefetch;
use smallvec::SmallVec;
use std::collections::hash_map::Entry;
use std::collections::VecDeque;
use std::sync::Arc;

use actions::{Actions, Replay, Replays, Tracked};
use dpcls::{Dpcls, Place, NONE};
use emc::{Candidate, Emc, EmcConfig};
use event_ring::{EventTx, InstallHead};
pub use events::FlowEvent;
use events::{EventActions, Removal};
use key::{Mask, PacketView, KEY_WORDS};

use crate::p4::tables::Runtime;
use crate::p4::track::ReadSet;
use crate::stats::Counter;

/// What a state change touches (for invalidation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A table's entries or default action.
    Table(u32),
    /// An action profile's members or groups.
    Profile(u32),
    /// Multicast groups.
    Mcast,
    /// Clone sessions.
    Clone,
    /// A parser value set.
    ValueSet(u32),
    /// Port liveness (selector watch ports).
    Ports,
    /// Meter configuration (an unconfigured meter's GREEN may be in a megaflow).
    Meters,
    /// Everything (a new pipeline).
    All,
    /// Nothing a megaflow can depend on.
    None,
}

impl Change {
    /// What `op` touches.
    pub fn of(op: &crate::p4::ops::Op) -> Change {
        use crate::p4::ops::Op;
        match op {
            Op::Insert { table, .. } | Op::Modify { table, .. } | Op::Delete { table, .. } => Change::Table(*table),
            Op::SetDefault { table, .. } => Change::Table(*table),
            Op::SetMember { profile, .. }
            | Op::DeleteMember { profile, .. }
            | Op::SetGroup { profile, .. }
            | Op::DeleteGroup { profile, .. } => Change::Profile(*profile),
            Op::SetMcast { .. } | Op::DeleteMcast { .. } => Change::Mcast,
            Op::SetClone { .. } | Op::DeleteClone { .. } => Change::Clone,
            Op::SetValueSet { set, .. } => Change::ValueSet(*set),
            // Registers make a flow uncacheable: no megaflow depends on one.
            Op::WriteRegister { .. } => Change::None,
            Op::SetMeter { .. } | Op::SetDirectMeter { .. } => Change::Meters,
        }
    }

    /// Its dependency bit(s).
    pub fn bit(self) -> u64 {
        match self {
            Change::Table(t) => 1 << (t % 48),
            Change::Profile(p) => 1 << (48 + p % 8),
            Change::Mcast => 1 << 56,
            Change::Clone => 1 << 57,
            Change::ValueSet(s) => 1 << (58 + s % 4),
            Change::Ports => 1 << 62,
            Change::Meters => 1 << 63,
            Change::All => u64::MAX,
            Change::None => 0,
        }
    }
}

/// Cache settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Megaflows per worker at most (0: no caching, every packet takes the pipeline).
    pub max_flows: usize,
    /// Idle time after which a megaflow is removed, in milliseconds.
    pub max_idle_ms: u32,
    /// The EMC.
    pub emc: EmcConfig,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { max_flows: 200_000, max_idle_ms: 10_000, emc: EmcConfig::default() }
    }
}

/// Why a megaflow left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveReason {
    /// Idle longer than the limit.
    Idle,
    /// Evicted to make room.
    Evicted,
    /// The state it was read from changed.
    Invalidated,
}

/// A worker's cache counters (single writer, read by control).
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Packets matched in the EMC.
    pub emc_hits: Counter,
    /// Packets matched in dpcls.
    pub dpcls_hits: Counter,
    /// Subtables searched by dpcls hits (÷ `dpcls_hits`: per packet).
    pub subtables_searched: Counter,
    /// Packets that missed both and ran the pipeline to install a megaflow.
    pub upcalls: Counter,
    /// Packets whose outcome could not be cached (took the pipeline).
    pub uncacheable: Counter,
    /// Megaflows installed.
    pub installed: Counter,
    /// Megaflows removed as idle.
    pub expired: Counter,
    /// Megaflows evicted at the limit.
    pub evicted: Counter,
    /// Megaflows removed by state changes (found stale by a lookup, or purged).
    pub invalidated: Counter,
    /// Stale megaflows a lookup found (and removed then: the packet looked further
    /// or took the pipeline) or an install of the same key replaced, as opposed to
    /// those the purge removed first.
    pub stale_found: Counter,
    /// Events lost because the control ring was full.
    pub events_dropped: Counter,
    /// Times the EMC was paused for missing more than it hit.
    pub emc_pauses: Counter,
    /// Megaflows now (a gauge).
    pub megaflows: Counter,
    /// Subtables with megaflows now (a gauge).
    pub subtables: Counter,
    /// Megaflows whose hits' counter effects wait to be settled (a gauge: what a read
    /// of counters would settle first). Kept as megaflows are listed and settled.
    pub unsettled: Counter,
    /// Megaflows settled a slice at a time ahead of a read or a change of the state
    /// (control's presettle rounds), so that its own settle had less to do.
    pub presettled: Counter,
    /// Packets whose NIC flow mark named a live megaflow (partial offload: no lookup).
    pub mark_hits: Counter,
    /// Packets with a mark naming no live megaflow of this worker (looked up as usual).
    pub mark_misses: Counter,
    /// Packets of bursts sent whole: every packet of the burst matched a megaflow
    /// whose outcome is one copy to the same port, was rewritten by it, and the
    /// burst went to that port at once, with no per-packet action dispatch
    /// (`PipelineStage::send_uniform`, `send_mixed`). The rest of the hits took
    /// the per-packet path.
    pub sent_whole: Counter,
}

impl CacheStats {
    /// A copy for reports.
    pub fn snapshot(&self) -> CacheSnapshot {
        CacheSnapshot {
            emc_hits: self.emc_hits.get(),
            dpcls_hits: self.dpcls_hits.get(),
            subtables_searched: self.subtables_searched.get(),
            upcalls: self.upcalls.get(),
            uncacheable: self.uncacheable.get(),
            installed: self.installed.get(),
            expired: self.expired.get(),
            evicted: self.evicted.get(),
            invalidated: self.invalidated.get(),
            stale_found: self.stale_found.get(),
            events_dropped: self.events_dropped.get(),
            emc_pauses: self.emc_pauses.get(),
            megaflows: self.megaflows.get(),
            subtables: self.subtables.get(),
            unsettled: self.unsettled.get(),
            presettled: self.presettled.get(),
            mark_hits: self.mark_hits.get(),
            mark_misses: self.mark_misses.get(),
            sent_whole: self.sent_whole.get(),
        }
    }
}

/// A copy of [`CacheStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[allow(missing_docs)]
pub struct CacheSnapshot {
    pub emc_hits: u64,
    pub dpcls_hits: u64,
    pub subtables_searched: u64,
    pub upcalls: u64,
    pub uncacheable: u64,
    pub installed: u64,
    pub expired: u64,
    pub evicted: u64,
    pub invalidated: u64,
    pub stale_found: u64,
    pub events_dropped: u64,
    pub emc_pauses: u64,
    pub megaflows: u64,
    pub subtables: u64,
    pub unsettled: u64,
    pub presettled: u64,
    pub mark_hits: u64,
    pub mark_misses: u64,
    pub sent_whole: u64,
}

/// An installed megaflow.
///
/// Laid out by hand (`repr(C)`, with [`Slot`]): what a hit reads — its actions and
/// counts — comes first. (Its last use and length bound are in its slot.)
#[derive(Debug)]
#[repr(C)]
pub struct Megaflow {
    /// Its actions.
    pub actions: Arc<Actions>,
    /// Packets matched (upcall included).
    pub packets: u64,
    /// Bytes matched.
    pub bytes: u64,
    /// Where its key is.
    pub place: Place,
    /// When it was installed, in the cache's milliseconds.
    pub installed_ms: u32,
    /// Dependency bits.
    pub deps: u64,
    /// The hash of its actions (their key among the shared actions).
    actions_hash: u64,
    /// The packets and bytes whose counter effects are in the state (the rest wait
    /// for [`FlowCache::settle`]).
    settled: (u64, u64),
    /// The counters it credits besides its actions' own: the table entries its
    /// tracked run hit (kept here so that megaflows of different entries with
    /// equal outputs share their actions).
    pub replay: Replays,
}

/// A megaflow's place in the slot table, with what validates references to it.
///
/// Laid out by hand (`repr(C)`): what a hit reads spans the first 40 bytes, and what
/// an eviction candidate reads — the last use and whether the slot is live — the
/// first 16, one cache line. Those sit outside the `Option`: `Some` is encoded in a
/// spare value of a byte deep in the replays (the compiler picks the largest niche),
/// and reading through it cost an eviction candidate a second cache miss.
#[derive(Debug)]
#[repr(C)]
struct Slot {
    /// Bumped when the megaflow goes: EMC entries and marks naming an older version
    /// are stale.
    version: u32,
    /// The megaflow's last use, in the cache's milliseconds.
    used_ms: u32,
    /// The invalidation epoch it was installed in: a later invalidation of what it
    /// depends on makes it stale (see "Invalidation" in the module doc).
    epoch: u32,
    /// Packets shorter than this do not match the megaflow. (16 bits: an mbuf
    /// segment holds at most 65,535 bytes, and a longer one saturates.)
    min_len: u16,
    /// On the dirty list (possibly for the megaflow before this one: settling it
    /// then settles this one, early).
    listed: bool,
    /// `flow.is_some()`.
    live: bool,
    flow: Option<Megaflow>,
}

impl Slot {
    const EMPTY: Slot = Slot { version: 0, used_ms: 0, epoch: 0, min_len: 0, listed: false, live: false, flow: None };
}

// The size [`prefaulted`] documents.
const _: () = assert!(std::mem::size_of::<Slot>() == 160);
// The hand-made layout [`Slot`] documents.
const _: () = assert!(std::mem::offset_of!(Slot, flow) + std::mem::offset_of!(Megaflow, bytes) + 8 == 40);
const _: () = assert!(std::mem::offset_of!(Slot, live) < 16 && std::mem::offset_of!(Slot, used_ms) < 16);

/// The largest flow mark a cache binds (the table is indexed by mark).
pub const MAX_MARK: u32 = (1 << 20) - 1;

/// Upkeep periods the EMC is skipped after a period in which it mostly missed.
pub const EMC_PAUSE: u32 = 16;
/// Lookups a period needs before its EMC hit rate counts.
const EMC_MIN_LOOKUPS: u64 = 4096;

/// How long a megaflow stays dirty before upkeep settles it (see the module doc).
pub const SETTLE_AFTER_MS: u32 = 200;
/// Dirty megaflows settled per [`FlowCache::maintain`] call, at most.
const SETTLE_SLICE: usize = 256;

/// Slots swept per [`FlowCache::maintain`] call.
const SWEEP_SLICE: usize = 1024;

/// The purge's slice per burst while one is pending: slots examined, megaflows
/// removed at most (~5 cycles a slot, ~110 a removal on simple_router: about a
/// microsecond at most, a fraction of a burst's forwarding).
pub const BURST_PURGE: (usize, usize) = (256, 16);
/// The purge's slice per [`FlowCache::maintain`] call (also run when the worker is
/// idle).
const UPKEEP_PURGE: (usize, usize) = (4096, 256);
/// Slots examined to pick an eviction victim.
const EVICT_CANDIDATES: usize = 8;

/// An empty slot table with room for `n` slots, its memory written once: a flow
/// setup then neither reallocates the table nor takes a page fault on a fresh page
/// (together ~140 of ~2,400 cycles per setup into an empty cache, in
/// `pipeline_bench --only-setup`). The
/// price is paid when the worker starts: `n` × 160 bytes (32 MB at the default
/// limit of 200,000 megaflows), as DPDK preallocates its hash tables.
fn prefaulted(n: usize) -> Vec<Slot> {
    let mut slots = Vec::with_capacity(n);
    slots.resize_with(n, || Slot::EMPTY);
    // Emptied again: the scans stop at the slots ever used, and the capacity (with
    // its touched pages) stays.
    slots.clear();
    slots
}

/// Let the EMC learn that `view` matched megaflow `flow` (a dpcls hit): the EMC
/// keeps the candidate by its slot version and may replace an entry whose megaflow is
/// gone.
#[inline(always)]
fn emc_learn(emc: &mut Emc, slots: &[Slot], view: &PacketView, flow: u32) {
    let cand = Candidate { flow, version: slots[flow as usize].version };
    emc.insert(view, cand, |o| slots.get(o.flow as usize).is_some_and(|s| s.version == o.version && s.live));
}

/// Actions megaflows share, and how many.
#[derive(Debug)]
struct Shared {
    actions: Arc<Actions>,
    users: u32,
    /// An install event carrying them was delivered: control knows them by id.
    announced: bool,
}

/// The id flow events name shared actions by: the shared copy's address, unique
/// while control holds the copy (from the event that delivers it to its
/// [`FlowEvent::ActionsGone`]).
fn actions_id(a: &Arc<Actions>) -> u64 {
    Arc::as_ptr(a) as usize as u64
}

/// Replay `f`'s unsettled packets' counter effects into `rt`.
fn settle_flow(f: &mut Megaflow, rt: &mut Runtime) {
    let (p, b) = (f.packets - f.settled.0, f.bytes - f.settled.1);
    if p == 0 && b == 0 {
        return;
    }
    f.actions.replay_into(rt, p, b);
    actions::credit(f.replay.as_slice(), rt, p, b);
    f.settled = (f.packets, f.bytes);
}

/// A worker's megaflow cache.
#[derive(Debug)]
pub struct FlowCache {
    cfg: CacheConfig,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    dpcls: Dpcls,
    emc: Emc,
    now_ms: u32,
    hand: usize,
    sweep: usize,
    worker: u32,
    events: Option<EventTx>,
    stats: Arc<CacheStats>,
    /// EMC lookups and hits this upkeep period.
    emc_period: (u64, u64),
    /// Upkeep periods the EMC stays skipped.
    emc_pause: u32,
    /// Flow marks bound to megaflows: mark id -> (megaflow id, version).
    marks: Vec<(u32, u32)>,
    /// The distinct actions of live megaflows by hash, with how many use each. One
    /// entry per hash: actions whose hash collides with different ones are not
    /// shared (they still work; a 64-bit collision only costs a copy).
    shared: rustc_hash::FxHashMap<u64, Shared>,
    /// [`FlowEvent::ActionsGone`] events the full ring refused, to send again.
    gone: Vec<u64>,
    /// Marks bound now.
    bound_marks: usize,
    /// Megaflows with packets not settled, oldest first: (id, when listed). One entry
    /// per slot at most (its `listed` flag), so it never outgrows its capacity.
    dirty: VecDeque<(u32, u32)>,
    /// Invalidations so far: the epoch a megaflow installed now gets.
    epoch: u32,
    /// Per dependency bit, the epoch of the last invalidation that touched it.
    bit_epoch: [u32; 64],
    /// The dependency bits invalidated since the purge last started over; 0 when no
    /// purge is pending (then no megaflow is stale and lookups check nothing).
    purge_bits: u64,
    /// The purge's next slot.
    purge_next: usize,
    /// A tracked install's mask words, all zero between installs ([`KEY_WORDS`]
    /// long): an install sets its used words and zeroes them after, where a new
    /// zeroed array was a 264-byte `memset` per flow setup.
    mask_buf: Vec<u64>,
}

/// Counts of one burst lookup.
#[derive(Debug, Default, Clone, Copy)]
pub struct LookupCounts {
    /// EMC hits.
    pub emc: u32,
    /// dpcls hits.
    pub dpcls: u32,
    /// Subtables searched by the dpcls hits.
    pub searched: u32,
}

impl FlowCache {
    /// An empty cache for `worker`, counting into `stats`, sending events to `events`.
    pub fn new(cfg: CacheConfig, worker: u32, stats: Arc<CacheStats>, events: Option<EventTx>) -> Self {
        FlowCache {
            cfg,
            slots: prefaulted(cfg.max_flows),
            free: vec![],
            live: 0,
            dpcls: Dpcls::default(),
            emc: Emc::new(cfg.emc),
            now_ms: 0,
            hand: 0,
            sweep: 0,
            worker,
            events,
            stats,
            emc_period: (0, 0),
            emc_pause: 0,
            marks: Vec::new(),
            shared: Default::default(),
            gone: Vec::new(),
            bound_marks: 0,
            dirty: VecDeque::with_capacity(cfg.max_flows),
            epoch: 0,
            bit_epoch: [0; 64],
            purge_bits: 0,
            purge_next: 0,
            mask_buf: vec![0; KEY_WORDS],
        }
    }

    /// Whether megaflows are installed at all.
    pub fn enabled(&self) -> bool {
        self.cfg.max_flows > 0
    }

    /// Its counters.
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// Live megaflows.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Every live megaflow: id, version, the megaflow.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32, &Megaflow)> {
        self.iter_slots(0..self.slots.len())
    }

    /// Megaflow slots (live or free): ids are below this.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The live megaflows among slots `range` (clamped to [`FlowCache::slot_count`]),
    /// as [`FlowCache::iter`]: a dump a slice at a time.
    pub fn iter_slots(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = (u32, u32, &Megaflow)> {
        let n = self.slots.len();
        let range = range.start.min(n)..range.end.min(n);
        let from = range.start;
        self.slots[range]
            .iter()
            .enumerate()
            .filter(move |(i, _)| !self.is_stale((from + i) as u32))
            .filter_map(move |(i, s)| Some(((from + i) as u32, s.version, s.flow.as_ref()?)))
    }

    /// The cache's clock now (milliseconds, wrapping).
    pub fn now_ms(&self) -> u32 {
        self.now_ms
    }

    /// The megaflow `id`, if live.
    #[inline(always)]
    pub fn get(&self, id: u32) -> Option<&Megaflow> {
        self.slots.get(id as usize).and_then(|s| s.flow.as_ref())
    }

    /// When live megaflow `id` was last used, in the cache's milliseconds.
    pub fn used_ms(&self, id: u32) -> Option<u32> {
        self.slots.get(id as usize).filter(|s| s.live).map(|s| s.used_ms)
    }

    /// The version of live megaflow `id` (a removed megaflow's slot gets a new one).
    #[inline(always)]
    pub fn version(&self, id: u32) -> Option<u32> {
        self.slots.get(id as usize).filter(|s| s.live).map(|s| s.version)
    }

    /// The classifier (for inspection).
    pub fn dpcls(&self) -> &Dpcls {
        &self.dpcls
    }

    /// Look up a burst: `found[i]` gets the megaflow of `views[i]` or [`NONE`].
    #[inline]
    pub fn lookup(&mut self, views: &[PacketView], found: &mut [u32]) -> LookupCounts {
        let n = views.len().min(32);
        found[..n].fill(NONE);
        self.lookup_some(views, found, if n == 32 { u32::MAX } else { (1 << n) - 1 })
    }

    /// Look up the packets of a burst whose bit is set in `todo` (the others keep
    /// their `found` entry, e.g. from a flow mark).
    #[inline]
    pub fn lookup_some(&mut self, views: &[PacketView], found: &mut [u32], mut todo: u32) -> LookupCounts {
        let n = views.len().min(32);
        let mut c = LookupCounts::default();
        if self.live == 0 || todo == 0 {
            return c;
        }
        let emc_on = self.emc.enabled() && self.emc_pause == 0;
        let looked = todo.count_ones();
        if emc_on {
            // The last packet's key and megaflow (id, minimum length): a packet with
            // the same key as the one before it (bursts of one flow) skips the hash
            // and the probe. The length condition is checked per packet: the EMC key
            // has no length bits unless a mask read them.
            let mut last_key = [0u64; emc::MAX_WORDS];
            let mut last: Option<(u32, u16)> = None;
            for (i, v) in views[..n].iter().enumerate() {
                if todo & (1 << i) == 0 {
                    continue;
                }
                let mut k = [0u64; emc::MAX_WORDS];
                self.emc.key_words(v, &mut k);
                if let Some((flow, min_len)) = last {
                    if self.emc.same_key(&k, &last_key) && min_len as usize <= v.data().len() {
                        found[i] = flow;
                        todo &= !(1 << i);
                        c.emc += 1;
                        continue;
                    }
                }
                let Some(cand) = self.emc.probe(&k) else { continue };
                let s = &self.slots[cand.flow as usize];
                if s.version != cand.version || !s.live {
                    continue;
                }
                let min_len = s.min_len;
                if self.purge_bits != 0 && self.stale(cand.flow) {
                    // Gone now (its EMC entries with its version); dpcls looks further.
                    self.drop_stale(cand.flow);
                    continue;
                }
                last = Some((cand.flow, min_len));
                last_key = k;
                if min_len as usize <= v.data().len() {
                    found[i] = cand.flow;
                    todo &= !(1 << i);
                    c.emc += 1;
                }
            }
        }
        if todo != 0 {
            let before = todo;
            let r = self.dpcls.lookup(&views[..n], &mut todo, found);
            c.dpcls = r.hits;
            c.searched = r.searched;
            if self.purge_bits != 0 {
                self.refuse_stale(&views[..n], found, &mut todo, before, &mut c);
            }
            if emc_on {
                let mut m = before & !todo;
                while m != 0 {
                    let i = m.trailing_zeros() as usize;
                    m &= m - 1;
                    emc_learn(&mut self.emc, &self.slots, &views[i], found[i]);
                }
            }
        }
        if emc_on {
            self.emc_period.0 += looked as u64;
            self.emc_period.1 += c.emc as u64;
        }
        self.stats.emc_hits.add(c.emc as u64);
        self.stats.dpcls_hits.add(c.dpcls as u64);
        self.stats.subtables_searched.add(c.searched as u64);
        c
    }

    /// The install epoch: pass it to [`FlowCache::lookup_since`].
    #[inline]
    pub fn epoch(&self) -> u64 {
        self.dpcls.inserts()
    }

    /// Look up one packet that matched nothing at epoch `since` ([`FlowCache::epoch`],
    /// taken before its burst's lookup) again, after upcalls may have installed its
    /// megaflow: only the megaflows installed since are probed (see
    /// [`Dpcls::lookup_since`]); with a purge pending, the whole lookup (it refuses
    /// stale megaflows). Counted as a dpcls hit when found, and learned by the EMC as
    /// a burst lookup's hits are.
    #[inline]
    pub fn lookup_since(&mut self, view: &PacketView, since: u64) -> u32 {
        if self.purge_bits != 0 {
            let mut found = [NONE; 1];
            self.lookup(std::slice::from_ref(view), &mut found);
            return found[0];
        }
        let (f, searched) = self.dpcls.lookup_since(view, since);
        if f != NONE {
            self.stats.dpcls_hits.add(1);
            self.stats.subtables_searched.add(searched as u64);
            if self.emc.enabled() && self.emc_pause == 0 {
                emc_learn(&mut self.emc, &self.slots, view, f);
            }
        }
        f
    }

    /// The megaflow a NIC flow mark names, if it is still the live megaflow the mark
    /// was bound to and `len` is long enough for it. Marks are bound by control
    /// ([`FlowCache::bind_mark`]) after the NIC rule exists; a megaflow removed since
    /// has a new slot version, so a stale mark never matches.
    #[inline(always)]
    pub fn marked(&self, mark: u32, len: usize) -> Option<u32> {
        let (id, version) = *self.marks.get(mark as usize)?;
        let s = self.slots.get(id as usize)?;
        (s.live && s.version == version && s.min_len as usize <= len && !self.is_stale(id)).then_some(id)
    }

    /// After a dpcls lookup while a purge is pending: remove the stale megaflows it
    /// found among the packets `looked` up, and look those packets up again (another
    /// megaflow may match them), until no hit is stale. Each round removes at least
    /// one megaflow, so it ends.
    #[cold]
    #[inline(never)]
    fn refuse_stale(
        &mut self,
        views: &[PacketView],
        found: &mut [u32],
        todo: &mut u32,
        looked: u32,
        c: &mut LookupCounts,
    ) {
        let mut check = looked & !*todo;
        while check != 0 {
            let mut again = 0u32;
            let mut m = check;
            while m != 0 {
                let i = m.trailing_zeros() as usize;
                m &= m - 1;
                if self.stale(found[i]) {
                    self.drop_stale(found[i]);
                    found[i] = NONE;
                    again |= 1 << i;
                }
            }
            if again == 0 {
                break;
            }
            c.dpcls -= again.count_ones();
            let mut left = again;
            let r = self.dpcls.lookup(views, &mut left, found);
            c.dpcls += r.hits;
            c.searched += r.searched;
            *todo |= left;
            check = again & !left;
        }
    }

    /// Whether megaflow `id` is stale: an invalidation since it was installed touched
    /// something it depends on. Only meaningful while a purge is pending.
    #[inline]
    fn stale(&self, id: u32) -> bool {
        let s = &self.slots[id as usize];
        let Some(f) = &s.flow else { return false };
        let mut m = f.deps & self.purge_bits;
        while m != 0 {
            if self.bit_epoch[m.trailing_zeros() as usize] > s.epoch {
                return true;
            }
            m &= m - 1;
        }
        false
    }

    /// Whether live megaflow `id` is stale (see "Invalidation" in the module doc):
    /// it matches nothing, and waits to be removed.
    #[inline]
    pub fn is_stale(&self, id: u32) -> bool {
        self.purge_bits != 0 && (id as usize) < self.slots.len() && self.stale(id)
    }

    /// Whether stale megaflows may be left (an invalidation's purge is pending).
    #[inline(always)]
    pub fn purging(&self) -> bool {
        self.purge_bits != 0
    }

    /// Remove stale megaflow `id`, found by a lookup or in the way of an install. It
    /// has nothing to settle: the invalidation came after a full settle, and a stale
    /// megaflow is never credited (no lookup returns it).
    fn drop_stale(&mut self, id: u32) {
        debug_assert!(
            self.slots[id as usize].flow.as_ref().is_none_or(|f| f.settled == (f.packets, f.bytes)),
            "a stale megaflow has nothing to settle"
        );
        self.stats.stale_found.add(1);
        self.unlink(id, RemoveReason::Invalidated);
    }

    /// Whether any mark is bound.
    #[inline(always)]
    pub fn has_marks(&self) -> bool {
        self.bound_marks > 0
    }

    /// Bind flow mark `mark` to this cache's megaflow with exactly `mask`, `key` and
    /// `min_len`, if it has one; returns its id. Marks above [`MAX_MARK`] are refused.
    pub fn bind_mark(&mut self, mark: u32, mask: &Mask, key: &[u64], min_len: u32) -> Option<u32> {
        if mark > MAX_MARK {
            return None;
        }
        let found = self.dpcls.find(mask, key, min_len).filter(|id| !self.is_stale(*id));
        let Some((id, version)) = found.and_then(|id| Some((id, self.version(id)?))) else {
            // Not here: whatever the mark meant before, it means nothing now.
            self.unbind_mark(mark);
            return None;
        };
        if self.marks.len() <= mark as usize {
            self.marks.resize(mark as usize + 1, (NONE, 0));
        }
        if self.marks[mark as usize].0 == NONE {
            self.bound_marks += 1;
        }
        self.marks[mark as usize] = (id, version);
        Some(id)
    }

    /// Unbind flow mark `mark`.
    pub fn unbind_mark(&mut self, mark: u32) {
        if let Some(m) = self.marks.get_mut(mark as usize) {
            if m.0 != NONE {
                *m = (NONE, 0);
                self.bound_marks -= 1;
            }
        }
    }

    /// Credit `packets`/`bytes` to megaflow `id` and mark it used now. Their counter
    /// effects wait on the dirty list for [`FlowCache::settle`].
    #[inline(always)]
    pub fn credit(&mut self, id: u32, packets: u64, bytes: u64) {
        let now = self.now_ms;
        let Some(s) = self.slots.get_mut(id as usize) else { return };
        let Some(f) = s.flow.as_mut() else { return };
        f.packets += packets;
        f.bytes += bytes;
        s.used_ms = now;
        if !s.listed {
            // Once per megaflow per settle, not per packet: the gauge stays exact.
            s.listed = true;
            self.dirty.push_back((id, now));
            self.stats.unsettled.set(self.dirty.len() as u64);
        }
    }

    /// [`FlowCache::credit`] packets whose counter effects are accounted for already
    /// (the pipeline run counted them) or by the caller, now, with the actions and
    /// replays returned.
    #[inline]
    pub fn credit_settled(&mut self, id: u32, packets: u64, bytes: u64) -> Option<(&Actions, &[Replay])> {
        let now = self.now_ms;
        let s = self.slots.get_mut(id as usize)?;
        let f = s.flow.as_mut()?;
        f.packets += packets;
        f.bytes += bytes;
        f.settled.0 += packets;
        f.settled.1 += bytes;
        s.used_ms = now;
        Some((&f.actions, f.replay.as_slice()))
    }

    /// Replay the counter effects of dirty megaflows' unsettled packets into `rt`:
    /// every one (`older_than` `None`), or those listed at least `older_than` ms ago,
    /// oldest first, at most `max`.
    pub fn settle(&mut self, rt: &mut Runtime, older_than: Option<u32>, max: usize) {
        for _ in 0..max {
            let Some(&(id, at)) = self.dirty.front() else { break };
            if older_than.is_some_and(|d| self.now_ms.wrapping_sub(at) < d) {
                break;
            }
            self.dirty.pop_front();
            let s = &mut self.slots[id as usize];
            s.listed = false;
            if let Some(f) = &mut s.flow {
                settle_flow(f, rt);
            }
        }
        self.stats.unsettled.set(self.dirty.len() as u64);
    }

    /// Megaflows with unsettled packets.
    pub fn dirty(&self) -> usize {
        self.dirty.len()
    }

    /// Install the megaflow of a tracked outcome for the packet `v`. Returns its id;
    /// if an identical megaflow exists (another packet of the flow got there first),
    /// that one's id.
    pub fn install(&mut self, v: &PacketView, reads: &ReadSet, actions: Actions, deps: u64, rt: &mut Runtime) -> u32 {
        let mut full = [0; KEY_WORDS];
        let used = key::words_of(reads, &mut full);
        self.install_from(v, (&full, used), reads.parsed, NewActions::Built(actions), deps, rt)
    }

    /// [`FlowCache::install`] the megaflow of a tracked run (its reads, outputs and
    /// counters), building its actions only if no megaflow has equal ones to share.
    pub fn install_tracked(&mut self, v: &PacketView, t: Tracked, deps: u64, rt: &mut Runtime) -> u32 {
        let mut buf = std::mem::take(&mut self.mask_buf);
        let full: &mut [u64; KEY_WORDS] = (&mut buf[..]).try_into().expect("mask_buf is KEY_WORDS long");
        let used = key::words_of(&t.tracker.reads, full);
        let parsed = t.tracker.reads.parsed;
        let id = self.install_from(v, (full, used), parsed, NewActions::Tracked(t), deps, rt);
        for w in crate::p4::ir::bits_of(used) {
            full[w] = 0;
        }
        self.mask_buf = buf;
        id
    }

    /// Install under the mask `full` (key-space words; `used`, the set of its nonzero
    /// ones) for a packet whose parser consumed `parsed` bytes, crediting the tracked
    /// run's replays besides the actions' counters.
    fn install_from(
        &mut self,
        v: &PacketView,
        (full, used): (&[u64; KEY_WORDS], u64),
        parsed: usize,
        actions: NewActions,
        deps: u64,
        rt: &mut Runtime,
    ) -> u32 {
        let min_len = parsed.max(key::extent_in(full, used)) as u32;
        // The key and the nonzero mask words' numbers (for the install event), in
        // inline vectors: a few words each, where zeroed arrays were a `memset` of
        // KEY_WORDS words per flow setup.
        let mut key: SmallVec<[u64; KEY_WORDS]> = SmallVec::new();
        let mut idx: SmallVec<[u8; KEY_WORDS]> = SmallVec::new();
        for w in crate::p4::ir::bits_of(used) {
            key.push(v.word(w) & full[w]);
            idx.push(w as u8);
        }
        let n = key.len();
        let key = &key[..];
        // Megaflows with equal actions share one copy: with many flows (ECMP, per-flow
        // megaflows) their actions stay in cache on the hit path, and a new megaflow
        // with the actions of an existing one builds nothing (no allocation). Hashed
        // once, with FxHash (SipHash over the edits was a third of a flow setup).
        // Taken before the eviction and the dpcls and EMC stores: a reference count
        // is a locked operation, which waits for pending stores to drain. (Sharing
        // first also keeps the actions if the victim was their last other user.)
        let actions_hash = actions.share_hash();
        let replay = match &actions {
            NewActions::Tracked(t) => t.replay,
            NewActions::Built(_) => &[],
        };
        // What the install event says of the actions: shared ones travel by id once
        // control has them (see `events`).
        let (actions, said) = match self.shared.entry(actions_hash) {
            Entry::Occupied(mut e) => {
                let sh = e.get_mut();
                if actions.same_as(&sh.actions) {
                    sh.users += 1;
                    let first = (!sh.announced && self.events.is_some()).then(|| Arc::clone(&sh.actions));
                    (Arc::clone(&sh.actions), EventActions::Shared { id: actions_id(&sh.actions), first })
                } else {
                    let a = Arc::new(actions.build());
                    let own = EventActions::Own(Arc::clone(&a));
                    (a, own)
                }
            }
            Entry::Vacant(e) => {
                let a = Arc::new(actions.build());
                let first = self.events.is_some().then(|| Arc::clone(&a));
                e.insert(Shared { actions: Arc::clone(&a), users: 1, announced: false });
                let said = EventActions::Shared { id: actions_id(&a), first };
                (a, said)
            }
        };
        if self.live >= self.cfg.max_flows {
            self.evict_one(rt);
        }
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.slots.push(Slot::EMPTY);
                (self.slots.len() - 1) as u32
            }
        };
        let place = loop {
            match self.dpcls.insert(full, key, min_len, id) {
                Ok(p) => break p,
                // A stale megaflow with the same key makes way.
                Err(existing) if self.is_stale(existing) => self.drop_stale(existing),
                Err(existing) => {
                    if let Some(gone) = self.unshare(actions_hash, &actions) {
                        self.gone.push(gone);
                    }
                    self.free.push(id);
                    return existing;
                }
            }
        };
        let slot = &mut self.slots[id as usize];
        slot.flow = Some(Megaflow {
            place,
            deps,
            actions,
            actions_hash,
            replay: Replays::new(replay),
            packets: 0,
            bytes: 0,
            settled: (0, 0),
            installed_ms: self.now_ms,
        });
        slot.used_ms = self.now_ms;
        slot.epoch = self.epoch;
        slot.min_len = u16::try_from(min_len).unwrap_or(u16::MAX);
        slot.live = true;
        let version = slot.version;
        self.live += 1;
        // The union of masks covers the new one before any EMC entry points at it; the
        // entry itself is made by the flow's next packet (a dpcls hit), not here: in a
        // flow setup storm most new megaflows see one packet, and an insertion writes
        // a random 80-byte entry for nothing (`pipeline_bench --only-setup`).
        self.emc.cover(full, used);
        self.stats.installed.add(1);
        self.gauges();
        if let Some(tx) = &mut self.events {
            let announces = matches!(said, EventActions::Shared { first: Some(_), .. });
            let head = InstallHead { worker: self.worker, flow: id, version, min_len, deps };
            match tx.send_install(head, said, full, &idx[..n], key) {
                Ok(()) if announces => {
                    if let Some(sh) = self.shared.get_mut(&actions_hash) {
                        sh.announced = true;
                    }
                }
                Ok(()) => {}
                Err(_) => self.stats.events_dropped.add(1),
            }
        }
        id
    }

    fn gauges(&self) {
        self.stats.megaflows.set(self.live as u64);
        self.stats.subtables.set(self.dpcls.active_subtables() as u64);
        self.stats.unsettled.set(self.dirty.len() as u64);
    }

    fn remove(&mut self, id: u32, reason: RemoveReason, rt: &mut Runtime) {
        if let Some(f) = &mut self.slots[id as usize].flow {
            settle_flow(f, rt);
        }
        self.unlink(id, reason);
    }

    /// Remove megaflow `id`, settled.
    fn unlink(&mut self, id: u32, reason: RemoveReason) {
        let slot = &mut self.slots[id as usize];
        let Some(f) = slot.flow.take() else { return };
        slot.live = false;
        let version = slot.version;
        slot.version = slot.version.wrapping_add(1);
        if let Some(gone) = self.unshare(f.actions_hash, &f.actions) {
            self.gone.push(gone);
        }
        // Released before the dpcls and event stores, not after them: the reference
        // count is a locked operation, which waits for pending stores to drain.
        let Megaflow { actions, place, packets, bytes, .. } = f;
        drop(actions);
        self.dpcls.remove(place);
        self.free.push(id);
        self.live -= 1;
        match reason {
            RemoveReason::Idle => self.stats.expired.add(1),
            RemoveReason::Evicted => self.stats.evicted.add(1),
            RemoveReason::Invalidated => self.stats.invalidated.add(1),
        }
        if self.live == 0 {
            self.emc.reset();
        }
        if let Some(tx) = &mut self.events {
            let e = FlowEvent::Removed(Removal { worker: self.worker, flow: id, version, reason, packets, bytes });
            if tx.send(e).is_err() {
                self.stats.events_dropped.add(1);
            }
        }
        self.send_gone();
    }

    /// Send the pending [`FlowEvent::ActionsGone`] events the ring takes; the rest
    /// wait for the next removal or [`FlowCache::maintain`]. (Not dropped: control
    /// would hold the actions forever.)
    fn send_gone(&mut self) {
        let Some(tx) = &mut self.events else {
            self.gone.clear();
            return;
        };
        while let Some(&id) = self.gone.last() {
            if tx.send(FlowEvent::ActionsGone { worker: self.worker, id }).is_err() {
                return;
            }
            self.gone.pop();
        }
    }

    /// A megaflow no longer uses `actions` (hashed `hash`): the shared copy goes when
    /// its last user does. Returns its id if control must hear it is gone.
    fn unshare(&mut self, hash: u64, actions: &Arc<Actions>) -> Option<u64> {
        if let Entry::Occupied(mut e) = self.shared.entry(hash) {
            let sh = e.get_mut();
            if Arc::ptr_eq(&sh.actions, actions) {
                sh.users -= 1;
                if sh.users == 0 {
                    let sh = e.remove();
                    return sh.announced.then(|| actions_id(&sh.actions));
                }
            }
        }
        None
    }

    fn evict_one(&mut self, rt: &mut Runtime) {
        let n = self.slots.len();
        let mut victim: Option<(u32, u32)> = None;
        let mut seen = 0;
        for _ in 0..n {
            // Not `% n`: a division per candidate, on the loop's dependency chain.
            self.hand += 1;
            if self.hand >= n {
                self.hand = 0;
            }
            let s = &self.slots[self.hand];
            if s.live {
                let age = self.now_ms.wrapping_sub(s.used_ms);
                if victim.is_none_or(|(_, a)| age > a) {
                    victim = Some((self.hand as u32, age));
                }
                seen += 1;
                if seen == EVICT_CANDIDATES {
                    break;
                }
            }
        }
        // The next eviction's candidates follow the hand: ask for their first lines
        // (where the part it reads is) now, so that the next one does not wait on
        // EVICT_CANDIDATES cache misses in a row.
        let mut j = self.hand;
        for _ in 0..EVICT_CANDIDATES {
            j += 1;
            if j >= n {
                j = 0;
            }
            prefetch(&self.slots[j]);
        }
        if let Some((id, _)) = victim {
            self.remove(id, RemoveReason::Evicted, rt);
        }
    }

    /// Make every megaflow that depends on any bit of `deps` stale, in constant time:
    /// from now on no lookup, mark or scan returns one. Each is removed when a lookup
    /// finds it, or by the purge ([`FlowCache::purge`]), a slice at a time. `u64::MAX`
    /// (a new pipeline) removes every megaflow now. The caller settles first (see
    /// [`FlowCache::drop_stale`]).
    pub fn invalidate(&mut self, deps: u64, rt: &mut Runtime) {
        if deps == u64::MAX {
            self.flush(rt);
            return;
        }
        if deps == 0 || self.live == 0 {
            return;
        }
        if self.epoch == u32::MAX {
            self.renumber(rt);
        }
        self.epoch += 1;
        let mut m = deps;
        while m != 0 {
            self.bit_epoch[m.trailing_zeros() as usize] = self.epoch;
            m &= m - 1;
        }
        // Slots already passed may hold megaflows stale by these bits: start over.
        self.purge_bits |= deps;
        self.purge_next = 0;
    }

    /// The epochs would wrap (after 2^32 invalidations): finish the purge now, so
    /// every live megaflow is current, and count again from 0.
    #[cold]
    fn renumber(&mut self, rt: &mut Runtime) {
        self.purge(rt, usize::MAX, usize::MAX);
        self.slots.iter_mut().for_each(|s| s.epoch = 0);
        self.bit_epoch = [0; 64];
        self.epoch = 0;
    }

    /// Remove stale megaflows: examine at most `slots` slots from where the purge
    /// is, removing at most `removals` of them. Returns whether the purge is done
    /// (then nothing is stale, and lookups stop checking).
    pub fn purge(&mut self, rt: &mut Runtime, slots: usize, removals: usize) -> bool {
        if self.purge_bits == 0 {
            return true;
        }
        let (mut seen, mut removed) = (0, 0);
        while self.purge_next < self.slots.len() && seen < slots && removed < removals {
            let id = self.purge_next as u32;
            self.purge_next += 1;
            seen += 1;
            if self.slots[id as usize].live && self.stale(id) {
                self.remove(id, RemoveReason::Invalidated, rt);
                removed += 1;
            }
        }
        let done = self.purge_next >= self.slots.len();
        if done {
            self.purge_bits = 0;
            self.purge_next = 0;
        }
        if removed > 0 {
            self.gauges();
        }
        done
    }

    /// Remove every megaflow.
    pub fn flush(&mut self, rt: &mut Runtime) -> usize {
        let n = self.live;
        for id in 0..self.slots.len() {
            if self.slots[id].flow.is_some() {
                self.remove(id as u32, RemoveReason::Invalidated, rt);
            }
        }
        self.dpcls.clear();
        self.emc.reset();
        self.purge_bits = 0;
        self.purge_next = 0;
        self.gauges();
        n
    }

    /// The EMC pays off only when it hits: a probe that misses costs a key, a hash,
    /// two cache lines and an insertion. When fewer than half of the lookups of an
    /// upkeep period hit (more flows than entries: thrashing), lookups skip it for
    /// [`EMC_PAUSE`] periods, then it starts again, empty.
    fn adapt_emc(&mut self) {
        if self.emc_pause > 0 {
            self.emc_pause -= 1;
            if self.emc_pause == 0 {
                self.emc.clear();
            }
            return;
        }
        let (lookups, hits) = std::mem::take(&mut self.emc_period);
        if lookups >= EMC_MIN_LOOKUPS && hits * 2 < lookups {
            self.emc_pause = EMC_PAUSE;
            self.stats.emc_pauses.add(1);
        }
    }

    /// Set the clock (milliseconds, any origin, wrapping).
    pub fn set_now(&mut self, ms: u32) {
        self.now_ms = ms;
    }

    /// Periodic upkeep, called by the owner every so many bursts: re-rank subtables,
    /// settle a slice of the megaflows dirty for [`SETTLE_AFTER_MS`], purge a slice
    /// of stale megaflows and sweep a slice of slots for idle megaflows.
    pub fn maintain(&mut self, rt: &mut Runtime) {
        self.dpcls.rerank();
        self.adapt_emc();
        self.settle(rt, Some(SETTLE_AFTER_MS), SETTLE_SLICE);
        self.purge(rt, UPKEEP_PURGE.0, UPKEEP_PURGE.1);
        let n = self.slots.len();
        if n == 0 {
            return;
        }
        self.send_gone();
        for _ in 0..SWEEP_SLICE.min(n) {
            self.sweep = (self.sweep + 1) % n;
            let s = &self.slots[self.sweep];
            let idle = s.live && self.now_ms.wrapping_sub(s.used_ms) > self.cfg.max_idle_ms;
            if idle {
                self.remove(self.sweep as u32, RemoveReason::Idle, rt);
            }
        }
        self.gauges();
    }
}

impl Drop for FlowCache {
    /// Control holds the shared actions it was told of until told they are gone: tell
    /// it now, as far as the ring takes (a pipeline change drops a worker's cache).
    fn drop(&mut self) {
        let announced = self.shared.values().filter(|s| s.announced).map(|s| actions_id(&s.actions));
        let announced: Vec<u64> = announced.collect();
        self.gone.extend(announced);
        self.send_gone();
    }
}

/// The actions a megaflow is installed with: built, or still in the tracker.
enum NewActions<'a> {
    Built(Actions),
    Tracked(Tracked<'a>),
}

impl NewActions<'_> {
    fn share_hash(&self) -> u64 {
        match self {
            NewActions::Built(a) => a.share_hash(),
            NewActions::Tracked(t) => t.share_hash(),
        }
    }

    fn same_as(&self, a: &Actions) -> bool {
        match self {
            NewActions::Built(b) => b == a,
            NewActions::Tracked(t) => t.same_as(a),
        }
    }

    fn build(self) -> Actions {
        match self {
            NewActions::Built(a) => a,
            NewActions::Tracked(t) => t.build(),
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod differential;
