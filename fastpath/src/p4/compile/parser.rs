//! The parser (states, extracts, selects, value sets) and the deparser.

use super::*;

impl Compiler<'_> {
    pub(super) fn parser(&mut self) -> Result<()> {
        let parser = &self.prog.parsers[0];
        let index: HashMap<&str, StateId> =
            parser.parse_states.iter().enumerate().map(|(i, s)| (s.name.as_str(), i as StateId)).collect();
        let scope = Scope { params: 0, parser: true };
        let state_ref = |name: &Option<String>, place: &str| -> Result<Option<StateId>> {
            match name {
                None => Ok(None),
                Some(n) => index
                    .get(n.as_str())
                    .map(|s| Some(*s))
                    .ok_or_else(|| CompileError(format!("{place}: unknown state {n:?}"))),
            }
        };
        self.ir.start_state = match index.get(parser.init_state.as_str()) {
            Some(s) => *s,
            None => return fail("parsers[0]", format!("unknown init_state {:?}", parser.init_state)),
        };
        for (si, s) in parser.parse_states.iter().enumerate() {
            let place = format!("parse_states[{si}] {:?}", s.name);
            let mut ops = vec![];
            for (k, o) in s.parser_ops.iter().enumerate() {
                let oplace = format!("{place} parser_ops[{k}] ({})", o.op);
                let p = &o.parameters;
                ops.push(match o.op.as_str() {
                    "extract" => {
                        let Some(x) = p.first().filter(|_| p.len() == 1) else {
                            return fail(&oplace, "extract takes one header");
                        };
                        match self.typed(x, &oplace)? {
                            ("regular", Json::String(h)) => {
                                let h = self.header_ref(h, &oplace)?;
                                if self.ir.headers[h as usize].metadata {
                                    return fail(&oplace, "cannot extract a metadata header");
                                }
                                ParseOp::Extract(h)
                            }
                            ("stack", val) => ParseOp::ExtractNext(self.stack_ref(val, &oplace)?),
                            (t, _) => return fail(&oplace, format!("extract of {t:?} is not supported")),
                        }
                    }
                    "extract_VL" => {
                        if p.len() != 2 {
                            return fail(&oplace, "extract_VL takes a header and a length in bits");
                        }
                        let h = match self.typed(&p[0], &oplace)? {
                            ("regular", Json::String(h)) => self.header_ref(h, &oplace)?,
                            (t, _) => return fail(&oplace, format!("extract_VL of {t:?} is not supported")),
                        };
                        if self.ir.headers[h as usize].varbit.is_none() {
                            return fail(&oplace, "extract with a length of a header without a varbit field");
                        }
                        ParseOp::ExtractVarbit(h, self.expr(&p[1], scope, &oplace)?)
                    }
                    "set" => {
                        if p.len() != 2 {
                            return fail(&oplace, "set takes a field and a value");
                        }
                        ParseOp::Stmt(Stmt::Assign {
                            dst: self.expect_field(&p[0], &oplace)?,
                            expr: self.expr(&p[1], scope, &oplace)?,
                        })
                    }
                    "verify" => {
                        if p.len() != 2 {
                            return fail(&oplace, "verify takes a condition and an error");
                        }
                        ParseOp::Verify {
                            cond: self.expr(&p[0], scope, &oplace)?,
                            error: self.expr(&p[1], scope, &oplace)?,
                        }
                    }
                    "advance" => {
                        if p.len() != 1 {
                            return fail(&oplace, "advance takes a bit count");
                        }
                        ParseOp::Advance(self.expr(&p[0], scope, &oplace)?)
                    }
                    "primitive" => {
                        let Some(inner) = p.first().filter(|_| p.len() == 1) else {
                            return fail(&oplace, "primitive takes one call");
                        };
                        let (Some(op), Some(Json::Array(params))) =
                            (inner.get("op").and_then(Json::as_str), inner.get("parameters"))
                        else {
                            return fail(&oplace, "primitive needs op and parameters");
                        };
                        let stmt = self.primitive(op, params, scope, &format!("{oplace} {op}"))?;
                        if matches!(stmt, Stmt::Jump(_) | Stmt::JumpIfZero(..) | Stmt::Exit) {
                            return fail(&oplace, format!("{op} in a parser is not supported"));
                        }
                        ParseOp::Stmt(stmt)
                    }
                    other => return fail(&oplace, format!("parser op {other:?} is not supported")),
                });
            }
            let mut key = vec![];
            let mut key_bits = 0;
            for (k, kv) in s.transition_key.iter().enumerate() {
                let kplace = format!("{place} transition_key[{k}]");
                let e = self.expr(kv, scope, &kplace)?;
                let width = match e.ops.as_slice() {
                    [Op::Field(f)] => self.ir.fields[*f as usize].width,
                    [Op::Lookahead { width, .. }] => *width,
                    [Op::StackLast { stack, field }] => {
                        let first = self.ir.stacks[*stack as usize].headers[0];
                        self.ir.fields[(self.ir.headers[first as usize].fields.start + field) as usize].width
                    }
                    [Op::Valid(_)] => 1,
                    _ => return fail(&kplace, "select keys must be fields or lookaheads"),
                };
                let width = width.div_ceil(8) * 8;
                key_bits += width;
                key.push((e, width));
            }
            if key_bits > 128 {
                return fail(&place, format!("select key of {key_bits} bits (at most 128)"));
            }
            let mut transitions = vec![];
            for (k, t) in s.transitions.iter().enumerate() {
                let tplace = format!("{place} transitions[{k}]");
                let mask_of_t = |m: &Option<Json>| -> Result<Value> {
                    match m {
                        None | Some(Json::Null) => Ok(mask_of(key_bits)),
                        Some(Json::String(s)) => {
                            parse_hex(s).ok_or_else(|| CompileError(format!("{tplace}: bad mask {s:?}")))
                        }
                        Some(other) => fail(&tplace, format!("bad mask {other}")),
                    }
                };
                let kind = match t.kind.as_str() {
                    "default" => TransitionKind::Default,
                    // Older JSON: no type, and the value "default".
                    "hexstr" if t.value.as_ref().and_then(Json::as_str) == Some("default") => TransitionKind::Default,
                    "hexstr" => {
                        let Some(Json::String(v)) = &t.value else {
                            return fail(&tplace, "hexstr transition without a value");
                        };
                        let value = parse_hex(v).ok_or_else(|| CompileError(format!("{tplace}: bad value {v:?}")))?;
                        let mask = mask_of_t(&t.mask)?;
                        TransitionKind::Value { value: value & mask, mask }
                    }
                    "parse_vset" => {
                        let Some(Json::String(n)) = &t.value else {
                            return fail(&tplace, "parse_vset transition without a set name");
                        };
                        let Some(set) = self.ir.value_sets.iter().position(|v| v.name == *n) else {
                            return fail(&tplace, format!("unknown value set {n:?}"));
                        };
                        TransitionKind::ValueSet { set: set as u32, mask: mask_of_t(&t.mask)? }
                    }
                    other => return fail(&tplace, format!("transition type {other:?} is not supported")),
                };
                transitions.push(TransitionDef { kind, next: state_ref(&t.next_state, &tplace)? });
            }
            self.ir.states.push(StateDef { name: s.name.clone(), ops, key, transitions });
        }
        Ok(())
    }

    pub(super) fn deparser(&mut self) -> Result<()> {
        let d = &self.prog.deparsers[0];
        if let Some(p) = d.primitives.first() {
            return fail("deparsers[0] primitives", format!("deparser primitives are not supported ({p})"));
        }
        for (i, h) in d.order.iter().enumerate() {
            let h = self.header_ref(h, &format!("deparsers[0] order[{i}]"))?;
            self.ir.deparser.push(h);
        }
        Ok(())
    }
}
