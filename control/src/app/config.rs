//! What the built-in app is told to build, as written in the configuration file, and
//! its validation into a [`SwitchPlan`] of P4 ports, VLANs and addresses.
//!
//! The sections (reference: docs/config.md, "The default program"):
//!
//! * `[switch]`: the app itself (on/off, MAC aging, learning limits);
//! * per `[[port]]`: `vlan_mode` (`access` / `trunk`), `vlan` (the access VLAN, or the
//!   trunk's native VLAN), `trunk_vlans`;
//! * `[[vlan]]`: optional names for VLANs;
//! * `[[router_interface]]`: a router MAC in a VLAN;
//! * `[[neighbor]]`: next hops (IP, MAC, port, VLAN);
//! * `[[route]]`: IPv4 / IPv6 prefixes via one or more neighbors (more: ECMP);
//! * `[[mac]]`: static MAC entries (to a port or a remote VTEP);
//! * `[[vtep]]`: a local VXLAN tunnel endpoint with its VNI-to-VLAN map and remote VTEPs;
//! * `[[acl]]`: ternary rules with permit / deny / punt / mirror;
//! * `[[mirror]]`: mirror destinations (clone sessions).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use serde::Deserialize;

use crate::config::{Config, ConfigError};

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// `[switch]`: the built-in app that programs Sluice's default program.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SwitchSection {
    /// Load the default program at start (when there is no `[pipeline]` and no
    /// `[[xconnect]]`). `false`: start with no program, a bare P4Runtime target waiting
    /// for a controller to push one (simple_switch_grpc's `--no-p4`).
    pub program: bool,
    /// Run the app. `false`: the default program is loaded but left empty for an
    /// external P4Runtime controller.
    pub app: bool,
    /// Learn MACs from the program's digests.
    pub learning: bool,
    /// A learned MAC not seen for this long is forgotten (seconds).
    pub mac_aging_s: u64,
    /// Learned MACs at most (static ones not included); more are not learned (counted).
    pub max_learned_macs: usize,
}

impl Default for SwitchSection {
    fn default() -> Self {
        SwitchSection { program: true, app: true, learning: true, mac_aging_s: 300, max_learned_macs: 32768 }
    }
}

/// A port's VLAN mode.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum VlanMode {
    /// Untagged frames in one VLAN (`vlan`).
    #[default]
    Access,
    /// Tagged frames of `trunk_vlans`; untagged ones in the native `vlan`, if set.
    Trunk,
}

/// `[[vlan]]`: a name for a VLAN (VLANs exist by being used; naming them is optional).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VlanConfig {
    /// 1..=4094.
    pub id: u16,
    /// A name for `sluicectl` and logs.
    pub name: String,
}

/// `[[router_interface]]`: the switch routes frames sent to `mac` in `vlan`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RouterInterfaceConfig {
    /// The VLAN.
    pub vlan: u16,
    /// The router's MAC in it (also the source MAC of frames routed into it).
    pub mac: String,
}

/// `[[neighbor]]`: a next hop.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NeighborConfig {
    /// Its address (IPv4 or IPv6), what routes name in `via`.
    pub ip: IpAddr,
    /// Its MAC.
    pub mac: String,
    /// The port it is behind.
    pub port: String,
    /// Its VLAN; default: the port's access (or native) VLAN.
    pub vlan: Option<u16>,
}

/// `[[route]]`: a prefix via neighbors.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// `10.0.0.0/8`, `2001:db8::/32`.
    pub prefix: String,
    /// Neighbor addresses; two or more spread flows over them (ECMP).
    pub via: Vec<IpAddr>,
}

/// `[[mac]]`: a static MAC entry.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MacConfig {
    /// The VLAN.
    pub vlan: u16,
    /// The MAC.
    pub mac: String,
    /// Behind this port...
    pub port: Option<String>,
    /// ... or behind this remote VTEP (its IP).
    pub remote_vtep: Option<Ipv4Addr>,
}

/// A VNI carried by a VTEP, and its VLAN.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VniConfig {
    /// 1..2^24.
    pub vni: u32,
    /// The VLAN it bridges into.
    pub vlan: u16,
}

