//! Batches taken back by [`Undo`]: random inserts, modifies and deletes on an LPM
//! and a ternary table, and an LPM table with a direct meter (its cells configured),
//! with counters on the entries, undone
//! in reverse, leave the table exactly as it was: entries, handles, free handles,
//! counters, meter cells, group order and contents, and every lookup's answer.

use proptest::prelude::*;

use super::*;
use crate::p4::compile::compile_bytes;
use crate::p4::ops::Op as StateOp;

fn ir_of(rel: &str) -> Option<Ir> {
    let path = crate::p4::corpus::dir()?.join(rel);
    Some(compile_bytes(&std::fs::read(&path).expect("corpus file")).expect("compiles"))
}

/// Everything of table `t` that an undo must restore, in a form that compares
/// (hash maps sorted; the probe order of groups kept).
fn state(rt: &Runtime, t: usize) -> String {
    let ts = &rt.tables[t];
    let groups: Vec<String> = ts
        .groups
        .iter()
        .map(|g| {
            let mut m: Vec<String> =
                g.map.iter().map(|(k, r)| format!("{:?}={:?}", k.as_slice(), r.as_slice())).collect();
            m.sort();
            format!("{:?} best {} ranks {:?} {m:?}", g.masks, g.best, g.ranks)
        })
        .collect();
    let meters: Vec<String> =
        rt.meters.iter().map(|m| format!("{}", m.iter().filter(|c| c.is_some()).count())).collect();
    format!(
        "entries {:?}\nfree {:?}\ncounters {:?}\nhits {:?}\ncount {}\ngroups {groups:?}\nmeters {meters:?}",
        ts.entries, ts.free, ts.direct_counters, ts.hits, ts.count
    )
}

/// A random op on table `t`: keys from a small space, so that inserts meet existing
/// keys and deletes and modifies meet missing ones.
#[derive(Debug, Clone)]
enum Step {
    Insert(u8, u8),
    Modify(u8, u8),
    Delete(u8),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        (0..12u8, 0..2u8).prop_map(|(k, a)| Step::Insert(k, a)),
        (0..12u8, 0..2u8).prop_map(|(k, a)| Step::Modify(k, a)),
        (0..12u8).prop_map(Step::Delete),
    ];
    proptest::collection::vec(step, 0..24)
}

/// Table `name` of `ir` with keys and actions from `key`, `action`.
struct Case {
    ir: Ir,
    t: TableId,
    key: fn(u8) -> (Vec<KeyValue>, i32),
    action: fn(&Ir, &TableDef, u8) -> EntryAction,
}

impl Case {
    fn op(&self, s: &Step) -> StateOp {
        let def = &self.ir.tables[self.t as usize];
        let entry = |k: u8, a: u8| {
            let (key, priority) = (self.key)(k);
            Entry { key, priority, action: (self.action)(&self.ir, def, a), meta: None }
        };
        match *s {
            Step::Insert(k, a) => StateOp::Insert { table: self.t, entry: entry(k, a) },
            Step::Modify(k, a) => StateOp::Modify { table: self.t, entry: entry(k, a) },
            Step::Delete(k) => {
                let (key, priority) = (self.key)(k);
                StateOp::Delete { table: self.t, key, priority }
            }
        }
    }

    fn check(&self, before: &[Step], batch: &[Step], probes: &[Vec<Value>]) {
        let (ir, t) = (&self.ir, self.t as usize);
        let mut rt = Runtime::new(ir);
        for s in before {
            let _ = rt.apply(ir, &self.op(s));
        }
        // A configured meter cell on every entry of a metered table.
        let config = crate::p4::meters::MeterConfig { cir: 1000, cburst: 100, pir: 2000, pburst: 200 };
        if ir.tables[t].direct_meter.is_some() {
            let keys: Vec<(Vec<KeyValue>, i32)> =
                rt.tables[t].entries().map(|(_, e)| (e.key.clone(), e.priority)).collect();
            for (key, priority) in keys {
                rt.apply(ir, &StateOp::SetDirectMeter { table: self.t, key, priority, config: Some(config) }).unwrap();
            }
        }
        // Counters on every entry, so that a handle reused and given back must keep them.
        for h in 0..rt.tables[t].hits.len() {
            rt.tables[t].hits[h] = 100 + h as u64;
            rt.tables[t].direct_counters[h] = (h as u64, 1000 + h as u64);
        }
        let was = state(&rt, t);
        let answers = |rt: &Runtime| -> Vec<Option<Handle>> {
            probes.iter().map(|k| rt.tables[t].lookup(k, true, |_| {}).map(|(h, _)| h)).collect()
        };
        let answered = answers(&rt);
        let mut undos = vec![];
        for s in batch {
            if let Ok(u) = rt.apply_undoable(ir, &self.op(s)) {
                undos.push(u);
            }
        }
        for u in undos.into_iter().rev() {
            rt.undo(ir, u);
        }
        assert_eq!(state(&rt, t), was, "batch {batch:?} after {before:?}");
        assert_eq!(answers(&rt), answered);
    }
}

