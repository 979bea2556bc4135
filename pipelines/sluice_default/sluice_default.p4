/*
 * sluice_default.p4: Sluice's default program, a VLAN-aware learning switch and router.
 *
 * This P4-16 (v1model) source is the readable specification of the program. No P4 compiler
 * can be installed where Sluice is built, so the loaded artefacts (sluice_default.json, the
 * BMv2 JSON, and sluice_default.p4info.txt) are produced by gen.py, which describes the same
 * program node for node; the behaviour tests (fastpath/src/p4/default_tests.rs and
 * tests/default_program.rs) prove what they do. Change this file and gen.py together.
 *
 * What it does (the built-in app in control/src/app/ programs it from the configuration):
 *   - L2 bridging per VLAN: access and trunk ports (tags popped on ingress, pushed on
 *     egress), a MAC table, flooding through one multicast group per VLAN (group id = VLAN
 *     id), MAC learning through a digest on every (VLAN, source MAC, port) not yet known,
 *     learned entries aged by idle timeout.
 *   - L3 routing: router MACs per VLAN, IPv4 and IPv6 LPM routes to next hops, next hops
 *     rewrite the MACs and decrement TTL / hop limit, ECMP through an action selector.
 *   - ACL: ternary on L2-L4 fields: permit, deny, punt to the controller, mirror.
 *   - VXLAN: termination (VTEP address + VNI -> VLAN) and encapsulation (remote VTEPs in the
 *     MAC table and in the flood groups, replica id = tunnel id).
 *   - Mirroring through clone sessions (the copy leaves as it arrived).
 *   - Packet-in / packet-out headers on CPU port 255 (the ONOS convention).
 *   - Per-port and per-VLAN counters; one meter per port for ingress policing.
 */
#include <core.p4>
#include <v1model.p4>

typedef bit<9>  port_t;
typedef bit<12> vlan_id_t;
typedef bit<48> mac_t;
typedef bit<32> ipv4_addr_t;
typedef bit<128> ipv6_addr_t;

const port_t CPU_PORT = 255;
const bit<16> ETHERTYPE_VLAN = 0x8100;
const bit<16> ETHERTYPE_IPV4 = 0x0800;
const bit<16> ETHERTYPE_IPV6 = 0x86dd;
const bit<8> PROTO_TCP = 6;
const bit<8> PROTO_UDP = 17;
const bit<16> UDP_PORT_VXLAN = 4789;
const bit<2> COLOR_RED = 2;   // V1MODEL_METER_COLOR_RED
const bit<32> PKT_INSTANCE_TYPE_INGRESS_CLONE = 1;

@controller_header("packet_in")
header packet_in_t {
    port_t ingress_port;
    bit<7> _pad;
}

@controller_header("packet_out")
header packet_out_t {
    port_t egress_port;
    bit<7> _pad;
}

header ethernet_t {
    mac_t dst_addr;
    mac_t src_addr;
    bit<16> ether_type;
}

header vlan_t {
    bit<3> pcp;
    bit<1> dei;
    vlan_id_t vid;
    bit<16> ether_type;
}

header ipv4_t {
    bit<4> version;
    bit<4> ihl;
    bit<8> dscp_ecn;
    bit<16> total_len;
    bit<16> identification;
    bit<3> flags;
    bit<13> frag_offset;
    bit<8> ttl;
    bit<8> protocol;
    bit<16> hdr_checksum;
    ipv4_addr_t src_addr;
    ipv4_addr_t dst_addr;
}

header ipv6_t {
    bit<4> version;
    bit<8> traffic_class;
    bit<20> flow_label;
    bit<16> payload_len;
    bit<8> next_hdr;
    bit<8> hop_limit;
    ipv6_addr_t src_addr;
    ipv6_addr_t dst_addr;
}

header tcp_t {
    bit<16> src_port;
    bit<16> dst_port;
    bit<32> seq_no;
    bit<32> ack_no;
    bit<4> data_offset;
    bit<4> res;
    bit<8> flags;
    bit<16> window;
    bit<16> checksum;
    bit<16> urgent_ptr;
}

