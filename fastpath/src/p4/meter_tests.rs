//! Meters on a real program (onos_basic: an indexed bytes meter per egress port,
//! RED drops), on a synthetic clock: the rate passed, and cached == uncached.

use std::sync::Arc;

use dpdk_sys::eal::Eal;

use super::engine_tests::{load, udp4, Prog};
use super::ir::KeyValue;
use super::meters::MeterConfig;
use super::ops::Op;
use crate::cache::datapath::{Datapath, Path};
use crate::cache::{CacheConfig, CacheStats, FlowCache};
use crate::qos::Share;

/// Per packet: the copies sent (port, bytes) and the path taken.
type Outcomes = Vec<(Vec<(u32, Vec<u8>)>, Path)>;

const METER: &str = "egress.port_meters_egress.egress_port_meter";

/// onos_basic with table0 sending everything to port 2, as one worker's state.
fn basic(cache: CacheConfig) -> Option<(Datapath, u32)> {
    basic_with(cache, |_| {})
}

/// [`basic`] with more entries.
fn basic_with(cache: CacheConfig, more: impl FnOnce(&mut Prog)) -> Option<(Datapath, u32)> {
    let mut p: Prog = load("onos_basic/basic.json")?;
    more(&mut p);
    // Markers need the EAL's TSC frequency.
    tsc_hz();
    let any = KeyValue::Ternary { value: 0, mask: 0 };
    p.add("ingress.table0_control.table0", vec![any; 9], "ingress.table0_control.set_egress_port", &[2], 1);
    p.rt.set_meter_share(Share::WHOLE, &p.ir).unwrap();
    let meter = p.ir.meter(METER).unwrap();
    let c = FlowCache::new(cache, 0, Arc::new(CacheStats::default()), None);
    Some((Datapath::new(Arc::new(p.ir), p.rt, c), meter))
}

fn tsc_hz() -> u64 {
    dpdk_sys::lcore::tsc_hz(Eal::for_tests("sluice-fastpath-test"))
}

/// Send `n` packets of `len` bytes on port 1 at `pps` (synthetic time); the bytes
/// forwarded per second, and the outcomes.
fn offer(dp: &mut Datapath, n: u64, len: usize, pps: u64) -> (f64, Outcomes) {
    let hz = tsc_hz();
    let pkt = udp4("00:00:00:00:00:02", "00:00:00:00:00:01", "10.0.0.1", "10.0.0.2", 64, &vec![7; len - 42]);
    let mut passed = 0u64;
    let mut outcomes = vec![];
    for i in 0..n {
        dp.interp.now = 1_000_000 + i * hz / pps;
        let o = dp.process(1, &pkt);
        if !o.outputs.is_empty() {
            passed += len as u64;
        }
        outcomes.push((o.outputs, o.path));
    }
    (passed as f64 * pps as f64 / n as f64, outcomes)
}

#[test]
fn a_configured_port_meter_passes_its_rate_from_64_to_1500_bytes() {
    for len in [64usize, 512, 1500] {
        let Some((mut dp, meter)) = basic(CacheConfig::default()) else { return };
        // 1 Mbyte/s committed and peak; offered at 4x.
        let rate = 1_000_000u64;
        let cfg = MeterConfig { cir: rate, cburst: 3000, pir: rate, pburst: 3000 };
        assert_eq!(dp.apply(&[Op::SetMeter { meter, index: Some(2), config: Some(cfg) }]), 0);
        let pps = 4 * rate / len as u64;
        let (passed, _) = offer(&mut dp, pps * 5, len, pps);
        let err = passed / rate as f64 - 1.0;
        assert!(err.abs() < 0.05, "{len}-byte packets: {passed:.0} B/s passed for {rate} B/s ({:+.1}%)", err * 100.0);
        let cell = dp.rt.meters[meter as usize][2].unwrap();
        assert!(cell.counts[2].0 > 0 && cell.counts[0].0 > 0, "green and red counted: {:?}", cell.counts);
    }
}

