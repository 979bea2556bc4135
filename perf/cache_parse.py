#!/usr/bin/env python3
"""Parsing and reporting helpers for perf/bench_cache.sh (standard library only).

Subcommands (the first two print `key=value` lines that the shell script reads):
  sluiced STDOUT JSON [--port out] [--warmup W] [--seconds S]
      The rate as bench_xconnect.sh takes it (perf_common.py: the first `stats` sample
      with port tx_packets > 0 marks forwarding start, the window opens W s later and lasts
      S s), plus from the stats JSON: P4 drops apart from other drops, and every key of each
      worker's `cache` object (EMC/dpcls hits, upcalls, ... as sluiced names them; nested
      objects are flattened with dots, counts summed over workers, other numbers averaged).
      Keys printed as `cache.<name>=<value>`; none when sluiced has no cache (yet).
  ovs DIR T0 T1 [--in-port 1] [--out-port 2]
      One OVS run from the files the script left in DIR: ports0.txt / ports1.txt
      (`ovs-ofctl dump-ports` at the window's start and end, wall times T0 and T1),
      pmd-stats.txt (`dpif-netdev/pmd-stats-show`, cleared at the window's start),
      pmd-perf.txt (`dpif-netdev/pmd-perf-show`), upcall.txt (`upcall/show`). Rate = Δ tx
      packets of the out port / (T1 - T0); OVS's own numbers of the forwarding pmd thread.
  compare [--ecmp-dst MAC,MAC...] INPUT SLUICED_OUT OVS_OUT...
      Behaviour check: the distinct frames each side wrote to its tx pcap when forwarding the
      pcap INPUT once must be the same set (so MAC rewrites, TTL and checksum agree), and
      as many as INPUT's distinct frames (every flow forwarded). One line of text; exit 1 on
      a difference. --ecmp-dst: the sides spread flows over these next hops' MACs with
      different hashes, so a destination MAC among them is normalised to "one of them"
      before comparing; the line then gives each side's spread over them and how many flows
      took the same next hop on both sides, and a side that leaves a next hop unused fails.
  report CSV --md FILE [--meta KEY=VALUE ...]
      Tables (summary and detail) to stdout and Markdown.
"""

import json
import os
import re
import sys

sys.dont_write_bytecode = True  # no perf/__pycache__ from the imports below
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from perf_common import (add_report_command, add_sluiced_command, arg_parser,  # noqa: E402
                         md_table, median, num, read_runs, span, text_table, write_markdown)
from perf_common import parse_sluiced as _common_parse_sluiced  # noqa: E402
from gen_pcap import read_pcap  # noqa: E402

# --------------------------------------------------------------------------------- sluiced ---

_COUNT_HINT = re.compile(r"(hits|misses|upcalls|uncacheable|packets|evictions|inserts|"
                         r"installs|flows|megaflows|entries|searched|lookups|count|_n)$")


def _flatten(obj, prefix, out):
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(v, "%s.%s" % (prefix, k) if prefix else str(k), out)
    elif isinstance(obj, bool):
        out.setdefault(prefix, []).append(int(obj))
    elif isinstance(obj, (int, float)):
        out.setdefault(prefix, []).append(obj)
    elif isinstance(obj, str):
        out.setdefault(prefix, []).append(obj)
    # lists are skipped: per-subtable details and the like do not fit one table cell


def cache_stats(js):
    """{key: value} from the workers' `cache` objects (empty if absent)."""
    vals = {}
    rx = 0
    for w in js.get("workers", []):
        c = w.get("cache")
        if isinstance(c, dict):
            _flatten(c, "", vals)
            rx += w.get("rx_packets", 0)
    out = {}
    for k, vs in vals.items():
        nums = [v for v in vs if isinstance(v, (int, float))]
        if len(nums) != len(vs):
            out[k] = "/".join(str(v).replace(" ", "_") for v in vs)
        elif all(isinstance(v, int) for v in nums) and (len(nums) == 1 or _COUNT_HINT.search(k)):
            out[k] = sum(nums)
        else:
            out[k] = "%.2f" % (sum(nums) / len(nums))
    if out and rx:
        out["_rx_packets"] = rx
    return out