header udp_t {
    bit<16> src_port;
    bit<16> dst_port;
    bit<16> len;
    bit<16> checksum;
}

header vxlan_t {
    bit<8> flags;
    bit<24> reserved;
    bit<24> vni;
    bit<8> reserved2;
}

struct headers_t {
    packet_in_t packet_in;
    packet_out_t packet_out;
    // The outer headers a VXLAN encapsulation adds (never parsed).
    ethernet_t tun_ethernet;
    ipv4_t tun_ipv4;
    udp_t tun_udp;
    vxlan_t tun_vxlan;
    // The frame as received.
    ethernet_t ethernet;
    vlan_t vlan;
    ipv4_t ipv4;
    ipv6_t ipv6;
    tcp_t tcp;
    udp_t udp;
    vxlan_t vxlan;
    ethernet_t inner_ethernet;
}

struct local_metadata_t {
    vlan_id_t vlan;         // the VLAN the frame is bridged or routed in
    bit<3> pcp;             // priority of the ingress tag, kept for the egress tag
    bit<16> strip_len;      // bytes of the frame not carried inside a tunnel (a popped tag)
    bit<1> from_cpu;        // a packet-out
    bit<1> from_tunnel;     // decapsulated here
    bit<1> routed;          // the destination MAC is a router MAC of the VLAN
    bit<16> nexthop;
    bit<16> tunnel;         // the remote VTEP this frame goes to (0: none)
    bit<8> ip_proto;        // IPv4 protocol or IPv6 next header
    bit<16> l4_src_port;
    bit<16> l4_dst_port;
    bit<2> color;           // the port policer's color
}

struct mac_learn_digest_t {
    vlan_id_t vlan;
    mac_t src_addr;
    port_t ingress_port;
}

parser ParserImpl(packet_in packet, out headers_t hdr, inout local_metadata_t meta,
                  inout standard_metadata_t standard_metadata) {
    state start {
        transition select(standard_metadata.ingress_port) {
            CPU_PORT: parse_packet_out;
            default: parse_ethernet;
        }
    }
    state parse_packet_out {
        packet.extract(hdr.packet_out);
        transition parse_ethernet;
    }
    state parse_ethernet {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_VLAN: parse_vlan;
            ETHERTYPE_IPV4: parse_ipv4;
            ETHERTYPE_IPV6: parse_ipv6;
            default: accept;
        }
    }
    state parse_vlan {
        packet.extract(hdr.vlan);
        transition select(hdr.vlan.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            ETHERTYPE_IPV6: parse_ipv6;
            default: accept;
        }
    }
    state parse_ipv4 {
        packet.extract(hdr.ipv4);
        meta.ip_proto = hdr.ipv4.protocol;
        // L4 follows at byte 20 only without options (their bytes are not ports).
        transition select(hdr.ipv4.ihl, hdr.ipv4.protocol) {
            (5, PROTO_TCP): parse_tcp;
            (5, PROTO_UDP): parse_udp;
            default: accept;
        }
    }
    state parse_ipv6 {
        packet.extract(hdr.ipv6);
        meta.ip_proto = hdr.ipv6.next_hdr;
        transition select(hdr.ipv6.next_hdr) {
            PROTO_TCP: parse_tcp;
            PROTO_UDP: parse_udp;
            default: accept;
        }
    }
    state parse_tcp {
        packet.extract(hdr.tcp);
        meta.l4_src_port = hdr.tcp.src_port;
        meta.l4_dst_port = hdr.tcp.dst_port;
        transition accept;
    }
    state parse_udp {
        packet.extract(hdr.udp);
        meta.l4_src_port = hdr.udp.src_port;
        meta.l4_dst_port = hdr.udp.dst_port;
        transition select(hdr.udp.dst_port) {
            UDP_PORT_VXLAN: parse_vxlan;
            default: accept;
        }
    }
    state parse_vxlan {
        packet.extract(hdr.vxlan);
        packet.extract(hdr.inner_ethernet);
        transition accept;
    }
}

