//! Behaviour of Sluice's default program (`pipelines/sluice_default/`) on the engine:
//! every feature of the program, table entry by table entry, as the built-in app
//! programs it.
//!
//! Most tests start from [`topology`] (two access ports and one trunk in VLAN 10, one
//! access port in VLAN 20, flood groups per VLAN) and add what the feature needs.
//! Expected frames are built byte by byte here, with this file's own checksum and
//! CRC, never by running the program.

use std::net::Ipv6Addr;

use dpdk_sys::eal::Eal;

use super::compile::compile_bytes;
use super::engine_tests::{ip, ipv, mac, macv, Prog};
use super::interp::{DropCause, Interp};
use super::ir::*;
use super::meters::MeterConfig;
use super::ops::Op;
use super::tables::{Entry, EntryAction, Handle, Member, Runtime};
use crate::qos::Share;

/// The checked-in BMv2 JSON of the default program.
pub(crate) const JSON: &[u8] = include_bytes!("../../../pipelines/sluice_default/sluice_default.json");

pub(crate) fn default_program() -> Prog {
    let ir = compile_bytes(JSON).expect("the default program compiles");
    let rt = Runtime::new(&ir);
    let it = Interp::new(&ir);
    Prog { ir, rt, it }
}

// --- The standard topology.

/// The trunk: VLANs 10 and 20, tagged.
const TRUNK: u32 = 4;
/// The controller's port.
const CPU: u32 = 255;
/// Hosts: A on port 1 and B on port 2 (VLAN 10), C on port 3 (VLAN 20), D and E
/// behind the trunk (VLAN 10 and 20).
const A: &str = "00:00:00:00:0a:01";
const B: &str = "00:00:00:00:0a:02";
const C: &str = "00:00:00:00:14:03";
const D: &str = "00:00:00:00:0a:04";
const E: &str = "00:00:00:00:14:05";
/// The router's MAC, in both VLANs.
const RMAC: &str = "00:00:5e:00:01:01";

fn access(p: &mut Prog, port: u32, vlan: Value) {
    p.add("ingress.port_vlan", vec![KeyValue::Exact(port.into())], "ingress.access_port", &[vlan], 0);
    p.add("egress.egress_vlan", vec![KeyValue::Exact(port.into()), KeyValue::Exact(vlan)], "egress.untagged", &[], 0);
}

fn trunk(p: &mut Prog, port: u32, vlans: &[Value]) {
    for &vlan in vlans {
        let key = vec![KeyValue::Exact(port.into()), KeyValue::Exact(vlan)];
        p.add("ingress.trunk_vlan", key.clone(), "ingress.trunk_port", &[], 0);
        p.add("egress.egress_vlan", key, "egress.push_vlan", &[], 0);
    }
}

/// Ports 1 and 2 access VLAN 10, port 3 access VLAN 20, port 4 trunks both; one flood
/// group per VLAN (group id = VLAN id, replica id 0), as the built-in app sets it.
fn topology() -> Prog {
    let mut p = default_program();
    access(&mut p, 1, 10);
    access(&mut p, 2, 10);
    access(&mut p, 3, 20);
    trunk(&mut p, TRUNK, &[10, 20]);
    p.rt.mcast.insert(10, vec![(1, 0), (2, 0), (TRUNK, 0)]);
    p.rt.mcast.insert(20, vec![(3, 0), (TRUNK, 0)]);
    p
}

/// A MAC table entry: `mac` in `vlan` is on `port`.
fn l2(p: &mut Prog, vlan: Value, m: &str, port: u32) {
    p.add(
        "ingress.dmac",
        vec![KeyValue::Exact(vlan), KeyValue::Exact(macv(m))],
        "ingress.l2_forward",
        &[port.into()],
        0,
    );
}

/// What the control plane installs after a learning digest.
fn learned(p: &mut Prog, vlan: Value, m: &str, port: u32) {
    let key = vec![KeyValue::Exact(vlan), KeyValue::Exact(macv(m)), KeyValue::Exact(port.into())];
    p.add("ingress.mac_learning", key, "NoAction", &[], 0);
}

/// The learning digests of the last run: (VLAN, source MAC, ingress port) each.
fn digests(p: &Prog) -> Vec<Vec<Value>> {
    p.it.out
        .digests()
        .iter()
        .map(|d| {
            assert_eq!(p.ir.learn_lists[d.list as usize].name, "mac_learn_digest_t");
            d.values.clone()
        })
        .collect()
}

fn sorted(mut v: Vec<(u32, Vec<u8>)>) -> Vec<(u32, Vec<u8>)> {
    v.sort();
    v
}

// --- Frames.

