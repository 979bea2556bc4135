#!/usr/bin/env bash
# bench_learning.sh — MAC learning through digests: Sluice's default program as a learning
# bridge (built-in app), fed by N hosts at once (net_pcap infinite_rx -> net_null). Until the
# app has written a host's MAC, every packet from it takes the uncached pipeline and samples
# a digest, so what matters is how long learning takes and what those packets cost:
#
#   learn     the app learns: packets that went uncached (the price of learning), MACs
#             learned, digest samples sent / held back by the worker / lost, cycles/packet
#   unlearned [switch] learning = false: every packet stays unlearned for the whole run,
#             the steady cost of the digest path (cycles/packet, samples sent and held)
#
# With --sluiced-b PATH a second binary runs alternated with the first (A B A B), for a
# before/after comparison in one run. Medians over rounds. A benchmark, not a test: it
# prints a table and writes perf/results/learning-<date>-<time>.md. See perf/README.md.
set -euo pipefail

PERF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$PERF_DIR/.." && pwd)
BENCH=bench_learning
# die, log, the cores' defaults and sluiced_config (the config's head: EAL, mempool,
# workers, ports "in" and "out").
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$PERF_DIR/lib.sh"
SLUICED=${SLUICED:-$REPO_DIR/target/release/sluiced}
SLUICED_B=""
HOSTS="64 1024 8192"
RUN_S=3

usage() {
  cat <<EOF
usage: perf/bench_learning.sh [options]
  --hosts "N ..."     host counts (one source MAC and flow each; default "$HOSTS")
  --rounds R          rounds, medians reported (default $ROUNDS)
  --seconds S         forwarding time per run (default $RUN_S)
  --sluiced-b PATH    a second sluiced binary, alternated with the first (\$SLUICED, default
                      target/release/sluiced, built if missing)
  --cores M,F         control and worker core (default $MAIN_CORE,$FWD_CORE)
EOF
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --hosts) HOSTS=${2:?}; shift 2 ;;
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    --seconds) RUN_S=${2:?}; shift 2 ;;
    --sluiced-b) SLUICED_B=${2:?}; shift 2 ;;
    --cores) IFS=, read -r MAIN_CORE FWD_CORE <<<"${2:?}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
  esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ $RUN_S =~ ^[1-9][0-9]*$ ]] || die "--seconds must be a positive integer"
for n in $HOSTS; do [[ $n =~ ^[1-9][0-9]*$ && $n -le 65536 ]] || die "bad host count '$n' (1..65536)"; done
[[ $MAIN_CORE != "$FWD_CORE" ]] || die "control and worker must be different cores"
[[ $(id -u) == 0 ]] || die "needs root (DPDK, hugepages)"

if [[ ! -x $SLUICED ]]; then
  log "building sluiced (release)"
  (cd "$REPO_DIR" && cargo build --release --bin sluiced >&2)
fi
[[ -z $SLUICED_B || -x $SLUICED_B ]] || die "--sluiced-b: $SLUICED_B is not executable"

MODE=nohuge
"$REPO_DIR/scripts/hugepages.sh" 512 >&2 && MODE=huge

