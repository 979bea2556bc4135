//! Tests of the P4Info model and mapping: fixtures, the shared corpus, proptests.

use super::*;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

/// A hand-written P4Info with every object kind, most syntax variants, and fields
/// Sluice skips (doc, type_name, other_properties, type_info, externs).
const FIXTURE: &str = r#"
# Hand-written: every object kind Sluice models.
pkg_info {
  name: "fixture"
  version: "1.0"
  arch: "v1model"
  organization: "Sluice"
  doc { brief: "skipped" }
}
tables {
  preamble {
id: 0x02000001
name: "ingress.acl"
alias: "acl"
annotations: "@name(\"acl\")"
doc { brief: "skipped" }
  }
  match_fields { id: 1 name: "hdr.ipv4.dst" bitwidth: 32 match_type: LPM }
  match_fields { id: 2 name: "hdr.tcp.dport" bitwidth: 16 match_type: RANGE }
  match_fields { id: 3 name: "meta.flag" bitwidth: 1 match_type: OPTIONAL annotations: "@x" }
  match_fields { id: 4 name: "meta.custom" bitwidth: 8 other_match_type: "selector" }
  match_fields < id: 5, name: 'hdr.eth.type', bitwidth: 16, match_type: 4 >  # TERNARY, by number
  action_refs { id: 0x01000001 }
  action_refs { id: 0x01000002 scope: TABLE_ONLY }
  action_refs { id: 0x01000003 scope: DEFAULT_ONLY annotations: "@defaultonly" }
  const_default_action_id: 0x01000003
  direct_resource_ids: [0x13000001, 0x15000001]
  size: 4096
  idle_timeout_behavior: NOTIFY_CONTROL
  is_const_table: false
  other_properties { [type.googleapis.com/vendor.Props] { x: 1 } }
}
tables {
  preamble { id: 0x02000002 name: "ingress.ecmp" alias: "ecmp" }
  match_fields { id: 1 name: "meta.nexthop" bitwidth: 16 match_type: EXACT }
  action_refs { id: 0x01000002 }
  implementation_id: 0x11000001
  size: 1024
  is_const_table: true
}
actions { preamble { id: 0x01000001 name: "ingress.drop" alias: "drop" } }
actions {
  preamble { id: 0x01000002 name: "ingress.fwd" alias: "fwd" }
  params { id: 1 name: "port" bitwidth: 9 annotations: "@format(PORT)" }
  params { id: 2 name: "dmac" bitwidth: 48 type_name { name: "mac_t" } }
}
actions { preamble { id: 0x01000003 name: "NoAction" alias: "NoAction" } }
action_profiles {
  preamble { id: 0x11000001 name: "ingress.ecmp_selector" alias: "ecmp_selector" }
  table_ids: 0x02000002
  with_selector: true
  size: 256
  max_group_size: 16
  sum_of_members { max_member_weight: 4 }
}
counters {
  preamble { id: 0x12000001 name: "ingress.port_rx" alias: "port_rx" }
  spec { unit: BOTH }
  size: 512
}
direct_counters {
  preamble { id: 0x13000001 name: "ingress.acl_hits" alias: "acl_hits" }
  spec { unit: PACKETS }
  direct_table_id: 0x02000001
}
meters {
  preamble { id: 0x14000001 name: "ingress.port_rate" alias: "port_rate" }
  spec { unit: BYTES }
  size: 512
}
direct_meters {
  preamble { id: 0x15000001 name: "ingress.acl_rate" alias: "acl_rate" }
  spec { unit: PACKETS }
  direct_table_id: 0x02000001
}
controller_packet_metadata {
  preamble {
id: 0x04000001
name: "packet_in"
alias: "packet_in"
annotations: "@controller_header(\"packet_in\")"
  }
  metadata { id: 1 name: "ingress_port" bitwidth: 9 }
  metadata { id: 2 name: "_pad" bitwidth: 7 }
}
value_sets {
  preamble { id: 0x03000001 name: "ingress.parser.tpids" alias: "tpids" }
  match { id: 1 name: "tpid" bitwidth: 16 match_type: EXACT }
  size: 4
}
registers {
  preamble { id: 0x16000001 name: "ingress.flow_state" alias: "flow_state" }
  type_spec { bitstring { bit { bitwidth: 32 } } }
  size: 1024
}
digests {
  preamble { id: 0x17000001 name: "ingress.learn" alias: "learn" }
  type_spec { struct { name: "learn_t" } }
}
type_info {
  structs { key: "learn_t" value { members { name: "smac" type_spec { bitstring { bit { bitwidth: 48 } } } } } }
}
externs {
  extern_type_id: 0x81
  extern_type_name: "Vendor"
  instances { preamble { id: 0x81000001 name: "v" } info { [type.googleapis.com/vendor.Info] { a: 1 } } }
}
"#;

