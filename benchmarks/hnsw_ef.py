"""HNSW search breadth (ef) measured on a collection's real vectors: for each ef, the dense first
stage's recall@10 against an exact search over the same shards, and its latency per query.

    python benchmarks/hnsw_ef.py DATA_DIR COLLECTION QUERIES.jsonl [--kind K --model M] [--ef 0,16,32,64,128]

Run it on a stopped server's data directory or a copy (qdrant-edge opens a shard in one process
only). QUERIES.jsonl holds {"text": ...} lines (a BEIR queries.jsonl works), encoded as the server
encodes queries (the collection's model: e.g. --kind fake --model fake-384 for a collection of
`mmsearch bench --storage-only`). Only indexed shards are searched:
build them first (a server with a small --seal-points indexes a small collection).
ef 0 is the engine's default (the server's hnsw_ef setting 0).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import qdrant_edge as qe

from mmsearch.encoders.pool import EncoderPool


def indexed_shards(collection: Path) -> list[qe.EdgeShard]:
    manifest = json.loads((collection / "manifest.json").read_text())
    ids = [s["id"] for s in manifest["shards"] if s["state"] == "indexed"]
    if not ids:
        raise SystemExit(f"{collection} has no indexed shard yet")
    return [qe.EdgeShard.load(str(collection / "shards" / i)) for i in ids]


def top(shards: list[qe.EdgeShard], vector: list[float], params: qe.SearchParams | None) -> list[str]:
    found = []
    for shard in shards:
        query = qe.Query.Nearest(vector, using="text_dense")
        found += shard.query(qe.QueryRequest(limit=10, query=query, with_payload=False, params=params))
    return [str(p.id) for p in sorted(found, key=lambda p: -p.score)[:10]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("collection")
    parser.add_argument("queries", type=Path)
    parser.add_argument("--kind", default="sentence-transformers", help="encoder kind (fake: the storage-only bench's)")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--ef", default="0,16,32,64,128,256")
    parser.add_argument("--max-queries", type=int, default=300)
    args = parser.parse_args()

    shards = indexed_shards(args.data_dir / "collections" / args.collection)
    points = sum(s.count(qe.CountRequest(exact=True)) for s in shards)
    texts = [json.loads(line)["text"] for line in args.queries.read_text().splitlines() if line.strip()]
    texts = texts[: args.max_queries]
    encoder = EncoderPool("cpu").get(args.kind, args.model)
    vectors = [e.pooled.tolist() for e in encoder.encode_texts(texts, as_query=True)]
    exact = [top(shards, v, qe.SearchParams(exact=True)) for v in vectors]
    print(f"{len(shards)} indexed shards, {points:,} points, {len(vectors)} queries")
    print("ef      recall@10   p50 ms   p99 ms")
    for ef in (int(x) for x in args.ef.split(",")):
        params = qe.SearchParams(hnsw_ef=ef) if ef else None
        got, ms = [], []
        for v in vectors:
            t = time.perf_counter()
            got.append(top(shards, v, params))
            ms.append((time.perf_counter() - t) * 1e3)
        recall = statistics.fmean(len(set(g) & set(e)) / 10 for g, e in zip(got, exact, strict=True))
        ms.sort()
        p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
        print(f"{ef or 'default':<7} {recall:9.3f} {statistics.median(ms):8.2f} {p99:8.2f}")


if __name__ == "__main__":
    main()
