//! The P4 pipeline as a forwarding stage, behind the megaflow cache
//! ([`crate::cache`]).
//!
//! Per burst: every packet is looked up (EMC, then dpcls) in one pass; then, in
//! arrival order, a hit executes its megaflow's actions on the mbuf and a miss
//! upcalls into the pipeline (after one more lookup, so the second packet of a new
//! flow in the same burst hits the megaflow the first one installed). A burst that
//! is all one megaflow's, whose outcome is a single copy rewritten in place or with
//! its headers pushed or popped, skips the per-packet dispatch: every packet is
//! rewritten, then the burst is handed to the egress port whole (the common case of
//! a few heavy flows). Megaflow
//! statistics are credited once per megaflow per burst ([`Datapath::replay`]); the P4
//! counters they stand for (entry hits, direct and indexed counters) when settled
//! (see [`crate::cache`]: before any read).
//!
//! The received mbuf carries the last copy out: rewritten in place when the layout
//! stays, or with its headers replaced (data start moved, payload untouched) when
//! headers are pushed or popped. Other copies (clones, multicast replicas) are new
//! mbufs. P4 port numbers map to Sluice ports through the configuration; a copy for a
//! P4 port with no Sluice port is dropped as `no_route`. Every drop is counted with
//! its reason ([`DropReason`]).
//!
//! Per packet: no allocation (copies take mbufs from the pool; the interpreter's and
//! the stage's buffers are reused; only an upcall that installs a megaflow
//! allocates), no lock, no syscall. Each worker owns its [`Datapath`]: with several
//! workers each has its own copy of the tables, changed only through its mailbox
//! ([`crate::mailbox`]) between bursts; registers are per worker.
//!
//! Copies for the CPU port and digest samples go up to control over the uplink
//! ([`PipelineStage::set_uplink`], [`crate::uplink`]); control injects packet-outs
//! with [`PipelineStage::inject`].

use std::sync::Arc;

use dpdk_sys::lcore::rdtsc;
use dpdk_sys::mbuf::Mbuf;
use dpdk_sys::mempool::Mempool;

use crate::cache::actions::{patch, put_headers, Apply, Output, TEMPLATE_MAX};
use crate::cache::datapath::{Datapath, Upcall};
use crate::cache::dpcls::NONE;
use crate::cache::event_ring::EventTx;
use crate::cache::key::PacketView;
use crate::cache::{CacheConfig, FlowCache, BURST_PURGE};
use crate::egress::Egress;
use crate::p4::interp::DropCause;
use crate::p4::ir::Ir;
use crate::p4::tables::Runtime;
use crate::qos::Share;
use crate::stats::{DropReason, WorkerStats};
use crate::uplink::{self, DigestFilter, Uplink};
use crate::{Burst, BurstProcessor, PortIndex, BURST_SIZE};

/// Number of P4 port numbers (9-bit `egress_spec`).
pub const P4_PORTS: usize = 512;

/// Bursts between cache upkeep calls (re-ranking, an idle sweep slice, the clock).
const UPKEEP_BURSTS: u32 = 1024;

/// A worker's P4 pipeline stage.
pub struct PipelineStage {
    dp: Datapath,
    pool: &'static Mempool,
    to_index: Box<[Option<PortIndex>; P4_PORTS]>,
    to_p4: Vec<u32>,
    scratch: Vec<u8>,
    /// This burst's megaflows and what they matched: id, packets, bytes.
    groups: Vec<(u32, u64, u64)>,
    /// Per megaflow id: its index in `groups` if it has one this burst.
    group_of: Vec<u8>,
    bursts: u32,
    tsc_per_ms: u64,
    /// The meters' clock for this burst's metered hits (0: not read yet).
    tsc: u64,
    /// The cache's install epoch before this burst's lookup (see
    /// [`FlowCache::lookup_since`]).
    epoch: u64,
    /// The ring to control (packet-ins, digests).
    uplink: Option<Uplink>,
    /// Digest samples sent lately (repeats are held back).
    digest_filter: DigestFilter,
    /// The CPU port: its copies go up as packet-ins.
    cpu_port: Option<u32>,
}