WORK=$(mktemp -d /tmp/sluice-learning.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# The bridge: "in" and "out" are access ports of VLAN 10; the traffic's destination
# (gen_pcap.py's 02:00:00:00:00:02) is a static MAC behind "out"; the sources are learned.
config() {  # config HOSTS LEARNING
  # net_pcap preloads the whole pcap (one mbuf per host) and needs a working set beside it.
  sluiced_config "learn$$" 512 $(( $1 * 2 + 8191 )) \
    "net_pcap_learn0,rx_pcap=$WORK/hosts-$1.pcap,infinite_rx=1" "net_null_learn0,no-rx=1" 1 2 \
    "vlan = 10" "vlan = 10"
  cat <<EOF

[[vlan]]
id = 10
name = "hosts"

[[mac]]
vlan = 10
mac = "02:00:00:00:00:02"
port = "out"

[switch]
learning = $2

[p4runtime]
address = "127.0.0.1:0"
EOF
}

for n in $HOSTS; do
  python3 "$PERF_DIR/gen_pcap.py" --flows "$n" --src-macs "$n" -o "$WORK/hosts-$n.pcap" >&2
  config "$n" true >"$WORK/learn-$n.toml"
  config "$n" false >"$WORK/unlearned-$n.toml"
done

BINS=("$SLUICED")
[[ -n $SLUICED_B ]] && BINS+=("$SLUICED_B")
CSV="$WORK/runs.csv"
echo "bin,hosts,mode,round,elapsed,rx,cycles,uncached,learned,sent,held,lost" >"$CSV"
for r in $(seq 1 "$ROUNDS"); do
  for n in $HOSTS; do
    for mode in learn unlearned; do
      for b in "${!BINS[@]}"; do
        log "round $r/$ROUNDS: $n hosts, $mode, binary $([[ $b == 0 ]] && echo A || echo B)"
        json="$WORK/out.json"
        if ! "${BINS[$b]}" -c "$WORK/$mode-$n.toml" --duration "$RUN_S" --stats-interval 3600 \
          --stats-json "$json" >"$WORK/out.log" 2>"$WORK/err.log"; then
          cat "$WORK/err.log" >&2
          die "sluiced failed (${BINS[$b]}, $mode, $n hosts)"
        fi
        learned=$(sed -n 's/.*app: \([0-9]*\) MACs learned.*/\1/p' "$WORK/err.log" | tail -1)
        python3 - "$json" "$b" "$n" "$mode" "$r" "${learned:-0}" >>"$CSV" <<'PY'
import json, sys
path, b, n, mode, r, learned = sys.argv[1:]
d = json.load(open(path))
w = d["workers"][0]
print(",".join(str(x) for x in (b, n, mode, r, d["elapsed_seconds"], w["rx_packets"],
      w["cycles_per_packet"], w["cache"]["uncacheable"], learned, w["digests"],
      w.get("digests_held", 0), w["digest_drops"])))
PY
      done
    done
  done
done

mkdir -p "$PERF_DIR/results"
OUT="$PERF_DIR/results/learning-$(date +%Y-%m-%d-%H%M%S).md"
python3 - "$CSV" "$OUT" "$ROUNDS" "$RUN_S" "$SLUICED" "$SLUICED_B" "$MODE" <<'PY'
import csv, statistics, sys, platform, datetime
path, out, rounds, secs, a, b, mode = sys.argv[1:]
rows = list(csv.DictReader(open(path)))
med = lambda xs: statistics.median(xs)
lines = [
    "# MAC learning through digests (perf/bench_learning.sh)",
    "",
    f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, {rounds} rounds x {secs} s, "
    f"memory {mode}. A = `{a}`" + (f", B = `{b}` (alternated A B)" if b else "") + ".",
    "Medians over rounds. Uncached: packets that took the pipeline because their source was not "
    "learned yet (every one samples a digest). Samples: sent to control / held back by the worker "
    "(a repeat of data it sent < 10 ms ago) / lost (ring full).",
    "",
    "| binary | hosts | mode | Mpps | cycles/pkt | uncached packets | MACs learned | samples sent | held | lost |",
    "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]
keys = sorted({(r["hosts"], r["mode"], r["bin"]) for r in rows}, key=lambda k: (int(k[0]), k[1], k[2]))
for hosts, mode, bn in keys:
    rs = [r for r in rows if (r["hosts"], r["mode"], r["bin"]) == (hosts, mode, bn)]
    f = lambda k: med([float(r[k]) for r in rs])
    mpps = med([float(r["rx"]) / float(r["elapsed"]) / 1e6 for r in rs])
    lines.append(f"| {'AB'[int(bn)]} | {hosts} | {mode} | {mpps:.2f} | {f('cycles'):.0f} | {f('uncached'):,.0f} | "
                 f"{f('learned'):.0f} | {f('sent'):,.0f} | {f('held'):,.0f} | {f('lost'):,.0f} |")
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text)
print(f"written: {out}")
PY