fn ok(text: &str) -> P4Info {
    match parse_text(text) {
        Ok(info) => info,
        Err(e) => panic!("P4Info should parse: {e}"),
    }
}

fn fail(text: &str) -> P4InfoError {
    match parse_text(text) {
        Ok(info) => panic!("P4Info should be rejected: {info:?}"),
        Err(e) => e,
    }
}

fn pre(id: u32, name: &str, alias: &str) -> Preamble {
    Preamble { id, name: name.into(), alias: alias.into(), annotations: vec![] }
}

fn mf(id: u32, name: &str, bitwidth: i32, match_type: MatchType) -> MatchField {
    MatchField { id, name: name.into(), annotations: vec![], bitwidth, match_type }
}

#[test]
fn fixture_maps_every_object_kind() {
    let info = ok(FIXTURE);
    assert_eq!(info.pkg_info, PkgInfo { name: "fixture".into(), arch: "v1model".into(), version: "1.0".into() });

    let acl = info.table_by_name("ingress.acl").expect("acl table");
    let mut want = pre(0x0200_0001, "ingress.acl", "acl");
    want.annotations.push("@name(\"acl\")".into());
    assert_eq!(acl.preamble, want);
    let mut flag = mf(3, "meta.flag", 1, MatchType::Optional);
    flag.annotations.push("@x".into());
    assert_eq!(
        acl.match_fields,
        [
            mf(1, "hdr.ipv4.dst", 32, MatchType::Lpm),
            mf(2, "hdr.tcp.dport", 16, MatchType::Range),
            flag,
            mf(4, "meta.custom", 8, MatchType::Other("selector".into())),
            mf(5, "hdr.eth.type", 16, MatchType::Ternary),
        ]
    );
    let scopes: Vec<(u32, ActionScope)> = acl.action_refs.iter().map(|a| (a.id, a.scope)).collect();
    assert_eq!(
        scopes,
        [
            (0x0100_0001, ActionScope::TableAndDefault),
            (0x0100_0002, ActionScope::TableOnly),
            (0x0100_0003, ActionScope::DefaultOnly)
        ]
    );
    assert_eq!(acl.action_refs[2].annotations, ["@defaultonly"]);
    assert_eq!(acl.const_default_action_id, 0x0100_0003);
    assert_eq!(acl.implementation_id, 0);
    assert_eq!(acl.direct_resource_ids, [0x1300_0001, 0x1500_0001]);
    assert_eq!(acl.size, 4096);
    assert_eq!(acl.idle_timeout_behavior, IdleTimeoutBehavior::NotifyControl);
    assert!(!acl.is_const_table);

    let ecmp = info.table(0x0200_0002).expect("ecmp table");
    assert_eq!(ecmp.implementation_id, 0x1100_0001);
    assert!(ecmp.is_const_table);
    assert_eq!(ecmp.idle_timeout_behavior, IdleTimeoutBehavior::NoTimeout);

    let fwd = info.action_by_name("ingress.fwd").expect("fwd action");
    assert_eq!(
        fwd.params,
        [
            Param { id: 1, name: "port".into(), bitwidth: 9, annotations: vec!["@format(PORT)".into()] },
            Param { id: 2, name: "dmac".into(), bitwidth: 48, annotations: vec![] },
        ]
    );
    assert_eq!(info.actions.len(), 3);
    assert_eq!(
        info.action_profiles,
        [ActionProfile {
            preamble: pre(0x1100_0001, "ingress.ecmp_selector", "ecmp_selector"),
            table_ids: vec![0x0200_0002],
            with_selector: true,
            size: 256,
            max_group_size: 16,
        }]
    );
    assert_eq!(
        info.counters,
        [Counter { preamble: pre(0x1200_0001, "ingress.port_rx", "port_rx"), unit: CounterUnit::Both, size: 512 }]
    );
    assert_eq!(
        info.direct_counters,
        [DirectCounter {
            preamble: pre(0x1300_0001, "ingress.acl_hits", "acl_hits"),
            unit: CounterUnit::Packets,
            direct_table_id: 0x0200_0001,
        }]
    );
    assert_eq!(
        info.meters,
        [Meter { preamble: pre(0x1400_0001, "ingress.port_rate", "port_rate"), unit: MeterUnit::Bytes, size: 512 }]
    );
    assert_eq!(info.direct_meters[0].unit, MeterUnit::Packets);
    assert_eq!(info.direct_meters[0].direct_table_id, 0x0200_0001);

    let pin = info.controller_packet_metadata_by_name("packet_in").expect("packet_in");
    assert_eq!(pin.preamble.annotations, ["@controller_header(\"packet_in\")"]);
    assert_eq!(
        pin.metadata,
        [
            PacketMetadata { id: 1, name: "ingress_port".into(), bitwidth: 9 },
            PacketMetadata { id: 2, name: "_pad".into(), bitwidth: 7 },
        ]
    );
    assert_eq!(pin.total_bitwidth(), 16);
    assert_eq!(
        info.value_sets,
        [ValueSet {
            preamble: pre(0x0300_0001, "ingress.parser.tpids", "tpids"),
            match_fields: vec![mf(1, "tpid", 16, MatchType::Exact)],
            size: 4,
        }]
    );
    assert_eq!(
        info.registers,
        [Register { preamble: pre(0x1600_0001, "ingress.flow_state", "flow_state"), bitwidth: 32, size: 1024 }]
    );
    assert_eq!(
        info.digests,
        [Digest { preamble: pre(0x1700_0001, "ingress.learn", "learn"), type_name: "learn_t".into() }]
    );
}

