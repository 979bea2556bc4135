//! The offload manager over the software NIC model, with hand-built megaflows: which
//! megaflows get rules (rate threshold, insert limit, port budget, NIC capacity,
//! incapable ports), marks bound before their rules exist, hardware hits credited
//! exactly, rules destroyed exactly when their megaflow goes or a write invalidates
//! it, and a seeded churn after which no rule and no mark binding is left behind.
//!
//! The model ignores port handles, but [`Manager::set_port`] takes a DPDK [`Port`]:
//! the test binary initialises the EAL once and attaches two `net_null` ports.

use sluice_fastpath::cache::actions::Actions;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;

use dpdk_sys::eal::Eal;
use dpdk_sys::mempool::{Mempool, DEFAULT_DATA_ROOM};
use dpdk_sys::port::PortConf;
use sluice_fastpath::cache::key::PacketView;
use sluice_fastpath::p4::interp::DropCause;
use sluice_fastpath::p4::track::{KEY_BYTES, KEY_PACKET_OFFSET};

use super::*;
use crate::model::{ModelConfig, NicModel, Verdict};
use crate::test_util::{actions, in_place};

/// Two `net_null` ports (P4 ports 1 and 2), attached once for the whole test binary.
fn dpdk_ports() -> &'static [Arc<Port>; 2] {
    static PORTS: OnceLock<[Arc<Port>; 2]> = OnceLock::new();
    PORTS.get_or_init(|| {
        let eal = Eal::for_tests("sluice-offload-test");
        let pool = Mempool::create(eal, "offload_mgr_test", 1023, 0, DEFAULT_DATA_ROOM, None).unwrap();
        ["a", "b"].map(|n| {
            let mut p = Port::attach(eal, &format!("mgr_{n}"), &format!("net_null_mgr_{n},no-rx=1")).unwrap();
            p.configure(pool, &PortConf::default()).unwrap();
            Arc::new(p)
        })
    })
}

/// A manager over a fresh NIC model, with both ports added.
struct Rig {
    model: NicModel,
    mgr: Manager<NicModel>,
    /// P4 port 1.
    a: PortInfo,
    /// P4 port 2.
    b: PortInfo,
}

impl Rig {
    fn new(model: ModelConfig, cfg: OffloadConfig) -> Rig {
        let [pa, pb] = dpdk_ports();
        let a = PortInfo { p4: 1, dpdk: pa.id().0, rx_queues: 1 };
        let b = PortInfo { p4: 2, dpdk: pb.id().0, rx_queues: 1 };
        assert_ne!(a.dpdk, b.dpdk);
        let model = NicModel::new(model);
        let mut mgr = Manager::new(model.clone(), cfg);
        assert_eq!(mgr.set_port(a, Some(Arc::clone(pa))), vec![]);
        assert_eq!(mgr.set_port(b, Some(Arc::clone(pb))), vec![]);
        Rig { model, mgr, a, b }
    }

    /// The DPDK port behind `info`.
    fn handle(&self, info: PortInfo) -> Arc<Port> {
        Arc::clone(dpdk_ports().iter().find(|p| p.id().0 == info.dpdk).unwrap())
    }

    /// One round, `secs` after the previous one: every command the workers were
    /// given, in order.
    fn round(&mut self, live: &[Candidate], secs: u64) -> Vec<Command> {
        let mut got = vec![];
        self.mgr.round(live, Duration::from_secs(secs), &mut |c| got.extend(c));
        got
    }

    fn failures(&self) -> Vec<(&str, u64)> {
        self.mgr.stats().failures.iter().map(|(k, v)| (k.as_str(), *v)).collect()
    }
}

fn csum(h: &[u8]) -> u16 {
    let mut s: u32 = h.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]]) as u32).sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Ethernet + IPv4 10.0.0.1 -> 10.0.1.`dst` (TTL 64, valid checksum) + UDP 1000 -> 53.
fn packet(dst: u8) -> Vec<u8> {
    let mut p = vec![0, 0, 0, 0, 0, 0xaa, 0, 0, 0, 0, 0, 0xbb, 0x08, 0x00];
    let l4 = [&[0x03, 0xe8, 0, 53, 0, 15, 0, 0][..], b"payload"].concat();
    let total = (20 + l4.len()) as u16;
    let mut ip =
        vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 1, dst];
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&ip);
    p.extend_from_slice(&l4);
    p
}

/// A megaflow reading the EtherType, the TTL and the IPv4 destination of
/// `packet(dst)` and, if given, the ingress P4 port.
fn desc(dst: u8, in_port: Option<u32>, actions: Actions, deps: u64) -> Arc<MegaflowDesc> {
    let pkt = packet(dst);
    let mut m = [0u8; KEY_BYTES];
    if in_port.is_some() {
        m[0] = 0xff;
        m[1] = 0xff;
    }
    for i in [12, 13, 22, 30, 31, 32, 33] {
        m[KEY_PACKET_OFFSET + i] = 0xff;
    }
    let mask = Mask::from_bytes(&m);
    let view = PacketView::new(in_port.unwrap_or(0), &pkt);
    let key = mask.idx.iter().zip(mask.bits.iter()).map(|(i, b)| view.word(*i as usize) & b).collect();
    Arc::new(MegaflowDesc { mask, key, min_len: 34, deps, actions: Arc::new(actions) })
}

/// Routed to P4 port `out`: both MACs rewritten, TTL 64 -> 63, IPv4 checksum fixed
/// (a full-offload form exists).
fn routed(out: u32) -> Actions {
    let mut patches: Vec<(u32, u8)> = (0..6).map(|i| (i, 0x02)).collect();
    patches.extend((6..12).map(|i| (i, 0x04)));
    patches.push((22, 63));
    actions(vec![in_place(out, 34, &patches, Some(14))], vec![])
}

/// A copy to each port: no full-offload form (`several_copies`), partial only.
fn flooded() -> Actions {
    actions(vec![in_place(1, 34, &[], None), in_place(2, 34, &[], None)], vec![])
}

/// Dropped: full offload is COUNT + DROP.
fn dropped() -> Actions {
    actions(vec![], vec![DropCause::Ingress])
}

fn cand(id: FlowId, packets: u64, desc: &Arc<MegaflowDesc>) -> Candidate {
    Candidate { worker: id.0, flow: id.1, version: id.2, packets, desc: Arc::clone(desc), meter: None }
}

