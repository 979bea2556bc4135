#!/usr/bin/env bash
# Instructions per packet, counted by callgrind: deterministic, so a change to the
# engine can be compared on a machine whose speed drifts (a shared VM), where cycle
# counts need many interleaved rounds. Not a substitute for the cycle benchmarks:
# cache misses and stalls do not show here.
#   perf/instructions.sh [BINARY]
# For simple_router (pipeline_bench --loop): a flow setup (burst lookup miss,
# tracked run, install, into an empty cache: what is inside Datapath::upcall and
# FlowCache::lookup_some; the miss's second lookup among the burst's new megaflows,
# FlowCache::lookup_since, is inlined and counts in the "with the loop" rows), the same into a full cache (setup-full: three in four
# setups also evict a megaflow), an untracked interpreter pass (Interp::ingress_pass:
# parse, ingress, egress, deparse) and a tracked one. In a profile-guided build
# (scripts/pgo.sh) lookup_some and ingress_pass are inlined: compare the "with the
# loop" rows, which count the benchmark's whole setup loop. BINARY defaults to a
# fresh build of the pipeline_bench example; pass an older build to compare. Needs
# valgrind (apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind: apt-get install -y valgrind" >&2; exit 1; }
bin=${1:-}
if [ -z "$bin" ]; then
  cargo build --release --example pipeline_bench >&2
  bin=target/release/examples/pipeline_bench
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
count() { # label, mode, functions to count inside...
  local label=$1 mode=$2; shift 2
  local toggles=()
  for f in "$@"; do toggles+=(--toggle-collect="$f"); done
  local out
  out=$(valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" "${toggles[@]}" \
    "$bin" --loop "$mode" --seconds 0.01 2>"$tmp/log")
  local n ir
  n=$(sed -nE 's/.* over ([0-9]+) packets.*/\1/p' <<<"$out")
  ir=$(sed -nE 's/.*Collected : ([0-9]+).*/\1/p' "$tmp/log")
  [ -n "$n" ] && [ -n "$ir" ] || { cat "$tmp/log" >&2; exit 1; }
  if [ "$ir" = 0 ]; then
    printf '| %s | %s | - (%s inlined in this build) |\n' "$label" "$n" "$*"
    return
  fi
  printf '| %s | %s | %.0f |\n' "$label" "$n" "$(echo "$ir / $n" | bc -l)"
}
echo "Instructions per packet (callgrind), simple_router, $(git rev-parse --short HEAD), $bin"
echo
echo "| part | packets | instructions per packet |"
echo "|---|---|---|"
count setup setup 'sluice_fastpath::cache::datapath::Datapath::upcall' 'sluice_fastpath::cache::FlowCache::lookup_some'
# The same with the benchmark's loop around it (~140 more): what compares a
# profile-guided build (scripts/pgo.sh), which inlines lookup_some.
count "setup, with the loop" setup 'pipeline_bench::setup_cycles'
count setup-full setup-full 'sluice_fastpath::cache::datapath::Datapath::upcall' 'sluice_fastpath::cache::FlowCache::lookup_some'
count "setup-full, with the loop" setup-full 'pipeline_bench::setup_cycles'
count interp interp 'sluice_fastpath::p4::interp::Interp::ingress_pass'
count tracked tracked 'sluice_fastpath::p4::interp::Interp::ingress_pass'
