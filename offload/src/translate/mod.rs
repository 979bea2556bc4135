//! Megaflow -> rte_flow rule.
//!
//! A megaflow matches packet *bytes* (whatever the P4 parser read, see
//! `sluice_fastpath::cache`); a NIC matches protocol *fields* after its own parse.
//! The translation walks the masked key as a NIC would parse the packet — Ethernet,
//! up to two VLAN tags, IPv4 or IPv6, TCP/UDP/SCTP/ICMP/ICMPv6, VXLAN on UDP 4789 and
//! one inner Ethernet/IP/L4 stack — deciding each next layer only from fields the
//! megaflow matches exactly (EtherType, IP protocol, UDP port). Every masked byte
//! must fall inside an item, where it becomes the item's spec and mask bytes.
//!
//! # Never wider than the megaflow
//! A rule may match fewer packets than its megaflow (those go to software as before)
//! but never more. So the walk adds constraints where a NIC's parse could differ from
//! the fixed offsets the P4 key assumed: ETH gets `has_vlan = 0` when its EtherType
//! is not a TPID, IPv4 gets `version/IHL = 0x45` when an L4 item follows (the NIC
//! finds L4 after the options; the P4 parser at byte 20) or when a full offload
//! recomputes its checksum (the NIC sums the options; the program its 20 bytes), and
//! L4 items are added (wildcard) until the pattern covers the megaflow's minimum
//! length. What the pattern
//! cannot say — the minimum length in odd cases — the worker checks when it sees the
//! mark (see `MarkTable` in the fast path).
//!
//! # Actions
//! *Partial* offload: `MARK(id)` then `RSS` over the port's rx queues (`QUEUE 0` with
//! one queue), so packets keep their usual worker and skip the lookup there. *Full*
//! offload (a switch-domain rule, `transfer`): the megaflow's single output as
//! `REPRESENTED_PORT`, its header changes as rte_flow actions — MAC rewrite, TTL /
//! hop limit decrement (with the IPv4 checksum the program recomputes), VLAN id and
//! priority, VLAN pop and push, VXLAN decap, a UDP tunnel push (`RAW_ENCAP` of the
//! program's outer headers, whose lengths the fast path computes per packet and the
//! NIC fills in) — plus `COUNT`, or `COUNT` + `DROP` for a dropping megaflow. A
//! megaflow that branches on a P4 meter's color becomes `METER(object)`, where the
//! meter object ([`MeterPlan`], made by the manager) is the cell's trTCM and its
//! policy holds each color's outcome translated as above, ending with its fate. Anything else is refused with a [`Refusal`], counted by its
//! [`Refusal::reason`], and the megaflow stays partial or in software.

use dpdk_sys::flow::{Action, Attr, Item, ItemKind, Rule};
use sluice_fastpath::cache::actions::{Actions, Apply, Output, Patches};
use sluice_fastpath::cache::key::Mask;
use sluice_fastpath::p4::track::{ChecksumFix, Segment, KEY_BYTES, KEY_PACKET_OFFSET};

/// The VXLAN UDP port (RFC 7348).
pub const VXLAN_PORT: u16 = 4789;

/// A megaflow as the translation needs it.
#[derive(Debug, Clone, Copy)]
pub struct MegaflowRef<'a> {
    /// Its mask.
    pub mask: &'a Mask,
    /// Its masked key words.
    pub key: &'a [u64],
    /// Packets shorter do not match.
    pub min_len: u32,
    /// Its actions.
    pub actions: &'a Actions,
}

/// A port the pipeline sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortInfo {
    /// Its P4 port number.
    pub p4: u32,
    /// Its DPDK port id.
    pub dpdk: u16,
    /// Its rx queues.
    pub rx_queues: u16,
}

/// Why a megaflow, or its full offload, has no rte_flow form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The match includes packet-length bits.
    MatchesLength,
    /// The ingress port is not a port of this switch.
    UnknownPort(u32),
    /// A matched byte lies outside every header the walk recognised.
    OutsideHeaders {
        /// Packet offset.
        offset: u32,
    },
    /// More than one copy is sent (clones, multicast).
    Copies(usize),
    /// The copy goes to the controller or a port without a device.
    ToController(u32),
    /// Copies are both sent and dropped.
    DropAndOutput,
    /// The output is truncated.
    Truncates,
    /// Headers change in a way other than VLAN pop/push, VXLAN decap and a UDP tunnel
    /// push.
    Rebuild,
    /// A length field computed per packet that no encapsulation action fills in.
    LengthField {
        /// Output offset.
        offset: u32,
    },
    /// A byte is rewritten that no set-field action covers.
    Rewrite {
        /// Output offset.
        offset: u32,
    },
    /// L4 ports rewritten, or addresses of a packet with (or maybe with) a checksummed
    /// L4 header: NICs fix L4 checksums, the P4 engine does not.
    NatRewrite,
    /// A checksum the NIC would not keep the way the program does.
    Checksum {
        /// Output offset of the checksummed header.
        offset: u32,
    },
    /// The pattern does not reach the megaflow's minimum length.
    ShortPattern {
        /// Bytes the pattern covers.
        pattern: u32,
        /// The megaflow's minimum length.
        min_len: u32,
    },
    /// A metered megaflow's rule was asked for without its meter object.
    Metered,
    /// A color's outcome executes a second meter (one meter object per rule).
    NestedMeters,
    /// Other megaflows, or this one's rules on other ports, execute the same meter
    /// cell: metering it in the NIC would split the cell's traffic between token
    /// buckets.
    MeterShared,
}