fn eth(dst: &str, src: &str, ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = mac(dst).to_vec();
    p.extend_from_slice(&mac(src));
    p.extend_from_slice(&ether_type.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A minimum-size frame of a local experimental ether type (neither IP nor VLAN).
fn l2_frame(dst: &str, src: &str) -> Vec<u8> {
    eth(dst, src, 0x88b5, &[0x5a; 46])
}

/// `frame` with an 802.1Q tag (DEI 0) after the MACs.
fn tag(frame: &[u8], pcp: u8, vid: u16) -> Vec<u8> {
    let mut p = frame[..12].to_vec();
    p.extend_from_slice(&[0x81, 0x00, (pcp << 5) | (vid >> 8) as u8, vid as u8]);
    p.extend_from_slice(&frame[12..]);
    p
}

/// The Internet checksum (RFC 1071), computed here so as not to trust the engine's.
fn csum(data: &[u8]) -> u16 {
    let mut sum: u32 = data.chunks(2).map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 header (no options) with its checksum.
fn ipv4_header(total_len: usize, id: u16, ttl: u8, proto: u8, sip: &str, dip: &str) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&(total_len as u16).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&[0x40, 0x00, ttl, proto, 0, 0]); // DF
    h.extend_from_slice(&ip(sip));
    h.extend_from_slice(&ip(dip));
    let c = csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

fn udp_header(sport: u16, dport: u16, payload_len: usize, checksum: u16) -> Vec<u8> {
    let mut u = sport.to_be_bytes().to_vec();
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    u.extend_from_slice(&checksum.to_be_bytes());
    u
}

/// Ethernet + IPv4 + UDP (checksum 0) + payload.
#[allow(clippy::too_many_arguments)]
fn ipv4_udp(dst: &str, src: &str, sip: &str, dip: &str, ttl: u8, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = eth(dst, src, 0x0800, &ipv4_header(28 + payload.len(), 0x1234, ttl, 17, sip, dip));
    f.extend_from_slice(&udp_header(sport, dport, payload.len(), 0));
    f.extend_from_slice(payload);
    f
}

/// A UDP flow's frame from host A towards `dip` through the router.
fn to_router(dip: &str, ttl: u8) -> Vec<u8> {
    ipv4_udp(RMAC, A, "10.0.10.1", dip, ttl, 40000, 53, b"routed")
}

/// What the router sends for [`to_router`] through a next hop (untagged).
fn routed(nh_mac: &str, dip: &str, ttl: u8) -> Vec<u8> {
    ipv4_udp(nh_mac, RMAC, "10.0.10.1", dip, ttl, 40000, 53, b"routed")
}

fn ip6(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().unwrap().octets()
}

/// Ethernet + IPv6 + UDP (a checksum no hop changes) + payload.
fn ipv6_udp(dst: &str, src: &str, sip: &str, dip: &str, hop_limit: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&[17, hop_limit]);
    h.extend_from_slice(&ip6(sip));
    h.extend_from_slice(&ip6(dip));
    h.extend_from_slice(&udp_header(40000, 53, payload.len(), 0xabcd));
    h.extend_from_slice(payload);
    eth(dst, src, 0x86dd, &h)
}

// --- Routing.

fn nexthop_profile(p: &Prog) -> u32 {
    p.ir.profile("ingress.ecmp_selector").expect("the next hops' selector")
}

/// Selector member `id`: out of `port` in `vlan`, towards `dmac`, from the router MAC.
fn nexthop_member(p: &mut Prog, id: u32, port: u32, dmac: &str, vlan: Value) {
    let action = p.ir.actions.iter().position(|a| a.name == "ingress.set_nexthop").unwrap() as ActionId;
    let m = Member { action, args: vec![port.into(), macv(RMAC), macv(dmac), vlan] };
    let prof = nexthop_profile(p);
    p.rt.set_member(&p.ir, prof, id, m).unwrap();
}

/// Next hop id `nexthop` runs `action` (a member or a group).
fn nexthop(p: &mut Prog, nexthop: Value, action: EntryAction) {
    let t = p.ir.table("ingress.nexthop").unwrap();
    p.rt.insert(&p.ir, t, Entry { key: vec![KeyValue::Exact(nexthop)], priority: 0, action, meta: None }).unwrap();
}

fn route4(p: &mut Prog, prefix: &str, len: u32, nexthop: Value) {
    let key = vec![KeyValue::Lpm { value: ipv(prefix), prefix: len }];
    p.add("ingress.ipv4_route", key, "ingress.set_nexthop_id", &[nexthop], 0);
}

/// The topology plus the router: its MAC in VLANs 10 and 20; next hop 1 is C (port 3),
/// next hop 2 is E (behind the trunk, VLAN 20); 10.0.20.0/24 via 1, 10.0.0.0/16 via 2.
fn router() -> Prog {
    let mut p = topology();
    for vlan in [10, 20] {
        p.add(
            "ingress.router_mac",
            vec![KeyValue::Exact(vlan), KeyValue::Exact(macv(RMAC))],
            "ingress.set_routed",
            &[],
            0,
        );
    }
    nexthop_member(&mut p, 1, 3, C, 20);
    nexthop_member(&mut p, 2, TRUNK, E, 20);
    nexthop(&mut p, 1, EntryAction::Member(1));
    nexthop(&mut p, 2, EntryAction::Member(2));
    route4(&mut p, "10.0.20.0", 24, 1);
    route4(&mut p, "10.0.0.0", 16, 2);
    p
}

// --- ACL.

/// ACL key fields, in key order.
const ACL_PORT: usize = 0;
const ACL_SMAC: usize = 2;
const ACL_ETHER_TYPE: usize = 4;
const ACL_DIP: usize = 6;
const ACL_PROTO: usize = 7;
const ACL_DPORT: usize = 9;

/// An ACL entry: the given (field, value, mask) matches, everything else wildcarded.
fn acl(p: &mut Prog, matches: &[(usize, Value, Value)], action: &str, args: &[Value], priority: i32) -> Handle {
    let mut key = vec![KeyValue::Ternary { value: 0, mask: 0 }; 10];
    for &(i, value, mask) in matches {
        key[i] = KeyValue::Ternary { value, mask };
    }
    p.add("ingress.acl", key, action, args, priority)
}

// --- VXLAN.

/// The underlay port (untagged), our VTEP and MAC there, the remote VTEP and the
/// underlay next hop's MAC.
const UNDERLAY: u32 = 5;
const LOCAL_VTEP: &str = "192.0.2.1";
const REMOTE_VTEP: &str = "192.0.2.2";
const UNDERLAY_MAC: &str = "00:00:5e:00:02:01";
const UNDERLAY_NH: &str = "00:00:5e:00:02:fe";
/// VLAN 10's VNI, and the remote VTEP's tunnel id.
const VNI: u32 = 5010;
const TUNNEL: Value = 7;
/// A host behind the remote VTEP, in VLAN 10.
const R: &str = "00:00:00:00:0a:09";

/// VXLAN for VLAN 10: termination on the local VTEP, the remote VTEP as tunnel 7
/// (encapsulation and a replica in the flood group).
fn vxlan() -> Prog {
    let mut p = topology();
    let key = vec![KeyValue::Exact(ipv(LOCAL_VTEP)), KeyValue::Exact(VNI.into())];
    p.add("ingress.vxlan_term", key, "ingress.vxlan_decap", &[10], 0);
    let args = [VNI.into(), ipv(LOCAL_VTEP), ipv(REMOTE_VTEP), macv(UNDERLAY_MAC), macv(UNDERLAY_NH)];
    p.add("egress.tunnel_encap", vec![KeyValue::Exact(TUNNEL), KeyValue::Exact(10)], "egress.vxlan_encap", &args, 0);
    p.rt.mcast.get_mut(&10).unwrap().push((UNDERLAY, TUNNEL as u32));
    p
}

/// CRC-16/ARC (BMv2's `crc16`), computed here so as not to trust the engine's.
fn crc16_arc(data: &[u8]) -> u16 {
    let mut crc = 0u16;
    for b in data {
        crc ^= u16::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xa001 } else { crc >> 1 };
        }
    }
    crc
}

/// The UDP source port the program picks for `inner`: 49152 + crc16(inner MACs) mod 16384.
fn entropy_port(inner: &[u8]) -> u16 {
    49152 + crc16_arc(&inner[..12]) % 16384
}

