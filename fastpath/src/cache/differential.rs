//! The cache's invariant, tested: for every packet, the cached datapath's result equals
//! the full pipeline's — output ports and bytes, drops and their reasons, and every
//! counter (table-entry hits, direct and indexed counters) — across random table
//! state, random packets (malformed and truncated ones included) and random state
//! changes applied while flows are cached.
//!
//! Each case is a seed ([`Rng`]): random entries for every table of the program, a
//! pool of random packets replayed many times (so most packets hit megaflows, through
//! both the EMC and dpcls), fresh packets now and then, and every so often a random
//! state change applied to both sides (through [`Datapath::update`] on the cached
//! side, which must invalidate exactly enough: the megaflows it makes stale are
//! purged in small random slices between packets, so lookups meet them too). A small megaflow limit makes
//! evictions happen too. proptest drives the seeds; a failure names its seed.
//!
//! With meters on, random meter arrays of the program get every cell configured
//! with low rates, and both sides see the same synthetic clock: the cached side
//! executes the meters of metered megaflows per packet and takes the color's branch,
//! the reference runs the pipeline; outputs, drops, counters and every cell's color
//! counts must agree.

use std::sync::Arc;

use proptest::prelude::*;

use super::datapath::{Datapath, Path};
use super::emc::EmcConfig;
use super::{CacheConfig, CacheStats, Change, FlowCache};
use crate::p4::compile::compile_bytes;
use crate::p4::corpus;
use crate::p4::gen::{self, configure_meter, mutate_state, random_entries, random_packet, Pools, Rng};
use crate::p4::interp::Interp;
use crate::p4::ir::Ir;
use crate::p4::tables::Runtime;
use crate::p4::track::NoTrack;

fn program(rel: &str) -> Option<Ir> {
    let dir = corpus::dir()?;
    Some(compile_bytes(&std::fs::read(dir.join(rel)).unwrap()).unwrap())
}

/// Sluice's own program (not in the corpus: it ships with Sluice). The path is the one
/// `p4::default_tests::JSON` includes; that module is private to `p4`.
fn sluice_default() -> Ir {
    compile_bytes(include_bytes!("../../../pipelines/sluice_default/sluice_default.json")).unwrap()
}

fn change(c: gen::Change) -> Change {
    match c {
        gen::Change::Table(t) => Change::Table(t),
        gen::Change::Profile(p) => Change::Profile(p),
        gen::Change::Mcast => Change::Mcast,
        gen::Change::Clone => Change::Clone,
        gen::Change::ValueSet(s) => Change::ValueSet(s),
        gen::Change::Ports => Change::Ports,
    }
}

/// Packets and bytes per cell.
type Cells = Vec<(u64, u64)>;

/// Counters that must agree: per table hits and direct counters, indexed counters.
fn counters(rt: &Runtime) -> (Vec<(Vec<u64>, Cells)>, Vec<Cells>) {
    (rt.tables.iter().map(|t| (t.hits.clone(), t.direct_counters.clone())).collect(), rt.counters.clone())
}

/// Packets and bytes per color of one cell.
type ColorCounts = [(u64, u64); 3];

/// Color counts per configured cell of every meter.
fn colors(rt: &Runtime) -> Vec<Vec<Option<ColorCounts>>> {
    rt.meters.iter().map(|cells| cells.iter().map(|c| c.map(|c| c.counts)).collect()).collect()
}

/// Paths taken over a case: hits, installs, uncached; hits on metered megaflows.
#[derive(Debug, Default)]
struct Paths {
    hit: u64,
    installed: u64,
    uncached: u64,
    metered_hits: u64,
    /// Packets the meters marked YELLOW or RED.
    not_green: u64,
    /// Stale megaflows lookups found (the rest were purged first).
    stale_found: u64,
}

/// Configure every cell of a random half of the meter arrays (at least one) with
/// rates low enough that the few packets per second each cell gets (1000 packets/s
/// over many ports and entries) see all three colors.
fn random_meters(ir: &Ir, rt: &mut Runtime, rng: &mut Rng) {
    let n = ir.meters.len() as u64;
    let must = rng.below(n.max(1));
    for m in 0..ir.meters.len() {
        if m as u64 != must && rng.below(2) == 0 {
            continue;
        }
        configure_meter(ir, rt, m);
    }
}