def parse_sluiced(stdout_path, json_path, port, warmup, seconds):
    out = _common_parse_sluiced(stdout_path, json_path, port, warmup, seconds)
    try:
        with open(json_path) as f:
            js = json.load(f)
    except (OSError, ValueError):
        return out
    p4 = other = 0
    for w in js.get("workers", []):
        for reason, n in w.get("drops", {}).items():
            if reason.startswith("p4_"):
                p4 += n
            else:
                other += n
    out["p4_drops"] = p4
    out["other_drops"] = other
    out["rx_packets"] = sum(w.get("rx_packets", 0) for w in js.get("workers", []))
    for k, v in cache_stats(js).items():
        out["cache." + k] = v
    return out


# ------------------------------------------------------------------------------------- ovs ---

_PORT = re.compile(r"port\s+(\S+):\s*rx pkts=(\d+|\?),.*?drop=(\d+|\?)")
_TXL = re.compile(r"tx pkts=(\d+|\?),.*?drop=(\d+|\?)")


def parse_dump_ports(path):
    """{port: {rx, rx_drop, tx, tx_drop}} from `ovs-ofctl dump-ports` output."""
    ports = {}
    cur = None
    with open(path, errors="replace") as f:
        for line in f:
            m = _PORT.search(line)
            if m:
                cur = m.group(1)
                ports[cur] = {"rx": _int(m.group(2)), "rx_drop": _int(m.group(3))}
                continue
            m = _TXL.search(line)
            if m and cur is not None:
                ports[cur].update(tx=_int(m.group(1)), tx_drop=_int(m.group(2)))
                cur = None
    return ports


def _int(s):
    try:
        return int(s)
    except (TypeError, ValueError):
        return 0


_PMD_HDR = re.compile(r"^pmd thread numa_id (\d+) core_id (\d+):")
_KV = re.compile(r"^\s+([a-zA-Z][^:]*):\s+([0-9.]+)")


def parse_pmd_stats(path):
    """The pmd threads' blocks of pmd-stats-show: [{key: float}] (main thread left out)."""
    blocks = []
    cur = None
    with open(path, errors="replace") as f:
        for line in f:
            m = _PMD_HDR.match(line)
            if m:
                cur = {"core": int(m.group(2))}
                blocks.append(cur)
                continue
            if line and not line[0].isspace():
                cur = None  # "main thread:" or anything else
                continue
            m = _KV.match(line)
            if m and cur is not None:
                cur[m.group(1).strip()] = float(m.group(2))
    return blocks


_PERF_RX = re.compile(r"Rx packets:\s+(\d+)\s+\(\s*([0-9.]+) Kpps,\s*([0-9.]+) cycles/pkt\)")
_PERF_SUBT = re.compile(r"Megaflow hits:.*?([0-9.]+) subtbl lookups/hit")
_PERF_UPC = re.compile(r"- Upcalls:\s+(\d+)\s+\(.*?([0-9.]+) us/upcall\)")
_FLOWS = re.compile(r"flows\s*:\s*\(current (\d+)\)\s*\(avg (\d+)\)\s*\(max (\d+)\)\s*\(limit (\d+)\)")


