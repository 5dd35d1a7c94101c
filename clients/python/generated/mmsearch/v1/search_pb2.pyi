from mmsearch.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FusionStrategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FUSION_STRATEGY_UNSPECIFIED: _ClassVar[FusionStrategy]
    FUSION_STRATEGY_WEIGHTED_ZSCORE: _ClassVar[FusionStrategy]
    FUSION_STRATEGY_RRF: _ClassVar[FusionStrategy]
    FUSION_STRATEGY_DBSF: _ClassVar[FusionStrategy]
    FUSION_STRATEGY_MAXSIM: _ClassVar[FusionStrategy]
    FUSION_STRATEGY_CALIBRATED_ZSCORE: _ClassVar[FusionStrategy]

class BoostDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BOOST_DIRECTION_UNSPECIFIED: _ClassVar[BoostDirection]
    BOOST_DIRECTION_HIGHER: _ClassVar[BoostDirection]
    BOOST_DIRECTION_LOWER: _ClassVar[BoostDirection]

class DecayFunction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECAY_FUNCTION_UNSPECIFIED: _ClassVar[DecayFunction]
    DECAY_FUNCTION_EXP: _ClassVar[DecayFunction]
    DECAY_FUNCTION_GAUSS: _ClassVar[DecayFunction]
    DECAY_FUNCTION_LINEAR: _ClassVar[DecayFunction]
FUSION_STRATEGY_UNSPECIFIED: FusionStrategy
FUSION_STRATEGY_WEIGHTED_ZSCORE: FusionStrategy
FUSION_STRATEGY_RRF: FusionStrategy
FUSION_STRATEGY_DBSF: FusionStrategy
FUSION_STRATEGY_MAXSIM: FusionStrategy
FUSION_STRATEGY_CALIBRATED_ZSCORE: FusionStrategy
BOOST_DIRECTION_UNSPECIFIED: BoostDirection
BOOST_DIRECTION_HIGHER: BoostDirection
BOOST_DIRECTION_LOWER: BoostDirection
DECAY_FUNCTION_UNSPECIFIED: DecayFunction
DECAY_FUNCTION_EXP: DecayFunction
DECAY_FUNCTION_GAUSS: DecayFunction
DECAY_FUNCTION_LINEAR: DecayFunction

class Query(_message.Message):
    __slots__ = ("text", "image")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    text: str
    image: _common_pb2.Image
    def __init__(self, text: _Optional[str] = ..., image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ...) -> None: ...

class RankingOptions(_message.Message):
    __slots__ = ("prefetch_k", "dense_weight", "maxsim_weight", "lexical_weight", "fusion", "cross_encoder", "rerank_k", "boosts", "hnsw_ef", "exact")
    PREFETCH_K_FIELD_NUMBER: _ClassVar[int]
    DENSE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAXSIM_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    FUSION_FIELD_NUMBER: _ClassVar[int]
    CROSS_ENCODER_FIELD_NUMBER: _ClassVar[int]
    RERANK_K_FIELD_NUMBER: _ClassVar[int]
    BOOSTS_FIELD_NUMBER: _ClassVar[int]
    HNSW_EF_FIELD_NUMBER: _ClassVar[int]
    EXACT_FIELD_NUMBER: _ClassVar[int]
    prefetch_k: int
    dense_weight: float
    maxsim_weight: float
    lexical_weight: float
    fusion: FusionStrategy
    cross_encoder: bool
    rerank_k: int
    boosts: Boosts
    hnsw_ef: int
    exact: bool
    def __init__(self, prefetch_k: _Optional[int] = ..., dense_weight: _Optional[float] = ..., maxsim_weight: _Optional[float] = ..., lexical_weight: _Optional[float] = ..., fusion: _Optional[_Union[FusionStrategy, str]] = ..., cross_encoder: _Optional[bool] = ..., rerank_k: _Optional[int] = ..., boosts: _Optional[_Union[Boosts, _Mapping]] = ..., hnsw_ef: _Optional[int] = ..., exact: _Optional[bool] = ...) -> None: ...

