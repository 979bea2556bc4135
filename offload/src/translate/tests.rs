//! Translation of hand-built megaflows: exact items, spec/mask bytes and actions,
//! every rule accepted by DPDK's `rte_flow_conv`, and every refusal.
#![allow(clippy::single_range_in_vec_init)] // byte ranges of a packet

use super::*;
use crate::test_util::{actions, in_place};
use dpdk_sys::flow::conv;
use sluice_fastpath::cache::actions::Output;
use sluice_fastpath::p4::interp::DropCause;
use sluice_fastpath::p4::track::{Edit, LenPatch};

const P1: PortInfo = PortInfo { p4: 1, dpdk: 10, rx_queues: 1 };
const P2: PortInfo = PortInfo { p4: 2, dpdk: 11, rx_queues: 4 };
const PORTS: [PortInfo; 2] = [P1, P2];

fn csum(h: &[u8]) -> u16 {
    let mut s: u32 = h.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]]) as u32).sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Ethernet (optionally one VLAN) + IPv4 + `l4` (protocol, header bytes).
fn v4(vlan: Option<u16>, ttl: u8, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0, 0, 0, 0, 0, 0xaa, 0, 0, 0, 0, 0, 0xbb];
    if let Some(tci) = vlan {
        p.extend_from_slice(&[0x81, 0x00]);
        p.extend_from_slice(&tci.to_be_bytes());
    }
    p.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + l4.len()) as u16;
    let mut ip =
        vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, ttl, proto, 0, 0, 10, 0, 0, 1, 10, 0, 1, 10];
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&ip);
    p.extend_from_slice(l4);
    p
}

fn udp(sport: u16, dport: u16, rest: &[u8]) -> Vec<u8> {
    let mut u = sport.to_be_bytes().to_vec();
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + rest.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(rest);
    u
}

/// Ethernet/IPv4/UDP 4789/VXLAN (VNI 0x1234) around an Ethernet/IPv4 frame to
/// de:ad:00:00:00:01 (inner Ethernet at 50).
fn vxlan() -> Vec<u8> {
    let mut inner = vec![0xde, 0xad, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0x08, 0x00];
    inner.extend_from_slice(&[0u8; 20]);
    let mut vx = vec![0x08, 0, 0, 0, 0, 0x12, 0x34, 0];
    vx.extend_from_slice(&inner);
    v4(None, 64, 17, &udp(999, VXLAN_PORT, &vx))
}

/// A megaflow matching `ranges` (packet offsets, all bits) of `pkt` and, if given,
/// the ingress port.
struct Flow {
    mask: Mask,
    key: Vec<u64>,
    min_len: u32,
    actions: Actions,
}

impl Flow {
    fn new(pkt: &[u8], port: Option<u32>, ranges: &[std::ops::Range<usize>], actions: Actions) -> Flow {
        let mut m = [0u8; KEY_BYTES];
        if port.is_some() {
            m[0] = 0xff;
            m[1] = 0xff;
        }
        for r in ranges {
            for i in r.clone() {
                m[KEY_PACKET_OFFSET + i] = 0xff;
            }
        }
        Flow::with_mask(pkt, port.unwrap_or(0), m, actions)
    }

    fn with_mask(pkt: &[u8], port: u32, m: [u8; KEY_BYTES], actions: Actions) -> Flow {
        let mask = Mask::from_bytes(&m);
        let view = sluice_fastpath::cache::key::PacketView::new(port, pkt);
        let key = mask.idx.iter().zip(mask.bits.iter()).map(|(i, b)| view.word(*i as usize) & b).collect();
        let last = m[KEY_PACKET_OFFSET..].iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
        Flow { mask, key, min_len: last as u32, actions }
    }

    fn r(&self) -> MegaflowRef<'_> {
        MegaflowRef { mask: &self.mask, key: &self.key, min_len: self.min_len, actions: &self.actions }
    }
}

fn item(kind: ItemKind, spec: &[(usize, &[u8])], flag: Option<bool>) -> Item {
    let mut it = Item::any(kind);
    for (at, b) in spec {
        it.spec[*at..*at + b.len()].copy_from_slice(b);
        it.mask[*at..*at + b.len()].fill(0xff);
    }
    it.flag = flag;
    it
}

/// Both rules of every port are understood by DPDK as given.
fn dpdk_accepts(t: &Translation) {
    for p in &t.in_ports {
        let r = t.partial_rule(p, 77);
        assert_eq!(conv(&r).unwrap(), r);
        if let Ok(r) = t.full_rule(p, None) {
            assert_eq!(conv(&r).unwrap(), r);
        }
    }
}

