#!/usr/bin/env bash
# bench_xconnect.sh — sluiced vs dpdk-testpmd (io mode), cross-connecting the same devices
# (net_pcap infinite_rx -> net_null sink) with the same traffic, interleaved A B A B.
# A benchmark, not a test: it prints a table and writes perf/results/xconnect-<date>.md.
# See perf/README.md for what is measured and why.
set -euo pipefail

PERF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$PERF_DIR/.." && pwd)
BENCH=bench_xconnect
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$PERF_DIR/lib.sh"
GEN="$PERF_DIR/gen_pcap.py"
PARSE="$PERF_DIR/xconnect_parse.py"
SLUICED=${SLUICED:-$REPO_DIR/target/release/sluiced}
TESTPMD=${TESTPMD:-dpdk-testpmd}

# Defaults of the options both benchmarks have (ROUNDS=3, ...): perf/lib.sh.
PROFILES="1 1024 65536"
TESTPMD_CYCLES=0

usage() {
  cat <<EOF
Usage: perf/bench_xconnect.sh [options]

Compares dpdk-testpmd --forward-mode=io and sluiced cross-connecting the same devices:
  rx  net_pcap0,rx_pcap=<profile pcap>,infinite_rx=1   (port "in",  testpmd port 0)
  tx  net_null0,no-rx=1                                (port "out", testpmd port 1)
one forwarding core (--fwd-core) and one main/control core (--main-core). For every traffic
profile the two programs run interleaved, testpmd then sluiced, --rounds times. Each run's rate
is the tx rate of the sink port over a --seconds window that starts --warmup seconds after
forwarding started (pcap preload and start-up excluded).

Options:
  --profiles "N ..."   flow counts, one pcap per profile (default "$PROFILES")
  --rounds R           interleaved rounds per profile (default $ROUNDS)
  --seconds S          measurement window per run (default $MEASURE_S)
  --warmup W           seconds between forwarding start and the window (default $WARMUP_S)
  --only testpmd|sluiced   run one side only (default: both)
  --size BYTES         frame length in the pcap, FCS excluded (default $FRAME_SIZE = 64 on wire)
  --min-packets M      packets per pcap = max(flows, M) (default $MIN_PACKETS)
  --mem auto|huge|nohuge   memory mode for both sides (default auto: hugepages when usable,
                       set up as root if missing; --no-huge otherwise)
  --keep-huge          leave hugepages this script reserved/mounted in place at exit
  --main-core C / --fwd-core C   cores (default $MAIN_CORE / $FWD_CORE)
  --retries N          re-run a flagged (contended or stolen) run up to N times (default $RETRIES)
  --contended-pct P    flag a run when the forwarding thread's run-queue wait or the core's
                       steal time exceeds P% of the window (default $CONTENDED_PCT)
  --testpmd-cycles     run testpmd with --record-core-cycles (adds rdtsc per burst: slower)
  --interval SECS      sluiced --stats-interval (default $INTERVAL)
  --workdir DIR        pcaps, configs and logs (default $WORKDIR)
  --results DIR        where the Markdown table goes (default perf/results)
  -h, --help           this text

Environment: SLUICED=path to sluiced (default target/release/sluiced of this repository),
TESTPMD=path to dpdk-testpmd (default from PATH).
EOF
}

while (($#)); do
  case "$1" in
    --testpmd-cycles) TESTPMD_CYCLES=1; shift ;;
    *) parse_common_option "$@"; shift "$OPT_SHIFT" ;;  # the rest, -h and errors: lib.sh
  esac
done

