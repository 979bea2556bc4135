//! Header stacks, header unions and varbit fields, on programs written for them.
//!
//! No program of the shared corpus uses any of them, and no P4 compiler can be
//! installed here, so [`stacks_json`] and [`options_json`] build the BMv2 JSON that
//! `p4c-bm2-ss` gives for the programs in their docs. In the first one's conventions: stack elements are header instances named
//! `mpls[0]`…, union members `ip.v4`/`ip.v6`, `extract(hdr.mpls.next)` is an extract of
//! type `stack`, `hdr.mpls.last.bos` a `stack_field`, `lastIndex` a
//! `last_stack_index`, `hdr.ip.isValid()` a `valid_union`, `push_front`/`pop_front` the
//! `push`/`pop` primitives, `hdr.mpls[i].f` with a run-time `i` an `access_field` of a
//! `dereference_header_stack`, and `hdr.saved = hdr.ip` an `assign_union`. Its egress
//! also makes E2E clones, which take a second egress pass.
//!
//! ```p4
//! header ethernet_t { bit<48> dst; bit<48> src; bit<16> ether_type; }
//! header mpls_t { bit<20> label; bit<3> tc; bit<1> bos; bit<8> ttl; }
//! header ipv4_t { /* the 20-byte IPv4 header */ }
//! header ipv6_t { /* the 40-byte IPv6 header */ }
//! header_union ip_t { ipv4_t v4; ipv6_t v6; }
//! struct headers_t { ethernet_t eth; mpls_t[3] mpls; ip_t ip; mpls_t[3] saved_mpls; ip_t saved_ip; }
//! struct meta_t { bit<8> depth; bit<2> idx; }
//!
//! parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
//!     state start { pkt.extract(hdr.eth);
//!         transition select(hdr.eth.ether_type) { 0x8847: mpls; 0x0800: v4; 0x86dd: v6; default: accept; } }
//!     state mpls { pkt.extract(hdr.mpls.next); transition select(hdr.mpls.last.bos) { 0: mpls; 1: inner; } }
//!     state inner { transition select(pkt.lookahead<bit<4>>()) { 4: v4; 6: v6; default: accept; } }
//!     state v4 { pkt.extract(hdr.ip.v4); transition accept; }
//!     state v6 { pkt.extract(hdr.ip.v6); transition accept; }
//! }
//! control ingress(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
//!     action drop() { mark_to_drop(sm); }
//!     action fwd(bit<9> port) { sm.egress_spec = port; }
//!     action swap(bit<20> label, bit<9> port) {
//!         hdr.mpls[0].label = label; hdr.mpls[0].ttl = hdr.mpls[0].ttl - 1;
//!         hdr.mpls[0].tc = (bit<3>) meta.depth; sm.egress_spec = port; }
//!     action pop(bit<9> port) {
//!         hdr.mpls.pop_front(1);
//!         hdr.eth.ether_type = hdr.mpls[0].isValid() ? 0x8847 : (hdr.ip.v4.isValid() ? 0x0800 : 0x86dd);
//!         sm.egress_spec = port; }
//!     action push(bit<20> label, bit<9> port) {
//!         hdr.mpls.push_front(1); hdr.mpls[0].setValid(); hdr.mpls[0].label = label;
//!         hdr.mpls[0].ttl = 64; hdr.mpls[0].bos = hdr.mpls[1].isValid() ? 0 : 1;
//!         hdr.eth.ether_type = 0x8847; sm.egress_spec = port; }
//!     action mark_at(bit<2> idx, bit<3> tc, bit<9> port) {
//!         meta.idx = idx; hdr.mpls[meta.idx].tc = tc;
//!         hdr.eth.src = (bit<48>) hdr.mpls[meta.idx].label; sm.egress_spec = port; }
//!     action v4_to_v6(bit<9> port) {
//!         hdr.ip.v6.setValid();  // the union: ip.v4 becomes invalid
//!         hdr.ip.v6.version = 6; hdr.ip.v6.next_hdr = hdr.ip.v4.protocol;
//!         hdr.ip.v6.hop_limit = hdr.ip.v4.ttl; hdr.ip.v6.src = (bit<128>) hdr.ip.v4.src;
//!         hdr.ip.v6.dst = (bit<128>) hdr.ip.v4.dst; hdr.eth.ether_type = 0x86dd; sm.egress_spec = port; }
//!     table lfib { key = { hdr.mpls[0].label: exact; } actions = { swap; pop; push; mark_at; drop; }
//!                  default_action = drop(); }
//!     table ip_host { key = { hdr.eth.dst: exact; } actions = { push; v4_to_v6; fwd; drop; }
//!                     default_action = drop(); }
//!     apply {
//!         meta.depth = (bit<8>) (hdr.mpls.lastIndex + 1);
//!         if (hdr.mpls[0].isValid()) { lfib.apply(); }
//!         else if (hdr.ip.isValid()) { ip_host.apply(); }
//!         else { drop(); }
//!     }
//! }
//! control egress(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
//!     action roundtrip() {  // copies out and back: the packet must not change
//!         hdr.saved_ip = hdr.ip; hdr.ip.v4.setInvalid(); hdr.ip.v6.setInvalid(); hdr.ip = hdr.saved_ip;
//!         hdr.saved_mpls = hdr.mpls; hdr.mpls.pop_front(3); hdr.mpls = hdr.saved_mpls; }
//!     action mirror(bit<32> session) { clone_preserving_field_list(CloneType.E2E, session, 1); hdr.mpls[0].ttl = 1; }
//!     action mirror_and_drop(bit<32> session) { clone_preserving_field_list(CloneType.E2E, session, 1); mark_to_drop(sm); }
//!     action mark_clone() { hdr.eth.dst = 0xcc; hdr.eth.src = (bit<48>) meta.depth; }  // depth: @field_list(1)
//!     table mirror_port { key = { sm.egress_port: exact; } actions = { mirror; mirror_and_drop; NoAction; }
//!                         default_action = NoAction(); }
//!     apply {
//!         roundtrip();
//!         if (sm.instance_type == 2) { mark_clone(); }  // an E2E clone's second egress pass
//!         mirror_port.apply();
//!     }
//! }
//! control deparser(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.eth); pkt.emit(hdr.mpls); pkt.emit(hdr.ip); } }
//! ```

use serde_json::{json, Value as Json};

