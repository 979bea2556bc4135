#!/usr/bin/env python3
"""A P4 meter configured over P4Runtime polices real traffic (p4runtime-shell 0.0.6).

onos_basic's egress port meter (indexed by egress port, bytes) drops RED packets in egress.
The switch runs it with [p4runtime] cpu_port = 255 and P4 port 2 on a tx pcap; traffic is
PacketOuts with egress_port 2 (they take the egress pipeline, hence the meter).

  MeterEntry egress_port_meter[2] {cir 20000 B/s, cburst 3000, pir 20000, pburst 3000};
  read it back
  N PacketOuts of 1000 bytes, as fast as the stream takes them
                               -> the Rust test counts the frames in the port's pcap: far
                                  fewer than N (cburst plus cir x the time taken)
  MeterEntry read with counter_data -> RED packets counted
  MODIFY with no config        -> the cell is unconfigured again (reads back without config)

Prints {"sent": N, "seconds": T, "red_packets": R, ...}.

Usage: .venv-p4rt/shell/bin/python tests/p4rt/shell_meter.py --addr 127.0.0.1:PORT
           [--packets 300] [--corpus DIR] [--device-id 1] [--election-base 0] [--timeout 60]
"""

import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as c  # noqa: E402

SCRIPT = "shell_meter"
METER = "egress.port_meters_egress.egress_port_meter"


def add_args(p):
    p.add_argument("--packets", type=int, default=300, help="PacketOuts to send (default 300)")


def body(run):
    args = run.args
    p4info_path = c.corpus_file(args, "onos_basic", "basic.p4info.txt")
    bmv2_path = c.corpus_file(args, "onos_basic", "basic.json")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    import p4runtime_sh.shell as sh

    c.shell_setup(run, args, p4info_path, bmv2_path, "onos_basic")

    run.step(f"MODIFY {METER}[2] cir 20000 B/s, bursts 3000")
    m = sh.MeterEntry(METER)
    m.index = 2
    m.cir, m.cburst, m.pir, m.pburst = 20000, 3000, 20000, 3000
    m.modify()
    q = sh.MeterEntry(METER)
    q.index = 2
    got = [e.msg() for e in q.read()]
    run.check(len(got) == 1 and got[0].config.cir == 20000 and got[0].config.pburst == 3000,
              "the config read back", [str(g) for g in got])

    run.step(f"{args.packets} PacketOuts of 1000 bytes to port 2")
    frame = c.token_frame(os.urandom(8).hex().encode())
    frame += bytes(1000 - len(frame))
    t0 = time.monotonic()
    for _ in range(args.packets):
        sh.PacketOut(payload=frame, egress_port="2", _padding="0").send()
    # The stream sends asynchronously: wait until the server has taken them all (the
    # RED count stops moving).
    red, last = -1, None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        q = sh.MeterEntry(METER)
        q.index = 2
        # Ask for the color counts (MeterEntry.counter_data, P4Runtime 1.4); the shell
        # has no helper for it, so set the field on its message.
        q._entry.counter_data.SetInParent()
        e = next(iter(q.read())).msg()
        total = sum(getattr(e.counter_data, k).packet_count for k in ("green", "yellow", "red"))
        red = e.counter_data.red.packet_count
        if total >= args.packets and total == last:
            break
        last = total
        time.sleep(0.2)
    seconds = time.monotonic() - t0
    run.record("sent", args.packets)
    run.record("seconds", round(seconds, 3))
    run.record("red_packets", red)
    run.record("counter_data", {k: getattr(e.counter_data, k).packet_count for k in ("green", "yellow", "red")})
    run.check(total == args.packets, f"{args.packets} packets colored", total)
    run.check(red > 0, "RED packets counted", red)

    run.step("MODIFY with no config -> unconfigured")
    m = sh.MeterEntry(METER)
    m.index = 2
    m.modify()
    q = sh.MeterEntry(METER)
    q.index = 2
    got = [e.msg() for e in q.read()]
    run.check(len(got) == 1 and not got[0].HasField("config"), "no config", [str(g) for g in got])

    run.step("sh.teardown()")
    sh.teardown()


if __name__ == "__main__":
    c.main(SCRIPT, __doc__.splitlines()[0], body, add_args)