/// `[[vtep]]`: a local VXLAN tunnel endpoint.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VtepConfig {
    /// The local underlay address (what remotes send to).
    pub local_ip: Ipv4Addr,
    /// The underlay port.
    pub port: String,
    /// Source MAC of encapsulated frames.
    pub mac: String,
    /// Destination MAC of encapsulated frames (the underlay next hop).
    pub next_hop_mac: String,
    /// VNIs and their VLANs.
    pub vnis: Vec<VniConfig>,
    /// Remote VTEP addresses: flooding in a mapped VLAN reaches each of them.
    pub remotes: Vec<Ipv4Addr>,
}

/// What an ACL rule does.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AclAction {
    /// Forward normally (and stop looking at lower priorities).
    Permit,
    /// Drop.
    Deny,
    /// Send to the controller (packet-in) instead of forwarding.
    Punt,
    /// Forward normally and send a copy to a mirror.
    Mirror,
}

/// `[[acl]]`: a rule; unset fields match anything. Addresses take a prefix
/// (`10.0.0.0/8`), MACs a mask (`00:11:22:00:00:00/ff:ff:ff:00:00:00`).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AclConfig {
    /// Higher wins.
    pub priority: u32,
    /// The action.
    pub action: AclAction,
    /// The mirror's name, for `action = "mirror"`.
    pub mirror: Option<String>,
    /// Ingress port name.
    pub in_port: Option<String>,
    /// VLAN.
    pub vlan: Option<u16>,
    /// Source MAC (optionally `/mask`).
    pub src_mac: Option<String>,
    /// Destination MAC (optionally `/mask`).
    pub dst_mac: Option<String>,
    /// EtherType.
    pub ether_type: Option<u16>,
    /// IPv4 source prefix.
    pub src_ip: Option<String>,
    /// IPv4 destination prefix.
    pub dst_ip: Option<String>,
    /// IP protocol (IPv4 protocol or IPv6 next header).
    pub proto: Option<u8>,
    /// TCP/UDP source port.
    pub src_port: Option<u16>,
    /// TCP/UDP destination port.
    pub dst_port: Option<u16>,
}

/// `[[mirror]]`: where mirrored copies go.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// Its name (what ACL rules refer to).
    pub name: String,
    /// The port copies leave on.
    pub port: String,
}

/// The switch sections of a configuration, validated, with names resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwitchPlan {
    /// Per P4 port: its VLAN setup.
    pub ports: BTreeMap<u32, PortVlans>,
    /// VLAN names.
    pub vlan_names: BTreeMap<u16, String>,
    /// Router interfaces: VLAN -> MAC.
    pub routers: BTreeMap<u16, u64>,
    /// Neighbors, in file order (their member id is index + 1).
    pub neighbors: Vec<Neighbor>,
    /// Routes.
    pub routes: Vec<Route>,
    /// Static MACs.
    pub macs: Vec<StaticMac>,
    /// VTEPs.
    pub vteps: Vec<Vtep>,
    /// Tunnels (remote VTEPs), by tunnel id (index + 1).
    pub tunnels: Vec<Tunnel>,
    /// ACL rules.
    pub acls: Vec<AclRule>,
    /// Mirrors: (name, P4 port), clone session = index + 1.
    pub mirrors: Vec<(String, u32)>,
}

/// A port's VLANs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortVlans {
    /// Sluice's port name.
    pub name: String,
    /// The VLAN of its untagged frames, if any.
    pub untagged: Option<u16>,
    /// The VLANs of its tagged frames.
    pub tagged: BTreeSet<u16>,
}

/// A next hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    /// Its address.
    pub ip: IpAddr,
    /// Its MAC.
    pub mac: u64,
    /// Its P4 port.
    pub port: u32,
    /// Its VLAN.
    pub vlan: u16,
    /// The router MAC of that VLAN (the source MAC towards it).
    pub router_mac: u64,
}

/// A route: prefix and the neighbor indexes it goes via.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
    /// Indexes into [`SwitchPlan::neighbors`].
    pub via: Vec<usize>,
}

/// Where a static MAC is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacTarget {
    /// Behind a P4 port.
    Port(u32),
    /// Behind a tunnel (id), out of the VTEP's port.
    Tunnel {
        /// Tunnel id.
        id: u16,
        /// The underlay P4 port.
        port: u32,
    },
}

