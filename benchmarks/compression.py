"""Page compression measured: each compression stores the same ColPali pages in the embedded engine,
the engine scores MaxSim over them (as search does), and we report the top-10 agreement with exact
float32 MaxSim over the unpooled patches, and the bytes each page takes on disk.

    python benchmarks/compression.py pages.npz [--copies 8]

pages.npz holds page patch vectors d0, d1, ... (n, dim) and query token vectors q0, q1, ... (m, dim),
e.g. from a ColPali encoder's encode_images / encode_texts(as_query=True). Without real weights the
vectors come from a tiny random checkpoint: the agreement then measures what compression does to
MaxSim over such vectors, not retrieval quality (docs/benchmarks.md).

Disk is allocated bytes (st_blocks) of the collection after a flush, WAL excluded, over `copies`
copies of every page (under new ids) so that per-segment overhead is spread as in a real collection.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

from mmsearch.server.ingest.points import patch_payload
from mmsearch.server.ingest.pooling import pool_tokens
from mmsearch.server.storage.base import CollectionSpec, Compression, PointData, SpaceSpec, point_id
from mmsearch.server.storage.edge import EdgeStore

VARIANTS = [
    Compression("float16", "float32", 1),  # the layout before compression
    Compression("turbo8", "float16", 1),
    Compression("turbo4", "float16", 1),
    Compression("turbo8", "float16", 4),
    Compression("turbo4", "float16", 2),
    Compression("turbo4", "float16", 3),
]


def allocated(folder: Path, skip: str = "wal") -> int:
    return sum(
        os.stat(os.path.join(d, f)).st_blocks * 512 for d, _, files in os.walk(folder) if skip not in d for f in files
    )


def measure(
    docs: list[np.ndarray], queries: list[np.ndarray], c: Compression, copies: int
) -> tuple[float, float, float]:
    """(mean overlap@10, min overlap@10, disk bytes per page)."""
    dim = docs[0].shape[1]
    exact = np.array([[float((q @ d.T).max(axis=1).sum()) for d in docs] for q in queries])
    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeStore(Path(tmp))
        spec = CollectionSpec(
            "pages", "fake", "fake", spaces={"page": SpaceSpec("page", "colpali", "m", dim, ["page"], c)}
        )
        store.create_collection(spec)
        empty = allocated(Path(tmp))
        ids = []
        for copy in range(copies):
            points = []
            for i, d in enumerate(docs):
                pooled = pool_tokens(d, c.token_pool_factor)
                side = max(round(len(d) ** 0.5), 1)
                cells = np.arange(len(d))
                r, col = cells // side, cells % side
                boxes = np.stack([col / side, r / side, (col + 1) / side, (r + 1) / side], axis=1)
                strings = [f"patch r{a}c{b}" for a, b in zip(r, col, strict=True)]
                payload = {
                    "doc_id": f"p{i}-{copy}", "seq": 0, "space": "page", "modality": "page", "passage": 0,
                    "page": 1, "meta": {}, "text": "", "width": 1700, "height": 2200,
                    **patch_payload(strings, boxes, pooled),
                }  # fmt: skip
                mean = d.mean(axis=0)
                pid = point_id(f"p{i}-{copy}", 0)
                points.append(PointData(pid, "page", mean / np.linalg.norm(mean), pooled.tokens, None, payload))
                if copy == 0:
                    ids.append(pid)
            store.upsert("pages", points)
        store.close()  # flushes
        disk = (allocated(Path(tmp)) - empty) / (copies * len(docs))
        store = EdgeStore(Path(tmp))
        overlaps = []
        for qi, q in enumerate(queries):
            got = store.score_ids("pages", "page_tokens", q, ids)
            scores = np.array([got.get(pid, -np.inf) for pid in ids])
            top_e = set(np.argsort(-exact[qi], kind="stable")[:10])
            top_g = set(np.argsort(-scores, kind="stable")[:10])
            overlaps.append(len(top_e & top_g) / 10)
        store.close()
    return float(np.mean(overlaps)), float(np.min(overlaps)), disk


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("npz", type=Path)
    ap.add_argument("--copies", type=int, default=8)
    args = ap.parse_args()
    z = np.load(args.npz)
    docs = [z[k].astype(np.float32) for k in sorted((k for k in z.files if k[0] == "d"), key=lambda k: int(k[1:]))]
    queries = [z[k].astype(np.float32) for k in sorted((k for k in z.files if k[0] == "q"), key=lambda k: int(k[1:]))]
    patches = np.mean([len(d) for d in docs])
    print(f"{len(docs)} pages x {patches:.0f} patches x {docs[0].shape[1]} dims, {len(queries)} queries")
    print("| tokens | dense | pool factor | overlap@10 mean | min | disk per page |")
    print("|---|---|---|---|---|---|")
    for c in VARIANTS:
        mean, low, disk = measure(docs, queries, c, args.copies)
        print(
            f"| {c.tokens} | {c.dense} | {c.token_pool_factor} | {mean:.3f} | {low:.1f} | {disk / 1024:.1f} KiB |",
            flush=True,
        )


if __name__ == "__main__":
    main()