impl Refusal {
    /// The counter label.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::MatchesLength => "matches_length",
            Refusal::UnknownPort(_) => "unknown_port",
            Refusal::OutsideHeaders { .. } => "match_outside_headers",
            Refusal::Copies(_) => "several_copies",
            Refusal::ToController(_) => "to_controller",
            Refusal::DropAndOutput => "drop_and_output",
            Refusal::Truncates => "truncates",
            Refusal::Rebuild => "header_rebuild",
            Refusal::LengthField { .. } => "length_field",
            Refusal::Rewrite { .. } => "rewrite",
            Refusal::NatRewrite => "nat_rewrite",
            Refusal::Checksum { .. } => "checksum",
            Refusal::ShortPattern { .. } => "short_pattern",
            Refusal::Metered => "metered",
            Refusal::NestedMeters => "nested_meters",
            Refusal::MeterShared => "meter_shared",
        }
    }

    /// Every label, for zero-initialised counters.
    pub const REASONS: [&'static str; 16] = [
        "matches_length",
        "unknown_port",
        "match_outside_headers",
        "several_copies",
        "to_controller",
        "drop_and_output",
        "truncates",
        "header_rebuild",
        "length_field",
        "rewrite",
        "nat_rewrite",
        "checksum",
        "short_pattern",
        "metered",
        "nested_meters",
        "meter_shared",
    ];
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::MatchesLength => write!(f, "the match reads the packet length"),
            Refusal::UnknownPort(p) => write!(f, "ingress P4 port {p} has no device"),
            Refusal::OutsideHeaders { offset } => write!(f, "matched byte {offset} is outside every known header"),
            Refusal::Copies(n) => write!(f, "{n} copies are sent"),
            Refusal::ToController(p) => write!(f, "the copy goes to P4 port {p}, which has no device"),
            Refusal::DropAndOutput => write!(f, "copies are both sent and dropped"),
            Refusal::Truncates => write!(f, "the copy is truncated"),
            Refusal::Rebuild => write!(f, "headers change beyond VLAN pop/push, VXLAN decap and a UDP tunnel push"),
            Refusal::LengthField { offset } => {
                write!(f, "the length field at {offset} is computed per packet, and no encapsulation fills it")
            }
            Refusal::Rewrite { offset } => write!(f, "byte {offset} is rewritten by no set-field action"),
            Refusal::NatRewrite => {
                write!(f, "addresses or L4 ports are rewritten (NICs fix L4 checksums; P4 does not)")
            }
            Refusal::Checksum { offset } => write!(f, "the checksum of the header at {offset} would differ"),
            Refusal::ShortPattern { pattern, min_len } => {
                write!(f, "the pattern covers {pattern} bytes, the megaflow needs {min_len}")
            }
            Refusal::Metered => write!(f, "a metered megaflow's rule needs its meter object"),
            Refusal::NestedMeters => write!(f, "a color's outcome executes another meter"),
            Refusal::MeterShared => {
                write!(f, "other megaflows, or its rules on other ports, execute the same meter cell")
            }
        }
    }
}

/// A megaflow translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    /// The ports to install on (the megaflow's ingress port, or every port when it
    /// does not read the port).
    pub in_ports: Vec<PortInfo>,
    /// The pattern, outermost first (no port item).
    pub pattern: Vec<Item>,
    /// Bytes the pattern covers.
    pub pattern_len: u32,
    /// Full offload: the actions before the fate, and the fate (`None`: drop). For a
    /// metered megaflow, empty and `None`: see [`Translation::meter`].
    pub full: Result<(Vec<Action>, Option<PortInfo>), Refusal>,
    /// Full offload of a metered megaflow: the meter object it needs.
    pub meter: Option<MeterPlan>,
}

/// The meter object a metered megaflow's full offload runs its packets through: the
/// P4 meter cell it stands for (whose configuration becomes the object's trTCM
/// profile), and per color the outcome's actions ending with their fate (the object's
/// policy). The rule itself is `METER(object)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterPlan {
    /// P4 meter array.
    pub meter: u32,
    /// Its cell.
    pub cell: u32,
    /// A bytes meter (else packets).
    pub bytes: bool,
    /// Actions per color (GREEN, YELLOW, RED), each ending with its fate.
    pub colors: [Vec<Action>; 3],
    /// The ports the colors forward to.
    pub outs: Vec<PortInfo>,
}

