//! Cache behaviour on real programs: hits, paths, counters, invalidation, lifecycle.

use std::sync::Arc;

use super::datapath::{Datapath, Path};
use super::event_ring::EventHub;
use super::events::{Event, EventReader};
use super::*;
use crate::p4::engine_tests::{fabric_router, ipv, simple_router, udp4, Prog};
use crate::p4::ir::{Ir, KeyValue, Value};
use crate::p4::ops::Op;
use crate::p4::tables::{Entry, EntryAction, Runtime};

fn datapath(p: Prog, cfg: CacheConfig) -> Datapath {
    let cache = FlowCache::new(cfg, 0, Arc::new(CacheStats::default()), None);
    Datapath::new(Arc::new(p.ir), p.rt, cache)
}

fn router(cfg: CacheConfig) -> Option<(Datapath, Prog)> {
    let reference = simple_router()?;
    let p = simple_router()?;
    Some((datapath(p, cfg), reference))
}

fn pkt(dst: &str, ttl: u8, payload: &[u8]) -> Vec<u8> {
    udp4("00:aa:bb:00:00:00", "00:00:00:00:00:01", "10.0.0.1", dst, ttl, payload)
}

#[test]
fn second_packet_of_a_flow_hits_and_matches_the_pipeline() {
    let Some((mut dp, mut reference)) = router(CacheConfig::default()) else { return };
    let a = pkt("10.0.1.10", 64, b"first");
    let b = pkt("10.0.1.10", 64, b"second, longer payload");
    let o1 = dp.process(1, &a);
    assert_eq!(o1.path, Path::Installed);
    assert_eq!(o1.outputs, reference.run(1, &a));
    let o2 = dp.process(1, &b);
    assert_eq!(o2.path, Path::Hit, "payload is not in the megaflow");
    assert_eq!(o2.outputs, reference.run(1, &b));
    // A different TTL is a different megaflow (TTL is read: decremented).
    assert_eq!(dp.process(1, &pkt("10.0.1.10", 9, b"")).path, Path::Installed);
    // simple_router never reads the ingress port: same megaflow.
    assert_eq!(dp.process(2, &pkt("10.0.1.10", 64, b"x")).path, Path::Hit);
    let s = dp.cache.stats().snapshot();
    assert_eq!((s.installed, s.upcalls, s.uncacheable), (2, 2, 0));
    assert_eq!(s.emc_hits + s.dpcls_hits, 2);
    assert_eq!(s.megaflows, 2);
}

#[test]
fn hits_credit_the_counters_the_pipeline_would_have() {
    let Some((mut dp, mut reference)) = router(CacheConfig::default()) else { return };
    for i in 0..10u8 {
        let p = pkt("10.0.0.10", 64, &[i; 7]);
        assert_eq!(dp.process(1, &p).outputs, reference.run(1, &p));
    }
    for (t, (a, b)) in dp.rt.tables.iter().zip(&reference.rt.tables).enumerate() {
        assert_eq!(a.hits, b.hits, "table {t} hits");
        assert_eq!(a.direct_counters, b.direct_counters, "table {t} direct counters");
    }
    assert_eq!(dp.rt.counters, reference.rt.counters);
    let f = dp.cache.get(0).expect("one megaflow");
    assert_eq!(f.packets, 10);
}

/// The ids of the megaflows a scan sees (stale ones are not).
fn visible(dp: &Datapath) -> Vec<u32> {
    dp.cache.iter().map(|(id, _, _)| id).collect()
}

/// Route 10.0.1.10/32 to next hop 10.0.0.10 on `port` in `rt`; the table's id.
fn reroute_in(ir: &Ir, rt: &mut Runtime, port: Value) -> u32 {
    let t = ir.tables.iter().position(|t| t.name == "ipv4_lpm").unwrap() as u32;
    let set_nhop = ir.actions.iter().position(|a| a.name == "set_nhop").unwrap() as u32;
    let key = vec![KeyValue::Lpm { value: ipv("10.0.1.10"), prefix: 32 }];
    let action = EntryAction::Call(crate::p4::ir::ActionCall {
        slot: ir.tables[t as usize].actions.iter().position(|a| *a == set_nhop).unwrap() as u32,
        args: vec![ipv("10.0.0.10"), port].into(),
    });
    rt.modify(ir, t, Entry { key, priority: 0, action, meta: None }).unwrap();
    t
}

