//! Table entries in BMv2's `simple_switch_CLI` command syntax, applied to a program's
//! [`Runtime`].
//!
//! One command per line; `#` starts a comment; blank lines are ignored; tokens are
//! separated by whitespace. The supported commands are listed in [`COMMANDS`]:
//!
//! ```text
//! table_set_default ipv4_lpm _drop
//! table_add ipv4_lpm set_nhop 10.0.0.10/32 => 10.0.0.10 1
//! table_add acl deny 0x0800&&&0xffff 1->1024 => 10     # ternary/range: priority last
//! act_prof_create_member prof send 1                   # member 0
//! act_prof_create_group prof                           # group 0
//! act_prof_add_member_to_group prof 0 0
//! table_indirect_add_with_group sel 0xab => 0
//! mirroring_add 5 3
//! mc_mgrp_create 1
//! mc_node_create 0 1 2                                 # node 0: rid 0, ports 1 and 2
//! mc_node_associate 1 0
//! register_write counts 3 0x10
//! ```
//!
//! Names: a table is found by its full name or by a unique suffix of dot-separated
//! components (`table0` for `ingress.table0_control.table0`); an action by name or
//! suffix *within its table's actions* (JSON action names are not unique); action
//! profiles and registers likewise.
//!
//! Priorities follow BMv2's CLI: the last token of an entry of a ternary, range or
//! optional table, `>= 0`, lower number = higher priority. The runtime uses
//! P4Runtime's convention (higher wins, `> 0`), so a BMv2 priority `p` is stored as
//! `i32::MAX - p`.
//!
//! Handles, member ids, group ids and node handles are those BMv2 would print: entry
//! handles are the runtime's, member and group ids are the smallest free id of their
//! profile, node handles count from 0 within one [`apply`].
//!
//! [`apply`] is all or nothing: on any error the runtime is left exactly as it was.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use sluice_fastpath::p4::ir::{
    mask_of, ActionCall, ActionId, Ir, KeyValue, MatchKind, TableDef, TableId, TableKind, Value,
};
use sluice_fastpath::p4::meters::MeterConfig;
use sluice_fastpath::p4::ops::Op;
use sluice_fastpath::p4::tables::{Entry, EntryAction, Handle, Member, Runtime};

/// An entries file was refused: the 1-based line and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct EntriesError {
    /// The line (1-based).
    pub line: usize,
    /// What was wrong, and what would have been valid.
    pub message: String,
}

/// What [`apply`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Commands executed (lines that were neither blank nor comments).
    pub commands: usize,
    /// Table entries added (`table_add`, `table_indirect_add`, `table_indirect_add_with_group`).
    pub entries: usize,
}

/// The supported commands and their arguments.
pub const COMMANDS: &[(&str, &str)] = &[
    ("table_add", "<table> <action> <key...> => <args...> [priority]"),
    ("table_set_default", "<table> <action> [args...]"),
    ("table_delete", "<table> <handle>"),
    ("table_modify", "<table> <action> <handle> [args...]"),
    ("act_prof_create_member", "<profile> <action> [args...]"),
    ("act_prof_create_group", "<profile>"),
    ("act_prof_add_member_to_group", "<profile> <member> <group>"),
    ("table_indirect_add", "<table> <key...> => <member> [priority]"),
    ("table_indirect_add_with_group", "<table> <key...> => <group> [priority]"),
    ("table_indirect_set_default", "<table> <member>"),
    ("table_indirect_set_default_with_group", "<table> <group>"),
    ("mirroring_add", "<session> <port>"),
    ("mc_mgrp_create", "<mgrp>"),
    ("mc_mgrp_destroy", "<mgrp>"),
    ("mc_node_create", "<rid> <port> [port...]"),
    ("mc_node_associate", "<mgrp> <node>"),
    ("mc_node_dissociate", "<mgrp> <node>"),
    ("register_write", "<register> <index> <value>"),
    ("register_reset", "<register>"),
    ("meter_set_rates", "<meter> <index|handle> <cir>:<cburst> <pir>:<pburst> (rates per microsecond)"),
];

/// Parse and apply `text` (simple_switch_CLI commands) to `rt`.
///
/// On any error `rt` is left exactly as it was and the error names the line.
pub fn apply(ir: &Ir, rt: &mut Runtime, text: &str) -> Result<Applied, EntriesError> {
    let mut l = Loader { ir, rt: rt.clone(), nodes: vec![], node_group: HashMap::new(), applied: Applied::default() };
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks.is_empty() {
            continue;
        }
        l.command(&toks).map_err(|message| EntriesError { line: i + 1, message })?;
        l.applied.commands += 1;
    }
    *rt = l.rt;
    Ok(l.applied)
}

/// Table `table`'s entries as the commands that would add them (with each entry's
/// handle as a comment), and its default action as a `table_set_default` command.
/// Values are hexadecimal; priorities are BMv2's (lower wins).
pub fn dump(ir: &Ir, rt: &Runtime, table: &str) -> Result<(Vec<String>, String), String> {
    let t = resolve("table", table, ir.tables.iter().enumerate().map(|(i, t)| (i as u32, t.name.as_str())))?;
    let def = &ir.tables[t as usize];
    let state = &rt.tables[t as usize];
    let hex = |v: &Value| format!("{v:#x}");
    let call = |c: &ActionCall| {
        let a = def.actions.get(c.slot as usize).map(|a| ir.actions[*a as usize].name.as_str()).unwrap_or("?");
        (a.to_owned(), c.args.iter().map(hex).collect::<Vec<_>>())
    };
    let mut lines = Vec::new();
    for (h, e) in state.entries() {
        let key: Vec<String> = e
            .key
            .iter()
            .map(|k| match k {
                KeyValue::Exact(v) => hex(v),
                KeyValue::Lpm { value, prefix } => format!("{value:#x}/{prefix}"),
                KeyValue::Ternary { value, mask } => format!("{value:#x}&&&{mask:#x}"),
                KeyValue::Range { low, high } => format!("{low:#x}->{high:#x}"),
            })
            .collect();
        let prio = if def.needs_priority() { format!(" {}", i32::MAX - e.priority) } else { String::new() };
        let line = match &e.action {
            EntryAction::Call(c) => {
                let (a, args) = call(c);
                format!("table_add {} {a} {} => {}{prio}", def.name, key.join(" "), args.join(" "))
            }
            EntryAction::Member(m) => format!("table_indirect_add {} {} => {m}{prio}", def.name, key.join(" ")),
            EntryAction::Group(g) => {
                format!("table_indirect_add_with_group {} {} => {g}{prio}", def.name, key.join(" "))
            }
        };
        lines.push(format!("{}  # handle {h}", line.replace("  ", " ")));
    }
    let default = match &state.default {
        None => "(none)".to_owned(),
        Some(EntryAction::Call(c)) => {
            let (a, args) = call(c);
            format!("table_set_default {} {a} {}", def.name, args.join(" ")).trim_end().to_owned()
        }
        Some(EntryAction::Member(m)) => format!("table_indirect_set_default {} {m}", def.name),
        Some(EntryAction::Group(g)) => format!("table_indirect_set_default_with_group {} {g}", def.name),
    };
    Ok((lines, default))
}

/// Parse one value of a field of `width` bits (at most 128).
///
/// Accepted: decimal, `0x` hex, `0b` binary; an IPv4 address for a 32-bit field, a MAC
/// address `aa:bb:cc:dd:ee:ff` for a 48-bit field, an IPv6 address for a 128-bit
/// field. The value must fit the width.
pub fn parse_value(s: &str, width: u32) -> Result<Value, String> {
    if width > 128 {
        return Err(format!("fields of {width} bits are not supported (at most 128)"));
    }
    let lower = s.to_ascii_lowercase();
    let v = if let Some(d) = lower.strip_prefix("0x") {
        radix(s, d, 16)?
    } else if let Some(d) = lower.strip_prefix("0b") {
        radix(s, d, 2)?
    } else if s.contains(':') {
        if width == 48 {
            parse_mac(s)?
        } else if width == 128 {
            let a: Ipv6Addr = s.parse().map_err(|_| format!("expected an IPv6 address, found {s:?}"))?;
            u128::from(a)
        } else {
            return Err(format!(
                "{s:?} looks like a MAC (48-bit field) or IPv6 address (128-bit field); this field is {width} bits"
            ));
        }
    } else if s.contains('.') {
        if width != 32 {
            return Err(format!("{s:?} looks like an IPv4 address (32-bit field); this field is {width} bits"));
        }
        let a: Ipv4Addr = s.parse().map_err(|_| format!("expected an IPv4 address, found {s:?}"))?;
        Value::from(u32::from(a))
    } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        radix(s, s, 10)?
    } else {
        let extra = match width {
            32 => ", or an IPv4 address",
            48 => ", or a MAC address",
            128 => ", or an IPv6 address",
            _ => "",
        };
        return Err(format!("expected a number (decimal, 0x hex, 0b binary{extra}), found {s:?}"));
    };
    if v > mask_of(width) {
        return Err(format!("{s} does not fit {width} bits (at most {:#x})", mask_of(width)));
    }
    Ok(v)
}