#[test]
fn lookups_by_id_and_name() {
    let info = ok(FIXTURE);
    assert_eq!(info.table(0x0200_0001).map(|t| t.preamble.alias.as_str()), Some("acl"));
    assert!(info.table(0x0100_0001).is_none(), "an action id is not a table");
    assert!(info.table_by_name("acl").is_none(), "lookups use the full name, not the alias");
    assert_eq!(info.action(0x0100_0003).map(|a| a.preamble.name.as_str()), Some("NoAction"));
    assert!(info.action_profile_by_name("ingress.ecmp_selector").is_some());
    assert!(info.action_profile(0x1100_0001).is_some());
    assert!(info.counter(0x1200_0001).is_some());
    assert!(info.direct_counter(0x1300_0001).is_some());
    assert!(info.meter(0x1400_0001).is_some());
    assert!(info.direct_meter(0x1500_0001).is_some());
    assert!(info.controller_packet_metadata(0x0400_0001).is_some());
    assert!(info.value_set(0x0300_0001).is_some());
    assert!(info.register(0x1600_0001).is_some());
    assert!(info.digest(0x1700_0001).is_some());
    let acl = info.table(0x0200_0001).expect("acl");
    assert_eq!(acl.match_field(2).map(|m| m.name.as_str()), Some("hdr.tcp.dport"));
    assert_eq!(acl.match_field_by_name("meta.flag").map(|m| m.id), Some(3));
    assert_eq!(acl.action_ref(0x0100_0002).map(|a| a.scope), Some(ActionScope::TableOnly));
    assert!(acl.action_ref(0x0100_0009).is_none());
    let fwd = info.action(0x0100_0002).expect("fwd");
    assert_eq!(fwd.param(2).map(|p| p.bitwidth), Some(48));
    assert_eq!(fwd.param_by_name("port").map(|p| p.id), Some(1));
    let pin = info.controller_packet_metadata(0x0400_0001).expect("packet_in");
    assert_eq!(pin.field(2).map(|m| m.name.as_str()), Some("_pad"));
    for (id, kind, name) in [
        (0x0200_0002, ResourceKind::Table, "ingress.ecmp"),
        (0x1500_0001, ResourceKind::DirectMeter, "ingress.acl_rate"),
        (0x1700_0001, ResourceKind::Digest, "ingress.learn"),
    ] {
        assert_eq!(info.object(id).map(|(k, p)| (k, p.name.as_str())), Some((kind, name)));
    }
    assert!(info.object(0x0200_0009).is_none());
    assert!(info.object(0x8100_0001).is_none(), "externs are not modelled");
}

#[test]
fn resource_kind_prefixes_follow_p4ids() {
    // P4Ids.Prefix in p4info.proto. Note CONTROLLER_HEADER is 0x04 and DIGEST 0x17.
    let want: [(ResourceKind, u8); 11] = [
        (ResourceKind::Action, 0x01),
        (ResourceKind::Table, 0x02),
        (ResourceKind::ValueSet, 0x03),
        (ResourceKind::ControllerPacketMetadata, 0x04),
        (ResourceKind::ActionProfile, 0x11),
        (ResourceKind::Counter, 0x12),
        (ResourceKind::DirectCounter, 0x13),
        (ResourceKind::Meter, 0x14),
        (ResourceKind::DirectMeter, 0x15),
        (ResourceKind::Register, 0x16),
        (ResourceKind::Digest, 0x17),
    ];
    for (kind, prefix) in want {
        assert_eq!(kind.prefix(), prefix, "{kind}");
        assert_eq!(ResourceKind::of_id(u32::from(prefix) << 24 | 0x00ab_cdef), Some(kind));
    }
    assert_eq!(ResourceKind::of_id(0), None);
    assert_eq!(ResourceKind::of_id(0x1800_0001), None);
    assert_eq!(ResourceKind::DirectCounter.to_string(), "direct counter");
}