impl std::fmt::Debug for PipelineStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineStage").field("program", &self.dp.ir.name).field("ports", &self.to_p4).finish()
    }
}

/// The uplink, if `port` is the CPU port.
#[inline]
fn to_cpu(uplink: &Option<Uplink>, cpu_port: Option<u32>, port: u32) -> Option<&Uplink> {
    uplink.as_ref().filter(|_| cpu_port == Some(port))
}

fn reason(c: DropCause) -> DropReason {
    match c {
        DropCause::Ingress => DropReason::P4Ingress,
        DropCause::Egress => DropReason::P4Egress,
        DropCause::NoMcastGroup => DropReason::P4NoMcastGroup,
        DropCause::PassLimit => DropReason::P4PassLimit,
        DropCause::Assert => DropReason::P4Assert,
    }
}

/// How a stage is built.
#[derive(Debug, Clone)]
pub struct StageConfig {
    /// The cache.
    pub cache: CacheConfig,
    /// Worker id (in events).
    pub worker: u32,
    /// TSC ticks per second (the megaflow clock).
    pub tsc_hz: u64,
    /// This worker's part of every new meter cell's rates (1/number of workers).
    pub meter_share: Share,
}

impl PipelineStage {
    /// A stage running `ir` with state `rt`; `p4_ports[i]` is the P4 port number of
    /// Sluice port index `i`. Copies are allocated from `pool`; cache counters go to
    /// `stats`, megaflow events to `events`. Meter cells already configured in `rt`
    /// get running markers (with a share as configured); one that cannot (no EAL)
    /// keeps marking GREEN, reported on stderr.
    pub fn new(
        ir: Arc<Ir>,
        mut rt: Runtime,
        p4_ports: &[u32],
        pool: &'static Mempool,
        cfg: &StageConfig,
        stats: &WorkerStats,
        events: Option<EventTx>,
    ) -> Self {
        let mut to_index = Box::new([None; P4_PORTS]);
        for (i, p) in p4_ports.iter().enumerate() {
            if let Some(slot) = to_index.get_mut(*p as usize) {
                *slot = Some(i);
            }
        }
        if let Err(e) = rt.set_meter_share(cfg.meter_share, &ir) {
            eprintln!("sluiced: worker {}: meters cannot run: {e}", cfg.worker);
        }
        let mut cache = FlowCache::new(cfg.cache, cfg.worker, Arc::clone(&stats.cache), events);
        let tsc_per_ms = (cfg.tsc_hz / 1000).max(1);
        cache.set_now((rdtsc() / tsc_per_ms) as u32);
        Self {
            dp: Datapath::new(ir, rt, cache),
            pool,
            to_index,
            to_p4: p4_ports.to_vec(),
            scratch: Vec::with_capacity(2048),
            groups: Vec::with_capacity(BURST_SIZE),
            group_of: Vec::new(),
            bursts: 0,
            tsc_per_ms,
            tsc: 0,
            epoch: 0,
            uplink: None,
            digest_filter: DigestFilter::new(cfg.tsc_hz),
            cpu_port: None,
        }
    }

    /// Send digest samples and, when `cpu_port` is set (a P4 port no Sluice port
    /// has), the copies for it (packet-ins) up to control over `to`. Without an
    /// uplink, samples are counted lost and CPU-port copies dropped as `no_route`.
    pub fn set_uplink(&mut self, to: Uplink, cpu_port: Option<u32>) {
        self.uplink = Some(to);
        self.cpu_port = cpu_port;
    }

