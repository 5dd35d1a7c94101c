"""Embedded shards that hold no hidden point are searched without the visibility condition
(storage/hidden.py): a count clears the mark, a write that may hide points sets it first, a search
racing such a write asks again with the condition, and a reopened store assumes hidden points until
a count finds none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmsearch.server.storage import hidden
from mmsearch.server.storage.base import LIVE, SLOT, PointData, Where, point_id
from mmsearch.server.storage.edge import EdgeStore, ShardOptions

from .test_storage import DIM, _spec


def _point(doc: str, vector: np.ndarray, slot: int = 0, live: int = 0) -> PointData:
    payload = {"doc_id": doc, "seq": 0, SLOT: slot, LIVE: live}
    return PointData(point_id(doc, 0, slot=slot), "text", vector, vector[None, :], None, payload)


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture(autouse=True)
def recheck_always(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hidden, "RECHECK_S", 0.0)


def _open(tmp_path: Path) -> EdgeStore:
    return EdgeStore(tmp_path, shards=ShardOptions(seal_points=1000, index_build=False))


def test_hidden_points_stay_hidden_whether_or_not_the_condition_is_skipped(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    store = _open(tmp_path)
    store.create_collection(_spec())
    store.upsert("c", [_point(f"d{i}", _unit(rng)) for i in range(20)])
    query = _unit(rng)
    before = store.dense_search("c", "text", query, 5, Where())
    (shard,) = store._get("c")._current()
    assert not shard.may_hide  # counted: nothing hidden, so the next searches skip the condition
    assert store.dense_search("c", "text", query, 5, Where()) == before

    hidden = _point("new", query, slot=1, live=0)  # would rank first if it were visible
    store.upsert("c", [hidden])
    assert shard.may_hide
    assert hidden.id not in store.dense_search("c", "text", query, 5, Where())
    assert shard.may_hide  # the count found it

    store.close()  # a restart: nothing known until counted
    again = _open(tmp_path)
    (reopened,) = again._get("c")._current()
    assert reopened.may_hide
    assert again.dense_search("c", "text", query, 5, Where()) == before
    assert again.sweep("c") == 1
    assert again.dense_search("c", "text", query, 5, Where()) == before
    assert not reopened.may_hide
    again.close()


def test_a_search_racing_a_hidden_write_asks_again_with_the_condition(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    store = _open(tmp_path)
    store.create_collection(_spec())
    store.upsert("c", [_point(f"d{i}", _unit(rng)) for i in range(20)])
    query = _unit(rng)
    before = store.dense_search("c", "text", query, 5, Where())
    (shard,) = store._get("c")._current()
    assert not shard.may_hide
    hidden = _point("new", query, slot=1, live=0)
    real = shard.query_batch  # searches ask each shard in one batch (ShardedCollection.query_many)
    filters: list[Any] = []

    def write_first(requests: list[Any]) -> Any:
        if not filters:  # the search already chose the filter without the condition: the write lands now
            store.upsert("c", [hidden])
        filters.append(requests[0].filter)
        return real(requests)

    shard.query_batch = write_first  # type: ignore[method-assign]
    assert store.dense_search("c", "text", query, 5, Where()) == before
    assert filters[0] is None and filters[1] is not None  # without the condition, then again with it
