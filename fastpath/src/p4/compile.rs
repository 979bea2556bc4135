//! BMv2 JSON (typed by [`super::json`]) to [`Ir`].
//!
//! The compiler resolves every name once (headers, fields through `field_aliases`,
//! actions per table, next nodes, externs) and turns every expression into a flat
//! [`Expr`]. It accepts exactly what the interpreter can run; anything else is an error
//! naming the construct and where it sits in the JSON, for example
//! `actions[7] "ingress.do_thing" primitives[2]: primitive "modify_field_rng_uniform" is not supported`.
//!
//! Header stacks and unions are supported: `extract` to `stack.next`, `stack.last.f`
//! (`stack_field`), `lastIndex`/`size_stack`, `push_front`/`pop_front`, whole-stack and
//! whole-union assignment, `union.isValid()`, and a run-time index (`stack[i].f`) to
//! read or write a field.
//!
//! A varbit field (the last field of its header, with the type's `max_length`) is
//! extracted with a length (`extract_VL`), emitted, copied whole (`assign_VL`, header
//! assignment) and hashed or checksummed as its bytes; any other use is refused.
//!
//! Header layout (types, instances, stacks, unions, varbit) is compiled in `layout`,
//! the parser and deparser in `parser`, the rest (expressions, actions, tables,
//! externs, checksums) here.
//!
//! Not supported yet (rejected by name): stacks of unions, a run-time index used as a
//! whole header (`stack[i].setValid()`), a varbit field that is not its header's last,
//! signed fields, fields wider than 128 bits, extern instances,
//! `modify_field_rng_uniform`, select keys wider than 128 bits, `ipv4`-type checksums.

use std::collections::HashMap;

use serde_json::Value as Json;

use super::ir::*;
use super::json::{self, Program};

mod layout;
mod parser;

/// Why a program cannot be loaded: the construct and its place in the JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CompileError(pub String);

type Result<T> = std::result::Result<T, CompileError>;

/// Resolves a next-node name within a pipeline.
type NextFn<'n> = &'n dyn Fn(&Option<String>, &str) -> Result<Option<Node>>;

fn fail<T>(place: &str, what: impl std::fmt::Display) -> Result<T> {
    Err(CompileError(format!("{place}: {what}")))
}

/// Parse a BMv2 hex string (`"0x0a"`, `"0X0A"`, optionally `-` for negative) as an
/// unsigned value of at most 128 bits.
pub fn parse_hex(s: &str) -> Option<Value> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    let digits = digits.trim_start_matches('0');
    if digits.len() > 32 {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    Value::from_str_radix(digits, 16).ok()
}

/// Hex string width in bits (two per byte of the written digits, as BMv2 sizes them).
fn hex_bits(s: &str) -> u32 {
    let digits = s.trim_start_matches("0x").trim_start_matches("0X");
    (digits.len() as u32).div_ceil(2) * 8
}

/// What an expression may refer to where it is compiled.
#[derive(Clone, Copy)]
struct Scope {
    /// Number of action parameters (0 outside actions).
    params: u32,
    /// Inside the parser (lookahead allowed).
    parser: bool,
}

const NO_PARAMS: Scope = Scope { params: 0, parser: false };

struct Compiler<'a> {
    prog: &'a Program,
    ir: Ir,
    header_ids: HashMap<&'a str, HeaderId>,
    field_ids: HashMap<(String, String), FieldId>,
    aliases: HashMap<String, (&'a str, &'a str)>,
    action_ids: HashMap<u32, ActionId>,
    /// Bytes of varbit buffer given out so far.
    varbit_bytes: u32,
}

/// Compile a parsed program.
pub fn compile(prog: &Program) -> Result<Ir> {
    let mut c = Compiler {
        prog,
        ir: Ir {
            name: prog.program.clone().unwrap_or_else(|| "unnamed".into()),
            headers: vec![],
            fields: vec![],
            states: vec![],
            start_state: 0,
            deparser: vec![],
            actions: vec![],
            tables: vec![],
            conditionals: vec![],
            ingress: None,
            egress: None,
            profiles: vec![],
            counters: vec![],
            meters: vec![],
            registers: vec![],
            calcs: vec![],
            learn_lists: vec![],
            field_lists: vec![],
            value_sets: vec![],
            verify_checksums: vec![],
            update_checksums: vec![],
            std: StdMeta {
                ingress_port: 0,
                egress_spec: 0,
                egress_port: 0,
                instance_type: 0,
                packet_length: 0,
                mcast_grp: None,
                egress_rid: None,
                checksum_error: None,
                parser_error: None,
            },
            errors: vec![],
            stacks: vec![],
            unions: vec![],
        },
        header_ids: HashMap::new(),
        field_ids: HashMap::new(),
        aliases: HashMap::new(),
        action_ids: HashMap::new(),
        varbit_bytes: 0,
    };
    c.unsupported_sections()?;
    c.headers()?;
    c.std_meta()?;
    c.ir.errors = prog.errors.iter().map(|(n, v)| (n.clone(), *v as u32)).collect();
    c.lists()?;
    c.calculations()?;
    c.externs()?;
    c.actions()?;
    c.value_sets()?;
    c.parser()?;
    c.deparser()?;
    c.pipelines()?;
    c.checksums()?;
    drop_repeated_checksums(&mut c.ir);
    // Const entries go through the same checks as runtime writes.
    if let Err((t, i, e)) = super::tables::Runtime::try_new(&c.ir) {
        return fail(&format!("table {:?} entries[{i}]", c.ir.tables[t as usize].name), e);
    }
    Ok(c.ir)
}

