//! P4Runtime ids resolved to the compiled program's dense ids, once per pipeline.
//!
//! The JSON has no P4Runtime ids, so names join the P4Info to the IR (the same
//! joins the cross-check verified): tables by name, match fields by position, actions
//! by name *within the table's own action list* (JSON action names are not unique),
//! parameters by name, profiles, counters, registers and value sets by name.

use std::collections::HashMap;

use sluice_fastpath::p4::ir::{ActionId, Ir, MatchKind, TableId, Value};
use sluice_proto::p4::v1 as pb;

use super::codec;
use sluice_fastpath::p4::p4info::{MatchType, P4Info};

/// A match field of a table.
#[derive(Debug, Clone)]
pub struct FieldSchema {
    /// P4Info id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Width in bits.
    pub bitwidth: u32,
    /// P4Runtime match type.
    pub kind: MatchType,
    /// The engine's match kind (the JSON's; `optional` may be ternary there).
    pub ir_kind: MatchKind,
}

/// A P4Runtime-visible table.
#[derive(Debug, Clone)]
pub struct TableSchema {
    /// P4Info id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// The IR table.
    pub ir: TableId,
    /// Match fields in key order.
    pub fields: Vec<FieldSchema>,
    /// P4Info action id → action slot in the IR table.
    pub actions: HashMap<u32, u32>,
    /// Action slot → P4Info action id (0: an action P4Info does not list).
    pub slot_actions: Vec<u32>,
    /// Entries need a priority.
    pub needs_priority: bool,
    /// The action profile (P4Info id) of an indirect table.
    pub profile: Option<u32>,
    /// The direct counter's P4Info id.
    pub direct_counter: Option<u32>,
    /// The direct meter's P4Info id.
    pub direct_meter: Option<u32>,
    /// Entries can time out.
    pub idle_timeout: bool,
    /// The default action cannot change.
    pub default_const: bool,
    /// Entries are fixed by the program.
    pub is_const: bool,
}

/// An action.
#[derive(Debug, Clone)]
pub struct ActionSchema {
    /// P4Info id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Parameters: P4Info id, name, bitwidth — in the IR's order.
    pub params: Vec<(u32, String, u32)>,
}

/// An action profile.
#[derive(Debug, Clone)]
pub struct ProfileSchema {
    /// P4Info id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// The IR profile.
    pub ir: u32,
    /// Tables (P4Info ids) using it.
    pub tables: Vec<u32>,
    /// Whether it has a selector (groups).
    pub selector: bool,
    /// Largest group (0: no limit).
    pub max_group_size: i32,
}

/// An indexed counter, register or a value set: IR index and size / width.
#[derive(Debug, Clone)]
pub struct ArraySchema {
    /// P4Info id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// IR index.
    pub ir: u32,
    /// Cells (or members).
    pub size: u64,
    /// Width in bits (registers, value sets).
    pub bitwidth: u32,
}

/// How a digest's data is shaped in `DigestList.data` (its P4Info `type_spec`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DigestShape {
    /// A struct (what p4c emits for `digest<T>(...)` with a struct `T`).
    #[default]
    Struct,
    /// A tuple.
    Tuple,
    /// A single bitstring.
    Bits,
}

/// A digest.
#[derive(Debug, Clone)]
pub struct DigestSchema {
    /// Name.
    pub name: String,
    /// Data shape.
    pub shape: DigestShape,
}

impl DigestSchema {
    /// One sample as P4Data (canonical bytestrings).
    pub fn encode(&self, values: &[Value]) -> pb::P4Data {
        use pb::p4_data::Data;
        let bits = |v: Value| pb::P4Data { data: Some(Data::Bitstring(codec::encode(v))) };
        let data = match self.shape {
            DigestShape::Bits if values.len() == 1 => Data::Bitstring(codec::encode(values[0])),
            DigestShape::Tuple => Data::Tuple(pb::P4StructLike { members: values.iter().map(|v| bits(*v)).collect() }),
            _ => Data::Struct(pb::P4StructLike { members: values.iter().map(|v| bits(*v)).collect() }),
        };
        pb::P4Data { data: Some(data) }
    }
}

/// A meter (indexed or direct).
#[derive(Debug, Clone)]
pub struct MeterSchema {
    /// Name.
    pub name: String,
    /// The IR meter array.
    pub ir: u32,
    /// Cells (indexed meters).
    pub size: u64,
    /// The table (P4Info id) of a direct meter.
    pub direct_table: Option<u32>,
}

