"""The embedded store's shards: fan-out answers like one shard, each point lives in one shard, index
builds run in a child process and lose no write, and the manifest is the truth on restart."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmsearch.server.ranking.lexical import query_terms
from mmsearch.server.storage import build
from mmsearch.server.storage.base import Cond, PointData, Where, point_id
from mmsearch.server.storage.edge import EdgeStore, ShardOptions

from .test_storage import _points, _spec

SMALL = ShardOptions(seal_points=7, max_shard_points=20)


def _wait(until: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _upsert(store: EdgeStore, points: list[PointData], batch: int = 3) -> None:
    for i in range(0, len(points), batch):
        store.upsert("c", points[i : i + batch])


def _manifest(root: Path) -> dict[str, Any]:
    return json.loads((root / "collections" / "c" / "manifest.json").read_text())


@pytest.fixture
def one(tmp_path: Path) -> Iterator[EdgeStore]:
    s = EdgeStore(tmp_path / "one", shards=ShardOptions(seal_points=10_000, index_build=False))
    s.create_collection(_spec())
    yield s
    s.close()


def test_fan_out_answers_like_one_shard(one: EdgeStore, tmp_path: Path) -> None:
    many = EdgeStore(tmp_path / "many", shards=SMALL)
    many.create_collection(_spec())
    pts = _points(40)
    for s in (one, many):
        _upsert(s, pts)

    def same_answers() -> None:
        for q in (pts[3], pts[17], pts[33]):
            for where in (Where(), Where(must=[Cond(key="meta.year", range={"gte": 2010})])):
                a, b = (
                    one.dense_search("c", "text", q.dense, 12, where),
                    many.dense_search("c", "text", q.dense, 12, where),
                )
                assert list(a) == list(b) and np.allclose(list(a.values()), list(b.values()), atol=1e-5)
            ids = [p.id for p in pts[::3]]
            a, b = one.score_ids("c", "text_tokens", q.tokens, ids), many.score_ids("c", "text_tokens", q.tokens, ids)
            assert a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-4 for k in a)
        assert list(many.lexical_search("c", query_terms("zebras"), 5, Where())) == [pts[5].id]
        ids = [p.id for p in pts[5:25]]
        got = {h.id: h.payload["doc_id"] for h in many.retrieve("c", ids, fields=["doc_id"])}
        assert got == {h.id: h.payload["doc_id"] for h in one.retrieve("c", ids, fields=["doc_id"])}
        assert len(got) == 20
        for where in (Where(), Where(must=[Cond(key="meta.year", range={"lt": 2030})])):
            assert many.count("c", where) == one.count("c", where)

    assert many.stats("c").shards >= 5  # 40 points, sealed every 7
    same_answers()  # sealed shards searched by a scan, some maybe being indexed
    _wait(lambda: not many.stats("c").indexing)
    stats = many.stats("c")
    assert stats.points == 40 and stats.indexed_points == 36 and stats.shards < 5  # merged by up to 20
    same_answers()
    # Every shard's payload indexes are asked for on disk (memory-mapped once a build makes the
    # segment immutable), not rebuilt in RAM at every load.
    configs = [
        json.loads(f.read_text())["indexed_fields"]
        for f in (tmp_path / "many" / "collections" / "c" / "shards").glob("*/segments/*/payload_index/config.json")
    ]
    assert configs and all({"doc_id", "seq", "_live"} <= c.keys() for c in configs)
    assert all(params["on_disk"] for c in configs for params in c.values())
    many.close()


def test_reingest_across_a_seal_shows_each_document_once(tmp_path: Path) -> None:
    s = EdgeStore(tmp_path, shards=ShardOptions(seal_points=5, index_build=False))
    s.create_collection(_spec())
    pts = _points(12)
    _upsert(s, pts)
    again = [PointData(p.id, p.space, p.dense, p.tokens, p.lexical, {**p.payload, "text": "v2"}) for p in pts]
    _upsert(s, again[::-1], batch=4)  # newest first: the first overwrite reaches the oldest shard
    assert s.count("c") == 12 and s.stats("c").shards == 4
    hits = s.dense_search("c", "text", pts[0].dense, 50, Where())
    assert sorted(hits) == sorted(p.id for p in pts)
    assert {h.payload["text"] for h in s.retrieve("c", list(hits))} == {"v2"}
    s.close()


def test_a_delete_during_a_build_is_replayed_on_its_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The build works on a copy: a delete that reaches a source shard after the copy must reach
    the built shard too, or the deleted point would come back when it is swapped in."""
    store: list[EdgeStore] = []
    child_pids: list[int] = []
    real = subprocess.Popen

    class DeleteWhileBuilding(real):  # type: ignore[misc, valid-type]
        def wait(self, timeout: float | None = None) -> int:
            if self.args[0] != sys.executable:  # the copy (cp), not the build
                return int(super().wait(timeout))
            child_pids.append(self.pid)
            assert self.pid != os.getpid() and self.poll() is None  # the build runs in another process
            store[0].delete("c", Where(must=[Cond(key="doc_id", any_of=["d1", "d4"])]))
            return int(super().wait(timeout))

    monkeypatch.setattr(build.subprocess, "Popen", DeleteWhileBuilding)
    store.append(EdgeStore(tmp_path, shards=ShardOptions(seal_points=6)))
    s = store[0]
    s.create_collection(_spec())
    pts = _points(8)
    _upsert(s, pts)
    _wait(lambda: not s.stats("c").indexing)
    assert child_pids and s.stats("c").indexed_points == 4  # 6 sealed and indexed, less the 2 deleted
    assert s.count("c") == 6 and not s.retrieve("c", [pts[1].id, pts[4].id])
    s.close()
    s = EdgeStore(tmp_path, shards=ShardOptions(seal_points=6, index_build=False))
    assert s.count("c") == 6 and not s.retrieve("c", [pts[1].id, pts[4].id])
    s.close()


