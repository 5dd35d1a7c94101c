#!/usr/bin/env bash
# CPU seconds of a running server and of its OCR worker processes over one page ingest run of
# `mmsearch bench` (docs/ocr.md, "2×": workers' and server's CPU per page during ingest).
#   benchmarks/ocr_ingest_cpu.sh PORT OUT.json [PAGES]   (a warm server on PORT; SROIE receipts)
set -euo pipefail
PORT=$1; OUT=$2; PAGES=${3:-100}
PID=$(pgrep -f -- "--port $PORT" | head -1)
snap() { .venv/bin/python -c "
import psutil
p = psutil.Process($PID); t = p.cpu_times()
c = sum(x.cpu_times().user + x.cpu_times().system for x in p.children(recursive=True))
print(f'{t.user + t.system:.1f} {c:.1f}')"; }
read -r S0 C0 <<<"$(snap)"
HF_HUB_OFFLINE=1 .venv/bin/mmsearch bench --server "localhost:$PORT" --corpus ../shared/data/beir_scifact \
    --page-source ../shared/data/sroie_receipts/images --pages "$PAGES" --page-ocr auto \
    --concurrency 1 --requests 10 --passages 0 --json > "$OUT"
read -r S1 C1 <<<"$(snap)"
python3 -c "
s, c, n = $S1 - $S0, $C1 - $C0, $PAGES
print(f'server {s:.1f} s ({s / n:.2f}/page), OCR workers {c:.1f} s ({c / n:.2f}/page)')"