#[test]
fn empty_input_is_an_empty_p4info() {
    for text in ["", "\n", "# only a comment\n"] {
        let info = ok(text);
        assert_eq!(info, P4Info::default());
        assert!(info.is_empty());
    }
    assert!(!ok(FIXTURE).is_empty());
}

#[test]
fn fields_p4info_defines_but_sluice_ignores_are_skipped() {
    let text = r#"
        type_info { new_types { key: "t" value { translated_type { uri: "x" sdn_bitwidth: 32 } } } }
        externs { extern_type_id: 129 instances { preamble { id: 1 } } }
        generic_tables { generic_table_type_id: 1 }
        unions { preamble { id: 5 } }
        pkg_info { url: "u" contact: "c" annotations: "@a" structured_annotations { name: "s" } }
        actions {
          preamble { id: 0x01000001 name: "a" structured_annotations { name: "x" } annotation_locations { file: "f" } }
          params { id: 1 name: "p" bitwidth: 8 doc { description: "d" } structured_annotations {} }
        }
        counters { preamble { id: 0x12000001 name: "c" } index_type_name { name: "idx_t" } }
        controller_packet_metadata {
          preamble { id: 0x04000001 name: "packet_out" }
          metadata { id: 1 name: "port" bitwidth: 9 annotations: "@a" type_name { name: "port_t" } }
        }
    "#;
    let info = ok(text);
    assert_eq!(info.actions[0].params[0].name, "p");
    assert_eq!(info.counters[0].preamble.name, "c");
    assert_eq!(info.controller_packet_metadata[0].metadata[0].bitwidth, 9);
}

/// The error's display starts with `line:col: ` and mentions `needle`.
fn assert_error(text: &str, line_col: &str, needle: &str) -> P4InfoError {
    let e = fail(text);
    let shown = e.to_string();
    assert!(shown.starts_with(&format!("{line_col}: ")), "position of {text:?}: {shown}");
    assert!(shown.contains(needle), "message of {text:?}: {shown}");
    e
}

#[test]
fn syntax_errors_keep_their_position() {
    let e = assert_error("tables {\n  preamble {\n    id: 0x\n", "3:9", "invalid number");
    assert!(matches!(e, P4InfoError::Syntax(_)));
}

#[test]
fn unknown_field_names_are_errors_naming_field_and_line() {
    let e = assert_error("pkg_info { arch: \"v1model\" }\ntabels {}", "2:1", "unknown field `tabels` in P4Info");
    assert!(matches!(e, P4InfoError::UnknownField { message: "P4Info", .. }));
    assert_error("tables {\n  preamble {\n    nmae: \"t\"\n  }\n}", "3:5", "unknown field `nmae` in Preamble");
    assert_error("actions { params { bitwdth: 3 } }", "1:20", "unknown field `bitwdth` in Action.Param");
    assert_error("tables { match_fields { matchtype: EXACT } }", "1:25", "`matchtype` in MatchField");
    assert_error("counters { spec { unit: BOTH kind: 1 } }", "1:30", "`kind` in CounterSpec");
    assert_error("meters { spec { color: GREEN } }", "1:17", "`color` in MeterSpec");
    assert_error("tables { [ext.foo]: 1 }", "1:10", "unknown field `[ext.foo]` in Table");
    // `type_name` is skipped where P4Info defines it (MatchField, Param...), not elsewhere.
    assert_error("tables { action_refs { type_name {} } }", "1:24", "`type_name` in ActionRef");
    // `match` is ValueSet's name for its fields; `match_fields` is not.
    assert_error("value_sets { match_fields {} }", "1:14", "`match_fields` in ValueSet");
}

#[test]
fn repeated_singular_fields_are_errors() {
    assert_error("tables { size: 1\n size: 2 }", "2:2", "field `size` of Table is given more than once");
    assert_error("pkg_info {} pkg_info {}", "1:13", "`pkg_info` of P4Info is given more than once");
    assert_error("actions { preamble { id: 1 id: 2 } }", "1:28", "`id` of Preamble");
    assert_error("actions { preamble {} preamble {} }", "1:23", "`preamble` of Action");
}

#[test]
fn values_of_the_wrong_type_or_range_are_errors() {
    let e = assert_error("tables { preamble { id: \"x\" } }", "1:25", "expected an unsigned 32-bit integer");
    assert!(matches!(e, P4InfoError::BadValue { message: "Preamble", .. }));
    assert_error("tables { preamble { id: -1 } }", "1:25", "out of range");
    assert_error("tables { preamble { id: 0x100000000 } }", "1:25", "out of range");
    assert_error("tables { size: 9223372036854775808 }", "1:16", "out of range");
    assert_error("tables { preamble { name: t } }", "1:27", "expected a string, found an identifier");
    assert_error("tables { preamble { name: \"\\xff\" } }", "1:27", "not valid UTF-8");
    assert_error("tables { preamble: 5 }", "1:20", "expected a message, found an integer");
    assert_error("tables: 5", "1:9", "expected a message");
    assert_error("actions { params { bitwidth: -3 } }", "1:30", "cannot be negative");
    assert_error("tables { match_fields { match_type: FUZZY } }", "1:37", "unknown enum value");
    assert_error("tables { match_fields { match_type: 1 } }", "1:37", "expected one of UNSPECIFIED, EXACT");
    assert_error("tables { is_const_table: yes }", "1:26", "expected true or false");
    assert_error(
        "tables { match_fields { match_type: EXACT other_match_type: \"x\" } }",
        "1:61",
        "`match_type` was already given",
    );
    assert_error("registers { type_spec { bitstring: 3 } }", "1:36", "expected a message");
    assert_error("registers { type_spec { bitstring { bit { bitwidth: -1 } } } }", "1:53", "cannot be negative");
}