fn radix(s: &str, digits: &str, radix: u32) -> Result<Value, String> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        let what = match radix {
            16 => "hex",
            2 => "binary",
            _ => "decimal",
        };
        return Err(format!("expected a {what} number, found {s:?}"));
    }
    Value::from_str_radix(digits, radix).map_err(|_| format!("{s} does not fit 128 bits"))
}

fn parse_mac(s: &str) -> Result<Value, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let ok = parts.len() == 6
        && parts.iter().all(|p| (1..=2).contains(&p.len()) && p.chars().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        return Err(format!("expected a MAC address aa:bb:cc:dd:ee:ff, found {s:?}"));
    }
    Ok(parts.iter().fold(0, |a, p| (a << 8) | Value::from(u8::from_str_radix(p, 16).unwrap_or(0))))
}

/// Resolve `q` among `(id, name)` pairs: an exact name, else a unique suffix of
/// dot-separated components.
fn resolve<'n>(what: &str, q: &str, names: impl Iterator<Item = (u32, &'n str)> + Clone) -> Result<u32, String> {
    let pick = |m: Vec<(u32, &str)>| -> Option<Result<u32, String>> {
        let mut ids: Vec<u32> = m.iter().map(|(i, _)| *i).collect();
        ids.sort_unstable();
        ids.dedup();
        match ids.len() {
            0 => None,
            1 => Some(Ok(ids[0])),
            _ => Some(Err(format!(
                "{what} {q:?} is ambiguous; candidates: {}",
                m.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
            ))),
        }
    };
    let exact: Vec<(u32, &str)> = names.clone().filter(|(_, n)| *n == q).collect();
    if let Some(r) = pick(exact) {
        return r;
    }
    let suffix: Vec<(u32, &str)> = names
        .clone()
        .filter(|(_, n)| n.len() > q.len() && n.ends_with(q) && n[..n.len() - q.len()].ends_with('.'))
        .collect();
    if let Some(r) = pick(suffix) {
        return r;
    }
    let all: Vec<&str> = names.map(|(_, n)| n).collect();
    Err(if all.is_empty() {
        format!("no {what} {q:?}; there are none")
    } else {
        format!("no {what} {q:?}; valid: {}", all.join(", "))
    })
}

fn usage(cmd: &str) -> String {
    let u = COMMANDS.iter().find(|(c, _)| *c == cmd).map(|(_, u)| *u).unwrap_or("");
    format!("usage: {cmd} {u}")
}

fn num(s: &str, what: &str, width: u32) -> Result<u32, String> {
    parse_value(s, width).map(|v| v as u32).map_err(|e| format!("{what}: {e}"))
}

struct Loader<'a> {
    ir: &'a Ir,
    rt: Runtime,
    /// Multicast nodes by handle: rid and ports.
    nodes: Vec<(u32, Vec<u32>)>,
    /// The group each associated node is in.
    node_group: HashMap<usize, u32>,
    applied: Applied,
}

