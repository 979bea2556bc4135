//! The configuration as entities of the default program: what the app writes at start
//! (and again when it takes the switch back from an external controller).

use std::collections::BTreeMap;

use sluice_proto::p4::v1 as pb;
use sluice_proto::p4::v1::update::Type;

use super::config::{ip_value, AclAction, MacTarget, SwitchPlan};
use super::program::{replicas, update, with_action, with_member_or_group, Match, Names};

/// The ECMP selector.
pub const SELECTOR: &str = "ingress.ecmp_selector";
/// The learning digest.
pub const DIGEST: &str = "mac_learn_digest_t";

/// Digest delivery the app asks for: lists of up to 64 samples, at most 1 ms late; a
/// sample not acknowledged within a second may come again.
pub fn digest_config() -> pb::digest_entry::Config {
    pb::digest_entry::Config { max_timeout_ns: 1_000_000, max_list_size: 64, ack_timeout_ns: 1_000_000_000 }
}

/// The learning digest's configuration (how samples reach the app).
pub fn digest_update(n: &Names) -> pb::Update {
    let e = pb::DigestEntry { digest_id: n.object_id(DIGEST), config: Some(digest_config()) };
    update(Type::Insert, pb::entity::Entity::DigestEntry(e))
}

/// Every entity of `plan`, as INSERT updates in an order the switch accepts
/// (replication and profile members before the entries using them).
pub fn config_updates(plan: &SwitchPlan, n: &Names) -> Vec<pb::Update> {
    use pb::entity::Entity as E;
    let mut out = vec![];
    let ins = |e: E| update(Type::Insert, e);
    let exact = |v: u128| Match::Exact(v);
    let table = |name: &str, key: &[Match], action: &str, args: &[u128]| {
        E::TableEntry(with_action(n.entry(name, key), n.call(action, args)))
    };
    out.push(digest_update(n));
    // Flooding: one multicast group per VLAN (id = VLAN id).
    for (vlan, members) in plan.flood_groups() {
        out.push(ins(E::PacketReplicationEngineEntry(pb::PacketReplicationEngineEntry {
            r#type: Some(pb::packet_replication_engine_entry::Type::MulticastGroupEntry(pb::MulticastGroupEntry {
                multicast_group_id: vlan as u32,
                replicas: replicas(&members),
                ..Default::default()
            })),
        })));
    }
    for (i, (_, port)) in plan.mirrors.iter().enumerate() {
        out.push(ins(E::PacketReplicationEngineEntry(pb::PacketReplicationEngineEntry {
            r#type: Some(pb::packet_replication_engine_entry::Type::CloneSessionEntry(pb::CloneSessionEntry {
                session_id: i as u32 + 1,
                replicas: replicas(&[(*port, 0)]),
                ..Default::default()
            })),
        })));
    }
    // VLANs in and out of each port.
    for (port, p) in &plan.ports {
        let port = *port as u128;
        if let Some(v) = p.untagged {
            out.push(ins(table("ingress.port_vlan", &[exact(port)], "ingress.access_port", &[v as u128])));
            out.push(ins(table("egress.egress_vlan", &[exact(port), exact(v as u128)], "egress.untagged", &[])));
        }
        for v in &p.tagged {
            out.push(ins(table("ingress.trunk_vlan", &[exact(port), exact(*v as u128)], "ingress.trunk_port", &[])));
            if p.untagged != Some(*v) {
                out.push(ins(table("egress.egress_vlan", &[exact(port), exact(*v as u128)], "egress.push_vlan", &[])));
            }
        }
    }
    // Static MACs: known destinations, and no learning digests for them.
    for m in &plan.macs {
        let key = [exact(m.vlan as u128), exact(m.mac as u128)];
        out.push(ins(match m.target {
            MacTarget::Port(p) => table("ingress.dmac", &key, "ingress.l2_forward", &[p as u128]),
            MacTarget::Tunnel { id, port } => {
                table("ingress.dmac", &key, "ingress.l2_tunnel", &[port as u128, id as u128])
            }
        }));
        if let MacTarget::Port(p) = m.target {
            out.push(ins(table("ingress.mac_learning", &[key[0], key[1], exact(p as u128)], "NoAction", &[])));
        }
    }
    // Routing: router MACs, next hops as selector members, routes to next-hop ids.
    for (vlan, mac) in &plan.routers {
        out.push(ins(table(
            "ingress.router_mac",
            &[exact(*vlan as u128), exact(*mac as u128)],
            "ingress.set_routed",
            &[],
        )));
    }
    let profile = n.object_id(SELECTOR);
    for (i, nb) in plan.neighbors.iter().enumerate() {
        out.push(ins(E::ActionProfileMember(pb::ActionProfileMember {
            action_profile_id: profile,
            member_id: i as u32 + 1,
            action: Some(n.call(
                "ingress.set_nexthop",
                &[nb.port as u128, nb.router_mac as u128, nb.mac as u128, nb.vlan as u128],
            )),
        })));
    }
    // One next-hop id per distinct `via` set: a member for one neighbor, a group for more.
    let mut nexthops: BTreeMap<Vec<usize>, u32> = BTreeMap::new();
    for r in &plan.routes {
        let next = nexthops.len() as u32 + 1;
        let id = *nexthops.entry(r.via.clone()).or_insert(next);
        if id == next {
            let entry = n.entry("ingress.nexthop", &[exact(id as u128)]);
            if r.via.len() == 1 {
                out.push(ins(E::TableEntry(with_member_or_group(entry, r.via[0] as u32 + 1, false))));
            } else {
                out.push(ins(E::ActionProfileGroup(pb::ActionProfileGroup {
                    action_profile_id: profile,
                    group_id: id,
                    members: r
                        .via
                        .iter()
                        .map(|m| pb::action_profile_group::Member {
                            member_id: *m as u32 + 1,
                            weight: 1,
                            ..Default::default()
                        })
                        .collect(),
                    max_size: 0,
                })));
                out.push(ins(E::TableEntry(with_member_or_group(entry, id, true))));
            }
        }
        let t = if r.addr.is_ipv4() { "ingress.ipv4_route" } else { "ingress.ipv6_route" };
        out.push(ins(table(t, &[Match::Lpm(ip_value(r.addr), r.len)], "ingress.set_nexthop_id", &[id as u128])));
    }
    // VXLAN: termination per local address and VNI, encapsulation per tunnel and VLAN.
    for v in &plan.vteps {
        for (vni, vlan) in &v.vnis {
            let key = [exact(u32::from(v.local_ip) as u128), exact(*vni as u128)];
            out.push(ins(table("ingress.vxlan_term", &key, "ingress.vxlan_decap", &[*vlan as u128])));
        }
    }
    for (i, t) in plan.tunnels.iter().enumerate() {
        let v = &plan.vteps[t.vtep];
        for (vni, vlan) in &v.vnis {
            let args = [
                *vni as u128,
                u32::from(v.local_ip) as u128,
                u32::from(t.remote) as u128,
                v.mac as u128,
                v.next_hop_mac as u128,
            ];
            let key = [exact(i as u128 + 1), exact(*vlan as u128)];
            out.push(ins(table("egress.tunnel_encap", &key, "egress.vxlan_encap", &args)));
        }
    }
    for a in &plan.acls {
        let key: Vec<Match> = a.fields.iter().map(|f| f.map_or(Match::Any, |(v, m)| Match::Ternary(v, m))).collect();
        let action = match a.action {
            AclAction::Permit => n.call("ingress.acl_permit", &[]),
            AclAction::Deny => n.call("ingress.acl_deny", &[]),
            AclAction::Punt => n.call("ingress.acl_punt", &[]),
            AclAction::Mirror => n.call("ingress.acl_mirror", &[a.session.unwrap_or(0) as u128]),
        };
        let mut e = with_action(n.entry("ingress.acl", &key), action);
        e.priority = a.priority as i32;
        out.push(ins(E::TableEntry(e)));
    }
    out
}

/// The entries that make `mac` in `vlan` known behind `port`: its learning entry
/// (which times out after `aging_ns` without traffic from it) and its destination.
pub fn learned(n: &Names, vlan: u16, mac: u64, port: u32, aging_ns: i64) -> (pb::TableEntry, pb::TableEntry) {
    let mut src = with_action(
        n.entry(
            "ingress.mac_learning",
            &[Match::Exact(vlan as u128), Match::Exact(mac as u128), Match::Exact(port as u128)],
        ),
        n.call("NoAction", &[]),
    );
    src.idle_timeout_ns = aging_ns;
    let dst = with_action(
        n.entry("ingress.dmac", &[Match::Exact(vlan as u128), Match::Exact(mac as u128)]),
        n.call("ingress.l2_forward", &[port as u128]),
    );
    (src, dst)
}
