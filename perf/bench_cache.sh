#!/usr/bin/env bash
# bench_cache.sh — sluiced running a P4 pipeline vs OVS-DPDK (Debian's openvswitch-switch-dpdk)
# on the same devices (net_pcap infinite_rx -> net_null sink) with the same traffic and
# equivalent forwarding behaviour, interleaved A B A B: L2/port forwarding (onos_basic) and
# IPv4 routing (simple_router with ~100 generated prefixes), and Sluice's default program (a
# learning bridge vs OVS's NORMAL action; an ECMP router vs an OpenFlow select group), over
# flow-count profiles that exercise the flow caches (EMC, SMC/megaflows, upcalls).
# A benchmark, not a test: it prints tables and writes perf/results/cache-<date>-<time>.md.
# See perf/README.md for what is measured and why.
set -euo pipefail

PERF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$PERF_DIR/.." && pwd)
BENCH=bench_cache
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$PERF_DIR/lib.sh"
GEN="$PERF_DIR/gen_pcap.py"
GEN_ROUTES="$PERF_DIR/gen_routes.py"
FEEDER="$PERF_DIR/pcap_fifo.py"
PARSE="$PERF_DIR/cache_parse.py"
SLUICED=${SLUICED:-$REPO_DIR/target/release/sluiced}
SLUICECTL=${SLUICECTL:-$REPO_DIR/target/release/sluicectl}
P4_DIR=${P4_DIR:-$REPO_DIR/../shared/p4}
OVS_VSWITCHD=${OVS_VSWITCHD:-/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk}
OVS_SCHEMA=${OVS_SCHEMA:-/usr/share/openvswitch/vswitch.ovsschema}

# Defaults of the options both benchmarks have (ROUNDS=3, ...): perf/lib.sh.
WORKLOADS="l2 l3"
PROFILES="1 1024 65536 200000"
OVS_MODES="emc smc"
SL_MODES="cache"
L2_RULES="inport dlmatch"
ROUTES=100
SRC_MACS=256
BRIDGE_OUT=access
OVS_SOCKET_MEM=1000
OVS_SETTLE=150
INSTALL=1
VERIFY_ON=1

usage() {
  cat <<EOF
Usage: perf/bench_cache.sh [options]

Compares sluiced running a P4 program with OVS-DPDK (openvswitch-switch-dpdk) forwarding the
same traffic with equivalent rules, on the same devices:
  rx  net_pcap0,rx_pcap=<profile pcap>,infinite_rx=1   (sluiced port "in" = P4 port 1,
                                                         OVS OpenFlow port 1)
  tx  net_null0,no-rx=1                                (port "out" = P4 port 2 / OpenFlow 2)
one forwarding core (--fwd-core: sluiced's worker, OVS's pmd thread) and one main/control
core (--main-core). Per workload and profile the sides run interleaved (sluiced, then each
OVS variant), --rounds times; each run's rate is the sink's tx rate over a --seconds window
that opens --warmup seconds after forwarding started.

Workloads (--workloads):
  l2  sluiced: onos_basic (basic.p4), perf/entries/basic_l2.txt (table0: ingress port 1 ->
      set_egress_port(2), everything else wildcarded).
      OVS "inport":  in_port=1,actions=output:2   (OVS's simple-match path: no EMC/dpcls)
      OVS "dlmatch": in_port=1,dl_dst=02:00:00:00:00:02,dl_type=0x0800,actions=output:2
                     (EMC/SMC + dpcls), once per --ovs-modes
  l3  sluiced: simple_router with --routes generated prefixes (/16, /24, /32; perf/gen_routes.py
      into the run directory): LPM -> next hop -> dst MAC, src MAC per egress port, TTL - 1.
      OVS "routes": priority=100+len,ip,nw_dst=P/len,actions=mod_dl_src:..,mod_dl_dst:..,
                    dec_ttl,output:2 (same prefixes), once per --ovs-modes
      Traffic: destinations spread over the same prefixes (gen_pcap.py --dst-nets).
  bridge  sluiced: its default program (no [pipeline]) with the built-in app: ports "in" and
      "out" access ports of VLAN 10, the destination MAC 02:00:00:00:00:02 a static [[mac]]
      behind "out", source MACs learned by the app (digests of the first packets).
      OVS "normal": actions=NORMAL, both ports access ports of VLAN 10 (tag=10), the
                    destination MAC in the FDB (ovs-appctl fdb/add), sources learned.
      Traffic: the flows spread over K = min(flows, --src-macs) source MACs.
  router  sluiced: the default program: router interfaces on VLAN 10 ("in", MAC = the
      traffic's destination MAC) and VLAN 20 ("out", untagged), two neighbors behind "out",
      --routes prefixes (as l3's) each via both neighbors (ECMP: a CRC-16 of the 5-tuple).
      OVS "ecmp": group 1 type=select selection_method=hash fields(ip_src,ip_dst,nw_proto,
                  udp_src,udp_dst), a bucket per neighbor (mod_dl_src, mod_dl_dst, dec_ttl,
                  output:2); priority=100+len,in_port=1,dl_dst=<router MAC>,ip,nw_dst=P/len,
                  actions=group:1 (OpenFlow 1.5), once per --ovs-modes
      Traffic: as l3's (destinations over the same prefixes).

Options:
  --workloads "W ..."    which workloads: l2, l3, bridge, router (default "$WORKLOADS")
  --profiles "N ..."     flow counts (default "$PROFILES"). N: a preloaded pcap of
                         max(N, --min-packets) packets (OVS takes at most ~200k: its mempool is
                         capped at 262144 mbufs). fifo:N: the pcap is fed endlessly through a
                         FIFO by perf/pcap_fifo.py (rx_pcap=FIFO, no preload), for both sides:
                         the way to run 1M flows (fifo:1000000); its rx path caps near 10 Mpps,
                         so compare FIFO runs only with FIFO runs.
  --rounds R             interleaved rounds (default $ROUNDS)
  --seconds S            measurement window per run (default $MEASURE_S)
  --warmup W             seconds between forwarding start and the window (default $WARMUP_S)
  --only sluiced|ovs     run one side only (default: both)
  --ovs-modes "M ..."    OVS cache modes (default "$OVS_MODES"): emc (default EMC,
                         emc-insert-inv-prob=100, SMC off), smc (EMC off, SMC on), emcsmc,
                         none (both off). The table reports OVS's best per profile.
  --sluiced-modes "M ..."  sluiced variants (default "$SL_MODES"): cache (sluiced's [cache]
                         defaults: the side every ratio is taken against; always run), nocache
                         ([cache] enabled = false: every packet through the interpreter),
                         noemc (emc_insert_inv_prob = 0: megaflow/dpcls only)
  --l2-rules "R ..."     OVS rule variants of l2 (default "$L2_RULES")
  --routes N             l3 and router prefixes (default $ROUTES)
  --src-macs K           bridge: at most K source MACs (hosts) per profile, K = min(flows, K)
                         (default $SRC_MACS)
  --bridge-out access|trunk  bridge: "out" an access port of VLAN 10 (default), or a trunk
                         carrying it tagged (every frame gets a VLAN tag pushed; OVS: the
                         port with trunks=10 instead of tag=10)
  --size BYTES           frame length in the pcap, FCS excluded (default $FRAME_SIZE)
  --min-packets M        packets per pcap = max(flows, M) (default $MIN_PACKETS)
  --mem auto|huge|nohuge memory mode (default auto; OVS needs hugepages: nohuge only with
                         --only sluiced)
  --ovs-socket-mem MB    OVS dpdk-socket-mem (default $OVS_SOCKET_MEM)
  --ovs-settle S         after the warm-up, an OVS run waits (at most S seconds, default
                         $OVS_SETTLE; 0: not at all) until its upcalls fall to 0.1 % of the
                         packets (1 s samples): OVS's dynamic datapath flow limit starts at
                         10000 and grows by ~2000/s, so one megaflow per 5-tuple (router) takes
                         ~30 s at 65536 flows and ~100 s at 200000 to set up
  --keep-huge            leave hugepages this script reserved/mounted in place at exit
  --main-core C / --fwd-core C   cores (default $MAIN_CORE / $FWD_CORE)
  --retries N            re-run a contended run up to N times (default $RETRIES)
  --contended-pct P      contention threshold, % of the window (default $CONTENDED_PCT)
  --interval SECS        sluiced --stats-interval (default $INTERVAL)
  --no-install           do not apt-get install openvswitch-switch-dpdk when it is missing
  --no-verify            skip the behaviour check (each workload's sides forward the same small
                         pcap into a tx pcap once; their distinct output frames must be equal)
  --workdir DIR          pcaps, generated files and logs (default $WORKDIR)
  --results DIR          where the Markdown goes (default perf/results)
  -h, --help             this text

Environment: SLUICED, SLUICECTL (entries check; skipped when missing), P4_DIR (default
../shared/p4 of this repository), OVS_VSWITCHD (default $OVS_VSWITCHD).
EOF
}

while (($#)); do
  case "$1" in
    --workloads) WORKLOADS=$2; shift 2 ;;
    --ovs-modes) OVS_MODES=$2; shift 2 ;;
    --sluiced-modes) SL_MODES=$2; shift 2 ;;
    --l2-rules) L2_RULES=$2; shift 2 ;;
    --routes) ROUTES=$2; shift 2 ;;
    --src-macs) SRC_MACS=$2; shift 2 ;;
    --bridge-out) BRIDGE_OUT=$2; shift 2 ;;
    --ovs-socket-mem) OVS_SOCKET_MEM=$2; shift 2 ;;
    --ovs-settle) OVS_SETTLE=$2; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --no-verify) VERIFY_ON=0; shift ;;
    *) parse_common_option "$@"; shift "$OPT_SHIFT" ;;  # the rest, -h and errors: lib.sh
  esac