impl Loader<'_> {
    fn command(&mut self, toks: &[&str]) -> Result<(), String> {
        let cmd = toks[0];
        let a = &toks[1..];
        let n = a.len();
        let bad = || Err(usage(cmd));
        match cmd {
            "table_add" if n >= 3 => self.table_add(a[0], a[1], &a[2..]),
            "table_set_default" if n >= 2 => self.table_set_default(a[0], a[1], &a[2..]),
            "table_delete" if n == 2 => self.table_delete(a[0], a[1]),
            "table_modify" if n >= 3 => self.table_modify(a[0], a[1], a[2], &a[3..]),
            "act_prof_create_member" if n >= 2 => self.create_member(a[0], a[1], &a[2..]),
            "act_prof_create_group" if n == 1 => self.create_group(a[0]),
            "act_prof_add_member_to_group" if n == 3 => self.add_member_to_group(a[0], a[1], a[2]),
            "table_indirect_add" if n >= 2 => self.indirect_add(a[0], &a[1..], false),
            "table_indirect_add_with_group" if n >= 2 => self.indirect_add(a[0], &a[1..], true),
            "table_indirect_set_default" if n == 2 => self.indirect_default(a[0], a[1], false),
            "table_indirect_set_default_with_group" if n == 2 => self.indirect_default(a[0], a[1], true),
            "mirroring_add" if n == 2 => {
                let session = num(a[0], "session", 32)?;
                let port = num(a[1], "port", 32)?;
                self.rt.clone_sessions.insert(session, (vec![(port, 0)], 0));
                Ok(())
            }
            "mc_mgrp_create" if n == 1 => {
                let g = num(a[0], "multicast group", 16)?;
                if self.rt.mcast.contains_key(&g) {
                    return Err(format!("multicast group {g} already exists"));
                }
                self.rt.mcast.insert(g, vec![]);
                Ok(())
            }
            "mc_mgrp_destroy" if n == 1 => {
                let g = num(a[0], "multicast group", 16)?;
                if self.rt.mcast.remove(&g).is_none() {
                    return Err(format!("no multicast group {g}"));
                }
                self.node_group.retain(|_, x| *x != g);
                Ok(())
            }
            "mc_node_create" if n >= 2 => {
                let rid = num(a[0], "rid", 16)?;
                let ports = a[1..].iter().map(|p| num(p, "port", 32)).collect::<Result<Vec<_>, _>>()?;
                self.nodes.push((rid, ports));
                Ok(())
            }
            "mc_node_associate" if n == 2 => self.mc_node(a[0], a[1], true),
            "mc_node_dissociate" if n == 2 => self.mc_node(a[0], a[1], false),
            "meter_set_rates" if n == 4 => self.meter_set_rates(a[0], a[1], a[2], a[3]),
            "register_write" if n == 3 => {
                let r = self.register(a[0])?;
                let def = &self.ir.registers[r];
                let cells = self.rt.registers[r].len();
                let i = parse_value(a[1], 64).map_err(|e| format!("index: {e}"))?;
                if i >= cells as Value {
                    return Err(format!("index {i} out of range: register {:?} has {cells} cells", def.name));
                }
                let v = parse_value(a[2], def.width)
                    .map_err(|e| format!("value for register {:?} ({} bits): {e}", def.name, def.width))?;
                self.rt.registers[r][i as usize] = v;
                Ok(())
            }
            "register_reset" if n == 1 => {
                let r = self.register(a[0])?;
                self.rt.registers[r].iter_mut().for_each(|c| *c = 0);
                Ok(())
            }
            _ if COMMANDS.iter().any(|(c, _)| *c == cmd) => bad(),
            _ => Err(format!(
                "unknown command {cmd:?}; supported commands: {}",
                COMMANDS.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    fn table(&self, q: &str) -> Result<(TableId, &TableDef), String> {
        let t = resolve("table", q, self.ir.tables.iter().enumerate().map(|(i, t)| (i as u32, t.name.as_str())))?;
        Ok((t, &self.ir.tables[t as usize]))
    }

    fn direct(&self, q: &str) -> Result<(TableId, &TableDef), String> {
        let (t, def) = self.table(q)?;
        if def.kind == TableKind::Indirect {
            let p = def.profile.map(|p| self.ir.profiles[p as usize].name.as_str()).unwrap_or("?");
            return Err(format!(
                "table {:?} is indirect (action profile {p:?}): use table_indirect_add, \
                 table_indirect_add_with_group, table_indirect_set_default or table_indirect_set_default_with_group",
                def.name
            ));
        }
        Ok((t, def))
    }

    fn indirect(&self, q: &str) -> Result<(TableId, &TableDef), String> {
        let (t, def) = self.table(q)?;
        if def.kind != TableKind::Indirect {
            return Err(format!(
                "table {:?} is direct (no action profile): use table_add or table_set_default",
                def.name
            ));
        }
        Ok((t, def))
    }

    /// The slot of an action in a table.
    fn slot(&self, def: &TableDef, q: &str) -> Result<u32, String> {
        let names = def.actions.iter().enumerate().map(|(s, a)| (s as u32, self.ir.actions[*a as usize].name.as_str()));
        resolve("action", q, names.clone()).map_err(|e| {
            if e.starts_with("no ") {
                let valid: Vec<&str> = names.map(|(_, n)| n).collect();
                format!("table {:?} has no action {q:?}; its actions are: {}", def.name, valid.join(", "))
            } else {
                format!("table {:?}: {e}", def.name)
            }
        })
    }

    fn describe_params(&self, action: ActionId) -> String {
        let a = &self.ir.actions[action as usize];
        if a.params.is_empty() {
            "no parameters".into()
        } else {
            let ps: Vec<String> = a.params.iter().map(|(n, w)| format!("{n}: {w} bits")).collect();
            format!("{} parameter{} ({})", ps.len(), if ps.len() == 1 { "" } else { "s" }, ps.join(", "))
        }
    }

    fn args(&self, action: ActionId, toks: &[&str], extra: &str) -> Result<Vec<Value>, String> {
        let a = &self.ir.actions[action as usize];
        if toks.len() != a.params.len() {
            return Err(format!(
                "action {:?} takes {}{extra}, found {} argument{}",
                a.name,
                self.describe_params(action),
                toks.len(),
                if toks.len() == 1 { "" } else { "s" }
            ));
        }
        toks.iter()
            .zip(&a.params)
            .enumerate()
            .map(|(i, (t, (n, w)))| {
                parse_value(t, *w)
                    .map_err(|e| format!("parameter {} ({n}, {w} bits) of action {:?}: {e}", i + 1, a.name))
            })
            .collect()
    }

    fn key(&self, def: &TableDef, toks: &[&str]) -> Result<Vec<KeyValue>, String> {
        if toks.len() != def.keys.len() {
            let fields: Vec<String> = def
                .keys
                .iter()
                .map(|k| format!("{} ({}, {} bits)", k.name, MatchKind::name(k.kind), k.width))
                .collect();
            return Err(format!(
                "table {:?} has {} key field{}{}{}, found {} key value{} before \"=>\"",
                def.name,
                fields.len(),
                if fields.len() == 1 { "" } else { "s" },
                if fields.is_empty() { "" } else { ": " },
                fields.join(", "),
                toks.len(),
                if toks.len() == 1 { "" } else { "s" }
            ));
        }
        let mut key = Vec::with_capacity(toks.len());
        for (i, (t, k)) in toks.iter().zip(&def.keys).enumerate() {
            let w = k.width;
            let desc = format!("key field {} ({}, {}, {w} bits)", i + 1, k.name, MatchKind::name(k.kind));
            let expected = |form: &str| format!("{desc}: expected {form}, found {t:?}");
            let val = |s: &str| parse_value(s, w).map_err(|e| format!("{desc}: {e}"));
            let kv = match k.kind {
                MatchKind::Exact => KeyValue::Exact(val(t)?),
                MatchKind::Lpm => {
                    let (v, p) = t.split_once('/').ok_or_else(|| expected("value/prefix_len"))?;
                    let prefix: u32 = p
                        .parse()
                        .ok()
                        .filter(|p| *p <= w)
                        .ok_or_else(|| format!("{desc}: prefix length {p:?} is not in 0..={w}"))?;
                    let mask = if prefix == 0 { 0 } else { mask_of(w) & !mask_of(w - prefix) };
                    KeyValue::Lpm { value: val(v)? & mask, prefix }
                }
                MatchKind::Ternary => {
                    let (v, m) = t.split_once("&&&").ok_or_else(|| expected("value&&&mask"))?;
                    let mask = val(m)?;
                    KeyValue::Ternary { value: val(v)? & mask, mask }
                }
                MatchKind::Optional => match t.split_once("&&&") {
                    None => KeyValue::Ternary { value: val(t)?, mask: mask_of(w) },
                    Some((v, m)) => {
                        let mask = val(m)?;
                        if mask != 0 && mask != mask_of(w) {
                            return Err(format!(
                                "{desc}: an optional match's mask must be 0 (wildcard) or {:#x} (exact), found {m:?}",
                                mask_of(w)
                            ));
                        }
                        KeyValue::Ternary { value: val(v)? & mask, mask }
                    }
                },
                MatchKind::Range => {
                    let (lo, hi) = t.split_once("->").ok_or_else(|| expected("low->high"))?;
                    let (low, high) = (val(lo)?, val(hi)?);
                    if low > high {
                        return Err(format!("{desc}: empty range {t:?} (low > high)"));
                    }
                    KeyValue::Range { low, high }
                }
            };
            key.push(kv);
        }
        Ok(key)
    }

    /// Split `<key...> => <rest...>`.
    fn split_arrow<'t>(toks: &'t [&'t str]) -> Result<(&'t [&'t str], &'t [&'t str]), String> {
        let pos = toks.iter().position(|t| *t == "=>").ok_or_else(|| {
            "expected \"=>\" (as a separate token) between the key and the action arguments".to_string()
        })?;
        Ok((&toks[..pos], &toks[pos + 1..]))
    }

    /// Split off the priority a table needs, and convert it to the runtime's convention.
    fn priority<'t>(def: &TableDef, rest: &'t [&'t str], expected: usize) -> Result<(&'t [&'t str], i32), String> {
        if !def.needs_priority() {
            if rest.len() == expected + 1 {
                return Err(format!(
                    "table {:?} takes no priority (exact/LPM keys only), found an extra token {:?}",
                    def.name, rest[expected]
                ));
            }
            return Ok((rest, 0));
        }
        if rest.len() != expected + 1 {
            if rest.len() == expected {
                return Err(format!(
                    "table {:?} has ternary, range or optional keys: give a priority (>= 0, lower wins) as the last token",
                    def.name
                ));
            }
            return Ok((rest, 0)); // the argument count check reports it
        }
        let p = rest[expected];
        if p.starts_with('-') {
            return Err(format!("priority {p} must be >= 0 (BMv2: lower number = higher priority)"));
        }
        let v = parse_value(p, 31).map_err(|e| format!("priority: {e}"))?;
        if v >= i32::MAX as Value {
            return Err(format!("priority {p} must be in 0..={}", i32::MAX - 1));
        }
        Ok((&rest[..expected], i32::MAX - v as i32))
    }

    fn table_add(&mut self, table: &str, action: &str, toks: &[&str]) -> Result<(), String> {
        let (t, def) = self.direct(table)?;
        let slot = self.slot(def, action)?;
        let aid = def.actions[slot as usize];
        let (key_toks, rest) = Self::split_arrow(toks)?;
        let key = self.key(def, key_toks)?;
        let nparams = self.ir.actions[aid as usize].params.len();
        let (arg_toks, priority) = Self::priority(def, rest, nparams)?;
        let extra = if def.needs_priority() { " plus a priority" } else { "" };
        let args = self.args(aid, arg_toks, extra)?;
        let e = Entry { key, priority, action: EntryAction::Call(ActionCall { slot, args: args.into() }), meta: None };
        self.rt.insert(self.ir, t, e).map_err(|e| e.to_string())?;
        self.applied.entries += 1;
        Ok(())
    }

    fn table_set_default(&mut self, table: &str, action: &str, toks: &[&str]) -> Result<(), String> {
        let (t, def) = self.direct(table)?;
        let slot = self.slot(def, action)?;
        let args = self.args(def.actions[slot as usize], toks, "")?;
        self.rt
            .set_default(self.ir, t, Some(EntryAction::Call(ActionCall { slot, args: args.into() })))
            .map_err(|e| e.to_string())
    }

    fn entry(&self, t: TableId, def: &TableDef, handle: &str) -> Result<Entry, String> {
        let h = num(handle, "handle", 32)?;
        self.rt.tables[t as usize]
            .get(h)
            .cloned()
            .ok_or_else(|| format!("table {:?} has no entry with handle {h}", def.name))
    }

    fn table_delete(&mut self, table: &str, handle: &str) -> Result<(), String> {
        let (t, def) = self.table(table)?;
        let e = self.entry(t, def, handle)?;
        self.rt.delete(self.ir, t, e.key, e.priority).map(|_| ()).map_err(|e| e.to_string())
    }

    fn table_modify(&mut self, table: &str, action: &str, handle: &str, toks: &[&str]) -> Result<(), String> {
        let (t, def) = self.direct(table)?;
        let slot = self.slot(def, action)?;
        let args = self.args(def.actions[slot as usize], toks, "")?;
        let e = self.entry(t, def, handle)?;
        let e = Entry {
            key: e.key,
            priority: e.priority,
            action: EntryAction::Call(ActionCall { slot, args: args.into() }),
            meta: None,
        };
        self.rt.modify(self.ir, t, e).map(|_| ()).map_err(|e| e.to_string())
    }

    fn profile(&self, q: &str) -> Result<u32, String> {
        resolve("action profile", q, self.ir.profiles.iter().enumerate().map(|(i, p)| (i as u32, p.name.as_str())))
    }

    /// `meter_set_rates` as simple_switch_CLI has it: rates in units (bytes or
    /// packets) per microsecond, bursts in units; the cell is the index of an
    /// indexed meter, or the entry handle for a direct meter.
    fn meter_set_rates(&mut self, meter: &str, cell: &str, c: &str, p: &str) -> Result<(), String> {
        let m = resolve("meter", meter, self.ir.meters.iter().enumerate().map(|(i, m)| (i as u32, m.name.as_str())))?;
        let def = &self.ir.meters[m as usize];
        let rate = |s: &str, which: &str| -> Result<(u64, u64), String> {
            let bad = || format!("{which} {s:?}: write <rate>:<burst>, the rate in units per microsecond (0.5:3000)");
            let (r, b) = s.split_once(':').ok_or_else(bad)?;
            let r: f64 = r.parse().map_err(|_| bad())?;
            let b: u64 = b.parse().map_err(|_| bad())?;
            if !(r.is_finite() && r > 0.0 && r * 1e6 < u64::MAX as f64) || b == 0 {
                return Err(format!("{which} {s:?}: the rate and the burst must be > 0"));
            }
            Ok(((r * 1e6).round().max(1.0) as u64, b))
        };
        let (cir, cburst) = rate(c, "committed rate")?;
        let (pir, pburst) = rate(p, "peak rate")?;
        let config = MeterConfig { cir, cburst, pir, pburst };
        config.check()?;
        let i = parse_value(cell, 32).map_err(|e| format!("meter cell: {e}"))? as u32;
        let op = match def.direct {
            None => Op::SetMeter { meter: m, index: Some(i), config: Some(config) },
            Some(t) => {
                let e = self.rt.tables[t as usize].get(i as Handle).ok_or_else(|| {
                    format!(
                        "meter {:?} is direct on table {:?}: no entry with handle {i}",
                        def.name, self.ir.tables[t as usize].name
                    )
                })?;
                Op::SetDirectMeter { table: t, key: e.key.clone(), priority: e.priority, config: Some(config) }
            }
        };
        self.rt.apply(self.ir, &op).map_err(|e| e.to_string())
    }

    fn register(&self, q: &str) -> Result<usize, String> {
        resolve("register", q, self.ir.registers.iter().enumerate().map(|(i, r)| (i as u32, r.name.as_str())))
            .map(|r| r as usize)
    }

    fn create_member(&mut self, profile: &str, action: &str, toks: &[&str]) -> Result<(), String> {
        let p = self.profile(profile)?;
        let pname = &self.ir.profiles[p as usize].name;
        let mut ids: Vec<ActionId> = vec![];
        for t in self.ir.tables.iter().filter(|t| t.profile == Some(p)) {
            for a in &t.actions {
                if !ids.contains(a) {
                    ids.push(*a);
                }
            }
        }
        let names = ids.iter().map(|a| (*a, self.ir.actions[*a as usize].name.as_str()));
        let aid = resolve("action", action, names.clone()).map_err(|e| {
            if e.starts_with("no ") {
                let valid: Vec<&str> = names.map(|(_, n)| n).collect();
                format!(
                    "the tables of action profile {pname:?} have no action {action:?}; their actions are: {}",
                    valid.join(", ")
                )
            } else {
                format!("action profile {pname:?}: {e}")
            }
        })?;
        let args = self.args(aid, toks, "")?;
        let members = &self.rt.profiles[p as usize].members;
        let id = (0..).find(|i| !members.contains_key(i)).unwrap_or(u32::MAX);
        self.rt.set_member(self.ir, p, id, Member { action: aid, args }).map_err(|e| e.to_string())
    }

    fn create_group(&mut self, profile: &str) -> Result<(), String> {
        let p = self.profile(profile)?;
        let groups = &self.rt.profiles[p as usize].groups;
        let id = (0..).find(|i| !groups.contains_key(i)).unwrap_or(u32::MAX);
        self.rt.set_group(self.ir, p, id, vec![]).map_err(|e| e.to_string())
    }

    fn add_member_to_group(&mut self, profile: &str, member: &str, group: &str) -> Result<(), String> {
        let p = self.profile(profile)?;
        let pname = &self.ir.profiles[p as usize].name;
        let m = num(member, "member", 32)?;
        let g = num(group, "group", 32)?;
        let ps = &self.rt.profiles[p as usize];
        if !ps.members.contains_key(&m) {
            return Err(format!("action profile {pname:?} has no member {m}"));
        }
        let Some(gd) = ps.groups.get(&g) else {
            return Err(format!("action profile {pname:?} has no group {g}"));
        };
        if gd.members.iter().any(|(x, _, _)| *x == m) {
            return Err(format!("member {m} is already in group {g} of action profile {pname:?}"));
        }
        let mut members = gd.members.clone();
        members.push((m, 1, None));
        self.rt.set_group(self.ir, p, g, members).map_err(|e| e.to_string())
    }

    fn indirect_add(&mut self, table: &str, toks: &[&str], group: bool) -> Result<(), String> {
        let (t, def) = self.indirect(table)?;
        let (key_toks, rest) = Self::split_arrow(toks)?;
        let key = self.key(def, key_toks)?;
        let (target, priority) = Self::priority(def, rest, 1)?;
        let what = if group { "group" } else { "member" };
        if target.len() != 1 {
            return Err(format!(
                "expected one {what} id after \"=>\"{}, found {} tokens",
                if def.needs_priority() { " and a priority" } else { "" },
                rest.len()
            ));
        }
        let id = num(target[0], what, 32)?;
        let action = if group { EntryAction::Group(id) } else { EntryAction::Member(id) };
        self.rt.insert(self.ir, t, Entry { key, priority, action, meta: None }).map_err(|e| e.to_string())?;
        self.applied.entries += 1;
        Ok(())
    }

    fn indirect_default(&mut self, table: &str, id: &str, group: bool) -> Result<(), String> {
        let (t, _) = self.indirect(table)?;
        let id = num(id, if group { "group" } else { "member" }, 32)?;
        let action = if group { EntryAction::Group(id) } else { EntryAction::Member(id) };
        self.rt.set_default(self.ir, t, Some(action)).map_err(|e| e.to_string())
    }

    fn mc_node(&mut self, mgrp: &str, node: &str, associate: bool) -> Result<(), String> {
        let g = num(mgrp, "multicast group", 16)?;
        let n = num(node, "node handle", 32)? as usize;
        let Some((rid, ports)) = self.nodes.get(n) else {
            return Err(format!("no multicast node {n} (mc_node_create has made {})", self.nodes.len()));
        };
        let Some(replicas) = self.rt.mcast.get_mut(&g) else {
            return Err(format!("no multicast group {g} (create it with mc_mgrp_create)"));
        };
        if associate {
            if let Some(other) = self.node_group.get(&n) {
                return Err(format!("multicast node {n} is already associated with group {other}"));
            }
            replicas.extend(ports.iter().map(|p| (*p, *rid)));
            self.node_group.insert(n, g);
        } else {
            if self.node_group.get(&n) != Some(&g) {
                return Err(format!("multicast node {n} is not associated with group {g}"));
            }
            for p in ports {
                if let Some(i) = replicas.iter().position(|r| *r == (*p, *rid)) {
                    replicas.remove(i);
                }
            }
            self.node_group.remove(&n);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_fastpath::p4::compile::compile_bytes;
    use sluice_fastpath::p4::interp::Interp;
    use sluice_fastpath::p4::ir::RegisterDef;
    use sluice_fastpath::p4::track::NoTrack;
    use std::path::PathBuf;

    fn corpus() -> Option<PathBuf> {
        let dir = std::env::var_os("SLUICE_P4_CORPUS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/p4")));
        if dir.is_dir() {
            Some(dir)
        } else {
            eprintln!("SKIP: P4 corpus not found at {} (set SLUICE_P4_CORPUS)", dir.display());
            None
        }
    }

    fn load(rel: &str) -> Option<(Ir, Runtime)> {
        let dir = corpus()?;
        let bytes = std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let ir = compile_bytes(&bytes).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let rt = Runtime::new(&ir);
        Some((ir, rt))
    }

    fn run(ir: &Ir, rt: &mut Runtime, port: u32, pkt: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let mut it = Interp::new(ir);
        it.run(ir, rt, pkt, port, &mut NoTrack);
        it.out.packets().iter().map(|p| (p.port, p.bytes.clone())).collect()
    }

    fn err(ir: &Ir, rt: &mut Runtime, text: &str) -> EntriesError {
        apply(ir, rt, text).expect_err("the text should be refused")
    }

    /// Ethernet + IPv4 (correct checksum) + UDP + payload.
    fn udp4(dst: [u8; 6], src: [u8; 6], sip: [u8; 4], dip: [u8; 4], ttl: u8) -> Vec<u8> {
        let mut p = vec![];
        p.extend_from_slice(&dst);
        p.extend_from_slice(&src);
        p.extend_from_slice(&[0x08, 0x00]);
        let mut iph = vec![0x45, 0, 0, 33, 0, 1, 0x40, 0, ttl, 17, 0, 0];
        iph.extend_from_slice(&sip);
        iph.extend_from_slice(&dip);
        let c = sluice_fastpath::p4::bits::csum16(&iph);
        iph[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(&iph);
        p.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, 0, 13, 0, 0]);
        p.extend_from_slice(b"hello");
        p
    }

    #[test]
    fn parse_value_formats() {
        assert_eq!(parse_value("0", 1), Ok(0));
        assert_eq!(parse_value("511", 9), Ok(511));
        assert_eq!(parse_value("0xAbC", 12), Ok(0xabc));
        assert_eq!(parse_value("0X00ff", 8), Ok(0xff));
        assert_eq!(parse_value("0b101", 3), Ok(5));
        assert_eq!(parse_value("10.0.1.10", 32), Ok(0x0a00_010a));
        assert_eq!(parse_value("00:04:00:00:00:01", 48), Ok(0x0004_0000_0001));
        assert_eq!(parse_value("0:4:0:0:0:a", 48), Ok(0x0004_0000_000a));
        assert_eq!(parse_value("2001:db8::1", 128), Ok(0x2001_0db8_0000_0000_0000_0000_0000_0001));
        assert_eq!(parse_value("::", 128), Ok(0));
        assert_eq!(parse_value(&u128::MAX.to_string(), 128), Ok(u128::MAX));
        assert_eq!(parse_value("0x1ffff", 32), Ok(0x1ffff), "numbers are fine for any width");
    }

    #[test]
    fn parse_value_errors() {
        let e = parse_value("512", 9).unwrap_err();
        assert!(e.contains("does not fit 9 bits"), "{e}");
        assert!(parse_value("0x100", 8).unwrap_err().contains("does not fit 8 bits"));
        assert!(parse_value("0b11", 1).unwrap_err().contains("does not fit 1 bits"));
        assert!(parse_value("340282366920938463463374607431768211456", 128).unwrap_err().contains("128 bits"));
        assert!(parse_value("10.0.0.1", 48).unwrap_err().contains("IPv4"));
        assert!(parse_value("10.0.0.256", 32).unwrap_err().contains("IPv4"));
        assert!(parse_value("00:04:00:00:00", 48).unwrap_err().contains("MAC"));
        assert!(parse_value("00:04:00:00:00:01", 32).unwrap_err().contains("this field is 32 bits"));
        assert!(parse_value("2001:db8::1::", 128).unwrap_err().contains("IPv6"));
        assert!(parse_value("-1", 8).unwrap_err().contains("expected a number"));
        assert!(parse_value("", 8).is_err());
        assert!(parse_value("0x", 8).unwrap_err().contains("hex"));
        assert!(parse_value("0b2", 8).unwrap_err().contains("binary"));
        assert!(parse_value("+5", 8).is_err());
        assert!(parse_value("abc", 32).unwrap_err().contains("IPv4"));
    }

    const SIMPLE_ROUTER: &str = "\
table_set_default send_frame _drop
table_set_default forward _drop
table_set_default ipv4_lpm _drop
table_add send_frame rewrite_mac 1 => 00:aa:bb:00:00:00
table_add send_frame rewrite_mac 2 => 00:aa:bb:00:00:01
table_add forward set_dmac 10.0.0.10 => 00:04:00:00:00:00
table_add forward set_dmac 10.0.1.10 => 00:04:00:00:00:01
table_add ipv4_lpm set_nhop 10.0.0.10/32 => 10.0.0.10 1
table_add ipv4_lpm set_nhop 10.0.1.10/32 => 10.0.1.10 2
";

    #[test]
    fn simple_router_commands_route_a_packet() {
        let Some((ir, mut rt)) = load("simple_router/simple_router.json") else { return };
        let text = format!("# simple_router's commands.txt\n\n{SIMPLE_ROUTER}   # trailing comment line\n");
        assert_eq!(apply(&ir, &mut rt, &text), Ok(Applied { commands: 9, entries: 6 }));
        for (t, n) in [("send_frame", 2), ("forward", 2), ("ipv4_lpm", 1 + 1)] {
            assert_eq!(rt.tables[ir.table(t).unwrap() as usize].len(), n, "{t}");
        }
        let pkt = udp4([0, 0xaa, 0xbb, 0, 0, 0], [0, 0, 0, 0, 0, 1], [10, 0, 0, 10], [10, 0, 1, 10], 64);
        let out = run(&ir, &mut rt, 1, &pkt);
        assert_eq!(out.len(), 1);
        let (port, f) = &out[0];
        assert_eq!(*port, 2);
        assert_eq!(f[0..6], [0, 4, 0, 0, 0, 1]);
        assert_eq!(f[6..12], [0, 0xaa, 0xbb, 0, 0, 1]);
        assert_eq!(f[22], 63, "TTL decremented");
        // A miss hits the _drop default.
        let miss = udp4([0, 0xaa, 0xbb, 0, 0, 0], [0, 0, 0, 0, 0, 1], [10, 0, 0, 10], [10, 9, 9, 9], 64);
        assert!(run(&ir, &mut rt, 1, &miss).is_empty());
    }

    #[test]
    fn delete_and_modify_by_handle() {
        let Some((ir, mut rt)) = load("simple_router/simple_router.json") else { return };
        apply(&ir, &mut rt, SIMPLE_ROUTER).unwrap();
        let t = ir.table("ipv4_lpm").unwrap() as usize;
        let h = rt.tables[t].entries().find(|(_, e)| e.key == [KeyValue::Lpm { value: 0x0a00_010a, prefix: 32 }]);
        let h = h.unwrap().0;
        apply(&ir, &mut rt, &format!("table_modify ipv4_lpm set_nhop {h} 10.0.0.10 1")).unwrap();
        let pkt = udp4([0, 0xaa, 0xbb, 0, 0, 0], [0, 0, 0, 0, 0, 1], [10, 0, 0, 10], [10, 0, 1, 10], 64);
        assert_eq!(run(&ir, &mut rt, 1, &pkt)[0].0, 1, "modified next hop");
        apply(&ir, &mut rt, &format!("table_delete ipv4_lpm {h}")).unwrap();
        assert_eq!(rt.tables[t].len(), 1);
        assert!(run(&ir, &mut rt, 1, &pkt).is_empty(), "deleted: the default drops");
        let e = err(&ir, &mut rt, &format!("table_delete ipv4_lpm {h}"));
        assert!(e.message.contains("no entry with handle"), "{e}");
        // LPM values are masked to their prefix, as BMv2 does.
        apply(&ir, &mut rt, "table_add ipv4_lpm set_nhop 10.0.1.77/24 => 10.0.1.10 2").unwrap();
        assert_eq!(run(&ir, &mut rt, 1, &pkt)[0].0, 2);
    }

    #[test]
    fn ternary_priorities_follow_bmv2_lower_wins() {
        let Some((ir, mut rt)) = load("bmv2_grpc_tests/ternary.json") else { return };
        let pkt = |v: u16| {
            let mut p = v.to_be_bytes().to_vec();
            p.extend_from_slice(&[0; 20]);
            p
        };
        apply(&ir, &mut rt, "table_add ter send_1 0xaabb&&&0xffff => 10\ntable_add ter send_2 0xaa0b&&&0xff0f => 20")
            .unwrap();
        assert_eq!(run(&ir, &mut rt, 0, &pkt(0xaabb))[0].0, 1, "priority 10 beats 20");
        assert_eq!(run(&ir, &mut rt, 0, &pkt(0xaacb))[0].0, 2, "only the second matches");
        let t = ir.table("ingress.ter").unwrap() as usize;
        let prios: Vec<i32> = rt.tables[t].entries().map(|(_, e)| e.priority).collect();
        assert!(prios.contains(&(i32::MAX - 10)) && prios.contains(&(i32::MAX - 20)), "{prios:?}");
        apply(&ir, &mut rt, "table_add ingress.ter ingress.send_2 0xaabb&&&0xfff0 => 0").unwrap();
        assert_eq!(run(&ir, &mut rt, 0, &pkt(0xaabb))[0].0, 2, "priority 0 is the best");
        let e = err(&ir, &mut rt, "table_add ter send_1 0x1&&&0x1 =>");
        assert!(e.message.contains("give a priority"), "{e}");
        let e = err(&ir, &mut rt, "table_add ter send_1 0x1&&&0x1 => -1");
        assert!(e.message.contains(">= 0"), "{e}");
        let e = err(&ir, &mut rt, "table_add ter send_1 0x1&&&0x1 => 2147483647");
        assert!(e.message.contains("priority"), "{e}");
        let e = err(&ir, &mut rt, "table_add ter send_1 0x1 => 1");
        assert_eq!(e.message, "key field 1 (h.hdr.f1, ternary, 16 bits): expected value&&&mask, found \"0x1\"");
    }

    #[test]
    fn action_selector_members_groups_and_indirect_entries() {
        let Some((ir, mut rt)) = load("bmv2_grpc_tests/action_profile.json") else { return };
        let p = ir.profiles.iter().position(|x| x.selector.is_some()).unwrap();
        let prof = ir.profiles[p].name.clone();
        let text = format!(
            "act_prof_create_member {prof} send 1\n\
             act_prof_create_member {prof} send 2\n\
             act_prof_create_group {prof}\n\
             act_prof_add_member_to_group {prof} 0 0\n\
             act_prof_add_member_to_group {prof} 1 0\n\
             table_indirect_add_with_group IndirectWS 0xab => 0\n\
             table_indirect_add IndirectWS 0xac => 1\n\
             table_indirect_set_default IndirectWS 0\n"
        );
        assert_eq!(apply(&ir, &mut rt, &text), Ok(Applied { commands: 8, entries: 2 }));
        let ps = &rt.profiles[p];
        assert_eq!(ps.members.len(), 2);
        assert_eq!(ps.members[&1].args, vec![2]);
        assert_eq!(ps.groups[&0].members, vec![(0, 1, None), (1, 1, None)]);
        let t = ir.table("IndirectWS").unwrap() as usize;
        let entries: Vec<Entry> = rt.tables[t].entries().map(|(_, e)| e.clone()).collect();
        assert!(entries.contains(&Entry {
            key: vec![KeyValue::Exact(0xab)],
            priority: 0,
            action: EntryAction::Group(0),
            meta: None
        }));
        assert!(entries.contains(&Entry {
            key: vec![KeyValue::Exact(0xac)],
            priority: 0,
            action: EntryAction::Member(1),
            meta: None
        }));
        assert_eq!(rt.tables[t].default, Some(EntryAction::Member(0)));
        let mut seen = [0; 3];
        for entropy in 0u32..32 {
            let mut pkt = vec![0xab];
            pkt.extend_from_slice(&entropy.to_be_bytes());
            seen[run(&ir, &mut rt, 0, &pkt)[0].0 as usize] += 1;
        }
        assert!(seen[1] > 0 && seen[2] > 0, "{seen:?}");
        assert_eq!(run(&ir, &mut rt, 0, &[0xac, 0, 0, 0, 0])[0].0, 2, "member 1");
        // Member ids reuse the smallest free id; errors name the problem.
        let e = err(&ir, &mut rt, &format!("act_prof_add_member_to_group {prof} 0 0"));
        assert!(e.message.contains("already in group"), "{e}");
        let e = err(&ir, &mut rt, &format!("act_prof_create_member {prof} sned 1"));
        assert!(e.message.contains("their actions are: send, NoAction"), "{e}");
        let e = err(&ir, &mut rt, "table_add IndirectWS send 0xab => 1");
        assert!(e.message.contains("indirect"), "{e}");
        let e = err(&ir, &mut rt, "table_indirect_add IndirectWS 0xad => 9");
        assert!(e.message.contains("member 9"), "{e}");
    }

    /// The ops `Runtime::diff` derives from a loader edit turn the old state into
    /// the new one: tables, defaults, members, groups, multicast and clone sessions,
    /// registers; and an unchanged state gives none.
    #[test]
    fn diff_ops_replay_a_loader_edit_exactly() {
        for (rel, text, edit) in [
            (
                "simple_router/simple_router.json",
                "table_add ipv4_lpm set_nhop 10.0.0.0/8 => 10.0.0.1 1\ntable_add send_frame rewrite_mac 1 => 00:aa:00:00:00:01\n\
                 table_add forward set_dmac 10.0.0.1 => 00:bb:00:00:00:01\n",
                "table_delete ipv4_lpm 0\ntable_add ipv4_lpm set_nhop 10.1.0.0/16 => 10.0.0.2 2\n\
                 table_modify send_frame rewrite_mac 0 00:aa:00:00:00:09\ntable_set_default forward _drop\n",
            ),
            (
                "bmv2_grpc_tests/multicast.json",
                "mirroring_add 5 7\nmc_mgrp_create 10\nmc_node_create 1 1 2\nmc_node_associate 10 0\n",
                "mirroring_add 6 8\nmc_mgrp_destroy 10\nmc_mgrp_create 12\nmc_node_create 3 4\nmc_node_associate 12 0\n",
            ),
            (
                "bmv2_grpc_tests/action_profile.json",
                "act_prof_create_member ActProfWS send 1\nact_prof_create_member ActProfWS send 2\n\
                 act_prof_create_group ActProfWS\nact_prof_add_member_to_group ActProfWS 0 0\n\
                 table_indirect_add_with_group IndirectWS 0xab => 0\n",
                "act_prof_add_member_to_group ActProfWS 1 0\ntable_indirect_add IndirectWS 0xac => 1\n",
            ),
            (
                "onos_basic/basic.json",
                "meter_set_rates egress_port_meter 2 0.1:3000 0.2:3000\n\
                 table_add host_meter_table read_meter 00:00:00:00:00:01/48 =>\n\
                 meter_set_rates host_meter 0 1:1500 1:1500\n",
                "meter_set_rates egress_port_meter 2 0.5:3000 0.5:3000\nmeter_set_rates egress_port_meter 3 1:1 1:1\n\
                 meter_set_rates host_meter 0 2:1500 2:1500\n",
            ),
        ] {
            let Some((ir, mut rt)) = load(rel) else { return };
            apply(&ir, &mut rt, text).unwrap_or_else(|e| panic!("{rel}: {e}"));
            assert!(rt.diff(&rt.clone()).is_empty(), "{rel}: no change, no op");
            let mut new = rt.clone();
            apply(&ir, &mut new, edit).unwrap_or_else(|e| panic!("{rel}: {e}"));
            let ops = rt.diff(&new);
            assert!(!ops.is_empty(), "{rel}");
            for op in &ops {
                rt.apply(&ir, op).unwrap_or_else(|e| panic!("{rel}: {op:?}: {e}"));
            }
            assert_eq!(rt.diff(&new), vec![], "{rel}: replaying the ops gives the edited state");
            assert_eq!(new.diff(&rt), vec![], "{rel}");
        }
    }

    /// meter_set_rates: BMv2's units (rates per microsecond), indexed and direct
    /// meters, and clear errors.
    #[test]
    fn meter_set_rates_configures_indexed_and_direct_cells() {
        let Some((ir, mut rt)) = load("onos_basic/basic.json") else { return };
        let text = "meter_set_rates egress_port_meter 2 0.125:3000 0.25:6000\n\
                    table_add host_meter_table read_meter 00:00:00:00:00:01/48 =>\n\
                    meter_set_rates host_meter 0 1:1500 2:1500\n";
        apply(&ir, &mut rt, text).unwrap();
        let m = ir.meters.iter().position(|m| m.name.ends_with("egress_port_meter")).unwrap();
        let want = MeterConfig { cir: 125_000, cburst: 3000, pir: 250_000, pburst: 6000 };
        assert_eq!(rt.meters[m][2].unwrap().config, want);
        let h = ir.meters.iter().position(|m| m.name.ends_with("host_meter")).unwrap();
        assert_eq!(rt.meters[h][0].unwrap().config.pir, 2_000_000);
        let err = |t: &str| apply(&ir, &mut rt.clone(), t).unwrap_err().message;
        assert!(err("meter_set_rates egress_port_meter 2 1:10 0.5:10").contains("pir must be >= cir"));
        assert!(err("meter_set_rates egress_port_meter 2 1 1:1").contains("<rate>:<burst>"));
        assert!(err("meter_set_rates egress_port_meter 600 1:1 1:1").contains("out of range"));
        assert!(err("meter_set_rates host_meter 7 1:1 1:1").contains("no entry with handle 7"));
        assert!(err("meter_set_rates egress_port_meter 1 0:1 1:1").contains("must be > 0"));
    }

    /// A dump is a list of commands that rebuild the table.
    #[test]
    fn dump_gives_commands_that_rebuild_the_table() {
        let Some((ir, mut rt)) = load("simple_router/simple_router.json") else { return };
        let text = "table_add ipv4_lpm set_nhop 10.0.0.0/8 => 10.0.0.1 1\ntable_add ipv4_lpm set_nhop 10.1.0.0/16 => 10.0.0.2 2\n\
                    table_set_default ipv4_lpm _drop\n";
        apply(&ir, &mut rt, text).unwrap();
        let (lines, default) = dump(&ir, &rt, "ipv4_lpm").unwrap();
        assert_eq!(lines[0], "table_add ipv4_lpm set_nhop 0xa000000/8 => 0xa000001 0x1  # handle 0");
        assert_eq!(default, "table_set_default ipv4_lpm _drop");
        let (_, mut fresh) = load("simple_router/simple_router.json").unwrap();
        apply(&ir, &mut fresh, &(lines.join("\n") + "\n" + &default)).unwrap();
        assert!(rt.diff(&fresh).is_empty());
        assert!(dump(&ir, &rt, "nope").unwrap_err().contains("nope"));
    }

    #[test]
    fn mirroring_and_multicast_fill_the_pre() {
        let Some((ir, mut rt)) = load("bmv2_grpc_tests/multicast.json") else { return };
        let text = "mirroring_add 5 7\n\
                    mc_mgrp_create 10\n\
                    mc_node_create 1 1 2\n\
                    mc_node_create 2 3\n\
                    mc_node_associate 10 0\n\
                    mc_node_associate 10 1\n";
        assert_eq!(apply(&ir, &mut rt, text), Ok(Applied { commands: 6, entries: 0 }));
        assert_eq!(rt.clone_sessions[&5], (vec![(7, 0)], 0));
        assert_eq!(rt.mcast[&10], vec![(1, 1), (2, 1), (3, 2)]);
        let mut pkt = 10u16.to_be_bytes().to_vec();
        pkt.extend_from_slice(&[0x11; 30]);
        let mut ports: Vec<u32> = run(&ir, &mut rt, 0, &pkt).iter().map(|(p, _)| *p).collect();
        ports.sort();
        assert_eq!(ports, vec![1, 2, 3]);
        // Node handles are per apply: within one text, dissociate and destroy.
        let text = "mc_mgrp_create 11\nmc_node_create 4 5 6\nmc_node_create 4 7\nmc_node_associate 11 0\n\
                    mc_node_associate 11 1\nmc_node_dissociate 11 0\n";
        apply(&ir, &mut rt, text).unwrap();
        assert_eq!(rt.mcast[&11], vec![(7, 4)]);
        apply(&ir, &mut rt, "mc_mgrp_destroy 11").unwrap();
        assert!(!rt.mcast.contains_key(&11));
        assert!(err(&ir, &mut rt, "mc_mgrp_create 10").message.contains("already exists"));
        assert!(err(&ir, &mut rt, "mc_node_associate 10 0").message.contains("no multicast node 0"));
        assert!(err(&ir, &mut rt, "mc_mgrp_create 12\nmc_node_create 1 1\nmc_node_associate 13 0")
            .message
            .contains("no multicast group 13"));
        assert!(!rt.mcast.contains_key(&12), "refused text changes nothing");
    }

    #[test]
    fn registers_write_and_reset() {
        let Some((mut ir, _)) = load("bmv2_grpc_tests/ternary.json") else { return };
        ir.registers.push(RegisterDef { name: "ingress.counts".into(), size: 4, width: 8 });
        let mut rt = Runtime::new(&ir);
        apply(&ir, &mut rt, "register_write counts 2 200\nregister_write ingress.counts 0 0x7").unwrap();
        assert_eq!(rt.registers[0], vec![7, 0, 200, 0]);
        assert!(err(&ir, &mut rt, "register_write counts 2 256").message.contains("does not fit 8 bits"));
        assert!(err(&ir, &mut rt, "register_write counts 4 1").message.contains("has 4 cells"));
        assert!(err(&ir, &mut rt, "register_write cnt 0 1").message.contains("valid: ingress.counts"));
        apply(&ir, &mut rt, "register_reset counts").unwrap();
        assert_eq!(rt.registers[0], vec![0; 4]);
    }

    #[test]
    fn names_resolve_by_suffix_and_report_ambiguity() {
        let Some((ir, mut rt)) = load("onos_basic/basic.json") else { return };
        let t = ir.table("ingress.table0_control.table0").unwrap() as usize;
        let def = &ir.tables[t];
        // Build an entry generically: any value for every key field, the table's first
        // action with zero arguments.
        let key: Vec<String> = def
            .keys
            .iter()
            .map(|k| match k.kind {
                MatchKind::Exact => "1".to_string(),
                MatchKind::Lpm => "0/0".to_string(),
                MatchKind::Ternary => "1&&&1".to_string(),
                MatchKind::Optional => "1".to_string(),
                MatchKind::Range => "1->2".to_string(),
            })
            .collect();
        let (slot, a) = def
            .actions
            .iter()
            .enumerate()
            .map(|(s, a)| (s, &ir.actions[*a as usize]))
            .max_by_key(|(_, a)| a.params.len())
            .unwrap();
        let args: Vec<&str> = a.params.iter().map(|_| "1").collect();
        let prio = if def.needs_priority() { " 7" } else { "" };
        let action = a.name.rsplit('.').next().unwrap();
        let line = format!("table_add table0 {action} {} => {}{prio}", key.join(" "), args.join(" "));
        apply(&ir, &mut rt, &line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(rt.tables[t].len(), 1);
        match &rt.tables[t].entries().next().unwrap().1.action {
            EntryAction::Call(c) => assert_eq!(c.slot as usize, slot),
            other => panic!("{other:?}"),
        }
        // Two tables ending in "ter": ambiguous.
        let Some((mut ir, _)) = load("bmv2_grpc_tests/ternary.json") else { return };
        let mut twin = ir.tables[0].clone();
        twin.name = "egress.ter".into();
        ir.tables.push(twin);
        let mut rt = Runtime::new(&ir);
        let e = err(&ir, &mut rt, "table_add ter send_1 1&&&1 => 1");
        assert_eq!(e.message, "table \"ter\" is ambiguous; candidates: ingress.ter, egress.ter");
        apply(&ir, &mut rt, "table_add egress.ter send_1 1&&&1 => 1").unwrap();
    }

    #[test]
    fn errors_say_what_is_wrong_and_change_nothing() {
        let Some((ir, mut rt)) = load("simple_router/simple_router.json") else { return };
        let e = err(&ir, &mut rt, "table_add ipv4_lmp set_nhop 10.0.0.1/32 => 10.0.0.1 1");
        assert_eq!(e.line, 1);
        assert!(e.message.starts_with("no table \"ipv4_lmp\"; valid: "), "{e}");
        assert!(e.message.contains("ipv4_lpm"), "{e}");
        let e = err(&ir, &mut rt, "\n\n# c\ntable_add ipv4_lpm set_nhp 10.0.0.1/32 => 10.0.0.1 1");
        assert_eq!(
            e.to_string(),
            "line 4: table \"ipv4_lpm\" has no action \"set_nhp\"; its actions are: set_nhop, _drop, NoAction"
        );
        let e = err(&ir, &mut rt, "table_add ipv4_lpm set_nhop 10.0.0.1 => 10.0.0.1 1");
        assert_eq!(
            e.message,
            "key field 1 (ipv4.dstAddr, lpm, 32 bits): expected value/prefix_len, found \"10.0.0.1\""
        );
        let e = err(&ir, &mut rt, "table_add ipv4_lpm set_nhop 10.0.0.1/33 => 10.0.0.1 1");
        assert!(e.message.contains("not in 0..=32"), "{e}");
        let e = err(&ir, &mut rt, "table_add ipv4_lpm set_nhop 10.0.0.1/32 => 10.0.0.1");
        assert_eq!(
            e.message,
            "action \"set_nhop\" takes 2 parameters (nhop_ipv4: 32 bits, port: 9 bits), found 1 argument"
        );
        let e = err(&ir, &mut rt, "table_add ipv4_lpm set_nhop 10.0.0.1/32 => 10.0.0.1 1 5");
        assert!(e.message.contains("takes no priority"), "{e}");
        let e = err(&ir, &mut rt, "table_add ipv4_lpm set_nhop 10.0.0.1/32 => 10.0.0.1 512");
        assert!(e.message.contains("parameter 2 (port, 9 bits)") && e.message.contains("does not fit 9 bits"), "{e}");
        let e = err(&ir, &mut rt, "table_add ipv4_lpm set_nhop 10.0.0.1/32 10.0.0.1 1");
        assert!(e.message.contains("\"=>\""), "{e}");
        let e = err(&ir, &mut rt, "table_add forward set_dmac 1 2 => 00:04:00:00:00:00");
        assert!(e.message.contains("has 1 key field: routing_metadata.nhop_ipv4 (exact, 32 bits), found 2"), "{e}");
        let e = err(&ir, &mut rt, "table_add forward");
        assert!(e.message.starts_with("usage: table_add <table> <action>"), "{e}");
        let e = err(&ir, &mut rt, "table_dump forward");
        assert!(e.message.starts_with("unknown command \"table_dump\"; supported commands: table_add,"), "{e}");
        let e = err(&ir, &mut rt, "table_indirect_add forward 1 => 0");
        assert!(e.message.contains("is direct"), "{e}");
        let e = err(
            &ir,
            &mut rt,
            "table_add forward set_dmac 10.0.0.10 => 00:04:00:00:00:00\n\
                                   table_add forward set_dmac 10.0.0.10 => 00:04:00:00:00:01",
        );
        assert_eq!(e.line, 2);
        assert!(e.message.contains("already exists"), "{e}");

        // An error in line 3 leaves the runtime exactly as it was.
        apply(&ir, &mut rt, SIMPLE_ROUTER).unwrap();
        let lens = |rt: &Runtime| rt.tables.iter().map(|t| t.len()).collect::<Vec<_>>();
        let defaults = |rt: &Runtime| rt.tables.iter().map(|t| t.default.clone()).collect::<Vec<_>>();
        let (before, before_defaults) = (lens(&rt), defaults(&rt));
        let text = "table_add forward set_dmac 10.0.2.10 => 00:04:00:00:00:02\n\
                    table_set_default forward NoAction\n\
                    table_add ipv4_lpm set_nhop 10.0.2.10/32 => 10.0.2.10 3 9\n";
        let e = err(&ir, &mut rt, text);
        assert_eq!(e.line, 3);
        assert_eq!(lens(&rt), before);
        assert_eq!(defaults(&rt), before_defaults);
        // The same text without the mistake applies.
        let ok = text.replace(" 3 9\n", " 3\n");
        assert_eq!(apply(&ir, &mut rt, &ok), Ok(Applied { commands: 3, entries: 2 }));
        assert_ne!(lens(&rt), before);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        const WORDS: &[&str] = &[
            "table_add",
            "table_set_default",
            "table_delete",
            "table_modify",
            "act_prof_create_member",
            "act_prof_create_group",
            "act_prof_add_member_to_group",
            "table_indirect_add",
            "table_indirect_add_with_group",
            "table_indirect_set_default",
            "mirroring_add",
            "mc_mgrp_create",
            "mc_node_create",
            "mc_node_associate",
            "mc_node_dissociate",
            "mc_mgrp_destroy",
            "register_write",
            "register_reset",
            "meter_set_rates",
            "ipv4_lpm",
            "forward",
            "send_frame",
            "set_nhop",
            "set_dmac",
            "rewrite_mac",
            "_drop",
            "NoAction",
            "=>",
            "0",
            "1",
            "2",
            "0xffffffffffffffffffffffffffffffffff",
            "10.0.0.1/32",
            "10.0.0.1/99",
            "1/4294967295",
            "0/0",
            "1&&&1",
            "1->0",
            "00:aa:bb:00:00:00",
            "::1",
            "-1",
            "#",
        ];

        fn token() -> impl Strategy<Value = String> {
            prop_oneof![
                3 => proptest::sample::select(WORDS).prop_map(str::to_string),
                1 => "[ -~]{0,12}",
                1 => (0u64..1 << 40).prop_map(|v| v.to_string()),
            ]
        }

        fn line() -> impl Strategy<Value = String> {
            prop_oneof![
                3 => proptest::collection::vec(token(), 0..9).prop_map(|t| t.join(" ")),
                1 => "\\PC{0,60}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn random_lines_never_panic(lines in proptest::collection::vec(line(), 0..8)) {
                static IR: std::sync::OnceLock<Option<Ir>> = std::sync::OnceLock::new();
                let Some(ir) = IR.get_or_init(|| load("simple_router/simple_router.json").map(|(ir, _)| ir)) else {
                    return Ok(());
                };
                let mut rt = Runtime::new(ir);
                let before: Vec<usize> = rt.tables.iter().map(|t| t.len()).collect();
                if apply(ir, &mut rt, &lines.join("\n")).is_err() {
                    prop_assert_eq!(rt.tables.iter().map(|t| t.len()).collect::<Vec<_>>(), before);
                }
            }

            #[test]
            fn parse_value_never_panics_and_roundtrips(s in "\\PC{0,50}", v in any::<u128>(), width in 0u32..=130) {
                let _ = parse_value(&s, width);
                let w = width.clamp(1, 128);
                let v = v & mask_of(w);
                prop_assert_eq!(parse_value(&v.to_string(), w), Ok(v));
                prop_assert_eq!(parse_value(&format!("{v:#x}"), w), Ok(v));
                prop_assert_eq!(parse_value(&format!("{v:#b}"), w), Ok(v));
            }
        }
    }
}