#[test]
fn metered_flows_execute_their_meter_per_packet_from_the_cache_like_the_pipeline() {
    let Some((mut cached, meter)) = basic(CacheConfig::default()) else { return };
    let Some((mut uncached, _)) = basic(CacheConfig { max_flows: 0, ..CacheConfig::default() }) else { return };
    // Unconfigured: GREEN, cached without a meter.
    let (_, before) = offer(&mut cached, 10, 100, 1000);
    assert_eq!(before.last().unwrap().1, Path::Hit);
    assert!(before.iter().all(|(o, _)| o.len() == 1));
    // Configuring the meter removes the megaflow that froze GREEN.
    let cfg = MeterConfig { cir: 20_000, cburst: 1000, pir: 20_000, pburst: 1000 };
    let op = Op::SetMeter { meter, index: Some(2), config: Some(cfg) };
    assert_eq!(cached.apply(std::slice::from_ref(&op)), 0);
    assert_eq!(uncached.apply(&[op]), 0);
    assert!(cached.cache.iter().next().is_none(), "the GREEN megaflow is stale");
    assert!(cached.purge(usize::MAX, usize::MAX));
    assert_eq!(cached.cache.len(), 0, "and the purge removes it");
    let (a, oa) = offer(&mut cached, 2000, 100, 1000);
    let (b, ob) = offer(&mut uncached, 2000, 100, 1000);
    // One upcall installs a megaflow that branches on the color; every later packet
    // hits it and executes the meter.
    assert_eq!(oa[0].1, Path::Installed);
    assert!(oa[1..].iter().all(|(_, p)| *p == Path::Hit), "a metered flow is cached");
    let flow = cached.cache.iter().next().unwrap().2;
    let branch = flow.actions.metered.as_ref().expect("the megaflow executes the meter");
    assert_eq!((branch.meter, branch.cell, branch.bytes), (meter, 2, true));
    assert_eq!(branch.colors[0].outputs.len(), 1, "GREEN forwards");
    assert!(branch.colors[2].outputs.is_empty() && !branch.colors[2].drops.is_empty(), "RED drops");
    let strip = |v: &Outcomes| v.iter().map(|(o, _)| o.clone()).collect::<Vec<_>>();
    assert_eq!(strip(&oa), strip(&ob), "cached and uncached datapaths: same colors, same drops");
    assert!((a / 20_000.0 - 1.0).abs() < 0.05, "{a} B/s");
    assert!(a == b);
    let cells = |dp: &Datapath| dp.rt.meters[meter as usize][2].unwrap().counts;
    assert_eq!(cells(&cached), cells(&uncached), "the same packets and bytes per color");
    // Unconfigured again: the metered megaflow goes, GREEN is cached again.
    assert_eq!(cached.apply(&[Op::SetMeter { meter, index: Some(2), config: None }]), 0);
    let (_, after) = offer(&mut cached, 3, 100, 1000);
    assert_eq!(after.iter().map(|(_, p)| *p).collect::<Vec<_>>(), vec![Path::Installed, Path::Hit, Path::Hit]);
    assert!(cached.cache.iter().all(|(_, _, f)| f.actions.metered.is_none()));
}

/// Every counter a packet can touch: P4 counters, table hits and direct counters,
/// meter color counts.
type Counted = (Vec<Vec<(u64, u64)>>, Vec<(Vec<u64>, Vec<(u64, u64)>)>, Vec<Vec<Option<[(u64, u64); 3]>>>);

fn counted(dp: &Datapath) -> Counted {
    (
        dp.rt.counters.clone(),
        dp.rt.tables.iter().map(|t| (t.hits.clone(), t.direct_counters.clone())).collect(),
        dp.rt.meters.iter().map(|m| m.iter().map(|c| c.map(|c| c.counts)).collect()).collect(),
    )
}