case "$ONLY" in both|testpmd|sluiced) ;; *) die "--only must be testpmd or sluiced" ;; esac
# shellcheck disable=SC2119  # (no integer options of its own to check)
check_common_options
for f in $PROFILES; do isint "$f" && ((f >= 1)) || die "bad profile '$f' (flow counts)"; done
[[ -n ${PROFILES// /} ]] || die "--profiles is empty"
check_cores
command -v python3 >/dev/null || die "python3 not found"
command -v stdbuf >/dev/null || die "stdbuf (coreutils) not found"
command -v taskset >/dev/null || die "taskset (util-linux) not found"
if [[ $ONLY != sluiced ]]; then
  command -v "$TESTPMD" >/dev/null || die "dpdk-testpmd not found (apt-get install dpdk), or set TESTPMD="
fi
if [[ $ONLY != testpmd && ! -x $SLUICED ]]; then
  die "sluiced binary not found or not executable at '$SLUICED'.
  Build it (cargo build --release) or point SLUICED=/path/to/sluiced at it,
  or benchmark testpmd alone with --only testpmd."
fi

# ------------------------------------------------------------------------- cleanup / traps --
TP_FD=""              # write end of testpmd's command FIFO

bench_cleanup() {  # (the exit trap's first part: perf/lib.sh's cleanup)
  if [[ -n $TP_FD ]]; then exec {TP_FD}>&-; TP_FD=""; fi
  if [[ -n $CHILD_PID ]]; then stop_pid "$CHILD_PID" INT 5; CHILD_PID=""; fi
}
install_traps
trap '' PIPE   # a dead testpmd must make our write fail, not kill the script

# ------------------------------------------------------------------------------ helpers ------
# This script and everything it forks (python, grep, sleep) stay on the main core, so that the
# harness never competes with the forwarding thread; DPDK processes get both cores back.
taskset -p -c "$MAIN_CORE" $$ >/dev/null || die "cannot pin the harness to core $MAIN_CORE"
# (Start them as `taskset ... cmd &`, never through a shell function: $! must be the DPDK
# process itself, for /proc/<pid>/task and for signals.)

# ---------------------------------------------------------------------------- memory mode ---
NEED_MB=$(profiles_mem_mb)
choose_mem_mode 0 "hugepages requested but unusable (need ${NEED_MB} MB free in a mounted hugetlbfs)" \
  "hugepages unavailable: both sides run with --no-huge"

# ------------------------------------------------------------------------------ setup -------
STAMP=$(date +%Y-%m-%d-%H%M%S)
LOGDIR="$WORKDIR/run-$STAMP"
mkdir -p "$WORKDIR" "$LOGDIR" "$RESULTS_DIR"
CSV="$LOGDIR/runs.csv"
echo "profile,packets,round,side,attempt,accepted,ok,mpps,window_s,cpp,rq_wait_pct,steal_pct,flags,note" >"$CSV"

measure_load
log "memory mode: $MODE; profiles: $PROFILES; rounds: $ROUNDS; window ${MEASURE_S}s after ${WARMUP_S}s warm-up; logs: $LOGDIR"
warn_if_loaded

eal_common() {  # eal_common PREFIX MEM_MB PCAP -> EAL array
  EAL=(-l "$MAIN_CORE,$FWD_CORE" --main-lcore "$MAIN_CORE" --no-pci --no-telemetry
       --file-prefix="$1" -m "$2")
  if [[ $MODE == huge ]]; then EAL+=(--in-memory); else EAL+=(--no-huge --no-shconf); fi
  EAL+=(--vdev "net_pcap0,rx_pcap=$3,infinite_rx=1" --vdev "net_null0,no-rx=1")
}

# ------------------------------------------------------------------------------ testpmd -----
# Interactive testpmd driven through a FIFO: wait for the first prompt (ports started, pcap
# preloaded), `start`, warm up, `show port stats all` (baseline), wait S, `show port stats all`:
# the second show's "Tx-pps (since last show)" of port 1 is testpmd's TSC-timed window rate.
tp_prompts() { grep -o 'testpmd> ' "$1" 2>/dev/null | wc -l; }
tp_wait_prompt() {  # tp_wait_prompt LOG N TIMEOUT_SECONDS
  local deadline=$(( ${EPOCHREALTIME/./} + $3 * 1000000 ))
  while (($(tp_prompts "$1") < $2)); do
    kill -0 "$CHILD_PID" 2>/dev/null || return 1
    ((${EPOCHREALTIME/./} < deadline)) || return 1
    sleep 0.05
  done
}
tp_send() { printf '%s\n' "$1" >&"$TP_FD"; }

run_testpmd() {  # run_testpmd PCAP PACKETS TAG -> R_* results
  local pcap=$1 pkts=$2 tag=$3 mbufs mem pfx logf fifo tw
  mbufs=$((pkts + WORKING_MBUFS)); mem=$(mem_mb_for "$mbufs")
  pfx="sluice-perf-tp-$$-$tag"; logf="$LOGDIR/testpmd-$tag.log"; fifo="$LOGDIR/testpmd-$tag.fifo"
  PREFIXES+=("$pfx")
  eal_common "$pfx" "$mem" "$pcap"
  local app=(-i --forward-mode=io --nb-cores=1 --rxq=1 --txq=1 --total-num-mbufs="$mbufs"
             --no-flush-rx)
  ((TESTPMD_CYCLES)) && app+=(--record-core-cycles)
  reset_results
  echo "$TESTPMD ${EAL[*]} -- ${app[*]}" >"$logf.cmd"
  rm -f "$fifo"; mkfifo "$fifo"
  taskset -c "$MAIN_CORE,$FWD_CORE" stdbuf -oL -eL "$TESTPMD" "${EAL[@]}" -- "${app[@]}" <"$fifo" >"$logf" 2>&1 &
  CHILD_PID=$!
  exec {TP_FD}>"$fifo"   # blocks until testpmd's stdin redirection opens the FIFO
  if ! tp_wait_prompt "$logf" 1 "$START_TIMEOUT"; then
    R_NOTE="testpmd did not reach its prompt: $(tail -n 3 "$logf" | tr '\n,' '  ')"
  else
    tp_send start; tp_wait_prompt "$logf" 2 30 || true
    sleep "$WARMUP_S"
    win_begin "$CHILD_PID"
    tp_send "show port stats all"; tw=$(now_us); tp_wait_prompt "$logf" 3 30 || true
    sleep_until_us $((tw + $(sec_us "$MEASURE_S")))
    win_end
    tp_send "show port stats all"; tw=$(($(now_us) - tw)); win_calc
    tp_wait_prompt "$logf" 4 30 || true
    tp_send stop; tp_wait_prompt "$logf" 5 30 || true
    tp_send quit
  fi
  exec {TP_FD}>&-; TP_FD=""
  local i
  for ((i = 0; i < 300; i++)); do kill -0 "$CHILD_PID" 2>/dev/null || break; sleep 0.1; done
  stop_pid "$CHILD_PID" INT 5; CHILD_PID=""
  rm -f "$fifo"; clean_prefix "$pfx"
  [[ -n $R_NOTE ]] && return 0
  read_kv < <(python3 "$PARSE" testpmd "$logf" --tx-port 1)
  if [[ ${P[ok]:-0} == 1 ]]; then
    R_OK=1; R_MPPS=${P[mpps]}; R_WIN=$(fcalc "'%.3f' % ($tw / 1e6)"); R_CPP=${P[cpp]}
    ((${P[nombuf]:-0} > 0)) && R_FLAGS+="N" && R_NOTE="rx_nombuf=${P[nombuf]}"
  else
    R_NOTE="parse: ${P[error]:-unknown}"
  fi
  R_RQ=$W_RQ_PCT; R_STEAL=$W_STEAL_PCT; R_FLAGS+=$(flags_for "$R_RQ" "$R_STEAL")
}

# ------------------------------------------------------------------------------ sluiced -----
write_sluiced_config() {  # CFG PREFIX MEM_MB MBUFS PCAP
  {
    sluiced_config "$2" "$3" "$4" "net_pcap0,rx_pcap=$5,infinite_rx=1" "net_null0,no-rx=1"
    cat <<EOF

[[xconnect]]
from = "in"
to = "out"
EOF
  } >"$1"
}

run_sluiced() {  # run_sluiced PCAP PACKETS TAG -> R_* results
  local pcap=$1 pkts=$2 tag=$3 mbufs mem pfx cfg out err js
  mbufs=$((pkts + WORKING_MBUFS)); mem=$(mem_mb_for "$mbufs")
  pfx="sluice-perf-sl-$$-$tag"; cfg="$LOGDIR/sluiced-$tag.toml"
  out="$LOGDIR/sluiced-$tag.out"; err="$LOGDIR/sluiced-$tag.err"; js="$LOGDIR/sluiced-$tag.json"
  PREFIXES+=("$pfx")
  write_sluiced_config "$cfg" "$pfx" "$mem" "$mbufs" "$pcap"
  reset_results
  sl_run "$cfg" "$out" "$err" "$js"
  clean_prefix "$pfx"
  [[ -n $R_NOTE ]] && return 0
  read_kv < <(python3 "$PARSE" sluiced "$out" "$js" \
      --port out --warmup "$WARMUP_S" --seconds "$MEASURE_S")
  sl_results drops
  R_FLAGS+=$(flags_for "$R_RQ" "$R_STEAL")
}

# ------------------------------------------------------------------------------ main --------
SIDES=()
[[ $ONLY != sluiced ]] && SIDES+=(testpmd)
[[ $ONLY != testpmd ]] && SIDES+=(sluiced)

for flows in $PROFILES; do
  pkts=$((flows > MIN_PACKETS ? flows : MIN_PACKETS))
  pcap="$WORKDIR/flows-$flows-s$FRAME_SIZE.pcap"
  log "profile $flows flows: generating $pkts packets of $FRAME_SIZE bytes -> $pcap"
  python3 "$GEN" --flows "$flows" --packets "$pkts" --size "$FRAME_SIZE" -o "$pcap"
  for ((r = 1; r <= ROUNDS; r++)); do
    for side in "${SIDES[@]}"; do
      for ((att = 1; att <= RETRIES + 1; att++)); do
        "run_$side" "$pcap" "$pkts" "f$flows-r$r-a$att"
        run_done "$att"
        log "  $side round $r: ${R_MPPS:-FAILED} Mpps window=${R_WIN:--}s cyc/pkt=$R_CPP $RUN_STATUS"
        echo "$flows,$pkts,$r,$side,$att,$RUN_CSV" >>"$CSV"
        ((RETRY)) || break
      done
    done
  done
done

# ------------------------------------------------------------------------------ report ------
DPDK_VER=$(dpkg-query -W -f='${Version}' dpdk 2>/dev/null || pkg-config --modversion libdpdk 2>/dev/null || echo unknown)
GIT_REV=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo none)
MD="$RESULTS_DIR/xconnect-$STAMP.md"
base_meta
META+=(--meta "DPDK=$DPDK_VER (testpmd $(command -v "$TESTPMD" || echo -))"
      --meta "sluiced=$([[ $ONLY != testpmd ]] && echo "$SLUICED" || echo 'not run') (repository $GIT_REV)"
      --meta "devices=net_pcap0 rx_pcap=<profile>.pcap infinite_rx=1 -> net_null0 no-rx=1; ${FRAME_SIZE}-byte frames (+FCS on the wire)"
      --meta "memory=$MODE; mbufs = packets in pcap + $WORKING_MBUFS; cores: main $MAIN_CORE forwarding $FWD_CORE"
      --meta "method=$ROUNDS interleaved rounds (testpmd then sluiced), ${MEASURE_S}s window after ${WARMUP_S}s warm-up, flagged runs retried up to $RETRIES times (flag threshold $CONTENDED_PCT%)"
      --meta "testpmd=io forwarding, -i via FIFO, --no-flush-rx$( ((TESTPMD_CYCLES)) && echo ', --record-core-cycles' || true)")
finish_report "$MD"  # exit 2 when a kept run failed (the table still has the rest)