def parse_ovs(d, t0, t1, in_port, out_port):
    out = {"ok": 0}
    try:
        p0 = parse_dump_ports(os.path.join(d, "ports0.txt"))
        p1 = parse_dump_ports(os.path.join(d, "ports1.txt"))
    except OSError as e:
        out["error"] = "dump-ports: %s" % e
        return out
    po, pi = str(out_port), str(in_port)
    if po not in p0 or po not in p1 or "tx" not in p0[po] or "tx" not in p1[po]:
        out["error"] = "port %s missing in dump-ports" % po
        return out
    dt = t1 - t0
    if dt <= 0:
        out["error"] = "empty window"
        return out
    tx = p1[po]["tx"] - p0[po]["tx"]
    out.update(ok=1, mpps="%.3f" % (tx / dt / 1e6), window_s="%.3f" % dt, window_pkts=tx)
    if pi in p0 and pi in p1:
        out["rx_window_pkts"] = p1[pi]["rx"] - p0[pi]["rx"]
        out["rx_drop"] = p1[pi]["rx_drop"] - p0[pi]["rx_drop"]
    out["tx_drop"] = p1[po].get("tx_drop", 0) - p0[po].get("tx_drop", 0)
    try:
        blocks = parse_pmd_stats(os.path.join(d, "pmd-stats.txt"))
    except OSError:
        blocks = []
    if blocks:
        b = max(blocks, key=lambda x: x.get("packets received", 0))
        n = b.get("packets received", 0)
        out["pmd_core"] = b["core"]
        out["pmd_packets"] = int(n)
        for key, name in (("simple match hits", "simple_hits"), ("emc hits", "emc_hits"),
                          ("smc hits", "smc_hits"), ("megaflow hits", "megaflow_hits"),
                          ("miss with success upcall", "upcalls_ok"),
                          ("miss with failed upcall", "upcalls_failed")):
            if key in b:
                out[name] = int(b[key])
                out[name + "_pct"] = "%.1f" % (100.0 * b[key] / n) if n else "-"
        if "avg. subtable lookups per megaflow hit" in b:
            out["subtables_per_hit"] = "%.2f" % b["avg. subtable lookups per megaflow hit"]
        if "avg cycles per packet" in b:
            out["cpp"] = "%.1f" % b["avg cycles per packet"]
        if "avg processing cycles per packet" in b:
            out["proc_cpp"] = "%.1f" % b["avg processing cycles per packet"]
    try:
        with open(os.path.join(d, "pmd-perf.txt"), errors="replace") as f:
            perf = f.read()
        m = _PERF_RX.search(perf)
        if m:
            out["perf_cpp"] = m.group(3)
        m = _PERF_UPC.search(perf)
        if m:
            out["us_per_upcall"] = m.group(2)
    except OSError:
        pass
    try:
        with open(os.path.join(d, "upcall.txt"), errors="replace") as f:
            m = _FLOWS.search(f.read())
        if m:
            out["megaflows"] = int(m.group(1))
            out["megaflows_max"] = int(m.group(3))
            out["flow_limit"] = int(m.group(4))
    except OSError:
        pass
    return out


# --------------------------------------------------------------------------------- compare ---

def _mac(b):
    return ":".join("%02x" % x for x in b)


_NEIGHBOR = b"\x00" * 6  # --ecmp-dst: a normalised destination MAC


def _describe(frame):
    mac = _mac
    d = "dst %s src %s" % ("<next hop>" if frame[0:6] == _NEIGHBOR else mac(frame[0:6]),
                           mac(frame[6:12]))
    if len(frame) >= 34 and frame[12:14] == b"\x08\x00":
        ip = frame[14:34]
        d += " ip %s->%s ttl %d csum 0x%04x" % (".".join(map(str, ip[12:16])),
                                                 ".".join(map(str, ip[16:20])), ip[8],
                                                 (ip[10] << 8) | ip[11])
    return d


def _ttls(frames):
    """The IPv4 TTLs of FRAMES, as text ("63", "1-64")."""
    t = {f[22] for f in frames if len(f) >= 34 and f[12:14] == b"\x08\x00"}
    if not t:
        return ""
    return "%d" % min(t) if len(t) == 1 else "%d-%d" % (min(t), max(t))


def _parse_macs(text):
    out = []
    for m in text.split(","):
        b = bytes.fromhex(m.strip().replace(":", ""))
        if len(b) != 6:
            raise ValueError("not a MAC: %r" % m)
        out.append(b)
    return out