/// [`reroute_in`] through the datapath (an update that invalidates).
fn reroute(dp: &mut Datapath, port: Value) {
    let t = dp.ir.tables.iter().position(|t| t.name == "ipv4_lpm").unwrap() as u32;
    dp.update(Change::Table(t), |ir, rt| reroute_in(ir, rt, port));
}

#[test]
fn a_table_change_makes_exactly_the_megaflows_that_read_the_table_stale() {
    let Some((mut dp, _)) = router(CacheConfig::default()) else { return };
    dp.process(1, &pkt("10.0.0.10", 64, b""));
    dp.process(1, &pkt("10.0.1.10", 64, b""));
    assert_eq!(dp.cache.len(), 2);
    // Reroute 10.0.1.10/32 to port 1: its packets must leave on port 1 at once.
    let old_port = dp.process(1, &pkt("10.0.1.10", 64, b"")).outputs[0].0;
    assert_eq!(old_port, 2);
    reroute(&mut dp, 1);
    // Both flows applied ipv4_lpm: stale at once, none visited (removed later).
    assert_eq!(dp.cache.len(), 2);
    assert!(dp.cache.purging() && dp.cache.is_stale(0) && dp.cache.is_stale(1));
    assert!(visible(&dp).is_empty(), "scans do not see stale megaflows");
    // The lookup finds the stale megaflow, removes it and the packet takes the pipeline.
    let o = dp.process(1, &pkt("10.0.1.10", 64, b""));
    assert_eq!((o.path, o.outputs[0].0), (Path::Installed, 1));
    let s = dp.cache.stats().snapshot();
    assert_eq!((s.stale_found, s.invalidated, dp.cache.len()), (1, 1, 2));
    // The purge removes the other; the new megaflow stays.
    assert!(dp.purge(usize::MAX, usize::MAX));
    assert!(!dp.cache.purging());
    assert_eq!((dp.cache.len(), dp.cache.stats().snapshot().invalidated), (1, 2));
    assert_eq!(dp.process(1, &pkt("10.0.1.10", 64, b"")).path, Path::Hit);
    // A change to a table no flow applied makes nothing stale.
    let unused = dp.ir.tables.len() as u32 + 1;
    dp.update(Change::Table(unused), |_, _| ());
    assert_eq!(visible(&dp).len(), 1);
    assert!(dp.purge(usize::MAX, usize::MAX));
    assert_eq!((dp.cache.len(), dp.cache.stats().snapshot().invalidated), (1, 2));
}

#[test]
fn the_purge_removes_stale_megaflows_a_bounded_slice_at_a_time() {
    let Some((mut dp, mut reference)) = router(CacheConfig::default()) else { return };
    // 100 megaflows (the TTL is read) that applied ipv4_lpm, and one ARP frame's,
    // which applied no table.
    for ttl in 1..=100u8 {
        dp.process(1, &pkt("10.0.1.10", ttl, b""));
    }
    let mut arp = pkt("10.0.1.10", 64, b"");
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    dp.process(1, &arp);
    assert_eq!(dp.process(1, &arp).path, Path::Hit);
    assert_eq!(dp.cache.len(), 101);
    reroute(&mut dp, 1);
    assert_eq!(visible(&dp).len(), 1, "only the ARP megaflow is current");
    // Slices of at most 16 slots and 4 removals.
    let mut slices = 0;
    let mut len = dp.cache.len();
    while !dp.purge(16, 4) {
        slices += 1;
        let now = dp.cache.len();
        assert!(len - now <= 4, "at most 4 removed per slice");
        len = now;
    }
    assert_eq!(slices, 25, "100 removals 4 at a time, then a slice that finds the end");
    assert_eq!(dp.cache.len(), 1);
    let s = dp.cache.stats().snapshot();
    assert_eq!((s.invalidated, s.stale_found), (100, 0));
    assert_eq!(dp.process(1, &arp).path, Path::Hit);
    reroute_in(&reference.ir, &mut reference.rt, 1);
    for ttl in [1, 50, 100] {
        let p = pkt("10.0.1.10", ttl, b"");
        let o = dp.process(1, &p);
        assert_eq!((o.path, &o.outputs), (Path::Installed, &reference.run(1, &p)));
        assert_eq!(o.outputs[0].0, 1);
    }
}