#[test]
fn a_routed_flow_is_eth_ipv4_with_exact_bytes_and_full_actions() {
    let pkt = v4(None, 64, 17, &udp(1000, 53, b"payload"));
    // The router read the EtherType, the TTL and the destination; it rewrites both
    // MACs, decrements the TTL and recomputes the checksum.
    let mut patches: Vec<(u32, u8)> = (0..6).map(|i| (i, 0x02)).collect();
    patches.extend((6..12).map(|i| (i, 0x04)));
    patches.push((22, 63));
    let f =
        Flow::new(&pkt, Some(1), &[12..14, 22..23, 30..34], actions(vec![in_place(2, 34, &patches, Some(14))], vec![]));
    let t = translate(&f.r(), &PORTS).unwrap();
    assert_eq!(t.in_ports, vec![P1]);
    assert_eq!(t.pattern_len, 34);
    assert_eq!(
        t.pattern,
        vec![
            item(ItemKind::Eth, &[(12, &[0x08, 0x00])], Some(false)),
            // IHL 5: the NIC's checksum covers the options, the program's does not.
            item(ItemKind::Ipv4, &[(0, &[0x45]), (8, &[64]), (16, &[10, 0, 1, 10])], None),
        ]
    );
    let partial = t.partial_rule(&P1, 5);
    assert_eq!(partial.actions, vec![Action::Mark(5), Action::Queue(0)]);
    assert!(partial.attr.ingress && !partial.attr.transfer);
    let full = t.full_rule(&P1, None).unwrap();
    assert!(full.attr.transfer);
    assert_eq!(full.pattern[0], Item::represented_port(10));
    assert_eq!(
        full.actions,
        vec![
            Action::SetMacDst([2; 6]),
            Action::SetMacSrc([4; 6]),
            Action::DecTtl,
            Action::Count,
            Action::RepresentedPort(11)
        ]
    );
    dpdk_accepts(&t);
    // A megaflow that read IHL 6 keeps its partial rule but has no full one.
    let mut with_options = pkt.clone();
    with_options[14] = 0x46;
    let f = Flow::new(
        &with_options,
        Some(1),
        &[12..15, 22..23, 30..34],
        actions(vec![in_place(2, 34, &patches, Some(14))], vec![]),
    );
    let t = translate(&f.r(), &PORTS).unwrap();
    assert_eq!(t.full, Err(Refusal::Checksum { offset: 14 }));
    assert_eq!(t.pattern[1], item(ItemKind::Ipv4, &[(0, &[0x46]), (8, &[64]), (16, &[10, 0, 1, 10])], None));
}

#[test]
fn an_l4_match_pins_the_ipv4_header_length_and_adds_the_l4_item() {
    let pkt = v4(None, 64, 6, &[0x12, 0x34, 0x00, 0x50, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0, 0, 0, 0, 0, 0, 0]);
    let f = Flow::new(&pkt, None, &[12..14, 23..24, 36..38], actions(vec![], vec![DropCause::Ingress]));
    let t = translate(&f.r(), &PORTS).unwrap();
    assert_eq!(t.in_ports, PORTS.to_vec(), "the port is not read: every port");
    assert_eq!(
        t.pattern,
        vec![
            item(ItemKind::Eth, &[(12, &[0x08, 0x00])], Some(false)),
            item(ItemKind::Ipv4, &[(0, &[0x45]), (9, &[6])], None),
            item(ItemKind::Tcp, &[(2, &[0x00, 0x50])], None),
        ]
    );
    // A dropping megaflow: count and drop in hardware.
    assert_eq!(t.full_rule(&P2, None).unwrap().actions, vec![Action::Count, Action::Drop]);
    assert_eq!(t.partial_rule(&P2, 9).actions, vec![Action::Mark(9), Action::Rss(vec![0, 1, 2, 3])]);
    dpdk_accepts(&t);
    // IPv4 options the match saw (IHL 6) cannot be matched the NIC's way.
    let mut with_options = pkt.clone();
    with_options[14] = 0x46;
    let f = Flow::new(&with_options, None, &[12..15, 23..24, 36..38], actions(vec![], vec![]));
    assert_eq!(translate(&f.r(), &PORTS).unwrap_err(), Refusal::OutsideHeaders { offset: 34 });
}

#[test]
fn a_minimum_length_extends_the_pattern_with_wildcard_headers() {
    // The parser consumed Ethernet + IPv4 + UDP but matched only the EtherType and
    // the protocol.
    let pkt = v4(None, 64, 17, &udp(1, 2, b""));
    let mut f = Flow::new(&pkt, None, &[12..14, 23..24], actions(vec![], vec![]));
    f.min_len = 42;
    let t = translate(&f.r(), &PORTS).unwrap();
    let kinds: Vec<ItemKind> = t.pattern.iter().map(|i| i.kind).collect();
    assert_eq!(kinds, [ItemKind::Eth, ItemKind::Ipv4, ItemKind::Udp]);
    assert!(t.pattern[2].is_wildcard());
    assert_eq!(t.pattern_len, 42);
    // Beyond what the walk knows, full offload is refused; partial stays possible
    // (the worker checks the length of marked packets).
    f.min_len = 60;
    let t = translate(&f.r(), &PORTS).unwrap();
    assert_eq!(t.full, Err(Refusal::ShortPattern { pattern: 42, min_len: 60 }));
    dpdk_accepts(&t);
}

