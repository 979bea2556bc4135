#!/usr/bin/env bash
# Set up the Python venvs of the real P4Runtime clients that tests/p4rt/ drives.
# Their pins conflict, so there are two venvs (paths relative to the repo root):
#   .venv-p4rt/shell  p4runtime-shell==0.0.6 (p4runtime 1.4.1, protobuf 3.20), and
#                     prometheus_client, whose text-format parser checks /metrics
#   .venv-p4rt/finsy  finsy==0.30.0           (protobuf 6.33, grpcio >= 1.81)
# Every package is pinned, transitive ones too (the set pip resolved for these two
# pins on Python 3.11), so a later release on PyPI can't change what the tests run.
#
# Idempotent: each venv has a stamp file holding its pins and is rebuilt only when
# the stamp differs or the venv's python no longer runs; a second run prints nothing.
# Safe to call concurrently (flock). Needs python3 >= 3.10 with venv (Debian:
# python3-venv, installed by scripts/deps.sh) and access to PyPI or a find-links dir.
#
# Usage: scripts/p4rt-clients.sh [shell|finsy]...   (default: both)
# Env:   P4RT_PYTHON  interpreter that creates the venvs (default: python3)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${P4RT_PYTHON:-python3}
ROOT=.venv-p4rt

SHELL_PINS=(
  p4runtime-shell==0.0.6
  p4runtime==1.4.1
  protobuf==3.20.3
  grpcio==1.85.1
  googleapis-common-protos==1.73.0
  ipython==7.31.1
  jedi==0.17.2
  parso==0.7.1
  backcall==0.2.0
  decorator==5.3.1
  matplotlib-inline==0.2.2
  pexpect==4.9.0
  pickleshare==0.7.5
  prompt_toolkit==3.0.53
  ptyprocess==0.7.0
  Pygments==2.21.0
  traitlets==5.16.1
  typing_extensions==4.16.0
  wcwidth==0.9.4
  prometheus_client==0.26.0
)
FINSY_PINS=(
  finsy==0.30.0
  protobuf==6.33.6
  grpcio==1.85.1
  parsy==2.2
  pyee==13.0.1
  typing_extensions==4.16.0
)

die() { echo "p4rt-clients: $*" >&2; exit 1; }

# stamp_ok NAME PINS...: the venv exists, its python runs, and its stamp lists exactly PINS.
stamp_ok() {
  local dir=$ROOT/$1; shift
  [ -f "$dir/.pins" ] || return 1
  [ "$(cat "$dir/.pins")" = "$(printf '%s\n' "$@")" ] || return 1
  "$dir/bin/python" -c '' >/dev/null 2>&1
}

# build NAME IMPORT PINS...: (re)create the venv, install the pins, check the import.
build() {
  local name=$1 import=$2; shift 2
  local dir=$ROOT/$name log
  rm -rf "$dir"
  log=$(mktemp)
  if ! "$PY" -m venv "$dir" >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; rm -rf "$dir"
    die "'$PY -m venv $dir' failed (Debian: apt-get install python3-venv, or run scripts/deps.sh)"
  fi
  if ! "$dir/bin/python" -m pip install -q --disable-pip-version-check --no-input "$@" >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; rm -rf "$dir"
    die "pip install into $dir failed (pins: $*)"
  fi
  if ! "$dir/bin/python" -c "import $import" >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; rm -rf "$dir"
    die "'import $import' fails in $dir after installing the pins"
  fi
  rm -f "$log"
  printf '%s\n' "$@" >"$dir/.pins.tmp" && mv "$dir/.pins.tmp" "$dir/.pins"
  echo "p4rt-clients: set up $dir ($1)"
}

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(shell finsy)
for w in "${want[@]}"; do
  case $w in shell|finsy) ;; *) die "unknown venv '$w' (expected: shell, finsy)";; esac
done

ensure() {
  local name=$1 import=$2; shift 2
  stamp_ok "$name" "$@" && return 0
  mkdir -p "$ROOT"
  # One builder at a time (the Rust tests may call this script in parallel).
  exec 9>"$ROOT/.lock"
  flock -w 900 9 || die "timed out waiting for $ROOT/.lock"
  stamp_ok "$name" "$@" || build "$name" "$import" "$@"
  exec 9>&-
}

command -v "$PY" >/dev/null || die "'$PY' not found (Debian: apt-get install python3 python3-venv)"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || die "$PY is $("$PY" -V 2>&1); finsy 0.30.0 needs Python >= 3.10"

for w in "${want[@]}"; do
  case $w in
    shell) ensure shell p4runtime_sh.shell "${SHELL_PINS[@]}" ;;
    finsy) ensure finsy finsy "${FINSY_PINS[@]}" ;;
  esac
done