/// `inner` in VXLAN (VNI `vni`) over IPv4 (DF, TTL 64, id 0) and UDP (checksum 0).
fn vxlan_packet(dst: &str, src: &str, sip: &str, dip: &str, sport: u16, vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut f = eth(dst, src, 0x0800, &ipv4_header(inner.len() + 36, 0, 64, 17, sip, dip));
    f.extend_from_slice(&udp_header(sport, 4789, inner.len() + 8, 0));
    f.extend_from_slice(&[0x08, 0, 0, 0]);
    f.extend_from_slice(&vni.to_be_bytes()[1..]);
    f.push(0);
    f.extend_from_slice(inner);
    f
}

/// What the remote VTEP sends us: `inner` towards our VTEP.
fn from_remote(inner: &[u8]) -> Vec<u8> {
    vxlan_packet(UNDERLAY_MAC, UNDERLAY_NH, REMOTE_VTEP, LOCAL_VTEP, 50000, VNI, inner)
}

/// What we send the remote VTEP for `inner`.
fn to_remote(inner: &[u8]) -> Vec<u8> {
    vxlan_packet(UNDERLAY_NH, UNDERLAY_MAC, LOCAL_VTEP, REMOTE_VTEP, entropy_port(inner), VNI, inner)
}

// --- Packet I/O.

/// The 2-byte packet_in / packet_out header: a 9-bit port and 7 bits of padding.
fn port_header(port: u32) -> [u8; 2] {
    ((port as u16) << 7).to_be_bytes()
}

fn counter(p: &Prog, name: &str, index: usize) -> (u64, u64) {
    let c = p.ir.counter(name).unwrap_or_else(|| panic!("no counter {name}"));
    p.rt.counters[c as usize][index]
}

fn tsc_hz() -> u64 {
    dpdk_sys::lcore::tsc_hz(Eal::for_tests("sluice-fastpath-test"))
}

// ---------------------------------------------------------------------------------------
// 0. The references this file trusts

#[test]
fn this_files_checksum_and_crc_give_the_known_answers() {
    // RFC 1071's sum on a real IPv4 header (checksum field zeroed): 0xb861.
    let header = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
        0x00, 0xc7,
    ];
    assert_eq!(csum(&header), 0xb861);
    // CRC-16/ARC's check value.
    assert_eq!(crc16_arc(b"123456789"), 0xbb3d);
}

#[test]
fn the_checked_in_artefacts_are_what_gen_py_generates() {
    let gen = concat!(env!("CARGO_MANIFEST_DIR"), "/../pipelines/sluice_default/gen.py");
    match std::process::Command::new("python3").arg(gen).arg("--check").output() {
        Ok(o) => assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => eprintln!("SKIP: python3 not runnable ({e}): gen.py --check not run"),
    }
}

// ---------------------------------------------------------------------------------------
// 1. Access bridging

#[test]
fn access_ports_bridge_known_macs_and_flood_unknown_ones() {
    let mut p = default_program();
    for port in [1, 2, 3] {
        p.add("ingress.port_vlan", vec![KeyValue::Exact(port)], "ingress.access_port", &[10], 0);
        p.add("egress.egress_vlan", vec![KeyValue::Exact(port), KeyValue::Exact(10)], "egress.untagged", &[], 0);
    }
    p.rt.mcast.insert(10, vec![(1, 0), (2, 0), (3, 0)]);
    let f = eth("00:00:00:00:00:02", "00:00:00:00:00:01", 0x88b5, &[0u8; 46]);
    let mut out = p.run(1, &f);
    out.sort();
    assert_eq!(out, vec![(2, f.clone()), (3, f.clone())], "{:?}", p.drops());
    assert_eq!(p.it.out.digests().len(), 1, "unknown source reported");
    p.add(
        "ingress.dmac",
        vec![KeyValue::Exact(10), KeyValue::Exact(macv("00:00:00:00:00:02"))],
        "ingress.l2_forward",
        &[2],
        0,
    );
    assert_eq!(p.run(1, &f), vec![(2, f.clone())]);
}

#[test]
fn unknown_destination_floods_the_vlan_but_never_the_ingress_port() {
    let mut p = topology();
    let f = l2_frame(B, A);
    assert_eq!(sorted(p.run(1, &f)), vec![(2, f.clone()), (TRUNK, tag(&f, 0, 10))], "{:?}", p.drops());
    let g = l2_frame(A, B);
    assert_eq!(sorted(p.run(2, &g)), vec![(1, g.clone()), (TRUNK, tag(&g, 0, 10))]);
    // The flood group holds the ingress port: its copy is dropped in egress.
    assert_eq!(p.drops(), vec![DropCause::Egress]);
}

#[test]
fn known_destination_is_sent_to_its_port_only() {
    let mut p = topology();
    l2(&mut p, 10, B, 2);
    let f = l2_frame(B, A);
    assert_eq!(p.run(1, &f), vec![(2, f)]);
    // The MAC table is per VLAN: B is unknown in VLAN 20 (flooded there).
    let g = l2_frame(B, C);
    assert_eq!(p.run(3, &g), vec![(TRUNK, tag(&g, 0, 20))]);
}

#[test]
fn unknown_source_is_reported_until_learned() {
    let mut p = topology();
    l2(&mut p, 10, B, 2);
    let f = l2_frame(B, A);
    p.run(1, &f);
    assert_eq!(digests(&p), vec![vec![10, macv(A), 1]]);
    // From the trunk: the tag's VLAN.
    p.run(TRUNK, &tag(&l2_frame(B, D), 0, 10));
    assert_eq!(digests(&p), vec![vec![10, macv(D), TRUNK.into()]]);
    learned(&mut p, 10, A, 1);
    assert_eq!(p.run(1, &f), vec![(2, f)]);
    assert_eq!(digests(&p), Vec::<Vec<Value>>::new(), "a learned source is not reported");
}

#[test]
fn a_mac_moving_to_another_port_is_reported_again() {
    let mut p = topology();
    learned(&mut p, 10, A, 1);
    l2(&mut p, 10, B, 2);
    p.run(1, &l2_frame(B, A));
    assert!(digests(&p).is_empty());
    // A shows up on port 2 (talking to D, behind the trunk).
    l2(&mut p, 10, D, TRUNK);
    let f = l2_frame(D, A);
    assert_eq!(p.run(2, &f), vec![(TRUNK, tag(&f, 0, 10))]);
    assert_eq!(digests(&p), vec![vec![10, macv(A), 2]], "the move is reported");
}

// ---------------------------------------------------------------------------------------
// 2. VLANs

