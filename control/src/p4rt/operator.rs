//! What the management API asks of the running program: a summary, and table
//! commands in `simple_switch_CLI` syntax for operators.
//!
//! Operator writes edit a copy of the running state with the command loader
//! (`crate::entries`), and send the workers only the difference
//! (`Runtime::diff`), through the same path as P4Runtime writes: visible to every
//! packet when the call returns, all or nothing. They are allowed while a
//! P4Runtime controller is connected (as `ovs-ofctl` is next to an OpenFlow
//! controller); the controller sees the entries in its reads.

use sluice_fastpath::p4::meters::MeterConfig;
use sluice_fastpath::p4::ops::Op;
use tonic::Status;

use super::{lock, P4rt};

/// A configured meter cell, as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterCellInfo {
    /// Index (indexed meters) or entry handle (direct meters).
    pub index: u64,
    /// Its configuration.
    pub config: MeterConfig,
    /// Packets and bytes colored GREEN, YELLOW, RED (all workers).
    pub counts: [(u64, u64); 3],
}

/// A meter array of the running program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterInfo {
    /// Its name.
    pub name: String,
    /// The table of a direct meter.
    pub table: Option<String>,
    /// Bytes (else packets).
    pub bytes: bool,
    /// Cells (indexed meters).
    pub size: u64,
    /// Configured cells.
    pub cells: Vec<MeterCellInfo>,
}

/// One table of the running program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    /// Its name.
    pub name: String,
    /// Key fields as `field:kind/width`.
    pub keys: Vec<String>,
    /// Entries now.
    pub entries: usize,
    /// Capacity.
    pub size: u64,
    /// Action names.
    pub actions: Vec<String>,
}

/// The running program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineSummary {
    /// Program name (the file stem of the P4 source p4c compiled).
    pub program: String,
    /// Cookie of its P4Runtime config (0 if none).
    pub cookie: u64,
    /// Tables.
    pub tables: Vec<TableSummary>,
    /// Counter arrays.
    pub counters: usize,
    /// Meter arrays.
    pub meters: usize,
    /// Registers.
    pub registers: usize,
    /// Digests.
    pub digests: usize,
}

impl P4rt {
    /// The running program, if any.
    pub fn pipeline_summary(&self) -> Option<PipelineSummary> {
        let dev = lock(&self.device);
        let p = dev.running.as_ref()?;
        let ir = &p.ir;
        Some(PipelineSummary {
            program: std::path::Path::new(&ir.name)
                .file_stem()
                .map_or_else(|| ir.name.clone(), |s| s.to_string_lossy().into_owned()),
            cookie: p.config.cookie.as_ref().map(|c| c.cookie).unwrap_or(0),
            tables: ir
                .tables
                .iter()
                .enumerate()
                .map(|(i, t)| TableSummary {
                    name: t.name.clone(),
                    keys: t.keys.iter().map(|k| format!("{}:{}/{}", k.name, k.kind.name(), k.width)).collect(),
                    entries: p.rt.tables[i].len(),
                    size: t.max_size,
                    actions: t.actions.iter().map(|a| ir.actions[*a as usize].name.clone()).collect(),
                })
                .collect(),
            counters: ir.counters.len(),
            meters: ir.meters.len(),
            registers: ir.registers.len(),
            digests: ir.learn_lists.len(),
        })
    }

    /// Apply `commands` (simple_switch_CLI syntax) to the running program, all or
    /// nothing; returns (commands, entries added).
    pub fn table_write(&self, commands: &str) -> Result<(usize, usize), Status> {
        let mut dev = lock(&self.device);
        if dev.saved.is_some() {
            return Err(Status::failed_precondition(
                "a P4Runtime client saved a pipeline that awaits COMMIT: write after it commits",
            ));
        }
        let Some(p) = dev.running.as_mut() else {
            return Err(Status::failed_precondition("no P4 program is loaded ([pipeline] or P4Runtime)"));
        };
        let mut edited = p.rt.clone();
        let applied =
            crate::entries::apply(&p.ir, &mut edited, commands).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let ops = p.rt.diff(&edited);
        if let Some(w) = &self.workers {
            w.apply(ops.clone().into())
                .map_err(|e| Status::unavailable(format!("the data plane did not take the update: {e}")))?;
        }
        for op in &ops {
            // The diff of two states of the same program applies to the first.
            if let Err(e) = p.rt.apply(&p.ir, op) {
                return Err(Status::internal(format!("control's copy refused {op:?}: {e} (a bug)")));
            }
        }
        Ok((applied.commands, applied.entries))
    }

