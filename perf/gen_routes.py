#!/usr/bin/env python3
"""Generate an IPv4 route set for perf/bench_cache.sh, three ways (standard library only).

One deterministic set of R routes (default 100) of mixed prefix lengths, written as
  --entries FILE   simple_switch_CLI entries for simple_router (/work/shared/p4/simple_router):
                   ipv4_lpm  <prefix> => set_nhop(<next hop IP>, <out port>)
                   forward   <next hop IP> => set_dmac(<next hop MAC>)
                   send_frame <port> => rewrite_mac(<port's MAC>)        (src MAC per port)
                   defaults _drop, as bmv2's simple_router commands.txt
  --ovs-flows FILE the same behaviour as OpenFlow rules for `ovs-ofctl add-flows BR FILE`:
                   priority=100+len,ip,nw_dst=<prefix> actions=mod_dl_src:<port's MAC>,
                   mod_dl_dst:<next hop MAC>,dec_ttl,output:<out port>
                   (priority by prefix length = longest-prefix match; a table miss drops in
                   fail-mode=secure, as simple_router's default _drop)
  --nets FILE      the prefixes, one a line, for `gen_pcap.py --dst-nets FILE`, so that every
                   destination of the traffic falls in some route

The mix (default 20 % /16, 60 % /24, 20 % /32) includes nested prefixes, so longest-prefix
match matters: the /16s are 10.(1+j).0.0/16; half of the /24s lie inside those /16s
(10.(1+j).(1+m).0/24), the rest in 10.200.0.0/16 outside any /16 route; half of the /32s lie
inside /24 routes, the rest in 10.201.0.0/16. Route k uses next hop k mod H (10.255.0.1 + h,
MAC 00:04:00:00:00:<h+1>); every route leaves on --out-port. simple_router's set_nhop
decrements the TTL (OVS: dec_ttl), and only packets with TTL > 0 are routed.

The same prefixes as an ECMP router (bench_cache.sh's `router` workload), every prefix via
--ecmp-neighbors neighbors on the egress port:
  --toml FILE           sections for sluiced's default program: [[router_interface]] for the
                        ingress VLAN (--in-vlan, MAC --router-mac: where the traffic is sent)
                        and the egress VLAN (--out-vlan, MAC --egress-mac), [[neighbor]] h
                        (IP 192.168.20.2 + h, MAC 02:00:00:00:14:02 + h, port --out-port-name,
                        in the port's untagged VLAN) and [[route]] prefix via all neighbors
  --ovs-ecmp-groups FILE  group 1 for `ovs-ofctl -O OpenFlow15 add-groups`: type=select,
                        selection_method=hash over fields(ip_src,ip_dst,nw_proto,udp_src,
                        udp_dst), a bucket per neighbor: mod_dl_src:<egress MAC>,
                        mod_dl_dst:<neighbor MAC>,dec_ttl,output:<out port>
  --ovs-ecmp-flows FILE priority=100+len,in_port=<in port>,dl_dst=<router MAC>,ip,
                        nw_dst=<prefix>,actions=group:1 (the default program routes frames
                        to the router MAC of the ingress port's VLAN only)
Both sides hash the 5-tuple but with different functions (sluiced: CRC-16 over its selector
fields; OVS: its own hash of the fields), so a flow may take a different neighbor on each.
"""

import argparse
import sys


def ip_str(x: int) -> str:
    return "%d.%d.%d.%d" % (x >> 24, (x >> 16) & 255, (x >> 8) & 255, x & 255)


def ip(a: int, b: int, c: int, d: int) -> int:
    return (a << 24) | (b << 16) | (c << 8) | d


def port_mac(port: int) -> str:
    return "00:aa:bb:00:%02x:%02x" % (port >> 8, port & 255)


def hop_mac(h: int) -> str:
    return "00:04:00:00:%02x:%02x" % ((h + 1) >> 8, (h + 1) & 255)


def hop_ip(h: int) -> int:
    return ip(10, 255, (h + 1) >> 8, (h + 1) & 255)


def neighbor_ip(h: int) -> str:
    return "192.168.20.%d" % (2 + h)


def neighbor_mac(h: int) -> str:
    return "02:00:00:00:14:%02x" % (2 + h)


