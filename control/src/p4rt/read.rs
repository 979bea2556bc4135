//! Read: one requested entity (possibly a wildcard) to the entities it selects,
//! with the spec's wildcard rules and canonical bytestrings.

use sluice_fastpath::p4::tables::EntryAction;
use sluice_proto::p4::v1 as pb;
use sluice_proto::p4::v1::entity::Entity as E;
use tonic::Code;

use super::codec::{self, fail, Fail};
use super::device::{direct_counters, indexed_counters, meter_counts, Pipeline};
use super::schema::{MeterSchema, ProfileSchema, Schema, TableSchema};
use crate::workers::Workers;
use sluice_fastpath::p4::meters::MeterCell;

type R<T> = Result<T, Fail>;

fn entity(e: E) -> pb::Entity {
    pb::Entity { entity: Some(e) }
}

fn sorted_ids<T>(m: &std::collections::HashMap<u32, T>, want: u32) -> Vec<u32> {
    let mut ids: Vec<u32> = if want == 0 { m.keys().copied().collect() } else { vec![want] };
    ids.sort_unstable();
    ids
}

fn tables(s: &Schema, id: u32) -> R<Vec<&TableSchema>> {
    if id != 0 && !s.tables.contains_key(&id) {
        return fail(Code::NotFound, format!("no table with id {id} in the P4Info"));
    }
    Ok(sorted_ids(&s.tables, id).into_iter().map(|i| &s.tables[&i]).collect())
}

fn profiles(s: &Schema, id: u32) -> R<Vec<(u32, &ProfileSchema)>> {
    if id != 0 && !s.profiles.contains_key(&id) {
        return fail(Code::NotFound, format!("no action profile with id {id}"));
    }
    Ok(sorted_ids(&s.profiles, id).into_iter().map(|i| (i, &s.profiles[&i])).collect())
}

fn counter_data((packets, bytes): (u64, u64)) -> pb::CounterData {
    pb::CounterData { packet_count: packets as i64, byte_count: bytes as i64 }
}

/// The cells an `Index` selects among `len`: all when unset.
fn selected(index: &Option<pb::Index>, len: usize, what: &str) -> R<std::ops::Range<usize>> {
    match index {
        None => Ok(0..len),
        Some(i) if i.index < 0 => fail(Code::InvalidArgument, format!("{what}: negative index {}", i.index)),
        Some(i) if i.index as usize >= len => {
            fail(Code::OutOfRange, format!("{what}: index {} out of range (size {len})", i.index))
        }
        Some(i) => Ok(i.index as usize..i.index as usize + 1),
    }
}

fn meter_data(c: [(u64, u64); 3]) -> pb::MeterCounterData {
    pb::MeterCounterData {
        green: Some(counter_data(c[0])),
        yellow: Some(counter_data(c[1])),
        red: Some(counter_data(c[2])),
    }
}

/// An entry's direct meter config, when configured (BMv2 leaves it out otherwise).
fn m_config(m: &mut pb::TableEntry, cell: Option<MeterCell>) {
    m.meter_config = cell.map(|c| codec::meter_config_msg(&c.config));
}

