#!/usr/bin/env bash
# Fetch the official P4Runtime .proto files from a pinned PyPI wheel and check them.
#
# Source: the `finsy` wheel on PyPI ships, under finsy/proto/, the P4Runtime v1.5.0
# protos exactly as p4lang/p4runtime publishes them (Apache-2.0) plus google/rpc.
# Debian has no P4Runtime package and the `p4runtime` wheel carries only generated
# Python, so this is the registry package that holds the .proto sources.
#
# The wheel is pinned by version and SHA-256; each extracted file by SHA-256 too, so a
# changed upstream file fails here instead of compiling into something else.
# Output: proto/upstream/{p4,google}/... (not committed; build.rs reads it).
set -euo pipefail
cd "$(dirname "$0")"
WHEEL=finsy-0.30.0-py3-none-any.whl
WHEEL_SHA256=29f5194b40ac1c19caacbc4a138b3208b1efa1a6d930c51bccd834d273d22097
FILES=(
  "p4/v1/p4runtime.proto"
  "p4/v1/p4data.proto"
  "p4/config/v1/p4info.proto"
  "p4/config/v1/p4types.proto"
  "google/rpc/status.proto"
  "google/rpc/code.proto"
)
OUT=upstream
STAMP="$OUT/.source"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WHEEL $WHEEL_SHA256" ] && sha256sum --quiet -c SHA256SUMS 2>/dev/null; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pip_cmd=()
if python3 -m pip --version >/dev/null 2>&1; then
  pip_cmd=(python3 -m pip)
else
  # Debian's python3 has no pip module; a throwaway venv brings one (python3-venv).
  python3 -m venv "$tmp/venv"
  pip_cmd=("$tmp/venv/bin/pip")
fi
echo "proto/fetch.sh: downloading $WHEEL from PyPI"
"${pip_cmd[@]}" download --quiet --no-deps --only-binary=:all: --dest "$tmp" "finsy==0.30.0"
echo "$WHEEL_SHA256  $tmp/$WHEEL" | sha256sum --quiet -c - || {
  echo "proto/fetch.sh: $WHEEL does not have the pinned SHA-256 $WHEEL_SHA256" >&2
  exit 1
}
rm -rf "$OUT"
python3 - "$tmp/$WHEEL" "$OUT" "${FILES[@]}" <<'PY'
import os, sys, zipfile
wheel, out, files = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for f in files:
        data = z.read("finsy/proto/" + f)
        os.makedirs(os.path.join(out, os.path.dirname(f)), exist_ok=True)
        with open(os.path.join(out, f), "wb") as fh:
            fh.write(data)
PY
sha256sum --quiet -c SHA256SUMS || {
  echo "proto/fetch.sh: extracted files differ from proto/SHA256SUMS" >&2
  exit 1
}
echo "$WHEEL $WHEEL_SHA256" > "$STAMP"
echo "proto/fetch.sh: P4Runtime v1.5.0 protos in proto/$OUT"
