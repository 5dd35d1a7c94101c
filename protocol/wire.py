"""The vocabulary and the user's data on the wire: each vocab enum beside its proto enum, metadata
(a google.protobuf.Struct) and filters. Used by the gRPC services and the client, never by the domain."""

from __future__ import annotations

import decimal
import math
import numbers
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Generic, TypeVar

from google.protobuf import json_format
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from mmsearch.v1 import collections_pb2, common_pb2, rerank_pb2, search_pb2

from .vocab import (
    BoostDirection,
    DecayFunction,
    DenseQuantization,
    FieldType,
    Fusion,
    Modality,
    OcrMode,
    OnDuplicate,
    RerankMethod,
    VectorStorage,
)

E = TypeVar("E", bound=StrEnum)


class WireEnum(Generic[E]):
    """A vocab enum and the proto enum that names the same members as PREFIX_MEMBER; every member must
    have its proto twin (checked when this module is imported). Proto value 0 (UNSPECIFIED) has none."""

    def __init__(self, vocab: type[E], proto: EnumTypeWrapper, prefix: str) -> None:
        self.vocab = vocab
        self._members = {proto.Value(f"{prefix}_{m.name}"): m for m in vocab}
        self._numbers: dict[str, int] = {m.value: n for n, m in self._members.items()}

    def to_wire(self, value: str) -> int:
        """The member's proto number; 0 (UNSPECIFIED) for a value that is not a member, which the
        server rejects where a member is required."""
        return self._numbers.get(value, 0)

    def from_wire(self, number: int) -> E | None:
        """The member; None for UNSPECIFIED and for numbers this version does not know."""
        return self._members.get(number)


MODALITY = WireEnum(Modality, common_pb2.Modality, "MODALITY")
FIELD_TYPE = WireEnum(FieldType, common_pb2.FieldType, "FIELD_TYPE")
FUSION = WireEnum(Fusion, search_pb2.FusionStrategy, "FUSION_STRATEGY")
RERANK_METHOD = WireEnum(RerankMethod, rerank_pb2.RerankMethod, "RERANK_METHOD")
VECTOR_STORAGE = WireEnum(VectorStorage, collections_pb2.VectorStorage, "VECTOR_STORAGE")
BOOST_DIRECTION = WireEnum(BoostDirection, search_pb2.BoostDirection, "BOOST_DIRECTION")
DECAY_FUNCTION = WireEnum(DecayFunction, search_pb2.DecayFunction, "DECAY_FUNCTION")
OCR_MODE = WireEnum(OcrMode, collections_pb2.OcrMode, "OCR_MODE")
DENSE_QUANTIZATION = WireEnum(DenseQuantization, collections_pb2.DenseQuantization, "DENSE_QUANTIZATION")
DUPLICATE_POLICY = WireEnum(OnDuplicate, common_pb2.DuplicatePolicy, "DUPLICATE_POLICY")


def struct_to_dict(struct: Any) -> dict[str, Any]:
    """A google.protobuf.Struct as a dict, with integral numbers as ints: Struct stores every number as
    a double, and 2020 should read (and filter) as 2020, not 2020.0."""
    return _ints_back(json_format.MessageToDict(struct))  # type: ignore[no-any-return]


def _ints_back(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _ints_back(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints_back(v) for v in value]
    return value


def metadata_to_dict(m: common_pb2.Metadata) -> dict[str, Any]:
    return struct_to_dict(m.fields) if m.HasField("fields") else {}


def dict_to_metadata(d: Mapping[str, Any]) -> common_pb2.Metadata:
    m = common_pb2.Metadata()
    if d:
        m.fields.update(d)
    return m


class FilterError(ValueError):
    """A filter that cannot be sent as written (the client reports it as INVALID_ARGUMENT)."""


_RANGE_BOUNDS = ("gt", "gte", "lt", "lte")


def filter_value(value: Any, key: str = "") -> common_pb2.FilterValue:
    """An exact value: a whole number (numpy's too), a bool or text. A float such as 2020.0 counts as
    2020; other floats and None are refused: they would match nothing."""
    if isinstance(value, bool):
        return common_pb2.FilterValue(bool_value=value)
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        if not math.isfinite(value):
            raise FilterError(f"filter on {key!r}: {value} is not a finite number")
        if float(value).is_integer():
            value = int(float(value))
        else:
            raise FilterError(
                f"filter on {key!r}: {value} cannot be matched exactly; "
                f"use a range ({{'gte': {value}, 'lte': {value}}})"
            )
    if isinstance(value, numbers.Integral):
        if not -(2**63) <= int(value) < 2**63:
            raise FilterError(f"filter on {key!r}: {value} is out of the 64-bit integer range")
        return common_pb2.FilterValue(int_value=int(value))
    if value is None:
        raise FilterError(f"filter on {key!r}: None cannot be matched; give a string, a whole number or a bool")
    return common_pb2.FilterValue(string_value=str(value))  # a date, a Decimal, ...: compared as text


def _range(value: dict[str, Any], key: str) -> common_pb2.Range:
    unknown = sorted(set(value) - set(_RANGE_BOUNDS))
    if unknown or not value:
        raise FilterError(f"filter on {key!r}: a range takes bounds {', '.join(_RANGE_BOUNDS)}, got {sorted(value)}")
    bounds = {}
    for bound, v in value.items():
        if isinstance(v, bool) or not isinstance(v, numbers.Real | decimal.Decimal):
            raise FilterError(f"filter on {key!r}: range bound {bound} must be a number, got {v!r}")
        try:
            bounds[bound] = float(v)
        except OverflowError:
            raise FilterError(f"filter on {key!r}: range bound {bound} is too large for a float") from None
    return common_pb2.Range(**bounds)


def make_filter(conditions: Mapping[str, Any] | common_pb2.Filter | None) -> common_pb2.Filter | None:
    """{"lang": "en"} exact; {"tag": ["a", "b"]} any of; {"year": {"gte": 2020}} range (all must hold).
    FilterError (a ValueError) for a value that cannot be sent: a fractional number to match, None, ..."""
    if conditions is None or isinstance(conditions, common_pb2.Filter):
        return conditions
    f = common_pb2.Filter()
    for key, value in conditions.items():
        c = f.must.add(key=key)
        if isinstance(value, dict):
            c.range.CopyFrom(_range(value, key))
        elif isinstance(value, list | tuple | set):
            c.any_of.values.extend(filter_value(v, key) for v in value)
        else:
            c.match.CopyFrom(filter_value(value, key))
    return f
