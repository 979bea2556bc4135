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
//! side, which must invalidate exactly enough). A small megaflow limit makes
//! evictions happen too. proptest drives the seeds; a failure names its seed.

use std::sync::Arc;

use proptest::prelude::*;

use super::datapath::{Datapath, Path};
use super::emc::EmcConfig;
use super::{CacheConfig, CacheStats, Change, FlowCache};
use crate::p4::compile::compile_bytes;
use crate::p4::corpus;
use crate::p4::gen::{self, mutate_state, random_entries, random_packet, Pools, Rng};
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

/// Paths taken over a case: hits, installs, uncached.
#[derive(Debug, Default)]
struct Paths {
    hit: u64,
    installed: u64,
    uncached: u64,
}

fn case(ir: &Ir, seed: u64, packets: usize, emc: bool) -> Paths {
    let mut rng = Rng::new(seed);
    let pools = Pools::default();
    let mut rt = Runtime::new(ir);
    random_entries(ir, &mut rt, &mut rng, &pools, 6);
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
        let (port, pkt) = if rng.below(8) == 0 {
            random_packet(&mut rng, &pools)
        } else {
            pool[rng.below(pool.len() as u64) as usize].clone()
        };
        let got = dp.process(port, &pkt);
        reference.run(ir, &mut ref_rt, &pkt, port, &mut NoTrack);
        let want: Vec<(u32, Vec<u8>)> = reference.out.packets().iter().map(|p| (p.port, p.bytes.clone())).collect();
        assert_eq!(got.outputs, want, "seed {seed}, packet {i} ({:?}), in port {port}: {pkt:02x?}", got.path);
        let (mut a, mut b) = (got.drops.clone(), reference.out.drops.clone());
        a.sort_by_key(|d| *d as u8);
        b.sort_by_key(|d| *d as u8);
        assert_eq!(a, b, "seed {seed}, packet {i}: drops");
        match got.path {
            Path::Hit => paths.hit += 1,
            Path::Installed => paths.installed += 1,
            Path::Uncached => paths.uncached += 1,
        }
    }
    assert_eq!(counters(&dp.rt), counters(&ref_rt), "seed {seed}: counters at the end");
    paths
}

fn run(rel: &str, seeds: &[u64], packets: usize) {
    let Some(ir) = program(rel) else { return };
    run_ir(rel, &ir, seeds, packets);
}

/// [`run`] on a program that is not in the corpus.
fn run_ir(name: &str, ir: &Ir, seeds: &[u64], packets: usize) {
    let mut total = Paths::default();
    for (k, seed) in seeds.iter().enumerate() {
        let p = case(ir, *seed, packets, k % 2 == 0);
        total.hit += p.hit;
        total.installed += p.installed;
        total.uncached += p.uncached;
    }
    eprintln!("{name}: {total:?}");
    // The comparison only means something if the cache was used.
    assert!(total.hit > total.installed, "{name}: too few hits: {total:?}");
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
        run_ir("sluice_default", &sluice_default(), &[seed, seed ^ 1], 600);
    }
}

#[test]
fn cached_equals_uncached_on_every_corpus_program() {
    let Some(dir) = corpus::dir() else { return };
    for f in corpus::files(&dir, ".json") {
        let rel = f.strip_prefix(&dir).unwrap().to_string_lossy().into_owned();
        if rel.contains("p4info") {
            continue;
        }
        let Some(ir) = program(&rel) else { return };
        eprintln!("{rel}");
        for seed in 0..3 {
            case(&ir, seed, 300, seed % 2 == 0);
        }
    }
}