/// A static MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticMac {
    /// VLAN.
    pub vlan: u16,
    /// MAC.
    pub mac: u64,
    /// Where.
    pub target: MacTarget,
}

/// A local VTEP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vtep {
    /// Local address.
    pub local_ip: Ipv4Addr,
    /// Underlay P4 port.
    pub port: u32,
    /// Source MAC.
    pub mac: u64,
    /// Underlay next-hop MAC.
    pub next_hop_mac: u64,
    /// VNI -> VLAN.
    pub vnis: Vec<(u32, u16)>,
}

/// A remote VTEP reached through a local one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunnel {
    /// Index into [`SwitchPlan::vteps`].
    pub vtep: usize,
    /// Remote address.
    pub remote: Ipv4Addr,
}

/// A value and mask of a ternary field.
pub type Masked = (u128, u128);

/// An ACL rule with its fields resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclRule {
    /// Priority.
    pub priority: u32,
    /// Action.
    pub action: AclAction,
    /// Clone session for mirrors.
    pub session: Option<u32>,
    /// ingress_port, vlan, src MAC, dst MAC, ether type, src IPv4, dst IPv4, proto,
    /// L4 src, L4 dst (the table's key order); `None`: don't care.
    pub fields: [Option<Masked>; 10],
}

/// A MAC as a number: `02:00:00:00:00:01`.
pub fn parse_mac(s: &str) -> Result<u64, String> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(format!("{s:?} is not a MAC (six hex bytes separated by ':')"));
    }
    parts.iter().try_fold(0u64, |acc, p| match u8::from_str_radix(p, 16) {
        Ok(b) if p.len() == 2 => Ok((acc << 8) | b as u64),
        _ => Err(format!("{s:?} is not a MAC (six hex bytes separated by ':')")),
    })
}

/// `addr/len` (IPv4 or IPv6), host bits must be zero.
pub fn parse_prefix(s: &str) -> Result<(IpAddr, u8), String> {
    let (a, l) = s.split_once('/').ok_or_else(|| format!("{s:?}: expected address/length"))?;
    let addr: IpAddr = a.parse().map_err(|_| format!("{s:?}: {a:?} is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len: u8 = l.parse().ok().filter(|n| *n <= max).ok_or_else(|| format!("{s:?}: length must be 0..={max}"))?;
    let v = ip_value(addr);
    let net = prefix_mask(len, max as u32);
    if v & !net != 0 {
        return Err(format!("{s:?}: host bits are set (did you mean {}/{len}?)", ip_of(v & net, addr.is_ipv4())));
    }
    Ok((addr, len))
}

/// An address as a number.
pub fn ip_value(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u32::from(v) as u128,
        IpAddr::V6(v) => u128::from(v),
    }
}

fn ip_of(v: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    } else {
        IpAddr::V6(std::net::Ipv6Addr::from(v))
    }
}

/// The mask of a `len`-bit prefix of a `width`-bit value.
fn prefix_mask(len: u8, width: u32) -> u128 {
    let full = u128::MAX >> (128 - width);
    if len == 0 {
        0
    } else {
        full & !(full >> len)
    }
}

fn vlan_ok(v: u16, what: &str) -> Result<u16, ConfigError> {
    if (1..=4094).contains(&v) {
        Ok(v)
    } else {
        err(format!("{what}: VLAN {v} is not 1..=4094"))
    }
}

