//! Behaviour of the engine on the shared corpus programs (the expectations in the
//! corpus README), and the read-tracking invariant.

use super::compile::compile_bytes;
use super::corpus;
use super::interp::{DropCause, Interp};
use super::ir::*;
use super::tables::{Entry, EntryAction, Handle, Member, Runtime};
use super::track::{Fate, NoTrack, ReadSet, Track, Tracker, KEY_PACKET_OFFSET, MAX_TRACKED};

pub(crate) struct Prog {
    pub ir: Ir,
    pub rt: Runtime,
    pub it: Interp,
}

pub(crate) fn load(rel: &str) -> Option<Prog> {
    let dir = corpus::dir()?;
    let ir = compile_bytes(&std::fs::read(dir.join(rel)).unwrap()).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let rt = Runtime::new(&ir);
    let it = Interp::new(&ir);
    Some(Prog { ir, rt, it })
}

impl Prog {
    pub fn call(&self, table: &str, action: &str, args: &[Value]) -> ActionCall {
        let t = &self.ir.tables[self.ir.table(table).unwrap_or_else(|| panic!("no table {table}")) as usize];
        let slot = t
            .actions
            .iter()
            .position(|a| self.ir.actions[*a as usize].name == action)
            .unwrap_or_else(|| panic!("table {table} has no action {action}"));
        ActionCall { slot: slot as u32, args: args.into() }
    }

    pub fn add(&mut self, table: &str, key: Vec<KeyValue>, action: &str, args: &[Value], priority: i32) -> Handle {
        let call = self.call(table, action, args);
        let t = self.ir.table(table).unwrap();
        self.rt.insert(&self.ir, t, Entry { key, priority, action: EntryAction::Call(call), meta: None }).unwrap()
    }

    pub fn default(&mut self, table: &str, action: &str, args: &[Value]) {
        let call = self.call(table, action, args);
        let t = self.ir.table(table).unwrap();
        self.rt.set_default(&self.ir, t, Some(EntryAction::Call(call))).unwrap();
    }

    pub fn run(&mut self, port: u32, pkt: &[u8]) -> Vec<(u32, Vec<u8>)> {
        self.it.run(&self.ir, &mut self.rt, pkt, port, &mut NoTrack);
        self.it.out.packets().iter().map(|p| (p.port, p.bytes.clone())).collect()
    }

    pub fn drops(&self) -> Vec<DropCause> {
        self.it.out.drops.clone()
    }
}

pub(crate) fn mac(s: &str) -> [u8; 6] {
    let v: Vec<u8> = s.split(':').map(|x| u8::from_str_radix(x, 16).unwrap()).collect();
    v.try_into().unwrap()
}

pub(crate) fn macv(s: &str) -> Value {
    mac(s).iter().fold(0, |a, b| (a << 8) | *b as Value)
}

pub(crate) fn ip(s: &str) -> [u8; 4] {
    let v: Vec<u8> = s.split('.').map(|x| x.parse().unwrap()).collect();
    v.try_into().unwrap()
}

pub(crate) fn ipv(s: &str) -> Value {
    u32::from_be_bytes(ip(s)) as Value
}

/// Ethernet + IPv4 (correct checksum) + UDP + payload.
pub(crate) fn udp4(dst: &str, src: &str, sip: &str, dip: &str, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![];
    p.extend_from_slice(&mac(dst));
    p.extend_from_slice(&mac(src));
    p.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    let mut iph = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, ttl, 17, 0, 0];
    iph.extend_from_slice(&ip(sip));
    iph.extend_from_slice(&ip(dip));
    let c = super::bits::csum16(&iph);
    iph[10] = (c >> 8) as u8;
    iph[11] = c as u8;
    p.extend_from_slice(&iph);
    let ulen = (8 + payload.len()) as u16;
    p.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, (ulen >> 8) as u8, ulen as u8, 0, 0]);
    p.extend_from_slice(payload);
    p
}

fn ipv4_ok(frame: &[u8]) -> bool {
    super::bits::csum16(&frame[14..34]) == 0
}

