#!/usr/bin/env bash
# Pipeline-only rate (no cache): simple_router and fabric through the P4 interpreter
# on one core, with the cost split by phase and the cost of a tracked run (upcall).
# Usage: perf/bench_pipeline.sh [--rounds N] [--seconds S] [--flows N]
# PIPELINE_BENCH=path runs that build of the example instead of building one (for the
# profile-guided build: PIPELINE_BENCH=target/pgo/release/examples/pipeline_bench).
# Writes perf/results/pipeline-<date>.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${PIPELINE_BENCH:-}
if [ -z "$bench" ]; then
  cargo build --release --example pipeline_bench >&2
  bench=./target/release/examples/pipeline_bench
fi
out="perf/results/pipeline-$(date +%Y-%m-%d-%H%M%S).md"
{
  echo "# Pipeline-only rate ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(git rev-parse --short HEAD))"
  echo
  echo "Command: \`perf/bench_pipeline.sh $*\`. No DPDK, no cache: the interpreter alone,"
  echo "pinned to the last core; entries from perf/entries/*.txt; 64-byte UDP packets,"
  echo "every one forwarded. Cycles are TSC cycles per packet (medians over rounds)."
  echo "Binary: \`$bench\`."
  echo
  "$bench" "$@"
} | tee "$out"
echo "saved $out" >&2
