# shellcheck shell=bash
# perf/lib.sh — what bench_xconnect.sh and bench_cache.sh share: defaults and parsing of their
# common options, logging, process and EAL run-directory cleanup (exit trap), hugepage setup,
# contention measurement (run-queue wait, steal), sluiced runs (config head, start, stats
# window, results), the run loop's bookkeeping and the report's tail.
# Sourced, not run: `source "$PERF_DIR/lib.sh"` right after PERF_DIR and REPO_DIR are set, with
# BENCH set to the script's name (messages, generated configs). Everything the functions read
# that they do not set (SLUICED, PARSE, CSV, LOGDIR, MODE, ...) is the sourcing script's.
# See perf/README.md for what is measured and why.

# ---------------------------------------------------------------------- common defaults ----
# The scripts' own defaults (PROFILES, ...) follow their `source` line; these are the options
# parse_common_option takes.
# shellcheck disable=SC2034  # used by the sourcing scripts
{
ROUNDS=3
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
KEEP_HUGE=0
INTERVAL=1
START_TIMEOUT=180
}

die() { echo "$BENCH: error: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# parse_common_option "$@": takes an option both scripts have (with its value) into its
# variable and sets OPT_SHIFT to the number of words used; -h/--help prints the script's usage
# and exits, any other word is an error.
parse_common_option() {
  OPT_SHIFT=2
  case "$1" in
    --profiles) PROFILES=$2 ;;
    --rounds) ROUNDS=$2 ;;
    --seconds) MEASURE_S=$2 ;;
    --warmup) WARMUP_S=$2 ;;
    --only) ONLY=$2 ;;
    --size) FRAME_SIZE=$2 ;;
    --min-packets) MIN_PACKETS=$2 ;;
    --mem) MEM=$2 ;;
    --keep-huge) KEEP_HUGE=1; OPT_SHIFT=1 ;;
    --main-core) MAIN_CORE=$2 ;;
    --fwd-core) FWD_CORE=$2 ;;
    --retries) RETRIES=$2 ;;
    --contended-pct) CONTENDED_PCT=$2 ;;
    --interval) INTERVAL=$2 ;;
    --workdir) WORKDIR=$2 ;;
    --results) RESULTS_DIR=$2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
}

isint() { [[ $1 =~ ^[0-9]+$ ]]; }
isnum() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; }

# check_common_options [EXTRA_INTEGER_VARIABLE ...]: --mem, the numeric options, --rounds.
check_common_options() {
  local v
  case "$MEM" in auto|huge|nohuge) ;; *) die "--mem must be auto, huge or nohuge" ;; esac
  for v in ROUNDS MIN_PACKETS FRAME_SIZE RETRIES MAIN_CORE FWD_CORE "$@"; do
    isint "${!v}" || die "$v must be a non-negative integer (got '${!v}')"
  done
  for v in MEASURE_S WARMUP_S CONTENDED_PCT INTERVAL; do
    isnum "${!v}" || die "$v must be a number (got '${!v}')"
  done
  ((ROUNDS >= 1)) || die "--rounds must be >= 1"
}

check_cores() {  # sets NCPU; main and forwarding core must be distinct cores of this machine
  NCPU=$(nproc)
  ((MAIN_CORE != FWD_CORE && MAIN_CORE < NCPU && FWD_CORE < NCPU)) ||
    die "need two distinct cores < nproc ($NCPU): main $MAIN_CORE, forwarding $FWD_CORE"
}

# ------------------------------------------------------------------------- cleanup / traps --
CHILD_PID=""          # the DPDK process currently running (one at a time)
PREFIXES=()           # EAL file prefixes used, for run-directory cleanup
HUGE_ORIG_NR=""       # nr_hugepages before we changed it
HUGE_MOUNTED_BY_US=0