done

case "$ONLY" in both|sluiced|ovs) ;; *) die "--only must be sluiced or ovs" ;; esac
check_common_options ROUTES SRC_MACS OVS_SOCKET_MEM OVS_SETTLE
((SRC_MACS >= 1)) || die "--src-macs must be >= 1"
case "$BRIDGE_OUT" in access|trunk) ;; *) die "--bridge-out must be access or trunk" ;; esac
[[ -n ${PROFILES// /} ]] || die "--profiles is empty"
for p in $PROFILES; do
  f=${p#fifo:}
  if ! isint "$f" || ((f < 1)); then die "bad profile '$p' (N or fifo:N, N >= 1 flows)"; fi
done
[[ -n ${WORKLOADS// /} ]] || die "--workloads is empty"
for w in $WORKLOADS; do
  case "$w" in l2|l3|bridge|router) ;; *) die "unknown workload '$w' (l2, l3, bridge, router)" ;; esac
done
for m in $OVS_MODES; do
  case "$m" in emc|smc|emcsmc|none) ;; *) die "unknown OVS mode '$m' (emc, smc, emcsmc, none)" ;; esac
done
for r in $L2_RULES; do case "$r" in inport|dlmatch) ;; *) die "unknown l2 rule set '$r' (inport, dlmatch)" ;; esac; done
for m in $SL_MODES; do
  case "$m" in cache|nocache|noemc) ;; *) die "unknown sluiced mode '$m' (cache, nocache, noemc)" ;; esac
done
check_cores
((MAIN_CORE < 63 && FWD_CORE < 63)) || die "cores must be < 63 (OVS masks are built as integers)"
for c in python3 stdbuf taskset awk; do command -v "$c" >/dev/null || die "$c not found"; done
[[ $ONLY != sluiced && $MEM == nohuge ]] && die "OVS-DPDK needs hugepages: --mem nohuge only with --only sluiced"
if [[ $ONLY != ovs ]]; then
  [[ -x $SLUICED ]] || die "sluiced binary not found or not executable at '$SLUICED'.
  Build it (cargo build --release) or point SLUICED=/path/to/sluiced at it, or run --only ovs."
fi
P4_BASIC_JSON="$P4_DIR/onos_basic/basic.json"
P4_BASIC_INFO="$P4_DIR/onos_basic/basic.p4info.txt"
P4_ROUTER_JSON="$P4_DIR/simple_router/simple_router.json"
P4_ROUTER_INFO="$P4_DIR/simple_router/simple_router.p4info.txt"
L2_ENTRIES="$PERF_DIR/entries/basic_l2.txt"
# l2 and l3 run programs of the shared P4 corpus; bridge and router the default program
# (embedded in sluiced).
if [[ $ONLY != ovs && " $WORKLOADS " == *" l"[23]" "* ]]; then
  for f in "$P4_BASIC_JSON" "$P4_BASIC_INFO" "$P4_ROUTER_JSON" "$P4_ROUTER_INFO" "$L2_ENTRIES"; do
    [[ -r $f ]] || die "missing $f (P4_DIR=$P4_DIR: the shared P4 corpus)"
  done
fi
IN_PORT=1 OUT_PORT=2  # P4 port numbers = OpenFlow port numbers of the pcap port and the sink
L2_DST_MAC=02:00:00:00:00:02  # gen_pcap.py's destination MAC
# bridge and router: VLANs, the router's MACs (gen_routes.py's defaults; the ingress router
# MAC is the traffic's destination MAC) and its two neighbors' MACs.
BRIDGE_VLAN=10 ROUTER_IN_VLAN=10 ROUTER_OUT_VLAN=20
ECMP_NEIGHBOR_MACS=02:00:00:00:14:02,02:00:00:00:14:03

