"""The embedded backend: the Qdrant engine in-process (qdrant-edge-py), one shard per collection.

data_dir/collections/<name>/spec.json   the CollectionSpec
data_dir/collections/<name>/shard/      the Qdrant shard (WAL + segments)

Durability: every update goes through the shard's write-ahead log before `update()` returns, so an
acknowledged write survives a killed process (tests/test_cli.py kills -9 and reopens).

The WAL is truncated only when the shard is flushed (segments written out). Left alone it grows with
everything ingested until the server stops (1.9 GB of WAL beside 0.8 GB of segments after 10,000
passages), so written collections are flushed every `flush_interval_s`, as a Qdrant server does.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from ..errors import NotFound
from .base import CollectionSpec, Scores, Store
from .dialect import Dialect

EDGE = Dialect.of(
    qe,
    Range=qe.RangeFloat,
    has_id=lambda ids: qe.HasIdCondition(set(ids)),
    Point=qe.Point,
    VectorParams=qe.EdgeVectorParams,
    SparseVectorParams=qe.EdgeSparseVectorParams,
    # No graph (m=0); Cold = memory-mapped, not loaded.
    exact_only={
        "hnsw_config": qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10000),
        "datatype": qe.VectorStorageDatatype.Float16,
        "memory": qe.Memory.Cold,
    },
)


class _Collection:
    """One collection's shard behind the calls the store makes (query, retrieve, count, upsert,
    delete, flush, close), so that a collection made of several shards can take its place.

    The shard is closed only once no call is inside it, and a call arriving after that gets
    NotFound: closing a shard while a query is inside fails ("Already borrowed") and left the drop
    half done, and a closed shard answers every later call with an error."""

    def __init__(self, spec: CollectionSpec, shard: qe.EdgeShard) -> None:
        self.spec = spec
        self._shard = shard
        self._write_lock = threading.Lock()  # one writer at a time, and never during a flush
        self._dirty = False  # written since the last flush
        self._calls = 0  # calls inside the shard
        self._idle = threading.Condition()
        self._closed = False

    @contextmanager
    def _inside(self) -> Iterator[qe.EdgeShard]:
        with self._idle:
            if self._closed:
                raise NotFound(f"collection {self.spec.name!r} does not exist")
            self._calls += 1
        try:
            yield self._shard
        finally:
            with self._idle:
                self._calls -= 1
                self._idle.notify_all()

    def query(self, using: str, vector: Any, limit: int, flt: qe.Filter | None) -> Scores:
        req = qe.QueryRequest(limit=limit, query=qe.Query.Nearest(vector, using=using), filter=flt, with_payload=False)
        with self._inside() as shard:
            return {str(p.id): float(p.score) for p in shard.query(req)}

    def retrieve(
        self, ids: list[str], with_payload: list[str] | bool, with_vector: list[str] | bool
    ) -> list[qe.Record]:
        with self._inside() as shard:
            return shard.retrieve(ids, with_payload, with_vector)  # type: ignore[arg-type]

    def count(self, flt: qe.Filter | None) -> int:
        with self._inside() as shard:
            return int(shard.count(qe.CountRequest(exact=True, filter=flt)))

    def _update(self, operation: qe.UpdateOperation) -> None:
        with self._inside() as shard, self._write_lock:
            shard.update(operation)
            self._dirty = True

    def upsert(self, points: list[qe.Point]) -> None:
        self._update(qe.UpdateOperation.upsert_points(points))

    def delete(self, flt: qe.Filter) -> None:
        self._update(qe.UpdateOperation.delete_points_by_filter(flt))

    def flush(self) -> None:
        """Writes out what was written since the last flush; a closed collection has nothing to write."""
        if not self._dirty:  # not written since: no need to wait for a write in progress
            return
        try:
            with self._inside() as shard, self._write_lock:
                if self._dirty:
                    self._dirty = False
                    shard.flush()
        except NotFound:
            pass

    def close(self, flush: bool) -> None:
        """Waits for the calls inside, then closes the shard; later calls get NotFound."""
        with self._idle:
            self._closed = True
            self._idle.wait_for(lambda: self._calls == 0)
        if flush:
            self._shard.flush()
        self._shard.close()


class EdgeStore(Store):
    backend = "edge"
    dialect = EDGE

    def __init__(self, data_dir: Path, flush_interval_s: float = 5.0) -> None:
        super().__init__()
        self.root = Path(data_dir) / "collections"
        self.root.mkdir(parents=True, exist_ok=True)
        self._open: dict[str, _Collection] = {}
        for spec_file in sorted(self.root.glob("*/spec.json")):
            spec = CollectionSpec.from_json(spec_file.read_text())
            self._open[spec.name] = _Collection(spec, qe.EdgeShard.load(str(spec_file.parent / "shard")))
        self._closed = threading.Event()
        self._flush_interval_s = flush_interval_s
        threading.Thread(target=self._flush_loop, name="edge-flush", daemon=True).start()

    def _flush_loop(self) -> None:
        while not self._closed.wait(self._flush_interval_s):
            with self._lock:
                cols = list(self._open.values())
            for col in cols:
                col.flush()

    def _get(self, name: str) -> _Collection:
        try:
            return self._open[name]
        except KeyError:
            raise NotFound(f"collection {name!r} does not exist") from None

    def get_spec(self, name: str) -> CollectionSpec:
        return self._get(name).spec

    def list_specs(self) -> list[CollectionSpec]:
        with self._lock:
            return [c.spec for c in sorted(self._open.values(), key=lambda c: c.spec.name)]

    def _has(self, name: str) -> bool:
        return name in self._open

    def _create(
        self, spec: CollectionSpec, vectors: dict[str, Any], sparse: dict[str, Any], indexes: dict[str, Any]
    ) -> None:
        folder = self.root / spec.name
        if folder.exists():  # left over from a crash during create or drop
            shutil.rmtree(folder)
        shard = qe.EdgeShard.create(str(folder / "shard"), qe.EdgeConfig(vectors=vectors, sparse_vectors=sparse))
        for key, schema in indexes.items():
            shard.update(qe.UpdateOperation.create_field_index(key, schema))
        shard.flush()
        # spec.json last, atomically: a folder without it is an unfinished create.
        tmp = folder / "spec.json.tmp"
        tmp.write_text(spec.to_json())
        tmp.replace(folder / "spec.json")
        self._open[spec.name] = _Collection(spec, shard)

    def _drop(self, name: str) -> None:
        col = self._open.pop(name)
        (self.root / name / "spec.json").unlink()
        col.close(flush=False)
        shutil.rmtree(self.root / name)

    def _query(self, name: str, using: str, vector: Any, limit: int, flt: Any | None) -> Scores:
        return self._get(name).query(using, vector, limit, flt)

    def _retrieve(
        self, name: str, ids: list[str], with_payload: list[str] | bool, with_vector: list[str] | bool
    ) -> Sequence[qe.Record]:
        return self._get(name).retrieve(ids, with_payload, with_vector)

    def _upsert(self, name: str, points: list[Any]) -> None:
        self._get(name).upsert(points)

    def _delete(self, name: str, flt: Any) -> None:
        self._get(name).delete(flt)

    def _count(self, name: str, flt: Any | None) -> int:
        return self._get(name).count(flt)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            for col in self._open.values():
                col.close(flush=True)
            self._open.clear()