/// Every P4Runtime id of a pipeline, resolved.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// Tables by P4Info id.
    pub tables: HashMap<u32, TableSchema>,
    /// P4Info table id by IR table id.
    pub table_of_ir: HashMap<TableId, u32>,
    /// Actions by P4Info id.
    pub actions: HashMap<u32, ActionSchema>,
    /// Action profiles by P4Info id.
    pub profiles: HashMap<u32, ProfileSchema>,
    /// Indexed counters by P4Info id.
    pub counters: HashMap<u32, ArraySchema>,
    /// Direct counters: P4Info id → table P4Info id.
    pub direct_counters: HashMap<u32, u32>,
    /// Registers by P4Info id.
    pub registers: HashMap<u32, ArraySchema>,
    /// Value sets by P4Info id.
    pub value_sets: HashMap<u32, ArraySchema>,
    /// Meters (indexed and direct) by P4Info id.
    pub meters: HashMap<u32, MeterSchema>,
    /// Digests by P4Info id.
    pub digests: HashMap<u32, DigestSchema>,
    /// Digest P4Info id by learn list index.
    pub digest_by_list: HashMap<u32, u32>,
    /// `packet_out` fields: id, name, bitwidth (wire order).
    pub packet_out: Vec<(u32, String, u32)>,
    /// `packet_in` fields: id, name, bitwidth (wire order).
    pub packet_in: Vec<(u32, String, u32)>,
}

impl Schema {
    /// The digest (P4Info id) a learn list is, if P4Info has it.
    pub fn digest_of_list(&self, list: u32) -> Option<(u32, &DigestSchema)> {
        let id = *self.digest_by_list.get(&list)?;
        Some((id, self.digests.get(&id)?))
    }