pub(crate) fn simple_router() -> Option<Prog> {
    let mut p = load("simple_router/simple_router.json")?;
    // targets/simple_router/commands.txt
    for t in ["send_frame", "forward", "ipv4_lpm"] {
        p.default(t, "_drop", &[]);
    }
    p.add("send_frame", vec![KeyValue::Exact(1)], "rewrite_mac", &[macv("00:aa:bb:00:00:00")], 0);
    p.add("send_frame", vec![KeyValue::Exact(2)], "rewrite_mac", &[macv("00:aa:bb:00:00:01")], 0);
    p.add("forward", vec![KeyValue::Exact(ipv("10.0.0.10"))], "set_dmac", &[macv("00:04:00:00:00:00")], 0);
    p.add("forward", vec![KeyValue::Exact(ipv("10.0.1.10"))], "set_dmac", &[macv("00:04:00:00:00:01")], 0);
    p.add(
        "ipv4_lpm",
        vec![KeyValue::Lpm { value: ipv("10.0.0.10"), prefix: 32 }],
        "set_nhop",
        &[ipv("10.0.0.10"), 1],
        0,
    );
    p.add(
        "ipv4_lpm",
        vec![KeyValue::Lpm { value: ipv("10.0.1.10"), prefix: 32 }],
        "set_nhop",
        &[ipv("10.0.1.10"), 2],
        0,
    );
    Some(p)
}

#[test]
fn simple_router_routes_rewrites_and_fixes_the_checksum() {
    let Some(mut p) = simple_router() else { return };
    let input = udp4("00:aa:bb:00:00:00", "00:00:00:00:00:01", "10.0.0.10", "10.0.1.10", 64, b"hello");
    let out = p.run(1, &input);
    assert_eq!(out.len(), 1, "{:?}", p.drops());
    let (port, f) = &out[0];
    assert_eq!(*port, 2);
    assert_eq!(f[0..6], mac("00:04:00:00:00:01"));
    assert_eq!(f[6..12], mac("00:aa:bb:00:00:01"));
    assert_eq!(f[22], 63, "TTL decremented");
    assert!(ipv4_ok(f), "checksum recomputed");
    assert_eq!(f[34..], input[34..], "UDP and payload untouched");
    assert_eq!(f.len(), input.len());
}

#[test]
fn simple_router_drops_misses_with_the_reason() {
    let Some(mut p) = simple_router() else { return };
    let out = p.run(1, &udp4("00:aa:bb:00:00:00", "00:00:00:00:00:01", "10.0.0.10", "10.9.9.9", 64, b""));
    assert!(out.is_empty());
    assert_eq!(p.drops(), vec![DropCause::Ingress]);
    // Not IPv4: the ingress tables are skipped; egress_spec stays 0 -> port 0, whose
    // send_frame default drops in egress.
    let arp = arp();
    assert!(p.run(1, &arp).is_empty());
    assert_eq!(p.drops(), vec![DropCause::Egress]);
}

#[test]
fn simple_router_lpm_prefers_the_longest_prefix() {
    let Some(mut p) = simple_router() else { return };
    add_slash16(&mut p);
    let out = p.run(3, &udp4("00:aa:bb:00:00:00", "00:00:00:00:00:01", "1.1.1.1", "10.0.1.10", 9, b""));
    assert_eq!(out[0].0, 2, "/32 wins over /16");
    let out = p.run(3, &udp4("00:aa:bb:00:00:00", "00:00:00:00:00:01", "1.1.1.1", "10.0.77.1", 9, b""));
    assert_eq!(out[0].0, 1, "the /16 catches the rest");
}

/// simple_router: 10.0.0.0/16 -> next hop 10.0.0.10 on port 1.
fn add_slash16(p: &mut Prog) {
    p.add(
        "ipv4_lpm",
        vec![KeyValue::Lpm { value: ipv("10.0.0.0"), prefix: 16 }],
        "set_nhop",
        &[ipv("10.0.0.10"), 1],
        0,
    );
}

/// A broadcast frame with ethertype ARP (IPv4-shaped body; only the type matters here).
fn arp() -> Vec<u8> {
    let mut f = udp4("ff:ff:ff:ff:ff:ff", "00:00:00:00:00:01", "0.0.0.0", "0.0.0.0", 64, b"");
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f
}

fn hdr16(v: u16, rest: &[u8]) -> Vec<u8> {
    let mut p = v.to_be_bytes().to_vec();
    p.extend_from_slice(rest);
    p
}