#[test]
fn a_change_during_a_purge_starts_it_over_and_spares_newer_megaflows() {
    let Some((mut dp, _)) = router(CacheConfig::default()) else { return };
    // The epochs are about to wrap: the second change below finishes the purge first.
    dp.cache.epoch = u32::MAX - 1;
    dp.process(1, &pkt("10.0.1.10", 10, b""));
    dp.process(1, &pkt("10.0.1.10", 11, b""));
    reroute(&mut dp, 1);
    assert!(!dp.purge(1, usize::MAX), "one slot: the first megaflow only");
    assert_eq!(dp.cache.len(), 1);
    // Installed after the change, into the slot just purged: current.
    let o = dp.process(1, &pkt("10.0.1.10", 12, b""));
    assert_eq!((o.path, o.outputs[0].0), (Path::Installed, 1));
    assert_eq!(visible(&dp), [0]);
    // A change to another table (none read it) starts the purge over: the newer
    // megaflow stays current, the stale one stays stale. It is the 2^32nd: the
    // purge is finished at once and the epochs start over.
    let unused = dp.ir.tables.len() as u32 + 1;
    dp.update(Change::Table(unused), |_, _| ());
    assert_eq!(dp.cache.epoch, 1);
    assert_eq!((dp.cache.len(), visible(&dp)), (1, vec![0]));
    assert_eq!(dp.process(1, &pkt("10.0.1.10", 12, b"")).path, Path::Hit);
    // After the wrap, a change still makes it stale.
    reroute(&mut dp, 2);
    assert!(visible(&dp).is_empty());
    let o = dp.process(1, &pkt("10.0.1.10", 12, b""));
    assert_eq!((o.path, o.outputs[0].0), (Path::Installed, 2));
    assert_eq!(dp.cache.stats().snapshot().invalidated, 3);
}

#[test]
fn idle_megaflows_expire_and_the_limit_evicts_the_least_recently_used() {
    let cfg = CacheConfig { max_flows: 4, max_idle_ms: 100, ..CacheConfig::default() };
    let Some((mut dp, _)) = router(cfg) else { return };
    for ttl in 1..=4u8 {
        dp.cache.set_now(ttl as u32 * 10);
        dp.process(1, &pkt("10.0.0.10", 10 + ttl, b""));
    }
    assert_eq!(dp.cache.len(), 4);
    // Touch the oldest (ttl 1) so ttl 2 becomes least recently used.
    dp.cache.set_now(50);
    assert_eq!(dp.process(1, &pkt("10.0.0.10", 11, b"")).path, Path::Hit);
    let used: Vec<u32> = dp.cache.iter().filter_map(|(id, _, _)| dp.cache.used_ms(id)).collect();
    assert_eq!(used, [50, 20, 30, 40], "the hit marks its megaflow used");
    dp.process(1, &pkt("10.0.0.10", 99, b""));
    assert_eq!(dp.cache.len(), 4);
    assert_eq!(dp.cache.stats().snapshot().evicted, 1);
    assert_eq!(dp.process(1, &pkt("10.0.0.10", 11, b"")).path, Path::Hit, "recently used: kept");
    // Everything idle for more than 100 ms goes.
    dp.cache.set_now(1000);
    dp.maintain();
    assert_eq!(dp.cache.len(), 0);
    assert_eq!(dp.cache.stats().snapshot().expired, 4);
    assert!((0..8).all(|id| dp.cache.used_ms(id).is_none()), "removed megaflows have no last use");
    assert_eq!(dp.process(1, &pkt("10.0.0.10", 11, b"")).path, Path::Installed);
}

#[test]
fn caching_off_runs_the_pipeline_for_every_packet() {
    let Some((mut dp, mut reference)) = router(CacheConfig { max_flows: 0, ..CacheConfig::default() }) else {
        return;
    };
    for _ in 0..3 {
        let p = pkt("10.0.1.10", 64, b"");
        let o = dp.process(1, &p);
        assert_eq!((o.path, o.outputs), (Path::Uncached, reference.run(1, &p)));
    }
    assert_eq!(dp.cache.stats().snapshot().uncacheable, 3);
}