const HOST: Verdict = Verdict::ToHost { mark: None, queue: None };

#[test]
fn hot_flows_get_full_rules_and_their_hardware_hits_are_credited() {
    let mut r = Rig::new(ModelConfig::default(), OffloadConfig::default());
    let d = desc(10, Some(1), routed(2), 1);
    let id = (0, 7, 3);
    let live = |packets| vec![cand(id, packets, &d)];
    assert_eq!(r.round(&live(5000), 1), vec![], "a full rule binds no mark");
    assert_eq!(r.mgr.mode_of(id), Some(Mode::Full));
    assert_eq!(r.mgr.mode_of((0, 7, 2)), None, "another version is another megaflow");
    assert_eq!((r.model.rules(r.a.dpdk), r.model.rules(r.b.dpdk)), (1, 0), "on its ingress port only");
    let s = r.mgr.stats().clone();
    assert_eq!((s.rounds, s.created_full, s.created_partial, s.rules_full, s.rules_partial), (1, 1, 0, 1, 0));
    assert_eq!((s.offloaded_flows, &s.rules_per_port), (1, &BTreeMap::from([(r.a.dpdk, 1)])));
    assert!(s.failures.is_empty() && s.refused.is_empty() && s.not_capable.is_empty(), "{s:?}");
    let rules = r.mgr.rules();
    assert_eq!(rules.len(), 1);
    let i = &rules[0];
    assert_eq!((i.worker, i.flow, i.port, i.p4_port, i.mode, i.mark), (0, 7, r.a.dpdk, 1, Mode::Full, None));
    assert!(i.rule.starts_with("transfer ") && i.rule.contains(&format!("RepresentedPort({})", r.b.dpdk)), "{i:?}");

    // The NIC sends what software would, out of the other port.
    let mut software = vec![];
    d.actions.outputs[0].render(&packet(10), &mut software);
    assert_eq!((&software[..12], software[22]), (&[[2; 6], [4; 6]].concat()[..], 63));
    let len = packet(10).len() as u64;
    for _ in 0..5 {
        let mut p = packet(10);
        assert_eq!(r.model.receive(r.a.dpdk, &mut p), Verdict::Forwarded { port: r.b.dpdk });
        assert_eq!(p, software);
    }
    assert_eq!(r.model.receive(r.b.dpdk, &mut packet(10)), HOST, "not its ingress port");
    assert_eq!(r.model.receive(r.a.dpdk, &mut packet(11)), HOST, "not its destination");

    // Software saw none of them (rate 0): the rule stays; exactly those hits are credited.
    assert_eq!(r.round(&live(5000), 1), vec![Command::Credit { flow: id, packets: 5, bytes: 5 * len, color: None }]);
    assert_eq!(r.mgr.mode_of(id), Some(Mode::Full));
    assert_eq!((r.mgr.stats().hw_packets, r.mgr.stats().hw_bytes), (5, 5 * len));
    assert_eq!((r.mgr.rules()[0].hw_packets, r.mgr.rules()[0].hw_bytes), (5, 5 * len));
    assert_eq!(r.round(&live(5000), 1), vec![], "no new hits, no credit");
    for _ in 0..2 {
        assert_eq!(r.model.receive(r.a.dpdk, &mut packet(10)), Verdict::Forwarded { port: r.b.dpdk });
    }
    assert_eq!(
        r.round(&live(5000), 1),
        vec![Command::Credit { flow: id, packets: 2, bytes: 2 * len, color: None }],
        "the delta"
    );
    assert_eq!((r.mgr.stats().hw_packets, r.mgr.stats().hw_bytes), (7, 7 * len));

    // The megaflow goes: so does its rule.
    assert_eq!(r.round(&[], 1), vec![]);
    assert_eq!((r.mgr.mode_of(id), r.model.total_rules(), r.mgr.rules().len()), (None, 0, 0));
    let s = r.mgr.stats();
    assert_eq!((s.destroyed, s.destroyed_by_writes, s.rules_full, s.offloaded_flows), (1, 0, 0, 0));
    assert!(s.rules_per_port.is_empty(), "{s:?}");
    assert_eq!(r.model.receive(r.a.dpdk, &mut packet(10)), HOST);
}

#[test]
fn a_cold_flow_is_left_alone_and_the_rate_limit_holds() {
    // The rate is the packet delta over the elapsed time, against min_pps = 1000.
    let mut r = Rig::new(ModelConfig::default(), OffloadConfig::default());
    let d = desc(20, Some(1), routed(2), 1);
    let id = (0, 1, 1);
    for (total, secs, hot) in [(999, 1, false), (1998, 1, false), (3997, 2, false), (5997, 2, true)] {
        assert_eq!(r.round(&[cand(id, total, &d)], secs), vec![]);
        assert_eq!(r.mgr.mode_of(id).is_some(), hot, "{total} packets after {secs}s");
    }
    assert_eq!((r.model.total_rules(), r.mgr.stats().created_full), (1, 1));

    // At most two megaflows per round, hottest first by their rate in that round. The
    // flows do not read the ingress port: a rule on each port, and the limit counts
    // megaflows, not rules.
    let cfg = OffloadConfig { max_inserts_per_round: 2, ..OffloadConfig::default() };
    let mut r = Rig::new(ModelConfig::default(), cfg);
    let ds: Vec<_> = (0..5).map(|i| desc(30 + i, None, routed(2), 1)).collect();
    let mut totals = [0u64; 5];
    let mut offloaded: Vec<usize> = vec![];
    for (deltas, now) in [
        ([3000, 7000, 1000, 5000, 9000], vec![4, 1]),
        ([4000, 0, 8000, 2000, 0], vec![2, 0]),
        ([0, 0, 0, 999, 0], vec![]),
        ([5000, 5000, 5000, 5000, 5000], vec![3]),
        ([5000, 5000, 5000, 5000, 5000], vec![]),
    ] {
        let live: Vec<Candidate> = (0..5)
            .map(|i| {
                totals[i] += deltas[i];
                cand((0, i as u32, 1), totals[i], &ds[i])
            })
            .collect();
        assert_eq!(r.round(&live, 1), vec![]);
        offloaded.extend(&now);
        let modes: Vec<usize> = (0..5).filter(|i| r.mgr.mode_of((0, *i as u32, 1)).is_some()).collect();
        let mut want = offloaded.clone();
        want.sort();
        assert_eq!(modes, want, "deltas {deltas:?}");
        assert!(now.iter().all(|i| r.mgr.mode_of((0, *i as u32, 1)) == Some(Mode::Full)));
        assert_eq!(r.model.total_rules(), 2 * offloaded.len());
        assert_eq!(
            (r.mgr.stats().created_full, r.mgr.stats().offloaded_flows),
            (2 * want.len() as u64, want.len() as u64)
        );
    }
    assert_eq!(r.model.rules(r.a.dpdk), 5);
    assert_eq!(r.model.rules(r.b.dpdk), 5);
}

