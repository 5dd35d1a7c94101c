from mmsearch.v1 import common_pb2 as _common_pb2
from mmsearch.v1 import search_pb2 as _search_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetSimilarityMapRequest(_message.Message):
    __slots__ = ("collection", "document_id", "page", "query")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    collection: str
    document_id: str
    page: int
    query: str
    def __init__(self, collection: _Optional[str] = ..., document_id: _Optional[str] = ..., page: _Optional[int] = ..., query: _Optional[str] = ...) -> None: ...

class SimilarityMap(_message.Message):
    __slots__ = ("rows", "cols", "page_width", "page_height", "query_tokens", "scores", "source")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    PAGE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    PAGE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    QUERY_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    rows: int
    cols: int
    page_width: int
    page_height: int
    query_tokens: _containers.RepeatedScalarFieldContainer[str]
    scores: _containers.RepeatedScalarFieldContainer[float]
    source: str
    def __init__(self, rows: _Optional[int] = ..., cols: _Optional[int] = ..., page_width: _Optional[int] = ..., page_height: _Optional[int] = ..., query_tokens: _Optional[_Iterable[str]] = ..., scores: _Optional[_Iterable[float]] = ..., source: _Optional[str] = ...) -> None: ...

class GetPageRequest(_message.Message):
    __slots__ = ("collection", "document_id", "page")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    collection: str
    document_id: str
    page: int
    def __init__(self, collection: _Optional[str] = ..., document_id: _Optional[str] = ..., page: _Optional[int] = ...) -> None: ...

class GetDocumentRequest(_message.Message):
    __slots__ = ("collection", "document_id", "images")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    collection: str
    document_id: str
    images: bool
    def __init__(self, collection: _Optional[str] = ..., document_id: _Optional[str] = ..., images: _Optional[bool] = ...) -> None: ...

class PageWord(_message.Message):
    __slots__ = ("text", "box")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    text: str
    box: _search_pb2.BoundingBox
    def __init__(self, text: _Optional[str] = ..., box: _Optional[_Union[_search_pb2.BoundingBox, _Mapping]] = ...) -> None: ...

class Page(_message.Message):
    __slots__ = ("document_id", "page", "image", "mime_type", "width", "height", "thumbnail", "text", "words")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    page: int
    image: bytes
    mime_type: str
    width: int
    height: int
    thumbnail: bytes
    text: str
    words: _containers.RepeatedCompositeFieldContainer[PageWord]
    def __init__(self, document_id: _Optional[str] = ..., page: _Optional[int] = ..., image: _Optional[bytes] = ..., mime_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., thumbnail: _Optional[bytes] = ..., text: _Optional[str] = ..., words: _Optional[_Iterable[_Union[PageWord, _Mapping]]] = ...) -> None: ...

class Document(_message.Message):
    __slots__ = ("document_id", "metadata", "pages")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    metadata: _common_pb2.Metadata
    pages: _containers.RepeatedCompositeFieldContainer[Page]
    def __init__(self, document_id: _Optional[str] = ..., metadata: _Optional[_Union[_common_pb2.Metadata, _Mapping]] = ..., pages: _Optional[_Iterable[_Union[Page, _Mapping]]] = ...) -> None: ...
