//! rte_flow. Rules are plain Rust values — [`Rule`]: attributes, pattern [`Item`]s with
//! spec and mask as header bytes, [`Action`]s — converted to DPDK's structures only
//! for the calls that take them: [`validate`], [`create`] (an owned [`FlowRule`],
//! destroyed explicitly or on drop), [`FlowRule::query_count`], and [`conv`], DPDK's
//! own deep copy of a rule (`rte_flow_conv`), read back into a [`Rule`]: the proof
//! that DPDK understands every item and action exactly as Sluice meant it.
//!
//! # Spec and mask bytes
//! An item's spec and mask are the protocol header as on the wire, which is how
//! DPDK 22.11 lays out the leading bytes of each item structure (`rte_flow_item_ipv4`
//! is `struct rte_ipv4_hdr`, and so on; checked at compile time below). Port items
//! are the id in host order. The one flag bit some items carry after the header
//! (`has_vlan` of ETH, `has_more_vlan` of VLAN) is [`Item::flag`].

use std::any::Any;
use std::ffi::{c_char, c_void, CStr};
use std::mem::size_of;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::port::Port;
use crate::{errno_name, raw};

/// Why DPDK refused a flow call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op}(port {port}): {message} ({errno_name}, error type {kind})", errno_name = errno_name(*.errno))]
pub struct FlowError {
    /// The call (`rte_flow_validate`, `rte_flow_create`, ...).
    pub op: &'static str,
    /// The DPDK port id (`u16::MAX` for calls without a port).
    pub port: u16,
    /// The positive errno (`ENOSYS`: the PMD has no flow ops; `ENOTSUP`: an item or
    /// action is not supported).
    pub errno: i32,
    /// `rte_flow_error_type` of the refusal.
    pub kind: u32,
    /// The PMD's message, or strerror when it gave none.
    pub message: String,
}

impl FlowError {
    fn new(op: &'static str, port: u16, ret: i32, err: &raw::rte_flow_error) -> FlowError {
        FlowError::from_parts(op, port, ret, err.type_.0, err.message)
    }

    /// From a DPDK call's return value and its error structure's type and message
    /// (rte_flow's and rte_mtr's have the same shape).
    pub(crate) fn from_parts(op: &'static str, port: u16, ret: i32, kind: u32, message: *const c_char) -> FlowError {
        let errno = ret.saturating_abs();
        let message = if message.is_null() {
            // SAFETY: rte_strerror returns a valid NUL-terminated string for any value.
            unsafe { CStr::from_ptr(raw::rte_strerror(errno)) }.to_string_lossy().into_owned()
        } else {
            // SAFETY: DPDK and the PMDs set message to a static NUL-terminated string
            // (the callers pass their error structure's `message`).
            unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned()
        };
        FlowError { op, port, errno, kind, message }
    }
}

/// Pattern item types Sluice emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemKind {
    /// Ethernet.
    Eth,
    /// 802.1Q tag (TCI, inner EtherType).
    Vlan,
    /// IPv4 header (20 bytes).
    Ipv4,
    /// IPv6 fixed header.
    Ipv6,
    /// TCP header (20 bytes).
    Tcp,
    /// UDP header.
    Udp,
    /// SCTP common header.
    Sctp,
    /// ICMP header (type, code, checksum, identifier, sequence).
    Icmp,
    /// ICMPv6 (type, code, checksum).
    Icmp6,
    /// VXLAN header.
    Vxlan,
    /// Traffic from a DPDK port (u32 id, deprecated by DPDK for REPRESENTED_PORT).
    PortId,
    /// Traffic from the entity an ethdev represents (u16 port id).
    RepresentedPort,
}

impl ItemKind {
    /// Every kind.
    pub const ALL: [ItemKind; 12] = [
        ItemKind::Eth,
        ItemKind::Vlan,
        ItemKind::Ipv4,
        ItemKind::Ipv6,
        ItemKind::Tcp,
        ItemKind::Udp,
        ItemKind::Sctp,
        ItemKind::Icmp,
        ItemKind::Icmp6,
        ItemKind::Vxlan,
        ItemKind::PortId,
        ItemKind::RepresentedPort,
    ];

    /// Spec and mask length: the header on the wire (port items: the id).
    pub const fn header_len(self) -> usize {
        match self {
            ItemKind::Eth => 14,
            ItemKind::Vlan => 4,
            ItemKind::Ipv4 => 20,
            ItemKind::Ipv6 => 40,
            ItemKind::Tcp => 20,
            ItemKind::Udp => 8,
            ItemKind::Sctp => 12,
            ItemKind::Icmp => 8,
            ItemKind::Icmp6 => 4,
            ItemKind::Vxlan => 8,
            ItemKind::PortId => 4,
            ItemKind::RepresentedPort => 2,
        }
    }

    /// Whether the item has a flag bit ([`Item::flag`]).
    pub const fn has_flag(self) -> bool {
        matches!(self, ItemKind::Eth | ItemKind::Vlan)
    }

