#!/usr/bin/env bash
# bench_xconnect.sh — sluiced vs dpdk-testpmd (io mode), cross-connecting the same devices
# (net_pcap infinite_rx -> net_null sink) with the same traffic, interleaved A B A B.
# A benchmark, not a test: it prints a table and writes perf/results/xconnect-<date>.md.
# See perf/README.md for what is measured and why.
set -euo pipefail

PERF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$PERF_DIR/.." && pwd)
GEN="$PERF_DIR/gen_pcap.py"
PARSE="$PERF_DIR/xconnect_parse.py"
SLUICED=${SLUICED:-$REPO_DIR/target/release/sluiced}
TESTPMD=${TESTPMD:-dpdk-testpmd}

ROUNDS=3
PROFILES="1 1024 65536"
MEASURE_S=5
WARMUP_S=2
ONLY=both
WORKDIR=/tmp/sluice-perf
RESULTS_DIR="$PERF_DIR/results"
MEM=auto
MAIN_CORE=0
FWD_CORE=1
FRAME_SIZE=60
MIN_PACKETS=1024
WORKING_MBUFS=32768
RETRIES=1
CONTENDED_PCT=2
TESTPMD_CYCLES=0
KEEP_HUGE=0
INTERVAL=1
START_TIMEOUT=180

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

die() { echo "bench_xconnect: error: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

while (($#)); do
  case "$1" in
    --profiles) PROFILES=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) MEASURE_S=$2; shift 2 ;;
    --warmup) WARMUP_S=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --size) FRAME_SIZE=$2; shift 2 ;;
    --min-packets) MIN_PACKETS=$2; shift 2 ;;
    --mem) MEM=$2; shift 2 ;;
    --keep-huge) KEEP_HUGE=1; shift ;;
    --main-core) MAIN_CORE=$2; shift 2 ;;
    --fwd-core) FWD_CORE=$2; shift 2 ;;
    --retries) RETRIES=$2; shift 2 ;;
    --contended-pct) CONTENDED_PCT=$2; shift 2 ;;
    --testpmd-cycles) TESTPMD_CYCLES=1; shift ;;
    --interval) INTERVAL=$2; shift 2 ;;
    --workdir) WORKDIR=$2; shift 2 ;;
    --results) RESULTS_DIR=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

isint() { [[ $1 =~ ^[0-9]+$ ]]; }
isnum() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; }
case "$ONLY" in both|testpmd|sluiced) ;; *) die "--only must be testpmd or sluiced" ;; esac
case "$MEM" in auto|huge|nohuge) ;; *) die "--mem must be auto, huge or nohuge" ;; esac
for v in ROUNDS MIN_PACKETS FRAME_SIZE RETRIES MAIN_CORE FWD_CORE; do
  isint "${!v}" || die "$v must be a non-negative integer (got '${!v}')"
done
for v in MEASURE_S WARMUP_S CONTENDED_PCT INTERVAL; do
  isnum "${!v}" || die "$v must be a number (got '${!v}')"