# ------------------------------------------------------------------------- cleanup / traps --
FEED_PID=""           # the FIFO feeder currently running
OVSDB_PID=""          # our ovsdb-server and ovs-vswitchd, while an OVS run is on
OVS_PID=""
OD=""                 # that run's private OVS directory
BR="slcb$$"           # our bridge (a tap device of this name exists while OVS runs)
POLICY_RC_BY_US=0
# (CHILD_PID, the sluiced process currently running, PREFIXES and the hugepage state: lib.sh)

# Our OVS only: ovs-vsctl/-ofctl/-appctl on the private database, bridge and control sockets.
vsctl() { OVS_RUNDIR=$OD OVS_DBDIR=$OD OVS_LOGDIR=$OD OVS_SYSCONFDIR=$OD \
  ovs-vsctl --db="unix:$OD/db.sock" --timeout="$START_TIMEOUT" "$@"; }
ofctl() { OVS_RUNDIR=$OD ovs-ofctl "$1" "unix:$OD/$BR.mgmt" "${@:2}"; }
ofctl15() { OVS_RUNDIR=$OD ovs-ofctl -O OpenFlow15 "$1" "unix:$OD/$BR.mgmt" "${@:2}"; }  # groups
appctl() { ovs-appctl --timeout=30 -t "$OD/ovs-vswitchd.ctl" "$@"; }

stop_feed() { stop_pid "$FEED_PID" TERM 3; FEED_PID=""; }

stop_ovs() {  # the bridge's tap and the netdev datapath go with del-br and exit --cleanup
  if [[ -n $OVS_PID ]] && kill -0 "$OVS_PID" 2>/dev/null; then
    OVS_RUNDIR=$OD timeout 20 ovs-vsctl --db="unix:$OD/db.sock" --timeout=10 --if-exists \
      del-br "$BR" >/dev/null 2>&1 || true
    timeout 20 ovs-appctl --timeout=10 -t "$OD/ovs-vswitchd.ctl" exit --cleanup >/dev/null 2>&1 || true
    stop_pid "$OVS_PID" TERM 10
  fi
  OVS_PID=""
  stop_feed
  stop_pid "$OVSDB_PID" TERM 5; OVSDB_PID=""
  # A vswitchd that died or was killed leaves its taps behind: remove ours (the start checked
  # that no other userspace datapath existed).
  local ifc
  for ifc in "$BR" ovs-netdev; do
    ip link show "$ifc" >/dev/null 2>&1 && ip link delete "$ifc" 2>/dev/null
  done
  return 0
}

bench_cleanup() {  # (the exit trap's first part: perf/lib.sh's cleanup)
  if [[ -n $CHILD_PID ]]; then stop_pid "$CHILD_PID" INT 5; CHILD_PID=""; fi
  stop_ovs
  stop_feed
  if ((POLICY_RC_BY_US)); then rm -f /usr/sbin/policy-rc.d; fi
}
install_traps

# ------------------------------------------------------------------------------ helpers ------
# The harness and everything it forks (python, ovs-vsctl, the FIFO feeder) stay on the main
# core; sluiced and ovs-vswitchd get both cores and put their forwarding thread on --fwd-core.
taskset -p -c "$MAIN_CORE" $$ >/dev/null || die "cannot pin the harness to core $MAIN_CORE"

# ------------------------------------------------------------------------- OVS installation --
ensure_ovs() {
  local c missing=0
  for c in ovsdb-tool ovsdb-server ovs-vsctl ovs-ofctl ovs-appctl; do
    command -v "$c" >/dev/null || missing=1
  done
  [[ -x $OVS_VSWITCHD ]] || missing=1
  if ((missing)); then
    ((INSTALL)) || die "OVS-DPDK is not installed (apt-get install openvswitch-switch-dpdk), or drop --no-install"
    ((EUID == 0)) || die "OVS-DPDK is not installed and installing it needs root"
    log "installing openvswitch-switch-dpdk (its services are kept from starting)"
    # Keep the package's init scripts from starting a system-wide OVS (cores, hugepages,
    # /etc/openvswitch): a policy-rc.d that denies, only if there is none already.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      printf '#!/bin/sh\n# temporary, perf/bench_cache.sh\nexit 101\n' >/usr/sbin/policy-rc.d
      chmod 755 /usr/sbin/policy-rc.d; POLICY_RC_BY_US=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y openvswitch-switch-dpdk >&2 ||
      { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y openvswitch-switch-dpdk >&2; } ||
      die "apt-get install openvswitch-switch-dpdk failed"
    if ((POLICY_RC_BY_US)); then rm -f /usr/sbin/policy-rc.d; POLICY_RC_BY_US=0; fi
    [[ -x $OVS_VSWITCHD ]] || die "$OVS_VSWITCHD missing after the install"
  fi
  # The script runs the DPDK build by its path whatever the alternative says; the alternative is
  # set as the package documents it, so that `ovs-vswitchd` means the DPDK build here too.
  if ((EUID == 0)) && [[ $(readlink -f /usr/sbin/ovs-vswitchd 2>/dev/null) != "$OVS_VSWITCHD" ]] &&
     update-alternatives --list ovs-vswitchd 2>/dev/null | grep -qx "$OVS_VSWITCHD"; then
    update-alternatives --set ovs-vswitchd "$OVS_VSWITCHD" >&2 || log "warning: update-alternatives failed"
  fi
  if ip link show ovs-netdev >/dev/null 2>&1; then
    die "a userspace OVS datapath (tap 'ovs-netdev') already exists: another ovs-vswitchd with a
  netdev bridge is running; stop it first (this script never touches it)"
  fi
  pgrep -x ovs-vswitchd >/dev/null 2>&1 &&
    log "warning: a system ovs-vswitchd is running: it may compete for cores and hugepages"
  return 0
}
[[ $ONLY != sluiced ]] && ensure_ovs

# ---------------------------------------------------------------------------- memory mode ---
NEED_MB=$(profiles_mem_mb)
[[ $ONLY != sluiced ]] && ((OVS_SOCKET_MEM + 128 > NEED_MB)) && NEED_MB=$((OVS_SOCKET_MEM + 128))
HUGE_REQUIRED=0; [[ $ONLY != sluiced ]] && HUGE_REQUIRED=1  # OVS-DPDK needs hugepages
choose_mem_mode "$HUGE_REQUIRED" \
  "hugepages unusable (need ${NEED_MB} MB free in a mounted hugetlbfs; OVS-DPDK needs them)" \
  "hugepages unavailable: sluiced runs with --no-huge"