    /// Run `bytes` through the pipeline as if received on P4 port `in_p4` (the
    /// packet-out path: `in_p4` is the CPU port). Flushes egress.
    pub fn inject(&mut self, in_p4: u32, bytes: &[u8], egress: &mut Egress, stats: &WorkerStats) {
        let Some(m) = Mbuf::from_bytes(self.pool, bytes) else {
            return stats.drop_packets(DropReason::NoMbuf, 1);
        };
        stats.from_cpu.add(1);
        let mut burst = Burst::new();
        if burst.push(m).is_ok() {
            self.process_p4(in_p4, &mut burst, egress, stats);
        }
        egress.flush(stats);
    }

    /// Sluice port index `index` has P4 port number `p4` from now on (`None`: the
    /// port is gone). Megaflows need no change: they match and output P4 port
    /// numbers, which this map turns into indices per packet.
    pub fn set_port(&mut self, index: PortIndex, p4: Option<u32>) {
        if let Some(old) = self.to_p4.get(index).copied() {
            if let Some(slot) = self.to_index.get_mut(old as usize) {
                if *slot == Some(index) {
                    *slot = None;
                }
            }
        }
        if index >= self.to_p4.len() {
            self.to_p4.resize(index + 1, u32::MAX);
        }
        self.to_p4[index] = p4.unwrap_or(u32::MAX);
        if let Some(slot) = p4.and_then(|p| self.to_index.get_mut(p as usize)) {
            *slot = Some(index);
        }
    }

    /// Credit `packets` (`bytes`) that a NIC handled for megaflow `id` at `version`
    /// (full offload: they never reached this worker) as if they had hit it: the
    /// megaflow's statistics, the P4 counters it replays, and its drops by reason;
    /// for a metered megaflow, as packets its meter colored `color` (the cell's color
    /// counts, that outcome's counters and drops). Returns false (nothing credited)
    /// if that megaflow is gone.
    pub fn credit_offloaded(
        &mut self,
        id: u32,
        version: u32,
        packets: u64,
        bytes: u64,
        color: Option<u8>,
        stats: &WorkerStats,
    ) -> bool {
        if self.dp.cache.version(id) != Some(version) || self.dp.cache.is_stale(id) {
            return false;
        }
        if let Some(f) = self.dp.cache.get(id) {
            let outcome = match (&f.actions.metered, color) {
                (Some(b), Some(c)) => &b.colors[(c as usize).min(2)],
                _ => &*f.actions,
            };
            for d in outcome.drops.iter() {
                stats.drop_packets(reason(*d), packets as usize);
            }
        }
        match color {
            Some(c) => self.dp.replay_color(id, c, packets, bytes),
            None => self.dp.replay(id, packets, bytes),
        }
        true
    }

    /// The datapath (program, state, cache).
    pub fn datapath(&mut self) -> &mut Datapath {
        &mut self.dp
    }

    /// Count one hit of megaflow `id` in this burst's groups.
    #[inline(always)]
    fn group(&mut self, id: u32, bytes: usize) {
        self.group_n(id, 1, bytes as u64)
    }

    /// Count `packets` hits (`bytes`) of megaflow `id` in this burst's groups.
    #[inline(always)]
    fn group_n(&mut self, id: u32, packets: u64, bytes: u64) {
        // O(1): the megaflow's last group index, verified (stale values are harmless).
        let Some(slot) = self.group_of.get_mut(id as usize) else {
            // Only megaflows installed before `group_of` grew (never on the hit path:
            // upcalls grow it).
            return self.groups.push((id, packets, bytes));
        };
        match self.groups.get_mut(*slot as usize) {
            Some(g) if g.0 == id => {
                g.1 += packets;
                g.2 += bytes;
            }
            _ => {
                *slot = self.groups.len() as u8;
                self.groups.push((id, packets, bytes));
            }
        }
    }

