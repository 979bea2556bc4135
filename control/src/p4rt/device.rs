//! The device behind the P4Runtime service: its forwarding pipeline config and
//! control's copy of the program state, kept in step with the workers.
//!
//! # Writes are visible when they return
//! A Write is validated and applied update by update to control's copy of the state
//! (a refused update changes nothing and gets its own error). The accepted updates
//! then go, as one batch, to every worker's mailbox ([`Workers::apply`]); each worker
//! applies the batch between two bursts and makes the megaflows it invalidates
//! stale (never matched again; removed later, a slice per burst) before completing,
//! and the Write returns only when every worker has completed. A packet a worker
//! takes after that sees the new state. Workers never wait for
//! control. Applying the same ops to equal states gives equal results
//! (`fastpath::p4::ops`), so the copies never diverge (a worker that refuses an op
//! counts it in `refused_ops`, a bug if ever non-zero).
//!
//! Counters live in the workers (each counts its own packets): reads sum the
//! workers' cells, writes set worker 0's cell and zero the others'.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use sluice_fastpath::p4::ir::{Ir, TableId};
use sluice_fastpath::p4::ops::Op;
use sluice_fastpath::p4::tables::{Entry, Handle, Runtime};
use sluice_proto::p4::config::v1::P4Info;
use sluice_proto::p4::v1 as pb;
use tonic::Code;

use super::codec::{self, fail, CounterWrite, DigestWrite, Fail};
use super::digest::DigestConfig;
use super::idle::IdleTracker;
use super::schema::Schema;
use crate::pipeline::Loaded;
use crate::workers::Workers;

/// A forwarding pipeline: the config as the client sent it, the compiled program,
/// control's copy of its state, and its P4Runtime ids.
#[derive(Debug)]
pub struct Pipeline {
    /// P4Info, device config (BMv2 JSON) and cookie, as stored.
    pub config: pb::ForwardingPipelineConfig,
    /// The program.
    pub ir: Arc<Ir>,
    /// Control's copy of the state.
    pub rt: Runtime,
    /// P4Runtime ids resolved.
    pub schema: Arc<Schema>,
    /// Digest configs (`DigestEntry`) by P4Info id.
    pub digests: BTreeMap<u32, DigestConfig>,
    /// Idle state of the entries of idle-capable tables.
    pub idle: IdleTracker,
}

impl Pipeline {
    /// Verify a config: compile the JSON, cross-check the P4Info, resolve the ids.
    /// Nothing running changes.
    pub fn verify(config: &pb::ForwardingPipelineConfig) -> Result<Pipeline, Fail> {
        let Some(info) = &config.p4info else {
            return fail(Code::InvalidArgument, "the config has no P4Info");
        };
        if config.p4_device_config.is_empty() {
            return fail(Code::InvalidArgument, "the config has no p4_device_config (the BMv2 JSON)");
        }
        let text = sluice_proto::text::p4info_to_text(info);
        let loaded = crate::pipeline::from_bytes(&config.p4_device_config, Some(&text))
            .map_err(|e| Fail { code: Code::InvalidArgument, message: e.to_string() })?;
        Pipeline::new(loaded, config.clone())
    }

    /// A pipeline from a program loaded at start (`[pipeline]` in the configuration).
    pub fn new(l: Loaded, config: pb::ForwardingPipelineConfig) -> Result<Pipeline, Fail> {
        let schema = match &l.p4info {
            Some(info) => Schema::build(info, &l.ir).map_err(|m| Fail { code: Code::InvalidArgument, message: m })?,
            None => Schema::default(),
        };
        let idle_tables = schema.tables.values().filter(|t| t.idle_timeout).map(|t| t.ir);
        let idle = IdleTracker::new(idle_tables, &l.rt, Instant::now());
        Ok(Pipeline { config, ir: l.ir, rt: l.rt, schema: Arc::new(schema), digests: BTreeMap::new(), idle })
    }

    /// The config of a program loaded from files, for GetForwardingPipelineConfig.
    pub fn config_of(json: Vec<u8>, p4info_text: Option<&str>) -> Result<pb::ForwardingPipelineConfig, String> {
        let p4info = match p4info_text {
            Some(t) => Some(sluice_proto::text::p4info_from_text(t)?),
            None => Some(P4Info::default()),
        };
        Ok(pb::ForwardingPipelineConfig { p4info, p4_device_config: json, cookie: None })
    }
}

