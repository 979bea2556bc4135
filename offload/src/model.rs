//! A software NIC behind [`FlowDevice`]: plays an rte_flow-capable device in tests on
//! machines that have none.
//!
//! # What it models
//! - **Validation** in a fixed order, with the errno and `rte_flow_error_type` a PMD
//!   would give: no flow ops (`ENOSYS`), attributes (ingress or transfer, never
//!   egress), the port item of transfer rules, supported item kinds, the header stack,
//!   the actions (one fate, last; what ingress rules may do; what each rewrite needs).
//! - **Capacity** per port (`ENOSPC`) and **insertion latency** (create sleeps, without
//!   holding the model's lock, so traffic keeps flowing meanwhile).
//! - **Matching**: [`NicModel::receive`] parses the packet the way a NIC does — ETH,
//!   any number of VLAN tags, IPv4 (L4 after the options; none for a non-first
//!   fragment) or IPv6 (no extension headers), TCP/UDP/SCTP/ICMP/ICMPv6, VXLAN on UDP
//!   4789 and one inner stack — and the first live rule of the port (creation order)
//!   whose items equal the leading parsed headers under their masks decides.
//! - **Actions**, in order: MARK, QUEUE, RSS, DROP, COUNT, port fates, VLAN pop / push /
//!   set, MAC and TTL rewrites (IPv4 checksum recomputed; DEC_TTL wraps at 0 like the
//!   P4 program's decrement), address and L4 port rewrites (TCP/UDP/ICMPv6 checksums
//!   updated incrementally, RFC 1624), VXLAN decap, raw encap (then the new outer
//!   IPv4 total length and checksum or IPv6 payload length, and UDP length, filled in
//!   from the packet's length, as a NIC is expected to for a tunnel push; unverified
//!   on hardware) / decap.
//! - **Meters** (rte_mtr): objects with a trTCM profile (DPDK's own `rte_meter`
//!   marker, color-blind, in bytes or packets, on the TSC) and a policy of one action
//!   list per color, ending with a fate. A rule whose only action is `METER(id)` sends
//!   each packet through the object: its color picks the list, which runs as a rule's
//!   actions would; statistics count packets and bytes per color. Policies are checked
//!   against the pattern of each rule that uses them; an object in use cannot be
//!   destroyed (`EBUSY`); a NIC with [`ModelConfig::meters`] false has none
//!   (`ENOTSUP`).
//!
//! # What it does not model
//! Groups, priorities (creation order decides), egress rules, `last` ranges, RSS
//! hashing (an RSS verdict names no queue), SCTP's CRC32c after a port rewrite (left
//! stale), IPv6 extension headers, nested tunnels, color-aware meters and meter
//! chains, aging, and the rule
//! memory of real devices (capacity is a plain count). Rules keep working when the
//! configuration changes: [`ModelConfig::not_capable`] only fails flow calls.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dpdk_sys::flow::{Action, FlowCount, FlowError, Item, ItemKind, Rule};
use dpdk_sys::meter::{Meter, MeterParams};
use dpdk_sys::mtr::{MeterSpec, MeterStats};
use dpdk_sys::raw::rte_flow_error_type as E;

use crate::device::FlowDevice;
use crate::translate::VXLAN_PORT;

const ENOENT: i32 = 2;
const EBUSY: i32 = 16;
const EEXIST: i32 = 17;
const EINVAL: i32 = 22;
const ENOSPC: i32 = 28;
const ENOSYS: i32 = 38;
const ENOTSUP: i32 = 95;

const VALIDATE: &str = "rte_flow_validate";
const CREATE: &str = "rte_flow_create";
const DESTROY: &str = "rte_flow_destroy";
const QUERY: &str = "rte_flow_query";
const MTR_CREATE: &str = "rte_mtr_create";
const MTR_DESTROY: &str = "rte_mtr_destroy";
const MTR_STATS: &str = "rte_mtr_stats_read";

/// What the modelled NIC can do.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// Rules per port at most (create beyond: `ENOSPC`).
    pub capacity: usize,
    /// Header item kinds it can match (others: `ENOTSUP`). The leading port item of a
    /// rule addresses the port and is not restricted by this list.
    pub items: Vec<ItemKind>,
    /// Whether it executes full-offload (transfer) rules; when false a transfer rule
    /// fails with `ENOTSUP`.
    pub transfer: bool,
    /// Time each create takes.
    pub insert_latency: Duration,
    /// Fail every flow call with `ENOSYS`, like a PMD without flow ops.
    pub not_capable: bool,
    /// Whether it has meter objects (rte_mtr); when false their calls fail with
    /// `ENOTSUP`.
    pub meters: bool,
}

impl Default for ModelConfig {
    fn default() -> ModelConfig {
        ModelConfig {
            capacity: 1024,
            items: ItemKind::ALL.to_vec(),
            transfer: true,
            insert_latency: Duration::ZERO,
            not_capable: false,
            meters: true,
        }
    }
}

/// The NIC: a handle on shared state. Clones share it — the manager owns one (as its
/// [`FlowDevice`]), the test's "wire" another.
#[derive(Clone, Debug)]
pub struct NicModel {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    cfg: ModelConfig,
    next_id: u64,
    /// Live rules per port, in creation order.
    ports: BTreeMap<u16, Vec<Installed>>,
    /// Meter objects by (port, id).
    meters: BTreeMap<(u16, u32), ModelMeter>,
}

#[derive(Debug)]
struct ModelMeter {
    spec: MeterSpec,
    marker: Meter,
    stats: MeterStats,
}

#[derive(Debug)]
struct Installed {
    id: u64,
    rule: Rule,
    count: FlowCount,
}

/// A rule created on the model (the [`FlowDevice::Handle`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelHandle {
    port: u16,
    id: u64,
}

impl ModelHandle {
    /// The DPDK port the rule is on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// What the NIC did with a received packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Goes to the host (software path), with the MARK id if a rule marked it. `queue`
    /// is the QUEUE action's index; `None` without a rule or for RSS (the model does
    /// not hash). The packet is unmodified unless a transfer rule rewrote it before
    /// its QUEUE / RSS fate.
    ToHost {
        /// The MARK id.
        mark: Option<u32>,
        /// The rx queue, when a QUEUE action chose it.
        queue: Option<u16>,
    },
    /// A full-offload rule sent it out of this DPDK port (modified in place).
    Forwarded {
        /// The output port.
        port: u16,
    },
    /// A rule dropped it.
    Dropped,
}

fn fail(op: &'static str, port: u16, errno: i32, kind: E, message: impl Into<String>) -> FlowError {
    FlowError { op, port, errno, kind: kind.0, message: message.into() }
}