    /// A burst that is all one megaflow's, whose outcome is one copy to a Sluice port
    /// and nothing else (no meter, drop or CPU-port copy), rewritten in place or with
    /// its headers replaced (pushed or popped: VLAN tags, tunnels): each packet is
    /// rewritten, then the whole burst goes to the port at once (no per-packet action
    /// dispatch or enqueue). Does nothing and returns false for any other burst, and
    /// for a header change some packet lacks the headroom for (the per-packet path
    /// copies that one). `found` is this burst's lookup result, so every id in it is
    /// current.
    #[inline]
    fn send_uniform(&mut self, found: &[u32], burst: &mut Burst, egress: &mut Egress, stats: &WorkerStats) -> bool {
        let Some(&id) = found.first() else { return false };
        if id == NONE || found.iter().any(|f| *f != id) || !burst.all_contiguous() {
            return false;
        }
        let Some(flow) = self.dp.cache.get(id) else { return false };
        let a = &*flow.actions;
        let ([o], None, []) = (&*a.outputs, &a.metered, &*a.drops) else { return false };
        let Some(Some(idx)) = self.to_index.get(o.port as usize).copied() else { return false };
        let mut bytes = 0u64;
        match &o.apply {
            Apply::InPlace { patches } => {
                for i in 0..burst.len() {
                    let d = burst.data_mut(i);
                    let len = d.len();
                    bytes += len as u64;
                    o.fix_lengths(d, len);
                    patch(d, patches, &o.edit.checksums);
                }
            }
            Apply::Rebuild { patches, template } => {
                // Every packet is checked before any is changed: all go, or all take
                // the per-packet path.
                let strip = o.edit.strip as usize;
                if !burst.fronts_fit(strip, o.edit.header_len() as usize) {
                    return false;
                }
                match template {
                    // Built on the stack and written straight into the new front.
                    Some(t) => {
                        let mut h = [0u8; TEMPLATE_MAX];
                        for i in 0..burst.len() {
                            let d = burst.data(i);
                            bytes += d.len() as u64;
                            o.headers_from(t, d, patches, &mut h);
                            let front = burst.reframe(i, strip, t.len()).expect("checked by fronts_fit");
                            put_headers(front, &h);
                        }
                    }
                    None => {
                        for i in 0..burst.len() {
                            let d = burst.data(i);
                            bytes += d.len() as u64;
                            o.headers(d, patches, &mut self.scratch);
                            let replaced = burst.replace_front(i, strip, &self.scratch);
                            debug_assert!(replaced, "checked by fronts_fit");
                        }
                    }
                }
            }
            Apply::Copy => return false,
        }
        self.group_n(id, burst.len() as u64, bytes);
        stats.cache.sent_whole.add(burst.len() as u64);
        egress.send(idx, burst, stats);
        true
    }

    /// A burst of several megaflows, every packet matched by one (so no upcall runs
    /// and none is evicted), whose outcomes are each one copy to the same Sluice port
    /// rewritten in place or with its headers replaced from a template (no meter,
    /// drop or CPU-port copy): each packet is rewritten by its own megaflow, then the
    /// burst goes to the port at once, as [`PipelineStage::send_uniform`] sends a
    /// burst of one megaflow. Every packet's megaflow (and headroom, for new headers)
    /// is checked before any packet is changed: all go, or all take the per-packet
    /// path. Returns whether the burst was sent.
    fn send_mixed(&mut self, found: &[u32], burst: &mut Burst, egress: &mut Egress, stats: &WorkerStats) -> bool {
        if found.contains(&NONE) || !burst.all_contiguous() {
            return false;
        }
        let cache = &self.dp.cache;
        let simple = |id: u32| {
            let a = &*cache.get(id)?.actions;
            match (&*a.outputs, &a.metered, &*a.drops) {
                ([o], None, [])
                    if matches!(o.apply, Apply::InPlace { .. } | Apply::Rebuild { template: Some(_), .. }) =>
                {
                    Some(o)
                }
                _ => None,
            }
        };
        let Some(port) = simple(found[0]).map(|o| o.port) else { return false };
        let fits = |i: usize, o: &Output| match &o.apply {
            Apply::Rebuild { template: Some(t), .. } => burst.front_fits(i, o.edit.strip as usize, t.len()),
            _ => true,
        };
        if !found.iter().enumerate().all(|(i, &id)| simple(id).is_some_and(|o| o.port == port && fits(i, o))) {
            return false;
        }
        let Some(Some(idx)) = self.to_index.get(port as usize).copied() else { return false };
        let mut lens = [0u32; BURST_SIZE];
        let mut h = [0u8; TEMPLATE_MAX];
        for (i, &id) in found.iter().enumerate() {
            let Some(o) = simple(id) else { unreachable!("checked above") };
            let len = burst.data(i).len();
            lens[i] = len as u32;
            match &o.apply {
                Apply::InPlace { patches } => {
                    let d = burst.data_mut(i);
                    o.fix_lengths(d, len);
                    patch(d, patches, &o.edit.checksums);
                }
                Apply::Rebuild { patches, template: Some(t) } => {
                    o.headers_from(t, burst.data(i), patches, &mut h);
                    let front = burst.reframe(i, o.edit.strip as usize, t.len()).expect("checked above");
                    put_headers(front, &h);
                }
                _ => unreachable!("checked above"),
            }
        }
        for (&id, &len) in found.iter().zip(&lens) {
            self.group(id, len as usize);
        }
        stats.cache.sent_whole.add(burst.len() as u64);
        egress.send(idx, burst, stats);
        true
    }

