"""Portable snapshots of remote collections (storage/portable.py) at the store level: after points
are deleted, or the whole collection dropped, a restore brings back every point with its payload
and the same scores; hidden points it brings back are swept. qdrant-client's in-memory
engine (which has no snapshot API of its own) stands in for the server."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmsearch.server.storage.base import Cond, Where

from .qdrant_standins import memory_store
from .test_documents_atomic import _pt
from .test_storage import _spec


def test_restore_brings_back_every_point_and_the_exact_scores(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    store = memory_store(tmp_path)
    store.create_collection(_spec())
    store.upsert("c", [_pt(f"d{i}", s, 0, 0, rng) for i in range(40) for s in range(3)])
    store.upsert("c", [_pt("d0", s, 1, 0, rng) for s in range(2)])  # a version in flight: hidden
    queries = [v / np.linalg.norm(v) for v in rng.normal(size=(5, 16)).astype(np.float32)]

    def results() -> list[list[tuple[str, float]]]:
        # Scores to 6 places: Qdrant normalises cosine vectors on every upsert, and normalising the
        # stored (already unit) vector again may change its last float32 bit (measured: <= 6e-8).
        return [[(k, round(v, 6)) for k, v in store.dense_search("c", "text", q, 20, Where()).items()] for q in queries]

    before = results()
    ids = [k for k, _ in before[0]]
    payloads = {h.id: h.payload for h in store.retrieve("c", ids)}
    snap = store.create_snapshot("c")
    assert snap.size_bytes > 0 and [s.name for s in store.list_snapshots("c")] == [snap.name]

    store.delete("c", Where(must=[Cond(key="doc_id", any_of=[f"d{i}" for i in range(20)])]))
    assert results() != before
    store.restore_snapshot("c", snap.name)
    assert results() == before  # the same ids in the same order, the same scores
    assert {h.id: h.payload for h in store.retrieve("c", ids)} == payloads
    assert store.count("c") == 120 and store.count("c", hidden=True) == 120  # the hidden two were swept

    store.drop_collection("c")
    store.restore_snapshot("c", snap.name)
    assert results() == before and store.get_spec("c") == _spec()
    store.close()