use super::compile::compile_bytes;
use super::engine_tests::Prog;
use super::interp::{DropCause, Interp, MAX_E2E_DEPTH};
use super::ir::*;
use super::tables::Runtime;
use super::track::{Fate, NoTrack, Track, Tracker};

fn f(h: &str, field: &str) -> Json {
    json!({"type": "field", "value": [h, field]})
}

fn hex(v: u128) -> Json {
    json!({"type": "hexstr", "value": format!("0x{v:x}")})
}

fn param(i: u32) -> Json {
    json!({"type": "runtime_data", "value": i})
}

fn ex(op: &str, left: Json, right: Json) -> Json {
    json!({"type": "expression", "value": {"op": op, "left": left, "right": right}})
}

fn cond(c: Json, then: Json, els: Json) -> Json {
    json!({"type": "expression", "value": {"op": "?", "cond": c, "left": then, "right": els}})
}

fn valid(h: &str) -> Json {
    ex("d2b", Json::Null, f(h, "$valid$"))
}

fn hdr(h: &str) -> Json {
    json!({"type": "header", "value": h})
}

fn stack(s: &str) -> Json {
    json!({"type": "header_stack", "value": s})
}

fn prim(op: &str, params: Vec<Json>) -> Json {
    json!({"op": op, "parameters": params})
}

fn assign(h: &str, field: &str, v: Json) -> Json {
    prim("assign", vec![f(h, field), v])
}

fn masked(e: Json, width: u32) -> Json {
    ex("&", e, hex((1u128 << width) - 1))
}

/// `stack[meta.idx].<field offset>`, as p4c writes a run-time index.
fn at_idx(field: u32) -> Json {
    json!({"type": "expression", "value": {"op": "access_field",
        "left": {"type": "expression", "value": {"op": "dereference_header_stack",
            "left": stack("mpls"), "right": f("meta", "idx")}},
        "right": field}})
}

fn action(id: u32, name: &str, params: &[(&str, u32)], primitives: Vec<Json>) -> Json {
    let rd: Vec<Json> = params.iter().map(|(n, w)| json!({"name": n, "bitwidth": w})).collect();
    json!({"name": name, "id": id, "runtime_data": rd, "primitives": primitives})
}

fn table(id: u32, name: &str, key: Json, actions: &[(u32, &str)], default: u32, next: Json) -> Json {
    let ids: Vec<u32> = actions.iter().map(|a| a.0).collect();
    let names: Vec<&str> = actions.iter().map(|a| a.1).collect();
    let next_tables: serde_json::Map<String, Json> = names.iter().map(|n| (n.to_string(), next.clone())).collect();
    json!({"name": name, "id": id, "key": key, "match_type": "exact", "type": "simple", "max_size": 1024,
        "with_counters": false, "support_timeout": false, "direct_meters": null,
        "action_ids": ids, "actions": names, "base_default_next": next, "next_tables": next_tables,
        "default_entry": {"action_id": default, "action_const": false, "action_data": [], "action_entry_const": false}})
}

fn ty(id: u32, name: &str, fields: &[(&str, u32)]) -> Json {
    let fs: Vec<Json> = fields.iter().map(|(n, w)| json!([n, w, false])).collect();
    json!({"name": name, "id": id, "fields": fs})
}

/// A v1model program: `sections` plus every section it leaves out, empty, and the
/// core error codes.
fn v1model(name: &str, sections: Json) -> Vec<u8> {
    let mut prog = json!({
        "program": name,
        "__meta__": {"version": [2, 23], "compiler": "fastpath/src/p4/stack_tests.rs"},
        "header_stacks": [], "header_union_types": [], "header_unions": [], "header_union_stacks": [],
        "field_lists": [],
        "errors": [["NoError", 0], ["PacketTooShort", 1], ["NoMatch", 2], ["StackOutOfBounds", 3],
                   ["HeaderTooShort", 4], ["ParserTimeout", 5], ["ParserInvalidArgument", 6]],
        "enums": [], "parse_vsets": [], "meter_arrays": [], "counter_arrays": [], "register_arrays": [],
        "calculations": [], "learn_lists": [], "checksums": [], "force_arith": [], "extern_instances": [],
        "field_aliases": []
    });
    if let (Some(p), Json::Object(s)) = (prog.as_object_mut(), sections) {
        p.extend(s);
    }
    serde_json::to_vec_pretty(&prog).unwrap()
}

fn prog_of(ir: Ir) -> Prog {
    let rt = Runtime::new(&ir);
    let it = Interp::new(&ir);
    Prog { ir, rt, it }
}

const IPV4: [(&str, u32); 12] = [
    ("version", 4),
    ("ihl", 4),
    ("diffserv", 8),
    ("total_len", 16),
    ("identification", 16),
    ("flags", 3),
    ("frag_offset", 13),
    ("ttl", 8),
    ("protocol", 8),
    ("hdr_checksum", 16),
    ("src", 32),
    ("dst", 32),
];

const STD: &[(&str, u32)] = &[
    ("ingress_port", 9),
    ("egress_spec", 9),
    ("egress_port", 9),
    ("instance_type", 32),
    ("packet_length", 32),
    ("mcast_grp", 16),
    ("egress_rid", 16),
    ("checksum_error", 1),
    ("parser_error", 32),
    ("_padding", 4),
];

