//! The updates that turn one program state into another.
//!
//! Control edits a copy of the state with whatever tool suits (the
//! `simple_switch_CLI` command loader, say), then sends workers only the
//! difference as [`Op`]s, so a worker never rebuilds a table and its megaflows are
//! invalidated exactly for what changed. Ops come in an order every worker can
//! apply: members, groups, multicast groups, clone sessions, value sets and
//! registers first; then table deletes, modifies, inserts and defaults; and last
//! the deletion of members, groups, multicast groups and sessions nothing refers to
//! any more.
//!
//! Meter configurations are compared (after the tables: a direct meter's cell
//! belongs to an entry, which must exist first); counters, meter color counts and
//! hit counts are not: the workers own them.

use crate::p4::ops::Op;
use crate::p4::tables::Runtime;

impl Runtime {
    /// Ops that, applied in order to `self`, give `new`'s tables, action profiles,
    /// multicast groups, clone sessions, value sets and registers.
    pub fn diff(&self, new: &Runtime) -> Vec<Op> {
        let mut ops = Vec::new();
        let mut last = Vec::new();
        for (p, (a, b)) in self.profiles.iter().zip(&new.profiles).enumerate() {
            let profile = p as u32;
            for (id, m) in sorted(&b.members) {
                if a.members.get(&id) != Some(m) {
                    let insert = !a.members.contains_key(&id);
                    ops.push(Op::SetMember { profile, id, member: m.clone(), insert });
                }
            }
            for (id, g) in sorted(&b.groups) {
                if a.groups.get(&id) != Some(g) {
                    let insert = !a.groups.contains_key(&id);
                    ops.push(Op::SetGroup { profile, id, members: g.members.clone(), insert });
                }
            }
            for (id, _) in sorted(&a.groups) {
                if !b.groups.contains_key(&id) {
                    last.push(Op::DeleteGroup { profile, id });
                }
            }
            for (id, _) in sorted(&a.members) {
                if !b.members.contains_key(&id) {
                    last.push(Op::DeleteMember { profile, id });
                }
            }
        }
        for (group, r) in sorted(&new.mcast) {
            if self.mcast.get(&group) != Some(r) {
                let insert = !self.mcast.contains_key(&group);
                ops.push(Op::SetMcast { group, replicas: r.clone(), insert });
            }
        }
        for (group, _) in sorted(&self.mcast) {
            if !new.mcast.contains_key(&group) {
                last.push(Op::DeleteMcast { group });
            }
        }
        for (session, (r, truncate)) in sorted(&new.clone_sessions) {
            if self.clone_sessions.get(&session) != Some(&(r.clone(), *truncate)) {
                let insert = !self.clone_sessions.contains_key(&session);
                ops.push(Op::SetClone { session, replicas: r.clone(), truncate: *truncate, insert });
            }
        }
        for (session, _) in sorted(&self.clone_sessions) {
            if !new.clone_sessions.contains_key(&session) {
                last.push(Op::DeleteClone { session });
            }
        }
        for (set, (a, b)) in self.value_sets.iter().zip(&new.value_sets).enumerate() {
            if a != b {
                ops.push(Op::SetValueSet { set: set as u32, members: b.clone() });
            }
        }
        for (register, (a, b)) in self.registers.iter().zip(&new.registers).enumerate() {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                if x != y {
                    ops.push(Op::WriteRegister { register: register as u32, index: Some(i as u32), value: *y });
                }
            }
        }
        for (t, (a, b)) in self.tables.iter().zip(&new.tables).enumerate() {
            let table = t as u32;
            for (_, e) in a.entries() {
                if b.find_handle(&e.key, e.priority).is_none() {
                    ops.push(Op::Delete { table, key: e.key.clone(), priority: e.priority });
                }
            }
            for (_, e) in b.entries() {
                match a.find_handle(&e.key, e.priority).and_then(|h| a.get(h)) {
                    None => ops.push(Op::Insert { table, entry: e.clone() }),
                    Some(old) if old != e => ops.push(Op::Modify { table, entry: e.clone() }),
                    Some(_) => {}
                }
            }
            if a.default != b.default {
                ops.push(Op::SetDefault { table, action: b.default.clone() });
            }
        }
        for (m, (a, b)) in self.meters.iter().zip(&new.meters).enumerate() {
            let meter = m as u32;
            let direct = new.meter_table(meter);
            for i in 0..a.len().max(b.len()) {
                let (x, y) = (a.get(i).copied().flatten(), b.get(i).copied().flatten());
                let config = y.map(|c| c.config);
                if x.map(|c| c.config) == config {
                    continue;
                }
                match direct {
                    None => ops.push(Op::SetMeter { meter, index: Some(i as u32), config }),
                    Some(table) => {
                        // A cell that went with its entry needs no op.
                        if let Some(e) = new.tables[table as usize].get(i as u32) {
                            let (key, priority) = (e.key.clone(), e.priority);
                            ops.push(Op::SetDirectMeter { table, key, priority, config });
                        }
                    }
                }
            }
        }
        ops.extend(last);
        ops
    }
}

/// A map's entries by key, so ops come in a stable order.
fn sorted<V>(m: &std::collections::HashMap<u32, V>) -> Vec<(u32, &V)> {
    let mut v: Vec<(u32, &V)> = m.iter().map(|(k, v)| (*k, v)).collect();
    v.sort_unstable_by_key(|(k, _)| *k);
    v
}
