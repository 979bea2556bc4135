#!/usr/bin/env python3
"""End-to-end scenarios of Sluice's default program through DPDK TAP ports.

`sluiced` runs the default program (no [pipeline], no [[xconnect]]) and its built-in app
programs it from the configuration that tests/default_program.rs writes. Its ports are
DPDK net_tap devices: a frame the kernel sends on interface IFn enters the switch on P4
port n, and a frame the switch sends on port n is received on IFn. This script sends
frames on those interfaces (AF_PACKET) and reads what comes out of every one of them.

Every frame carries a random token; frames without one (the kernel's own IPv6 noise)
are ignored. The kernel moves a received 802.1Q tag out of the frame; the script reads
it back from PACKET_AUXDATA, so frames are compared exactly as they were on the wire.

Scenarios (--scenario), with the configuration each expects (the names, MACs and
addresses are constants below, and tests/default_program.rs writes the same ones):

  learning  ports 1, 2 access VLAN 10; 3 access VLAN 20; 4 trunk [10, 20]; 5 trunk [10]
            with native VLAN 20; [[mac]] STATIC_MAC in VLAN 10 on port 2.
            Unknown unicast floods within its VLAN (tagged on trunks, untagged in a
            native VLAN), never back out of its port nor into another VLAN; learned MACs
            are unicast; a trunk's tagged frames are bridged in their VLAN, other VLANs
            and untagged frames on a trunk without a native VLAN are dropped; a MAC that
            moves is followed; a static MAC is unicast at once and never moves.
  routing   ports as learning's 1-4; router interfaces on VLANs 10 and 20, neighbors N1
            (10.0.20.2, port 3), N2 (10.0.20.3, port 4 VLAN 20), N3 (10.0.10.9, port 2),
            N6 (2001:db8:20::6, port 4 VLAN 20); routes 198.51.100.0/24 via N2,
            192.0.2.0/24 via N3, 2001:db8:99::/48 via N6, 203.0.113.0/24 via N1 and N2.
            Rewritten MACs, TTL / hop limit - 1, the checksum, the tag, also back out of
            the ingress trunk; 64 flows spread over both ECMP next hops and stay there;
            TTL 1, no route, non-IP and IPv4 with options to a router MAC are dropped.
  options   ports 1, 2 access VLAN 10; 3 trunk [10]. IPv4 with options (IHL 6) is
            bridged unchanged, its header checksum included.
  acl       ports 1, 2 access VLAN 10; 3 trunk [10]; 4 access VLAN 99 (the mirror).
            [switch] mac_aging_s = 1. ACL rules: mirror EtherType 0x88b7 to port 4
            (copies exactly as received, tag included); deny 0x88b8 except from
            PERMIT_MAC (a higher-priority permit); deny UDP to 10.9.0.0/16 port 9999.
            Then aging: a MAC that keeps sending stays learned past the aging time, one
            that stops is flooded to again.
  punt      ports 1, 2, 3 access VLAN 10; 4 trunk [10]; ACL punt EtherType 0x88b6
            ([p4runtime] cpu_port = 255). Needs the shell venv (p4runtime-shell). With no
            controller a punted frame goes nowhere; a p4runtime-shell primary (which
            pushes no pipeline) gets punted frames as PacketIns (ingress_port = 1; from
            the trunk: ingress_port = 4, with the tag), reads the app's ACL entry and the
            counters, sends a PacketOut, receives the learning digests and writes a dmac
            entry; when it leaves, the app reloads its program (learned MACs and the
            controller's entry are gone: flooding again) and learns anew.
  counters  ports 1 access VLAN 10; 2 access VLAN 20; 3 trunk [10, 20]; 4, 5 access
            VLAN 30 (only to see the switch bridge). Needs the shell venv. Known numbers
            of frames in VLANs 10 and 20 (from the access ports, tagged from the trunk),
            each flooded to its VLAN's one other port; the counters port_rx, port_tx
            (ports 1-3), vlan_rx, vlan_tx (VLANs 10, 20) read before the traffic with a
            bare P4Runtime Read (no primary: the app stays active) and after it by a
            p4runtime-shell primary. The Rust test asserts what the traffic added.
  vxlan     ports 1, 2 access VLAN 10; 3 the underlay; 4 trunk [10]. [[vtep]] 192.0.2.1
            VNI 5000 -> VLAN 10, remote 192.0.2.2; [[mac]] REMOTE_MAC behind it.
            Encapsulation field by field (also of a frame from the trunk: the tag is not
            carried); flooding reaches the remote; decapsulation to a learned MAC and
            flooding of a decapsulated broadcast (never back into the tunnel); another VNI
            or VTEP address is not terminated.
  live      ports as routing's 1-4; router interfaces on VLANs 10 and 20, neighbor N1
            (10.0.20.2, port 3), no route. Drives `sluicectl` (--sluicectl, --socket)
            while frames cross, and checks each change with one frame sent as soon as
            the command returns (a write is in the workers by then): `switch show`,
            learned MACs in `mac list`; `route add 10.40.0.0/16 --via 10.0.20.2` routes
            10.40.0.1 (exactly: MACs, TTL, checksum) where nothing came out before,
            `route del` stops it; a route via a non-neighbor exits 1 with the reason and
            changes nothing; `acl add` denies EtherType 0x88b5 and `acl del` bridges it
            again; `vlan set p2 --access 20` moves port 2's flooding from VLAN 10 to 20.
  police    ports 1, 2 access VLAN 10. With `sluicectl` (--sluicectl, --socket): `meter
            set ingress.port_policer` cells 1 and 2 (20000 B/s, 3000-byte bursts); a
            burst of 100 frames of 1000 bytes from port 1 all reach port 2 (no
            port_policing entry); after `table add ingress.port_policing ingress.police
            1 =>` the same burst is policed (the Rust test bounds what passed by the
            burst and the rate for the time taken); 100 frames from port 2 (no entry)
            all reach port 1; `meter list` gives each cell's colors.
  nolearn   ports 1, 2 access VLAN 10; 3 trunk [10]; [switch] learning = false. Frames
            to a host that has spoken keep flooding.
  empty     ports 1, 2 access VLAN 10; [switch] app = false: the program runs with no
            entry, so every frame is dropped (port_vlan misses).

Usage: python3 tests/default_program/scenarios.py --addr 127.0.0.1:PORT
           --scenario NAME --ifaces IF1,IF2,... [--timeout 60]
           [--sluicectl PATH --socket PATH]
       (punt, counters: run them with .venv-p4rt/shell/bin/python; live, police: need
       --sluicectl and --socket, the daemon's management socket)

Exit 0: every check passed; 1: a check failed ("FAIL: <step>: expected ...; got ..." on
stderr); 2: bad usage. The last stdout line is one JSON object {"script", "ok",
"observed", ...} (the tests/p4rt/common.py conventions).
"""

import json
import os
import select
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "p4rt"))
import common as c  # noqa: E402

SCRIPT = "default_program"

# The addresses of the configurations (tests/default_program.rs writes the same).
ROUTER_MAC_10 = "02:5d:00:00:00:0a"
ROUTER_MAC_20 = "02:5d:00:00:00:14"
N1_MAC = "02:5d:00:00:20:02"          # 10.0.20.2, port 3 (access VLAN 20)
N2_MAC = "02:5d:00:00:20:03"          # 10.0.20.3, port 4 (trunk, VLAN 20)
N3_MAC = "02:5d:00:00:10:09"          # 10.0.10.9, port 2 (access VLAN 10)
N6_MAC = "02:5d:00:00:20:06"          # 2001:db8:20::6, port 4 (trunk, VLAN 20)
STATIC_MAC = "02:5d:00:00:55:01"    # learning: [[mac]] in VLAN 10 on port 2
PERMIT_MAC = "02:5d:00:00:99:01"      # acl: the permit rule's source MAC
VTEP_MAC = "02:5d:00:00:01:01"        # vxlan: [[vtep]] mac
VTEP_NEXT_HOP = "02:5d:00:00:01:02"   # vxlan: [[vtep]] next_hop_mac
VTEP_LOCAL = "192.0.2.1"
VTEP_REMOTE = "192.0.2.2"
VNI = 5000
REMOTE_MAC = "02:5d:00:00:99:09"      # vxlan: [[mac]] behind the remote VTEP

ET_TOKEN = 0x88B5    # plain frames
ET_PUNT = 0x88B6     # punt: the ACL punts it
ET_MIRROR = 0x88B7   # acl: the ACL mirrors it
ET_DENY = 0x88B8     # acl: the ACL denies it (but from PERMIT_MAC)

# How long to wait for an expected frame, and how long to keep listening for
# unexpected ones after the expected ones have arrived.
WAIT = 1.5
QUIET = 0.3

# ---------------------------------------------------------------------------------------
# Frames

M = c.mac_bytes


def token():
    return b"SLUICE-DP-" + os.urandom(8).hex().encode()


def payload(tok, length=64):
    return tok + bytes(range(256))[: max(0, length - len(tok))]


def eth(dst, src, etype, body):
    return dst + src + struct.pack("!H", etype) + body


