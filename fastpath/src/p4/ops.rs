//! State updates as data: what the control side applies to its own copy of a
//! program's state and then, unchanged, to every worker's copy.
//!
//! Applying the same sequence of [`Op`]s to equal [`Runtime`]s gives equal results —
//! the same errors and the same entry handles (the free list is deterministic) — so
//! control validates a batch on its copy and workers replay it knowing it applies.
//! An op that is refused changes nothing.

use super::ir::{Ir, KeyValue, TableId, Value};
use super::meters::{MeterCell, MeterConfig};
use super::tables::{Entry, EntryAction, Member, Replica, Runtime, UpdateError};

/// One update of a program's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Insert a table entry.
    Insert {
        /// Table.
        table: TableId,
        /// The entry.
        entry: Entry,
    },
    /// Replace the action of the entry with this key and priority.
    Modify {
        /// Table.
        table: TableId,
        /// The entry (its key and priority select the one to change).
        entry: Entry,
    },
    /// Delete the entry with this key and priority.
    Delete {
        /// Table.
        table: TableId,
        /// Key.
        key: Vec<KeyValue>,
        /// Priority.
        priority: i32,
    },
    /// Set a table's default action (`None`: back to the program's).
    SetDefault {
        /// Table.
        table: TableId,
        /// The action.
        action: Option<EntryAction>,
    },
    /// Add (`insert`) or replace an action profile member.
    SetMember {
        /// Profile.
        profile: u32,
        /// Member id.
        id: u32,
        /// The member.
        member: Member,
        /// Refuse if it exists (insert) or if it does not (modify).
        insert: bool,
    },
    /// Delete a member.
    DeleteMember {
        /// Profile.
        profile: u32,
        /// Member id.
        id: u32,
    },
    /// Add (`insert`) or replace a selector group: members with weight and watch port.
    SetGroup {
        /// Profile.
        profile: u32,
        /// Group id.
        id: u32,
        /// Members.
        members: Vec<(u32, u32, Option<u32>)>,
        /// Refuse if it exists (insert) or if it does not (modify).
        insert: bool,
    },
    /// Delete a group.
    DeleteGroup {
        /// Profile.
        profile: u32,
        /// Group id.
        id: u32,
    },
    /// Add (`insert`) or replace a multicast group.
    SetMcast {
        /// Group id (non-zero).
        group: u32,
        /// Replicas.
        replicas: Vec<Replica>,
        /// Refuse if it exists (insert) or if it does not (modify).
        insert: bool,
    },
    /// Delete a multicast group.
    DeleteMcast {
        /// Group id.
        group: u32,
    },
    /// Add (`insert`) or replace a clone session.
    SetClone {
        /// Session id (non-zero).
        session: u32,
        /// Replicas.
        replicas: Vec<Replica>,
        /// Truncate copies to this many bytes (0: no truncation).
        truncate: u32,
        /// Refuse if it exists (insert) or if it does not (modify).
        insert: bool,
    },
    /// Delete a clone session.
    DeleteClone {
        /// Session id.
        session: u32,
    },
    /// Replace a parser value set's members (value, mask).
    SetValueSet {
        /// Value set.
        set: u32,
        /// Members.
        members: Vec<(Value, Value)>,
    },
    /// Write a register cell (`None`: every cell).
    WriteRegister {
        /// Register.
        register: u32,
        /// Cell.
        index: Option<u32>,
        /// Value.
        value: Value,
    },
    /// Configure an indexed meter's cell (`index` `None`: every cell); `config`
    /// `None` returns it to unconfigured (GREEN).
    SetMeter {
        /// Meter array.
        meter: u32,
        /// Cell.
        index: Option<u32>,
        /// The configuration.
        config: Option<MeterConfig>,
    },
    /// Configure the direct meter cell of the entry with this key and priority.
    SetDirectMeter {
        /// Table.
        table: TableId,
        /// Key.
        key: Vec<KeyValue>,
        /// Priority.
        priority: i32,
        /// The configuration (`None`: unconfigured).
        config: Option<MeterConfig>,
    },
}

impl Runtime {
    /// A cell for `config` in this state (a running marker in workers), or why not.
    fn meter_cell(&self, ir: &Ir, meter: u32, config: Option<MeterConfig>) -> Result<Option<MeterCell>, UpdateError> {
        match config {
            None => Ok(None),
            Some(c) => {
                let now = dpdk_sys::lcore::rdtsc();
                let bytes = ir.meters[meter as usize].bytes;
                MeterCell::new(c, self.meter_share, now, bytes).map(Some).map_err(UpdateError::Invalid)
            }
        }
    }
}

