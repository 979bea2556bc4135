//! Header layout: header types and instances (fields, widths, varbit fields), header
//! stacks and unions, and the references to them that expressions and primitives use.

use super::*;

impl Compiler<'_> {
    pub(super) fn headers(&mut self) -> Result<()> {
        let types: HashMap<&str, &json::HeaderType> =
            self.prog.header_types.iter().map(|t| (t.name.as_str(), t)).collect();
        for (hi, h) in self.prog.headers.iter().enumerate() {
            let place = format!("headers[{hi}] {:?}", h.name);
            let Some(ty) = types.get(h.header_type.as_str()) else {
                return fail(&place, format!("unknown header type {:?}", h.header_type));
            };
            let specs = ty.field_specs().map_err(|e| CompileError(format!("{place}: {}", e.0)))?;
            let id = self.ir.headers.len() as HeaderId;
            if self.header_ids.insert(&h.name, id).is_some() {
                return fail(&place, "duplicate header name");
            }
            let first = self.ir.fields.len() as FieldId;
            let mut bit = 0u32;
            let mut varbit = None;
            for (k, s) in specs.iter().enumerate() {
                let fplace = format!("{place} (type {:?}) field {:?}", ty.name, s.name);
                let Some(width) = s.width else {
                    if k + 1 != specs.len() {
                        return fail(&fplace, "a varbit field must be its header's last field");
                    }
                    if h.metadata {
                        return fail(&fplace, "a varbit field in metadata is not supported");
                    }
                    let fixed = bit / 8;
                    let max_bytes = match ty.max_length {
                        Some(m) if m > fixed && bit.is_multiple_of(8) => m - fixed,
                        other => {
                            return fail(
                                &fplace,
                                format!("varbit needs a max_length past the fixed {fixed} bytes, not {other:?}"),
                            )
                        }
                    };
                    let f = self.ir.fields.len() as FieldId;
                    self.field_ids.insert((h.name.clone(), s.name.clone()), f);
                    self.ir.fields.push(FieldDef {
                        name: format!("{}.{}", h.name, s.name),
                        header: id,
                        width: 0,
                        bit_offset: bit,
                        set_bit: set_bit(f - first),
                        mask: 0,
                    });
                    varbit = Some(Varbit { field: f, max_bytes, base: self.varbit_bytes });
                    self.varbit_bytes += max_bytes;
                    continue;
                };
                if width > 128 {
                    return fail(
                        &fplace,
                        format!("fields wider than 128 bits are not supported (this one is {width})"),
                    );
                }
                if s.signed {
                    return fail(&fplace, "signed fields (int<N>) are not supported yet");
                }
                if s.saturating {
                    return fail(&fplace, "saturating fields are not supported yet");
                }
                let f = self.ir.fields.len() as FieldId;
                self.field_ids.insert((h.name.clone(), s.name.clone()), f);
                self.ir.fields.push(FieldDef {
                    name: format!("{}.{}", h.name, s.name),
                    header: id,
                    width,
                    bit_offset: bit,
                    set_bit: set_bit(f - first),
                    mask: mask_of(width),
                });
                bit += width;
            }
            if !h.metadata && !bit.is_multiple_of(8) {
                return fail(&place, format!("header is {bit} bits, not a whole number of bytes"));
            }
            let fields = first..self.ir.fields.len() as FieldId;
            let loads = match h.metadata {
                true => vec![],
                false => FieldLoad::plan(&self.ir.fields[first as usize..fields.end as usize]),
            };
            let load_span = loads.iter().map(|l| l.byte as u32 + 8).max().unwrap_or(0);
            self.ir.headers.push(HeaderDef {
                name: h.name.clone(),
                type_name: ty.name.clone(),
                metadata: h.metadata,
                fields,
                bytes: bit / 8,
                union: None,
                varbit,
                loads,
                load_span,
            });
        }
        for (alias, (h, f)) in &self.prog.field_aliases {
            self.aliases.insert(alias.clone(), (h.as_str(), f.as_str()));
        }
        self.stacks_and_unions()
    }

    /// Header stacks and unions: their elements and members, by JSON header id.
    pub(super) fn stacks_and_unions(&mut self) -> Result<()> {
        let by_json_id: HashMap<u32, HeaderId> =
            self.prog.headers.iter().enumerate().map(|(i, h)| (h.id, i as HeaderId)).collect();
        let member = |ids: &[u32], place: &str| -> Result<Vec<HeaderId>> {
            let mut out = Vec::with_capacity(ids.len());
            for (k, id) in ids.iter().enumerate() {
                let Some(h) = by_json_id.get(id) else {
                    return fail(&format!("{place} header_ids[{k}]"), format!("no header has id {id}"));
                };
                if self.ir.headers[*h as usize].metadata {
                    return fail(&format!("{place} header_ids[{k}]"), "a metadata instance cannot be a member");
                }
                if out.contains(h) {
                    return fail(&format!("{place} header_ids[{k}]"), format!("header id {id} is listed twice"));
                }
                out.push(*h);
            }
            Ok(out)
        };
        let mut stacks = vec![];
        for (i, st) in self.prog.header_stacks.iter().enumerate() {
            let place = format!("header_stacks[{i}] {:?}", st.name);
            let headers = member(&st.header_ids, &place)?;
            if headers.is_empty() || headers.len() != st.size as usize {
                return fail(&place, format!("size {} but {} elements", st.size, headers.len()));
            }
            if let Some(h) = headers.iter().find(|h| self.ir.headers[**h as usize].type_name != st.header_type) {
                return fail(
                    &place,
                    format!(
                        "element {:?} is not of the stack's type {:?}",
                        self.ir.headers[*h as usize].name, st.header_type
                    ),
                );
            }
            if self.prog.header_stacks[..i].iter().any(|o| o.name == st.name) {
                return fail(&place, "duplicate stack name");
            }
            stacks.push(StackDef { name: st.name.clone(), headers });
        }
        let mut unions = vec![];
        for (i, u) in self.prog.header_unions.iter().enumerate() {
            let place = format!("header_unions[{i}] {:?}", u.name);
            unions.push(UnionDef { name: u.name.clone(), headers: member(&u.header_ids, &place)? });
        }
        for (i, u) in unions.iter().enumerate() {
            for h in &u.headers {
                let hd = &mut self.ir.headers[*h as usize];
                if hd.union.is_some() {
                    return fail(
                        &format!("header_unions[{i}] {:?}", u.name),
                        format!("header {:?} is already a member of another union", hd.name),
                    );
                }
                hd.union = Some(i as u32);
            }
        }
        self.ir.stacks = stacks;
        self.ir.unions = unions;
        Ok(())
    }

    pub(super) fn stack_ref(&self, v: &Json, place: &str) -> Result<u32> {
        match v.as_str().and_then(|n| self.ir.stack(n)) {
            Some(s) => Ok(s),
            None => fail(place, format!("unknown header stack {v}")),
        }
    }

    pub(super) fn union_ref(&self, v: &Json, place: &str) -> Result<u32> {
        match v.as_str().and_then(|n| self.ir.unions.iter().position(|u| u.name == n)) {
            Some(u) => Ok(u as u32),
            None => fail(place, format!("unknown header union {v}")),
        }
    }

    /// A field's index within a stack's element type.
    pub(super) fn stack_field_index(&self, stack: u32, name: &Json, place: &str) -> Result<u32> {
        let first = self.ir.stacks[stack as usize].headers[0];
        let hd = &self.ir.headers[first as usize];
        let found = name.as_str().and_then(|n| self.field_ids.get(&(hd.name.clone(), n.to_string())));
        match found {
            Some(f) => Ok(f - hd.fields.start),
            None => fail(place, format!("stack {:?} has no field {name}", self.ir.stacks[stack as usize].name)),
        }
    }

    /// `{"type": "header_stack", "value": name}`.
    pub(super) fn expect_stack(&self, v: &Json, place: &str) -> Result<u32> {
        match self.typed(v, place)? {
            ("header_stack", val) => self.stack_ref(val, place),
            (t, _) => fail(place, format!("expected a header stack, found {t:?}")),
        }
    }

    /// `{"type": "header_union", "value": name}`.
    pub(super) fn expect_union(&self, v: &Json, place: &str) -> Result<u32> {
        match self.typed(v, place)? {
            ("header_union", val) => self.union_ref(val, place),
            (t, _) => fail(place, format!("expected a header union, found {t:?}")),
        }
    }

    /// `access_field(dereference_header_stack(stack, index), field)`, the form p4c gives
    /// `stack[i].f` with a run-time `i`: the stack, the index expression and the field.
    pub(super) fn stack_element_field<'j>(&self, v: &'j Json, place: &str) -> Result<(u32, &'j Json, u32)> {
        let inner = match v.get("op").and_then(Json::as_str) {
            Some("access_field") => v,
            _ => return fail(place, format!("expected stack[index].field, found {v}")),
        };
        let (Some(left), Some(field)) = (inner.get("left"), inner.get("right").and_then(Json::as_u64)) else {
            return fail(place, "access_field needs a header and a field offset");
        };
        let deref = match self.typed(left, place)? {
            ("expression", e) if e.get("op").and_then(Json::as_str) == Some("dereference_header_stack") => e,
            ("expression", e) if e.get("op").is_none() => match self.typed(e, place)? {
                ("expression", e2) if e2.get("op").and_then(Json::as_str) == Some("dereference_header_stack") => e2,
                _ => return fail(place, "access_field of a header that is not a stack element is not supported"),
            },
            _ => return fail(place, "access_field of a header that is not a stack element is not supported"),
        };
        let (Some(st), Some(index)) = (deref.get("left"), deref.get("right")) else {
            return fail(place, "dereference_header_stack needs a stack and an index");
        };
        let stack = self.expect_stack(st, place)?;
        let first = self.ir.stacks[stack as usize].headers[0];
        let n = self.ir.headers[first as usize].fields.len() as u64;
        if field >= n {
            return fail(place, format!("field offset {field} past the element's {n} fields"));
        }
        Ok((stack, index, field as u32))
    }
}
