"""Text compression measured: disk per passage (allocated bytes after a flush, WAL excluded) for
64-word SciFact passages encoded by the bundled MiniLM (~101 tokens each), stored as ingest stores
them (server/ingest/points.py: pooled tokens, representative token strings, BM25 terms), for the
layout before compression and for the defaults.

    python benchmarks/compression_text.py /work/shared/data/beir_scifact [--passages 1000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from compression import allocated  # type: ignore[import-not-found]  # benchmarks/compression.py

from mmsearch.encoders.registry import EncoderPool
from mmsearch.server.ingest.pooling import pick, pool_tokens
from mmsearch.server.ranking.lexical import document_terms
from mmsearch.server.storage.base import CollectionSpec, Compression, PointData, SpaceSpec, point_id
from mmsearch.server.storage.edge import EdgeStore

VARIANTS = [
    Compression("float16", "float32", 1),  # the layout before compression
    Compression("turbo8", "float16", 3),
    Compression("turbo4", "float16", 2),
    Compression("turbo4", "float16", 3),
    Compression("turbo4", "float16", 4),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("beir", type=Path)
    ap.add_argument("--passages", type=int, default=1000)
    args = ap.parse_args()
    texts = []
    for line in (args.beir / "corpus.jsonl").open():
        words = json.loads(line)["text"].split()
        if len(words) >= 64:
            texts.append(" ".join(words[:64]))
        if len(texts) == args.passages:
            break
    encoder = EncoderPool("cpu").get("sentence-transformers", "all-MiniLM-L6-v2")
    encoded = encoder.encode_texts(texts, as_query=False)
    print(f"{len(texts)} passages of 64 words, {np.mean([len(e.tokens) for e in encoded]):.1f} MiniLM tokens each")
    print("| tokens | dense | pool factor | vectors/passage | disk per passage |")
    print("|---|---|---|---|---|")
    for c in VARIANTS:
        with tempfile.TemporaryDirectory() as tmp:
            store = EdgeStore(Path(tmp))
            spec = CollectionSpec(
                "t", "sentence-transformers", "m", spaces={"text": SpaceSpec("text", "st", "m", 384, ["text"], c)}
            )
            store.create_collection(spec)
            empty = allocated(Path(tmp))
            points, kept = [], []
            for i, (t, e) in enumerate(zip(texts, encoded, strict=True)):
                pooled = pool_tokens(e.tokens, c.token_pool_factor)
                kept.append(len(pooled.tokens))
                payload = {
                    "doc_id": f"d{i}",
                    "space": "text",
                    "seq": 0,
                    "modality": "text",
                    "passage": 0,
                    "page": 0,
                    "meta": {},
                    "source": f"d{i}",
                    "text": t,
                    "tokens": pick(e.token_strings, pooled.representatives),
                }
                if c.token_pool_factor > 1:
                    payload["token_positions"] = pooled.representatives
                points.append(
                    PointData(point_id(f"d{i}", 0), "text", e.pooled, pooled.tokens, document_terms(t), payload)
                )
            for k in range(0, len(points), 64):
                store.upsert("t", points[k : k + 64])
            store.close()
            disk = (allocated(Path(tmp)) - empty) / len(points)
        print(
            f"| {c.tokens} | {c.dense} | {c.token_pool_factor} | {np.mean(kept):.1f} | {disk / 1024:.2f} KiB |",
            flush=True,
        )


if __name__ == "__main__":
    main()
