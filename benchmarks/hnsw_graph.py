"""HNSW build parameters (m, ef_construct) on real shard vectors: the pooled (dense) vectors of a
built shard copied into one fresh segment per configuration, then recall@10 against an exact search
and the engine's search time at each ef (the segment's own, no server).

    python benchmarks/hnsw_graph.py SHARD_DIR --points 240000 --configs 16/100,32/100,16/200,32/200 \\
        --queries ../shared/data/beir_scifact/queries.jsonl --kind fake --model fake-384 --out RESULT.json

SHARD_DIR: a shard of a stopped server's collection (`<data>/collections/<name>/shards/<id>`), e.g. of
`mmsearch bench --storage-only --keep`. Queries are encoded as the collection's model encodes them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import qdrant_edge as qe

from mmsearch.encoders.pool import EncoderPool


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("shard", type=Path)
    ap.add_argument("--points", type=int, default=240_000)
    ap.add_argument("--configs", default="16/100,32/100,16/200,32/200", help="m/ef_construct, comma-separated")
    ap.add_argument("--ef", default="64,128,256,512")
    ap.add_argument("--queries", type=Path, required=True)
    ap.add_argument("--max-queries", type=int, default=200)
    ap.add_argument("--kind", default="fake")
    ap.add_argument("--model", default="fake-384")
    ap.add_argument("--using", default="text_dense")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    src = qe.EdgeShard.load(str(args.shard))
    vectors, ids, offset = [], [], None
    while len(vectors) < args.points:
        req = qe.ScrollRequest(offset=offset, limit=2000, with_payload=False, with_vector=[args.using])
        records, offset = src.scroll(req)
        for r in records:
            vectors.append(r.vector[args.using])
            ids.append(r.id)
        if offset is None:
            break
    src.close()
    vectors, ids = vectors[: args.points], ids[: args.points]
    texts = [json.loads(line)["text"] for line in args.queries.read_text().splitlines() if line.strip()]
    encoder = EncoderPool("cpu").get(args.kind, args.model)
    queries = [e.pooled.tolist() for e in encoder.encode_texts(texts[: args.max_queries], as_query=True)]
    dim = len(vectors[0])
    result: dict = {"points": len(vectors), "queries": len(queries), "configs": {}}
    truth: list[set[str]] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        for config in args.configs.split(","):
            m, efc = (int(x) for x in config.split("/"))
            path = str(Path(tmp) / f"m{m}-efc{efc}")
            graph = qe.HnswIndexConfig(m=m, ef_construct=efc, full_scan_threshold=10_000)
            params = qe.EdgeVectorParams(
                size=dim, distance=qe.Distance.Cosine, datatype=qe.VectorStorageDatatype.Float16, hnsw_config=graph
            )
            optimizers = qe.EdgeOptimizersConfig(default_segment_number=1, max_segment_size=2**40)
            shard = qe.EdgeShard.create(path, qe.EdgeConfig(vectors={"d": params}, optimizers=optimizers))
            for i in range(0, len(vectors), 1000):
                batch = [qe.Point(ids[j], {"d": vectors[j]}, {}) for j in range(i, min(i + 1000, len(vectors)))]
                shard.update(qe.UpdateOperation.upsert_points(batch))
            shard.flush()
            t = time.perf_counter()
            shard.optimize()
            row: dict = {"build_s": round(time.perf_counter() - t, 1)}

            def top(vector: list[float], search: qe.SearchParams, shard: qe.EdgeShard = shard) -> set[str]:
                query = qe.Query.Nearest(vector, using="d")
                found = shard.query(qe.QueryRequest(limit=10, query=query, with_payload=False, params=search))
                return {str(p.id) for p in found}

            if truth is None:
                truth = [top(q, qe.SearchParams(exact=True)) for q in queries]
            for ef in (int(x) for x in args.ef.split(",")):
                got, ms = [], []
                for q in queries:
                    t = time.perf_counter()
                    got.append(top(q, qe.SearchParams(hnsw_ef=ef)))
                    ms.append((time.perf_counter() - t) * 1e3)
                recall = statistics.fmean(len(g & e) / 10 for g, e in zip(got, truth, strict=True))
                row[f"ef{ef}"] = {"recall_at_10": round(recall, 3), "p50_ms": round(statistics.median(ms), 2)}
            result["configs"][f"m{m}/efc{efc}"] = row
            print(f"m {m} ef_construct {efc}: {json.dumps(row)}", flush=True)
            shard.close()
            shutil.rmtree(path, ignore_errors=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