def test_restart_after_a_killed_build_keeps_every_point_once(tmp_path: Path) -> None:
    """A build killed midway leaves its copy; the next start deletes the folders manifest.json does
    not name (a stray build, a copy) and every acknowledged point is there once."""
    s = EdgeStore(tmp_path, shards=ShardOptions(seal_points=5, max_shard_points=1000))
    s.create_collection(_spec())
    pts = _points(30)
    _upsert(s, pts)
    assert s.builder is not None
    _wait(lambda: s.builder is not None and s.builder.child_pid is not None)
    os.kill(s.builder.child_pid, signal.SIGKILL)
    s.close()
    shards = tmp_path / "collections" / "c" / "shards"
    (shards / "999999" / "segments").mkdir(parents=True)  # a build cut short by a crash
    (shards / "000002.sources").mkdir()  # a merge's copies
    shutil.copytree(shards / _manifest(tmp_path)["shards"][0]["id"], shards / "999998")  # a copy of a shard

    s = EdgeStore(tmp_path, shards=ShardOptions(seal_points=5, index_build=False))
    assert sorted(p.name for p in shards.iterdir()) == sorted(e["id"] for e in _manifest(tmp_path)["shards"])
    hits = s.dense_search("c", "text", pts[0].dense, 100, Where())
    assert sorted(hits) == sorted(p.id for p in pts) and s.count("c") == 30
    assert len(s.retrieve("c", [p.id for p in pts])) == 30
    s.close()


def test_a_single_shard_collection_is_migrated(tmp_path: Path) -> None:
    """Data dirs from before shards hold collections/<name>/shard/ and no manifest."""
    s = EdgeStore(tmp_path, shards=ShardOptions(index_build=False))
    s.create_collection(_spec())
    pts = _points(9)
    s.upsert("c", pts)
    s.close()
    folder = tmp_path / "collections" / "c"
    (folder / "shards" / "000001").rename(folder / "shard")
    (folder / "shards").rmdir()
    (folder / "manifest.json").unlink()

    s = EdgeStore(tmp_path, shards=ShardOptions(seal_points=5))
    assert _manifest(tmp_path)["shards"] == [{"id": "shard", "state": "sealed"}]
    assert s.count("c") == 9 and s.stats("c").indexing
    _wait(lambda: not s.stats("c").indexing)  # indexed like any sealed shard, into shards/<id>
    _wait(lambda: not (folder / "shard").exists())  # deleted once swapped out
    assert s.stats("c").indexed_points == 9
    s.upsert("c", [pts[0]])
    assert s.count("c") == 9 and s.stats("c").shards == 2
    s.close()