# ------------------------------------------------------------------------------ setup -------
STAMP=$(date +%Y-%m-%d-%H%M%S)
LOGDIR="$WORKDIR/cache-$STAMP"
GENDIR="$LOGDIR/gen"
mkdir -p "$WORKDIR" "$LOGDIR" "$GENDIR" "$RESULTS_DIR"
CSV="$LOGDIR/runs.csv"
echo "workload,profile,packets,feed,round,side,attempt,accepted,ok,mpps,window_s,cpp,rq_wait_pct,steal_pct,flags,note,stats" >"$CSV"

# Generated rule sets: l3 routes three ways (entries, OpenFlow, prefixes for the traffic), the
# same prefixes as the ECMP router (sluiced's default-program sections, an OpenFlow select
# group and its rules), l2 OpenFlow variants, the bridge's NORMAL rule. Nothing generated is
# committed.
python3 "$GEN_ROUTES" --routes "$ROUTES" --in-port "$IN_PORT" --out-port "$OUT_PORT" \
  --entries "$GENDIR/routes.txt" --ovs-flows "$GENDIR/routes.of" --nets "$GENDIR/routes.nets" \
  --router-mac "$L2_DST_MAC" --in-vlan "$ROUTER_IN_VLAN" --out-vlan "$ROUTER_OUT_VLAN" \
  --ecmp-neighbors 2 --out-port-name out --toml "$GENDIR/router.toml" \
  --ovs-ecmp-groups "$GENDIR/ecmp.groups" --ovs-ecmp-flows "$GENDIR/ecmp.of"
echo "in_port=$IN_PORT,actions=output:$OUT_PORT" >"$GENDIR/inport.of"
echo "priority=10,in_port=$IN_PORT,dl_dst=$L2_DST_MAC,dl_type=0x0800,actions=output:$OUT_PORT" >"$GENDIR/dlmatch.of"
echo "actions=NORMAL" >"$GENDIR/normal.of"

measure_load
log "memory mode: $MODE; workloads: $WORKLOADS; profiles: $PROFILES; rounds: $ROUNDS; window ${MEASURE_S}s after ${WARMUP_S}s warm-up; logs: $LOGDIR"
warn_if_loaded

program_of() {  # program_of WORKLOAD -> PJSON PINFO PENTRIES (empty: the default program)
  PJSON="" PINFO="" PENTRIES=""
  case "$1" in
    l2) PJSON=$P4_BASIC_JSON PINFO=$P4_BASIC_INFO PENTRIES=$L2_ENTRIES ;;
    l3) PJSON=$P4_ROUTER_JSON PINFO=$P4_ROUTER_INFO PENTRIES=$GENDIR/routes.txt ;;
  esac
}

# The default program's sections of a bridge or router configuration (after the ports). The
# P4Runtime server the app talks to listens on a free loopback port (no clash with another
# sluiced on 9559).
default_program_sections() {  # default_program_sections WORKLOAD
  cat <<EOF

[switch]
learning = true

[p4runtime]
address = "127.0.0.1:0"
EOF
  case "$1" in
    bridge) printf '\n[[mac]]\nvlan = %d\nmac = "%s"\nport = "out"\n' "$BRIDGE_VLAN" "$L2_DST_MAC" ;;
    router) echo; cat "$GENDIR/router.toml" ;;
  esac
}

# The bridge's "out" port: an access port of BRIDGE_VLAN, or a trunk carrying it tagged.
bridge_out_port() {
  if [[ $BRIDGE_OUT == trunk ]]; then printf 'vlan_mode = "trunk"\ntrunk_vlans = [%d]' "$BRIDGE_VLAN"
  else echo "vlan = $BRIDGE_VLAN"; fi
}
ovs_out_vlan() {  # OVS's out port options (bridge: OVS_TAG is set)
  [[ -z ${OVS_TAG:-} ]] && return
  if [[ $BRIDGE_OUT == trunk ]]; then echo "trunks=$OVS_TAG"; else echo "tag=$OVS_TAG"; fi
}

# ------------------------------------------------------------------------------ sluiced -----
write_sluiced_config() {  # CFG PREFIX MEM_MB MBUFS RX_DEVARGS WORKLOAD [TX_DEVARGS [MODE]]
  local tx_devargs=${7:-net_null0,no-rx=1} cache=""
  case "${8:-cache}" in
    nocache) cache=$'\n[cache]\nenabled = false' ;;
    noemc) cache=$'\n[cache]\nemc_insert_inv_prob = 0' ;;
  esac
  program_of "$6"
  {
    case "$6" in
      bridge)
        sluiced_config "$2" "$3" "$4" "$5" "$tx_devargs" "$IN_PORT" "$OUT_PORT" \
          "vlan = $BRIDGE_VLAN" "$(bridge_out_port)"
        default_program_sections bridge ;;
      router)
        sluiced_config "$2" "$3" "$4" "$5" "$tx_devargs" "$IN_PORT" "$OUT_PORT" \
          "vlan = $ROUTER_IN_VLAN" "vlan = $ROUTER_OUT_VLAN"
        default_program_sections router ;;
      *)
        sluiced_config "$2" "$3" "$4" "$5" "$tx_devargs" "$IN_PORT" "$OUT_PORT"
        cat <<EOF

[pipeline]
json = "$PJSON"
p4info = "$PINFO"
entries = "$PENTRIES"
EOF
        ;;
    esac
    echo "$cache"
  } >"$1"
}

if [[ $ONLY != ovs ]]; then
  for wl in $WORKLOADS; do
    program_of "$wl"
    if [[ -n $PJSON && -x $SLUICECTL ]]; then
      "$SLUICECTL" pipeline check "$PJSON" "$PINFO" --entries "$PENTRIES" >"$LOGDIR/check-$wl.txt" 2>&1 ||
        die "sluicectl pipeline check failed for $wl: $(tail -n 3 "$LOGDIR/check-$wl.txt")"
    fi
    write_sluiced_config "$LOGDIR/check-$wl.toml" "sluice-cache-check-$$" 512 8192 \
      "net_pcap0,rx_pcap=/nonexistent.pcap,infinite_rx=1" "$wl"
    taskset -c "$MAIN_CORE,$FWD_CORE" "$SLUICED" --config "$LOGDIR/check-$wl.toml" --check-config \
      >"$LOGDIR/check-config-$wl.txt" 2>&1 ||
      die "$SLUICED refuses the $wl configuration (\`unknown field pipeline\`: a build from before
  [pipeline] and p4_port, rebuild it):
$(tail -n 5 "$LOGDIR/check-config-$wl.txt")"
  done
  [[ -x $SLUICECTL ]] || log "note: no sluicectl at $SLUICECTL: entries checked by sluiced --check-config only"