#[test]
fn ternary_priority_decides_and_priority_zero_is_refused() {
    let Some(mut p) = load("bmv2_grpc_tests/ternary.json") else { return };
    let t = "ingress.ter";
    p.add(t, vec![KeyValue::Ternary { value: 0xaabb, mask: 0xffff }], "ingress.send_1", &[], 128);
    assert_eq!(p.run(0, &hdr16(0xaabb, &[0; 20]))[0].0, 1);
    p.add(t, vec![KeyValue::Ternary { value: 0xaa0b, mask: 0xff0f }], "ingress.send_2", &[], 333);
    assert_eq!(p.run(0, &hdr16(0xaabb, &[0; 20]))[0].0, 2, "higher priority wins");
    let call = p.call(t, "ingress.send_1", &[]);
    let tid = p.ir.table(t).unwrap();
    let e = Entry {
        key: vec![KeyValue::Ternary { value: 1, mask: 1 }],
        priority: 0,
        action: EntryAction::Call(call),
        meta: None,
    };
    assert!(p.rt.insert(&p.ir, tid, e).unwrap_err().to_string().contains("priority > 0"));
}

#[test]
fn entries_of_one_masked_key_rank_by_priority_through_inserts_and_deletes() {
    // Equal masked values share one slot of the table's index: it holds one entry
    // inline and a ranked list beyond; both shapes, and the moves between them.
    let Some(mut p) = load("bmv2_grpc_tests/ternary.json") else { return };
    let t = "ingress.ter";
    let tid = p.ir.table(t).unwrap();
    let key = || vec![KeyValue::Ternary { value: 0xaa00, mask: 0xff00 }];
    let port = |p: &mut Prog| p.run(0, &hdr16(0xaabb, &[0; 20])).first().map(|o| o.0);
    let missed = port(&mut p);
    p.add(t, key(), "ingress.send_1", &[], 10);
    assert_eq!(port(&mut p), Some(1));
    p.add(t, key(), "ingress.send_2", &[], 30);
    p.add(t, key(), "ingress.send_1", &[], 20);
    assert_eq!(port(&mut p), Some(2), "priority 30 of three");
    p.rt.delete(&p.ir, tid, key(), 30).unwrap();
    assert_eq!(port(&mut p), Some(1), "priority 20 of two");
    p.rt.delete(&p.ir, tid, key(), 20).unwrap();
    p.add(t, key(), "ingress.send_2", &[], 15);
    assert_eq!(port(&mut p), Some(2), "15 beats 10");
    p.rt.delete(&p.ir, tid, key(), 15).unwrap();
    assert_eq!(port(&mut p), Some(1), "the last one");
    assert!(p.rt.delete(&p.ir, tid, key(), 15).is_err(), "already deleted");
    p.rt.delete(&p.ir, tid, key(), 10).unwrap();
    assert_eq!(port(&mut p), missed, "none left: the default action");
}

#[test]
fn a_delete_reranks_the_mask_groups_by_the_best_priority_left() {
    // Lookups probe mask groups best priority first and stop when no group left can
    // win: a group's best must follow deletes exactly (too low would skip the winner).
    let Some(mut p) = load("bmv2_grpc_tests/ternary.json") else { return };
    let t = "ingress.ter";
    let tid = p.ir.table(t).unwrap();
    let hi = |v| vec![KeyValue::Ternary { value: v, mask: 0xff00 }];
    let lo = vec![KeyValue::Ternary { value: 0x00bb, mask: 0x00ff }];
    let port = |p: &mut Prog| p.run(0, &hdr16(0xaabb, &[0; 20])).first().map(|o| o.0);
    p.add(t, hi(0xaa00), "ingress.send_2", &[], 30);
    p.add(t, hi(0xaa00), "ingress.send_2", &[], 25);
    p.add(t, hi(0xab00), "ingress.send_1", &[], 5);
    p.add(t, lo.clone(), "ingress.send_1", &[], 20);
    assert_eq!(port(&mut p), Some(2), "30 of the high-byte group");
    p.rt.delete(&p.ir, tid, hi(0xaa00), 30).unwrap();
    assert_eq!(port(&mut p), Some(2), "25 of the high-byte group still beats 20");
    p.rt.delete(&p.ir, tid, hi(0xaa00), 25).unwrap();
    assert_eq!(port(&mut p), Some(1), "the low-byte group's 20 (the high-byte group's 5 does not match)");
    p.add(t, hi(0xaa00), "ingress.send_2", &[], 40);
    assert_eq!(port(&mut p), Some(2), "40 in the high-byte group");
    p.rt.delete(&p.ir, tid, lo, 20).unwrap();
    p.rt.delete(&p.ir, tid, hi(0xab00), 5).unwrap();
    assert_eq!(port(&mut p), Some(2), "the last entry");
}