impl Translation {
    /// The partial-offload rule for `port`: MARK `mark`, then the port's queues.
    pub fn partial_rule(&self, port: &PortInfo, mark: u32) -> Rule {
        let spread = if port.rx_queues <= 1 { Action::Queue(0) } else { Action::Rss((0..port.rx_queues).collect()) };
        Rule {
            attr: Attr { ingress: true, ..Attr::default() },
            pattern: self.pattern.clone(),
            actions: vec![Action::Mark(mark), spread],
        }
    }

    /// The full-offload rule for `port`, if the actions have an rte_flow form; a
    /// metered megaflow's needs the id of the meter object made from
    /// [`Translation::meter`] on that port.
    pub fn full_rule(&self, port: &PortInfo, meter_object: Option<u32>) -> Result<Rule, Refusal> {
        let (actions, fate) = self.full.clone()?;
        let mut pattern = vec![Item::represented_port(port.dpdk)];
        pattern.extend(self.pattern.iter().cloned());
        let attr = Attr { transfer: true, ..Attr::default() };
        if self.meter.is_some() {
            let id = meter_object.ok_or(Refusal::Metered)?;
            return Ok(Rule { attr, pattern, actions: vec![Action::Meter(id)] });
        }
        let mut actions = actions;
        actions.push(Action::Count);
        actions.push(fate_of(fate));
        Ok(Rule { attr, pattern, actions })
    }
}

/// A full rule's fate: the output port, or drop.
fn fate_of(out: Option<PortInfo>) -> Action {
    match out {
        Some(out) => Action::RepresentedPort(out.dpdk),
        None => Action::Drop,
    }
}

/// The key as bytes: (values, masks), key-space offsets.
fn key_bytes(m: &MegaflowRef) -> (Vec<u8>, Vec<u8>) {
    let mut val = vec![0u8; KEY_BYTES];
    let mut msk = vec![0u8; KEY_BYTES];
    for ((i, b), k) in m.mask.idx.iter().zip(m.mask.bits.iter()).zip(m.key.iter()) {
        let at = *i as usize * 8;
        if at + 8 <= KEY_BYTES {
            msk[at..at + 8].copy_from_slice(&b.to_le_bytes());
            val[at..at + 8].copy_from_slice(&(k & b).to_le_bytes());
        }
    }
    (val, msk)
}

/// A header found by the walk: its item kind and packet offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layer {
    kind: ItemKind,
    off: usize,
}

/// The packet bytes of the key: value and mask.
struct Packet<'a> {
    val: &'a [u8],
    msk: &'a [u8],
}

impl Packet<'_> {
    /// The value of `n` bytes at `off` if every bit of them is matched.
    fn exact(&self, off: usize, n: usize) -> Option<u64> {
        let m = self.msk.get(off..off + n)?;
        m.iter().all(|b| *b == 0xff).then(|| self.val[off..off + n].iter().fold(0u64, |a, b| a << 8 | *b as u64))
    }

    /// Whether any bit at or after `off` is matched.
    fn matched_from(&self, off: usize) -> Option<usize> {
        self.msk.iter().enumerate().skip(off).find(|(_, b)| **b != 0).map(|(i, _)| i)
    }
}

/// What comes after a header, if the match says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Ether(u16),
    Ip(u8, bool),
    Vxlan,
    Eth,
    Unknown,
}

/// Walk the headers: the layers, with the item flags and extra constraints.
fn walk(p: &Packet, need: usize) -> (Vec<(Layer, Option<bool>)>, usize) {
    let mut layers: Vec<(Layer, Option<bool>)> = vec![];
    let mut off = 0;
    let mut next = Next::Eth;
    let mut tunnels = 0;
    let mut vlans = 0;
    loop {
        let (kind, len, after) = match next {
            Next::Eth => {
                let ty = p.exact(off + 12, 2).map(|v| v as u16);
                let flag = ty.map(is_tpid);
                layers.push((Layer { kind: ItemKind::Eth, off }, flag));
                off += 14;
                next = ty.map_or(Next::Unknown, Next::Ether);
                vlans = 0;
                if off >= need && next == Next::Unknown {
                    break;
                }
                continue;
            }
            Next::Ether(t) if is_tpid(t) && vlans < 2 => {
                vlans += 1;
                let inner = p.exact(off + 2, 2).map(|v| v as u16);
                (ItemKind::Vlan, 4, inner.map_or(Next::Unknown, Next::Ether))
            }
            Next::Ether(0x0800) => {
                let proto = p.exact(off + 9, 1).map_or(Next::Unknown, |v| Next::Ip(v as u8, false));
                (ItemKind::Ipv4, 20, proto)
            }
            Next::Ether(0x86dd) => {
                let proto = p.exact(off + 6, 1).map_or(Next::Unknown, |v| Next::Ip(v as u8, true));
                (ItemKind::Ipv6, 40, proto)
            }
            Next::Ip(6, _) => (ItemKind::Tcp, 20, Next::Unknown),
            Next::Ip(17, _) => {
                let vx = p.exact(off + 2, 2) == Some(VXLAN_PORT as u64) && tunnels == 0;
                (ItemKind::Udp, 8, if vx { Next::Vxlan } else { Next::Unknown })
            }
            Next::Ip(132, _) => (ItemKind::Sctp, 12, Next::Unknown),
            Next::Ip(1, false) => (ItemKind::Icmp, 8, Next::Unknown),
            Next::Ip(58, true) => (ItemKind::Icmp6, 4, Next::Unknown),
            Next::Vxlan => {
                tunnels += 1;
                (ItemKind::Vxlan, 8, Next::Eth)
            }
            _ => break,
        };
        // A header is added when the match reaches into it or the length needs it.
        if p.matched_from(off).is_none() && off >= need {
            break;
        }
        let flag = match (kind, after) {
            (ItemKind::Vlan, Next::Ether(t)) => Some(is_tpid(t)),
            _ => None,
        };
        layers.push((Layer { kind, off }, flag));
        off += len;
        next = after;
    }
    (layers, off)
}