#[test]
fn trunk_frames_leave_access_ports_untagged() {
    let mut p = topology();
    let f = l2_frame(B, D);
    let tagged = tag(&f, 0, 10);
    // Flooded: the tag popped on both access ports of VLAN 10, the ether type restored.
    assert_eq!(sorted(p.run(TRUNK, &tagged)), vec![(1, f.clone()), (2, f.clone())]);
    l2(&mut p, 10, B, 2);
    let out = p.run(TRUNK, &tagged);
    assert_eq!(out, vec![(2, f.clone())]);
    assert_eq!(out[0].1.len(), tagged.len() - 4);
    // IPv4 inside: unchanged but for the tag.
    let packet = ipv4_udp(B, D, "10.0.10.4", "10.0.10.2", 64, 1, 2, b"x");
    assert_eq!(p.run(TRUNK, &tag(&packet, 3, 10)), vec![(2, packet)]);
}

#[test]
fn access_frames_leave_the_trunk_tagged_with_their_vlan() {
    let mut p = topology();
    l2(&mut p, 10, D, TRUNK);
    l2(&mut p, 20, E, TRUNK);
    let f = l2_frame(D, A);
    let out = p.run(1, &f);
    assert_eq!(out, vec![(TRUNK, [&f[..12], &[0x81, 0x00, 0x00, 0x0a][..], &f[12..]].concat())]);
    let g = l2_frame(E, C);
    assert_eq!(p.run(3, &g), vec![(TRUNK, [&g[..12], &[0x81, 0x00, 0x00, 0x14][..], &g[12..]].concat())]);
}

#[test]
fn trunk_to_trunk_keeps_the_vlan_and_the_priority() {
    let mut p = topology();
    trunk(&mut p, 6, &[10]);
    l2(&mut p, 10, R, 6);
    let f = tag(&l2_frame(R, D), 5, 10);
    assert_eq!(f[14], 0xa0, "PCP 5, DEI 0, VLAN 10");
    assert_eq!(p.run(TRUNK, &f), vec![(6, f.clone())]);
}

#[test]
fn tagged_frames_in_a_vlan_the_port_does_not_trunk_are_dropped() {
    let mut p = topology();
    let f = tag(&l2_frame(B, D), 0, 30);
    assert!(p.run(TRUNK, &f).is_empty());
    assert_eq!(p.drops(), vec![DropCause::Ingress]);
    assert!(digests(&p).is_empty(), "not learned either");
}

#[test]
fn tagged_frames_on_access_ports_are_dropped() {
    let mut p = topology();
    l2(&mut p, 10, B, 2);
    // Even with the port's own VLAN in the tag.
    for vid in [10, 20] {
        assert!(p.run(1, &tag(&l2_frame(B, A), 0, vid)).is_empty());
        assert_eq!(p.drops(), vec![DropCause::Ingress]);
    }
    // A port with no VLAN at all drops untagged frames.
    assert!(p.run(7, &l2_frame(B, A)).is_empty());
    assert_eq!(p.drops(), vec![DropCause::Ingress]);
}

#[test]
fn flooding_never_crosses_vlans() {
    let mut p = topology();
    let ports = |out: Vec<(u32, Vec<u8>)>| sorted(out).into_iter().map(|(port, _)| port).collect::<Vec<_>>();
    assert_eq!(ports(p.run(1, &l2_frame("ff:ff:ff:ff:ff:ff", A))), vec![2, TRUNK]);
    assert_eq!(ports(p.run(TRUNK, &tag(&l2_frame("ff:ff:ff:ff:ff:ff", D), 0, 10))), vec![1, 2]);
    let f = l2_frame("ff:ff:ff:ff:ff:ff", C);
    assert_eq!(p.run(3, &f), vec![(TRUNK, tag(&f, 0, 20))]);
    let g = l2_frame("ff:ff:ff:ff:ff:ff", E);
    assert_eq!(p.run(TRUNK, &tag(&g, 0, 20)), vec![(3, g)]);
}

// ---------------------------------------------------------------------------------------
// 3. IPv4 routing

#[test]
fn routed_ipv4_gets_the_next_hops_macs_a_lower_ttl_and_a_valid_checksum() {
    let mut p = router();
    let input = to_router("10.0.20.3", 64);
    let out = p.run(1, &input);
    assert_eq!(out, vec![(3, routed(C, "10.0.20.3", 63))], "{:?}", p.drops());
    let f = &out[0].1;
    assert_eq!(f[22], 63);
    assert_eq!(csum(&f[14..34]), 0, "IPv4 checksum valid");
    assert_ne!(f[24..26], input[24..26], "and recomputed");
    assert_eq!(f[34..], input[34..], "UDP and payload untouched");
}

#[test]
fn routed_ipv4_is_tagged_when_the_egress_port_trunks_the_next_hops_vlan() {
    let mut p = router();
    assert_eq!(p.run(1, &to_router("10.0.99.9", 64)), vec![(TRUNK, tag(&routed(E, "10.0.99.9", 63), 0, 20))]);
    // In from the trunk in VLAN 10, out of it in VLAN 20 (router on a stick): no
    // hairpin drop for routed packets, and the ingress priority kept.
    let input = tag(&to_router("10.0.99.9", 9), 6, 10);
    assert_eq!(p.run(TRUNK, &input), vec![(TRUNK, tag(&routed(E, "10.0.99.9", 8), 6, 20))]);
}

#[test]
fn routed_traffic_reports_its_source_as_received() {
    let mut p = router();
    assert_eq!(p.run(1, &to_router("10.0.20.3", 64)), vec![(3, routed(C, "10.0.20.3", 63))]);
    // The digest holds the values at the call (v1model), not the next hop's rewrites.
    assert_eq!(digests(&p), vec![vec![10, macv(A), 1]]);
    learned(&mut p, 10, A, 1);
    p.run(1, &to_router("10.0.20.3", 64));
    assert!(digests(&p).is_empty());
}

#[test]
fn the_longest_matching_prefix_wins() {
    let mut p = router();
    // 10.0.20.0/24 (next hop 1, port 3) inside 10.0.0.0/16 (next hop 2, the trunk).
    assert_eq!(p.run(1, &to_router("10.0.20.200", 64)), vec![(3, routed(C, "10.0.20.200", 63))]);
    assert_eq!(p.run(1, &to_router("10.0.21.1", 64)), vec![(TRUNK, tag(&routed(E, "10.0.21.1", 63), 0, 20))]);
    route4(&mut p, "10.0.21.0", 24, 1);
    assert_eq!(p.run(1, &to_router("10.0.21.1", 64)), vec![(3, routed(C, "10.0.21.1", 63))]);
    route4(&mut p, "10.0.21.1", 32, 2);
    assert_eq!(p.run(1, &to_router("10.0.21.1", 64)), vec![(TRUNK, tag(&routed(E, "10.0.21.1", 63), 0, 20))]);
}