impl SwitchPlan {
    /// Validate the switch sections of `c` (which runs the default program).
    pub fn build(c: &Config) -> Result<SwitchPlan, ConfigError> {
        let mut plan = SwitchPlan::default();
        let port_of = |name: &str, what: &str| -> Result<u32, ConfigError> {
            match c.port_index(name) {
                Some(i) => Ok(c.p4_port(i)),
                None => err(format!(
                    "{what}: unknown port {name:?} (ports: {})",
                    c.ports.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
                )),
            }
        };
        for (i, p) in c.ports.iter().enumerate() {
            let what = format!("port {:?}", p.name);
            let untagged = match p.vlan {
                Some(v) => Some(vlan_ok(v, &what)?),
                // A port with no VLAN setup is an access port of VLAN 1, as on any switch.
                None if p.vlan_mode.unwrap_or_default() == VlanMode::Access => Some(1),
                None => None,
            };
            let mut tagged = BTreeSet::new();
            match p.vlan_mode.unwrap_or_default() {
                VlanMode::Access if !p.trunk_vlans.is_empty() => {
                    return err(format!("{what}: trunk_vlans needs vlan_mode = \"trunk\""));
                }
                VlanMode::Access => {}
                VlanMode::Trunk => {
                    if p.trunk_vlans.is_empty() {
                        return err(format!("{what}: a trunk needs trunk_vlans (e.g. [10, 20])"));
                    }
                    for v in &p.trunk_vlans {
                        if !tagged.insert(vlan_ok(*v, &what)?) {
                            return err(format!("{what}: VLAN {v} is listed twice in trunk_vlans"));
                        }
                    }
                }
            }
            plan.ports.insert(c.p4_port(i), PortVlans { name: p.name.clone(), untagged, tagged });
        }
        for v in &c.vlans {
            vlan_ok(v.id, "[[vlan]]")?;
            if plan.vlan_names.insert(v.id, v.name.clone()).is_some() {
                return err(format!("[[vlan]] {} is defined twice", v.id));
            }
        }
        let in_vlan = |plan: &SwitchPlan, port: u32, vlan: u16| {
            plan.ports.get(&port).is_some_and(|p| p.untagged == Some(vlan) || p.tagged.contains(&vlan))
        };
        for r in &c.router_interfaces {
            let what = format!("[[router_interface]] vlan {}", r.vlan);
            vlan_ok(r.vlan, &what)?;
            let mac = parse_mac(&r.mac).map_err(|e| ConfigError(format!("{what}: mac {e}")))?;
            if plan.routers.insert(r.vlan, mac).is_some() {
                return err(format!("{what}: the VLAN has two router interfaces"));
            }
        }
        let mut by_ip = HashMap::new();
        for n in &c.neighbors {
            let what = format!("[[neighbor]] {}", n.ip);
            let port = port_of(&n.port, &what)?;
            let vlan = match n.vlan {
                Some(v) => vlan_ok(v, &what)?,
                None => plan.ports[&port]
                    .untagged
                    .ok_or_else(|| ConfigError(format!("{what}: port {:?} has no untagged VLAN: set vlan", n.port)))?,
            };
            if !in_vlan(&plan, port, vlan) {
                return err(format!("{what}: port {:?} is not in VLAN {vlan}", n.port));
            }
            let Some(&router_mac) = plan.routers.get(&vlan) else {
                return err(format!("{what}: VLAN {vlan} has no [[router_interface]] (its MAC is the source MAC)"));
            };
            let mac = parse_mac(&n.mac).map_err(|e| ConfigError(format!("{what}: mac {e}")))?;
            if by_ip.insert(n.ip, plan.neighbors.len()).is_some() {
                return err(format!("{what} is defined twice"));
            }
            plan.neighbors.push(Neighbor { ip: n.ip, mac, port, vlan, router_mac });
        }
        let mut prefixes = BTreeSet::new();
        for r in &c.routes {
            let what = format!("[[route]] {}", r.prefix);
            let (addr, len) = parse_prefix(&r.prefix).map_err(|e| ConfigError(format!("[[route]]: {e}")))?;
            if !prefixes.insert((addr, len)) {
                return err(format!("{what} is defined twice"));
            }
            if r.via.is_empty() {
                return err(format!("{what}: via is empty (name at least one [[neighbor]] address)"));
            }
            let mut via = vec![];
            for ip in &r.via {
                let Some(&n) = by_ip.get(ip) else {
                    return err(format!("{what}: via {ip} is not a [[neighbor]]"));
                };
                if plan.neighbors[n].ip.is_ipv4() != addr.is_ipv4() {
                    return err(format!("{what}: via {ip} is of the other IP version"));
                }
                if via.contains(&n) {
                    return err(format!("{what}: via {ip} is listed twice"));
                }
                via.push(n);
            }
            plan.routes.push(Route { addr, len, via });
        }
        let mut remotes = HashMap::new();
        let mut local_vnis = BTreeSet::new();
        for (k, v) in c.vteps.iter().enumerate() {
            let what = format!("[[vtep]] {}", v.local_ip);
            let port = port_of(&v.port, &what)?;
            let mac = parse_mac(&v.mac).map_err(|e| ConfigError(format!("{what}: mac {e}")))?;
            let next_hop_mac =
                parse_mac(&v.next_hop_mac).map_err(|e| ConfigError(format!("{what}: next_hop_mac {e}")))?;
            let mut vnis = vec![];
            let mut vlans = BTreeSet::new();
            for m in &v.vnis {
                if m.vni == 0 || m.vni >= 1 << 24 {
                    return err(format!("{what}: VNI {} is not 1..16777215", m.vni));
                }
                vlan_ok(m.vlan, &what)?;
                if !local_vnis.insert((v.local_ip, m.vni)) {
                    return err(format!("{what}: VNI {} is mapped twice", m.vni));
                }
                if !vlans.insert(m.vlan) {
                    return err(format!("{what}: VLAN {} has two VNIs", m.vlan));
                }
                vnis.push((m.vni, m.vlan));
            }
            for r in &v.remotes {
                if remotes.insert(*r, plan.tunnels.len() + 1).is_some() {
                    return err(format!("{what}: remote {r} is listed twice"));
                }
                plan.tunnels.push(Tunnel { vtep: k, remote: *r });
            }
            plan.vteps.push(Vtep { local_ip: v.local_ip, port, mac, next_hop_mac, vnis });
        }
        if plan.tunnels.len() >= 1 << 16 {
            return err("more than 65535 remote VTEPs");
        }
        for m in &c.macs {
            let what = format!("[[mac]] {} vlan {}", m.mac, m.vlan);
            vlan_ok(m.vlan, &what)?;
            let mac = parse_mac(&m.mac).map_err(|e| ConfigError(format!("{what}: {e}")))?;
            let target = match (&m.port, &m.remote_vtep) {
                (Some(p), None) => {
                    let port = port_of(p, &what)?;
                    if !in_vlan(&plan, port, m.vlan) {
                        return err(format!("{what}: port {p:?} is not in VLAN {}", m.vlan));
                    }
                    MacTarget::Port(port)
                }
                (None, Some(r)) => {
                    let Some(&id) = remotes.get(r) else {
                        return err(format!("{what}: remote_vtep {r} is not a remote of any [[vtep]]"));
                    };
                    let vtep = &plan.vteps[plan.tunnels[id - 1].vtep];
                    if !vtep.vnis.iter().any(|(_, v)| *v == m.vlan) {
                        return err(format!("{what}: VLAN {} has no VNI on the VTEP of {r}", m.vlan));
                    }
                    MacTarget::Tunnel { id: id as u16, port: vtep.port }
                }
                _ => return err(format!("{what}: give either port or remote_vtep")),
            };
            if plan.macs.iter().any(|s| s.vlan == m.vlan && s.mac == mac) {
                return err(format!("{what} is defined twice"));
            }
            plan.macs.push(StaticMac { vlan: m.vlan, mac, target });
        }
        for m in &c.mirrors {
            let port = port_of(&m.port, &format!("[[mirror]] {:?}", m.name))?;
            if plan.mirrors.iter().any(|(n, _)| *n == m.name) {
                return err(format!("[[mirror]] {:?} is defined twice", m.name));
            }
            plan.mirrors.push((m.name.clone(), port));
        }
        for a in &c.acls {
            if plan.acls.iter().any(|r| r.priority == a.priority) {
                return err(format!("[[acl]] priority {} is used twice (it names the rule)", a.priority));
            }
            plan.acls.push(acl_rule(a, &plan, &port_of)?);
        }
        Ok(plan)
    }