    /// Send `m` as megaflow `id` says.
    #[inline]
    fn execute(&mut self, id: u32, mut m: Mbuf, egress: &mut Egress, stats: &WorkerStats) {
        let Some(flow) = self.dp.cache.get(id) else {
            stats.drop_packets(DropReason::Unhandled, 1);
            return;
        };
        let mut a = &*flow.actions;
        if a.metered.is_some() {
            // Execute its meters (one clock read per burst) and take the colors'
            // branch (its counters credited for this packet).
            if self.tsc == 0 {
                self.tsc = rdtsc();
            }
            a = a.leaf(&mut self.dp.rt, self.tsc, m.data().len() as u64);
        }
        for d in a.drops.iter() {
            stats.drop_packets(reason(*d), 1);
        }
        let n = a.outputs.len();
        for (k, o) in a.outputs.iter().enumerate() {
            let Some(idx) = self.to_index.get(o.port as usize).copied().flatten() else {
                match to_cpu(&self.uplink, self.cpu_port, o.port) {
                    Some(to) => {
                        self.scratch.clear();
                        o.render(m.data(), &mut self.scratch);
                        uplink::packet_in(to, self.pool, &self.scratch, stats);
                    }
                    None => stats.drop_packets(DropReason::NoRoute, 1),
                }
                continue;
            };
            if k + 1 == n {
                match &o.apply {
                    Apply::InPlace { patches } => {
                        let len = m.data().len();
                        o.fix_lengths(m.data_mut(), len);
                        patch(m.data_mut(), patches, &o.edit.checksums);
                        egress.send_one(idx, m, stats);
                        return;
                    }
                    Apply::Rebuild { patches, template: Some(t) } => {
                        let mut h = [0u8; TEMPLATE_MAX];
                        o.headers_from(t, m.data(), patches, &mut h);
                        if let Some(front) = m.reframe(o.edit.strip as usize, t.len()) {
                            put_headers(front, &h);
                            egress.send_one(idx, m, stats);
                            return;
                        }
                    }
                    Apply::Rebuild { patches, template: None } => {
                        o.headers(m.data(), patches, &mut self.scratch);
                        if m.replace_front(o.edit.strip as usize, &self.scratch) {
                            egress.send_one(idx, m, stats);
                            return;
                        }
                    }
                    Apply::Copy => {}
                }
            }
            self.scratch.clear();
            o.render(m.data(), &mut self.scratch);
            match Mbuf::from_bytes(self.pool, &self.scratch) {
                Some(c) => egress.send_one(idx, c, stats),
                None => stats.drop_packets(DropReason::NoMbuf, 1),
            }
        }
    }