fi

start_feed() {  # start_feed PCAP FIFO: the writer of a FIFO-fed profile
  rm -f "$2"; mkfifo "$2"
  python3 "$FEEDER" "$1" "$2" 2>>"$LOGDIR/feeder.log" &
  FEED_PID=$!
}

# Per-run results: R_OK R_MPPS R_WIN R_CPP R_RQ R_STEAL R_FLAGS R_NOTE R_STATS
run_sluiced() {  # run_sluiced SIDE WORKLOAD PCAP PACKETS FEED TAG  (SIDE = sluiced[-<mode>])
  local mode=${1#sluiced}; mode=${mode#-}; mode=${mode:-cache}; shift
  local wl=$1 pcap=$2 pkts=$3 feed=$4 tag=$5 mbufs mem pfx cfg out err js devargs fifo
  if [[ $feed == fifo ]]; then mbufs=$WORKING_MBUFS; else mbufs=$((pkts + WORKING_MBUFS)); fi
  mem=$(mem_mb_for "$mbufs")
  pfx="sluice-cache-sl-$$-$tag"; cfg="$LOGDIR/sluiced-$tag.toml"
  out="$LOGDIR/sluiced-$tag.out"; err="$LOGDIR/sluiced-$tag.err"; js="$LOGDIR/sluiced-$tag.json"
  PREFIXES+=("$pfx")
  if [[ $feed == fifo ]]; then
    fifo="$LOGDIR/feed-$tag.fifo"; devargs="net_pcap0,rx_pcap=$fifo"
    start_feed "$pcap" "$fifo"
  else
    devargs="net_pcap0,rx_pcap=$pcap,infinite_rx=1"
  fi
  write_sluiced_config "$cfg" "$pfx" "$mem" "$mbufs" "$devargs" "$wl" "net_null0,no-rx=1" "$mode"
  reset_results
  sl_run "$cfg" "$out" "$err" "$js"
  stop_feed
  [[ -n ${fifo:-} ]] && rm -f "$fifo"
  clean_prefix "$pfx"
  [[ -n $R_NOTE ]] && return 0
  read_kv < <(python3 "$PARSE" sluiced "$out" "$js" --port out --warmup "$WARMUP_S" --seconds "$MEASURE_S")
  R_STATS=$STATS
  sl_results other_drops
  if ((${P[p4_drops]:-0} * 1000 > ${P[rx_packets]:-0})); then
    R_FLAGS+="D"; R_NOTE+="P4 drops ${P[p4_drops]} of ${P[rx_packets]} "
  fi
  R_FLAGS+=$(flags_for "$R_RQ" "$R_STEAL")
}

# ---------------------------------------------------------------------------------- OVS -----
ovs_tx() {  # packets sent so far on the sink port (0 when unknown)
  ofctl dump-ports "$OUT_PORT" 2>/dev/null | sed -n 's/.*tx pkts=\([0-9]*\).*/\1/p' | head -n 1 | grep . || echo 0
}

# ovs_start SIDE TAG OUT_DEVARGS: a private ovsdb-server and ovs-vswitchd (DPDK), the bridge,
# the sink port and SIDE's rules; the pcap port comes after (ovs_add_in). SIDE is
# ovs-<rules>[-<mode>]: GENDIR/<rules>.of are the rules; with GENDIR/<rules>.groups, groups
# first and both in OpenFlow 1.5; rules "normal" (the bridge) makes both ports access ports of
# BRIDGE_VLAN (OVS_TAG) and puts the destination MAC into the FDB behind "out".
# Returns 1 with R_NOTE set (and everything stopped) on failure.
OVS_RULES="" OVS_TAG=""
ovs_start() {
  local side=$1 tag=$2 out_devargs=$3 rules mode emc_prob smc i fwd_mask main_mask
  rules=${side#ovs-}; rules=${rules%%-*}
  OVS_RULES=$rules OVS_TAG=""
  [[ $rules == normal ]] && OVS_TAG=$BRIDGE_VLAN
  mode=${side#ovs-"$rules"}; mode=${mode#-}; mode=${mode:-emc}
  case "$mode" in
    emc) emc_prob=100 smc=false ;; smc) emc_prob=0 smc=true ;;
    emcsmc) emc_prob=100 smc=true ;; none) emc_prob=0 smc=false ;;
  esac
  OD="$LOGDIR/ovs-$tag"
  mkdir -p "$OD"
  ovsdb-tool create "$OD/conf.db" "$OVS_SCHEMA"
  OVS_RUNDIR=$OD OVS_DBDIR=$OD OVS_LOGDIR=$OD OVS_SYSCONFDIR=$OD ovsdb-server "$OD/conf.db" \
    --remote="punix:$OD/db.sock" --pidfile="$OD/ovsdb-server.pid" \
    --unixctl="$OD/ovsdb-server.ctl" --log-file="$OD/ovsdb-server.log" --no-chdir \
    -vconsole:off >"$OD/ovsdb-server.out" 2>&1 &
  OVSDB_PID=$!
  for ((i = 0; i < 100; i++)); do [[ -S $OD/db.sock ]] && break; sleep 0.05; done
  fwd_mask=$(printf '0x%x' $((1 << FWD_CORE))); main_mask=$(printf '0x%x' $((1 << MAIN_CORE)))
  if ! { vsctl --no-wait init &&
         vsctl --no-wait set Open_vSwitch . other_config:dpdk-init=true \
           "other_config:dpdk-socket-mem=$OVS_SOCKET_MEM" \
           "other_config:dpdk-extra=--no-pci --in-memory --no-telemetry" \
           "other_config:pmd-cpu-mask=$fwd_mask" "other_config:dpdk-lcore-mask=$main_mask" \
           "other_config:emc-insert-inv-prob=$emc_prob" "other_config:smc-enable=$smc"; } \
       >"$OD/setup.log" 2>&1; then
    R_NOTE="ovsdb setup failed: $(tail -n 2 "$OD/setup.log" | tr '\n,' '  ')"
    stop_ovs; return 1
  fi
  OVS_RUNDIR=$OD OVS_DBDIR=$OD OVS_LOGDIR=$OD OVS_SYSCONFDIR=$OD \
    taskset -c "$MAIN_CORE,$FWD_CORE" "$OVS_VSWITCHD" "unix:$OD/db.sock" \
    --pidfile="$OD/ovs-vswitchd.pid" --unixctl="$OD/ovs-vswitchd.ctl" \
    --log-file="$OD/ovs-vswitchd.log" --no-chdir -vconsole:off >"$OD/ovs-vswitchd.out" 2>&1 &
  OVS_PID=$!
  OVS_DEADLINE=$(( ${EPOCHREALTIME/./} + START_TIMEOUT * 1000000 ))
  until [[ $(vsctl --no-wait get Open_vSwitch . dpdk_initialized 2>/dev/null) == true ]]; do
    if ! kill -0 "$OVS_PID" 2>/dev/null || ((${EPOCHREALTIME/./} >= OVS_DEADLINE)); then
      R_NOTE="ovs-vswitchd did not initialise DPDK: $(grep -E 'ERR|EMER|WARN' "$OD/ovs-vswitchd.log" | tail -n 2 | tr '\n,' '  ')"
      stop_ovs; return 1
    fi
    sleep 0.1
  done
  # Rules before the pcap port: traffic starts as soon as that port is added.
  if ! { vsctl add-br "$BR" -- set bridge "$BR" datapath_type=netdev fail-mode=secure \
           other-config:disable-in-band=true &&
         vsctl add-port "$BR" out $(ovs_out_vlan) -- set Interface out type=dpdk \
           "options:dpdk-devargs=$out_devargs" "ofport_request=$OUT_PORT" &&
         ovs_rules "$rules"; } >>"$OD/setup.log" 2>&1; then
    R_NOTE="OVS setup failed: $(tail -n 2 "$OD/setup.log" | tr '\n,' '  ')"
    stop_ovs; return 1
  fi
  return 0
}