#[test]
fn alternative_spellings_of_values_are_accepted() {
    let text = "actions < preamble: < id: 16777217, name: 'a' >; >;\n\
                tables { preamble { id: 0x02000001 name: \"t\" } is_const_table: 1 \
                action_refs [{ id: 0x01000001 scope: 1 }] idle_timeout_behavior: 1 size: -1 }";
    let info = ok(text);
    let t = &info.tables[0];
    assert!(t.is_const_table);
    assert_eq!(t.action_refs[0].scope, ActionScope::TableOnly);
    assert_eq!(t.idle_timeout_behavior, IdleTimeoutBehavior::NotifyControl);
    assert_eq!(t.size, -1);
    assert_eq!(info.actions[0].preamble.id, 0x0100_0001);
    // A register whose cells are not `bit<W>` keeps bitwidth 0.
    let reg = ok("registers { preamble { id: 0x16000001 name: \"r\" } type_spec { bool {} } }");
    assert_eq!(reg.registers[0].bitwidth, 0);
    let dig = ok("digests { preamble { id: 0x17000001 name: \"d\" } }");
    assert_eq!(dig.digests[0].type_name, "");
}

#[test]
fn objects_need_a_name_and_a_non_zero_id() {
    let e = assert_error("tables {\n preamble { id: 0x02000001 } }", "1:1", "table with id 0x02000001 has no name");
    assert!(matches!(e, P4InfoError::MissingName { kind: ResourceKind::Table, id: 0x0200_0001, .. }));
    assert_error("actions {\n preamble {\n name: \"a\" } }", "1:1", "action `a` has id 0, which is reserved");
    assert_error("actions { preamble { name: \"a\" id: 0 } }", "1:36", "has id 0");
    assert_error("counters { }", "1:1", "counter with id 0x00000000 has no name");
}

#[test]
fn ids_must_carry_their_kinds_prefix() {
    let cases = [
        ("tables", 0x0100_0001u32, "table", 0x02u8),
        ("actions", 0x0200_0001, "action", 0x01),
        ("action_profiles", 0x1200_0001, "action profile", 0x11),
        ("counters", 0x1300_0001, "counter", 0x12),
        ("direct_counters", 0x1200_0001, "direct counter", 0x13),
        ("meters", 0x1500_0001, "meter", 0x14),
        ("direct_meters", 0x1400_0001, "direct meter", 0x15),
        ("controller_packet_metadata", 0x8100_0001, "controller packet metadata", 0x04),
        ("value_sets", 0x0400_0001, "value set", 0x03),
        ("registers", 0x1700_0001, "register", 0x16),
        ("digests", 0x1800_0001, "digest", 0x17),
    ];
    for (field, id, kind, prefix) in cases {
        let text = format!("{field} {{ preamble {{ id: {id} name: \"x\" }} }}");
        let col = field.len() + 19;
        let needle = format!("{kind} `x` has id {id:#010x}, but {kind} ids must start with byte {prefix:#04x}");
        let e = assert_error(&text, &format!("1:{col}"), &needle);
        assert!(matches!(e, P4InfoError::WrongIdPrefix { expected, .. } if expected == prefix), "{e}");
    }
}

#[test]
fn ids_are_unique_across_the_p4info_and_names_per_kind() {
    let text = "actions { preamble { id: 0x01000001 name: \"a\" } }\n\
                actions { preamble { id: 0x01000001 name: \"b\" } }";
    let e = assert_error(text, "2:26", "action `b` has id 0x01000001, already used by action `a` at 1:26");
    assert!(matches!(e, P4InfoError::DuplicateId { id: 0x0100_0001, .. }));
    let text = "actions { preamble { id: 0x01000001 name: \"a\" } }\n\
                actions { preamble { id: 0x01000002 name: \"a\" } }";
    assert_error(text, "2:1", "action name `a` is already used at 1:1");
    let text = "actions { preamble { id: 0x01000001 name: \"x.a\" alias: \"a\" } }\n\
                actions { preamble { id: 0x01000002 name: \"y.a\" alias: \"a\" } }";
    assert_error(text, "2:1", "action alias `a` is already used at 1:1");
    // The same name on objects of different kinds is fine (P4 scopes them apart).
    let text = "actions { preamble { id: 0x01000001 name: \"same\" } }\n\
                counters { preamble { id: 0x12000001 name: \"same\" } }";
    assert_eq!(ok(text).counters.len(), 1);
}

