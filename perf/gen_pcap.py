#!/usr/bin/env python3
"""Write (or verify) a classic libpcap file of Ethernet/IPv4/UDP test frames.

Standard library only. Used by perf/bench_xconnect.sh to make the traffic profiles that
net_pcap (rx_pcap=FILE,infinite_rx=1) replays into the device under test.

Frame layout (default --size 60):
    Ethernet  14 B  dst 02:00:00:00:00:02, src 02:00:00:00:00:01, type 0x0800
    IPv4      20 B  IHL 5, DF, TTL 64, proto 17, correct header checksum, id 0
    UDP        8 B  checksum 0 (allowed for IPv4)
    payload   size-42 B of zeros (18 B at the default size)
The pcap stores frames WITHOUT the 4-byte FCS, as captured frames normally are: a 60-byte frame
in the file is a 64-byte (minimum-size) frame on the wire. --size is the length in the pcap.

Flows: flow i (0 <= i < N) is the 5-tuple
    src IP   172.16.0.0 + (i mod 2^20)              (172.16.0.0/12)
    src port 1024 + (mix(i) mod 32768)
    dst port 2048 + 16 * (i >> 20) + (mix2(i) mod 16)
    dst IP   10.0.0.1, or with --dst-prefixes K: 10.(k>>8).(k&255).h with k = i mod K and
             h = 1 + (i div K) mod 254, or with --dst-nets FILE (K networks "a.b.c.d/len"):
             network k = i mod K plus host part 1 + (i div K) mod (2^(32-len) - 2), the
             network address itself for a /31 or /32
    proto    UDP
(src IP, dst port >> 4) encodes i, so exactly N distinct 5-tuples exist, while the ports still
vary from flow to flow. Packet j carries flow j mod N; every packet of a flow is byte-identical
(so --flows 1 gives M identical packets). Timestamps advance 1 us per packet.

Hosts: by default every frame has the source MAC 02:00:00:00:00:01. With --src-macs K, flow i
comes from host i mod K, source MAC 02:00:01:00:00:00 + (i mod K) (02:00:01:00:00:00 ..
02:00:01:ff:ff:ff): the N distinct 5-tuples are spread over K hosts (a learning bridge learns K
MACs). The 5-tuples do not change.

--verify FILE reads a pcap back and prints its packet count, distinct 5-tuples, frame sizes and
whether every IPv4 header checksum is right (exit status 1 if not, 2 if the file is unreadable).
"""

import argparse
import struct
import sys

ETH_HDR = bytes.fromhex("020000000002" "020000000001" "0800")
ETH_DST = ETH_HDR[0:6]
SRC_MAC_BASE = 0x020001000000  # --src-macs: host k has 02:00:01:00:00:00 + k
MAX_SRC_MACS = 1 << 24
ETH_LEN = 14
IP_LEN = 20
UDP_LEN = 8
MIN_SIZE = ETH_LEN + IP_LEN + UDP_LEN + 18  # 60: 64 on the wire with the FCS
MAX_SIZE = 9014  # jumbo; well inside the pcap snaplen below
SNAPLEN = 65535
LINKTYPE_ETHERNET = 1
MAX_FLOWS = 1 << 24
SRC_BASE = (172 << 24) | (16 << 16)  # 172.16.0.0/12
DST_DEFAULT = (10 << 24) | 1  # 10.0.0.1

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D