/// The device's pipelines.
#[derive(Debug, Default)]
pub struct Device {
    /// What the workers run.
    pub running: Option<Pipeline>,
    /// Saved by VERIFY_AND_SAVE, not yet committed (reads and writes use it).
    pub saved: Option<Pipeline>,
}

/// Counters summed over the workers (or control's copy when there are none).
fn sum(cells: Vec<Option<Vec<(u64, u64)>>>, fallback: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = vec![(0, 0); fallback.len()];
    let mut any = false;
    for c in cells.into_iter().flatten() {
        any = true;
        if out.len() < c.len() {
            out.resize(c.len(), (0, 0));
        }
        for (o, x) in out.iter_mut().zip(c) {
            o.0 += x.0;
            o.1 += x.1;
        }
    }
    if any {
        out
    } else {
        fallback.to_vec()
    }
}

fn unavailable(e: impl std::fmt::Display) -> Fail {
    Fail { code: Code::Unavailable, message: format!("the data plane did not take the update: {e}") }
}

impl Device {
    /// The pipeline reads and writes address: the saved one, else the running one.
    pub fn current(&mut self) -> Option<&mut Pipeline> {
        self.saved.as_mut().or(self.running.as_mut())
    }

    /// Whether writes reach the workers (false while a saved config awaits COMMIT).
    fn live(&self) -> bool {
        self.saved.is_none()
    }

    /// Apply a Write's updates; one result per update, in order.
    pub fn write(
        &mut self,
        updates: &[pb::Update],
        rollback: bool,
        workers: Option<&Workers>,
    ) -> Result<Vec<Result<(), Fail>>, Fail> {
        let live = self.live();
        let Some(p) = self.current() else {
            return fail(
                Code::FailedPrecondition,
                "no forwarding pipeline config is set: SetForwardingPipelineConfig first",
            );
        };
        let plans: Vec<Result<codec::Plan, Fail>> = updates.iter().map(|u| codec::plan(&p.schema, &p.ir, u)).collect();
        // Rollback: a batch of table entry inserts, modifies and deletes (nearly every
        // batch) keeps an undo per op; any other batch takes a copy of the state first,
        // which costs as much as all the entries.
        let undoing = rollback
            && plans.iter().flatten().all(|plan| plan.digest.is_none() && plan.ops.iter().all(Runtime::undoable));
        let before = (rollback && !undoing).then(|| (p.rt.clone(), p.digests.clone()));
        let mut undos = Vec::new();
        let mut ops = Vec::with_capacity(updates.len());
        let mut counters = Vec::new();
        let mut idle = Vec::new();
        let mut results = Vec::with_capacity(updates.len());
        for plan in plans {
            let r = plan.and_then(|plan| {
                if let Some(d) = &plan.digest {
                    write_digest(&mut p.digests, d)?;
                }
                let n = ops.len();
                for op in &plan.ops {
                    let gone = idle_handle_before(p, op);
                    let applied = if undoing {
                        p.rt.apply_undoable(&p.ir, op).map(|u| undos.push(u))
                    } else {
                        p.rt.apply(&p.ir, op)
                    };
                    if let Err(e) = applied {
                        // Ops of one update are all or nothing: only the first op of a
                        // plan can fail (a table entry's meter config, its second op, was
                        // checked when planned), so nothing of this update was applied.
                        ops.truncate(n);
                        return Err(Fail::from(e));
                    }
                    idle.extend(idle_event(p, op, gone));
                    ops.push(op.clone());
                }
                for c in &plan.counters {
                    check_counter(&p.rt, c)?;
                }
                counters.extend(plan.counters);
                Ok(())
            });
            results.push(r);
        }
        if rollback && results.iter().any(Result::is_err) {
            match before {
                Some((rt, digests)) => {
                    p.rt = rt;
                    p.digests = digests;
                }
                None => {
                    for u in undos.into_iter().rev() {
                        p.rt.undo(&p.ir, u);
                    }
                }
            }
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = fail(Code::Aborted, "not applied: another update of the batch failed (ROLLBACK_ON_ERROR)");
            }
            return Ok(results);
        }
        let now = Instant::now();
        for e in idle {
            match e {
                IdleEvent::Inserted(t, h, ttl) => p.idle.inserted(t, h, ttl, now),
                IdleEvent::Modified(t, h, ttl) => p.idle.modified(t, h, ttl, now),
                IdleEvent::Deleted(t, h) => p.idle.deleted(t, h),
            }
        }
        if live {
            if let Some(w) = workers {
                w.apply(ops.into()).map_err(unavailable)?;
                set_counters(w, &counters).map_err(unavailable)?;
            } else {
                set_counters_local(&mut p.rt, &counters);
            }
        } else {
            set_counters_local(&mut p.rt, &counters);
        }
        Ok(results)
    }

    /// Read entities; one result per requested entity.
    pub fn read(
        &mut self,
        entities: &[pb::Entity],
        workers: Option<&Workers>,
    ) -> Result<Vec<Result<Vec<pb::Entity>, Fail>>, Fail> {
        let live = self.live();
        let Some(p) = self.current() else {
            return fail(
                Code::FailedPrecondition,
                "no forwarding pipeline config is set: SetForwardingPipelineConfig first",
            );
        };
        let workers = workers.filter(|_| live);
        let idle_asked = entities
            .iter()
            .any(|e| matches!(&e.entity, Some(pb::entity::Entity::TableEntry(t)) if t.time_since_last_hit.is_some()));
        if idle_asked {
            observe_hits(p, workers, Instant::now())?;
        }
        Ok(entities.iter().map(|e| super::read::read(p, e, workers)).collect())
    }
}