/// A table `t` using action `a` (id 0x01000001), with `extra` inside the table.
fn table_with(extra: &str) -> String {
    format!(
        "actions {{ preamble {{ id: 0x01000001 name: \"a\" }} }}\n\
         tables {{ preamble {{ id: 0x02000001 name: \"t\" }}\n{extra}\n}}"
    )
}

#[test]
fn references_must_name_an_object_of_the_right_kind() {
    let e = assert_error(
        &table_with("action_refs { id: 0x01000002 }"),
        "3:1",
        "action_refs of table `t` refers to id 0x01000002, which is not a known action",
    );
    assert!(matches!(e, P4InfoError::UnknownReference { expected: "action", .. }));
    assert_error(
        &table_with("implementation_id: 0x11000001"),
        "3:20",
        "implementation_id of table `t` refers to id 0x11000001, which is not a known action profile",
    );
    // A direct resource id that names an object, but not a direct resource.
    assert_error(&table_with("direct_resource_ids: 0x01000001"), "3:22", "not a known direct counter or meter");
    assert_error(
        "direct_counters { preamble { id: 0x13000001 name: \"c\" } }",
        "1:1",
        "direct_table_id of direct counter `c` refers to id 0x00000000, which is not a known table",
    );
    assert_error(
        "direct_meters { preamble { id: 0x15000001 name: \"m\" } direct_table_id: 0x02000009 }",
        "1:72",
        "not a known table",
    );
    assert_error(
        "action_profiles { preamble { id: 0x11000001 name: \"p\" } table_ids: 0x01000001 }",
        "1:68",
        "table_ids of action profile `p` refers to id 0x01000001",
    );
    // References may point forward in the text.
    let text = "tables { preamble { id: 0x02000001 name: \"t\" } action_refs { id: 0x01000001 } }\n\
                actions { preamble { id: 0x01000001 name: \"a\" } }";
    assert_eq!(ok(text).tables[0].action_refs[0].id, 0x0100_0001);
}

#[test]
fn table_members_are_checked() {
    let refs = "action_refs { id: 0x01000001 }";
    assert_error(
        &table_with(&format!("{refs} const_default_action_id: 0x01000002")),
        "3:57",
        "table `t`: const_default_action_id 0x01000002 is not one of the table's actions",
    );
    assert_error(&table_with(&format!("{refs}\n{refs}")), "4:1", "action id 0x01000001 is listed twice");
    assert_error(&table_with("match_fields { name: \"f\" }"), "3:1", "match field `f` has id 0");
    assert_error(&table_with("match_fields { id: 1 }"), "3:1", "match field with id 1 has no name");
    let two = "match_fields { id: 1 name: \"f\" }\nmatch_fields { id: 1 name: \"g\" }";
    assert_error(&table_with(two), "4:1", "match field `g` has id 1, already used at 3:1");
    let two = "match_fields { id: 1 name: \"f\" }\nmatch_fields { id: 2 name: \"f\" }";
    assert_error(&table_with(two), "4:1", "match field name `f` is already used at 3:1");
    let text = "actions { preamble { id: 0x01000001 name: \"a\" }\n params { id: 1 name: \"p\" }\n params { id: 2 name: \"p\" } }";
    assert_error(text, "3:2", "action `a`: parameter name `p` is already used at 2:2");
    let text =
        "controller_packet_metadata { preamble { id: 0x04000001 name: \"packet_in\" }\n metadata { name: \"p\" } }";
    assert_error(text, "2:2", "controller packet metadata `packet_in`: metadata field `p` has id 0");
    let text = "value_sets { preamble { id: 0x03000001 name: \"v\" }\n match { id: 1 } }";
    assert_error(text, "2:2", "value set `v`: match field with id 1 has no name");
}

// ---- The shared corpus of real P4Info files -----------------------------------------

use crate::p4::corpus::dir as corpus;

fn p4info_files(dir: &Path, out: &mut Vec<PathBuf>) {
    out.extend(crate::p4::corpus::files(dir, ".p4info.txt"));
}

