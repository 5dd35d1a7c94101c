"""A Qdrant server or cluster through qdrant-client (tests use QdrantClient(":memory:"), which
speaks the same API). Each mmsearch collection is one Qdrant collection named `mmsearch-<name>`;
its CollectionSpec is kept in the Qdrant collection's metadata, so any mmsearch server pointed at
the cluster sees the same collections."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from ..errors import AlreadyExists, NotFound, Unavailable
from .base import CORE_INDEXES, CollectionSpec, Cond, Hit, PointData, Query, Scores, Store, Where

PREFIX = "mmsearch-"
_SCHEMA = {
    "keyword": qm.PayloadSchemaType.KEYWORD,
    "integer": qm.PayloadSchemaType.INTEGER,
    "float": qm.PayloadSchemaType.FLOAT,
    "bool": qm.PayloadSchemaType.BOOL,
}


def _condition(c: Cond) -> Any:
    if c.ids is not None:
        return qm.HasIdCondition(has_id=list(c.ids))
    if c.match is not None:
        return qm.FieldCondition(key=c.key, match=qm.MatchValue(value=c.match))
    if c.any_of is not None:
        return qm.FieldCondition(key=c.key, match=qm.MatchAny(any=list(c.any_of)))  # type: ignore[arg-type]
    if c.range is not None:
        return qm.FieldCondition(key=c.key, range=qm.Range(**c.range))
    raise ValueError(f"empty condition on {c.key!r}")


def to_qdrant_filter(where: Where | None) -> qm.Filter | None:
    if where is None or where.is_empty():
        return None
    return qm.Filter(
        must=[_condition(c) for c in where.must] or None,
        must_not=[_condition(c) for c in where.must_not] or None,
        should=[_condition(c) for c in where.should] or None,
    )


class _Serialized:
    """qdrant-client's local mode (":memory:", the test stand-in for a server) is not thread-safe:
    a search racing an upsert reads half-written arrays. A real server needs no such lock."""

    def __init__(self, client: QdrantClient) -> None:
        self._client = client
        self._lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return call


class RemoteStore(Store):
    backend = "remote"

    def __init__(self, url: str, api_key: str = "", prefer_grpc: bool = True, replication_factor: int = 1) -> None:
        self.client: Any
        if url == ":memory:":
            self.client = _Serialized(QdrantClient(location=":memory:"))
        else:
            self.client = QdrantClient(url=url, api_key=api_key or None, prefer_grpc=prefer_grpc)
        self.replication_factor = replication_factor
        self._specs: dict[str, CollectionSpec] = {}
        self._lock = threading.Lock()
        try:
            for c in self.client.get_collections().collections:
                if c.name.startswith(PREFIX):
                    self._load_spec(c.name[len(PREFIX) :])
        except (ResponseHandlingException, ConnectionError) as exc:
            raise Unavailable(f"cannot reach Qdrant at {url}: {exc}") from exc

    def _load_spec(self, name: str) -> CollectionSpec | None:
        info = self.client.get_collection(PREFIX + name)
        raw = (info.config.metadata or {}).get("mmsearch_spec")
        if raw:
            self._specs[name] = CollectionSpec.from_json(raw)
        return self._specs.get(name)

    def create_collection(self, spec: CollectionSpec) -> None:
        with self._lock:
            if spec.name in self._specs or self.client.collection_exists(PREFIX + spec.name):
                raise AlreadyExists(f"collection {spec.name!r} already exists")
            vectors: dict[str, qm.VectorParams] = {}
            for space in spec.spaces.values():
                vectors[f"{space.name}_dense"] = qm.VectorParams(size=space.dim, distance=qm.Distance.COSINE)
                vectors[f"{space.name}_tokens"] = qm.VectorParams(
                    size=space.dim,
                    distance=qm.Distance.COSINE,
                    multivector_config=qm.MultiVectorConfig(comparator=qm.MultiVectorComparator.MAX_SIM),
                    hnsw_config=qm.HnswConfigDiff(m=0),
                    datatype=qm.Datatype.FLOAT16,
                    on_disk=True,  # memory-mapped, as in the embedded store: only candidates' vectors are read
                )
            self.client.create_collection(
                PREFIX + spec.name,
                vectors_config=vectors,
                sparse_vectors_config={"lexical": qm.SparseVectorParams(modifier=qm.Modifier.IDF)},
                replication_factor=self.replication_factor,
                metadata={"mmsearch_spec": spec.to_json()},
            )
            indexes = {**CORE_INDEXES, **{f"meta.{k}": v for k, v in spec.indexed_fields.items()}}
            for key, kind in indexes.items():
                self.client.create_payload_index(PREFIX + spec.name, key, _SCHEMA[kind], wait=True)
            self._specs[spec.name] = spec

    def get_spec(self, name: str) -> CollectionSpec:
        spec = self._specs.get(name)
        if spec is None and self.client.collection_exists(PREFIX + name):
            spec = self._load_spec(name)  # created by another mmsearch server on the same cluster
        if spec is None:
            raise NotFound(f"collection {name!r} does not exist")
        return spec

    def list_specs(self) -> list[CollectionSpec]:
        for c in self.client.get_collections().collections:
            if c.name.startswith(PREFIX) and c.name[len(PREFIX) :] not in self._specs:
                self._load_spec(c.name[len(PREFIX) :])
        return [self._specs[k] for k in sorted(self._specs)]

    def drop_collection(self, name: str) -> None:
        self.get_spec(name)
        with self._lock:
            self.client.delete_collection(PREFIX + name)
            self._specs.pop(name, None)

    def upsert(self, name: str, points: Sequence[PointData]) -> None:
        self.get_spec(name)
        structs = []
        for p in points:
            vector: dict[str, Any] = {f"{p.space}_dense": p.dense.tolist(), f"{p.space}_tokens": p.tokens.tolist()}
            if p.sparse is not None and p.sparse[0]:
                vector["lexical"] = qm.SparseVector(indices=p.sparse[0], values=p.sparse[1])
            structs.append(qm.PointStruct(id=p.id, vector=vector, payload=p.payload))
        # wait=True: Qdrant answers after the write is in its WAL, so an ack means durable.
        self.client.upsert(PREFIX + name, structs, wait=True)

    def delete(self, name: str, where: Where) -> None:
        self.get_spec(name)
        flt = to_qdrant_filter(where) or qm.Filter()
        self.client.delete(PREFIX + name, qm.FilterSelector(filter=flt), wait=True)

    def count(self, name: str, where: Where | None = None) -> int:
        self.get_spec(name)
        return int(self.client.count(PREFIX + name, count_filter=to_qdrant_filter(where), exact=True).count)

    def _search(self, name: str, using: str, query: Query, limit: int, flt: qm.Filter | None) -> Scores:
        self.get_spec(name)
        vector: Any
        if isinstance(query, tuple):
            if not query[0]:
                return {}
            vector = qm.SparseVector(indices=query[0], values=query[1])
        else:
            vector = query.tolist()
        try:
            points = self.client.query_points(
                PREFIX + name,
                query=vector,
                using=using,
                limit=limit,
                query_filter=flt,
                with_payload=False,
            ).points
        except (UnexpectedResponse, ResponseHandlingException) as exc:
            raise Unavailable(f"Qdrant query failed: {exc}") from exc
        return {str(p.id): float(p.score) for p in points}

    def dense_search(self, name: str, space: str, vector: np.ndarray, limit: int, where: Where) -> Scores:
        return self._search(name, f"{space}_dense", vector, limit, to_qdrant_filter(where))

    def sparse_search(self, name: str, sparse: tuple[list[int], list[float]], limit: int, where: Where) -> Scores:
        return self._search(name, "lexical", sparse, limit, to_qdrant_filter(where))

    def score_ids(self, name: str, using: str, query: Query, ids: Sequence[str]) -> Scores:
        if not ids:
            return {}
        return self._search(name, using, query, len(ids), qm.Filter(must=[qm.HasIdCondition(has_id=list(ids))]))

    def retrieve(
        self, name: str, ids: Sequence[str], space: str | None = None, fields: Sequence[str] | None = None
    ) -> list[Hit]:
        self.get_spec(name)
        if not ids:
            return []
        records = self.client.retrieve(
            PREFIX + name,
            list(ids),
            with_payload=list(fields) if fields else True,
            with_vectors=[f"{space}_tokens"] if space else False,
        )
        hits = []
        for r in records:
            tokens = None
            if space and isinstance(r.vector, dict) and f"{space}_tokens" in r.vector:
                tokens = np.asarray(r.vector[f"{space}_tokens"], dtype=np.float32)
            hits.append(Hit(str(r.id), 0.0, r.payload or {}, tokens))
        return hits

    def close(self) -> None:
        self.client.close()