#[test]
fn optional_match_wildcard_and_exact() {
    let Some(mut p) = load("bmv2_grpc_tests/optional.json") else { return };
    let t = "ingress.opt";
    p.add(t, vec![KeyValue::Ternary { value: 0, mask: 0 }], "ingress.send_1", &[], 128);
    p.add(t, vec![KeyValue::Ternary { value: 0xaabb, mask: 0xffff }], "ingress.send_2", &[], 333);
    assert_eq!(p.run(0, &hdr16(0xaabb, &[0; 20]))[0].0, 2);
    let tid = p.ir.table(t).unwrap();
    p.rt.delete(&p.ir, tid, vec![KeyValue::Ternary { value: 0xaabb, mask: 0xffff }], 333).unwrap();
    assert_eq!(p.run(0, &hdr16(0xaabb, &[0; 20]))[0].0, 1);
}

#[test]
fn selector_hashes_consistently_and_follows_watch_ports() {
    let Some(mut p) = load("bmv2_grpc_tests/action_profile.json") else { return };
    let prof = p.ir.profiles.iter().position(|x| x.selector.is_some()).unwrap() as u32;
    let send = p.ir.actions.iter().position(|a| a.name == "send").unwrap() as ActionId;
    p.rt.set_member(&p.ir, prof, 1, Member { action: send, args: vec![1] }).unwrap();
    p.rt.set_member(&p.ir, prof, 2, Member { action: send, args: vec![2] }).unwrap();
    p.rt.set_group(&p.ir, prof, 7, vec![(1, 1, Some(1)), (2, 1, Some(2))]).unwrap();
    let tid = p.ir.table("IndirectWS").unwrap();
    p.rt.insert(
        &p.ir,
        tid,
        Entry { key: vec![KeyValue::Exact(0xab)], priority: 0, action: EntryAction::Group(7), meta: None },
    )
    .unwrap();
    let pkt = |entropy: u32| {
        let mut v = vec![0xab];
        v.extend_from_slice(&entropy.to_be_bytes());
        v
    };
    let mut seen = [0; 3];
    for e in 0..64 {
        let a = p.run(0, &pkt(e))[0].0;
        assert_eq!(p.run(0, &pkt(e))[0].0, a, "same entropy, same member");
        seen[a as usize] += 1;
    }
    assert!(seen[1] > 8 && seen[2] > 8, "both members used: {seen:?}");
    p.rt.set_port_down(2, true);
    assert!((0..64).all(|e| p.run(0, &pkt(e))[0].0 == 1), "port 2 down: all on port 1");
    p.rt.set_port_down(2, false);
    assert!((0..64).any(|e| p.run(0, &pkt(e))[0].0 == 2), "port 2 back");
}

#[test]
fn clone_session_adds_copies_with_their_rid() {
    let Some(mut p) = load("bmv2_grpc_tests/clone.json") else { return };
    let pkt = hdr16(10, &[0xee; 30]);
    assert_eq!(p.run(5, &pkt).len(), 1, "no session: only the original");
    p.rt.clone_sessions.insert(10, (vec![(2, 1)], 0));
    let mut out = p.run(5, &pkt);
    out.sort();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].0, 2);
    assert_eq!(out[0].1[0..2], [0, 1], "clone carries egress_rid 1");
    assert_eq!(out[1].0, 5, "original back out of its ingress port");
    assert_eq!(out[1].1[0..2], [0, 0]);
    p.rt.clone_sessions.insert(10, (vec![(2, 1), (3, 2)], 0));
    assert_eq!(p.run(5, &pkt).len(), 3);
}