#[test]
fn partial_offload_binds_the_mark_before_the_rule_exists() {
    let cfg = OffloadConfig { min_pps: 1, ..OffloadConfig::default() };
    let mut r = Rig::new(ModelConfig { transfer: false, ..ModelConfig::default() }, cfg);
    let d = desc(12, Some(1), routed(2), 1);
    let id = (1, 4, 9);
    let model = r.model.clone();
    let mut seen = vec![];
    r.mgr.round(&[cand(id, 10, &d)], Duration::from_secs(1), &mut |cmds| {
        seen.extend(cmds.into_iter().map(|c| (c, model.total_rules())))
    });
    let [(bind, rules_then)] = &seen[..] else { panic!("one command: {seen:?}") };
    let &Command::Bind { mark, .. } = bind else { panic!("a bind: {bind:?}") };
    assert_eq!(bind, &Command::Bind { mark, mask: d.mask.clone(), key: d.key.clone(), min_len: 34 });
    assert_eq!(*rules_then, 0, "bound while the NIC had no rule yet");
    assert_eq!(r.model.total_rules(), 1, "the rule was created after the bind");
    assert_eq!(r.mgr.mode_of(id), Some(Mode::Partial));
    assert_eq!(r.failures(), vec![("validate_full:ENOTSUP", 1)], "the full rule was refused by the NIC");
    let s = r.mgr.stats();
    assert_eq!((s.created_full, s.created_partial, s.rules_full, s.rules_partial), (0, 1, 0, 1));
    assert!(s.refused.is_empty(), "{s:?}");
    let rules = r.mgr.rules();
    assert_eq!((rules.len(), rules[0].mode, rules[0].mark, rules[0].port), (1, Mode::Partial, Some(mark), r.a.dpdk));
    assert!(rules[0].rule.starts_with("ingress ") && rules[0].rule.contains(&format!("Mark({mark})")), "{rules:?}");

    // The NIC marks the megaflow's packets, unchanged, to the host.
    let mut p = packet(12);
    assert_eq!(r.model.receive(r.a.dpdk, &mut p), Verdict::ToHost { mark: Some(mark), queue: Some(0) });
    assert_eq!(p, packet(12));
    assert_eq!(r.model.receive(r.a.dpdk, &mut packet(13)), HOST);

    // Partial rules have no counters to credit; nothing is bound again.
    assert_eq!(r.round(&[cand(id, 20, &d)], 1), vec![]);
    assert_eq!(r.mgr.stats().hw_packets, 0);
    // The megaflow goes: its mark is unbound, its rule destroyed.
    assert_eq!(r.round(&[], 1), vec![Command::Unbind(mark)]);
    assert_eq!((r.model.total_rules(), r.mgr.stats().rules_partial, r.mgr.stats().destroyed), (0, 0, 1));
}