fn table_entries(p: &Pipeline, q: &pb::TableEntry, workers: Option<&Workers>) -> R<Vec<pb::Entity>> {
    let s = &*p.schema;
    let mut out = vec![];
    let idle_asked = q.time_since_last_hit.is_some();
    let now = std::time::Instant::now();
    for t in tables(s, q.table_id)? {
        if idle_asked && (q.is_default_action || !t.idle_timeout) && q.table_id != 0 {
            return fail(
                Code::InvalidArgument,
                format!("time_since_last_hit: table {:?} has no idle timeout for this entry", t.name),
            );
        }
        if q.is_default_action {
            out.push(entity(E::TableEntry(codec::default_msg(s, t, &p.ir, &p.rt))));
            continue;
        }
        let ts = &p.rt.tables[t.ir as usize];
        let counters = match (&q.counter_data, t.direct_counter) {
            (Some(_), Some(_)) => Some(direct_counters(p, t.ir, workers)?),
            _ => None,
        };
        let meter = t.direct_meter.and_then(|id| s.meters.get(&id)).map(|m| m.ir);
        let meter_counts = match (&q.meter_counter_data, meter) {
            (Some(_), Some(m)) => Some(meter_counts(p, m, workers)?),
            _ => None,
        };
        let key = if q.r#match.is_empty() { None } else { Some(codec::key_of(t, &q.r#match)?) };
        let want_action = match &q.action {
            Some(pb::TableAction { r#type: Some(pb::table_action::Type::Action(a)) }) => Some(a.action_id),
            _ => None,
        };
        for (h, e) in ts.entries() {
            if key.as_ref().is_some_and(|k| *k != e.key) || (q.priority != 0 && q.priority != e.priority) {
                continue;
            }
            if let (Some(want), EntryAction::Call(c)) = (want_action, &e.action) {
                if t.slot_actions.get(c.slot as usize) != Some(&want) {
                    continue;
                }
            }
            let mut m = codec::entry_msg(s, t, &p.ir, e);
            if let Some(c) = &counters {
                m.counter_data = Some(counter_data(c.get(h as usize).copied().unwrap_or_default()));
            }
            if let (Some(_), Some(mi)) = (&q.meter_config, meter) {
                let cell = p.rt.meters[mi as usize].get(h as usize).copied().flatten();
                m_config(&mut m, cell);
            }
            if let Some(c) = &meter_counts {
                m.meter_counter_data = Some(meter_data(c.get(h as usize).copied().unwrap_or_default()));
            }
            if idle_asked {
                // A wildcard over all tables answers for the idle-capable ones.
                if let Some(d) = p.idle.since_last_hit(t.ir, h, now) {
                    m.time_since_last_hit = Some(pb::table_entry::IdleTimeout { elapsed_ns: d.as_nanos() as i64 });
                }
            }
            out.push(entity(E::TableEntry(m)));
        }
    }
    Ok(out)
}

/// The P4Info action id of engine action `action` within profile `profile`'s tables.
fn profile_action(s: &Schema, p: &ProfileSchema, ir: &sluice_fastpath::p4::ir::Ir, action: u32) -> u32 {
    for t in p.tables.iter().filter_map(|id| s.tables.get(id)) {
        if let Some(slot) = ir.tables[t.ir as usize].slot_of(action) {
            if let Some(id) = t.slot_actions.get(slot as usize).filter(|id| **id != 0) {
                return *id;
            }
        }
    }
    0
}

/// Read one requested entity.
pub fn read(p: &Pipeline, e: &pb::Entity, workers: Option<&Workers>) -> R<Vec<pb::Entity>> {
    let s = &*p.schema;
    let Some(q) = &e.entity else {
        return fail(Code::InvalidArgument, "an empty Entity is not a wildcard: set one of its fields");
    };
    match q {
        E::TableEntry(q) => table_entries(p, q, workers),
        E::ActionProfileMember(q) => {
            let mut out = vec![];
            for (id, prof) in profiles(s, q.action_profile_id)? {
                let ps = &p.rt.profiles[prof.ir as usize];
                let mut members: Vec<_> =
                    ps.members.iter().filter(|(m, _)| q.member_id == 0 || **m == q.member_id).collect();
                members.sort_by_key(|(m, _)| **m);
                for (m, def) in members {
                    let action_id = profile_action(s, prof, &p.ir, def.action);
                    let params = s
                        .actions
                        .get(&action_id)
                        .map(|a| {
                            a.params
                                .iter()
                                .zip(&def.args)
                                .map(|((pid, _, _), v)| pb::action::Param { param_id: *pid, value: codec::encode(*v) })
                                .collect()
                        })
                        .unwrap_or_default();
                    out.push(entity(E::ActionProfileMember(pb::ActionProfileMember {
                        action_profile_id: id,
                        member_id: *m,
                        action: Some(pb::Action { action_id, params }),
                    })));
                }
            }
            Ok(out)
        }
        E::ActionProfileGroup(q) => {
            use pb::action_profile_group::{member::WatchKind, Member};
            let mut out = vec![];
            for (id, prof) in profiles(s, q.action_profile_id)? {
                let ps = &p.rt.profiles[prof.ir as usize];
                let mut groups: Vec<_> =
                    ps.groups.iter().filter(|(g, _)| q.group_id == 0 || **g == q.group_id).collect();
                groups.sort_by_key(|(g, _)| **g);
                for (g, def) in groups {
                    let members = def
                        .members
                        .iter()
                        .map(|(m, w, watch)| Member {
                            member_id: *m,
                            weight: *w as i32,
                            watch_kind: watch.map(|p| WatchKind::WatchPort(codec::encode(p as u128))),
                        })
                        .collect();
                    out.push(entity(E::ActionProfileGroup(pb::ActionProfileGroup {
                        action_profile_id: id,
                        group_id: *g,
                        members,
                        max_size: prof.max_group_size,
                    })));
                }
            }
            Ok(out)
        }
        E::CounterEntry(q) => {
            if q.counter_id != 0 && !s.counters.contains_key(&q.counter_id) {
                return fail(Code::NotFound, format!("no counter with id {}", q.counter_id));
            }
            let mut out = vec![];
            for id in sorted_ids(&s.counters, q.counter_id) {
                let c = &s.counters[&id];
                let cells = indexed_counters(p, c.ir, workers)?;
                let range = selected(&q.index, cells.len(), &format!("counter {:?}", c.name))?;
                for i in range {
                    out.push(entity(E::CounterEntry(pb::CounterEntry {
                        counter_id: id,
                        index: Some(pb::Index { index: i as i64 }),
                        data: Some(counter_data(cells[i])),
                    })));
                }
            }
            Ok(out)
        }
        E::DirectCounterEntry(q) => {
            let te = q.table_entry.clone().unwrap_or_default();
            let mut out = vec![];
            for t in tables(s, te.table_id)? {
                if t.direct_counter.is_none() {
                    if te.table_id != 0 {
                        return fail(Code::InvalidArgument, format!("table {:?} has no direct counter", t.name));
                    }
                    continue;
                }
                let query =
                    pb::TableEntry { table_id: t.id, counter_data: Some(pb::CounterData::default()), ..te.clone() };
                for x in table_entries(p, &query, workers)? {
                    if let Some(E::TableEntry(mut e)) = x.entity {
                        let data = e.counter_data.take();
                        out.push(entity(E::DirectCounterEntry(pb::DirectCounterEntry { table_entry: Some(e), data })));
                    }
                }
            }
            Ok(out)
        }
        E::PacketReplicationEngineEntry(q) => {
            use pb::packet_replication_engine_entry::Type as P;
            // `egress_port` (deprecated in 1.4 for `port`) is what every client version reads.
            #[allow(deprecated)]
            let replicas = |rs: &[(u32, u32)]| {
                rs.iter()
                    .map(|(port, rid)| pb::Replica {
                        instance: *rid,
                        port_kind: Some(pb::replica::PortKind::EgressPort(*port)),
                        backup_replicas: vec![],
                    })
                    .collect::<Vec<_>>()
            };
            let mut out = vec![];
            match &q.r#type {
                Some(P::MulticastGroupEntry(m)) => {
                    let mut ids: Vec<u32> =
                        p.rt.mcast
                            .keys()
                            .copied()
                            .filter(|g| m.multicast_group_id == 0 || *g == m.multicast_group_id)
                            .collect();
                    ids.sort_unstable();
                    for g in ids {
                        out.push(entity(E::PacketReplicationEngineEntry(pb::PacketReplicationEngineEntry {
                            r#type: Some(P::MulticastGroupEntry(pb::MulticastGroupEntry {
                                multicast_group_id: g,
                                replicas: replicas(&p.rt.mcast[&g]),
                                metadata: vec![],
                            })),
                        })));
                    }
                }
                Some(P::CloneSessionEntry(c)) => {
                    let mut ids: Vec<u32> =
                        p.rt.clone_sessions
                            .keys()
                            .copied()
                            .filter(|x| c.session_id == 0 || *x == c.session_id)
                            .collect();
                    ids.sort_unstable();
                    for id in ids {
                        let (rs, truncate) = &p.rt.clone_sessions[&id];
                        out.push(entity(E::PacketReplicationEngineEntry(pb::PacketReplicationEngineEntry {
                            r#type: Some(P::CloneSessionEntry(pb::CloneSessionEntry {
                                session_id: id,
                                replicas: replicas(rs),
                                class_of_service: 0,
                                packet_length_bytes: *truncate as i32,
                            })),
                        })));
                    }
                }
                None => return fail(Code::InvalidArgument, "empty PacketReplicationEngineEntry"),
            }
            Ok(out)
        }
        E::ValueSetEntry(q) => {
            use pb::field_match::{Exact, FieldMatchType as M, Ternary};
            if q.value_set_id != 0 && !s.value_sets.contains_key(&q.value_set_id) {
                return fail(Code::NotFound, format!("no value set with id {}", q.value_set_id));
            }
            let mut out = vec![];
            for id in sorted_ids(&s.value_sets, q.value_set_id) {
                let vs = &s.value_sets[&id];
                let full = sluice_fastpath::p4::ir::mask_of(vs.bitwidth);
                let members = p.rt.value_sets[vs.ir as usize]
                    .iter()
                    .map(|(v, m)| pb::ValueSetMember {
                        r#match: vec![pb::FieldMatch {
                            field_id: 1,
                            field_match_type: Some(if *m == full {
                                M::Exact(Exact { value: codec::encode(*v) })
                            } else {
                                M::Ternary(Ternary { value: codec::encode(*v), mask: codec::encode(*m) })
                            }),
                        }],
                    })
                    .collect();
                out.push(entity(E::ValueSetEntry(pb::ValueSetEntry { value_set_id: id, members })));
            }
            Ok(out)
        }
        E::RegisterEntry(q) => {
            if q.register_id != 0 && !s.registers.contains_key(&q.register_id) {
                return fail(Code::NotFound, format!("no register with id {}", q.register_id));
            }
            let mut out = vec![];
            for id in sorted_ids(&s.registers, q.register_id) {
                let r = &s.registers[&id];
                let ir_r = r.ir as usize;
                // Registers are per worker: worker 0's cells are reported.
                let cells = match workers {
                    Some(w) if !w.is_empty() => w
                        .query_one(0, move |dp| dp.rt.registers[ir_r].clone())
                        .map_err(|e| Fail { code: Code::Unavailable, message: e.to_string() })?
                        .unwrap_or_else(|| p.rt.registers[ir_r].clone()),
                    _ => p.rt.registers[ir_r].clone(),
                };
                let range = selected(&q.index, cells.len(), &format!("register {:?}", r.name))?;
                for i in range {
                    out.push(entity(E::RegisterEntry(pb::RegisterEntry {
                        register_id: id,
                        index: Some(pb::Index { index: i as i64 }),
                        data: Some(pb::P4Data { data: Some(pb::p4_data::Data::Bitstring(codec::encode(cells[i]))) }),
                    })));
                }
            }
            Ok(out)
        }
        E::MeterEntry(q) => {
            let indexed: std::collections::HashMap<u32, &MeterSchema> =
                s.meters.iter().filter(|(_, m)| m.direct_table.is_none()).map(|(id, m)| (*id, m)).collect();
            if q.meter_id != 0 && !indexed.contains_key(&q.meter_id) {
                return fail(Code::NotFound, format!("no indexed meter with id {}", q.meter_id));
            }
            let mut out = vec![];
            for id in sorted_ids(&indexed, q.meter_id) {
                let m = indexed[&id];
                let cells = &p.rt.meters[m.ir as usize];
                let counts = match q.counter_data {
                    Some(_) => Some(meter_counts(p, m.ir, workers)?),
                    None => None,
                };
                let range = selected(&q.index, cells.len(), &format!("meter {:?}", m.name))?;
                for i in range {
                    out.push(entity(E::MeterEntry(pb::MeterEntry {
                        meter_id: id,
                        index: Some(pb::Index { index: i as i64 }),
                        config: cells[i].map(|c| codec::meter_config_msg(&c.config)),
                        counter_data: counts.as_ref().map(|c| meter_data(c.get(i).copied().unwrap_or_default())),
                    })));
                }
            }
            Ok(out)
        }
        E::DirectMeterEntry(q) => {
            let te = q.table_entry.clone().unwrap_or_default();
            let mut out = vec![];
            for t in tables(s, te.table_id)? {
                if t.direct_meter.is_none() {
                    if te.table_id != 0 {
                        return fail(Code::InvalidArgument, format!("table {:?} has no direct meter", t.name));
                    }
                    continue;
                }
                let query = pb::TableEntry {
                    table_id: t.id,
                    meter_config: Some(pb::MeterConfig::default()),
                    meter_counter_data: q.counter_data.map(|_| pb::MeterCounterData::default()),
                    ..te.clone()
                };
                for x in table_entries(p, &query, workers)? {
                    if let Some(E::TableEntry(mut e)) = x.entity {
                        let (config, counter_data) = (e.meter_config.take(), e.meter_counter_data.take());
                        out.push(entity(E::DirectMeterEntry(pb::DirectMeterEntry {
                            table_entry: Some(e),
                            config,
                            counter_data,
                        })));
                    }
                }
            }
            Ok(out)
        }
        E::DigestEntry(q) => {
            if q.digest_id != 0 && !s.digests.contains_key(&q.digest_id) {
                return fail(Code::NotFound, format!("no digest with id {} in the P4Info", q.digest_id));
            }
            if q.digest_id != 0 && !p.digests.contains_key(&q.digest_id) {
                return fail(Code::NotFound, format!("digest {} is not configured", q.digest_id));
            }
            Ok(p.digests
                .iter()
                .filter(|(id, _)| q.digest_id == 0 || **id == q.digest_id)
                .map(|(id, c)| entity(E::DigestEntry(pb::DigestEntry { digest_id: *id, config: Some(c.to_pb()) })))
                .collect())
        }
        E::ExternEntry(_) => fail(Code::Unimplemented, "v1model has no P4Runtime extern entries"),
    }
}