ovs_rules() {  # ovs_rules RULES: the rule set (and groups, FDB entries) of ovs_start
  if [[ -r $GENDIR/$1.groups ]]; then
    ofctl15 add-groups "$GENDIR/$1.groups" && ofctl15 add-flows "$GENDIR/$1.of"
  else
    ofctl add-flows "$GENDIR/$1.of"
  fi || return 1
  # The bridge: the sink cannot teach OVS the destination MAC, so it goes into the FDB as a
  # static entry (never aged, never flooded to; ovs-appctl fdb/add, OVS >= 2.17).
  if [[ $1 == normal ]]; then appctl fdb/add "$BR" out "$BRIDGE_VLAN" "$L2_DST_MAC" || return 1; fi
}

ovs_add_in() {  # ovs_add_in RX_DEVARGS: the pcap port; traffic starts
  if ! vsctl add-port "$BR" in ${OVS_TAG:+"tag=$OVS_TAG"} -- set Interface in type=dpdk \
         "options:dpdk-devargs=$1" "ofport_request=$IN_PORT" >>"$OD/setup.log" 2>&1; then
    R_NOTE="OVS add-port in failed: $(tail -n 2 "$OD/setup.log" | tr '\n,' '  ')"
    return 1
  fi
  ofctl dump-flows >"$OD/flows.txt" 2>&1 || true
  [[ -r $GENDIR/$OVS_RULES.groups ]] && { ofctl15 dump-groups >"$OD/groups.txt" 2>&1 || true; }
  ovs_fdb_check
}

# The bridge's static FDB entry must survive the pcap port's addition (a flushed FDB would
# flood every packet): checked, and re-added (with a note in the log) if it went.
ovs_fdb_check() {
  [[ $OVS_RULES == normal ]] || return 0
  local mac=${L2_DST_MAC,,}
  appctl fdb/show "$BR" >"$OD/fdb.txt" 2>&1 || true
  if ! grep -qiE "[[:space:]]${BRIDGE_VLAN}[[:space:]]+${mac}[[:space:]]" "$OD/fdb.txt"; then
    log "note: OVS lost the static FDB entry of $mac when the pcap port came: re-added"
    appctl fdb/add "$BR" out "$BRIDGE_VLAN" "$L2_DST_MAC" >>"$OD/setup.log" 2>&1 || true
  fi
}

ovs_flows_limit() {  # "current/limit" datapath flows from upcall/show
  appctl upcall/show 2>/dev/null |
    sed -n 's/.*flows *: *(current \([0-9]*\)).*(limit \([0-9]*\)).*/\1\/\2/p' | head -n 1
}

# ovs_settle: after the warm-up, wait until OVS has set its flows up: over a 1 s sample of
# pmd-stats, upcalls (successful or failed) are at most 0.1 % of the packets received. Gives
# up after OVS_SETTLE seconds (then the window measures what OVS settled into). Sets SETTLE_S
# (seconds waited) and SETTLED (1, or 0 when the limit ran out).
ovs_settle() {
  local t0 deadline r u
  SETTLE_S=0 SETTLED=1
  ((OVS_SETTLE > 0)) || return 0
  t0=$(now_us); deadline=$((t0 + OVS_SETTLE * 1000000))
  while :; do
    appctl dpif-netdev/pmd-stats-clear >/dev/null 2>&1 || true
    sleep 1
    read -r r u < <(appctl dpif-netdev/pmd-stats-show 2>/dev/null | awk '
      /^pmd thread/ {p = 1} /^main thread/ {p = 0}
      p && /packets received:/ {r += $3}
      p && /miss with (success|failed) upcall:/ {u += $5}
      END {print r + 0, u + 0}')
    ((u * 1000 <= r)) && break
    if (($(now_us) >= deadline)); then SETTLED=0; break; fi
  done
  SETTLE_S=$((($(now_us) - t0 + 500000) / 1000000))
  ((SETTLE_S > 1 || SETTLED == 0)) &&
    log "    OVS flow setup: ${SETTLE_S}s after the warm-up, datapath flows (current/limit) $(ovs_flows_limit)$( ((SETTLED)) || echo "; still $u upcalls of $r packets a second (--ovs-settle limit)")"
  return 0
}

run_ovs() {  # run_ovs SIDE PCAP PACKETS FEED TAG
  local side=$1 pcap=$2 feed=$4 tag=$5 devargs fifo="" t0 t1 tw
  reset_results
  ovs_start "$side" "$tag" "net_null0,no-rx=1" || return 0
  if [[ $feed == fifo ]]; then
    fifo="$LOGDIR/feed-$tag.fifo"; devargs="net_pcap0,rx_pcap=$fifo"
    start_feed "$pcap" "$fifo"
  else
    devargs="net_pcap0,rx_pcap=$pcap,infinite_rx=1"
  fi
  ovs_add_in "$devargs" || true
  while [[ -z $R_NOTE ]] && (($(ovs_tx) == 0)); do
    if ! kill -0 "$OVS_PID" 2>/dev/null || ((${EPOCHREALTIME/./} >= OVS_DEADLINE)); then
      R_NOTE="OVS: no packets on the sink port: $(grep -E 'ERR|EMER' "$OD/ovs-vswitchd.log" | tail -n 2 | tr '\n,' '  ')"
      break
    fi
    sleep 0.1
  done
  if [[ -z $R_NOTE ]]; then
    sleep "$WARMUP_S"
    ovs_settle
    win_begin "$OVS_PID"
    appctl dpif-netdev/pmd-stats-clear >/dev/null
    t0=$(now); tw=$(now_us)
    ofctl dump-ports >"$OD/ports0.txt" 2>&1
    sleep_until_us $((tw + $(sec_us "$MEASURE_S")))
    t1=$(now)
    ofctl dump-ports >"$OD/ports1.txt" 2>&1
    appctl dpif-netdev/pmd-stats-show >"$OD/pmd-stats.txt" 2>&1 || true
    win_end
    appctl dpif-netdev/pmd-perf-show >"$OD/pmd-perf.txt" 2>&1 || true
    appctl upcall/show >"$OD/upcall.txt" 2>&1 || true
    win_calc
    R_RQ=$W_RQ_PCT; R_STEAL=$W_STEAL_PCT
  fi
  stop_ovs
  [[ -n $fifo ]] && rm -f "$fifo"
  [[ -n $R_NOTE ]] && return 0
  read_kv < <(python3 "$PARSE" ovs "$OD" "$t0" "$t1" --in-port "$IN_PORT" --out-port "$OUT_PORT")
  R_STATS="$STATS settle_s=$SETTLE_S settled=$SETTLED"
  if [[ ${P[ok]:-0} == 1 ]]; then
    R_OK=1; R_MPPS=${P[mpps]}; R_WIN=${P[window_s]}; R_CPP=${P[cpp]:--}
  else
    R_NOTE+="parse: ${P[error]:-unknown} "
  fi
  if ((${P[rx_drop]:-0} + ${P[tx_drop]:-0} > 0)); then
    R_FLAGS+="X"; R_NOTE+="port drops rx=${P[rx_drop]:-0} tx=${P[tx_drop]:-0} "
  fi
  local rxw=${P[rx_window_pkts]:-0} txw=${P[window_pkts]:-0}
  if (((rxw - txw) * 1000 > rxw)); then
    R_FLAGS+="D"; R_NOTE+="not forwarded: $((rxw - txw)) of $rxw "
  fi
  R_FLAGS+=$(flags_for "$R_RQ" "$R_STEAL")
}

# traffic_args WORKLOAD FLOWS -> TRAFFIC (gen_pcap.py options beyond flows, packets and size)
# and TRAFFIC_TAG (for the pcap's name): l3 and router send to the routes' prefixes, bridge
# from K = min(FLOWS, --src-macs) hosts.
traffic_args() {
  TRAFFIC=() TRAFFIC_TAG=""
  case "$1" in
    l3|router) TRAFFIC=(--dst-nets "$GENDIR/routes.nets") ;;
    bridge)
      local k=$((${2} < SRC_MACS ? ${2} : SRC_MACS))
      TRAFFIC=(--src-macs "$k"); TRAFFIC_TAG="-m$k" ;;
  esac
}