/// Bring the idle tracker up to date: the idle-capable tables' hit counts, summed
/// over the workers (control's copy without them).
pub fn observe_hits(p: &mut Pipeline, workers: Option<&Workers>, now: Instant) -> Result<(), Fail> {
    let tables = p.idle.tables();
    if tables.is_empty() {
        return Ok(());
    }
    let hits: Vec<Vec<u64>> = match workers {
        None => tables.iter().map(|t| p.rt.tables[*t as usize].hits.clone()).collect(),
        Some(w) => {
            let ts = tables.clone();
            w.presettle().map_err(unavailable)?;
            let per_worker = w
                .query(move |dp| {
                    let rt = dp.settled();
                    ts.iter().map(|t| rt.tables[*t as usize].hits.clone()).collect::<Vec<_>>()
                })
                .map_err(unavailable)?;
            let mut sum: Vec<Vec<u64>> = vec![vec![]; tables.len()];
            for got in per_worker.into_iter().flatten() {
                for (s, h) in sum.iter_mut().zip(got) {
                    if s.len() < h.len() {
                        s.resize(h.len(), 0);
                    }
                    for (a, b) in s.iter_mut().zip(h) {
                        *a += b;
                    }
                }
            }
            sum
        }
    };
    for (t, h) in tables.into_iter().zip(hits) {
        p.idle.observe(t, &h, now);
    }
    Ok(())
}

/// What a write did to an entry of an idle-capable table.
#[derive(Debug, Clone, Copy)]
enum IdleEvent {
    Inserted(TableId, Handle, i64),
    Modified(TableId, Handle, i64),
    Deleted(TableId, Handle),
}

/// The handle a delete of an idle-capable table's entry is about to free.
fn idle_handle_before(p: &Pipeline, op: &Op) -> Option<Handle> {
    match op {
        Op::Delete { table, key, priority } if p.idle.tracks(*table) => {
            p.rt.tables[*table as usize].find_handle(key, *priority)
        }
        _ => None,
    }
}

/// The idle event of an applied op, if it touched an idle-capable table's entry.
fn idle_event(p: &Pipeline, op: &Op, gone: Option<Handle>) -> Option<IdleEvent> {
    let ttl = |e: &Entry| e.meta.as_ref().map_or(0, |m| m.idle_timeout_ns);
    match op {
        Op::Insert { table, entry } | Op::Modify { table, entry } if p.idle.tracks(*table) => {
            let h = p.rt.tables[*table as usize].find_handle(&entry.key, entry.priority)?;
            Some(match op {
                Op::Insert { .. } => IdleEvent::Inserted(*table, h, ttl(entry)),
                _ => IdleEvent::Modified(*table, h, ttl(entry)),
            })
        }
        Op::Delete { table, .. } => gone.map(|h| IdleEvent::Deleted(*table, h)),
        _ => None,
    }
}

/// Apply a `DigestEntry` write to `configs`, with PI's codes.
fn write_digest(configs: &mut BTreeMap<u32, DigestConfig>, d: &DigestWrite) -> Result<(), Fail> {
    let exists = configs.contains_key(&d.id);
    match (&d.config, d.insert, exists) {
        (Some(_), true, true) => fail(Code::AlreadyExists, format!("digest {} is already configured", d.id)),
        (Some(_), false, false) | (None, _, false) => {
            fail(Code::NotFound, format!("digest {} is not configured (INSERT its DigestEntry first)", d.id))
        }
        (Some(c), _, _) => {
            configs.insert(d.id, *c);
            Ok(())
        }
        (None, _, true) => {
            configs.remove(&d.id);
            Ok(())
        }
    }
}

