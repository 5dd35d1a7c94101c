from mmsearch.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OcrMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OCR_MODE_UNSPECIFIED: _ClassVar[OcrMode]
    OCR_MODE_AUTO: _ClassVar[OcrMode]
    OCR_MODE_ALWAYS: _ClassVar[OcrMode]
    OCR_MODE_NEVER: _ClassVar[OcrMode]

class VectorStorage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VECTOR_STORAGE_UNSPECIFIED: _ClassVar[VectorStorage]
    VECTOR_STORAGE_FLOAT32: _ClassVar[VectorStorage]
    VECTOR_STORAGE_FLOAT16: _ClassVar[VectorStorage]
    VECTOR_STORAGE_TURBO8: _ClassVar[VectorStorage]
    VECTOR_STORAGE_TURBO4: _ClassVar[VectorStorage]

class DenseQuantization(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DENSE_QUANTIZATION_UNSPECIFIED: _ClassVar[DenseQuantization]
    DENSE_QUANTIZATION_NONE: _ClassVar[DenseQuantization]
    DENSE_QUANTIZATION_INT8: _ClassVar[DenseQuantization]

class IndexState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INDEX_STATE_UNSPECIFIED: _ClassVar[IndexState]
    INDEX_STATE_INDEXED: _ClassVar[IndexState]
    INDEX_STATE_INDEXING: _ClassVar[IndexState]
OCR_MODE_UNSPECIFIED: OcrMode
OCR_MODE_AUTO: OcrMode
OCR_MODE_ALWAYS: OcrMode
OCR_MODE_NEVER: OcrMode
VECTOR_STORAGE_UNSPECIFIED: VectorStorage
VECTOR_STORAGE_FLOAT32: VectorStorage
VECTOR_STORAGE_FLOAT16: VectorStorage
VECTOR_STORAGE_TURBO8: VectorStorage
VECTOR_STORAGE_TURBO4: VectorStorage
DENSE_QUANTIZATION_UNSPECIFIED: DenseQuantization
DENSE_QUANTIZATION_NONE: DenseQuantization
DENSE_QUANTIZATION_INT8: DenseQuantization
INDEX_STATE_UNSPECIFIED: IndexState
INDEX_STATE_INDEXED: IndexState
INDEX_STATE_INDEXING: IndexState

class EncoderSpec(_message.Message):
    __slots__ = ("kind", "model")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    kind: str
    model: str
    def __init__(self, kind: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class ChunkingOptions(_message.Message):
    __slots__ = ("max_words", "overlap_words")
    MAX_WORDS_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_WORDS_FIELD_NUMBER: _ClassVar[int]
    max_words: int
    overlap_words: int
    def __init__(self, max_words: _Optional[int] = ..., overlap_words: _Optional[int] = ...) -> None: ...

class IndexedField(_message.Message):
    __slots__ = ("key", "type")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    key: str
    type: _common_pb2.FieldType
    def __init__(self, key: _Optional[str] = ..., type: _Optional[_Union[_common_pb2.FieldType, str]] = ...) -> None: ...

class CollectionConfig(_message.Message):
    __slots__ = ("text_encoder", "page_encoder", "chunking", "indexed_fields", "compression", "ocr", "on_duplicate")
    TEXT_ENCODER_FIELD_NUMBER: _ClassVar[int]
    PAGE_ENCODER_FIELD_NUMBER: _ClassVar[int]
    CHUNKING_FIELD_NUMBER: _ClassVar[int]
    INDEXED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    OCR_FIELD_NUMBER: _ClassVar[int]
    ON_DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    text_encoder: EncoderSpec
    page_encoder: EncoderSpec
    chunking: ChunkingOptions
    indexed_fields: _containers.RepeatedCompositeFieldContainer[IndexedField]
    compression: CompressionOptions
    ocr: OcrMode
    on_duplicate: _common_pb2.DuplicateOptions
    def __init__(self, text_encoder: _Optional[_Union[EncoderSpec, _Mapping]] = ..., page_encoder: _Optional[_Union[EncoderSpec, _Mapping]] = ..., chunking: _Optional[_Union[ChunkingOptions, _Mapping]] = ..., indexed_fields: _Optional[_Iterable[_Union[IndexedField, _Mapping]]] = ..., compression: _Optional[_Union[CompressionOptions, _Mapping]] = ..., ocr: _Optional[_Union[OcrMode, str]] = ..., on_duplicate: _Optional[_Union[_common_pb2.DuplicateOptions, _Mapping]] = ...) -> None: ...

class CompressionOptions(_message.Message):
    __slots__ = ("tokens", "dense", "token_pool_factor", "dense_quantization")
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    DENSE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_POOL_FACTOR_FIELD_NUMBER: _ClassVar[int]
    DENSE_QUANTIZATION_FIELD_NUMBER: _ClassVar[int]
    tokens: VectorStorage
    dense: VectorStorage
    token_pool_factor: int
    dense_quantization: DenseQuantization
    def __init__(self, tokens: _Optional[_Union[VectorStorage, str]] = ..., dense: _Optional[_Union[VectorStorage, str]] = ..., token_pool_factor: _Optional[int] = ..., dense_quantization: _Optional[_Union[DenseQuantization, str]] = ...) -> None: ...

class VectorSpace(_message.Message):
    __slots__ = ("name", "encoder", "dim", "modalities")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENCODER_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    MODALITIES_FIELD_NUMBER: _ClassVar[int]
    name: str
    encoder: EncoderSpec
    dim: int
    modalities: _containers.RepeatedScalarFieldContainer[_common_pb2.Modality]
    def __init__(self, name: _Optional[str] = ..., encoder: _Optional[_Union[EncoderSpec, _Mapping]] = ..., dim: _Optional[int] = ..., modalities: _Optional[_Iterable[_Union[_common_pb2.Modality, str]]] = ...) -> None: ...

class Collection(_message.Message):
    __slots__ = ("name", "config", "document_count", "point_count", "spaces", "indexed_point_count", "index_state", "shard_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    POINT_COUNT_FIELD_NUMBER: _ClassVar[int]
    SPACES_FIELD_NUMBER: _ClassVar[int]
    INDEXED_POINT_COUNT_FIELD_NUMBER: _ClassVar[int]
    INDEX_STATE_FIELD_NUMBER: _ClassVar[int]
    SHARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    config: CollectionConfig
    document_count: int
    point_count: int
    spaces: _containers.RepeatedCompositeFieldContainer[VectorSpace]
    indexed_point_count: int
    index_state: IndexState
    shard_count: int
    def __init__(self, name: _Optional[str] = ..., config: _Optional[_Union[CollectionConfig, _Mapping]] = ..., document_count: _Optional[int] = ..., point_count: _Optional[int] = ..., spaces: _Optional[_Iterable[_Union[VectorSpace, _Mapping]]] = ..., indexed_point_count: _Optional[int] = ..., index_state: _Optional[_Union[IndexState, str]] = ..., shard_count: _Optional[int] = ...) -> None: ...

class CreateCollectionRequest(_message.Message):
    __slots__ = ("name", "config")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    name: str
    config: CollectionConfig
    def __init__(self, name: _Optional[str] = ..., config: _Optional[_Union[CollectionConfig, _Mapping]] = ...) -> None: ...

class GetCollectionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListCollectionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCollectionsResponse(_message.Message):
    __slots__ = ("collections",)
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[Collection]
    def __init__(self, collections: _Optional[_Iterable[_Union[Collection, _Mapping]]] = ...) -> None: ...

class DeleteCollectionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteCollectionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateSnapshotRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("collection", "name", "size_bytes")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    collection: str
    name: str
    size_bytes: int
    def __init__(self, collection: _Optional[str] = ..., name: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class RestoreSnapshotRequest(_message.Message):
    __slots__ = ("collection", "name")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    collection: str
    name: str
    def __init__(self, collection: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ListSnapshotsRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class ListSnapshotsResponse(_message.Message):
    __slots__ = ("snapshots",)
    SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    snapshots: _containers.RepeatedCompositeFieldContainer[Snapshot]
    def __init__(self, snapshots: _Optional[_Iterable[_Union[Snapshot, _Mapping]]] = ...) -> None: ...

class FindDuplicatesRequest(_message.Message):
    __slots__ = ("collection", "threshold", "neighbours", "cross_document")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    CROSS_DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    threshold: float
    neighbours: int
    cross_document: bool
    def __init__(self, collection: _Optional[str] = ..., threshold: _Optional[float] = ..., neighbours: _Optional[int] = ..., cross_document: _Optional[bool] = ...) -> None: ...

class DuplicateMember(_message.Message):
    __slots__ = ("document_id", "seq", "page", "snippet")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    SNIPPET_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    seq: int
    page: int
    snippet: str
    def __init__(self, document_id: _Optional[str] = ..., seq: _Optional[int] = ..., page: _Optional[int] = ..., snippet: _Optional[str] = ...) -> None: ...

class DuplicateGroup(_message.Message):
    __slots__ = ("members", "similarity", "document_ids")
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[DuplicateMember]
    similarity: float
    document_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, members: _Optional[_Iterable[_Union[DuplicateMember, _Mapping]]] = ..., similarity: _Optional[float] = ..., document_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class FindDuplicatesResponse(_message.Message):
    __slots__ = ("groups",)
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[DuplicateGroup]
    def __init__(self, groups: _Optional[_Iterable[_Union[DuplicateGroup, _Mapping]]] = ...) -> None: ...

class StartReindexRequest(_message.Message):
    __slots__ = ("collection", "text_model")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    TEXT_MODEL_FIELD_NUMBER: _ClassVar[int]
    collection: str
    text_model: str
    def __init__(self, collection: _Optional[str] = ..., text_model: _Optional[str] = ...) -> None: ...

class GetReindexStatusRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class ReindexStatus(_message.Message):
    __slots__ = ("collection", "state", "old_model", "new_model", "points_done", "points_total", "error")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OLD_MODEL_FIELD_NUMBER: _ClassVar[int]
    NEW_MODEL_FIELD_NUMBER: _ClassVar[int]
    POINTS_DONE_FIELD_NUMBER: _ClassVar[int]
    POINTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    collection: str
    state: str
    old_model: str
    new_model: str
    points_done: int
    points_total: int
    error: str
    def __init__(self, collection: _Optional[str] = ..., state: _Optional[str] = ..., old_model: _Optional[str] = ..., new_model: _Optional[str] = ..., points_done: _Optional[int] = ..., points_total: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...
