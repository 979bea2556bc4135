//! Live changes of the switch sections (what `sluicectl vlan|route|acl|mirror|...`
//! asks for), and the diff that turns one plan into another as P4Runtime writes.
//!
//! A change edits a copy of the configuration, which is validated whole exactly as the
//! file is (so a bad change is refused before anything is written), and the entities of
//! the old and new plans are compared by key: entities only in the new plan are
//! inserted, changed ones modified, gone ones deleted. Writes go in three batches —
//! inserts, modifies, deletes — each ordered so that what an entity refers to exists
//! when it is written and is deleted after what refers to it (replication entries and
//! profile members before groups before table entries; the reverse for deletes).
//! Live changes are not written back to the configuration file.

use std::collections::BTreeMap;

use prost::Message as _;
use serde::de::DeserializeOwned;
use sluice_proto::p4::v1 as pb;
use sluice_proto::p4::v1::update::Type;

use super::config::*;
use crate::config::Config;

/// Add or remove one item of a section of `c`; `spec` holds the item (add) or its
/// key fields (del), with the configuration file's keys.
pub fn edit(c: &mut Config, op: &str, section: &str, spec: &serde_json::Value) -> Result<String, String> {
    let s = spec;
    match (section, op) {
        ("vlan", _) => one(&mut c.vlans, op, s, |v: &VlanConfig| v.id.to_string(), &["id"]),
        ("router_interface", _) => {
            one(&mut c.router_interfaces, op, s, |v: &RouterInterfaceConfig| v.vlan.to_string(), &["vlan"])
        }
        ("neighbor", _) => one(&mut c.neighbors, op, s, |v: &NeighborConfig| v.ip.to_string(), &["ip"]),
        ("route", _) => one(&mut c.routes, op, s, |v: &RouteConfig| v.prefix.clone(), &["prefix"]),
        ("mac", _) => one(&mut c.macs, op, s, |v: &MacConfig| mac_key(v.vlan, &v.mac), &["vlan", "mac"]),
        ("vtep", _) => one(&mut c.vteps, op, s, |v: &VtepConfig| v.local_ip.to_string(), &["local_ip"]),
        ("acl", _) => one(&mut c.acls, op, s, |v: &AclConfig| v.priority.to_string(), &["priority"]),
        ("mirror", _) => one(&mut c.mirrors, op, s, |v: &MirrorConfig| v.name.clone(), &["name"]),
        ("port", "set") => {
            let name = s.get("name").and_then(|n| n.as_str()).ok_or("port set needs \"name\"")?;
            let p = c.ports.iter_mut().find(|p| p.name == name).ok_or_else(|| format!("no port {name:?}"))?;
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct PortVlan {
                #[allow(dead_code)]
                name: String,
                vlan_mode: Option<VlanMode>,
                vlan: Option<u16>,
                #[serde(default)]
                trunk_vlans: Vec<u16>,
            }
            let v: PortVlan = serde_json::from_value(s.clone()).map_err(|e| format!("port: {e}"))?;
            p.vlan_mode = v.vlan_mode;
            p.vlan = v.vlan;
            p.trunk_vlans = v.trunk_vlans;
            Ok(format!("port {name:?} VLANs set"))
        }
        (s, o) => Err(format!(
            "no {o:?} for {s:?}: sections are vlan, router_interface, neighbor, route, mac, vtep, acl, mirror \
             (add, del) and port (set)"
        )),
    }
}

fn mac_key(vlan: u16, mac: &str) -> String {
    format!("{vlan}/{}", mac.to_ascii_lowercase())
}

/// `add` (a new key) or `del` (an existing key) on `items`.
fn one<T: DeserializeOwned>(
    items: &mut Vec<T>,
    op: &str,
    spec: &serde_json::Value,
    key: impl Fn(&T) -> String,
    key_fields: &[&str],
) -> Result<String, String> {
    match op {
        "add" => {
            let item: T = serde_json::from_value(spec.clone()).map_err(|e| e.to_string())?;
            let k = key(&item);
            if items.iter().any(|i| key(i) == k) {
                return Err(format!("{k} exists (delete it first)"));
            }
            items.push(item);
            Ok(format!("{k} added"))
        }
        "del" => {
            let field = |f: &str| spec.get(f).cloned().ok_or_else(|| format!("del needs {}", key_fields.join(", ")));
            let k = match key_fields {
                [f] => match field(f)? {
                    serde_json::Value::String(s) => s,
                    v => v.to_string(),
                },
                [v, m] => mac_key(
                    field(v)?.as_u64().ok_or("vlan must be a number")? as u16,
                    field(m)?.as_str().ok_or("mac must be a string")?,
                ),
                _ => unreachable!("keys have one or two fields"),
            };
            let before = items.len();
            items.retain(|i| key(i) != k);
            if items.len() == before {
                return Err(format!("{k} is not configured"));
            }
            Ok(format!("{k} deleted"))
        }
        o => Err(format!("unknown operation {o:?} (add, del)")),
    }
}

/// The order class of an entity: what must exist before what.
fn class(e: &pb::entity::Entity) -> u8 {
    use pb::entity::Entity as E;
    match e {
        E::DigestEntry(_) => 0,
        E::PacketReplicationEngineEntry(_) => 1,
        E::ActionProfileMember(_) => 2,
        E::ActionProfileGroup(_) => 3,
        _ => 4,
    }
}