impl NicModel {
    /// A NIC with no rules.
    pub fn new(cfg: ModelConfig) -> NicModel {
        NicModel {
            state: Arc::new(Mutex::new(State { cfg, next_id: 1, ports: BTreeMap::new(), meters: BTreeMap::new() })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Change capacity, latency or failure mode; live rules stay.
    pub fn set_config(&self, cfg: ModelConfig) {
        self.lock().cfg = cfg;
    }

    /// Live rules on `port`.
    pub fn rules(&self, port: u16) -> usize {
        self.lock().ports.get(&port).map_or(0, Vec::len)
    }

    /// Live rules on every port.
    pub fn total_rules(&self) -> usize {
        self.lock().ports.values().map(Vec::len).sum()
    }

    /// Live meter objects on every port.
    pub fn total_meters(&self) -> usize {
        self.lock().meters.len()
    }

    /// A packet arrives on DPDK port `port`: the first live rule of that port (creation
    /// order) whose pattern matches decides; its actions may rewrite `packet`.
    pub fn receive(&self, port: u16, packet: &mut Vec<u8>) -> Verdict {
        let layers = parse(packet);
        let mut guard = self.lock();
        let st = &mut *guard;
        let hit = st.ports.get_mut(&port).and_then(|v| v.iter_mut().find(|r| matches(&r.rule, port, &layers, packet)));
        let Some(hit) = hit else {
            return Verdict::ToHost { mark: None, queue: None };
        };
        hit.count.hits += 1;
        hit.count.bytes += packet.len() as u64;
        if let [Action::Meter(id)] = hit.rule.actions[..] {
            // Rules are checked against their meter at creation, and it cannot go
            // while they use it.
            let m = st.meters.get_mut(&(port, id)).expect("a rule's meter object exists");
            let len = packet.len() as u64;
            let units = if m.spec.profile.packets { 1 } else { len.min(u32::MAX as u64) as u32 };
            let c = m.marker.check(dpdk_sys::lcore::rdtsc(), units) as usize;
            m.stats.packets[c] += 1;
            m.stats.bytes[c] += len;
            return execute(&Rule { actions: m.spec.colors[c].clone(), ..Rule::default() }, packet);
        }
        execute(&hit.rule, packet)
    }

    fn find<T>(
        &self,
        op: &'static str,
        h: &ModelHandle,
        f: impl FnOnce(&mut Vec<Installed>, usize) -> Result<T, FlowError>,
    ) -> Result<T, FlowError> {
        let mut st = self.lock();
        if st.cfg.not_capable {
            return Err(no_flow_ops(op, h.port));
        }
        let rules = st.ports.get_mut(&h.port);
        match rules.and_then(|r| Some((r.iter().position(|x| x.id == h.id)?, r))) {
            Some((i, rules)) => f(rules, i),
            None => Err(fail(op, h.port, ENOENT, E::RTE_FLOW_ERROR_TYPE_HANDLE, "no such rule on this port")),
        }
    }
}

fn no_flow_ops(op: &'static str, port: u16) -> FlowError {
    fail(op, port, ENOSYS, E::RTE_FLOW_ERROR_TYPE_UNSPECIFIED, "the device implements no flow operations")
}

impl FlowDevice for NicModel {
    type Handle = ModelHandle;

    fn validate(&mut self, port: u16, rule: &Rule) -> Result<(), FlowError> {
        let st = self.lock();
        check(&st.cfg, &st.meters, VALIDATE, port, rule)
    }

    fn create(&mut self, port: u16, rule: &Rule) -> Result<ModelHandle, FlowError> {
        let full = |op| fail(op, port, ENOSPC, E::RTE_FLOW_ERROR_TYPE_UNSPECIFIED, "the port's rule table is full");
        let latency = {
            let st = self.lock();
            check(&st.cfg, &st.meters, CREATE, port, rule)?;
            if st.ports.get(&port).map_or(0, Vec::len) >= st.cfg.capacity {
                return Err(full(CREATE));
            }
            st.cfg.insert_latency
        };
        std::thread::sleep(latency);
        let mut st = self.lock();
        // Another clone may have filled the table, or destroyed the meter, meanwhile.
        if st.ports.get(&port).map_or(0, Vec::len) >= st.cfg.capacity {
            return Err(full(CREATE));
        }
        check(&st.cfg, &st.meters, CREATE, port, rule)?;
        let id = st.next_id;
        st.next_id += 1;
        st.ports.entry(port).or_default().push(Installed { id, rule: rule.clone(), count: FlowCount::default() });
        Ok(ModelHandle { port, id })
    }

    fn destroy(&mut self, handle: ModelHandle) -> Result<(), FlowError> {
        self.find(DESTROY, &handle, |rules, i| {
            rules.remove(i);
            Ok(())
        })
    }

    fn query(&mut self, handle: &ModelHandle) -> Result<FlowCount, FlowError> {
        self.find(QUERY, handle, |rules, i| {
            let r = &rules[i];
            if r.rule.actions.contains(&Action::Count) {
                Ok(r.count)
            } else {
                Err(fail(QUERY, handle.port, ENOTSUP, E::RTE_FLOW_ERROR_TYPE_ACTION, "the rule has no COUNT action"))
            }
        })
    }

    fn meter_create(&mut self, port: u16, id: u32, spec: &MeterSpec) -> Result<(), FlowError> {
        let mut st = self.lock();
        let bad = |m: &str| fail(MTR_CREATE, port, EINVAL, E::RTE_FLOW_ERROR_TYPE_ACTION_CONF, m);
        if st.cfg.not_capable {
            return Err(no_flow_ops(MTR_CREATE, port));
        }
        if !st.cfg.meters {
            let m = "the device has no meter objects";
            return Err(fail(MTR_CREATE, port, ENOTSUP, E::RTE_FLOW_ERROR_TYPE_UNSPECIFIED, m));
        }
        if st.meters.contains_key(&(port, id)) {
            let m = "a meter object with this id exists";
            return Err(fail(MTR_CREATE, port, EEXIST, E::RTE_FLOW_ERROR_TYPE_UNSPECIFIED, m));
        }
        let p = spec.profile;
        let params = MeterParams::TrTcm { cir: p.cir, cbs: p.cbs, pir: p.pir, pbs: p.pbs };
        let marker = Meter::new(params, dpdk_sys::lcore::rdtsc()).map_err(|e| bad(&e.to_string()))?;
        for (c, list) in spec.colors.iter().enumerate() {
            if list.iter().filter(|a| is_fate(a)).count() != 1 || !list.last().is_some_and(is_fate) {
                return Err(bad(&format!("the policy of color {c} must end with its one fate action")));
            }
            if list.iter().any(|a| matches!(a, Action::Meter(_) | Action::Mark(_) | Action::Queue(_) | Action::Rss(_)))
            {
                return Err(bad(&format!("the policy of color {c} may only have transfer actions")));
            }
        }
        st.meters.insert((port, id), ModelMeter { spec: spec.clone(), marker, stats: MeterStats::default() });
        Ok(())
    }

    fn meter_destroy(&mut self, port: u16, id: u32) -> Result<(), FlowError> {
        let mut st = self.lock();
        if st.cfg.not_capable {
            return Err(no_flow_ops(MTR_DESTROY, port));
        }
        if !st.meters.contains_key(&(port, id)) {
            return Err(fail(MTR_DESTROY, port, ENOENT, E::RTE_FLOW_ERROR_TYPE_HANDLE, "no such meter object"));
        }
        let used = st.ports.get(&port).is_some_and(|v| v.iter().any(|r| r.rule.actions.contains(&Action::Meter(id))));
        if used {
            let m = "rules still use the meter object";
            return Err(fail(MTR_DESTROY, port, EBUSY, E::RTE_FLOW_ERROR_TYPE_HANDLE, m));
        }
        st.meters.remove(&(port, id));
        Ok(())
    }

    fn meter_stats(&mut self, port: u16, id: u32) -> Result<MeterStats, FlowError> {
        let st = self.lock();
        if st.cfg.not_capable {
            return Err(no_flow_ops(MTR_STATS, port));
        }
        st.meters
            .get(&(port, id))
            .map(|m| m.stats)
            .ok_or_else(|| fail(MTR_STATS, port, ENOENT, E::RTE_FLOW_ERROR_TYPE_HANDLE, "no such meter object"))
    }
}

fn is_fate(a: &Action) -> bool {
    matches!(a, Action::Queue(_) | Action::Rss(_) | Action::Drop | Action::PortId(_) | Action::RepresentedPort(_))
}

/// The leading port item of a pattern, if any, and the header items after it.
fn split_port_item(pattern: &[Item]) -> (Option<&Item>, &[Item]) {
    match pattern.split_first() {
        Some((it, rest)) if matches!(it.kind, ItemKind::PortId | ItemKind::RepresentedPort) => (Some(it), rest),
        _ => (None, pattern),
    }
}

/// A port item's bytes for DPDK port `port` (native byte order; PORT_ID is a u32).
fn port_bytes(kind: ItemKind, port: u16) -> Vec<u8> {
    match kind {
        ItemKind::PortId => u32::from(port).to_ne_bytes().to_vec(),
        _ => port.to_ne_bytes().to_vec(),
    }
}

/// The whole validation, in the documented order. A `METER` rule's actions are each
/// color's list of its meter object, checked as the rule's own.
fn check(
    cfg: &ModelConfig,
    meters: &BTreeMap<(u16, u32), ModelMeter>,
    op: &'static str,
    port: u16,
    rule: &Rule,
) -> Result<(), FlowError> {
    if cfg.not_capable {
        return Err(no_flow_ops(op, port));
    }
    check_attr(cfg, op, port, rule)?;
    let headers = check_port_item(op, port, rule)?;
    check_items(cfg, op, port, headers)?;
    let Some(id) = rule.actions.iter().find_map(|a| if let Action::Meter(id) = a { Some(*id) } else { None }) else {
        return check_actions(op, port, rule);
    };
    let bad = |kind: E, m: &str| fail(op, port, EINVAL, kind, m);
    if rule.actions.len() != 1 || !rule.attr.transfer {
        return Err(bad(
            E::RTE_FLOW_ERROR_TYPE_ACTION,
            "METER must be a transfer rule's only action (its policy decides)",
        ));
    }
    let m = meters.get(&(port, id)).ok_or_else(|| bad(E::RTE_FLOW_ERROR_TYPE_ACTION_CONF, "no such meter object"))?;
    for list in &m.spec.colors {
        check_actions(op, port, &Rule { actions: list.clone(), ..rule.clone() })?;
    }
    Ok(())
}

fn check_attr(cfg: &ModelConfig, op: &'static str, port: u16, rule: &Rule) -> Result<(), FlowError> {
    let a = &rule.attr;
    if a.egress {
        return Err(fail(op, port, ENOTSUP, E::RTE_FLOW_ERROR_TYPE_ATTR_EGRESS, "egress rules are not supported"));
    }
    if a.transfer && !cfg.transfer {
        let m = "transfer (switch-domain) rules are not supported";
        return Err(fail(op, port, ENOTSUP, E::RTE_FLOW_ERROR_TYPE_ATTR_TRANSFER, m));
    }
    if a.ingress == a.transfer {
        let m = "exactly one of the ingress and transfer attributes must be set";
        return Err(fail(op, port, EINVAL, E::RTE_FLOW_ERROR_TYPE_ATTR, m));
    }
    Ok(())
}

/// Checks the leading port item (required by transfer rules); returns the header items.
fn check_port_item<'r>(op: &'static str, port: u16, rule: &'r Rule) -> Result<&'r [Item], FlowError> {
    let bad = |m: &str| fail(op, port, EINVAL, E::RTE_FLOW_ERROR_TYPE_ITEM, m);
    match split_port_item(&rule.pattern) {
        (Some(it), _) if it.spec != port_bytes(it.kind, port) => {
            Err(bad(&format!("the port item must name port {port}, the port the rule is created on")))
        }
        (None, _) if rule.attr.transfer => {
            Err(bad("a transfer rule must start with a REPRESENTED_PORT or PORT_ID item"))
        }
        (_, headers) => Ok(headers),
    }
}

/// The header items: supported kinds, exact spec/mask lengths, flags, stack order.
fn check_items(cfg: &ModelConfig, op: &'static str, port: u16, items: &[Item]) -> Result<(), FlowError> {
    let bad = |kind: E, m: String| fail(op, port, EINVAL, kind, m);
    if let Some(it) = items.iter().find(|it| !cfg.items.contains(&it.kind)) {
        let m = format!("item {:?} is not supported by this device", it.kind);
        return Err(fail(op, port, ENOTSUP, E::RTE_FLOW_ERROR_TYPE_ITEM, m));
    }
    let mut prev: Option<ItemKind> = None;
    for it in items {
        let n = it.kind.header_len();
        if it.spec.len() != n || it.mask.len() != n {
            return Err(bad(E::RTE_FLOW_ERROR_TYPE_ITEM_SPEC, format!("{:?} spec and mask are {n} bytes", it.kind)));
        }
        if it.flag.is_some() && !it.kind.has_flag() {
            return Err(bad(E::RTE_FLOW_ERROR_TYPE_ITEM, format!("{:?} has no flag to constrain", it.kind)));
        }
        if !follows(prev, it.kind) {
            let after = prev.map_or("the start of the pattern".into(), |k| format!("{k:?}"));
            let m = format!("item {:?} cannot follow {after} in a header stack", it.kind);
            return Err(bad(E::RTE_FLOW_ERROR_TYPE_ITEM, m));
        }
        prev = Some(it.kind);
    }
    Ok(())
}

/// Whether header `next` may come right after `prev` (`None`: the first header).
fn follows(prev: Option<ItemKind>, next: ItemKind) -> bool {
    use ItemKind::*;
    match next {
        Eth => matches!(prev, None | Some(Vxlan)),
        Vlan | Ipv4 | Ipv6 => matches!(prev, Some(Eth | Vlan)),
        Tcp | Udp | Sctp => matches!(prev, Some(Ipv4 | Ipv6)),
        Icmp => prev == Some(Ipv4),
        Icmp6 => prev == Some(Ipv6),
        Vxlan => prev == Some(Udp),
        PortId | RepresentedPort => false,
    }
}

fn check_actions(op: &'static str, port: u16, rule: &Rule) -> Result<(), FlowError> {
    let acts = &rule.actions;
    let bad = |kind: E, m: &str| fail(op, port, EINVAL, kind, m);
    match acts.iter().filter(|a| is_fate(a)).count() {
        1 if acts.last().is_some_and(is_fate) => {}
        1 => return Err(bad(E::RTE_FLOW_ERROR_TYPE_ACTION, "the fate action must be the last action")),
        n => return Err(bad(E::RTE_FLOW_ERROR_TYPE_ACTION_NUM, &format!("a rule needs exactly one fate, not {n}"))),
    }
    if rule.attr.ingress {
        let ok = |a: &Action| {
            matches!(a, Action::Mark(_) | Action::Queue(_) | Action::Rss(_) | Action::Count | Action::Drop)
        };
        if let Some(a) = acts.iter().find(|a| !ok(a)) {
            let m = format!("action {a:?} is only supported in transfer rules");
            return Err(fail(op, port, ENOTSUP, E::RTE_FLOW_ERROR_TYPE_ACTION, m));
        }
    }
    let has = |ks: &[ItemKind]| rule.pattern.iter().any(|it| ks.contains(&it.kind));
    let mut pushed = false;
    for a in acts {
        let need: &[ItemKind] = match a {
            Action::SetIpv4Src(_) | Action::SetIpv4Dst(_) => &[ItemKind::Ipv4],
            Action::SetIpv6Src(_) | Action::SetIpv6Dst(_) => &[ItemKind::Ipv6],
            Action::SetTtl(_) | Action::DecTtl => &[ItemKind::Ipv4, ItemKind::Ipv6],
            Action::SetTpSrc(_) | Action::SetTpDst(_) => &[ItemKind::Tcp, ItemKind::Udp, ItemKind::Sctp],
            Action::OfPopVlan | Action::OfSetVlanVid(_) | Action::OfSetVlanPcp(_) if !pushed => &[ItemKind::Vlan],
            Action::VxlanDecap => &[ItemKind::Vxlan],
            Action::PortId(p) if *p > u32::from(u16::MAX) => {
                return Err(bad(E::RTE_FLOW_ERROR_TYPE_ACTION_CONF, "PORT_ID names no DPDK port"));
            }
            Action::RawEncap(d) if d.len() < 14 => {
                return Err(bad(
                    E::RTE_FLOW_ERROR_TYPE_ACTION_CONF,
                    "RAW_ENCAP data must start with an Ethernet header",
                ));
            }
            _ => &[],
        };
        pushed |= matches!(a, Action::OfPushVlan(_));
        if !need.is_empty() && !has(need) {
            let m = format!("action {a:?} needs a {need:?} item in the pattern");
            return Err(bad(E::RTE_FLOW_ERROR_TYPE_ACTION, &m));
        }
    }
    Ok(())
}

/// A header the NIC's parser found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layer {
    kind: ItemKind,
    off: usize,
    /// ETH: `has_vlan`; VLAN: `has_more_vlan`.
    flag: Option<bool>,
}

fn be16(p: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(at)?, *p.get(at + 1)?]))
}