    fn raw(self) -> raw::rte_flow_item_type {
        use raw::rte_flow_item_type as T;
        match self {
            ItemKind::Eth => T::RTE_FLOW_ITEM_TYPE_ETH,
            ItemKind::Vlan => T::RTE_FLOW_ITEM_TYPE_VLAN,
            ItemKind::Ipv4 => T::RTE_FLOW_ITEM_TYPE_IPV4,
            ItemKind::Ipv6 => T::RTE_FLOW_ITEM_TYPE_IPV6,
            ItemKind::Tcp => T::RTE_FLOW_ITEM_TYPE_TCP,
            ItemKind::Udp => T::RTE_FLOW_ITEM_TYPE_UDP,
            ItemKind::Sctp => T::RTE_FLOW_ITEM_TYPE_SCTP,
            ItemKind::Icmp => T::RTE_FLOW_ITEM_TYPE_ICMP,
            ItemKind::Icmp6 => T::RTE_FLOW_ITEM_TYPE_ICMP6,
            ItemKind::Vxlan => T::RTE_FLOW_ITEM_TYPE_VXLAN,
            ItemKind::PortId => T::RTE_FLOW_ITEM_TYPE_PORT_ID,
            ItemKind::RepresentedPort => T::RTE_FLOW_ITEM_TYPE_REPRESENTED_PORT,
        }
    }

    fn from_raw(t: raw::rte_flow_item_type) -> Option<ItemKind> {
        ItemKind::ALL.into_iter().find(|k| k.raw() == t)
    }

    /// DPDK's name of the item type (`ETH`, `IPV4`, ...), from `rte_flow_conv`.
    pub fn name(self) -> String {
        conv_name(raw::rte_flow_conv_op::RTE_FLOW_CONV_OP_ITEM_NAME, self.raw().0)
    }
}

// The item structures start with the wire header (DPDK 22.11 layout).
const _: () = {
    assert!(size_of::<raw::rte_ether_hdr>() == 14);
    assert!(size_of::<raw::rte_vlan_hdr>() == 4);
    assert!(size_of::<raw::rte_flow_item_ipv4>() == 20);
    assert!(size_of::<raw::rte_ipv6_hdr>() == 40);
    assert!(size_of::<raw::rte_flow_item_tcp>() == 20);
    assert!(size_of::<raw::rte_flow_item_udp>() == 8);
    assert!(size_of::<raw::rte_flow_item_sctp>() == 12);
    assert!(size_of::<raw::rte_flow_item_icmp>() == 8);
    assert!(size_of::<raw::rte_flow_item_icmp6>() == 4);
    assert!(size_of::<raw::rte_flow_item_vxlan>() == 8);
    assert!(std::mem::offset_of!(raw::rte_flow_item_ipv6, hdr) == 0);
};

/// One pattern item.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Item {
    /// Its type.
    pub kind: ItemKind,
    /// Values to match ([`ItemKind::len`] bytes).
    pub spec: Vec<u8>,
    /// Bits that matter ([`ItemKind::len`] bytes; all zero: any such header).
    pub mask: Vec<u8>,
    /// The flag bit of ETH (`has_vlan`) or VLAN (`has_more_vlan`), when it must
    /// have this value.
    pub flag: Option<bool>,
}

impl Item {
    /// Any header of this kind.
    pub fn any(kind: ItemKind) -> Item {
        Item { kind, spec: vec![0; kind.header_len()], mask: vec![0; kind.header_len()], flag: None }
    }

    /// Traffic entering from DPDK port `port` (REPRESENTED_PORT).
    pub fn represented_port(port: u16) -> Item {
        Item { kind: ItemKind::RepresentedPort, spec: port.to_ne_bytes().to_vec(), mask: vec![0xff; 2], flag: None }
    }

    /// Whether its mask has no bit set (and no flag).
    pub fn is_wildcard(&self) -> bool {
        self.flag.is_none() && self.mask.iter().all(|b| *b == 0)
    }
}

/// Actions Sluice emits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    /// Tag the packet with a mark id (partial offload).
    Mark(u32),
    /// Deliver to one rx queue.
    Queue(u16),
    /// Spread over rx queues by the PMD's default hash.
    Rss(Vec<u16>),
    /// Drop.
    Drop,
    /// Count hits and bytes (queried with [`FlowRule::query_count`]).
    Count,
    /// Send to a DPDK port (deprecated by DPDK for REPRESENTED_PORT).
    PortId(u32),
    /// Send to the entity an ethdev represents.
    RepresentedPort(u16),
    /// Pop the outer VLAN tag.
    OfPopVlan,
    /// Push a VLAN tag with this TPID.
    OfPushVlan(u16),
    /// Set the VLAN id of the outer tag.
    OfSetVlanVid(u16),
    /// Set the VLAN priority of the outer tag.
    OfSetVlanPcp(u8),
    /// Set the source MAC.
    SetMacSrc([u8; 6]),
    /// Set the destination MAC.
    SetMacDst([u8; 6]),
    /// Set the IPv4 source (network order bytes).
    SetIpv4Src([u8; 4]),
    /// Set the IPv4 destination.
    SetIpv4Dst([u8; 4]),
    /// Set the IPv6 source.
    SetIpv6Src([u8; 16]),
    /// Set the IPv6 destination.
    SetIpv6Dst([u8; 16]),
    /// Set the L4 source port.
    SetTpSrc(u16),
    /// Set the L4 destination port.
    SetTpDst(u16),
    /// Set the TTL / hop limit.
    SetTtl(u8),
    /// Decrement the TTL / hop limit.
    DecTtl,
    /// Remove the outer VXLAN tunnel headers (the pattern must hold them).
    VxlanDecap,
    /// Prepend these headers.
    RawEncap(Vec<u8>),
    /// Remove headers described by these bytes' length.
    RawDecap(Vec<u8>),
    /// Meter with this rte_mtr object, whose policy then decides per color (see
    /// [`crate::mtr`]).
    Meter(u32),
}