def ip_checksum(header: bytes) -> int:
    """RFC 1071 one's-complement sum over an even-length header (checksum field zeroed)."""
    total = sum(struct.unpack("!%dH" % (len(header) // 2), header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def _mix(i: int) -> int:
    """Cheap deterministic integer scramble (Knuth multiplicative hash, 32 bits)."""
    return ((i * 2654435761) & 0xFFFFFFFF) >> 7


def parse_nets(path: str):
    """Read a --dst-nets file: one IPv4 network "a.b.c.d/len" (or a bare address = /32) per
    line; blank lines and text after '#' are ignored. Returns [(network int, len)]."""
    nets = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            tok = line.split("#", 1)[0].strip()
            if not tok:
                continue
            addr, _, plen = tok.partition("/")
            try:
                octets = [int(x) for x in addr.split(".")]
                plen = int(plen) if plen else 32
                if len(octets) != 4 or not all(0 <= o <= 255 for o in octets) \
                        or not 0 <= plen <= 32:
                    raise ValueError
            except ValueError:
                raise ValueError("%s:%d: not an IPv4 network a.b.c.d/len: %r"
                                 % (path, lineno, tok)) from None
            ip = (octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]
            mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
            nets.append((ip & mask, plen))
    if not nets:
        raise ValueError("%s: no networks" % path)
    return nets


def flow_tuple(i: int, dst_prefixes: int, dst_nets=None):
    """Return (src_ip, dst_ip, sport, dport) of flow i as integers."""
    src_ip = SRC_BASE + (i & 0xFFFFF)
    sport = 1024 + (_mix(i) % 32768)
    dport = 2048 + 16 * (i >> 20) + (_mix(i ^ 0x5BD1E995) % 16)
    if dst_nets:
        k = i % len(dst_nets)
        net, plen = dst_nets[k]
        hosts = (1 << (32 - plen)) - 2  # without the network and broadcast addresses
        dst_ip = net + 1 + (i // len(dst_nets)) % hosts if hosts > 0 else net
    elif dst_prefixes:
        k = i % dst_prefixes
        host = 1 + (i // dst_prefixes) % 254
        dst_ip = (10 << 24) | ((k >> 8) << 16) | ((k & 0xFF) << 8) | host
    else:
        dst_ip = DST_DEFAULT
    return src_ip, dst_ip, sport, dport


def src_mac(i: int, src_macs: int) -> bytes:
    """The source MAC of flow i: the fixed 02:00:00:00:00:01, or host i mod K's."""
    if not src_macs:
        return ETH_HDR[6:12]
    return (SRC_MAC_BASE + i % src_macs).to_bytes(6, "big")


def build_frame(i: int, size: int, dst_prefixes: int, dst_nets=None, src_macs: int = 0) -> bytes:
    src_ip, dst_ip, sport, dport = flow_tuple(i, dst_prefixes, dst_nets)
    ip_total = size - ETH_LEN
    ip_wo_csum = struct.pack("!BBHHHBBHII", 0x45, 0, ip_total, 0, 0x4000, 64, 17, 0,
                             src_ip, dst_ip)
    csum = ip_checksum(ip_wo_csum)
    ip = ip_wo_csum[:10] + struct.pack("!H", csum) + ip_wo_csum[12:]
    udp = struct.pack("!HHHH", sport, dport, size - ETH_LEN - IP_LEN, 0)
    eth = ETH_HDR if not src_macs else ETH_DST + src_mac(i, src_macs) + ETH_HDR[12:14]
    return eth + ip + udp + bytes(size - MIN_SIZE + 18)


def write_pcap(path: str, flows: int, packets: int, size: int, dst_prefixes: int,
               dst_nets=None, src_macs: int = 0) -> None:
    frames = [build_frame(i, size, dst_prefixes, dst_nets, src_macs) for i in range(flows)]
    global_hdr = struct.pack("<IHHiIII", PCAP_MAGIC_US, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)
    rec = struct.Struct("<IIII")
    chunk = 65536
    with open(path, "wb", buffering=1 << 20) as f:
        f.write(global_hdr)
        for start in range(0, packets, chunk):
            parts = []
            append = parts.append
            pack = rec.pack
            for j in range(start, min(start + chunk, packets)):
                append(pack(j // 1000000, j % 1000000, size, size))
                append(frames[j % flows])
            f.write(b"".join(parts))


def read_pcap(path: str):
    """Yield raw frames of a classic pcap file (either byte order, us or ns timestamps)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError("file too short for a pcap global header")
    magic_le = struct.unpack_from("<I", data)[0]
    if magic_le in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
        endian = "<"
    elif struct.unpack_from(">I", data)[0] in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
        endian = ">"
    else:
        raise ValueError("not a classic pcap file (bad magic 0x%08x)" % magic_le)
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0xFFFF
    if linktype != LINKTYPE_ETHERNET:
        raise ValueError("linktype %d is not Ethernet (1)" % linktype)
    rec = struct.Struct(endian + "IIII")
    off = 24
    n = len(data)
    while off + 16 <= n:
        _, _, incl, _orig = rec.unpack_from(data, off)
        off += 16
        if off + incl > n:
            raise ValueError("truncated record at offset %d" % (off - 16))
        yield data[off:off + incl]
        off += incl
    if off != n:
        raise ValueError("trailing %d bytes after the last record" % (n - off))


def verify(path: str) -> int:
    count = 0
    bad_csum = 0
    non_ipv4 = 0
    tuples = set()
    dst24 = set()
    macs = set()
    sizes = set()
    try:
        for frame in read_pcap(path):
            count += 1
            sizes.add(len(frame))
            macs.add(frame[6:12])
            if len(frame) < ETH_LEN + IP_LEN or frame[12:14] != b"\x08\x00":
                non_ipv4 += 1
                continue
            ihl = (frame[ETH_LEN] & 0x0F) * 4
            ip = frame[ETH_LEN:ETH_LEN + ihl]
            if frame[ETH_LEN] >> 4 != 4 or ihl < IP_LEN or len(ip) < ihl:
                non_ipv4 += 1
                continue
            if ip_checksum(ip) != 0:  # summing over a correct header, checksum included, gives 0
                bad_csum += 1
            proto = ip[9]
            l4 = ETH_LEN + ihl
            ports = frame[l4:l4 + 4] if proto in (6, 17) and len(frame) >= l4 + 4 else b""
            tuples.add((ip[12:16], ip[16:20], proto, ports))
            dst24.add(ip[16:19])
    except (OSError, ValueError) as e:
        print("error: %s: %s" % (path, e), file=sys.stderr)
        return 2
    ok = bad_csum == 0 and non_ipv4 == 0 and count > 0
    print("file: %s" % path)
    print("packets: %d" % count)
    print("flows: %d" % len(tuples))
    print("dst_prefixes_24: %d" % len(dst24))
    print("src_macs: %d" % len(macs))
    print("frame_bytes: %s" % (
        "%d-%d" % (min(sizes), max(sizes)) if len(sizes) > 1 else (str(min(sizes)) if sizes else "-")))
    print("non_ipv4: %d" % non_ipv4)
    print("bad_ipv4_checksums: %d" % bad_csum)
    print("checksums: %s" % ("ok" if ok else "BAD"))
    return 0 if ok else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description="Write a libpcap file (linktype Ethernet) of Ethernet/IPv4/UDP frames with "
                    "N distinct 5-tuples, or verify one with --verify.",
        epilog="Sizes exclude the FCS: the default 60-byte frames are 64 bytes on the wire. "
               "Example: %(prog)s --flows 1024 -o /tmp/sluice-perf/flows-1024.pcap; "
               "%(prog)s --verify /tmp/sluice-perf/flows-1024.pcap")
    p.add_argument("--flows", type=int, default=1,
                   help="number of distinct 5-tuples (1..%d, default 1)" % MAX_FLOWS)
    p.add_argument("--packets", type=int, default=None,
                   help="number of packets; they cycle over the flows (default max(flows, 1024))")
    p.add_argument("--size", type=int, default=MIN_SIZE,
                   help="frame length in the pcap, FCS excluded (default %d = 64 on the wire; "
                        "%d..%d)" % (MIN_SIZE, MIN_SIZE, MAX_SIZE))
    p.add_argument("--dst-prefixes", type=int, default=0, metavar="K",
                   help="spread destination IPs over K /24 prefixes 10.(k/256).(k%%256).x, "
                        "k = flow mod K (1..65536; default: all to 10.0.0.1)")
    p.add_argument("--dst-nets", metavar="FILE",
                   help="spread destination IPs over the IPv4 networks listed in FILE (one "
                        "a.b.c.d/len a line, '#' comments): flow i goes to a host of network "
                        "i mod K (see perf/gen_routes.py; excludes --dst-prefixes)")
    p.add_argument("--src-macs", type=int, default=0, metavar="K",
                   help="spread the flows over K source hosts: flow i has source MAC "
                        "02:00:01:00:00:00 + (i mod K) (1..%d; default: every frame from "
                        "02:00:00:00:00:01)" % MAX_SRC_MACS)
    p.add_argument("-o", "--output", metavar="FILE", help="pcap file to write")
    p.add_argument("--verify", metavar="FILE",
                   help="read FILE back and print packets, distinct 5-tuples and checksum status")
    a = p.parse_args(argv)

    if a.verify:
        return verify(a.verify)
    if not a.output:
        p.error("-o FILE is required (or use --verify FILE)")
    if not 1 <= a.flows <= MAX_FLOWS:
        p.error("--flows must be in 1..%d" % MAX_FLOWS)
    packets = a.packets if a.packets is not None else max(a.flows, 1024)
    if packets < 1:
        p.error("--packets must be >= 1")
    if packets < a.flows:
        p.error("--packets (%d) < --flows (%d): not every flow would appear" % (packets, a.flows))
    if not MIN_SIZE <= a.size <= MAX_SIZE:
        p.error("--size must be in %d..%d" % (MIN_SIZE, MAX_SIZE))
    if not 0 <= a.dst_prefixes <= 65536:
        p.error("--dst-prefixes must be in 0..65536 (0 = off)")
    if not 0 <= a.src_macs <= MAX_SRC_MACS:
        p.error("--src-macs must be in 0..%d (0 = the fixed source MAC)" % MAX_SRC_MACS)
    dst_nets = None
    if a.dst_nets:
        if a.dst_prefixes:
            p.error("--dst-nets and --dst-prefixes exclude each other")
        try:
            dst_nets = parse_nets(a.dst_nets)
        except (OSError, ValueError) as e:
            p.error(str(e))
    write_pcap(a.output, a.flows, packets, a.size, a.dst_prefixes, dst_nets, a.src_macs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
