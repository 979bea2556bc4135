#!/usr/bin/env bash
# QoS costs and accuracy on the real switch, in real time: sluiced (release) on one worker
# core, a net_pcap port replaying one UDP flow (infinite_rx) into a net_null port.
#
#   cost:     what a policed or metered packet costs against one that is not
#             xc            cross-connect, no policer
#             xc+police     ingress policer far above the offered rate (every packet checked, all pass)
#             p4            onos_basic, table0 -> port 2, its egress meter unconfigured (GREEN, cached)
#             p4+meter      the same meter configured far above the rate (all GREEN): the
#                           megaflow executes the meter per packet and branches on its color
#   accuracy: the rate passed against the rate configured, 60-byte and 1500-byte frames
#             xc+limit      ingress policer (srTCM) at LIMIT_XC bytes/s
#             p4+limit      onos_basic's egress meter (trTCM, RED dropped) at LIMIT_P4 bytes/s
#
# Runs interleave case by case within each round (A B C ... A B C ...); the report gives
# medians. Counters are read with sluicectl at the start and end of each window.
# Usage: perf/bench_qos.sh [--rounds N] [--seconds S] [--warmup S]
# Writes perf/results/qos-<date>.md and prints it. Needs the P4 corpus (SLUICE_P4_CORPUS,
# default ../shared/p4) for the p4 cases.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=3 MEASURE_S=4 WARMUP_S=2
LIMIT_XC=50000000 LIMIT_P4=20000000
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) MEASURE_S=$2; shift 2 ;;
    --warmup) WARMUP_S=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "bench_qos: unknown option $1" >&2; exit 2 ;;
  esac
done
CORPUS=${SLUICE_P4_CORPUS:-$(cd .. && pwd)/shared/p4}
[[ -f $CORPUS/onos_basic/basic.json ]] || { echo "bench_qos: no P4 corpus at $CORPUS" >&2; exit 1; }
NCPU=$(nproc)
MAIN_CORE=0 FWD_CORE=$((NCPU - 1))
((NCPU >= 2)) || { echo "bench_qos: needs 2 cores (control + worker)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/sluice-qos.XXXXXX)
PID=""
cleanup() { [[ -n $PID ]] && kill -INT "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
cargo build --release --bin sluiced --bin sluicectl >&2
SLUICED=$PWD/target/release/sluiced SLUICECTL=$PWD/target/release/sluicectl
for size in 60 1500; do
  python3 perf/gen_pcap.py --flows 1 --packets 1024 --size "$size" --output "$WORK/in$size.pcap" >&2
done
# table0 (9 ternary keys, all wildcards) -> port 2; the egress meter of port 2.
TABLE0='table_add table0 set_egress_port 0&&&0 0&&&0 0&&&0 0&&&0 0&&&0 0&&&0 0&&&0 0&&&0 0&&&0 => 2 1'
printf '%s\n' "$TABLE0" >"$WORK/p4.txt"
printf '%s\nmeter_set_rates egress_port_meter 2 100000:1000000 100000:1000000\n' "$TABLE0" >"$WORK/p4meter.txt"
rate_us=$(python3 -c "print($LIMIT_P4 / 1e6)")
printf '%s\nmeter_set_rates egress_port_meter 2 %s:30000 %s:30000\n' "$TABLE0" "$rate_us" "$rate_us" >"$WORK/p4limit.txt"

config() {  # config CASE SIZE
  local case=$1 size=$2 n=$RANDOM pol="" pipe=""
  case $case in
    xc+police) pol='ingress_policer = { cir = 1000000000000, cbs = 1000000 }' ;;
    xc+limit) pol="ingress_policer = { cir = $LIMIT_XC, cbs = 30000 }" ;;
    p4) pipe="$WORK/p4.txt" ;;
    p4+meter) pipe="$WORK/p4meter.txt" ;;
    p4+limit) pipe="$WORK/p4limit.txt" ;;
  esac
  cat <<EOF
[eal]
hugepages = false
memory_mb = 1024
file_prefix = "sluice-qos-$n"
extra_args = ["--no-pci", "--no-telemetry"]

[mempool]
mbufs = 16383

[workers]
cores = [$FWD_CORE]
control_core = $MAIN_CORE

[management]
socket = "$WORK/sl.sock"

[metrics]
enabled = false
EOF
  if [[ -n $pipe ]]; then
    printf '\n[pipeline]\njson = "%s"\np4info = "%s"\nentries = "%s"\n' \
      "$CORPUS/onos_basic/basic.json" "$CORPUS/onos_basic/basic.p4info.txt" "$pipe"
  fi
  printf '\n[[port]]\nname = "in"\np4_port = 1\ndevargs = "net_pcap_q%s,rx_pcap=%s,infinite_rx=1"\n%s\n' \
    "$n" "$WORK/in$size.pcap" "$pol"
  printf '\n[[port]]\nname = "out"\np4_port = 2\ndevargs = "net_null_q%s,no-rx=1"\n' "$n"
  [[ -z $pipe ]] && printf '\n[[xconnect]]\nfrom = "in"\nto = "out"\n'
  return 0
}