#[test]
fn events_reach_the_control_side_and_a_full_ring_is_counted() {
    let Some(p) = simple_router() else { return };
    let hub = EventHub::new(1);
    let cache = FlowCache::new(CacheConfig::default(), 7, Arc::new(CacheStats::default()), Some(hub.sender()));
    let mut dp = Datapath::new(Arc::new(p.ir), p.rt, cache);
    dp.process(1, &pkt("10.0.0.10", 64, b""));
    dp.process(1, &pkt("10.0.0.10", 63, b""));
    let mut reader = EventReader::default();
    let mut events = hub.collect().into_iter();
    match reader.read(events.next().unwrap()) {
        Some(Event::Installed(i)) => {
            assert_eq!((i.worker, i.flow), (7, 0));
            assert_eq!(i.desc.actions.outputs[0].port, 1);
        }
        e => panic!("{e:?}"),
    }
    assert!(events.next().is_none(), "the second did not fit");
    assert_eq!(dp.cache.stats().snapshot().events_dropped, 1);
}

#[test]
fn fabric_flows_are_cached_and_agree_with_the_pipeline() {
    let (Some(p), Some(mut reference)) = (fabric_router(), fabric_router()) else { return };
    let mut dp = datapath(p, CacheConfig::default());
    let frames: Vec<Vec<u8>> = (0..4u8)
        .map(|i| udp4("00:00:00:00:aa:01", "00:00:00:00:00:01", "10.0.1.1", "10.0.2.1", 64, &vec![0; 30 + i as usize]))
        .collect();
    for f in frames.iter().chain(frames.iter()) {
        let o = dp.process(1, f);
        assert_eq!(o.outputs, reference.run(1, f), "{:?}", o.path);
    }
    let s = dp.cache.stats().snapshot();
    assert_eq!((s.installed, s.emc_hits + s.dpcls_hits), (1, 7), "{s:?}");
}

#[test]
fn megaflows_with_equal_actions_share_them_until_the_last_goes() {
    let Some((mut dp, _)) = router(CacheConfig::default()) else { return };
    // TTL 64 and 9 are two megaflows (TTL is read) with different actions (the new
    // TTL); a third packet of the first flow hits the first.
    dp.process(1, &pkt("10.0.1.10", 64, b""));
    dp.process(1, &pkt("10.0.1.10", 9, b""));
    dp.process(1, &udp4("00:aa:bb:00:00:00", "00:00:00:00:00:01", "10.0.0.1", "10.0.1.10", 64, b""));
    let live: Vec<u32> = (0..8).filter(|i| dp.cache.get(*i).is_some()).collect();
    assert_eq!(live.len(), 2, "the third packet hit the first megaflow");
    let (a, b) = (&dp.cache.get(live[0]).unwrap().actions, &dp.cache.get(live[1]).unwrap().actions);
    assert!(!Arc::ptr_eq(a, b), "different TTLs, different actions");
    // Two destinations with no route: two megaflows (the LPM bits that decided the
    // miss differ), one drop, equal actions.
    dp.flush();
    dp.process(1, &pkt("192.168.1.1", 64, b""));
    dp.process(1, &pkt("10.0.1.99", 64, b""));
    let live: Vec<u32> = (0..8).filter(|i| dp.cache.get(*i).is_some()).collect();
    assert_eq!(live.len(), 2);
    let (a, b) = (&dp.cache.get(live[0]).unwrap().actions, &dp.cache.get(live[1]).unwrap().actions);
    assert!(Arc::ptr_eq(a, b), "equal actions are one copy: {a:?} {b:?}");
    assert_eq!(dp.cache.shared.len(), 1);
    dp.flush();
    assert!(dp.cache.shared.is_empty(), "gone with the last megaflow");
}