fn call(ir: &Ir, def: &TableDef, name: &str, args: &[Value]) -> EntryAction {
    let slot = def.actions.iter().position(|a| ir.actions[*a as usize].name == name).expect("action of the table");
    EntryAction::Call(ActionCall { slot: slot as u32, args: args.iter().copied().collect() })
}

/// Prefixes of three lengths over four networks: nested and disjoint.
fn lpm_key(k: u8) -> (Vec<KeyValue>, i32) {
    let (net, prefix) = (k as Value % 4, [16, 24, 32][k as usize / 4]);
    (vec![KeyValue::Lpm { value: 0x0a00_0000 | net << 16, prefix }], 0)
}

fn lpm() -> Option<Case> {
    let ir = ir_of("simple_router/simple_router.json")?;
    let t = ir.tables.iter().position(|t| t.name == "ipv4_lpm")? as TableId;
    Some(Case { ir, t, key: lpm_key, action: |ir, def, a| call(ir, def, "set_nhop", &[0x0a00_0001, a as Value + 1]) })
}

fn ternary() -> Option<Case> {
    let ir = ir_of("bmv2_grpc_tests/ternary.json")?;
    let t = ir.tables.iter().position(|t| t.name == "ingress.ter")? as TableId;
    Some(Case {
        ir,
        t,
        // Three masks, four values; priorities repeat across masks (ties between groups).
        key: |k| {
            let mask = [0xff00, 0x00ff, 0xffff][k as usize % 3];
            (vec![KeyValue::Ternary { value: (0x1212 * (k as Value / 3)) & mask, mask }], 10 + (k as i32 % 2))
        },
        action: |ir, def, a| call(ir, def, ["ingress.send_1", "ingress.send_2"][a as usize], &[]),
    })
}

fn metered() -> Option<Case> {
    let ir = ir_of("onos_basic/basic.json")?;
    let t = ir.tables.iter().position(|t| t.name == "ingress.host_meter_control.host_meter_table")? as TableId;
    assert!(ir.tables[t as usize].direct_meter.is_some());
    Some(Case {
        ir,
        t,
        key: lpm_key,
        action: |ir, def, a| call(ir, def, ["ingress.host_meter_control.read_meter", "NoAction"][a as usize], &[]),
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn an_undone_batch_leaves_an_lpm_table_as_it_was(before in steps(), batch in steps()) {
        let Some(c) = lpm() else { return Ok(()) };
        let probes: Vec<Vec<Value>> = (0..4u128).flat_map(|n| [vec![0x0a00_0000 | n << 16], vec![0x0a00_0001 | n << 16]]).collect();
        c.check(&before, &batch, &probes);
    }

    #[test]
    fn an_undone_batch_leaves_a_metered_table_and_its_meter_cells_as_they_were(before in steps(), batch in steps()) {
        let Some(c) = metered() else { return Ok(()) };
        let probes: Vec<Vec<Value>> = (0..4u128).map(|n| vec![0x0a00_0001 | n << 16]).collect();
        c.check(&before, &batch, &probes);
    }

    #[test]
    fn an_undone_batch_leaves_a_ternary_table_as_it_was(before in steps(), batch in steps()) {
        let Some(c) = ternary() else { return Ok(()) };
        let probes: Vec<Vec<Value>> = [0, 0x1212, 0x2424, 0x3636, 0x1224, 0x2412].iter().map(|v| vec![*v]).collect();
        c.check(&before, &batch, &probes);
    }
}