snap() {  # snap FILE: ports and workers, as JSON lines, with the time
  {
    python3 -c 'import time; print(time.time())'
    "$SLUICECTL" --socket "$WORK/sl.sock" --json port list | tr -d '\n'; echo
    "$SLUICECTL" --socket "$WORK/sl.sock" --json pmd stats | tr -d '\n'; echo
  } >"$1"
}

run() {  # run CASE SIZE -> one result line "case size mpps cpp passed_Bps cached_fraction"
  local case=$1 size=$2
  config "$case" "$size" >"$WORK/c.toml"
  "$SLUICED" --config "$WORK/c.toml" >"$WORK/out.log" 2>"$WORK/err.log" &
  PID=$!
  local i
  for ((i = 0; i < 600; i++)); do grep -q "sluiced: forwarding:" "$WORK/err.log" && break; sleep 0.1; done
  sleep "$WARMUP_S"
  snap "$WORK/s1"; sleep "$MEASURE_S"; snap "$WORK/s2"
  kill -INT "$PID"; wait "$PID" || true; PID=""
  python3 - "$WORK/s1" "$WORK/s2" "$case" "$size" <<'PY'
import json, sys
def load(p):
    t, ports, pmd = open(p).read().splitlines()[:3]
    return float(t), {x["name"]: x["counters"] for x in json.loads(ports)["ports"]}, json.loads(pmd)["workers"][0]
t1, p1, w1 = load(sys.argv[1]); t2, p2, w2 = load(sys.argv[2])
dt = t2 - t1
size = int(sys.argv[4])
d = lambda a, b, k: int(b.get(k, 0)) - int(a.get(k, 0))
rx = d(w1, w2, "rx_packets")
sent = d(p1["out"], p2["out"], "sw_tx_packets")
busy = d(w1, w2, "busy_cycles")
hits = d(w1, w2, "emc_hits") + d(w1, w2, "dpcls_hits")
print(sys.argv[3], size, f"{rx / dt / 1e6:.3f}", f"{busy / max(rx, 1):.1f}", f"{sent * size / dt:.0f}",
      f"{hits / max(rx, 1):.4f}")
PY
}

RES=$WORK/results.txt
: >"$RES"
for ((r = 1; r <= ROUNDS; r++)); do
  for c in xc xc+police p4 p4+meter; do
    echo "[round $r] $c 60" >&2; run "$c" 60 >>"$RES"
  done
  for size in 60 1500; do
    for c in xc+limit p4+limit; do
      echo "[round $r] $c $size" >&2; run "$c" "$size" >>"$RES"
    done
  done
done

out="perf/results/qos-$(date +%Y-%m-%d-%H%M%S).md"
python3 - "$RES" "$LIMIT_XC" "$LIMIT_P4" "$ROUNDS" "$MEASURE_S" "$(git rev-parse --short HEAD)" "$NCPU" >"$out" <<'PY'
import statistics as st, sys, time
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
limit = {"xc+limit": int(sys.argv[2]), "p4+limit": int(sys.argv[3])}
by = {}
for c, size, mpps, cpp, bps, cached in rows:
    by.setdefault((c, int(size)), []).append((float(mpps), float(cpp), float(bps), float(cached)))
med = lambda v: st.median(v)
print(f"# QoS: cost and accuracy ({time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}, {sys.argv[7]} cores, {sys.argv[6]})\n")
print(f"Command: `perf/bench_qos.sh`, {sys.argv[4]} rounds of {sys.argv[5]} s windows, cases interleaved; medians.")
print("One worker core; net_pcap (one UDP flow, infinite_rx) into net_null; no hugepages.\n")
print("## Cost (60-byte frames, offered as fast as net_pcap replays)\n")
print("| case | Mpps | cycles/pkt (worker, busy) | cache hits |\n|---|---|---|---|")
for c in ["xc", "xc+police", "p4", "p4+meter"]:
    v = by.get((c, 60), [])
    if v:
        hits = f"{med([x[3] for x in v]) * 100:.1f}%" if c.startswith("p4") else "-"
        print(f"| {c} | {med([x[0] for x in v]):.2f} | {med([x[1] for x in v]):.0f} | {hits} |")
print("\n## Accuracy (passed bytes/s against the configured rate)\n")
print("| case | frame | configured B/s | passed B/s (median) | error | runs (error each) |\n|---|---|---|---|---|---|")
for c in ["xc+limit", "p4+limit"]:
    for size in [60, 1500]:
        v = by.get((c, size), [])
        if not v:
            continue
        errs = [x[2] / limit[c] - 1 for x in v]
        print(f"| {c} | {size} | {limit[c]} | {med([x[2] for x in v]):.0f} | {med(errs) * 100:+.2f}% | "
              + ", ".join(f"{e * 100:+.2f}%" for e in errs) + " |")
PY
cat "$out"
echo "saved $out" >&2
