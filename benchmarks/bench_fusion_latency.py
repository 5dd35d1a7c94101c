"""Issue 4 latency: how much fusion + reranking add over candidate retrieval, from the server's own
per-request timings (SearchTimings: encode / retrieve / rerank ms), over an existing collection.

    uv run python benchmarks/bench_fusion_latency.py --data-dir DIR --collection NAME [--queries 200]

Queries: SciFact claims. "retrieve" = dense HNSW top-k per space + BM25 top-k; "rerank" = exact
dense/BM25 scores for one-sided candidates + exact MaxSim over all candidates + fusion + grouping.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmsearch.client import Client  # noqa: E402
from mmsearch.server.app import create_server  # noqa: E402
from mmsearch.server.settings import Settings  # noqa: E402
from mmsearch.v1 import search_pb2  # noqa: E402


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--collection", required=True)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    qs = [json.loads(x)["text"] for x in (ROOT.parent / "shared/data/beir_scifact/queries.jsonl").open()]
    app = create_server(Settings(port=0, data_dir=Path(args.data_dir)))
    c = Client(f"127.0.0.1:{app.port}", timeout=600)
    points = c.get_collection(args.collection).point_count
    for q in qs[:5]:
        c.search(args.collection, q)  # warm up
    out = {"points": points}
    for name, fusion in (("weighted_zscore", 1), ("rrf", 2), ("maxsim", 4)):
        t = {"encode": [], "retrieve": [], "rerank": [], "total": []}
        for q in qs[: args.queries]:
            r = c.search(args.collection, q, top_k=10, ranking=search_pb2.RankingOptions(fusion=fusion))
            for k in t:
                t[k].append(getattr(r.timings, f"{k}_ms"))
        out[name] = {k: {"p50": statistics.median(v), "p95": pct(v, 0.95)} for k, v in t.items()}
        print(name, {k: f"p50 {statistics.median(v):.1f} / p95 {pct(v, 0.95):.1f} ms" for k, v in t.items()})
    app.stop(None)
    print(json.dumps(out))
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "fusion_latency.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