impl Action {
    fn raw_type(&self) -> raw::rte_flow_action_type {
        use raw::rte_flow_action_type as T;
        match self {
            Action::Mark(_) => T::RTE_FLOW_ACTION_TYPE_MARK,
            Action::Queue(_) => T::RTE_FLOW_ACTION_TYPE_QUEUE,
            Action::Rss(_) => T::RTE_FLOW_ACTION_TYPE_RSS,
            Action::Drop => T::RTE_FLOW_ACTION_TYPE_DROP,
            Action::Count => T::RTE_FLOW_ACTION_TYPE_COUNT,
            Action::PortId(_) => T::RTE_FLOW_ACTION_TYPE_PORT_ID,
            Action::RepresentedPort(_) => T::RTE_FLOW_ACTION_TYPE_REPRESENTED_PORT,
            Action::OfPopVlan => T::RTE_FLOW_ACTION_TYPE_OF_POP_VLAN,
            Action::OfPushVlan(_) => T::RTE_FLOW_ACTION_TYPE_OF_PUSH_VLAN,
            Action::OfSetVlanVid(_) => T::RTE_FLOW_ACTION_TYPE_OF_SET_VLAN_VID,
            Action::OfSetVlanPcp(_) => T::RTE_FLOW_ACTION_TYPE_OF_SET_VLAN_PCP,
            Action::SetMacSrc(_) => T::RTE_FLOW_ACTION_TYPE_SET_MAC_SRC,
            Action::SetMacDst(_) => T::RTE_FLOW_ACTION_TYPE_SET_MAC_DST,
            Action::SetIpv4Src(_) => T::RTE_FLOW_ACTION_TYPE_SET_IPV4_SRC,
            Action::SetIpv4Dst(_) => T::RTE_FLOW_ACTION_TYPE_SET_IPV4_DST,
            Action::SetIpv6Src(_) => T::RTE_FLOW_ACTION_TYPE_SET_IPV6_SRC,
            Action::SetIpv6Dst(_) => T::RTE_FLOW_ACTION_TYPE_SET_IPV6_DST,
            Action::SetTpSrc(_) => T::RTE_FLOW_ACTION_TYPE_SET_TP_SRC,
            Action::SetTpDst(_) => T::RTE_FLOW_ACTION_TYPE_SET_TP_DST,
            Action::SetTtl(_) => T::RTE_FLOW_ACTION_TYPE_SET_TTL,
            Action::DecTtl => T::RTE_FLOW_ACTION_TYPE_DEC_TTL,
            Action::VxlanDecap => T::RTE_FLOW_ACTION_TYPE_VXLAN_DECAP,
            Action::RawEncap(_) => T::RTE_FLOW_ACTION_TYPE_RAW_ENCAP,
            Action::RawDecap(_) => T::RTE_FLOW_ACTION_TYPE_RAW_DECAP,
            Action::Meter(_) => T::RTE_FLOW_ACTION_TYPE_METER,
        }
    }

    /// DPDK's name of the action type (`MARK`, `QUEUE`, ...), from `rte_flow_conv`.
    pub fn name(&self) -> String {
        conv_name(raw::rte_flow_conv_op::RTE_FLOW_CONV_OP_ACTION_NAME, self.raw_type().0)
    }
}

/// Rule attributes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Attr {
    /// Group (table).
    pub group: u32,
    /// Priority (0 highest).
    pub priority: u32,
    /// Applies to received traffic.
    pub ingress: bool,
    /// Applies to sent traffic.
    pub egress: bool,
    /// A switch-domain (e-switch) rule.
    pub transfer: bool,
}

/// A flow rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Rule {
    /// Attributes.
    pub attr: Attr,
    /// Pattern, outermost first (END implied).
    pub pattern: Vec<Item>,
    /// Actions, in order (END implied).
    pub actions: Vec<Action>,
}

/// A rule in DPDK's structures, owning everything they point to.
pub(crate) struct RawRule {
    attr: raw::rte_flow_attr,
    items: Vec<raw::rte_flow_item>,
    /// END-terminated.
    pub(crate) actions: Vec<raw::rte_flow_action>,
    /// The specs, masks, confs and buffers the pointers above point into (boxed:
    /// their addresses do not move when this vector grows).
    _keep: Vec<Box<dyn Any>>,
}

/// A zeroed `T` with `wire` copied over its first bytes.
fn pod<T: Default + Copy>(wire: &[u8]) -> T {
    let mut v = T::default();
    let n = wire.len().min(size_of::<T>());
    // SAFETY: T is one of DPDK's plain-data flow structures (integers, byte arrays,
    // unions of those: every bit pattern is valid); at most size_of::<T>() bytes are
    // written inside `v`, from a slice at least that long.
    unsafe { std::ptr::copy_nonoverlapping(wire.as_ptr(), (&mut v as *mut T).cast::<u8>(), n) };
    v
}

/// The first `n` bytes of the `T` at `p`.
///
/// SAFETY: `p` must point to a valid `T` with `n <= size_of::<T>()`.
unsafe fn bytes_of<T>(p: *const T, n: usize) -> Vec<u8> {
    debug_assert!(n <= size_of::<T>());
    // SAFETY: per the contract.
    unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n) }.to_vec()
}