    /// The outcome of an uncached run (the interpreter's output) for `m`.
    fn send_uncached(&mut self, m: Mbuf, egress: &mut Egress, stats: &WorkerStats) {
        let now = self.dp.interp.now;
        for d in self.dp.interp.out.digests() {
            uplink::digest(self.uplink.as_ref(), &mut self.digest_filter, d.list, &d.values, now, stats);
        }
        let out = &self.dp.interp.out;
        for d in &out.drops {
            stats.drop_packets(reason(*d), 1);
        }
        let n = out.packets().len();
        let in_len = m.data().len();
        let mut original = Some(m);
        for (k, o) in out.packets().iter().enumerate() {
            let Some(idx) = self.to_index.get(o.port as usize).copied().flatten() else {
                match to_cpu(&self.uplink, self.cpu_port, o.port) {
                    Some(to) => uplink::packet_in(to, self.pool, &o.bytes, stats),
                    None => stats.drop_packets(DropReason::NoRoute, 1),
                }
                continue;
            };
            let rewritten = match (k + 1 == n, o.strip) {
                (true, Some(strip)) => {
                    let mut m = original.take().expect("the received mbuf is used once");
                    match (o.bytes.len() + strip as usize).checked_sub(in_len) {
                        Some(headers) if m.replace_front(strip as usize, &o.bytes[..headers]) => Some(m),
                        _ => None,
                    }
                }
                _ => None,
            };
            let out = match rewritten {
                Some(m) => m,
                None => match Mbuf::from_bytes(self.pool, &o.bytes) {
                    Some(m) => m,
                    None => {
                        stats.drop_packets(DropReason::NoMbuf, 1);
                        continue;
                    }
                },
            };
            egress.send_one(idx, out, stats);
        }
    }

    /// A packet no megaflow matched at lookup time (`evicted`: its megaflow was
    /// evicted by an upcall of this burst since).
    fn miss(&mut self, in_p4: u32, m: Mbuf, evicted: bool, egress: &mut Egress, stats: &WorkerStats) {
        let len = m.data().len();
        // An earlier packet of this burst may have installed its megaflow: probed
        // among the megaflows installed since the burst's lookup (nothing at all if
        // none was); a packet whose megaflow was evicted is looked up whole (another
        // megaflow of before may match it).
        let view = PacketView::new(in_p4, m.data());
        let again = if evicted {
            let mut found = [NONE; 1];
            self.dp.cache.lookup(&[view], &mut found);
            found[0]
        } else {
            self.dp.cache.lookup_since(&view, self.epoch)
        };
        if again != NONE {
            self.group(again, len);
            return self.execute(again, m, egress, stats);
        }
        // An install may evict: credit what this burst matched so far first.
        self.credit_groups();
        // The meters' clock for the run.
        self.dp.interp.now = rdtsc();
        match self.dp.upcall(in_p4, m.data()) {
            Upcall::Cached(id) => {
                self.grow_groups(id);
                self.execute(id, m, egress, stats)
            }
            Upcall::Metered(id) => {
                self.grow_groups(id);
                self.send_uncached(m, egress, stats)
            }
            Upcall::Uncached => self.send_uncached(m, egress, stats),
        }
    }

    /// Make room for megaflow `id` in `group_of`.
    fn grow_groups(&mut self, id: u32) {
        if self.group_of.len() <= id as usize {
            self.group_of.resize(id as usize + 1024, u8::MAX);
        }
    }

    /// Credit this burst's groups (counters, megaflow statistics).
    fn credit_groups(&mut self) {
        for k in 0..self.groups.len() {
            let (id, p, b) = self.groups[k];
            self.dp.replay(id, p, b);
        }
        self.groups.clear();
    }

    fn upkeep(&mut self) {
        self.bursts = 0;
        self.dp.cache.set_now((rdtsc() / self.tsc_per_ms) as u32);
        self.dp.maintain();
    }
}

