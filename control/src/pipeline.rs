//! Loading a P4 pipeline on the control side: read the BMv2 JSON and the P4Info,
//! compile, cross-check, apply the initial table entries, and describe the result.
//!
//! Every failure is reported with the file it came from and the engine's precise
//! message (the construct and its place in the JSON, the P4Info object, the entries
//! line). Nothing reaches the workers unless everything loaded.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use sluice_fastpath::p4::compile;
use sluice_fastpath::p4::crosscheck::cross_check;
use sluice_fastpath::p4::ir::{Ir, Node, TableKind};
use sluice_fastpath::p4::json::Program;
use sluice_fastpath::p4::p4info::{self, P4Info};
use sluice_fastpath::p4::tables::Runtime;

use crate::entries;

/// A loaded program, ready for the workers.
#[derive(Debug)]
pub struct Loaded {
    /// The compiled program.
    pub ir: Arc<Ir>,
    /// Its initial state (const entries + the entries file).
    pub rt: Runtime,
    /// The P4Info, when given.
    pub p4info: Option<P4Info>,
    /// Entries applied from the entries file.
    pub entries: usize,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))
}

/// Load a program from files. `entries` is applied after the const entries.
pub fn load(json: &Path, p4info_path: Option<&Path>, entries_path: Option<&Path>) -> Result<Loaded, String> {
    let bytes = read(json, "BMv2 JSON")?;
    let prog = Program::parse_bytes(&bytes).map_err(|e| format!("{}: {e}", json.display()))?;
    let ir = compile::compile(&prog).map_err(|e| format!("{}: {e}", json.display()))?;
    let info = match p4info_path {
        None => None,
        Some(p) => {
            let text = String::from_utf8(read(p, "P4Info")?).map_err(|e| format!("{}: not UTF-8: {e}", p.display()))?;
            let info = p4info::parse_text(&text).map_err(|e| format!("{}: {e}", p.display()))?;
            cross_check(&info, &prog).map_err(|e| format!("{} vs {}: {e}", p.display(), json.display()))?;
            Some(info)
        }
    };
    let mut rt = Runtime::new(&ir);
    let mut applied = 0;
    if let Some(p) = entries_path {
        let text =
            String::from_utf8(read(p, "entries file")?).map_err(|e| format!("{}: not UTF-8: {e}", p.display()))?;
        applied = entries::apply(&ir, &mut rt, &text).map_err(|e| format!("{}: {e}", p.display()))?.entries;
    }
    Ok(Loaded { ir: Arc::new(ir), rt, p4info: info, entries: applied })
}

/// A readable summary: tables with match kinds and sizes, actions, externs, parser.
pub fn summary(l: &Loaded) -> String {
    let ir = &l.ir;
    let mut s = String::new();
    let visible = |name: &str| l.p4info.as_ref().is_none_or(|i| i.table_by_name(name).is_some());
    let _ = writeln!(s, "program {}", ir.name);
    let _ = writeln!(
        s,
        "  {} headers ({} on the wire), {} fields, {} parser states, deparser emits {}",
        ir.headers.len(),
        ir.headers.iter().filter(|h| !h.metadata).count(),
        ir.fields.len(),
        ir.states.len(),
        ir.deparser.iter().map(|h| ir.headers[*h as usize].name.as_str()).collect::<Vec<_>>().join(", ")
    );
    let user_tables: Vec<_> = ir
        .tables
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.keys.is_empty() || visible(&t.name) && !t.name.starts_with("tbl_"))
        .collect();
    let _ = writeln!(s, "tables ({} with keys or P4Runtime-visible, {} in all):", user_tables.len(), ir.tables.len());
    for (i, t) in user_tables {
        let keys: Vec<String> = t.keys.iter().map(|k| format!("{}:{}/{}", k.name, k.kind.name(), k.width)).collect();
        let actions: Vec<&str> = t.actions.iter().map(|a| ir.actions[*a as usize].name.as_str()).collect();
        let mut extra = vec![];
        if t.kind == TableKind::Indirect {
            extra.push(format!("profile {}", t.profile.map(|p| ir.profiles[p as usize].name.as_str()).unwrap_or("?")));
        }
        if t.direct_counter.is_some() {
            extra.push("direct counter".into());
        }
        if t.direct_meter.is_some() {
            extra.push("direct meter".into());
        }
        if !t.const_entries.is_empty() {
            extra.push(format!("{} const entries", t.const_entries.len()));
        }
        let n = l.rt.tables[i].len();
        let _ = writeln!(
            s,
            "  {} [{}] size {} entries {}{}\n    actions: {}",
            t.name,
            keys.join(", "),
            t.max_size,
            n,
            if extra.is_empty() { String::new() } else { format!(" ({})", extra.join(", ")) },
            actions.join(", ")
        );
    }
    let _ = writeln!(s, "actions: {}", ir.actions.len());
    for p in &ir.profiles {
        let _ = writeln!(
            s,
            "action profile {} size {}{}",
            p.name,
            p.max_size,
            if p.selector.is_some() { " (selector)" } else { "" }
        );
    }
    for c in &ir.counters {
        let _ = writeln!(
            s,
            "counter {} {}",
            c.name,
            c.direct.map(|t| format!("direct on {}", ir.tables[t as usize].name)).unwrap_or(format!("size {}", c.size))
        );
    }
    for m in &ir.meters {
        let _ = writeln!(
            s,
            "meter {} {} ({})",
            m.name,
            m.direct.map(|t| format!("direct on {}", ir.tables[t as usize].name)).unwrap_or(format!("size {}", m.size)),
            if m.bytes { "bytes" } else { "packets" }
        );
    }
    for r in &ir.registers {
        let _ = writeln!(s, "register {} size {} width {}", r.name, r.size, r.width);
    }
    for d in &ir.learn_lists {
        let _ = writeln!(s, "digest {} ({} fields)", d.name, d.fields.len());
    }
    let _ =
        writeln!(s, "parser states: {}", ir.states.iter().map(|st| st.name.as_str()).collect::<Vec<_>>().join(", "));
    let first = |n: Option<Node>| match n {
        Some(Node::Table(t)) => ir.tables[t as usize].name.clone(),
        Some(Node::Cond(c)) => ir.conditionals[c as usize].name.clone(),
        None => "(empty)".into(),
    };
    let _ = writeln!(s, "ingress starts at {}, egress at {}", first(ir.ingress), first(ir.egress));
    if let Some(info) = &l.p4info {
        let _ = writeln!(
            s,
            "P4Info: {} tables, {} actions; cross-checked with the JSON",
            info.tables.len(),
            info.actions.len()
        );
    }
    s
}