impl RawRule {
    fn keep<T: 'static>(&mut self, v: T) -> *const c_void {
        let b = Box::new(v);
        let p = (&*b as *const T).cast::<c_void>();
        self._keep.push(b);
        p
    }

    fn item_conf(&mut self, kind: ItemKind, bytes: &[u8], flag: Option<bool>) -> *const c_void {
        let f = flag.unwrap_or(false) as u32;
        match kind {
            ItemKind::Eth => {
                let mut v: raw::rte_flow_item_eth = pod(bytes);
                v.set_has_vlan(f);
                self.keep(v)
            }
            ItemKind::Vlan => {
                let mut v: raw::rte_flow_item_vlan = pod(bytes);
                v.set_has_more_vlan(f);
                self.keep(v)
            }
            ItemKind::Ipv4 => self.keep(pod::<raw::rte_flow_item_ipv4>(bytes)),
            ItemKind::Ipv6 => self.keep(pod::<raw::rte_flow_item_ipv6>(bytes)),
            ItemKind::Tcp => self.keep(pod::<raw::rte_flow_item_tcp>(bytes)),
            ItemKind::Udp => self.keep(pod::<raw::rte_flow_item_udp>(bytes)),
            ItemKind::Sctp => self.keep(pod::<raw::rte_flow_item_sctp>(bytes)),
            ItemKind::Icmp => self.keep(pod::<raw::rte_flow_item_icmp>(bytes)),
            ItemKind::Icmp6 => self.keep(pod::<raw::rte_flow_item_icmp6>(bytes)),
            ItemKind::Vxlan => self.keep(pod::<raw::rte_flow_item_vxlan>(bytes)),
            ItemKind::PortId => self.keep(pod::<raw::rte_flow_item_port_id>(bytes)),
            ItemKind::RepresentedPort => self.keep(pod::<raw::rte_flow_item_ethdev>(bytes)),
        }
    }

    fn action_conf(&mut self, a: &Action) -> *const c_void {
        match a {
            Action::Mark(id) => self.keep(raw::rte_flow_action_mark { id: *id }),
            Action::Queue(q) => self.keep(raw::rte_flow_action_queue { index: *q }),
            Action::Rss(queues) => {
                let q: Box<[u16]> = queues.clone().into();
                let conf =
                    raw::rte_flow_action_rss { queue_num: q.len() as u32, queue: q.as_ptr(), ..Default::default() };
                self._keep.push(Box::new(q));
                self.keep(conf)
            }
            Action::Drop | Action::OfPopVlan | Action::DecTtl | Action::VxlanDecap => std::ptr::null(),
            Action::Count => self.keep(raw::rte_flow_action_count { id: 0 }),
            Action::PortId(id) => self.keep(raw::rte_flow_action_port_id { id: *id, ..Default::default() }),
            Action::RepresentedPort(p) => self.keep(raw::rte_flow_action_ethdev { port_id: *p }),
            Action::OfPushVlan(t) => self.keep(raw::rte_flow_action_of_push_vlan { ethertype: t.to_be() }),
            Action::OfSetVlanVid(v) => self.keep(raw::rte_flow_action_of_set_vlan_vid { vlan_vid: v.to_be() }),
            Action::OfSetVlanPcp(p) => self.keep(raw::rte_flow_action_of_set_vlan_pcp { vlan_pcp: *p }),
            Action::SetMacSrc(m) | Action::SetMacDst(m) => self.keep(raw::rte_flow_action_set_mac { mac_addr: *m }),
            Action::SetIpv4Src(a) | Action::SetIpv4Dst(a) => {
                self.keep(raw::rte_flow_action_set_ipv4 { ipv4_addr: u32::from_ne_bytes(*a) })
            }
            Action::SetIpv6Src(a) | Action::SetIpv6Dst(a) => self.keep(raw::rte_flow_action_set_ipv6 { ipv6_addr: *a }),
            Action::SetTpSrc(p) | Action::SetTpDst(p) => self.keep(raw::rte_flow_action_set_tp { port: p.to_be() }),
            Action::SetTtl(t) => self.keep(raw::rte_flow_action_set_ttl { ttl_value: *t }),
            Action::RawEncap(bytes) => {
                let data: Box<[u8]> = bytes.clone().into();
                let conf = raw::rte_flow_action_raw_encap {
                    // DPDK only reads through it.
                    data: data.as_ptr().cast_mut(),
                    preserve: std::ptr::null_mut(),
                    size: data.len(),
                };
                self._keep.push(Box::new(data));
                self.keep(conf)
            }
            Action::RawDecap(bytes) => {
                let data: Box<[u8]> = bytes.clone().into();
                let conf = raw::rte_flow_action_raw_decap { data: data.as_ptr().cast_mut(), size: data.len() };
                self._keep.push(Box::new(data));
                self.keep(conf)
            }
            Action::Meter(id) => self.keep(raw::rte_flow_action_meter { mtr_id: *id }),
        }
    }

    pub(crate) fn new(rule: &Rule) -> RawRule {
        let mut attr =
            raw::rte_flow_attr { group: rule.attr.group, priority: rule.attr.priority, ..Default::default() };
        attr.set_ingress(rule.attr.ingress as u32);
        attr.set_egress(rule.attr.egress as u32);
        attr.set_transfer(rule.attr.transfer as u32);
        let mut r = RawRule { attr, items: Vec::new(), actions: Vec::new(), _keep: Vec::new() };
        for it in &rule.pattern {
            let len = it.kind.header_len();
            let mut spec = it.spec.clone();
            let mut mask = it.mask.clone();
            spec.resize(len, 0);
            mask.resize(len, 0);
            let spec = r.item_conf(it.kind, &spec, it.flag);
            let mask = r.item_conf(it.kind, &mask, it.flag.map(|_| true));
            r.items.push(raw::rte_flow_item { type_: it.kind.raw(), spec, last: std::ptr::null(), mask });
        }
        r.items
            .push(raw::rte_flow_item { type_: raw::rte_flow_item_type::RTE_FLOW_ITEM_TYPE_END, ..Default::default() });
        for a in &rule.actions {
            let conf = r.action_conf(a);
            r.actions.push(raw::rte_flow_action { type_: a.raw_type(), conf });
        }
        r.actions.push(raw::rte_flow_action {
            type_: raw::rte_flow_action_type::RTE_FLOW_ACTION_TYPE_END,
            conf: std::ptr::null(),
        });
        r
    }
}

