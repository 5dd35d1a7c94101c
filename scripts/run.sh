#!/usr/bin/env bash
# One entry point that sets everything up on a fresh machine (Python 3.11+), then runs:
#   scripts/run.sh serve [flags]     the server, embedded storage in ./mmsearch-data
#   scripts/run.sh test [pytest args] the test suite
#   scripts/run.sh <command> ...     any other `mmsearch` command (ingest, search, ...)
set -euo pipefail
caller=$PWD  # relative paths in the command's arguments (ingest ./docs, --data-dir) are the caller's
cd "$(dirname "$0")/.."
root=$PWD

if command -v uv >/dev/null 2>&1; then
  UV=(uv)
elif python3 -m uv --version >/dev/null 2>&1; then
  UV=(python3 -m uv)
else
  echo "installing uv (the project's environment manager) with pip..." >&2
  python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
  UV=(python3 -m uv)
fi

# Tesseract is the optional fast OCR engine (the default, rapidocr, ships in a Python wheel).
if ! command -v tesseract >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing tesseract-ocr (optional fast OCR engine)..." >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr >/dev/null) \
    || echo "could not install tesseract-ocr; the rapidocr engine still works" >&2
fi

# Headless Chromium runs the web console's browser tests (tests/test_console.py); only `test` needs it.
if [ "${1:-}" = test ] && ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium (headless browser for the web console tests)..." >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "could not install chromium; the console's browser tests will be skipped" >&2
fi

# Locked, reproducible environment in .venv (first run downloads PyTorch: a few minutes).
"${UV[@]}" sync --frozen --quiet

export HF_HUB_OFFLINE=1  # mmsearch never fetches weights at run time
cmd="${1:-serve}"
shift || true
case "$cmd" in
  test) exec "${UV[@]}" run --frozen --no-sync pytest "$@" ;;
  # the synced environment's own command, run where the caller is (uv run would run it from here)
  *) cd "$caller" && exec "$root/.venv/bin/mmsearch" "$cmd" "$@" ;;
esac
