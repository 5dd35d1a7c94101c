#!/usr/bin/env bash
# Regenerates the Python stubs from protos/. Pinned generator: grpcio-tools from uv.lock.
# --check: regenerate into a temp dir and fail if the committed stubs differ (CI).
set -euo pipefail
cd "$(dirname "$0")/.."
out=clients/python/generated
check=0
[ "${1:-}" = "--check" ] && check=1
if [ $check = 1 ]; then out=$(mktemp -d); fi
mkdir -p "$out"
rm -rf "$out/mmsearch"
# uv may be a pip-installed module only (scripts/run.sh installs it that way), not a command on PATH.
if command -v uv >/dev/null 2>&1; then UV=(uv); else UV=(python3 -m uv); fi
"${UV[@]}" run --frozen --no-sync python -m grpc_tools.protoc -I protos \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  protos/mmsearch/v1/*.proto
touch "$out/mmsearch/v1/__init__.py"
if [ $check = 1 ]; then
  if ! diff -r "$out/mmsearch" clients/python/generated/mmsearch >/dev/null; then
    echo "generated Python stubs are stale: run scripts/gen_protos.sh" >&2
    diff -r "$out/mmsearch" clients/python/generated/mmsearch | head -20 >&2
    exit 1
  fi
  echo "generated Python stubs are up to date"
fi