fn is_tpid(t: u16) -> bool {
    matches!(t, 0x8100 | 0x88a8)
}

/// Translate a megaflow for the ports `ports` (every pipeline port).
pub fn translate(m: &MegaflowRef, ports: &[PortInfo]) -> Result<Translation, Refusal> {
    let (val, msk) = key_bytes(m);
    if msk[2..6].iter().any(|b| *b != 0) {
        return Err(Refusal::MatchesLength);
    }
    // The rule goes on every port whose P4 number matches under the mask: all of them
    // when the port was not read, one when it was (a program reading the 9-bit
    // `ingress_port` masks 0x01ff of the 16-bit field: still exactly one port).
    let (pv, pm) = (u16::from_be_bytes([val[0], val[1]]), u16::from_be_bytes([msk[0], msk[1]]));
    let in_ports: Vec<PortInfo> = ports.iter().filter(|p| p.p4 as u16 & pm == pv & pm).copied().collect();
    if in_ports.is_empty() {
        return Err(Refusal::UnknownPort(pv as u32));
    }
    let pkt = Packet { val: &val[KEY_PACKET_OFFSET..], msk: &msk[KEY_PACKET_OFFSET..] };
    let need = m.min_len as usize;
    let (layers, end) = walk(&pkt, need);
    if let Some(offset) = pkt.matched_from(end) {
        return Err(Refusal::OutsideHeaders { offset: offset as u32 });
    }
    let mut pattern = Vec::with_capacity(layers.len());
    for (i, (l, flag)) in layers.iter().enumerate() {
        let len = l.kind.header_len();
        let mut spec = pkt.val[l.off..l.off + len].to_vec();
        let mut mask = pkt.msk[l.off..l.off + len].to_vec();
        let l4_follows = layers
            .get(i + 1)
            .is_some_and(|(n, _)| matches!(n.kind, ItemKind::Tcp | ItemKind::Udp | ItemKind::Sctp | ItemKind::Icmp));
        if l.kind == ItemKind::Ipv4 && l4_follows {
            // The NIC finds L4 after the options; the P4 key assumed none.
            if (spec[0] ^ 0x45) & mask[0] != 0 {
                return Err(Refusal::OutsideHeaders { offset: l.off as u32 + 20 });
            }
            spec[0] = 0x45;
            mask[0] = 0xff;
        }
        pattern.push(Item { kind: l.kind, spec, mask, flag: *flag });
    }
    // One outcome, or a metered megaflow's one per color.
    let leaves: Vec<&Actions> = match &m.actions.metered {
        None => vec![m.actions],
        Some(b) => b.colors.iter().collect(),
    };
    let mut fix = None;
    let mut full: Result<Vec<_>, Refusal> = leaves
        .iter()
        .map(|a| {
            if a.metered.is_some() {
                return Err(Refusal::NestedMeters);
            }
            fix = fix.or(ipv4_checksum_fix(a));
            full_actions(&MegaflowRef { actions: a, ..*m }, &pkt, &layers, end, ports)
        })
        .collect();
    if let (Ok(_), Some(at)) = (&full, fix) {
        // The NIC recomputes the checksum over the IHL's bytes, the program over the
        // 20 it parsed: they agree only without options.
        let ip4 = |it: &Item| it.kind == ItemKind::Ipv4;
        if pattern.iter().any(|it| ip4(it) && (it.spec[0] ^ 0x45) & it.mask[0] != 0) {
            full = Err(Refusal::Checksum { offset: at });
        } else {
            for it in pattern.iter_mut().filter(|it| ip4(it)) {
                it.spec[0] = 0x45;
                it.mask[0] = 0xff;
            }
        }
    }
    let (full, meter) = match (full, &m.actions.metered) {
        (Err(e), _) => (Err(e), None),
        (Ok(mut one), None) => (Ok(one.pop().expect("one outcome")), None),
        (Ok(per_color), Some(b)) => {
            let mut outs: Vec<PortInfo> = vec![];
            let per_color: [_; 3] = per_color.try_into().expect("three colors");
            let colors = per_color.map(|(mut actions, fate)| {
                if let Some(out) = fate.filter(|o| !outs.contains(o)) {
                    outs.push(out);
                }
                actions.push(fate_of(fate));
                actions
            });
            let plan = MeterPlan { meter: b.meter, cell: b.cell, bytes: b.bytes, colors, outs };
            (Ok((vec![], None)), Some(plan))
        }
    };
    Ok(Translation { in_ports, pattern, pattern_len: end as u32, full, meter })
}