control VerifyChecksumImpl(inout headers_t hdr, inout local_metadata_t meta) {
    apply { }
}

control ingress(inout headers_t hdr, inout local_metadata_t meta,
                inout standard_metadata_t standard_metadata) {
    counter(512, CounterType.packets_and_bytes) port_rx;
    counter(4096, CounterType.packets_and_bytes) vlan_rx;
    direct_counter(CounterType.packets_and_bytes) acl_counter;
    meter(512, MeterType.bytes) port_policer;
    action_selector(HashAlgorithm.crc16, 1024, 16) ecmp_selector;

    // Every drop ends ingress: nothing later can send the packet after all.
    action drop() {
        mark_to_drop(standard_metadata);
        exit;
    }

    // --- Ingress policing: ports with an entry run their meter (index = port).
    action police() {
        port_policer.execute_meter((bit<32>) standard_metadata.ingress_port, meta.color);
    }
    table port_policing {
        key = { standard_metadata.ingress_port: exact; }
        actions = { police; NoAction; }
        default_action = NoAction();
        size = 512;
    }

    // --- VXLAN termination: a local VTEP address and a VNI give the VLAN. Everything
    // outer goes, the underlay's VLAN tag included.
    action vxlan_decap(vlan_id_t vlan) {
        hdr.ethernet = hdr.inner_ethernet;
        hdr.inner_ethernet.setInvalid();
        hdr.vlan.setInvalid();
        hdr.vxlan.setInvalid();
        hdr.udp.setInvalid();
        hdr.ipv4.setInvalid();
        meta.vlan = vlan;
        meta.from_tunnel = 1;
        meta.ip_proto = 0;
        meta.l4_src_port = 0;
        meta.l4_dst_port = 0;
    }
    table vxlan_term {
        key = {
            hdr.ipv4.dst_addr: exact;
            hdr.vxlan.vni: exact;
        }
        actions = { vxlan_decap; NoAction; }
        default_action = NoAction();
        size = 4096;
    }

    // --- VLAN classification. Untagged frames: the port's access (or native) VLAN.
    // Tagged frames: the tag's VLAN if the port trunks it. Anything else is dropped.
    action access_port(vlan_id_t vlan) {
        meta.vlan = vlan;
    }
    table port_vlan {
        key = { standard_metadata.ingress_port: exact; }
        actions = { access_port; drop; }
        default_action = drop();
        size = 512;
    }
    action trunk_port() {
        meta.vlan = hdr.vlan.vid;
        meta.pcp = hdr.vlan.pcp;
        meta.strip_len = 4;
        hdr.ethernet.ether_type = hdr.vlan.ether_type;
        hdr.vlan.setInvalid();
    }
    table trunk_vlan {
        key = {
            standard_metadata.ingress_port: exact;
            hdr.vlan.vid: exact;
        }
        actions = { trunk_port; drop; }
        default_action = drop();
        size = 16384;
    }

    // --- ACL, before forwarding.
    action acl_permit() {
        acl_counter.count();
    }
    action acl_deny() {
        acl_counter.count();
        mark_to_drop(standard_metadata);
        exit;
    }
    action acl_punt() {
        acl_counter.count();
        standard_metadata.egress_spec = CPU_PORT;
        exit;
    }
    action acl_mirror(bit<32> session) {
        acl_counter.count();
        clone(CloneType.I2E, session);
    }
    table acl {
        key = {
            standard_metadata.ingress_port: ternary;
            meta.vlan: ternary;
            hdr.ethernet.src_addr: ternary;
            hdr.ethernet.dst_addr: ternary;
            hdr.ethernet.ether_type: ternary;
            hdr.ipv4.src_addr: ternary;
            hdr.ipv4.dst_addr: ternary;
            meta.ip_proto: ternary;
            meta.l4_src_port: ternary;
            meta.l4_dst_port: ternary;
        }
        actions = { acl_permit; acl_deny; acl_punt; acl_mirror; }
        default_action = acl_permit();
        counters = acl_counter;
        size = 1024;
    }

    // --- MAC learning: an unknown (VLAN, source MAC, port) is reported to the control
    // plane, which installs it here (with an idle timeout) and in dmac. A MAC that moves
    // misses too: the control plane moves it. The digest carries the values at the call
    // (v1model), before routing rewrites the VLAN and the source MAC.
    action learn() {
        digest<mac_learn_digest_t>(1, { meta.vlan, hdr.ethernet.src_addr, standard_metadata.ingress_port });
    }
    table mac_learning {
        key = {
            meta.vlan: exact;
            hdr.ethernet.src_addr: exact;
            standard_metadata.ingress_port: exact;
        }
        actions = { learn; NoAction; }
        default_action = learn();
        support_timeout = true;
        size = 65536;
    }

    // --- Routing.
    action set_routed() {
        meta.routed = 1;
    }
    table router_mac {
        key = {
            meta.vlan: exact;
            hdr.ethernet.dst_addr: exact;
        }
        actions = { set_routed; NoAction; }
        default_action = NoAction();
        size = 4096;
    }
    action set_nexthop_id(bit<16> nexthop) {
        meta.nexthop = nexthop;
    }
    table ipv4_route {
        key = { hdr.ipv4.dst_addr: lpm; }
        actions = { set_nexthop_id; drop; }
        default_action = drop();
        size = 65536;
    }
    table ipv6_route {
        key = { hdr.ipv6.dst_addr: lpm; }
        actions = { set_nexthop_id; drop; }
        default_action = drop();
        size = 16384;
    }
    // A next hop: out of a port in a VLAN, towards a MAC. An ECMP route points to a
    // selector group of these. No default action: a table with an action selector
    // cannot have one (p4c leaves it out of the BMv2 JSON, P4Runtime cannot set it), so
    // the apply block drops first and a next hop overrides that.
    action set_nexthop(port_t port, mac_t smac, mac_t dmac, vlan_id_t vlan) {
        standard_metadata.egress_spec = port;
        hdr.ethernet.src_addr = smac;
        hdr.ethernet.dst_addr = dmac;
        meta.vlan = vlan;
    }
    table nexthop {
        key = {
            meta.nexthop: exact;
            hdr.ipv4.src_addr: selector;
            hdr.ipv4.dst_addr: selector;
            hdr.ipv6.src_addr: selector;
            hdr.ipv6.dst_addr: selector;
            meta.ip_proto: selector;
            meta.l4_src_port: selector;
            meta.l4_dst_port: selector;
        }
        actions = { set_nexthop; drop; }
        implementation = ecmp_selector;
        size = 4096;
    }

    // --- Bridging: known MACs go to their port or remote VTEP, the rest is flooded to
    // the VLAN's multicast group.
    action l2_forward(port_t port) {
        standard_metadata.egress_spec = port;
    }
    action l2_tunnel(port_t port, bit<16> tunnel) {
        standard_metadata.egress_spec = port;
        meta.tunnel = tunnel;
    }
    action flood() {
        standard_metadata.mcast_grp = (bit<16>) meta.vlan;
    }
    table dmac {
        key = {
            meta.vlan: exact;
            hdr.ethernet.dst_addr: exact;
        }
        actions = { l2_forward; l2_tunnel; flood; drop; }
        default_action = flood();
        size = 65536;
    }

    apply {
        if (hdr.packet_out.isValid()) {
            // From the controller: out of the port it names, as it is.
            standard_metadata.egress_spec = hdr.packet_out.egress_port;
            hdr.packet_out.setInvalid();
            meta.from_cpu = 1;
        } else {
            port_rx.count((bit<32>) standard_metadata.ingress_port);
            port_policing.apply();
            if (meta.color == COLOR_RED) {
                drop();
            }
            if (hdr.vxlan.isValid()) {
                vxlan_term.apply();
            }
            if (meta.from_tunnel == 0) {
                if (hdr.vlan.isValid()) {
                    trunk_vlan.apply();
                } else {
                    port_vlan.apply();
                }
            }
            vlan_rx.count((bit<32>) meta.vlan);
            acl.apply();
            if (meta.from_tunnel == 0) {
                mac_learning.apply();
            }
            router_mac.apply();
            if (meta.routed == 1) {
                if (hdr.ipv4.isValid()) {
                    if (hdr.ipv4.ihl != 5) {
                        drop();   // options: not routed (the checksum covers 20 bytes here)
                    }
                    if (hdr.ipv4.ttl <= 1) {
                        drop();
                    }
                    ipv4_route.apply();
                    hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
                } else if (hdr.ipv6.isValid()) {
                    if (hdr.ipv6.hop_limit <= 1) {
                        drop();
                    }
                    ipv6_route.apply();
                    hdr.ipv6.hop_limit = hdr.ipv6.hop_limit - 1;
                } else {
                    drop();
                }
                // Dropped unless a next hop (a member, or a live member of a group)
                // sets the port.
                mark_to_drop(standard_metadata);
                nexthop.apply();
            } else {
                dmac.apply();
            }
        }
    }
}