impl BurstProcessor for PipelineStage {
    fn process(&mut self, in_port: PortIndex, burst: &mut Burst, egress: &mut Egress, stats: &WorkerStats) {
        let in_p4 = self.to_p4.get(in_port).copied().unwrap_or(u32::MAX);
        self.process_p4(in_p4, burst, egress, stats)
    }
}

impl PipelineStage {
    #[inline(always)]
    fn process_p4(&mut self, in_p4: u32, burst: &mut Burst, egress: &mut Egress, stats: &WorkerStats) {
        let n = burst.len();
        self.tsc = 0;
        self.epoch = self.dp.cache.epoch();
        let mut found = [NONE; BURST_SIZE];
        let mut versions = [0u32; BURST_SIZE];
        if !self.dp.cache.is_empty() {
            let views: [PacketView; BURST_SIZE] =
                std::array::from_fn(|i| PacketView::new(in_p4, if i < n { burst.data(i) } else { &[] }));
            let mut todo: u32 = if n == BURST_SIZE { u32::MAX } else { (1 << n) - 1 };
            if self.dp.cache.has_marks() {
                // Partial offload: the NIC named the megaflow; no lookup.
                let (mut hits, mut misses) = (0, 0);
                for (i, f) in found[..n].iter_mut().enumerate() {
                    if let Some(mark) = burst.mark(i) {
                        match self.dp.cache.marked(mark, burst.data(i).len()) {
                            Some(id) => {
                                *f = id;
                                todo &= !(1 << i);
                                hits += 1;
                            }
                            None => misses += 1,
                        }
                    }
                }
                let st = self.dp.cache.stats();
                st.mark_hits.add(hits);
                st.mark_misses.add(misses);
            }
            self.dp.cache.lookup_some(&views[..n], &mut found, todo);
            if self.send_uniform(&found[..n], burst, egress, stats)
                || self.send_mixed(&found[..n], burst, egress, stats)
            {
                return self.end_burst();
            }
            for (v, id) in versions.iter_mut().zip(&found[..n]) {
                *v = self.dp.cache.version(*id).unwrap_or(0);
            }
        }
        let mut i = 0;
        burst.drain(|m| {
            let (id, version) = (found[i], versions[i]);
            i += 1;
            if !m.is_contiguous() {
                stats.drop_packets(DropReason::MultiSegment, 1);
            } else if id != NONE && self.dp.cache.version(id) == Some(version) {
                self.group(id, m.data().len());
                self.execute(id, m, egress, stats);
            } else {
                // A miss, or a megaflow an upcall of this burst evicted.
                self.miss(in_p4, m, id != NONE, egress, stats);
            }
        });
        self.end_burst()
    }

    /// After a burst: credit its groups, purge a slice of stale megaflows if any
    /// ([`BURST_PURGE`]), and the upkeep every [`UPKEEP_BURSTS`].
    #[inline(always)]
    fn end_burst(&mut self) {
        self.credit_groups();
        if self.dp.cache.purging() {
            self.dp.purge(BURST_PURGE.0, BURST_PURGE.1);
        }
        self.bursts += 1;
        if self.bursts == UPKEEP_BURSTS {
            self.upkeep();
        }
    }
}

/// What a worker runs: a cross-connect table or a P4 pipeline.
#[derive(Debug)]
pub enum Stage {
    /// Port-to-port.
    XConnect(crate::xconnect::CrossConnect),
    /// A P4 program.
    Pipeline(Box<PipelineStage>),
}

impl BurstProcessor for Stage {
    #[inline(always)]
    fn process(&mut self, in_port: PortIndex, burst: &mut Burst, egress: &mut Egress, stats: &WorkerStats) {
        match self {
            Stage::XConnect(x) => x.process(in_port, burst, egress, stats),
            Stage::Pipeline(p) => p.process(in_port, burst, egress, stats),
        }
    }

    fn idle(&mut self) {
        if let Stage::Pipeline(p) = self {
            p.upkeep();
        }
    }
}