/// Read an item's spec or mask back.
///
/// SAFETY: `p` is null or points to the item structure of `kind`.
unsafe fn read_item(kind: ItemKind, p: *const c_void) -> (Vec<u8>, bool) {
    if p.is_null() {
        return (vec![0; kind.header_len()], false);
    }
    let n = kind.header_len();
    // SAFETY: per the contract, p points to the structure of `kind`; each read stays
    // inside it (n is the wire prefix, checked against the sizes at compile time).
    unsafe {
        match kind {
            ItemKind::Eth => {
                let v = p.cast::<raw::rte_flow_item_eth>();
                (bytes_of(v, n), (*v).has_vlan() != 0)
            }
            ItemKind::Vlan => {
                let v = p.cast::<raw::rte_flow_item_vlan>();
                (bytes_of(v, n), (*v).has_more_vlan() != 0)
            }
            ItemKind::Ipv4 => (bytes_of(p.cast::<raw::rte_flow_item_ipv4>(), n), false),
            ItemKind::Ipv6 => (bytes_of(p.cast::<raw::rte_flow_item_ipv6>(), n), false),
            ItemKind::Tcp => (bytes_of(p.cast::<raw::rte_flow_item_tcp>(), n), false),
            ItemKind::Udp => (bytes_of(p.cast::<raw::rte_flow_item_udp>(), n), false),
            ItemKind::Sctp => (bytes_of(p.cast::<raw::rte_flow_item_sctp>(), n), false),
            ItemKind::Icmp => (bytes_of(p.cast::<raw::rte_flow_item_icmp>(), n), false),
            ItemKind::Icmp6 => (bytes_of(p.cast::<raw::rte_flow_item_icmp6>(), n), false),
            ItemKind::Vxlan => (bytes_of(p.cast::<raw::rte_flow_item_vxlan>(), n), false),
            ItemKind::PortId => (bytes_of(p.cast::<raw::rte_flow_item_port_id>(), n), false),
            ItemKind::RepresentedPort => (bytes_of(p.cast::<raw::rte_flow_item_ethdev>(), n), false),
        }
    }
}

