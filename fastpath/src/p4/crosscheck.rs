//! Cross-check a P4Info against its BMv2 JSON, by name.
//!
//! The JSON carries no P4Runtime ids, so names join the two (see the corpus notes):
//! tables by `pipelines[].tables[].name`, match fields by `key[].name` in order, actions
//! by name *within the table's own action list* (JSON action names are not unique),
//! parameters by `runtime_data`, counters/meters/registers by their array names (direct
//! ones bound to the table), action profiles by `pipelines[].action_profiles[].name`,
//! digests by `learn_lists[].name`, value sets by `parse_vsets[].name`, controller
//! packet metadata by a header of the same name whose fields match.
//!
//! Everything P4Info declares must exist in the JSON with the same shape; a mismatch is
//! an error naming both sides. The result, [`Joined`], maps each P4Info object to its
//! JSON counterpart for the compiler and the P4Runtime server.

use std::collections::HashMap;

use super::json::{self, Program};
use super::p4info::{self, MatchType, P4Info};

/// A P4Info/JSON disagreement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("P4Info does not match the BMv2 JSON: {0}")]
pub struct CrossCheckError(pub String);

fn err<T>(msg: String) -> Result<T, CrossCheckError> {
    Err(CrossCheckError(msg))
}

/// Where a P4Info table lives in the JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableJoin {
    /// P4Info id.
    pub id: u32,
    /// Index into `pipelines`.
    pub pipeline: usize,
    /// Index into that pipeline's `tables`.
    pub table: usize,
    /// For each P4Info action id of the table, the JSON action id the table uses.
    pub actions: Vec<(u32, u32)>,
}

/// The P4Info ↔ JSON mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Joined {
    /// Tables.
    pub tables: Vec<TableJoin>,
    /// P4Info action id → every JSON action id with that name.
    pub actions: Vec<(u32, Vec<u32>)>,
    /// P4Info counter / direct counter id → JSON counter array id.
    pub counters: Vec<(u32, u32)>,
    /// P4Info meter / direct meter id → JSON meter array id.
    pub meters: Vec<(u32, u32)>,
    /// P4Info register id → JSON register array id.
    pub registers: Vec<(u32, u32)>,
    /// P4Info action profile id → (pipeline index, JSON action profile id).
    pub action_profiles: Vec<(u32, (usize, u32))>,
    /// P4Info digest id → JSON learn list id.
    pub digests: Vec<(u32, u32)>,
    /// P4Info value set id → JSON parse vset id.
    pub value_sets: Vec<(u32, u32)>,
}

/// Resolve `[header, field]` to the field's width, through field aliases.
fn field_width(prog: &Program, target: &serde_json::Value) -> Option<u32> {
    let pair = target.as_array()?;
    let (h, f) = (pair.first()?.as_str()?, pair.get(1)?.as_str()?);
    let alias = format!("{h}.{f}");
    let (h, f) = match prog.field_aliases.iter().find(|(a, _)| *a == alias) {
        Some((_, (ah, af))) => (ah.as_str(), af.as_str()),
        None => (h, f),
    };
    if f == "$valid$" {
        return Some(1);
    }
    let header = prog.headers.iter().find(|x| x.name == h)?;
    let ty = prog.header_types.iter().find(|t| t.name == header.header_type)?;
    ty.field_specs().ok()?.into_iter().find(|s| s.name == f)?.width
}

fn match_kind_ok(p4: &MatchType, json: &str) -> bool {
    matches!(
        (p4, json),
        (MatchType::Exact, "exact")
            | (MatchType::Lpm, "lpm")
            | (MatchType::Ternary, "ternary")
            | (MatchType::Range, "range")
            // p4c emits OPTIONAL match fields as ternary in the JSON.
            | (MatchType::Optional, "ternary" | "optional")
    )
}