/// Packets a NIC's meter object colored, credited per color to a metered megaflow
/// (full offload: they never reached the worker), count exactly what the pipeline
/// counts for the same packets of that color: the cell's color counts, the counters
/// before the meter and those of the color's outcome.
#[test]
fn packets_a_nic_colored_are_credited_as_the_pipeline_counts_that_color() {
    // GREEN: rates far above the traffic; RED: bursts below one packet.
    let green = MeterConfig { cir: 1 << 30, cburst: 1 << 20, pir: 1 << 30, pburst: 1 << 20 };
    let red = MeterConfig { cir: 1, cburst: 1, pir: 1, pburst: 1 };
    for (color, cfg) in [(0u8, green), (2u8, red)] {
        let Some((mut nic, meter)) = basic(CacheConfig::default()) else { return };
        let Some((mut sw, _)) = basic(CacheConfig { max_flows: 0, ..CacheConfig::default() }) else { return };
        let op = Op::SetMeter { meter, index: Some(2), config: Some(cfg) };
        assert_eq!(nic.apply(std::slice::from_ref(&op)), 0);
        assert_eq!(sw.apply(&[op]), 0);
        // One packet installs the metered megaflow; the NIC handles the next five.
        let (_, first) = offer(&mut nic, 1, 100, 1000);
        assert_eq!(first[0].1, Path::Installed);
        let (id, _, f) = nic.cache.iter().next().unwrap();
        assert!(f.actions.metered.is_some());
        let before = f.packets;
        nic.replay_color(id, color, 5, 500);
        assert_eq!(nic.cache.get(id).unwrap().packets, before + 5);
        // Software gets all six; its meter colors the same.
        let (_, outcomes) = offer(&mut sw, 6, 100, 1000);
        assert!(outcomes.iter().all(|(o, _)| o.is_empty() == (color == 2)), "color {color}");
        assert_eq!(counted(&nic), counted(&sw), "color {color}");
    }
}

#[test]
fn up_to_two_configured_meters_per_packet_are_cached_three_are_not() {
    const HOST: &str = "ingress.host_meter_control.host_meter_table";
    let Some((mut dp, egress)) = basic_with(CacheConfig::default(), |p| {
        let any = KeyValue::Lpm { value: 0, prefix: 0 };
        p.add(HOST, vec![any], "ingress.host_meter_control.read_meter", &[], 0);
    }) else {
        return;
    };
    let ingress = dp.ir.meter("ingress.port_meters_ingress.ingress_port_meter").unwrap();
    let cfg = MeterConfig { cir: 1_000_000, cburst: 10_000, pir: 1_000_000, pburst: 10_000 };
    // Two: cached, one outcome per color pair.
    let ops = [
        Op::SetMeter { meter: ingress, index: Some(1), config: Some(cfg) },
        Op::SetMeter { meter: egress, index: Some(2), config: Some(cfg) },
    ];
    assert_eq!(dp.apply(&ops), 0);
    let (_, o) = offer(&mut dp, 3, 100, 1000);
    assert_eq!(o.iter().map(|(_, p)| *p).collect::<Vec<_>>(), vec![Path::Installed, Path::Hit, Path::Hit]);
    let flow = dp.cache.iter().next().unwrap().2;
    // A RED ingress color drops before egress: 1 + 1 + 3... as the program goes.
    let leaves = flow.actions.leaves().len();
    assert!((5..=9).contains(&leaves), "{leaves} outcomes");
    // A third, the host table's direct meter: the pipeline every time, counted.
    let table = dp.ir.table(HOST).unwrap();
    let key = vec![KeyValue::Lpm { value: 0, prefix: 0 }];
    assert_eq!(dp.apply(&[Op::SetDirectMeter { table, key, priority: 0, config: Some(cfg) }]), 0);
    let (_, o) = offer(&mut dp, 3, 100, 1000);
    assert!(o.iter().all(|(_, p)| *p == Path::Uncached), "{o:?}");
    assert_eq!(dp.cache.stats().snapshot().uncacheable, 3);
}
