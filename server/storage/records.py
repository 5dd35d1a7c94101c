"""What the stores take and return: points to write, hits, scores, statistics, snapshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

#: Payload fields a returned result needs. Candidates are found and scored without any payload: the
#: engine reads a point's whole payload (with its token strings, words and boxes) to return even one
#: field, which cost more than the rest of a search; only the results that are returned pay for it.
HIT_FIELDS = ["doc_id", "seq", "space", "modality", "passage", "page", "text", "meta"]


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

#: The most a search may ask of HNSW's breadth (Qdrant takes any; past this a scan is cheaper).
MAX_HNSW_EF = 4096


@dataclass(frozen=True)
class Breadth:
    """How a dense first stage searches: through the HNSW graphs at the store's breadth (the
    default), at `hnsw_ef`, or `exact`ly over every point (Qdrant's `exact`: a scan)."""

    hnsw_ef: int = 0
    exact: bool = False


APPROXIMATE = Breadth()


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
