#!/usr/bin/env python3
"""Parsing and reporting helpers for perf/bench_xconnect.sh (standard library only).

Subcommands (each prints `key=value` lines that the shell script reads, or a report):
  testpmd LOG [--tx-port N]
      Rate of one interactive testpmd run. The script sends `show port stats all` twice, S
      seconds apart; the second block's "Tx-pps (since last show)" of the tx port is testpmd's
      own TSC-timed rate over exactly that window. The TX-packets delta between the two blocks
      is printed too, and "CPU cycles/packet" when testpmd ran with --record-core-cycles.
  sluiced STDOUT JSON [--port out] [--warmup W] [--seconds S]
      Rate of one sluiced run from its `stats t=... port=... tx_packets=...` lines: the first
      sample with tx_packets > 0 marks forwarding start; the window opens at the first sample
      at least W s later and closes at the first sample at least S s after that (minus a 5%
      tolerance for sampling jitter). Cycles per packet come from the JSON:
      sum(busy_cycles + idle_cycles) / sum(tx_packets) over all workers and the whole run.
  report CSV --md FILE [--meta KEY=VALUE ...]
      Per-profile table (medians, min-max, median of per-round ratios) to stdout and Markdown.
"""

import os
import re
import sys

sys.dont_write_bytecode = True  # no perf/__pycache__ from the import below
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from perf_common import (add_report_command, add_sluiced_command, arg_parser,  # noqa: E402
                         md_table, num, parse_sluiced, read_runs, span, text_table,
                         write_markdown)

# --------------------------------------------------------------------------------- testpmd ---

_PORT_HDR = re.compile(r"NIC statistics for port (\d+)")
_TX_PKTS = re.compile(r"TX-packets:\s*(\d+)")
_RX_PKTS = re.compile(r"RX-packets:\s*(\d+)")
_NOMBUF = re.compile(r"RX-nombuf:\s*(\d+)")
_TX_PPS = re.compile(r"Tx-pps:\s*(\d+)")
_CPP = re.compile(r"CPU cycles/packet=([0-9.]+).*?at (\d+) MHz")


def parse_testpmd(path, tx_port):
    blocks = []  # one dict per "NIC statistics for port N" block, in order
    cur = None
    cpp = None
    mhz = None
    with open(path, errors="replace") as f:
        for line in f:
            m = _PORT_HDR.search(line)
            if m:
                cur = {"port": int(m.group(1))}
                blocks.append(cur)
                continue
            m = _CPP.search(line)
            if m:
                cpp, mhz = float(m.group(1)), int(m.group(2))
            if cur is None:
                continue
            for key, rx in (("tx_packets", _TX_PKTS), ("rx_packets", _RX_PKTS),
                            ("nombuf", _NOMBUF), ("tx_pps", _TX_PPS)):
                m = rx.search(line)
                if m and key not in cur:
                    cur[key] = int(m.group(1))
            if line.strip().startswith("####") and "NIC statistics" not in line:
                cur = None
    tx = [b for b in blocks if b["port"] == tx_port]
    out = {"ok": 0}
    if len(tx) < 2 or "tx_pps" not in tx[-1] or "tx_packets" not in tx[-2]:
        out["error"] = "found %d stats blocks for port %d (need 2)" % (len(tx), tx_port)
        return out
    out.update(ok=1, mpps="%.3f" % (tx[-1]["tx_pps"] / 1e6),
               window_pkts=tx[-1]["tx_packets"] - tx[-2]["tx_packets"],
               nombuf=max(b.get("nombuf", 0) for b in blocks),
               cpp="%.2f" % cpp if cpp is not None else "-",
               tsc_hz=mhz * 1000000 if mhz else "-")
    return out


# ---------------------------------------------------------------------------------- report ---
# (sluiced's rate: perf_common.parse_sluiced)

def report(csv_path, md_path, meta):
    all_rows, rows = read_runs(csv_path)
    profiles = []
    for r in rows:
        if r["profile"] not in profiles:
            profiles.append(r["profile"])
    header = ["flows", "pkts in pcap", "testpmd Mpps med (min–max)",
              "sluiced Mpps med (min–max)", "sluiced/testpmd med (min–max)",
              "sluiced cyc/pkt", "testpmd cyc/pkt", "rounds", "flagged / failed runs"]
    table = []
    for prof in profiles:
        pr = [r for r in rows if r["profile"] == prof]
        by = {}
        for r in pr:
            if r["ok"] == "1":
                by[(r["side"], r["round"])] = r
        tp = [num(r["mpps"]) for (s, _), r in sorted(by.items()) if s == "testpmd"]
        sl = [num(r["mpps"]) for (s, _), r in sorted(by.items()) if s == "sluiced"]
        ratios = []
        for rnd in sorted({k[1] for k in by}, key=int):
            t, s = by.get(("testpmd", rnd)), by.get(("sluiced", rnd))
            if t and s and num(t["mpps"]) and num(s["mpps"]) is not None:
                ratios.append(num(s["mpps"]) / num(t["mpps"]))
        scpp = [num(r["cpp"]) for (s, _), r in by.items() if s == "sluiced"]
        tcpp = [num(r["cpp"]) for (s, _), r in by.items() if s == "testpmd"]
        flagged = ["%s r%s %s" % (r["side"], r["round"], r["flags"]) for r in pr
                   if r["flags"] not in ("", "-")]
        failed = ["%s r%s failed" % (r["side"], r["round"]) for r in pr if r["ok"] != "1"]
        retried = sum(1 for r in all_rows if r["profile"] == prof and r.get("accepted") != "1")
        if retried:
            failed.append("%d flagged run(s) retried" % retried)
        nrounds = len({r["round"] for r in pr})
        table.append([prof, pr[0]["packets"], span(tp), span(sl), span(ratios, "%.3f"),
                      span(scpp, "%.1f"), span(tcpp, "%.1f"), str(nrounds),
                      "; ".join(flagged + failed) or "none"])

    print("\n".join(text_table(header, table)))
    if not md_path:
        return 0
    write_markdown(
        md_path, "Cross-connect benchmark: sluiced vs dpdk-testpmd io", meta,
        [""] + md_table(header, table),
        "Mpps: packets/s sent to the sink port over the steady window (start-up and "
        "warm-up excluded). Ratio: median of the per-round ratios sluiced/testpmd of "
        "interleaved runs. sluiced cyc/pkt: (busy_cycles + idle_cycles) / tx_packets "
        "summed over workers, whole run from forwarding start (stats JSON). testpmd "
        "cyc/pkt: its own `CPU cycles/packet` (only with --testpmd-cycles). Flags: "
        "C = forwarding thread waited on the run queue, S = hypervisor steal on the "
        "forwarding core, both above the threshold; N = rx mbuf allocation failures "
        "(mempool too small); X = rx/tx errors or drops.",
        csv_path)
    return 0


def main(argv=None):
    p, sub = arg_parser(__doc__)
    t = sub.add_parser("testpmd")
    t.add_argument("log")
    t.add_argument("--tx-port", type=int, default=1)
    add_sluiced_command(sub)
    add_report_command(sub)
    a = p.parse_args(argv)
    if a.cmd == "report":
        return report(a.csv, a.md, a.meta)
    if a.cmd == "testpmd":
        out = parse_testpmd(a.log, a.tx_port)
    else:
        out = parse_sluiced(a.stdout, a.json, a.port, a.warmup, a.seconds)
    for k, v in out.items():
        print("%s=%s" % (k, v))
    return 0


if __name__ == "__main__":
    sys.exit(main())