#[test]
fn megaflows_of_different_entries_share_actions_and_credit_their_own_entries() {
    let Some((mut dp, mut reference)) = router(CacheConfig::default()) else { return };
    // A second route to 10.0.1.10's next hop: packets to either leave alike, but hit
    // different ipv4_lpm entries.
    let t = dp.ir.tables.iter().position(|t| t.name == "ipv4_lpm").unwrap() as u32;
    let set_nhop = dp.ir.actions.iter().position(|a| a.name == "set_nhop").unwrap() as u32;
    let via = dp.process(1, &pkt("10.0.1.10", 64, b"")).outputs[0].clone();
    reference.run(1, &pkt("10.0.1.10", 64, b""));
    dp.flush();
    let add = |ir: &Ir, rt: &mut Runtime| {
        let key = vec![KeyValue::Lpm { value: ipv("10.0.77.0"), prefix: 24 }];
        let action = EntryAction::Call(crate::p4::ir::ActionCall {
            slot: ir.tables[t as usize].actions.iter().position(|a| *a == set_nhop).unwrap() as u32,
            args: vec![ipv("10.0.1.10"), via.0 as Value].into(),
        });
        rt.insert(ir, t, Entry { key, priority: 0, action, meta: None }).unwrap();
    };
    dp.update(Change::Table(t), add);
    add(&reference.ir, &mut reference.rt);
    let (a, b) = (pkt("10.0.1.10", 64, b""), pkt("10.0.77.5", 64, b""));
    for p in [&a, &b, &b, &a, &b] {
        assert_eq!(dp.process(1, p).outputs, reference.run(1, p));
    }
    let live: Vec<u32> = (0..8).filter(|i| dp.cache.get(*i).is_some()).collect();
    assert_eq!(live.len(), 2, "two megaflows (different LPM bits decide)");
    let (fa, fb) = (dp.cache.get(live[0]).unwrap(), dp.cache.get(live[1]).unwrap());
    assert!(Arc::ptr_eq(&fa.actions, &fb.actions), "same outputs, one copy of the actions");
    assert_ne!(fa.replay.as_slice(), fb.replay.as_slice(), "each credits its own entry");
    assert_eq!(dp.cache.shared.len(), 1);
    for (k, (x, y)) in dp.rt.tables.iter().zip(&reference.rt.tables).enumerate() {
        assert_eq!(x.hits, y.hits, "table {k} hits");
        assert_eq!(x.direct_counters, y.direct_counters, "table {k} direct counters");
    }
}

/// simple_router with two more host routes through the next hop of 10.0.1.10: their
/// megaflows differ (keys) but share their actions. Events go to a ring of `ring`.
fn shared_route_datapath(ring: usize) -> Option<(Datapath, EventHub)> {
    let mut p = simple_router()?;
    for host in ["10.0.2.1", "10.0.2.2"] {
        p.add("ipv4_lpm", vec![KeyValue::Lpm { value: ipv(host), prefix: 32 }], "set_nhop", &[ipv("10.0.1.10"), 2], 0);
    }
    let hub = EventHub::new(ring);
    let cache = FlowCache::new(CacheConfig::default(), 0, Arc::new(CacheStats::default()), Some(hub.sender()));
    Some((Datapath::new(Arc::new(p.ir), p.rt, cache), hub))
}

#[test]
fn shared_actions_travel_once_and_are_gone_with_their_last_megaflow() {
    use super::events::EventActions;
    let Some((mut dp, rx)) = shared_route_datapath(64) else { return };
    dp.process(1, &pkt("10.0.2.1", 64, b""));
    dp.process(1, &pkt("10.0.2.2", 64, b""));
    let events: Vec<FlowEvent> = rx.collect();
    match &events[..] {
        [FlowEvent::Installed { actions: EventActions::Shared { id: a, first: Some(_) }, .. }, FlowEvent::Installed { actions: EventActions::Shared { id: b, first: None }, .. }] =>
        {
            assert_eq!(a, b, "one id for the shared actions")
        }
        e => panic!("the first install carries the actions, the second names them: {e:?}"),
    }
    let mut reader = EventReader::default();
    let installs: Vec<_> = events
        .into_iter()
        .filter_map(|e| match reader.read(e) {
            Some(Event::Installed(i)) => Some(i),
            _ => None,
        })
        .collect();
    assert_eq!(installs.len(), 2);
    assert!(Arc::ptr_eq(&installs[0].desc.actions, &installs[1].desc.actions));
    assert_eq!(installs[0].desc.actions.outputs[0].port, 2);
    // One megaflow leaves: the actions stay; the second leaves: they are gone.
    dp.cache.invalidate(u64::MAX - 1, &mut dp.rt);
    assert!(dp.purge(usize::MAX, usize::MAX));
    assert_eq!(dp.flush(), 0, "invalidation of every table removed both");
    for e in rx.collect() {
        reader.read(e);
    }
    assert_eq!(reader.shared_actions(), 0, "gone with the last megaflow");
    assert_eq!(reader.unresolved(), 0);
}

