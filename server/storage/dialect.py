"""mmsearch's storage types spelled as one engine's objects, the translation written once.

qdrant_edge and qdrant_client.models have parallel classes that take the same keywords
(`FieldCondition(key=, match=)`, `SparseVector(indices=, values=)`, ...) and parallel enums whose
members differ only in case (`Distance.Cosine` / `Distance.COSINE`). A `Dialect` is the table of one
library's classes, filled from the module by those names (`Dialect.of`) plus the few that differ; its
methods build filters, points, query vectors and a collection's vector configuration from it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from mmsearch.protocol.vocab import FieldType

from .base import CORE_INDEXES, ROWCOL, STORAGES, TENANT_FIELD, CollectionSpec, Cond, PointData, Query, Where

Build = Callable[..., Any]

#: Classes both libraries name alike and construct with the same keywords.
PARALLEL = ("Filter", "FieldCondition", "MatchValue", "MatchAny", "SparseVector")


def member(enum: Any, name: str) -> Any:
    """The enum member called `name` in either library's spelling (MaxSim, MAX_SIM -> "maxsim")."""
    for attr in dir(enum):
        if attr.replace("_", "").lower() == name:
            return getattr(enum, attr)
    raise AttributeError(f"{enum!r} has no member like {name!r}")


@dataclass(frozen=True)
class Dialect:
    Filter: Build
    FieldCondition: Build
    MatchValue: Build
    MatchAny: Build
    Range: Build  # float bounds gt / gte / lt / lte
    has_id: Callable[[Sequence[str]], Any]  # the id condition, whose argument is spelled differently
    is_empty: Callable[[str], Any]  # "the key is absent", spelled differently too
    SparseVector: Build
    Point: Build
    VectorParams: Build
    SparseVectorParams: Build
    cosine: Any
    maxsim: Any  # the multivector config: MaxSim over token vectors
    idf: Any  # the sparse modifier: the engine applies BM25's IDF
    #: Extra VectorParams of token vectors. They are only ever scored exactly over candidates (no
    #: graph) and memory-mapped: they are most of the data (~100x the pooled vector) and only
    #: candidates' pages are read, which the OS caches as it sees fit. The datatype given here is
    #: replaced by the space's compression.
    exact_only: dict[str, Any]
    schema: dict[str, Any]  # keyword | integer | float | bool -> the payload index type
    #: Storage name (base.STORAGES) -> the datatype. Both engines store TurboQuant natively and score
    #: MaxSim and cosine on the quantised vectors (qdrant-edge VectorStorageDatatype, qdrant-client
    #: Datatype), so a compressed collection is searched by the same calls.
    datatype: dict[str, Any]
    #: Extra SparseVectorParams of the BM25 vector.
    lexical_extra: dict[str, Any] = field(default_factory=dict)
    #: Extra VectorParams of the pooled (dense) vectors.
    dense_extra: dict[str, Any] = field(default_factory=dict)
    #: DenseQuantization value -> the engine's quantisation config of the pooled vectors (None: none).
    dense_quantization: dict[str, Any] = field(default_factory=dict)
    #: The tenant field's index, when the engine has a better one than a keyword index (a Qdrant
    #: server's `is_tenant` keeps each tenant's points together).
    tenant_index: Any = None

    @classmethod
    def of(cls, module: ModuleType, **spelled: Any) -> Dialect:
        """The dialect of `module`: its PARALLEL classes and enum members, then what it spells its own way
        (which may replace a PARALLEL class)."""
        common: dict[str, Any] = dict(
            cosine=member(module.Distance, "cosine"),
            maxsim=module.MultiVectorConfig(comparator=member(module.MultiVectorComparator, "maxsim")),
            idf=member(module.Modifier, "idf"),
            schema={kind: member(module.PayloadSchemaType, kind) for kind in FieldType},
            datatype={
                name: member(getattr(module, "VectorStorageDatatype", None) or module.Datatype, name)
                for name in STORAGES
            },
        )
        return cls(**{**{name: getattr(module, name) for name in PARALLEL}, **common, **spelled})

    def condition(self, c: Cond) -> Any:
        if c.where is not None:
            return self.filter(c.where) or self.Filter()
        if c.ids is not None:
            return self.has_id(c.ids)
        if c.empty:
            return self.is_empty(c.key)
        if c.match is not None:
            return self.FieldCondition(key=c.key, match=self.MatchValue(value=c.match))
        if c.any_of is not None:
            return self.FieldCondition(key=c.key, match=self.MatchAny(any=list(c.any_of)))
        if c.range is not None:
            return self.FieldCondition(key=c.key, range=self.Range(**c.range))
        raise ValueError(f"empty condition on {c.key!r}")

    def filter(self, where: Where | None) -> Any | None:
        if where is None or where.is_empty():
            return None
        return self.Filter(
            must=[self.condition(c) for c in where.must] or None,
            must_not=[self.condition(c) for c in where.must_not] or None,
            should=[self.condition(c) for c in where.should] or None,
        )

    def vector(self, query: Query) -> Any:
        """A query vector: dense (dim,) and multi (n, dim) arrays as lists, sparse as SparseVector."""
        if isinstance(query, tuple):
            return self.SparseVector(indices=query[0], values=query[1])
        return query.tolist()

    def point(self, p: PointData) -> Any:
        vector: dict[str, Any] = {f"{p.space}_dense": p.dense.tolist(), f"{p.space}_tokens": p.tokens.tolist()}
        if p.prefetch is not None:
            vector[f"{p.space}_{ROWCOL}"] = p.prefetch.tolist()
        if p.lexical is not None and p.lexical[0]:
            vector["lexical"] = self.vector(p.lexical)
        return self.Point(id=p.id, vector=vector, payload=p.payload)

    def vectors(self, spec: CollectionSpec) -> dict[str, Any]:
        """Named vector -> params, the layout described in storage/base.py, stored as each space's
        compression says."""
        out: dict[str, Any] = {}
        for space in spec.spaces.values():
            c = space.compression
            quantised = self.dense_quantization.get(c.dense_quantization)
            out[f"{space.name}_dense"] = self.VectorParams(
                size=space.dim, distance=self.cosine, datatype=self.datatype[c.dense], **self.dense_extra,
                **({"quantization_config": quantised} if quantised is not None else {}),
            )  # fmt: skip
            out[f"{space.name}_tokens"] = self.VectorParams(
                size=space.dim,
                distance=self.cosine,
                multivector_config=self.maxsim,
                **{**self.exact_only, "datatype": self.datatype[c.tokens]},
            )
            if space.prefetch == ROWCOL:  # a few dozen vectors a page, searched as the first stage
                out[f"{space.name}_{ROWCOL}"] = self.VectorParams(
                    size=space.dim,
                    distance=self.cosine,
                    multivector_config=self.maxsim,
                    datatype=self.datatype[c.dense],
                )
        return out

    def sparse_vectors(self) -> dict[str, Any]:
        return {"lexical": self.SparseVectorParams(modifier=self.idf, **self.lexical_extra)}

    def indexes(self, spec: CollectionSpec) -> dict[str, Any]:
        """Payload key -> index type: the core fields, then the user's `meta.<key>` fields."""
        kinds = {**CORE_INDEXES, **{f"meta.{k}": v for k, v in spec.indexed_fields.items()}}
        out = {key: self.schema[kind] for key, kind in kinds.items()}
        if self.tenant_index is not None:
            out[TENANT_FIELD] = self.tenant_index
        return out
