//! Control's handle on the running workers: post commands to their mailboxes
//! (`fastpath::mailbox`) and wait for them, to change what they run.
//!
//! * [`Workers::apply`]: a batch of state updates ([`Op`]s), visible on return: each
//!   worker applies the batch between two bursts and makes the megaflows it
//!   invalidates stale (never matched again, removed later) before completing;
//!   this returns when every worker has.
//! * [`Workers::set_pipeline`]: replace the program (a new stage per worker, built
//!   here; the old stage comes back to be freed here, not on the worker's core).
//! * [`Workers::query`]: run a read-only closure on every worker's datapath (counters).
//! * [`Workers::presettle`]: ahead of a counter read or a state change, settle the
//!   workers' dirty megaflows a slice per command, so the read's own full settle
//!   (`Datapath::settled`, `Datapath::apply`) stalls the worker briefly.
//! * [`Workers::inject`]: packet-out, into the pipeline as if received on the CPU port.
//!
//! Control never blocks a worker: a full mailbox fails the post (the caller reports
//! RESOURCE_EXHAUSTED or UNAVAILABLE), and waits spin on control's own core.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use dpdk_sys::mempool::Mempool;
use sluice_fastpath::cache::datapath::Datapath;
use sluice_fastpath::cache::event_ring::EventHub;
use sluice_fastpath::cache::CacheConfig;
use sluice_fastpath::mailbox::{Command, MailboxError, Poster};
use sluice_fastpath::p4::ir::Ir;
use sluice_fastpath::p4::ops::Op;
use sluice_fastpath::p4::tables::Runtime;
use sluice_fastpath::pipeline::{PipelineStage, Stage, StageConfig};
use sluice_fastpath::qos::Share;
use sluice_fastpath::stats::WorkerStats;
use sluice_fastpath::uplink::{ToControl, Uplink};
use sluice_fastpath::worker::Io;
use sluice_offload::manager::Command as OffloadCommand;
use std::sync::Mutex;

/// How long control waits for a worker to complete a command before reporting it
/// stuck. Workers serve their mailbox every loop iteration (microseconds apart).
pub const WAIT: Duration = Duration::from_secs(5);

/// Megaflows a worker settles per command in [`Workers::presettle`]. On simple_router
/// (`perf/bench_pipeline.sh`, 64,000 dirty megaflows) the longest slice held the
/// worker 43 µs where settling all at once held it 1.54 ms; a 1,024-descriptor rx
/// ring rides out 43 µs up to ~20 Mpps.
pub const PRESETTLE_SLICE: usize = 1024;

/// Megaflow slots a worker reads per command in [`Workers::scan`]. The offload
/// round's read of 64,000 live megaflows in one command held the worker 1.1–1.4 ms
/// (`perf/bench_pipeline.sh`, ~50 cycles a megaflow); slices of 8,192 slots still
/// 112–159 µs, so a quarter of that: about as long as a presettle slice.
pub const SCAN_SLICE: usize = 2048;

/// Packet-ins and digest samples waiting for control at most (all workers).
pub const UPLINK_RING: usize = 4096;

/// One worker as control sees it.
pub struct WorkerLink {
    /// Its mailbox.
    pub poster: Poster<Stage>,
    /// Its counters.
    pub stats: Arc<WorkerStats>,
    /// Its megaflow event ring (for the stages of new pipelines).
    pub events: EventHub,
}

/// Everything needed to build a worker's pipeline stage.
#[derive(Debug, Clone)]
pub struct StageRecipe {
    /// The packet mempool.
    pub pool: &'static Mempool,
    /// P4 port number of each Sluice port index.
    pub p4_ports: Vec<u32>,
    /// Cache settings.
    pub cache: CacheConfig,
    /// TSC ticks per second.
    pub tsc_hz: u64,
    /// The CPU port, when packet-ins go to control.
    pub cpu_port: Option<u32>,
}

/// Called with a state change's dependency bits before the workers apply it (the
/// offload manager destroys the NIC rules the change makes stale); returns commands
/// the workers run just before the change (mark unbinds).
pub type BeforeWrite = Box<dyn Fn(u64) -> Vec<OffloadCommand> + Send + Sync>;

/// The workers, from control's side.
pub struct Workers {
    links: Vec<WorkerLink>,
    before_write: std::sync::OnceLock<BeforeWrite>,
    /// Changes as ports come and go.
    recipe: Mutex<StageRecipe>,
    uplink: Uplink,
    next_inject: AtomicU64,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers").field("workers", &self.links.len()).finish()
    }
}

fn wait_all(tickets: &[(usize, u64)], links: &[WorkerLink]) -> Result<(), MailboxError> {
    for (w, t) in tickets {
        links[*w].poster.wait(*t, WAIT)?;
    }
    Ok(())
}

impl Workers {
    /// Control's side of `links`; packet-ins and digest samples arrive on the
    /// returned receiver.
    pub fn new(links: Vec<WorkerLink>, recipe: StageRecipe) -> (Self, Receiver<ToControl>) {
        let (uplink, rx) = std::sync::mpsc::sync_channel(UPLINK_RING);
        let w = Workers {
            links,
            before_write: std::sync::OnceLock::new(),
            recipe: Mutex::new(recipe),
            uplink,
            next_inject: AtomicU64::new(0),
        };
        (w, rx)
    }