#[test]
fn multicast_replicates_to_the_group() {
    let Some(mut p) = load("bmv2_grpc_tests/multicast.json") else { return };
    let pkt = hdr16(10, &[0x11; 30]);
    assert!(p.run(0, &pkt).is_empty());
    assert_eq!(p.drops(), vec![DropCause::NoMcastGroup]);
    p.rt.mcast.insert(10, vec![(1, 1), (2, 2)]);
    let mut out = p.run(0, &pkt);
    out.sort();
    assert_eq!(out.iter().map(|(port, b)| (*port, b[1])).collect::<Vec<_>>(), vec![(1, 1), (2, 2)]);
    p.rt.mcast.insert(10, vec![(1, 1), (2, 2), (3, 1)]);
    assert_eq!(p.run(0, &pkt).len(), 3);
}

#[test]
fn digest_carries_the_source_mac_and_port() {
    let Some(mut p) = load("bmv2_grpc_tests/digest.json") else { return };
    let pkt = udp4("00:00:00:00:00:02", "00:00:00:00:00:01", "1.1.1.1", "2.2.2.2", 5, b"");
    p.run(3, &pkt);
    let d = p.it.out.digests();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].values, vec![1, 3]);
    p.add("ingress.smac", vec![KeyValue::Exact(1)], "NoAction", &[], 0);
    p.run(3, &pkt);
    assert!(p.it.out.digests().is_empty(), "a known MAC gives no digest");
}

#[test]
fn direct_counter_counts_packets_and_bytes() {
    let Some(mut p) = load("bmv2_grpc_tests/counter.json") else { return };
    let t = "t_redirect";
    let h10 = p.add(t, vec![KeyValue::Exact(10)], "port_redirect", &[], 0);
    let h5 = p.add(t, vec![KeyValue::Exact(5)], "port_redirect", &[], 0);
    assert_eq!(p.run(4, &[1u8; 10])[0].0, 4, "out the ingress port");
    p.run(4, &[1u8; 5]);
    let ts = &p.rt.tables[p.ir.table(t).unwrap() as usize];
    assert_eq!(ts.direct_counters[h10 as usize], (1, 10));
    assert_eq!(ts.direct_counters[h5 as usize], (1, 5));
}

#[test]
fn packet_io_sends_everything_to_port_64() {
    let Some(mut p) = load("bmv2_grpc_tests/packet_io.json") else { return };
    let payload = [0xab; 10];
    assert_eq!(p.run(64, &payload), vec![(64, payload.to_vec())]);
}

fn basic() -> Option<Prog> {
    load("onos_basic/basic.json")
}

#[test]
fn basic_packet_out_leaves_the_named_port_without_its_header() {
    let Some(mut p) = basic() else { return };
    let frame = udp4("00:00:00:00:00:02", "00:00:00:00:00:01", "1.1.1.1", "2.2.2.2", 5, b"x");
    // packet_out {egress_port: 9 bits = 2, _padding: 7 bits}
    let mut po = vec![0x01, 0x00];
    po.extend_from_slice(&frame);
    assert_eq!(p.run(255, &po), vec![(2, frame)]);
}

#[test]
fn basic_send_to_cpu_adds_the_packet_in_header() {
    let Some(mut p) = basic() else { return };
    let t = "ingress.table0_control.table0";
    let any = KeyValue::Ternary { value: 0, mask: 0 };
    let mut key = vec![any; 9];
    key[3] = KeyValue::Ternary { value: 0x0806, mask: 0xffff };
    p.add(t, key, "ingress.table0_control.send_to_cpu", &[], 10);
    let arp = arp();
    let out = p.run(1, &arp);
    assert_eq!(out.len(), 1, "{:?}", p.drops());
    assert_eq!(out[0].0, 255);
    // packet_in {ingress_port = 1 (9 bits), _padding = 0}
    assert_eq!(out[0].1[0..2], [0x00, 0x80]);
    assert_eq!(out[0].1[2..], arp[..]);
    // Counted: table0's direct counter and the indexed port counters.
    let tid = p.ir.table(t).unwrap() as usize;
    assert_eq!(p.rt.tables[tid].direct_counters[0].0, 1);
    let c = p.ir.counter("ingress.port_counters_ingress.ingress_port_counter").unwrap();
    assert_eq!(p.rt.counters[c as usize][1].0, 1);
}