/// Drop each checksum that repeats an earlier one of the same list with the same
/// outcome: same field, same condition, a calculation with the same algorithm and
/// inputs, and nothing in between that could change what it reads. Programs
/// converted from P4_14 carry the IPv4 checksum twice (`cksum` and `cksum_0`,
/// neither flagged, so both verify and update, as BMv2 does): every packet computed
/// it twice on the way in and twice on the way out. Exact: a verification writes
/// only `checksum_error`, so a repeat that reads neither it nor a stack (whose
/// field reads the IR does not name) finds what the first found; an update writes
/// only its field, so a repeat whose inputs and condition read none of the fields
/// written by the updates from the first one on computes the same value.
pub(crate) fn drop_repeated_checksums(ir: &mut Ir) {
    let same = |ir: &Ir, a: &ChecksumDef, b: &ChecksumDef| {
        let (ca, cb) = (&ir.calcs[a.calc as usize], &ir.calcs[b.calc as usize]);
        a.field == b.field && a.cond == b.cond && ca.algo == cb.algo && ca.inputs == cb.inputs
    };
    // Whether checksum `c` may read one of `fields`: its inputs or its condition name
    // one, or read a stack element (a field the IR does not name: may be any).
    let reads_any = |ir: &Ir, c: &ChecksumDef, fields: &[FieldId]| {
        let inputs = ir.calcs[c.calc as usize].inputs.iter().map(|(e, _)| e);
        inputs.chain(c.cond.as_ref()).flat_map(|e| e.ops.iter()).any(|op| match op {
            Op::Field(f) => fields.contains(f),
            Op::StackLast { .. } | Op::StackAt { .. } => true,
            _ => false,
        })
    };
    // Verifications write `checksum_error` alone (and compare it if it is the
    // checksum field itself).
    let error: Vec<FieldId> = ir.std.checksum_error.into_iter().collect();
    let mut kept: Vec<ChecksumDef> = vec![];
    for c in std::mem::take(&mut ir.verify_checksums) {
        let repeat = kept.iter().any(|k| same(ir, k, &c)) && !reads_any(ir, &c, &error) && !error.contains(&c.field);
        if !repeat {
            kept.push(c);
        }
    }
    ir.verify_checksums = kept;
    // Each update writes its field: a repeat of kept update `i` must read none of
    // the fields written by kept updates `i..` (a dropped one wrote what one of
    // them did).
    let mut kept: Vec<ChecksumDef> = vec![];
    for c in std::mem::take(&mut ir.update_checksums) {
        let repeat = (0..kept.len()).any(|i| {
            let written: Vec<FieldId> = kept[i..].iter().map(|w| w.field).collect();
            same(ir, &kept[i], &c) && !reads_any(ir, &c, &written)
        });
        if !repeat {
            kept.push(c);
        }
    }
    ir.update_checksums = kept;
}

/// Whether a checksum is the Internet checksum of its field's 16-bit-aligned
/// header with the field itself left out, inputs in header order (IPv4's).
fn whole_header(ir: &Ir, ck: &ChecksumDef) -> bool {
    let calc = &ir.calcs[ck.calc as usize];
    let fd = &ir.fields[ck.field as usize];
    let h = &ir.headers[fd.header as usize];
    let max_bytes = h.bytes + h.varbit.map_or(0, |v| v.max_bytes);
    if calc.algo != HashAlgo::Csum16 || fd.width != 16 || !fd.bit_offset.is_multiple_of(16) || max_bytes > 64 {
        return false;
    }
    let expected: Vec<FieldId> = h.fields.clone().filter(|f| *f != ck.field).collect();
    let got: Vec<Option<FieldId>> = calc.inputs.iter().map(|(e, _)| e.as_field()).collect();
    got.len() == expected.len() && got.iter().zip(&expected).all(|(g, e)| *g == Some(*e))
}

/// Parse and compile BMv2 JSON bytes.
pub fn compile_bytes(bytes: &[u8]) -> Result<Ir> {
    let prog = Program::parse_bytes(bytes).map_err(|e| CompileError(e.to_string()))?;
    compile(&prog)
}

impl<'a> Compiler<'a> {
    fn unsupported_sections(&self) -> Result<()> {
        let p = self.prog;
        if let Some(s) = p.header_union_stacks.first() {
            return fail(
                &format!("header_union_stacks[0] {}", s.get("name").unwrap_or(&Json::Null)),
                "stacks of header unions are not supported",
            );
        }
        if let Some(e) = p.extern_instances.first() {
            return fail(
                &format!("extern_instances[0] {}", e.get("name").unwrap_or(&Json::Null)),
                "extern instances are not supported",
            );
        }
        if p.parsers.len() != 1 {
            return fail("parsers", format!("v1model has one parser, this program has {}", p.parsers.len()));
        }
        if p.deparsers.len() != 1 {
            return fail("deparsers", format!("v1model has one deparser, this program has {}", p.deparsers.len()));
        }
        if p.pipelines.len() != 2 {
            return fail(
                "pipelines",
                format!("v1model has ingress and egress, this program has {} pipelines", p.pipelines.len()),
            );
        }
        Ok(())
    }

    fn std_meta(&mut self) -> Result<()> {
        let get = |c: &Self, f: &str| c.field_ids.get(&("standard_metadata".to_string(), f.to_string())).copied();
        let need = |c: &Self, f: &str| {
            get(c, f).ok_or_else(|| CompileError(format!("headers: v1model needs standard_metadata.{f}")))
        };
        self.ir.std = StdMeta {
            ingress_port: need(self, "ingress_port")?,
            egress_spec: need(self, "egress_spec")?,
            egress_port: need(self, "egress_port")?,
            instance_type: need(self, "instance_type")?,
            packet_length: need(self, "packet_length")?,
            mcast_grp: get(self, "mcast_grp"),
            egress_rid: get(self, "egress_rid"),
            checksum_error: get(self, "checksum_error"),
            parser_error: get(self, "parser_error"),
        };
        Ok(())
    }

    fn header_ref(&self, name: &str, place: &str) -> Result<HeaderId> {
        match self.header_ids.get(name) {
            Some(id) => Ok(*id),
            None => fail(place, format!("unknown header {name:?}")),
        }
    }

    /// `[header, field]` (through aliases) to a field, or `$valid$` to a validity op.
    fn field_op(&self, v: &Json, place: &str) -> Result<Op> {
        let pair = v.as_array().filter(|a| a.len() == 2);
        let (Some(h), Some(f)) = (pair.and_then(|a| a[0].as_str()), pair.and_then(|a| a[1].as_str())) else {
            return fail(place, format!("a field is [header, field], not {v}"));
        };
        let (h, f) = self.aliases.get(&format!("{h}.{f}")).copied().unwrap_or((h, f));
        if f == "$valid$" {
            return Ok(Op::Valid(self.header_ref(h, place)?));
        }
        match self.field_ids.get(&(h.to_string(), f.to_string())) {
            Some(id) => Ok(Op::Field(*id)),
            None => fail(place, format!("unknown field {h}.{f}")),
        }
    }

    fn field_ref(&self, v: &Json, place: &str) -> Result<FieldId> {
        let f = self.field_or_varbit(v, place)?;
        self.not_varbit(f, place)
    }