class NumericBoost(_message.Message):
    __slots__ = ("key", "direction", "weight", "min", "max")
    KEY_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    key: str
    direction: BoostDirection
    weight: float
    min: float
    max: float
    def __init__(self, key: _Optional[str] = ..., direction: _Optional[_Union[BoostDirection, str]] = ..., weight: _Optional[float] = ..., min: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class DecayBoost(_message.Message):
    __slots__ = ("key", "function", "scale", "origin", "weight", "midpoint")
    KEY_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MIDPOINT_FIELD_NUMBER: _ClassVar[int]
    key: str
    function: DecayFunction
    scale: str
    origin: str
    weight: float
    midpoint: float
    def __init__(self, key: _Optional[str] = ..., function: _Optional[_Union[DecayFunction, str]] = ..., scale: _Optional[str] = ..., origin: _Optional[str] = ..., weight: _Optional[float] = ..., midpoint: _Optional[float] = ...) -> None: ...

class KeywordBoost(_message.Message):
    __slots__ = ("key", "value", "multiplier")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    multiplier: float
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ..., multiplier: _Optional[float] = ...) -> None: ...

class Boosts(_message.Message):
    __slots__ = ("numeric", "decay", "keyword")
    NUMERIC_FIELD_NUMBER: _ClassVar[int]
    DECAY_FIELD_NUMBER: _ClassVar[int]
    KEYWORD_FIELD_NUMBER: _ClassVar[int]
    numeric: _containers.RepeatedCompositeFieldContainer[NumericBoost]
    decay: _containers.RepeatedCompositeFieldContainer[DecayBoost]
    keyword: _containers.RepeatedCompositeFieldContainer[KeywordBoost]
    def __init__(self, numeric: _Optional[_Iterable[_Union[NumericBoost, _Mapping]]] = ..., decay: _Optional[_Iterable[_Union[DecayBoost, _Mapping]]] = ..., keyword: _Optional[_Iterable[_Union[KeywordBoost, _Mapping]]] = ...) -> None: ...