/// Whether a counter write names something that exists.
fn check_counter(rt: &Runtime, c: &CounterWrite) -> Result<(), Fail> {
    match c {
        CounterWrite::Direct { table, key, priority, .. } => {
            match rt.tables[*table as usize].find_handle(key, *priority) {
                Some(_) => Ok(()),
                None => fail(Code::NotFound, "no entry with this match and priority"),
            }
        }
        CounterWrite::Indexed { .. } => Ok(()),
    }
}

fn set_counters_local(rt: &mut Runtime, writes: &[CounterWrite]) {
    for c in writes {
        match c {
            CounterWrite::Direct { table, key, priority, packets, bytes } => {
                let t = &mut rt.tables[*table as usize];
                if let Some(h) = t.find_handle(key, *priority) {
                    t.direct_counters[h as usize] = (*packets, *bytes);
                }
            }
            CounterWrite::Indexed { counter, index, packets, bytes } => {
                let cells = &mut rt.counters[*counter as usize];
                match index {
                    Some(i) => cells[*i as usize] = (*packets, *bytes),
                    None => cells.fill((*packets, *bytes)),
                }
            }
        }
    }
}

/// Worker 0 gets the values, the others zero (reads sum the workers).
fn set_counters(w: &Workers, writes: &[CounterWrite]) -> Result<(), sluice_fastpath::mailbox::MailboxError> {
    if writes.is_empty() {
        return Ok(());
    }
    // Entries were checked on control's copy (equal to every worker's).
    w.presettle()?;
    for k in 0..w.len() {
        let mut mine = writes.to_vec();
        if k > 0 {
            for c in mine.iter_mut() {
                match c {
                    CounterWrite::Direct { packets, bytes, .. } | CounterWrite::Indexed { packets, bytes, .. } => {
                        *packets = 0;
                        *bytes = 0;
                    }
                }
            }
        }
        w.query_one(k, move |dp| set_counters_local(dp.settled(), &mine))?;
    }
    Ok(())
}

/// Counter cells summed over the workers: `cells` picks them from a datapath; without
/// workers, control's copy.
fn summed(
    local: &[(u64, u64)],
    workers: Option<&Workers>,
    cells: impl Fn(&Runtime) -> Vec<(u64, u64)> + Send + Sync + 'static,
) -> Result<Vec<(u64, u64)>, Fail> {
    match workers {
        None => Ok(local.to_vec()),
        Some(w) => {
            w.presettle().map_err(unavailable)?;
            let got = w.query(move |dp| cells(dp.settled())).map_err(unavailable)?;
            Ok(sum(got, local))
        }
    }
}

/// Color counts (packets, bytes for GREEN, YELLOW, RED) of meter `meter`'s cells,
/// summed over the workers.
pub fn meter_counts(p: &Pipeline, meter: u32, workers: Option<&Workers>) -> Result<Vec<[(u64, u64); 3]>, Fail> {
    let of = move |rt: &Runtime| -> Vec<[(u64, u64); 3]> {
        rt.meters[meter as usize].iter().map(|c| c.map_or([(0, 0); 3], |c| c.counts)).collect()
    };
    let cells = match workers {
        None => vec![Some(of(&p.rt))],
        Some(w) => {
            w.presettle().map_err(unavailable)?;
            w.query(move |dp| of(dp.settled())).map_err(unavailable)?
        }
    };
    let mut out: Vec<[(u64, u64); 3]> = vec![];
    for c in cells.into_iter().flatten() {
        if out.len() < c.len() {
            out.resize(c.len(), [(0, 0); 3]);
        }
        for (o, x) in out.iter_mut().zip(c) {
            for k in 0..3 {
                o[k].0 += x[k].0;
                o[k].1 += x[k].1;
            }
        }
    }
    Ok(out)
}

/// Sum a table's direct counters over the workers.
pub fn direct_counters(p: &Pipeline, table: u32, workers: Option<&Workers>) -> Result<Vec<(u64, u64)>, Fail> {
    summed(&p.rt.tables[table as usize].direct_counters, workers, move |rt| {
        rt.tables[table as usize].direct_counters.clone()
    })
}

/// Sum an indexed counter over the workers.
pub fn indexed_counters(p: &Pipeline, counter: u32, workers: Option<&Workers>) -> Result<Vec<(u64, u64)>, Fail> {
    summed(&p.rt.counters[counter as usize], workers, move |rt| rt.counters[counter as usize].clone())
}