/// The output offset of the first IPv4 checksum an output recomputes, if any.
fn ipv4_checksum_fix(a: &Actions) -> Option<u32> {
    // A tunnel push's (it has length fields) is its new outer header's.
    a.outputs.iter().filter(|o| o.edit.len_patches.is_empty()).find_map(|o| match &o.apply {
        Apply::InPlace { .. } | Apply::Rebuild { .. } => o.edit.checksums.first().map(|c| c.at),
        Apply::Copy => None,
    })
}

/// Where an output byte comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Src {
    In(usize),
    Const(u8),
}

/// The output's new headers, byte by byte.
fn header_sources(segments: &[Segment]) -> Vec<Src> {
    let mut out = vec![];
    for s in segments {
        match s {
            Segment::Copy { from, len } => out.extend((*from as usize..(*from + *len) as usize).map(Src::In)),
            Segment::Bytes(b) => out.extend(b.iter().map(|c| Src::Const(*c))),
        }
    }
    out
}

/// Byte patches as (offset, keep, set).
fn flat(p: &Patches) -> Vec<(usize, u8, u8)> {
    let mut v: Vec<(usize, u8, u8)> = p.bytes.iter().map(|b| (b.off as usize, b.keep, b.set)).collect();
    for r in p.runs.iter() {
        v.extend(r.bytes().iter().enumerate().map(|(i, s)| (r.off as usize + i, 0, *s)));
    }
    v.sort_unstable();
    v
}

/// The header change of an output, recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Same,
    PopVlan,
    PushVlan,
    Decap(usize),
}