    /// Resolve `info` against `ir`. The pair was cross-checked, so a failure here is
    /// a construct the engine compiled away or renamed: it is reported, not ignored.
    pub fn build(info: &P4Info, ir: &Ir) -> Result<Schema, String> {
        let mut s = Schema::default();
        let ir_action_by_name = |name: &str, among: &[ActionId]| -> Option<ActionId> {
            among.iter().copied().find(|a| ir.actions[*a as usize].name == name)
        };
        for a in &info.actions {
            let ir_a = ir.actions.iter().find(|x| x.name == a.preamble.name);
            let params = match ir_a {
                Some(x) => x
                    .params
                    .iter()
                    .map(|(n, w)| {
                        let p = a.params.iter().find(|p| p.name == *n).ok_or_else(|| {
                            format!("action {:?}: parameter {n:?} of the JSON is not in the P4Info", a.preamble.name)
                        })?;
                        Ok((p.id, n.clone(), *w))
                    })
                    .collect::<Result<Vec<_>, String>>()?,
                None => a.params.iter().map(|p| (p.id, p.name.clone(), p.bitwidth.max(0) as u32)).collect(),
            };
            s.actions.insert(a.preamble.id, ActionSchema { id: a.preamble.id, name: a.preamble.name.clone(), params });
        }
        for t in &info.tables {
            let Some(irt) = ir.tables.iter().position(|x| x.name == t.preamble.name) else {
                return Err(format!("P4Info table {:?} is not in the compiled program", t.preamble.name));
            };
            let def = &ir.tables[irt];
            if def.keys.len() != t.match_fields.len() {
                return Err(format!(
                    "table {:?}: P4Info has {} match fields, the program {}",
                    t.preamble.name,
                    t.match_fields.len(),
                    def.keys.len()
                ));
            }
            let fields = t
                .match_fields
                .iter()
                .zip(&def.keys)
                .map(|(m, k)| FieldSchema {
                    id: m.id,
                    name: m.name.clone(),
                    bitwidth: m.bitwidth.max(0) as u32,
                    kind: m.match_type.clone(),
                    ir_kind: k.kind,
                })
                .collect();
            let mut actions = HashMap::new();
            let mut slot_actions = vec![0; def.actions.len()];
            for r in &t.action_refs {
                let name = &s
                    .actions
                    .get(&r.id)
                    .ok_or_else(|| format!("table {:?}: unknown action id {}", t.preamble.name, r.id))?
                    .name;
                let Some(a) = ir_action_by_name(name, &def.actions) else {
                    return Err(format!(
                        "table {:?}: action {name:?} is not one of its actions in the JSON",
                        t.preamble.name
                    ));
                };
                let slot = def.slot_of(a).expect("the action is in the table's list");
                actions.insert(r.id, slot);
                slot_actions[slot as usize] = r.id;
            }
            let direct = |ids: &[u32], of: &dyn Fn(u32) -> bool| ids.iter().copied().find(|i| of(*i));
            let direct_counter = direct(&t.direct_resource_ids, &|i| info.direct_counter(i).is_some());
            let direct_meter = direct(&t.direct_resource_ids, &|i| info.direct_meter(i).is_some());
            s.table_of_ir.insert(irt as TableId, t.preamble.id);
            s.tables.insert(
                t.preamble.id,
                TableSchema {
                    id: t.preamble.id,
                    name: t.preamble.name.clone(),
                    ir: irt as TableId,
                    fields,
                    actions,
                    slot_actions,
                    needs_priority: def.needs_priority(),
                    profile: (t.implementation_id != 0).then_some(t.implementation_id),
                    direct_counter,
                    direct_meter,
                    idle_timeout: def.support_timeout,
                    default_const: def.default_const || t.const_default_action_id != 0,
                    is_const: t.is_const_table,
                },
            );
        }
        for p in &info.action_profiles {
            let Some(irp) = ir.profiles.iter().position(|x| x.name == p.preamble.name) else {
                return Err(format!("P4Info action profile {:?} is not in the compiled program", p.preamble.name));
            };
            s.profiles.insert(
                p.preamble.id,
                ProfileSchema {
                    id: p.preamble.id,
                    name: p.preamble.name.clone(),
                    ir: irp as u32,
                    tables: p.table_ids.clone(),
                    selector: ir.profiles[irp].selector.is_some(),
                    max_group_size: p.max_group_size,
                },
            );
        }
        for c in &info.counters {
            let Some(i) = ir.counters.iter().position(|x| x.name == c.preamble.name && x.direct.is_none()) else {
                return Err(format!("P4Info counter {:?} is not in the compiled program", c.preamble.name));
            };
            s.counters.insert(
                c.preamble.id,
                ArraySchema {
                    id: c.preamble.id,
                    name: c.preamble.name.clone(),
                    ir: i as u32,
                    size: ir.counters[i].size,
                    bitwidth: 0,
                },
            );
        }
        for c in &info.direct_counters {
            s.direct_counters.insert(c.preamble.id, c.direct_table_id);
        }
        for r in &info.registers {
            let Some(i) = ir.registers.iter().position(|x| x.name == r.preamble.name) else {
                return Err(format!("P4Info register {:?} is not in the compiled program", r.preamble.name));
            };
            let d = &ir.registers[i];
            s.registers.insert(
                r.preamble.id,
                ArraySchema {
                    id: r.preamble.id,
                    name: r.preamble.name.clone(),
                    ir: i as u32,
                    size: d.size,
                    bitwidth: d.width,
                },
            );
        }
        for v in &info.value_sets {
            let Some(i) = ir.value_sets.iter().position(|x| x.name == v.preamble.name) else {
                return Err(format!("P4Info value set {:?} is not in the compiled program", v.preamble.name));
            };
            let d = &ir.value_sets[i];
            s.value_sets.insert(
                v.preamble.id,
                ArraySchema {
                    id: v.preamble.id,
                    name: v.preamble.name.clone(),
                    ir: i as u32,
                    size: d.max_size as u64,
                    bitwidth: d.width,
                },
            );
        }
        let meters = info.meters.iter().map(|m| (&m.preamble, None));
        for (pre, direct_table) in
            meters.chain(info.direct_meters.iter().map(|m| (&m.preamble, Some(m.direct_table_id))))
        {
            let Some(i) = ir.meter(&pre.name) else {
                return Err(format!("P4Info meter {:?} is not in the compiled program", pre.name));
            };
            let size = ir.meters[i as usize].size;
            s.meters.insert(pre.id, MeterSchema { name: pre.name.clone(), ir: i, size, direct_table });
        }
        for d in &info.digests {
            let Some(list) = ir.learn_lists.iter().position(|l| l.name == d.preamble.name) else {
                return Err(format!("P4Info digest {:?} is not in the compiled program", d.preamble.name));
            };
            let shape = match (d.type_name.is_empty(), ir.learn_lists[list].fields.len()) {
                (false, _) => DigestShape::Struct,
                (true, 1) => DigestShape::Bits,
                (true, _) => DigestShape::Tuple,
            };
            s.digest_by_list.insert(list as u32, d.preamble.id);
            s.digests.insert(d.preamble.id, DigestSchema { name: d.preamble.name.clone(), shape });
        }
        for c in &info.controller_packet_metadata {
            let fields = c.metadata.iter().map(|m| (m.id, m.name.clone(), m.bitwidth.max(0) as u32)).collect();
            match c.preamble.name.as_str() {
                "packet_out" => s.packet_out = fields,
                "packet_in" => s.packet_in = fields,
                _ => {}
            }
        }
        Ok(s)
    }
}