stop_pid() {  # stop_pid PID SIGNAL GRACE_SECONDS: signal, wait, then SIGKILL
  local pid=$1 sig=$2 grace=$3 i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
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

# The exit trap: the script's own bench_cleanup (its processes), then the EAL run directories
# and the hugepages this script reserved or mounted.
cleanup() {
  local rc=$?
  set +e
  bench_cleanup
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
install_traps() {
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# ------------------------------------------------------------------------------ helpers ------
now() { echo "$EPOCHREALTIME"; }
fcalc() { python3 -c "import sys; print($1)"; }
mem_mb_for() {  # EAL memory for a pool of $1 mbufs: ~2.5 KiB/mbuf (2176 data room + headers) + 320 MB
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

# Reads `key=value` lines of the parser into the associative array P, and the same pairs
# (minus the rate itself) into STATS, one "k=v k=v" string for the CSV.
read_kv() {
  local k v
  P=() STATS=""
  while IFS='=' read -r k v; do
    P[$k]=$v
    case "$k" in ok|mpps|window_s|error|json_error|window_source) ;;
      *) v=${v//[ ,\"]/_}; STATS+="$k=$v " ;;
    esac
  done
  STATS=${STATS% }
}
declare -A P=()

# ---------------------------------------------------------------------------- memory mode ---
huge_free_mb() { awk '/^HugePages_Free:/ {f=$2} /^Hugepagesize:/ {s=$2} END {print int(f*s/1024)}' /proc/meminfo; }
huge_mounted() { awk '$3 == "hugetlbfs" {found=1} END {exit !found}' /proc/mounts; }

profiles_mem_mb() {  # EAL memory for the largest preloaded profile (fifo:N ones preload nothing)
  local p n max=0
  for p in $PROFILES; do
    [[ $p == fifo:* ]] && continue
    n=$((p > MIN_PACKETS ? p : MIN_PACKETS)); ((n > max)) && max=$n
  done
  mem_mb_for $((max + WORKING_MBUFS))
}

# choose_mem_mode REQUIRED UNUSABLE_MESSAGE NOHUGE_MESSAGE: sets MODE to huge when NEED_MB MB
# of hugepages are (or, as root, can be made) free in a mounted hugetlbfs, else to nohuge with
# NOHUGE_MESSAGE logged; dies with UNUSABLE_MESSAGE instead when --mem huge or REQUIRED is 1.
choose_mem_mode() {
  local required=$1 unusable=$2 nohuge=$3
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
  if [[ $MEM == huge ]] || ((required)); then die "$unusable"; fi
  log "$nohuge"
  MODE=nohuge
}

# ------------------------------------------------------------------------------ setup -------
# How busy is the machine before we start? (cores' worth of non-idle time over one second)
cpu_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
measure_load() {  # sets LOAD
  local b0 b1
  b0=$(cpu_ticks); sleep 1; b1=$(cpu_ticks)
  LOAD=$(awk -v d=$((b1 - b0)) -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", d / hz}')
}
warn_if_loaded() {
  if awk -v l="$LOAD" 'BEGIN {exit !(l > 0.2)}'; then
    log "warning: other processes keep $LOAD cores busy: expect contended (flagged, retried) runs"
  fi
}

# ------------------------------------------------------------------------------ sluiced -----
# sluiced_config PREFIX MEM_MB MBUFS IN_DEVARGS OUT_DEVARGS [IN_P4_PORT OUT_P4_PORT [IN_EXTRA
# OUT_EXTRA]]: prints a sluiced configuration's [eal], [mempool], [workers] and [[port]]
# sections (IN_EXTRA / OUT_EXTRA: more lines of each port's table, e.g. `vlan = 10`); the
# caller adds what the ports do.
sluiced_config() {
  local huge=true in_extra="" out_extra=""
  # sluiced adds the memory-mode flags itself: --in-memory with hugepages,
  # --no-huge --no-shconf without (the same flags testpmd gets in bench_xconnect.sh).
  [[ $MODE == huge ]] || huge=false
  [[ -n ${6:-} ]] && in_extra=$'\n'"p4_port = $6"
  [[ -n ${7:-} ]] && out_extra=$'\n'"p4_port = $7"
  [[ -n ${8:-} ]] && in_extra+=$'\n'"$8"
  [[ -n ${9:-} ]] && out_extra+=$'\n'"$9"
  cat <<EOF
# written by perf/$BENCH.sh
[eal]
hugepages = $huge
memory_mb = $2
file_prefix = "$1"
extra_args = ["--no-pci", "--no-telemetry"]

[mempool]
mbufs = $3

[workers]
cores = [$FWD_CORE]
control_core = $MAIN_CORE

# Benchmarks measure forwarding; the operator surface is off.
[management]
enabled = false

[metrics]
enabled = false

[[port]]
name = "in"
devargs = "$4"
rx_queues = 1$in_extra

[[port]]
name = "out"
devargs = "$5"
rx_queues = 1$out_extra
EOF
}

sl_forwarding() {  # true once a stats line shows port "out" with tx_packets > 0
  awk '/^stats / && / port=out( |$)/ && / tx_packets=[1-9]/ {found=1; exit} END {exit !found}' \
    "$1" 2>/dev/null
}

reset_results() {  # the R_* results of one run
  R_OK=0 R_MPPS="" R_WIN="" R_CPP="-" R_RQ="" R_STEAL="" R_FLAGS="" R_NOTE="" R_STATS=""
}

# sl_run CONFIG OUT ERR JSON: runs sluiced on CONFIG (stdout to OUT, stderr to ERR, stats JSON
# to JSON), waits for forwarding (R_NOTE when none is seen), measures the contention over the
# window (R_RQ, R_STEAL) and lets --duration end the run. Sets SL_RC to its exit status (124
# when it had to be stopped).
sl_run() {
  local cfg=$1 out=$2 err=$3 js=$4 dur
  SL_RC=0
  # --duration counts from forwarding start: warm-up + window + a few samples of slack.
  dur=$(fcalc "int($WARMUP_S + $MEASURE_S + 3 * $INTERVAL + 1.999)")
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
  if kill -0 "$CHILD_PID" 2>/dev/null; then stop_pid "$CHILD_PID" INT 10; SL_RC=124
  else wait "$CHILD_PID" || SL_RC=$?; fi
  CHILD_PID=""
}

# sl_results DROPS_KEY: R_* from the parser's `sluiced` output in P (after read_kv) and SL_RC;
# flag X counts rx_missed, rx_errors, tx_errors and P[DROPS_KEY].
sl_results() {
  local dk=$1
  if [[ ${P[ok]:-0} == 1 ]]; then
    R_OK=1; R_MPPS=${P[mpps]}; R_WIN=${P[window_s]}; R_CPP=${P[cpp]:--}
    [[ ${P[window_source]} != samples ]] && R_NOTE+="window from JSON totals (start-up included) "
  else
    R_NOTE+="parse: ${P[error]:-unknown} "
  fi
  [[ -n ${P[json_error]:-} ]] && R_NOTE+="stats-json: ${P[json_error]} "
  ((SL_RC != 0)) && R_NOTE+="exit status $SL_RC "
  if ((${P[rx_missed]:-0} + ${P[rx_errors]:-0} + ${P[tx_errors]:-0} + ${P[$dk]:-0} > 0)); then
    R_FLAGS+="X"
    R_NOTE+="rx_missed=${P[rx_missed]} rx_errors=${P[rx_errors]} tx_errors=${P[tx_errors]} drops=${P[$dk]} "
  fi
  return 0
}

# ------------------------------------------------------------------------------ main --------
# After a run: RETRY=1 when it was flagged contended (C) or stolen (S) and attempt $1 may be
# retried; RUN_STATUS = the tail of its log line; RUN_CSV = its result columns of the CSV.
run_done() {
  local note
  RETRY=0
  [[ $R_FLAGS == *[CS]* ]] && (($1 <= RETRIES)) && RETRY=1
  RUN_STATUS="rq_wait=${R_RQ:--}% steal=${R_STEAL:--}% ${R_FLAGS:+flags=$R_FLAGS }${R_NOTE:+($R_NOTE)}"
  ((RETRY)) && RUN_STATUS+=" -> retrying"
  note=${R_NOTE//,/;}; note=${note//\"/\'}
  RUN_CSV="$((1 - RETRY)),$R_OK,${R_MPPS:--},${R_WIN:--},${R_CPP:--},${R_RQ:--},${R_STEAL:--},${R_FLAGS:--},\"${note% }\""
}

# ------------------------------------------------------------------------------ report ------
base_meta() {  # META = the report's date and machine lines; the script adds its own
  local cpu_model
  cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
  META=(--meta "date=$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
        --meta "machine=$NCPU cores, $cpu_model, kernel $(uname -r); other load at start: $LOAD cores busy")
}

# finish_report MD: the parser's report of CSV (stdout and MD, with META); exits 2 when a kept
# (accepted) run failed, the table still showing the rest.
finish_report() {
  local md=$1
  echo
  python3 "$PARSE" report "$CSV" --md "$md" "${META[@]}"
  echo
  log "results: $md (per-run CSV and logs: $LOGDIR)"
  if awk -F, 'NR == 1 {for (i = 1; i <= NF; i++) col[$i] = i; next}
              $col["accepted"] == 1 && $col["ok"] != 1 {bad = 1} END {exit !bad}' "$CSV"; then
    log "some runs failed: see the notes in $CSV and the logs beside it"
    exit 2
  fi
}