fn corpus_file(dir: &Path, rel: &str) -> P4Info {
    let path = dir.join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    parse_text(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn corpus_every_p4info_parses() {
    let Some(dir) = corpus() else { return };
    let mut files = Vec::new();
    p4info_files(&dir, &mut files);
    assert!(!files.is_empty(), "no *.p4info.txt under {}", dir.display());
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        if let Err(e) = parse_text(&text) {
            panic!("{}: {e}", path.display());
        }
    }
    eprintln!("parsed {} P4Info files under {}", files.len(), dir.display());
}

#[test]
fn corpus_simple_router_tables() {
    let Some(dir) = corpus() else { return };
    let info = corpus_file(&dir, "simple_router/simple_router.p4info.txt");
    assert_eq!(info.tables.len(), 3);
    let key = |t: &str| {
        let t = info.table_by_name(t).unwrap_or_else(|| panic!("table {t}"));
        t.match_fields.iter().map(|m| (m.name.clone(), m.bitwidth, m.match_type.clone())).collect::<Vec<_>>()
    };
    assert_eq!(key("ipv4_lpm"), [("ipv4.dstAddr".to_string(), 32, MatchType::Lpm)]);
    assert_eq!(key("forward"), [("routing_metadata.nhop_ipv4".to_string(), 32, MatchType::Exact)]);
    assert_eq!(key("send_frame"), [("standard_metadata.egress_port".to_string(), 9, MatchType::Exact)]);
    let lpm = info.table_by_name("ipv4_lpm").expect("ipv4_lpm");
    assert_eq!(lpm.size, 1024);
    let actions: Vec<&str> =
        lpm.action_refs.iter().filter_map(|r| info.action(r.id)).map(|a| a.preamble.name.as_str()).collect();
    assert_eq!(actions, ["set_nhop", "_drop", "NoAction"]);
    let no_action = info.action_by_name("NoAction").expect("NoAction");
    assert_eq!(
        lpm.action_ref(no_action.preamble.id).map(|r| r.annotations.clone()),
        Some(vec!["@defaultonly()".into()])
    );
    let set_nhop = info.action_by_name("set_nhop").expect("set_nhop");
    let params: Vec<(&str, i32)> = set_nhop.params.iter().map(|p| (p.name.as_str(), p.bitwidth)).collect();
    assert_eq!(params, [("nhop_ipv4", 32), ("port", 9)]);
    assert_eq!(info.pkg_info, PkgInfo::default(), "simple_router has no pkg_info");
}

#[test]
fn corpus_onos_basic_packet_io_and_selector() {
    let Some(dir) = corpus() else { return };
    let info = corpus_file(&dir, "onos_basic/basic.p4info.txt");
    assert_eq!(info.pkg_info.arch, "v1model");
    let fields = |name: &str| {
        let h = info.controller_packet_metadata_by_name(name).unwrap_or_else(|| panic!("{name}"));
        h.metadata.iter().map(|m| (m.id, m.name.clone(), m.bitwidth)).collect::<Vec<_>>()
    };
    assert_eq!(fields("packet_in"), [(1, "ingress_port".to_string(), 9), (2, "_padding".to_string(), 7)]);
    assert_eq!(fields("packet_out"), [(1, "egress_port".to_string(), 9), (2, "_padding".to_string(), 7)]);
    let table0 = info.table_by_name("ingress.table0_control.table0").expect("table0");
    assert_eq!(table0.match_fields.len(), 9);
    assert!(table0.match_fields.iter().all(|m| m.match_type == MatchType::Ternary));
    let drop = info.action_by_name("ingress.table0_control.drop").expect("drop");
    assert_eq!(table0.const_default_action_id, drop.preamble.id);
    let counter = info.direct_counter(table0.direct_resource_ids[0]).expect("table0 counter");
    assert_eq!(counter.preamble.name, "ingress.table0_control.table0_counter");
    let wcmp = info.table_by_name("ingress.wcmp_control.wcmp_table").expect("wcmp_table");
    let selector = info.action_profile(wcmp.implementation_id).expect("wcmp selector");
    assert_eq!(selector.preamble.name, "ingress.wcmp_control.wcmp_selector");
    assert!(selector.with_selector);
    assert_eq!(selector.size, 64);
    assert_eq!(selector.table_ids, [wcmp.preamble.id]);
    assert_eq!(info.counters.len(), 2);
    assert!(info.counters.iter().all(|c| c.size == 511));
    assert!(info.meters.iter().all(|m| m.unit == MeterUnit::Bytes && m.size == 511));
    assert_eq!(info.direct_meters[0].preamble.name, "ingress.host_meter_control.host_meter");
    assert_eq!(info.direct_meters[0].unit, MeterUnit::Bytes);
}

#[test]
fn corpus_onos_fabric_is_large_and_has_a_hashed_selector() {
    let Some(dir) = corpus() else { return };
    let info = corpus_file(&dir, "onos_fabric/fabric.p4info.txt");
    assert!(info.tables.len() >= 15, "{} tables", info.tables.len());
    assert!(info.direct_counters.len() >= 13);
    let hashed = info.action_profile_by_name("FabricIngress.next.hashed_selector").expect("hashed selector");
    assert!(hashed.with_selector);
    assert_eq!(hashed.max_group_size, 16);
    let table = info.table(hashed.table_ids[0]).expect("hashed table");
    assert_eq!(table.preamble.name, "FabricIngress.next.hashed");
    assert_eq!(table.implementation_id, hashed.preamble.id);
    let out = info.controller_packet_metadata_by_name("packet_out").expect("packet_out");
    let names: Vec<(&str, i32)> = out.metadata.iter().map(|m| (m.name.as_str(), m.bitwidth)).collect();
    assert_eq!(&names[..3], [("egress_port", 9), ("do_forwarding", 1), ("_pad", 6)]);
    let acl = info.table_by_name("FabricIngress.acl.acl").expect("acl");
    assert_eq!(acl.match_fields.len(), 13);
    assert_eq!(info.meters.len(), 1);
    assert_eq!(info.meters[0].preamble.name, "FabricIngress.qos.slice_tc_meter");
}

#[test]
fn corpus_bmv2_grpc_tests_facts() {
    let Some(dir) = corpus() else { return };
    let opt = corpus_file(&dir, "bmv2_grpc_tests/optional.p4info.txt");
    let t = opt.table_by_name("ingress.opt").expect("ingress.opt");
    assert_eq!(t.match_fields, [mf(1, "h.hdr.f1", 16, MatchType::Optional)]);
    for empty in ["clone", "multicast"] {
        let info = corpus_file(&dir, &format!("bmv2_grpc_tests/{empty}.p4info.txt"));
        assert_eq!(info, P4Info::default(), "{empty}");
    }
    let ap = corpus_file(&dir, "bmv2_grpc_tests/action_profile.p4info.txt");
    let prof = ap.action_profile_by_name("ActProfWS").expect("ActProfWS");
    assert!(prof.with_selector);
    assert_eq!(prof.size, 128);
    let t = ap.table_by_name("IndirectWS").expect("IndirectWS");
    assert_eq!(prof.table_ids, [t.preamble.id]);
    let no_action = ap.action_by_name("NoAction").expect("NoAction");
    assert_eq!(t.action_ref(no_action.preamble.id).map(|r| r.scope), Some(ActionScope::DefaultOnly));
    let dg = corpus_file(&dir, "bmv2_grpc_tests/digest.p4info.txt");
    assert_eq!(dg.digests[0].type_name, "L2_digest");
    assert_eq!(dg.digests[0].preamble.id >> 24, 0x17);
    let smac = dg.table_by_name("ingress.smac").expect("ingress.smac");
    assert_eq!(smac.idle_timeout_behavior, IdleTimeoutBehavior::NotifyControl);
    let ct = corpus_file(&dir, "bmv2_grpc_tests/counter.p4info.txt");
    assert_eq!(ct.direct_counters[0].unit, CounterUnit::Both);
    assert_eq!(ct.direct_counters[0].direct_table_id, ct.tables[0].preamble.id);
    let mt = corpus_file(&dir, "bmv2_grpc_tests/meter.p4info.txt");
    assert_eq!(mt.direct_meters[0].unit, MeterUnit::Packets);
    let io = corpus_file(&dir, "bmv2_grpc_tests/packet_io.p4info.txt");
    assert!(io.controller_packet_metadata.is_empty());
    assert!(io.tables[0].match_fields.is_empty());
}

// ---- Robustness -----------------------------------------------------------------------

/// A real P4Info text to mutate: simple_router from the corpus when present, else the
/// fixture (so the property runs everywhere).
fn mutation_seed() -> String {
    corpus()
        .and_then(|d| std::fs::read_to_string(d.join("simple_router/simple_router.p4info.txt")).ok())
        .unwrap_or_else(|| FIXTURE.to_string())
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_text(s in "\\PC*") {
        let _ = parse_text(&s);
    }

    #[test]
    fn never_panics_on_mutated_p4info(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
        use_fixture in any::<bool>(),
    ) {
        let seed = if use_fixture { FIXTURE.to_string() } else { mutation_seed() };
        let mut bytes = seed.into_bytes();
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        let _ = parse_text(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn never_panics_on_token_level_mutations(
        drop_at in any::<prop::sample::Index>(),
        insert_at in any::<prop::sample::Index>(),
        insert in prop::sample::select(vec!["{", "}", "<", ">", "[", "]", ":", "-", "0x", "\"", "#", "\\", "tables", "id: 0", ",", ";"]),
    ) {
        let mut text = FIXTURE.to_string();
        let i = drop_at.index(text.len());
        if text.is_char_boundary(i) && text.is_char_boundary(i + 1) {
            text.remove(i);
        }
        let j = insert_at.index(text.len() + 1);
        if text.is_char_boundary(j) {
            text.insert_str(j, insert);
        }
        let _ = parse_text(&text);
    }
}