/// The BMv2 JSON of the program in the module doc.
pub(crate) fn stacks_json() -> Vec<u8> {
    let ipv6 = [
        ("version", 4),
        ("traffic_class", 8),
        ("flow_label", 20),
        ("payload_len", 16),
        ("next_hdr", 8),
        ("hop_limit", 8),
        ("src", 128),
        ("dst", 128),
    ];
    let header_types = vec![
        ty(0, "standard_metadata", STD),
        ty(1, "meta_t", &[("depth", 8), ("idx", 2), ("_padding", 6)]),
        ty(2, "ethernet_t", &[("dst", 48), ("src", 48), ("ether_type", 16)]),
        ty(3, "mpls_t", &[("label", 20), ("tc", 3), ("bos", 1), ("ttl", 8)]),
        ty(4, "ipv4_t", &IPV4),
        ty(5, "ipv6_t", &ipv6),
    ];
    let instances = [
        ("standard_metadata", "standard_metadata", true),
        ("meta", "meta_t", true),
        ("eth", "ethernet_t", false),
        ("mpls[0]", "mpls_t", false),
        ("mpls[1]", "mpls_t", false),
        ("mpls[2]", "mpls_t", false),
        ("ip.v4", "ipv4_t", false),
        ("ip.v6", "ipv6_t", false),
        ("saved_mpls[0]", "mpls_t", false),
        ("saved_mpls[1]", "mpls_t", false),
        ("saved_mpls[2]", "mpls_t", false),
        ("saved_ip.v4", "ipv4_t", false),
        ("saved_ip.v6", "ipv6_t", false),
    ];
    // JSON ids are not indexes (p4c numbers them, we start at 10 to prove it).
    let headers: Vec<Json> = instances
        .iter()
        .enumerate()
        .map(|(i, (n, t, m))| json!({"name": n, "id": 10 + i, "header_type": t, "metadata": m}))
        .collect();
    let states = json!([
        {"name": "start", "id": 0, "parser_ops": [{"op": "extract", "parameters": [{"type": "regular", "value": "eth"}]}],
         "transition_key": [f("eth", "ether_type")],
         "transitions": [
            {"type": "hexstr", "value": "0x8847", "mask": null, "next_state": "parse_mpls"},
            {"type": "hexstr", "value": "0x0800", "mask": null, "next_state": "parse_v4"},
            {"type": "hexstr", "value": "0x86dd", "mask": null, "next_state": "parse_v6"},
            {"type": "default", "value": null, "mask": null, "next_state": null}]},
        {"name": "parse_mpls", "id": 1, "parser_ops": [{"op": "extract", "parameters": [{"type": "stack", "value": "mpls"}]}],
         "transition_key": [{"type": "stack_field", "value": ["mpls", "bos"]}],
         "transitions": [
            {"type": "hexstr", "value": "0x00", "mask": null, "next_state": "parse_mpls"},
            {"type": "hexstr", "value": "0x01", "mask": null, "next_state": "parse_inner"}]},
        {"name": "parse_inner", "id": 2, "parser_ops": [],
         "transition_key": [{"type": "lookahead", "value": [0, 4]}],
         "transitions": [
            {"type": "hexstr", "value": "0x04", "mask": null, "next_state": "parse_v4"},
            {"type": "hexstr", "value": "0x06", "mask": null, "next_state": "parse_v6"},
            {"type": "default", "value": null, "mask": null, "next_state": null}]},
        {"name": "parse_v4", "id": 3, "parser_ops": [{"op": "extract", "parameters": [{"type": "regular", "value": "ip.v4"}]}],
         "transition_key": [], "transitions": [{"type": "default", "value": null, "mask": null, "next_state": null}]},
        {"name": "parse_v6", "id": 4, "parser_ops": [{"op": "extract", "parameters": [{"type": "regular", "value": "ip.v6"}]}],
         "transition_key": [], "transitions": [{"type": "default", "value": null, "mask": null, "next_state": null}]}
    ]);
    let port = |i| assign("standard_metadata", "egress_spec", param(i));
    let actions = vec![
        action(0, "ingress.drop", &[], vec![prim("mark_to_drop", vec![hdr("standard_metadata")])]),
        action(1, "ingress.fwd", &[("port", 9)], vec![port(0)]),
        action(
            2,
            "ingress.swap",
            &[("label", 20), ("port", 9)],
            vec![
                assign("mpls[0]", "label", param(0)),
                assign("mpls[0]", "ttl", masked(ex("-", f("mpls[0]", "ttl"), hex(1)), 8)),
                assign("mpls[0]", "tc", masked(f("meta", "depth"), 3)),
                port(1),
            ],
        ),
        action(
            3,
            "ingress.pop",
            &[("port", 9)],
            vec![
                prim("pop", vec![stack("mpls"), hex(1)]),
                assign(
                    "eth",
                    "ether_type",
                    cond(valid("mpls[0]"), hex(0x8847), cond(valid("ip.v4"), hex(0x0800), hex(0x86dd))),
                ),
                port(0),
            ],
        ),
        action(
            4,
            "ingress.push",
            &[("label", 20), ("port", 9)],
            vec![
                prim("push", vec![stack("mpls"), hex(1)]),
                prim("add_header", vec![hdr("mpls[0]")]),
                assign("mpls[0]", "label", param(0)),
                assign("mpls[0]", "ttl", hex(64)),
                assign("mpls[0]", "bos", cond(valid("mpls[1]"), hex(0), hex(1))),
                assign("eth", "ether_type", hex(0x8847)),
                port(1),
            ],
        ),
        action(
            5,
            "ingress.mark_at",
            &[("idx", 2), ("tc", 3), ("port", 9)],
            vec![
                assign("meta", "idx", param(0)),
                prim("assign", vec![json!({"type": "expression", "value": at_idx(1)}), param(1)]),
                assign("eth", "src", masked(at_idx(0), 48)),
                port(2),
            ],
        ),
        action(
            6,
            "ingress.v4_to_v6",
            &[("port", 9)],
            vec![
                prim("add_header", vec![hdr("ip.v6")]),
                assign("ip.v6", "version", hex(6)),
                assign("ip.v6", "next_hdr", f("ip.v4", "protocol")),
                assign("ip.v6", "hop_limit", f("ip.v4", "ttl")),
                assign("ip.v6", "src", f("ip.v4", "src")),
                assign("ip.v6", "dst", f("ip.v4", "dst")),
                assign("eth", "ether_type", hex(0x86dd)),
                port(0),
            ],
        ),
        action(
            7,
            "ingress.set_depth",
            &[],
            vec![assign(
                "meta",
                "depth",
                masked(ex("+", ex("last_stack_index", Json::Null, stack("mpls")), hex(1)), 8),
            )],
        ),
        action(
            8,
            "egress.roundtrip",
            &[],
            vec![
                prim(
                    "assign_union",
                    vec![
                        json!({"type": "header_union", "value": "saved_ip"}),
                        json!({"type": "header_union", "value": "ip"}),
                    ],
                ),
                prim("remove_header", vec![hdr("ip.v4")]),
                prim("remove_header", vec![hdr("ip.v6")]),
                prim(
                    "assign_union",
                    vec![
                        json!({"type": "header_union", "value": "ip"}),
                        json!({"type": "header_union", "value": "saved_ip"}),
                    ],
                ),
                prim("assign_header_stack", vec![stack("saved_mpls"), stack("mpls")]),
                prim("pop", vec![stack("mpls"), hex(3)]),
                prim("assign_header_stack", vec![stack("mpls"), stack("saved_mpls")]),
            ],
        ),
        action(
            9,
            "egress.mirror",
            &[("session", 32)],
            vec![prim("clone_egress_pkt_to_egress", vec![param(0), hex(1)]), assign("mpls[0]", "ttl", hex(1))],
        ),
        action(
            10,
            "egress.mirror_and_drop",
            &[("session", 32)],
            vec![
                prim("clone_egress_pkt_to_egress", vec![param(0), hex(1)]),
                prim("mark_to_drop", vec![hdr("standard_metadata")]),
            ],
        ),
        action(
            11,
            "egress.mark_clone",
            &[],
            vec![assign("eth", "dst", hex(0xcc)), assign("eth", "src", masked(f("meta", "depth"), 48))],
        ),
        action(12, "NoAction", &[], vec![]),
    ];
    let exact = |h: &str, fl: &str| json!([{"match_type": "exact", "name": format!("{h}.{fl}"), "target": [h, fl], "mask": null}]);
    let ingress = json!({
        "name": "ingress", "id": 0, "init_table": "tbl_set_depth", "action_profiles": [],
        "tables": [
            table(0, "tbl_set_depth", json!([]), &[(7, "ingress.set_depth")], 7, json!("node_mpls")),
            table(1, "ingress.lfib", exact("mpls[0]", "label"),
                &[(2, "ingress.swap"), (3, "ingress.pop"), (4, "ingress.push"), (5, "ingress.mark_at"), (0, "ingress.drop")], 0, Json::Null),
            table(2, "ingress.ip_host", exact("eth", "dst"),
                &[(4, "ingress.push"), (6, "ingress.v4_to_v6"), (1, "ingress.fwd"), (0, "ingress.drop")], 0, Json::Null),
            table(3, "tbl_drop", json!([]), &[(0, "ingress.drop")], 0, Json::Null)
        ],
        "conditionals": [
            {"name": "node_mpls", "id": 0, "expression": valid("mpls[0]"), "true_next": "ingress.lfib", "false_next": "node_ip"},
            {"name": "node_ip", "id": 1,
             "expression": ex("valid_union", Json::Null, json!({"type": "header_union", "value": "ip"})),
             "true_next": "ingress.ip_host", "false_next": "tbl_drop"}
        ]
    });
    let egress = json!({
        "name": "egress", "id": 1, "init_table": "tbl_roundtrip", "action_profiles": [],
        "tables": [
            table(4, "tbl_roundtrip", json!([]), &[(8, "egress.roundtrip")], 8, json!("node_is_clone")),
            table(5, "tbl_mark_clone", json!([]), &[(11, "egress.mark_clone")], 11, json!("egress.mirror_port")),
            table(6, "egress.mirror_port", exact("standard_metadata", "egress_port"),
                &[(9, "egress.mirror"), (10, "egress.mirror_and_drop"), (12, "NoAction")], 12, Json::Null)
        ],
        "conditionals": [
            {"name": "node_is_clone", "id": 2,
             "expression": ex("==", f("standard_metadata", "instance_type"), hex(2)),
             "true_next": "tbl_mark_clone", "false_next": "egress.mirror_port"}
        ]
    });
    v1model(
        "stacks.p4",
        json!({
            "header_types": header_types,
            "headers": headers,
            "header_stacks": [
                {"name": "mpls", "id": 0, "header_type": "mpls_t", "size": 3, "header_ids": [13, 14, 15]},
                {"name": "saved_mpls", "id": 1, "header_type": "mpls_t", "size": 3, "header_ids": [18, 19, 20]}
            ],
            "header_union_types": [{"name": "ip_t", "id": 0, "headers": [["v4", "ipv4_t"], ["v6", "ipv6_t"]]}],
            "header_unions": [
                {"name": "ip", "id": 0, "union_type": "ip_t", "header_ids": [16, 17]},
                {"name": "saved_ip", "id": 1, "union_type": "ip_t", "header_ids": [21, 22]}
            ],
            "field_lists": [{"id": 1, "name": "fl", "elements": [f("meta", "depth")]}],
            "parsers": [{"name": "parser", "id": 0, "init_state": "start", "parse_states": states}],
            "deparsers": [{"name": "deparser", "id": 0,
                           "order": ["eth", "mpls[0]", "mpls[1]", "mpls[2]", "ip.v4", "ip.v6"], "primitives": []}],
            "actions": actions,
            "pipelines": [ingress, egress]
        }),
    )
}