def test_point_ids_stay_unique_across_shards(tmp_path: Path) -> None:
    s = EdgeStore(tmp_path, shards=ShardOptions(seal_points=4, index_build=False))
    s.create_collection(_spec())
    pts = _points(10)
    for _ in range(3):
        _upsert(s, pts, batch=3)
    s.delete("c", Where(must=[Cond(key="doc_id", match="d2")]))
    assert s.count("c") == 9 and point_id("d2", 0) not in s.dense_search("c", "text", pts[2].dense, 20, Where())
    s.close()


def test_rescoring_asks_only_the_shard_that_holds_each_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmsearch.server.storage.shard import Shard

    s = EdgeStore(tmp_path, shards=ShardOptions(seal_points=5, index_build=False))
    s.create_collection(_spec())
    pts = _points(20)
    _upsert(s, pts, batch=5)
    assert s.stats("c").shards == 4
    asked: list[str] = []
    real = Shard.query_batch  # every search asks a shard in one batch
    monkeypatch.setattr(Shard, "query_batch", lambda self, requests: asked.append(self.id) or real(self, requests))
    q = pts[2]
    exact = {p.id: float(np.mean((q.tokens @ p.tokens.T).max(axis=1)) * len(q.tokens)) for p in pts}

    ids = [p.id for p in pts[:3]]  # written together: one shard
    got = s.score_ids("c", "text_tokens", q.tokens, ids)  # no search found them yet: every shard
    assert len(asked) == 4 and got.keys() == set(ids)
    s.dense_search("c", "text", q.dense, 20, Where())  # finds all 20, in their shards
    asked.clear()
    got = s.score_ids("c", "text_tokens", q.tokens, ids)
    assert len(asked) == 1 and all(abs(got[i] - exact[i]) < 1e-3 for i in ids)
    # Their payloads too (a search's results), while an id no search returned is asked of every shard.
    fetched: list[str] = []
    real_retrieve = Shard.retrieve
    monkeypatch.setattr(Shard, "retrieve", lambda self, *a: fetched.append(self.id) or real_retrieve(self, *a))
    assert {h.payload["doc_id"] for h in s.retrieve("c", ids, fields=["doc_id"])} == {
        p.payload["doc_id"] for p in pts[:3]
    }
    assert len(fetched) == 1
    fetched.clear()
    assert len(s.retrieve("c", [pts[5].id, pts[19].id], fields=["doc_id"])) == 2 and len(fetched) == 2
    fetched.clear()
    assert len(s.retrieve("c", [pts[5].id, point_id("never-written", 0)], fields=["doc_id"])) == 1
    assert len(fetched) == 4

    # Written again, they move to the active shard: asked everywhere again, and still found.
    _upsert(s, pts[:3], batch=3)
    asked.clear()
    got = s.score_ids("c", "text_tokens", q.tokens, ids)
    assert len(asked) == s.stats("c").shards and all(abs(got[i] - exact[i]) < 1e-3 for i in ids)
    fetched.clear()
    assert len(s.retrieve("c", ids, fields=["doc_id"])) == 3 and len(fetched) == s.stats("c").shards
    s.close()