/// Check `info` against `prog` and return the mapping.
pub fn cross_check(info: &P4Info, prog: &Program) -> Result<Joined, CrossCheckError> {
    let mut joined = Joined::default();
    let json_tables: HashMap<&str, (usize, usize)> = prog
        .pipelines
        .iter()
        .enumerate()
        .flat_map(|(pi, p)| p.tables.iter().enumerate().map(move |(ti, t)| (t.name.as_str(), (pi, ti))))
        .collect();
    let action_name: HashMap<u32, &str> =
        info.actions.iter().map(|a| (a.preamble.id, a.preamble.name.as_str())).collect();

    for a in &info.actions {
        let name = &a.preamble.name;
        let candidates: Vec<&json::Action> = prog.actions.iter().filter(|j| &j.name == name).collect();
        if candidates.is_empty() {
            return err(format!("action {name:?} (id {:#x}) is not in the JSON's actions", a.preamble.id));
        }
        for j in &candidates {
            let p4: Vec<(&str, i32)> = a.params.iter().map(|p| (p.name.as_str(), p.bitwidth)).collect();
            let js: Vec<(&str, i32)> = j.runtime_data.iter().map(|r| (r.name.as_str(), r.bitwidth as i32)).collect();
            if p4 != js {
                return err(format!(
                    "action {name:?}: P4Info parameters {p4:?} differ from JSON action id {} parameters {js:?}",
                    j.id
                ));
            }
        }
        joined.actions.push((a.preamble.id, candidates.iter().map(|j| j.id).collect()));
    }

    for t in &info.tables {
        let name = &t.preamble.name;
        let Some(&(pi, ti)) = json_tables.get(name.as_str()) else {
            return err(format!("table {name:?} (id {:#x}) is not in the JSON's pipelines", t.preamble.id));
        };
        let jt = &prog.pipelines[pi].tables[ti];
        if t.match_fields.len() != jt.key.len() {
            return err(format!(
                "table {name:?}: {} match fields in P4Info, {} key fields in the JSON",
                t.match_fields.len(),
                jt.key.len()
            ));
        }
        for (i, (mf, k)) in t.match_fields.iter().zip(&jt.key).enumerate() {
            if let Some(kn) = &k.name {
                if kn != &mf.name {
                    return err(format!("table {name:?} key #{}: P4Info {:?}, JSON {kn:?}", i + 1, mf.name));
                }
            }
            if !match_kind_ok(&mf.match_type, &k.match_type) {
                return err(format!(
                    "table {name:?} key {:?}: {:?} in P4Info, {:?} in the JSON",
                    mf.name, mf.match_type, k.match_type
                ));
            }
            match field_width(prog, &k.target) {
                Some(w) if w as i32 == mf.bitwidth => {}
                Some(w) => {
                    return err(format!(
                        "table {name:?} key {:?}: {} bits in P4Info, {w} in the JSON",
                        mf.name, mf.bitwidth
                    ))
                }
                None => return err(format!("table {name:?} key {:?}: JSON target {} is unknown", mf.name, k.target)),
            }
        }
        let mut actions = Vec::new();
        for r in &t.action_refs {
            let aname = action_name
                .get(&r.id)
                .ok_or_else(|| CrossCheckError(format!("table {name:?}: action id {:#x} is not in P4Info", r.id)))?;
            let pos = jt.actions.iter().position(|n| n == aname).ok_or_else(|| {
                CrossCheckError(format!("table {name:?}: action {aname:?} is not in the JSON table's actions"))
            })?;
            let jid = *jt.action_ids.get(pos).ok_or_else(|| {
                CrossCheckError(format!("table {name:?}: JSON actions and action_ids differ in length"))
            })?;
            actions.push((r.id, jid));
        }
        if t.action_refs.len() != jt.actions.len() {
            return err(format!(
                "table {name:?}: {} actions in P4Info, {} in the JSON",
                t.action_refs.len(),
                jt.actions.len()
            ));
        }
        joined.tables.push(TableJoin { id: t.preamble.id, pipeline: pi, table: ti, actions });
    }

    let table_name = |id: u32| info.table(id).map(|t| t.preamble.name.clone()).unwrap_or_default();
    for c in &info.counters {
        let j = prog.counter_arrays.iter().find(|j| j.name == c.preamble.name && !j.is_direct).ok_or_else(|| {
            CrossCheckError(format!("counter {:?} is not an indexed counter_array in the JSON", c.preamble.name))
        })?;
        if j.size != Some(c.size as u64) {
            return err(format!("counter {:?}: size {} in P4Info, {:?} in the JSON", c.preamble.name, c.size, j.size));
        }
        joined.counters.push((c.preamble.id, j.id));
    }
    for c in &info.direct_counters {
        let t = table_name(c.direct_table_id);
        let j = prog
            .counter_arrays
            .iter()
            .find(|j| j.name == c.preamble.name && j.is_direct && j.binding.as_deref() == Some(t.as_str()))
            .ok_or_else(|| {
                CrossCheckError(format!("direct counter {:?} is not bound to table {t:?} in the JSON", c.preamble.name))
            })?;
        joined.counters.push((c.preamble.id, j.id));
    }
    let unit_ok = |p4: &p4info::MeterUnit, js: &str| {
        matches!((p4, js), (p4info::MeterUnit::Bytes, "bytes") | (p4info::MeterUnit::Packets, "packets"))
    };
    for m in &info.meters {
        let j = prog.meter_arrays.iter().find(|j| j.name == m.preamble.name && !j.is_direct).ok_or_else(|| {
            CrossCheckError(format!("meter {:?} is not an indexed meter_array in the JSON", m.preamble.name))
        })?;
        if j.size != Some(m.size as u64) || !unit_ok(&m.unit, &j.unit) {
            return err(format!(
                "meter {:?}: size {} / {:?} in P4Info, {:?} / {:?} in the JSON",
                m.preamble.name, m.size, m.unit, j.size, j.unit
            ));
        }
        joined.meters.push((m.preamble.id, j.id));
    }
    for m in &info.direct_meters {
        let t = table_name(m.direct_table_id);
        let j = prog
            .meter_arrays
            .iter()
            .find(|j| j.name == m.preamble.name && j.is_direct && j.binding.as_deref() == Some(t.as_str()))
            .ok_or_else(|| {
                CrossCheckError(format!("direct meter {:?} is not bound to table {t:?} in the JSON", m.preamble.name))
            })?;
        if !unit_ok(&m.unit, &j.unit) {
            return err(format!("direct meter {:?}: unit {:?} vs {:?}", m.preamble.name, m.unit, j.unit));
        }
        joined.meters.push((m.preamble.id, j.id));
    }
    for r in &info.registers {
        let j = prog.register_arrays.iter().find(|j| j.name == r.preamble.name).ok_or_else(|| {
            CrossCheckError(format!("register {:?} is not in the JSON's register_arrays", r.preamble.name))
        })?;
        if j.size != r.size as u64 || (r.bitwidth != 0 && j.bitwidth as i32 != r.bitwidth) {
            return err(format!("register {:?}: size or width differ", r.preamble.name));
        }
        joined.registers.push((r.preamble.id, j.id));
    }
    for ap in &info.action_profiles {
        let found = prog
            .pipelines
            .iter()
            .enumerate()
            .find_map(|(pi, p)| p.action_profiles.iter().find(|j| j.name == ap.preamble.name).map(|j| (pi, j)));
        let Some((pi, j)) = found else {
            return err(format!("action profile {:?} is not in the JSON's pipelines", ap.preamble.name));
        };
        if ap.with_selector != j.selector.is_some() {
            return err(format!(
                "action profile {:?}: with_selector = {} in P4Info, the JSON {} a selector",
                ap.preamble.name,
                ap.with_selector,
                if j.selector.is_some() { "has" } else { "has no" }
            ));
        }
        for tid in &ap.table_ids {
            let t = table_name(*tid);
            let uses = prog.pipelines[pi]
                .tables
                .iter()
                .any(|jt| jt.name == t && jt.action_profile.as_deref() == Some(j.name.as_str()));
            if !uses {
                return err(format!("action profile {:?}: table {t:?} does not use it in the JSON", ap.preamble.name));
            }
        }
        joined.action_profiles.push((ap.preamble.id, (pi, j.id)));
    }
    for d in &info.digests {
        let j =
            prog.learn_lists.iter().find(|j| j.name == d.preamble.name).ok_or_else(|| {
                CrossCheckError(format!("digest {:?} is not in the JSON's learn_lists", d.preamble.name))
            })?;
        joined.digests.push((d.preamble.id, j.id));
    }
    for v in &info.value_sets {
        let j = prog.parse_vsets.iter().find(|j| j.name == v.preamble.name).ok_or_else(|| {
            CrossCheckError(format!("value set {:?} is not in the JSON's parse_vsets", v.preamble.name))
        })?;
        joined.value_sets.push((v.preamble.id, j.id));
    }
    for c in &info.controller_packet_metadata {
        let name = &c.preamble.name;
        let header = prog.headers.iter().find(|h| &h.name == name).ok_or_else(|| {
            CrossCheckError(format!("controller packet metadata {name:?}: no header {name:?} in the JSON"))
        })?;
        let ty = prog
            .header_types
            .iter()
            .find(|t| t.name == header.header_type)
            .ok_or_else(|| CrossCheckError(format!("header {name:?}: unknown type {:?}", header.header_type)))?;
        let fields: Vec<(String, i32)> = ty
            .field_specs()
            .map_err(|e| CrossCheckError(e.0))?
            .into_iter()
            .map(|f| (f.name, f.width.map_or(-1, |w| w as i32)))
            .collect();
        let meta: Vec<(String, i32)> = c.metadata.iter().map(|m| (m.name.clone(), m.bitwidth)).collect();
        if fields != meta {
            return err(format!(
                "controller packet metadata {name:?}: P4Info fields {meta:?}, JSON header fields {fields:?}"
            ));
        }
    }
    Ok(joined)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::p4::json::tests::{corpus, corpus_jsons};

    fn load(json: &std::path::Path) -> (P4Info, Program) {
        let info_path = json.with_extension("p4info.txt");
        let info = p4info::parse_text(&std::fs::read_to_string(&info_path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", info_path.display()));
        let prog = Program::parse(&std::fs::read_to_string(json).unwrap()).unwrap();
        (info, prog)
    }

    #[test]
    fn every_corpus_pair_cross_checks() {
        let Some(dir) = corpus() else { return };
        for json in corpus_jsons(&dir) {
            let (info, prog) = load(&json);
            let joined = cross_check(&info, &prog).unwrap_or_else(|e| panic!("{}: {e}", json.display()));
            assert_eq!(joined.tables.len(), info.tables.len());
        }
    }

    #[test]
    fn per_table_action_resolution_picks_the_tables_own_json_action() {
        let Some(dir) = corpus() else { return };
        // simple_router has several JSON actions named `_drop`; each table must get its own.
        let (info, prog) = load(&dir.join("simple_router/simple_router.json"));
        let joined = cross_check(&info, &prog).unwrap();
        let drop_id = info.action_by_name("_drop").unwrap().preamble.id;
        let mut json_ids: Vec<u32> =
            joined.tables.iter().map(|t| t.actions.iter().find(|(p, _)| *p == drop_id).unwrap().1).collect();
        for (t, jid) in joined.tables.iter().zip(&json_ids) {
            let jt = &prog.pipelines[t.pipeline].tables[t.table];
            assert!(jt.action_ids.contains(jid), "{} uses its own _drop", jt.name);
        }
        json_ids.sort();
        json_ids.dedup();
        assert!(json_ids.len() > 1, "distinct JSON _drop actions per table: {json_ids:?}");
    }

    #[test]
    fn mismatches_name_both_sides() {
        let Some(dir) = corpus() else { return };
        let (info, prog) = load(&dir.join("simple_router/simple_router.json"));
        let mut bad = info.clone();
        bad.tables[0].match_fields[0].bitwidth += 1;
        let e = cross_check(&bad, &prog).unwrap_err().0;
        assert!(e.contains("bits in P4Info"), "{e}");
        let mut bad = info.clone();
        bad.tables[0].preamble.name = "nope".into();
        assert!(cross_check(&bad, &prog).unwrap_err().0.contains("table \"nope\""));
        let mut bad = info.clone();
        bad.actions[0].params.push(p4info::Param { id: 9, name: "x".into(), bitwidth: 3, annotations: vec![] });
        assert!(cross_check(&bad, &prog).unwrap_err().0.contains("parameters"));
    }
}
