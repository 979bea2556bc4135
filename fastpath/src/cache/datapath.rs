//! A worker's cached P4 datapath, independent of DPDK: the program, its state, the
//! interpreter, the megaflow cache, and the miss path (upcall) between them.
//!
//! [`crate::pipeline::PipelineStage`] runs bursts of mbufs through it; tests and
//! benchmarks run byte slices with [`Datapath::process`], which takes the same
//! lookups, upcalls and compiled actions.

use std::sync::Arc;

use super::actions::{credit, deps, refusal, replay_of, Actions, Replay, Tracked};
use super::dpcls::NONE;
use super::key::PacketView;
use super::{Change, FlowCache};
use crate::p4::interp::{DropCause, Interp, Outputs};
use crate::p4::ir::{Ir, Value};
use crate::p4::ops::Op;
use crate::p4::tables::Runtime;
use crate::p4::track::{NoTrack, ReadSet, Tracker, MAX_METER_POINTS};

/// The result of a miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upcall {
    /// A megaflow was installed (or already existed) for the packet; its actions
    /// give the packet's outcome. Its counters were already counted by the run.
    Cached(u32),
    /// A megaflow was installed that executes a meter per packet; this packet's
    /// outcome is the interpreter's output ([`Interp::out`]: its meters were
    /// executed once, by the run) and its counters were counted by the run.
    Metered(u32),
    /// Not cacheable: the interpreter's output ([`Interp::out`]) is the outcome.
    Uncached,
}

/// How a packet was handled (for tests and benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Matched a megaflow.
    Hit,
    /// Missed; a megaflow was installed.
    Installed,
    /// Missed; not cacheable.
    Uncached,
}

/// A packet's outcome as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Copies sent: P4 port, bytes (emission order).
    pub outputs: Vec<(u32, Vec<u8>)>,
    /// Copies dropped.
    pub drops: Vec<DropCause>,
    /// The path taken.
    pub path: Path,
    /// The megaflow executed meters per packet (branches on their colors).
    pub metered: bool,
}

/// Program + state + interpreter + cache.
#[derive(Debug)]
pub struct Datapath {
    /// The program.
    pub ir: Arc<Ir>,
    /// Its state.
    pub rt: Runtime,
    /// The interpreter (its `out` holds an uncached packet's outcome).
    pub interp: Interp,
    tracker: Tracker,
    /// The tracker of dry runs (a metered flow's colors).
    dry: Tracker,
    /// The real run's outputs while dry runs use the interpreter.
    kept: Outputs,
    /// The counters of the last tracked run (reused).
    replay: Vec<Replay>,
    /// The cache.
    pub cache: FlowCache,
}

/// What the dry runs of a metered flow read, in all.
struct Explored {
    reads: ReadSet,
    deps: u64,
}

impl Datapath {
    /// A datapath running `ir` with state `rt` behind `cache`.
    pub fn new(ir: Arc<Ir>, rt: Runtime, cache: FlowCache) -> Self {
        let interp = Interp::new(&ir);
        let tracker = Tracker::new(&ir);
        let dry = Tracker::new(&ir);
        Datapath { ir, rt, interp, tracker, dry, kept: Outputs::default(), replay: Vec::with_capacity(8), cache }
    }

    /// The miss path: run the pipeline on `data` (received on P4 port `in_port`),
    /// tracked when caching is on, and install the megaflow.
    pub fn upcall(&mut self, in_port: u32, data: &[u8]) -> Upcall {
        let stats = self.cache.stats();
        stats.upcalls.add(1);
        if !self.cache.enabled() {
            self.interp.run(&self.ir, &mut self.rt, data, in_port, &mut NoTrack);
            stats.uncacheable.add(1);
            return Upcall::Uncached;
        }
        self.tracker.begin();
        self.interp.run(&self.ir, &mut self.rt, data, in_port, &mut self.tracker);
        self.tracker.finish(&self.interp.out.drops);
        if refusal(&self.tracker).is_some() {
            stats.uncacheable.add(1);
            return Upcall::Uncached;
        }
        if !self.tracker.points.is_empty() {
            return self.upcall_metered(in_port, data);
        }
        let d = deps(&self.ir, &self.tracker.effects);
        replay_of(&self.ir, &self.tracker.effects, &mut self.replay);
        let tracked = Tracked { tracker: &self.tracker, replay: &self.replay };
        let id = self.cache.install_tracked(&PacketView::new(in_port, data), tracked, d, &mut self.rt);
        // The run counted this packet itself.
        self.cache.credit_settled(id, 1, data.len() as u64);
        Upcall::Cached(id)
    }