#[test]
fn ttl_one_or_zero_is_dropped_instead_of_routed() {
    let mut p = router();
    for ttl in [0, 1] {
        assert!(p.run(1, &to_router("10.0.20.3", ttl)).is_empty());
        assert_eq!(p.drops(), vec![DropCause::Ingress]);
    }
    assert_eq!(p.run(1, &to_router("10.0.20.3", 2)), vec![(3, routed(C, "10.0.20.3", 1))]);
}

#[test]
fn a_route_miss_is_dropped() {
    let mut p = router();
    assert!(p.run(1, &to_router("192.168.1.1", 64)).is_empty());
    assert_eq!(p.drops(), vec![DropCause::Ingress]);
}

#[test]
fn a_route_without_a_usable_next_hop_is_dropped() {
    let mut p = router();
    // Port 0 is a port like any other: a next hop miss leaves egress_spec at 0, and
    // must not send the packet there.
    access(&mut p, 0, 10);
    route4(&mut p, "10.0.40.0", 24, 99);
    assert!(p.run(1, &to_router("10.0.40.1", 64)).is_empty(), "no next hop 99: {:02x?}", p.it.out.packets());
    assert_eq!(p.drops(), vec![DropCause::Ingress]);
    // A group whose members' ports are all down picks no member.
    nexthop_member(&mut p, 3, 3, C, 20);
    let prof = nexthop_profile(&p);
    p.rt.set_group(&p.ir, prof, 1, vec![(3, 1, Some(3))]).unwrap();
    nexthop(&mut p, 10, EntryAction::Group(1));
    route4(&mut p, "10.0.30.0", 24, 10);
    assert_eq!(p.run(1, &to_router("10.0.30.1", 64)), vec![(3, routed(C, "10.0.30.1", 63))]);
    p.rt.set_port_down(3, true);
    assert!(p.run(1, &to_router("10.0.30.1", 64)).is_empty(), "port 3 down: {:02x?}", p.it.out.packets());
    assert_eq!(p.drops(), vec![DropCause::Ingress]);
}

#[test]
fn non_ip_to_the_router_mac_is_dropped() {
    let mut p = router();
    assert!(p.run(1, &l2_frame(RMAC, A)).is_empty());
    assert_eq!(p.drops(), vec![DropCause::Ingress]);
    // Not bridged either: the router MAC in the MAC table changes nothing.
    l2(&mut p, 10, RMAC, 2);
    assert!(p.run(1, &l2_frame(RMAC, A)).is_empty());
}

#[test]
fn the_router_mac_routes_only_in_its_vlans() {
    let mut p = router();
    let t = p.ir.table("ingress.router_mac").unwrap();
    p.rt.delete(&p.ir, t, vec![KeyValue::Exact(10), KeyValue::Exact(macv(RMAC))], 0).unwrap();
    // Bridged in VLAN 10 instead (flooded: RMAC is unknown there).
    let f = to_router("10.0.20.3", 64);
    assert_eq!(sorted(p.run(1, &f)), vec![(2, f.clone()), (TRUNK, tag(&f, 0, 10))]);
}

// ---------------------------------------------------------------------------------------
// 4. IPv6 routing

#[test]
fn routed_ipv6_gets_the_next_hops_macs_and_a_lower_hop_limit() {
    let mut p = router();
    let key = vec![KeyValue::Lpm { value: u128::from_be_bytes(ip6("2001:db8:20::")), prefix: 48 }];
    p.add("ingress.ipv6_route", key, "ingress.set_nexthop_id", &[1], 0);
    let (sip, dip) = ("2001:db8:10::1", "2001:db8:20::3");
    let out = p.run(1, &ipv6_udp(RMAC, A, sip, dip, 64, b"six"));
    assert_eq!(out, vec![(3, ipv6_udp(C, RMAC, sip, dip, 63, b"six"))], "{:?}", p.drops());
    assert_eq!(out[0].1[21], 63);
    assert!(p.run(1, &ipv6_udp(RMAC, A, sip, dip, 1, b"six")).is_empty(), "hop limit 1");
    assert_eq!(p.drops(), vec![DropCause::Ingress]);
    assert!(p.run(1, &ipv6_udp(RMAC, A, sip, "2001:db8:30::3", 64, b"six")).is_empty(), "route miss");
    assert_eq!(p.drops(), vec![DropCause::Ingress]);
}

// ---------------------------------------------------------------------------------------
// 5. ECMP

#[test]
fn ecmp_spreads_flows_over_the_group_and_keeps_each_flow_on_one_next_hop() {
    let mut p = router();
    nexthop_member(&mut p, 3, 3, C, 20);
    nexthop_member(&mut p, 4, TRUNK, E, 20);
    let prof = nexthop_profile(&p);
    p.rt.set_group(&p.ir, prof, 1, vec![(3, 1, None), (4, 1, None)]).unwrap();
    nexthop(&mut p, 10, EntryAction::Group(1));
    route4(&mut p, "10.0.30.0", 24, 10);
    let mut per_port = [0u32; 2];
    for i in 0..200u16 {
        let sip = format!("10.0.10.{}", 1 + i % 100);
        let sport = 1024 + i;
        let input = ipv4_udp(RMAC, A, &sip, "10.0.30.1", 64, sport, 443, b"flow");
        let out = p.run(1, &input);
        let via_c = ipv4_udp(C, RMAC, &sip, "10.0.30.1", 63, sport, 443, b"flow");
        let via_e = tag(&ipv4_udp(E, RMAC, &sip, "10.0.30.1", 63, sport, 443, b"flow"), 0, 20);
        match out.as_slice() {
            [(3, f)] => {
                assert_eq!(*f, via_c);
                per_port[0] += 1;
            }
            [(TRUNK, f)] => {
                assert_eq!(*f, via_e);
                per_port[1] += 1;
            }
            other => panic!("flow {i}: {other:02x?} {:?}", p.drops()),
        }
        for _ in 0..3 {
            assert_eq!(p.run(1, &input), out, "flow {i} stays on its next hop");
        }
    }
    assert!(per_port.iter().all(|n| *n >= 50), "each next hop gets at least 25%: {per_port:?}");
}

// ---------------------------------------------------------------------------------------
// 6. ACL

/// A DNS query from A to B (10.0.10.1 -> 10.0.10.2), and one to port 80.
fn dns(dport: u16) -> Vec<u8> {
    ipv4_udp(B, A, "10.0.10.1", "10.0.10.2", 64, 33000, dport, b"query")
}