#[test]
fn mytunnel_encapsulates_and_decapsulates() {
    let Some(mut p) = load("onos_mytunnel/mytunnel.json") else { return };
    p.add(
        "c_ingress.t_tunnel_ingress",
        vec![KeyValue::Lpm { value: ipv("10.0.0.0"), prefix: 8 }],
        "c_ingress.my_tunnel_ingress",
        &[7],
        0,
    );
    p.add("c_ingress.t_tunnel_fwd", vec![KeyValue::Exact(7)], "c_ingress.set_out_port", &[3], 0);
    let frame = udp4("00:00:00:00:00:02", "00:00:00:00:00:01", "1.1.1.1", "10.2.3.4", 5, b"data");
    let out = p.run(1, &frame);
    assert_eq!(out.len(), 1, "{:?}", p.drops());
    let (port, enc) = &out[0];
    assert_eq!(*port, 3);
    assert_eq!(enc.len(), frame.len() + 6);
    assert_eq!(enc[12..14], [0x12, 0x12], "ethertype of my_tunnel");
    assert_eq!(enc[14..20], [0x08, 0x00, 0, 0, 0, 7], "proto_id = IPv4, tun_id = 7");
    assert_eq!(enc[20..], frame[14..]);
    // The egress switch pops it.
    let mut q = load("onos_mytunnel/mytunnel.json").unwrap();
    q.add("c_ingress.t_tunnel_fwd", vec![KeyValue::Exact(7)], "c_ingress.my_tunnel_egress", &[4], 0);
    assert_eq!(q.run(1, enc), vec![(4, frame)]);
}

/// The read-tracking invariant: change any bit the tracker did not mark, and the
/// pipeline gives exactly what the tracked result's edits give.
pub(crate) fn check_tracking(p: &mut Prog, port: u32, pkt: &[u8], noise: &[u8]) -> bool {
    let mut t = Tracker::new(&p.ir);
    t.begin();
    p.it.run(&p.ir, &mut p.rt, pkt, port, &mut t);
    t.finish(&p.it.out.drops);
    if t.uncacheable.is_some() {
        return false;
    }
    // The tracked fates reproduce this packet's own output.
    let expect = |fates: &[Fate], input: &[u8]| -> Vec<(u32, Vec<u8>)> {
        let mut v: Vec<_> = fates
            .iter()
            .filter_map(|f| match f {
                Fate::Output { port, edit, .. } => {
                    let mut o = vec![];
                    edit.apply(input, &mut o);
                    Some((*port, o))
                }
                Fate::Drop(_) => None,
            })
            .collect();
        v.sort();
        v
    };
    // A run that will be cached skips deparsing its last copy: the packet's own
    // output is then the untracked run's (meters, which could color it differently,
    // make the tracked run keep its bytes).
    if !t.needs_bytes() {
        p.it.run(&p.ir, &mut p.rt, pkt, port, &mut NoTrack);
    }
    let mut own: Vec<_> = p.it.out.packets().iter().map(|o| (o.port, o.bytes.clone())).collect();
    own.sort();
    assert_eq!(expect(&t.fates, pkt), own, "edits reproduce the packet's own output");
    // A sibling: every unmarked tracked bit flipped by noise.
    let mut sib = pkt.to_vec();
    for (i, b) in sib.iter_mut().enumerate().take(MAX_TRACKED) {
        let m = t.reads.packet_byte(i);
        *b = (*b & m) | (noise[i % noise.len()] & !m);
    }
    let reference = ReadSet::key_of(port, pkt);
    assert!(t.reads.matches(&reference, port, &sib));
    let mut got = p.run(port, &sib);
    got.sort();
    assert_eq!(
        got,
        expect(&t.fates, &sib),
        "sibling of {pkt:02x?} (mask {:02x?})",
        &t.reads.mask()[KEY_PACKET_OFFSET..KEY_PACKET_OFFSET + 40]
    );
    true
}

/// A tracker that will cache until the copy is emitted, then refuses (as a refusal
/// found while building the edit does).
struct RefusesAtEmit {
    inner: Tracker,
    refuse: bool,
}

impl Track for RefusesAtEmit {
    fn needs_bytes(&self) -> bool {
        self.inner.needs_bytes()
    }

    fn emitted_view(&mut self, ir: &Ir, view: &super::track::EmitView, recirc: bool) {
        assert!(view.bytes.is_none(), "the last copy of a cacheable run is not deparsed first");
        self.inner.emitted_view(ir, view, recirc);
        if self.refuse {
            self.inner.uncacheable("refused at emission");
        }
    }
}