    /// Worker `w`'s counters.
    pub fn stats(&self, w: usize) -> &Arc<WorkerStats> {
        &self.links[w].stats
    }

    /// Commands waiting in worker `w`'s mailbox.
    pub fn mailbox_depth(&self, w: usize) -> u64 {
        self.links.get(w).map_or(0, |l| l.poster.pending())
    }

    /// Number of workers.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// A pipeline stage for worker `w` running `ir` with state `rt`.
    pub fn stage(&self, w: usize, ir: &Arc<Ir>, rt: Runtime) -> PipelineStage {
        let r = self.recipe.lock().unwrap_or_else(|e| e.into_inner());
        self.stage_with(&r, w, ir, rt)
    }

    fn stage_with(&self, r: &StageRecipe, w: usize, ir: &Arc<Ir>, rt: Runtime) -> PipelineStage {
        let link = &self.links[w];
        let meter_share = Share::even(self.links.len());
        let cfg = StageConfig { cache: r.cache, worker: w as u32, tsc_hz: r.tsc_hz, meter_share };
        let mut stage =
            PipelineStage::new(Arc::clone(ir), rt, &r.p4_ports, r.pool, &cfg, &link.stats, Some(link.events.sender()));
        stage.set_uplink(self.uplink.clone(), r.cpu_port);
        stage
    }

    /// Run the command `make(w)` on every worker `w` (in order, so `make` may move
    /// a value out for each); returns when all have.
    pub fn run_each(&self, mut make: impl FnMut(usize) -> Command<Stage>) -> Result<(), MailboxError> {
        let mut tickets = Vec::with_capacity(self.links.len());
        for (w, link) in self.links.iter().enumerate() {
            tickets.push((w, link.poster.post(make(w))?));
        }
        wait_all(&tickets, &self.links)
    }

    /// Run `cmd` on worker `w`; returns when it has.
    pub fn run_one(&self, w: usize, cmd: Command<Stage>) -> Result<(), MailboxError> {
        let link = self.links.get(w).ok_or(MailboxError::Closed)?;
        let t = link.poster.post(cmd)?;
        link.poster.wait(t, WAIT)
    }

    /// Port `index` changes: it has P4 port number `p4` from now on (`None`: it is
    /// gone) in every running pipeline stage and in those built later, and every
    /// worker `w` runs `make(w)` (queue handles in or out) in the same command.
    /// Serialised with pipeline swaps, so a new program never misses a port.
    pub fn port_change(
        &self,
        index: usize,
        p4: Option<u32>,
        mut make: impl FnMut(usize) -> Command<Stage>,
    ) -> Result<(), MailboxError> {
        let mut r = self.recipe.lock().unwrap_or_else(|e| e.into_inner());
        if index >= r.p4_ports.len() {
            r.p4_ports.resize(index + 1, u32::MAX);
        }
        r.p4_ports[index] = p4.unwrap_or(u32::MAX);
        self.run_each(|w| {
            let cmd = make(w);
            Box::new(move |stage: &mut Stage, io: &mut Io, stats: &WorkerStats| {
                if let Stage::Pipeline(p) = stage {
                    p.set_port(index, p4);
                }
                cmd(stage, io, stats)
            })
        })
    }

    /// Install the hook run before every state change (once; later calls are
    /// ignored).
    pub fn set_before_write(&self, hook: BeforeWrite) {
        let _ = self.before_write.set(hook);
    }

    /// Run the before-write hook for a change with dependency bits `deps`.
    fn before_write(&self, deps: u64) -> Arc<Vec<OffloadCommand>> {
        Arc::new(self.before_write.get().map(|h| h(deps)).unwrap_or_default())
    }

    /// Apply `ops` on every worker running a pipeline; returns when all have, with
    /// stale megaflows gone (and, first, the NIC rules made from them).
    pub fn apply(&self, ops: Arc<[Op]>) -> Result<(), MailboxError> {
        if ops.is_empty() {
            return Ok(());
        }
        // The change settles every dirty megaflow first: most of them now, in slices.
        self.presettle()?;
        let deps = ops.iter().fold(0u64, |b, op| b | sluice_fastpath::cache::Change::of(op).bit());
        let first = self.before_write(deps);
        self.run_each(|w| {
            let ops = Arc::clone(&ops);
            let first = Arc::clone(&first);
            Box::new(move |stage: &mut Stage, _: &mut Io, stats: &WorkerStats| {
                if let Stage::Pipeline(p) = stage {
                    crate::offload::run_commands(p, w, &first, stats);
                    let n = p.datapath().apply(&ops);
                    stats.refused_ops.add(n as u64);
                }
            })
        })
    }

    /// Run `ir` with state `rt` on every worker from now on (megaflows of the old
    /// program are gone with its stage). Returns when every worker has switched.
    pub fn set_pipeline(&self, ir: &Arc<Ir>, rt: &Runtime) -> Result<(), MailboxError> {
        // Every NIC rule was made from the old program.
        drop(self.before_write(u64::MAX));
        let (old_tx, old_rx) = std::sync::mpsc::channel::<Stage>();
        // Held until every worker has switched: ports change only before or after.
        let recipe = self.recipe.lock().unwrap_or_else(|e| e.into_inner());
        let r = self.run_each(|w| {
            let new = Stage::Pipeline(Box::new(self.stage_with(&recipe, w, ir, rt.clone())));
            let old_tx = old_tx.clone();
            Box::new(move |stage: &mut Stage, io: &mut Io, stats: &WorkerStats| {
                // Packets of the old program are all out: it ran to completion.
                io.egress.flush(stats);
                let old = std::mem::replace(stage, new);
                // Freed on control's side (a program's state can be large).
                let _ = old_tx.send(old);
            })
        });
        drop(old_tx);
        drop(old_rx.try_iter().collect::<Vec<_>>());
        r
    }