#[test]
fn acl_deny_drops() {
    let mut p = topology();
    l2(&mut p, 10, B, 2);
    let m = [(ACL_DIP, ipv("10.0.10.2"), 0xffff_ffff), (ACL_PROTO, 17, 0xff), (ACL_DPORT, 53, 0xffff)];
    acl(&mut p, &m, "ingress.acl_deny", &[], 10);
    assert!(p.run(1, &dns(53)).is_empty());
    assert_eq!(p.drops(), vec![DropCause::Ingress]);
    assert!(digests(&p).is_empty(), "denied before learning");
    assert_eq!(p.run(1, &dns(80)), vec![(2, dns(80))], "other traffic passes");
}

#[test]
fn acl_punt_sends_the_frame_to_the_cpu_port_with_packet_in() {
    let mut p = topology();
    acl(&mut p, &[(ACL_ETHER_TYPE, 0x0806, 0xffff)], "ingress.acl_punt", &[], 10);
    let arp = eth("ff:ff:ff:ff:ff:ff", C, 0x0806, &[0x11; 46]);
    let out = p.run(3, &arp);
    // packet_in: ingress port 3 in 9 bits, then 7 bits of padding.
    assert_eq!(out, vec![(CPU, [&[0x01, 0x80][..], &arp[..]].concat())]);
    assert_eq!(port_header(3), [0x01, 0x80]);
    assert!(digests(&p).is_empty(), "punted before learning");
}

#[test]
fn a_frame_punted_from_a_trunk_reaches_the_controller_with_its_tag() {
    let mut p = topology();
    acl(&mut p, &[(ACL_ETHER_TYPE, 0x0806, 0xffff)], "ingress.acl_punt", &[], 10);
    let arp = tag(&eth("ff:ff:ff:ff:ff:ff", C, 0x0806, &[0x11; 46]), 5, 20);
    assert_eq!(p.run(TRUNK, &arp), vec![(CPU, [&port_header(TRUNK)[..], &arp[..]].concat())]);
}

#[test]
fn ipv4_with_options_is_neither_parsed_to_l4_nor_routed() {
    let mut p = router();
    let mut input = to_router("10.0.20.3", 64);
    // IHL 6: four bytes of options (NOPs) after the address fields.
    input[14] = 0x46;
    input.splice(34..34, [1u8, 1, 1, 1]);
    assert_eq!(p.run(1, &input), vec![]);
}

#[test]
fn acl_mirror_clones_the_frame_as_received_and_forwards_it() {
    let mut p = topology();
    l2(&mut p, 10, B, 2);
    p.rt.clone_sessions.insert(100, (vec![(6, 0)], 0));
    acl(&mut p, &[(ACL_PORT, TRUNK.into(), 0x1ff)], "ingress.acl_mirror", &[100], 10);
    let f = l2_frame(B, D);
    let tagged = tag(&f, 2, 10);
    assert_eq!(sorted(p.run(TRUNK, &tagged)), vec![(2, f), (6, tagged.clone())]);
    let copy = p.it.out.packets().iter().find(|o| o.port == 6).unwrap();
    assert_eq!(copy.instance, instance::INGRESS_CLONE);
    assert_eq!(digests(&p), vec![vec![10, macv(D), TRUNK.into()]], "and learned");
    // Routed traffic is mirrored as received too.
    let mut p = router();
    p.rt.clone_sessions.insert(100, (vec![(6, 0)], 0));
    acl(&mut p, &[(ACL_PORT, 1, 0x1ff)], "ingress.acl_mirror", &[100], 10);
    let input = to_router("10.0.20.3", 64);
    assert_eq!(sorted(p.run(1, &input)), vec![(3, routed(C, "10.0.20.3", 63)), (6, input)]);
}

#[test]
fn acl_permit_forwards_as_without_the_acl() {
    let mut p = topology();
    l2(&mut p, 10, B, 2);
    acl(&mut p, &[(ACL_SMAC, macv(A), macv("ff:ff:ff:ff:ff:ff"))], "ingress.acl_permit", &[], 10);
    assert_eq!(p.run(1, &dns(53)), vec![(2, dns(53))]);
    assert_eq!(digests(&p), vec![vec![10, macv(A), 1]]);
}

#[test]
fn the_acl_entry_with_the_higher_priority_wins() {
    let mut p = topology();
    l2(&mut p, 10, A, 1);
    l2(&mut p, 10, B, 2);
    acl(&mut p, &[], "ingress.acl_deny", &[], 10);
    acl(&mut p, &[(ACL_SMAC, macv(A), macv("ff:ff:ff:ff:ff:ff"))], "ingress.acl_permit", &[], 20);
    assert_eq!(p.run(1, &dns(53)), vec![(2, dns(53))], "permit 20 over deny 10");
    assert!(p.run(2, &l2_frame(A, B)).is_empty(), "B only matches the deny");
    acl(&mut p, &[(ACL_DPORT, 53, 0xffff)], "ingress.acl_deny", &[], 30);
    assert!(p.run(1, &dns(53)).is_empty(), "deny 30 over permit 20");
    assert_eq!(p.run(1, &dns(80)), vec![(2, dns(80))]);
}

// ---------------------------------------------------------------------------------------
// 7. VXLAN

#[test]
fn vxlan_from_the_local_vtep_is_decapsulated_and_bridged_in_its_vlan() {
    let mut p = vxlan();
    l2(&mut p, 10, B, 2);
    let inner = l2_frame(B, R);
    assert_eq!(p.run(UNDERLAY, &from_remote(&inner)), vec![(2, inner.clone())], "{:?}", p.drops());
    // Towards the trunk: tagged like any frame of the VLAN.
    l2(&mut p, 10, D, TRUNK);
    let inner = ipv4_udp(D, R, "10.0.10.9", "10.0.10.4", 64, 7, 8, b"in");
    assert_eq!(p.run(UNDERLAY, &from_remote(&inner)), vec![(TRUNK, tag(&inner, 0, 10))]);
    // Another VNI, or another VTEP address: not terminated, just bridged as UDP (here:
    // the underlay port has no VLAN, so dropped).
    let other = vxlan_packet(UNDERLAY_MAC, UNDERLAY_NH, REMOTE_VTEP, LOCAL_VTEP, 50000, VNI + 1, &inner);
    assert!(p.run(UNDERLAY, &other).is_empty());
    let other = vxlan_packet(UNDERLAY_MAC, UNDERLAY_NH, REMOTE_VTEP, "192.0.2.99", 50000, VNI, &inner);
    assert!(p.run(UNDERLAY, &other).is_empty());
}