    /// A field, varbit fields included (they can only be extracted, emitted, copied
    /// whole and hashed).
    fn field_or_varbit(&self, v: &Json, place: &str) -> Result<FieldId> {
        match self.field_op(v, place)? {
            Op::Field(f) => Ok(f),
            _ => fail(place, "the validity bit cannot be written; use add_header/remove_header"),
        }
    }

    fn not_varbit(&self, f: FieldId, place: &str) -> Result<FieldId> {
        if self.ir.fields[f as usize].width == 0 {
            return fail(
                place,
                format!(
                    "varbit field {} can only be extracted, emitted, copied whole or hashed",
                    self.ir.fields[f as usize].name
                ),
            );
        }
        Ok(f)
    }

    /// A typed parameter `{"type": t, "value": v}`.
    fn typed<'j>(&self, v: &'j Json, place: &str) -> Result<(&'j str, &'j Json)> {
        match (v.get("type").and_then(Json::as_str), v.get("value")) {
            (Some(t), Some(val)) => Ok((t, val)),
            _ => fail(place, format!("expected {{\"type\", \"value\"}}, found {v}")),
        }
    }

    fn expect_field(&self, v: &Json, place: &str) -> Result<FieldId> {
        match self.typed(v, place)? {
            ("field", val) => self.field_ref(val, place),
            (t, _) => fail(place, format!("expected a field, found {t:?}")),
        }
    }

    fn expect_header(&self, v: &Json, place: &str) -> Result<HeaderId> {
        match self.typed(v, place)? {
            ("header", Json::String(h)) => self.header_ref(h, place),
            (t, _) => fail(place, format!("expected a header, found {t:?}")),
        }
    }

    fn expect_hex(&self, v: &Json, place: &str) -> Result<Value> {
        match self.typed(v, place)? {
            ("hexstr", Json::String(s)) => parse_hex(s).ok_or_else(|| CompileError(format!("{place}: bad hex {s:?}"))),
            (t, _) => fail(place, format!("expected a constant, found {t:?}")),
        }
    }

    fn named(&self, v: &Json, kind: &str, names: &[String], place: &str) -> Result<u32> {
        match self.typed(v, place)? {
            (t, Json::String(n)) if t == kind => names
                .iter()
                .position(|x| x == n)
                .map(|i| i as u32)
                .ok_or_else(|| CompileError(format!("{place}: unknown {kind} {n:?}"))),
            (t, _) => fail(place, format!("expected a {kind}, found {t:?}")),
        }
    }

    /// Compile an expression.
    fn expr(&self, v: &Json, scope: Scope, place: &str) -> Result<Expr> {
        let mut e = Expr::default();
        self.expr_into(v, scope, place, &mut e, 0)?;
        Ok(e)
    }

    fn expr_into(&self, v: &Json, scope: Scope, place: &str, out: &mut Expr, depth: u32) -> Result<()> {
        if depth > 64 {
            return fail(place, "expression nested more than 64 deep");
        }
        let (ty, val) = self.typed(v, place)?;
        match ty {
            "field" => {
                let op = self.field_op(val, place)?;
                if let Op::Field(f) = op {
                    self.not_varbit(f, place)?;
                }
                out.ops.push(op)
            }
            "hexstr" => match val.as_str() {
                Some(s) if s.starts_with('-') => {
                    return fail(place, format!("negative constant {s} (signed values are not supported)"))
                }
                Some(s) => out
                    .ops
                    .push(Op::Const(parse_hex(s).ok_or_else(|| CompileError(format!("{place}: bad hex {s:?}")))?)),
                None => return fail(place, "hexstr value is not a string"),
            },
            "bool" => match val.as_bool() {
                Some(b) => out.ops.push(Op::Const(b as Value)),
                None => return fail(place, "bool value is not true/false"),
            },
            "runtime_data" => match val.as_u64() {
                Some(i) if (i as u32) < scope.params => out.ops.push(Op::Param(i as u32)),
                _ => return fail(place, format!("runtime_data {val} is not a parameter of this action")),
            },
            "lookahead" => {
                let a = val.as_array().filter(|a| a.len() == 2);
                let (Some(off), Some(w)) = (a.and_then(|a| a[0].as_u64()), a.and_then(|a| a[1].as_u64())) else {
                    return fail(place, format!("lookahead is [offset, width], not {val}"));
                };
                if !scope.parser {
                    return fail(place, "lookahead outside the parser");
                }
                if w == 0 || w > 128 || off > 65535 {
                    return fail(place, format!("lookahead of {w} bits at {off} is not supported (1..=128 bits)"));
                }
                out.ops.push(Op::Lookahead { offset: off as u32, width: w as u32 });
            }
            "stack_field" => {
                let pair = val.as_array().filter(|a| a.len() == 2);
                let Some(pair) = pair else { return fail(place, format!("stack_field is [stack, field], not {val}")) };
                let stack = self.stack_ref(&pair[0], place)?;
                let field = self.stack_field_index(stack, &pair[1], place)?;
                out.ops.push(Op::StackLast { stack, field });
            }
            // p4c sometimes wraps an expression in another "expression".
            "expression" if val.get("op").is_none() => self.expr_into(val, scope, place, out, depth + 1)?,
            "expression" => self.op_into(val, scope, place, out, depth)?,
            other => return fail(place, format!("expression type {other:?} is not supported")),
        }
        Ok(())
    }

    fn op_into(&self, v: &Json, scope: Scope, place: &str, out: &mut Expr, depth: u32) -> Result<()> {
        let Some(op) = v.get("op").and_then(Json::as_str) else {
            return fail(place, format!("expression without op: {v}"));
        };
        let left = v.get("left").filter(|l| !l.is_null());
        let right = v.get("right").filter(|r| !r.is_null());
        let sub = |e: Option<&Json>, out: &mut Expr| -> Result<()> {
            match e {
                Some(e) => self.expr_into(e, scope, place, out, depth + 1),
                None => fail(place, format!("operator {op:?} is missing an operand")),
            }
        };
        let bin = match op {
            "+" => Some(BinOp::Add),
            "-" if left.is_some() => Some(BinOp::Sub),
            "*" => Some(BinOp::Mul),
            "/" => Some(BinOp::Div),
            "%" => Some(BinOp::Mod),
            "<<" => Some(BinOp::Shl),
            ">>" => Some(BinOp::Shr),
            "&" => Some(BinOp::And),
            "|" => Some(BinOp::Or),
            "^" => Some(BinOp::Xor),
            "==" => Some(BinOp::Eq),
            "!=" => Some(BinOp::Ne),
            "<" => Some(BinOp::Lt),
            "<=" => Some(BinOp::Le),
            ">" => Some(BinOp::Gt),
            ">=" => Some(BinOp::Ge),
            "and" => Some(BinOp::LAnd),
            "or" => Some(BinOp::LOr),
            "min" => Some(BinOp::Min),
            "max" => Some(BinOp::Max),
            _ => None,
        };
        if let Some(b) = bin {
            sub(left, out)?;
            sub(right, out)?;
            out.ops.push(Op::Bin(b));
            return Ok(());
        }
        let un = match op {
            "not" => Some(UnOp::Not),
            "~" => Some(UnOp::BitNot),
            "-" => Some(UnOp::Neg),
            "b2d" => Some(UnOp::B2d),
            "d2b" => Some(UnOp::D2b),
            _ => None,
        };
        if let Some(u) = un {
            let before = out.ops.len();
            sub(right, out)?;
            // A conversion that changes nothing is left out (one dispatch less per
            // evaluation): `b2d` always (0/1 stay 0/1), `d2b` of an operand that is
            // already 0 or 1 (`isValid()`, a comparison: most conditions). The
            // operand, complete in postfix, ends with the op that made it.
            let boolean = |op: &Op| {
                use BinOp::*;
                matches!(
                    op,
                    Op::Valid(_)
                        | Op::UnionValid(_)
                        | Op::Un(UnOp::Not | UnOp::D2b)
                        | Op::Bin(Eq | Ne | Lt | Le | Gt | Ge | LAnd | LOr)
                )
            };
            let identity = match u {
                UnOp::B2d => true,
                UnOp::D2b => out.ops.len() > before && out.ops.last().is_some_and(boolean),
                _ => false,
            };
            if !identity {
                out.ops.push(Op::Un(u));
            }
            return Ok(());
        }
        match op {
            "valid" => {
                let Some(r) = right else { return fail(place, "valid without a header") };
                out.ops.push(Op::Valid(self.expect_header(r, place)?));
                Ok(())
            }
            "valid_union" => {
                let Some(r) = right else { return fail(place, "valid_union without a union") };
                out.ops.push(Op::UnionValid(self.expect_union(r, place)?));
                Ok(())
            }
            "last_stack_index" | "size_stack" => {
                let Some(r) = right.or(left) else { return fail(place, format!("{op} without a stack")) };
                out.ops.push(Op::StackNext(self.expect_stack(r, place)?));
                if op == "last_stack_index" {
                    out.ops.push(Op::Const(1));
                    out.ops.push(Op::Bin(BinOp::Sub));
                }
                Ok(())
            }
            "access_field" => {
                let (stack, index, field) = self.stack_element_field(v, place)?;
                self.expr_into(index, scope, place, out, depth + 1)?;
                out.ops.push(Op::StackAt { stack, field });
                Ok(())
            }
            "dereference_header_stack" => {
                fail(place, "a stack element chosen at run time is supported only to read or write one of its fields")
            }
            "?" => {
                sub(v.get("cond").filter(|c| !c.is_null()), out)?;
                sub(left, out)?;
                sub(right, out)?;
                out.ops.push(Op::Select);
                Ok(())
            }
            other => fail(place, format!("operator {other:?} is not supported")),
        }
    }

    fn lists(&mut self) -> Result<()> {
        let conv = |c: &Self, l: &json::NamedElements, what: &str, i: usize| -> Result<ListDef> {
            let place = format!("{what}[{i}] {:?}", l.name);
            let fields = l
                .elements
                .iter()
                .enumerate()
                .map(|(k, e)| c.expect_field(e, &format!("{place} elements[{k}]")))
                .collect::<Result<Vec<_>>>()?;
            Ok(ListDef { name: l.name.clone(), json_id: l.id, fields })
        };
        for (i, l) in self.prog.learn_lists.iter().enumerate() {
            let d = conv(self, l, "learn_lists", i)?;
            self.ir.learn_lists.push(d);
        }
        for (i, l) in self.prog.field_lists.iter().enumerate() {
            let d = conv(self, l, "field_lists", i)?;
            self.ir.field_lists.push(d);
        }
        Ok(())
    }

    fn algo(&self, name: &str, place: &str) -> Result<HashAlgo> {
        Ok(match name {
            "crc16" => HashAlgo::Crc16,
            "crc32" => HashAlgo::Crc32,
            "csum16" => HashAlgo::Csum16,
            "identity" => HashAlgo::Identity,
            other => {
                return fail(
                    place,
                    format!("hash algorithm {other:?} is not supported (crc16, crc32, csum16, identity)"),
                )
            }
        })
    }

    /// Hash inputs: fields and constants, with their widths.
    fn hash_inputs(&self, inputs: &[Json], place: &str) -> Result<Vec<(Expr, u32)>> {
        inputs
            .iter()
            .enumerate()
            .map(|(k, e)| {
                let place = format!("{place} input[{k}]");
                match self.typed(e, &place)? {
                    ("field", val) => {
                        // A varbit input (width 0) hashes its bytes of the packet.
                        let f = self.field_or_varbit(val, &place)?;
                        Ok((Expr { ops: vec![Op::Field(f)] }, self.ir.fields[f as usize].width))
                    }
                    ("hexstr", Json::String(s)) => {
                        let v = parse_hex(s).ok_or_else(|| CompileError(format!("{place}: bad hex {s:?}")))?;
                        Ok((Expr::constant(v), hex_bits(s).clamp(8, 128)))
                    }
                    (t, _) => fail(&place, format!("hash input of type {t:?} is not supported (fields and constants)")),
                }
            })
            .collect()
    }

    fn calculations(&mut self) -> Result<()> {
        for (i, c) in self.prog.calculations.iter().enumerate() {
            let place = format!("calculations[{i}] {:?}", c.name);
            let algo = self.algo(&c.algo, &place)?;
            let inputs = self.hash_inputs(&c.input, &place)?;
            self.ir.calcs.push(CalcDef { name: c.name.clone(), algo, inputs });
        }
        Ok(())
    }

    fn table_index(&self, name: &str) -> Option<TableId> {
        let mut n = 0;
        for p in &self.prog.pipelines {
            if let Some(i) = p.tables.iter().position(|t| t.name == name) {
                return Some(n + i as u32);
            }
            n += p.tables.len() as u32;
        }
        None
    }

    fn externs(&mut self) -> Result<()> {
        for (i, c) in self.prog.counter_arrays.iter().enumerate() {
            let place = format!("counter_arrays[{i}] {:?}", c.name);
            let direct = self.binding(c.is_direct, c.binding.as_deref(), &place)?;
            let size = if direct.is_some() { 0 } else { c.size.unwrap_or(0) };
            self.ir.counters.push(CounterDef { name: c.name.clone(), size, direct });
        }
        for (i, m) in self.prog.meter_arrays.iter().enumerate() {
            let place = format!("meter_arrays[{i}] {:?}", m.name);
            let direct = self.binding(m.is_direct, m.binding.as_deref(), &place)?;
            let bytes = match m.unit.as_str() {
                "bytes" => true,
                "packets" => false,
                other => return fail(&place, format!("meter type {other:?} (bytes or packets)")),
            };
            let result = match &m.result_target {
                Some(t) if direct.is_some() => Some(self.field_ref(&Json::from(t.clone()), &place)?),
                None if direct.is_some() => return fail(&place, "a direct meter needs a result_target"),
                _ => None,
            };
            let size = if direct.is_some() { 0 } else { m.size.unwrap_or(0) };
            self.ir.meters.push(MeterDef {
                name: m.name.clone(),
                size,
                direct,
                bytes,
                rate_count: m.rate_count,
                result,
            });
        }
        for r in &self.prog.register_arrays {
            let place = format!("register_arrays {:?}", r.name);
            if r.bitwidth == 0 || r.bitwidth > 128 {
                return fail(&place, format!("register width {} not in 1..=128", r.bitwidth));
            }
            self.ir.registers.push(RegisterDef { name: r.name.clone(), size: r.size, width: r.bitwidth });
        }
        Ok(())
    }

    fn binding(&self, direct: bool, binding: Option<&str>, place: &str) -> Result<Option<TableId>> {
        match (direct, binding) {
            (false, _) => Ok(None),
            (true, Some(t)) => self
                .table_index(t)
                .map(Some)
                .ok_or_else(|| CompileError(format!("{place}: bound to unknown table {t:?}"))),
            (true, None) => fail(place, "direct but bound to no table"),
        }
    }

    fn actions(&mut self) -> Result<()> {
        for (i, a) in self.prog.actions.iter().enumerate() {
            let place = format!("actions[{i}] {:?}", a.name);
            if self.action_ids.insert(a.id, i as ActionId).is_some() {
                return fail(&place, format!("duplicate action id {}", a.id));
            }
            for (k, p) in a.runtime_data.iter().enumerate() {
                if p.bitwidth == 0 || p.bitwidth > 128 {
                    return fail(
                        &format!("{place} runtime_data[{k}] {:?}", p.name),
                        format!("width {} not in 1..=128", p.bitwidth),
                    );
                }
            }
            let scope = Scope { params: a.runtime_data.len() as u32, parser: false };
            let mut body = Vec::with_capacity(a.primitives.len());
            for (k, p) in a.primitives.iter().enumerate() {
                let pplace = format!("{place} primitives[{k}] ({})", p.op);
                body.push(self.primitive(&p.op, &p.parameters, scope, &pplace)?);
            }
            for (k, s) in body.iter().enumerate() {
                if let Stmt::Jump(t) | Stmt::JumpIfZero(_, t) = s {
                    if *t as usize > body.len() {
                        return fail(&format!("{place} primitives[{k}]"), format!("jump to {t} past the end"));
                    }
                }
            }
            self.ir.actions.push(ActionDef {
                name: a.name.clone(),
                json_id: a.id,
                params: a.runtime_data.iter().map(|r| (r.name.clone(), r.bitwidth)).collect(),
                body,
            });
        }
        Ok(())
    }

    fn field_list_ref(&self, v: Option<&Json>, place: &str) -> Result<Option<u32>> {
        let Some(v) = v else { return Ok(None) };
        let id = self.expect_hex(v, place)?;
        match self.ir.field_lists.iter().position(|l| l.json_id as Value == id) {
            Some(i) => Ok(Some(i as u32)),
            None => fail(place, format!("unknown field list id {id}")),
        }
    }

    fn primitive(&self, op: &str, params: &[Json], scope: Scope, place: &str) -> Result<Stmt> {
        let arity = |n: usize| -> Result<()> {
            if params.len() == n {
                Ok(())
            } else {
                fail(place, format!("{op} takes {n} parameters, found {}", params.len()))
            }
        };
        let e = |i: usize| self.expr(&params[i], scope, place);
        Ok(match op {
            "assign" | "modify_field" => {
                arity(2)?;
                match self.typed(&params[0], place)? {
                    ("header", _) => Stmt::AssignHeader {
                        dst: self.expect_header(&params[0], place)?,
                        src: self.expect_header(&params[1], place)?,
                    },
                    ("field", val) => Stmt::Assign { dst: self.field_ref(val, place)?, expr: e(1)? },
                    ("header_stack", _) => Stmt::AssignStack {
                        dst: self.expect_stack(&params[0], place)?,
                        src: self.expect_stack(&params[1], place)?,
                    },
                    ("header_union", _) => Stmt::AssignUnion {
                        dst: self.expect_union(&params[0], place)?,
                        src: self.expect_union(&params[1], place)?,
                    },
                    ("expression", val) => {
                        let val = match self.typed(val, place) {
                            Ok(("expression", inner)) => inner,
                            _ => val,
                        };
                        let (stack, index, field) = self.stack_element_field(val, place)?;
                        Stmt::AssignAt { stack, index: self.expr(index, scope, place)?, field, expr: e(1)? }
                    }
                    (t, _) => return fail(place, format!("assignment to {t:?} is not supported")),
                }
            }
            "assign_header" => {
                arity(2)?;
                Stmt::AssignHeader {
                    dst: self.expect_header(&params[0], place)?,
                    src: self.expect_header(&params[1], place)?,
                }
            }
            "assign_VL" => {
                arity(2)?;
                let side = |i: usize| -> Result<HeaderId> {
                    let f = match self.typed(&params[i], place)? {
                        ("field", val) => self.field_or_varbit(val, place)?,
                        (t, _) => return fail(place, format!("expected a varbit field, found {t:?}")),
                    };
                    let h = self.ir.fields[f as usize].header;
                    match self.ir.headers[h as usize].varbit {
                        Some(v) if v.field == f => Ok(h),
                        _ => fail(place, format!("{} is not a varbit field", self.ir.fields[f as usize].name)),
                    }
                };
                let (dst, src) = (side(0)?, side(1)?);
                if self.ir.headers[dst as usize].varbit.map(|v| v.max_bytes)
                    < self.ir.headers[src as usize].varbit.map(|v| v.max_bytes)
                {
                    return fail(place, "the destination varbit field is smaller than the source");
                }
                Stmt::AssignVarbit { dst, src }
            }
            "assign_header_stack" => {
                arity(2)?;
                Stmt::AssignStack {
                    dst: self.expect_stack(&params[0], place)?,
                    src: self.expect_stack(&params[1], place)?,
                }
            }
            "assign_union" => {
                arity(2)?;
                Stmt::AssignUnion {
                    dst: self.expect_union(&params[0], place)?,
                    src: self.expect_union(&params[1], place)?,
                }
            }
            "push" | "pop" => {
                arity(2)?;
                let stack = self.expect_stack(&params[0], place)?;
                let n = self.expect_hex(&params[1], place)?.min(u32::MAX as Value) as u32;
                if op == "push" {
                    Stmt::PushFront { stack, n }
                } else {
                    Stmt::PopFront { stack, n }
                }
            }
            "add_header" => {
                arity(1)?;
                Stmt::SetValid(self.expect_header(&params[0], place)?)
            }
            "remove_header" => {
                arity(1)?;
                Stmt::SetInvalid(self.expect_header(&params[0], place)?)
            }
            "mark_to_drop" | "drop" => Stmt::MarkToDrop,
            "count" => {
                arity(2)?;
                let n: Vec<String> = self.ir.counters.iter().map(|c| c.name.clone()).collect();
                Stmt::Count { counter: self.named(&params[0], "counter_array", &n, place)?, index: e(1)? }
            }
            "execute_meter" => {
                arity(3)?;
                let n: Vec<String> = self.ir.meters.iter().map(|c| c.name.clone()).collect();
                Stmt::ExecuteMeter {
                    meter: self.named(&params[0], "meter_array", &n, place)?,
                    index: e(1)?,
                    dst: self.expect_field(&params[2], place)?,
                }
            }
            "register_read" => {
                arity(3)?;
                let n: Vec<String> = self.ir.registers.iter().map(|c| c.name.clone()).collect();
                Stmt::RegisterRead {
                    dst: self.expect_field(&params[0], place)?,
                    register: self.named(&params[1], "register_array", &n, place)?,
                    index: e(2)?,
                }
            }
            "register_write" => {
                arity(3)?;
                let n: Vec<String> = self.ir.registers.iter().map(|c| c.name.clone()).collect();
                Stmt::RegisterWrite {
                    register: self.named(&params[0], "register_array", &n, place)?,
                    index: e(1)?,
                    value: e(2)?,
                }
            }
            "clone_ingress_pkt_to_egress" | "clone_egress_pkt_to_egress" => {
                if params.is_empty() || params.len() > 2 {
                    return fail(place, format!("{op} takes a session and a field list"));
                }
                Stmt::Clone { session: e(0)?, field_list: self.field_list_ref(params.get(1), place)? }
            }
            "resubmit" | "recirculate" => {
                if params.len() > 1 {
                    return fail(place, format!("{op} takes one field list"));
                }
                let fl = self.field_list_ref(params.first(), place)?;
                if op == "resubmit" {
                    Stmt::Resubmit(fl)
                } else {
                    Stmt::Recirculate(fl)
                }
            }
            "truncate" => {
                arity(1)?;
                Stmt::Truncate(e(0)?)
            }
            "modify_field_with_hash_based_offset" => {
                arity(4)?;
                let n: Vec<String> = self.ir.calcs.iter().map(|c| c.name.clone()).collect();
                Stmt::Hash {
                    dst: self.expect_field(&params[0], place)?,
                    base: e(1)?,
                    calc: self.named(&params[2], "calculation", &n, place)?,
                    size: e(3)?,
                }
            }
            "generate_digest" => {
                arity(2)?;
                let id = self.expect_hex(&params[1], place)?;
                match self.ir.learn_lists.iter().position(|l| l.json_id as Value == id) {
                    Some(i) => Stmt::Digest { list: i as u32 },
                    None => return fail(place, format!("unknown learn list id {id}")),
                }
            }
            "exit" => Stmt::Exit,
            "log_msg" => Stmt::Log,
            "_jump" => {
                arity(1)?;
                Stmt::Jump(self.expect_hex(&params[0], place)? as u32)
            }
            "_jump_if_zero" => {
                arity(2)?;
                Stmt::JumpIfZero(e(0)?, self.expect_hex(&params[1], place)? as u32)
            }
            "assert" | "assume" => {
                arity(1)?;
                Stmt::Assert(e(0)?)
            }
            other => return fail(place, format!("primitive {other:?} is not supported")),
        })
    }

    fn value_sets(&mut self) -> Result<()> {
        for v in &self.prog.parse_vsets {
            let width = v.compressed_bitwidth.unwrap_or_else(|| v.bitwidths.iter().map(|w| w.div_ceil(8) * 8).sum());
            if width == 0 || width > 128 {
                return fail(&format!("parse_vsets {:?}", v.name), format!("key width {width} not in 1..=128"));
            }
            self.ir.value_sets.push(ValueSetDef { name: v.name.clone(), width, max_size: v.max_size.unwrap_or(0) });
        }
        Ok(())
    }

    fn pipelines(&mut self) -> Result<()> {
        // Profiles first: tables refer to them.
        let mut profile_names = vec![];
        for (pi, p) in self.prog.pipelines.iter().enumerate() {
            for (ai, ap) in p.action_profiles.iter().enumerate() {
                let place = format!("pipelines[{pi}] {:?} action_profiles[{ai}] {:?}", p.name, ap.name);
                let selector = match &ap.selector {
                    None => None,
                    Some(s) => {
                        Some((self.algo(&s.algo, &place)?, self.hash_inputs(&s.input, &format!("{place} selector"))?))
                    }
                };
                profile_names.push(ap.name.clone());
                self.ir.profiles.push(ProfileDef { name: ap.name.clone(), max_size: ap.max_size, selector });
            }
        }
        // Tables and conditionals get global ids in pipeline order.
        let mut node_of: Vec<HashMap<&str, Node>> = vec![];
        let (mut tn, mut cn) = (0u32, 0u32);
        for p in &self.prog.pipelines {
            let mut m = HashMap::new();
            for t in &p.tables {
                m.insert(t.name.as_str(), Node::Table(tn));
                tn += 1;
            }
            for c in &p.conditionals {
                m.insert(c.name.as_str(), Node::Cond(cn));
                cn += 1;
            }
            node_of.push(m);
        }
        for (pi, p) in self.prog.pipelines.iter().enumerate() {
            let pplace = format!("pipelines[{pi}] {:?}", p.name);
            let nodes = &node_of[pi];
            let next = |n: &Option<String>, place: &str| -> Result<Option<Node>> {
                match n {
                    None => Ok(None),
                    Some(n) => nodes
                        .get(n.as_str())
                        .map(|x| Some(*x))
                        .ok_or_else(|| CompileError(format!("{place}: unknown next node {n:?}"))),
                }
            };
            let first = next(&p.init_table, &pplace)?;
            match p.name.as_str() {
                "ingress" => self.ir.ingress = first,
                "egress" => self.ir.egress = first,
                other => {
                    return fail(&pplace, format!("v1model pipelines are named ingress and egress, not {other:?}"))
                }
            }
            for (ti, t) in p.tables.iter().enumerate() {
                let place = format!("{pplace} tables[{ti}] {:?}", t.name);
                let def = self.table(t, &place, &profile_names, &next)?;
                self.ir.tables.push(def);
            }
            for (ci, c) in p.conditionals.iter().enumerate() {
                let place = format!("{pplace} conditionals[{ci}] {:?}", c.name);
                let expr = self.expr(&c.expression, NO_PARAMS, &place)?;
                self.ir.conditionals.push(CondDef {
                    name: c.name.clone(),
                    expr,
                    true_next: next(&c.true_next, &place)?,
                    false_next: next(&c.false_next, &place)?,
                });
            }
        }
        if self.ir.ingress.is_some() as u8 + self.ir.egress.is_some() as u8 == 0
            && self.prog.pipelines[0].name != "ingress"
        {
            return fail("pipelines", "no ingress pipeline");
        }
        Ok(())
    }

    fn action_call(
        &self,
        t: &json::Table,
        actions: &[ActionId],
        id: u32,
        data: &[String],
        place: &str,
    ) -> Result<ActionCall> {
        let Some(&a) = self.action_ids.get(&id) else { return fail(place, format!("unknown action id {id}")) };
        let Some(slot) = actions.iter().position(|x| *x == a) else {
            return fail(place, format!("action id {id} is not one of table {:?}'s actions", t.name));
        };
        let def = &self.ir.actions[a as usize];
        if data.len() != def.params.len() {
            return fail(
                place,
                format!("action {:?} takes {} parameters, {} given", def.name, def.params.len(), data.len()),
            );
        }
        let args = data
            .iter()
            .zip(&def.params)
            .map(|(d, (n, w))| match parse_hex(d) {
                Some(v) if v <= mask_of(*w) => Ok(v),
                _ => fail(place, format!("parameter {n:?} = {d:?} is not a {w}-bit value")),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ActionCall { slot: slot as u32, args: args.into() })
    }

    fn table(&self, t: &json::Table, place: &str, profiles: &[String], next: NextFn<'_>) -> Result<TableDef> {
        let mut keys = vec![];
        for (k, key) in t.key.iter().enumerate() {
            let kplace = format!("{place} key[{k}]");
            let kind = match key.match_type.as_str() {
                "exact" | "valid" => MatchKind::Exact,
                "lpm" => MatchKind::Lpm,
                "ternary" => MatchKind::Ternary,
                "range" => MatchKind::Range,
                "optional" => MatchKind::Optional,
                other => return fail(&kplace, format!("match kind {other:?} is not supported")),
            };
            let (mut expr, width) = match (&key.target, key.match_type.as_str()) {
                (Json::String(h), "valid") => (Expr { ops: vec![Op::Valid(self.header_ref(h, &kplace)?)] }, 1),
                (target, _) => match self.field_op(target, &kplace)? {
                    Op::Field(f) => {
                        (Expr { ops: vec![Op::Field(self.not_varbit(f, &kplace)?)] }, self.ir.fields[f as usize].width)
                    }
                    op => (Expr { ops: vec![op] }, 1),
                },
            };
            match &key.mask {
                None | Some(Json::Null) => {}
                Some(Json::String(m)) => {
                    let m = parse_hex(m).ok_or_else(|| CompileError(format!("{kplace}: bad mask {m:?}")))?;
                    expr.ops.push(Op::Const(m));
                    expr.ops.push(Op::Bin(BinOp::And));
                }
                Some(other) => return fail(&kplace, format!("bad mask {other}")),
            }
            let name = key.name.clone().unwrap_or_else(|| format!("{}", key.target));
            keys.push(KeyDef { name, kind, expr, width });
        }
        if keys.len() > MAX_KEYS {
            return fail(place, format!("{} key fields (at most {MAX_KEYS})", keys.len()));
        }
        if t.actions.len() != t.action_ids.len() {
            return fail(place, "actions and action_ids differ in length");
        }
        let mut actions = vec![];
        for id in &t.action_ids {
            match self.action_ids.get(id) {
                Some(a) => actions.push(*a),
                None => return fail(place, format!("unknown action id {id}")),
            }
        }
        let (mut hit_next, mut miss_next) = (None, None);
        let mut action_next = vec![None; actions.len()];
        let mut set = vec![false; actions.len()];
        for (name, n) in &t.next_tables {
            let n = next(n, &format!("{place} next_tables[{name:?}]"))?;
            match name.as_str() {
                "__HIT__" => hit_next = Some(n),
                "__MISS__" => miss_next = Some(n),
                _ => {
                    let mut found = false;
                    for (i, a) in t.actions.iter().enumerate() {
                        if a == name {
                            action_next[i] = n;
                            set[i] = true;
                            found = true;
                        }
                    }
                    if !found {
                        return fail(place, format!("next_tables names {name:?}, which is not one of its actions"));
                    }
                }
            }
        }
        let base = next(&t.base_default_next, place)?;
        for (i, s) in set.iter().enumerate() {
            if !s {
                action_next[i] = base;
            }
        }
        if hit_next.is_some() != miss_next.is_some() {
            // BMv2: the other branch falls through to base_default_next.
            hit_next = Some(hit_next.unwrap_or(base));
            miss_next = Some(miss_next.unwrap_or(base));
        }
        let kind = match t.kind.as_str() {
            "simple" => TableKind::Direct,
            "indirect" | "indirect_ws" => TableKind::Indirect,
            other => return fail(place, format!("table type {other:?} is not supported")),
        };
        let profile = match (&t.action_profile, kind) {
            (Some(p), TableKind::Indirect) => match profiles.iter().position(|x| x == p) {
                Some(i) => Some(i as u32),
                None => return fail(place, format!("unknown action profile {p:?}")),
            },
            (None, TableKind::Indirect) => return fail(place, "an indirect table needs an action_profile"),
            _ => None,
        };
        let (default_action, default_const) = match &t.default_entry {
            Some(d) => (
                Some(self.action_call(t, &actions, d.action_id, &d.action_data, &format!("{place} default_entry"))?),
                d.action_const || d.action_entry_const,
            ),
            // BMv2: a table without a default entry runs no action on a miss.
            None => (None, false),
        };
        let mut const_entries = vec![];
        for (ei, e) in t.entries.iter().enumerate() {
            const_entries.push(self.const_entry(t, &actions, &keys, e, &format!("{place} entries[{ei}]"))?);
        }
        let this = self.table_index(&t.name).unwrap_or(0);
        let direct_counter = if t.with_counters {
            match self.ir.counters.iter().position(|c| c.direct == Some(this)) {
                Some(c) => Some(c as u32),
                None => return fail(place, "with_counters but no counter array is bound to it"),
            }
        } else {
            None
        };
        let direct_meter = match &t.direct_meters {
            Some(m) => match self.ir.meters.iter().position(|x| x.name == *m) {
                Some(i) => Some(i as u32),
                None => return fail(place, format!("unknown direct meter {m:?}")),
            },
            None => None,
        };
        Ok(TableDef {
            name: t.name.clone(),
            json_id: t.id,
            keys,
            kind,
            profile,
            max_size: t.max_size,
            actions,
            action_next,
            base_next: base,
            hit_next,
            miss_next,
            default_action,
            default_const,
            const_entries,
            direct_counter,
            direct_meter,
            support_timeout: t.support_timeout,
        })
    }

    fn const_entry(
        &self,
        t: &json::Table,
        actions: &[ActionId],
        keys: &[KeyDef],
        e: &Json,
        place: &str,
    ) -> Result<ConstEntry> {
        let Some(Json::Array(mk)) = e.get("match_key") else { return fail(place, "no match_key") };
        if mk.len() != keys.len() {
            return fail(place, format!("{} key values for {} key fields", mk.len(), keys.len()));
        }
        let hex = |v: Option<&Json>, what: &str| -> Result<Value> {
            match v.and_then(Json::as_str).and_then(parse_hex) {
                Some(x) => Ok(x),
                None => fail(place, format!("bad or missing {what}")),
            }
        };
        let mut key = vec![];
        for (m, k) in mk.iter().zip(keys) {
            key.push(match m.get("match_type").and_then(Json::as_str) {
                Some("exact") | Some("valid") => KeyValue::Exact(hex(m.get("key"), "key")?),
                Some("lpm") => KeyValue::Lpm {
                    value: hex(m.get("key"), "key")?,
                    prefix: m
                        .get("prefix_length")
                        .and_then(Json::as_u64)
                        .filter(|p| *p <= k.width as u64)
                        .ok_or_else(|| CompileError(format!("{place}: bad prefix_length")))?
                        as u32,
                },
                Some("ternary") | Some("optional") => {
                    KeyValue::Ternary { value: hex(m.get("key"), "key")?, mask: hex(m.get("mask"), "mask")? }
                }
                Some("range") => {
                    KeyValue::Range { low: hex(m.get("start"), "start")?, high: hex(m.get("end"), "end")? }
                }
                other => return fail(place, format!("match type {other:?}")),
            });
        }
        let Some(ae) = e.get("action_entry") else { return fail(place, "no action_entry") };
        let id =
            ae.get("action_id").and_then(Json::as_u64).ok_or_else(|| CompileError(format!("{place}: no action_id")))?;
        let data: Vec<String> = match ae.get("action_data") {
            Some(Json::Array(a)) => a.iter().map(|x| x.as_str().unwrap_or("").to_string()).collect(),
            _ => vec![],
        };
        let action = self.action_call(t, actions, id as u32, &data, place)?;
        // BMv2: a smaller priority number wins; the IR uses "higher wins" (> 0), as
        // the entries loader does. Exact/LPM tables take no priority.
        let needs = keys.iter().any(|k| matches!(k.kind, MatchKind::Ternary | MatchKind::Range | MatchKind::Optional));
        let priority = match e.get("priority").and_then(Json::as_i64) {
            _ if !needs => 0,
            Some(p) if (0..i32::MAX as i64).contains(&p) => i32::MAX - p as i32,
            other => return fail(place, format!("priority {other:?} not in 0..{}", i32::MAX)),
        };
        Ok(ConstEntry { key, action, priority })
    }

    fn checksums(&mut self) -> Result<()> {
        for (i, c) in self.prog.checksums.iter().enumerate() {
            let place = format!("checksums[{i}] {:?}", c.name);
            if c.kind != "generic" {
                return fail(&place, format!("checksum type {:?} is not supported (generic)", c.kind));
            }
            let field = self.field_ref(&Json::from(c.target.clone()), &place)?;
            let Some(calc) = self.ir.calcs.iter().position(|x| x.name == c.calculation) else {
                return fail(&place, format!("unknown calculation {:?}", c.calculation));
            };
            let cond = match &c.if_cond {
                None => None,
                Some(e) => Some(self.expr(e, NO_PARAMS, &place)?),
            };
            let mut def = ChecksumDef { name: c.name.clone(), field, calc: calc as u32, cond, whole_header: false };
            def.whole_header = whole_header(&self.ir, &def);
            if c.verify {
                self.ir.verify_checksums.push(def.clone());
            }
            if c.update {
                self.ir.update_checksums.push(def);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
