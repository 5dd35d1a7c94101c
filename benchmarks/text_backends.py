"""The text model's runtimes compared, interleaved over rounds: calls of 32 SciFact passages of 64
words (70-175 tokens, 102 on average) as the server's ingest makes them, and queries encoded alone.
`torch-b32` is the path before session 14 (each call one padded batch of 32); the others sort a call's
texts by length and run batches of `TEXT_BATCH` (16). Each round runs every backend in a process of its
own, as a server runs one (in one process, torch's OpenMP threads still spinning after its turn slowed
whichever runtime came next). Prints medians and the ratio to torch-b32 as JSON.

    HF_HUB_OFFLINE=1 uv run python benchmarks/text_backends.py --rounds 6 --passages 384 \
        > benchmarks/results/text-backend-s14.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mmsearch.client.bench.workload import corpus_texts, passages, queries
from mmsearch.encoders.base import Encoder
from mmsearch.encoders.text import SentenceTransformerEncoder

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir_scifact"
BEFORE = "torch-b32"


def measure(name: str, n: int) -> dict[str, float]:
    """One backend in this process: passages/s, CPU ms per passage, median query ms."""
    docs = passages(corpus_texts(CORPUS), n, 64)
    qs = queries(CORPUS, None, docs, 16)
    cache = Path(os.environ.get("MODEL_CACHE", "/tmp/mmsearch-onnx-cache"))  # the ONNX exports, made once
    backend, kw = ("torch", {"batch_size": 32}) if name == BEFORE else (name, {})
    e: Encoder = SentenceTransformerEncoder("all-MiniLM-L6-v2", "cpu", backend, cache, **kw)
    e.encode_texts(docs[:32], as_query=False)  # warm-up
    e.encode_texts(qs[:2], as_query=True)
    t, c = time.perf_counter(), time.process_time()
    for i in range(0, len(docs), 32):
        e.encode_texts(docs[i : i + 32], as_query=False)
    out = {"pps": len(docs) / (time.perf_counter() - t), "cpu": (time.process_time() - c) / len(docs) * 1000}
    ms = []
    for q in qs:
        t = time.perf_counter()
        e.encode_texts([q], as_query=True)
        ms.append((time.perf_counter() - t) * 1000)
    return out | {"q": statistics.median(ms)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--passages", type=int, default=192)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--backends", default=f"{BEFORE},torch,onnx,onnx-int8")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # a child: measure this backend, print JSON
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.passages)))
        return
    names = args.backends.split(",")
    runs: dict[str, dict[str, list[float]]] = {b: {"pps": [], "cpu": [], "q": []} for b in names}
    for r in range(args.rounds):
        for b in names:
            cmd = [sys.executable, __file__, "--one", b, "--passages", str(args.passages)]
            got = json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout)
            for k, v in got.items():
                runs[b][k].append(v)
            print(f"round {r + 1}: {b} {got['pps']:.1f} passages/s", file=sys.stderr)
    base = statistics.median(runs[names[0]]["pps"])
    out: dict[str, object] = {"baseline": names[0], "passages": args.passages, "rounds": args.rounds}
    for b, v in runs.items():
        pps = statistics.median(v["pps"])
        out[b] = {
            "passages_per_s": round(pps, 2),
            "passages_per_s_rounds": [round(x, 2) for x in v["pps"]],
            "cpu_ms_per_passage": round(statistics.median(v["cpu"]), 2),
            "query_ms_median": round(statistics.median(v["q"]), 2),
            "ratio": round(pps / base, 3),
        }
    out["load"] = os.getloadavg()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