#[test]
fn vxlan_from_a_tagged_underlay_is_decapsulated_without_the_outer_tag() {
    let mut p = vxlan();
    l2(&mut p, 10, B, 2);
    let inner = l2_frame(B, R);
    let outer = tag(&from_remote(&inner), 0, 100);
    assert_eq!(p.run(UNDERLAY, &outer), vec![(2, inner)], "{:?}", p.drops());
}

#[test]
fn frames_to_a_remote_mac_are_encapsulated_towards_its_vtep() {
    let mut p = vxlan();
    p.add(
        "ingress.dmac",
        vec![KeyValue::Exact(10), KeyValue::Exact(macv(R))],
        "ingress.l2_tunnel",
        &[UNDERLAY.into(), TUNNEL],
        0,
    );
    let inner = l2_frame(R, A);
    let out = p.run(1, &inner);
    assert_eq!(out, vec![(UNDERLAY, to_remote(&inner))], "{:?}", p.drops());
    // Every outer byte, spelled out.
    let f = &out[0].1;
    let n = inner.len();
    assert_eq!(f.len(), 50 + n);
    assert_eq!(f[0..12], [mac(UNDERLAY_NH), mac(UNDERLAY_MAC)].concat()[..]);
    assert_eq!(f[12..14], [0x08, 0x00]);
    assert_eq!(f[14..16], [0x45, 0x00]);
    assert_eq!(usize::from(u16::from_be_bytes([f[16], f[17]])), n + 36, "IPv4 total length");
    assert_eq!(f[18..22], [0, 0, 0x40, 0], "id 0, DF");
    assert_eq!(f[22..24], [64, 17], "TTL 64, UDP");
    assert_eq!(csum(&f[14..34]), 0, "IPv4 checksum valid");
    assert_eq!(f[26..34], [ip(LOCAL_VTEP), ip(REMOTE_VTEP)].concat()[..]);
    let sport = u16::from_be_bytes([f[34], f[35]]);
    assert!(sport >= 49152, "source port {sport} in the dynamic range");
    assert_eq!(sport, entropy_port(&inner));
    assert_eq!(f[36..38], 4789u16.to_be_bytes());
    assert_eq!(usize::from(u16::from_be_bytes([f[38], f[39]])), n + 16, "UDP length");
    assert_eq!(f[40..42], [0, 0], "no UDP checksum");
    assert_eq!(f[42..50], [0x08, 0, 0, 0, 0x00, 0x13, 0x92, 0], "flags I, VNI 5010");
    assert_eq!(f[50..], inner[..]);
    // From the trunk: the inner frame is the frame without its tag, and the lengths
    // count it without the tag.
    let tagged = tag(&l2_frame(R, D), 3, 10);
    assert_eq!(p.run(TRUNK, &tagged), vec![(UNDERLAY, to_remote(&l2_frame(R, D)))]);
}

/// Through the megaflow cache. The outer IPv4 total length, its checksum and the UDP
/// length are computed per packet (length fields of the megaflow's edit), so one
/// megaflow encapsulates frames of every length; from the trunk, lengths count the
/// frame without its tag.
#[test]
fn one_megaflow_encapsulates_frames_of_every_length() {
    use crate::cache::datapath::{Datapath, Path};
    use crate::cache::{CacheConfig, CacheStats, FlowCache};
    use std::sync::Arc;
    let tunnel = |p: &mut Prog| {
        let key = vec![KeyValue::Exact(10), KeyValue::Exact(macv(R))];
        p.add("ingress.dmac", key, "ingress.l2_tunnel", &[UNDERLAY.into(), TUNNEL], 0);
        // Learned sources: no digest, so the flows are cached.
        learned(p, 10, A, 1);
        learned(p, 10, D, TRUNK);
    };
    let (mut p, mut reference) = (vxlan(), vxlan());
    tunnel(&mut p);
    tunnel(&mut reference);
    let cache = FlowCache::new(CacheConfig::default(), 0, Arc::new(CacheStats::default()), None);
    let mut dp = Datapath::new(Arc::new(p.ir), p.rt, cache);
    for (i, n) in [46usize, 0, 1, 47, 1486, 9000, 3].into_iter().enumerate() {
        let inner = eth(R, A, 0x88b5, &vec![0x5a; n]);
        let o = dp.process(1, &inner);
        assert_eq!(o.path, if i == 0 { Path::Installed } else { Path::Hit }, "{n} bytes of payload");
        assert_eq!(o.outputs, vec![(UNDERLAY, to_remote(&inner))], "{n} bytes of payload");
        assert_eq!(o.outputs, reference.run(1, &inner));
    }
    assert_eq!(dp.cache.len(), 1, "one megaflow for every length");
    let flow = dp.cache.iter().next().expect("the megaflow").2;
    let edit = &flow.actions.outputs[0].edit;
    // Total length at byte 16 (inner + 36), UDP length at byte 38 (inner + 16).
    let lens: Vec<(u32, i32)> = edit.len_patches.iter().map(|l| (l.bit / 8, l.off)).collect();
    assert_eq!(lens, [(16, 36), (38, 16)]);
    for n in [100usize, 7] {
        let tagged = tag(&eth(R, D, 0x88b5, &vec![1; n]), 3, 10);
        let want = vec![(UNDERLAY, to_remote(&eth(R, D, 0x88b5, &vec![1; n])))];
        assert_eq!(dp.process(TRUNK, &tagged).outputs, want, "{n} bytes from the trunk");
    }
    assert_eq!(dp.cache.len(), 2);
}

#[test]
fn flooding_sends_an_encapsulated_copy_to_each_remote_vtep() {
    let mut p = vxlan();
    let f = l2_frame("ff:ff:ff:ff:ff:ff", A);
    assert_eq!(sorted(p.run(1, &f)), vec![(2, f.clone()), (TRUNK, tag(&f, 0, 10)), (UNDERLAY, to_remote(&f))]);
    // VLAN 20 has no tunnel.
    let g = l2_frame("ff:ff:ff:ff:ff:ff", C);
    assert_eq!(p.run(3, &g), vec![(TRUNK, tag(&g, 0, 20))]);
}

#[test]
fn decapsulated_frames_never_enter_a_tunnel_again() {
    let mut p = vxlan();
    // Flooded: local ports only.
    let inner = l2_frame("ff:ff:ff:ff:ff:ff", R);
    let out = p.run(UNDERLAY, &from_remote(&inner));
    assert_eq!(sorted(out), vec![(1, inner.clone()), (2, inner.clone()), (TRUNK, tag(&inner, 0, 10))]);
    assert_eq!(p.drops(), vec![DropCause::Egress], "the tunnel replica");
    assert!(digests(&p).is_empty(), "remote MACs are not learned from the data plane");
    // Towards a MAC behind a tunnel: dropped.
    p.add(
        "ingress.dmac",
        vec![KeyValue::Exact(10), KeyValue::Exact(macv(B))],
        "ingress.l2_tunnel",
        &[UNDERLAY.into(), TUNNEL],
        0,
    );
    assert!(p.run(UNDERLAY, &from_remote(&l2_frame(B, R))).is_empty());
    assert_eq!(p.drops(), vec![DropCause::Egress]);
}