fn is_tpid(t: u16) -> bool {
    matches!(t, 0x8100 | 0x88a8)
}

/// The headers of a packet, outermost first; each one lies wholly inside the packet.
fn parse(p: &[u8]) -> Vec<Layer> {
    let mut out = Vec::new();
    parse_stack(p, 0, true, &mut out);
    out
}

fn parse_stack(p: &[u8], mut off: usize, tunnel: bool, out: &mut Vec<Layer>) {
    let Some(mut ty) = be16(p, off + 12) else { return };
    out.push(Layer { kind: ItemKind::Eth, off, flag: Some(is_tpid(ty)) });
    off += 14;
    while is_tpid(ty) {
        let Some(inner) = be16(p, off + 2) else { return };
        out.push(Layer { kind: ItemKind::Vlan, off, flag: Some(is_tpid(inner)) });
        off += 4;
        ty = inner;
    }
    let (proto, v6) = match ty {
        0x0800 if p.len() >= off + 20 => {
            out.push(Layer { kind: ItemKind::Ipv4, off, flag: None });
            let ihl = usize::from(p[off] & 0x0f) * 4;
            let fragment = be16(p, off + 6).unwrap_or(0) & 0x1fff != 0;
            if ihl < 20 || fragment {
                return;
            }
            let proto = p[off + 9];
            off += ihl;
            (proto, false)
        }
        0x86dd if p.len() >= off + 40 => {
            out.push(Layer { kind: ItemKind::Ipv6, off, flag: None });
            let proto = p[off + 6];
            off += 40;
            (proto, true)
        }
        _ => return,
    };
    let kind = match (proto, v6) {
        (6, _) => ItemKind::Tcp,
        (17, _) => ItemKind::Udp,
        (132, _) => ItemKind::Sctp,
        (1, false) => ItemKind::Icmp,
        (58, true) => ItemKind::Icmp6,
        _ => return,
    };
    if p.len() < off + kind.header_len() {
        return;
    }
    out.push(Layer { kind, off, flag: None });
    if kind == ItemKind::Udp && tunnel && be16(p, off + 2) == Some(VXLAN_PORT) && p.len() >= off + 16 {
        out.push(Layer { kind: ItemKind::Vxlan, off: off + 8, flag: None });
        parse_stack(p, off + 16, false, out);
    }
}