class BoostContribution(_message.Message):
    __slots__ = ("boost", "factor", "contribution")
    BOOST_FIELD_NUMBER: _ClassVar[int]
    FACTOR_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    boost: str
    factor: float
    contribution: float
    def __init__(self, boost: _Optional[str] = ..., factor: _Optional[float] = ..., contribution: _Optional[float] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("collection", "query", "top_k", "filter", "modalities", "score_threshold", "ranking", "explain", "all_passages", "document_ids", "thumbnails", "full_text")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    MODALITIES_FIELD_NUMBER: _ClassVar[int]
    SCORE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    RANKING_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    ALL_PASSAGES_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    THUMBNAILS_FIELD_NUMBER: _ClassVar[int]
    FULL_TEXT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    query: Query
    top_k: int
    filter: _common_pb2.Filter
    modalities: _containers.RepeatedScalarFieldContainer[_common_pb2.Modality]
    score_threshold: float
    ranking: RankingOptions
    explain: bool
    all_passages: bool
    document_ids: _containers.RepeatedScalarFieldContainer[str]
    thumbnails: bool
    full_text: bool
    def __init__(self, collection: _Optional[str] = ..., query: _Optional[_Union[Query, _Mapping]] = ..., top_k: _Optional[int] = ..., filter: _Optional[_Union[_common_pb2.Filter, _Mapping]] = ..., modalities: _Optional[_Iterable[_Union[_common_pb2.Modality, str]]] = ..., score_threshold: _Optional[float] = ..., ranking: _Optional[_Union[RankingOptions, _Mapping]] = ..., explain: _Optional[bool] = ..., all_passages: _Optional[bool] = ..., document_ids: _Optional[_Iterable[str]] = ..., thumbnails: _Optional[bool] = ..., full_text: _Optional[bool] = ...) -> None: ...

class BoundingBox(_message.Message):
    __slots__ = ("x0", "y0", "x1", "y1")
    X0_FIELD_NUMBER: _ClassVar[int]
    Y0_FIELD_NUMBER: _ClassVar[int]
    X1_FIELD_NUMBER: _ClassVar[int]
    Y1_FIELD_NUMBER: _ClassVar[int]
    x0: float
    y0: float
    x1: float
    y1: float
    def __init__(self, x0: _Optional[float] = ..., y0: _Optional[float] = ..., x1: _Optional[float] = ..., y1: _Optional[float] = ...) -> None: ...

class TokenMatch(_message.Message):
    __slots__ = ("query_token", "document_token", "similarity", "document_position", "box")
    QUERY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_POSITION_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    query_token: str
    document_token: str
    similarity: float
    document_position: int
    box: BoundingBox
    def __init__(self, query_token: _Optional[str] = ..., document_token: _Optional[str] = ..., similarity: _Optional[float] = ..., document_position: _Optional[int] = ..., box: _Optional[_Union[BoundingBox, _Mapping]] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("matches", "signals", "page_width", "page_height", "unboosted_score", "boosts", "region", "text_source", "ocr_reader")
    class SignalsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    PAGE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    PAGE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    UNBOOSTED_SCORE_FIELD_NUMBER: _ClassVar[int]
    BOOSTS_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    TEXT_SOURCE_FIELD_NUMBER: _ClassVar[int]
    OCR_READER_FIELD_NUMBER: _ClassVar[int]
    matches: _containers.RepeatedCompositeFieldContainer[TokenMatch]
    signals: _containers.ScalarMap[str, float]
    page_width: int
    page_height: int
    unboosted_score: float
    boosts: _containers.RepeatedCompositeFieldContainer[BoostContribution]
    region: BoundingBox
    text_source: str
    ocr_reader: str
    def __init__(self, matches: _Optional[_Iterable[_Union[TokenMatch, _Mapping]]] = ..., signals: _Optional[_Mapping[str, float]] = ..., page_width: _Optional[int] = ..., page_height: _Optional[int] = ..., unboosted_score: _Optional[float] = ..., boosts: _Optional[_Iterable[_Union[BoostContribution, _Mapping]]] = ..., region: _Optional[_Union[BoundingBox, _Mapping]] = ..., text_source: _Optional[str] = ..., ocr_reader: _Optional[str] = ...) -> None: ...

class SearchResult(_message.Message):
    __slots__ = ("document_id", "page", "modality", "score", "metadata", "snippet", "passage", "explanation", "thumbnail")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SNIPPET_FIELD_NUMBER: _ClassVar[int]
    PASSAGE_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    page: int
    modality: _common_pb2.Modality
    score: float
    metadata: _common_pb2.Metadata
    snippet: str
    passage: int
    explanation: Explanation
    thumbnail: bytes
    def __init__(self, document_id: _Optional[str] = ..., page: _Optional[int] = ..., modality: _Optional[_Union[_common_pb2.Modality, str]] = ..., score: _Optional[float] = ..., metadata: _Optional[_Union[_common_pb2.Metadata, _Mapping]] = ..., snippet: _Optional[str] = ..., passage: _Optional[int] = ..., explanation: _Optional[_Union[Explanation, _Mapping]] = ..., thumbnail: _Optional[bytes] = ...) -> None: ...

class SearchTimings(_message.Message):
    __slots__ = ("encode_ms", "retrieve_ms", "rerank_ms", "total_ms")
    ENCODE_MS_FIELD_NUMBER: _ClassVar[int]
    RETRIEVE_MS_FIELD_NUMBER: _ClassVar[int]
    RERANK_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    encode_ms: float
    retrieve_ms: float
    rerank_ms: float
    total_ms: float
    def __init__(self, encode_ms: _Optional[float] = ..., retrieve_ms: _Optional[float] = ..., rerank_ms: _Optional[float] = ..., total_ms: _Optional[float] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("results", "timings")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SearchResult]
    timings: SearchTimings
    def __init__(self, results: _Optional[_Iterable[_Union[SearchResult, _Mapping]]] = ..., timings: _Optional[_Union[SearchTimings, _Mapping]] = ...) -> None: ...