#[test]
fn vlan_ipv6_udp_and_vxlan_stacks() {
    // 802.1Q + IPv6 + UDP.
    let mut p = vec![0u8; 12];
    p.extend_from_slice(&[0x81, 0x00, 0x00, 0x64, 0x86, 0xdd]);
    let mut ip6 = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
    ip6.extend_from_slice(&[0x20; 16]);
    ip6.extend_from_slice(&[0x30; 16]);
    p.extend_from_slice(&ip6);
    p.extend_from_slice(&udp(5, 6, b""));
    let f = Flow::new(&p, Some(2), &[12..18, 24..25, 42..58, 60..62], actions(vec![], vec![]));
    let t = translate(&f.r(), &PORTS).unwrap();
    assert_eq!(t.in_ports, vec![P2]);
    assert_eq!(
        t.pattern,
        vec![
            item(ItemKind::Eth, &[(12, &[0x81, 0x00])], Some(true)),
            item(ItemKind::Vlan, &[(0, &[0x00, 0x64, 0x86, 0xdd])], Some(false)),
            item(ItemKind::Ipv6, &[(6, &[17]), (24, &[0x30; 16])], None),
            item(ItemKind::Udp, &[(2, &[0, 6])], None),
        ]
    );
    dpdk_accepts(&t);

    // VXLAN: outer Ethernet/IPv4/UDP 4789, VNI, inner Ethernet destination.
    let outer = vxlan();
    let f = Flow::new(&outer, None, &[12..14, 23..24, 36..38, 46..49, 50..56], actions(vec![], vec![]));
    let t = translate(&f.r(), &PORTS).unwrap();
    let kinds: Vec<ItemKind> = t.pattern.iter().map(|i| i.kind).collect();
    assert_eq!(kinds, [ItemKind::Eth, ItemKind::Ipv4, ItemKind::Udp, ItemKind::Vxlan, ItemKind::Eth]);
    assert_eq!(t.pattern[3], item(ItemKind::Vxlan, &[(4, &[0x00, 0x12, 0x34])], None));
    assert_eq!(t.pattern[4], item(ItemKind::Eth, &[(0, &[0xde, 0xad, 0, 0, 0, 1])], None));
    dpdk_accepts(&t);
}

#[test]
fn vlan_pop_push_and_vxlan_decap_are_recognised() {
    // Pop: strip Ethernet + tag, write back the addresses and the inner type.
    let tagged = v4(Some(0x0064), 64, 17, &udp(1, 2, b""));
    let pop = Output::new(
        1,
        Edit {
            strip: 18,
            segments: vec![Segment::Copy { from: 0, len: 12 }, Segment::Copy { from: 16, len: 2 }],
            ..Edit::default()
        },
    );
    let f = Flow::new(&tagged, Some(2), &[12..18], actions(vec![pop], vec![]));
    let t = translate(&f.r(), &PORTS).unwrap();
    assert_eq!(
        t.full_rule(&P2, None).unwrap().actions,
        vec![Action::OfPopVlan, Action::Count, Action::RepresentedPort(10)]
    );
    dpdk_accepts(&t);

    // Push: VLAN 100, priority 5.
    let plain = v4(None, 64, 17, &udp(1, 2, b""));
    let push = Output::new(
        2,
        Edit {
            strip: 14,
            segments: vec![
                Segment::Copy { from: 0, len: 12 },
                Segment::Bytes(vec![0x81, 0x00, 0xa0, 0x64]),
                Segment::Copy { from: 12, len: 2 },
            ],
            ..Edit::default()
        },
    );
    let f = Flow::new(&plain, Some(1), &[12..14], actions(vec![push], vec![]));
    let t = translate(&f.r(), &PORTS).unwrap();
    assert_eq!(
        t.full_rule(&P1, None).unwrap().actions,
        vec![
            Action::OfPushVlan(0x8100),
            Action::OfSetVlanVid(100),
            Action::OfSetVlanPcp(5),
            Action::Count,
            Action::RepresentedPort(11)
        ]
    );
    dpdk_accepts(&t);

    // Decap: the inner frame replaces the outer headers.
    let outer = vxlan();
    let decap =
        Output::new(1, Edit { strip: 64, segments: vec![Segment::Copy { from: 50, len: 14 }], ..Edit::default() });
    let f = Flow::new(&outer, None, &[12..14, 23..24, 36..38, 46..49, 62..64], actions(vec![decap], vec![]));
    let t = translate(&f.r(), &PORTS).unwrap();
    assert_eq!(
        t.full_rule(&P2, None).unwrap().actions,
        vec![Action::VxlanDecap, Action::Count, Action::RepresentedPort(10)]
    );
    dpdk_accepts(&t);

    // Anything else that rebuilds headers: refused.
    let other = Output::new(1, Edit { strip: 14, segments: vec![Segment::Bytes(vec![1; 20])], ..Edit::default() });
    let f = Flow::new(&plain, None, &[12..14], actions(vec![other], vec![]));
    assert_eq!(translate(&f.r(), &PORTS).unwrap().full, Err(Refusal::Rebuild));
}