/// The compiled program.
pub(crate) fn stacks_ir() -> Ir {
    compile_bytes(&stacks_json()).unwrap_or_else(|e| panic!("stacks program: {e}"))
}

fn prog() -> Prog {
    prog_of(stacks_ir())
}

const DST: [u8; 6] = [0, 0, 0, 0, 0, 0xaa];
const SRC: [u8; 6] = [0, 0, 0, 0, 0, 0xbb];

fn eth(ether_type: u16) -> Vec<u8> {
    let mut p = DST.to_vec();
    p.extend_from_slice(&SRC);
    p.extend_from_slice(&ether_type.to_be_bytes());
    p
}

fn label(l: u32, tc: u8, bos: bool, ttl: u8) -> [u8; 4] {
    ((l << 12) | ((tc as u32 & 7) << 9) | ((bos as u32) << 8) | ttl as u32).to_be_bytes()
}

fn ipv4() -> Vec<u8> {
    let mut h = vec![0x45, 0, 0, 28, 0, 1, 0, 0, 33, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
    h.extend_from_slice(&[0x11; 8]);
    h
}

/// Ethernet + the labels (bottom of stack on the last) + an IPv4 packet.
fn mpls(labels: &[u32]) -> Vec<u8> {
    let mut p = eth(0x8847);
    for (i, l) in labels.iter().enumerate() {
        p.extend_from_slice(&label(*l, 0, i + 1 == labels.len(), 10 + i as u8));
    }
    p.extend_from_slice(&ipv4());
    p
}

fn lfib(p: &mut Prog, l: u32, action: &str, args: &[Value]) {
    p.add("ingress.lfib", vec![KeyValue::Exact(l as Value)], action, args, 0);
}

#[test]
fn the_program_loads_with_its_stacks_and_unions() {
    let ir = stacks_ir();
    let names = |hs: &[HeaderId]| hs.iter().map(|h| ir.headers[*h as usize].name.clone()).collect::<Vec<_>>();
    assert_eq!(ir.stacks.len(), 2);
    assert_eq!(names(&ir.stacks[ir.stack("mpls").unwrap() as usize].headers), ["mpls[0]", "mpls[1]", "mpls[2]"]);
    assert_eq!(names(&ir.unions[0].headers), ["ip.v4", "ip.v6"]);
    assert_eq!(ir.headers[ir.header("ip.v6").unwrap() as usize].union, Some(0));
    assert_eq!(ir.headers[ir.header("eth").unwrap() as usize].union, None);
}

#[test]
fn swap_rewrites_the_top_label_and_sees_the_depth() {
    let mut p = prog();
    lfib(&mut p, 100, "ingress.swap", &[200, 3]);
    let input = mpls(&[100, 7]);
    let out = p.run(1, &input);
    let mut want = input.clone();
    // label 200, tc = depth 2, bos 0, ttl 10 - 1.
    want[14..18].copy_from_slice(&label(200, 2, false, 9));
    assert_eq!(out, vec![(3, want)]);
}

#[test]
fn pop_removes_the_top_label_and_fixes_the_ether_type() {
    let mut p = prog();
    lfib(&mut p, 100, "ingress.pop", &[2]);
    // Two labels: the inner one is on top afterwards.
    let out = p.run(1, &mpls(&[100, 7]));
    let mut want = eth(0x8847);
    want.extend_from_slice(&label(7, 0, true, 11));
    want.extend_from_slice(&ipv4());
    assert_eq!(out, vec![(2, want)]);
    // One label: plain IPv4 afterwards.
    let out = p.run(1, &mpls(&[100]));
    let mut want = eth(0x0800);
    want.extend_from_slice(&ipv4());
    assert_eq!(out, vec![(2, want)]);
}

#[test]
fn push_adds_a_label_on_top_and_the_full_stack_drops_its_bottom() {
    let mut p = prog();
    lfib(&mut p, 100, "ingress.push", &[300, 4]);
    let out = p.run(1, &mpls(&[100, 7]));
    let mut want = eth(0x8847);
    want.extend_from_slice(&label(300, 0, false, 64));
    want.extend_from_slice(&label(100, 0, false, 10));
    want.extend_from_slice(&label(7, 0, true, 11));
    want.extend_from_slice(&ipv4());
    assert_eq!(out, vec![(4, want)]);
    // Three labels fill the stack: the bottom one falls off (its bytes with it).
    let out = p.run(1, &mpls(&[100, 7, 8]));
    let mut want = eth(0x8847);
    want.extend_from_slice(&label(300, 0, false, 64));
    want.extend_from_slice(&label(100, 0, false, 10));
    want.extend_from_slice(&label(7, 0, false, 11));
    want.extend_from_slice(&ipv4());
    assert_eq!(out, vec![(4, want)]);
    // An IPv4 packet gets its first label, bottom of stack.
    p.add("ingress.ip_host", vec![KeyValue::Exact(0xaa)], "ingress.push", &[300, 5], 0);
    let mut v4 = eth(0x0800);
    v4.extend_from_slice(&ipv4());
    let mut want = eth(0x8847);
    want.extend_from_slice(&label(300, 0, true, 64));
    want.extend_from_slice(&ipv4());
    assert_eq!(p.run(1, &v4), vec![(5, want)]);
}

#[test]
fn a_fourth_label_overflows_the_stack_and_parsing_stops_there() {
    let mut p = prog();
    lfib(&mut p, 100, "ingress.swap", &[200, 3]);
    let input = mpls(&[100, 7, 8, 9]);
    // Parsing stopped with StackOutOfBounds after three labels: the fourth label and
    // the IPv4 header are payload; the top label is swapped, depth 3.
    let out = p.run(1, &input);
    let mut want = input.clone();
    want[14..18].copy_from_slice(&label(200, 3, false, 9));
    assert_eq!(out, vec![(3, want)]);
    let mut t = Tracker::new(&p.ir);
    t.begin();
    p.it.run(&p.ir, &mut p.rt, &input, 1, &mut t);
    assert_eq!(t.reads.parsed, 14 + 12, "three labels parsed");
}

#[test]
fn a_runtime_index_reads_and_writes_the_element_it_names() {
    let mut p = prog();
    lfib(&mut p, 100, "ingress.mark_at", &[1, 5, 6]);
    let input = mpls(&[100, 0xabcde, 9]);
    let out = p.run(1, &input);
    let mut want = input.clone();
    want[6..12].copy_from_slice(&[0, 0, 0, 0x0a, 0xbc, 0xde]);
    want[18..22].copy_from_slice(&label(0xabcde, 5, false, 11));
    assert_eq!(out, vec![(6, want)]);
    // Index 3 is past the end: the write does nothing and the read gives 0.
    let mut p = prog();
    lfib(&mut p, 100, "ingress.mark_at", &[3, 5, 6]);
    let out = p.run(1, &input);
    let mut want = input.clone();
    want[6..12].copy_from_slice(&[0; 6]);
    assert_eq!(out, vec![(6, want)]);
}

#[test]
fn making_one_union_member_valid_invalidates_the_other() {
    let mut p = prog();
    p.add("ingress.ip_host", vec![KeyValue::Exact(0xaa)], "ingress.v4_to_v6", &[2], 0);
    let mut input = eth(0x0800);
    input.extend_from_slice(&ipv4());
    let out = p.run(1, &input);
    let mut want = eth(0x86dd);
    let mut v6 = [0u8; 40];
    v6[0] = 0x60; // version 6
    v6[6] = 17; // next header: the IPv4 protocol
    v6[7] = 33; // hop limit: the IPv4 TTL
    v6[20..24].copy_from_slice(&[10, 0, 0, 1]); // the IPv4 addresses, zero-extended
    v6[36..40].copy_from_slice(&[10, 0, 0, 2]);
    want.extend_from_slice(&v6);
    // The IPv4 header is no longer emitted; its payload follows.
    want.extend_from_slice(&[0x11; 8]);
    assert_eq!(out, vec![(2, want)]);
}

#[test]
fn a_packet_with_neither_labels_nor_ip_is_dropped() {
    let mut p = prog();
    let mut arp = eth(0x0806);
    arp.extend_from_slice(&[0; 28]);
    assert!(p.run(1, &arp).is_empty());
    assert_eq!(p.drops(), vec![DropCause::Ingress]);
}

#[test]
fn stack_shifts_keep_the_packet_bytes_as_copies_in_the_edit() {
    // A popped stack's remaining labels come from the packet: the megaflow copies
    // them and does not match on their values.
    let mut p = prog();
    lfib(&mut p, 100, "ingress.pop", &[2]);
    let input = mpls(&[100, 7]);
    let mut t = Tracker::new(&p.ir);
    t.begin();
    p.it.run(&p.ir, &mut p.rt, &input, 1, &mut t);
    t.finish(&p.it.out.drops);
    assert_eq!(t.uncacheable, None);
    let [Fate::Output { edit, .. }] = t.fates.as_slice() else { panic!("{:?}", t.fates) };
    let mut out = vec![];
    edit.apply(&input, &mut out);
    // A cacheable tracked run leaves its bytes undeparsed: the untracked run's.
    assert!(!t.needs_bytes());
    p.it.run(&p.ir, &mut p.rt, &input, 1, &mut NoTrack);
    assert_eq!(out, p.it.out.packets()[0].bytes);
    // The inner label's value (bytes 18..21 but its bos bit) was not read.
    assert_eq!(t.reads.packet_byte(18), 0);
    assert_eq!(t.reads.packet_byte(19), 0);
}

#[test]
fn tracked_megaflows_cover_their_siblings_with_stacks_and_unions() {
    // Every action on 0–4 labels (and plain IPv4): change any bit the tracker did not
    // mark, and the interpreter gives what the tracked edit gives.
    let setups: [(&str, &[Value]); 7] = [
        ("ingress.swap", &[200, 3]),
        ("ingress.pop", &[2]),
        ("ingress.push", &[300, 4]),
        ("ingress.mark_at", &[0, 5, 6]),
        ("ingress.mark_at", &[2, 5, 6]),
        ("ingress.mark_at", &[3, 5, 6]),
        ("ingress.drop", &[]),
    ];
    let noises: [&[u8]; 3] = [&[0x5a, 0xa5, 0x3c], &[0xff], &[0x00, 0x81, 0x18, 0xe7]];
    let mut cached = 0;
    for (action, args) in setups {
        let mut p = prog();
        lfib(&mut p, 100, action, args);
        let host = if action == "ingress.pop" { "ingress.v4_to_v6" } else { "ingress.push" };
        let host_args: &[Value] = if action == "ingress.pop" { &[2] } else { &[300, 4] };
        p.add("ingress.ip_host", vec![KeyValue::Exact(0xaa)], host, host_args, 0);
        let mut v4 = eth(0x0800);
        v4.extend_from_slice(&ipv4());
        let packets = [mpls(&[100]), mpls(&[100, 7]), mpls(&[100, 7, 8]), mpls(&[100, 7, 8, 9]), v4];
        for pkt in &packets {
            for noise in noises {
                cached += super::engine_tests::check_tracking(&mut p, 1, pkt, noise) as u32;
            }
        }
    }
    assert_eq!(cached, 7 * 5 * 3, "every case is cacheable");
}

fn mirror(p: &mut Prog, port: u32, action: &str, session: u32, to: u32) {
    p.add("egress.mirror_port", vec![KeyValue::Exact(port as Value)], action, &[session as Value], 0);
    p.rt.clone_sessions.insert(session, (vec![(to, 0)], 0));
}

#[test]
fn an_e2e_clone_takes_a_second_egress_pass_with_its_field_list() {
    let mut p = prog();
    lfib(&mut p, 100, "ingress.swap", &[200, 3]);
    mirror(&mut p, 3, "egress.mirror", 7, 9);
    let input = mpls(&[100, 7]);
    let out = p.run(1, &input);
    // The original: swapped, then the mirror action set the top TTL to 1 after it
    // asked for the clone. The clone sees that too (it is taken after the egress
    // control), and its own egress pass marks it: dst 0xcc, src = the kept depth (2).
    let mut original = input.clone();
    original[14..18].copy_from_slice(&label(200, 2, false, 1));
    let mut clone = original.clone();
    clone[0..12].copy_from_slice(&[0, 0, 0, 0, 0, 0xcc, 0, 0, 0, 0, 0, 2]);
    assert_eq!(out, vec![(3, original), (9, clone)]);
    assert_eq!(p.it.out.packets()[1].instance, instance::EGRESS_CLONE);
}

#[test]
fn an_e2e_clone_survives_the_drop_of_the_copy_that_made_it() {
    let mut p = prog();
    lfib(&mut p, 100, "ingress.swap", &[200, 3]);
    mirror(&mut p, 3, "egress.mirror_and_drop", 7, 9);
    let input = mpls(&[100]);
    let out = p.run(1, &input);
    let mut clone = input.clone();
    clone[0..12].copy_from_slice(&[0, 0, 0, 0, 0, 0xcc, 0, 0, 0, 0, 0, 1]);
    clone[14..18].copy_from_slice(&label(200, 1, true, 9));
    assert_eq!(out, vec![(9, clone)]);
    assert_eq!(p.drops(), vec![DropCause::Egress]);
}

#[test]
fn e2e_clones_of_clones_stop_at_the_depth_limit() {
    let mut p = prog();
    lfib(&mut p, 100, "ingress.swap", &[200, 3]);
    mirror(&mut p, 3, "egress.mirror", 7, 9);
    // The clone leaves on port 9, which mirrors again, to itself.
    mirror(&mut p, 9, "egress.mirror", 7, 9);
    let out = p.run(1, &mpls(&[100]));
    let ports: Vec<u32> = out.iter().map(|o| o.0).collect();
    assert_eq!(ports, vec![3, 9, 9, 9], "the original and {} nested clones", MAX_E2E_DEPTH - 1);
    assert_eq!(p.drops(), vec![DropCause::PassLimit]);
}

#[test]
fn e2e_clones_are_cacheable_and_their_megaflows_hold() {
    let noises: [&[u8]; 2] = [&[0x5a, 0xa5, 0x3c], &[0x00, 0x81, 0x18, 0xe7]];
    for action in ["egress.mirror", "egress.mirror_and_drop"] {
        let mut p = prog();
        lfib(&mut p, 100, "ingress.swap", &[200, 3]);
        lfib(&mut p, 1, "ingress.pop", &[3]);
        mirror(&mut p, 3, action, 7, 9);
        for pkt in [mpls(&[100]), mpls(&[100, 7]), mpls(&[1, 2, 3])] {
            for noise in noises {
                assert!(super::engine_tests::check_tracking(&mut p, 1, &pkt, noise), "{action} {pkt:02x?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Varbit fields: IPv4 options.

/// The BMv2 JSON of this program (IPv4 options as a varbit field, extracted with a
/// length computed from the IHL, covered by the checksum):
///
/// ```p4
/// header ipv4_options_t { varbit<256> options; }
/// struct headers_t { ethernet_t eth; ipv4_t ipv4; ipv4_options_t ipv4_options; ipv4_options_t opts2; }
/// parser P(...) {
///     state start { pkt.extract(hdr.eth); transition select(hdr.eth.ether_type) { 0x0800: v4; default: accept; } }
///     state v4 { pkt.extract(hdr.ipv4);
///                pkt.extract(hdr.ipv4_options, (bit<32>) (((bit<32>) hdr.ipv4.ihl - 5) * 32)); transition accept; }
/// }
/// control ingress(...) {
///     action drop() { mark_to_drop(sm); }
///     action fwd(bit<9> port, bit<48> dmac) { hdr.eth.dst = dmac; hdr.ipv4.ttl = hdr.ipv4.ttl - 1; sm.egress_spec = port; }
///     action strip(bit<9> port) {
///         hdr.ipv4.total_len = hdr.ipv4.total_len - (((bit<16>) hdr.ipv4.ihl - 5) << 2);
///         hdr.ipv4.ihl = 5; hdr.ipv4_options.setInvalid(); sm.egress_spec = port; }
///     action dup(bit<9> port) { hdr.opts2.setValid(); hdr.opts2.options = hdr.ipv4_options.options; sm.egress_spec = port; }
///     table route { key = { hdr.ipv4.dst: exact; } actions = { fwd; strip; dup; drop; } default_action = drop(); }
///     apply { if (hdr.ipv4.isValid()) { route.apply(); } else { drop(); } }
/// }
/// // verify_checksum and update_checksum: csum16 over the IPv4 fields and the options,
/// // into hdr.ipv4.hdr_checksum, when hdr.ipv4 is valid.
/// control deparser(...) { apply { pkt.emit(hdr.eth); pkt.emit(hdr.ipv4); pkt.emit(hdr.ipv4_options); pkt.emit(hdr.opts2); } }
/// ```
pub(crate) fn options_json() -> Vec<u8> {
    let header_types = vec![
        ty(0, "standard_metadata", STD),
        ty(1, "ethernet_t", &[("dst", 48), ("src", 48), ("ether_type", 16)]),
        ty(2, "ipv4_t", &IPV4),
        json!({"name": "ipv4_options_t", "id": 3, "fields": [["options", "*"]], "max_length": 32}),
    ];
    let headers = json!([
        {"name": "standard_metadata", "id": 0, "header_type": "standard_metadata", "metadata": true},
        {"name": "eth", "id": 1, "header_type": "ethernet_t", "metadata": false},
        {"name": "ipv4", "id": 2, "header_type": "ipv4_t", "metadata": false},
        {"name": "ipv4_options", "id": 3, "header_type": "ipv4_options_t", "metadata": false},
        {"name": "opts2", "id": 4, "header_type": "ipv4_options_t", "metadata": false}
    ]);
    let ihl_minus_5 = ex("-", f("ipv4", "ihl"), hex(5));
    let states = json!([
        {"name": "start", "id": 0, "parser_ops": [{"op": "extract", "parameters": [{"type": "regular", "value": "eth"}]}],
         "transition_key": [f("eth", "ether_type")],
         "transitions": [
            {"type": "hexstr", "value": "0x0800", "mask": null, "next_state": "parse_v4"},
            {"type": "default", "value": null, "mask": null, "next_state": null}]},
        {"name": "parse_v4", "id": 1, "parser_ops": [
            {"op": "extract", "parameters": [{"type": "regular", "value": "ipv4"}]},
            {"op": "extract_VL", "parameters": [{"type": "regular", "value": "ipv4_options"},
                masked(ex("*", ihl_minus_5.clone(), hex(32)), 32)]}],
         "transition_key": [], "transitions": [{"type": "default", "value": null, "mask": null, "next_state": null}]}
    ]);
    let port = |i| assign("standard_metadata", "egress_spec", param(i));
    let actions = vec![
        action(0, "ingress.drop", &[], vec![prim("mark_to_drop", vec![hdr("standard_metadata")])]),
        action(
            1,
            "ingress.fwd",
            &[("port", 9), ("dmac", 48)],
            vec![
                assign("eth", "dst", param(1)),
                assign("ipv4", "ttl", masked(ex("-", f("ipv4", "ttl"), hex(1)), 8)),
                port(0),
            ],
        ),
        action(
            2,
            "ingress.strip",
            &[("port", 9)],
            vec![
                assign("ipv4", "total_len", masked(ex("-", f("ipv4", "total_len"), ex("<<", ihl_minus_5, hex(2))), 16)),
                assign("ipv4", "ihl", hex(5)),
                prim("remove_header", vec![hdr("ipv4_options")]),
                port(0),
            ],
        ),
        action(
            3,
            "ingress.dup",
            &[("port", 9)],
            vec![
                prim("add_header", vec![hdr("opts2")]),
                prim("assign_VL", vec![f("opts2", "options"), f("ipv4_options", "options")]),
                port(0),
            ],
        ),
    ];
    let ingress = json!({
        "name": "ingress", "id": 0, "init_table": "node_v4", "action_profiles": [],
        "tables": [
            table(0, "ingress.route", json!([{"match_type": "exact", "name": "ipv4.dst", "target": ["ipv4", "dst"], "mask": null}]),
                &[(1, "ingress.fwd"), (2, "ingress.strip"), (3, "ingress.dup"), (0, "ingress.drop")], 0, Json::Null),
            table(1, "tbl_drop", json!([]), &[(0, "ingress.drop")], 0, Json::Null)
        ],
        "conditionals": [
            {"name": "node_v4", "id": 0, "expression": valid("ipv4"), "true_next": "ingress.route", "false_next": "tbl_drop"}
        ]
    });
    let egress =
        json!({"name": "egress", "id": 1, "init_table": null, "action_profiles": [], "tables": [], "conditionals": []});
    let mut inputs: Vec<Json> = IPV4.iter().filter(|(n, _)| *n != "hdr_checksum").map(|(n, _)| f("ipv4", n)).collect();
    inputs.push(f("ipv4_options", "options"));
    v1model(
        "options.p4",
        json!({
            "header_types": header_types,
            "headers": headers,
            "parsers": [{"name": "parser", "id": 0, "init_state": "start", "parse_states": states}],
            "deparsers": [{"name": "deparser", "id": 0, "order": ["eth", "ipv4", "ipv4_options", "opts2"], "primitives": []}],
            "calculations": [{"name": "ipv4_csum", "id": 0, "algo": "csum16", "input": inputs}],
            "actions": actions,
            "pipelines": [ingress, egress],
            "checksums": [{"name": "cksum", "id": 0, "target": ["ipv4", "hdr_checksum"], "type": "generic",
                           "calculation": "ipv4_csum", "verify": true, "update": true, "if_cond": valid("ipv4")}]
        }),
    )
}

/// The compiled options program.
pub(crate) fn options_ir() -> Ir {
    compile_bytes(&options_json()).unwrap_or_else(|e| panic!("options program: {e}"))
}

fn options_prog() -> Prog {
    prog_of(options_ir())
}

/// Ethernet + IPv4 with `options` (a multiple of 4 bytes) and a valid checksum + payload.
fn v4_with_options(options: &[u8], ttl: u8) -> Vec<u8> {
    let ihl = 5 + options.len() / 4;
    let total = (ihl * 4 + 4) as u16;
    let mut h = vec![0x40 | ihl as u8, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0, 1, 0, 0, ttl, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    h.extend_from_slice(options);
    let c = super::bits::csum16(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    let mut p = eth(0x0800);
    p.extend_from_slice(&h);
    p.extend_from_slice(&[0xee; 4]);
    p
}

fn route(p: &mut Prog, action: &str, args: &[Value]) {
    p.add("ingress.route", vec![KeyValue::Exact(0x0a00_0002)], action, args, 0);
}

fn checksum_ok(frame: &[u8]) -> bool {
    let ihl = (frame[14] & 0xf) as usize;
    super::bits::csum16(&frame[14..14 + ihl * 4]) == 0
}

#[test]
fn options_are_extracted_by_length_kept_and_covered_by_the_checksum() {
    let mut p = options_prog();
    let vb = p.ir.headers[p.ir.header("ipv4_options").unwrap() as usize].varbit.unwrap();
    assert_eq!(vb.max_bytes, 32);
    route(&mut p, "ingress.fwd", &[2, 0xd]);
    for options in [&[][..], &[1, 1, 1, 0], &[7, 8, 9, 10, 11, 12, 13, 14]] {
        let input = v4_with_options(options, 64);
        let out = p.run(1, &input);
        assert_eq!(out.len(), 1, "{options:?}: {:?}", p.drops());
        let (port, bytes) = &out[0];
        assert_eq!(*port, 2);
        assert_eq!(bytes.len(), input.len());
        assert_eq!(bytes[5], 0xd);
        assert_eq!(bytes[14 + 8], 63, "ttl");
        assert_eq!(&bytes[34..34 + options.len()], options, "options kept");
        assert!(checksum_ok(bytes), "checksum over the options: {bytes:02x?}");
        assert_eq!(&bytes[bytes.len() - 4..], &[0xee; 4]);
    }
}

#[test]
fn stripping_the_options_shortens_the_header() {
    let mut p = options_prog();
    route(&mut p, "ingress.strip", &[3]);
    let out = p.run(1, &v4_with_options(&[1, 2, 3, 4, 5, 6, 7, 8], 64));
    let mut want = v4_with_options(&[], 64);
    // Same header but the length (and so the checksum): the payload is the same.
    assert_eq!(out[0].1.len(), want.len());
    // As in BMv2, the calculation still reads the invalid header's varbit field: the
    // checksum covers the 20 bytes and the stripped options (the program's bug, kept).
    let mut covered = out[0].1[14..34].to_vec();
    covered[10..12].copy_from_slice(&[0, 0]);
    covered.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(super::bits::csum16(&covered).to_be_bytes(), [out[0].1[24], out[0].1[25]]);
    want[16..18].copy_from_slice(&out[0].1[16..18]);
    want[24..26].copy_from_slice(&out[0].1[24..26]);
    assert_eq!(out, vec![(3, want)]);
    assert_eq!(u16::from_be_bytes([out[0].1[16], out[0].1[17]]), 24, "total length minus 8");
}

#[test]
fn options_longer_than_max_length_or_the_packet_stop_parsing() {
    let mut p = options_prog();
    route(&mut p, "ingress.fwd", &[2, 0xd]);
    let error = |p: &Prog| p.it.value_of(&p.ir, "standard_metadata.parser_error");
    // 36 bytes of options: more than varbit<256> holds.
    p.run(1, &v4_with_options(&[1; 36], 64));
    assert_eq!(error(&p), 4, "HeaderTooShort");
    // An IHL past the packet's end.
    let mut short = v4_with_options(&[1; 8], 64);
    short.truncate(14 + 20 + 4);
    p.run(1, &short);
    assert_eq!(error(&p), 1, "PacketTooShort");
    // IHL 4: a negative length, wrapped to 32 bits, is past any packet.
    let mut bad = v4_with_options(&[], 64);
    bad[14] = 0x44;
    p.run(1, &bad);
    assert_eq!(error(&p), 1, "PacketTooShort");
}

#[test]
fn a_varbit_assignment_copies_the_bytes_and_is_not_cached() {
    let mut p = options_prog();
    route(&mut p, "ingress.dup", &[4]);
    let input = v4_with_options(&[9, 8, 7, 6], 64);
    let out = p.run(1, &input);
    let mut want = input[..38].to_vec();
    want.extend_from_slice(&[9, 8, 7, 6]);
    want.extend_from_slice(&input[38..]);
    assert_eq!(out, vec![(4, want)]);
    let mut t = Tracker::new(&p.ir);
    t.begin();
    p.it.run(&p.ir, &mut p.rt, &input, 1, &mut t);
    assert_eq!(t.uncacheable, Some("varbit assignment"));
}

#[test]
fn option_megaflows_match_the_ihl_and_copy_the_option_bytes() {
    let noises: [&[u8]; 3] = [&[0x5a, 0xa5, 0x3c], &[0xff], &[0x00, 0x81, 0x18, 0xe7]];
    for (action, args) in [("ingress.fwd", &[2, 0xd][..]), ("ingress.strip", &[3][..])] {
        let mut p = options_prog();
        route(&mut p, action, args);
        for options in [&[][..], &[1, 1, 1, 0], &[7, 8, 9, 10, 11, 12, 13, 14]] {
            let pkt = v4_with_options(options, 64);
            for noise in noises {
                assert!(super::engine_tests::check_tracking(&mut p, 1, &pkt, noise), "{action} {options:?}");
            }
        }
    }
}