done
((ROUNDS >= 1)) || die "--rounds must be >= 1"
for f in $PROFILES; do isint "$f" && ((f >= 1)) || die "bad profile '$f' (flow counts)"; done
[[ -n ${PROFILES// /} ]] || die "--profiles is empty"
NCPU=$(nproc)
((MAIN_CORE != FWD_CORE && MAIN_CORE < NCPU && FWD_CORE < NCPU)) ||
  die "need two distinct cores < nproc ($NCPU): main $MAIN_CORE, forwarding $FWD_CORE"
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
CHILD_PID=""          # the DPDK process currently running (one at a time)
TP_FD=""              # write end of testpmd's command FIFO
PREFIXES=()           # EAL file prefixes used, for run-directory cleanup
HUGE_ORIG_NR=""       # nr_hugepages before we changed it
HUGE_MOUNTED_BY_US=0

stop_child() {  # stop_child PID [grace seconds]: SIGINT, then SIGKILL after the grace time
  local pid=$1 grace=${2:-10} i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -INT "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

clean_prefix() {
  local p=$1 d m
  for d in /var/run/dpdk /run/dpdk /tmp/dpdk "${XDG_RUNTIME_DIR:-/nonexistent}/dpdk"; do
    [[ -e $d/$p ]] && rm -rf -- "${d:?}/$p"
  done
  # Hugepage backing files exist only without --in-memory, but be thorough.
  while read -r m; do
    rm -f -- "$m/${p}map_"* 2>/dev/null || true
  done < <(awk '$3 == "hugetlbfs" {print $2}' /proc/mounts)
}

cleanup() {
  local rc=$?
  set +e
  if [[ -n $TP_FD ]]; then exec {TP_FD}>&-; TP_FD=""; fi
  if [[ -n $CHILD_PID ]]; then stop_child "$CHILD_PID" 5; CHILD_PID=""; fi
  local p
  for p in "${PREFIXES[@]}"; do clean_prefix "$p"; done
  if [[ -n $HUGE_ORIG_NR && $KEEP_HUGE == 0 ]]; then
    echo "$HUGE_ORIG_NR" >/proc/sys/vm/nr_hugepages 2>/dev/null
    log "restored vm.nr_hugepages=$HUGE_ORIG_NR (use --keep-huge to keep them)"
  fi
  if [[ $HUGE_MOUNTED_BY_US == 1 && $KEEP_HUGE == 0 ]]; then
    umount /dev/hugepages 2>/dev/null
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap '' PIPE   # a dead testpmd must make our write fail, not kill the script

# ------------------------------------------------------------------------------ helpers ------
# This script and everything it forks (python, grep, sleep) stay on the main core, so that the
# harness never competes with the forwarding thread; DPDK processes get both cores back.
taskset -p -c "$MAIN_CORE" $$ >/dev/null || die "cannot pin the harness to core $MAIN_CORE"
# (Start them as `taskset ... cmd &`, never through a shell function: $! must be the DPDK
# process itself, for /proc/<pid>/task and for signals.)
now() { echo "$EPOCHREALTIME"; }
fcalc() { python3 -c "import sys; print($1)"; }
mem_mb_for() {  # EAL memory for a pool of $1 mbufs: ~2.5 KiB/mbuf (2176 data room + headers)
  echo $(( ((($1 * 2560) >> 20) + 320 + 63) / 64 * 64 ))
}

# The forwarding thread: the task of PID that has used the most CPU (a busy-polling lcore).
fwd_tid() {
  local pid=$1 best="" bestt=-1 t f rest a
  for f in /proc/"$pid"/task/*/stat; do
    [[ -r $f ]] || continue
    rest=$(<"$f") 2>/dev/null || continue
    rest=${rest##*) }
    # fields after "comm)": state(3) ... utime(14) stime(15) -> positions 12 and 13 here
    read -r -a a <<<"$rest"
    t=$((a[11] + a[12]))
    if ((t > bestt)); then bestt=$t; best=${f%/stat}; best=${best##*/}; fi
  done
  echo "$best"
}
rq_wait_ns() { local x; read -r _ x _ <"/proc/$1/task/$2/schedstat" 2>/dev/null && echo "$x" || echo 0; }
steal_ticks() { awk -v c="cpu$FWD_CORE" '$1 == c {print $9}' /proc/stat; }
CLK_TCK=$(getconf CLK_TCK)

# Sets W_RQ_PCT, W_STEAL_PCT for a window; call win_begin PID at the start, win_end at the end.
win_begin() {
  W_PID=$1; W_TID=$(fwd_tid "$1"); W_T0=$(now)
  W_RQ0=$(rq_wait_ns "$W_PID" "$W_TID"); W_ST0=$(steal_ticks)
}
win_end() {  # sample now (cheap), compute later with win_calc
  W_T1=$(now); W_RQ1=$(rq_wait_ns "$W_PID" "$W_TID"); W_ST1=$(steal_ticks)
}
win_calc() {
  W_RQ_PCT=$(fcalc "'%.2f' % (($W_RQ1 - $W_RQ0) / 1e9 / ($W_T1 - $W_T0) * 100)")
  W_STEAL_PCT=$(fcalc "'%.2f' % (($W_ST1 - $W_ST0) / $CLK_TCK / ($W_T1 - $W_T0) * 100)")
}
flags_for() {  # flags_for RQ_PCT STEAL_PCT -> C/S letters
  fcalc "('C' if $1 > $CONTENDED_PCT else '') + ('S' if $2 > $CONTENDED_PCT else '')"
}

now_us() { echo "${EPOCHREALTIME/./}"; }  # integer microseconds, no fork
sec_us() { awk -v s="$1" 'BEGIN {printf "%d", s * 1000000}'; }
sleep_until_us() {  # sleep_until_us EPOCH_MICROSECONDS
  local d=$(($1 - ${EPOCHREALTIME/./}))
  ((d > 0)) && sleep "$(printf '%d.%06d' $((d / 1000000)) $((d % 1000000)))"
  return 0
}

# ---------------------------------------------------------------------------- memory mode ---
huge_free_mb() { awk '/^HugePages_Free:/ {f=$2} /^Hugepagesize:/ {s=$2} END {print int(f*s/1024)}' /proc/meminfo; }
huge_mounted() { awk '$3 == "hugetlbfs" {found=1} END {exit !found}' /proc/mounts; }

MAX_PKTS=0
for f in $PROFILES; do p=$((f > MIN_PACKETS ? f : MIN_PACKETS)); ((p > MAX_PKTS)) && MAX_PKTS=$p; done
NEED_MB=$(mem_mb_for $((MAX_PKTS + WORKING_MBUFS)))

choose_mem_mode() {
  if [[ $MEM == nohuge ]]; then MODE=nohuge; return; fi
  if huge_mounted && (($(huge_free_mb) >= NEED_MB)); then MODE=huge; return; fi
  if ((EUID == 0)); then
    local pg_kb total free want
    pg_kb=$(awk '/^Hugepagesize:/ {print $2}' /proc/meminfo)
    total=$(awk '/^HugePages_Total:/ {print $2}' /proc/meminfo)
    free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
    want=$((total - free + (NEED_MB * 1024 / pg_kb) + 64))
    ((want < 1024)) && want=1024
    if ((want > total)); then
      HUGE_ORIG_NR=$(cat /proc/sys/vm/nr_hugepages)
      echo "$want" >/proc/sys/vm/nr_hugepages 2>/dev/null || true
      log "reserved hugepages: vm.nr_hugepages $HUGE_ORIG_NR -> $(cat /proc/sys/vm/nr_hugepages)"
    fi
    if ! huge_mounted; then
      mkdir -p /dev/hugepages
      if mount -t hugetlbfs none /dev/hugepages 2>/dev/null; then HUGE_MOUNTED_BY_US=1; fi
    fi
    if huge_mounted && (($(huge_free_mb) >= NEED_MB)); then MODE=huge; return; fi
  fi
  [[ $MEM == huge ]] && die "hugepages requested but unusable (need ${NEED_MB} MB free in a mounted hugetlbfs)"
  log "hugepages unavailable: both sides run with --no-huge"
  MODE=nohuge
}
choose_mem_mode

# ------------------------------------------------------------------------------ setup -------
STAMP=$(date +%Y-%m-%d-%H%M%S)
LOGDIR="$WORKDIR/run-$STAMP"
mkdir -p "$WORKDIR" "$LOGDIR" "$RESULTS_DIR"
CSV="$LOGDIR/runs.csv"
echo "profile,packets,round,side,attempt,accepted,ok,mpps,window_s,cpp,rq_wait_pct,steal_pct,flags,note" >"$CSV"

# How busy is the machine before we start? (cores' worth of non-idle time over one second)
cpu_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
b0=$(cpu_ticks); sleep 1; b1=$(cpu_ticks)
LOAD=$(awk -v d=$((b1 - b0)) -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", d / hz}')
log "memory mode: $MODE; profiles: $PROFILES; rounds: $ROUNDS; window ${MEASURE_S}s after ${WARMUP_S}s warm-up; logs: $LOGDIR"
if awk -v l="$LOAD" 'BEGIN {exit !(l > 0.2)}'; then
  log "warning: other processes keep $LOAD cores busy: expect contended (flagged, retried) runs"
fi

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
  R_OK=0 R_MPPS="" R_WIN="" R_CPP="-" R_RQ="" R_STEAL="" R_FLAGS="" R_NOTE=""
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
  stop_child "$CHILD_PID" 5; CHILD_PID=""
  rm -f "$fifo"; clean_prefix "$pfx"
  [[ -n $R_NOTE ]] && return 0
  local -A P=()
  local k v
  while IFS='=' read -r k v; do P[$k]=$v; done < <(python3 "$PARSE" testpmd "$logf" --tx-port 1)
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
  local extra='"--no-pci", "--no-telemetry"' huge=true
  # sluiced adds the memory-mode flags itself: --in-memory with hugepages,
  # --no-huge --no-shconf without (the same flags testpmd gets above).
  [[ $MODE == huge ]] || huge=false
  cat >"$1" <<EOF
# written by perf/bench_xconnect.sh
[eal]
hugepages = $huge
memory_mb = $3
file_prefix = "$2"
extra_args = [$extra]

[mempool]
mbufs = $4

[workers]
cores = [$FWD_CORE]
control_core = $MAIN_CORE

[[port]]
name = "in"
devargs = "net_pcap0,rx_pcap=$5,infinite_rx=1"
rx_queues = 1

[[port]]
name = "out"
devargs = "net_null0,no-rx=1"
rx_queues = 1

[[xconnect]]
from = "in"
to = "out"
EOF
}

sl_forwarding() {  # true once a stats line shows port "out" with tx_packets > 0
  awk '/^stats / && / port=out( |$)/ && / tx_packets=[1-9]/ {found=1; exit} END {exit !found}' \
    "$1" 2>/dev/null
}

run_sluiced() {  # run_sluiced PCAP PACKETS TAG -> R_* results
  local pcap=$1 pkts=$2 tag=$3 mbufs mem pfx cfg out err js dur rc=0
  mbufs=$((pkts + WORKING_MBUFS)); mem=$(mem_mb_for "$mbufs")
  pfx="sluice-perf-sl-$$-$tag"; cfg="$LOGDIR/sluiced-$tag.toml"
  out="$LOGDIR/sluiced-$tag.out"; err="$LOGDIR/sluiced-$tag.err"; js="$LOGDIR/sluiced-$tag.json"
  PREFIXES+=("$pfx")
  write_sluiced_config "$cfg" "$pfx" "$mem" "$mbufs" "$pcap"
  # --duration counts from forwarding start: warm-up + window + a few samples of slack.
  dur=$(fcalc "int($WARMUP_S + $MEASURE_S + 3 * $INTERVAL + 1.999)")
  R_OK=0 R_MPPS="" R_WIN="" R_CPP="-" R_RQ="" R_STEAL="" R_FLAGS="" R_NOTE=""
  local cmd=("$SLUICED" --config "$cfg" --duration "$dur" --stats-interval "$INTERVAL" --stats-json "$js")
  echo "${cmd[*]}" >"$out.cmd"
  taskset -c "$MAIN_CORE,$FWD_CORE" "${cmd[@]}" >"$out" 2>"$err" &
  CHILD_PID=$!
  local deadline=$(( ${EPOCHREALTIME/./} + START_TIMEOUT * 1000000 ))
  while ! sl_forwarding "$out"; do
    if ! kill -0 "$CHILD_PID" 2>/dev/null || ((${EPOCHREALTIME/./} >= deadline)); then
      R_NOTE="no forwarding seen in stats lines: $(tail -n 3 "$err" "$out" 2>/dev/null | tr '\n,' '  ')"
      break
    fi
    sleep 0.1
  done
  if [[ -z $R_NOTE ]]; then
    sleep "$WARMUP_S"
    win_begin "$CHILD_PID"; sleep "$MEASURE_S"; win_end; win_calc
    R_RQ=$W_RQ_PCT; R_STEAL=$W_STEAL_PCT
    # Let --duration end the run; stop it ourselves if it overstays.
    local i
    for ((i = 0; i < (dur + 60) * 10; i++)); do kill -0 "$CHILD_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  if kill -0 "$CHILD_PID" 2>/dev/null; then stop_child "$CHILD_PID" 10; rc=124
  else wait "$CHILD_PID" || rc=$?; fi
  CHILD_PID=""
  clean_prefix "$pfx"
  [[ -n $R_NOTE ]] && return 0
  local -A P=()
  local k v
  while IFS='=' read -r k v; do P[$k]=$v; done < <(python3 "$PARSE" sluiced "$out" "$js" \
      --port out --warmup "$WARMUP_S" --seconds "$MEASURE_S")
  if [[ ${P[ok]:-0} == 1 ]]; then
    R_OK=1; R_MPPS=${P[mpps]}; R_WIN=${P[window_s]}; R_CPP=${P[cpp]:--}
    [[ ${P[window_source]} != samples ]] && R_NOTE+="window from JSON totals (start-up included) "
  else
    R_NOTE+="parse: ${P[error]:-unknown} "
  fi
  [[ -n ${P[json_error]:-} ]] && R_NOTE+="stats-json: ${P[json_error]} "
  ((rc != 0)) && R_NOTE+="exit status $rc "
  if ((${P[rx_missed]:-0} + ${P[rx_errors]:-0} + ${P[tx_errors]:-0} + ${P[drops]:-0} > 0)); then
    R_FLAGS+="X"
    R_NOTE+="rx_missed=${P[rx_missed]} rx_errors=${P[rx_errors]} tx_errors=${P[tx_errors]} drops=${P[drops]} "
  fi
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
        retry=0
        [[ $R_FLAGS == *[CS]* ]] && ((att <= RETRIES)) && retry=1
        log "  $side round $r: ${R_MPPS:-FAILED} Mpps window=${R_WIN:--}s cyc/pkt=$R_CPP rq_wait=${R_RQ:--}% steal=${R_STEAL:--}% ${R_FLAGS:+flags=$R_FLAGS }${R_NOTE:+($R_NOTE)}$( ((retry)) && echo ' -> retrying')"
        note=${R_NOTE//,/;}; note=${note//\"/\'}
        echo "$flows,$pkts,$r,$side,$att,$((1 - retry)),$R_OK,${R_MPPS:--},${R_WIN:--},${R_CPP:--},${R_RQ:--},${R_STEAL:--},${R_FLAGS:--},\"${note% }\"" >>"$CSV"
        ((retry)) || break
      done
    done
  done
done

# ------------------------------------------------------------------------------ report ------
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
DPDK_VER=$(dpkg-query -W -f='${Version}' dpdk 2>/dev/null || pkg-config --modversion libdpdk 2>/dev/null || echo unknown)
GIT_REV=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo none)
MD="$RESULTS_DIR/xconnect-$STAMP.md"
META=(--meta "date=$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
      --meta "machine=$NCPU cores, $CPU_MODEL, kernel $(uname -r); other load at start: $LOAD cores busy"
      --meta "DPDK=$DPDK_VER (testpmd $(command -v "$TESTPMD" || echo -))"
      --meta "sluiced=$([[ $ONLY != testpmd ]] && echo "$SLUICED" || echo 'not run') (repository $GIT_REV)"
      --meta "devices=net_pcap0 rx_pcap=<profile>.pcap infinite_rx=1 -> net_null0 no-rx=1; ${FRAME_SIZE}-byte frames (+FCS on the wire)"
      --meta "memory=$MODE; mbufs = packets in pcap + $WORKING_MBUFS; cores: main $MAIN_CORE forwarding $FWD_CORE"
      --meta "method=$ROUNDS interleaved rounds (testpmd then sluiced), ${MEASURE_S}s window after ${WARMUP_S}s warm-up, flagged runs retried up to $RETRIES times (flag threshold $CONTENDED_PCT%)"
      --meta "testpmd=io forwarding, -i via FIFO, --no-flush-rx$( ((TESTPMD_CYCLES)) && echo ', --record-core-cycles' || true)")
echo
python3 "$PARSE" report "$CSV" --md "$MD" "${META[@]}"
echo
log "results: $MD (per-run CSV and logs: $LOGDIR)"
# Exit 2 when a kept run failed (the table still has the rest).
if awk -F, 'NR > 1 && $6 == 1 && $7 != 1 {bad = 1} END {exit !bad}' "$CSV"; then
  log "some runs failed: see the notes in $CSV and the logs beside it"
  exit 2
fi
