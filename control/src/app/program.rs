//! Sluice's default program (`pipelines/sluice_default/`), embedded in the binary, and
//! P4Runtime entities of it built by name (what the app writes).

use sluice_proto::p4::config::v1 as info;
use sluice_proto::p4::v1 as pb;

use crate::p4rt::codec::encode;

/// The BMv2 JSON.
pub const JSON: &[u8] = include_bytes!("../../../pipelines/sluice_default/sluice_default.json");
/// The P4Info (text format).
pub const P4INFO: &str = include_str!("../../../pipelines/sluice_default/sluice_default.p4info.txt");
/// The program's CPU port (packet-in / packet-out, the ONOS convention).
pub const CPU_PORT: u32 = 255;
/// The cookie of the pipeline config the app loads: how it recognises its program.
pub const COOKIE: u64 = 0x5_11ce_defa;

/// The program's pipeline config (P4Info, JSON, [`COOKIE`]).
pub fn config() -> pb::ForwardingPipelineConfig {
    pb::ForwardingPipelineConfig {
        p4info: Some(sluice_proto::text::p4info_from_text(P4INFO).expect("the embedded P4Info parses")),
        p4_device_config: JSON.to_vec(),
        cookie: Some(pb::forwarding_pipeline_config::Cookie { cookie: COOKIE }),
    }
}

/// P4Runtime ids of the program, looked up by name. The names are the program's
/// (tested against it); a wrong name is a bug of ours and panics.
#[derive(Debug, Clone)]
pub struct Names {
    info: info::P4Info,
}

impl Default for Names {
    fn default() -> Self {
        Names::new()
    }
}

fn preamble_id(p: &Option<info::Preamble>, name: &str) -> Option<u32> {
    p.as_ref().filter(|p| p.name == name).map(|p| p.id)
}

impl Names {
    /// From the embedded P4Info.
    pub fn new() -> Names {
        Names { info: config().p4info.expect("set above") }
    }

    fn table(&self, name: &str) -> &info::Table {
        self.info
            .tables
            .iter()
            .find(|t| preamble_id(&t.preamble, name).is_some())
            .unwrap_or_else(|| panic!("the default program has no table {name}"))
    }

    /// A table's id.
    pub fn table_id(&self, name: &str) -> u32 {
        self.table(name).preamble.as_ref().map_or(0, |p| p.id)
    }

    fn action(&self, name: &str) -> &info::Action {
        self.info
            .actions
            .iter()
            .find(|a| preamble_id(&a.preamble, name).is_some())
            .unwrap_or_else(|| panic!("the default program has no action {name}"))
    }

    /// An action call with its parameters given in order.
    pub fn call(&self, name: &str, args: &[u128]) -> pb::Action {
        let a = self.action(name);
        assert_eq!(a.params.len(), args.len(), "{name} takes {} parameters", a.params.len());
        pb::Action {
            action_id: a.preamble.as_ref().map_or(0, |p| p.id),
            params: a
                .params
                .iter()
                .zip(args)
                .map(|(p, v)| pb::action::Param { param_id: p.id, value: encode(*v) })
                .collect(),
        }
    }

    /// The id of an action profile, counter, meter or digest.
    pub fn object_id(&self, name: &str) -> u32 {
        let i = &self.info;
        i.action_profiles
            .iter()
            .filter_map(|x| preamble_id(&x.preamble, name))
            .chain(i.counters.iter().filter_map(|x| preamble_id(&x.preamble, name)))
            .chain(i.direct_counters.iter().filter_map(|x| preamble_id(&x.preamble, name)))
            .chain(i.meters.iter().filter_map(|x| preamble_id(&x.preamble, name)))
            .chain(i.digests.iter().filter_map(|x| preamble_id(&x.preamble, name)))
            .next()
            .unwrap_or_else(|| panic!("the default program has no object {name}"))
    }

    /// A table entry of `table`, its key given field by field in P4Info order.
    pub fn entry(&self, table: &str, key: &[Match]) -> pb::TableEntry {
        let t = self.table(table);
        assert_eq!(t.match_fields.len(), key.len(), "{table} has {} key fields", t.match_fields.len());
        let r#match = t
            .match_fields
            .iter()
            .zip(key)
            .filter_map(|(f, m)| {
                use pb::field_match::FieldMatchType as T;
                let ty = match *m {
                    Match::Exact(v) => T::Exact(pb::field_match::Exact { value: encode(v) }),
                    Match::Lpm(v, len) => T::Lpm(pb::field_match::Lpm { value: encode(v), prefix_len: len as i32 }),
                    Match::Ternary(v, mask) => {
                        T::Ternary(pb::field_match::Ternary { value: encode(v & mask), mask: encode(mask) })
                    }
                    Match::Any => return None,
                };
                Some(pb::FieldMatch { field_id: f.id, field_match_type: Some(ty) })
            })
            .collect();
        pb::TableEntry { table_id: self.table_id(table), r#match, ..Default::default() }
    }
}

/// One key field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// Exact.
    Exact(u128),
    /// Value and prefix length.
    Lpm(u128, u8),
    /// Value and mask.
    Ternary(u128, u128),
    /// Don't care (ternary / LPM only).
    Any,
}

/// The entry `e` running `action`.
pub fn with_action(mut e: pb::TableEntry, action: pb::Action) -> pb::TableEntry {
    e.action = Some(pb::TableAction { r#type: Some(pb::table_action::Type::Action(action)) });
    e
}

/// The entry `e` pointing at an action profile member or group.
pub fn with_member_or_group(mut e: pb::TableEntry, id: u32, group: bool) -> pb::TableEntry {
    use pb::table_action::Type;
    let t = if group { Type::ActionProfileGroupId(id) } else { Type::ActionProfileMemberId(id) };
    e.action = Some(pb::TableAction { r#type: Some(t) });
    e
}

/// A replica list from (port, instance) pairs.
pub fn replicas(r: &[(u32, u32)]) -> Vec<pb::Replica> {
    r.iter()
        .map(|(port, instance)| pb::Replica {
            port_kind: Some(pb::replica::PortKind::Port(encode(*port as u128))),
            instance: *instance,
            ..Default::default()
        })
        .collect()
}

/// An update of one entity.
pub fn update(ty: pb::update::Type, e: pb::entity::Entity) -> pb::Update {
    pb::Update { r#type: ty as i32, entity: Some(pb::Entity { entity: Some(e) }) }
}