fn full_actions(
    m: &MegaflowRef,
    pkt: &Packet,
    layers: &[(Layer, Option<bool>)],
    end: usize,
    ports: &[PortInfo],
) -> Result<(Vec<Action>, Option<PortInfo>), Refusal> {
    let a = m.actions;
    let layer_list: Vec<Layer> = layers.iter().map(|(l, _)| *l).collect();
    if (end as u32) < m.min_len {
        return Err(Refusal::ShortPattern { pattern: end as u32, min_len: m.min_len });
    }
    match (a.outputs.len(), a.drops.len()) {
        (0, _) => return Ok((vec![], None)),
        (1, 0) => {}
        (1, _) => return Err(Refusal::DropAndOutput),
        (n, _) => return Err(Refusal::Copies(n)),
    }
    let o = &a.outputs[0];
    let out = *ports.iter().find(|p| p.p4 == o.port).ok_or(Refusal::ToController(o.port))?;
    if o.edit.truncate.is_some() {
        return Err(Refusal::Truncates);
    }
    if let Some(push) = tunnel_push(o, pkt, &layer_list) {
        return push.map(|actions| (actions, Some(out)));
    }
    if let Some(l) = o.edit.len_patches.first() {
        return Err(Refusal::LengthField { offset: l.bit / 8 });
    }
    let layers = layer_list;
    let has = |k: ItemKind| layers.iter().find(|l| l.kind == k).copied();
    // The new headers, the shape of the change, and the output's layers.
    let (shape, srcs, patches, checksums): HeaderChange = match &o.apply {
        Apply::InPlace { patches } => (Shape::Same, vec![], flat(patches), &o.edit.checksums),
        Apply::Rebuild { patches, .. } => {
            let srcs = header_sources(&o.edit.segments);
            let strip = o.edit.strip as usize;
            let h = srcs.len();
            let known = |s: Src, i: usize| match s {
                Src::In(j) => j == i,
                Src::Const(c) => pkt.exact(i, 1) == Some(c as u64),
            };
            let same_from = |from: usize, to: usize, shift: isize| {
                (from..to).all(|i| known(srcs[i], (i as isize + shift) as usize))
            };
            let vlan = has(ItemKind::Vlan).filter(|l| l.off == 14);
            let shape = if vlan.is_some() && h + 4 == strip && same_from(0, 12, 0) && same_from(12, h, 4) {
                Shape::PopVlan
            } else if vlan.is_none()
                && h == strip + 4
                && h >= 16
                && same_from(0, 12, 0)
                && srcs[12..16].iter().all(|s| matches!(s, Src::Const(_)))
                && same_from(16, h, -4)
            {
                Shape::PushVlan
            } else if let Some(vx) = has(ItemKind::Vxlan) {
                let t = vx.off + 8;
                if strip >= t && h == strip - t && same_from(0, h, t as isize) {
                    Shape::Decap(t)
                } else {
                    return Err(Refusal::Rebuild);
                }
            } else {
                return Err(Refusal::Rebuild);
            };
            (shape, srcs, flat(patches), &o.edit.checksums[..])
        }
        Apply::Copy => return Err(Refusal::Rebuild),
    };
    // The output's layers (offsets in the output).
    let out_layers: Vec<Layer> = match shape {
        Shape::Same => layers.clone(),
        Shape::PopVlan => layers
            .iter()
            .filter(|l| !(l.kind == ItemKind::Vlan && l.off == 14))
            .map(|l| Layer { kind: l.kind, off: if l.off > 14 { l.off - 4 } else { l.off } })
            .collect(),
        Shape::PushVlan => {
            let mut v = vec![Layer { kind: ItemKind::Eth, off: 0 }, Layer { kind: ItemKind::Vlan, off: 14 }];
            v.extend(layers.iter().filter(|l| l.off >= 14).map(|l| Layer { kind: l.kind, off: l.off + 4 }));
            v
        }
        Shape::Decap(t) => {
            layers.iter().filter(|l| l.off >= t).map(|l| Layer { kind: l.kind, off: l.off - t }).collect()
        }
    };
    // The input byte behind output byte `o`, if the match knows it.
    let strip = o.edit.strip as usize;
    let input = |at: usize| -> Option<u8> {
        let src = if shape == Shape::Same {
            Src::In(at)
        } else if at < srcs.len() {
            srcs[at]
        } else {
            Src::In(at - srcs.len() + strip)
        };
        match src {
            Src::In(j) => pkt.exact(j, 1).map(|v| v as u8),
            Src::Const(c) => Some(c),
        }
    };
    // The output value of byte `at` after patches, if known.
    let output = |at: usize| -> Option<u8> {
        match patches.iter().find(|p| p.0 == at) {
            Some(&(_, 0, set)) => Some(set),
            Some(&(_, keep, set)) => input(at).map(|v| v & keep | set),
            None => input(at),
        }
    };
    let mut actions = vec![];
    match shape {
        Shape::PopVlan => actions.push(Action::OfPopVlan),
        Shape::Decap(_) => actions.push(Action::VxlanDecap),
        _ => {}
    }
    // Fields rewritten, by the layer that holds them.
    let mut touched: Vec<(Layer, usize)> = vec![];
    for &(at, _, _) in &patches {
        let l = out_layers
            .iter()
            .rev()
            .find(|l| at >= l.off && at < l.off + l.kind.header_len())
            .ok_or(Refusal::Rewrite { offset: at as u32 })?;
        if !touched.iter().any(|(t, r)| *t == *l && field_of(l.kind, at - l.off) == field_of(l.kind, *r)) {
            touched.push((*l, at - l.off));
        }
    }
    let value = |l: &Layer, from: usize, n: usize| -> Result<Vec<u8>, Refusal> {
        (l.off + from..l.off + from + n).map(|i| output(i).ok_or(Refusal::Rewrite { offset: i as u32 })).collect()
    };
    let mut ip4_changed: Option<usize> = None;
    let mut push_tci: Option<u16> = None;
    for (l, rel) in &touched {
        let f = field_of(l.kind, *rel);
        match (l.kind, f) {
            (ItemKind::Eth, Field::MacDst) => actions.push(Action::SetMacDst(value(l, 0, 6)?.try_into().unwrap())),
            (ItemKind::Eth, Field::MacSrc) => actions.push(Action::SetMacSrc(value(l, 6, 6)?.try_into().unwrap())),
            (ItemKind::Ipv4, Field::Ttl) | (ItemKind::Ipv6, Field::Ttl) => {
                let at = if l.kind == ItemKind::Ipv4 { 8 } else { 7 };
                let new = value(l, at, 1)?[0];
                let old = input(l.off + at);
                actions.push(if old.is_some_and(|o| o.wrapping_sub(1) == new) {
                    Action::DecTtl
                } else {
                    Action::SetTtl(new)
                });
                if l.kind == ItemKind::Ipv4 {
                    ip4_changed = Some(l.off);
                }
            }
            (ItemKind::Ipv4, Field::Checksum) => ip4_changed = ip4_changed.or(Some(l.off)),
            (ItemKind::Ipv4 | ItemKind::Ipv6, Field::AddrSrc | Field::AddrDst) => {
                // NICs update the L4 checksum after an address rewrite (TCP, UDP,
                // SCTP, and ICMPv6 sum a pseudo-header); the P4 engine does not. Only
                // a packet whose protocol the match knows is none of those is
                // rewritten alike.
                let v4 = l.kind == ItemKind::Ipv4;
                let (proto_at, summed): (usize, &[u8]) = if v4 { (9, &[6, 17, 132]) } else { (6, &[6, 17, 132, 58]) };
                if output(l.off + proto_at).is_none_or(|p| summed.contains(&p)) {
                    return Err(Refusal::NatRewrite);
                }
                let src = f == Field::AddrSrc;
                let at = match (v4, src) {
                    (true, true) => 12,
                    (true, false) => 16,
                    (false, true) => 8,
                    (false, false) => 24,
                };
                let a = value(l, at, if v4 { 4 } else { 16 })?;
                actions.push(match (v4, src) {
                    (true, true) => Action::SetIpv4Src(a.try_into().unwrap()),
                    (true, false) => Action::SetIpv4Dst(a.try_into().unwrap()),
                    (false, true) => Action::SetIpv6Src(a.try_into().unwrap()),
                    (false, false) => Action::SetIpv6Dst(a.try_into().unwrap()),
                });
                if v4 {
                    ip4_changed = Some(l.off);
                }
            }
            (ItemKind::Tcp | ItemKind::Udp | ItemKind::Sctp, Field::Port) => return Err(Refusal::NatRewrite),
            (ItemKind::Vlan, Field::Tci) if shape == Shape::PushVlan && l.off == 14 => {
                push_tci = Some(u16::from_be_bytes(value(l, 0, 2)?.try_into().unwrap()));
            }
            (ItemKind::Vlan, Field::Tci) => {
                let new = u16::from_be_bytes(value(l, 0, 2)?.try_into().unwrap());
                let old = [input(l.off), input(l.off + 1)];
                let changed = |m: u16| match old {
                    [Some(a), Some(b)] => (u16::from_be_bytes([a, b]) ^ new) & m != 0,
                    _ => true,
                };
                if changed(0x1000) {
                    return Err(Refusal::Rewrite { offset: l.off as u32 });
                }
                if changed(0x0fff) {
                    actions.push(Action::OfSetVlanVid(new & 0x0fff));
                }
                if changed(0xe000) {
                    actions.push(Action::OfSetVlanPcp((new >> 13) as u8));
                }
            }
            _ => return Err(Refusal::Rewrite { offset: (l.off + rel) as u32 }),
        }
    }
    if shape == Shape::PushVlan {
        let tpid = match (srcs[12], srcs[13]) {
            (Src::Const(a), Src::Const(b)) => u16::from_be_bytes([a, b]),
            _ => return Err(Refusal::Rebuild),
        };
        let tci = match push_tci {
            Some(t) => t,
            None => match (srcs[14], srcs[15]) {
                (Src::Const(a), Src::Const(b)) => u16::from_be_bytes([a, b]),
                _ => return Err(Refusal::Rebuild),
            },
        };
        if tci & 0x1000 != 0 {
            return Err(Refusal::Rewrite { offset: 14 });
        }
        actions.push(Action::OfPushVlan(tpid));
        actions.push(Action::OfSetVlanVid(tci & 0x0fff));
        actions.push(Action::OfSetVlanPcp((tci >> 13) as u8));
    }
    // The IPv4 checksum: the program recomputes it exactly when the header changes
    // (as a NIC does), else the copy would differ.
    let fixes: Vec<usize> = checksums.iter().map(|c| c.at as usize).collect();
    for c in checksums {
        let ok = out_layers.iter().any(|l| {
            l.kind == ItemKind::Ipv4
                && l.off == c.at as usize
                && c.len == 20
                && c.field_bit as usize == (l.off + 10) * 8
        });
        if !ok {
            return Err(Refusal::Checksum { offset: c.at });
        }
    }
    match ip4_changed {
        Some(off) if !fixes.contains(&off) => return Err(Refusal::Checksum { offset: off as u32 }),
        None if !fixes.is_empty() => return Err(Refusal::Checksum { offset: fixes[0] as u32 }),
        _ => {}
    }
    Ok((actions, Some(out)))
}

