"""One enum per word of the protocol. The proto enums (mmsearch.v1) name the same members with a prefix
(Fusion.RRF is FUSION_STRATEGY_RRF); `wire` maps them in one place. No protos here: the domain imports
this module, never the generated code."""

from __future__ import annotations

from enum import StrEnum


class Modality(StrEnum):
    """What a stored point or a result is."""

    TEXT = "text"  # a passage of a text document
    PAGE = "page"  # an image file or one page of a PDF


class Fusion(StrEnum):
    """How a candidate's signals become one score (docs/ranking.md)."""

    WEIGHTED_ZSCORE = "weighted_zscore"  # the default
    CALIBRATED_ZSCORE = "calibrated_zscore"  # z-scores within each (vector space, modality) group
    RRF = "rrf"
    DBSF = "dbsf"
    MAXSIM = "maxsim"  # late interaction alone


class Signal(StrEnum):
    """A candidate's scores, as fused and as explained."""

    DENSE = "dense"  # pooled-vector cosine
    MAXSIM = "maxsim"  # late interaction, normalised by query length
    LEXICAL = "lexical"  # BM25
    CROSS_ENCODER = "cross_encoder"  # the optional rerank stage's score (explained, not fused)


#: The signals fusion weighs (each has a `<signal>_weight` in the ranking options and the settings).
FUSED_SIGNALS = (Signal.DENSE, Signal.MAXSIM, Signal.LEXICAL)


class FieldType(StrEnum):
    """Types a metadata field can be indexed as, for filtering."""

    KEYWORD = "keyword"
    INTEGER = "integer"
    FLOAT = "float"
    BOOL = "bool"


class VectorStorage(StrEnum):
    """How a collection stores a vector on disk, least to most compressed (docs/benchmarks.md)."""

    FLOAT32 = "float32"
    FLOAT16 = "float16"
    TURBO8 = "turbo8"  # Qdrant's TurboQuant, 8 bits per dimension
    TURBO4 = "turbo4"  # 4 bits per dimension


class DenseQuantization(StrEnum):
    """A quantised copy of the pooled vectors that the first stage's graph is searched on; the best
    candidates are then rescored with the stored vectors (docs/benchmarks.md)."""

    NONE = "none"  # the graph is searched on the stored vectors
    INT8 = "int8"  # scalar int8 (the default of new collections)


class OcrMode(StrEnum):
    """When a collection's pages are read by OCR (their words feed BM25, snippets and explanations)."""

    AUTO = "auto"  # a PDF page's text layer when it has one, OCR for pages without one
    ALWAYS = "always"  # every page OCR'd, PDF pages with a text layer too
    NEVER = "never"  # PDF text layers only: no OCR engine is ever called


class RerankMethod(StrEnum):
    """How the stateless Rerank call scores documents."""

    LATE_INTERACTION = "late_interaction"  # MaxSim blended with the pooled cosine (the default)
    CROSS_ENCODER = "cross_encoder"


class BoostDirection(StrEnum):
    """Which end of a numeric field a boost prefers (docs/boosts.md)."""

    HIGHER = "higher"
    LOWER = "lower"  # e.g. prefer cheaper


class DecayFunction(StrEnum):
    """How a date boost falls off with the distance from its origin (docs/boosts.md)."""

    EXP = "exp"
    GAUSS = "gauss"
    LINEAR = "linear"


class OnDuplicate(StrEnum):
    """What ingest does with an item that near-duplicates stored documents (server/dedup.py)."""

    KEEP = "keep"  # the default: store it anyway
    SKIP = "skip"  # do not store it
    REPLACE = "replace"  # store it and delete the documents it duplicates
