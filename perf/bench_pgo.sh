#!/usr/bin/env bash
# The plain release build against the profile-guided one (scripts/pgo.sh), side by
# side in one run, alternating (plain, PGO, plain, PGO, ...) because this shared VM's
# speed drifts:
#   - flow setup: `pipeline_bench --only-setup` (simple_router; new megaflows into an
#     empty cache, into a full one, and with flow events drained), cycles per setup;
#   - forwarding: `sluiced --demo --no-huge` (the embedded default, cached traffic),
#     the worker's cycles per packet.
# Usage: perf/bench_pgo.sh [--setup-rounds N] [--demo-rounds N] [--pgo-build]
#   --pgo-build runs scripts/pgo.sh first (else target/pgo/release/ must exist).
# Writes perf/results/pgo-<date>.md and prints it.
set -euo pipefail
args="$*"
cd "$(dirname "$0")/.."
setup_rounds=9
demo_rounds=3
build_pgo=0
while [ $# -gt 0 ]; do
  case $1 in
    --setup-rounds) setup_rounds=${2:?}; shift 2 ;;
    --demo-rounds) demo_rounds=${2:?}; shift 2 ;;
    --pgo-build) build_pgo=1; shift ;;
    *) echo "usage: perf/bench_pgo.sh [--setup-rounds N] [--demo-rounds N] [--pgo-build]" >&2; exit 2 ;;
  esac
done
cargo build --release --bin sluiced --example pipeline_bench >&2
[ "$build_pgo" = 1 ] && scripts/pgo.sh
profile=$(ls target/pgo/*.profdata 2>/dev/null | head -1)
for b in target/pgo/release/sluiced target/pgo/release/examples/pipeline_bench; do
  [ -x "$b" ] && [ -n "$profile" ] || { echo "no PGO build ($b): run scripts/pgo.sh or pass --pgo-build" >&2; exit 1; }
done
core=$(($(nproc) - 1))
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# setup DIR: one --only-setup round; appends "empty full events" cycles to $tmp/setup-<name>.
setup() {
  local out
  out=$("$1/examples/pipeline_bench" --only-setup --rounds 1 --seconds 1 --core "$core" 2>&1) ||
    { echo "$out" >&2; exit 1; }
  awk -F'|' '/^\| simple_router \| empty /{e=$4} /^\| simple_router \| full \(/{f=$4}
    /^\| simple_router \| full, flow events/{v=$4} END {print e+0, f+0, v+0}' <<<"$out" >>"$tmp/setup-$2"
}
# demo DIR NAME: one demo run; appends the worker's cycles per packet to $tmp/demo-<name>.
demo() {
  local out
  out=$("$1/sluiced" --demo --no-huge 2>&1) || { echo "$out" >&2; exit 1; }
  awk '$1 == "0" && $2 == "'"$core"'" && NF >= 7 && c == "" {c=$6} END {print c+0}' <<<"$out" >>"$tmp/demo-$2"
}
for ((r = 0; r < setup_rounds; r++)); do
  setup target/release plain
  setup target/pgo/release pgo
done
for ((r = 0; r < demo_rounds; r++)); do
  demo target/release plain
  demo target/pgo/release pgo
done
# median FILE COLUMN
median() { cut -d' ' -f"$2" "$1" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
# row LABEL FILE-STEM COLUMN: medians of each build, then the median of the per-pair
# ratios and how many pairs PGO won (a pair's two runs are ~1 s apart, so a drift of
# the VM's speed between phases mostly cancels in its ratio, not in the medians).
row() {
  local p g
  p=$(median "$tmp/$2-plain" "$3")
  g=$(median "$tmp/$2-pgo" "$3")
  paste -d' ' <(cut -d' ' -f"$3" "$tmp/$2-plain") <(cut -d' ' -f"$3" "$tmp/$2-pgo") |
    awk '{print $1 / $2}' >"$tmp/ratios"
  printf '| %s | %s | %s | %.2f | %s of %s | %s / %s |\n' "$1" "$p" "$g" "$(median "$tmp/ratios" 1)" \
    "$(awk '$1 > 1' "$tmp/ratios" | wc -l)" "$(wc -l <"$tmp/ratios")" \
    "$(cut -d' ' -f"$3" "$tmp/$2-plain" | paste -sd,)" "$(cut -d' ' -f"$3" "$tmp/$2-pgo" | paste -sd,)"
}
out="perf/results/pgo-$(date +%Y-%m-%d-%H%M%S).md"
{
  echo "# Plain release build vs profile-guided ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(git rev-parse --short HEAD))"
  echo
  echo "Command: \`perf/bench_pgo.sh $args\`. Profile: \`$(basename "$profile")\` (trained on: $(basename "$profile" | cut -d- -f2))."
  echo "Runs alternate plain, PGO, plain, ...; TSC cycles, medians. The ratio is the median over"
  echo "pairs (a plain run and the PGO run after it) of plain / PGO: above 1, PGO is faster."
  echo
  echo "| measure | plain | PGO | plain / PGO, pairs | pairs PGO won | rounds (plain / PGO) |"
  echo "|---|---|---|---|---|---|"
  row "flow setup, empty cache (cycles per setup)" setup 1
  row "flow setup, full cache (each evicts)" setup 2
  row "flow setup, full, flow events drained" setup 3
  row "demo forwarding (worker cycles per packet)" demo 1
} | tee "$out"
echo "saved $out" >&2