fn masked_eq(bytes: &[u8], spec: &[u8], mask: &[u8]) -> bool {
    bytes.len() == spec.len() && bytes.iter().zip(spec).zip(mask).all(|((b, s), m)| b & m == s & m)
}

/// Whether `rule` matches a packet received on `port` with headers `layers`.
fn matches(rule: &Rule, port: u16, layers: &[Layer], p: &[u8]) -> bool {
    let (port_item, headers) = split_port_item(&rule.pattern);
    port_item.is_none_or(|it| masked_eq(&port_bytes(it.kind, port), &it.spec, &it.mask))
        && headers.len() <= layers.len()
        && headers.iter().zip(layers).all(|(it, l)| item_matches(it, l, p))
}

fn item_matches(it: &Item, l: &Layer, p: &[u8]) -> bool {
    let end = l.off + it.kind.header_len();
    it.kind == l.kind
        && it.flag.is_none_or(|f| l.flag == Some(f))
        && p.get(l.off..end).is_some_and(|b| masked_eq(b, &it.spec, &it.mask))
}

/// Run a matching rule's actions on the packet, up to its fate.
fn execute(rule: &Rule, p: &mut Vec<u8>) -> Verdict {
    let mut mark = None;
    for a in &rule.actions {
        match a {
            Action::Mark(m) => mark = Some(*m),
            Action::Queue(q) => return Verdict::ToHost { mark, queue: Some(*q) },
            Action::Rss(_) => return Verdict::ToHost { mark, queue: None },
            Action::Drop => return Verdict::Dropped,
            Action::Count => {}
            Action::PortId(port) => return Verdict::Forwarded { port: *port as u16 },
            Action::RepresentedPort(port) => return Verdict::Forwarded { port: *port },
            other => rewrite(other, p),
        }
    }
    Verdict::ToHost { mark, queue: None }
}