# ------------------------------------------------------------------------ behaviour check ---
# Both sides forward a small pcap once (no infinite_rx: every packet once, 4 per flow) into a
# net_pcap tx file; the distinct output frames must be the same (MACs, TTL, checksum), and
# every input flow must come out. OVS may lose a flow's first packets to failed upcalls, hence
# several packets per flow and a comparison of distinct frames. The router's two sides hash
# flows onto the two neighbors differently: its frames are compared with the destination MAC
# normalised to "one of the neighbors" (the report says how each side spread the flows).
VERIFY_FLOWS=1024
declare -A VERIFY=()
verify_workload() {  # verify_workload WORKLOAD
  local wl=$1 vp out cfg pfx rules side res ok=1 n last i
  vp="$GENDIR/verify-$wl.pcap"
  traffic_args "$wl" "$VERIFY_FLOWS"
  python3 "$GEN" --flows "$VERIFY_FLOWS" --packets $((4 * VERIFY_FLOWS)) --size "$FRAME_SIZE" \
    "${TRAFFIC[@]}" -o "$vp"
  out="$LOGDIR/verify-$wl-sluiced.pcap"; cfg="$LOGDIR/verify-$wl-sluiced.toml"
  pfx="sluice-cache-sl-$$-verify-$wl"; PREFIXES+=("$pfx")
  write_sluiced_config "$cfg" "$pfx" "$(mem_mb_for 40960)" 40960 "net_pcap0,rx_pcap=$vp" "$wl" \
    "net_pcap1,tx_pcap=$out"
  # (--dump-flows: the end of its output shows what its megaflows match)
  taskset -c "$MAIN_CORE,$FWD_CORE" "$SLUICED" --config "$cfg" --duration 3 --dump-flows 20 \
    >"$LOGDIR/verify-$wl-sluiced.out" 2>&1 &
  CHILD_PID=$!
  for ((i = 0; i < 600; i++)); do kill -0 "$CHILD_PID" 2>/dev/null || break; sleep 0.1; done
  stop_pid "$CHILD_PID" INT 10; CHILD_PID=""
  clean_prefix "$pfx"
  local outs=("$out")
  local rulesets=() cmpargs=()
  case "$wl" in
    l2) read -r -a rulesets <<<"$L2_RULES" ;;
    l3) rulesets=(routes) ;;
    bridge) rulesets=(normal) ;;
    router) rulesets=(ecmp); cmpargs=(--ecmp-dst "$ECMP_NEIGHBOR_MACS") ;;
  esac
  for rules in "${rulesets[@]}"; do
    side="ovs-$rules-emc"; [[ $rules == inport ]] && side=ovs-inport
    out="$LOGDIR/verify-$wl-$side.pcap"
    R_NOTE=""
    if ovs_start "$side" "verify-$wl-$side" "net_pcap1,tx_pcap=$out" &&
       ovs_add_in "net_pcap0,rx_pcap=$vp"; then
      # until the sink's count stops growing for a second (or 30 s)
      last=-1
      for ((i = 0; i < 30; i++)); do
        sleep 1; n=$(ovs_tx)
        ((n == last && n > 0)) && break
        last=$n
      done
      # what OVS made of the rules: its datapath flows (megaflows) and the FDB
      appctl dpctl/dump-flows >"$OD/dp-flows.txt" 2>&1 || true
      [[ $rules == normal ]] && { appctl fdb/show "$BR" >"$OD/fdb-end.txt" 2>&1 || true; }
    fi
    stop_ovs
    [[ -n $R_NOTE ]] && log "behaviour check $wl $side: $R_NOTE"
    outs+=("$out")
  done
  res=$(python3 "$PARSE" compare "${cmpargs[@]}" "$vp" "${outs[@]}" 2>&1) || ok=0
  VERIFY[$wl]=$res
  if ((ok)); then log "behaviour check $wl: $res"
  else log "WARNING: behaviour check $wl FAILED: $res (the comparison below is not like for like)"; fi
}
if [[ $ONLY == both && $VERIFY_ON == 1 ]]; then
  for wl in $WORKLOADS; do verify_workload "$wl"; done