/// A UDP tunnel push: new constant outer headers — Ethernet (optionally one VLAN tag),
/// IPv4 or IPv6, UDP, then the tunnel's own header (VXLAN, or any) — in front of the
/// packet as it came or with its outer VLAN tag popped, nothing else changed. The
/// program must compute the outer lengths per packet exactly as a NIC fills them in
/// (IPv4 total length or IPv6 payload length, and UDP length: from the encapsulated
/// packet's length) and recompute the outer IPv4 checksum; the UDP checksum must be
/// zero. Then the rule is `[OF_POP_VLAN,] RAW_ENCAP(headers)`, with those length and
/// checksum fields zero in the data: the NIC fills them per packet.
///
/// `None`: the output is no tunnel push (other shapes are tried); `Some(Err)`: it is one
/// the rule cannot express.
fn tunnel_push(o: &Output, pkt: &Packet, layers: &[Layer]) -> Option<Result<Vec<Action>, Refusal>> {
    let Apply::Rebuild { patches, .. } = &o.apply else { return None };
    let srcs = header_sources(&o.edit.segments);
    let patches = flat(patches);
    let (h, strip) = (srcs.len(), o.edit.strip as usize);
    let outer = srcs.iter().take_while(|s| matches!(s, Src::Const(_))).count();
    // Whether output byte `i` is input byte `j`: copied from it unpatched, or patched
    // to the value the match knows it has (an EtherType moved out of a popped tag).
    let is_input = |i: usize, j: usize| match (srcs[i], patches.iter().find(|p| p.0 == i)) {
        (Src::In(k), None) => k == j,
        (Src::In(k), Some(&(_, keep, set))) => {
            let v = pkt.exact(j, 1).map(|v| v as u8);
            let out = if keep == 0 { Some(set) } else { pkt.exact(k, 1).map(|x| x as u8 & keep | set) };
            v.is_some() && out == v
        }
        (Src::Const(_), _) => false,
    };
    let vlan_in = layers.iter().any(|l| l.kind == ItemKind::Vlan && l.off == 14);
    // The packet follows the new headers whole, or without its tag (the MACs, then
    // what followed the tag).
    let (e, pop) = if outer > 0 && h == strip + outer && (outer..h).all(|i| is_input(i, i - outer)) {
        (outer, false)
    } else if outer > 0
        && vlan_in
        && h + 4 == strip + outer
        && h >= outer + 12
        && (outer..outer + 12).all(|i| is_input(i, i - outer))
        && (outer + 12..h).all(|i| is_input(i, i - outer + 4))
    {
        (outer, true)
    } else {
        return None;
    };
    let b: Vec<u8> = srcs[..e].iter().map(|s| if let Src::Const(c) = s { *c } else { 0 }).collect();
    let be16 = |at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
    // The outer headers, parsed as the NIC will see them.
    let mut ip = 14;
    if e >= 18 && be16(12) == 0x8100 {
        ip = 18;
    }
    let v4 = e >= ip + 20 && be16(ip - 2) == 0x0800 && b[ip] == 0x45 && b[ip + 9] == 17;
    let v6 = e >= ip + 40 && be16(ip - 2) == 0x86dd && b[ip] >> 4 == 6 && b[ip + 6] == 17;
    let udp = ip + if v4 { 20 } else { 40 };
    if !(v4 || v6) || e < udp + 8 {
        return Some(Err(Refusal::Rebuild));
    }
    if be16(udp + 6) != 0 {
        return Some(Err(Refusal::Checksum { offset: udp as u32 }));
    }
    // The length fields a NIC fills: output length minus where each counts from.
    let grow = e as i64 - if pop { 4 } else { 0 };
    let ip_len = if v4 { (ip + 2, grow - ip as i64) } else { (ip + 4, grow - ip as i64 - 40) };
    let mut want = [ip_len, (udp + 4, grow - udp as i64)];
    want.sort_unstable();
    let mut have: Vec<(usize, i64)> = vec![];
    for l in &o.edit.len_patches {
        if l.bit % 8 != 0 || l.width != 16 || l.modw != 16 {
            return Some(Err(Refusal::LengthField { offset: l.bit / 8 }));
        }
        have.push((l.bit as usize / 8, l.off as i64));
    }
    have.sort_unstable();
    if have != want {
        let at = have.iter().chain(want.iter()).find(|x| !(have.contains(x) && want.contains(x)));
        return Some(Err(Refusal::LengthField { offset: at.map_or(0, |x| x.0 as u32) }));
    }
    // The outer IPv4 checksum recomputed, and no other.
    let outer_fix = ChecksumFix { at: ip as u32, len: 20, field_bit: (ip as u32 + 10) * 8 };
    match &o.edit.checksums[..] {
        [c] if v4 && *c == outer_fix => {}
        [] if v6 => {}
        [c, ..] => return Some(Err(Refusal::Checksum { offset: c.at })),
        [] => return Some(Err(Refusal::Checksum { offset: ip as u32 })),
    }
    let mut data = b;
    for (at, _) in want {
        data[at..at + 2].fill(0);
    }
    if v4 {
        data[ip + 10..ip + 12].fill(0);
    }
    let mut actions = vec![];
    if pop {
        actions.push(Action::OfPopVlan);
    }
    actions.push(Action::RawEncap(data));
    Some(Ok(actions))
}