def token_frame(dst, src, etype=ET_TOKEN, length=100):
    """(frame, token): an Ethernet frame of `length` bytes carrying a fresh token."""
    tok = token()
    return eth(dst, src, etype, payload(tok, length - 14)), tok


def tag(frame, vid, pcp=0):
    return frame[:12] + struct.pack("!HH", 0x8100, (pcp << 13) | vid) + frame[12:]


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, body, ttl=64, ident=1):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), ident, 0x4000, ttl, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack("!H", checksum(h)) + h[12:] + body


def ipv4_options(src, dst, proto, body, ttl=64):
    """IPv4 with one 4-byte option (four NOPs): IHL 6."""
    h = struct.pack("!BBHHHBBH4s4s", 0x46, 0, 24 + len(body), 1, 0x4000, ttl, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst)) + b"\x01\x01\x01\x01"
    return h[:10] + struct.pack("!H", checksum(h)) + h[12:] + body


def ipv6(src, dst, nh, body, hop=64):
    return (struct.pack("!IHBB", 6 << 28, len(body), nh, hop)
            + socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
            + body)


def udp(sport, dport, body):
    return struct.pack("!HHHH", sport, dport, 8 + len(body), 0) + body


def udp4_frame(dst, src, sip, dip, sport, dport, tok, ttl=64):
    return eth(dst, src, 0x0800, ipv4(sip, dip, 17, udp(sport, dport, payload(tok)), ttl=ttl))


def vxlan_frame(dst, src, sip, dip, vni, inner, sport=55555):
    vx = struct.pack("!B3s3sB", 0x08, b"\0\0\0", vni.to_bytes(3, "big"), 0)
    return eth(dst, src, 0x0800, ipv4(sip, dip, 17, udp(sport, 4789, vx + inner), ident=0))


def hexdump(b):
    return c.hexdump(b, 48)


def show(frames):
    return [hexdump(f) for f in frames]


# ---------------------------------------------------------------------------------------
# The switch's ports, from the kernel side

SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6


def quiet_iface(name):
    """No IPv6 on the interface (the kernel's ND/MLD frames are noise here), then up."""
    subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1"],
                   capture_output=True)
    c.iface_ready(name)