/// VXLAN towards a remote VTEP, as Sluice's default program's `vxlan_encap` gives it:
/// 50 constant bytes (Ethernet, IPv4, UDP to 4789, VXLAN) before the frame, the outer
/// lengths computed per packet, the outer IPv4 checksum recomputed.
fn encap(strip: u32, inner: Vec<Segment>, lens: &[(u32, i32)]) -> Output {
    let mut outer = v4(None, 64, 17, &udp(50123, VXLAN_PORT, &[0x08, 0, 0, 0, 0, 0x13, 0x92, 0]));
    outer[0..6].copy_from_slice(&[0, 0, 0x5e, 0, 2, 0xfe]);
    let mut segments = vec![Segment::Bytes(outer)];
    segments.extend(inner);
    let len_patches = lens.iter().map(|&(at, off)| LenPatch { bit: at * 8, width: 16, off, modw: 16 }).collect();
    let checksums = vec![ChecksumFix { at: 14, len: 20, field_bit: 24 * 8 }];
    Output::new(3, Edit { strip, segments, len_patches, checksums, ..Edit::default() })
}

#[test]
fn a_udp_tunnel_push_is_raw_encap_with_the_lengths_left_to_the_nic() {
    let frame = v4(None, 64, 6, &[0; 20]);
    let whole = || vec![Segment::Copy { from: 0, len: 14 }];
    let push = encap(14, whole(), &[(16, 36), (38, 16)]);
    let f = Flow::new(&frame, Some(1), &[0..14], actions(vec![push.clone()], vec![]));
    let t = translate(&f.r(), &[P1, P2, PortInfo { p4: 3, dpdk: 12, rx_queues: 1 }]).unwrap();
    let (acts, _) = t.full.clone().unwrap();
    let Action::RawEncap(data) = &acts[0] else { panic!("{acts:?}") };
    assert_eq!(acts.len(), 1);
    // The outer headers as the program builds them, lengths and checksum zero.
    let mut want = vec![];
    push.headers(&frame, &Patches::default(), &mut want);
    want.truncate(50);
    want[16..18].fill(0);
    want[24..26].fill(0);
    want[38..40].fill(0);
    assert_eq!(data, &want);
    dpdk_accepts(&t);
    let shown = crate::manager::describe(&t.full_rule(&P1, None).unwrap());
    assert!(shown.ends_with("-> RawEncap(50 bytes) / Count / RepresentedPort(12)"), "{shown}");

    // From a tagged port: the tag popped first, the lengths count the frame without it.
    let tagged = v4(Some(10), 64, 6, &[0; 20]);
    let untag = vec![Segment::Copy { from: 0, len: 12 }, Segment::Copy { from: 16, len: 2 }];
    let pop = encap(18, untag.clone(), &[(16, 32), (38, 12)]);
    let f = Flow::new(&tagged, Some(1), &[0..18], actions(vec![pop], vec![]));
    let (acts, _) = translate(&f.r(), &[P1, PortInfo { p4: 3, dpdk: 12, rx_queues: 1 }]).unwrap().full.unwrap();
    assert_eq!((acts[0].clone(), acts.len()), (Action::OfPopVlan, 2));
    assert!(matches!(acts[1], Action::RawEncap(_)));

    // Lengths a NIC would not fill in that way: refused, and so is a UDP checksum.
    let ports = [P1, PortInfo { p4: 3, dpdk: 12, rx_queues: 1 }];
    let full = |o: Output, pkt: &[u8], n: usize| {
        translate(&Flow::new(pkt, Some(1), &[0..n], actions(vec![o], vec![])).r(), &ports).unwrap().full
    };
    assert_eq!(full(encap(14, whole(), &[(16, 36), (38, 17)]), &frame, 14), Err(Refusal::LengthField { offset: 38 }));
    assert_eq!(full(encap(14, whole(), &[(16, 36)]), &frame, 14), Err(Refusal::LengthField { offset: 38 }));
    assert_eq!(full(encap(18, untag, &[(16, 36), (38, 16)]), &tagged, 18), Err(Refusal::LengthField { offset: 16 }));
    let mut sums = encap(14, whole(), &[(16, 36), (38, 16)]);
    if let Segment::Bytes(b) = &mut sums.edit.segments[0] {
        b[41] = 1; // a UDP checksum
    }
    assert_eq!(full(sums, &frame, 14), Err(Refusal::Checksum { offset: 34 }));
    let mut stale = encap(14, whole(), &[(16, 36), (38, 16)]);
    stale.edit.checksums.clear();
    assert_eq!(full(Output::new(3, stale.edit), &frame, 14), Err(Refusal::Checksum { offset: 14 }));
    // A length field without a push: no action fills it.
    let mut o = in_place(3, 14 + 20, &[], None);
    o.edit.len_patches.push(LenPatch { bit: 16 * 8, width: 16, off: -14, modw: 16 });
    let o = Output::new(3, o.edit);
    assert_eq!(full(o, &frame, 14), Err(Refusal::LengthField { offset: 16 }));
}