/// Apply one header-changing action. Offsets come from a fresh parse; an action whose
/// header is missing (validation makes that unlikely) does nothing.
fn rewrite(a: &Action, p: &mut Vec<u8>) {
    let layers = parse(p);
    let ip = layers.iter().position(|l| matches!(l.kind, ItemKind::Ipv4 | ItemKind::Ipv6));
    let tagged = be16(p, 12).is_some_and(is_tpid) && p.len() >= 18;
    match a {
        Action::OfPopVlan if tagged => drop(p.drain(12..16)),
        Action::OfPushVlan(tpid) if p.len() >= 14 => {
            let [hi, lo] = tpid.to_be_bytes();
            p.splice(12..12, [hi, lo, 0, 0]);
        }
        Action::OfSetVlanVid(vid) if tagged => set_tci(p, 0x0fff, vid & 0x0fff),
        Action::OfSetVlanPcp(pcp) if tagged => set_tci(p, 0xe000, u16::from(pcp & 7) << 13),
        Action::SetMacDst(m) if p.len() >= 14 => p[0..6].copy_from_slice(m),
        Action::SetMacSrc(m) if p.len() >= 14 => p[6..12].copy_from_slice(m),
        Action::SetTtl(t) => set_ttl(p, ip.map(|i| layers[i]), |_| *t),
        Action::DecTtl => set_ttl(p, ip.map(|i| layers[i]), |t| t.wrapping_sub(1)),
        Action::SetIpv4Src(v) => set_addr(p, &layers, ItemKind::Ipv4, 12, v),
        Action::SetIpv4Dst(v) => set_addr(p, &layers, ItemKind::Ipv4, 16, v),
        Action::SetIpv6Src(v) => set_addr(p, &layers, ItemKind::Ipv6, 8, v),
        Action::SetIpv6Dst(v) => set_addr(p, &layers, ItemKind::Ipv6, 24, v),
        Action::SetTpSrc(port) => set_l4_port(p, &layers, 0, *port),
        Action::SetTpDst(port) => set_l4_port(p, &layers, 2, *port),
        Action::VxlanDecap => {
            if let Some(vx) = layers.iter().find(|l| l.kind == ItemKind::Vxlan) {
                p.drain(..vx.off + 8);
            }
        }
        Action::RawEncap(data) => {
            p.splice(0..0, data.iter().copied());
            fill_encap_lengths(p, data.len());
        }
        Action::RawDecap(data) => drop(p.drain(..data.len().min(p.len()))),
        _ => {}
    }
}

/// Change the outer tag's TCI bits under `mask` to `value`.
fn set_tci(p: &mut [u8], mask: u16, value: u16) {
    let tci = u16::from_be_bytes([p[14], p[15]]) & !mask | value;
    p[14..16].copy_from_slice(&tci.to_be_bytes());
}

/// Set the TTL / hop limit of the IP layer `ip`; an IPv4 checksum is recomputed.
fn set_ttl(p: &mut [u8], ip: Option<Layer>, f: impl Fn(u8) -> u8) {
    match ip {
        Some(l) if l.kind == ItemKind::Ipv4 => {
            p[l.off + 8] = f(p[l.off + 8]);
            fix_ipv4_checksum(p, l.off);
        }
        Some(l) => p[l.off + 7] = f(p[l.off + 7]),
        None => {}
    }
}

/// Set an address of the outermost `kind` layer at byte `at`; fix the IPv4 checksum
/// and the following L4 checksum (its pseudo-header holds the address).
fn set_addr(p: &mut [u8], layers: &[Layer], kind: ItemKind, at: usize, new: &[u8]) {
    let Some(i) = layers.iter().position(|l| l.kind == kind) else { return };
    let off = layers[i].off + at;
    let old = p[off..off + new.len()].to_vec();
    p[off..off + new.len()].copy_from_slice(new);
    if kind == ItemKind::Ipv4 {
        fix_ipv4_checksum(p, layers[i].off);
    }
    if let Some(l4) = layers.get(i + 1) {
        adjust_l4_checksum(p, l4, &old, new);
    }
}

/// Set the source (`at` 0) or destination (`at` 2) port of the outermost L4 layer.
fn set_l4_port(p: &mut [u8], layers: &[Layer], at: usize, port: u16) {
    let tp = [ItemKind::Tcp, ItemKind::Udp, ItemKind::Sctp];
    let Some(l4) = layers.iter().find(|l| tp.contains(&l.kind)) else { return };
    let old = p[l4.off + at..l4.off + at + 2].to_vec();
    p[l4.off + at..l4.off + at + 2].copy_from_slice(&port.to_be_bytes());
    adjust_l4_checksum(p, l4, &old, &port.to_be_bytes());
}

/// Update the checksum of L4 layer `l4` for covered bytes `old` -> `new` (RFC 1624).
/// A zero UDP checksum (none) stays zero; SCTP's CRC32c is not modelled.
fn adjust_l4_checksum(p: &mut [u8], l4: &Layer, old: &[u8], new: &[u8]) {
    let at = match l4.kind {
        ItemKind::Tcp => l4.off + 16,
        ItemKind::Udp => l4.off + 6,
        ItemKind::Icmp6 => l4.off + 2,
        _ => return,
    };
    let csum = u16::from_be_bytes([p[at], p[at + 1]]);
    if l4.kind == ItemKind::Udp && csum == 0 {
        return;
    }
    let c = match checksum_adjust(csum, old, new) {
        0 if l4.kind == ItemKind::Udp => 0xffff,
        c => c,
    };
    p[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The one's complement sum of 16-bit big-endian words (an odd tail padded).
fn ones_sum(bytes: &[u8]) -> u32 {
    bytes.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]))).sum()
}

/// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
fn checksum_adjust(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    let removed: u32 = old.chunks(2).map(|w| u32::from(!u16::from_be_bytes([w[0], w[1]]))).sum();
    !fold(u32::from(!csum) + removed + ones_sum(new))
}

/// Recompute, from scratch, the checksum of the IPv4 header at `off`.
/// What a NIC does after pushing `n` bytes of outer headers: the outer IPv4 total
/// length (then its checksum) or IPv6 payload length, and the UDP length, set from the
/// packet's new length. Fields outside the pushed bytes are left alone.
fn fill_encap_lengths(p: &mut [u8], n: usize) {
    let len = p.len();
    let mut ip = 14;
    if be16(p, 12).is_some_and(is_tpid) {
        ip = 18;
    }
    let put = |p: &mut [u8], at: usize, v: usize| p[at..at + 2].copy_from_slice(&(v as u16).to_be_bytes());
    let l4 = match be16(p, ip - 2) {
        Some(0x0800) if n >= ip + 20 => {
            put(p, ip + 2, len - ip);
            fix_ipv4_checksum(p, ip);
            (p[ip + 9] == 17).then_some(ip + usize::from(p[ip] & 0x0f) * 4)
        }
        Some(0x86dd) if n >= ip + 40 => {
            put(p, ip + 4, len - ip - 40);
            (p[ip + 6] == 17).then_some(ip + 40)
        }
        _ => None,
    };
    if let Some(udp) = l4.filter(|u| n >= u + 8) {
        put(p, udp + 4, len - udp);
    }
}

