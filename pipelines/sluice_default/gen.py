#!/usr/bin/env python3
"""Generate sluice_default.json (BMv2 JSON, as p4c-bm2-ss would) and
sluice_default.p4info.txt (P4Info, protobuf text format) from the description below.

No P4 compiler can be installed where Sluice is built, so this script is the compiler of
one program: sluice_default.p4 is the specification, and the description in `program()`
follows it node for node (same headers, parser states, actions, tables, controls). The
behaviour tests prove the result; `--check` (run by the tests) fails if the checked-in
files are not what this script produces.

    python3 pipelines/sluice_default/gen.py           # rewrite both files
    python3 pipelines/sluice_default/gen.py --check   # exit 1 if they are stale

Standard library only.
"""

import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
JSON_OUT = os.path.join(HERE, "sluice_default.json")
P4INFO_OUT = os.path.join(HERE, "sluice_default.p4info.txt")
SOURCE = "sluice_default.p4"

# ---------------------------------------------------------------------------------------
# Expressions (BMv2 JSON "type"/"value" objects)


def fld(path):
    """`hdr.ipv4.ttl`, `meta.vlan`, `standard_metadata.x` -> a field reference."""
    parts = path.split(".")
    if parts[0] == "hdr":
        parts = parts[1:]
    assert len(parts) == 2, path
    return {"type": "field", "value": parts}


