"""torch vs ONNX Runtime (fp32, int8) for the text model, in one process, interleaved over 4 rounds:
96 SciFact passages of 64 words (101 tokens) in batches of 32 as the server encodes them, and 16
queries encoded alone. Prints medians and the ratio to torch as JSON.

    HF_HUB_OFFLINE=1 uv run python benchmarks/text_backends.py > benchmarks/results/text-backend-idle.json
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

from mmsearch.client.bench.workload import corpus_texts, passages, queries
from mmsearch.encoders.text import create

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir_scifact"
BACKENDS = ("torch", "onnx", "onnx-int8")


def main() -> None:
    docs = passages(corpus_texts(CORPUS), 96, 64)
    qs = queries(CORPUS, None, docs, 16)
    cache = Path(os.environ.get("MODEL_CACHE", "/tmp/mmsearch-onnx-cache"))  # the ONNX exports, made once
    encoders = {b: create("all-MiniLM-L6-v2", "cpu", b, cache) for b in BACKENDS}
    for e in encoders.values():  # warm-up
        e.encode_texts(docs[:32], as_query=False)
        e.encode_texts(qs[:2], as_query=True)
    runs: dict[str, dict[str, list[float]]] = {b: {"pps": [], "cpu": [], "q": []} for b in encoders}
    for _ in range(4):
        for b, e in encoders.items():
            t, c = time.perf_counter(), time.process_time()
            for i in range(0, len(docs), 32):
                e.encode_texts(docs[i : i + 32], as_query=False)
            runs[b]["pps"].append(len(docs) / (time.perf_counter() - t))
            runs[b]["cpu"].append((time.process_time() - c) / len(docs) * 1000)
            for q in qs:
                t = time.perf_counter()
                e.encode_texts([q], as_query=True)
                runs[b]["q"].append((time.perf_counter() - t) * 1000)
    out: dict[str, object] = {}
    for b, v in runs.items():
        pps = statistics.median(v["pps"])
        out[b] = {
            "passages_per_s": pps,
            "cpu_ms_per_passage": statistics.median(v["cpu"]),
            "query_ms_median": statistics.median(v["q"]),
            "ratio_vs_torch": pps / statistics.median(runs["torch"]["pps"]),
        }
    out["load"] = os.getloadavg()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
