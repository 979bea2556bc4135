#!/usr/bin/env bash
# P4Runtime writes against a forwarding sluiced: insert rate (batches of 1, 100, 1000),
# write-to-visible latency (a Write returns only when every worker applied it and
# dropped the stale megaflows: its round trip bounds the latency), and the forwarding
# rate while 1000 writes/s land, interleaved with runs without writes (A B A B).
#
# Traffic: net_pcap infinite_rx (64 UDP flows, 64-byte frames to 10.0.0.1) into port
# "in" (P4 port 1) of simple_router with perf/entries/simple_router.txt; routed out of
# port "out" (net_null, P4 port 2). Writes: /32 routes in 172.16.0.0/12 of ipv4_lpm —
# no packet matches them, but each write invalidates the megaflows that read ipv4_lpm
# (invalidation is per table), so the traffic re-upcalls after every write.
#
# Usage: perf/bench_p4rt.sh [--rounds N] [--seconds S]
# Writes perf/results/p4rt-<date>.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=3
SECONDS_PER_RUN=6
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--seconds S]" >&2; exit 2 ;;
  esac
done
P4=${SLUICE_P4_CORPUS:-$(pwd)/../shared/p4}
[ -f "$P4/simple_router/simple_router.json" ] || { echo "no P4 corpus at $P4 (set SLUICE_P4_CORPUS)" >&2; exit 2; }
cargo build --release --bin sluiced --example p4rt_bench >&2
BENCH=./target/release/examples/p4rt_bench
tmp=$(mktemp -d)
trap 'pkill -f "sluiced --config $tmp" 2>/dev/null || true; rm -rf "$tmp"' EXIT
python3 perf/gen_pcap.py --flows 64 --packets 4096 -o "$tmp/in.pcap" >&2
cores=$(nproc)
port=$((20000 + RANDOM % 20000))
cat >"$tmp/sluice.toml" <<EOF
[eal]
hugepages = false
memory_mb = 512
file_prefix = "p4rtbench"
extra_args = ["--no-pci", "--no-telemetry", "--log-level=*:warning"]

[workers]
cores = [$((cores - 1))]
control_core = 0

[pipeline]
json = "$P4/simple_router/simple_router.json"
p4info = "$P4/simple_router/simple_router.p4info.txt"
entries = "$(pwd)/perf/entries/simple_router.txt"

[p4runtime]
address = "127.0.0.1:$port"

[management]
enabled = false

[metrics]
enabled = false

[[port]]
name = "in"
p4_port = 1
devargs = "net_pcap0,rx_pcap=$tmp/in.pcap,infinite_rx=1"

[[port]]
name = "out"
p4_port = 2
devargs = "net_null0"
EOF

start() {  # start LOG: sluiced in the background, wait for P4Runtime
  ./target/release/sluiced --config "$tmp/sluice.toml" --stats-interval 1 --duration "$1" >"$2.out" 2>"$2.err" &
  for _ in $(seq 100); do grep -q "P4Runtime server listening" "$2.err" 2>/dev/null && return 0; sleep 0.1; done
  echo "sluiced did not start:" >&2; cat "$2.err" >&2; exit 1
}
median_pps() {  # median out tx_pps over the intervals after the first two
  python3 - "$1" <<'PY'
import re, statistics, sys
v = [float(m.group(1)) for l in open(sys.argv[1]) if "port=out" in l for m in [re.search(r"tx_pps=(\d+)", l)] if m]
v = v[2:-1] or v
print("%.3f" % (statistics.median(v) / 1e6) if v else "nan")
PY
}

echo "[$(date +%T)] inserts and latency while forwarding" >&2
start 600 "$tmp/w"
$BENCH --addr 127.0.0.1:$port --election 1 inserts >"$tmp/inserts.json"
$BENCH --addr 127.0.0.1:$port --election 2 --count 2000 latency >"$tmp/latency.json"
pkill -INT -f "sluiced --config $tmp" || true
sleep 2
fwd_during=$(median_pps "$tmp/w.out")

declare -a A B
for r in $(seq "$ROUNDS"); do
  for mode in A B; do
    echo "[$(date +%T)] round $r $mode" >&2
    start "$SECONDS_PER_RUN" "$tmp/$mode$r"
    if [ $mode = B ]; then
      $BENCH --addr 127.0.0.1:$port --election 1 --rate 1000 --seconds $((SECONDS_PER_RUN - 2)) rate >>"$tmp/rate.json"
    fi
    wait
    if [ $mode = A ]; then A+=("$(median_pps "$tmp/A$r.out")"); else B+=("$(median_pps "$tmp/B$r.out")"); fi
  done
done

out="perf/results/p4rt-$(date +%Y-%m-%d-%H%M%S).md"
python3 - "$tmp" "${A[*]}" "${B[*]}" "$fwd_during" "$*" "$(git rev-parse --short HEAD)" >"$out" <<'PY'
import json, statistics, sys
tmp, a, b, during, args, rev = sys.argv[1:]
a = [float(x) for x in a.split()]; b = [float(x) for x in b.split()]
ins = [json.loads(l) for l in open(tmp + "/inserts.json")]
lat = json.loads(open(tmp + "/latency.json").read())
rate = [json.loads(l) for l in open(tmp + "/rate.json")]
print(f"# P4Runtime writes against a forwarding sluiced ({rev})\n")
print(f"Command: `perf/bench_p4rt.sh {args}`. One worker core, one control core; simple_router;")
print("64 UDP flows of 64-byte frames replayed by net_pcap infinite_rx, routed to net_null.")
print("Writes are /32 routes of ipv4_lpm no packet matches; each one still invalidates the")
print("megaflows that read ipv4_lpm (per-table invalidation), so traffic re-upcalls after it.\n")
print("| batch (updates per Write) | entries | entries/s |\n| --- | --- | --- |")
for x in ins:
    print(f"| {x['batch']} | {x['entries']} | {x['entries_per_s']:,.0f} |")
print(f"\nWrite-to-visible (single-update Write round trip, {lat['writes']} writes while forwarding):")
print(f"p50 {lat['p50_us']:.0f} µs, p99 {lat['p99_us']:.0f} µs, max {lat['max_us']:.0f} µs.\n")
print(f"Forwarding during the insert and latency runs (median of 1 s intervals): {during} Mpps.\n")
print("Forwarding rate with and without 1000 writes/s (medians of 1 s intervals, A B interleaved):\n")
print("| run | Mpps per round | median |\n| --- | --- | --- |")
print(f"| no writes | {', '.join('%.2f' % x for x in a)} | {statistics.median(a):.2f} |")
print(f"| 1000 writes/s | {', '.join('%.2f' % x for x in b)} | {statistics.median(b):.2f} |")
print(f"\nRatio with writes / without: {statistics.median(b) / statistics.median(a):.2f}.")
print("Writes achieved: " + ", ".join(f"{r['writes_per_s']}/s" for r in rate) + ".")
PY
cat "$out"
echo "saved $out" >&2