    /// The meters of the running program (only `name` when given), with their
    /// configured cells and color counts.
    pub fn meters(&self, name: Option<&str>) -> Result<Vec<MeterInfo>, Status> {
        let dev = lock(&self.device);
        let Some(p) = dev.running.as_ref() else {
            return Err(Status::failed_precondition("no P4 program is loaded ([pipeline] or P4Runtime)"));
        };
        let ir = &p.ir;
        if let Some(n) = name {
            if !ir.meters.iter().any(|m| m.name == n) {
                return Err(Status::not_found(format!("no meter named {n:?} (sluicectl meter list)")));
            }
        }
        let mut out = Vec::new();
        for (m, def) in ir.meters.iter().enumerate().filter(|(_, d)| name.is_none_or(|n| d.name == n)) {
            let counts = super::device::meter_counts(p, m as u32, self.workers.as_deref())
                .map_err(|e| Status::new(e.code, e.message))?;
            let cells = p.rt.meters[m]
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let c = c.as_ref()?;
                    Some(MeterCellInfo { index: i as u64, config: c.config, counts: counts.get(i).copied()? })
                })
                .collect();
            out.push(MeterInfo {
                name: def.name.clone(),
                table: def.direct.map(|t| ir.tables[t as usize].name.clone()),
                bytes: def.bytes,
                size: def.size,
                cells,
            });
        }
        Ok(out)
    }

    /// Configure cell `index` (every cell when `None`) of indexed meter `name`
    /// (`None`: unconfigured, GREEN), as a P4Runtime MeterEntry write: visible to
    /// every packet on return; a refused change leaves everything as it was.
    pub fn meter_set(&self, name: &str, index: Option<u64>, config: Option<MeterConfig>) -> Result<(), Status> {
        let mut dev = lock(&self.device);
        let Some(p) = dev.running.as_mut() else {
            return Err(Status::failed_precondition("no P4 program is loaded ([pipeline] or P4Runtime)"));
        };
        let Some(m) = p.ir.meters.iter().position(|m| m.name == name) else {
            return Err(Status::not_found(format!("no meter named {name:?} (sluicectl meter list)")));
        };
        let def = &p.ir.meters[m];
        if let Some(t) = def.direct {
            return Err(Status::invalid_argument(format!(
                "meter {name:?} is table {:?}'s direct meter: configure it per entry over P4Runtime \
                 (DirectMeterEntry)",
                p.ir.tables[t as usize].name
            )));
        }
        if let Some(i) = index.filter(|i| *i >= def.size) {
            return Err(Status::invalid_argument(format!(
                "meter {name:?} has cells 0..{}: {i} is out of range",
                def.size
            )));
        }
        if let Some(c) = &config {
            c.check().map_err(Status::invalid_argument)?;
        }
        let op = Op::SetMeter { meter: m as u32, index: index.map(|i| i as u32), config };
        // Control's copy first, on a copy: it refuses what the workers would.
        let mut edited = p.rt.clone();
        edited.apply(&p.ir, &op).map_err(|e| Status::invalid_argument(e.to_string()))?;
        if let Some(w) = &self.workers {
            w.apply(vec![op].into())
                .map_err(|e| Status::unavailable(format!("the data plane did not take the update: {e}")))?;
        }
        p.rt = edited;
        Ok(())
    }

    /// Every meter array of the running program with its color counts (packets,
    /// bytes for GREEN, YELLOW, RED) summed over cells and workers.
    pub fn meter_totals(&self) -> Vec<(String, [(u64, u64); 3])> {
        let dev = lock(&self.device);
        let Some(p) = dev.running.as_ref() else { return Vec::new() };
        (0..p.ir.meters.len())
            .filter_map(|m| {
                let cells = super::device::meter_counts(p, m as u32, self.workers.as_deref()).ok()?;
                let mut t = [(0, 0); 3];
                for c in cells {
                    for k in 0..3 {
                        t[k].0 += c[k].0;
                        t[k].1 += c[k].1;
                    }
                }
                Some((p.ir.meters[m].name.clone(), t))
            })
            .collect()
    }

    /// Table `table`'s entries and default action, in simple_switch_CLI syntax.
    pub fn table_dump(&self, table: &str) -> Result<(Vec<String>, String), Status> {
        let dev = lock(&self.device);
        let Some(p) = dev.running.as_ref() else {
            return Err(Status::failed_precondition("no P4 program is loaded ([pipeline] or P4Runtime)"));
        };
        crate::entries::dump(&p.ir, &p.rt, table).map_err(Status::not_found)
    }
}
