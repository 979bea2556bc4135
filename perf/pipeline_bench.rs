//! Pipeline-only rate: packets per second per core through the P4 interpreter with
//! no cache in front, for simple_router and fabric, and the cost split by phase
//! (parse, ingress + traffic manager, egress, checksum update + deparse), plus the
//! cost of a tracked run, and the flow setup rate: new flows per second through the
//! cache's miss path (burst lookup miss, tracked run, megaflow install), each packet
//! a new megaflow.
//!
//! `cargo run --release --example pipeline_bench -- [--rounds 5] [--seconds 1] [--flows 1024] [--core N] [--only-setup] [--loop MODE]`
//! Runs alternate program by program and mode by mode within each round (A B A B);
//! the table reports medians. No DPDK: this measures the engine alone.
//!
//! `--loop interp|tracked|setup|setup-full` runs one part alone on simple_router for
//! `--seconds` and prints its cycles per packet (untracked runs, tracked runs, flow
//! setups into an empty cache, or into a full one where each evicts), for `perf
//! record` to sample.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sluice::control::entries;
use sluice::control::flows::{FlowLog, EVENT_RING};
use sluice::control::offload::live_megaflows;
use sluice::control::workers::{PRESETTLE_SLICE, SCAN_SLICE};
use std::sync::Arc;

use sluice::fastpath::cache::datapath::{Datapath, Upcall};
use sluice::fastpath::cache::dpcls::NONE;
use sluice::fastpath::cache::event_ring::EventHub;
use sluice::fastpath::cache::key::PacketView;
use sluice::fastpath::cache::{CacheConfig, CacheStats, Change, FlowCache, BURST_PURGE};
use sluice::fastpath::p4::compile::compile_bytes;
use sluice::fastpath::p4::interp::Interp;
use sluice::fastpath::p4::ir::Ir;
use sluice::fastpath::p4::ops::Op;
use sluice::fastpath::p4::tables::Runtime;
use sluice::fastpath::p4::track::{NoTrack, Phase, Track, Tracker};

fn rdtsc() -> u64 {
    dpdk_sys::lcore::rdtsc()
}

#[derive(Default)]
struct Profile {
    cur: Option<Phase>,
    last: u64,
    cycles: [u64; 4],
}

impl Track for Profile {
    // Times the untracked per-packet path's phases.
    const READS: bool = false;
    fn phase(&mut self, p: Phase) {
        let now = rdtsc();
        if let Some(c) = self.cur {
            if c != Phase::Done {
                self.cycles[c as usize] += now - self.last;
            }
        }
        self.cur = Some(p);
        self.last = now;
    }
}