    /// Run `f` on every worker's datapath (workers without a pipeline give `None`).
    pub fn query<T: Send + 'static>(
        &self,
        f: impl Fn(&mut Datapath) -> T + Send + Sync + 'static,
    ) -> Result<Vec<Option<T>>, MailboxError> {
        let jobs = (0..self.links.len()).map(|w| (w, ())).collect();
        let mut out: Vec<Option<T>> = (0..self.links.len()).map(|_| None).collect();
        for (w, r) in self.ask(jobs, move |dp, ()| f(dp))? {
            out[w] = r;
        }
        Ok(out)
    }

    /// Run `f(datapath, a)` on each worker `w` of `jobs` (`(w, a)`), all posted
    /// before any is waited for; returns when all have: `(w, result)`, `None` for a
    /// worker without a pipeline.
    fn ask<A: Send + 'static, T: Send + 'static>(
        &self,
        jobs: Vec<(usize, A)>,
        f: impl Fn(&mut Datapath, A) -> T + Send + Sync + 'static,
    ) -> Result<Vec<(usize, Option<T>)>, MailboxError> {
        let f = Arc::new(f);
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Option<T>)>();
        let mut tickets = Vec::with_capacity(jobs.len());
        for (w, a) in jobs {
            let (f, tx) = (Arc::clone(&f), tx.clone());
            let t = self.links[w].poster.post(Box::new(move |stage: &mut Stage, _: &mut Io, _: &WorkerStats| {
                let r = match stage {
                    Stage::Pipeline(p) => Some(f(p.datapath(), a)),
                    Stage::XConnect(_) => None,
                };
                let _ = tx.send((w, r));
            }))?;
            tickets.push((w, t));
        }
        wait_all(&tickets, &self.links)?;
        Ok(rx.try_iter().collect())
    }

    /// Run `f` on worker `w`'s datapath, if it runs a pipeline.
    pub fn query_one<T: Send + 'static>(
        &self,
        w: usize,
        f: impl FnOnce(&mut Datapath) -> T + Send + 'static,
    ) -> Result<Option<T>, MailboxError> {
        let (tx, rx) = std::sync::mpsc::channel::<Option<T>>();
        let t = self.links[w].poster.post(Box::new(move |stage: &mut Stage, _: &mut Io, _: &WorkerStats| {
            let _ = tx.send(match stage {
                Stage::Pipeline(p) => Some(f(p.datapath())),
                Stage::XConnect(_) => None,
            });
        }))?;
        self.links[w].poster.wait(t, WAIT)?;
        Ok(rx.try_recv().ok().flatten())
    }

    /// Read every worker's megaflow cache a slice at a time: `f(dp, slots)` returns
    /// what it finds among the megaflow slots `slots` ([`SCAN_SLICE`] per command,
    /// forwarding between commands), until the slots end. Per worker, in slot order
    /// (`None`: no pipeline). A megaflow installed or removed meanwhile is seen or not,
    /// as in any dump of a running cache.
    pub fn scan<T: Send + 'static>(
        &self,
        f: impl Fn(&mut Datapath, std::ops::Range<usize>) -> Vec<T> + Send + Sync + 'static,
    ) -> Result<Vec<Option<Vec<T>>>, MailboxError> {
        self.scan_by(SCAN_SLICE, None, f)
    }

    /// [`Workers::scan`] of worker `w` only (the others' entries are `None`).
    pub fn scan_one<T: Send + 'static>(
        &self,
        w: usize,
        f: impl Fn(&mut Datapath, std::ops::Range<usize>) -> Vec<T> + Send + Sync + 'static,
    ) -> Result<Vec<Option<Vec<T>>>, MailboxError> {
        self.scan_by(SCAN_SLICE, Some(w), f)
    }

    fn scan_by<T: Send + 'static>(
        &self,
        slice: usize,
        only: Option<usize>,
        f: impl Fn(&mut Datapath, std::ops::Range<usize>) -> Vec<T> + Send + Sync + 'static,
    ) -> Result<Vec<Option<Vec<T>>>, MailboxError> {
        let mut out: Vec<Option<Vec<T>>> = (0..self.links.len()).map(|_| None).collect();
        let mut next: Vec<(usize, usize)> =
            (0..self.links.len()).filter(|w| only.is_none_or(|o| o == *w)).map(|w| (w, 0)).collect();
        let f = Arc::new(f);
        while !next.is_empty() {
            let f = Arc::clone(&f);
            // Per worker: what a slice found, where the next starts, whether that is the end.
            let got = self.ask(std::mem::take(&mut next), move |dp, from: usize| {
                let end = dp.cache.slot_count();
                let to = (from + slice).min(end);
                (f(dp, from..to), to, to >= end)
            })?;
            for (w, r) in got {
                if let Some((found, to, done)) = r {
                    out[w].get_or_insert_with(Vec::new).extend(found);
                    if !done {
                        next.push((w, to));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Settle the workers' dirty megaflows ahead of a counter read or a change of the
    /// state, [`PRESETTLE_SLICE`] per command with forwarding between commands, so
    /// that the full settle the read or change makes first has about a slice left.
    /// Only workers whose gauge (`CacheStats::unsettled`) shows more than a slice take
    /// part. Active megaflows get dirty again meanwhile, so the rounds stop at what
    /// was dirty at the start over the slice, plus 2. Correctness never depends on
    /// this: the read's own settle counts everything. Returns the rounds run.
    pub fn presettle(&self) -> Result<usize, MailboxError> {
        self.presettle_by(PRESETTLE_SLICE)
    }

    fn presettle_by(&self, slice: usize) -> Result<usize, MailboxError> {
        let over = |d: usize| d > slice;
        let mut left: Vec<(usize, usize)> = (self.links.iter().enumerate())
            .map(|(w, l)| (w, l.stats.cache.unsettled.get() as usize))
            .filter(|&(_, d)| over(d))
            .collect();
        let cap = left.iter().map(|&(_, d)| d / slice).max().unwrap_or(0) + 2;
        let mut rounds = 0;
        while !left.is_empty() && rounds < cap {
            rounds += 1;
            let got = self.ask(left, move |dp, _| dp.settle_some(slice))?;
            left = got.into_iter().map(|(w, d)| (w, d.unwrap_or(0))).filter(|&(_, d)| over(d)).collect();
        }
        Ok(rounds)
    }

    /// Packet-out: run `bytes` through the pipeline as received on P4 port `in_p4`,
    /// on the workers in turn. Does not wait: it is ordered after every write posted
    /// before it.
    pub fn inject(&self, in_p4: u32, bytes: Vec<u8>) -> Result<(), MailboxError> {
        if self.links.is_empty() {
            return Err(MailboxError::Closed);
        }
        let w = (self.next_inject.fetch_add(1, Ordering::Relaxed) % self.links.len() as u64) as usize;
        self.links[w].poster.post(Box::new(move |stage: &mut Stage, io: &mut Io, stats: &WorkerStats| {
            if let Stage::Pipeline(p) = stage {
                p.inject(in_p4, &bytes, &mut io.egress, stats);
            }
        }))?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use dpdk_sys::eal::Eal;
    use dpdk_sys::mbuf::{Burst, Mbuf};
    use dpdk_sys::mempool::DEFAULT_DATA_ROOM;
    use dpdk_sys::port::{Port, PortConf};
    use sluice_fastpath::mailbox::mailbox;
    use sluice_fastpath::p4::ir::KeyValue;
    use sluice_fastpath::p4::tables::EntryAction;
    use sluice_fastpath::worker::{self, RxAssignment, Worker};
    use std::sync::atomic::AtomicBool;

    /// A ring port whose tx queue 0 loops back to its rx queue 0.
    pub(crate) fn loop_port(eal: &'static Eal, name: &str, pool: &'static Mempool) -> Arc<Port> {
        let mut p = Port::attach(eal, name, &format!("net_ring_{name},nodeaction=r_{name}:0:CREATE")).unwrap();
        p.configure(pool, &PortConf { rx_descriptors: 512, tx_descriptors: 512, ..Default::default() }).unwrap();
        p.start().unwrap();
        Arc::new(p)
    }

    fn to_10_0_1_10(seq: u16) -> Vec<u8> {
        let mut f = crate::pcap::udp_frame(1, seq);
        f[30..34].copy_from_slice(&[10, 0, 1, 10]);
        f[24..26].copy_from_slice(&[0, 0]);
        let c = crate::pcap::ipv4_checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f
    }

    fn drain(p: &Arc<Port>) -> usize {
        let mut rx = p.rx_queue(0).unwrap();
        let mut burst = Burst::new();
        let mut n = 0;
        while rx.rx_burst(&mut burst) > 0 {
            n += burst.len();
            burst.free_all();
        }
        n
    }

    /// The P4 corpus directory of `program`, or `None` (the test is skipped, said so).
    fn corpus_program(program: &str) -> Option<std::path::PathBuf> {
        let dir = std::env::var_os("SLUICE_P4_CORPUS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/p4"))
            .join(program);
        if !dir.is_dir() {
            eprintln!("SKIP: P4 corpus not found at {} (set SLUICE_P4_CORPUS)", dir.display());
            return None;
        }
        Some(dir)
    }

    /// Run `bursts` (P4 port 1 in) through a cached and an uncached stage of the same
    /// program on loopback ring ports (P4 ports 1, 2, 3): both must send the same
    /// bytes to the same ports in the same order, and leave the same P4 counters
    /// (table hits, direct and indexed counters). Returns the cached side's cache
    /// counters and megaflow packet totals.
    fn cached_vs_uncached(
        tag: &str,
        l: &crate::pipeline::Loaded,
        bursts: &[Vec<Vec<u8>>],
    ) -> (sluice_fastpath::cache::CacheSnapshot, u64) {
        let eal = Eal::for_tests("sluice-control-test");
        let pool = Mempool::create(eal, &format!("ctl_{tag}"), 1023, 0, DEFAULT_DATA_ROOM, None).unwrap();
        let ports: Vec<_> = (1..=3).map(|i| loop_port(eal, &format!("{tag}{i}"), pool)).collect();
        let ir = Arc::clone(&l.ir);
        let mut sides = vec![];
        for max_flows in [CacheConfig::default().max_flows, 0] {
            let stats = WorkerStats::new(3);
            let cfg = StageConfig {
                cache: CacheConfig { max_flows, ..CacheConfig::default() },
                worker: 0,
                tsc_hz: dpdk_sys::lcore::tsc_hz(eal),
                meter_share: Share::even(1),
            };
            let mut stage = PipelineStage::new(Arc::clone(&ir), l.rt.clone(), &[1, 2, 3], pool, &cfg, &stats, None);
            let mut egress =
                sluice_fastpath::egress::Egress::new(ports.iter().map(|p| Some(p.tx_queue(0).unwrap())).collect());
            let mut out: Vec<(usize, Vec<u8>)> = vec![];
            for frames in bursts {
                let mut burst = Burst::new();
                for f in frames {
                    burst.push(Mbuf::from_bytes(pool, f).unwrap()).unwrap();
                }
                use sluice_fastpath::BurstProcessor;
                stage.process(0, &mut burst, &mut egress, &stats);
                egress.flush(&stats);
                for (i, p) in ports.iter().enumerate() {
                    let mut rx = p.rx_queue(0).unwrap();
                    let mut got = Burst::new();
                    while rx.rx_burst(&mut got) > 0 {
                        out.extend((0..got.len()).map(|k| (i, got.data(k).to_vec())));
                        got.free_all();
                    }
                }
            }
            let dp = stage.datapath();
            let packets = dp.cache.iter().map(|(_, _, f)| f.packets).sum::<u64>();
            let rt = dp.settled();
            let counters = (
                rt.tables.iter().map(|t| (t.hits.clone(), t.direct_counters.clone())).collect::<Vec<_>>(),
                rt.counters.clone(),
            );
            sides.push((out, counters, stats.snapshot().cache, packets));
        }
        let (cached, uncached) = (&sides[0], &sides[1]);
        assert_eq!(cached.0, uncached.0, "{tag}: the same bytes to the same ports");
        assert_eq!(cached.1, uncached.1, "{tag}: the same P4 counters");
        assert_eq!(uncached.2.installed, 0, "{tag}: the uncached side caches nothing");
        (cached.2, cached.3)
    }

    /// Bursts of one flow take the stage's whole-burst path (every packet patched,
    /// then the burst sent at once); mixed bursts and the first packets of a flow the
    /// per-packet one. Both must agree with the pipeline, byte for byte and counter
    /// for counter: onos_basic recomputes the IPv4 checksum (a wrong one is fixed on
    /// every packet of a uniform burst) and counts per port and entry; simple_router
    /// rewrites MACs and decrements the TTL with an incremental checksum.
    #[test]
    fn a_burst_of_one_flow_is_sent_whole_and_agrees_with_the_pipeline() {
        let Some(basic) = corpus_program("onos_basic") else { return };
        let Some(router) = corpus_program("simple_router") else { return };
        let entries = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../perf/entries");
        // onos_basic: port 1 -> 2 for everything; a wrong checksum in flow A, B not IPv4.
        let l = crate::pipeline::load(&basic.join("basic.json"), None, Some(&entries.join("basic_l2.txt"))).unwrap();
        let mut a = crate::pcap::udp_frame(1, 0);
        a[24] ^= 0x5a;
        let mut b = crate::pcap::udp_frame(2, 0);
        b[12..14].copy_from_slice(&0x0806u16.to_be_bytes()); // not IPv4: another megaflow
        let uniform = |f: &Vec<u8>, n: usize| -> Vec<Vec<u8>> {
            (0..n)
                .map(|i| {
                    let mut g = f.clone();
                    g[58] = i as u8; // payload: not in any key
                    g
                })
                .collect()
        };
        let mut mixed = uniform(&a, 31);
        mixed.insert(7, b.clone());
        let bursts = vec![uniform(&a, 32), uniform(&a, 32), mixed, uniform(&b, 5), uniform(&a, 1)];
        let (c, packets) = cached_vs_uncached("ub", &l, &bursts);
        assert_eq!((c.upcalls, c.installed), (2, 2), "{c:?}");
        assert_eq!(c.emc_hits + c.dpcls_hits, 32 + 32 + 32 + 5 + 1 - 2, "{c:?}");
        assert_eq!(packets, 32 + 32 + 32 + 5 + 1, "every packet credited to its megaflow (the upcalls' too)");
        // Whole: the bursts with no miss and no second megaflow (the second of A, B's, A's last).
        assert_eq!(c.sent_whole, 32 + 5 + 1, "{c:?}");
        // simple_router: routed to 10.0.1.10 (TTL, MACs, checksum patched in place).
        let l =
            crate::pipeline::load(&router.join("simple_router.json"), None, Some(&entries.join("simple_router.txt")))
                .unwrap();
        let r = to_10_0_1_10(0);
        let bursts = vec![uniform(&r, 32), uniform(&r, 32), uniform(&r, 3)];
        let (c, packets) = cached_vs_uncached("ur", &l, &bursts);
        assert_eq!((c.upcalls, c.installed, c.emc_hits + c.dpcls_hits), (1, 1, 66), "{c:?}");
        assert_eq!(packets, 67);
        assert_eq!(c.sent_whole, 32 + 3, "all but the burst of the miss: {c:?}");
    }

    /// Bursts of several megaflows whose packets all matched and all go out one port
    /// rewritten in place take the stage's mixed whole-burst path (each packet patched
    /// by its own megaflow, the burst sent at once); a burst with a miss, a drop or a
    /// second port takes the per-packet one. Both agree with the pipeline.
    #[test]
    fn a_burst_of_several_flows_to_one_port_is_sent_whole_and_agrees_with_the_pipeline() {
        let Some(router) = corpus_program("simple_router") else { return };
        let entries = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../perf/entries");
        let l =
            crate::pipeline::load(&router.join("simple_router.json"), None, Some(&entries.join("simple_router.txt")))
                .unwrap();
        // Each TTL is its own megaflow (the TTL is decremented: read whole).
        let with_ttl = |mut f: Vec<u8>, ttl: u8| {
            f[22] = ttl;
            f[24..26].copy_from_slice(&[0, 0]);
            let c = crate::pcap::ipv4_checksum(&f[14..34]);
            f[24..26].copy_from_slice(&c.to_be_bytes());
            f
        };
        let to_port2 = |i: usize| with_ttl(to_10_0_1_10(i as u16), 60 + (i % 4) as u8);
        let mixed: Vec<Vec<u8>> = (0..32).map(to_port2).collect();
        // Another port (10.0.0.10 routes to port 1), and a dropped destination.
        let mut other_port = mixed.clone();
        other_port[5] = to_10_0_1_10(5);
        other_port[5][30..34].copy_from_slice(&[10, 0, 0, 10]);
        other_port[5] = with_ttl(other_port[5].clone(), 60);
        let mut dropped = mixed.clone();
        dropped[9][30..34].copy_from_slice(&[192, 0, 2, 1]);
        dropped[9] = with_ttl(dropped[9].clone(), 60);
        let bursts = vec![mixed.clone(), mixed.clone(), other_port, mixed.clone(), dropped, mixed];
        let (c, packets) = cached_vs_uncached("um", &l, &bursts);
        // Four TTLs to port 2, one flow to port 1, one dropped.
        assert_eq!((c.upcalls, c.installed), (6, 6), "{c:?}");
        assert_eq!(c.emc_hits + c.dpcls_hits, 6 * 32 - 6, "{c:?}");
        assert_eq!(packets, 6 * 32, "every packet credited to its megaflow");
        // The three bursts of four TTLs after the first; those with a miss go per packet.
        assert_eq!(c.sent_whole, 3 * 32, "{c:?}");
    }

    /// The default program bridging hosts of VLAN 10 from an access port (P4 port 1)
    /// to a trunk (port 2): every frame gets its tag pushed, one megaflow per source
    /// MAC. Bursts mixing the hosts take the mixed whole-burst path with the headers
    /// from each megaflow's template, and agree with the pipeline.
    #[test]
    fn a_burst_of_several_flows_whose_headers_grow_is_sent_whole_and_agrees_with_the_pipeline() {
        let mut text = String::from(
            "[workers]\ncores = [1]\n\n\
             [[port]]\nname = \"a\"\ndevargs = \"net_null_mx0\"\np4_port = 1\nvlan = 10\n\n\
             [[port]]\nname = \"t\"\ndevargs = \"net_null_mx1\"\np4_port = 2\nvlan_mode = \"trunk\"\ntrunk_vlans = [10]\n\n\
             [[vlan]]\nid = 10\nname = \"hosts\"\n\n\
             [[mac]]\nvlan = 10\nmac = \"02:00:00:00:00:02\"\nport = \"t\"\n",
        );
        // The sources static too: no digest, so every outcome is cached.
        for h in 0..4 {
            text += &format!("\n[[mac]]\nvlan = 10\nmac = \"02:00:01:00:00:{h:02x}\"\nport = \"a\"\n");
        }
        let config = crate::config::Config::parse(&text, "test").unwrap();
        let l = crate::app::preprogram(&config).unwrap();
        let frame = |h: usize, seq: u16| {
            let mut f = crate::pcap::udp_frame(h as u32, seq);
            f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
            f[6..12].copy_from_slice(&[2, 0, 1, 0, 0, h as u8]);
            f
        };
        let mixed: Vec<Vec<u8>> = (0..32).map(|i| frame(i % 4, i as u16)).collect();
        let bursts = vec![mixed.clone(), mixed.clone(), mixed];
        let (c, packets) = cached_vs_uncached("mr", &l, &bursts);
        assert_eq!((c.upcalls, c.installed, c.uncacheable), (4, 4, 0), "{c:?}");
        assert_eq!(packets, 3 * 32, "every packet credited to its megaflow");
        assert_eq!(c.sent_whole, 2 * 32, "the bursts after the first, with its misses: {c:?}");
    }

    /// simple_router on a running worker: packets in on `inp` (P4 port 1), out on
    /// `out2` / `out3` (ports 2 and 3); 10.0.1.10/32 routes to port 2 (`route`, in
    /// table `t`).
    struct RunningRouter {
        workers: Workers,
        stats: Arc<WorkerStats>,
        pool: &'static Mempool,
        inp: Arc<Port>,
        out2: Arc<Port>,
        out3: Arc<Port>,
        t: u32,
        route: sluice_fastpath::p4::tables::Entry,
        stop: Arc<AtomicBool>,
        handle: worker::WorkerHandle<Stage>,
    }

    impl RunningRouter {
        /// `None` without the P4 corpus (the test is skipped, said so). `tag` names
        /// the ring ports (unique per test).
        fn start(tag: &str, cache: CacheConfig) -> Option<RunningRouter> {
            let corpus = corpus_program("simple_router")?;
            let eal = Eal::for_tests("sluice-control-test");
            let pool = Mempool::create(eal, &format!("ctl_{tag}"), 4095, 0, DEFAULT_DATA_ROOM, None).unwrap();
            let port = |n: &str| loop_port(eal, &format!("{tag}{n}"), pool);
            let (inp, out2, out3) = (port("in"), port("o2"), port("o3"));
            let entries = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../perf/entries/simple_router.txt");
            let mut l = crate::pipeline::load(&corpus.join("simple_router.json"), None, Some(&entries)).unwrap();
            crate::entries::apply(&l.ir, &mut l.rt, "table_add send_frame rewrite_mac 3 => 00:aa:bb:00:00:02\n")
                .unwrap();
            let t = l.ir.tables.iter().position(|t| t.name == "ipv4_lpm").unwrap() as u32;
            let route = l.rt.tables[t as usize]
                .entries()
                .map(|(_, e)| e.clone())
                .find(|e| e.key == vec![KeyValue::Lpm { value: 0x0a00010a, prefix: 32 }])
                .unwrap();
            let (poster, mb) = mailbox();
            let events = EventHub::new(1024);
            let stats = Arc::new(WorkerStats::new(3));
            let link = WorkerLink { poster, stats: Arc::clone(&stats), events };
            let recipe = StageRecipe {
                pool,
                p4_ports: vec![1, 2, 3],
                cache,
                tsc_hz: dpdk_sys::lcore::tsc_hz(eal),
                cpu_port: None,
            };
            let (workers, _uplink) = Workers::new(vec![link], recipe);
            let stage = Stage::Pipeline(Box::new(workers.stage(0, &l.ir, l.rt.clone())));
            let rxqs = vec![RxAssignment { port: 0, queue: inp.rx_queue(0).unwrap() }];
            let txqs = vec![None, Some(out2.tx_queue(0).unwrap()), Some(out3.tx_queue(0).unwrap())];
            let worker = Worker::new(0, rxqs, txqs, stage, Arc::clone(&stats)).with_mailbox(mb);
            let stop = Arc::new(AtomicBool::new(false));
            let core = core_affinity::get_core_ids().unwrap().last().unwrap().id;
            let handle = worker::spawn(eal, core, worker, Arc::clone(&stop)).unwrap();
            Some(RunningRouter { workers, stats, pool, inp, out2, out3, t, route, stop, handle })
        }

        /// Send `frames` into the worker and wait until as many came out; returns
        /// how many left on ports 2 and 3.
        fn forward(&self, frames: impl IntoIterator<Item = Vec<u8>>) -> (usize, usize) {
            let mut tx = self.inp.tx_queue(0).unwrap();
            let mut n = 0;
            let mut burst = Burst::new();
            for f in frames {
                burst.push(Mbuf::from_bytes(self.pool, &f).unwrap()).unwrap();
                n += 1;
                if burst.len() == 32 {
                    assert_eq!(tx.tx_burst(&mut burst), 32);
                }
            }
            let left = burst.len();
            assert_eq!(tx.tx_burst(&mut burst), left);
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            let (mut got2, mut got3) = (0, 0);
            while got2 + got3 < n && std::time::Instant::now() < deadline {
                got2 += drain(&self.out2);
                got3 += drain(&self.out3);
            }
            (got2, got3)
        }

        fn stop(self) -> sluice_fastpath::stats::WorkerSnapshot {
            self.stop.store(true, Ordering::Relaxed);
            drop(self.handle.join().into_queues());
            self.stats.snapshot()
        }
    }

    /// A route change applied through the mailbox is in force for the very next
    /// packet: the megaflow the old route installed is gone when `apply` returns.
    #[test]
    fn a_write_is_visible_to_the_next_packet_on_a_running_worker() {
        let Some(r) = RunningRouter::start("vis", CacheConfig::default()) else { return };
        let mut seq = 0u16;
        for round in 0..40 {
            let port = 2 + (round % 2) as u128;
            let mut e = r.route.clone();
            if let EntryAction::Call(c) = &mut e.action {
                c.args[1] = port;
            }
            r.workers.apply(vec![Op::Modify { table: r.t, entry: e }].into()).unwrap();
            let got = r.forward((seq..seq + 4).map(to_10_0_1_10));
            seq += 4;
            let want = if port == 2 { (4, 0) } else { (0, 4) };
            assert_eq!(got, want, "round {round}: every packet after the write takes the new route");
        }
        let snap = r.stop();
        assert_eq!(snap.refused_ops, 0);
        assert!(snap.cache.invalidated >= 39, "each route change removed the megaflow: {:?}", snap.cache);
    }

    /// Presettle works through a running worker's dirty megaflows a slice per
    /// command, keeps the gauge exact, and leaves the read's settle the rest: the
    /// counters read are exact.
    #[test]
    fn presettle_settles_a_slice_per_command_and_the_read_stays_exact() {
        let Some(r) = RunningRouter::start("pre", CacheConfig::default()) else { return };
        let frames = ttl_frames;
        assert_eq!(r.forward(frames()), (200, 0), "installs");
        assert_eq!(r.stats.cache.unsettled.get(), 0, "installing runs count their own packet");
        assert_eq!(r.forward(frames()), (200, 0), "hits");
        assert_eq!(r.stats.cache.unsettled.get(), 200, "the gauge counts every megaflow made dirty");
        let t = r.t as usize;
        let hits = move |dp: &mut Datapath| (dp.cache.dirty(), dp.rt.tables[t].hits.iter().sum::<u64>());
        assert_eq!(r.workers.query(hits).unwrap()[0], Some((200, 200)), "hits not yet counted");
        // 200 dirty, 16 a round: 12 rounds leave 8 (at most a slice).
        assert_eq!(r.workers.presettle_by(16).unwrap(), 12);
        assert_eq!(r.stats.cache.presettled.get(), 192);
        assert_eq!(r.stats.cache.unsettled.get(), 8);
        assert_eq!(r.workers.query(hits).unwrap()[0], Some((8, 392)));
        assert_eq!(r.workers.presettle_by(16).unwrap(), 0, "a slice or less is left to the read");
        let settled = move |dp: &mut Datapath| dp.settled().tables[t].hits.iter().sum::<u64>();
        assert_eq!(r.workers.query(settled).unwrap()[0], Some(400), "the read counts every packet");
        assert_eq!(r.stats.cache.unsettled.get(), 0);
        // A write presettles too: here nothing (below a slice), and then settles all.
        assert_eq!(r.forward(frames()), (200, 0));
        assert_eq!(r.workers.presettle().unwrap(), 0, "200 is below PRESETTLE_SLICE");
        r.workers.apply(vec![Op::Modify { table: r.t, entry: r.route.clone() }].into()).unwrap();
        let snap = r.stop();
        assert_eq!(snap.cache.unsettled, 0, "the write settled everything first");
        assert_eq!(snap.cache.presettled, 192);
        assert_eq!(snap.refused_ops, 0);
    }

    /// 200 frames to 10.0.1.10 with TTLs 2..202: the TTL is read (decremented), so
    /// each is its own megaflow.
    fn ttl_frames() -> impl Iterator<Item = Vec<u8>> {
        (2..202u16).map(|ttl| {
            let mut f = to_10_0_1_10(ttl);
            f[22] = ttl as u8;
            f[24..26].fill(0);
            let c = crate::pcap::ipv4_checksum(&f[14..34]);
            f[24..26].copy_from_slice(&c.to_be_bytes());
            f
        })
    }

    /// A write makes the megaflows that read the table stale; with no traffic after
    /// it, the idle worker's upkeep purges them (none is found by a lookup).
    #[test]
    fn a_write_s_stale_megaflows_are_purged_with_no_traffic() {
        let Some(r) = RunningRouter::start("prg", CacheConfig::default()) else { return };
        assert_eq!(r.forward(ttl_frames()), (200, 0));
        assert_eq!(r.stats.cache.megaflows.get(), 200);
        r.workers.apply(vec![Op::Modify { table: r.t, entry: r.route.clone() }].into()).unwrap();
        let live = |dp: &mut Datapath| dp.cache.iter().count();
        assert_eq!(r.workers.query(live).unwrap()[0], Some(0), "stale at once: no scan sees them");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while r.stats.cache.megaflows.get() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let snap = r.stop();
        assert_eq!(snap.cache.megaflows, 0, "purged without traffic: {:?}", snap.cache);
        assert_eq!((snap.cache.invalidated, snap.cache.stale_found), (200, 0));
    }

    /// A worker that receives nothing still runs its upkeep: an idle megaflow
    /// expires after the last packet, with no traffic to drive it.
    #[test]
    fn idle_megaflows_expire_with_no_traffic() {
        let cache = CacheConfig { max_idle_ms: 20, ..CacheConfig::default() };
        let Some(r) = RunningRouter::start("idl", cache) else { return };
        assert_eq!(r.forward((0..4).map(to_10_0_1_10)), (4, 0));
        assert_eq!(r.stats.cache.megaflows.get(), 1);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while r.stats.cache.megaflows.get() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let snap = r.stop();
        assert_eq!(snap.cache.megaflows, 0, "expired without traffic: {:?}", snap.cache);
        assert_eq!(snap.cache.expired, 1);
    }

    /// A scan reads a running worker's cache a slice per command and finds every
    /// megaflow once, in id order, as one read of the whole cache does.
    #[test]
    fn a_scan_reads_the_cache_a_slice_per_command_and_finds_every_megaflow() {
        let Some(r) = RunningRouter::start("scn", CacheConfig::default()) else { return };
        assert_eq!(r.forward(ttl_frames()), (200, 0));
        let whole = r.workers.query(|dp| dp.cache.iter().map(|(id, v, m)| (id, v, m.packets)).collect::<Vec<_>>());
        let whole = whole.unwrap().remove(0).unwrap();
        assert_eq!(whole.len(), 200);
        let slots = r.workers.query(|dp| dp.cache.slot_count()).unwrap()[0].unwrap();
        let commands = Arc::new(AtomicU64::new(0));
        let c = Arc::clone(&commands);
        let sliced = r.workers.scan_by(16, None, move |dp, slots| {
            assert!(slots.len() <= 16, "a slice at most");
            c.fetch_add(1, Ordering::Relaxed);
            dp.cache.iter_slots(slots).map(|(id, v, m)| (id, v, m.packets)).collect()
        });
        assert_eq!(sliced.unwrap().remove(0).unwrap(), whole);
        assert_eq!(commands.load(Ordering::Relaxed) as usize, slots.div_ceil(16));
        r.stop();
    }
}