/// The identity of an entity (what P4Runtime keys it by), as bytes.
fn key(e: &pb::entity::Entity) -> (u8, Vec<u8>) {
    use pb::entity::Entity as E;
    use pb::packet_replication_engine_entry::Type as P;
    let k = match e {
        E::TableEntry(t) => pb::TableEntry {
            table_id: t.table_id,
            r#match: t.r#match.clone(),
            priority: t.priority,
            ..Default::default()
        }
        .encode_to_vec(),
        E::ActionProfileMember(m) => [m.action_profile_id.to_be_bytes(), m.member_id.to_be_bytes()].concat(),
        E::ActionProfileGroup(g) => [g.action_profile_id.to_be_bytes(), g.group_id.to_be_bytes()].concat(),
        E::PacketReplicationEngineEntry(p) => match &p.r#type {
            Some(P::MulticastGroupEntry(m)) => [&[0u8][..], &m.multicast_group_id.to_be_bytes()].concat(),
            Some(P::CloneSessionEntry(c)) => [&[1u8][..], &c.session_id.to_be_bytes()].concat(),
            None => vec![],
        },
        E::DigestEntry(d) => d.digest_id.to_be_bytes().to_vec(),
        other => pb::Entity { entity: Some(other.clone()) }.encode_to_vec(),
    };
    (class(e), k)
}

fn index(updates: Vec<pb::Update>) -> BTreeMap<(u8, Vec<u8>), pb::entity::Entity> {
    updates.into_iter().filter_map(|u| u.entity.and_then(|e| e.entity)).map(|e| (key(&e), e)).collect()
}

/// The writes that turn the entities `from` into `to`: inserts, modifies, deletes
/// (each batch in dependency order; empty batches left out).
pub fn diff(from: Vec<pb::Update>, to: Vec<pb::Update>) -> Vec<Vec<pb::Update>> {
    let (old, new) = (index(from), index(to));
    let up = |t: Type, e: &pb::entity::Entity| super::program::update(t, e.clone());
    // BTreeMap order is class order: ascending for inserts and modifies.
    let inserts: Vec<_> = new.iter().filter(|(k, _)| !old.contains_key(*k)).map(|(_, e)| up(Type::Insert, e)).collect();
    let modifies: Vec<_> =
        new.iter().filter(|(k, e)| old.get(*k).is_some_and(|o| o != *e)).map(|(_, e)| up(Type::Modify, e)).collect();
    let deletes: Vec<_> =
        old.iter().rev().filter(|(k, _)| !new.contains_key(*k)).map(|(_, e)| up(Type::Delete, e)).collect();
    [inserts, modifies, deletes].into_iter().filter(|b| !b.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::entries::config_updates;
    use crate::app::program::Names;

    fn base() -> Config {
        let neighbor = r#"
[[router_interface]]
vlan = 20
mac = "02:00:00:00:00:14"
[[neighbor]]
ip = "10.0.20.2"
mac = "00:00:00:00:20:02"
port = "b"
"#;
        Config::parse(&crate::app::test_config(&[("a", "vlan = 10"), ("b", "vlan = 20")], neighbor), "t").unwrap()
    }

    fn plan(c: &Config) -> SwitchPlan {
        SwitchPlan::build(c).unwrap()
    }

    #[test]
    fn the_diff_of_a_plan_with_itself_is_empty_and_from_nothing_is_every_insert() {
        let c = base();
        let n = Names::new();
        assert!(diff(config_updates(&plan(&c), &n), config_updates(&plan(&c), &n)).is_empty());
        let all = diff(vec![], config_updates(&plan(&c), &n));
        assert_eq!(all.len(), 1, "inserts only");
        assert_eq!(all[0].len(), config_updates(&plan(&c), &n).len());
    }

    #[test]
    fn adding_an_ecmp_route_inserts_its_group_before_the_entries_and_deleting_reverses() {
        let mut c = base();
        let n = Names::new();
        let before = config_updates(&plan(&c), &n);
        edit(
            &mut c,
            "add",
            "neighbor",
            &serde_json::json!({"ip": "10.0.20.3", "mac": "00:00:00:00:20:03", "port": "b"}),
        )
        .unwrap();
        edit(&mut c, "add", "route", &serde_json::json!({"prefix": "10.30.0.0/16", "via": ["10.0.20.2", "10.0.20.3"]}))
            .unwrap();
        let after = config_updates(&plan(&c), &n);
        let batches = diff(before.clone(), after.clone());
        assert_eq!(batches.len(), 1, "only inserts: {batches:?}");
        let classes: Vec<u8> =
            batches[0].iter().map(|u| class(u.entity.as_ref().unwrap().entity.as_ref().unwrap())).collect();
        assert_eq!(classes, vec![2, 3, 4, 4], "member, group, nexthop entry, route");
        let back = diff(after, before);
        let classes: Vec<u8> =
            back[0].iter().map(|u| class(u.entity.as_ref().unwrap().entity.as_ref().unwrap())).collect();
        assert_eq!(classes, vec![4, 4, 3, 2], "deletes in reverse");
    }

    #[test]
    fn bad_edits_are_refused_with_the_reason() {
        let mut c = base();
        let e = edit(&mut c, "add", "neighbor", &serde_json::json!({"ip": "10.0.20.2", "mac": "x", "port": "b"}));
        assert!(e.unwrap_err().contains("exists"));
        let e = edit(&mut c, "del", "route", &serde_json::json!({"prefix": "1.0.0.0/8"}));
        assert!(e.unwrap_err().contains("not configured"));
        let e = edit(&mut c, "add", "route", &serde_json::json!({"prefix": "1.0.0.0/8", "bogus": 1}));
        assert!(e.unwrap_err().contains("unknown field"));
        let e = edit(&mut c, "add", "planet", &serde_json::json!({}));
        assert!(e.unwrap_err().contains("sections are"));
    }
}
