from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Modality(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODALITY_UNSPECIFIED: _ClassVar[Modality]
    MODALITY_TEXT: _ClassVar[Modality]
    MODALITY_PAGE: _ClassVar[Modality]

class FieldType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FIELD_TYPE_UNSPECIFIED: _ClassVar[FieldType]
    FIELD_TYPE_KEYWORD: _ClassVar[FieldType]
    FIELD_TYPE_INTEGER: _ClassVar[FieldType]
    FIELD_TYPE_FLOAT: _ClassVar[FieldType]
    FIELD_TYPE_BOOL: _ClassVar[FieldType]

class DuplicatePolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DUPLICATE_POLICY_UNSPECIFIED: _ClassVar[DuplicatePolicy]
    DUPLICATE_POLICY_KEEP: _ClassVar[DuplicatePolicy]
    DUPLICATE_POLICY_SKIP: _ClassVar[DuplicatePolicy]
    DUPLICATE_POLICY_REPLACE: _ClassVar[DuplicatePolicy]
MODALITY_UNSPECIFIED: Modality
MODALITY_TEXT: Modality
MODALITY_PAGE: Modality
FIELD_TYPE_UNSPECIFIED: FieldType
FIELD_TYPE_KEYWORD: FieldType
FIELD_TYPE_INTEGER: FieldType
FIELD_TYPE_FLOAT: FieldType
FIELD_TYPE_BOOL: FieldType
DUPLICATE_POLICY_UNSPECIFIED: DuplicatePolicy
DUPLICATE_POLICY_KEEP: DuplicatePolicy
DUPLICATE_POLICY_SKIP: DuplicatePolicy
DUPLICATE_POLICY_REPLACE: DuplicatePolicy

class Image(_message.Message):
    __slots__ = ("data", "mime_type")
    DATA_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    mime_type: str
    def __init__(self, data: _Optional[bytes] = ..., mime_type: _Optional[str] = ...) -> None: ...

class FilterValue(_message.Message):
    __slots__ = ("string_value", "int_value", "bool_value")
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    string_value: str
    int_value: int
    bool_value: bool
    def __init__(self, string_value: _Optional[str] = ..., int_value: _Optional[int] = ..., bool_value: _Optional[bool] = ...) -> None: ...

class FilterValues(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[FilterValue]
    def __init__(self, values: _Optional[_Iterable[_Union[FilterValue, _Mapping]]] = ...) -> None: ...

class Range(_message.Message):
    __slots__ = ("gt", "gte", "lt", "lte")
    GT_FIELD_NUMBER: _ClassVar[int]
    GTE_FIELD_NUMBER: _ClassVar[int]
    LT_FIELD_NUMBER: _ClassVar[int]
    LTE_FIELD_NUMBER: _ClassVar[int]
    gt: float
    gte: float
    lt: float
    lte: float
    def __init__(self, gt: _Optional[float] = ..., gte: _Optional[float] = ..., lt: _Optional[float] = ..., lte: _Optional[float] = ...) -> None: ...

class FieldCondition(_message.Message):
    __slots__ = ("key", "match", "any_of", "range")
    KEY_FIELD_NUMBER: _ClassVar[int]
    MATCH_FIELD_NUMBER: _ClassVar[int]
    ANY_OF_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    key: str
    match: FilterValue
    any_of: FilterValues
    range: Range
    def __init__(self, key: _Optional[str] = ..., match: _Optional[_Union[FilterValue, _Mapping]] = ..., any_of: _Optional[_Union[FilterValues, _Mapping]] = ..., range: _Optional[_Union[Range, _Mapping]] = ...) -> None: ...

class Filter(_message.Message):
    __slots__ = ("must", "must_not", "should")
    MUST_FIELD_NUMBER: _ClassVar[int]
    MUST_NOT_FIELD_NUMBER: _ClassVar[int]
    SHOULD_FIELD_NUMBER: _ClassVar[int]
    must: _containers.RepeatedCompositeFieldContainer[FieldCondition]
    must_not: _containers.RepeatedCompositeFieldContainer[FieldCondition]
    should: _containers.RepeatedCompositeFieldContainer[FieldCondition]
    def __init__(self, must: _Optional[_Iterable[_Union[FieldCondition, _Mapping]]] = ..., must_not: _Optional[_Iterable[_Union[FieldCondition, _Mapping]]] = ..., should: _Optional[_Iterable[_Union[FieldCondition, _Mapping]]] = ...) -> None: ...

class Metadata(_message.Message):
    __slots__ = ("fields",)
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    fields: _struct_pb2.Struct
    def __init__(self, fields: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class DuplicateOptions(_message.Message):
    __slots__ = ("policy", "threshold")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    policy: DuplicatePolicy
    threshold: float
    def __init__(self, policy: _Optional[_Union[DuplicatePolicy, str]] = ..., threshold: _Optional[float] = ...) -> None: ...