    /// The miss path of a packet whose run executed configured meters: explore the
    /// outcome of every color combination with dry runs (no state changes), and
    /// install one megaflow that branches on the colors, matching the union of
    /// what every branch read. The real run's output stays this packet's outcome.
    fn upcall_metered(&mut self, in_port: u32, data: &[u8]) -> Upcall {
        std::mem::swap(&mut self.interp.out, &mut self.kept);
        let mut all = Explored { reads: ReadSet::default(), deps: 0 };
        let mut colors = Vec::with_capacity(MAX_METER_POINTS);
        let explored = self.explore(in_port, data, &mut colors, &mut all);
        std::mem::swap(&mut self.interp.out, &mut self.kept);
        let stats = self.cache.stats();
        let Ok(actions) = explored else {
            stats.uncacheable.add(1);
            return Upcall::Uncached;
        };
        let id = self.cache.install(&PacketView::new(in_port, data), &all.reads, actions, all.deps, &mut self.rt);
        self.cache.credit_settled(id, 1, data.len() as u64);
        Upcall::Metered(id)
    }

    /// The outcome of `data` given the colors of its first configured meters
    /// (`colors`), branching on the next one if the run executes more.
    fn explore(
        &mut self,
        in_port: u32,
        data: &[u8],
        colors: &mut Vec<Value>,
        all: &mut Explored,
    ) -> Result<Actions, &'static str> {
        self.dry.begin();
        self.interp.dry_run(&self.ir, &mut self.rt, data, in_port, colors, &mut self.dry);
        self.dry.finish(&self.interp.out.drops);
        if let Some(why) = refusal(&self.dry) {
            return Err(why);
        }
        all.reads.union(&self.dry.reads);
        all.deps |= deps(&self.ir, &self.dry.effects);
        let Some(&(meter, cell)) = self.dry.points.get(colors.len()) else {
            return Ok(Actions::from_tracker(&self.ir, &mut self.dry));
        };
        let mut branch = |c: Value, dp: &mut Self| {
            colors.push(c);
            let r = dp.explore(in_port, data, colors, all);
            colors.pop();
            r
        };
        let green = branch(0, self)?;
        let yellow = branch(1, self)?;
        let red = branch(2, self)?;
        Ok(Actions::metered(meter, cell, self.ir.meters[meter as usize].bytes, [green, yellow, red]))
    }

    /// Credit a group of `packets` hits (`bytes` in all) of megaflow `id`: its
    /// statistics now, the P4 counters the pipeline would have counted when settled
    /// (see [`super`]).
    #[inline]
    pub fn replay(&mut self, id: u32, packets: u64, bytes: u64) {
        self.cache.credit(id, packets, bytes);
    }

    /// Replay every megaflow's unsettled counter effects: the state then counts every
    /// packet forwarded so far.
    pub fn settle(&mut self) {
        self.cache.settle(&mut self.rt, None, usize::MAX);
    }

    /// Settle at most `max` megaflows, oldest first: a slice of [`Datapath::settle`]
    /// that holds the worker for a bounded time (~50–75 cycles a megaflow on
    /// simple_router). Control runs such slices, with forwarding between, ahead of a
    /// read or a change, which then has little left to settle. Returns how many
    /// megaflows stay dirty.
    pub fn settle_some(&mut self, max: usize) -> usize {
        let before = self.cache.dirty();
        self.cache.settle(&mut self.rt, None, max);
        let left = self.cache.dirty();
        self.cache.stats().presettled.add((before - left) as u64);
        left
    }

    /// The state, settled ([`Datapath::settle`]): what reads of counters and table
    /// entry hits use.
    pub fn settled(&mut self) -> &mut Runtime {
        self.settle();
        &mut self.rt
    }

    /// Credit `packets` (`bytes`) of metered megaflow `id` that its meter colored
    /// `color` elsewhere (a NIC's meter object): its statistics, the counters before
    /// the meter, the cell's color counts and that color's outcome's counters.
    pub fn replay_color(&mut self, id: u32, color: u8, packets: u64, bytes: u64) {
        let Some((a, r)) = self.cache.credit_settled(id, packets, bytes) else { return };
        credit(r, &mut self.rt, packets, bytes);
        let Some(b) = &a.metered else {
            return a.replay_into(&mut self.rt, packets, bytes);
        };
        let c = (color as usize).min(2);
        if let Some(Some(cell)) = self.rt.meters.get_mut(b.meter as usize).and_then(|m| m.get_mut(b.cell as usize)) {
            cell.counts[c].0 += packets;
            cell.counts[c].1 += bytes;
        }
        b.colors[c].replay_into(&mut self.rt, packets, bytes);
    }

    /// Remove every megaflow (settled as they go); returns how many.
    pub fn flush(&mut self) -> usize {
        self.cache.flush(&mut self.rt)
    }

    /// Remove a slice of stale megaflows: at most `slots` slots examined and
    /// `removals` removed ([`FlowCache::purge`]). Returns whether none is left.
    pub fn purge(&mut self, slots: usize, removals: usize) -> bool {
        self.cache.purge(&mut self.rt, slots, removals)
    }

    /// Periodic upkeep: re-rank subtables, settle megaflows dirty long enough, purge
    /// a slice of stale megaflows, expire idle megaflows.
    pub fn maintain(&mut self) {
        self.cache.maintain(&mut self.rt);
    }

    /// Apply a state change and, before returning, make every megaflow that depends
    /// on what it touches stale (see [`super`]): the next packet sees the new state.
    /// Megaflows are settled first.
    pub fn update<R>(&mut self, change: Change, f: impl FnOnce(&Ir, &mut Runtime) -> R) -> R {
        self.settle();
        let r = f(&self.ir, &mut self.rt);
        self.cache.invalidate(change.bit(), &mut self.rt);
        r
    }

    /// Settle, apply a batch of ops in order, then, once, make every megaflow that
    /// depends on what they touch stale. Returns how many were refused (control validated the batch
    /// on an equal copy of the state, so any refusal is a bug the caller counts).
    pub fn apply(&mut self, ops: &[Op]) -> usize {
        let mut bits = 0;
        let mut refused = 0;
        // Counted before the ops: they may delete, reset or reuse what is owed.
        self.settle();
        for op in ops {
            match self.rt.apply(&self.ir, op) {
                Ok(()) => bits |= Change::of(op).bit(),
                Err(_) => refused += 1,
            }
        }
        if bits != 0 {
            self.cache.invalidate(bits, &mut self.rt);
        }
        refused
    }

    /// Process one packet (a burst of one) and return its outcome as bytes.
    pub fn process(&mut self, in_port: u32, data: &[u8]) -> Outcome {
        let mut found = [NONE; 1];
        self.cache.lookup(&[PacketView::new(in_port, data)], &mut found);
        let len = data.len() as u64;
        let (id, path) = if found[0] != NONE {
            self.replay(found[0], 1, len);
            self.settle();
            (found[0], Path::Hit)
        } else {
            match self.upcall(in_port, data) {
                Upcall::Cached(id) => (id, Path::Installed),
                Upcall::Metered(_) => return self.interpreted(Path::Installed),
                Upcall::Uncached => return self.interpreted(Path::Uncached),
            }
        };
        let flow = self.cache.get(id).expect("a found or installed megaflow is live");
        let metered = flow.actions.metered.is_some();
        let a = flow.actions.leaf(&mut self.rt, self.interp.now, len);
        let outputs = a
            .outputs
            .iter()
            .map(|o| {
                let mut b = vec![];
                o.render(data, &mut b);
                (o.port, b)
            })
            .collect();
        Outcome { outputs, drops: a.drops.to_vec(), path, metered }
    }

    /// The interpreter's output as an outcome.
    fn interpreted(&self, path: Path) -> Outcome {
        let outputs = self.interp.out.packets().iter().map(|p| (p.port, p.bytes.clone())).collect();
        Outcome { outputs, drops: self.interp.out.drops.clone(), path, metered: false }
    }
}