#[test]
fn a_run_refused_after_an_undeparsed_copy_still_outputs_its_bytes() {
    let Some(mut p) = simple_router() else { return };
    add_slash16(&mut p);
    let pkt = udp4("00:aa:bb:00:00:00", "00:00:00:00:00:01", "10.0.0.1", "10.0.9.9", 64, b"abc");
    let want = p.run(1, &pkt);
    assert_eq!(want.len(), 1);
    for refuse in [false, true] {
        let mut t = RefusesAtEmit { inner: Tracker::new(&p.ir), refuse };
        t.inner.begin();
        p.it.run(&p.ir, &mut p.rt, &pkt, 1, &mut t);
        let got: Vec<_> = p.it.out.packets().iter().map(|o| (o.port, o.bytes.clone())).collect();
        if refuse {
            assert_eq!(got, want, "deparsed after the refusal, checksum included");
        } else {
            assert_eq!(got, vec![(want[0].0, vec![])], "cached: the actions make the bytes");
        }
    }
}

#[test]
fn tracked_megaflows_cover_their_siblings_on_simple_router() {
    let Some(mut p) = simple_router() else { return };
    add_slash16(&mut p);
    let mut cached = 0;
    for (i, dst) in ["10.0.1.10", "10.0.0.10", "10.0.9.9", "10.1.0.1", "192.168.0.1"].iter().enumerate() {
        for ttl in [0u8, 1, 64] {
            let pkt = udp4("00:aa:bb:00:00:00", "00:00:00:00:00:01", "10.0.0.1", dst, ttl, b"abc");
            cached += check_tracking(&mut p, 1 + i as u32 % 2, &pkt, &[0x5a, 0xa5, 0x3c, 0xff, 0x00, 0x81]) as u32;
        }
    }
    assert!(cached > 10);
    // LPM reads only the prefix bits that decided (the prefix trie), not all 32 bits
    // of the /32 group it probed first.
    let mut t = Tracker::new(&p.ir);
    t.begin();
    let pkt = udp4("00:aa:bb:00:00:00", "00:00:00:00:00:01", "10.0.0.1", "10.0.9.9", 64, b"");
    p.it.run(&p.ir, &mut p.rt, &pkt, 1, &mut t);
    let dst = 14 + 16;
    assert_eq!(t.reads.packet_byte(dst), 0xff);
    assert_eq!(t.reads.packet_byte(dst + 1), 0xff);
    // 10.0.9.9 leaves the /32s' path (10.0.0.x and 10.0.1.x) at bit 20: 21 bits decide.
    assert_eq!(t.reads.packet_byte(dst + 2), 0xf8);
    assert_eq!(t.reads.packet_byte(dst + 3), 0);
    assert_eq!(t.reads.packet_byte(14 + 12), 0, "source address never read");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn tracking_invariant_on_random_packets(
        bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
        noise in proptest::collection::vec(proptest::num::u8::ANY, 1..16),
        port in 0u32..4, which in 0usize..3,
    ) {
        let prog = match which {
            0 => simple_router(),
            1 => basic(),
            _ => load("onos_mytunnel/mytunnel.json"),
        };
        let Some(mut p) = prog else { return Ok(()) };
        // Bias towards IPv4 so that tables are reached.
        let mut pkt = udp4("00:aa:bb:00:00:00", "00:00:00:00:00:01", "10.0.0.1", "10.0.1.10", 64, b"");
        for (i, b) in bytes.iter().enumerate() {
            if i % 3 == 0 { if let Some(x) = pkt.get_mut(i) { *x = *b; } } else if i >= pkt.len() { pkt.push(*b); }
        }
        pkt.truncate(bytes.len().max(10));
        check_tracking(&mut p, port, &pkt, &noise);
    }
}

const SWITCH_MAC: &str = "00:00:00:00:aa:01";
const NEXTHOP_MAC: &str = "00:00:00:00:00:fe";

