from mmsearch.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EmbedInput(_message.Message):
    __slots__ = ("text", "image")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    text: str
    image: _common_pb2.Image
    def __init__(self, text: _Optional[str] = ..., image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ...) -> None: ...

class EmbedRequest(_message.Message):
    __slots__ = ("inputs", "encoder", "as_query", "multi_vector")
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    ENCODER_FIELD_NUMBER: _ClassVar[int]
    AS_QUERY_FIELD_NUMBER: _ClassVar[int]
    MULTI_VECTOR_FIELD_NUMBER: _ClassVar[int]
    inputs: _containers.RepeatedCompositeFieldContainer[EmbedInput]
    encoder: EncoderRef
    as_query: bool
    multi_vector: bool
    def __init__(self, inputs: _Optional[_Iterable[_Union[EmbedInput, _Mapping]]] = ..., encoder: _Optional[_Union[EncoderRef, _Mapping]] = ..., as_query: _Optional[bool] = ..., multi_vector: _Optional[bool] = ...) -> None: ...

class EncoderRef(_message.Message):
    __slots__ = ("kind", "model")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    kind: str
    model: str
    def __init__(self, kind: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class Vector(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class Embedding(_message.Message):
    __slots__ = ("pooled", "tokens", "token_strings")
    POOLED_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_STRINGS_FIELD_NUMBER: _ClassVar[int]
    pooled: Vector
    tokens: _containers.RepeatedCompositeFieldContainer[Vector]
    token_strings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, pooled: _Optional[_Union[Vector, _Mapping]] = ..., tokens: _Optional[_Iterable[_Union[Vector, _Mapping]]] = ..., token_strings: _Optional[_Iterable[str]] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("embeddings",)
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    embeddings: _containers.RepeatedCompositeFieldContainer[Embedding]
    def __init__(self, embeddings: _Optional[_Iterable[_Union[Embedding, _Mapping]]] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EncoderInfo(_message.Message):
    __slots__ = ("kind", "model", "dim", "modalities", "capabilities", "loaded")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    MODALITIES_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    LOADED_FIELD_NUMBER: _ClassVar[int]
    kind: str
    model: str
    dim: int
    modalities: _containers.RepeatedScalarFieldContainer[_common_pb2.Modality]
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    loaded: bool
    def __init__(self, kind: _Optional[str] = ..., model: _Optional[str] = ..., dim: _Optional[int] = ..., modalities: _Optional[_Iterable[_Union[_common_pb2.Modality, str]]] = ..., capabilities: _Optional[_Iterable[str]] = ..., loaded: _Optional[bool] = ...) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("version", "storage_backend", "encoders", "max_message_bytes", "max_top_k", "max_rerank_documents", "resident_memory_bytes", "peak_resident_memory_bytes", "storage_bytes", "anonymous_memory_bytes", "page_image_bytes")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STORAGE_BACKEND_FIELD_NUMBER: _ClassVar[int]
    ENCODERS_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_TOP_K_FIELD_NUMBER: _ClassVar[int]
    MAX_RERANK_DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    PEAK_RESIDENT_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    STORAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    ANONYMOUS_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    PAGE_IMAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    version: str
    storage_backend: str
    encoders: _containers.RepeatedCompositeFieldContainer[EncoderInfo]
    max_message_bytes: int
    max_top_k: int
    max_rerank_documents: int
    resident_memory_bytes: int
    peak_resident_memory_bytes: int
    storage_bytes: int
    anonymous_memory_bytes: int
    page_image_bytes: int
    def __init__(self, version: _Optional[str] = ..., storage_backend: _Optional[str] = ..., encoders: _Optional[_Iterable[_Union[EncoderInfo, _Mapping]]] = ..., max_message_bytes: _Optional[int] = ..., max_top_k: _Optional[int] = ..., max_rerank_documents: _Optional[int] = ..., resident_memory_bytes: _Optional[int] = ..., peak_resident_memory_bytes: _Optional[int] = ..., storage_bytes: _Optional[int] = ..., anonymous_memory_bytes: _Optional[int] = ..., page_image_bytes: _Optional[int] = ...) -> None: ...
