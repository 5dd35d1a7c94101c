"""Declared metadata fields (`create --field year=integer`) hold what they declare, and filters on them
ask for that type. Without these checks a record with `"year": "nineteen"` was stored and then broke
every search boosted on `year`, and `year=>2020` (a typo for `year>=2020`) matched the string ">2020"
against integers and silently found nothing."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from mmsearch.protocol.vocab import FieldType

from .errors import InvalidArgument
from .ranking.boosts import lookup
from .storage.where import Cond, Where

_WHAT = {
    FieldType.KEYWORD: "a string",
    FieldType.INTEGER: "a whole number",
    FieldType.FLOAT: "a number",
    FieldType.BOOL: "true or false",
}


def _fits(value: Any, kind: FieldType) -> bool:
    if kind == FieldType.KEYWORD:
        return isinstance(value, str)
    if kind == FieldType.BOOL:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == FieldType.INTEGER:  # metadata travels as a protobuf Struct: past 2**53 a whole number is a float
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    return isinstance(value, int | float)


def check_metadata(meta: Mapping[str, Any], declared: Mapping[str, str], item_id: str) -> None:
    """A declared field, when present, holds its type (or a list of it); null counts as absent."""
    for key, kind_name in declared.items():
        kind = FieldType(kind_name)
        value = lookup(meta, key)
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        bad = next((v for v in values if v is not None and not _fits(v, kind)), None)
        if bad is not None:
            raise InvalidArgument(
                f"metadata of item {item_id[:100]!r}: field {key!r} is declared {kind.value}, so it takes "
                f"{_WHAT[kind]} (or a list of them), not {bad!r}"
            )


def check_filter(where: Where, declared: Mapping[str, str]) -> None:
    """Every condition on a declared field asks for a value of its type (user keys are `meta.`-prefixed).
    A whole number matched against a keyword field is compared as its text, in place: the CLI cannot
    tell `code=123` the text from the number."""
    for cond in _conditions(where):
        if not cond.key.startswith("meta."):
            continue
        key = cond.key.removeprefix("meta.")
        if cond.range is not None:
            check_range(key, cond.range)
        if key not in declared:
            continue
        kind = FieldType(declared[key])
        if cond.range is not None and kind not in (FieldType.INTEGER, FieldType.FLOAT):
            raise InvalidArgument(
                f"filter on {key!r}: the field is declared {kind.value}; a range needs an integer or float field"
            )
        if kind == FieldType.KEYWORD:
            if isinstance(cond.match, int) and not isinstance(cond.match, bool):
                cond.match = str(cond.match)
            if cond.any_of and all(isinstance(v, int) and not isinstance(v, bool) for v in cond.any_of):
                cond.any_of = [str(v) for v in cond.any_of]
        values = [cond.match] if cond.match is not None else list(cond.any_of or [])
        bad = next((v for v in values if not _fits(v, kind)), None)
        if bad is not None:
            typo = isinstance(bad, str) and re.fullmatch(r"[<>]-?\d+(\.\d+)?", bad) is not None
            hint = f" (a range is written {key}>=N, not {key}=>N)" if typo else ""
            raise InvalidArgument(
                f"filter on {key!r}: the field is declared {kind.value}, so it matches {_WHAT[kind]}, not {bad!r}{hint}"
            )


_OPERATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def check_range(key: str, bounds: Mapping[str, float]) -> None:
    """A range no number falls in (gt 10, lt 5: bounds swapped, most likely) is refused: it matched
    nothing, silently. Its tightest lower and upper bounds are compared; equal ones need both inclusive."""
    lows = [(v, b) for b, v in bounds.items() if b in ("gt", "gte")]
    highs = [(v, b) for b, v in bounds.items() if b in ("lt", "lte")]
    if not lows or not highs:
        return
    low, low_bound = max(lows, key=lambda x: (x[0], x[1] == "gt"))  # at equal values gt is the tighter
    high, high_bound = min(highs, key=lambda x: (x[0], x[1] == "lte"))  # and lt
    excluded = low_bound == "gt" or high_bound == "lt"  # at low == high the one value is outside
    if low > high or (low == high and excluded):
        said = f"{_OPERATORS[low_bound]} {low:g} and {_OPERATORS[high_bound]} {high:g}"
        raise InvalidArgument(f"filter on {key!r}: the range {said} is empty (no number is both); check its bounds")


def _conditions(where: Where) -> Iterable[Cond]:
    for cond in (*where.must, *where.must_not, *where.should):
        yield cond
        if cond.where is not None:
            yield from _conditions(cond.where)
