"""A collection's spec: what fills each vector space and how its vectors are stored (kept beside
the collection's data on both backends)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from mmsearch.protocol.vocab import FieldType, VectorStorage

from .slots import LIVE, SLOT
from .where import TENANT_FIELD

#: Payload fields every point carries, indexed for filtering (the tenant only on tenants' points).
CORE_INDEXES = {
    "doc_id": FieldType.KEYWORD,
    "modality": FieldType.KEYWORD,
    "seq": FieldType.INTEGER,
    TENANT_FIELD: FieldType.KEYWORD,
    SLOT: FieldType.INTEGER,
    LIVE: FieldType.INTEGER,
}

#: How a vector can be stored, least to most compressed.
STORAGES: tuple[str, ...] = tuple(VectorStorage)


@dataclass
class Compression:
    """How one space's vectors are stored. The defaults are the layout before compression existed."""

    tokens: str = "float16"  # one of STORAGES
    dense: str = "float32"
    token_pool_factor: int = 1  # token vectors pooled to about 1/factor of their number; 1 keeps all
    dense_quantization: str = "none"  # DenseQuantization: the copy the first stage's graph is searched on


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