def test_new_shards_are_copies_of_one_empty_shard_with_every_payload_index(tmp_path: Path) -> None:
    s = EdgeStore(tmp_path, shards=ShardOptions(seal_points=5, index_build=False))
    s.create_collection(_spec())
    _upsert(s, _points(14), batch=5)  # three shards: 5 (sealed), 5 (sealed), 4
    folder = tmp_path / "collections" / "c"
    assert len(list(folder.glob("empty-shard-*"))) == 1  # made once, on the first write
    col = s._get("c")
    schemas = [set(shard._engine.info().payload_schema) for shard in col._current()]
    assert len(schemas) == 3 and all(x == schemas[0] for x in schemas)
    assert {"doc_id", "modality", "seq"} <= schemas[0]
    s.close()


def test_a_merge_keeps_later_deletes_of_every_source(tmp_path: Path) -> None:
    """The engine skips a delete whose operation number is below the point's version: after a
    merge of shards numbered differently (here the second has many more operations), deletes of
    points from either must still apply, and stay applied after a restart."""
    s = EdgeStore(tmp_path, shards=ShardOptions(seal_points=5, index_build=False))
    s.create_collection(_spec())
    pts = _points(10)
    s.upsert("c", pts[:5])  # shard 1: a few operations
    for _ in range(30):
        s.upsert("c", pts[5:6])  # shard 2: many (overwrites), so its points carry higher versions
    _upsert(s, pts[6:10], batch=1)
    assert s.stats("c").shards == 2
    s.close()

    s = EdgeStore(tmp_path, shards=ShardOptions(seal_points=5, max_shard_points=1000))
    _wait(lambda: not s.stats("c").indexing)
    stats = s.stats("c")
    assert stats.shards == 1 and stats.indexed_points == 10  # one build merged both
    s.delete("c", Where(must=[Cond(key="doc_id", any_of=[f"d{i}" for i in range(0, 10, 2)])]))
    assert s.count("c") == 5
    s.close()
    s = EdgeStore(tmp_path, shards=ShardOptions(seal_points=5, index_build=False))
    assert s.count("c") == 5
    assert sorted(s.dense_search("c", "text", pts[1].dense, 20, Where())) == sorted(p.id for p in pts[1::2])
    s.close()


def test_builds_merge_like_sizes_so_points_are_reindexed_log_times() -> None:
    """plan_merge on a simulated ingest: 50 shards of 20k sealed one after another, each build done
    before the next seal."""
    from mmsearch.server.storage.sharded import plan_merge

    assert plan_merge([(20, True)], 100) == [0]  # a sealed shard alone
    assert plan_merge([(20, False), (20, True)], 100) == [0, 1]  # like sizes merge
    assert plan_merge([(20, True), (80, False)], 100) == [0]  # 80 > 2 x 20: not yet
    assert plan_merge([(20, False), (40, False), (80, False)], 1000) == [0, 1, 2]  # 20 + 40, then 80 <= 120
    assert plan_merge([(20, False), (90, False)], 100) == []  # nothing sealed, nothing fits
    assert plan_merge([(500, False)], 100) == []  # a full indexed shard stays as it is
    assert plan_merge([(30, False), (150, True)], 100) == [1]  # a sealed one over the limit: alone
    assert plan_merge([(3, False), (20, False), (20, False)], 100) == [1, 2]  # a tiny one does not block

    for max_points, most in ((500_000, 4), (1_000_000, 4)):
        shards: list[tuple[int, bool]] = []
        indexed = 0
        for _ in range(50):
            shards.append((20_000, True))
            taken = plan_merge(shards, max_points)
            indexed += sum(shards[i][0] for i in taken)
            shards = [s for i, s in enumerate(shards) if i not in taken] + [(sum(shards[i][0] for i in taken), False)]
        assert sum(n for n, _ in shards) == 1_000_000 and all(not sealed for _, sealed in shards)
        assert len(shards) <= most and max(n for n, _ in shards) <= max_points
        assert indexed / 1_000_000 < 4  # each point indexed < 4 times (merging into the largest: ~n / 2 / 20k)