// ---------------------------------------------------------------------------------------
// 8. Packet-out

#[test]
fn packet_out_leaves_the_named_port_as_it_is() {
    let mut p = topology();
    let f = l2_frame(B, A);
    assert_eq!(port_header(TRUNK), [0x02, 0x00]);
    // Untagged out of the trunk: no tag pushed.
    assert_eq!(p.run(CPU, &[&port_header(TRUNK)[..], &f[..]].concat()), vec![(TRUNK, f.clone())]);
    assert!(digests(&p).is_empty(), "not learned");
    // Tagged out of an access port: not popped; no VLAN check, no hairpin check.
    let tagged = tag(&f, 0, 20);
    assert_eq!(p.run(CPU, &[&port_header(1)[..], &tagged[..]].concat()), vec![(1, tagged)]);
    // An IPv4 packet, to a port with no VLAN at all.
    let packet = ipv4_udp(B, A, "10.0.10.1", "10.0.10.2", 1, 5, 6, b"out");
    assert_eq!(p.run(CPU, &[&port_header(9)[..], &packet[..]].concat()), vec![(9, packet)]);
    assert!(digests(&p).is_empty());
    assert_eq!(counter(&p, "ingress.port_rx", CPU as usize), (0, 0), "not counted as received");
}

// ---------------------------------------------------------------------------------------
// 9. Counters

#[test]
fn port_and_vlan_counters_count_packets_and_bytes() {
    let mut p = topology();
    let f = l2_frame(B, A);
    p.run(1, &f); // flooded to 2 and the trunk
    l2(&mut p, 10, B, 2);
    let g = dns(53);
    p.run(1, &g); // to 2
    let e = l2_frame(E, C);
    p.run(3, &e); // VLAN 20: flooded to the trunk
    let (nf, ng, ne) = (f.len() as u64, g.len() as u64, e.len() as u64);
    assert_eq!(counter(&p, "ingress.port_rx", 1), (2, nf + ng));
    assert_eq!(counter(&p, "ingress.port_rx", 3), (1, ne));
    assert_eq!(counter(&p, "ingress.vlan_rx", 10), (2, nf + ng));
    assert_eq!(counter(&p, "ingress.vlan_rx", 20), (1, ne));
    // v1model counts the length as received (BMv2's ingress length): the trunk's copies
    // count without their tag.
    assert_eq!(counter(&p, "egress.port_tx", 2), (2, nf + ng));
    assert_eq!(counter(&p, "egress.port_tx", TRUNK as usize), (2, nf + ne));
    assert_eq!(counter(&p, "egress.port_tx", 1), (0, 0), "the hairpin copy is not sent");
    assert_eq!(counter(&p, "egress.vlan_tx", 10), (3, 2 * nf + ng));
    assert_eq!(counter(&p, "egress.vlan_tx", 20), (1, ne));
    assert_eq!(counter(&p, "ingress.port_rx", 2), (0, 0));
}

#[test]
fn the_acl_direct_counter_counts_hits_per_entry() {
    let mut p = topology();
    l2(&mut p, 10, B, 2);
    let permit = acl(&mut p, &[(ACL_PORT, 1, 0x1ff)], "ingress.acl_permit", &[], 10);
    let deny = acl(&mut p, &[(ACL_DPORT, 53, 0xffff)], "ingress.acl_deny", &[], 20);
    p.run(1, &dns(80));
    p.run(1, &dns(80));
    p.run(1, &dns(53));
    p.run(2, &l2_frame(A, B)); // no entry: the default permits, uncounted
    let t = &p.rt.tables[p.ir.table("ingress.acl").unwrap() as usize];
    let n = dns(80).len() as u64;
    assert_eq!(t.direct_counters[permit as usize], (2, 2 * n));
    assert_eq!(t.direct_counters[deny as usize], (1, n));
}

// ---------------------------------------------------------------------------------------
// 10. Policing

#[test]
fn port_policing_drops_red_packets_beyond_the_burst() {
    let hz = tsc_hz();
    let mut p = topology();
    l2(&mut p, 10, B, 2);
    l2(&mut p, 10, A, 1);
    p.add("ingress.port_policing", vec![KeyValue::Exact(1)], "ingress.police", &[], 0);
    p.rt.set_meter_share(Share::WHOLE, &p.ir).unwrap();
    let meter = p.ir.meter("ingress.port_policer").unwrap();
    // 1000 bytes/s with 300-byte bursts: three 100-byte packets at once, no more.
    let cfg = MeterConfig { cir: 1000, cburst: 300, pir: 1000, pburst: 300 };
    for port in [1, 2] {
        p.rt.apply(&p.ir, &Op::SetMeter { meter, index: Some(port), config: Some(cfg) }).unwrap();
    }
    let now = dpdk_sys::lcore::rdtsc();
    p.it.now = now;
    let f = eth(B, A, 0x88b5, &[0; 86]);
    assert_eq!(f.len(), 100);
    for i in 0..3 {
        assert_eq!(p.run(1, &f), vec![(2, f.clone())], "packet {i}: within the burst");
    }
    assert!(p.run(1, &f).is_empty(), "beyond the burst: RED");
    assert_eq!(p.drops(), vec![DropCause::Ingress]);
    assert!(digests(&p).is_empty(), "dropped before anything else");
    // A second later the buckets hold 300 bytes again (capped at the burst).
    p.it.now = now + hz;
    for _ in 0..3 {
        assert_eq!(p.run(1, &f), vec![(2, f.clone())]);
    }
    assert!(p.run(1, &f).is_empty());
    // Port 2 has a configured cell but no policing entry: never metered.
    let g = eth(A, B, 0x88b5, &[0; 86]);
    for _ in 0..20 {
        assert_eq!(p.run(2, &g), vec![(1, g.clone())]);
    }
    let cells = &p.rt.meters[meter as usize];
    let counts = |port: usize| cells[port].as_ref().unwrap().counts;
    assert_eq!(counts(1).map(|(pk, _)| pk), [6, 0, 2], "port 1: green, yellow, red");
    assert_eq!(counts(2), [(0, 0); 3], "port 2's cell never checked");
}
