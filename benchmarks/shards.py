"""Embedded storage under ingest and background index builds, driving the Store directly.

Measures what issue 17 asks of the sharded edge store: how long the serving process stalls (the
largest gap of a thread that wakes every 10 ms, as a health probe would) while points are ingested
and shards are sealed, indexed in a child process and swapped in; and dense / lexical search
latency before and after the builds. Vectors are random unit vectors (not MiniLM: HNSW recall on
them is not representative), lexical terms come from random words.

    python benchmarks/shards.py --points 100000 --seal 20000 --out benchmarks/results/shards.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from mmsearch.server.ranking.lexical import document_terms, query_terms
from mmsearch.server.storage.base import CollectionSpec, PointData, SpaceSpec, Where, point_id
from mmsearch.server.storage.edge import EdgeStore, ShardOptions


class Ticker:
    """Wakes every 10 ms; the largest gap between wakes is the longest the process stalled."""

    def __init__(self) -> None:
        self.max_gap = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.wait(0.01):
            now = time.perf_counter()
            self.max_gap = max(self.max_gap, now - last - 0.01)
            last = now

    def reset(self) -> float:
        gap, self.max_gap = self.max_gap, 0.0
        return round(gap * 1000, 1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _points(rng: np.random.Generator, words: list[str], start: int, n: int, dim: int, tokens: int) -> list[PointData]:
    out = []
    for i in range(start, start + n):
        toks = rng.standard_normal((tokens, dim)).astype(np.float32)
        toks /= np.linalg.norm(toks, axis=1, keepdims=True)
        dense = toks.mean(0) / np.linalg.norm(toks.mean(0))
        text = " ".join(rng.choice(words, 40))
        payload = {"doc_id": f"d{i // 10}", "seq": i % 10, "modality": "text", "text": text}
        out.append(PointData(point_id(f"d{i // 10}", i % 10), "text", dense, toks, document_terms(text), payload))
    return out


def _latency(store: EdgeStore, rng: np.random.Generator, words: list[str], dim: int, n: int) -> dict[str, float]:
    dense, lexical = [], []
    for _ in range(n):
        q = rng.standard_normal(dim).astype(np.float32)
        t = time.perf_counter()
        store.dense_search("bench", "text", q / np.linalg.norm(q), 100, Where())
        dense.append(time.perf_counter() - t)
        t = time.perf_counter()
        store.lexical_search("bench", query_terms(" ".join(rng.choice(words, 4))), 100, Where())
        lexical.append(time.perf_counter() - t)
    series = {"dense": dense, "lexical": lexical}
    return {f"{k}_p{p}_ms": round(1000 * float(np.percentile(v, p)), 2) for k, v in series.items() for p in (50, 99)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--tokens", type=int, default=4, help="token vectors per point")
    ap.add_argument("--seal", type=int, default=20_000)
    ap.add_argument("--max-shard", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--build-timeout", type=float, default=3600)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(5000)]
    result: dict[str, object] = {"args": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeStore(Path(tmp), shards=ShardOptions(args.seal, args.max_shard))
        space = SpaceSpec("text", "fake", f"fake-{args.dim}", args.dim, ["text"])
        store.create_collection(CollectionSpec("bench", "fake", f"fake-{args.dim}", spaces={"text": space}))
        ticker = Ticker()
        t0 = time.perf_counter()
        for start in range(0, args.points, args.batch):
            pts = _points(rng, words, start, min(args.batch, args.points - start), args.dim, args.tokens)
            store.upsert("bench", pts)
        result["ingest_s"] = round(time.perf_counter() - t0, 1)
        result["ingest_max_gap_ms"] = ticker.reset()
        result["after_ingest"] = {**vars(store.stats("bench")), **_latency(store, rng, words, args.dim, args.queries)}
        ticker.reset()
        t0 = time.perf_counter()
        during: list[dict[str, float]] = []
        while store.stats("bench").indexing and time.perf_counter() - t0 < args.build_timeout:
            during.append(_latency(store, rng, words, args.dim, 10))
            time.sleep(0.5)
        result["build_wait_s"] = round(time.perf_counter() - t0, 1)
        result["build_max_gap_ms"] = ticker.reset()
        if during:
            result["during_build_dense_p50_ms_median"] = float(np.median([d["dense_p50_ms"] for d in during]))
        result["after_build"] = {**vars(store.stats("bench")), **_latency(store, rng, words, args.dim, args.queries)}
        ticker.stop()
        store.close()
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
