#!/usr/bin/env python3
"""Packet-out and packet-in with onos_basic through p4runtime-shell 0.0.6 (shell venv).

The switch runs onos_basic (CPU port 255; packet_out/packet_in = {port:9, _padding:7}) with
P4 ports 1 and 2 on TAP interfaces IF1 and IF2 (DPDK net_tap: a frame the kernel transmits
on IFn reaches the switch on port n; a frame the switch sends on port n is received by the
kernel on IFn).

  setup(config=onos_basic), INSERT ingress.table0_control.table0
      {hdr.ethernet.ether_type 0x0806 &&& 0xffff, priority 10} -> send_to_cpu; read it back
  PacketOut(payload=F, egress_port='2', _padding='0')  -> exactly F received on IF2 (not on IF1)
  ARP request A (unique sender MAC) sent on IF1        -> PacketIn with payload A and
                                                          metadata ingress_port=1, _padding=0
Both are retried for --io-wait seconds while the switch gets ready.

Usage: .venv-p4rt/shell/bin/python tests/p4rt/shell_packet_io.py --addr 127.0.0.1:PORT
           --port1-iface IF1 --port2-iface IF2 [--corpus DIR] [--io-wait 10]
           [--device-id 1] [--election-base 0] [--timeout 60]
"""

import json
import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as c  # noqa: E402

SCRIPT = "shell_packet_io"
TABLE0 = "ingress.table0_control.table0"
SEND_TO_CPU = "ingress.table0_control.send_to_cpu"


def add_args(p):
    p.add_argument("--port1-iface", required=True, help="kernel side of the switch's P4 port 1")
    p.add_argument("--port2-iface", required=True, help="kernel side of the switch's P4 port 2")
    p.add_argument("--io-wait", type=float, default=10.0,
                   help="seconds to keep retrying each packet exchange (default 10)")


