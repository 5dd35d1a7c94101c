from mmsearch.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TextFile(_message.Message):
    __slots__ = ("data", "mime_type")
    DATA_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    mime_type: str
    def __init__(self, data: _Optional[bytes] = ..., mime_type: _Optional[str] = ...) -> None: ...

class IngestItem(_message.Message):
    __slots__ = ("id", "metadata", "text", "image", "pdf", "text_file", "source")
    ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    PDF_FIELD_NUMBER: _ClassVar[int]
    TEXT_FILE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    metadata: _common_pb2.Metadata
    text: str
    image: _common_pb2.Image
    pdf: bytes
    text_file: TextFile
    source: str
    def __init__(self, id: _Optional[str] = ..., metadata: _Optional[_Union[_common_pb2.Metadata, _Mapping]] = ..., text: _Optional[str] = ..., image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., pdf: _Optional[bytes] = ..., text_file: _Optional[_Union[TextFile, _Mapping]] = ..., source: _Optional[str] = ...) -> None: ...

class IngestRequest(_message.Message):
    __slots__ = ("collection", "item", "create_collection", "on_duplicate", "report_progress")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ITEM_FIELD_NUMBER: _ClassVar[int]
    CREATE_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ON_DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    REPORT_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    item: IngestItem
    create_collection: bool
    on_duplicate: _common_pb2.DuplicateOptions
    report_progress: bool
    def __init__(self, collection: _Optional[str] = ..., item: _Optional[_Union[IngestItem, _Mapping]] = ..., create_collection: _Optional[bool] = ..., on_duplicate: _Optional[_Union[_common_pb2.DuplicateOptions, _Mapping]] = ..., report_progress: _Optional[bool] = ...) -> None: ...

class IngestProgress(_message.Message):
    __slots__ = ("points_stored", "points_total")
    POINTS_STORED_FIELD_NUMBER: _ClassVar[int]
    POINTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    points_stored: int
    points_total: int
    def __init__(self, points_stored: _Optional[int] = ..., points_total: _Optional[int] = ...) -> None: ...

class IngestAck(_message.Message):
    __slots__ = ("sequence", "id", "source", "ok", "error_code", "error", "points", "duplicate_of", "progress")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_OF_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    id: str
    source: str
    ok: bool
    error_code: str
    error: str
    points: int
    duplicate_of: _containers.RepeatedScalarFieldContainer[str]
    progress: IngestProgress
    def __init__(self, sequence: _Optional[int] = ..., id: _Optional[str] = ..., source: _Optional[str] = ..., ok: _Optional[bool] = ..., error_code: _Optional[str] = ..., error: _Optional[str] = ..., points: _Optional[int] = ..., duplicate_of: _Optional[_Iterable[str]] = ..., progress: _Optional[_Union[IngestProgress, _Mapping]] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("collection", "ids", "filter")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    collection: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    filter: _common_pb2.Filter
    def __init__(self, collection: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., filter: _Optional[_Union[_common_pb2.Filter, _Mapping]] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("deleted_points",)
    DELETED_POINTS_FIELD_NUMBER: _ClassVar[int]
    deleted_points: int
    def __init__(self, deleted_points: _Optional[int] = ...) -> None: ...

class IngestBatchRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[IngestRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[IngestRequest, _Mapping]]] = ...) -> None: ...

class IngestBatchResponse(_message.Message):
    __slots__ = ("acks",)
    ACKS_FIELD_NUMBER: _ClassVar[int]
    acks: _containers.RepeatedCompositeFieldContainer[IngestAck]
    def __init__(self, acks: _Optional[_Iterable[_Union[IngestAck, _Mapping]]] = ...) -> None: ...