def compare(inp, outputs, ecmp_dst=None):
    names = ["sluiced"] + [os.path.basename(o).rsplit(".", 1)[0].split("-", 2)[-1]
                           for o in outputs[1:]]
    hops = _parse_macs(ecmp_dst) if ecmp_dst else []
    try:
        inset = set(read_pcap(inp))
        want = len(inset)
        sets, counts = [], []
        for o in outputs:
            frames = list(read_pcap(o)) if os.path.exists(o) else []
            sets.append(set(frames))
            counts.append(len(frames))
    except (OSError, ValueError) as e:
        print("cannot read: %s" % e)
        return 1
    ok = True
    ecmp = ""
    if hops:
        # {normalised frame: next hop MAC} per side; the sets compared are the normalised ones
        chosen = []
        for i, st in enumerate(sets):
            m = {}
            for f in st:
                if f[0:6] in hops:
                    m[_NEIGHBOR + f[6:]] = f[0:6]
                else:
                    m[f] = None
            chosen.append(m)
            sets[i] = set(m)
        spread = []
        for name, m in zip(names, chosen):
            n = [sum(1 for v in m.values() if v == h) for h in hops]
            spread.append("%s %s" % (name, "/".join(str(x) for x in n)))
            if m and 0 in n:
                ok = False
                spread[-1] += " (a next hop unused)"
        same = []
        for name, m in zip(names[1:], chosen[1:]):
            common = [k for k in m if k in chosen[0]]
            if common:
                agree = sum(1 for k in common if m[k] == chosen[0][k])
                same.append("%.1f%% with %s" % (100.0 * agree / len(common), name))
        ecmp = ("; ECMP: destination MACs %s normalised to one next hop (the sides hash "
                "differently); flows per next hop %s; same next hop as sluiced for %s" % (
                    "/".join(_mac(h) for h in hops), ", ".join(spread),
                    ", ".join(same) or "-"))
    parts = []
    for name, st, n in zip(names, sets, counts):
        parts.append("%s %d distinct of %d packets" % (name, len(st), n))
        if len(st) != want:
            ok = False
    msg = "%d input flows; %s" % (want, ", ".join(parts))
    for name, st in zip(names[1:], sets[1:]):
        if st != sets[0]:
            ok = False
            a, b = sorted(sets[0] - st), sorted(st - sets[0])
            msg += "; sluiced vs %s differ: %d only in sluiced%s, %d only in %s%s" % (
                name, len(a), " (e.g. %s)" % _describe(a[0]) if a else "", len(b), name,
                " (e.g. %s)" % _describe(b[0]) if b else "")
    # IPv4 TTLs in and out (routers decrement; the sets above already compare them per frame)
    ttl_in = _ttls(inset)
    if ttl_in:
        msg += "; TTL in %s, out: %s" % (ttl_in, ", ".join(
            "%s %s" % (name, _ttls(st) or "-") for name, st in zip(names, sets)))
    msg += ecmp
    if ok:
        ex = _describe(next(iter(sets[0]))) if sets[0] else "-"
        msg = "identical: " + msg + "; e.g. " + ex
    else:
        msg = "DIFFERENT: " + msg
    print(msg)
    return 0 if ok else 1


# ---------------------------------------------------------------------------------- report ---

def _stats(row):
    """The `stats` column of a CSV row ("k=v k=v") as a dict."""
    return dict(kv.split("=", 1) for kv in row.get("stats", "").split() if "=" in kv)


def _side_label(side):
    # ovs-<rules>-<mode> -> "OVS <rules> <mode>"; sluiced-<mode> -> "sluiced <mode>"
    if side.startswith("ovs-"):
        return "OVS " + side[4:].replace("-", " ")
    return side.replace("-", " ")


def _cache_summary(st):
    """Compact text of sluiced's cache stats, in OVS's terms where the names are known
    (emc_hits, dpcls_hits, upcalls, uncacheable and sent_whole as shares of received packets;
    subtables searched per dpcls hit; megaflows and subtables at the end), then any other
    non-zero key."""
    c = {k[len("cache."):]: v for k, v in st.items() if k.startswith("cache.")}
    rx = num(c.pop("_rx_packets", None))
    if not c:
        return ""
    parts = []
    for key, label in (("emc_hits", "EMC"), ("dpcls_hits", "dpcls"), ("upcalls", "upcall"),
                       ("uncacheable", "uncacheable"), ("sent_whole", "sent whole")):
        v = num(c.pop(key, None))
        if v is not None:
            parts.append("%s %s" % (label, "%.1f%%" % (100.0 * v / rx) if rx else "%d" % v))
    srch = num(c.pop("subtables_searched", None))
    hits = num(st.get("cache.dpcls_hits"))
    if srch is not None and hits:
        parts.append("%.2f subtbl/dpcls-hit" % (srch / hits))
    for key, label in (("megaflows", "megaflows"), ("subtables", "subtables")):
        v = c.pop(key, None)
        if v is not None:
            parts.append("%s %s" % (v, label))
    rest = ["%s=%s" % (k, v) for k, v in sorted(c.items()) if num(v) != 0]
    return ", ".join(parts) + ("; " + " ".join(rest) if rest else "")