fn exists(what: String, present: bool, insert: bool) -> Result<(), UpdateError> {
    match (present, insert) {
        (true, true) => Err(UpdateError::Exists(what)),
        (false, false) => Err(UpdateError::NotFound(what)),
        _ => Ok(()),
    }
}

fn check_replicas(replicas: &[Replica]) -> Result<(), UpdateError> {
    for (i, r) in replicas.iter().enumerate() {
        if replicas[..i].contains(r) {
            return Err(UpdateError::Invalid(format!("replica (port {}, instance {}) given twice", r.0, r.1)));
        }
    }
    Ok(())
}

impl Runtime {
    /// Apply one op; a refused op changes nothing.
    pub fn apply(&mut self, ir: &Ir, op: &Op) -> Result<(), UpdateError> {
        match op {
            Op::Insert { table, entry } => self.insert(ir, *table, entry.clone()).map(drop),
            Op::Modify { table, entry } => self.modify(ir, *table, entry.clone()).map(drop),
            Op::Delete { table, key, priority } => self.delete(ir, *table, key.clone(), *priority).map(drop),
            Op::SetDefault { table, action } => self.set_default(ir, *table, action.clone()),
            Op::SetMember { profile, id, member, insert } => {
                let present = self.profiles.get(*profile as usize).is_some_and(|p| p.members.contains_key(id));
                exists(format!("member {id}"), present, *insert)?;
                self.set_member(ir, *profile, *id, member.clone())
            }
            Op::DeleteMember { profile, id } => self.delete_member(ir, *profile, *id),
            Op::SetGroup { profile, id, members, insert } => {
                let present = self.profiles.get(*profile as usize).is_some_and(|p| p.groups.contains_key(id));
                exists(format!("group {id}"), present, *insert)?;
                self.set_group(ir, *profile, *id, members.clone())
            }
            Op::DeleteGroup { profile, id } => self.delete_group(ir, *profile, *id),
            Op::SetMcast { group, replicas, insert } => {
                if *group == 0 {
                    return Err(UpdateError::Invalid("multicast group id 0 is reserved (no multicast)".into()));
                }
                exists(format!("multicast group {group}"), self.mcast.contains_key(group), *insert)?;
                check_replicas(replicas)?;
                self.mcast.insert(*group, replicas.clone());
                Ok(())
            }
            Op::DeleteMcast { group } => match self.mcast.remove(group) {
                Some(_) => Ok(()),
                None => Err(UpdateError::NotFound(format!("multicast group {group}"))),
            },
            Op::SetClone { session, replicas, truncate, insert } => {
                if *session == 0 {
                    return Err(UpdateError::Invalid("clone session id 0 is reserved".into()));
                }
                exists(format!("clone session {session}"), self.clone_sessions.contains_key(session), *insert)?;
                check_replicas(replicas)?;
                self.clone_sessions.insert(*session, (replicas.clone(), *truncate));
                Ok(())
            }
            Op::DeleteClone { session } => match self.clone_sessions.remove(session) {
                Some(_) => Ok(()),
                None => Err(UpdateError::NotFound(format!("clone session {session}"))),
            },
            Op::SetValueSet { set, members } => {
                let Some(def) = ir.value_sets.get(*set as usize) else {
                    return Err(UpdateError::NotFound(format!("value set {set}")));
                };
                if members.len() > def.max_size.max(1) as usize {
                    return Err(UpdateError::Full(format!(
                        "value set {:?} holds {} members, {} given",
                        def.name,
                        def.max_size,
                        members.len()
                    )));
                }
                let m = super::ir::mask_of(def.width);
                if let Some((v, k)) = members.iter().find(|(v, k)| *v > m || *k > m) {
                    return Err(UpdateError::Invalid(format!(
                        "value set {:?}: member {v:#x}/{k:#x} does not fit {} bits",
                        def.name, def.width
                    )));
                }
                self.value_sets[*set as usize] = members.clone();
                Ok(())
            }
            Op::WriteRegister { register, index, value } => {
                let Some(def) = ir.registers.get(*register as usize) else {
                    return Err(UpdateError::NotFound(format!("register {register}")));
                };
                if *value > super::ir::mask_of(def.width) {
                    return Err(UpdateError::Invalid(format!(
                        "register {:?}: {value:#x} does not fit {} bits",
                        def.name, def.width
                    )));
                }
                let cells = &mut self.registers[*register as usize];
                match index {
                    None => cells.fill(*value),
                    Some(i) => match cells.get_mut(*i as usize) {
                        Some(c) => *c = *value,
                        None => {
                            return Err(UpdateError::Invalid(format!(
                                "register {:?} index {i} out of range (size {})",
                                def.name,
                                cells.len()
                            )))
                        }
                    },
                }
                Ok(())
            }
            Op::SetMeter { meter, index, config } => {
                let Some(def) = ir.meters.get(*meter as usize).filter(|m| m.direct.is_none()) else {
                    return Err(UpdateError::NotFound(format!("indexed meter {meter}")));
                };
                let cell = self.meter_cell(ir, *meter, *config)?;
                let cells = &mut self.meters[*meter as usize];
                match index {
                    None => cells.fill(cell),
                    Some(i) => match cells.get_mut(*i as usize) {
                        Some(c) => *c = cell,
                        None => {
                            return Err(UpdateError::Invalid(format!(
                                "meter {:?} index {i} out of range (size {})",
                                def.name,
                                cells.len()
                            )))
                        }
                    },
                }
                Ok(())
            }
            Op::SetDirectMeter { table, key, priority, config } => {
                let Some(def) = ir.tables.get(*table as usize) else {
                    return Err(UpdateError::NotFound(format!("table id {table}")));
                };
                let Some(m) = def.direct_meter else {
                    return Err(UpdateError::Invalid(format!("table {:?} has no direct meter", def.name)));
                };
                let Some(h) = self.tables[*table as usize].find_handle(key, *priority) else {
                    return Err(UpdateError::NotFound(format!(
                        "an entry of table {:?} with this key and priority",
                        def.name
                    )));
                };
                let cell = self.meter_cell(ir, m, *config)?;
                *self.direct_meter_cell(m, h) = cell;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::p4::compile::compile;
    use crate::p4::ir::ActionCall;
    use crate::p4::json::Program;

    fn router() -> Option<Ir> {
        let c = crate::p4::corpus::dir()?;
        let prog = Program::parse_bytes(&std::fs::read(c.join("simple_router/simple_router.json")).unwrap()).unwrap();
        Some(compile(&prog).unwrap())
    }

    #[test]
    fn ops_replay_identically_and_refusals_change_nothing() {
        let Some(ir) = router() else { return };
        let t = ir.tables.iter().position(|t| t.name == "ipv4_lpm").unwrap() as TableId;
        let set_nhop = ir.tables[t as usize].actions.iter().position(|a| ir.actions[*a as usize].name == "set_nhop");
        let call = |port| {
            EntryAction::Call(ActionCall { slot: set_nhop.unwrap() as u32, args: vec![0x0a000001, port].into() })
        };
        let e = |v, port| Entry {
            key: vec![KeyValue::Lpm { value: v, prefix: 24 }],
            priority: 0,
            action: call(port),
            meta: None,
        };
        let ops = vec![
            Op::Insert { table: t, entry: e(0x0a000000, 1) },
            Op::Insert { table: t, entry: e(0x0a000100, 2) },
            Op::Delete { table: t, key: vec![KeyValue::Lpm { value: 0x0a000000, prefix: 24 }], priority: 0 },
            Op::Insert { table: t, entry: e(0x0a000200, 3) },
            Op::SetMcast { group: 1, replicas: vec![(1, 0), (2, 0)], insert: true },
            Op::SetClone { session: 5, replicas: vec![(3, 1)], truncate: 0, insert: true },
        ];
        let mut a = Runtime::new(&ir);
        let mut b = Runtime::new(&ir);
        for op in &ops {
            a.apply(&ir, op).unwrap();
            b.apply(&ir, op).unwrap();
        }
        let handles = |rt: &Runtime| rt.tables[t as usize].entries().map(|(h, e)| (h, e.clone())).collect::<Vec<_>>();
        assert_eq!(handles(&a), handles(&b));
        assert_eq!(handles(&a).iter().map(|(h, _)| *h).collect::<Vec<_>>(), vec![0, 1], "the freed handle is reused");
        let before = handles(&a);
        for (op, want) in [
            (Op::Insert { table: t, entry: e(0x0a000100, 9) }, "already exists"),
            (Op::Modify { table: t, entry: e(0x0b000000, 9) }, "not found"),
            (Op::Insert { table: t, entry: e(0x0a000101, 9) }, "masked-off bits"),
            (Op::SetMcast { group: 1, replicas: vec![], insert: true }, "already exists"),
            (Op::SetMcast { group: 2, replicas: vec![], insert: false }, "not found"),
            (Op::SetMcast { group: 3, replicas: vec![(1, 0), (1, 0)], insert: true }, "given twice"),
            (Op::DeleteClone { session: 6 }, "not found"),
        ] {
            let err = a.apply(&ir, &op).unwrap_err().to_string();
            assert!(err.contains(want), "{op:?}: {err}");
        }
        assert_eq!(handles(&a), before);
        assert_eq!(a.mcast.len(), 1);
        assert_eq!(a.clone_sessions[&5], (vec![(3, 1)], 0));
    }
}