def const(v, width):
    digits = max(1, (width + 3) // 4)
    return {"type": "hexstr", "value": "0x%0*x" % (digits, v)}


def param(i):
    return {"type": "runtime_data", "value": i}


def expr(op, left, right):
    return {"type": "expression", "value": {"op": op, "left": left, "right": right}}


def valid(header):
    return expr("d2b", None, {"type": "field", "value": [header, "$valid$"]})


def eq(a, b):
    return expr("==", a, b)


def ne(a, b):
    return expr("!=", a, b)


def land(a, b):
    return expr("and", a, b)


def wrap(e, width):
    """Truncate an arithmetic result to `width` bits, as p4c does."""
    return expr("&", e, const((1 << width) - 1, width))


def add(a, b, width):
    return wrap(expr("+", a, b), width)


def sub(a, b, width):
    return wrap(expr("-", a, b), width)


# ---------------------------------------------------------------------------------------
# Primitives


def prim(op, *params):
    return {"op": op, "parameters": list(params)}


def assign(dst, src):
    return prim("assign", fld(dst), src)


def set_valid(h):
    return prim("add_header", {"type": "header", "value": h})


def set_invalid(h):
    return prim("remove_header", {"type": "header", "value": h})


def mark_to_drop():
    return prim("mark_to_drop", {"type": "header", "value": "standard_metadata"})


def exit_():
    return prim("exit")


def count(counter, index):
    return prim("count", {"type": "counter_array", "value": counter}, index)


# ---------------------------------------------------------------------------------------
# The program

STANDARD_METADATA = [
    ("ingress_port", 9), ("egress_spec", 9), ("egress_port", 9), ("instance_type", 32),
    ("packet_length", 32), ("enq_timestamp", 32), ("enq_qdepth", 19), ("deq_timedelta", 32),
    ("deq_qdepth", 19), ("ingress_global_timestamp", 48), ("egress_global_timestamp", 48),
    ("mcast_grp", 16), ("egress_rid", 16), ("checksum_error", 1), ("parser_error", 32),
    ("priority", 3), ("_padding", 3),
]

HEADER_TYPES = {
    "packet_in_t": [("ingress_port", 9), ("_pad", 7)],
    "packet_out_t": [("egress_port", 9), ("_pad", 7)],
    "ethernet_t": [("dst_addr", 48), ("src_addr", 48), ("ether_type", 16)],
    "vlan_t": [("pcp", 3), ("dei", 1), ("vid", 12), ("ether_type", 16)],
    "ipv4_t": [
        ("version", 4), ("ihl", 4), ("dscp_ecn", 8), ("total_len", 16), ("identification", 16),
        ("flags", 3), ("frag_offset", 13), ("ttl", 8), ("protocol", 8), ("hdr_checksum", 16),
        ("src_addr", 32), ("dst_addr", 32),
    ],
    "ipv6_t": [
        ("version", 4), ("traffic_class", 8), ("flow_label", 20), ("payload_len", 16),
        ("next_hdr", 8), ("hop_limit", 8), ("src_addr", 128), ("dst_addr", 128),
    ],
    "tcp_t": [
        ("src_port", 16), ("dst_port", 16), ("seq_no", 32), ("ack_no", 32), ("data_offset", 4),
        ("res", 4), ("flags", 8), ("window", 16), ("checksum", 16), ("urgent_ptr", 16),
    ],
    "udp_t": [("src_port", 16), ("dst_port", 16), ("len", 16), ("checksum", 16)],
    "vxlan_t": [("flags", 8), ("reserved", 24), ("vni", 24), ("reserved2", 8)],
    "local_metadata_t": [
        ("vlan", 12), ("pcp", 3), ("strip_len", 16), ("from_cpu", 1), ("from_tunnel", 1),
        ("routed", 1), ("nexthop", 16), ("tunnel", 16), ("ip_proto", 8), ("l4_src_port", 16),
        ("l4_dst_port", 16), ("color", 2), ("_padding", 4),
    ],
}

# Header instances in struct headers_t order (the deparser emits the packet ones in this
# order too).
HEADERS = [
    ("packet_in", "packet_in_t"), ("packet_out", "packet_out_t"),
    ("tun_ethernet", "ethernet_t"), ("tun_ipv4", "ipv4_t"), ("tun_udp", "udp_t"),
    ("tun_vxlan", "vxlan_t"),
    ("ethernet", "ethernet_t"), ("vlan", "vlan_t"), ("ipv4", "ipv4_t"), ("ipv6", "ipv6_t"),
    ("tcp", "tcp_t"), ("udp", "udp_t"), ("vxlan", "vxlan_t"), ("inner_ethernet", "ethernet_t"),
]
DEPARSE = [h for h, _ in HEADERS if h != "packet_out"]

# The scalars p4c adds: the digest's copy of its data, padded to a byte.
DIGEST_COPY = [("digest_vlan", "meta.vlan"), ("digest_src_addr", "hdr.ethernet.src_addr"),
               ("digest_ingress_port", "standard_metadata.ingress_port")]
SCALARS = [("digest_vlan", 12), ("digest_src_addr", 48), ("digest_ingress_port", 9), ("_padding_0", 3)]

CPU_PORT = 255
ETHERTYPE_VLAN, ETHERTYPE_IPV4, ETHERTYPE_IPV6 = 0x8100, 0x0800, 0x86DD
PROTO_TCP, PROTO_UDP = 6, 17
UDP_PORT_VXLAN = 4789
COLOR_RED = 2
INSTANCE_INGRESS_CLONE = 1


def parser_states():
    def extract(h):
        return {"op": "extract", "parameters": [{"type": "regular", "value": h}]}

    def set_(dst, src):
        return {"op": "set", "parameters": [fld(dst), fld(src)]}

    def sel(key, cases, default):
        trans = [{"type": "hexstr", "value": const(v, w)["value"], "mask": None, "next_state": s}
                 for v, w, s in cases]
        trans.append({"type": "default", "value": None, "mask": None, "next_state": default})
        return [fld(key)], trans

    def sel_ihl(cases):
        """select(hdr.ipv4.ihl, hdr.ipv4.protocol): BMv2 concatenates the keys, each
        padded to whole bytes."""
        trans = [{"type": "hexstr", "value": "0x05%02x" % proto, "mask": None, "next_state": st}
                 for proto, st in cases]
        trans.append({"type": "default", "value": None, "mask": None, "next_state": None})
        return [fld("hdr.ipv4.ihl"), fld("hdr.ipv4.protocol")], trans

    def goto(state):
        return [], [{"type": "default", "value": None, "mask": None, "next_state": state}]

    ip_next = [(ETHERTYPE_IPV4, 16, "parse_ipv4"), (ETHERTYPE_IPV6, 16, "parse_ipv6")]
    l4_next = [(PROTO_TCP, 8, "parse_tcp"), (PROTO_UDP, 8, "parse_udp")]
    states = [
        ("start", [], sel("standard_metadata.ingress_port", [(CPU_PORT, 9, "parse_packet_out")],
                          "parse_ethernet")),
        ("parse_packet_out", [extract("packet_out")], goto("parse_ethernet")),
        ("parse_ethernet", [extract("ethernet")],
         sel("hdr.ethernet.ether_type", [(ETHERTYPE_VLAN, 16, "parse_vlan")] + ip_next, None)),
        ("parse_vlan", [extract("vlan")], sel("hdr.vlan.ether_type", ip_next, None)),
        ("parse_ipv4", [extract("ipv4"), set_("meta.ip_proto", "hdr.ipv4.protocol")],
         sel_ihl([(PROTO_TCP, "parse_tcp"), (PROTO_UDP, "parse_udp")])),
        ("parse_ipv6", [extract("ipv6"), set_("meta.ip_proto", "hdr.ipv6.next_hdr")],
         sel("hdr.ipv6.next_hdr", l4_next, None)),
        ("parse_tcp", [extract("tcp"), set_("meta.l4_src_port", "hdr.tcp.src_port"),
                       set_("meta.l4_dst_port", "hdr.tcp.dst_port")], goto(None)),
        ("parse_udp", [extract("udp"), set_("meta.l4_src_port", "hdr.udp.src_port"),
                       set_("meta.l4_dst_port", "hdr.udp.dst_port")],
         sel("hdr.udp.dst_port", [(UDP_PORT_VXLAN, 16, "parse_vxlan")], None)),
        ("parse_vxlan", [extract("vxlan"), extract("inner_ethernet")], goto(None)),
    ]
    out = []
    for i, (name, ops, (key, trans)) in enumerate(states):
        out.append({"name": name, "id": i, "parser_ops": ops, "transitions": trans,
                    "transition_key": key})
    return out


class Action:
    def __init__(self, name, params, body, p4info=True):
        self.name, self.params, self.body, self.p4info = name, params, body, p4info


class Table:
    """A table of a control. `keys`: (P4 name, match kind). `default`: (action, args, const)."""

    def __init__(self, name, keys, actions, default, size, p4info=True, timeout=False,
                 counters=None, selector=None):
        self.name, self.keys, self.actions, self.default = name, keys, actions, default
        self.size, self.p4info, self.timeout = size, p4info, timeout
        self.counters, self.selector = counters, selector


class Apply:
    def __init__(self, table):
        self.table = table


class If:
    def __init__(self, name, cond, then, else_=()):
        self.name, self.cond, self.then, self.else_ = name, cond, list(then), list(else_)


def ingress():
    p = "ingress."
    drop = [mark_to_drop(), exit_()]
    acts = [
        Action("NoAction", [], []),
        Action(p + "drop", [], drop),
        Action(p + "police", [], [prim(
            "execute_meter", {"type": "meter_array", "value": p + "port_policer"},
            wrap(fld("standard_metadata.ingress_port"), 32), fld("meta.color"))]),
        Action(p + "vxlan_decap", [("vlan", 12)], [
            prim("assign_header", {"type": "header", "value": "ethernet"},
                 {"type": "header", "value": "inner_ethernet"}),
            set_invalid("inner_ethernet"), set_invalid("vlan"), set_invalid("vxlan"), set_invalid("udp"),
            set_invalid("ipv4"),
            assign("meta.vlan", param(0)), assign("meta.from_tunnel", const(1, 1)),
            assign("meta.ip_proto", const(0, 8)), assign("meta.l4_src_port", const(0, 16)),
            assign("meta.l4_dst_port", const(0, 16)),
        ]),
        Action(p + "access_port", [("vlan", 12)], [assign("meta.vlan", param(0))]),
        Action(p + "trunk_port", [], [
            assign("meta.vlan", fld("hdr.vlan.vid")), assign("meta.pcp", fld("hdr.vlan.pcp")),
            assign("meta.strip_len", const(4, 16)),
            assign("hdr.ethernet.ether_type", fld("hdr.vlan.ether_type")), set_invalid("vlan"),
        ]),
        # The ACL's counter is direct: BMv2 counts a table's direct counter on every hit
        # (with_counters), so the actions carry no count primitive.
        Action(p + "acl_permit", [], []),
        Action(p + "acl_deny", [], [mark_to_drop(), exit_()]),
        Action(p + "acl_punt", [], [assign("standard_metadata.egress_spec", const(CPU_PORT, 9)),
                                    exit_()]),
        Action(p + "acl_mirror", [("session", 32)], [
            prim("clone_ingress_pkt_to_egress", param(0), const(1, 32))]),
        # v1model sends the digest's values as they are at the call, so p4c copies them
        # (routing rewrites the VLAN and the source MAC later in ingress).
        Action(p + "learn", [], [assign("scalars." + f, fld(src)) for f, src in DIGEST_COPY]
               + [prim("generate_digest", const(1, 32), const(1, 32))]),
        Action(p + "set_routed", [], [assign("meta.routed", const(1, 1))]),
        Action(p + "set_nexthop_id", [("nexthop", 16)], [assign("meta.nexthop", param(0))]),
        Action(p + "set_nexthop", [("port", 9), ("smac", 48), ("dmac", 48), ("vlan", 12)], [
            assign("standard_metadata.egress_spec", param(0)),
            assign("hdr.ethernet.src_addr", param(1)), assign("hdr.ethernet.dst_addr", param(2)),
            assign("meta.vlan", param(3)),
        ]),
        Action(p + "l2_forward", [("port", 9)], [assign("standard_metadata.egress_spec", param(0))]),
        Action(p + "l2_tunnel", [("port", 9), ("tunnel", 16)], [
            assign("standard_metadata.egress_spec", param(0)), assign("meta.tunnel", param(1))]),
        Action(p + "flood", [], [assign("standard_metadata.mcast_grp", wrap(fld("meta.vlan"), 16))]),
        # Straight-line code of the apply block (p4c's "act" actions).
        Action("act_packet_out", [], [
            assign("standard_metadata.egress_spec", fld("hdr.packet_out.egress_port")),
            set_invalid("packet_out"), assign("meta.from_cpu", const(1, 1))], p4info=False),
        Action("act_count_port_rx", [], [count(p + "port_rx", wrap(fld("standard_metadata.ingress_port"), 32))],
               p4info=False),
        Action("act_count_vlan_rx", [], [count(p + "vlan_rx", wrap(fld("meta.vlan"), 32))], p4info=False),
        Action("act_dec_ttl", [], [assign("hdr.ipv4.ttl", add(fld("hdr.ipv4.ttl"), const(0xFF, 8), 8))],
               p4info=False),
        Action("act_drop_unless_nexthop", [], [mark_to_drop()], p4info=False),
        Action("act_dec_hop_limit", [], [
            assign("hdr.ipv6.hop_limit", add(fld("hdr.ipv6.hop_limit"), const(0xFF, 8), 8))], p4info=False),
    ]
    port = ("standard_metadata.ingress_port", "exact")
    selector_fields = ["hdr.ipv4.src_addr", "hdr.ipv4.dst_addr", "hdr.ipv6.src_addr", "hdr.ipv6.dst_addr",
                       "meta.ip_proto", "meta.l4_src_port", "meta.l4_dst_port"]
    tables = {
        "port_policing": Table(p + "port_policing", [port], ["police", "NoAction"],
                               ("NoAction", [], False), 512),
        "vxlan_term": Table(p + "vxlan_term", [("hdr.ipv4.dst_addr", "exact"), ("hdr.vxlan.vni", "exact")],
                            ["vxlan_decap", "NoAction"], ("NoAction", [], False), 4096),
        "port_vlan": Table(p + "port_vlan", [port], ["access_port", "drop"], ("drop", [], False), 512),
        "trunk_vlan": Table(p + "trunk_vlan", [port, ("hdr.vlan.vid", "exact")], ["trunk_port", "drop"],
                            ("drop", [], False), 16384),
        "acl": Table(p + "acl", [
            ("standard_metadata.ingress_port", "ternary"), ("meta.vlan", "ternary"),
            ("hdr.ethernet.src_addr", "ternary"), ("hdr.ethernet.dst_addr", "ternary"),
            ("hdr.ethernet.ether_type", "ternary"), ("hdr.ipv4.src_addr", "ternary"),
            ("hdr.ipv4.dst_addr", "ternary"), ("meta.ip_proto", "ternary"),
            ("meta.l4_src_port", "ternary"), ("meta.l4_dst_port", "ternary"),
        ], ["acl_permit", "acl_deny", "acl_punt", "acl_mirror"], ("acl_permit", [], False), 1024,
            counters=p + "acl_counter"),
        "mac_learning": Table(p + "mac_learning", [("meta.vlan", "exact"), ("hdr.ethernet.src_addr", "exact"), port],
                              ["learn", "NoAction"], ("learn", [], False), 65536, timeout=True),
        "router_mac": Table(p + "router_mac", [("meta.vlan", "exact"), ("hdr.ethernet.dst_addr", "exact")],
                            ["set_routed", "NoAction"], ("NoAction", [], False), 4096),
        "ipv4_route": Table(p + "ipv4_route", [("hdr.ipv4.dst_addr", "lpm")], ["set_nexthop_id", "drop"],
                            ("drop", [], False), 65536),
        "ipv6_route": Table(p + "ipv6_route", [("hdr.ipv6.dst_addr", "lpm")], ["set_nexthop_id", "drop"],
                            ("drop", [], False), 16384),
        "nexthop": Table(p + "nexthop", [("meta.nexthop", "exact")], ["set_nexthop", "drop"],
                         None, 4096, selector=(p + "ecmp_selector", 1024, 16, selector_fields)),
        "dmac": Table(p + "dmac", [("meta.vlan", "exact"), ("hdr.ethernet.dst_addr", "exact")],
                      ["l2_forward", "l2_tunnel", "flood", "drop"], ("flood", [], False), 65536),
    }

    def tbl(name, action):
        return Table("tbl_" + name, [], [action], (action, [], True), 1024, p4info=False)

    straight = {n: tbl(n, a) for n, a in [
        ("packet_out", "act_packet_out"), ("count_port_rx", "act_count_port_rx"),
        ("drop_red", "drop"), ("count_vlan_rx", "act_count_vlan_rx"), ("drop_options", "drop"), ("drop_ttl", "drop"),
        ("dec_ttl", "act_dec_ttl"), ("drop_hop_limit", "drop"), ("dec_hop_limit", "act_dec_hop_limit"),
        ("drop_not_ip", "drop"), ("drop_unless_nexthop", "act_drop_unless_nexthop"),
    ]}
    t, s = tables, straight
    flow = [
        If("node_packet_out", valid("packet_out"), [Apply(s["packet_out"])], [
            Apply(s["count_port_rx"]),
            Apply(t["port_policing"]),
            If("node_red", eq(fld("meta.color"), const(COLOR_RED, 2)), [Apply(s["drop_red"])]),
            If("node_vxlan", valid("vxlan"), [Apply(t["vxlan_term"])]),
            If("node_local", eq(fld("meta.from_tunnel"), const(0, 1)), [
                If("node_tagged", valid("vlan"), [Apply(t["trunk_vlan"])], [Apply(t["port_vlan"])]),
            ]),
            Apply(s["count_vlan_rx"]),
            Apply(t["acl"]),
            If("node_learn", eq(fld("meta.from_tunnel"), const(0, 1)), [Apply(t["mac_learning"])]),
            Apply(t["router_mac"]),
            If("node_routed", eq(fld("meta.routed"), const(1, 1)), [
                If("node_ipv4", valid("ipv4"), [
                    If("node_options", ne(fld("hdr.ipv4.ihl"), const(5, 4)), [Apply(s["drop_options"])]),
                    If("node_ttl", expr("<=", fld("hdr.ipv4.ttl"), const(1, 8)), [Apply(s["drop_ttl"])]),
                    Apply(t["ipv4_route"]),
                    Apply(s["dec_ttl"]),
                ], [
                    If("node_ipv6", valid("ipv6"), [
                        If("node_hop_limit", expr("<=", fld("hdr.ipv6.hop_limit"), const(1, 8)),
                           [Apply(s["drop_hop_limit"])]),
                        Apply(t["ipv6_route"]),
                        Apply(s["dec_hop_limit"]),
                    ], [Apply(s["drop_not_ip"])]),
                ]),
                Apply(s["drop_unless_nexthop"]),
                Apply(t["nexthop"]),
            ], [Apply(t["dmac"])]),
        ]),
    ]
    counters = [(p + "port_rx", 512), (p + "vlan_rx", 4096)]
    meters = [(p + "port_policer", 512, "bytes")]
    return "ingress", acts, flow, counters, meters


def egress():
    p = "egress."
    inner_len = sub(wrap(fld("standard_metadata.packet_length"), 16), fld("meta.strip_len"), 16)
    acts = [
        Action(p + "drop", [], [mark_to_drop(), exit_()]),
        Action(p + "push_vlan", [], [
            set_valid("vlan"), assign("hdr.vlan.pcp", fld("meta.pcp")), assign("hdr.vlan.dei", const(0, 1)),
            assign("hdr.vlan.vid", fld("meta.vlan")), assign("hdr.vlan.ether_type", fld("hdr.ethernet.ether_type")),
            assign("hdr.ethernet.ether_type", const(ETHERTYPE_VLAN, 16)),
        ]),
        Action(p + "untagged", [], []),
        Action(p + "vxlan_encap", [("vni", 24), ("src_ip", 32), ("dst_ip", 32), ("smac", 48), ("dmac", 48)], [
            set_valid("tun_ethernet"),
            assign("hdr.tun_ethernet.dst_addr", param(4)), assign("hdr.tun_ethernet.src_addr", param(3)),
            assign("hdr.tun_ethernet.ether_type", const(ETHERTYPE_IPV4, 16)),
            set_valid("tun_ipv4"),
            assign("hdr.tun_ipv4.version", const(4, 4)), assign("hdr.tun_ipv4.ihl", const(5, 4)),
            assign("hdr.tun_ipv4.dscp_ecn", const(0, 8)),
            assign("hdr.tun_ipv4.total_len", add(inner_len, const(36, 16), 16)),
            assign("hdr.tun_ipv4.identification", const(0, 16)), assign("hdr.tun_ipv4.flags", const(2, 3)),
            assign("hdr.tun_ipv4.frag_offset", const(0, 13)), assign("hdr.tun_ipv4.ttl", const(64, 8)),
            assign("hdr.tun_ipv4.protocol", const(PROTO_UDP, 8)), assign("hdr.tun_ipv4.hdr_checksum", const(0, 16)),
            assign("hdr.tun_ipv4.src_addr", param(1)), assign("hdr.tun_ipv4.dst_addr", param(2)),
            set_valid("tun_udp"),
            prim("modify_field_with_hash_based_offset", fld("hdr.tun_udp.src_port"), const(49152, 16),
                 {"type": "calculation", "value": "calc_vxlan_entropy"}, const(16384, 32)),
            assign("hdr.tun_udp.dst_port", const(UDP_PORT_VXLAN, 16)),
            assign("hdr.tun_udp.len", add(inner_len, const(16, 16), 16)),
            assign("hdr.tun_udp.checksum", const(0, 16)),
            set_valid("tun_vxlan"),
            assign("hdr.tun_vxlan.flags", const(0x08, 8)), assign("hdr.tun_vxlan.reserved", const(0, 24)),
            assign("hdr.tun_vxlan.vni", param(0)), assign("hdr.tun_vxlan.reserved2", const(0, 8)),
        ]),
        Action("act_packet_in", [], [
            set_valid("packet_in"),
            assign("hdr.packet_in.ingress_port", fld("standard_metadata.ingress_port"))], p4info=False),
        Action("act_replica_tunnel", [], [
            assign("meta.tunnel", wrap(fld("standard_metadata.egress_rid"), 16))], p4info=False),
        Action("act_count_vlan_tx", [], [count(p + "vlan_tx", wrap(fld("meta.vlan"), 32))], p4info=False),
        Action("act_count_port_tx", [], [count(p + "port_tx", wrap(fld("standard_metadata.egress_port"), 32))],
               p4info=False),
    ]
    t = {
        "egress_vlan": Table(p + "egress_vlan", [("standard_metadata.egress_port", "exact"), ("meta.vlan", "exact")],
                             ["push_vlan", "untagged", "drop"], ("drop", [], False), 16384),
        "tunnel_encap": Table(p + "tunnel_encap", [("meta.tunnel", "exact"), ("meta.vlan", "exact")],
                              ["vxlan_encap", "drop"], ("drop", [], False), 16384),
    }

    def tbl(name, action):
        return Table("tbl_" + name, [], [action], (action, [], True), 1024, p4info=False)

    s = {n: tbl(n, a) for n, a in [
        ("packet_in", "act_packet_in"), ("cpu_retag", "push_vlan"), ("replica_tunnel", "act_replica_tunnel"),
        ("drop_hairpin", "drop"),
        ("drop_split_horizon", "drop"), ("count_vlan_tx", "act_count_vlan_tx"),
        ("count_port_tx", "act_count_port_tx"),
    ]}
    flow = [
        If("node_to_cpu", eq(fld("standard_metadata.egress_port"), const(CPU_PORT, 9)), [
            Apply(s["packet_in"]),
            If("node_cpu_tagged", eq(fld("meta.strip_len"), const(4, 16)), [Apply(s["cpu_retag"])]),
        ], [
            If("node_normal", land(ne(fld("standard_metadata.instance_type"), const(INSTANCE_INGRESS_CLONE, 32)),
                                   eq(fld("meta.from_cpu"), const(0, 1))), [
                If("node_replica", ne(fld("standard_metadata.egress_rid"), const(0, 16)),
                   [Apply(s["replica_tunnel"])]),
                If("node_local_out", eq(fld("meta.tunnel"), const(0, 16)), [
                    If("node_hairpin", land(eq(fld("meta.routed"), const(0, 1)),
                                            eq(fld("standard_metadata.egress_port"),
                                               fld("standard_metadata.ingress_port"))),
                       [Apply(s["drop_hairpin"])]),
                    Apply(t["egress_vlan"]),
                ], [
                    If("node_split_horizon", eq(fld("meta.from_tunnel"), const(1, 1)),
                       [Apply(s["drop_split_horizon"])]),
                    Apply(t["tunnel_encap"]),
                ]),
                Apply(s["count_vlan_tx"]),
            ]),
        ]),
        Apply(s["count_port_tx"]),
    ]
    counters = [(p + "port_tx", 512), (p + "vlan_tx", 4096)]
    return "egress", acts, flow, counters, []


# ---------------------------------------------------------------------------------------
# BMv2 JSON


def p4_id(prefix, name):
    """P4Runtime id: the resource prefix and 24 bits of a hash of the name (stable under
    reordering, as p4c's are)."""
    h = int.from_bytes(hashlib.sha256(name.encode()).digest()[:3], "big")
    return (prefix << 24) | h


def field_target(path):
    return fld(path)["value"]


def build():
    controls = [ingress(), egress()]
    actions = []   # global JSON action list
    action_ids = {}

    def action_id(control, short):
        for key in (control + "." + short, short):
            if key in action_ids:
                return key, action_ids[key]
        raise KeyError(short)

    for _, acts, _, _, _ in controls:
        for a in acts:
            if a.name in action_ids:
                continue
            action_ids[a.name] = len(actions)
            actions.append(a)

    calc_ipv4 = lambda h: {  # noqa: E731
        "name": "calc_" + h, "algo": "csum16",
        "input": [fld("hdr.%s.%s" % (h, f)) for f in
                  ["version", "ihl", "dscp_ecn", "total_len", "identification", "flags", "frag_offset", "ttl",
                   "protocol", "src_addr", "dst_addr"]],
    }
    calculations = [calc_ipv4("ipv4"), calc_ipv4("tun_ipv4"),
                    {"name": "calc_vxlan_entropy", "algo": "crc16",
                     "input": [fld("hdr.ethernet.dst_addr"), fld("hdr.ethernet.src_addr")]}]
    for i, c in enumerate(calculations):
        c["id"] = i

    pipelines = []
    counter_arrays, meter_arrays = [], []
    tables_all, profiles_all = [], []
    table_ids = 0
    cond_ids = 0
    for control, acts, flow, counters, meters in controls:
        tables, conditionals, profiles = [], [], []

        def lay(seq, nxt):
            """Lay out `seq` in front of node `nxt`; the name of its first node."""
            nonlocal table_ids, cond_ids
            for node in reversed(seq):
                if isinstance(node, Apply):
                    t = node.table
                    names = [action_id(control, a)[0] for a in t.actions]
                    ids = [action_ids[n] for n in names]
                    jt = {
                        "name": t.name, "id": table_ids, "source_info": source(t.name),
                        "key": [{"match_type": k, "name": n, "target": field_target(n), "mask": None}
                                for n, k in t.keys],
                        "match_type": match_type(t.keys), "type": "simple", "max_size": t.size,
                        "with_counters": t.counters is not None, "support_timeout": t.timeout,
                        "direct_meters": None, "action_ids": ids, "actions": names,
                        "base_default_next": nxt, "next_tables": {n: nxt for n in names},
                    }
                    table_ids += 1
                    if t.selector:
                        pname, size, _, fields = t.selector
                        jt["type"] = "indirect_ws"
                        jt["action_profile"] = pname
                        profiles.append({"name": pname, "id": len(profiles_all) + len(profiles), "max_size": size,
                                         "selector": {"algo": "crc16", "input": [fld(f) for f in fields]}})
                    if t.default is not None:
                        a, args, is_const = t.default
                        jt["default_entry"] = {"action_id": action_id(control, a)[1], "action_const": is_const,
                                               "action_data": args, "action_entry_const": is_const}
                    tables.append(jt)
                    if t.p4info:
                        tables_all.append((control, t))
                    nxt = t.name
                else:
                    then = lay(node.then, nxt)
                    els = lay(node.else_, nxt)
                    conditionals.append({"name": node.name, "id": cond_ids, "source_info": source(node.name),
                                         "expression": node.cond, "true_next": then, "false_next": els})
                    cond_ids += 1
                    nxt = node.name
            return nxt

        init = lay(flow, None)
        # Number tables and conditionals in source order (the layout ran back to front).
        rank = {name: i for i, name in enumerate(source_order(flow))}
        for group in (tables, conditionals):
            base = min(x["id"] for x in group) if group else 0
            group.sort(key=lambda x: rank[x["name"]])
            for i, x in enumerate(group):
                x["id"] = base + i
        pipelines.append({"name": control, "id": len(pipelines), "source_info": source(control),
                          "init_table": init, "tables": tables, "action_profiles": profiles,
                          "conditionals": conditionals})
        profiles_all.extend(profiles)
        for name, size in counters:
            counter_arrays.append({"name": name, "id": len(counter_arrays), "source_info": source(name),
                                   "size": size, "is_direct": False})
        for name, size, unit in meters:
            meter_arrays.append({"name": name, "id": len(meter_arrays), "source_info": source(name),
                                 "is_direct": False, "size": size, "rate_count": 2, "type": unit})
    order = {name: i for _, _, flow, _, _ in controls for i, name in enumerate(source_order(flow))}
    tables_all.sort(key=lambda ct: order[ct[1].name])
    for control, t in tables_all:
        if t.counters:
            counter_arrays.append({"name": t.counters, "id": len(counter_arrays), "source_info": source(t.counters),
                                   "is_direct": True, "binding": t.name})

    header_types = [{"name": "scalars_0", "id": 0, "fields": [[n, w, False] for n, w in SCALARS]},
                    {"name": "standard_metadata", "id": 1, "fields": [[n, w, False] for n, w in STANDARD_METADATA]}]
    for name, fields in HEADER_TYPES.items():
        header_types.append({"name": name, "id": len(header_types), "fields": [[n, w, False] for n, w in fields]})
    headers = [
        {"name": "scalars", "id": 0, "header_type": "scalars_0", "metadata": True, "pi_omit": True},
        {"name": "standard_metadata", "id": 1, "header_type": "standard_metadata", "metadata": True,
         "pi_omit": True},
        {"name": "meta", "id": 2, "header_type": "local_metadata_t", "metadata": True, "pi_omit": True},
    ]
    for name, ty in HEADERS:
        headers.append({"name": name, "id": len(headers), "header_type": ty, "metadata": False, "pi_omit": True})

    def json_action(a):
        return {"name": a.name, "id": action_ids[a.name],
                "runtime_data": [{"name": n, "bitwidth": w} for n, w in a.params],
                "primitives": [dict(p, source_info=source(a.name)) for p in a.body]}

    program = {
        "header_types": header_types,
        "headers": headers,
        "header_stacks": [], "header_union_types": [], "header_unions": [], "header_union_stacks": [],
        "field_lists": [{"id": 1, "name": "mirror_metadata", "elements": []}],
        "errors": [["NoError", 0], ["PacketTooShort", 1], ["NoMatch", 2], ["StackOutOfBounds", 3],
                   ["HeaderTooShort", 4], ["ParserTimeout", 5], ["ParserInvalidArgument", 6]],
        "enums": [],
        "parsers": [{"name": "parser", "id": 0, "init_state": "start", "parse_states": parser_states()}],
        "parse_vsets": [],
        "deparsers": [{"name": "deparser", "id": 0, "source_info": source("DeparserImpl"), "order": DEPARSE,
                       "primitives": []}],
        "meter_arrays": meter_arrays,
        "counter_arrays": counter_arrays,
        "register_arrays": [],
        "calculations": calculations,
        "learn_lists": [{"id": 1, "name": "mac_learn_digest_t", "source_info": source("learn"),
                         "elements": [fld("scalars." + f) for f, _ in DIGEST_COPY]}],
        "actions": [json_action(a) for a in actions],
        "pipelines": pipelines,
        "checksums": [
            {"name": "cksum_" + h, "id": i, "source_info": source("ComputeChecksumImpl"),
             "target": [h, "hdr_checksum"], "type": "generic", "calculation": "calc_" + h, "verify": False,
             "update": True, "if_cond": cond}
            for i, (h, cond) in enumerate([
                # Only what the switch changed: a bridged header leaves as it came.
                ("ipv4", land(valid("ipv4"), eq(fld("meta.routed"), const(1, 1)))),
                ("tun_ipv4", valid("tun_ipv4")),
            ])
        ],
        "force_arith": [],
        "extern_instances": [],
        "field_aliases": [],
        "program": SOURCE,
        "__meta__": {"version": [2, 23], "compiler": "pipelines/sluice_default/gen.py"},
    }
    return program, actions, tables_all, profiles_all, counter_arrays, meter_arrays


def source_order(seq):
    """Names of the tables and conditionals of `seq`, in the order the source has them."""
    out = []
    for node in seq:
        if isinstance(node, Apply):
            out.append(node.table.name)
        else:
            out.append(node.name)
            out += source_order(node.then) + source_order(node.else_)
    return out


def match_type(keys):
    kinds = {k for _, k in keys}
    for k in ("range", "ternary", "lpm"):
        if k in kinds:
            return k
    return "exact"


def source(fragment):
    return {"filename": SOURCE, "line": 0, "column": 0, "source_fragment": fragment}


# ---------------------------------------------------------------------------------------
# P4Info (text format)


def field_width(path):
    hdr, name = field_target(path)
    if hdr == "standard_metadata":
        fields = STANDARD_METADATA
    elif hdr == "meta":
        fields = HEADER_TYPES["local_metadata_t"]
    else:
        fields = HEADER_TYPES[dict(HEADERS)[hdr]]
    return dict(fields)[name]


def p4info(actions, tables, profiles, counters, meters):
    out = ['pkg_info {', '  arch: "v1model"', '}']

    seen = {}
    # p4c's alias: the last name component when no other object ends the same way.
    names = [a.name for a in actions if a.p4info] + [t.name for _, t in tables] + [p["name"] for p in profiles]
    names += [c["name"] for c in counters] + [m["name"] for m in meters]
    last = [n.split(".")[-1] for n in names]

    def alias(name):
        short = name.split(".")[-1]
        return short if last.count(short) == 1 else name

    def preamble(ind, pid, name, annotations=()):
        assert seen.setdefault(pid, name) == name, "%s and %s hash to one id: rename one" % (seen[pid], name)
        lines = [ind + "preamble {", ind + "  id: %d" % pid, ind + '  name: "%s"' % name,
                 ind + '  alias: "%s"' % alias(name)]
        lines += [ind + "  annotations: %s" % json.dumps(a) for a in annotations]
        return lines + [ind + "}"]

    aid = {a.name: p4_id(0x01, a.name) for a in actions if a.p4info}
    tid = {t.name: p4_id(0x02, t.name) for _, t in tables}
    prof_id = {p["name"]: p4_id(0x11, p["name"]) for p in profiles}
    for control, t in tables:
        out.append("tables {")
        out += preamble("  ", tid[t.name], t.name)
        for i, (name, kind) in enumerate(t.keys):
            out += ["  match_fields {", "    id: %d" % (i + 1), '    name: "%s"' % name,
                    "    bitwidth: %d" % field_width(name), "    match_type: %s" % kind.upper(), "  }"]
        for a in t.actions:
            name = control + "." + a if control + "." + a in aid else a
            out += ["  action_refs {", "    id: %d" % aid[name], "  }"]
        if t.selector:
            out.append("  implementation_id: %d" % prof_id[t.selector[0]])
        if t.counters:
            out.append("  direct_resource_ids: %d" % p4_id(0x13, t.counters))
        out.append("  size: %d" % t.size)
        if t.timeout:
            out.append("  idle_timeout_behavior: NOTIFY_CONTROL")
        out.append("}")
    for a in actions:
        if not a.p4info:
            continue
        out.append("actions {")
        out += preamble("  ", aid[a.name], a.name)
        for i, (n, w) in enumerate(a.params):
            out += ["  params {", "    id: %d" % (i + 1), '    name: "%s"' % n, "    bitwidth: %d" % w, "  }"]
        out.append("}")
    for p in profiles:
        users = [tid[t.name] for _, t in tables if t.selector and t.selector[0] == p["name"]]
        out.append("action_profiles {")
        out += preamble("  ", prof_id[p["name"]], p["name"])
        out += ["  table_ids: %d" % u for u in users]
        out += ["  with_selector: true", "  size: %d" % p["max_size"], "  max_group_size: 16", "}"]
    for c in counters:
        if c["is_direct"]:
            continue
        out.append("counters {")
        out += preamble("  ", p4_id(0x12, c["name"]), c["name"])
        out += ["  spec {", "    unit: BOTH", "  }", "  size: %d" % c["size"], "}"]
    for c in counters:
        if not c["is_direct"]:
            continue
        out.append("direct_counters {")
        out += preamble("  ", p4_id(0x13, c["name"]), c["name"])
        out += ["  spec {", "    unit: BOTH", "  }", "  direct_table_id: %d" % tid[c["binding"]], "}"]
    for m in meters:
        out.append("meters {")
        out += preamble("  ", p4_id(0x14, m["name"]), m["name"])
        out += ["  spec {", "    unit: %s" % m["type"].upper(), "  }", "  size: %d" % m["size"], "}"]
    for name, fields in [("packet_in", HEADER_TYPES["packet_in_t"]), ("packet_out", HEADER_TYPES["packet_out_t"])]:
        out.append("controller_packet_metadata {")
        out += preamble("  ", p4_id(0x04, name), name, ['@controller_header("%s")' % name])
        for i, (n, w) in enumerate(fields):
            out += ["  metadata {", "    id: %d" % (i + 1), '    name: "%s"' % n, "    bitwidth: %d" % w, "  }"]
        out.append("}")
    digest = "mac_learn_digest_t"
    out.append("digests {")
    out += preamble("  ", p4_id(0x17, digest), digest)
    out += ["  type_spec {", "    struct {", '      name: "%s"' % digest, "    }", "  }", "}"]
    out += ["type_info {", "  structs {", '    key: "%s"' % digest, "    value {"]
    for n, w in [("vlan", 12), ("src_addr", 48), ("ingress_port", 9)]:
        out += ["      members {", '        name: "%s"' % n, "        type_spec {", "          bitstring {",
                "            bit {", "              bitwidth: %d" % w, "            }", "          }",
                "        }", "      }"]
    out += ["    }", "  }", "}"]
    return "\n".join(out) + "\n"


def main():
    program, actions, tables, profiles, counters, meters = build()
    text = p4info(actions, tables, profiles, counters, meters)
    outputs = {JSON_OUT: json.dumps(program, indent=2) + "\n", P4INFO_OUT: text}
    if "--check" in sys.argv[1:]:
        stale = [p for p, t in outputs.items() if not os.path.exists(p) or open(p).read() != t]
        for p in stale:
            print("stale: %s (run %s)" % (os.path.relpath(p), os.path.relpath(__file__)), file=sys.stderr)
        sys.exit(1 if stale else 0)
    for path, t in outputs.items():
        with open(path, "w") as f:
            f.write(t)
        print("wrote %s" % os.path.relpath(path))


if __name__ == "__main__":
    main()