/// The same push with an IPv6 outer header (70 bytes: Ethernet, IPv6, UDP, VXLAN): the
/// NIC fills the payload length and the UDP length, there is no IP checksum; the
/// model's NIC sends what software sends for frames of several lengths.
#[test]
fn a_udp_tunnel_push_over_ipv6_leaves_the_payload_length_to_the_nic() {
    use crate::device::FlowDevice;
    use crate::model::{ModelConfig, NicModel, Verdict};
    let mut outer = vec![0, 0, 0x5e, 0, 2, 0xfe, 0, 0, 0x5e, 0, 2, 1, 0x86, 0xdd];
    outer.extend([0x60, 0, 0, 0, 0, 0, 17, 64]);
    outer.extend([0x20, 0x01, 0x0d, 0xb8].iter().chain(&[0; 11]).chain(&[1]));
    outer.extend([0x20, 0x01, 0x0d, 0xb8].iter().chain(&[0; 11]).chain(&[2]));
    outer.extend(udp(50123, VXLAN_PORT, &[0x08, 0, 0, 0, 0, 0x13, 0x92, 0]));
    assert_eq!(outer.len(), 70);
    let segments = vec![Segment::Bytes(outer.clone()), Segment::Copy { from: 0, len: 14 }];
    // Payload length and UDP length: the frame plus UDP and VXLAN.
    let len_patches = [18, 58].map(|at| LenPatch { bit: at * 8, width: 16, off: 16, modw: 16 }).to_vec();
    let push = Output::new(3, Edit { strip: 14, segments, len_patches, ..Edit::default() });
    let frame = v4(None, 64, 6, &[0; 20]);
    let ports = [P1, PortInfo { p4: 3, dpdk: 12, rx_queues: 1 }];
    let f = Flow::new(&frame, Some(1), &[0..14], actions(vec![push.clone()], vec![]));
    let t = translate(&f.r(), &ports).unwrap();
    let mut want = outer;
    want[18..20].fill(0);
    want[58..60].fill(0);
    assert_eq!(t.full.clone().unwrap().0, vec![Action::RawEncap(want)]);
    dpdk_accepts(&t);
    // An IPv4 checksum fix over an IPv6 outer header is no push a NIC does.
    let mut bad = push.clone();
    bad.edit.checksums.push(ChecksumFix { at: 14, len: 20, field_bit: 24 * 8 });
    let bad = Output::new(3, bad.edit);
    let f = Flow::new(&frame, Some(1), &[0..14], actions(vec![bad], vec![]));
    assert!(matches!(translate(&f.r(), &ports).unwrap().full, Err(Refusal::Checksum { .. })));
    let mut model = NicModel::new(ModelConfig::default());
    model.create(P1.dpdk, &t.full_rule(&P1, None).unwrap()).unwrap();
    for n in [0, 1, 26, 1400] {
        let pkt = [frame.clone(), vec![7; n]].concat();
        let mut software = vec![];
        push.render(&pkt, &mut software);
        assert_eq!(u16::from_be_bytes([software[18], software[19]]) as usize, pkt.len() + 16);
        let mut wire = pkt.clone();
        assert_eq!(model.receive(P1.dpdk, &mut wire), Verdict::Forwarded { port: 12 });
        assert_eq!(wire, software, "{n} bytes of payload");
    }
}

/// IPv4 fragments (OVS offloads no megaflow that matches them). A megaflow that reads
/// the L4 ports gives IPV4 + UDP items: the NIC finds the UDP header in a first
/// fragment and forwards it as software would; a later fragment has no L4 header for
/// the NIC (its bytes there are payload), so it reaches software, which decides as the
/// program does, even when those payload bytes look like the ports. A megaflow that
/// matches the fragment fields themselves carries them in the IPV4 item.
#[test]
fn fragments_are_offloaded_where_the_nic_parses_them_as_the_megaflow_does() {
    use crate::device::FlowDevice;
    use crate::model::{ModelConfig, NicModel, Verdict};
    let first = {
        let mut p = v4(None, 64, 17, &udp(1000, 53, &[7; 16]));
        p[20] |= 0x20; // MF
        p
    };
    let later = {
        let mut p = first.clone();
        p[20..22].copy_from_slice(&[0x00, 0x03]); // offset 24 bytes, last fragment
        p
    };
    let mac = in_place(2, 14, &[(0, 0x02), (1, 0), (2, 0), (3, 0), (4, 0), (5, 0x02)], None);
    // Ethernet type, IPv4 protocol and addresses, UDP ports.
    let f = Flow::new(&first, Some(1), &[12..14, 23..24, 26..34, 34..38], actions(vec![mac], vec![]));
    let t = translate(&f.r(), &PORTS).unwrap();
    let kinds: Vec<ItemKind> = t.pattern.iter().map(|i| i.kind).collect();
    assert_eq!(kinds, [ItemKind::Eth, ItemKind::Ipv4, ItemKind::Udp]);
    let mut model = NicModel::new(ModelConfig::default());
    model.create(P1.dpdk, &t.full_rule(&P1, None).unwrap()).unwrap();
    let mut a = first.clone();
    assert_eq!(model.receive(P1.dpdk, &mut a), Verdict::Forwarded { port: P2.dpdk });
    assert_eq!(a[..6], [2, 0, 0, 0, 0, 2], "rewritten as software does");
    assert_eq!(a[6..], first[6..]);
    let mut b = later.clone();
    assert_eq!(model.receive(P1.dpdk, &mut b), Verdict::ToHost { mark: None, queue: None });
    assert_eq!(b, later, "untouched: software decides");

    // A program that reads the fragment fields (say, to drop later fragments).
    let f = Flow::new(&later, Some(1), &[12..14, 20..22, 23..24], actions(vec![], vec![DropCause::Ingress]));
    let t = translate(&f.r(), &PORTS).unwrap();
    assert_eq!(t.pattern[1].kind, ItemKind::Ipv4);
    assert_eq!((&t.pattern[1].spec[6..8], &t.pattern[1].mask[6..8]), (&[0x00, 0x03][..], &[0xff, 0xff][..]));
    let mut model = NicModel::new(ModelConfig::default());
    model.create(P1.dpdk, &t.full_rule(&P1, None).unwrap()).unwrap();
    assert_eq!(model.receive(P1.dpdk, &mut later.clone()), Verdict::Dropped);
    assert_eq!(model.receive(P1.dpdk, &mut first.clone()), Verdict::ToHost { mark: None, queue: None });
    dpdk_accepts(&t);
}

