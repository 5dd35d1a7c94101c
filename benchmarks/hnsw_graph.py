"""HNSW build parameters (m, ef_construct) on real shard vectors: the pooled (dense) vectors of a
built shard copied into one fresh segment per configuration, then recall@10 against an exact search
and the engine's search time at each ef (the segment's own, no server).

    python benchmarks/hnsw_graph.py SHARD_DIR --points 240000 --configs 16/100,32/100,16/200,32/200 \\
        --queries ../shared/data/beir_scifact/queries.jsonl --kind fake --model fake-384 --out RESULT.json

A config may name a quantised copy the graph is searched on: `16/100/int8` (scalar int8, kept in RAM),
`16/100/int8cold` (int8, memory-mapped) or `16/100/turbo8` / `turbo4` (TurboQuant at 8 / 4 bits);
searches then rescore `--oversampling` x the limit with the stored vectors. Each row also gives the
time to load the built segment (a server holds the GIL while it loads a shard). `--limit 100` asks
what the server asks each shard (its prefetch_k).

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


def quantisation(name: str) -> object:
    """The engine's quantisation config for a config's third part."""
    if name == "int8":  # on the heap (Qdrant's "pinned"; always_ram)
        return qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, always_ram=True)
    if name == "int8cold":  # memory-mapped, read by the OS as searches touch it
        return qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, memory=qe.Memory.Cold)
    if name in ("turbo8", "turbo4"):
        bits = qe.TurboQuantBitSize.Bits8 if name == "turbo8" else qe.TurboQuantBitSize.Bits4
        return qe.TurboQuantQuantizationConfig(always_ram=True, bits=bits)
    raise SystemExit(f"unknown quantisation {name!r} (int8, int8cold, turbo8, turbo4)")


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
    ap.add_argument("--limit", type=int, default=10, help="points asked per search (recall is of the best 10)")
    ap.add_argument("--oversampling", type=float, default=2.0, help="quantised configs: candidates rescored")
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
    result: dict = {"points": len(vectors), "queries": len(queries), "limit": args.limit, "configs": {}}
    truth: list[set[str]] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        for config in args.configs.split(","):
            m_, efc_, *quant = config.split("/")
            m, efc = int(m_), int(efc_)
            path = str(Path(tmp) / config.replace("/", "-"))
            graph = qe.HnswIndexConfig(m=m, ef_construct=efc, full_scan_threshold=10_000)
            params = qe.EdgeVectorParams(
                size=dim, distance=qe.Distance.Cosine, datatype=qe.VectorStorageDatatype.Float16, hnsw_config=graph,
                quantization_config=quantisation(quant[0]) if quant else None,
            )  # fmt: skip
            rescore = qe.QuantizationSearchParams(rescore=True, oversampling=args.oversampling) if quant else None
            optimizers = qe.EdgeOptimizersConfig(default_segment_number=1, max_segment_size=2**40)
            shard = qe.EdgeShard.create(path, qe.EdgeConfig(vectors={"d": params}, optimizers=optimizers))
            for i in range(0, len(vectors), 1000):
                batch = [qe.Point(ids[j], {"d": vectors[j]}, {}) for j in range(i, min(i + 1000, len(vectors)))]
                shard.update(qe.UpdateOperation.upsert_points(batch))
            shard.flush()
            t = time.perf_counter()
            shard.optimize()
            row: dict = {"build_s": round(time.perf_counter() - t, 1)}
            shard.close()  # what a server does after a build: load the shard (holding the GIL)
            t = time.perf_counter()
            shard = qe.EdgeShard.load(path)
            row["load_s"] = round(time.perf_counter() - t, 3)

            def top(vector: list[float], search: qe.SearchParams, shard: qe.EdgeShard = shard) -> set[str]:
                query = qe.Query.Nearest(vector, using="d")
                found = shard.query(qe.QueryRequest(limit=args.limit, query=query, with_payload=False, params=search))
                return {str(p.id) for p in found[:10]}

            if truth is None:
                truth = [top(q, qe.SearchParams(exact=True)) for q in queries]
            for ef in (int(x) for x in args.ef.split(",")):
                got, ms = [], []
                for q in queries:
                    t = time.perf_counter()
                    got.append(top(q, qe.SearchParams(hnsw_ef=ef, quantization=rescore)))
                    ms.append((time.perf_counter() - t) * 1e3)
                recall = statistics.fmean(len(g & e) / 10 for g, e in zip(got, truth, strict=True))
                row[f"ef{ef}"] = {"recall_at_10": round(recall, 3), "p50_ms": round(statistics.median(ms), 2)}
            result["configs"][config] = row
            print(f"{config}: {json.dumps(row)}", flush=True)
            shard.close()
            shutil.rmtree(path, ignore_errors=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