fn udp4(dst: [u8; 6], sip: [u8; 4], dip: [u8; 4], sport: u16) -> Vec<u8> {
    let mut p = dst.to_vec();
    p.extend([0, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let mut ip = vec![0x45, 0, 0, 46, 0, 1, 0x40, 0, 64, 17, 0, 0];
    ip.extend(sip);
    ip.extend(dip);
    let c = sluice::fastpath::p4::bits::csum16(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend(ip);
    p.extend(sport.to_be_bytes());
    p.extend([0x00, 0x35, 0, 26, 0, 0]);
    p.extend([0u8; 18]);
    p
}

struct Bench {
    name: &'static str,
    ir: Ir,
    rt: Runtime,
    packets: Vec<Vec<u8>>,
}

fn load(
    corpus: &std::path::Path,
    name: &'static str,
    json: &str,
    entries_file: &str,
    dmac: [u8; 6],
    flows: usize,
) -> Bench {
    let ir = compile_bytes(&std::fs::read(corpus.join(json)).expect("read program")).expect("compile");
    let mut rt = Runtime::new(&ir);
    let text =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("perf/entries").join(entries_file))
            .expect("entries");
    entries::apply(&ir, &mut rt, &text).expect("entries apply");
    let packets = (0..flows)
        .map(|i| udp4(dmac, [10, 0, 9, 1], [10, 0, (i >> 8) as u8 % 200 + 2, i as u8], 1000 + i as u16))
        .collect();
    Bench { name, ir, rt, packets }
}

/// Per program: plain cycles/pkt, tracked cycles/pkt, the per-phase split, and
/// cycles per flow setup, per round.
type Samples = (Vec<f64>, Vec<f64>, Vec<[f64; 4]>, Vec<f64>);

/// Look `packets` up in bursts of 32 (on P4 port 1), then call `each` with every
/// packet, the megaflow found for it (or [`NONE`]) and the cache's install epoch
/// before the burst's lookup, in order; returns the cycles per packet of it all.
fn by_bursts(dp: &mut Datapath, packets: &[Vec<u8>], mut each: impl FnMut(&mut Datapath, &[u8], u32, u64)) -> f64 {
    let c0 = rdtsc();
    for burst in packets.chunks(32) {
        let mut views = [PacketView::new(1, &[]); 32];
        for (v, p) in views.iter_mut().zip(burst) {
            *v = PacketView::new(1, p);
        }
        let mut found = [NONE; 32];
        let epoch = dp.cache.epoch();
        dp.cache.lookup(&views[..burst.len()], &mut found);
        for (p, f) in burst.iter().zip(found) {
            each(dp, p, f, epoch);
        }
    }
    (rdtsc() - c0) as f64 / packets.len() as f64
}

/// Where a setup's flow events go.
#[derive(Clone, Copy, PartialEq)]
enum Events {
    /// Nowhere (no ring).
    Off,
    /// To a thread that drains the ring every millisecond and reads the events, as
    /// control does.
    Drained,
}

/// Cycles per flow setup of `packets` (each a new megaflow): burst lookup (a miss), the
/// miss looked up again (as the worker does: the burst may have installed it),
/// tracked run, install. With `warm`, the cache is first filled to its limit
/// (the warm flows fill it, untimed), so every setup also evicts one and finds its
/// tables at their working size, as under a sustained flow setup storm; otherwise it
/// starts empty. With `events`, every install and eviction also posts its flow
/// event, as in `sluiced`, and a thread on the other core reads them as control does.
fn setup_cycles(b: &Bench, rt: &Runtime, packets: &[Vec<u8>], warm: Option<&[Vec<u8>]>, events: Events) -> SetupRun {
    let full = warm.is_some();
    let max_flows = if full { packets.len() / 2 } else { packets.len() * 2 };
    let cfg = CacheConfig { max_flows, ..CacheConfig::default() };
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, drainer) = match events {
        Events::Off => (None, None),
        Events::Drained => {
            let control_core = core_affinity::get_core_ids().map(|c| c.len().saturating_sub(2)).unwrap_or(0);
            let hub = EventHub::new(EVENT_RING);
            let tx = hub.sender();
            let stop = Arc::clone(&stop);
            let drainer = std::thread::spawn(move || {
                // On the control core: the other one (the benchmark runs on the last).
                core_affinity::set_for_current(core_affinity::CoreId { id: control_core });
                // As control reads them (`FlowLog::drain`): shared actions resolved,
                // masks and keys made, each install kept in the live set until its
                // removal. The cycles inside the drains are control's cost.
                let mut log = FlowLog::new(vec![hub]);
                let mut busy = 0u64;
                loop {
                    // Stop seen before the last drain: nothing is sent after it.
                    let stopping = stop.load(Ordering::Acquire);
                    let c0 = rdtsc();
                    log.drain();
                    busy += rdtsc() - c0;
                    if stopping {
                        let s = log.summary();
                        return (s.installed + s.removed_idle + s.removed_evicted + s.removed_invalidated, busy);
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            (Some(tx), Some(drainer))
        }
    };
    let cache = FlowCache::new(cfg, 0, Arc::new(CacheStats::default()), tx);
    let mut dp = Datapath::new(Arc::new(b.ir.clone()), rt.clone(), cache);
    let pass = |dp: &mut Datapath, packets: &[Vec<u8>]| {
        by_bursts(dp, packets, |dp, p, f, epoch| {
            if f == NONE {
                // As the worker's miss path (`PipelineStage::miss`): an earlier
                // packet of the burst may have installed this one's megaflow, so a
                // miss is looked up again, among the megaflows installed since the
                // burst's lookup, before its upcall (here never found: every packet
                // is a new megaflow).
                let again = dp.cache.lookup_since(&PacketView::new(1, p), epoch);
                debug_assert_eq!(again, NONE);
                let r = dp.upcall(1, p);
                debug_assert!(matches!(r, Upcall::Cached(_)));
            }
        })
    };
    if let Some(w) = warm {
        pass(&mut dp, w);
    }
    let before = dp.cache.stats().snapshot();
    let c = pass(&mut dp, packets);
    let s = dp.cache.stats().snapshot();
    assert_eq!(
        (s.installed - before.installed) as usize,
        packets.len(),
        "{}: every setup packet is a new megaflow: {s:?}",
        b.name
    );
    if full {
        assert!(s.evicted as usize >= packets.len() * 3 / 2, "{}: every timed setup evicts: {s:?}", b.name);
    }
    drop(dp);
    stop.store(true, Ordering::Release);
    let mut control = 0.0;
    if let Some(d) = drainer {
        let (drained, busy) = d.join().expect("the drainer thread");
        assert_eq!(drained + s.events_dropped, s.installed + s.evicted, "every event is drained or counted as dropped");
        control = busy as f64 / drained.max(1) as f64;
    }
    let posted = s.installed + s.evicted - before.installed - before.evicted;
    SetupRun {
        cycles: c,
        setups: packets.len() as u64,
        posted,
        dropped: s.events_dropped - before.events_dropped,
        control,
    }
}

/// One [`setup_cycles`] run.
#[derive(Clone, Copy)]
struct SetupRun {
    /// Cycles per setup.
    cycles: f64,
    /// Timed setups.
    setups: u64,
    /// Flow events the timed pass posted (installs and evictions).
    posted: u64,
    /// Of them, dropped by the full ring.
    dropped: u64,
    /// Control's cycles per event read (`FlowLog::drain`, both passes), when drained.
    control: f64,
}

/// Setup cycles into an empty cache, into a full one, and into a full one posting
/// flow events: the first half of `setup` timed, the second half warming the full
/// cache.
fn setup_all(b: &Bench, rt: &Runtime, setup: &[Vec<u8>]) -> [SetupRun; 3] {
    let (timed, warm) = setup.split_at(setup.len() / 2);
    [
        setup_cycles(b, rt, timed, None, Events::Off),
        setup_cycles(b, rt, timed, Some(warm), Events::Off),
        setup_cycles(b, rt, timed, Some(warm), Events::Drained),
    ]
}

/// The stall of a full settle: `packets` megaflows installed (one each), then hit
/// once each (credited, listed dirty, as the hit path does), then every dirty one's
/// counter effects replayed at once, as before control reads counters or changes the
/// state (`Datapath::settled`, `apply`, `update`). Then the same hits again, settled
/// as control's presettle does it: `PRESETTLE_SLICE` megaflows per command.
struct Settle {
    /// Megaflows dirty.
    dirty: usize,
    /// Cycles of the full settle.
    full: f64,
    /// Cycles of the longest slice, and how many slices.
    slice_max: f64,
    slices: usize,
    /// Cycles of the offload round's read of every live megaflow in one command, and
    /// of its longest slice of `SCAN_SLICE` slots (`Workers::scan`); the slots.
    scan_full: f64,
    scan_slice_max: f64,
    slots: usize,
    /// Cycles of a table write that makes every megaflow stale (each read the
    /// modified table).
    write: f64,
    /// Cycles of removing all of them at once (what such a write cost when it
    /// removed them itself), and how many.
    purge_full: f64,
    invalidated: usize,
    /// The slices of the purge as the worker runs it ([`BURST_PURGE`] per burst):
    /// median, 99th percentile and longest cycles (the last slice empties the cache,
    /// which clears the EMC), and how many slices.
    purge_slice: [f64; 3],
    purge_slices: usize,
    /// Cycles per packet of looking up and crediting every megaflow's packet (all
    /// current), without and with a purge pending (each hit checked).
    lookup_plain: f64,
    lookup_pending: f64,
}

fn settle_cycles(b: &Bench, rt: &Runtime, packets: &[Vec<u8>]) -> Settle {
    let cfg = CacheConfig { max_flows: packets.len() * 2, ..CacheConfig::default() };
    let cache = FlowCache::new(cfg, 0, Arc::new(CacheStats::default()), None);
    let mut dp = Datapath::new(Arc::new(b.ir.clone()), rt.clone(), cache);
    for p in packets {
        assert!(matches!(dp.upcall(1, p), Upcall::Cached(_)), "{}: a setup packet is cached", b.name);
    }
    dp.settle();
    // Every megaflow's packet looked up and credited as the hit path does it (which
    // reads each megaflow's slot); returns the cycles per packet.
    let hit_all = |dp: &mut Datapath| {
        by_bursts(dp, packets, |dp, p, f, _| {
            assert_ne!(f, NONE, "{}: a hit", b.name);
            dp.replay(f, 1, p.len() as u64);
        })
    };
    hit_all(&mut dp);
    let dirty = dp.cache.dirty();
    assert_eq!(dirty, packets.len(), "{}: every megaflow is dirty", b.name);
    let c0 = rdtsc();
    dp.settle();
    let full = (rdtsc() - c0) as f64;
    assert_eq!(dp.cache.dirty(), 0);
    hit_all(&mut dp);
    let (mut slice_max, mut slices) = (0f64, 0);
    loop {
        let c0 = rdtsc();
        let left = dp.settle_some(PRESETTLE_SLICE);
        slice_max = slice_max.max((rdtsc() - c0) as f64);
        slices += 1;
        if left == 0 {
            break;
        }
    }
    let c0 = rdtsc();
    let all = live_megaflows(&mut dp, 0..usize::MAX);
    let scan_full = (rdtsc() - c0) as f64;
    assert_eq!(all.len(), dirty);
    let slots = dp.cache.slot_count();
    let (mut scan_slice_max, mut found) = (0f64, 0);
    for from in (0..slots).step_by(SCAN_SLICE) {
        let c0 = rdtsc();
        found += live_megaflows(&mut dp, from..from + SCAN_SLICE).len();
        scan_slice_max = scan_slice_max.max((rdtsc() - c0) as f64);
    }
    assert_eq!(found, dirty);
    // The cost of a pending purge to hits: every megaflow's packet looked up and
    // credited, with none pending and with one pending for a table no megaflow read
    // (none stale).
    let unused = b.ir.tables.len() as u32 + 1;
    let (mut lookup_plain, mut lookup_pending) = (0f64, 0f64);
    for _ in 0..2 {
        lookup_plain += hit_all(&mut dp) / 2.0;
        dp.update(Change::Table(unused), |_, _| ());
        assert!(dp.cache.purging());
        lookup_pending += hit_all(&mut dp) / 2.0;
        assert!(dp.purge(usize::MAX, usize::MAX));
    }
    assert_eq!(dp.cache.len(), dirty, "{}: nothing read the unused table", b.name);
    // Settled here, so the write below times the write (control presettles first).
    dp.settle();
    // A route rewritten as it was: every megaflow read the table, so the write makes
    // each stale; then they are removed all at once, as the write itself used to.
    let t = b.ir.tables.iter().position(|t| t.name == "ipv4_lpm").expect("ipv4_lpm") as u32;
    let entry = dp.rt.tables[t as usize].entries().next().expect("a route").1.clone();
    let write = |dp: &mut Datapath| {
        let c0 = rdtsc();
        assert_eq!(dp.apply(&[Op::Modify { table: t, entry: entry.clone() }]), 0, "the write applies");
        (rdtsc() - c0) as f64
    };
    let write_cycles = write(&mut dp);
    let c0 = rdtsc();
    assert!(dp.purge(usize::MAX, usize::MAX));
    let purge_full = (rdtsc() - c0) as f64;
    let invalidated = dirty - dp.cache.len();
    // Again, purged as the worker does it: a slice per burst.
    for p in packets {
        assert!(matches!(dp.upcall(1, p), Upcall::Cached(_)), "{}: a setup packet is cached", b.name);
    }
    let write_cycles = write_cycles.max(write(&mut dp));
    let mut purged = vec![];
    loop {
        let c0 = rdtsc();
        let done = dp.purge(BURST_PURGE.0, BURST_PURGE.1);
        purged.push((rdtsc() - c0) as f64);
        if done {
            break;
        }
    }
    assert_eq!(dp.cache.len(), 0);
    let purge_slices = purged.len();
    purged.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let purge_slice = [purged[purge_slices / 2], purged[purge_slices * 99 / 100], purged[purge_slices - 1]];
    Settle {
        dirty,
        full,
        slice_max,
        slices,
        scan_full,
        scan_slice_max,
        slots,
        write: write_cycles,
        purge_full,
        invalidated,
        purge_slice,
        purge_slices,
        lookup_plain,
        lookup_pending,
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let mut rounds = 5;
    let mut seconds = 1.0;
    let mut flows = 1024;
    let mut core = None;
    let mut only_setup = false;
    let mut looped: Option<String> = None;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--rounds" => rounds = v.parse().expect("--rounds N"),
            "--seconds" => seconds = v.parse().expect("--seconds S"),
            "--flows" => flows = v.parse().expect("--flows N"),
            "--core" => core = Some(v.parse::<usize>().expect("--core N")),
            "--only-setup" => {
                only_setup = true;
                i += 1;
                continue;
            }
            "--loop" => {
                assert!(
                    ["interp", "tracked", "setup", "setup-full"].contains(&v.as_str()),
                    "--loop interp|tracked|setup|setup-full"
                );
                looped = Some(v);
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    let core = core.unwrap_or_else(|| core_affinity::get_core_ids().map(|c| c.len() - 1).unwrap_or(0));
    core_affinity::set_for_current(core_affinity::CoreId { id: core });
    let corpus = std::env::var_os("SLUICE_P4_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/p4"));
    let mut benches = [
        load(
            &corpus,
            "simple_router",
            "simple_router/simple_router.json",
            "simple_router.txt",
            [0, 0xaa, 0xbb, 0, 0, 0],
            flows,
        ),
        load(&corpus, "fabric", "onos_fabric/fabric.json", "fabric.txt", [0, 0, 0, 0, 0xaa, 1], flows),
    ];
    // Sanity: every packet is forwarded (a benchmark of drops would flatter). Not
    // with --loop, whose runs an instruction counter must see alone.
    for b in benches.iter_mut().filter(|_| looped.is_none()) {
        let mut it = Interp::new(&b.ir);
        for p in &b.packets {
            it.run(&b.ir, &mut b.rt, p, 1, &mut NoTrack);
            assert_eq!(it.out.packets().len(), 1, "{}: a benchmark packet was dropped: {:?}", b.name, it.out.drops);
        }
    }
    let t0 = Instant::now();
    let c0 = rdtsc();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let hz = (rdtsc() - c0) as f64 / t0.elapsed().as_secs_f64();
    println!("pipeline_bench: core {core}, {flows} flows, {rounds} rounds x {seconds} s, TSC {:.2} GHz", hz / 1e9);
    let mut results: Vec<Samples> = benches.iter().map(|_| (vec![], vec![], vec![], vec![])).collect();
    let mut full_setup: Vec<f64> = vec![];
    let mut evented_setup: Vec<SetupRun> = vec![];
    let mut settles: Vec<Settle> = vec![];
    // Flow setup traffic: 1,000 host routes (10.1.x.y/32; the table holds 1,024) and
    // packets to each with 64 TTLs: LPM tracking decides all 32 bits of a host route
    // and the TTL is read (decremented), so each of the 64,000 packets is its own
    // megaflow.
    let setup_rt = {
        let b = &benches[0];
        let mut rt = b.rt.clone();
        let text: String = (0..1_000u32)
            .map(|i| format!("table_add ipv4_lpm set_nhop 10.1.{}.{}/32 => 10.0.1.10 2\n", i >> 8, i & 0xff))
            .collect();
        entries::apply(&b.ir, &mut rt, &text).expect("host routes");
        rt
    };
    // The second 64,000 (TTLs 66..=129) warm the cache of the full-cache runs.
    let setup: Vec<Vec<u8>> = (0..128_000u32)
        .map(|k| {
            let (i, ttl) = (k % 1000, 2 + (k / 1000) as u8);
            let mut p = udp4([0, 0xaa, 0xbb, 0, 0, 0], [10, 0, 9, 1], [10, 1, (i >> 8) as u8, i as u8], 1000);
            p[22] = ttl;
            p[24..26].fill(0);
            let c = sluice::fastpath::p4::bits::csum16(&p[14..34]);
            p[24..26].copy_from_slice(&c.to_be_bytes());
            p
        })
        .collect();
    if let Some(mode) = looped {
        // One part alone, for `--seconds`, for a profiler to sample.
        let b = &mut benches[0];
        let mut it = Interp::new(&b.ir);
        let mut t = Tracker::new(&b.ir);
        let (start, c0) = (Instant::now(), rdtsc());
        let mut n = 0u64;
        while start.elapsed().as_secs_f64() < seconds {
            match mode.as_str() {
                "interp" => b.packets.iter().for_each(|p| it.run(&b.ir, &mut b.rt, p, 1, &mut NoTrack)),
                "tracked" => b.packets.iter().for_each(|p| {
                    t.begin();
                    it.run(&b.ir, &mut b.rt, p, 1, &mut t)
                }),
                "setup" => {
                    setup_cycles(b, &setup_rt, &setup[..setup.len() / 2], None, Events::Off);
                }
                _ => {
                    let (timed, warm) = setup.split_at(setup.len() / 2);
                    setup_cycles(b, &setup_rt, timed, Some(warm), Events::Off);
                }
            }
            // A full-cache round also sets up the warm half (untimed by `setup_cycles`,
            // but inside what a profiler sees).
            n += match mode.as_str() {
                "setup" => setup.len() / 2,
                "setup-full" => setup.len(),
                _ => b.packets.len(),
            } as u64;
        }
        println!(
            "--loop {mode}: {:.0} cycles per packet over {n} packets (simple_router)",
            (rdtsc() - c0) as f64 / n as f64
        );
        return;
    }
    for _ in 0..rounds {
        for (bi, b) in benches.iter_mut().enumerate() {
            if only_setup {
                if b.name == "simple_router" {
                    let r = setup_all(b, &setup_rt, &setup);
                    results[bi].3.push(r[0].cycles);
                    full_setup.push(r[1].cycles);
                    evented_setup.push(r[2]);
                    settles.push(settle_cycles(b, &setup_rt, &setup[..setup.len() / 2]));
                }
                continue;
            }
            let mut it = Interp::new(&b.ir);
            // A: no tracking (the per-packet path).
            let (mut n, start, c_start) = (0u64, Instant::now(), rdtsc());
            while start.elapsed().as_secs_f64() < seconds {
                for p in &b.packets {
                    it.run(&b.ir, &mut b.rt, p, 1, &mut NoTrack);
                }
                n += b.packets.len() as u64;
            }
            let cyc = (rdtsc() - c_start) as f64 / n as f64;
            results[bi].0.push(cyc);
            // B: with read tracking (a cache miss).
            let mut t = Tracker::new(&b.ir);
            let (mut m, c_start) = (0u64, rdtsc());
            let start = Instant::now();
            while start.elapsed().as_secs_f64() < seconds / 2.0 {
                for p in &b.packets {
                    t.begin();
                    it.run(&b.ir, &mut b.rt, p, 1, &mut t);
                }
                m += b.packets.len() as u64;
            }
            results[bi].1.push((rdtsc() - c_start) as f64 / m as f64);
            // Split (profiled; rdtsc per phase adds a little).
            let mut prof = Profile::default();
            let reps = 20;
            for _ in 0..reps {
                for p in &b.packets {
                    it.run(&b.ir, &mut b.rt, p, 1, &mut prof);
                    prof.phase(Phase::Done);
                }
            }
            let k = (reps * b.packets.len()) as f64;
            results[bi].2.push(prof.cycles.map(|c| c as f64 / k));
            // D: flow setup (simple_router only: its megaflows are per destination).
            if b.name == "simple_router" {
                let r = setup_all(b, &setup_rt, &setup);
                results[bi].3.push(r[0].cycles);
                full_setup.push(r[1].cycles);
                evented_setup.push(r[2]);
                settles.push(settle_cycles(b, &setup_rt, &setup[..setup.len() / 2]));
            }
        }
    }
    if only_setup {
        results.iter_mut().for_each(|r| r.0.push(0.0));
        results.iter_mut().for_each(|r| r.1.push(0.0));
        results.iter_mut().for_each(|r| r.2.push([0.0; 4]));
    }
    println!();
    println!("| program | Mpps/core | cycles/pkt | tracked cycles/pkt | parse | ingress+TM | egress | deparse |");
    println!("|---|---|---|---|---|---|---|---|");
    for (bi, b) in benches.iter().enumerate() {
        let (cyc, trk, split, _) = &mut results[bi];
        let c = median(cyc);
        let t = median(trk);
        let ph: Vec<f64> = (0..4).map(|k| median(&mut split.iter().map(|s| s[k]).collect::<Vec<_>>())).collect();
        println!(
            "| {} | {:.2} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
            b.name,
            hz / c / 1e6,
            c,
            t,
            ph[0],
            ph[1],
            ph[2],
            ph[3]
        );
    }
    println!();
    println!("| program | cache | flow setup cycles | new flows/s per core |");
    println!("|---|---|---|---|");
    for (bi, b) in benches.iter().enumerate() {
        if results[bi].3.is_empty() {
            continue;
        }
        let c = median(&mut results[bi].3);
        println!("| {} | empty | {:.0} | {:.2} M |", b.name, c, hz / c / 1e6);
        let c = median(&mut full_setup);
        println!("| {} | full (each setup evicts) | {:.0} | {:.2} M |", b.name, c, hz / c / 1e6);
        let c = median(&mut evented_setup.iter().map(|e| e.cycles).collect::<Vec<_>>());
        let (posted, dropped) = evented_setup.iter().fold((0, 0), |(p, d), e| (p + e.posted, d + e.dropped));
        println!(
            "| {} | full, flow events drained each ms ({dropped} of {posted} dropped) | {:.0} | {:.2} M |",
            b.name,
            c,
            hz / c / 1e6
        );
        // What reading those events costs control: per event, and per setup (an
        // install and an eviction each) as a share of the control core while the
        // worker sets up flows as fast as it can.
        let per_event = median(&mut evented_setup.iter().map(|e| e.control).collect::<Vec<_>>());
        let setups: u64 = evented_setup.iter().map(|e| e.setups).sum();
        let per_setup = per_event * posted as f64 / setups.max(1) as f64;
        println!();
        println!(
            "| control reading flow events (`FlowLog::drain`) | cycles per event | events per setup | control core busy at that setup rate |"
        );
        println!("|---|---|---|---|");
        println!(
            "| {} | {per_event:.0} | {:.2} | {:.0} % |",
            b.name,
            posted as f64 / setups.max(1) as f64,
            100.0 * per_setup / c
        );
    }
    if !settles.is_empty() {
        let dirty = settles[0].dirty;
        let full = median(&mut settles.iter().map(|s| s.full).collect::<Vec<_>>());
        let slice = median(&mut settles.iter().map(|s| s.slice_max).collect::<Vec<_>>());
        println!();
        println!("| program | dirty megaflows | settled | cycles (longest) | per megaflow | worker stall |");
        println!("|---|---|---|---|---|---|");
        println!(
            "| simple_router | {dirty} | at once | {full:.0} | {:.0} | {:.2} ms |",
            full / dirty.max(1) as f64,
            full / hz * 1e3
        );
        println!(
            "| simple_router | {dirty} | {} slices of {PRESETTLE_SLICE} (presettle) | {slice:.0} | {:.0} | {:.1} us per slice |",
            settles[0].slices,
            slice / PRESETTLE_SLICE as f64,
            slice / hz * 1e6
        );
        let full = median(&mut settles.iter().map(|s| s.scan_full).collect::<Vec<_>>());
        let slice = median(&mut settles.iter().map(|s| s.scan_slice_max).collect::<Vec<_>>());
        println!();
        println!("| read of live megaflows (offload round) | slots | cycles (longest) | worker stall |");
        println!("|---|---|---|---|");
        println!("| {dirty} megaflows in one command | {} | {full:.0} | {:.2} ms |", settles[0].slots, full / hz * 1e3);
        println!(
            "| slices of {SCAN_SLICE} slots (`Workers::scan`) | {SCAN_SLICE} | {slice:.0} | {:.1} us per slice |",
            slice / hz * 1e6
        );
        let med = |f: fn(&Settle) -> f64| median(&mut settles.iter().map(f).collect::<Vec<_>>());
        let (write, purge) = (med(|s| s.write), med(|s| s.purge_full));
        let slice = [med(|s| s.purge_slice[0]), med(|s| s.purge_slice[1]), med(|s| s.purge_slice[2])];
        let n = settles[0].invalidated;
        println!();
        println!("| table write (ipv4_lpm), every megaflow read the table | megaflows | cycles (longest) | per megaflow | worker stall |");
        println!("|---|---|---|---|---|");
        println!("| the write (makes them stale) | {n} | {write:.0} | - | {:.1} us |", write / hz * 1e6);
        println!(
            "| their removal at once (what the write did before) | {n} | {purge:.0} | {:.0} | {:.2} ms |",
            purge / n.max(1) as f64,
            purge / hz * 1e3
        );
        println!(
            "| their removal in {} purge slices of {} slots / {} removals (one per burst): median, 99th percentile, longest (empties the cache: clears the EMC) | {n} | {:.0}, {:.0}, {:.0} | - | {:.1}, {:.1}, {:.1} us |",
            settles[0].purge_slices,
            BURST_PURGE.0,
            BURST_PURGE.1,
            slice[0],
            slice[1],
            slice[2],
            slice[0] / hz * 1e6,
            slice[1] / hz * 1e6,
            slice[2] / hz * 1e6
        );
        let (plain, pending) = (med(|s| s.lookup_plain), med(|s| s.lookup_pending));
        println!();
        println!("| lookup and credit of {dirty} current megaflows' packets | cycles/packet |");
        println!("|---|---|");
        println!("| no purge pending | {plain:.1} |");
        println!("| a purge pending (every hit checked) | {pending:.1} |");
    }
}
