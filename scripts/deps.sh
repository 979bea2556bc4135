#!/usr/bin/env bash
# Install the Debian packages Sluice needs to build, run and test (Debian 12).
# Only calls apt-get when something is missing.
set -euo pipefail
pkgs=(dpdk dpdk-dev libdpdk-dev pkg-config clang libclang-dev libpcap-dev python3 python3-venv protobuf-compiler libprotobuf-dev openssl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${missing[*]}; run as root (or: sudo apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The P4Runtime protos (pinned PyPI wheel, checked by SHA-256) for proto/'s build.
"$(dirname "$0")/../proto/fetch.sh"
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install a Rust toolchain (rustup, Rust >= 1.87)" >&2
  exit 1
fi
