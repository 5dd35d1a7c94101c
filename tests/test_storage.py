"""The two backends behave the same (congruence), straight through the Store interface."""

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from qdrant_client import QdrantClient

from mmsearch.server import errors
from mmsearch.server.errors import AlreadyExists, InvalidArgument, NotFound, Unavailable
from mmsearch.server.ranking.lexical import document_terms, query_terms
from mmsearch.server.settings import Settings
from mmsearch.server.storage.base import CollectionSpec, Cond, PointData, SpaceSpec, Store, Where, point_id
from mmsearch.server.storage.edge import EdgeStore
from mmsearch.server.storage.remote import RemoteStore

from .qdrant_standins import grpc_answering, memory_store, rest_answering

DIM = 16


@pytest.fixture(params=["edge", "remote"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = EdgeStore(tmp_path) if request.param == "edge" else memory_store()
    yield s
    s.close()


def _spec(name: str = "c") -> CollectionSpec:
    return CollectionSpec(
        name=name,
        text_kind="fake",
        text_model="fake-16",
        indexed_fields={"year": "integer"},
        spaces={"text": SpaceSpec("text", "fake", "fake-16", DIM, ["text"])},
    )


def _points(n: int) -> list[PointData]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        tokens = rng.standard_normal((3 + i % 4, DIM)).astype(np.float32)
        tokens /= np.linalg.norm(tokens, axis=1, keepdims=True)
        dense = tokens.mean(0) / np.linalg.norm(tokens.mean(0))
        text = f"document number {i} about {'zebras' if i == 5 else 'horses'}"
        payload = {"doc_id": f"d{i}", "seq": 0, "modality": "text", "text": text, "meta": {"year": 2000 + i}}
        out.append(PointData(point_id(f"d{i}", 0), "text", dense, tokens, document_terms(text), payload))
    return out


def test_collection_lifecycle(store: Store) -> None:
    store.create_collection(_spec())
    with pytest.raises(AlreadyExists):
        store.create_collection(_spec())
    assert [s.name for s in store.list_specs()] == ["c"]
    assert store.get_spec("c").spaces["text"].dim == DIM
    store.drop_collection("c")
    with pytest.raises(NotFound):
        store.get_spec("c")
    with pytest.raises(NotFound):
        store.drop_collection("c")


def test_search_paths_agree_with_numpy(store: Store) -> None:
    store.create_collection(_spec())
    pts = _points(20)
    store.upsert("c", pts)
    assert store.count("c") == 20

    q = pts[3]
    hits = store.dense_search("c", "text", q.dense, 5, Where())
    assert next(iter(hits)) == q.id and hits[q.id] == pytest.approx(1.0, abs=1e-4)
    expected = sorted(range(20), key=lambda i: -float(pts[i].dense @ q.dense))[:5]
    assert list(hits) == [pts[i].id for i in expected]
    assert list(hits.values()) == sorted(hits.values(), reverse=True)
    # payload is read by id, only the fields asked for
    got = {h.id: h.payload for h in store.retrieve("c", list(hits), fields=["doc_id"])}
    assert got == {pts[i].id: {"doc_id": f"d{i}"} for i in expected}

    # exact MaxSim over chosen ids equals the numpy reference (tokens are stored as float16)
    ids = [p.id for p in pts[:8]]
    scores = store.score_ids("c", "text_tokens", q.tokens, ids)
    for p in pts[:8]:
        ref = float((q.tokens @ p.tokens.T).max(axis=1).sum())
        assert scores[p.id] == pytest.approx(ref, abs=2e-2)

    lex = store.lexical_search("c", query_terms("zebras"), 3, Where())
    assert list(lex) == [pts[5].id]

    got = store.retrieve("c", [pts[2].id], space="text")[0]
    assert got.tokens is not None and got.tokens.shape == pts[2].tokens.shape
    assert np.allclose(got.tokens, pts[2].tokens, atol=2e-3)


def test_filters_and_deletes(store: Store) -> None:
    store.create_collection(_spec())
    store.upsert("c", _points(20))
    rng = Where(must=[Cond(key="meta.year", range={"gte": 2005, "lt": 2010})])
    assert store.count("c", rng) == 5
    assert store.count("c", Where(must=[Cond(key="meta.year", match=2007)])) == 1
    assert store.count("c", Where(must=[Cond(key="doc_id", any_of=["d1", "d2", "nope"])])) == 2
    assert store.count("c", Where(must_not=[Cond(key="meta.year", range={"lt": 2010})])) == 10
    hits = store.dense_search("c", "text", _points(20)[12].dense, 20, rng)
    assert set(hits) == {point_id(f"d{i}", 0) for i in range(5, 10)}
    store.delete("c", rng)
    assert store.count("c") == 15
    store.delete("c", Where(must=[Cond(ids=[point_id("d0", 0)])]))
    assert store.count("c") == 14


def test_edge_reopens_with_data(tmp_path: Path) -> None:
    s = EdgeStore(tmp_path)
    s.create_collection(_spec())
    s.upsert("c", _points(10))
    s.close()
    s2 = EdgeStore(tmp_path)
    assert s2.count("c") == 10 and s2.get_spec("c").indexed_fields == {"year": "integer"}
    s2.close()


def test_edge_flushes_so_the_wal_does_not_keep_everything(tmp_path: Path) -> None:
    """Without flushes the write-ahead log kept every ingested vector until shutdown (1.9 GB beside
    0.8 GB of segments at 10,000 passages); the periodic flush lets Qdrant truncate it."""
    s = EdgeStore(tmp_path, flush_interval_s=0.2)
    spec = CollectionSpec(
        "big", "fake", "fake-384", spaces={"text": SpaceSpec("text", "fake", "fake-384", 384, ["text"])}
    )
    s.create_collection(spec)
    rng = np.random.default_rng(1)
    wal = tmp_path / "collections" / "big" / "shards" / "000001" / "wal"  # the active shard

    def closed_segments() -> int:
        return sum(1 for f in wal.iterdir() if f.name.startswith("closed-"))

    most = 0
    for batch in range(6):  # ~150 KB of WAL per point: several 32 MB WAL segments
        tokens = rng.standard_normal((100, 384)).astype(np.float32)
        points = [
            PointData(point_id(f"d{batch}-{i}", 0), "text", tokens[0], tokens, None, {"doc_id": f"d{batch}-{i}"})
            for i in range(100)
        ]
        s.upsert("big", points)
        most = max(most, closed_segments())
    deadline = time.monotonic() + 10
    while closed_segments() > 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert most >= 2 and closed_segments() <= 1
    assert s.count("big") == 600
    s.close()


def test_reads_racing_a_drop_get_not_found(store: Store) -> None:
    """Searches, retrieves and counts racing drop_collection either finish or get NotFound. Closing
    an edge shard that a query was inside failed ("Already borrowed"), leaving the drop half done,
    and reads that reached the closed shard failed with INTERNAL."""
    pts = _points(30)
    ids = [p.id for p in pts[:6]]
    reads: list[Callable[[], object]] = [
        lambda: store.dense_search("c", "text", pts[1].dense, 5, Where()),
        lambda: store.lexical_search("c", query_terms("zebras"), 5, Where()),
        lambda: store.score_ids("c", "text_tokens", pts[1].tokens, ids),
        lambda: store.retrieve("c", ids, space="text"),
        lambda: store.count("c"),
    ]
    answered, not_found, failures = [0], [0], []

    def read(stop: threading.Event) -> None:
        while not stop.is_set():
            for call in reads:
                try:
                    call()
                    answered[0] += 1
                except NotFound:
                    not_found[0] += 1
                except Exception as exc:
                    failures.append(exc)
                    return

    for _ in range(4):  # an edge create + drop takes ~3 s on a loaded machine
        store.create_collection(_spec())  # the previous drop finished: the name is free again
        store.upsert("c", pts)
        stop = threading.Event()
        readers = [threading.Thread(target=read, args=(stop,)) for _ in range(3)]
        for t in readers:
            t.start()
        try:
            time.sleep(0.05)
            store.drop_collection("c")
            time.sleep(0.02)
        finally:
            stop.set()
            for t in readers:
                t.join()
    assert failures == []
    assert answered[0] and not_found[0]  # reads ran on both sides of each drop
    assert store.list_specs() == []


def test_engine_rejections_are_domain_errors(store: Store) -> None:
    store.create_collection(_spec())
    pts = _points(4)
    store.upsert("c", pts)
    with pytest.raises(InvalidArgument, match="collection 'c'"):
        store.dense_search("c", "text", np.ones(DIM + 1, np.float32), 5, Where())  # wrong dimension
    with pytest.raises(InvalidArgument):
        store.score_ids("c", "page_tokens", pts[0].tokens, [pts[0].id])  # no such vector
    short = PointData(point_id("x", 0), "text", pts[0].dense[:-1], pts[0].tokens, None, {"doc_id": "x"})
    with pytest.raises(InvalidArgument):
        store.upsert("c", [short])
    assert store.count("c") == 4
    calls: list[Callable[[], object]] = [
        lambda: store.count("nope"),
        lambda: store.upsert("nope", pts),
        lambda: store.delete("nope", Where()),
        lambda: store.dense_search("nope", "text", pts[0].dense, 5, Where()),
        lambda: store.retrieve("nope", [pts[0].id]),
    ]
    for call in calls:
        with pytest.raises(NotFound, match="collection 'nope' does not exist"):
            call()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.filterwarnings("ignore:Failed to obtain server version")
def test_unreachable_qdrant_is_unavailable() -> None:
    port = _closed_port()
    with pytest.raises(Unavailable, match=f"Qdrant at http://127.0.0.1:{port}"):
        RemoteStore(f"http://127.0.0.1:{port}", prefer_grpc=False)
    with pytest.raises(Unavailable):
        RemoteStore(client=QdrantClient(host="127.0.0.1", grpc_port=port, prefer_grpc=True, check_compatibility=False))


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, InvalidArgument),
        (404, NotFound),
        (401, errors.FailedPrecondition),
        (429, errors.ResourceExhausted),
        (500, Unavailable),
        (503, Unavailable),
    ],
)
def test_qdrant_rest_statuses_are_domain_errors(status: int, expected: type[errors.MMSearchError]) -> None:
    with rest_answering(status, "Wrong input: Vector dimension error: expected dim: 16, got 15") as client:
        store = RemoteStore(client=client)
        with pytest.raises(expected, match="collection 'c'"):
            store.count("c")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument),
        (grpc.StatusCode.NOT_FOUND, NotFound),
        (grpc.StatusCode.PERMISSION_DENIED, errors.FailedPrecondition),
        (grpc.StatusCode.UNAVAILABLE, Unavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, Unavailable),
        (grpc.StatusCode.INTERNAL, Unavailable),
    ],
)
def test_qdrant_grpc_statuses_are_domain_errors(code: grpc.StatusCode, expected: type[errors.MMSearchError]) -> None:
    with grpc_answering(code, "Wrong input: Vector dimension error: expected dim: 16, got 15") as client:
        store = RemoteStore(client=client)
        with pytest.raises(expected, match="collection 'c'"):
            store.dense_search("c", "text", np.ones(DIM, np.float32), 5, Where())


def test_settings_refuse_an_in_memory_qdrant(tmp_path: Path) -> None:
    """qdrant-client's ":memory:" engine is not safe to share between a server's threads; tests
    build it themselves (tests/qdrant_standins.py)."""
    with pytest.raises(ValueError, match="use storage edge"):  # pydantic's ValidationError, before any store opens
        Settings(storage="remote", qdrant_url=":memory:", data_dir=tmp_path)
