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
    let info = match p4info_path {
        None => None,
        Some(p) => {
            Some((String::from_utf8(read(p, "P4Info")?).map_err(|e| format!("{}: not UTF-8: {e}", p.display()))?, p))
        }
    };
    let mut l = from_bytes(&bytes, info.as_ref().map(|(t, _)| t.as_str())).map_err(|e| match (&e, &info) {
        (LoadError::P4Info(m), Some((_, p))) => format!("{}: {m}", p.display()),
        (LoadError::CrossCheck(m), Some((_, p))) => format!("{} vs {}: {m}", p.display(), json.display()),
        (LoadError::Json(m), _) | (LoadError::P4Info(m), None) | (LoadError::CrossCheck(m), None) => {
            format!("{}: {m}", json.display())
        }
    })?;
    if let Some(p) = entries_path {
        let text =
            String::from_utf8(read(p, "entries file")?).map_err(|e| format!("{}: not UTF-8: {e}", p.display()))?;
        l.entries = entries::apply(&l.ir, &mut l.rt, &text).map_err(|e| format!("{}: {e}", p.display()))?.entries;
    }
    Ok(l)
}

/// Why a program did not load, by the input at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// The BMv2 JSON is malformed or uses what the engine refuses.
    Json(String),
    /// The P4Info is malformed.
    P4Info(String),
    /// The P4Info does not describe the JSON.
    CrossCheck(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Json(m) => write!(f, "BMv2 JSON: {m}"),
            LoadError::P4Info(m) => write!(f, "P4Info: {m}"),
            LoadError::CrossCheck(m) => f.write_str(m),
        }
    }
}

/// Load a program from the BMv2 JSON bytes and, optionally, the P4Info in text
/// format (what p4c writes; P4Runtime's binary P4Info is printed to text first).
pub fn from_bytes(json: &[u8], p4info_text: Option<&str>) -> Result<Loaded, LoadError> {
    let prog = Program::parse_bytes(json).map_err(|e| LoadError::Json(e.to_string()))?;
    let ir = compile::compile(&prog).map_err(|e| LoadError::Json(e.to_string()))?;
    let info = match p4info_text {
        None => None,
        Some(text) => {
            let info = p4info::parse_text(text).map_err(|e| LoadError::P4Info(e.to_string()))?;
            cross_check(&info, &prog).map_err(|e| LoadError::CrossCheck(e.to_string()))?;
            Some(info)
        }
    };
    let rt = Runtime::new(&ir);
    Ok(Loaded { ir: Arc::new(ir), rt, p4info: info, entries: 0 })
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
    for st in &ir.stacks {
        let ty = st.headers.first().map(|h| ir.headers[*h as usize].type_name.as_str()).unwrap_or("?");
        let _ = writeln!(s, "  header stack {}: {} x {}", st.name, st.headers.len(), ty);
    }
    for u in &ir.unions {
        let members: Vec<&str> = u.headers.iter().map(|h| ir.headers[*h as usize].name.as_str()).collect();
        let _ = writeln!(s, "  header union {}: {}", u.name, members.join(" | "));
    }
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