#[test]
fn actions_whose_event_was_dropped_travel_again_and_gone_waits_for_room() {
    use super::events::EventActions;
    let Some((mut dp, rx)) = shared_route_datapath(1) else { return };
    let mut reader = EventReader::default();
    // The ring is full when 10.0.2.1's install announces the shared actions.
    dp.process(1, &pkt("10.0.0.10", 64, b""));
    dp.process(1, &pkt("10.0.2.1", 64, b""));
    assert_eq!(dp.cache.stats().snapshot().events_dropped, 1);
    let [e] = &rx.collect()[..] else { panic!("one event in a ring of one") };
    reader.read(e.clone());
    dp.process(1, &pkt("10.0.2.2", 64, b""));
    let [e] = &rx.collect()[..] else { panic!("one event in a ring of one") };
    let e = e.clone();
    assert!(matches!(&e, FlowEvent::Installed { actions: EventActions::Shared { first: Some(_), .. }, .. }), "{e:?}");
    assert!(matches!(reader.read(e), Some(Event::Installed(_))));
    assert_eq!(reader.shared_actions(), 2, "10.0.0.10's actions and the shared ones");
    // Removals into a ring of one: the gone events wait for room, then arrive.
    assert_eq!(dp.flush(), 3);
    for _ in 0..8 {
        rx.drain(|e| {
            reader.read(e);
        });
        dp.cache.maintain(&mut dp.rt);
    }
    assert_eq!(reader.shared_actions(), 0, "every delivered actions' gone event arrived");
}

/// Hit counts per table, cells per indexed counter.
type Counts = (Vec<Vec<u64>>, Vec<Vec<(u64, u64)>>);

/// The hit counts of every table and the indexed counters: what reads see.
fn counts(rt: &Runtime) -> Counts {
    (rt.tables.iter().map(|t| t.hits.clone()).collect(), rt.counters.clone())
}