def test_the_build_child_merges_every_point_flushing_as_it_goes(tmp_path: Path) -> None:
    """merge_and_optimize of two shard copies into a third, flushing every 2 points (the log would
    otherwise hold every merged vector uncompressed until the end): one shard, every point once."""
    import qdrant_edge as qe

    s = EdgeStore(tmp_path / "d", shards=ShardOptions(seal_points=5, index_build=False))
    s.create_collection(_spec())
    pts = _points(15)
    _upsert(s, pts, batch=5)
    shards = sorted((tmp_path / "d" / "collections" / "c" / "shards").iterdir())
    assert len(shards) == 3
    s.close()
    shutil.copytree(shards[0], tmp_path / "out")  # as the builder does: the largest becomes the result
    copies = [shutil.copytree(p, tmp_path / f"copy{i}") for i, p in enumerate(shards[1:])]
    build.merge_and_optimize(str(tmp_path / "out"), [str(c) for c in copies], batch=2, flush_points=2)
    merged = qe.EdgeShard.load(str(tmp_path / "out"))
    records, _ = merged.scroll(qe.ScrollRequest(limit=100, with_payload=True, with_vector=False))
    assert sorted(str(r.id) for r in records) == sorted(p.id for p in pts)
    assert merged.info().segments_count <= 2  # merged into one (plus the engine's appendable one)
    merged.close()


def test_builds_keep_a_segment_per_core_so_one_search_uses_both(tmp_path: Path) -> None:
    """A build large enough for several segments keeps them (the engine searches a shard's segments
    in parallel): 300 + 300 points with segments of 200 -> 2; adding 300 more merges the smallest
    and stays at 2; a build too small for two -> 1. The engine only keeps segments this small apart
    with a low indexing threshold, so the shards here are made with one; every point stays findable."""
    import uuid

    import qdrant_edge as qe

    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((900, 16)).astype(np.float32)

    def shard(name: str, lo: int) -> str:
        path = str(tmp_path / name)
        optimizers = qe.EdgeOptimizersConfig(default_segment_number=1, max_segment_size=2**40, indexing_threshold=1)
        config = qe.EdgeConfig(
            vectors={"v": qe.EdgeVectorParams(size=16, distance=qe.Distance.Cosine)}, optimizers=optimizers
        )
        s = qe.EdgeShard.create(path, config)
        points = [qe.Point(str(uuid.UUID(int=i + 1)), {"v": vectors[i].tolist()}, {}) for i in range(lo, lo + 300)]
        s.update(qe.UpdateOperation.upsert_points(points))
        s.flush()
        s.optimize()
        s.close()
        return path

    def segments_and_ids(path: str) -> tuple[int, set[str]]:
        s = qe.EdgeShard.load(path)
        records, _ = s.scroll(qe.ScrollRequest(limit=1000, with_payload=False, with_vector=False))
        nearest = s.query(qe.QueryRequest(limit=1, query=qe.Query.Nearest(vectors[5].tolist(), using="v")))
        assert str(nearest[0].id) == str(uuid.UUID(int=6))
        n = s.info().segments_count - 1  # and the engine's empty appendable one
        s.close()
        return n, {str(r.id) for r in records}

    ids = [str(uuid.UUID(int=i + 1)) for i in range(900)]
    out = shard("out", 0)
    build.merge_and_optimize(out, [shard("b", 300)], segment_points=200, max_segments=2)
    assert segments_and_ids(out) == (2, set(ids[:600]))
    build.merge_and_optimize(out, [shard("c", 600)], segment_points=200, max_segments=2)
    assert segments_and_ids(out) == (2, set(ids))

    small = shard("small", 0)
    build.merge_and_optimize(small, [shard("d", 300)], segment_points=1000, max_segments=2)
    assert segments_and_ids(small) == (1, set(ids[:600]))
    assert [build.segments_for(n, 50_000, 2) for n in (0, 99_999, 100_000, 1_000_000)] == [1, 1, 2, 2]
    assert build.segments_for(1_000_000, 50_000, 16) == 16