fn case(ir: &Ir, seed: u64, packets: usize, emc: bool, meters: bool) -> Paths {
    let mut rng = Rng::new(seed);
    let pools = Pools::default();
    let mut rt = Runtime::new(ir);
    random_entries(ir, &mut rt, &mut rng, &pools, 6);
    // Meter markers need the EAL's TSC frequency; the synthetic clock uses it too.
    let hz = if meters {
        let hz = dpdk_sys::lcore::tsc_hz(dpdk_sys::eal::Eal::for_tests("sluice-fastpath-test"));
        random_meters(ir, &mut rt, &mut rng);
        hz
    } else {
        0
    };
    let mut reference = Interp::new(ir);
    let mut ref_rt = rt.clone();
    let cfg = CacheConfig {
        max_flows: 48,
        max_idle_ms: 1000,
        emc: EmcConfig { entries: 64, insert_inv_prob: if emc { 1 } else { 0 } },
    };
    let cache = FlowCache::new(cfg, 0, Arc::new(CacheStats::default()), None);
    let mut dp = Datapath::new(Arc::new(ir.clone()), rt, cache);
    let pool: Vec<(u32, Vec<u8>)> = (0..40).map(|_| random_packet(&mut rng, &pools)).collect();
    let mut paths = Paths::default();
    for i in 0..packets {
        if i % 97 == 96 {
            assert_eq!(counters(&dp.rt), counters(&ref_rt), "seed {seed}: counters before change at packet {i}");
            if let Some(c) = mutate_state(ir, &mut ref_rt, &mut rng, &pools) {
                let next = ref_rt.clone();
                dp.update(change(c), |_, rt| *rt = next);
            }
        }
        if i % 50 == 49 {
            dp.cache.set_now(i as u32 * 10);
            dp.maintain();
        }
        if dp.cache.purging() && rng.below(4) == 0 {
            // A small slice of the purge: packets meet stale megaflows, found by
            // lookups or removed first.
            dp.purge(rng.below(8) as usize, 1 + rng.below(2) as usize);
        }
        let (port, pkt) = if rng.below(8) == 0 {
            random_packet(&mut rng, &pools)
        } else {
            pool[rng.below(pool.len() as u64) as usize].clone()
        };
        // 1000 packets per second of synthetic time.
        let now = 1_000_000 + i as u64 * hz / 1000;
        dp.interp.now = now;
        reference.now = now;
        let got = dp.process(port, &pkt);
        reference.run(ir, &mut ref_rt, &pkt, port, &mut NoTrack);
        let want: Vec<(u32, Vec<u8>)> = reference.out.packets().iter().map(|p| (p.port, p.bytes.clone())).collect();
        assert_eq!(got.outputs, want, "seed {seed}, packet {i} ({:?}), in port {port}: {pkt:02x?}", got.path);
        let (mut a, mut b) = (got.drops.clone(), reference.out.drops.clone());
        a.sort_by_key(|d| *d as u8);
        b.sort_by_key(|d| *d as u8);
        assert_eq!(a, b, "seed {seed}, packet {i}: drops");
        if got.metered && got.path == Path::Hit {
            paths.metered_hits += 1;
        }
        match got.path {
            Path::Hit => paths.hit += 1,
            Path::Installed => paths.installed += 1,
            Path::Uncached => paths.uncached += 1,
        }
    }
    assert_eq!(counters(&dp.rt), counters(&ref_rt), "seed {seed}: counters at the end");
    assert_eq!(colors(&dp.rt), colors(&ref_rt), "seed {seed}: meter colors at the end");
    paths.not_green = colors(&dp.rt).iter().flatten().flatten().map(|c| c[1].0 + c[2].0).sum();
    paths.stale_found = dp.cache.stats().snapshot().stale_found;
    paths
}

fn run(rel: &str, seeds: &[u64], packets: usize) {
    let Some(ir) = program(rel) else { return };
    run_ir(rel, &ir, seeds, packets, false);
}