/// Read an action back.
///
/// SAFETY: `a.conf` is null or points to the configuration of `a.type_`, whose
/// pointers (RSS queues, encap data) are valid for their stated lengths.
unsafe fn read_action(a: &raw::rte_flow_action) -> Option<Action> {
    use raw::rte_flow_action_type as T;
    let c = a.conf;
    // SAFETY: per the contract; each arm reads the structure its type defines.
    unsafe {
        let conf = |t: T| if c.is_null() { None } else { Some(t) };
        Some(match a.type_ {
            T::RTE_FLOW_ACTION_TYPE_MARK => Action::Mark((*c.cast::<raw::rte_flow_action_mark>()).id),
            T::RTE_FLOW_ACTION_TYPE_QUEUE => Action::Queue((*c.cast::<raw::rte_flow_action_queue>()).index),
            T::RTE_FLOW_ACTION_TYPE_RSS => {
                let r = &*c.cast::<raw::rte_flow_action_rss>();
                let q = if r.queue_num == 0 {
                    vec![]
                } else {
                    std::slice::from_raw_parts(r.queue, r.queue_num as usize).to_vec()
                };
                Action::Rss(q)
            }
            T::RTE_FLOW_ACTION_TYPE_DROP => Action::Drop,
            T::RTE_FLOW_ACTION_TYPE_COUNT => Action::Count,
            T::RTE_FLOW_ACTION_TYPE_PORT_ID => {
                conf(a.type_)?;
                Action::PortId((*c.cast::<raw::rte_flow_action_port_id>()).id)
            }
            T::RTE_FLOW_ACTION_TYPE_REPRESENTED_PORT => {
                Action::RepresentedPort((*c.cast::<raw::rte_flow_action_ethdev>()).port_id)
            }
            T::RTE_FLOW_ACTION_TYPE_OF_POP_VLAN => Action::OfPopVlan,
            T::RTE_FLOW_ACTION_TYPE_OF_PUSH_VLAN => {
                Action::OfPushVlan(u16::from_be((*c.cast::<raw::rte_flow_action_of_push_vlan>()).ethertype))
            }
            T::RTE_FLOW_ACTION_TYPE_OF_SET_VLAN_VID => {
                Action::OfSetVlanVid(u16::from_be((*c.cast::<raw::rte_flow_action_of_set_vlan_vid>()).vlan_vid))
            }
            T::RTE_FLOW_ACTION_TYPE_OF_SET_VLAN_PCP => {
                Action::OfSetVlanPcp((*c.cast::<raw::rte_flow_action_of_set_vlan_pcp>()).vlan_pcp)
            }
            T::RTE_FLOW_ACTION_TYPE_SET_MAC_SRC => {
                Action::SetMacSrc((*c.cast::<raw::rte_flow_action_set_mac>()).mac_addr)
            }
            T::RTE_FLOW_ACTION_TYPE_SET_MAC_DST => {
                Action::SetMacDst((*c.cast::<raw::rte_flow_action_set_mac>()).mac_addr)
            }
            T::RTE_FLOW_ACTION_TYPE_SET_IPV4_SRC => {
                Action::SetIpv4Src((*c.cast::<raw::rte_flow_action_set_ipv4>()).ipv4_addr.to_ne_bytes())
            }
            T::RTE_FLOW_ACTION_TYPE_SET_IPV4_DST => {
                Action::SetIpv4Dst((*c.cast::<raw::rte_flow_action_set_ipv4>()).ipv4_addr.to_ne_bytes())
            }
            T::RTE_FLOW_ACTION_TYPE_SET_IPV6_SRC => {
                Action::SetIpv6Src((*c.cast::<raw::rte_flow_action_set_ipv6>()).ipv6_addr)
            }
            T::RTE_FLOW_ACTION_TYPE_SET_IPV6_DST => {
                Action::SetIpv6Dst((*c.cast::<raw::rte_flow_action_set_ipv6>()).ipv6_addr)
            }
            T::RTE_FLOW_ACTION_TYPE_SET_TP_SRC => {
                Action::SetTpSrc(u16::from_be((*c.cast::<raw::rte_flow_action_set_tp>()).port))
            }
            T::RTE_FLOW_ACTION_TYPE_SET_TP_DST => {
                Action::SetTpDst(u16::from_be((*c.cast::<raw::rte_flow_action_set_tp>()).port))
            }
            T::RTE_FLOW_ACTION_TYPE_SET_TTL => Action::SetTtl((*c.cast::<raw::rte_flow_action_set_ttl>()).ttl_value),
            T::RTE_FLOW_ACTION_TYPE_DEC_TTL => Action::DecTtl,
            T::RTE_FLOW_ACTION_TYPE_VXLAN_DECAP => Action::VxlanDecap,
            T::RTE_FLOW_ACTION_TYPE_RAW_ENCAP => {
                let r = &*c.cast::<raw::rte_flow_action_raw_encap>();
                Action::RawEncap(std::slice::from_raw_parts(r.data, r.size).to_vec())
            }
            T::RTE_FLOW_ACTION_TYPE_RAW_DECAP => {
                let r = &*c.cast::<raw::rte_flow_action_raw_decap>();
                Action::RawDecap(if r.data.is_null() {
                    vec![0; r.size]
                } else {
                    std::slice::from_raw_parts(r.data, r.size).to_vec()
                })
            }
            T::RTE_FLOW_ACTION_TYPE_METER => Action::Meter((*c.cast::<raw::rte_flow_action_meter>()).mtr_id),
            _ => return None,
        })
    }
}