control egress(inout headers_t hdr, inout local_metadata_t meta,
               inout standard_metadata_t standard_metadata) {
    counter(512, CounterType.packets_and_bytes) port_tx;
    counter(4096, CounterType.packets_and_bytes) vlan_tx;

    action drop() {
        mark_to_drop(standard_metadata);
        exit;
    }

    // Tagged or untagged on this port in this VLAN; a VLAN the port is not in: dropped.
    action push_vlan() {
        hdr.vlan.setValid();
        hdr.vlan.pcp = meta.pcp;
        hdr.vlan.dei = 0;
        hdr.vlan.vid = meta.vlan;
        hdr.vlan.ether_type = hdr.ethernet.ether_type;
        hdr.ethernet.ether_type = ETHERTYPE_VLAN;
    }
    action untagged() {
    }
    table egress_vlan {
        key = {
            standard_metadata.egress_port: exact;
            meta.vlan: exact;
        }
        actions = { push_vlan; untagged; drop; }
        default_action = drop();
        size = 16384;
    }

    // VXLAN towards a remote VTEP: the VLAN's VNI, the underlay addresses.
    action vxlan_encap(bit<24> vni, ipv4_addr_t src_ip, ipv4_addr_t dst_ip, mac_t smac, mac_t dmac) {
        bit<16> inner_len = (bit<16>) standard_metadata.packet_length - meta.strip_len;
        hdr.tun_ethernet.setValid();
        hdr.tun_ethernet.dst_addr = dmac;
        hdr.tun_ethernet.src_addr = smac;
        hdr.tun_ethernet.ether_type = ETHERTYPE_IPV4;
        hdr.tun_ipv4.setValid();
        hdr.tun_ipv4.version = 4;
        hdr.tun_ipv4.ihl = 5;
        hdr.tun_ipv4.dscp_ecn = 0;
        hdr.tun_ipv4.total_len = inner_len + 36;   // IPv4 20 + UDP 8 + VXLAN 8
        hdr.tun_ipv4.identification = 0;
        hdr.tun_ipv4.flags = 2;                    // don't fragment
        hdr.tun_ipv4.frag_offset = 0;
        hdr.tun_ipv4.ttl = 64;
        hdr.tun_ipv4.protocol = PROTO_UDP;
        hdr.tun_ipv4.hdr_checksum = 0;
        hdr.tun_ipv4.src_addr = src_ip;
        hdr.tun_ipv4.dst_addr = dst_ip;
        hdr.tun_udp.setValid();
        // Entropy for the underlay's ECMP: a hash of the inner MACs (RFC 7348 § 5).
        hash(hdr.tun_udp.src_port, HashAlgorithm.crc16, (bit<16>) 49152,
             { hdr.ethernet.dst_addr, hdr.ethernet.src_addr }, (bit<32>) 16384);
        hdr.tun_udp.dst_port = UDP_PORT_VXLAN;
        hdr.tun_udp.len = inner_len + 16;
        hdr.tun_udp.checksum = 0;
        hdr.tun_vxlan.setValid();
        hdr.tun_vxlan.flags = 0x08;
        hdr.tun_vxlan.reserved = 0;
        hdr.tun_vxlan.vni = vni;
        hdr.tun_vxlan.reserved2 = 0;
    }
    table tunnel_encap {
        key = {
            meta.tunnel: exact;
            meta.vlan: exact;
        }
        actions = { vxlan_encap; drop; }
        default_action = drop();
        size = 16384;
    }

    apply {
        if (standard_metadata.egress_port == CPU_PORT) {
            hdr.packet_in.setValid();
            hdr.packet_in.ingress_port = standard_metadata.ingress_port;
            if (meta.strip_len == 4) {
                push_vlan();   // punted from a trunk: the controller sees the tag it came with
            }
        } else if (standard_metadata.instance_type != PKT_INSTANCE_TYPE_INGRESS_CLONE && meta.from_cpu == 0) {
            // Forwarded packets and flood replicas (mirror copies and packet-outs leave as
            // they are).
            if (standard_metadata.egress_rid != 0) {
                // A flood replica towards a remote VTEP: its replica id is the tunnel.
                meta.tunnel = (bit<16>) standard_metadata.egress_rid;
            }
            if (meta.tunnel == 0) {
                if (meta.routed == 0 && standard_metadata.egress_port == standard_metadata.ingress_port) {
                    drop();   // never back out of the port it came in on
                }
                egress_vlan.apply();
            } else {
                if (meta.from_tunnel == 1) {
                    drop();   // split horizon: tunnel to tunnel never
                }
                tunnel_encap.apply();
            }
            vlan_tx.count((bit<32>) meta.vlan);
        }
        port_tx.count((bit<32>) standard_metadata.egress_port);
    }
}