/// [`run`] with meters configured.
fn run_metered(rel: &str, seeds: &[u64], packets: usize) {
    let Some(ir) = program(rel) else { return };
    run_ir(rel, &ir, seeds, packets, true);
}

/// [`run`] on a program that is not in the corpus.
fn run_ir(name: &str, ir: &Ir, seeds: &[u64], packets: usize, meters: bool) -> Paths {
    let mut total = Paths::default();
    for (k, seed) in seeds.iter().enumerate() {
        let p = case(ir, *seed, packets, k % 2 == 0, meters);
        total.hit += p.hit;
        total.installed += p.installed;
        total.uncached += p.uncached;
        total.metered_hits += p.metered_hits;
        total.not_green += p.not_green;
        total.stale_found += p.stale_found;
    }
    eprintln!("{name}: {total:?}");
    // The comparison only means something if the cache was used.
    assert!(total.hit > total.installed, "{name}: too few hits: {total:?}");
    total
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn cached_equals_uncached_on_simple_router(seed in any::<u64>()) {
        run("simple_router/simple_router.json", &[seed, seed ^ 1], 600);
    }

    #[test]
    fn cached_equals_uncached_on_onos_basic(seed in any::<u64>()) {
        run("onos_basic/basic.json", &[seed, seed ^ 1], 600);
    }

    #[test]
    fn cached_equals_uncached_on_onos_fabric(seed in any::<u64>()) {
        run("onos_fabric/fabric.json", &[seed, seed ^ 1], 600);
    }

    #[test]
    fn cached_equals_uncached_on_sluice_default(seed in any::<u64>()) {
        run_ir("sluice_default", &sluice_default(), &[seed, seed ^ 1], 600, false);
    }

    #[test]
    fn cached_equals_uncached_with_header_stacks_and_unions(seed in any::<u64>()) {
        run_ir("stacks", &crate::p4::stack_tests::stacks_ir(), &[seed, seed ^ 1], 600, false);
    }

    #[test]
    fn cached_equals_uncached_with_varbit_options(seed in any::<u64>()) {
        run_ir("options", &crate::p4::stack_tests::options_ir(), &[seed, seed ^ 1], 600, false);
    }

    #[test]
    fn metered_cached_equals_uncached_on_onos_basic(seed in any::<u64>()) {
        run_metered("onos_basic/basic.json", &[seed, seed ^ 1], 600);
    }

    #[test]
    fn metered_cached_equals_uncached_on_onos_fabric(seed in any::<u64>()) {
        run_metered("onos_fabric/fabric.json", &[seed, seed ^ 1], 600);
    }

    #[test]
    fn metered_cached_equals_uncached_on_sluice_default(seed in any::<u64>()) {
        run_ir("sluice_default", &sluice_default(), &[seed, seed ^ 1], 600, true);
    }
}

#[test]
fn metered_megaflows_are_hit_on_the_meter_programs() {
    // Fixed seeds, so that the branching path is known to be exercised.
    let Some(basic) = program("onos_basic/basic.json") else { return };
    let Some(mtr) = program("bmv2_grpc_tests/meter.json") else { return };
    for (name, ir) in [("onos_basic", basic), ("meter", mtr), ("sluice_default", sluice_default())] {
        let p = run_ir(name, &ir, &[1, 2, 3, 4], 600, true);
        assert!(p.metered_hits > 0 && p.not_green > 0, "{name}: no hit on a metered megaflow, or all GREEN: {p:?}");
    }
}

#[test]
fn cached_equals_uncached_on_every_corpus_program() {
    let Some(dir) = corpus::dir() else { return };
    let mut stale_found = 0;
    for f in corpus::files(&dir, ".json") {
        let rel = f.strip_prefix(&dir).unwrap().to_string_lossy().into_owned();
        if rel.contains("p4info") {
            continue;
        }
        let Some(ir) = program(&rel) else { return };
        eprintln!("{rel}");
        for seed in 0..4 {
            stale_found += case(&ir, seed, 300, seed % 2 == 0, seed >= 2).stale_found;
        }
    }
    assert!(stale_found > 0, "lookups met stale megaflows");
}