def _ovs_summary(rows):
    """Medians over rounds of OVS's pmd-stats: hit shares, subtables/hit, megaflows, upcalls."""
    sts = [_stats(r) for r in rows]
    parts = []
    for key, label in (("simple_hits_pct", "simple"), ("emc_hits_pct", "EMC"),
                       ("smc_hits_pct", "SMC"), ("megaflow_hits_pct", "megaflow"),
                       ("upcalls_ok_pct", "upcall")):
        m = median([num(s.get(key)) for s in sts])
        if m is not None and (m > 0 or key in ("emc_hits_pct", "megaflow_hits_pct")):
            parts.append("%s %.1f%%" % (label, m))
    m = median([num(s.get("subtables_per_hit")) for s in sts])
    if m is not None:
        parts.append("%.2f subtbl/mf-hit" % m)
    m = median([num(s.get("megaflows")) for s in sts])
    if m is not None:
        parts.append("%d megaflows" % m)
    m = median([num(s.get("upcalls_failed")) for s in sts])
    if m:
        parts.append("%d failed upcalls" % m)
    m = median([num(s.get("settle_s")) for s in sts])
    if m and m > 1:
        parts.append("window after %ds of flow setup" % m)
    if any(s.get("settled") == "0" for s in sts):
        parts.append("flows still growing at the window")
    return ", ".join(parts)


