"""A Qdrant server or cluster through qdrant-client. Each mmsearch collection is one Qdrant
collection named `mmsearch-<name>`; its CollectionSpec is kept in the Qdrant collection's metadata,
so any mmsearch server pointed at the cluster sees the same collections.

Tests pass an already-built client: qdrant-client's in-memory engine, made thread-safe in
tests/qdrant_standins.py (the engine itself is not, and a real server needs no such lock).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient
from qdrant_client import models as qm

from mmsearch.protocol.vocab import DenseQuantization

from ..errors import Unimplemented
from .base import CollectionSpec, Record, Scores, SnapshotInfo, Store, StoreStats, Where, missing_collection
from .dialect import Dialect
from .engine_errors import engine_errors
from .page_images import QdrantPageImages
from .portable import PortableSnapshots
from .records import APPROXIMATE, Breadth
from .remote_options import RemoteOptions, quantised_vectors

PREFIX = "mmsearch-"
PAGES_PREFIX = "mmsearch_pages-"  # companion collections of page images (not PREFIX: never listed as ours)

REMOTE = Dialect.of(
    qm,
    Range=qm.Range,
    has_id=lambda ids: qm.HasIdCondition(has_id=list(ids)),
    is_empty=lambda key: qm.IsEmptyCondition(is_empty=qm.PayloadField(key=key)),
    Point=qm.PointStruct,
    VectorParams=qm.VectorParams,
    SparseVectorParams=qm.SparseVectorParams,
    exact_only={"hnsw_config": qm.HnswConfigDiff(m=0), "datatype": qm.Datatype.FLOAT16, "on_disk": True},
    tenant_index=qm.KeywordIndexParams(type=qm.KeywordIndexType.KEYWORD, is_tenant=True),
    # A collection's own choice; the server-wide qdrant_quantization, when set, replaces it
    # (remote_options.py).
    dense_quantization={
        DenseQuantization.NONE: None,
        DenseQuantization.INT8: qm.ScalarQuantization(
            scalar=qm.ScalarQuantizationConfig(type=qm.ScalarType.INT8, always_ram=True)
        ),
    },
)


class RemoteStore(Store):
    backend = "remote"
    dialect = REMOTE

    def __init__(
        self,
        url: str = "",
        api_key: str = "",
        prefer_grpc: bool = True,
        options: RemoteOptions | None = None,
        client: QdrantClient | None = None,
        sweep_grace_s: float = 0.0,
        data_dir: Path | None = None,
    ) -> None:
        """Connects to the Qdrant at `url`, or uses `client` as it is. sweep_grace_s: see
        Store.sweep (other mmsearch servers may be writing hidden points on the same cluster).
        data_dir: portable snapshots go in data_dir/snapshots (storage/portable.py); None: none.
        options: the layout of collections this store creates (storage/remote_options.py)."""
        super().__init__()
        self.sweep_grace_s = sweep_grace_s
        self.snapshots = PortableSnapshots(data_dir) if data_dir is not None else None
        if client is None:
            if not url:
                raise ValueError("RemoteStore needs the url of a Qdrant server, or a client")
            client = QdrantClient(url=url, api_key=api_key or None, prefer_grpc=prefer_grpc)
        self.client = client
        self.page_images = QdrantPageImages(client, PAGES_PREFIX)
        self.options = options or RemoteOptions()
        self._specs: dict[str, CollectionSpec] = {}
        #: Collection -> its named vectors with a quantised copy, as Qdrant reports them (a
        #: collection keeps what it was created with, whatever the options are now).
        self._quantised: dict[str, set[str]] = {}
        self._where = f"Qdrant at {url}" if url else "Qdrant"
        self.list_specs()  # fails early (Unavailable) when the server cannot be reached

    def _load_spec(self, name: str) -> CollectionSpec | None:
        info = self.client.get_collection(PREFIX + name)
        raw = (info.config.metadata or {}).get("mmsearch_spec")
        if raw:
            self._specs[name] = CollectionSpec.from_json(raw)
            self._quantised[name] = quantised_vectors(info)
        return self._specs.get(name)

    def get_spec(self, name: str) -> CollectionSpec:
        spec = self._specs.get(name)
        if spec is None:
            with engine_errors(self._where):
                if self.client.collection_exists(PREFIX + name):
                    spec = self._load_spec(name)  # created by another mmsearch server on the same cluster
        if spec is None:
            raise missing_collection(name)
        return spec

    def list_specs(self) -> list[CollectionSpec]:
        with engine_errors(self._where):
            for c in self.client.get_collections().collections:
                if c.name.startswith(PREFIX) and c.name[len(PREFIX) :] not in self._specs:
                    self._load_spec(c.name[len(PREFIX) :])
        return [self._specs[k] for k in sorted(self._specs)]

    def stats(self, name: str) -> StoreStats:
        """Qdrant's own view. A green collection counts every point as indexed (Qdrant searches
        segments below its indexing threshold exactly on purpose). While it optimises, Qdrant
        counts indexed vectors, not points: divided by the dense vectors a point has, an estimate."""
        spec = self.get_spec(name)
        with self._engine(name):
            info = self.client.get_collection(PREFIX + name)
        points = int(info.points_count or 0)
        indexing = info.status != qm.CollectionStatus.GREEN
        indexed = min(points, int(info.indexed_vectors_count or 0) // max(1, len(spec.spaces))) if indexing else points
        return StoreStats(points, indexed, int(info.config.params.shard_number or 1), indexing)

    def _has(self, name: str) -> bool:
        return name in self._specs or self.client.collection_exists(PREFIX + name)

    def _create(
        self, spec: CollectionSpec, vectors: dict[str, Any], sparse: dict[str, Any], indexes: dict[str, Any]
    ) -> None:
        o = self.options
        vectors = o.vectors(vectors)
        self.client.create_collection(
            PREFIX + spec.name,
            vectors_config=vectors,
            sparse_vectors_config=sparse,
            shard_number=o.shard_number or None,  # None: the server's choice, as before this option
            replication_factor=o.replication_factor,
            metadata={"mmsearch_spec": spec.to_json()},
        )
        for key, schema in indexes.items():
            self.client.create_payload_index(PREFIX + spec.name, key, schema, wait=True)
        self._specs[spec.name] = spec
        self._quantised[spec.name] = {k for k, v in vectors.items() if v.quantization_config is not None}

    def _drop(self, name: str) -> None:
        self.client.delete_collection(PREFIX + name)
        self._specs.pop(name, None)
        self._quantised.pop(name, None)

    def _quantised_vectors(self, name: str) -> set[str]:
        if name not in self._quantised:  # created by another mmsearch server since this one looked
            self._load_spec(name)
        return self._quantised.get(name, set())

    def _query(
        self, name: str, using: str, vector: Any, limit: int, flt: Any | None, breadth: Breadth = APPROXIMATE
    ) -> Scores:
        # A quantised vector is searched on its quantised copy, then rescored; graphs with the
        # chosen breadth (remote_options.py).
        params = self.options.search_params(using, using in self._quantised_vectors(name), breadth)
        points = self.client.query_points(
            PREFIX + name,
            query=vector,
            using=using,
            limit=limit,
            query_filter=flt,
            search_params=params,
            with_payload=False,
        ).points
        return {str(p.id): float(p.score) for p in points}

    def _retrieve(
        self, name: str, ids: list[str], with_payload: list[str] | bool, with_vector: list[str] | bool
    ) -> Sequence[Record]:
        return self.client.retrieve(PREFIX + name, ids, with_payload=with_payload, with_vectors=with_vector)

    def _scroll(
        self,
        name: str,
        flt: Any | None,
        offset: Any,
        limit: int,
        with_payload: list[str] | bool,
        with_vector: list[str],
    ) -> tuple[Sequence[Record], Any]:
        vectors: list[str] | bool = with_vector or False
        return self.client.scroll(
            PREFIX + name,
            scroll_filter=flt,
            limit=limit,
            offset=offset,
            with_payload=with_payload,
            with_vectors=vectors,
        )

    def _upsert(self, name: str, points: list[Any]) -> None:
        # wait=True: Qdrant answers after the write is in its WAL, so an ack means durable.
        self.client.upsert(PREFIX + name, points, wait=True)

    def _delete(self, name: str, flt: Any) -> None:
        self.client.delete(PREFIX + name, qm.FilterSelector(filter=flt), wait=True)

    def _set_payload(self, name: str, where: Where, payload: dict[str, Any]) -> None:
        # One request: the server applies it whole whatever happens to this process afterwards.
        flt = self.dialect.filter(where) or qm.Filter()
        self.client.set_payload(PREFIX + name, payload, qm.FilterSelector(filter=flt), wait=True)

    def _count(self, name: str, flt: Any | None) -> int:
        return int(self.client.count(PREFIX + name, count_filter=flt, exact=True).count)

    # -- portable snapshots (storage/portable.py)

    def qdrant_name(self, name: str) -> str:
        return PREFIX + name

    def _snapshots(self, name: str) -> PortableSnapshots:
        if self.snapshots is None:
            raise Unimplemented("snapshots of remote collections need a data_dir to keep them in")
        return self.snapshots

    def create_snapshot(self, name: str) -> SnapshotInfo:
        return self._snapshots(name).create(self, name)

    def list_snapshots(self, name: str) -> list[SnapshotInfo]:
        return self._snapshots(name).list(name)

    def restore_snapshot(self, name: str, snapshot: str) -> None:
        self._snapshots(name).restore(self, name, snapshot)

    def replace_collection(self, spec: CollectionSpec) -> None:
        """Drops the collection if it exists and creates it empty from `spec` (a restore)."""
        d = self.dialect
        with self._lock, self._engine(spec.name):
            if self._has(spec.name):
                self._drop(spec.name)
            self._create(spec, d.vectors(spec), d.sparse_vectors(), d.indexes(spec))

    def upsert_raw(self, name: str, points: list[Any]) -> None:
        """Engine points as they are (no write time stamped: a restore keeps the stored payload)."""
        if points:
            with self._engine(name):
                self._upsert(name, points)

    def close(self) -> None:
        self.client.close()
