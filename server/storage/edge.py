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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from ..errors import AlreadyExists, NotFound
from .base import CORE_INDEXES, CollectionSpec, Cond, Hit, PointData, Query, Scores, Store, Where

_SCHEMA = {
    "keyword": qe.PayloadSchemaType.Keyword,
    "integer": qe.PayloadSchemaType.Integer,
    "float": qe.PayloadSchemaType.Float,
    "bool": qe.PayloadSchemaType.Bool,
}


def _condition(c: Cond) -> Any:
    if c.ids is not None:
        return qe.HasIdCondition(set(c.ids))
    if c.match is not None:
        return qe.FieldCondition(c.key, match=qe.MatchValue(c.match))
    if c.any_of is not None:
        return qe.FieldCondition(c.key, match=qe.MatchAny(list(c.any_of)))  # type: ignore[arg-type]
    if c.range is not None:
        return qe.FieldCondition(c.key, range=qe.RangeFloat(**c.range))
    raise ValueError(f"empty condition on {c.key!r}")


def to_edge_filter(where: Where | None) -> qe.Filter | None:
    if where is None or where.is_empty():
        return None
    return qe.Filter(
        must=[_condition(c) for c in where.must] or None,
        must_not=[_condition(c) for c in where.must_not] or None,
        should=[_condition(c) for c in where.should] or None,
    )


class _Collection:
    def __init__(self, spec: CollectionSpec, shard: qe.EdgeShard) -> None:
        self.spec = spec
        self.shard = shard
        self.write_lock = threading.Lock()
        self.dirty = False  # written since the last flush
        self.closed = False


class EdgeStore(Store):
    backend = "edge"

    def __init__(self, data_dir: Path, flush_interval_s: float = 5.0) -> None:
        self.root = Path(data_dir) / "collections"
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
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
                dirty = [c for c in self._open.values() if c.dirty]
            for col in dirty:
                with col.write_lock:
                    if col.dirty and not col.closed:
                        col.dirty = False
                        col.shard.flush()

    def _config(self, spec: CollectionSpec) -> qe.EdgeConfig:
        vectors: dict[str, qe.EdgeVectorParams] = {}
        for space in spec.spaces.values():
            vectors[f"{space.name}_dense"] = qe.EdgeVectorParams(size=space.dim, distance=qe.Distance.Cosine)
            vectors[f"{space.name}_tokens"] = qe.EdgeVectorParams(
                size=space.dim,
                distance=qe.Distance.Cosine,
                multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim),
                # Token vectors are only scored exactly over candidates: no graph, half the bytes, and
                # memory-mapped rather than loaded (Cold): they are most of the data (~100x the pooled
                # vector), and only candidates' pages are read, which the OS caches as it sees fit.
                hnsw_config=qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10000),
                datatype=qe.VectorStorageDatatype.Float16,
                memory=qe.Memory.Cold,
            )
        return qe.EdgeConfig(
            vectors=vectors,
            sparse_vectors={"lexical": qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )

    def create_collection(self, spec: CollectionSpec) -> None:
        with self._lock:
            if spec.name in self._open:
                raise AlreadyExists(f"collection {spec.name!r} already exists")
            folder = self.root / spec.name
            if folder.exists():  # left over from a crash during create or drop
                shutil.rmtree(folder)
            shard = qe.EdgeShard.create(str(folder / "shard"), self._config(spec))
            indexes = {**CORE_INDEXES, **{f"meta.{k}": v for k, v in spec.indexed_fields.items()}}
            for key, kind in indexes.items():
                shard.update(qe.UpdateOperation.create_field_index(key, _SCHEMA[kind]))
            shard.flush()
            # spec.json last, atomically: a folder without it is an unfinished create.
            tmp = folder / "spec.json.tmp"
            tmp.write_text(spec.to_json())
            tmp.replace(folder / "spec.json")
            self._open[spec.name] = _Collection(spec, shard)

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

    def drop_collection(self, name: str) -> None:
        with self._lock:
            col = self._get(name)
            with col.write_lock:
                del self._open[name]
                (self.root / name / "spec.json").unlink()
                col.closed = True
                col.shard.close()
                shutil.rmtree(self.root / name)

    def upsert(self, name: str, points: Sequence[PointData]) -> None:
        if not points:
            return
        col = self._get(name)
        edge_points = []
        for p in points:
            vector: dict[str, Any] = {
                f"{p.space}_dense": p.dense.tolist(),
                f"{p.space}_tokens": p.tokens.tolist(),
            }
            if p.sparse is not None and p.sparse[0]:
                vector["lexical"] = qe.SparseVector(indices=p.sparse[0], values=p.sparse[1])
            edge_points.append(qe.Point(p.id, vector, p.payload))
        with col.write_lock:
            col.shard.update(qe.UpdateOperation.upsert_points(edge_points))
            col.dirty = True

    def delete(self, name: str, where: Where) -> None:
        col = self._get(name)
        with col.write_lock:
            col.shard.update(qe.UpdateOperation.delete_points_by_filter(to_edge_filter(where) or qe.Filter()))
            col.dirty = True

    def count(self, name: str, where: Where | None = None) -> int:
        return int(self._get(name).shard.count(qe.CountRequest(exact=True, filter=to_edge_filter(where))))

    def _search(self, name: str, using: str, query: Query, limit: int, flt: qe.Filter | None) -> Scores:
        vector: Any
        if isinstance(query, tuple):
            if not query[0]:
                return {}
            vector = qe.SparseVector(indices=query[0], values=query[1])
        else:
            vector = query.tolist()
        req = qe.QueryRequest(limit=limit, query=qe.Query.Nearest(vector, using=using), filter=flt, with_payload=False)
        return {str(p.id): float(p.score) for p in self._get(name).shard.query(req)}

    def dense_search(self, name: str, space: str, vector: np.ndarray, limit: int, where: Where) -> Scores:
        return self._search(name, f"{space}_dense", vector, limit, to_edge_filter(where))

    def sparse_search(self, name: str, sparse: tuple[list[int], list[float]], limit: int, where: Where) -> Scores:
        return self._search(name, "lexical", sparse, limit, to_edge_filter(where))

    def score_ids(self, name: str, using: str, query: Query, ids: Sequence[str]) -> Scores:
        if not ids:
            return {}
        return self._search(name, using, query, len(ids), qe.Filter(must=[qe.HasIdCondition(set(ids))]))

    def retrieve(
        self, name: str, ids: Sequence[str], space: str | None = None, fields: Sequence[str] | None = None
    ) -> list[Hit]:
        if not ids:
            return []
        with_vector = [f"{space}_tokens"] if space else False
        records = self._get(name).shard.retrieve(list(ids), list(fields) if fields else True, with_vector)
        hits = []
        for r in records:
            tokens = None
            if space and isinstance(r.vector, dict) and f"{space}_tokens" in r.vector:
                tokens = np.asarray(r.vector[f"{space}_tokens"], dtype=np.float32)
            hits.append(Hit(str(r.id), 0.0, r.payload or {}, tokens))
        return hits

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            for col in self._open.values():
                with col.write_lock:
                    col.closed = True
                    col.shard.flush()
                    col.shard.close()
            self._open.clear()