class Tap:
    """An AF_PACKET socket on one interface; received frames come back with their VLAN tag."""

    def __init__(self, iface):
        self.iface = iface
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(c.ETH_P_ALL))
        self.sock.bind((iface, c.ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        self.sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        self.sock.setblocking(False)

    def send(self, frame):
        self.sock.send(frame)

    def read(self):
        """One received frame (not one we sent), or None if nothing is queued."""
        while True:
            try:
                data, anc, _, addr = self.sock.recvmsg(65535, socket.CMSG_SPACE(64))
            except (BlockingIOError, InterruptedError):
                return None
            if addr[2] == c.PACKET_OUTGOING:
                continue
            for level, kind, cdata in anc:
                if level == SOL_PACKET and kind == PACKET_AUXDATA and len(cdata) >= 20:
                    status, _, _, _, _, tci, tpid = struct.unpack("=IIIHHHH", cdata[:20])
                    if status & TP_STATUS_VLAN_VALID:
                        if not status & TP_STATUS_VLAN_TPID_VALID:
                            tpid = 0x8100
                        data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
            return data

    def drain(self):
        while self.read() is not None:
            pass


class Switch:
    """The kernel side of P4 ports 1..n."""

    def __init__(self, run, ifaces):
        self.run = run
        run.step(f"interfaces {', '.join(ifaces)} exist and are up")
        for name in ifaces:
            quiet_iface(name)
        self.ports = {n: Tap(name) for n, name in enumerate(ifaces, 1)}

    def name(self, p):
        return f"port {p} ({self.ports[p].iface})" if p in self.ports else "the controller"

    def exchange(self, sends, tokens, want_count=None, wait=WAIT, quiet=QUIET):
        """Send (port, frame) pairs; collect the frames carrying one of `tokens` on every
        port until `want_count` have arrived (or `wait` s), then `quiet` s more.
        Returns {port: [frame, ...]} (ports with no frame left out)."""
        for t in self.ports.values():
            t.drain()
        for p, f in sends:
            self.ports[p].send(f)
        got = {}
        n = 0
        deadline = time.monotonic() + wait
        settle = None
        by_fd = {t.sock.fileno(): (p, t) for p, t in self.ports.items()}
        while True:
            now = time.monotonic()
            if settle is None and (want_count is not None and n >= want_count or now >= deadline):
                settle = now + quiet
            end = settle if settle is not None else deadline
            if now >= end:
                return got
            ready, _, _ = select.select(list(by_fd), [], [], end - now)
            for fd in ready:
                p, t = by_fd[fd]
                while (f := t.read()) is not None:
                    if any(tok in f for tok in tokens):
                        got.setdefault(p, []).append(f)
                        n += 1

    def send(self, port, frame, tok, want):
        """Send one frame; the frames seen, compared with `want` ({port: [frames]})."""
        count = sum(len(v) for v in want.values())
        return self.exchange([(port, frame)], [tok], count, quiet=QUIET if count else 2 * QUIET)

    def expect(self, what, port, frame, tok, want):
        """Send one frame from `port`: exactly the frames `want` ({port: [frames]}) come
        out, on those ports and no other."""
        got = self.send(port, frame, tok, want)
        self.check(what, port, got, want)
        return got

    def check(self, what, port, got, want):
        want = {p: v for p, v in want.items() if v}
        if got == want:
            return
        lines = []
        for p in sorted(set(got) | set(want)):
            if sorted(got.get(p, [])) != sorted(want.get(p, [])):
                lines.append(f"{self.name(p)}: expected {show(want.get(p, [])) or 'nothing'}; "
                             f"got {show(got.get(p, [])) or 'nothing'}")
        self.run.fail(f"{what} (sent from {self.name(port)}): " + " | ".join(lines))

    def converge(self, what, make, want, interim, limit=5.0):
        """Retry a frame (make() -> (port, frame, token)) until exactly want(frame)
        comes out; meanwhile only interim(frame) (a list of acceptable outcomes: the state
        before learning, a reload, ...) may. Returns (got, attempts, seconds)."""
        start = time.monotonic()
        attempts = 0
        while True:
            port, frame, tok = make()
            attempts += 1
            w = {p: v for p, v in want(frame).items() if v}
            got = self.send(port, frame, tok, w)
            if got == w:
                return got, attempts, round(time.monotonic() - start, 3)
            ok = [{p: v for p, v in i.items() if v} for i in interim(frame)]
            if got not in ok or time.monotonic() - start > limit:
                self.check(f"{what} (attempt {attempts}, {time.monotonic() - start:.1f} s)",
                           port, got, w)
            time.sleep(0.05)


# ---------------------------------------------------------------------------------------
# learning

def scenario_learning(run, sw):
    a, b, cc, d = (c.unique_mac() for _ in range(4))
    st = M(STATIC_MAC)
    run.record("macs", {"A": c.mac_str(a), "B": c.mac_str(b), "C": c.mac_str(cc),
                        "D": c.mac_str(d)})
    bc = b"\xff" * 6

    run.step("A -> B (unknown) from port 1: flooded to 2, and tagged 10 to the trunks 4 and 5")
    got, attempts, _ = sw.converge(
        "unknown unicast in VLAN 10",
        lambda: (1, *token_frame(b, a)),
        lambda f: {2: [f], 4: [tag(f, 10)], 5: [tag(f, 10)]},
        lambda f: [{}])   # the switch may still be starting
    run.record("flood_vlan10", {"ports": sorted(got), "attempts": attempts})

    run.step("B -> A from port 2 once A is learned: on port 1 only")
    got, attempts, secs = sw.converge(
        "B -> A unicast to the learned port",
        lambda: (2, *token_frame(a, b)),
        lambda f: {1: [f]},
        lambda f: [{1: [f], 4: [tag(f, 10)], 5: [tag(f, 10)]}])   # flooded until A is learned
    run.record("unicast_to_learned", {"ports": sorted(got), "attempts": attempts,
                                      "seconds": secs})

    run.step("A -> B from port 1 once B is learned: on port 2 only")
    got, attempts, _ = sw.converge(
        "A -> B unicast to the learned port",
        lambda: (1, *token_frame(b, a)),
        lambda f: {2: [f]},
        lambda f: [{2: [f], 4: [tag(f, 10)], 5: [tag(f, 10)]}])
    run.record("unicast_back", {"ports": sorted(got), "attempts": attempts})

    run.step("broadcast from port 3 (VLAN 20): tagged 20 on port 4, untagged on port 5 (native 20)")
    f, tok = token_frame(bc, cc)
    got = sw.expect("broadcast in VLAN 20", 3, f, tok, {4: [tag(f, 20)], 5: [f]})
    run.record("broadcast_vlan20", sorted(got))

    run.step("D -> A tagged 10 from the trunk: untagged on port 1 only")
    f, tok = token_frame(a, d)
    got = sw.expect("tagged VLAN 10 from the trunk to a learned MAC", 4, tag(f, 10), tok, {1: [f]})
    run.record("trunk_to_access", sorted(got))

    run.step("broadcast tagged 20 from trunk 4: untagged on ports 3 and 5")
    f, tok = token_frame(bc, d)
    got = sw.expect("tagged VLAN 20 broadcast from the trunk", 4, tag(f, 20), tok, {3: [f], 5: [f]})
    run.record("trunk_broadcast_vlan20", sorted(got))

    run.step("untagged broadcast from trunk 5 (native VLAN 20): port 3, port 4 tagged 20")
    f, tok = token_frame(bc, c.unique_mac())
    got = sw.expect("untagged on a trunk with native VLAN 20", 5, f, tok, {3: [f], 4: [tag(f, 20)]})
    run.record("native_vlan", sorted(got))

    run.step("broadcast tagged 10 from trunk 5: ports 1, 2, port 4 tagged 10")
    f, tok = token_frame(bc, c.unique_mac())
    got = sw.expect("tagged VLAN 10 on the native-VLAN trunk", 5, tag(f, 10), tok,
                    {1: [f], 2: [f], 4: [tag(f, 10)]})
    run.record("native_trunk_tagged", sorted(got))

    run.step("trunk 4: broadcasts tagged 30 (not trunked) or untagged (no native VLAN) are dropped")
    f, tok = token_frame(bc, d)
    sw.expect("a VLAN the trunk does not carry", 4, tag(f, 30), tok, {})
    f, tok = token_frame(bc, d)
    sw.expect("an untagged frame on a trunk without a native VLAN", 4, f, tok, {})
    run.record("trunk_foreign_dropped", True)

    run.step("B moves to the trunk (sends from port 4 tagged 10); A -> B follows it")
    f, tok = token_frame(a, b)
    sw.expect("B -> A from its new port", 4, tag(f, 10), tok, {1: [f]})
    got, attempts, _ = sw.converge(
        "A -> B after B moved",
        lambda: (1, *token_frame(b, a)),
        lambda f: {4: [tag(f, 10)]},
        lambda f: [{2: [f]}])   # the old port until the app moves B
    run.record("moved", {"ports": sorted(got), "attempts": attempts})

    run.step("static MAC S (port 2): unicast at once, and it never moves")
    f, tok = token_frame(st, a)
    got = sw.expect("to the static MAC", 1, f, tok, {2: [f]})
    f, tok = token_frame(a, st)
    sw.expect("the static MAC speaking from trunk 5 (tagged 10)", 5, tag(f, 10), tok, {1: [f]})
    time.sleep(0.5)   # what a move would take (the learning above took well under that)
    f, tok = token_frame(st, a)
    sw.expect("to the static MAC after it spoke elsewhere", 1, f, tok, {2: [f]})
    run.record("static_kept", True)


# ---------------------------------------------------------------------------------------
# routing

def check_routed(run, what, frame, dst, src, vid, ttl):
    """Field checks of a routed IPv4 frame (clear messages before the byte comparison)."""
    if vid is not None:
        tci = struct.unpack("!H", frame[14:16])[0]
        run.check(frame[12:14] == b"\x81\x00" and tci & 0xFFF == vid, f"{what}: tagged VLAN {vid}",
                  hexdump(frame))
        frame = frame[:12] + frame[16:]
    run.check(frame[:6] == M(dst) and frame[6:12] == M(src),
              f"{what}: dst {dst}, src {src}",
              f"dst {c.mac_str(frame[:6])}, src {c.mac_str(frame[6:12])}")
    ip = frame[14:34]
    run.check(ip[8] == ttl, f"{what}: TTL {ttl}", ip[8])
    run.check(checksum(ip) == 0, f"{what}: a valid IPv4 header checksum",
              f"{ip[10:12].hex()} (sums to {checksum(ip):#06x})")


def scenario_routing(run, sw):
    h = c.unique_mac()
    r10, r20 = M(ROUTER_MAC_10), M(ROUTER_MAC_20)
    run.record("host", c.mac_str(h))

    def routed(dst_mac, src_mac, sip, dip, sport, tok, ttl):
        return udp4_frame(M(dst_mac), M(src_mac), sip, dip, sport, 5001, tok, ttl)

    run.step("IPv4 from port 1 to 198.51.100.7 (via N2): port 4 tagged 20, MACs rewritten, TTL 63")
    sent = {}

    def make():
        tok = token()
        f = udp4_frame(r10, h, "10.0.10.5", "198.51.100.7", 40000, 5001, tok)
        sent[f] = routed(N2_MAC, ROUTER_MAC_20, "10.0.10.5", "198.51.100.7", 40000, tok, 63)
        return 1, f, tok
    got, attempts, _ = sw.converge("routed to 198.51.100.0/24", make,
                                   lambda f: {4: [tag(sent[f], 20)]}, lambda f: [{}])
    check_routed(run, "routed to N2", got[4][0], N2_MAC, ROUTER_MAC_20, 20, 63)
    run.record("route_v4", {"ports": sorted(got), "attempts": attempts, "frame": got[4][0].hex()})

    run.step("router on a stick: tagged 10 from trunk 4 to 198.51.100.8: out of port 4 tagged 20")
    tok = token()
    f = udp4_frame(r10, h, "10.0.10.6", "198.51.100.8", 40005, 5001, tok)
    want = routed(N2_MAC, ROUTER_MAC_20, "10.0.10.6", "198.51.100.8", 40005, tok, 63)
    got = sw.expect("routed back out of its ingress port", 4, tag(f, 10), tok, {4: [tag(want, 20)]})
    run.record("route_hairpin", sorted(got))

    run.step("IPv4 from port 3 (VLAN 20) to 192.0.2.9 (via N3): untagged on port 2, VLAN 10's MAC")
    tok = token()
    f = udp4_frame(r20, h, "10.0.20.5", "192.0.2.9", 40001, 5001, tok)
    want = routed(N3_MAC, ROUTER_MAC_10, "10.0.20.5", "192.0.2.9", 40001, tok, 63)
    got = sw.expect("routed from VLAN 20 into VLAN 10", 3, f, tok, {2: [want]})
    check_routed(run, "routed to N3", got[2][0], N3_MAC, ROUTER_MAC_10, None, 63)
    run.record("route_v4_reverse", sorted(got))

    run.step("IPv6 from port 1 to 2001:db8:99::7 (via N6): on port 4 tagged 20, hop limit 63")
    tok = token()
    body = udp(40002, 5001, payload(tok))
    f = eth(r10, h, 0x86DD, ipv6("2001:db8:10::5", "2001:db8:99::7", 17, body, hop=64))
    want = eth(M(N6_MAC), r20, 0x86DD, ipv6("2001:db8:10::5", "2001:db8:99::7", 17, body, hop=63))
    got = sw.expect("IPv6 routed to 2001:db8:99::/48", 1, f, tok, {4: [tag(want, 20)]})
    run.record("route_v6", {"ports": sorted(got), "hop_limit": got[4][0][4 + 14 + 7]})

    run.step("ECMP: 64 flows to 203.0.113.9 (via N1 and N2)")
    flows = list(range(20000, 20064))

    def ecmp_round(label):
        sends, tokens, want = [], [], {}
        for sport in flows:
            tok = token()
            sends.append((1, udp4_frame(r10, h, "10.0.10.5", "203.0.113.9", sport, 5001, tok)))
            tokens.append(tok)
            want[tok] = {
                3: routed(N1_MAC, ROUTER_MAC_20, "10.0.10.5", "203.0.113.9", sport, tok, 63),
                4: tag(routed(N2_MAC, ROUTER_MAC_20, "10.0.10.5", "203.0.113.9", sport, tok, 63),
                       20),
            }
        got = sw.exchange(sends, tokens, len(flows), wait=3.0, quiet=0.5)
        where = {}
        for p, frames in got.items():
            for f in frames:
                tok = next(t for t in tokens if t in f)
                i = tokens.index(tok)
                run.check(p in (3, 4), f"{label}: flow {flows[i]} on port 3 or 4 only",
                          f"on {sw.name(p)}: {hexdump(f)}")
                run.check(f == want[tok][p], f"{label}: flow {flows[i]} on port {p} exactly "
                          f"{hexdump(want[tok][p])}", hexdump(f))
                run.check(flows[i] not in where, f"{label}: flow {flows[i]} once",
                          f"on port {where.get(flows[i])} and port {p}")
                where[flows[i]] = p
        missing = [s for s in flows if s not in where]
        run.check(not missing, f"{label}: all 64 flows routed", f"flows {missing} not seen")
        return where

    first = ecmp_round("ECMP round 1")
    spread = {p: sum(1 for v in first.values() if v == p) for p in (3, 4)}
    run.record("ecmp_spread", {f"port{p}": n for p, n in spread.items()})
    run.check(spread[3] > 0 and spread[4] > 0, "both next hops get some of the 64 flows",
              f"port 3 (N1): {spread[3]}, port 4 (N2): {spread[4]}")
    second = ecmp_round("ECMP round 2")
    moved = [s for s in flows if first[s] != second[s]]
    run.check(not moved, "every flow takes the same next hop again", f"flows {moved} changed")
    run.record("ecmp_stable", True)

    run.step("dropped: TTL 1, no route, non-IP to the router MAC")
    tok = token()
    sw.expect("TTL 1", 1, udp4_frame(r10, h, "10.0.10.5", "198.51.100.7", 40003, 5001, tok, ttl=1),
              tok, {})
    tok = token()
    sw.expect("no route (100.64.0.1)", 1,
              udp4_frame(r10, h, "10.0.10.5", "100.64.0.1", 40004, 5001, tok), tok, {})
    f, tok = token_frame(r10, h)
    sw.expect("a non-IP frame to the router MAC", 1, f, tok, {})
    tok = token()
    body = ipv4_options("10.0.10.5", "198.51.100.7", 17, udp(40006, 5001, payload(tok)))
    sw.expect("IPv4 with options to the router MAC (not routed)", 1, eth(r10, h, 0x0800, body),
              tok, {})
    run.record("drops_checked", ["ttl1", "no_route", "non_ip", "ipv4_options"])



# ---------------------------------------------------------------------------------------
# options: IPv4 with options is bridged unchanged

def scenario_options(run, sw):
    h = c.unique_mac()
    run.step("IPv4 with options to an unknown MAC from port 1: flooded in VLAN 10 unchanged")

    def make():
        tok = token()
        ip = ipv4_options("10.0.10.5", "10.0.10.77", 17, udp(40007, 5001, payload(tok)))
        return 1, eth(c.unique_mac(), h, 0x0800, ip), tok
    got, attempts, _ = sw.converge("IPv4 with options, bridged", make,
                                   lambda f: {2: [f], 3: [tag(f, 10)]},
                                   lambda f: [{}])   # the switch may still be starting
    run.record("options_bridged", {"ports": sorted(got), "attempts": attempts})


# ---------------------------------------------------------------------------------------
# acl (mirror, deny, permit) and aging

def scenario_acl(run, sw):
    a = c.unique_mac()

    def flood10(f, ingress):
        """The flood of an untagged frame `f` in VLAN 10 from `ingress` (1, 2 or 3)."""
        out = {1: [f], 2: [f], 3: [tag(f, 10)]}
        out.pop(ingress)
        return out

    run.step("plain frame from port 1: flooded in VLAN 10, nothing on the mirror port 4")
    got, attempts, _ = sw.converge("unknown unicast in VLAN 10",
                                   lambda: (1, *token_frame(c.unique_mac(), a)),
                                   lambda f: flood10(f, 1), lambda f: [{}])
    run.record("flood", {"ports": sorted(got), "attempts": attempts})

    run.step("mirrored EtherType, untagged from port 1: flooded and one identical copy on port 4")
    f, tok = token_frame(c.unique_mac(), a, ET_MIRROR)
    got = sw.expect("mirror rule, untagged", 1, f, tok, {**flood10(f, 1), 4: [f]})
    run.record("mirror_untagged", sorted(got))

    run.step("mirrored EtherType, tagged 10 (PCP 5) from trunk port 3: the copy keeps the tag")
    f, tok = token_frame(c.unique_mac(), c.unique_mac(), ET_MIRROR)
    t = tag(f, 10, pcp=5)
    got = sw.expect("mirror rule, tagged", 3, t, tok, {1: [f], 2: [f], 4: [t]})
    run.record("mirror_tagged", {"ports": sorted(got), "copy": got[4][0].hex()})

    run.step("denied EtherType: dropped; from PERMIT_MAC (higher-priority permit): flooded")
    f, tok = token_frame(c.unique_mac(), a, ET_DENY)
    sw.expect("deny rule", 1, f, tok, {})
    f, tok = token_frame(c.unique_mac(), M(PERMIT_MAC), ET_DENY)
    sw.expect("permit rule above the deny rule", 1, f, tok, flood10(f, 1))
    run.record("deny_permit", True)

    run.step("UDP to 10.9.1.1 port 9999: dropped; port 9998: flooded")
    dst = c.unique_mac()
    tok = token()
    f = udp4_frame(dst, a, "10.0.10.5", "10.9.1.1", 33333, 9999, tok)
    sw.expect("deny rule on IPv4 prefix, protocol and port", 1, f, tok, {})
    tok = token()
    f = udp4_frame(dst, a, "10.0.10.5", "10.9.1.1", 33333, 9998, tok)
    sw.expect("another UDP port", 1, f, tok, flood10(f, 1))
    run.record("deny_l4", True)

    run.step("aging (mac_aging_s = 1): A learned on port 1")
    h, z, b = c.unique_mac(), c.unique_mac(), c.unique_mac()

    def keepalive():
        # The same flow every time (A -> Z): after the first, a cache hit in the worker.
        f, _ = token_frame(z, h)
        sw.ports[1].send(f)
        time.sleep(0.02)

    def make():
        keepalive()
        return (2, *token_frame(h, b))
    got, attempts, _ = sw.converge("B -> A once A is learned", make, lambda f: {1: [f]},
                                   lambda f: [flood10(f, 2)])
    run.record("aging_learned", {"ports": sorted(got), "attempts": attempts})

    run.step("A keeps sending for 3 s (3 x mac_aging_s): B -> A stays unicast to port 1")
    start = time.monotonic()
    rounds = 0
    while time.monotonic() - start < 3.0:
        keepalive()
        f, tok = token_frame(h, b)
        sw.expect(f"B -> A while A is active ({time.monotonic() - start:.1f} s)", 2, f, tok,
                  {1: [f]})
        rounds += 1
    run.record("active_kept_rounds", rounds)

    run.step("A stops: B -> A is flooded again once A aged out")
    start = time.monotonic()
    got, attempts, secs = sw.converge(
        "B -> A flooded again after A aged out",
        lambda: (time.sleep(0.3), (2, *token_frame(h, b)))[1],
        lambda f: flood10(f, 2), lambda f: [{1: [f]}], limit=8.0)
    run.record("aged_after_s", round(time.monotonic() - start, 2))


# ---------------------------------------------------------------------------------------
# punt (p4runtime-shell as an external controller)

def shell_primary(run):
    """p4runtime-shell, connected as the primary without pushing a pipeline (config=None):
    the app steps back until sh.teardown(). Returns the shell module."""
    import contextlib
    import io
    import logging
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        import p4runtime_sh.shell as sh
    except ImportError as e:
        raise c.UsageError(f"{run.args.scenario} needs p4runtime-shell (run it with "
                           f".venv-p4rt/shell/bin/python): {e}")
    args = run.args
    election = (0, 1 + args.election_base)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            sh.setup(device_id=args.device_id, grpc_addr=args.addr, election_id=election,
                     config=None, verbose=False)
    except SystemExit:
        run.fail("expected p4runtime_sh.shell.setup(config=None) to get the switch's P4Info; "
                 f"got it giving up (log above); it printed {printed.getvalue().strip()!r}")
    run.check("not the primary" not in printed.getvalue(), f"primary with election id {election}",
              printed.getvalue().strip())
    return sh


def scenario_punt(run, sw):
    a = c.unique_mac()

    def flood(f, ingress):
        """An untagged frame `f` flooded in VLAN 10 (access ports 1-3, trunk 4) from `ingress`."""
        return {p: [tag(f, 10) if p == 4 else f] for p in (1, 2, 3, 4) if p != ingress}

    run.step("A learned on port 1 (bridging under the app)")
    _, from_port1, _ = sw.converge("unknown unicast in VLAN 10",
                                   lambda: (1, *token_frame(c.unique_mac(), a)),
                                   lambda f: flood(f, 1), lambda f: [{}])
    got, attempts, _ = sw.converge("X -> A once A is learned",
                                   lambda: (2, *token_frame(a, c.unique_mac())),
                                   lambda f: {1: [f]}, lambda f: [flood(f, 2)])
    run.record("learned_before", {"ports": sorted(got), "attempts": attempts})

    run.step("punted EtherType with no controller: not forwarded")
    punted = 0
    f, tok = token_frame(c.unique_mac(), a, ET_PUNT)
    sw.expect("a punted frame with no controller connected", 1, f, tok, {})
    punted += 1

    run.step("p4runtime-shell connects as primary without a pipeline (config=None)")
    sh = shell_primary(run)
    run.record("p4info_tables", sorted(t.preamble.name for t in sh.context.p4info.tables))
    packet_in = sh.PacketIn()
    digests = sh.DigestList()   # acknowledges every list it receives

    run.step("the app's ACL entry is readable by the controller")
    acl = [e.msg() for e in sh.TableEntry("ingress.acl").read()]
    run.check(len(acl) == 1, "one ingress.acl entry (the configured punt rule)", acl)
    action = sh.context.get_name_from_id(acl[0].action.action.action_id)
    run.check(action == "ingress.acl_punt", "its action ingress.acl_punt", action)
    run.record("acl_entry", {"action": action, "priority": acl[0].priority})

    md_names = {m.id: m.name for m in next(
        x for x in sh.context.p4info.controller_packet_metadata
        if x.preamble.name == "packet_in").metadata}

    def punt(port, vid):
        """Send punted frames from `port` (tagged `vid` if set) until one comes back as a
        PacketIn: (the frame sent, its PacketIn, frames sent). Never forwarded."""
        nonlocal punted
        deadline = time.monotonic() + 8.0
        sent, others = 0, 0
        while time.monotonic() < deadline:
            f, tok = token_frame(c.unique_mac(), a, ET_PUNT)
            if vid is not None:
                f = tag(f, vid, pcp=2)
            got = sw.send(port, f, tok, {})
            sent += 1
            punted += 1
            sw.check("a punted frame (controller connected)", port, got, {})
            for msg in packet_in.sniff(timeout=0.5):
                if msg is None:
                    run.fail("expected PacketIns; got the stream closed")
                if tok in msg.packet.payload:
                    pkt = msg.packet
                    md = {md_names.get(m.metadata_id, str(m.metadata_id)): c.bytes_int(m.value)
                          for m in pkt.metadata}
                    return f, {"payload": pkt.payload.hex(), "sent": f.hex(), "metadata": md,
                               "attempts": sent}
                others += 1
        run.fail(f"expected a PacketIn carrying a frame punted from port {port} within 8 s; "
                 f"got none after {sent} frames ({others} other PacketIns)")

    run.step("punted frame from port 1 -> PacketIn with ingress_port = 1, not forwarded")
    f, pin = punt(1, None)
    from_port1 += 1 + pin["attempts"]   # with the one punted before the controller came
    run.record("packet_in", pin)
    run.check(pin["payload"] == f.hex(), f"PacketIn payload = the frame {hexdump(f)}",
              pin["payload"])
    run.check(pin["metadata"] == {"ingress_port": 1, "_pad": 0},
              "metadata ingress_port = 1, _pad = 0", pin["metadata"])

    run.step("punted frame tagged 10 from trunk port 4 -> PacketIn with its tag, ingress_port = 4")
    f, pin = punt(4, 10)
    run.record("packet_in_trunk", pin)
    run.check(pin["payload"] == f.hex(), f"PacketIn payload = the frame as it came, tag included "
              f"{hexdump(f)}", pin["payload"])
    run.check(pin["metadata"] == {"ingress_port": 4, "_pad": 0},
              "metadata ingress_port = 4, _pad = 0", pin["metadata"])

    run.step("counters, read by the controller")
    ce = sh.CounterEntry("ingress.port_rx")
    ce.index = 1
    rx1 = [e.packet_count for e in ce.read()]
    dce = sh.DirectCounterEntry("ingress.acl_counter")
    acl_hits = [e.packet_count for e in dce.read()]
    run.record("counters", {"port_rx_1": rx1, "acl_punt_packets": acl_hits, "punted": punted,
                            "sent_from_port1": from_port1})
    run.check(len(rx1) == 1 and rx1[0] >= from_port1,
              f"ingress.port_rx[1] >= the {from_port1} frames sent from port 1", rx1)
    run.check(acl_hits == [punted], f"the punt rule's direct counter = {punted} frames punted",
              acl_hits)

    run.step("PacketOut egress_port = 2: the payload leaves port 2 as it is, nowhere else")
    f, tok = token_frame(c.unique_mac(), c.unique_mac())
    seen = {}
    for _ in range(5):
        for t in sw.ports.values():
            t.drain()
        sh.PacketOut(payload=f, egress_port="2", _pad="0").send()
        seen = sw.exchange([], [tok], 1)
        if seen:
            break
    sw.check("a PacketOut to port 2", 0, seen, {2: [f]})
    run.record("packet_out", sorted(seen))

    run.step("a new MAC while the controller is primary: the DigestList goes to the controller")
    e = c.unique_mac()
    f, tok = token_frame(c.unique_mac(), e)
    sw.expect("a frame from a new MAC (stepped back: flooded)", 1, f, tok, flood(f, 1))
    sample = None
    deadline = time.monotonic() + 5.0
    while sample is None and time.monotonic() < deadline:
        for msg in digests.sniff(timeout=0.3):
            for d in msg.digest.data:
                v = [c.bytes_int(m.bitstring) for m in d.struct.members]
                if len(v) == 3 and v[1] == c.bytes_int(e):
                    sample = {"vlan": v[0], "mac": c.mac_str(e), "port": v[2]}
    run.record("digest_to_controller", sample)
    run.check(sample is not None and sample["vlan"] == 10 and sample["port"] == 1,
              f"a DigestList sample (vlan 10, {c.mac_str(e)}, port 1) within 5 s", sample)

    run.step("the controller's own dmac entry (VLAN 10, Q -> port 3) forwards")
    q = c.unique_mac()
    te = sh.TableEntry("ingress.dmac")(action="ingress.l2_forward")
    te.match["meta.vlan"] = "10"
    te.match["hdr.ethernet.dst_addr"] = c.mac_str(q)
    te.action["port"] = "3"
    te.insert()
    f, tok = token_frame(q, c.unique_mac())
    sw.expect("to the controller's MAC entry", 1, f, tok, {3: [f]})
    run.record("controller_entry", True)

    run.step("the controller leaves: the app takes the switch back and reloads (A forgotten)")
    sh.teardown()
    got, attempts, secs = sw.converge(
        "Y -> A after the app took the switch back",
        lambda: (2, *token_frame(a, c.unique_mac())),
        lambda f: flood(f, 2),
        # still stepped back (A known), or in the middle of the reload
        lambda f: [{1: [f]}, {}], limit=8.0)
    run.record("flooded_after_takeover", {"ports": sorted(got), "attempts": attempts,
                                          "seconds": secs})
    f, tok = token_frame(q, c.unique_mac())
    sw.expect("to the controller's MAC after the reload (its entry is gone)", 1, f, tok,
              flood(f, 1))

    run.step("learning works again: X -> A is unicast once A spoke from port 1")

    def make():
        f, _ = token_frame(c.unique_mac(), a)
        sw.ports[1].send(f)
        time.sleep(0.02)
        return (2, *token_frame(a, c.unique_mac()))
    got, attempts, _ = sw.converge("X -> A once A is learned again", make, lambda f: {1: [f]},
                                   lambda f: [flood(f, 2)])
    run.record("relearned", {"ports": sorted(got), "attempts": attempts})


# ---------------------------------------------------------------------------------------
# counters: the program's port and VLAN counters, read by a controller

# (from port, tag (None: untagged), VLAN, frames, bytes each as sent): each frame goes to a
# fresh MAC, so it floods to the VLAN's one other port (tagged on the trunk, port 3).
COUNTED = ((1, None, 10, 3, 100), (3, 10, 10, 5, 100), (3, 20, 20, 7, 200), (2, None, 20, 11, 200))
COUNTED_OUT = {(1, 10): 3, (3, 10): 1, (3, 20): 2, (2, 20): 3}   # (from, VLAN) -> out port
COUNTER_CELLS = [(name, i) for name, cells in (
    ("ingress.port_rx", (1, 2, 3)), ("egress.port_tx", (1, 2, 3)),
    ("ingress.vlan_rx", (10, 20)), ("egress.vlan_tx", (10, 20))) for i in cells]
P4INFO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "pipelines",
                      "sluice_default", "sluice_default.p4info.txt")


def read_counters_raw(run):
    """COUNTER_CELLS with one bare P4Runtime Read: {"name[index]": [packets, bytes]}. A Read
    needs no arbitration, so nobody becomes the primary and the app stays active
    (p4runtime-shell always arbitrates)."""
    import grpc
    from p4.v1 import p4runtime_pb2, p4runtime_pb2_grpc
    ids = {ctr.preamble.name: ctr.preamble.id for ctr in c.P4Names(P4INFO).p4info.counters}
    req = p4runtime_pb2.ReadRequest(device_id=run.args.device_id)
    for name, i in COUNTER_CELLS:
        e = req.entities.add()
        e.counter_entry.counter_id = ids[name]
        e.counter_entry.index.index = i
    names = {v: k for k, v in ids.items()}
    with grpc.insecure_channel(run.args.addr, options=[("grpc.enable_http_proxy", 0)]) as ch:
        got = [e.counter_entry for rep in p4runtime_pb2_grpc.P4RuntimeStub(ch).Read(req, timeout=10)
               for e in rep.entities]
    out = {f"{names.get(e.counter_id)}[{e.index.index}]": [e.data.packet_count, e.data.byte_count]
           for e in got}
    want = [f"{name}[{i}]" for name, i in COUNTER_CELLS]
    run.check(sorted(out) == sorted(want) and len(got) == len(want), f"the cells {want}", got)
    return out


def scenario_counters(run, sw):
    run.step("the switch bridges: unknown unicast from port 4 reaches port 5 (VLAN 30, in no "
             "cell read here)")
    got, attempts, _ = sw.converge("unknown unicast in VLAN 30",
                                   lambda: (4, *token_frame(c.unique_mac(), c.unique_mac())),
                                   lambda f: {5: [f]}, lambda f: [{}])
    run.record("ready", {"ports": sorted(got), "attempts": attempts})

    run.step("the counters before the traffic (a bare Read: whatever the kernel sent when the "
             "interfaces came up is in them)")
    run.record("baseline", read_counters_raw(run))

    for port, vid, vlan, n, length in COUNTED:
        out = COUNTED_OUT[(port, vlan)]
        run.step(f"{n} frames of {length} bytes{f' tagged {vid}' if vid else ''} from port {port}: "
                 f"each once on port {out}{f' tagged {vlan}' if out == 3 else ''}, nowhere else")
        sends, tokens, want = [], [], []
        for _ in range(n):
            f, tok = token_frame(c.unique_mac(), c.unique_mac(), length=length)
            sends.append((port, f if vid is None else tag(f, vid)))
            tokens.append(tok)
            want.append(tag(f, vlan) if out == 3 else f)
        got = sw.exchange(sends, tokens, n)
        sw.check(f"{n} frames in VLAN {vlan}", port, {p: sorted(v) for p, v in got.items()},
                 {out: sorted(want)})
    run.record("sent", [{"port": p, "tag": v, "vlan": vl, "frames": n, "bytes": b}
                        for p, v, vl, n, b in COUNTED])

    run.step("p4runtime-shell connects (after the traffic) and reads the counters")
    sh = shell_primary(run)
    counters = {}
    for name, i in COUNTER_CELLS:
        ce = sh.CounterEntry(name)
        ce.index = i
        cells = [[e.packet_count, e.byte_count] for e in ce.read()]
        run.check(len(cells) == 1, f"one cell {name}[{i}]", cells)
        counters[f"{name}[{i}]"] = cells[0]
    run.record("counters", counters)
    sh.teardown()


# ---------------------------------------------------------------------------------------
# vxlan

def check_encap(run, what, frame, inner):
    """The VXLAN encapsulation of `inner`, field by field. Returns the UDP source port."""
    n = len(inner)
    run.check(len(frame) == 50 + n, f"{what}: {50 + n} bytes (50 of headers + the inner frame)",
              len(frame))
    run.check(frame[:6] == M(VTEP_NEXT_HOP) and frame[6:12] == M(VTEP_MAC)
              and frame[12:14] == b"\x08\x00",
              f"{what}: outer Ethernet {VTEP_NEXT_HOP} <- {VTEP_MAC}, IPv4",
              f"{c.mac_str(frame[:6])} <- {c.mac_str(frame[6:12])}, type {frame[12:14].hex()}")
    ip = frame[14:34]
    ver, tos, total, _ident, flags, ttl, proto, _ck, src, dst = struct.unpack("!BBHHHBBH4s4s", ip)
    fields = {"version_ihl": hex(ver), "total_len": total, "ttl": ttl, "proto": proto,
              "src": socket.inet_ntoa(src), "dst": socket.inet_ntoa(dst),
              "df": bool(flags & 0x4000)}
    run.check(ver == 0x45 and proto == 17 and total == 36 + n and ttl == 64 and
              fields["src"] == VTEP_LOCAL and fields["dst"] == VTEP_REMOTE,
              f"{what}: IPv4 0x45 total_len {36 + n} TTL 64 proto 17 {VTEP_LOCAL} -> {VTEP_REMOTE}",
              fields)
    run.check(checksum(ip) == 0, f"{what}: a valid outer IPv4 checksum", ip[10:12].hex())
    sport, dport, ulen, uck = struct.unpack("!HHHH", frame[34:42])
    run.check(dport == 4789 and ulen == 16 + n and uck == 0 and sport >= 49152,
              f"{what}: UDP dst 4789, length {16 + n}, checksum 0, source port >= 49152",
              {"src": sport, "dst": dport, "len": ulen, "checksum": uck})
    vflags, vni = frame[42], int.from_bytes(frame[46:49], "big")
    run.check(vflags == 0x08 and frame[43:46] == b"\0\0\0" and vni == VNI and frame[49] == 0,
              f"{what}: VXLAN flags 0x08, VNI {VNI}", frame[42:50].hex())
    run.check(frame[50:] == inner, f"{what}: the inner frame {hexdump(inner)}", hexdump(frame[50:]))
    return sport


def scenario_vxlan(run, sw):
    a = c.unique_mac()
    remote = M(REMOTE_MAC)

    run.step("A -> REMOTE_MAC from port 1: VXLAN-encapsulated on the underlay (port 3) only")
    sent = []

    def make():
        f, tok = token_frame(remote, a)
        sent.append(f)
        return 1, f, tok
    # The UDP source port is a hash: accept any frame on port 3, then check its fields.
    for _ in range(20):
        port, f, tok = make()
        got = sw.send(port, f, tok, {3: [None]})
        if got:
            break
    run.check(sorted(got) == [3] and len(got[3]) == 1,
              "one frame, on the underlay port 3 only", {p: show(v) for p, v in got.items()})
    sport = check_encap(run, "encapsulated unicast", got[3][0], f)
    run.record("encap", {"frame": got[3][0].hex(), "inner": f.hex(), "udp_src": sport})

    run.step("the same inner MACs again: the same UDP source port")
    f, tok = token_frame(remote, a)
    got = sw.send(1, f, tok, {3: [None]})
    run.check(sorted(got) == [3] and len(got[3]) == 1, "one frame on port 3 only",
              {p: show(v) for p, v in got.items()})
    run.check(check_encap(run, "encapsulated again", got[3][0], f) == sport,
              f"UDP source port {sport} again", struct.unpack("!H", got[3][0][34:36])[0])

    run.step("unknown unicast from port 1: flooded to ports 2, 4 (tagged 10) and the remote VTEP")
    f, tok = token_frame(c.unique_mac(), a)
    got = sw.send(1, f, tok, {2: [f], 3: [None], 4: [None]})
    run.check(sorted(got) == [2, 3, 4] and got[2] == [f] and got[4] == [tag(f, 10)]
              and len(got[3]) == 1,
              "the frame on port 2, tagged 10 on port 4 and one encapsulated copy on port 3",
              {p: show(v) for p, v in got.items()})
    check_encap(run, "flooded to the remote", got[3][0], f)
    run.record("flood_to_remote", sorted(got))

    run.step("tagged 10 from the trunk (port 4) to REMOTE_MAC: the inner frame is untagged")
    f, tok = token_frame(remote, c.unique_mac())
    got = sw.send(4, tag(f, 10, pcp=3), tok, {3: [None]})
    run.check(sorted(got) == [3] and len(got[3]) == 1, "one frame, on the underlay port 3 only",
              {p: show(v) for p, v in got.items()})
    check_encap(run, "encapsulated from the trunk", got[3][0], f)
    run.record("encap_from_trunk", {"frame": got[3][0].hex(), "inner": f.hex()})

    run.step("VNI 5000 to the local VTEP, inner dst A: decapsulated, on port 1 only")
    nh, vm = M(VTEP_NEXT_HOP), M(VTEP_MAC)

    def decap():
        inner, tok = token_frame(a, remote)
        return 3, vxlan_frame(vm, nh, VTEP_REMOTE, VTEP_LOCAL, VNI, inner), tok
    inner_of = lambda f: f[50:]  # noqa: E731
    got, attempts, _ = sw.converge(
        "decapsulated to a learned MAC", decap,
        lambda f: {1: [inner_of(f)]},
        # flooded until A is learned
        lambda f: [{1: [inner_of(f)], 2: [inner_of(f)], 4: [tag(inner_of(f), 10)]}])
    run.record("decap_unicast", {"ports": sorted(got), "attempts": attempts,
                                 "frame": got[1][0].hex()})

    run.step("decapsulated broadcast: ports 1, 2 and 4 (tagged 10), never back into the tunnel")
    inner, tok = token_frame(b"\xff" * 6, remote)
    got = sw.expect("decapsulated broadcast", 3,
                    vxlan_frame(vm, nh, VTEP_REMOTE, VTEP_LOCAL, VNI, inner), tok,
                    {1: [inner], 2: [inner], 4: [tag(inner, 10)]})
    run.record("decap_broadcast", sorted(got))

    run.step("VNI 5001 (not mapped) and another destination IP: not terminated, nothing out")
    inner, tok = token_frame(b"\xff" * 6, remote)
    sw.expect("an unmapped VNI", 3, vxlan_frame(vm, nh, VTEP_REMOTE, VTEP_LOCAL, 5001, inner), tok,
              {})
    inner, tok = token_frame(b"\xff" * 6, remote)
    sw.expect("another VTEP address", 3, vxlan_frame(vm, nh, VTEP_REMOTE, "192.0.2.77", VNI, inner),
              tok, {})
    run.record("not_terminated", True)


# ---------------------------------------------------------------------------------------
# live: sluicectl changes the running switch while frames cross

LIVE_PREFIX = "10.40.0.0/16"   # live: the route sluicectl adds (via N1)
NOT_A_NEIGHBOR = "10.9.9.9"    # live: a next hop that no [[neighbor]] names


def sluicectl(run, *args, want=0):
    """Run `sluicectl --socket SOCKET args`: (stdout, stderr), once it exited `want`."""
    a = run.args
    if not a.sluicectl or not a.socket:
        raise c.UsageError("this scenario needs --sluicectl and --socket")
    r = subprocess.run([a.sluicectl, "--socket", a.socket, *args], capture_output=True, text=True,
                       timeout=15)
    run.check(r.returncode == want, f"`sluicectl {' '.join(args)}` to exit {want}",
              f"exit {r.returncode}, stdout {r.stdout.strip()!r}, stderr {r.stderr.strip()!r}")
    return r.stdout, r.stderr


def table_rows(text):
    """The rows of a sluicectl table (header and "(none)" left out), split into cells."""
    return [line.split() for line in text.splitlines()[1:] if line.strip() != "(none)"]


def json_state(run, *args):
    """`sluicectl --json ARGS` (a show or list: the app's whole state), parsed."""
    out, _ = sluicectl(run, "--json", *args)
    try:
        return json.loads(out)
    except ValueError as e:
        run.fail(f"expected `sluicectl --json {' '.join(args)}` to print JSON; got {e}: {out!r}")


def scenario_live(run, sw):
    h = c.unique_mac()
    r10, r20 = M(ROUTER_MAC_10), M(ROUTER_MAC_20)
    bc = b"\xff" * 6
    run.record("host", c.mac_str(h))

    def flood10(f, ingress):
        """The flood of an untagged frame `f` in VLAN 10 from `ingress`, port 2 in VLAN 10."""
        return {p: [tag(f, 10) if p == 4 else f] for p in (1, 2, 4) if p != ingress}

    run.step("the switch bridges: unknown unicast from H on port 1 floods VLAN 10")
    got, attempts, _ = sw.converge("unknown unicast in VLAN 10",
                                   lambda: (1, *token_frame(c.unique_mac(), h)),
                                   lambda f: flood10(f, 1), lambda f: [{}])
    run.record("flood", {"ports": sorted(got), "attempts": attempts})

    run.step("`mac list` shows H learned in VLAN 10 on p1 (the app learns from the digest)")
    row = ["10", c.mac_str(h), "p1", "learned"]

    def listed():
        out, _ = sluicectl(run, "mac", "list")
        return out if row in table_rows(out) else None
    out = c.wait_until(listed, 5.0, 0.1)
    run.check(out is not None, f"a row {' '.join(row)} within 5 s",
              sluicectl(run, "mac", "list")[0])
    learned = json_state(run, "mac", "list")["learned"]
    run.check({"vlan": 10, "mac": c.mac_str(h), "port": "p1"} in learned,
              "--json mac list: H learned in VLAN 10 on p1", learned)
    run.record("mac_list", out)

    run.step("`switch show` says active; `--json switch show` parses")
    out, _ = sluicectl(run, "switch", "show")
    run.check(out.startswith("built-in app: active\n"), "'built-in app: active' first", out)
    state = json_state(run, "switch", "show")
    run.check(state.get("mode") == "active", "--json: mode active", state.get("mode"))
    run.record("switch_show", {"text": out, "mode": state["mode"],
                               "learned": state["counters"]["learned"]})

    def to_router(dip):
        """(frame, what routing it via N1 gives, token): IPv4 from H to VLAN 10's router MAC."""
        tok = token()
        f = udp4_frame(r10, h, "10.0.10.5", dip, 40000, 5001, tok)
        return f, udp4_frame(M(N1_MAC), r20, "10.0.10.5", dip, 40000, 5001, tok, ttl=63), tok

    run.step("no route yet: IPv4 to 10.40.0.1 (router MAC) is not forwarded; `route list` empty")
    out, _ = sluicectl(run, "route", "list")
    run.check(table_rows(out) == [], "no route", out)
    f, _, tok = to_router("10.40.0.1")
    sw.expect("to 10.40.0.1 before the route", 1, f, tok, {})
    run.record("not_routed_before", True)

    run.step(f"`route add {LIVE_PREFIX} --via 10.0.20.2`: the next frame is routed to N1 on port 3")
    out, _ = sluicectl(run, "route", "add", LIVE_PREFIX, "--via", "10.0.20.2")
    f, want, tok = to_router("10.40.0.1")
    got = sw.expect("to 10.40.0.1 right after `route add`", 1, f, tok, {3: [want]})
    check_routed(run, "routed to N1", got[3][0], N1_MAC, ROUTER_MAC_20, None, 63)
    run.record("routed", {"ports": sorted(got), "frame": got[3][0].hex(), "summary": out.strip()})
    routes, _ = sluicectl(run, "route", "list")
    run.check(table_rows(routes) == [[LIVE_PREFIX, "10.0.20.2"]],
              f"`route list`: {LIVE_PREFIX} via 10.0.20.2 only", routes)
    run.record("route_list", routes)

    run.step(f"`route add 10.41.0.0/16 --via {NOT_A_NEIGHBOR}` (not a neighbor): exit 1, nothing "
             "changes")
    before = json_state(run, "route", "list")["routes"]
    _, err = sluicectl(run, "route", "add", "10.41.0.0/16", "--via", NOT_A_NEIGHBOR, want=1)
    run.check(f"via {NOT_A_NEIGHBOR} is not a [[neighbor]]" in err,
              f"stderr saying via {NOT_A_NEIGHBOR} is not a [[neighbor]]", err.strip())
    out, _ = sluicectl(run, "route", "list")
    run.check(out == routes, f"`route list` unchanged: {routes!r}", out)
    after = json_state(run, "route", "list")["routes"]
    run.check(after == before, f"--json routes unchanged: {before}", after)
    f, _, tok = to_router("10.41.0.1")
    sw.expect("to 10.41.0.1 (the refused route)", 1, f, tok, {})
    f, want, tok = to_router("10.40.0.2")
    sw.expect(f"to 10.40.0.2 ({LIVE_PREFIX} still routed)", 1, f, tok, {3: [want]})
    run.record("bad_route", {"stderr": err.strip(), "routes": after})

    run.step(f"`route del {LIVE_PREFIX}`: the next frame is not forwarded")
    sluicectl(run, "route", "del", LIVE_PREFIX)
    f, _, tok = to_router("10.40.0.1")
    sw.expect("to 10.40.0.1 right after `route del`", 1, f, tok, {})
    out, _ = sluicectl(run, "route", "list")
    run.check(table_rows(out) == [], "`route list`: no route", out)
    run.record("not_routed_after", True)

    run.step("`acl add --priority 10 --action deny --ether-type 0x88b5`: bridged, then dropped")
    f, tok = token_frame(c.unique_mac(), h)
    sw.expect("EtherType 0x88b5 before the rule", 1, f, tok, flood10(f, 1))
    sluicectl(run, "acl", "add", "--priority", "10", "--action", "deny", "--ether-type", "0x88b5")
    f, tok = token_frame(c.unique_mac(), h)
    sw.expect("EtherType 0x88b5 right after `acl add`", 1, f, tok, {})
    acls, _ = sluicectl(run, "acl", "list")
    run.check(table_rows(acls) == [["10", "deny", f"ether_type={ET_TOKEN}"]],
              f"`acl list`: 10 deny ether_type={ET_TOKEN}", acls)
    run.record("acl_list", acls)

    run.step("`acl del 10`: bridged again")
    sluicectl(run, "acl", "del", "10")
    f, tok = token_frame(c.unique_mac(), h)
    got = sw.expect("EtherType 0x88b5 right after `acl del`", 1, f, tok, flood10(f, 1))
    run.record("acl_deleted", sorted(got))

    run.step("broadcasts before the move: VLAN 10 reaches port 2, VLAN 20 does not")
    f, tok = token_frame(bc, h)
    got = sw.expect("broadcast in VLAN 10 (port 2 in VLAN 10)", 1, f, tok, flood10(f, 1))
    run.record("vlan10_before", sorted(got))
    f, tok = token_frame(bc, c.unique_mac())
    got = sw.expect("broadcast in VLAN 20 (port 2 in VLAN 10)", 3, f, tok, {4: [tag(f, 20)]})
    run.record("vlan20_before", sorted(got))

    run.step("`vlan set p2 --access 20`: VLAN 10's broadcasts stop at port 2, VLAN 20's reach it")
    out, _ = sluicectl(run, "vlan", "set", "p2", "--access", "20")
    f, tok = token_frame(bc, h)
    got = sw.expect("broadcast in VLAN 10 right after the move", 1, f, tok, {4: [tag(f, 10)]})
    run.record("vlan10_after", sorted(got))
    f, tok = token_frame(bc, c.unique_mac())
    got = sw.expect("broadcast in VLAN 20 right after the move", 3, f, tok,
                    {2: [f], 4: [tag(f, 20)]})
    run.record("vlan20_after", sorted(got))
    p2 = next(p for p in json_state(run, "vlan", "show")["ports"] if p["name"] == "p2")
    run.check(p2["untagged"] == 20 and p2["tagged"] == [] and p2["vlan_mode"] == "access",
              "--json vlan show: p2 access VLAN 20", p2)
    run.record("vlan_set", {"summary": out.strip(), "p2": p2})


# ---------------------------------------------------------------------------------------
# police: the program's port policer, configured with sluicectl

POLICED_FRAMES = 100    # frames per burst
POLICED_SIZE = 1000     # bytes per frame
POLICE_RATE = 20000     # bytes per second (20 frames)
POLICE_BURST = 3000     # bytes (3 frames)


def burst(run, sw, port, dst, src, want_port):
    """POLICED_FRAMES untagged frames of POLICED_SIZE bytes (one flow) from `port`, back to
    back. Every frame that comes out must be one of them, once, as sent, on `want_port`.
    Returns (frames out, seconds from the first send to the last arrival): whatever
    passed a meter passed within those seconds."""
    sent, tokens = {}, []
    for _ in range(POLICED_FRAMES):
        f, tok = token_frame(dst, src)
        sent[tok] = f + bytes(POLICED_SIZE - len(f))   # (token_frame tops out at 296)
        tokens.append(tok)
    for t in sw.ports.values():
        t.drain()
    by_fd = {t.sock.fileno(): (p, t) for p, t in sw.ports.items()}
    start = time.monotonic()
    for tok in tokens:
        sw.ports[port].send(sent[tok])
    seen, last = set(), start
    deadline, settle = start + WAIT, None
    while True:
        now = time.monotonic()
        if settle is None and (len(seen) == len(tokens) or now >= deadline):
            settle = now + QUIET
        end = settle if settle is not None else deadline
        if now >= end:
            break
        ready, _, _ = select.select(list(by_fd), [], [], end - now)
        for fd in ready:
            p, t = by_fd[fd]
            while (f := t.read()) is not None:
                tok = next((k for k in tokens if k in f), None)
                if tok is None:
                    continue
                run.check(p == want_port and f == sent[tok] and tok not in seen,
                          f"each frame of the burst from {sw.name(port)} once, exactly as sent, "
                          f"on {sw.name(want_port)} only",
                          f"on {sw.name(p)}{' again' if tok in seen else ''}: {hexdump(f)}")
                seen.add(tok)
                last = time.monotonic()
    return len(seen), round(last - start, 4)


def meter_cells(run):
    """`sluicectl --json meter list ingress.port_policer`: {index: cell}."""
    meters = json_state(run, "meter", "list", "ingress.port_policer")["meters"]
    run.check([m["name"] for m in meters] == ["ingress.port_policer"],
              "one meter, ingress.port_policer", [m["name"] for m in meters])
    return {cell["index"]: cell for cell in meters[0]["cells"]}


def scenario_police(run, sw):
    h, g = c.unique_mac(), c.unique_mac()
    dst = c.unique_mac()   # never a source: every frame to it floods (to the other port)

    run.step("the switch bridges: unknown unicast from port 1 reaches port 2")
    got, attempts, _ = sw.converge("unknown unicast in VLAN 10",
                                   lambda: (1, *token_frame(c.unique_mac(), h)),
                                   lambda f: {2: [f]}, lambda f: [{}])
    run.record("flood", {"ports": sorted(got), "attempts": attempts})

    run.step(f"`meter set ingress.port_policer` cells 1 and 2: {POLICE_RATE} B/s, "
             f"bursts {POLICE_BURST} B")
    rate = ["--cir", str(POLICE_RATE), "--cburst", str(POLICE_BURST),
            "--pir", str(POLICE_RATE), "--pburst", str(POLICE_BURST)]
    for cell in ("1", "2"):
        sluicectl(run, "meter", "set", "ingress.port_policer", cell, *rate)
    cells = meter_cells(run)
    want = {"cir": POLICE_RATE, "cburst": POLICE_BURST, "pir": POLICE_RATE,
            "pburst": POLICE_BURST}
    run.check(sorted(cells) == [1, 2] and all(cells[i]["config"] == want for i in (1, 2)),
              f"cells 1 and 2 configured {want}", cells)

    run.step(f"no port_policing entry: {POLICED_FRAMES} frames of {POLICED_SIZE} bytes from "
             "port 1 all reach port 2 (a configured cell alone polices nothing)")
    passed, secs = burst(run, sw, 1, dst, h, 2)
    run.record("unpoliced", {"passed": passed, "seconds": secs})
    run.check(passed == POLICED_FRAMES, f"all {POLICED_FRAMES} frames on port 2",
              f"{passed} in {secs} s")
    cells = meter_cells(run)
    run.check(all(cells[i]["packets"] == [0, 0, 0] for i in (1, 2)),
              "no packet colored by either cell", cells)

    run.step("`table add ingress.port_policing ingress.police 1 =>`")
    sluicectl(run, "table", "add", "ingress.port_policing", "ingress.police", "1", "=>")
    dump = json_state(run, "table", "dump", "ingress.port_policing")["entries"]
    run.check(len(dump) == 1 and dump[0].split()[1:4] == ["ingress.port_policing",
                                                          "ingress.police", "0x1"],
              "one entry: port 1 -> ingress.police", dump)
    run.record("policing_entry", dump[0])

    run.step(f"the same burst from port 1: about {POLICE_BURST // POLICED_SIZE} frames plus "
             f"{POLICE_RATE // POLICED_SIZE} a second reach port 2")
    passed, secs = burst(run, sw, 1, dst, h, 2)
    run.record("policed", {"passed": passed, "seconds": secs})

    run.step(f"{POLICED_FRAMES} frames from port 2 (no policing entry, its cell configured): "
             "all reach port 1")
    back, secs = burst(run, sw, 2, dst, g, 1)
    run.record("port2_unpoliced", {"passed": back, "seconds": secs})
    run.check(back == POLICED_FRAMES, f"all {POLICED_FRAMES} frames on port 1",
              f"{back} in {secs} s")

    run.step("`meter list`: cell 1 colored the policed burst (RED beyond the rate), cell 2 "
             "nothing")
    cells = meter_cells(run)
    out, _ = sluicectl(run, "meter", "list")
    run.record("meter_list", out)
    run.record("cell1", {k: cells[1][k] for k in ("packets", "bytes")})
    run.record("cell2", {k: cells[2][k] for k in ("packets", "bytes")})


# ---------------------------------------------------------------------------------------
# nolearn: [switch] learning = false

def scenario_nolearn(run, sw):
    a, b = c.unique_mac(), c.unique_mac()

    def flood(f, ingress):
        return {p: [tag(f, 10) if p == 3 else f] for p in (1, 2, 3) if p != ingress}

    run.step("A -> B (unknown) from port 1: flooded")
    got, attempts, _ = sw.converge("unknown unicast in VLAN 10",
                                   lambda: (1, *token_frame(b, a)),
                                   lambda f: flood(f, 1), lambda f: [{}])
    run.record("flood", {"ports": sorted(got), "attempts": attempts})

    run.step("A and B keep talking: every frame is still flooded (nothing learned)")
    start = time.monotonic()
    for n in range(1, 4):
        # Learning takes well under this (see learning): a frame that still floods
        # after it is not waiting for the app.
        time.sleep(0.5)
        t = f"round {n}, {time.monotonic() - start:.1f} s"
        f, tok = token_frame(a, b)
        sw.expect(f"B -> A after A spoke ({t})", 2, f, tok, flood(f, 2))
        f, tok = token_frame(b, a)
        sw.expect(f"A -> B after B spoke ({t})", 1, f, tok, flood(f, 1))
        run.record("flooded_rounds", n)


# ---------------------------------------------------------------------------------------
# empty: [switch] app = false

def scenario_empty(run, sw):
    sent = {1: 0, 2: 0}
    run.step("broadcasts and unknown unicast from ports 1 and 2 for 1.5 s: nothing comes out")
    start = time.monotonic()
    while time.monotonic() - start < 1.5:
        for p, dst in ((1, b"\xff" * 6), (2, c.unique_mac())):
            f, tok = token_frame(dst, c.unique_mac())
            sw.expect(f"a frame to an empty program ({time.monotonic() - start:.1f} s)", p, f, tok,
                      {})
            sent[p] += 1
    run.record("sent", {f"port{p}": n for p, n in sent.items()})


SCENARIOS = {
    "learning": scenario_learning,
    "routing": scenario_routing,
    "acl": scenario_acl,
    "options": scenario_options,
    "punt": scenario_punt,
    "counters": scenario_counters,
    "vxlan": scenario_vxlan,
    "live": scenario_live,
    "police": scenario_police,
    "nolearn": scenario_nolearn,
    "empty": scenario_empty,
}


def add_args(p):
    p.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    p.add_argument("--ifaces", required=True,
                   help="comma-separated kernel interfaces of P4 ports 1, 2, ... in order")
    p.add_argument("--sluicectl", help="live, police: the sluicectl binary")
    p.add_argument("--socket", help="live, police: the daemon's management socket")


def body(run):
    run.record("scenario", run.args.scenario)
    sw = Switch(run, run.args.ifaces.split(","))
    start = time.monotonic()
    SCENARIOS[run.args.scenario](run, sw)
    run.record("seconds", round(time.monotonic() - start, 2))


if __name__ == "__main__":
    c.main(SCRIPT, __doc__.splitlines()[0], body, add_args)