/// DPDK's name for an item or action type.
fn conv_name(op: raw::rte_flow_conv_op, ty: u32) -> String {
    let mut buf = [0u8; 64];
    // SAFETY: for the *_NAME ops, src is the type value cast to a pointer (never
    // dereferenced) and dst a buffer of `size` bytes that receives a NUL-terminated
    // string (truncated to fit).
    let n = unsafe {
        raw::rte_flow_conv(op, buf.as_mut_ptr().cast(), buf.len(), ty as usize as *const c_void, std::ptr::null_mut())
    };
    if n < 0 {
        return format!("type {ty}");
    }
    CStr::from_bytes_until_nul(&buf).map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Have DPDK deep-copy `rule` (`rte_flow_conv`, `RTE_FLOW_CONV_OP_RULE`, which
/// walks every item and action by DPDK's own description of its type) and read the
/// copy back. `Ok` holds what DPDK understood; an item or action DPDK does not
/// describe is an error.
pub fn conv(rule: &Rule) -> Result<Rule, FlowError> {
    let r = RawRule::new(rule);
    let mut src = raw::rte_flow_conv_rule::default();
    src.__bindgen_anon_1.attr_ro = &r.attr;
    src.__bindgen_anon_2.pattern_ro = r.items.as_ptr();
    src.__bindgen_anon_3.actions_ro = r.actions.as_ptr();
    let mut err = raw::rte_flow_error::default();
    let op = raw::rte_flow_conv_op::RTE_FLOW_CONV_OP_RULE;
    let src_p = (&src as *const raw::rte_flow_conv_rule).cast::<c_void>();
    // SAFETY: src points to a conv_rule whose attr, END-terminated pattern and
    // actions (and everything they point to) live in `r`; a null dst of size 0 only
    // computes the size needed.
    let need = unsafe { raw::rte_flow_conv(op, std::ptr::null_mut(), 0, src_p, &mut err) };
    if need < 0 {
        return Err(FlowError::new("rte_flow_conv", u16::MAX, need, &err));
    }
    let mut buf = vec![0u64; (need as usize).div_ceil(8)];
    // SAFETY: as above, with dst an 8-aligned buffer of `need` bytes.
    let got = unsafe { raw::rte_flow_conv(op, buf.as_mut_ptr().cast(), need as usize, src_p, &mut err) };
    if got < 0 || got > need {
        return Err(FlowError::new("rte_flow_conv", u16::MAX, got.min(-1), &err));
    }
    // SAFETY: on success the buffer starts with a conv_rule whose pointers point into
    // the buffer: an attr, and END-terminated pattern and actions whose specs, masks
    // and confs DPDK copied from ours (same types); `buf` outlives every read.
    unsafe {
        let dst = &*buf.as_ptr().cast::<raw::rte_flow_conv_rule>();
        let a = &*dst.__bindgen_anon_1.attr_ro;
        let attr = Attr {
            group: a.group,
            priority: a.priority,
            ingress: a.ingress() != 0,
            egress: a.egress() != 0,
            transfer: a.transfer() != 0,
        };
        let mut pattern = Vec::new();
        let mut it = dst.__bindgen_anon_2.pattern_ro;
        while (*it).type_ != raw::rte_flow_item_type::RTE_FLOW_ITEM_TYPE_END {
            let i = &*it;
            let kind = ItemKind::from_raw(i.type_).expect("conv copies only the types we gave it");
            let (spec, spec_flag) = read_item(kind, i.spec);
            let (mask, mask_flag) = read_item(kind, i.mask);
            pattern.push(Item { kind, spec, mask, flag: mask_flag.then_some(spec_flag) });
            it = it.add(1);
        }
        let mut actions = Vec::new();
        let mut ac = dst.__bindgen_anon_3.actions_ro;
        while (*ac).type_ != raw::rte_flow_action_type::RTE_FLOW_ACTION_TYPE_END {
            actions.push(read_action(&*ac).expect("conv copies only the types we gave it"));
            ac = ac.add(1);
        }
        Ok(Rule { attr, pattern, actions })
    }
}

/// Validate `rule` on `port`: `Ok` means the PMD would create it now.
pub fn validate(port: &Port, rule: &Rule) -> Result<(), FlowError> {
    let r = RawRule::new(rule);
    let mut err = raw::rte_flow_error::default();
    let id = port.id().0;
    // SAFETY: id is an attached port (we borrow it); attr, pattern and actions are
    // valid, END-terminated and outlive the call (in `r`); err is a valid out struct.
    // Validation creates nothing and may run concurrently with polling.
    let ret = unsafe { raw::rte_flow_validate(id, &r.attr, r.items.as_ptr(), r.actions.as_ptr(), &mut err) };
    if ret == 0 {
        Ok(())
    } else {
        Err(FlowError::new("rte_flow_validate", id, ret, &err))
    }
}

/// Validate the simplest ingress rule — match any Ethernet frame, send it to `queue` —
/// on `port`. `Ok` means the PMD implements rte_flow and accepts basic rules.
pub fn validate_eth_to_queue(port: &Port, queue: u16) -> Result<(), FlowError> {
    let rule = Rule {
        attr: Attr { ingress: true, ..Attr::default() },
        pattern: vec![Item::any(ItemKind::Eth)],
        actions: vec![Action::Queue(queue)],
    };
    validate(port, &rule)
}

/// A rule created on a port. Holds the port (it cannot close under the rule);
/// destroyed by [`FlowRule::destroy`], or on drop (errors then ignored).
#[derive(Debug)]
pub struct FlowRule {
    port: Arc<Port>,
    flow: Option<NonNull<raw::rte_flow>>,
}

// SAFETY: an rte_flow handle is an opaque pointer the PMD accepts from any thread;
// FlowRule owns it (destroy takes self or runs once on drop).
unsafe impl Send for FlowRule {}

/// Hits and bytes of a COUNT action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowCount {
    /// Packets that hit the rule.
    pub hits: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Create `rule` on `port`.
pub fn create(port: &Arc<Port>, rule: &Rule) -> Result<FlowRule, FlowError> {
    let r = RawRule::new(rule);
    let mut err = raw::rte_flow_error::default();
    let id = port.id().0;
    // SAFETY: as in validate; the returned handle is owned by the FlowRule.
    let p = unsafe { raw::rte_flow_create(id, &r.attr, r.items.as_ptr(), r.actions.as_ptr(), &mut err) };
    match NonNull::new(p) {
        Some(flow) => Ok(FlowRule { port: Arc::clone(port), flow: Some(flow) }),
        None => {
            // SAFETY: reads this thread's rte_errno (set by the failed call) through the shim.
            let errno = unsafe { raw::sluice_rte_errno() };
            Err(FlowError::new("rte_flow_create", id, errno.max(1), &err))
        }
    }
}

impl FlowRule {
    /// The DPDK port it is on.
    pub fn port_id(&self) -> u16 {
        self.port.id().0
    }

    /// Destroy it.
    pub fn destroy(mut self) -> Result<(), FlowError> {
        self.destroy_inner()
    }

    fn destroy_inner(&mut self) -> Result<(), FlowError> {
        let Some(flow) = self.flow.take() else { return Ok(()) };
        let mut err = raw::rte_flow_error::default();
        let id = self.port.id().0;
        // SAFETY: flow was created on this port (held alive by self.port) and is
        // destroyed once (taken out of the Option).
        let ret = unsafe { raw::rte_flow_destroy(id, flow.as_ptr(), &mut err) };
        if ret == 0 {
            Ok(())
        } else {
            Err(FlowError::new("rte_flow_destroy", id, ret, &err))
        }
    }

    /// Read (and keep) the rule's COUNT action's counters.
    pub fn query_count(&self) -> Result<FlowCount, FlowError> {
        let flow = self.flow.expect("a live rule");
        let mut q = raw::rte_flow_query_count::default();
        let action = raw::rte_flow_action {
            type_: raw::rte_flow_action_type::RTE_FLOW_ACTION_TYPE_COUNT,
            conf: std::ptr::null(),
        };
        let mut err = raw::rte_flow_error::default();
        let id = self.port.id().0;
        // SAFETY: flow is live on this port; action and q are valid for the call (q is
        // the output structure COUNT defines).
        let ret = unsafe {
            raw::rte_flow_query(id, flow.as_ptr(), &action, (&mut q as *mut raw::rte_flow_query_count).cast(), &mut err)
        };
        if ret == 0 {
            Ok(FlowCount { hits: q.hits, bytes: q.bytes })
        } else {
            Err(FlowError::new("rte_flow_query", id, ret, &err))
        }
    }
}

impl Drop for FlowRule {
    fn drop(&mut self) {
        let _ = self.destroy_inner();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mempool::{Mempool, DEFAULT_DATA_ROOM};
    use crate::port::PortConf;

    #[test]
    fn net_null_has_no_flow_ops() {
        let eal = crate::test_eal::eal();
        let pool = Mempool::create(eal, "flow_test_null", 1023, 0, DEFAULT_DATA_ROOM, None).unwrap();
        let mut port = Port::attach(eal, "f", "net_null_ftest0,no-rx=1").unwrap();
        port.configure(pool, &PortConf::default()).unwrap();
        let err = validate_eth_to_queue(&port, 0).unwrap_err();
        assert_eq!(err.errno, libc::ENOSYS, "{err}");
        assert!(err.to_string().starts_with("rte_flow_validate(port "), "{err}");
        let port = Arc::new(port);
        let err = create(&port, &Rule::default()).unwrap_err();
        assert_eq!(err.op, "rte_flow_create");
        assert!(err.errno > 0, "{err}");
    }

    fn every_kind_rule() -> Rule {
        let pattern = ItemKind::ALL
            .iter()
            .map(|k| {
                let spec: Vec<u8> = (0..k.header_len() as u8).map(|b| b.wrapping_mul(7).wrapping_add(1)).collect();
                let mask: Vec<u8> = (0..k.header_len() as u8).map(|b| if b % 3 == 0 { 0xff } else { 0x0f }).collect();
                Item { kind: *k, spec, mask, flag: k.has_flag().then_some(true) }
            })
            .collect();
        Rule {
            attr: Attr { group: 3, priority: 1, ingress: true, egress: false, transfer: true },
            pattern,
            actions: vec![
                Action::Mark(0xabcdef),
                Action::Queue(3),
                Action::Rss(vec![0, 1, 2]),
                Action::Drop,
                Action::Count,
                Action::PortId(7),
                Action::RepresentedPort(9),
                Action::OfPopVlan,
                Action::OfPushVlan(0x8100),
                Action::OfSetVlanVid(0x123),
                Action::OfSetVlanPcp(5),
                Action::SetMacSrc([1, 2, 3, 4, 5, 6]),
                Action::SetMacDst([6, 5, 4, 3, 2, 1]),
                Action::SetIpv4Src([10, 0, 0, 1]),
                Action::SetIpv4Dst([10, 0, 0, 2]),
                Action::SetIpv6Src([0x20; 16]),
                Action::SetIpv6Dst([0x21; 16]),
                Action::SetTpSrc(1234),
                Action::SetTpDst(80),
                Action::SetTtl(63),
                Action::DecTtl,
                Action::VxlanDecap,
                Action::RawEncap((0..50).collect()),
                Action::RawDecap(vec![0; 14]),
                Action::Meter(7),
            ],
        }
    }

    #[test]
    fn dpdk_copies_every_item_and_action_as_given() {
        let rule = every_kind_rule();
        let back = conv(&rule).unwrap();
        assert_eq!(back, rule);
        // A flag that is not constrained stays unconstrained.
        let rule = Rule { pattern: vec![Item::any(ItemKind::Eth)], ..Rule::default() };
        assert_eq!(conv(&rule).unwrap(), rule);
    }

    #[test]
    fn names_come_from_dpdk() {
        let names: Vec<String> = ItemKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(
            names,
            [
                "ETH",
                "VLAN",
                "IPV4",
                "IPV6",
                "TCP",
                "UDP",
                "SCTP",
                "ICMP",
                "ICMP6",
                "VXLAN",
                "PORT_ID",
                "REPRESENTED_PORT"
            ]
        );
        assert_eq!(Action::Mark(1).name(), "MARK");
        assert_eq!(Action::DecTtl.name(), "DEC_TTL");
        assert_eq!(Action::RepresentedPort(0).name(), "REPRESENTED_PORT");
    }

    #[test]
    fn spec_bytes_land_in_the_dpdk_fields() {
        // IPv4 destination 10.1.2.3 at wire offset 16: the hdr.dst_addr field.
        let mut wire = vec![0u8; 20];
        wire[16..20].copy_from_slice(&[10, 1, 2, 3]);
        let v: raw::rte_flow_item_ipv4 = pod(&wire);
        assert_eq!(u32::from_be(v.hdr.dst_addr), 0x0a01_0203);
        // TCP destination port 80 at offset 2.
        let v: raw::rte_flow_item_tcp = pod(&[0, 0, 0, 80]);
        assert_eq!(u16::from_be(v.hdr.dst_port), 80);
        // Ethernet type at 12, has_vlan after the header.
        let mut e: raw::rte_flow_item_eth = pod(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00]);
        // SAFETY: reading a plain-data union member.
        assert_eq!(u16::from_be(unsafe { e.__bindgen_anon_1.hdr.ether_type }), 0x0800);
        e.set_has_vlan(1);
        assert_eq!(e.has_vlan(), 1);
    }
}