/// An output's change: its shape, the sources of its new headers, its byte patches
/// (offset, keep, set) and its checksum fixes.
type HeaderChange<'a> = (Shape, Vec<Src>, Vec<(usize, u8, u8)>, &'a [ChecksumFix]);

/// The fields set-field actions cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    MacDst,
    MacSrc,
    Tci,
    Ttl,
    Checksum,
    AddrSrc,
    AddrDst,
    Port,
    Other(usize),
}

fn field_of(kind: ItemKind, rel: usize) -> Field {
    match (kind, rel) {
        (ItemKind::Eth, 0..=5) => Field::MacDst,
        (ItemKind::Eth, 6..=11) => Field::MacSrc,
        (ItemKind::Vlan, 0..=1) => Field::Tci,
        (ItemKind::Ipv4, 8) | (ItemKind::Ipv6, 7) => Field::Ttl,
        (ItemKind::Ipv4, 10..=11) => Field::Checksum,
        (ItemKind::Ipv4, 12..=15) | (ItemKind::Ipv6, 8..=23) => Field::AddrSrc,
        (ItemKind::Ipv4, 16..=19) | (ItemKind::Ipv6, 24..=39) => Field::AddrDst,
        (ItemKind::Tcp | ItemKind::Udp | ItemKind::Sctp, 0..=3) => Field::Port,
        _ => Field::Other(rel),
    }
}

#[cfg(test)]
mod tests;