/// fabric.p4 set up as fabric-p4test's IPv4 unicast test does (untagged in and out,
/// internal VLAN 100): ports 1 and 2 permitted, switch MAC classified as IPv4 unicast,
/// 10.0.2.0/24 -> next 100 -> routing_hashed(port 2, switch MAC, next-hop MAC).
pub(crate) fn fabric_router() -> Option<Prog> {
    let mut p = load("onos_fabric/fabric.json")?;
    let any = KeyValue::Ternary { value: 0, mask: 0 };
    for port in [1, 2] {
        p.add(
            "FabricIngress.filtering.ingress_port_vlan",
            vec![KeyValue::Exact(port), KeyValue::Exact(0), any],
            "FabricIngress.filtering.permit_with_internal_vlan",
            &[100, 1],
            10,
        );
        p.add(
            "FabricIngress.filtering.fwd_classifier",
            vec![
                KeyValue::Exact(port),
                KeyValue::Ternary { value: macv(SWITCH_MAC), mask: macv("ff:ff:ff:ff:ff:ff") },
                any,
                KeyValue::Exact(0x0800),
            ],
            "FabricIngress.filtering.set_forwarding_type",
            &[2],
            10,
        );
        p.add(
            "FabricEgress.egress_next.egress_vlan",
            vec![KeyValue::Exact(100), KeyValue::Exact(port)],
            "FabricEgress.egress_next.pop_vlan",
            &[],
            0,
        );
    }
    p.add(
        "FabricIngress.forwarding.routing_v4",
        vec![KeyValue::Lpm { value: ipv("10.0.2.0"), prefix: 24 }],
        "FabricIngress.forwarding.set_next_id_routing_v4",
        &[100],
        0,
    );
    let prof =
        p.ir.profile("FabricIngress.next.hashed_profile")
            .or_else(|| p.ir.profile("FabricIngress.next.hashed_selector"))
            .expect("fabric's selector");
    let rh = p.ir.actions.iter().position(|a| a.name == "FabricIngress.next.routing_hashed").unwrap() as ActionId;
    p.rt.set_member(&p.ir, prof, 1, Member { action: rh, args: vec![2, macv(SWITCH_MAC), macv(NEXTHOP_MAC)] }).unwrap();
    p.rt.set_group(&p.ir, prof, 100, vec![(1, 1, None)]).unwrap();
    let t = p.ir.table("FabricIngress.next.hashed").unwrap();
    p.rt.insert(
        &p.ir,
        t,
        Entry { key: vec![KeyValue::Exact(100)], priority: 0, action: EntryAction::Group(100), meta: None },
    )
    .unwrap();
    Some(p)
}

#[test]
fn fabric_routes_ipv4_unicast() {
    let Some(mut p) = fabric_router() else { return };
    let input = udp4(SWITCH_MAC, "00:00:00:00:00:01", "10.0.1.1", "10.0.2.1", 64, b"fabric");
    let out = p.run(1, &input);
    assert_eq!(out.len(), 1, "{:?}", p.drops());
    let (port, f) = &out[0];
    assert_eq!(*port, 2);
    assert_eq!(f[0..6], mac(NEXTHOP_MAC));
    assert_eq!(f[6..12], mac(SWITCH_MAC));
    assert_eq!(f[12..14], [0x08, 0x00], "untagged out");
    assert_eq!(f[22], 63);
    assert!(ipv4_ok(f));
    assert_eq!(f[34..], input[34..]);
    // Not to the switch MAC: bridged, and with no bridging entry, dropped.
    let other = udp4("00:00:00:00:00:99", "00:00:00:00:00:01", "10.0.1.1", "10.0.2.1", 64, b"");
    assert!(p.run(1, &other).is_empty());
    // An unknown port is denied by ingress_port_vlan.
    assert!(p.run(7, &input).is_empty());
}

#[test]
fn fabric_megaflows_hold() {
    let Some(mut p) = fabric_router() else { return };
    let mut cached = 0;
    for dst in ["10.0.2.1", "10.0.2.200", "10.0.3.1"] {
        for dmac in [SWITCH_MAC, "00:00:00:00:00:99"] {
            for port in [1, 2, 3] {
                let pkt = udp4(dmac, "00:00:00:00:00:01", "10.0.1.1", dst, 64, b"x");
                cached += check_tracking(&mut p, port, &pkt, &[0x5a, 0xa5, 0x3c, 0xff, 0x00, 0x81, 0x17]) as u32;
            }
        }
    }
    assert!(cached >= 12, "{cached}");
}