#[test]
fn matches_without_an_rte_flow_form_are_refused_with_a_reason() {
    let pkt = v4(None, 64, 17, &udp(1, 2, b""));
    let none = || actions(vec![], vec![]);
    let mut m = [0u8; KEY_BYTES];
    m[4] = 0xff; // a packet-length byte
    assert_eq!(translate(&Flow::with_mask(&pkt, 1, m, none()).r(), &PORTS).unwrap_err(), Refusal::MatchesLength);
    // Some bits of the port: the rule goes on the ports that have them.
    let mut m = [0u8; KEY_BYTES];
    m[1] = 0x01;
    let odd = translate(&Flow::with_mask(&pkt, 1, m, none()).r(), &PORTS).unwrap();
    assert_eq!(odd.in_ports.iter().map(|p| p.p4).collect::<Vec<_>>(), [1]);
    // The 9-bit `ingress_port` as v1model programs read it: exactly one port.
    m[0] = 0x01;
    m[1] = 0xff;
    let one = translate(&Flow::with_mask(&pkt, 2, m, none()).r(), &PORTS).unwrap();
    assert_eq!(one.in_ports.iter().map(|p| p.p4).collect::<Vec<_>>(), [2]);
    let f = Flow::new(&pkt, Some(7), &[12..14], none());
    assert_eq!(translate(&f.r(), &PORTS).unwrap_err(), Refusal::UnknownPort(7));
    // Without the EtherType, bytes past Ethernet have no header.
    let f = Flow::new(&pkt, None, &[30..34], none());
    assert_eq!(translate(&f.r(), &PORTS).unwrap_err(), Refusal::OutsideHeaders { offset: 30 });
    // An unknown EtherType.
    let mut arp = pkt.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    let f = Flow::new(&arp, None, &[12..14, 20..22], none());
    assert_eq!(translate(&f.r(), &PORTS).unwrap_err(), Refusal::OutsideHeaders { offset: 20 });
    for r in [
        Refusal::MatchesLength,
        Refusal::Copies(2),
        Refusal::ShortPattern { pattern: 1, min_len: 2 },
        Refusal::MeterShared,
    ] {
        assert!(Refusal::REASONS.contains(&r.reason()), "{r}");
    }
}

#[test]
fn actions_without_an_rte_flow_form_leave_the_flow_partial() {
    let pkt = v4(None, 64, 17, &udp(1, 2, b""));
    let m = |a: Actions| Flow::new(&pkt, Some(1), &[12..14, 22..23, 30..34], a);
    let full = |f: &Flow| translate(&f.r(), &PORTS).unwrap().full;
    let out = |p| in_place(p, 34, &[], None);
    assert_eq!(full(&m(actions(vec![out(1), out(2)], vec![]))), Err(Refusal::Copies(2)));
    assert_eq!(full(&m(actions(vec![out(255)], vec![]))), Err(Refusal::ToController(255)));
    assert_eq!(full(&m(actions(vec![out(1)], vec![DropCause::Egress]))), Err(Refusal::DropAndOutput));
    // TTL decremented but the checksum left stale: a NIC would fix it.
    assert_eq!(
        full(&m(actions(vec![in_place(2, 34, &[(22, 63)], None)], vec![]))),
        Err(Refusal::Checksum { offset: 14 })
    );
    // NAT: the destination address rewritten.
    assert_eq!(full(&m(actions(vec![in_place(2, 34, &[(33, 9)], Some(14))], vec![]))), Err(Refusal::NatRewrite));
    // A byte no set-field action covers (IPv4 identification).
    assert_eq!(
        full(&m(actions(vec![in_place(2, 34, &[(18, 1)], Some(14))], vec![]))),
        Err(Refusal::Rewrite { offset: 18 })
    );
    // A TTL set to a constant (not the input minus one) is SET_TTL.
    let t = translate(&m(actions(vec![in_place(2, 34, &[(22, 5)], Some(14))], vec![])).r(), &PORTS).unwrap();
    assert_eq!(t.full.unwrap().0, vec![Action::SetTtl(5)]);
    // Truncation.
    let mut o = out(2);
    o.edit.truncate = Some(20);
    assert_eq!(full(&m(actions(vec![o], vec![]))), Err(Refusal::Truncates));
}