control ComputeChecksumImpl(inout headers_t hdr, inout local_metadata_t meta) {
    apply {
        // Only what the switch changed (routed: TTL): a bridged header leaves as it came.
        update_checksum(hdr.ipv4.isValid() && meta.routed == 1,
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.dscp_ecn, hdr.ipv4.total_len,
              hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.frag_offset, hdr.ipv4.ttl,
              hdr.ipv4.protocol, hdr.ipv4.src_addr, hdr.ipv4.dst_addr },
            hdr.ipv4.hdr_checksum, HashAlgorithm.csum16);
        update_checksum(hdr.tun_ipv4.isValid(),
            { hdr.tun_ipv4.version, hdr.tun_ipv4.ihl, hdr.tun_ipv4.dscp_ecn, hdr.tun_ipv4.total_len,
              hdr.tun_ipv4.identification, hdr.tun_ipv4.flags, hdr.tun_ipv4.frag_offset,
              hdr.tun_ipv4.ttl, hdr.tun_ipv4.protocol, hdr.tun_ipv4.src_addr, hdr.tun_ipv4.dst_addr },
            hdr.tun_ipv4.hdr_checksum, HashAlgorithm.csum16);
    }
}

control DeparserImpl(packet_out packet, in headers_t hdr) {
    apply {
        packet.emit(hdr.packet_in);
        packet.emit(hdr.tun_ethernet);
        packet.emit(hdr.tun_ipv4);
        packet.emit(hdr.tun_udp);
        packet.emit(hdr.tun_vxlan);
        packet.emit(hdr.ethernet);
        packet.emit(hdr.vlan);
        packet.emit(hdr.ipv4);
        packet.emit(hdr.ipv6);
        packet.emit(hdr.tcp);
        packet.emit(hdr.udp);
        packet.emit(hdr.vxlan);
        packet.emit(hdr.inner_ethernet);
    }
}

V1Switch(ParserImpl(), VerifyChecksumImpl(), ingress(), egress(), ComputeChecksumImpl(),
         DeparserImpl()) main;