def make_routes(n: int, pct16: int, pct32: int):
    """[(network int, length)] in a fixed order: n16 /16s, n24 /24s, n32 /32s."""
    n16 = n * pct16 // 100
    n32 = n * pct32 // 100
    n24 = n - n16 - n32
    if n16 > 199:
        raise ValueError("at most 199 /16 routes (10.1.0.0/16 .. 10.199.0.0/16)")
    routes = [(ip(10, 1 + j, 0, 0), 16) for j in range(n16)]
    # /24s: first half nested in the /16s (round-robin over them), the rest in 10.200/16.
    nested24 = n24 // 2 if n16 else 0
    r24 = []
    for m in range(nested24):
        j, k = m % n16, m // n16
        r24.append((ip(10, 1 + j, 1 + k, 0), 24))
    for m in range(n24 - nested24):
        r24.append((ip(10, 200 + m // 256, m % 256, 0), 24))
    routes += r24
    # /32s: first half inside /24 routes (host .10 + k), the rest in 10.201/16.
    nested32 = n32 // 2 if r24 else 0
    for m in range(nested32):
        net, _ = r24[m % len(r24)]
        routes.append((net + 10 + m // len(r24), 32))
    for m in range(n32 - nested32):
        routes.append((ip(10, 201, 1 + m // 250, 1 + m % 250), 32))
    if len({r for r in routes}) != len(routes):
        raise ValueError("duplicate prefixes (too many routes for this layout)")
    return routes


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--routes", type=int, default=100, help="number of prefixes (default 100)")
    p.add_argument("--pct16", type=int, default=20, help="percent of /16s (default 20)")
    p.add_argument("--pct32", type=int, default=20,
                   help="percent of /32s (default 20; the rest are /24s)")
    p.add_argument("--next-hops", type=int, default=8, help="distinct next hops (default 8)")
    p.add_argument("--in-port", type=int, default=1,
                   help="P4/OpenFlow port number of the traffic source (default 1)")
    p.add_argument("--out-port", type=int, default=2,
                   help="P4/OpenFlow port number every route leaves on (default 2)")
    p.add_argument("--entries", metavar="FILE", help="write simple_router entries here")
    p.add_argument("--ovs-flows", metavar="FILE", help="write OpenFlow rules here")
    p.add_argument("--nets", metavar="FILE", help="write the prefixes here (gen_pcap --dst-nets)")
    p.add_argument("--ecmp-neighbors", type=int, default=2,
                   help="ECMP router: neighbors every prefix goes via (default 2)")
    p.add_argument("--router-mac", default="02:00:00:00:00:02",
                   help="ECMP router: the ingress VLAN's router MAC (default gen_pcap.py's "
                        "destination MAC, 02:00:00:00:00:02)")
    p.add_argument("--egress-mac", default="02:00:00:00:14:01",
                   help="ECMP router: the egress VLAN's router MAC, routed frames' source "
                        "(default 02:00:00:00:14:01)")
    p.add_argument("--in-vlan", type=int, default=10, help="ECMP router: ingress VLAN (10)")
    p.add_argument("--out-vlan", type=int, default=20, help="ECMP router: egress VLAN (20)")
    p.add_argument("--out-port-name", default="out",
                   help="ECMP router: sluiced's name of the egress port (default out)")
    p.add_argument("--toml", metavar="FILE",
                   help="write the ECMP router as sluiced default-program sections here")
    p.add_argument("--ovs-ecmp-groups", metavar="FILE",
                   help="write the ECMP router's OpenFlow select group here")
    p.add_argument("--ovs-ecmp-flows", metavar="FILE",
                   help="write the ECMP router's OpenFlow rules (to group 1) here")
    a = p.parse_args(argv)
    if not 1 <= a.routes <= 1000:
        p.error("--routes must be in 1..1000")
    if not (0 <= a.pct16 <= 100 and 0 <= a.pct32 <= 100 and a.pct16 + a.pct32 <= 100):
        p.error("--pct16 and --pct32 must be percentages summing to at most 100")
    if not 1 <= a.next_hops <= 250:
        p.error("--next-hops must be in 1..250")
    if not (0 <= a.in_port <= 510 and 0 <= a.out_port <= 510):
        p.error("ports must be in 0..510")
    if not 1 <= a.ecmp_neighbors <= 250:
        p.error("--ecmp-neighbors must be in 1..250")
    if not (1 <= a.in_vlan <= 4094 and 1 <= a.out_vlan <= 4094 and a.in_vlan != a.out_vlan):
        p.error("--in-vlan and --out-vlan must be distinct VLANs in 1..4094")
    if not (a.entries or a.ovs_flows or a.nets or a.toml or a.ovs_ecmp_groups
            or a.ovs_ecmp_flows):
        p.error("nothing to write: give --entries, --ovs-flows, --nets, --toml, "
                "--ovs-ecmp-groups and/or --ovs-ecmp-flows")
    try:
        routes = make_routes(a.routes, a.pct16, a.pct32)
    except ValueError as e:
        p.error(str(e))
    hops = min(a.next_hops, len(routes))
    counts = {L: sum(1 for _, l in routes if l == L) for L in (16, 24, 32)}
    head = "# generated by perf/gen_routes.py: %d routes (%d /16, %d /24, %d /32), %d next hops" % (
        len(routes), counts[16], counts[24], counts[32], hops)

    if a.entries:
        lines = [head, "table_set_default send_frame _drop", "table_set_default forward _drop",
                 "table_set_default ipv4_lpm _drop"]
        for port in sorted({a.in_port, a.out_port}):
            lines.append("table_add send_frame rewrite_mac %d => %s" % (port, port_mac(port)))
        for h in range(hops):
            lines.append("table_add forward set_dmac %s => %s" % (ip_str(hop_ip(h)), hop_mac(h)))
        for k, (net, plen) in enumerate(routes):
            lines.append("table_add ipv4_lpm set_nhop %s/%d => %s %d"
                         % (ip_str(net), plen, ip_str(hop_ip(k % hops)), a.out_port))
        with open(a.entries, "w") as f:
            f.write("\n".join(lines) + "\n")
    if a.ovs_flows:
        lines = [head]
        for k, (net, plen) in enumerate(routes):
            lines.append("priority=%d,ip,nw_dst=%s/%d,actions=mod_dl_src:%s,mod_dl_dst:%s,"
                         "dec_ttl,output:%d" % (100 + plen, ip_str(net), plen,
                                                port_mac(a.out_port), hop_mac(k % hops),
                                                a.out_port))
        with open(a.ovs_flows, "w") as f:
            f.write("\n".join(lines) + "\n")
    nbr = range(a.ecmp_neighbors)
    ecmp_head = "# generated by perf/gen_routes.py: %d routes (%d /16, %d /24, %d /32), each " \
        "via %d neighbors (ECMP)" % (len(routes), counts[16], counts[24], counts[32],
                                     a.ecmp_neighbors)
    if a.toml:
        lines = [ecmp_head, ""]
        for vlan, mac in ((a.in_vlan, a.router_mac), (a.out_vlan, a.egress_mac)):
            lines += ["[[router_interface]]", "vlan = %d" % vlan, 'mac = "%s"' % mac, ""]
        for h in nbr:
            lines += ["[[neighbor]]", 'ip = "%s"' % neighbor_ip(h), 'mac = "%s"' % neighbor_mac(h),
                      'port = "%s"' % a.out_port_name, ""]
        via = ", ".join('"%s"' % neighbor_ip(h) for h in nbr)
        for net, plen in routes:
            lines += ["[[route]]", 'prefix = "%s/%d"' % (ip_str(net), plen), "via = [%s]" % via, ""]
        with open(a.toml, "w") as f:
            f.write("\n".join(lines))
    if a.ovs_ecmp_groups:
        buckets = ",".join("bucket=bucket_id=%d,actions=mod_dl_src:%s,mod_dl_dst:%s,dec_ttl,"
                           "output:%d" % (h, a.egress_mac, neighbor_mac(h), a.out_port)
                           for h in nbr)
        with open(a.ovs_ecmp_groups, "w") as f:
            f.write("group_id=1,type=select,selection_method=hash,"
                    "fields(ip_src,ip_dst,nw_proto,udp_src,udp_dst),%s\n" % buckets)
    if a.ovs_ecmp_flows:
        lines = [ecmp_head]
        for net, plen in routes:
            lines.append("priority=%d,in_port=%d,dl_dst=%s,ip,nw_dst=%s/%d,actions=group:1"
                         % (100 + plen, a.in_port, a.router_mac, ip_str(net), plen))
        with open(a.ovs_ecmp_flows, "w") as f:
            f.write("\n".join(lines) + "\n")
    if a.nets:
        with open(a.nets, "w") as f:
            f.write(head + "\n")
            f.write("".join("%s/%d\n" % (ip_str(net), plen) for net, plen in routes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