#[test]
fn sctp_icmp_icmpv6_and_in_place_vlan_and_hop_limit_rewrites() {
    // SCTP destination port, ICMP type.
    let sctp = v4(None, 64, 132, &[0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
    let f = Flow::new(&sctp, None, &[12..14, 23..24, 36..38], actions(vec![], vec![]));
    let t = translate(&f.r(), &PORTS).unwrap();
    assert_eq!(t.pattern[2], item(ItemKind::Sctp, &[(2, &[0, 2])], None));
    dpdk_accepts(&t);
    let icmp = v4(None, 64, 1, &[8, 0, 0, 0, 0, 1, 0, 1]);
    let f = Flow::new(&icmp, None, &[12..14, 23..24, 34..35], actions(vec![], vec![]));
    let t = translate(&f.r(), &PORTS).unwrap();
    assert_eq!(t.pattern[2], item(ItemKind::Icmp, &[(0, &[8])], None));
    dpdk_accepts(&t);

    // IPv6 + ICMPv6 echo, forwarded with the hop limit decremented (IPv6 has no
    // header checksum to fix).
    let mut p = vec![0u8; 12];
    p.extend_from_slice(&[0x86, 0xdd]);
    let mut ip6 = vec![0x60, 0, 0, 0, 0, 8, 58, 64];
    ip6.extend_from_slice(&[0x20; 16]);
    ip6.extend_from_slice(&[0x30; 16]);
    p.extend_from_slice(&ip6);
    p.extend_from_slice(&[128, 0, 0, 0, 0, 0, 0, 0]);
    let f = Flow::new(
        &p,
        Some(1),
        &[12..14, 20..22, 38..54, 54..55],
        actions(vec![in_place(2, 62, &[(21, 63)], None)], vec![]),
    );
    let t = translate(&f.r(), &PORTS).unwrap();
    let kinds: Vec<ItemKind> = t.pattern.iter().map(|i| i.kind).collect();
    assert_eq!(kinds, [ItemKind::Eth, ItemKind::Ipv6, ItemKind::Icmp6]);
    assert_eq!(t.pattern[2], item(ItemKind::Icmp6, &[(0, &[128])], None));
    assert_eq!(
        t.full_rule(&P1, None).unwrap().actions,
        vec![Action::DecTtl, Action::Count, Action::RepresentedPort(11)]
    );
    dpdk_accepts(&t);

    // A tagged packet's VLAN id and priority rewritten in place (TCI 0x0064 -> 0xa0c8).
    let tagged = v4(Some(0x0064), 64, 17, &udp(1, 2, b""));
    let out = in_place(2, 18, &[(14, 0xa0), (15, 0xc8)], None);
    let f = Flow::new(&tagged, Some(1), &[12..18], actions(vec![out], vec![]));
    let t = translate(&f.r(), &PORTS).unwrap();
    assert_eq!(
        t.full_rule(&P1, None).unwrap().actions,
        vec![Action::OfSetVlanVid(0xc8), Action::OfSetVlanPcp(5), Action::Count, Action::RepresentedPort(11)]
    );
    dpdk_accepts(&t);
    // The DEI bit has no action.
    let out = in_place(2, 18, &[(14, 0x10), (15, 0x64)], None);
    let f = Flow::new(&tagged, Some(1), &[12..18], actions(vec![out], vec![]));
    assert_eq!(translate(&f.r(), &PORTS).unwrap().full, Err(Refusal::Rewrite { offset: 14 }));
}

/// A megaflow branching on a meter's color: one `METER` action in the rule, and the
/// meter object's policy holds each color's outcome, translated as an unmetered
/// megaflow's would be, ending with its fate. Refused: a second meter in a branch, a
/// branch with no rte_flow form (the whole megaflow stays partial), and a rule asked
/// for without its meter object.
#[test]
fn a_metered_megaflow_is_one_meter_action_with_each_colors_outcome_in_the_policy() {
    let pkt = v4(None, 64, 17, &udp(1, 2, b""));
    let m = |a: Actions| Flow::new(&pkt, Some(1), &[12..14, 22..23, 30..34], a);
    // GREEN routes (MACs, TTL, checksum), YELLOW forwards unchanged to another port,
    // RED drops.
    let mut patches: Vec<(u32, u8)> = (0..6).map(|i| (i, 0x02)).collect();
    patches.push((22, 63));
    let green = actions(vec![in_place(2, 34, &patches, Some(14))], vec![]);
    let yellow = actions(vec![in_place(1, 34, &[], None)], vec![]);
    let red = actions(vec![], vec![DropCause::Ingress]);
    let metered = Actions::metered(4, 9, true, [green.clone(), yellow.clone(), red.clone()]);
    let t = translate(&m(metered).r(), &PORTS).unwrap();
    let plan = t.meter.clone().expect("a meter plan");
    assert_eq!((plan.meter, plan.cell, plan.bytes), (4, 9, true));
    assert_eq!(
        plan.colors,
        [
            vec![Action::SetMacDst([2; 6]), Action::DecTtl, Action::RepresentedPort(11)],
            vec![Action::RepresentedPort(10)],
            vec![Action::Drop],
        ]
    );
    assert_eq!(plan.outs, vec![P2, P1]);
    // Each color's list is what the unmetered megaflow of that outcome would do.
    for (c, a) in [green, yellow].into_iter().enumerate() {
        let (mut acts, out) = translate(&m(a).r(), &PORTS).unwrap().full.unwrap();
        acts.push(Action::RepresentedPort(out.unwrap().dpdk));
        assert_eq!(plan.colors[c], acts, "color {c}");
    }
    // GREEN recomputes the IPv4 checksum: the pattern pins version/IHL as for the
    // unmetered megaflow.
    assert!(t.pattern.iter().any(|it| it.kind == ItemKind::Ipv4 && it.spec[0] == 0x45 && it.mask[0] == 0xff));
    let rule = t.full_rule(&P1, Some(31)).unwrap();
    assert_eq!(rule.actions, vec![Action::Meter(31)]);
    assert!(rule.attr.transfer);
    assert_eq!(rule.pattern[0], Item::represented_port(P1.dpdk));
    assert_eq!(conv(&rule).unwrap(), rule);
    // DPDK understands every color's list as given (a policy is such a list per color).
    for list in &plan.colors {
        let r = Rule { actions: list.clone(), ..Rule::default() };
        assert_eq!(conv(&r).unwrap(), r);
    }
    assert_eq!(t.full_rule(&P1, None), Err(Refusal::Metered));
    // Partial offload is unchanged: MARK and the queues.
    assert_eq!(t.partial_rule(&P1, 5).actions, vec![Action::Mark(5), Action::Queue(0)]);
    // A second meter under a color.
    let inner = Actions::metered(5, 0, false, [yellow_out(), yellow_out(), red.clone()]);
    let nested = Actions::metered(4, 9, true, [inner, yellow_out(), red.clone()]);
    let t = translate(&m(nested).r(), &PORTS).unwrap();
    assert_eq!((t.full, t.meter), (Err(Refusal::NestedMeters), None));
    // A color whose outcome has no rte_flow form refuses the whole full offload.
    let two = actions(vec![in_place(1, 34, &[], None), in_place(2, 34, &[], None)], vec![]);
    let t = translate(&m(Actions::metered(4, 9, true, [yellow_out(), two, red])).r(), &PORTS).unwrap();
    assert_eq!((t.full, t.meter), (Err(Refusal::Copies(2)), None));
}

fn yellow_out() -> Actions {
    actions(vec![in_place(1, 34, &[], None)], vec![])
}

/// An IPv4 address rewritten in a packet whose protocol the match knows carries no
/// L4 checksum over the addresses (ICMP here) is `SET_IPV4_DST` (with the checksum
/// the program recomputes), and the model's NIC sends what software sends; with UDP,
/// or a protocol the match does not know, the NIC would fix an L4 checksum the
/// program leaves alone: refused.
#[test]
fn an_address_rewrite_without_an_l4_checksum_is_set_ipv4() {
    use crate::device::FlowDevice;
    use crate::model::{ModelConfig, NicModel, Verdict};
    let icmp = v4(None, 64, 1, &[8, 0, 0xf7, 0xff, 0, 0, 0, 0]);
    let rewrite = |p: u32| in_place(p, 34, &[(30, 10), (31, 9), (32, 9), (33, 9)], Some(14));
    let ports = [P1, P2];
    let f = Flow::new(&icmp, Some(1), &[12..14, 23..24, 30..34], actions(vec![rewrite(2)], vec![]));
    let t = translate(&f.r(), &ports).unwrap();
    assert_eq!(t.full.clone().unwrap().0, vec![Action::SetIpv4Dst([10, 9, 9, 9])]);
    dpdk_accepts(&t);
    let mut model = NicModel::new(ModelConfig::default());
    model.create(P1.dpdk, &t.full_rule(&P1, None).unwrap()).unwrap();
    let mut software = vec![];
    f.r().actions.outputs[0].render(&icmp, &mut software);
    let mut wire = icmp.clone();
    assert_eq!(model.receive(P1.dpdk, &mut wire), Verdict::Forwarded { port: P2.dpdk });
    assert_eq!(wire, software);
    assert_eq!(csum(&wire[14..34]), 0, "the IPv4 checksum is valid");
    // UDP: its checksum covers the addresses.
    let udp4 = v4(None, 64, 17, &udp(1, 2, b""));
    let f = Flow::new(&udp4, Some(1), &[12..14, 23..24, 30..34], actions(vec![rewrite(2)], vec![]));
    assert_eq!(translate(&f.r(), &ports).unwrap().full, Err(Refusal::NatRewrite));
    // The protocol not matched: it may be UDP.
    let f = Flow::new(&icmp, Some(1), &[12..14, 30..34], actions(vec![rewrite(2)], vec![]));
    assert_eq!(translate(&f.r(), &ports).unwrap().full, Err(Refusal::NatRewrite));
}