fn fix_ipv4_checksum(p: &mut [u8], off: usize) {
    let end = (off + usize::from(p[off] & 0x0f) * 4).clamp(off + 20, p.len());
    p[off + 10..off + 12].fill(0);
    let c = !fold(ones_sum(&p[off..end]));
    p[off + 10..off + 12].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpdk_sys::flow::Attr;
    use ItemKind::*;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xaa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xbb];

    /// An IPv4 header 10.0.0.1 -> `dst` with `opts` option bytes, then `l4`.
    fn ipv4(proto: u8, dst: [u8; 4], ttl: u8, opts: usize, l4: &[u8]) -> Vec<u8> {
        let total = ((20 + opts + l4.len()) as u16).to_be_bytes();
        let mut h = vec![0x40 | (5 + opts / 4) as u8, 0, total[0], total[1], 0, 1, 0, 0, ttl, proto, 0, 0, 10, 0, 0, 1];
        h.extend(dst);
        h.resize(20 + opts, 1);
        fix_ipv4_checksum(&mut h, 0);
        [h, l4.to_vec()].concat()
    }

    fn tcp(dport: u16) -> Vec<u8> {
        [&[0x03, 0xe8][..], &dport.to_be_bytes(), &[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 2, 0xff, 0xff, 0x12, 0x34, 0, 0]]
            .concat()
    }

    fn udp(dport: u16, csum: u16, payload: &[u8]) -> Vec<u8> {
        let len = 8 + payload.len() as u16;
        [&[0x0f, 0xa0][..], &dport.to_be_bytes(), &len.to_be_bytes(), &csum.to_be_bytes(), payload].concat()
    }

    /// An Ethernet frame B -> A with these 802.1Q tags, EtherType and body.
    fn frame(tags: &[u16], ty: u16, body: &[u8]) -> Vec<u8> {
        let tags: Vec<u8> = tags.iter().flat_map(|t| [[0x81, 0], t.to_be_bytes()].concat()).collect();
        [&A[..], &B, &tags, &ty.to_be_bytes(), body].concat()
    }

    /// An item matching these exact bytes (offset, value).
    fn item(kind: ItemKind, fields: &[(usize, &[u8])], flag: Option<bool>) -> Item {
        let mut it = Item { flag, ..Item::any(kind) };
        for (at, v) in fields {
            it.spec[*at..*at + v.len()].copy_from_slice(v);
            it.mask[*at..*at + v.len()].fill(0xff);
        }
        it
    }

    fn ingress(pattern: Vec<Item>, actions: Vec<Action>) -> Rule {
        Rule { attr: Attr { ingress: true, ..Attr::default() }, pattern, actions }
    }

    fn transfer(port: u16, pattern: Vec<Item>, actions: Vec<Action>) -> Rule {
        let pattern = [vec![Item::represented_port(port)], pattern].concat();
        Rule { attr: Attr { transfer: true, ..Attr::default() }, pattern, actions }
    }

    fn host(mark: Option<u32>, queue: Option<u16>) -> Verdict {
        Verdict::ToHost { mark, queue }
    }

    #[test]
    fn a_partial_rule_marks_matching_packets_only() {
        let mut m = NicModel::new(ModelConfig::default());
        let ip = item(Ipv4, &[(16, &[10, 0, 0, 2])], None);
        let rule =
            ingress(vec![item(Eth, &[], Some(false)), ip, Item::any(Tcp)], vec![Action::Mark(7), Action::Queue(1)]);
        m.create(0, &rule).unwrap();
        let mut hit = frame(&[], 0x0800, &ipv4(6, [10, 0, 0, 2], 64, 0, &tcp(80)));
        let before = hit.clone();
        assert_eq!(m.receive(0, &mut hit), host(Some(7), Some(1)));
        assert_eq!(hit, before, "a partial rule leaves the packet alone");
        assert_eq!(m.receive(1, &mut hit), host(None, None), "rules are per port");
        let mut other_dst = frame(&[], 0x0800, &ipv4(6, [10, 0, 0, 3], 64, 0, &tcp(80)));
        assert_eq!(m.receive(0, &mut other_dst), host(None, None));
        let mut udp_pkt = frame(&[], 0x0800, &ipv4(17, [10, 0, 0, 2], 64, 0, &udp(2, 0, b"x")));
        assert_eq!(m.receive(0, &mut udp_pkt), host(None, None), "the wildcard TCP item still needs TCP");
        let mut tagged = frame(&[5], 0x0800, &ipv4(6, [10, 0, 0, 2], 64, 0, &tcp(80)));
        assert_eq!(m.receive(0, &mut tagged), host(None, None), "has_vlan = 0");
        m.create(0, &ingress(vec![item(Eth, &[], Some(true))], vec![Action::Mark(9), Action::Rss(vec![0, 1])]))
            .unwrap();
        assert_eq!(m.receive(0, &mut tagged), host(Some(9), None));
        assert_eq!(m.receive(0, &mut hit), host(Some(7), Some(1)), "the first rule still decides");
    }

    #[test]
    fn capacity_latency_and_unknown_handles() {
        let cfg = ModelConfig { capacity: 2, insert_latency: Duration::from_millis(20), ..ModelConfig::default() };
        let mut m = NicModel::new(cfg);
        let rule = ingress(vec![Item::any(Eth)], vec![Action::Queue(0)]);
        let t = std::time::Instant::now();
        let h = m.create(3, &rule).unwrap();
        assert!(t.elapsed() >= Duration::from_millis(20), "create takes the insertion latency");
        m.create(3, &rule).unwrap();
        let e = m.create(3, &rule).unwrap_err();
        assert_eq!((e.op, e.port, e.errno), (CREATE, 3, ENOSPC));
        m.create(4, &rule).unwrap();
        assert_eq!((m.rules(3), m.total_rules()), (2, 3));
        m.destroy(h.clone()).unwrap();
        m.create(3, &rule).unwrap();
        let e = m.destroy(h).unwrap_err();
        assert_eq!((e.op, e.port, e.errno), (DESTROY, 3, ENOENT));
        assert_eq!(m.destroy(ModelHandle { port: 9, id: 1 }).unwrap_err().errno, ENOENT);
    }

    #[test]
    fn refusals_carry_the_pmd_errno() {
        let mut m = NicModel::new(ModelConfig { items: vec![Eth, Ipv4], ..ModelConfig::default() });
        let rule = ingress(vec![Item::any(Eth), Item::any(Ipv4), Item::any(Tcp)], vec![Action::Count, Action::Drop]);
        let e = m.validate(0, &rule).unwrap_err();
        assert_eq!((e.op, e.errno, e.kind), (VALIDATE, ENOTSUP, E::RTE_FLOW_ERROR_TYPE_ITEM.0), "{e}");
        assert_eq!(m.create(0, &rule).unwrap_err().errno, ENOTSUP);
        m.set_config(ModelConfig::default());
        let h = m.create(0, &rule).unwrap();
        m.set_config(ModelConfig { not_capable: true, ..ModelConfig::default() });
        assert_eq!(m.validate(0, &rule).unwrap_err().errno, ENOSYS);
        assert_eq!(m.create(0, &rule).unwrap_err().errno, ENOSYS);
        assert_eq!(m.query(&h).unwrap_err().errno, ENOSYS);
        m.set_config(ModelConfig { transfer: false, ..ModelConfig::default() });
        let e = m.validate(0, &transfer(0, vec![], vec![Action::Drop])).unwrap_err();
        assert_eq!((e.errno, e.kind), (ENOTSUP, E::RTE_FLOW_ERROR_TYPE_ATTR_TRANSFER.0));
        m.set_config(ModelConfig::default());
        let eth = || vec![Item::any(Eth)];
        let attr = |ingress, egress, transfer| Rule {
            attr: Attr { ingress, egress, transfer, ..Attr::default() },
            pattern: eth(),
            actions: vec![Action::Drop],
        };
        let fwd = |a: Action| vec![a, Action::RepresentedPort(1)];
        let cases = [
            (attr(false, true, false), ENOTSUP),
            (attr(false, false, false), EINVAL),
            (attr(false, false, true), EINVAL),
            (transfer(1, eth(), vec![Action::Drop]), EINVAL),
            (ingress(vec![Item::any(Ipv4)], vec![Action::Drop]), EINVAL),
            (ingress(vec![Item::any(Eth), Item::any(Vxlan)], vec![Action::Drop]), EINVAL),
            (ingress(eth(), vec![Action::Mark(1)]), EINVAL),
            (ingress(eth(), vec![Action::Drop, Action::Count]), EINVAL),
            (ingress(eth(), vec![Action::Queue(0), Action::Drop]), EINVAL),
            (ingress(eth(), vec![Action::SetMacDst(A), Action::Queue(0)]), ENOTSUP),
            (ingress(eth(), vec![Action::RepresentedPort(1)]), ENOTSUP),
            (transfer(0, eth(), fwd(Action::OfPopVlan)), EINVAL),
            (transfer(0, eth(), fwd(Action::DecTtl)), EINVAL),
            (transfer(0, eth(), fwd(Action::VxlanDecap)), EINVAL),
        ];
        for (rule, errno) in cases {
            assert_eq!(m.validate(0, &rule).map_err(|e| e.errno), Err(errno), "{rule:?}");
        }
        let push = vec![Action::OfPushVlan(0x8100), Action::OfSetVlanVid(3), Action::RepresentedPort(1)];
        m.validate(0, &transfer(0, eth(), push)).unwrap();
    }

    #[test]
    fn a_full_rule_rewrites_macs_decrements_ttl_counts_and_forwards() {
        let mut m = NicModel::new(ModelConfig::default());
        let pattern = vec![item(Eth, &[(12, &[8, 0])], Some(false)), item(Ipv4, &[(16, &[10, 0, 1, 10])], None)];
        let acts = vec![Action::SetMacDst([2; 6]), Action::SetMacSrc([4; 6]), Action::DecTtl, Action::Count];
        let h = m.create(10, &transfer(10, pattern, [acts, vec![Action::RepresentedPort(11)]].concat())).unwrap();
        let body = udp(53, 0, b"payload");
        let mut p = frame(&[], 0x0800, &ipv4(17, [10, 0, 1, 10], 64, 0, &body));
        let len = p.len() as u64;
        assert_eq!(m.receive(10, &mut p), Verdict::Forwarded { port: 11 });
        let mut want = frame(&[], 0x0800, &ipv4(17, [10, 0, 1, 10], 63, 0, &body));
        want[..12].copy_from_slice(&[[2; 6], [4; 6]].concat());
        assert_eq!(p, want);
        assert_eq!(fold(ones_sum(&p[14..34])), 0xffff, "the IPv4 checksum is valid");
        assert_eq!(m.receive(11, &mut p), host(None, None), "the rule is on port 10 only");
        assert_eq!(m.query(&h).unwrap(), FlowCount { hits: 1, bytes: len });
    }

    /// A meter object in front of a rule's actions: DPDK's trTCM colors each packet
    /// (packets mode: 2 committed, 1 more peak, then RED until the 1/s refill), the
    /// color's list runs, statistics count per color; policies are checked against
    /// each rule's pattern, and an object in use cannot go.
    #[test]
    fn a_meter_rule_runs_each_packet_through_its_colors_policy() {
        dpdk_sys::eal::Eal::for_tests("sluice-offload-test");
        let mut m = NicModel::new(ModelConfig::default());
        let profile = dpdk_sys::mtr::Profile { cir: 1, pir: 1, cbs: 2, pbs: 3, packets: true };
        let green = vec![Action::SetMacDst([2; 6]), Action::DecTtl, Action::RepresentedPort(11)];
        let spec = MeterSpec { profile, colors: [green, vec![Action::RepresentedPort(12)], vec![Action::Drop]] };
        m.meter_create(10, 3, &spec).unwrap();
        let e = m.meter_create(10, 3, &spec).unwrap_err();
        assert_eq!((e.op, e.errno), (MTR_CREATE, EEXIST));
        let pattern = vec![item(Eth, &[(12, &[8, 0])], Some(false)), item(Ipv4, &[(16, &[10, 0, 1, 10])], None)];
        let h = m.create(10, &transfer(10, pattern.clone(), vec![Action::Meter(3)])).unwrap();
        let body = udp(53, 0, b"payload");
        let pkt = frame(&[], 0x0800, &ipv4(17, [10, 0, 1, 10], 64, 0, &body));
        let mut routed = frame(&[], 0x0800, &ipv4(17, [10, 0, 1, 10], 63, 0, &body));
        routed[..6].copy_from_slice(&[2; 6]);
        let want = [
            (Verdict::Forwarded { port: 11 }, &routed),
            (Verdict::Forwarded { port: 11 }, &routed),
            (Verdict::Forwarded { port: 12 }, &pkt),
            (Verdict::Dropped, &pkt),
            (Verdict::Dropped, &pkt),
        ];
        for (i, (verdict, bytes)) in want.into_iter().enumerate() {
            let mut p = pkt.clone();
            assert_eq!(m.receive(10, &mut p), verdict, "packet {i}");
            if verdict != Verdict::Dropped {
                assert_eq!(&p, bytes, "packet {i}");
            }
        }
        let n = pkt.len() as u64;
        assert_eq!(m.meter_stats(10, 3).unwrap(), MeterStats { packets: [2, 1, 2], bytes: [2 * n, n, 2 * n] });
        assert_eq!(m.meter_stats(11, 3).unwrap_err().errno, ENOENT, "objects are per port");
        // In use: not destroyed; after its rule: gone.
        assert_eq!(m.meter_destroy(10, 3).unwrap_err().errno, EBUSY);
        m.destroy(h).unwrap();
        m.meter_destroy(10, 3).unwrap();
        assert_eq!(m.total_meters(), 0);
        assert_eq!(m.meter_destroy(10, 3).unwrap_err().errno, ENOENT);
        // A rule naming no object, or with more than METER.
        let e = m.validate(10, &transfer(10, pattern.clone(), vec![Action::Meter(3)])).unwrap_err();
        assert_eq!((e.errno, e.message.as_str()), (EINVAL, "no such meter object"));
        m.meter_create(10, 4, &spec).unwrap();
        let e = m.validate(10, &transfer(10, pattern, vec![Action::Count, Action::Meter(4)])).unwrap_err();
        assert_eq!(e.errno, EINVAL, "{e}");
        // The GREEN list's DEC_TTL needs an IP item in the rule's pattern.
        let e = m.validate(10, &transfer(10, vec![Item::any(Eth)], vec![Action::Meter(4)])).unwrap_err();
        assert!(e.message.contains("DecTtl"), "{e}");
        // Policies end with one fate; objects exist only where the NIC has meters.
        let no_fate =
            MeterSpec { colors: [vec![Action::DecTtl], vec![Action::Drop], vec![Action::Drop]], ..spec.clone() };
        assert_eq!(m.meter_create(10, 5, &no_fate).unwrap_err().errno, EINVAL);
        m.set_config(ModelConfig { meters: false, ..ModelConfig::default() });
        assert_eq!(m.meter_create(10, 6, &spec).unwrap_err().errno, ENOTSUP);
    }

    #[test]
    fn drop_and_query() {
        let mut m = NicModel::new(ModelConfig::default());
        let pattern = vec![Item::any(Eth), Item::any(Ipv4), item(Tcp, &[(2, &[0, 80])], None)];
        let counted = m.create(2, &ingress(pattern, vec![Action::Count, Action::Drop])).unwrap();
        let mut web = frame(&[], 0x0800, &ipv4(6, [1, 1, 1, 1], 64, 0, &tcp(80)));
        let mut ssh = frame(&[], 0x0800, &ipv4(6, [1, 1, 1, 1], 64, 0, &tcp(22)));
        assert_eq!(m.receive(2, &mut web), Verdict::Dropped);
        assert_eq!(m.receive(2, &mut web), Verdict::Dropped);
        assert_eq!(m.receive(2, &mut ssh), host(None, None));
        let mut cut = web[..14 + 20 + 10].to_vec();
        assert_eq!(m.receive(2, &mut cut), host(None, None), "too short for the TCP item");
        assert_eq!(m.query(&counted).unwrap(), FlowCount { hits: 2, bytes: 2 * web.len() as u64 });
        let uncounted = m.create(2, &ingress(vec![], vec![Action::Drop])).unwrap();
        let e = m.query(&uncounted).unwrap_err();
        assert_eq!((e.op, e.errno), (QUERY, ENOTSUP));
    }

    #[test]
    fn vlan_push_set_and_pop() {
        let mut m = NicModel::new(ModelConfig::default());
        let push =
            vec![Action::OfPushVlan(0x8100), Action::OfSetVlanVid(0x123), Action::OfSetVlanPcp(5), Action::PortId(2)];
        m.create(1, &transfer(1, vec![item(Eth, &[], Some(false))], push)).unwrap();
        let body = ipv4(17, [9, 9, 9, 9], 64, 0, &udp(2, 0, b"hi"));
        let mut p = frame(&[], 0x0800, &body);
        assert_eq!(m.receive(1, &mut p), Verdict::Forwarded { port: 2 });
        assert_eq!(p, frame(&[0xa123], 0x0800, &body));
        let vid = Item { spec: vec![0x01, 0x23, 0, 0], mask: vec![0x0f, 0xff, 0, 0], ..Item::any(Vlan) };
        m.create(2, &transfer(2, vec![Item::any(Eth), vid], vec![Action::OfPopVlan, Action::RepresentedPort(1)]))
            .unwrap();
        assert_eq!(m.receive(2, &mut p), Verdict::Forwarded { port: 1 }, "the VID matches under its mask");
        assert_eq!(p, frame(&[], 0x0800, &body));
    }

    #[test]
    fn vxlan_decap_leaves_the_inner_frame() {
        let mut m = NicModel::new(ModelConfig::default());
        let inner = frame(&[], 0x0800, &ipv4(6, [192, 168, 0, 1], 64, 0, &tcp(6)));
        let vx = [&[0x08, 0, 0, 0, 0, 0, 42, 0][..], &inner].concat();
        let mut p = frame(&[], 0x0800, &ipv4(17, [10, 0, 0, 9], 64, 0, &udp(VXLAN_PORT, 0, &vx)));
        let (vni, inner_ip) = (item(Vxlan, &[(4, &[0, 0, 42])], None), item(Ipv4, &[(16, &[192, 168, 0, 1])], None));
        let pattern = [Item::any(Eth), Item::any(Ipv4), Item::any(Udp), vni, Item::any(Eth), inner_ip].to_vec();
        let acts = vec![Action::VxlanDecap, Action::SetMacDst(B), Action::RepresentedPort(4)];
        m.create(3, &transfer(3, pattern, acts)).unwrap();
        assert_eq!(m.receive(3, &mut p), Verdict::Forwarded { port: 4 });
        assert_eq!(p, [&B[..], &inner[6..]].concat(), "the inner frame, its MAC rewritten after the decap");
    }

    #[test]
    fn nat_rewrites_keep_l4_checksums_valid() {
        let mut m = NicModel::new(ModelConfig::default());
        let pattern = vec![Item::any(Eth), Item::any(Ipv4), item(Udp, &[(2, &[0, 53])], None)];
        let acts = vec![Action::SetIpv4Dst([172, 16, 0, 7]), Action::SetTpDst(5353), Action::RepresentedPort(1)];
        m.create(0, &transfer(0, pattern, acts)).unwrap();
        // The UDP checksum from scratch: pseudo-header (addresses, protocol, length), datagram.
        let udp_sum = |ip: &[u8], d: &[u8]| !fold(ones_sum(&ip[12..20]) + 17 + d.len() as u32 + ones_sum(d));
        let mut d = udp(53, 0, b"query!");
        let c = udp_sum(&ipv4(17, [10, 0, 0, 2], 64, 0, &[]), &d);
        d[6..8].copy_from_slice(&c.to_be_bytes());
        let mut p = frame(&[], 0x0800, &ipv4(17, [10, 0, 0, 2], 64, 0, &d));
        assert_eq!(m.receive(0, &mut p), Verdict::Forwarded { port: 1 });
        assert_eq!((&p[30..34], &p[36..38]), (&[172, 16, 0, 7][..], &5353u16.to_be_bytes()[..]));
        assert_eq!(fold(ones_sum(&p[14..34])), 0xffff, "the IPv4 checksum is valid");
        let mut d = p[34..].to_vec();
        d[6..8].fill(0);
        assert_eq!(&p[40..42], udp_sum(&p[14..34], &d).to_be_bytes(), "the UDP checksum is updated");
        let mut p = frame(&[], 0x0800, &ipv4(17, [10, 0, 0, 2], 64, 0, &udp(53, 0, b"x")));
        m.receive(0, &mut p);
        assert_eq!(&p[40..42], &[0, 0], "no UDP checksum stays none");
    }

    #[test]
    fn ipv4_options_move_l4_and_later_fragments_have_none() {
        let mut m = NicModel::new(ModelConfig::default());
        let pattern = vec![Item::any(Eth), Item::any(Ipv4), item(Tcp, &[(2, &[0x1f, 0x90])], None)];
        m.create(0, &ingress(pattern, vec![Action::Mark(3), Action::Queue(0)])).unwrap();
        let mut p = frame(&[], 0x0800, &ipv4(6, [1, 2, 3, 4], 64, 4, &tcp(8080)));
        assert_eq!(parse(&p)[2], Layer { kind: Tcp, off: 14 + 24, flag: None });
        assert_eq!(m.receive(0, &mut p), host(Some(3), Some(0)));
        let mut frag = frame(&[], 0x0800, &ipv4(6, [1, 2, 3, 4], 64, 0, &tcp(8080)));
        frag[14 + 7] = 0xb9; // fragment offset 185 (x 8 bytes)
        fix_ipv4_checksum(&mut frag, 14);
        assert_eq!(parse(&frag).len(), 2, "ETH and IPv4 only");
        assert_eq!(m.receive(0, &mut frag), host(None, None));
    }
}
