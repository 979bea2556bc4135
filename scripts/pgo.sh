#!/usr/bin/env bash
# A profile-guided (PGO) release build of sluiced, sluicectl and the pipeline_bench
# example, in target/pgo/release/.
#   scripts/pgo.sh [--train demo|all] [--test]
# 1. An instrumented build (target/pgo-gen) of sluiced and pipeline_bench.
# 2. Training runs that write profiles:
#    - demo: `sluiced --demo --no-huge`, the embedded default (L2 learning + routing
#      program, 64 hosts: worker loop, EMC/dpcls hits, upcalls, digests);
#    - all (the default): the demo, then one short round of pipeline_bench on
#      simple_router and fabric from the shared P4 corpus (SLUICE_P4_CORPUS, default
#      ../shared/p4; skipped with a warning where it is absent). That round includes
#      the flow setup benchmark, so a build trained on it is measured on what it
#      was trained on: `--train demo` is the check (README, "Profile-guided build").
# 3. llvm-profdata merges them; the release build is redone with -Cprofile-use.
# 4. With --test: the fastpath crate's tests (among them the differential tests,
#    cached == uncached) compiled the same way, profile and all, and run.
# Needs llvm-profdata matching rustc's LLVM: rustup's llvm-tools component (added
# here if rustup is present). Takes ~10 minutes on 2 cores (two release builds).
set -euo pipefail
cd "$(dirname "$0")/.."
train=all
test=0
while [ $# -gt 0 ]; do
  case $1 in
    --train) train=${2:?--train demo|all}; shift 2 ;;
    --test) test=1; shift ;;
    *) echo "usage: scripts/pgo.sh [--train demo|all] [--test]" >&2; exit 2 ;;
  esac
done
case $train in demo|all) ;; *) echo "--train demo|all, not $train" >&2; exit 2 ;; esac

host=$(rustc -vV | sed -n 's/^host: //p')
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
  command -v rustup >/dev/null || { echo "needs llvm-profdata of rustc's LLVM ($profdata): rustup component add llvm-tools" >&2; exit 1; }
  rustup component add llvm-tools >&2
fi

gen=$PWD/target/pgo-gen
raw=$gen/profraw
rm -rf "$raw" target/pgo/*.profdata
mkdir -p "$raw" target/pgo
# --config appends to the rustflags of .cargo/config.toml (target-cpu) rather than
# replacing them, as RUSTFLAGS would.
echo "pgo: instrumented build (target/pgo-gen)" >&2
CARGO_TARGET_DIR=$gen cargo build --release --bin sluiced --example pipeline_bench \
  --config "build.rustflags=[\"-Cprofile-generate=$raw\"]" >&2

echo "pgo: training: sluiced --demo --no-huge" >&2
LLVM_PROFILE_FILE="$raw/sluiced-%p-%m.profraw" "$gen/release/sluiced" --demo --no-huge >"$gen/demo.log" 2>&1 ||
  { cat "$gen/demo.log" >&2; echo "pgo: the training demo failed" >&2; exit 1; }
grep -E '^demo:' "$gen/demo.log" >&2 || true
if [ "$train" = all ]; then
  corpus=${SLUICE_P4_CORPUS:-$PWD/../shared/p4}
  if [ -f "$corpus/simple_router/simple_router.json" ]; then
    echo "pgo: training: pipeline_bench --rounds 1 --seconds 0.2 (corpus $corpus)" >&2
    SLUICE_P4_CORPUS=$corpus LLVM_PROFILE_FILE="$raw/bench-%p-%m.profraw" \
      "$gen/release/examples/pipeline_bench" --rounds 1 --seconds 0.2 >"$gen/bench.log" 2>&1 ||
      { cat "$gen/bench.log" >&2; echo "pgo: the training benchmark failed" >&2; exit 1; }
  else
    echo "pgo: WARNING: no P4 corpus at $corpus: trained on the demo only" >&2
    train=demo
  fi
fi
"$profdata" merge -o target/pgo/merged.profdata "$raw"
# Named by its content: cargo rebuilds when the flag (the path) changes, not when the
# file behind it does.
data=$PWD/target/pgo/sluice-$train-$(sha256sum target/pgo/merged.profdata | cut -c1-12).profdata
mv target/pgo/merged.profdata "$data"

echo "pgo: optimized build with $data (target/pgo)" >&2
CARGO_TARGET_DIR=$PWD/target/pgo cargo build --release --bin sluiced --bin sluicectl --example pipeline_bench \
  --config "build.rustflags=[\"-Cprofile-use=$data\"]" >&2
echo "pgo: built target/pgo/release/{sluiced,sluicectl,examples/pipeline_bench}, trained on: $train" >&2
if [ "$test" = 1 ]; then
  echo "pgo: the fastpath tests, built with the same profile" >&2
  CARGO_TARGET_DIR=$PWD/target/pgo cargo test --release -p sluice-fastpath \
    --config "build.rustflags=[\"-Cprofile-use=$data\"]"
fi
