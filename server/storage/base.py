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
  the two version keys below.

Documents are all or nothing. A document has two version slots (0 and 1); a point stores its own
slot (`_slot`) and the slot its document had live when the point was last written or committed
(`_live`). A point is visible only when `_slot == _live` (or it has neither key: points written
before versions existed); every read adds that condition (`visible`). A new version is written into
the slot that is not live, so its points are hidden while they are written, and one payload change
over the document's points (`_live` := new slot; `Store.set_payload`, all or nothing) hides the old
version and shows the new one at once. Points hidden at startup are left over from writes a crash
cut short: `sweep` deletes them.

Each space's `Compression` (fixed at creation) says how its vectors are stored: float32, float16 or
Qdrant's TurboQuant at 8 or 4 bits per dimension, and whether token vectors are pooled at ingest
(clusters of similar tokens averaged; the payload's per-token lists then name each cluster's
representative token). A spec.json written before compression existed loads as the layout of that
time: float32 pooled vectors, float16 token vectors, no pooling.
"""

from __future__ import annotations

import json
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mmsearch.protocol.vocab import FieldType, VectorStorage

from ..errors import AlreadyExists, NotFound, Unimplemented
from .engine_errors import engine_errors

if TYPE_CHECKING:
    from .dialect import Dialect
    from .page_images import PageImages

#: Payload fields a returned result needs. Candidates are found and scored without any payload: the
#: engine reads a point's whole payload (with its token strings, words and boxes) to return even one
#: field, which cost more than the rest of a search; only the results that are returned pay for it.
HIT_FIELDS = ["doc_id", "seq", "space", "modality", "passage", "page", "text", "meta"]

#: The reserved payload field of a tenant's documents (written by a key bound to a tenant). User
#: metadata lives under `meta.`, so no request filter can name it.
TENANT_FIELD = "_tenant"

#: The version keys (see above): the point's slot, and the slot its document had live.
SLOT, LIVE = "_slot", "_live"

#: Payload fields every point carries, indexed for filtering (the tenant only on tenants' points).
CORE_INDEXES = {
    "doc_id": FieldType.KEYWORD,
    "modality": FieldType.KEYWORD,
    "seq": FieldType.INTEGER,
    TENANT_FIELD: FieldType.KEYWORD,
    SLOT: FieldType.INTEGER,
    LIVE: FieldType.INTEGER,
}
_ID_NAMESPACE = uuid.UUID("5b1f2d7e-6f0c-4c57-9a53-2a0d6e1c9b11")
_TENANT_NAMESPACE = uuid.UUID("0c9e4f43-3a4e-4d7c-8f0e-6a8d2b7c1e55")


def point_id(doc_id: str, seq: int, tenant: str | None = None, slot: int = 0) -> str:
    """Deterministic point id per document, point number, tenant and version slot: writing a slot
    again overwrites its points in place. Tenants' ids live in a namespace of their own, so two
    tenants' documents of the same id never share a point (a tenant name holds no NUL:
    security/principal.py). Slot 0 keeps the ids of the time before slots."""
    name = f"{doc_id}\x00{seq}" if slot == 0 else f"{doc_id}\x00{seq}\x00{slot}"
    if tenant:
        return str(uuid.uuid5(_TENANT_NAMESPACE, f"{tenant}\x00{name}"))
    return str(uuid.uuid5(_ID_NAMESPACE, name))


def region_point_id(doc_id: str, seq: int, region: int, tenant: str | None = None, slot: int = 0) -> str:
    """Deterministic id of region `region` of point `seq` (a long page's region, stored beside the
    page's own point and grouped back to it at search time)."""
    return point_id(f"{doc_id}\x00region{region}", seq, tenant, slot)


#: How a vector can be stored, least to most compressed.
STORAGES: tuple[str, ...] = tuple(VectorStorage)


@dataclass
class Compression:
    """How one space's vectors are stored. The defaults are the layout before compression existed."""

    tokens: str = "float16"  # one of STORAGES
    dense: str = "float32"
    token_pool_factor: int = 1  # token vectors pooled to about 1/factor of their number; 1 keeps all


@dataclass
class SpaceSpec:
    """One vector space: what fills it, its dimension and how its vectors are stored."""

    name: str
    kind: str
    model: str
    dim: int
    modalities: list[str]
    compression: Compression = field(default_factory=Compression)
    prefetch: str = ""  # ROWCOL: points also store pooled rows and columns; "" (and older specs): none


#: The prefetch vector of ColPali page spaces: pooled rows and columns of the patch grid.
ROWCOL = "rowcol"


@dataclass
class CollectionSpec:
    """Everything about a collection that must survive restarts (stored beside its data)."""

    name: str
    text_kind: str
    text_model: str
    page_kind: str = ""
    page_model: str = ""
    chunk_words: int = 180
    chunk_overlap: int = 40
    indexed_fields: dict[str, str] = field(default_factory=dict)  # user key -> a FieldType value
    ocr: str = "auto"  # an OcrMode value; collections from before the setting read "auto" (what they did)
    spaces: dict[str, SpaceSpec] = field(default_factory=dict)
    on_duplicate: str = ""  # an OnDuplicate value; "" keeps duplicates (server/dedup.py)
    duplicate_threshold: float = 0.0  # 0: the default threshold

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CollectionSpec:
        raw = json.loads(text)
        raw["spaces"] = {k: _space(v) for k, v in raw.get("spaces", {}).items()}
        return cls(**raw)


def _space(raw: dict[str, Any]) -> SpaceSpec:
    return SpaceSpec(**{**raw, "compression": Compression(**raw.get("compression", {}))})


@dataclass
class Cond:
    """One condition on a payload key; exactly one of match / any_of / range / ids / empty / where
    is set (where: a nested group of conditions)."""

    key: str = ""
    match: str | int | bool | None = None
    any_of: list[str] | list[int] | None = None
    range: dict[str, float] | None = None  # gt/gte/lt/lte
    ids: list[str] | None = None
    empty: bool = False  # the key is absent (or null, or an empty list)
    where: Where | None = None


@dataclass
class Where:
    must: list[Cond] = field(default_factory=list)
    must_not: list[Cond] = field(default_factory=list)
    should: list[Cond] = field(default_factory=list)

    def and_(self, *conds: Cond) -> Where:
        return Where(must=[*self.must, *conds], must_not=list(self.must_not), should=list(self.should))

    def is_empty(self) -> bool:
        return not (self.must or self.must_not or self.should)

    def for_tenant(self, tenant: str | None) -> Where:
        """This condition narrowed to one tenant's points (a `must`, so no `should` can widen it);
        unchanged for None (a caller bound to no tenant sees every point)."""
        return self.and_(Cond(key=TENANT_FIELD, match=tenant)) if tenant else self

    def owned_by(self, tenant: str | None) -> Where:
        """Narrowed to the points written under exactly `tenant`, None meaning no tenant: a writer
        replacing or rolling back its own version of a document touches no other tenant's."""
        return self.and_(Cond(key=TENANT_FIELD, match=tenant) if tenant else Cond(key=TENANT_FIELD, empty=True))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Where:
        return _where(json.loads(text))


def _where(raw: dict[str, Any]) -> Where:
    def cond(c: dict[str, Any]) -> Cond:
        return Cond(**{**c, "where": _where(c["where"]) if c.get("where") else None})

    return Where(**{k: [cond(c) for c in raw.get(k, [])] for k in ("must", "must_not", "should")})


#: A point is hidden when its document's live slot is not its own (or, for a point from before
#: slots, when its document has a live slot at all: a newer version replaced it).
HIDDEN = [Cond(where=Where(must=[Cond(LIVE, match=s)], must_not=[Cond(SLOT, match=s)])) for s in (0, 1)]


def visible(where: Where | None) -> Where:
    """`where`, restricted to visible points."""
    where = where or Where()
    return Where(must=list(where.must), must_not=[*where.must_not, *HIDDEN], should=list(where.should))


def is_visible(payload: dict[str, Any]) -> bool:
    return LIVE not in payload or payload.get(SLOT) == payload[LIVE]


@dataclass
class PointData:
    """A point to store.

    dense: (dim,) float32 unit norm; tokens: (n, dim) float32 unit rows;
    lexical: BM25 term weights (indices, values) or None.
    """

    id: str
    space: str
    dense: np.ndarray
    tokens: np.ndarray
    lexical: tuple[list[int], list[float]] | None
    payload: dict[str, Any]
    #: Points stored with this one and counted as part of it: a long page's regions (ingest/regions.py).
    companions: list[PointData] = field(default_factory=list)
    #: (m, dim) unit rows of the space's prefetch vector (ROWCOL), when the space has one.
    prefetch: np.ndarray | None = None


#: A query vector: dense (dim,), multi-vector (n, dim), or sparse (indices, values).
Query = np.ndarray | tuple[list[int], list[float]]

#: Point id -> score, best first.
Scores = dict[str, float]


@dataclass
class Hit:
    id: str
    payload: dict[str, Any]
    tokens: np.ndarray | None = None  # (n, dim) when vectors were asked for
    dense: np.ndarray | None = None  # (dim,) pooled vector, from `scan` when a space was asked for


@dataclass
class StoreStats:
    """A collection's size and index state, as its backend reports them."""

    points: int
    indexed_points: int  # points whose vectors are in a built index; the rest are searched exactly
    shards: int
    indexing: bool  # an index build is waiting or running


@dataclass
class SnapshotInfo:
    collection: str
    name: str
    size_bytes: int


class Record(Protocol):
    """A stored point as both engines return it: payload a dict (or None), vector a dict by name."""

    @property
    def id(self) -> Any: ...

    @property
    def payload(self) -> Any: ...

    @property
    def vector(self) -> Any: ...


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
    def _query(self, name: str, using: str, vector: Any, limit: int, flt: Any | None) -> Scores:
        """Nearest points to `vector` by the named vector, without payload."""

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
            raise NotFound(f"collection {name!r} does not exist") from exc

    def create_collection(self, spec: CollectionSpec) -> None:
        """Raises AlreadyExists."""
        d = self.dialect
        with self._lock, self._engine(spec.name):
            if self._has(spec.name):
                raise AlreadyExists(
                    f"collection {spec.name!r} already exists; its encoders, chunking and compression are "
                    "fixed at creation: delete it and create it again to change them"
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
        cut short); returns how many. Only while nothing writes the collection: at startup."""
        where = Where(should=list(HIDDEN))
        n = self.count(name, where, hidden=True)
        if n:
            self.delete(name, where)
        return n

    def _search(self, name: str, using: str, query: Query, limit: int, flt: Any | None) -> Scores:
        if isinstance(query, tuple) and not query[0]:
            return {}  # an empty sparse query matches nothing
        with self._engine(name):
            return self._query(name, using, self.dialect.vector(query), limit, flt)

    def dense_search(self, name: str, space: str, vector: np.ndarray, limit: int, where: Where) -> Scores:
        """Nearest visible points by pooled vector (cosine). No payload: see `retrieve`."""
        return self._search(name, f"{space}_dense", vector, limit, self.dialect.filter(visible(where)))

    def vector_search(self, name: str, using: str, query: Query, limit: int, where: Where) -> Scores:
        """Best visible points by any named vector (`<space>_tokens`: exact MaxSim over every point
        the filter lets through; `<space>_rowcol`: MaxSim over pooled rows and columns). No payload."""
        return self._search(name, using, query, limit, self.dialect.filter(visible(where)))

    def lexical_search(self, name: str, terms: tuple[list[int], list[float]], limit: int, where: Where) -> Scores:
        """Best visible points by BM25 (IDF-weighted sparse dot product). No payload: see `retrieve`."""
        return self._search(name, "lexical", terms, limit, self.dialect.filter(visible(where)))

    def score_ids(self, name: str, using: str, query: Query, ids: Sequence[str]) -> Scores:
        """Scores exactly the given points against one query vector. using: `<space>_dense` (query
        (dim,)), `<space>_tokens` (exact MaxSim, query (n, dim)) or `lexical` (sparse query).
        Points lacking that vector or scoring nothing are absent from the result."""
        if not ids:
            return {}
        flt = self.dialect.filter(visible(Where(must=[Cond(ids=list(ids))])))
        return self._search(name, using, query, len(ids), flt)

    def retrieve(
        self, name: str, ids: Sequence[str], space: str | None = None, fields: Sequence[str] | None = None
    ) -> list[Hit]:
        """Visible points by id with their payload (only `fields` when given), and their token
        vectors when `space` is given. Unknown (and hidden) ids are absent from the result."""
        if not ids:
            return []
        using = f"{space}_tokens" if space else None
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
