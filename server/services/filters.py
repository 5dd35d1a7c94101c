"""Proto filters into storage terms, with the checks that give callers clear errors."""

from __future__ import annotations

import math
import re

from mmsearch.v1 import common_pb2

from ..errors import InvalidArgument
from ..storage.base import Cond, Where

_KEY = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*")  # fullmatch: `$` would let a trailing newline in


def _value(v: common_pb2.FilterValue, key: str) -> str | int | bool:
    kind = v.WhichOneof("kind")
    if kind is None:
        raise InvalidArgument(f"filter on {key!r}: value has no type (set string_value, int_value or bool_value)")
    return getattr(v, kind)  # type: ignore[no-any-return]


def _condition(c: common_pb2.FieldCondition) -> Cond:
    if not c.key or not _KEY.fullmatch(c.key):
        raise InvalidArgument(f"filter key {c.key!r} is not a valid metadata key (letters, digits, _ - and dots)")
    key = "meta." + c.key
    which = c.WhichOneof("condition")
    if which == "match":
        return Cond(key=key, match=_value(c.match, c.key))
    if which == "any_of":
        values = [_value(v, c.key) for v in c.any_of.values]
        if not values:
            raise InvalidArgument(f"filter on {c.key!r}: any_of has no values")
        types = {type(v) for v in values}
        if types not in ({str}, {int}):
            raise InvalidArgument(f"filter on {c.key!r}: any_of values must be all strings or all integers")
        return Cond(key=key, any_of=values)  # type: ignore[arg-type]
    if which == "range":
        bounds = {f: getattr(c.range, f) for f in ("gt", "gte", "lt", "lte") if c.range.HasField(f)}
        if not bounds:
            raise InvalidArgument(f"filter on {c.key!r}: range has no bounds")
        for name, bound in bounds.items():
            if not math.isfinite(bound):
                raise InvalidArgument(f"filter on {c.key!r}: range bound {name} is {bound}; bounds must be finite")
        return Cond(key=key, range=bounds)
    raise InvalidArgument(f"filter on {c.key!r} has no condition (set match, any_of or range)")


def to_where(f: common_pb2.Filter | None) -> Where:
    """None (no filter in the request): everything."""
    if f is None:
        return Where()
    return Where(
        must=[_condition(c) for c in f.must],
        must_not=[_condition(c) for c in f.must_not],
        should=[_condition(c) for c in f.should],
    )