#[test]
fn capacity_budget_and_incapable_ports() {
    let cfg = OffloadConfig { min_pps: 1, ..OffloadConfig::default() };

    // 1. One rule per port in the NIC: the second megaflow on port A fails both ways,
    //    its mark is bound and unbound, and nothing stays behind.
    let mut r = Rig::new(ModelConfig { capacity: 1, ..ModelConfig::default() }, cfg);
    let (x, y, z) = (desc(40, Some(1), routed(2), 1), desc(41, Some(1), routed(2), 1), desc(42, Some(2), flooded(), 1));
    let (ix, iy, iz) = ((0, 1, 1), (0, 2, 1), (0, 3, 1));
    let cmds = r.round(&[cand(iy, 50, &y), cand(ix, 100, &x)], 1);
    let [Command::Bind { mark, .. }, Command::Unbind(unbound)] = cmds[..] else { panic!("{cmds:?}") };
    assert_eq!(cmds[0], Command::Bind { mark, mask: y.mask.clone(), key: y.key.clone(), min_len: 34 });
    assert_eq!(unbound, mark);
    assert_eq!((r.mgr.mode_of(ix), r.mgr.mode_of(iy)), (Some(Mode::Full), None), "the hotter one first");
    assert_eq!(r.failures(), vec![("create_full:ENOSPC", 1), ("create_partial:ENOSPC", 1)]);
    assert_eq!((r.model.total_rules(), r.mgr.rules().len()), (1, 1));
    let s = r.mgr.stats();
    assert_eq!((s.created_full, s.created_partial, s.rules_full, s.rules_partial, s.offloaded_flows), (1, 0, 1, 0, 1));
    // A failed megaflow is not tried again; the freed mark is the next one bound.
    let cmds = r.round(&[cand(iy, 500, &y), cand(ix, 1000, &x), cand(iz, 100, &z)], 1);
    assert_eq!(cmds, vec![Command::Bind { mark, mask: z.mask.clone(), key: z.key.clone(), min_len: 34 }]);
    assert_eq!(r.failures(), vec![("create_full:ENOSPC", 1), ("create_partial:ENOSPC", 1)]);
    assert_eq!((r.mgr.mode_of(iy), r.mgr.mode_of(iz)), (None, Some(Mode::Partial)));
    assert_eq!(r.mgr.stats().refused, BTreeMap::from([("full_several_copies".to_string(), 1)]));
    assert_eq!((r.model.rules(r.a.dpdk), r.model.rules(r.b.dpdk)), (1, 1));
    assert_eq!(r.round(&[], 1), vec![Command::Unbind(mark)]);
    assert_eq!(r.model.total_rules(), 0);

    // 2. The manager's own budget, one rule per port: counted, and no device call.
    let mut r = Rig::new(ModelConfig::default(), OffloadConfig { max_rules_per_port: 1, ..cfg });
    let (x, y, w) = (desc(50, Some(1), routed(2), 1), desc(51, None, routed(2), 1), desc(52, Some(1), routed(2), 1));
    let (ix, iy, iw) = ((0, 1, 1), (0, 2, 1), (0, 3, 1));
    assert_eq!(r.round(&[cand(ix, 100, &x), cand(iy, 50, &y)], 1), vec![]);
    assert_eq!(r.failures(), vec![("port_budget", 1)], "y did not fit on port A");
    assert_eq!((r.mgr.mode_of(ix), r.mgr.mode_of(iy)), (Some(Mode::Full), Some(Mode::Full)));
    let on = |r: &Rig, id: FlowId| -> Vec<u16> {
        r.mgr.rules().iter().filter(|i| (i.worker, i.flow) == (id.0, id.1)).map(|i| i.port).collect()
    };
    assert_eq!((on(&r, ix), on(&r, iy)), (vec![r.a.dpdk], vec![r.b.dpdk]));
    assert_eq!((r.model.rules(r.a.dpdk), r.model.rules(r.b.dpdk)), (1, 1));
    assert_eq!(r.round(&[cand(ix, 200, &x), cand(iy, 100, &y), cand(iw, 100, &w)], 1), vec![]);
    assert_eq!(r.failures(), vec![("port_budget", 2)]);
    assert_eq!((r.mgr.mode_of(iw), r.model.total_rules()), (None, 2));

    // 3. A NIC without flow ops: each port is tried once (full, no partial after it),
    //    reported, and not tried again, even when the NIC would work now.
    let mut r = Rig::new(ModelConfig { not_capable: true, ..ModelConfig::default() }, cfg);
    assert_eq!(r.round(&[cand((0, 1, 1), 100, &desc(60, None, routed(2), 1))], 1), vec![]);
    assert_eq!(r.failures(), vec![("validate_full:ENOSYS", 2)]);
    let nc = &r.mgr.stats().not_capable;
    assert_eq!(nc.keys().copied().collect::<Vec<_>>(), {
        let mut v = vec![r.a.dpdk, r.b.dpdk];
        v.sort();
        v
    });
    assert!(nc.values().all(|m| m.contains("no flow operations")), "{nc:?}");
    let later =
        [cand((0, 2, 1), 100, &desc(61, Some(1), routed(2), 1)), cand((0, 3, 1), 100, &desc(62, None, flooded(), 1))];
    assert_eq!(r.round(&later, 1), vec![]);
    r.model.set_config(ModelConfig::default());
    assert_eq!(r.round(&[cand((0, 4, 1), 100, &desc(63, Some(2), routed(1), 1))], 1), vec![]);
    assert_eq!(r.failures(), vec![("validate_full:ENOSYS", 2)], "never tried again");
    assert_eq!((r.model.total_rules(), r.mgr.stats().offloaded_flows), (0, 0));
    // A port that leaves and comes back is probed anew.
    let pa = r.handle(r.a);
    assert_eq!(r.mgr.set_port(r.a, None), vec![]);
    assert_eq!(r.mgr.set_port(r.a, Some(pa)), vec![]);
    assert_eq!(r.mgr.stats().not_capable.keys().copied().collect::<Vec<_>>(), vec![r.b.dpdk]);
    assert_eq!(r.round(&[cand((0, 5, 1), 100, &desc(64, Some(1), routed(2), 1))], 1), vec![]);
    assert_eq!((r.mgr.mode_of((0, 5, 1)), r.model.rules(r.a.dpdk)), (Some(Mode::Full), 1));
    assert_eq!(r.failures(), vec![("validate_full:ENOSYS", 2)]);
}

