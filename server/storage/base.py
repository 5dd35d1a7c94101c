"""The storage interface both backends implement, and the backend-neutral types it speaks.

Layout of a collection (the same on both backends):
- one dense vector `<space>_dense` (HNSW, cosine) and one multivector `<space>_tokens` (MaxSim, no
  HNSW: only ever scored exactly over candidates) per vector space ("text", later "page");
- a ColPali page space made since rows and columns were stored (`SpaceSpec.prefetch == ROWCOL`) has a
  third, multivector `<space>_rowcol`: the mean-pooled rows and columns of each page's patch grid, a
  cheap first stage for exact MaxSim (Qdrant's recipe for ColPali; server/search.py);
- one sparse vector `lexical` (BM25 term frequencies, IDF applied by the engine);
- payload: doc_id, seq (point number within its document), modality, passage, page, text, tokens
  (token strings for explanations), meta (the user's metadata; filters address `meta.<key>`), and
  the two version keys of storage/slots.py.


Each space's `Compression` (fixed at creation) says how its vectors are stored: float32, float16 or
Qdrant's TurboQuant at 8 or 4 bits per dimension, and whether token vectors are pooled at ingest
(clusters of similar tokens averaged; the payload's per-token lists then name each cluster's
representative token). A spec.json written before compression existed loads as the layout of that
time: float32 pooled vectors, float16 token vectors, no pooling.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import AlreadyExists, InvalidArgument, MMSearchError, NotFound, Unimplemented
from .engine_errors import engine_errors
from .records import APPROXIMATE, HIT_FIELDS, Breadth, Hit, PointData, Query, Record, Scores, SnapshotInfo, StoreStats
from .slots import HIDDEN, LIVE, SLOT, is_visible, point_id, region_point_id, stamp_hidden, sweepable, visible
from .spec import CORE_INDEXES, ROWCOL, STORAGES, CollectionSpec, Compression, SpaceSpec
from .where import TENANT_FIELD, Cond, Where

if TYPE_CHECKING:
    from .dialect import Dialect
    from .page_images import PageImages

#: Re-exported: these lived here before storage/records.py, slots.py, spec.py and where.py.
__all__ = [
    "CORE_INDEXES", "HIDDEN", "HIT_FIELDS", "LIVE", "ROWCOL", "SLOT", "STORAGES", "TENANT_FIELD", "CollectionSpec",
    "Compression", "Cond", "Hit", "PointData", "Query", "Record", "Scores", "SnapshotInfo", "SpaceSpec", "Store",
    "StoreStats", "Where", "is_visible", "point_id", "region_point_id", "visible",
]  # fmt: skip


def matches_nothing(query: Query) -> bool:
    """An empty sparse query (no term of it is known) matches no point: no engine call is needed."""
    return isinstance(query, tuple) and not query[0]


def missing_collection(name: str) -> MMSearchError:
    """The error for a collection a store does not hold: an empty name is the request's mistake
    (INVALID_ARGUMENT), any other name a collection that does not exist (NOT_FOUND)."""
    if not name:
        return InvalidArgument("no collection named: the request's collection is empty")
    return NotFound(f"collection {name!r} does not exist")


class Store(ABC):
    """A set of collections. Writes return only once durable (they survive a killed process).

    The behaviour is written here once; a backend supplies the collection management it keeps
    (`_has`, `_create`, `_drop`, `get_spec`, `list_specs`), five primitives over engine objects
    (`_query`, `_retrieve`, `_upsert`, `_delete`, `_count`) and the `dialect` that builds those
    objects. Every engine failure is raised as a domain error (storage/engine_errors.py); a
    primitive on a collection that does not exist (any more) raises NotFound or lets the engine
    say so. Empty inputs (no points, no ids, an empty sparse query) return at once.
    """

    backend: str
    dialect: Dialect
    #: `sweep` spares hidden points younger than this (storage/slots.py); 0: sweeps them all.
    sweep_grace_s: float = 0.0
    #: Where the backend keeps page images (storage/page_images.py); None: they are not kept.
    page_images: PageImages | None = None

    def __init__(self) -> None:
        self._lock = threading.Lock()  # creates and drops

    # -- what a backend supplies --

    @abstractmethod
    def get_spec(self, name: str) -> CollectionSpec:
        """Raises NotFound."""

    @abstractmethod
    def list_specs(self) -> list[CollectionSpec]: ...

    @abstractmethod
    def stats(self, name: str) -> StoreStats:
        """Raises NotFound."""

    @abstractmethod
    def _has(self, name: str) -> bool: ...

    @abstractmethod
    def _create(
        self, spec: CollectionSpec, vectors: dict[str, Any], sparse: dict[str, Any], indexes: dict[str, Any]
    ) -> None:
        """Creates the collection with these named vectors, sparse vectors and payload indexes."""

    @abstractmethod
    def _drop(self, name: str) -> None: ...

    @abstractmethod
    def _query(
        self, name: str, using: str, vector: Any, limit: int, flt: Any | None, breadth: Breadth = APPROXIMATE
    ) -> Scores:
        """Nearest points to `vector` by the named vector, without payload. breadth: of a graph
        search (dense vectors); other vectors are scanned whatever it says."""

    @abstractmethod
    def _retrieve(
        self, name: str, ids: list[str], with_payload: list[str] | bool, with_vector: list[str] | bool
    ) -> Sequence[Record]: ...

    @abstractmethod
    def _upsert(self, name: str, points: list[Any]) -> None:
        """Returns once the points are durable."""

    @abstractmethod
    def _delete(self, name: str, flt: Any) -> None: ...

    @abstractmethod
    def _count(self, name: str, flt: Any | None) -> int: ...

    @abstractmethod
    def _set_payload(self, name: str, where: Where, payload: dict[str, Any]) -> None:
        """Sets these payload keys on every point matching `where`: after a crash, all or none of
        them have it. Returns once durable."""

    @abstractmethod
    def _scroll(
        self,
        name: str,
        flt: Any | None,
        offset: Any,
        limit: int,
        with_payload: list[str] | bool,
        with_vector: list[str],
    ) -> tuple[Sequence[Record], Any]:
        """One page of the points matching `flt` from `offset` (None: the start), and the offset of
        the next page (None: no more)."""

    def _check_space(self) -> None:  # noqa: B027 - optional hook
        """Raises ResourceExhausted when storage has no room for another write."""

    # -- the behaviour --

    @contextmanager
    def _engine(self, name: str) -> Iterator[None]:
        """Engine failures as domain errors. On a named collection an engine's "not found" is the
        collection: dropped meanwhile (by this server or another on the same cluster)."""
        try:
            with engine_errors(f"collection {name!r}"):
                yield
        except NotFound as exc:
            raise missing_collection(name) from exc

    def create_collection(self, spec: CollectionSpec) -> None:
        """Raises AlreadyExists."""
        d = self.dialect
        with self._lock, self._engine(spec.name):
            if self._has(spec.name):
                raise AlreadyExists(
                    f"collection {spec.name!r} already exists; its settings (encoders, OCR mode, chunking, "
                    "compression; `mmsearch collections` shows them) are fixed at creation: delete it "
                    "(`mmsearch drop`) and create it again to change them (the text model can also be changed by "
                    "reindex)"
                )
            self._check_space()
            self._create(spec, d.vectors(spec), d.sparse_vectors(), d.indexes(spec))

    def drop_collection(self, name: str) -> None:
        """Raises NotFound. Calls inside the collection finish first; later ones get NotFound."""
        with self._lock, self._engine(name):
            self.get_spec(name)
            self._drop(name)
            if self.page_images is not None:
                self.page_images.drop(name)

    def upsert(self, name: str, points: Sequence[PointData]) -> None:
        if not points:
            return
        self._check_space()
        stamp_hidden(points)
        with self._engine(name):
            self._upsert(name, [self.dialect.point(p) for p in points])

    def delete(self, name: str, where: Where) -> None:
        """Deletes matching points (all of them for an empty `where`)."""
        with self._engine(name):
            self._delete(name, self.dialect.filter(where) or self.dialect.Filter())

    def count(self, name: str, where: Where | None = None, hidden: bool = False) -> int:
        """Visible points matching `where`; `hidden`: hidden points too."""
        with self._engine(name):
            return self._count(name, self.dialect.filter(where if hidden else visible(where)))

    def set_payload(self, name: str, where: Where, payload: dict[str, Any]) -> None:
        """Sets payload keys on every point matching `where` (hidden ones too), all or none."""
        self._check_space()
        with self._engine(name):
            self._set_payload(name, where, payload)

    def sweep(self, name: str) -> int:
        """Deletes the hidden points (versions a crash cut short, or replaced ones whose delete it
        cut short); returns how many. At startup: while this server writes nothing, and (with a
        grace period) while other servers on the same cluster may."""
        where = sweepable(self.sweep_grace_s)
        n = self.count(name, where, hidden=True)
        if n:
            self.delete(name, where)
        return n

    def _query_visible(
        self, name: str, using: str, vector: Any, limit: int, where: Where, breadth: Breadth = APPROXIMATE
    ) -> Scores:
        """`_query` over the visible points matching `where`. A backend that knows where no hidden
        point is may leave the visibility condition out there (storage/edge.py)."""
        return self._query(name, using, vector, limit, self.dialect.filter(visible(where)), breadth)

    def _search(
        self, name: str, using: str, query: Query, limit: int, where: Where, breadth: Breadth = APPROXIMATE
    ) -> Scores:
        if matches_nothing(query):
            return {}
        with self._engine(name):
            return self._query_visible(name, using, self.dialect.vector(query), limit, where, breadth)

    def dense_search(
        self, name: str, space: str, vector: np.ndarray, limit: int, where: Where, breadth: Breadth = APPROXIMATE
    ) -> Scores:
        """Nearest visible points by pooled vector (cosine), through the HNSW graphs as `breadth`
        says. No payload: see `retrieve`."""
        return self._search(name, f"{space}_dense", vector, limit, where, breadth)

    def search_many(
        self, name: str, searches: Sequence[tuple[str, Query]], limit: int, where: Where,
        breadth: Breadth = APPROXIMATE,
    ) -> list[Scores]:  # fmt: skip
        """Several searches with one filter and limit, by (named vector, query): a first stage's
        dense searches and BM25. Scores per search, in order; backends that can batch them do."""
        return [self._search(name, using, query, limit, where, breadth) for using, query in searches]

    def vector_search(self, name: str, using: str, query: Query, limit: int, where: Where) -> Scores:
        """Best visible points by any named vector (`<space>_tokens`: exact MaxSim over every point
        the filter lets through; `<space>_rowcol`: MaxSim over pooled rows and columns). No payload."""
        return self._search(name, using, query, limit, where)

    def lexical_search(self, name: str, terms: tuple[list[int], list[float]], limit: int, where: Where) -> Scores:
        """Best visible points by BM25 (IDF-weighted sparse dot product). No payload: see `retrieve`."""
        return self._search(name, "lexical", terms, limit, where)

    def score_ids(self, name: str, using: str, query: Query, ids: Sequence[str]) -> Scores:
        """Scores exactly the given points against one query vector. using: `<space>_dense` (query
        (dim,)), `<space>_tokens` (exact MaxSim, query (n, dim)) or `lexical` (sparse query).
        Points lacking that vector or scoring nothing are absent from the result."""
        if not ids:
            return {}
        return self._search(name, using, query, len(ids), Where(must=[Cond(ids=list(ids))]))

    def score_many(self, name: str, asks: Sequence[tuple[str, Query, Sequence[str]]]) -> list[Scores]:
        """`score_ids` for several (named vector, query, ids); backends that can batch them do."""
        return [self.score_ids(name, using, query, ids) for using, query, ids in asks]

    def retrieve(
        self,
        name: str,
        ids: Sequence[str],
        space: str | None = None,
        fields: Sequence[str] | None = None,
        vector: str = "tokens",
    ) -> list[Hit]:
        """Visible points by id with their payload (only `fields` when given), and their token
        vectors (or the space's `vector`, e.g. ROWCOL) in Hit.tokens when `space` is given. Unknown
        (and hidden) ids are absent from the result."""
        if not ids:
            return []
        using = f"{space}_{vector}" if space else None
        payload: list[str] | bool = [*fields, SLOT, LIVE] if fields else True
        with self._engine(name):
            records = self._retrieve(name, list(ids), payload, [using] if using else False)
        hits = []
        for r in records:
            got = dict(r.payload or {})
            if not is_visible(got):
                continue
            if fields:
                got = {k: v for k, v in got.items() if k in fields}
            vectors = r.vector if isinstance(r.vector, dict) else {}
            tokens = np.asarray(vectors[using], dtype=np.float32) if using and using in vectors else None
            hits.append(Hit(str(r.id), got, tokens))
        return hits

    def scan(
        self, name: str, where: Where, fields: Sequence[str], space: str | None = None, batch: int = 256
    ) -> Iterator[list[Hit]]:
        """Every visible point matching `where`, a page at a time, with the payload `fields` and the
        pooled vector of `space` when given (Hit.dense). A point may come twice when an index build
        swaps shards during the scan (never missed); callers must not mind."""
        using = [f"{space}_dense"] if space else []
        flt = self.dialect.filter(visible(where))
        offset: Any = None
        while True:
            with self._engine(name):
                records, offset = self._scroll(name, flt, offset, batch, [*fields, SLOT, LIVE], using)
            hits = []
            for r in records:
                got = dict(r.payload or {})
                vectors = r.vector if isinstance(r.vector, dict) else {}
                dense = np.asarray(vectors[using[0]], dtype=np.float32) if using and using[0] in vectors else None
                hits.append(Hit(str(r.id), {k: v for k, v in got.items() if k in fields}, dense=dense))
            if hits:
                yield hits
            if offset is None:
                return

    def versions(self, name: str, ids: Sequence[str]) -> dict[str, tuple[int | None, int | None]]:
        """Point id -> (slot, live) of the points that exist among `ids`, hidden ones too (None:
        a point from before slots)."""
        with self._engine(name):
            records = self._retrieve(name, list(ids), [SLOT, LIVE], False)
        return {str(r.id): ((r.payload or {}).get(SLOT), (r.payload or {}).get(LIVE)) for r in records}

    # -- snapshots: backends that keep them override these --

    def create_snapshot(self, name: str) -> SnapshotInfo:
        """A consistent copy of the collection (hidden points included: swept on restore)."""
        raise Unimplemented(f"snapshots are not available on {self.backend} storage")

    def list_snapshots(self, name: str) -> list[SnapshotInfo]:
        raise Unimplemented(f"snapshots are not available on {self.backend} storage")

    def restore_snapshot(self, name: str, snapshot: str) -> None:
        """Replaces the collection (or brings back a deleted one) with the snapshot."""
        raise Unimplemented(f"snapshots are not available on {self.backend} storage")

    def close(self) -> None:  # noqa: B027 - optional hook
        pass
