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
    a = p.parse_args(argv)
    if not 1 <= a.routes <= 1000:
        p.error("--routes must be in 1..1000")
    if not (0 <= a.pct16 <= 100 and 0 <= a.pct32 <= 100 and a.pct16 + a.pct32 <= 100):
        p.error("--pct16 and --pct32 must be percentages summing to at most 100")
    if not 1 <= a.next_hops <= 250:
        p.error("--next-hops must be in 1..250")
    if not (0 <= a.in_port <= 510 and 0 <= a.out_port <= 510):
        p.error("ports must be in 0..510")
    if not (a.entries or a.ovs_flows or a.nets):
        p.error("nothing to write: give --entries, --ovs-flows and/or --nets")
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
    if a.nets:
        with open(a.nets, "w") as f:
            f.write(head + "\n")
            f.write("".join("%s/%d\n" % (ip_str(net), plen) for net, plen in routes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