#[test]
fn invalidate_destroys_exactly_the_dependent_rules() {
    let mut r = Rig::new(ModelConfig::default(), OffloadConfig { min_pps: 1, ..OffloadConfig::default() });
    let f1 = desc(70, Some(1), routed(2), 0b001);
    let f2 = desc(71, None, flooded(), 0b010);
    let f3 = desc(72, Some(2), dropped(), 0b100);
    let (i1, i2, i3) = ((0, 1, 1), (1, 1, 1), (0, 3, 1));
    let cmds = r.round(&[cand(i1, 100, &f1), cand(i2, 90, &f2), cand(i3, 80, &f3)], 1);
    let binds: Vec<u32> = cmds
        .iter()
        .map(|c| match c {
            Command::Bind { mark, mask, .. } if *mask == f2.mask => *mark,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(binds.len(), 2, "f2 is partial on both ports");
    let marks: Vec<(u16, u32)> =
        r.mgr.rules().iter().filter(|i| i.worker == 1).map(|i| (i.port, i.mark.unwrap())).collect();
    let (ma, mb) =
        (marks.iter().find(|m| m.0 == r.a.dpdk).unwrap().1, marks.iter().find(|m| m.0 == r.b.dpdk).unwrap().1);
    assert_eq!(BTreeSet::from([ma, mb]), binds.iter().copied().collect());
    assert_eq!(r.model.total_rules(), 4);
    assert_eq!(r.model.receive(r.a.dpdk, &mut packet(71)), Verdict::ToHost { mark: Some(ma), queue: Some(0) });
    assert_eq!(r.model.receive(r.b.dpdk, &mut packet(71)), Verdict::ToHost { mark: Some(mb), queue: Some(0) });
    assert_eq!(r.model.receive(r.b.dpdk, &mut packet(72)), Verdict::Dropped);

    assert_eq!(r.mgr.invalidate(0b1000), vec![], "no megaflow read that");
    assert_eq!((r.model.total_rules(), r.mgr.stats().destroyed), (4, 0));

    let cmds = r.mgr.invalidate(0b010);
    assert_eq!(cmds.len(), 2);
    let unbound: BTreeSet<u32> = cmds
        .iter()
        .map(|c| match c {
            Command::Unbind(m) => *m,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(unbound, BTreeSet::from([ma, mb]));
    assert_eq!((r.mgr.mode_of(i1), r.mgr.mode_of(i2), r.mgr.mode_of(i3)), (Some(Mode::Full), None, Some(Mode::Full)));
    assert_eq!(r.model.total_rules(), 2);
    let s = r.mgr.stats();
    assert_eq!((s.destroyed, s.destroyed_by_writes, s.rules_full, s.rules_partial, s.offloaded_flows), (2, 2, 2, 0, 2));
    assert_eq!(r.model.receive(r.a.dpdk, &mut packet(71)), HOST);
    assert_eq!(r.model.receive(r.b.dpdk, &mut packet(72)), Verdict::Dropped, "f3 did not read it");

    let cmds = r.mgr.invalidate(0b101);
    assert!(
        cmds.iter().all(|c| matches!(c, Command::Credit { .. })),
        "full rules have no marks, only final credits: {cmds:?}"
    );
    assert_eq!((r.mgr.mode_of(i1), r.mgr.mode_of(i3), r.model.total_rules()), (None, None, 0));
    let s = r.mgr.stats();
    assert_eq!((s.destroyed, s.destroyed_by_writes, s.rules_full, s.offloaded_flows), (4, 4, 0, 0));
    assert!(s.rules_per_port.is_empty(), "{s:?}");
    assert_eq!(r.model.receive(r.b.dpdk, &mut packet(72)), HOST);
    assert_eq!(r.mgr.invalidate(u64::MAX), vec![]);
    assert_eq!(r.mgr.stats().destroyed, 4);
}

/// xorshift64: reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What a mark is bound to in the workers.
type Match = (Mask, Box<[u64]>, u32);

fn match_of(d: &MegaflowDesc) -> Match {
    (d.mask.clone(), d.key.clone(), d.min_len)
}

/// A megaflow slot of a worker's cache: its current version and packet total.
struct Slot {
    worker: u32,
    flow: u32,
    dst: u8,
    in_port: Option<u32>,
    desc: Arc<MegaflowDesc>,
    version: u32,
    packets: u64,
    live: bool,
}

impl Slot {
    fn id(&self) -> FlowId {
        (self.worker, self.flow, self.version)
    }
}

/// Commands of a destroy outside a round: unbinds, and the final credit of each full
/// rule, which must be exactly the NIC's hits since the last round. Returns the
/// packets credited.
fn settle(marks: &mut HashMap<u32, Match>, pending: &mut HashMap<FlowId, u64>, cmds: Vec<Command>, len: u64) -> u64 {
    let mut got: HashMap<FlowId, u64> = HashMap::new();
    for c in cmds {
        match c {
            Command::Unbind(m) => assert!(marks.remove(&m).is_some(), "unbind of unbound mark {m}"),
            Command::Credit { flow, packets, bytes, .. } => {
                assert_eq!(bytes, packets * len);
                *got.entry(flow).or_default() += packets;
            }
            other => panic!("a destroy returned {other:?}"),
        }
    }
    for (flow, n) in &got {
        assert_eq!(pending.remove(flow), Some(*n), "the final credit of {flow:?}");
    }
    got.values().sum()
}

/// Everything that must hold between rounds.
fn check(r: &Rig, slots: &[Slot], marks: &HashMap<u32, Match>, present: [bool; 2], budget: usize, when: &str) {
    let rules = r.mgr.rules();
    let s = r.mgr.stats();
    assert_eq!(r.model.total_rules(), rules.len(), "{when}: the NIC has exactly the manager's rules");
    assert_eq!(rules.len() as u64, s.rules_full + s.rules_partial, "{when}");
    for (i, p) in [r.a, r.b].iter().enumerate() {
        let mine = rules.iter().filter(|x| x.port == p.dpdk).count();
        assert_eq!(r.model.rules(p.dpdk), mine, "{when}: port {}", p.dpdk);
        assert_eq!(s.rules_per_port.get(&p.dpdk).copied().unwrap_or(0), mine as u64, "{when}");
        assert!(mine <= budget, "{when}: port {} over budget", p.dpdk);
        assert!(present[i] || mine == 0, "{when}: rules on absent port {}", p.dpdk);
    }
    let mut flows = HashSet::new();
    let mut per_match = HashSet::new();
    let mut partial_marks = HashSet::new();
    for x in &rules {
        let sl = slot_of(slots, x.worker, x.flow);
        assert!(sl.live, "{when}: rule of a megaflow that is gone: {x:?}");
        assert!(r.mgr.mode_of(sl.id()).is_some(), "{when}: {x:?} is not the live version's");
        flows.insert((x.worker, x.flow));
        assert!(per_match.insert((x.port, sl.dst)), "{when}: two rules for one match on port {}", x.port);
        match (x.mode, x.mark) {
            (Mode::Full, None) => {}
            (Mode::Partial, Some(m)) => {
                assert_eq!(marks.get(&m), Some(&match_of(&sl.desc)), "{when}: mark {m} of {x:?}");
                partial_marks.insert(m);
            }
            _ => panic!("{when}: {x:?}"),
        }
    }
    assert_eq!(flows.len() as u64, s.offloaded_flows, "{when}");
    assert_eq!(marks.keys().copied().collect::<HashSet<_>>(), partial_marks, "{when}: bound marks without a rule");
    for sl in slots.iter().filter(|sl| !sl.live) {
        assert_eq!(r.mgr.mode_of(sl.id()), None, "{when}: {:?} is not live", sl.id());
    }
}

#[test]
fn churn_never_leaks_a_rule() {
    const BUDGET: usize = 12;
    let cfg =
        OffloadConfig { min_pps: 1000, max_rules_per_port: BUDGET, max_inserts_per_round: 5, ..Default::default() };
    let mut r = Rig::new(ModelConfig::default(), cfg);
    let infos = [r.a, r.b];
    let handles = [r.handle(r.a), r.handle(r.b)];
    // 40 megaflows: ingress port 1, 2 or any; routed (full), flooded (partial only),
    // dropped (full) or, one in eight, metered on a cell of its own (full: METER, its
    // GREEN routed, RED dropped); one of 8 dependency bits. Worker 1 has the first 8
    // too.
    let pool: Vec<(u8, Option<u32>, Arc<MegaflowDesc>)> = (0..40u8)
        .map(|i| {
            let in_port = [Some(1), Some(2), None][i as usize % 3];
            let out = if in_port == Some(1) { 2 } else { 1 };
            let actions = match i % 8 {
                7 => Actions::metered(0, i.into(), false, [routed(out), routed(out), dropped()]),
                k if k % 4 < 2 => routed(out),
                k if k % 4 == 2 => flooded(),
                _ => dropped(),
            };
            (100 + i, in_port, desc(100 + i, in_port, actions, 1 << (i % 8)))
        })
        .collect();
    let mut slots: Vec<Slot> = (0..48u32)
        .map(|s| {
            let (worker, flow, k) = if s < 40 { (0, s, s) } else { (1, s - 40, s - 40) };
            let (dst, in_port, desc) = pool[k as usize].clone();
            Slot { worker, flow, dst, in_port, desc, version: 0, packets: 0, live: false }
        })
        .collect();
    let len = packet(0).len() as u64;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut marks: HashMap<u32, Match> = HashMap::new();
    let mut present = [true, true];
    // NIC hits on full rules since the last round, per megaflow.
    let mut pending: HashMap<FlowId, u64> = HashMap::new();
    let (mut credited, mut hw_hits, mut partial_hits, mut binds) = (0u64, 0u64, 0u64, 0u64);
    let (mut writes, mut departures, mut max_meters) = (0, 0, 0);

    for round in 0..300 {
        // Between rounds: a write, a NIC reconfiguration, a port leaving or returning.
        if rng.chance(10) {
            let bit = 1u64 << rng.below(8);
            let cmds = r.mgr.invalidate(bit);
            credited += settle(&mut marks, &mut pending, cmds, len);
            writes += 1;
            // The write removes the megaflows that read what changed.
            for sl in slots.iter_mut().filter(|sl| sl.live && sl.desc.deps & bit != 0) {
                assert_eq!(r.mgr.mode_of(sl.id()), None, "round {round}: invalidate({bit:#x}) left {:?}", sl.id());
                sl.live = false;
            }
        }
        if rng.chance(5) {
            let capacity = [1, 4, 8, 1024, 1024, 1024][rng.below(6) as usize];
            r.model.set_config(ModelConfig { capacity, transfer: rng.chance(80), ..ModelConfig::default() });
        }
        for i in 0..2 {
            if present[i] && rng.chance(3) {
                let cmds = r.mgr.set_port(infos[i], None);
                credited += settle(&mut marks, &mut pending, cmds, len);
                assert_eq!(r.model.rules(infos[i].dpdk), 0, "round {round}: the leaving port's rules");
                present[i] = false;
                departures += 1;
            } else if !present[i] && rng.chance(25) {
                assert_eq!(r.mgr.set_port(infos[i], Some(Arc::clone(&handles[i]))), vec![]);
                present[i] = true;
            }
        }
        assert!(
            pending.keys().all(|id| r.mgr.mode_of(*id) == Some(Mode::Full)),
            "hits of destroyed rules were credited"
        );
        check(&r, &slots, &marks, present, BUDGET, &format!("before round {round}"));

        // Megaflows come (a new version), go, and match packets in software.
        for sl in slots.iter_mut() {
            if sl.live && rng.chance(10) {
                sl.live = false;
            } else if !sl.live && rng.chance(30) {
                (sl.live, sl.version, sl.packets) = (true, sl.version + 1, 0);
            }
            if sl.live {
                sl.packets += match rng.below(4) {
                    0 => 0,
                    1 => rng.below(1000),
                    _ => 1000 + rng.below(20_000),
                };
            }
        }
        // Metered cells pass everything (GREEN).
        let green = MeterConfig { cir: 1 << 40, cburst: 1 << 40, pir: 1 << 40, pburst: 1 << 40 };
        let live: Vec<Candidate> = slots
            .iter()
            .filter(|sl| sl.live)
            .map(|sl| Candidate {
                meter: sl.desc.actions.metered.as_ref().map(|_| green),
                ..cand(sl.id(), sl.packets, &sl.desc)
            })
            .collect();
        // Every hit is credited: live megaflows' at the count, gone ones' when retired.
        let want: HashMap<FlowId, u64> = pending.drain().filter(|(_, n)| *n > 0).collect();
        let mut got: HashMap<FlowId, u64> = HashMap::new();
        let live_matches: HashSet<Match> = live.iter().map(|c| match_of(&c.desc)).collect();
        r.mgr.round(&live, Duration::from_secs(1), &mut |cmds| {
            for c in cmds {
                match c {
                    Command::Bind { mark, mask, key, min_len } => {
                        let m = (mask, key, min_len);
                        assert!(live_matches.contains(&m), "round {round}: bind {mark} to no live megaflow");
                        if let Some(old) = marks.insert(mark, m.clone()) {
                            panic!("round {round}: mark {mark} rebound while bound (same match: {})", old == m);
                        }
                        binds += 1;
                    }
                    Command::Unbind(m) => assert!(marks.remove(&m).is_some(), "round {round}: unbind of unbound {m}"),
                    Command::Credit { flow, packets, bytes, .. } => {
                        assert_eq!(bytes, packets * len);
                        *got.entry(flow).or_default() += packets; // one credit per rule (port)
                    }
                }
            }
        });
        assert_eq!(got, want, "round {round}: credits are exactly the NIC's hits");
        credited += got.values().sum::<u64>();
        assert_eq!(credited, r.mgr.stats().hw_packets);
        check(&r, &slots, &marks, present, BUDGET, &format!("after round {round}"));
        assert_eq!(
            r.model.total_meters() as u64,
            r.mgr.stats().meters,
            "round {round}: a meter object per metered rule"
        );
        max_meters = max_meters.max(r.mgr.stats().meters);

        // Traffic on the NIC: every live megaflow's packets on its ingress ports.
        let rules = r.mgr.rules();
        for sl in slots.iter().filter(|sl| sl.live) {
            let ins: Vec<PortInfo> = infos.iter().filter(|p| sl.in_port.is_none_or(|q| q == p.p4)).copied().collect();
            for p in ins.iter().filter(|p| present[infos.iter().position(|q| q == *p).unwrap()]) {
                let rule = rules.iter().find(|x| x.port == p.dpdk && slot_dst(&slots, x.worker, x.flow) == sl.dst);
                for _ in 0..rng.below(3) {
                    let mut pkt = packet(sl.dst);
                    let v = r.model.receive(p.dpdk, &mut pkt);
                    let Some(x) = rule else {
                        assert_eq!(v, HOST, "round {round}: no rule for {} on {}", sl.dst, p.dpdk);
                        continue;
                    };
                    match x.mode {
                        Mode::Full => {
                            let a = &sl.desc.actions;
                            let outcome = a.metered.as_ref().map_or(&**a, |b| &b.colors[0]);
                            let want = match outcome.outputs.first() {
                                None => Verdict::Dropped,
                                Some(o) => Verdict::Forwarded { port: infos[o.port as usize - 1].dpdk },
                            };
                            assert_eq!(v, want, "round {round}");
                            let owner = slot_of(&slots, x.worker, x.flow).id();
                            *pending.entry(owner).or_default() += 1;
                            hw_hits += 1;
                        }
                        Mode::Partial => {
                            assert_eq!(v, Verdict::ToHost { mark: x.mark, queue: Some(0) }, "round {round}");
                            assert_eq!(marks.get(&x.mark.unwrap()), Some(&match_of(&sl.desc)), "round {round}");
                            partial_hits += 1;
                        }
                    }
                }
            }
        }
    }

    // The churn did exercise what it claims to.
    let s = r.mgr.stats().clone();
    assert!(s.created_full > 20 && s.created_partial > 20 && binds > 20, "{s:?}");
    assert!(s.destroyed_by_writes > 0 && s.destroyed > s.destroyed_by_writes, "{s:?}");
    for k in ["create_full:ENOSPC", "create_partial:ENOSPC", "validate_full:ENOTSUP", "port_budget"] {
        assert!(s.failures.get(k).is_some_and(|n| *n > 0), "{k}: {s:?}");
    }
    assert!(writes > 10 && departures > 3, "{writes} writes, {departures} ports left");
    assert!(max_meters > 0, "no metered full rule");
    assert!(credited > 0 && partial_hits > 0, "{credited} {hw_hits} {partial_hits}");

    credited += settle(&mut marks, &mut pending, r.mgr.clear(), len);
    assert_eq!(credited, hw_hits, "every hardware hit was credited exactly once");
    assert_eq!(credited, r.mgr.stats().hw_packets);
    assert!(marks.is_empty(), "marks left bound after clear: {marks:?}");
    assert_eq!((r.model.total_rules(), r.mgr.rules().len(), r.model.total_meters()), (0, 0, 0));
    let s = r.mgr.stats();
    assert_eq!((s.rules_full, s.rules_partial, s.offloaded_flows, s.meters), (0, 0, 0, 0));
    assert_eq!(s.destroyed, s.created_full + s.created_partial, "every rule created was destroyed once");
}

fn slot_of(slots: &[Slot], worker: u32, flow: u32) -> &Slot {
    &slots[if worker == 0 { flow as usize } else { 40 + flow as usize }]
}

fn slot_dst(slots: &[Slot], worker: u32, flow: u32) -> u8 {
    slot_of(slots, worker, flow).dst
}

// Regressions: bugs the tests above found in manager.rs, since fixed.

/// The per-port budget is checked against `stats.rules_per_port`, a gauge refreshed
/// only at the end of a round: rules retired at the start of the round still count,
/// so a new megaflow is refused `port_budget` although the port has room, and, marked
/// tried, is never offloaded while it lives.
#[test]
fn a_rule_retired_in_a_round_frees_its_budget_in_that_round() {
    let cfg = OffloadConfig { min_pps: 1, max_rules_per_port: 1, ..OffloadConfig::default() };
    let mut r = Rig::new(ModelConfig::default(), cfg);
    let (x, y) = (desc(80, Some(1), routed(2), 1), desc(81, Some(1), routed(2), 1));
    r.round(&[cand((0, 1, 1), 100, &x)], 1);
    assert_eq!(r.model.rules(r.a.dpdk), 1);
    // x goes, y comes: x's rule is destroyed in this round, before y is offloaded.
    r.round(&[cand((0, 2, 1), 100, &y)], 1);
    assert_eq!(r.model.rules(r.a.dpdk), 1, "y's rule replaces x's");
    assert_eq!(r.mgr.stats().failures.get("port_budget"), None);
    assert_eq!(r.mgr.mode_of((0, 2, 1)), Some(Mode::Full));
}

/// `set_port(info, None)` destroys the rules whose ingress is the leaving port, but
/// not full rules on other ports whose fate is `REPRESENTED_PORT(leaving port)`: the
/// NIC keeps forwarding to a port that is closed (and whose DPDK id a later port may
/// reuse), while software no longer can (megaflows outlive port changes).
#[test]
fn a_port_that_leaves_takes_the_full_rules_forwarding_to_it() {
    let mut r = Rig::new(ModelConfig::default(), OffloadConfig { min_pps: 1, ..OffloadConfig::default() });
    let d = desc(82, Some(2), routed(1), 1);
    r.round(&[cand((0, 1, 1), 100, &d)], 1);
    assert_eq!(r.model.receive(r.b.dpdk, &mut packet(82)), Verdict::Forwarded { port: r.a.dpdk });
    let len = packet(82).len() as u64;
    assert_eq!(
        r.mgr.set_port(r.a, None),
        vec![Command::Credit { flow: (0, 1, 1), packets: 1, bytes: len, color: None }],
        "its last hit"
    );
    let a = r.a.dpdk;
    assert_ne!(r.model.receive(r.b.dpdk, &mut packet(82)), Verdict::Forwarded { port: a }, "forwarded to a gone port");
    assert!(!r.mgr.rules().iter().any(|i| i.rule.contains(&format!("RepresentedPort({a})"))), "{:?}", r.mgr.rules());
}

/// Hits a full rule took since the last round are lost when the rule is destroyed
/// (write, port leaving, clear): `retire` destroys without a last COUNT query, so no
/// `Credit` is returned and `hw_packets` never counts them, although `invalidate`
/// runs before the write, while the megaflow still exists in its worker.
#[test]
fn hits_since_the_last_round_are_credited_when_a_write_destroys_the_rule() {
    let mut r = Rig::new(ModelConfig::default(), OffloadConfig { min_pps: 1, ..OffloadConfig::default() });
    let d = desc(83, Some(1), routed(2), 0b1);
    let id = (0, 1, 1);
    r.round(&[cand(id, 100, &d)], 1);
    for _ in 0..3 {
        assert_eq!(r.model.receive(r.a.dpdk, &mut packet(83)), Verdict::Forwarded { port: r.b.dpdk });
    }
    let cmds = r.mgr.invalidate(0b1);
    let len = packet(83).len() as u64;
    assert_eq!(r.mgr.stats().hw_packets, 3, "the NIC forwarded 3 packets for the megaflow");
    assert!(cmds.contains(&Command::Credit { flow: id, packets: 3, bytes: 3 * len, color: None }), "{cmds:?}");
}

/// A megaflow branching on meter cell 5's color (packets meter): GREEN routed to P4
/// port 2, YELLOW sent there unchanged, RED dropped.
fn metered(dst: u8) -> Arc<MegaflowDesc> {
    let yellow = actions(vec![in_place(2, 34, &[], None)], vec![]);
    desc(dst, Some(1), Actions::metered(0, 5, false, [routed(2), yellow, dropped()]), 4)
}

/// 2 packets committed, 1 more peak, then RED (refill 1/s).
const CELL: MeterConfig = MeterConfig { cir: 1, cburst: 2, pir: 1, pburst: 3 };

/// A metered megaflow alone on its cell is `METER(object)`: the NIC colors and runs
/// each color's outcome as software would, and the object's per-color statistics are
/// credited per color. When a second megaflow comes to execute the cell, the full
/// rule and its object go and both megaflows are offloaded partially (the workers
/// meter the cell); a write destroys everything before it returns. No meter object
/// is left behind.
#[test]
fn a_metered_flow_alone_on_its_cell_is_metered_by_the_nic_and_credited_per_color() {
    let mut r = Rig::new(ModelConfig::default(), OffloadConfig::default());
    let d = metered(10);
    let id = (0, 7, 3);
    let one = |packets| vec![Candidate { meter: Some(CELL), ..cand(id, packets, &d) }];
    assert_eq!(r.round(&one(5000), 1), vec![], "full: no mark");
    assert_eq!((r.mgr.mode_of(id), r.model.total_rules(), r.model.total_meters()), (Some(Mode::Full), 1, 1));
    assert_eq!(r.mgr.stats().meters, 1);
    let shown = &r.mgr.rules()[0].rule;
    assert!(shown.contains("-> Meter(") && shown.contains("[trTCM cir 1 pir 1 cbs 2 pbs 3 packets; GREEN"), "{shown}");
    assert!(shown.contains("RED Drop]"), "{shown}");

    let mut routed_bytes = vec![];
    d.actions.metered.as_ref().unwrap().colors[0].outputs[0].render(&packet(10), &mut routed_bytes);
    let len = packet(10).len() as u64;
    let to_b = Verdict::Forwarded { port: r.b.dpdk };
    for (i, (verdict, want)) in [
        (to_b.clone(), &routed_bytes),
        (to_b.clone(), &routed_bytes),
        (to_b.clone(), &packet(10)),
        (Verdict::Dropped, &packet(10)),
        (Verdict::Dropped, &packet(10)),
    ]
    .into_iter()
    .enumerate()
    {
        let mut p = packet(10);
        assert_eq!(r.model.receive(r.a.dpdk, &mut p), verdict, "packet {i}");
        if verdict != Verdict::Dropped {
            assert_eq!(&p, want, "packet {i}");
        }
    }
    let credit = |packets: u64, color| Command::Credit { flow: id, packets, bytes: packets * len, color: Some(color) };
    assert_eq!(r.round(&one(5000), 1), vec![credit(2, 0), credit(1, 1), credit(2, 2)]);
    assert_eq!((r.mgr.stats().hw_packets, r.mgr.rules()[0].hw_packets), (5, 5));
    assert_eq!(r.round(&one(5000), 1), vec![], "no new hits");

    // Another megaflow executes cell 5: the full rule and its object go, both are
    // offloaded partially.
    let d2 = metered(11);
    let id2 = (1, 2, 1);
    let two = vec![
        Candidate { meter: Some(CELL), ..cand(id, 10000, &d) },
        Candidate { meter: Some(CELL), ..cand(id2, 5000, &d2) },
    ];
    let cmds = r.round(&two, 1);
    assert_eq!(cmds.iter().filter(|c| matches!(c, Command::Bind { .. })).count(), 2, "{cmds:?}");
    assert_eq!((r.mgr.mode_of(id), r.mgr.mode_of(id2)), (Some(Mode::Partial), Some(Mode::Partial)));
    assert_eq!((r.model.total_rules(), r.model.total_meters(), r.mgr.stats().meters), (2, 0, 0));
    let s = r.mgr.stats();
    assert_eq!((s.meter_demotions, s.refused.get("full_meter_shared").copied()), (1, Some(2)), "{s:?}");
    assert_eq!(s.destroy_failures, 0);

    // Alone again and offloaded afresh: full. A write on what it read takes the rule
    // and the object before it returns.
    r.round(&[], 1);
    r.round(&one(5000), 1);
    r.round(&one(10000), 1);
    assert_eq!((r.mgr.mode_of(id), r.model.total_meters()), (Some(Mode::Full), 1));
    r.mgr.invalidate(4);
    assert_eq!((r.mgr.mode_of(id), r.model.total_rules(), r.model.total_meters()), (None, 0, 0));
    assert_eq!(r.mgr.stats().destroy_failures, 0);
}

/// Without meter objects on the NIC, or without the cell's configuration, a metered
/// megaflow is offloaded partially, the failure or refusal counted.
#[test]
fn a_metered_flow_without_a_meter_object_is_offloaded_partially() {
    let mut r = Rig::new(ModelConfig { meters: false, ..ModelConfig::default() }, OffloadConfig::default());
    let d = metered(10);
    let c = Candidate { meter: Some(CELL), ..cand((0, 1, 1), 5000, &d) };
    r.round(&[c], 1);
    assert_eq!(r.mgr.mode_of((0, 1, 1)), Some(Mode::Partial));
    assert_eq!(r.failures(), vec![("meter_create:ENOTSUP", 1)]);
    assert_eq!((r.model.total_meters(), r.mgr.stats().meters), (0, 0));
    let mut r = Rig::new(ModelConfig::default(), OffloadConfig::default());
    r.round(&[cand((0, 1, 1), 5000, &d)], 1);
    assert_eq!(r.mgr.mode_of((0, 1, 1)), Some(Mode::Partial));
    assert_eq!(r.mgr.stats().refused.get("full_metered"), Some(&1));
    // A megaflow that does not read the ingress port has a rule on each port: one
    // meter object per port would split the cell.
    let any_port = desc(10, None, d.actions.as_ref().clone(), 4);
    r.round(&[Candidate { meter: Some(CELL), ..cand((0, 2, 1), 5000, &any_port) }], 1);
    assert_eq!((r.mgr.mode_of((0, 2, 1)), r.model.total_rules()), (Some(Mode::Partial), 2));
    assert_eq!((r.mgr.stats().refused.get("full_meter_shared"), r.model.total_meters()), (Some(&1), 0));
}
