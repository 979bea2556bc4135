"""What xconnect_parse.py and cache_parse.py share (standard library only): sluiced's rate
from its stats lines and JSON, the statistics and the table rendering of the reports, the
Markdown file, and the subcommands both parsers have.

Not a script: the parsers import it (they run from perf/, so this file's directory is on
sys.path).
"""

import argparse
import csv
import json
import statistics

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
    """Rate of one sluiced run from its `stats t=... port=... tx_packets=...` lines: the first
    sample with tx_packets > 0 marks forwarding start; the window opens at the first sample at
    least `warmup` s later and closes at the first sample at least `seconds` s after that
    (minus a 5% tolerance for sampling jitter). Cycles per packet, errors and drops come from
    the stats JSON (whole run); without a window, its totals give the rate."""
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

def num(x):
    """float(x), or None when x is not a number ("-", "", None)."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def span(vals, fmt="%.2f"):
    """"median (min–max)" of the numbers in vals (None skipped); "-" when there are none."""
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    med = fmt % statistics.median(vals)
    if len(vals) == 1:
        return med
    return "%s (%s–%s)" % (med, fmt % min(vals), fmt % max(vals))


def median(vals):
    """The median of the numbers in vals (None skipped), or None."""
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def read_runs(csv_path):
    """(every row of the runs CSV, the accepted ones: runs not superseded by a retry)"""
    with open(csv_path, newline="") as f:
        all_rows = list(csv.DictReader(f))
    return all_rows, [r for r in all_rows if r.get("accepted") == "1"]


def text_table(header, rows):
    """Lines of a plain-text table, columns padded to their widest cell."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return lines


def md_table(header, rows):
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return lines


def write_markdown(md_path, title, meta, body, note, csv_path):
    """The results file: title, the KEY=VALUE meta items as a list, body (lines), the
    explanatory note, then every run as CSV."""
    lines = ["# " + title, ""]
    for kv in meta:
        k, _, v = kv.partition("=")
        lines.append("- **%s**: %s" % (k, v))
    lines += body
    lines += ["", note, "", "## Runs", "", "```"]
    with open(csv_path) as f:
        lines += [l.rstrip("\n") for l in f]
    lines += ["```", ""]
    with open(md_path, "w") as f:
        f.write("\n".join(lines))


# ------------------------------------------------------------------------------ subcommands ---

def arg_parser(doc):
    """(the parser, its subparsers); add the subcommands with add_*_command, in the order
    --help lists them."""
    p = argparse.ArgumentParser(description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    return p, p.add_subparsers(dest="cmd", required=True)


def add_sluiced_command(sub):
    s = sub.add_parser("sluiced")
    s.add_argument("stdout")
    s.add_argument("json")
    s.add_argument("--port", default="out")
    s.add_argument("--warmup", type=float, default=2.0)
    s.add_argument("--seconds", type=float, default=5.0)


def add_report_command(sub):
    r = sub.add_parser("report")
    r.add_argument("csv")
    r.add_argument("--md")
    r.add_argument("--meta", action="append", default=[])