def test_a_search_chooses_its_breadth_or_an_exact_scan(tmp_path: Path) -> None:
    """Per-search HNSW breadth on an indexed shard whose graph is poor on purpose (m=2,
    ef_construct=4): the store's default breadth misses some true neighbours, a wide hnsw_ef finds
    more, and `exact` scans every point: exactly numpy's top 10."""
    import uuid

    import qdrant_edge as qe

    from mmsearch.server.storage.records import Breadth
    from mmsearch.server.storage.sharded import ShardedCollection

    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    folder = tmp_path / "c"
    (folder / "shards").mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"next_id": 2, "shards": [{"id": "000001", "state": "indexed"}]}))
    graph = qe.HnswIndexConfig(m=2, ef_construct=4, full_scan_threshold=1)
    config = qe.EdgeConfig(
        vectors={"text_dense": qe.EdgeVectorParams(size=32, distance=qe.Distance.Cosine, hnsw_config=graph)},
        optimizers=qe.EdgeOptimizersConfig(default_segment_number=1, max_segment_size=2**40, indexing_threshold=1),
    )
    engine = qe.EdgeShard.create(str(folder / "shards" / "000001"), config)
    ids = [str(uuid.UUID(int=i + 1)) for i in range(len(vectors))]
    points = [qe.Point(i, {"text_dense": v.tolist()}, {}) for i, v in zip(ids, vectors, strict=True)]
    engine.update(qe.UpdateOperation.upsert_points(points))
    engine.optimize()
    engine.close()
    col = ShardedCollection(_spec(), folder, lambda p: qe.EdgeShard.load(str(p)), seal_points=10_000, hnsw_ef=10)
    queries = rng.standard_normal((30, 32)).astype(np.float32)

    def recall(breadth: Breadth) -> float:
        found = 0
        for q in queries:
            truth = {ids[i] for i in np.argsort(-(vectors @ q))[:10]}
            found += len(truth & set(col.query("text_dense", q.tolist(), 10, None, breadth=breadth)))
        return found / (10 * len(queries))

    default, wide, exact = recall(Breadth()), recall(Breadth(hnsw_ef=2000)), recall(Breadth(exact=True))
    assert exact == 1.0
    assert default < 0.95 and wide > default, (default, wide)
    col.close(flush=False)


def test_new_shards_get_the_configured_graph_and_builds_keep_it(tmp_path: Path) -> None:
    """--hnsw-m / --hnsw-ef-construct: the dense vectors of shards made from then on carry them (the
    template is made again for new values; existing shards keep theirs), and a build's merged shard
    keeps them for the graph it builds."""

    def dense_graph(folder: Path) -> dict[str, Any]:
        config = json.loads((folder / "edge_config.json").read_text())
        return dict(config["vectors"]["text_dense"].get("hnsw_config") or {})

    s = EdgeStore(tmp_path, shards=ShardOptions(seal_points=5, max_shard_points=10, hnsw_m=32, hnsw_ef_construct=64))
    s.create_collection(_spec())
    _upsert(s, _points(12), batch=5)  # sealed 5 + 5 -> one build of 10; 2 in the active shard
    _wait(lambda: sorted(x["state"] for x in _manifest(tmp_path)["shards"]) == ["active", "indexed"])
    folder = tmp_path / "collections" / "c"
    for shard in _manifest(tmp_path)["shards"]:  # the built one and the active one
        graph = dense_graph(folder / "shards" / shard["id"])
        assert (graph["m"], graph["ef_construct"]) == (32, 64)
    assert s.count("c", Where()) == 12
    template = {t.name for t in folder.glob("empty-shard-*")}
    s.close()

    # Restarted with the defaults: the next shard is made from a new template with the engine's 16 / 100.
    s = EdgeStore(tmp_path, shards=ShardOptions(seal_points=5, index_build=False))
    _upsert(s, _points(20)[12:], batch=5)  # the active shard (2 + 5) is sealed; a new one takes the last 3
    assert len(template) == 1 and {t.name for t in folder.glob("empty-shard-*")} - template
    graphs = [dense_graph(folder / "shards" / shard["id"]) for shard in _manifest(tmp_path)["shards"]]
    assert sorted(g["m"] for g in graphs) == [16, 32, 32]
    s.close()
