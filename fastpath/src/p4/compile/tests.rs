use super::*;
use crate::p4::corpus;

fn compile_text(text: &str) -> Result<Ir> {
    compile_bytes(text.as_bytes())
}

#[test]
fn every_corpus_program_compiles() {
    let Some(dir) = corpus::dir() else { return };
    let files = corpus::files(&dir, ".json");
    assert!(files.len() >= 13);
    for f in files {
        let ir = compile_bytes(&std::fs::read(&f).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(!ir.states.is_empty() && ir.ingress.is_some(), "{}", f.display());
        // The precomputed write masks and field-set bits agree with their definitions.
        for (i, fd) in ir.fields.iter().enumerate() {
            let h = &ir.headers[fd.header as usize];
            assert_eq!(fd.set_bit, h.field_bit(i as FieldId), "{}: {}", f.display(), fd.name);
            let want = if fd.width == 0 { 0 } else { mask_of(fd.width) };
            assert_eq!(fd.mask, want, "{}: {}", f.display(), fd.name);
        }
    }
}

#[test]
fn simple_router_compiles_to_dense_ids() {
    let Some(dir) = corpus::dir() else { return };
    let ir = compile_bytes(&std::fs::read(dir.join("simple_router/simple_router.json")).unwrap()).unwrap();
    let lpm = &ir.tables[ir.table("ipv4_lpm").unwrap() as usize];
    assert_eq!(lpm.keys[0].kind, MatchKind::Lpm);
    assert_eq!(lpm.keys[0].expr.as_field(), ir.field("ipv4.dstAddr"));
    assert_eq!(lpm.keys[0].width, 32);
    // Both checksums verify and update (absent flags), csum16 over the same 11
    // inputs: the second repeats the first and is dropped from both lists.
    assert_eq!((ir.verify_checksums.len(), ir.update_checksums.len()), (1, 1));
    assert_eq!(ir.calcs[ir.update_checksums[0].calc as usize].algo, HashAlgo::Csum16);
    assert_eq!(ir.calcs[ir.update_checksums[0].calc as usize].inputs.len(), 11);
    let ipv4 = &ir.headers[ir.header("ipv4").unwrap() as usize];
    assert_eq!(ipv4.bytes, 20);
    assert!(ir
        .actions
        .iter()
        .any(|a| a.name == "set_nhop" && a.params == [("nhop_ipv4".into(), 32), ("port".into(), 9)]));
}

#[test]
fn conversions_that_change_nothing_are_left_out() {
    let assign = |e: &str| {
        let prim = format!(r#"{{"op": "assign", "parameters": [{{"type": "field", "value": ["h", "f"]}}, {e}]}}"#);
        let ir = compile_text(&minimal("", &prim)).unwrap();
        let f = ir.field("h.f").unwrap();
        match &ir.actions[0].body[0] {
            Stmt::Assign { expr, .. } => (expr.ops.clone(), f),
            s => panic!("not an assignment: {s:?}"),
        }
    };
    let ex = |op: &str, l: &str, r: &str| {
        format!(r#"{{"type": "expression", "value": {{"op": "{op}", "left": {l}, "right": {r}}}}}"#)
    };
    let field = r#"{"type": "field", "value": ["h", "f"]}"#;
    let valid = r#"{"type": "field", "value": ["h", "$valid$"]}"#;
    let one = r#"{"type": "hexstr", "value": "0x1"}"#;
    let h = 1;
    // d2b of a 0/1 operand, and b2d of anything, leave it as it is.
    assert_eq!(assign(&ex("b2d", "null", &ex("d2b", "null", valid))).0, vec![Op::Valid(h)]);
    let (ops, f) = assign(&ex("b2d", "null", &ex("d2b", "null", &ex("==", field, one))));
    assert_eq!(ops, vec![Op::Field(f), Op::Const(1), Op::Bin(BinOp::Eq)]);
    // d2b of any other value is a test for nonzero, and stays.
    let (ops, f) = assign(&ex("b2d", "null", &ex("d2b", "null", field)));
    assert_eq!(ops, vec![Op::Field(f), Op::Un(UnOp::D2b)]);
    let (ops, f) = assign(&ex("b2d", "null", &ex("d2b", "null", &ex("&", field, one))));
    assert_eq!(ops, vec![Op::Field(f), Op::Const(1), Op::Bin(BinOp::And), Op::Un(UnOp::D2b)]);
}

fn minimal(extra_headers: &str, primitive: &str) -> String {
    format!(
        r#"{{"header_types": [
            {{"name": "standard_metadata", "id": 0, "fields": [["ingress_port", 9, false], ["egress_spec", 9, false],
              ["egress_port", 9, false], ["instance_type", 32, false], ["packet_length", 32, false], ["_padding", 3, false]]}},
            {{"name": "h_t", "id": 1, "fields": [["f", 16, false]]}} {extra_headers}],
          "headers": [{{"name": "standard_metadata", "id": 0, "header_type": "standard_metadata", "metadata": true}},
                      {{"name": "h", "id": 1, "header_type": "h_t", "metadata": false}}],
          "parsers": [{{"name": "parser", "id": 0, "init_state": "start", "parse_states": [
              {{"name": "start", "id": 0, "parser_ops": [{{"op": "extract", "parameters": [{{"type": "regular", "value": "h"}}]}}],
               "transition_key": [], "transitions": [{{"type": "default", "value": null, "mask": null, "next_state": null}}]}}]}}],
          "deparsers": [{{"name": "deparser", "id": 0, "order": ["h"]}}],
          "actions": [{{"name": "a", "id": 0, "runtime_data": [], "primitives": [{primitive}]}}],
          "pipelines": [{{"name": "ingress", "id": 0, "init_table": null, "tables": [], "conditionals": []}},
                        {{"name": "egress", "id": 1, "init_table": null, "tables": [], "conditionals": []}}]}}"#
    )
}