fi

# ------------------------------------------------------------------------------ main --------
sides_of() {  # sides_of WORKLOAD -> SIDES array
  SIDES=()
  local m
  if [[ $ONLY != ovs ]]; then
    SIDES+=(sluiced)
    for m in $SL_MODES; do [[ $m == cache ]] || SIDES+=("sluiced-$m"); done
  fi
  [[ $ONLY == sluiced ]] && return 0
  case "$1" in
    l2)
      [[ " $L2_RULES " == *" inport "* ]] && SIDES+=(ovs-inport)
      if [[ " $L2_RULES " == *" dlmatch "* ]]; then for m in $OVS_MODES; do SIDES+=("ovs-dlmatch-$m"); done; fi ;;
    l3) for m in $OVS_MODES; do SIDES+=("ovs-routes-$m"); done ;;
    bridge) for m in $OVS_MODES; do SIDES+=("ovs-normal-$m"); done ;;
    router) for m in $OVS_MODES; do SIDES+=("ovs-ecmp-$m"); done ;;
  esac
  return 0
}

for wl in $WORKLOADS; do
  sides_of "$wl"
  for spec in $PROFILES; do
    flows=${spec#fifo:}
    feed=preload; [[ $spec == fifo:* ]] && feed=fifo
    pkts=$((flows > MIN_PACKETS ? flows : MIN_PACKETS))
    traffic_args "$wl" "$flows"
    pcap="$WORKDIR/cache-$wl-$flows$TRAFFIC_TAG-s$FRAME_SIZE.pcap"
    genargs=(--flows "$flows" --packets "$pkts" --size "$FRAME_SIZE" "${TRAFFIC[@]}")
    log "$wl, profile $spec: generating $pkts packets of $FRAME_SIZE bytes${TRAFFIC_TAG:+ from ${TRAFFIC_TAG#-m} source MACs} -> $pcap ($feed)"
    python3 "$GEN" "${genargs[@]}" -o "$pcap"
    for ((r = 1; r <= ROUNDS; r++)); do
      for side in "${SIDES[@]}"; do
        for ((att = 1; att <= RETRIES + 1; att++)); do
          tag="$wl-f$flows-r$r-$side-a$att"
          if [[ $side == sluiced* ]]; then run_sluiced "$side" "$wl" "$pcap" "$pkts" "$feed" "$tag"
          else run_ovs "$side" "$pcap" "$pkts" "$feed" "$tag"; fi
          run_done "$att"
          log "  $wl $spec round $r $side: ${R_MPPS:-FAILED} Mpps cyc/pkt=$R_CPP $RUN_STATUS"
          echo "$wl,$spec,$pkts,$feed,$r,$side,$att,$RUN_CSV,\"$R_STATS\"" >>"$CSV"
          ((RETRY)) || break
        done
      done
    done
  done
done

# ------------------------------------------------------------------------------ report ------
DPDK_VER=$(dpkg-query -W -f='${Version}' dpdk 2>/dev/null || echo unknown)
OVS_VER=$(dpkg-query -W -f='${Version}' openvswitch-switch-dpdk 2>/dev/null || echo unknown)
GIT_REV=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo none)
GIT_DIRTY=""
if [[ -n $(git -C "$REPO_DIR" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
  GIT_DIRTY=", uncommitted changes"
fi
SL_DESC="not run"
[[ $ONLY != ovs ]] && SL_DESC="$SLUICED (built $(date -r "$SLUICED" '+%Y-%m-%d %H:%M'); repository $GIT_REV$GIT_DIRTY)"
MD="$RESULTS_DIR/cache-$STAMP.md"
base_meta
META+=(--meta "sluiced=$SL_DESC"
      --meta "OVS=openvswitch-switch-dpdk $OVS_VER ($OVS_VSWITCHD), DPDK $DPDK_VER; dpdk-socket-mem=$OVS_SOCKET_MEM, pmd on core $FWD_CORE, lcore/main on core $MAIN_CORE; private ovsdb per run; bridge datapath_type=netdev fail-mode=secure"
      --meta "devices=net_pcap0 rx_pcap=<profile>.pcap infinite_rx=1 (fifo:N profiles: rx_pcap=<FIFO> fed by perf/pcap_fifo.py) -> net_null0 no-rx=1; ${FRAME_SIZE}-byte frames (+FCS on the wire)"
      --meta "workloads=l2: onos_basic table0 ingress_port 1 -> port 2 vs OVS in_port=1 (simple match) and in_port+dl_dst+dl_type; l3: simple_router, $ROUTES generated prefixes (/16 /24 /32, 8 next hops) vs OVS ip,nw_dst=P/len priority 100+len with mod_dl_src, mod_dl_dst, dec_ttl; bridge: the default program (in an access port of VLAN $BRIDGE_VLAN, out $BRIDGE_OUT, static [[mac]] $L2_DST_MAC behind out, sources learned by the app) vs OVS actions=NORMAL (in tag=$BRIDGE_VLAN, out $(OVS_TAG=$BRIDGE_VLAN ovs_out_vlan), $L2_DST_MAC added with fdb/add, sources learned), traffic from min(flows, $SRC_MACS) source MACs; router: the default program (router interfaces on VLANs $ROUTER_IN_VLAN and $ROUTER_OUT_VLAN, $ROUTES prefixes as l3's each via 2 neighbors, ECMP by CRC-16 of the 5-tuple, out untagged) vs OVS select group (selection_method=hash, fields ip_src ip_dst nw_proto udp_src udp_dst; buckets mod_dl_src, mod_dl_dst, dec_ttl, output:2) and in_port+dl_dst+ip,nw_dst=P/len rules priority 100+len (OpenFlow 1.5)"
      --meta "memory=$MODE; sluiced mbufs = packets in pcap (preloaded profiles) + $WORKING_MBUFS; cores: main $MAIN_CORE forwarding $FWD_CORE"
      --meta "method=$ROUNDS interleaved rounds (sluiced, then each OVS variant; every run a fresh process), ${MEASURE_S}s window after ${WARMUP_S}s warm-up (OVS: then until its upcalls are <= 0.1 % of packets over 1 s, at most ${OVS_SETTLE}s), contended runs retried up to $RETRIES times (threshold $CONTENDED_PCT%)"
      --meta "logs=$LOGDIR")
for wl in $WORKLOADS; do
  [[ -n ${VERIFY[$wl]:-} ]] && META+=(--meta "behaviour check $wl=${VERIFY[$wl]}")
done
finish_report "$MD"  # exit 2 when a kept run failed (the tables still have the rest)
