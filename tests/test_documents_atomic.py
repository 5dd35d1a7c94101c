"""Documents are all or nothing: a new version is invisible until it is complete and replaces the
old one at once; a payload switch over several shards is finished after a crash; hidden leftovers
are swept at startup; a single-passage item costs one write. Fake encoder, both storage backends."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmsearch.client import Client
from mmsearch.server.app import App
from mmsearch.server.storage.base import LIVE, SLOT, Cond, PointData, Where, point_id
from mmsearch.server.storage.edge import EdgeStore, ShardOptions
from mmsearch.server.storage.shard import Shard

from .documents import text_item
from .test_storage import DIM, _spec


def _long_text(passages: int) -> str:
    """`passages` passages in a collection made with max_words=10, overlap_words=2."""
    return " ".join(f"w{i}" for i in range(8 * passages + 2))


def _count(app: App, doc_id: str, version: int | None = None, hidden: bool = False) -> int:
    must = [Cond(key="doc_id", match=doc_id)]
    if version is not None:
        must.append(Cond(key="meta.v", range={"gte": version, "lte": version}))
    return app.store.count("c", Where(must=must), hidden=hidden)


def test_new_version_is_invisible_until_complete_then_replaces_the_old_at_once(
    fake_app: App, fake_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_client.create_collection("c", max_words=10, overlap_words=2)
    assert [a.points for a in fake_client.ingest("c", [text_item("D", _long_text(6), {"v": 1})])] == [6]
    held, release = threading.Event(), threading.Event()
    real = fake_app.store.upsert

    def upsert(name: str, points: list[PointData]) -> None:
        real(name, points)
        if not held.is_set() and any(p.payload["meta"]["v"] == 2 for p in points):
            held.set()  # the new version's first batch is stored: the test looks now
            release.wait(20)

    monkeypatch.setattr(fake_app.store, "upsert", upsert)
    acks: list[Any] = []
    ingest = threading.Thread(
        target=lambda: acks.extend(fake_client.ingest("c", [text_item("D", _long_text(40), {"v": 2})]))
    )
    ingest.start()
    try:
        assert held.wait(20)
        assert _count(fake_app, "D", hidden=True) >= 6 + 32  # the new version's first batch is stored...
        assert (_count(fake_app, "D"), _count(fake_app, "D", 1)) == (6, 6)  # ...but only the old one is seen
        hits = fake_client.search("c", "w300 w301 w302", top_k=5).results  # words only the new version has
        assert all(r.document_id != "D" or r.passage < 6 for r in hits)  # the old version has passages 0-5
    finally:
        release.set()
        ingest.join(20)
    assert [(a.ok, a.points) for a in acks] == [(True, 40)]
    assert (_count(fake_app, "D"), _count(fake_app, "D", 2), _count(fake_app, "D", hidden=True)) == (40, 40, 40)
    # and back to a shorter version: the other slot again, nothing of the 40 left
    assert [a.points for a in fake_client.ingest("c", [text_item("D", _long_text(3), {"v": 3})])] == [3]
    assert (_count(fake_app, "D", 3), _count(fake_app, "D", hidden=True)) == (3, 3)


def test_single_passage_item_is_one_write(fake_app: App, fake_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_client.create_collection("c")
    writes: list[str] = []
    for method in ("upsert", "delete", "set_payload"):
        real = getattr(fake_app.store, method)
        monkeypatch.setattr(
            fake_app.store, method, lambda *a, _m=method, _r=real, **k: (writes.append(_m), _r(*a, **k))[1]
        )
    for version in (1, 2):  # new, then replaced in place
        writes.clear()
        assert [a.ok for a in fake_client.ingest("c", [text_item("one", f"a short note {version}", {"v": version})])]
        assert writes == ["upsert"]
        assert (_count(fake_app, "one", version), _count(fake_app, "one", hidden=True)) == (1, 1)


def _pt(doc: str, seq: int, slot: int, live: int, rng: np.random.Generator) -> PointData:
    v = rng.normal(size=DIM).astype(np.float32)
    v /= np.linalg.norm(v)
    payload = {"doc_id": doc, "seq": seq, SLOT: slot, LIVE: live}
    return PointData(point_id(doc, seq, slot=slot), "text", v, v[None, :], None, payload)


def test_switch_over_shards_is_finished_after_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    store = EdgeStore(tmp_path, shards=ShardOptions(seal_points=7, index_build=False))
    store.create_collection(_spec())
    store.upsert("c", [_pt("d", i, 0, 0, rng) for i in range(5)] + [_pt(f"f{i}", 0, 0, 0, rng) for i in range(2)])
    store.upsert("c", [_pt("d", i, 1, 0, rng) for i in range(3)])  # new version, hidden, in the next shard
    assert store.stats("c").shards == 2
    doc = Where(must=[Cond(key="doc_id", match="d")])
    assert store.count("c", doc) == 5
    real, calls = Shard.set_payload, []

    def dies_after_one_shard(shard: Shard, *args: Any) -> None:
        if calls:
            raise SystemExit("killed")  # the process dies between the two shards
        calls.append(shard.id)
        real(shard, *args)

    monkeypatch.setattr(Shard, "set_payload", dies_after_one_shard)
    with pytest.raises(SystemExit):
        store.set_payload("c", doc, {LIVE: 1})
    assert store.count("c", doc) == 0  # old hidden, new not shown yet: absent, never mixed
    store.close()
    monkeypatch.setattr(Shard, "set_payload", real)

    again = EdgeStore(tmp_path, shards=ShardOptions(seal_points=7, index_build=False))
    assert again.count("c", doc) == 3  # the switch was finished on open
    assert again.count("c", doc, hidden=True) == 8 and again.sweep("c") == 5
    assert again.count("c", doc, hidden=True) == 3 and again.count("c") == 5
    again.close()