#[test]
fn a_minimal_program_compiles() {
    let ir = compile_text(&minimal("", r#"{"op": "mark_to_drop", "parameters": []}"#)).unwrap();
    assert_eq!(ir.headers.len(), 2);
    assert!(matches!(ir.actions[0].body[0], Stmt::MarkToDrop));
}

#[test]
fn unsupported_constructs_are_named_with_their_place() {
    let e = compile_text(&minimal("", r#"{"op": "modify_field_rng_uniform", "parameters": []}"#)).unwrap_err().0;
    assert!(
        e.contains(r#"actions[0] "a" primitives[0]"#)
            && e.contains("modify_field_rng_uniform")
            && e.contains("not supported"),
        "{e}"
    );
    let e = compile_text(&minimal(
        r#", {"name": "v_t", "id": 2, "fields": [["opts", "*"]]}"#,
        r#"{"op": "exit", "parameters": []}"#,
    ));
    // An unused varbit type is fine; only instances matter.
    assert!(e.is_ok(), "{e:?}");
    let e = compile_text(&minimal("", r#"{"op": "assign", "parameters": [{"type": "field", "value": ["h", "nope"]}, {"type": "hexstr", "value": "0x1"}]}"#))
        .unwrap_err()
        .0;
    assert!(e.contains("unknown field h.nope"), "{e}");
    let e = compile_text(&minimal("", r#"{"op": "assign", "parameters": [{"type": "field", "value": ["h", "f"]}, {"type": "expression", "value": {"op": "two_comp_mod", "left": null, "right": null}}]}"#))
        .unwrap_err()
        .0;
    assert!(e.contains("operator \"two_comp_mod\" is not supported"), "{e}");
    let stack = minimal("", r#"{"op": "exit", "parameters": []}"#)
        .replace(r#""parsers""#, r#""header_stacks": [{"name": "labels", "id": 0, "header_type": "h_t", "size": 2, "header_ids": [1, 1]}], "parsers""#);
    let e = compile_text(&stack).unwrap_err().0;
    assert!(e.contains(r#"header_stacks[0] "labels" header_ids[1]"#) && e.contains("listed twice"), "{e}");
    let union_stack = minimal("", r#"{"op": "exit", "parameters": []}"#)
        .replace(r#""parsers""#, r#""header_union_stacks": [{"name": "us", "id": 0}], "parsers""#);
    let e = compile_text(&union_stack).unwrap_err().0;
    assert!(e.contains(r#"header_union_stacks[0] "us""#) && e.contains("not supported"), "{e}");
}

/// `minimal` plus an ingress table keyed ternary on h.f with the given const entries.
fn with_const_entries(entries: &str) -> String {
    minimal("", r#"{"op": "mark_to_drop", "parameters": []}"#).replace(
        r#"{"name": "ingress", "id": 0, "init_table": null, "tables": [], "conditionals": []}"#,
        &format!(
            r#"{{"name": "ingress", "id": 0, "init_table": "t", "conditionals": [], "tables": [{{
                "name": "t", "id": 0, "key": [{{"match_type": "ternary", "name": "h.f", "target": ["h", "f"], "mask": null}}],
                "match_type": "ternary", "type": "simple", "max_size": 16, "with_counters": false,
                "support_timeout": false, "direct_meters": null, "action_ids": [0], "actions": ["a"],
                "base_default_next": null, "next_tables": {{"a": null}},
                "default_entry": {{"action_id": 0, "action_const": false, "action_data": [], "action_entry_const": false}},
                "entries": [{entries}]}}]}}"#
        ),
    )
}

#[test]
fn const_entries_install_with_bmv2_priorities_or_are_refused_by_place() {
    let e = |key: &str, mask: &str, prio: u32| {
        format!(
            r#"{{"match_key": [{{"match_type": "ternary", "key": "{key}", "mask": "{mask}"}}],
                "action_entry": {{"action_id": 0, "action_data": []}}, "priority": {prio}}}"#
        )
    };
    let ir = compile_text(&with_const_entries(&format!("{}, {}", e("0x0a00", "0xff00", 1), e("0x0000", "0x0000", 2))))
        .unwrap();
    let rt = crate::p4::tables::Runtime::new(&ir);
    assert_eq!(rt.tables[0].len(), 2);
    let ce = &ir.tables[0].const_entries;
    assert!(ce[0].priority > ce[1].priority && ce[1].priority > 0, "BMv2's 1 beats 2");
    // A value with bits outside its mask is refused, naming the entry.
    let err = compile_text(&with_const_entries(&e("0x0a01", "0xff00", 1))).unwrap_err().0;
    assert!(err.contains(r#"table "t" entries[0]"#) && err.contains("masked-off bits must be zero"), "{err}");
}

#[test]
fn hex_parsing_is_strict() {
    assert_eq!(parse_hex("0x00ff"), Some(255));
    assert_eq!(parse_hex("0x"), Some(0));
    assert_eq!(parse_hex("ff"), None);
    assert_eq!(parse_hex("0xfg"), None);
    assert_eq!(parse_hex(&format!("0x{}", "f".repeat(32))), Some(u128::MAX));
    assert_eq!(parse_hex(&format!("0x1{}", "0".repeat(32))), None);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    /// Loader fuzzing: a real program with random bytes overwritten never panics
    /// the parser or the compiler.
    #[test]
    fn mutated_programs_never_panic(edits in proptest::collection::vec((0usize..20_000, proptest::num::u8::ANY), 1..8)) {
        let Some(dir) = corpus::dir() else { return Ok(()) };
        let mut bytes = std::fs::read(dir.join("simple_router/simple_router.json")).unwrap();
        for (at, b) in edits {
            let i = at % bytes.len();
            bytes[i] = b;
        }
        let _ = compile_bytes(&bytes);
    }

    /// The same on programs with header stacks, unions and varbit fields; whatever
    /// still compiles also runs packets without panicking.
    #[test]
    fn mutated_stack_programs_never_panic(edits in proptest::collection::vec((0usize..40_000, proptest::num::u8::ANY), 1..8)) {
        let mut bytes = if edits.len() % 2 == 0 {
            crate::p4::stack_tests::stacks_json()
        } else {
            crate::p4::stack_tests::options_json()
        };
        for (at, b) in edits {
            let i = at % bytes.len();
            bytes[i] = b;
        }
        if let Ok(ir) = compile_bytes(&bytes) {
            let mut rt = crate::p4::tables::Runtime::new(&ir);
            let mut it = crate::p4::interp::Interp::new(&ir);
            let mut t = crate::p4::track::Tracker::new(&ir);
            let mut pkt = vec![0, 0, 0, 0, 0, 0xaa, 0, 0, 0, 0, 0, 0xbb, 0x88, 0x47];
            for l in 0..4u8 {
                pkt.extend_from_slice(&[0, 0x06, 0x40 | (l == 3) as u8, 9]);
            }
            pkt.extend_from_slice(&[0x45; 24]);
            t.begin();
            it.run(&ir, &mut rt, &pkt, 1, &mut t);
        }
    }

    /// Structural fuzzing: expression trees of any shape compile or fail cleanly.
    #[test]
    fn arbitrary_expressions_never_panic(v in arb_json(4)) {
        let prim = format!(r#"{{"op": "assign", "parameters": [{{"type": "field", "value": ["h", "f"]}}, {v}]}}"#);
        let _ = compile_text(&minimal("", &prim));
    }
}

fn arb_json(depth: u32) -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(serde_json::json!({"type": "field", "value": ["h", "f"]})),
        Just(serde_json::json!({"type": "hexstr", "value": "0x10"})),
        Just(serde_json::json!({"type": "bool", "value": true})),
        Just(serde_json::json!({"type": "runtime_data", "value": 3})),
        Just(serde_json::json!({"type": "lookahead", "value": [0, 8]})),
        Just(serde_json::json!(null)),
        Just(serde_json::json!({"type": "header", "value": "h"})),
        Just(serde_json::json!({"type": "header_stack", "value": "h"})),
        Just(serde_json::json!({"type": "header_union", "value": "h"})),
        Just(serde_json::json!({"type": "stack_field", "value": ["h", "f"]})),
    ];
    leaf.prop_recursive(depth, 64, 3, |inner| {
        let ops = prop_oneof![
            Just("+"),
            Just("-"),
            Just("&"),
            Just("=="),
            Just("not"),
            Just("?"),
            Just("d2b"),
            Just("valid"),
            Just("valid_union"),
            Just("last_stack_index"),
            Just("access_field"),
            Just("dereference_header_stack"),
            Just("bogus")
        ];
        (ops, inner.clone(), inner.clone(), inner).prop_map(|(op, l, r, c)| {
            serde_json::json!({"type": "expression", "value": {"op": op, "left": l, "right": r, "cond": c}})
        })
    })
}

/// A repeated checksum is dropped only where dropping it cannot change an outcome.
#[test]
fn repeated_checksums_are_dropped_only_when_they_cannot_differ() {
    let Some(dir) = corpus::dir() else { return };
    let base = compile_bytes(&std::fs::read(dir.join("simple_router/simple_router.json")).unwrap()).unwrap();
    let ck = base.update_checksums[0].clone();
    let f = |n: &str| base.field(n).unwrap();
    let with = |verify: Vec<ChecksumDef>, update: Vec<ChecksumDef>| {
        let mut ir = base.clone();
        ir.verify_checksums = verify;
        ir.update_checksums = update;
        drop_repeated_checksums(&mut ir);
        (ir.verify_checksums.len(), ir.update_checksums.len())
    };
    // Plain repeats: one each is left.
    assert_eq!(with(vec![ck.clone(); 3], vec![ck.clone(); 3]), (1, 1));
    // Another condition or calculation: kept.
    let cond = ChecksumDef { cond: Some(Expr { ops: vec![Op::Valid(base.header("ipv4").unwrap())] }), ..ck.clone() };
    let mut other_calc = base.calcs[ck.calc as usize].clone();
    other_calc.inputs.pop();
    let mut ir = base.clone();
    ir.calcs.push(other_calc);
    let other = ChecksumDef { calc: ir.calcs.len() as u32 - 1, ..ck.clone() };
    ir.verify_checksums = vec![ck.clone(), cond.clone(), other.clone()];
    ir.update_checksums = vec![ck.clone(), cond.clone(), other.clone()];
    drop_repeated_checksums(&mut ir);
    assert_eq!((ir.verify_checksums.len(), ir.update_checksums.len()), (3, 3));
    // A repeat whose condition reads what the first wrote (`checksum_error` for a
    // verification, the field for an update) may differ: kept.
    let error = base.std.checksum_error.expect("v1model has checksum_error");
    let reads_error = ChecksumDef { cond: Some(Expr { ops: vec![Op::Field(error)] }), ..ck.clone() };
    assert_eq!(with(vec![reads_error.clone(); 2], vec![]), (2, 0));
    let of_error = ChecksumDef { field: error, ..ck.clone() };
    assert_eq!(with(vec![of_error.clone(); 2], vec![]), (2, 0));
    let reads_field = ChecksumDef { cond: Some(Expr { ops: vec![Op::Field(ck.field)] }), ..ck.clone() };
    assert_eq!(with(vec![], vec![reads_field.clone(); 2]), (0, 2));
    // An update in between that writes one of the repeat's inputs (the TTL): kept;
    // one that writes a field it does not read: dropped.
    let ttl = ChecksumDef { field: f("ipv4.ttl"), ..ck.clone() };
    assert_eq!(with(vec![], vec![ck.clone(), ttl, ck.clone()]), (0, 3));
    let elsewhere = ChecksumDef { field: f("ethernet.etherType"), ..ck.clone() };
    assert_eq!(with(vec![], vec![ck.clone(), elsewhere, ck.clone()]), (0, 2));
}
