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

import argparse
import csv
import json
import re
import statistics
import sys

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


# --------------------------------------------------------------------------------- sluiced ---

def parse_stats_lines(path, port):
    samples = []  # (t, tx_packets)
    with open(path, errors="replace") as f:
        for line in f:
            if not line.startswith("stats "):
                continue
            kv = dict(tok.split("=", 1) for tok in line.split()[1:] if "=" in tok)
            if kv.get("port") != port:
                continue
            try:
                samples.append((float(kv["t"]), int(kv["tx_packets"])))
            except (KeyError, ValueError):
                continue
    return samples


def parse_sluiced(stdout_path, json_path, port, warmup, seconds):
    out = {"ok": 0}
    samples = parse_stats_lines(stdout_path, port)
    start = next((i for i, (_, tx) in enumerate(samples) if tx > 0), None)
    a = b = None
    if start is not None:
        t0 = samples[start][0]
        a = next((i for i in range(start, len(samples)) if samples[i][0] >= t0 + warmup), None)
        if a is not None:
            ta = samples[a][0]
            tol = 0.05 * seconds
            b = next((i for i in range(a + 1, len(samples))
                      if samples[i][0] >= ta + seconds - tol), None)
    if a is not None and b is not None:
        (ta, xa), (tb, xb) = samples[a], samples[b]
        out.update(ok=1, mpps="%.3f" % ((xb - xa) / (tb - ta) / 1e6),
                   window_s="%.3f" % (tb - ta), window_pkts=xb - xa, window_source="samples")
    else:
        out["error"] = ("no steady window in %d stats samples of port %r (need tx>0, then %gs "
                        "warm-up and a %gs window)" % (len(samples), port, warmup, seconds))
    try:
        with open(json_path) as f:
            js = json.load(f)
    except (OSError, ValueError) as e:
        out["json_error"] = str(e)
        out["cpp"] = "-"
        return out
    workers = js.get("workers", [])
    cycles = sum(w.get("busy_cycles", 0) + w.get("idle_cycles", 0) for w in workers)
    wtx = sum(w.get("tx_packets", 0) for w in workers)
    out["cpp"] = "%.2f" % (cycles / wtx) if wtx else "-"
    busy = sum(w.get("busy_cycles", 0) for w in workers)
    out["busy_cpp"] = "%.2f" % (busy / wtx) if wtx else "-"
    out["tsc_hz"] = js.get("tsc_hz", "-")
    ports = {p.get("name"): p for p in js.get("ports", [])}
    out["rx_missed"] = sum(p.get("rx_missed", 0) for p in ports.values())
    out["rx_errors"] = sum(p.get("rx_errors", 0) for p in ports.values())
    out["tx_errors"] = sum(p.get("tx_errors", 0) for p in ports.values())
    out["drops"] = sum(sum(w.get("drops", {}).values()) for w in workers)
    if not out["ok"] and port in ports and js.get("elapsed_seconds"):
        # Fallback: whole-run average after forwarding start (includes the warm-up ramp).
        el = float(js["elapsed_seconds"])
        tx = ports[port].get("tx_packets", 0)
        if el > 0 and tx > 0:
            out.update(ok=1, mpps="%.3f" % (tx / el / 1e6), window_s="%.3f" % el,
                       window_pkts=tx, window_source="json_total")
    return out


# ---------------------------------------------------------------------------------- report ---

def _f(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _span(vals, fmt="%.2f"):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    med = fmt % statistics.median(vals)
    if len(vals) == 1:
        return med
    return "%s (%s–%s)" % (med, fmt % min(vals), fmt % max(vals))


def report(csv_path, md_path, meta):
    with open(csv_path, newline="") as f:
        all_rows = list(csv.DictReader(f))
    rows = [r for r in all_rows if r.get("accepted") == "1"]
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
        tp = [_f(r["mpps"]) for (s, _), r in sorted(by.items()) if s == "testpmd"]
        sl = [_f(r["mpps"]) for (s, _), r in sorted(by.items()) if s == "sluiced"]
        ratios = []
        for rnd in sorted({k[1] for k in by}, key=int):
            t, s = by.get(("testpmd", rnd)), by.get(("sluiced", rnd))
            if t and s and _f(t["mpps"]) and _f(s["mpps"]) is not None:
                ratios.append(_f(s["mpps"]) / _f(t["mpps"]))
        scpp = [_f(r["cpp"]) for (s, _), r in by.items() if s == "sluiced"]
        tcpp = [_f(r["cpp"]) for (s, _), r in by.items() if s == "testpmd"]
        flagged = ["%s r%s %s" % (r["side"], r["round"], r["flags"]) for r in pr
                   if r["flags"] not in ("", "-")]
        failed = ["%s r%s failed" % (r["side"], r["round"]) for r in pr if r["ok"] != "1"]
        retried = sum(1 for r in all_rows if r["profile"] == prof and r.get("accepted") != "1")
        if retried:
            failed.append("%d flagged run(s) retried" % retried)
        nrounds = len({r["round"] for r in pr})
        table.append([prof, pr[0]["packets"], _span(tp), _span(sl), _span(ratios, "%.3f"),
                      _span(scpp, "%.1f"), _span(tcpp, "%.1f"), str(nrounds),
                      "; ".join(flagged + failed) or "none"])

    widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h)
              for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))

    if not md_path:
        return 0
    lines = ["# Cross-connect benchmark: sluiced vs dpdk-testpmd io", ""]
    for kv in meta:
        k, _, v = kv.partition("=")
        lines.append("- **%s**: %s" % (k, v))
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    lines += ["", "Mpps: packets/s sent to the sink port over the steady window (start-up and "
              "warm-up excluded). Ratio: median of the per-round ratios sluiced/testpmd of "
              "interleaved runs. sluiced cyc/pkt: (busy_cycles + idle_cycles) / tx_packets "
              "summed over workers, whole run from forwarding start (stats JSON). testpmd "
              "cyc/pkt: its own `CPU cycles/packet` (only with --testpmd-cycles). Flags: "
              "C = forwarding thread waited on the run queue, S = hypervisor steal on the "
              "forwarding core, both above the threshold; N = rx mbuf allocation failures "
              "(mempool too small); X = rx/tx errors or drops.",
              "", "## Runs", "", "```"]
    with open(csv_path) as f:
        lines += [l.rstrip("\n") for l in f]
    lines += ["```", ""]
    with open(md_path, "w") as f:
        f.write("\n".join(lines))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("testpmd")
    t.add_argument("log")
    t.add_argument("--tx-port", type=int, default=1)
    s = sub.add_parser("sluiced")
    s.add_argument("stdout")
    s.add_argument("json")
    s.add_argument("--port", default="out")
    s.add_argument("--warmup", type=float, default=2.0)
    s.add_argument("--seconds", type=float, default=5.0)
    r = sub.add_parser("report")
    r.add_argument("csv")
    r.add_argument("--md")
    r.add_argument("--meta", action="append", default=[])
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