def report(csv_path, md_path, meta):
    all_rows, rows = read_runs(csv_path)
    groups = []
    for r in rows:
        g = (r["workload"], r["profile"])
        if g not in groups:
            groups.append(g)

    sum_header = ["workload", "flows", "sluiced Mpps", "OVS best (mode)", "OVS best Mpps",
                  "sluiced/OVS best", "OVS simple-match Mpps", "sluiced/simple", "rounds"]
    det_header = ["workload", "flows", "side", "Mpps med (min–max)", "sluiced/side med (min–max)",
                  "cyc/pkt", "cache / datapath stats (medians; sluiced: whole run)", "issues"]
    summary, detail = [], []
    for wl, prof in groups:
        gr = [r for r in rows if r["workload"] == wl and r["profile"] == prof]
        sides = []
        for r in gr:
            if r["side"] not in sides:
                sides.append(r["side"])
        ok = {(r["side"], r["round"]): r for r in gr if r["ok"] == "1"}
        rounds = sorted({r["round"] for r in gr}, key=int)

        def rates(side):
            return [num(ok[(side, rd)]["mpps"]) for rd in rounds if (side, rd) in ok]

        def ratios(side):
            out = []
            for rd in rounds:
                s, o = ok.get(("sluiced", rd)), ok.get((side, rd))
                if s and o and num(o["mpps"]):
                    out.append(num(s["mpps"]) / num(o["mpps"]))
            return out

        # OVS's best cache mode for this profile: highest median among the variants that go
        # through EMC/SMC/dpcls (the simple-match variant is reported on its own).
        cached = [s for s in sides if s.startswith("ovs-") and "-inport" not in s]
        best = max(cached, key=lambda s: median(rates(s)) or -1.0) if cached else None
        simple = next((s for s in sides if s.startswith("ovs-inport")), None)
        sl = rates("sluiced") if "sluiced" in sides else []
        summary.append([
            wl, prof, span(sl),
            best[4:].replace("-", " ") if best else "-",
            span(rates(best)) if best else "-",
            span(ratios(best), "%.3f") if best and sl else "-",
            span(rates(simple)) if simple else "-",
            span(ratios(simple), "%.3f") if simple and sl else "-",
            str(len(rounds))])
        for side in sides:
            sr = [r for r in gr if r["side"] == side]
            okr = [r for r in sr if r["ok"] == "1"]
            if side.startswith("sluiced"):
                st = _stats(okr[-1]) if okr else {}
                extra = _cache_summary(st) or "no cache stats in the JSON"
                p4d = median([num(_stats(r).get("p4_drops")) for r in okr])
                if p4d:
                    extra += "; P4 drops %d" % p4d
            else:
                extra = _ovs_summary(okr)
            issues = ["r%s %s" % (r["round"], r["flags"]) for r in sr if r["flags"] not in ("", "-")]
            issues += ["r%s failed: %s" % (r["round"], r["note"][:60]) for r in sr if r["ok"] != "1"]
            retried = sum(1 for r in all_rows if r["workload"] == wl and r["profile"] == prof
                          and r["side"] == side and r.get("accepted") != "1")
            if retried:
                issues.append("%d retried" % retried)
            detail.append([
                wl, prof, _side_label(side) + (" *" if side == best else ""),
                span(rates(side)),
                span(ratios(side), "%.3f") if side != "sluiced" and sl else "-",
                span([num(r["cpp"]) for r in okr], "%.0f"),
                extra or "-", "; ".join(issues) or "none"])

    out = []
    for kv in meta:
        if kv.startswith("behaviour check"):
            k, _, v = kv.partition("=")
            out += ["%s: %s" % (k, v)]
    if out:
        out.append("")
    out += ["Summary (medians over rounds; ratios = median of per-round sluiced/OVS):", ""]
    out += text_table(sum_header, summary)
    out += ["", "Detail (* = OVS's best cache mode for the profile):", ""]
    out += text_table(det_header, detail)
    print("\n".join(out))
    if not md_path:
        return 0
    write_markdown(
        md_path, "Cache benchmark: sluiced (P4 pipeline) vs OVS-DPDK", meta,
        ["", "## Summary", ""] + md_table(sum_header, summary)
        + ["", "## Detail", ""] + md_table(det_header, detail),
        "Mpps: packets/s into the sink port over the steady window (start-up, preload "
        "and warm-up excluded). Ratios: median of the per-round ratios sluiced/OVS of "
        "interleaved runs. OVS best: the cache mode (`emc` = default EMC, "
        "`emc-insert-inv-prob=100`; `smc` = EMC off, SMC on; `emcsmc` = both; `none` = "
        "both off) with the highest median for the profile, among the variants that "
        "go through OVS's caches (`inport` = `in_port=1,actions=output:2`, OVS's "
        "simple-match path, reported apart). Cycles/packet: sluiced (busy + idle) / "
        "tx over the whole run (stats JSON); OVS `avg cycles per packet` of "
        "`pmd-stats-show` over the window. OVS hit shares are of the packets its pmd "
        "thread received in the window. Flags: C = forwarding thread waited on the "
        "run queue, S = hypervisor steal, both above the threshold; X = rx/tx errors or "
        "non-pipeline drops; D = the pipeline or the rules dropped packets (more than "
        "0.1 % of the window's packets not forwarded: the rule sets are not equivalent "
        "or the traffic misses them).",
        csv_path)
    return 0


def main(argv=None):
    p, sub = arg_parser(__doc__)
    add_sluiced_command(sub)
    o = sub.add_parser("ovs")
    o.add_argument("dir")
    o.add_argument("t0", type=float)
    o.add_argument("t1", type=float)
    o.add_argument("--in-port", type=int, default=1)
    o.add_argument("--out-port", type=int, default=2)
    c = sub.add_parser("compare")
    c.add_argument("--ecmp-dst", metavar="MAC,MAC",
                   help="next-hop MACs the sides may choose differently (normalised)")
    c.add_argument("input")
    c.add_argument("outputs", nargs="+")
    add_report_command(sub)
    a = p.parse_args(argv)
    if a.cmd == "report":
        return report(a.csv, a.md, a.meta)
    if a.cmd == "compare":
        return compare(a.input, a.outputs, a.ecmp_dst)
    if a.cmd == "sluiced":
        out = parse_sluiced(a.stdout, a.json, a.port, a.warmup, a.seconds)
    else:
        out = parse_ovs(a.dir, a.t0, a.t1, a.in_port, a.out_port)
    for k, v in out.items():
        print("%s=%s" % (k, str(v).replace("\n", " ")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