#[test]
fn burst_hits_are_settled_before_reads_removals_and_changes() {
    let Some((mut dp, mut reference)) = router(CacheConfig::default()) else { return };
    let p = pkt("10.0.1.10", 64, b"");
    let len = p.len() as u64;
    // The miss: the run counts it at once.
    assert_eq!(dp.process(1, &p).outputs, reference.run(1, &p));
    let id = (0..8).find(|i| dp.cache.get(*i).is_some()).unwrap();
    assert_eq!(counts(&dp.rt), counts(&reference.rt));
    // Hits as the burst path credits them: the megaflow at once, the state when settled.
    dp.replay(id, 5, 5 * len);
    for _ in 0..5 {
        reference.run(1, &p);
    }
    assert_eq!(dp.cache.get(id).unwrap().packets, 6);
    assert_eq!(dp.cache.dirty(), 1);
    assert_ne!(counts(&dp.rt), counts(&reference.rt), "not settled yet");
    assert_eq!(counts(dp.settled()), counts(&reference.rt));
    assert_eq!(dp.cache.dirty(), 0);
    // Upkeep settles what has been dirty for SETTLE_AFTER_MS.
    dp.replay(id, 2, 2 * len);
    reference.run(1, &p);
    reference.run(1, &p);
    dp.cache.set_now(SETTLE_AFTER_MS - 1);
    dp.maintain();
    assert_eq!(dp.cache.dirty(), 1, "too recent");
    assert_eq!(dp.cache.stats().snapshot().unsettled, 1, "the gauge as of the upkeep");
    dp.cache.set_now(SETTLE_AFTER_MS);
    dp.maintain();
    assert_eq!(dp.cache.dirty(), 0);
    assert_eq!(dp.cache.stats().snapshot().unsettled, 0);
    assert_eq!(counts(&dp.rt), counts(&reference.rt));
    // A removal settles the megaflow it removes.
    dp.replay(id, 3, 3 * len);
    for _ in 0..3 {
        reference.run(1, &p);
    }
    assert_eq!(dp.flush(), 1);
    assert_eq!(counts(&dp.rt), counts(&reference.rt));
    // A change settles before it applies: hits owed to a route that a batch deletes and
    // adds again (the same handle, counting from zero) do not land on the new entry.
    assert_eq!(dp.process(1, &p).path, Path::Installed);
    let id = (0..8).find(|i| dp.cache.get(*i).is_some()).unwrap();
    dp.replay(id, 4, 4 * len);
    let t = dp.ir.tables.iter().position(|t| t.name == "ipv4_lpm").unwrap() as u32;
    let before = counts(&dp.rt).0[t as usize].clone();
    let h = (0..before.len()).find(|h| before[*h] > 0).expect("the route was hit") as u32;
    let entry = dp.rt.tables[t as usize].get(h).unwrap().clone();
    let ops = [
        Op::Delete { table: t, key: entry.key.clone(), priority: entry.priority },
        Op::Insert { table: t, entry: entry.clone() },
    ];
    assert_eq!(dp.apply(&ops), 0);
    let h2 = dp.rt.tables[t as usize].find_handle(&entry.key, entry.priority).unwrap();
    assert_eq!(h2, h, "the handle is reused");
    assert_eq!(dp.rt.tables[t as usize].hits[h as usize], 0, "the new entry counts from zero");
    assert!(dp.cache.is_stale(id), "the megaflow read the table");
    assert!(dp.purge(usize::MAX, usize::MAX));
    assert_eq!(dp.rt.tables[t as usize].hits[h as usize], 0, "removing it settles nothing more");
    assert_eq!(dp.cache.len(), 0);
}

/// Edits hash as a few packed words (each FxHash write is a multiply on one
/// dependency chain, paid by every flow setup), and equal edits hash equal.
#[test]
fn a_megaflow_edit_hashes_in_few_words_and_equal_edits_equal() {
    use std::hash::{Hash, Hasher};
    #[derive(Default)]
    struct Count(u32, rustc_hash::FxHasher);
    impl Hasher for Count {
        fn finish(&self) -> u64 {
            self.1.finish()
        }
        fn write(&mut self, b: &[u8]) {
            self.0 += 1;
            self.1.write(b)
        }
        fn write_u32(&mut self, v: u32) {
            self.0 += 1;
            self.1.write_u32(v)
        }
        fn write_u64(&mut self, v: u64) {
            self.0 += 1;
            self.1.write_u64(v)
        }
    }
    let Some((mut dp, _hub)) = shared_route_datapath(64) else { return };
    // Two hosts behind one next hop (one edit), one behind another.
    for dst in ["10.0.2.1", "10.0.2.2", "10.0.0.10"] {
        assert_eq!(dp.process(1, &pkt(dst, 64, b"")).path, Path::Installed);
    }
    let flows: Vec<_> = dp.cache.iter().map(|(_, _, f)| Arc::clone(&f.actions)).collect();
    assert_eq!(flows.len(), 3);
    let edit = |i: usize| &flows[i].outputs[0].edit;
    let hash = |e: &crate::p4::track::Edit| {
        let mut h = Count::default();
        e.hash(&mut h);
        (h.0, h.finish())
    };
    let (writes, h0) = hash(edit(0));
    // Its edit: one copied segment, the MAC and TTL patches, the IPv4 checksum.
    assert!(!edit(0).patches.is_empty() && edit(0).checksums.len() == 1, "{:?}", edit(0));
    assert!(writes <= 11, "{writes} hash writes for {:?}", edit(0));
    assert_eq!(hash(&edit(0).clone()).1, h0);
    assert!(Arc::ptr_eq(&flows[0], &flows[1]), "equal actions shared");
    assert_ne!(edit(2), edit(0));
    assert_ne!(hash(edit(2)).1, h0);
}