    /// VLAN -> member ports (rid 0) and tunnel replicas (underlay port, tunnel id):
    /// the flood group of each VLAN.
    pub fn flood_groups(&self) -> BTreeMap<u16, Vec<(u32, u32)>> {
        let mut groups: BTreeMap<u16, Vec<(u32, u32)>> = BTreeMap::new();
        for (port, p) in &self.ports {
            for v in p.untagged.iter().chain(p.tagged.iter()) {
                groups.entry(*v).or_default().push((*port, 0));
            }
        }
        for (i, t) in self.tunnels.iter().enumerate() {
            let vtep = &self.vteps[t.vtep];
            for (_, vlan) in &vtep.vnis {
                groups.entry(*vlan).or_default().push((vtep.port, i as u32 + 1));
            }
        }
        groups
    }
}

fn acl_rule(
    a: &AclConfig,
    plan: &SwitchPlan,
    port_of: &dyn Fn(&str, &str) -> Result<u32, ConfigError>,
) -> Result<AclRule, ConfigError> {
    let what = format!("[[acl]] priority {}", a.priority);
    if a.priority == 0 || a.priority > i32::MAX as u32 {
        return err(format!("{what}: priority must be 1..={}", i32::MAX));
    }
    let session = match (a.action, &a.mirror) {
        (AclAction::Mirror, Some(m)) => match plan.mirrors.iter().position(|(n, _)| n == m) {
            Some(i) => Some(i as u32 + 1),
            None => return err(format!("{what}: mirror {m:?} is not a [[mirror]]")),
        },
        (AclAction::Mirror, None) => return err(format!("{what}: action \"mirror\" needs mirror = \"<name>\"")),
        (_, Some(_)) => return err(format!("{what}: mirror is only for action = \"mirror\"")),
        (_, None) => None,
    };
    let exact = |v: u128, w: u32| Some((v, u128::MAX >> (128 - w)));
    let mac = |s: &Option<String>, f: &str| -> Result<Option<Masked>, ConfigError> {
        let Some(s) = s else { return Ok(None) };
        let (v, m) = match s.split_once('/') {
            Some((v, m)) => (parse_mac(v), parse_mac(m)),
            None => (parse_mac(s), Ok(0xffff_ffff_ffff)),
        };
        let (v, m) = (
            v.map_err(|e| ConfigError(format!("{what}: {f} {e}")))?,
            m.map_err(|e| ConfigError(format!("{what}: {f} mask {e}")))?,
        );
        Ok(Some((v as u128 & m as u128, m as u128)))
    };
    let ip = |s: &Option<String>, f: &str| -> Result<Option<Masked>, ConfigError> {
        let Some(s) = s else { return Ok(None) };
        let p = if s.contains('/') { s.clone() } else { format!("{s}/32") };
        let (addr, len) = parse_prefix(&p).map_err(|e| ConfigError(format!("{what}: {f} {e}")))?;
        if !addr.is_ipv4() {
            return err(format!("{what}: {f}: the ACL matches IPv4 addresses only"));
        }
        Ok(if len == 0 { None } else { Some((ip_value(addr), prefix_mask(len, 32))) })
    };
    let in_port = match &a.in_port {
        Some(p) => exact(port_of(p, &what)? as u128, 9),
        None => None,
    };
    let vlan = match a.vlan {
        Some(v) => exact(vlan_ok(v, &what)? as u128, 12),
        None => None,
    };
    Ok(AclRule {
        priority: a.priority,
        action: a.action,
        session,
        fields: [
            in_port,
            vlan,
            mac(&a.src_mac, "src_mac")?,
            mac(&a.dst_mac, "dst_mac")?,
            a.ether_type.and_then(|t| exact(t as u128, 16)),
            ip(&a.src_ip, "src_ip")?,
            ip(&a.dst_ip, "dst_ip")?,
            a.proto.and_then(|p| exact(p as u128, 8)),
            a.src_port.and_then(|p| exact(p as u128, 16)),
            a.dst_port.and_then(|p| exact(p as u128, 16)),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(extra: &str) -> Result<SwitchPlan, ConfigError> {
        let trunk = "vlan_mode = \"trunk\"\ntrunk_vlans = [10, 20]";
        let text = crate::app::test_config(&[("a", "vlan = 10"), ("b", "vlan = 20"), ("t", trunk), ("u", "")], extra);
        SwitchPlan::build(&Config::parse(&text, "test").unwrap())
    }

    #[test]
    fn ports_get_their_vlans_and_flood_groups_follow() {
        let p = plan("").unwrap();
        assert_eq!(p.ports[&1].untagged, Some(10));
        assert_eq!(p.ports[&3].untagged, None);
        assert_eq!(p.ports[&3].tagged, BTreeSet::from([10, 20]));
        assert_eq!(p.ports[&4].untagged, Some(1), "no VLAN setup: access VLAN 1");
        let g = p.flood_groups();
        assert_eq!(g[&10], vec![(1, 0), (3, 0)]);
        assert_eq!(g[&20], vec![(2, 0), (3, 0)]);
        assert_eq!(g[&1], vec![(4, 0)]);
    }

    #[test]
    fn routes_resolve_neighbors_and_ecmp() {
        let p = plan(
            r#"
[[router_interface]]
vlan = 10
mac = "02:00:00:00:00:0a"
[[router_interface]]
vlan = 20
mac = "02:00:00:00:00:14"
[[neighbor]]
ip = "10.0.10.2"
mac = "00:00:00:00:10:02"
port = "a"
[[neighbor]]
ip = "10.0.20.2"
mac = "00:00:00:00:20:02"
port = "t"
vlan = 20
[[route]]
prefix = "192.168.0.0/16"
via = ["10.0.10.2", "10.0.20.2"]
"#,
        )
        .unwrap();
        assert_eq!(p.neighbors[1].port, 3);
        assert_eq!(p.neighbors[1].router_mac, 0x02_00_00_00_00_14);
        assert_eq!(p.routes[0].via, vec![0, 1]);
        assert_eq!(p.routes[0].len, 16);
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("[[route]]\nprefix = \"10.0.0.1/8\"\nvia = []", "host bits are set (did you mean 10.0.0.0/8?)"),
            ("[[route]]\nprefix = \"10.0.0.0/8\"\nvia = [\"1.2.3.4\"]", "via 1.2.3.4 is not a [[neighbor]]"),
            (
                "[[neighbor]]\nip = \"10.0.10.2\"\nmac = \"00:00:00:00:10:02\"\nport = \"a\"",
                "VLAN 10 has no [[router_interface]]",
            ),
            ("[[neighbor]]\nip = \"10.0.10.2\"\nmac = \"00:00:00:00:10:02\"\nport = \"zz\"", "unknown port \"zz\""),
            ("[[mac]]\nvlan = 10\nmac = \"00:00:00:00:00:01\"\nport = \"b\"", "port \"b\" is not in VLAN 10"),
            ("[[mac]]\nvlan = 10\nmac = \"00:00:00:00:01\"\nport = \"a\"", "is not a MAC"),
            ("[[acl]]\npriority = 5\naction = \"mirror\"", "needs mirror = \"<name>\""),
            ("[[acl]]\npriority = 5\naction = \"deny\"\nsrc_ip = \"2001:db8::/32\"", "IPv4 addresses only"),
            ("[[vlan]]\nid = 4095\nname = \"x\"", "VLAN 4095 is not 1..=4094"),
        ];
        for (extra, want) in cases {
            let e = plan(extra).unwrap_err().0;
            assert!(e.contains(want), "{extra}: {e}");
        }
    }

    #[test]
    fn vteps_number_their_tunnels_and_join_the_flood_groups() {
        let p = plan(
            r#"
[[vtep]]
local_ip = "192.0.2.1"
port = "u"
mac = "02:00:00:00:01:01"
next_hop_mac = "02:00:00:00:01:02"
vnis = [{ vni = 5000, vlan = 10 }]
remotes = ["192.0.2.2", "192.0.2.3"]
[[mac]]
vlan = 10
mac = "00:00:00:00:99:01"
remote_vtep = "192.0.2.3"
[[mirror]]
name = "tap"
port = "b"
[[acl]]
priority = 10
action = "mirror"
mirror = "tap"
src_mac = "00:00:00:00:00:00/01:00:00:00:00:00"
dst_ip = "10.1.0.0/16"
"#,
        )
        .unwrap();
        assert_eq!(p.flood_groups()[&10], vec![(1, 0), (3, 0), (4, 1), (4, 2)]);
        assert_eq!(p.macs[0].target, MacTarget::Tunnel { id: 2, port: 4 });
        let acl = &p.acls[0];
        assert_eq!(acl.session, Some(1));
        assert_eq!(acl.fields[2], Some((0, 0x01_00_00_00_00_00)));
        assert_eq!(acl.fields[6], Some((0x0a01_0000, 0xffff_0000)));
    }
}