def body(run):
    args = run.args
    p4info_path = c.corpus_file(args, "onos_basic", "basic.p4info.txt")
    bmv2_path = c.corpus_file(args, "onos_basic", "basic.json")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    import grpc
    import p4runtime_sh.shell as sh
    from p4runtime_sh.p4runtime import (P4RuntimeErrorFormatException, P4RuntimeException,
                                        P4RuntimeWriteException)

    if1, if2 = args.port1_iface, args.port2_iface
    run.step(f"interfaces {if1} and {if2} exist and are up")
    run.record("iface_flags_before", {if1: hex(c.iface_ready(if1)), if2: hex(c.iface_ready(if2))})
    port1, port2 = c.RawPort(if1), c.RawPort(if2)

    c.shell_setup(run, args, p4info_path, bmv2_path, "onos_basic")

    # Start collecting PacketIns now (one PacketIn object per client: teardown ends its thread).
    packet_in = sh.PacketIn()

    run.step(f"INSERT {TABLE0} eth_type 0x0806/0xffff priority 10 -> send_to_cpu")
    te = sh.TableEntry(TABLE0)(action=SEND_TO_CPU)
    te.match["hdr.ethernet.ether_type"] = "0x0806&&&0xffff"
    te.priority = 10
    try:
        te.insert()
    except (P4RuntimeWriteException, P4RuntimeErrorFormatException) as e:
        run.fail(f"expected the INSERT to succeed; got {str(e).strip()}")
    except grpc.RpcError as e:
        run.fail(f"expected the INSERT to succeed; got {e.code().name}: {e.details()}")
    try:
        got = [e.msg() for e in sh.TableEntry(TABLE0).read()]
    except P4RuntimeException as e:
        run.fail(f"expected Read of {TABLE0} to succeed; got {e}")
    want = json.dumps(c.norm_table_entry(te.msg()), sort_keys=True)
    got_n = [json.dumps(c.norm_table_entry(g), sort_keys=True) for g in got]
    run.check(got_n == [want], f"read {TABLE0}: exactly the entry written {want}", got_n)

    names = c.P4Names(p4info_path)
    in_md = names.packet_metadata("packet_in")      # {1: 'ingress_port', 2: '_padding'}
    out_md = names.packet_metadata("packet_out")    # {1: 'egress_port', 2: '_padding'}
    run.record("packet_in_metadata_ids", in_md)
    run.record("packet_out_metadata_ids", out_md)

    def stream_errors():
        errs = []
        q = sh.client.stream_in_q["unknown"]
        while not q.empty():
            m = q.get_nowait()
            if m is not None and m.HasField("error"):
                errs.append(str(m.error).replace("\n", " ").strip())
        return errs

    # -- packet-out: the exact payload leaves P4 port 2
    run.step(f"PacketOut egress_port=2 -> frame on {if2}")
    token = os.urandom(8).hex().encode()
    frame = c.token_frame(token)
    run.record("packet_out_frame", frame.hex())
    port1.drain()
    port2.drain()
    deadline = time.monotonic() + args.io_wait
    sent = 0
    seen = None
    while seen is None and time.monotonic() < deadline:
        sh.PacketOut(payload=frame, egress_port="2", _padding="0").send()
        sent += 1
        seen, _ = port2.recv_match(lambda f: token in f, 1.0)
    run.record("packet_out_sent", sent)
    run.record("packet_out_stream_errors", stream_errors())
    run.check(seen is not None,
              f"the PacketOut payload on {if2} (P4 port 2) within {args.io_wait:g} s",
              f"nothing carrying the token after {sent} PacketOut(s); stream errors: "
              f"{run.observed['packet_out_stream_errors']}")
    run.check(seen == frame, f"on {if2} exactly the payload {c.hexdump(frame)}",
              c.hexdump(seen))
    leaked, _ = port1.recv_match(lambda f: token in f, 0.2)
    run.check(leaked is None, f"the PacketOut frame not on {if1} (P4 port 1)",
              f"it on {if1} too: {c.hexdump(leaked or b'')}")
    run.record("packet_out_seen_on", if2)

    # -- packet-in: an ARP request from P4 port 1 reaches the controller unchanged
    run.step(f"ARP on {if1} -> PacketIn ingress_port=1")
    sender = c.unique_mac()
    arp = c.arp_probe_frame(sender)
    run.record("arp_frame", arp.hex())
    deadline = time.monotonic() + args.io_wait
    sent = 0
    match = None
    others = []
    while match is None and time.monotonic() < deadline:
        port1.send(arp)
        sent += 1
        for msg in packet_in.sniff(timeout=1.0):
            if msg is None:
                run.fail("expected PacketIns on the stream; got the stream closed "
                         "(see the log above)")
            pkt = msg.packet
            if sender in pkt.payload[:64] and match is None:
                match = pkt
            else:
                others.append(pkt.payload[:64].hex())
    run.record("arp_sent", sent)
    run.record("other_packet_ins", others[:10])
    run.check(match is not None,
              f"a PacketIn carrying the ARP request from sender {c.mac_str(sender)} within "
              f"{args.io_wait:g} s",
              f"none after {sent} ARP(s) on {if1}; {len(others)} other PacketIn(s); stream "
              f"errors: {stream_errors()}")
    md = {m.metadata_id: m.value for m in match.metadata}
    run.record("packet_in", {"payload": match.payload.hex(),
                             "metadata": {in_md.get(k, str(k)): v.hex() for k, v in md.items()}})
    run.check(match.payload == arp, f"PacketIn payload = the ARP frame {c.hexdump(arp)}",
              c.hexdump(match.payload))
    run.check(sorted(md) == sorted(in_md),
              f"one PacketIn metadata per packet_in field {in_md}",
              {k: v.hex() for k, v in md.items()})
    by_name = {in_md[k]: c.bytes_int(v) for k, v in md.items()}
    run.check(by_name.get("ingress_port") == 1 and by_name.get("_padding") == 0,
              "metadata ingress_port=1, _padding=0", by_name)

    run.step("sh.teardown()")
    port1.close()
    port2.close()
    sh.teardown()


if __name__ == "__main__":
    c.main(SCRIPT, __doc__.splitlines()[0], body, add_args)
