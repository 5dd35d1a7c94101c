"""Metadata boosts: numeric field weights, date decay and keyword multipliers, combined with the
relevance score in one formula that keeps it in [0, 1] (docs/boosts.md):

    score = (relevance + Σ wᵢ·fᵢ) / (1 + Σ wᵢ) · Π mⱼ^[matchⱼ] / Π max(1, mⱼ)

- relevance: the fused score (or the cross-encoder's, for reranked results), in [0, 1];
- fᵢ in [0, 1]: a numeric field min-max normalised over the candidates (or over a given range),
  flipped for "lower", or a date's decay from its origin; a candidate without the field gets 0;
- mⱼ: a keyword multiplier, applied when the field equals the value; dividing by the largest product
  the multipliers can reach keeps the best possible score at 1 and the order that relevance × m gives.

Why after fusion, in Python, and not as a Qdrant formula query (both qdrant-edge-py 0.9 and
qdrant-client have `Formula` with `DatetimeKey`, `Decay` and conditions): the relevance score does not
exist inside the engine. It is a z-score fusion over the candidates of several searches (dense per
space, BM25, MaxSim) computed here, so a formula over the engine's `$score` would boost one signal
only; and min-max normalisation needs every candidate's value. The engine still does the filtering,
so a boost only reorders candidates the query found; it never brings in documents that do not match.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from mmsearch.protocol.vocab import BoostDirection, DecayFunction

from ..errors import InvalidArgument

#: Largest weight or multiplier accepted: beyond it relevance would not count at all.
MAX_WEIGHT = 100.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_SCALE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdwy])\s*$")


@dataclass
class NumericBoost:
    key: str
    direction: BoostDirection
    weight: float
    low: float | None = None  # a fixed range instead of the candidates' min-max
    high: float | None = None

    @property
    def name(self) -> str:
        return f"{self.key}:{self.direction}"


@dataclass
class DecayBoost:
    key: str
    function: DecayFunction
    scale: str  # "30d"
    weight: float
    origin: str = ""  # ISO 8601; empty: now
    midpoint: float = 0.5

    @property
    def name(self) -> str:
        return f"{self.key}:{self.function}:{self.scale}"


@dataclass
class KeywordBoost:
    key: str
    value: str
    multiplier: float

    @property
    def name(self) -> str:
        return f"{self.key}={self.value}"


@dataclass
class Boosts:
    numeric: list[NumericBoost] = field(default_factory=list)
    decay: list[DecayBoost] = field(default_factory=list)
    keyword: list[KeywordBoost] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.numeric or self.decay or self.keyword)

    def all(self) -> list[NumericBoost | DecayBoost | KeywordBoost]:
        return [*self.numeric, *self.decay, *self.keyword]


def parse_scale(text: str) -> float:
    """ "30d" -> seconds; units s m h d w y (a year is 365 days)."""
    m = _SCALE.match(text)
    if not m or float(m.group(1)) <= 0:
        raise InvalidArgument(
            f"decay scale {text!r} does not parse: expected a positive number and a unit s m h d w y, e.g. '30d'"
        )
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_time(text: str) -> float | None:
    """An ISO 8601 date or date-time as epoch seconds (UTC when it has no zone); None when it is not one."""
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


def _check_weight(name: str, value: float, what: str = "weight") -> None:
    if not math.isfinite(value) or not 0 < value <= MAX_WEIGHT:
        raise InvalidArgument(f"boost {name}: {what} must be in (0, {MAX_WEIGHT:g}], got {value}")


def validate(boosts: Boosts) -> None:
    """Everything that can be checked without the candidates (their values are checked in `factors`)."""
    for b in boosts.all():
        if not b.key.strip():
            raise InvalidArgument("a boost needs a metadata key")
    for n in boosts.numeric:
        _check_weight(n.name, n.weight)
        if n.direction not in set(BoostDirection):
            raise InvalidArgument(f"boost on {n.key!r}: direction must be higher or lower")
        if (n.low is None) != (n.high is None):
            raise InvalidArgument(f"boost {n.name}: give both min and max of the range, or neither")
        if n.low is not None and n.high is not None and not (math.isfinite(n.low) and n.high > n.low):
            raise InvalidArgument(f"boost {n.name}: range [{n.low}, {n.high}] is empty")
    for d in boosts.decay:
        if d.function not in set(DecayFunction):
            raise InvalidArgument(f"boost on {d.key!r}: unknown decay {d.function!r}; use exp, gauss or linear")
        _check_weight(d.name, d.weight)
        parse_scale(d.scale)
        if d.origin and parse_time(d.origin) is None:
            raise InvalidArgument(f"boost {d.name}: origin {d.origin!r} is not an ISO 8601 date")
        if not 0 < d.midpoint < 1:
            raise InvalidArgument(f"boost {d.name}: midpoint must be in (0, 1), got {d.midpoint}")
    for k in boosts.keyword:
        _check_weight(k.name, k.multiplier, "multiplier")


def lookup(meta: Mapping[str, Any], key: str) -> Any:
    """The value of a dotted key (`item.price`) in nested metadata; None when absent."""
    value: Any = meta
    for part in key.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _decay(function: DecayFunction, distance: np.ndarray, scale: float, midpoint: float) -> np.ndarray:
    """Qdrant's decay functions: 1 at distance 0, `midpoint` at distance `scale`."""
    x = distance / scale
    if function == DecayFunction.EXP:
        return np.exp(math.log(midpoint) * x)  # type: ignore[no-any-return]
    if function == DecayFunction.GAUSS:
        return np.exp(math.log(midpoint) * x**2)  # type: ignore[no-any-return]
    return np.clip(1 - (1 - midpoint) * x, 0.0, 1.0)  # type: ignore[no-any-return]


@dataclass
class Factors:
    """Per candidate: (n, k) additive factors fᵢ with their (k,) weights and names, and (n, j)
    multipliers applied (1 where a keyword did not match) with their (j,) ceilings max(1, mⱼ)."""

    additive: np.ndarray
    weights: np.ndarray
    additive_names: list[str]
    multipliers: np.ndarray
    ceilings: np.ndarray
    multiplier_names: list[str]

    def row(self, i: int) -> Factors:
        """One candidate's factors (a result keeps them, to be boosted again after the cross-encoder)."""
        return Factors(self.additive[i : i + 1], self.weights, self.additive_names, self.multipliers[i : i + 1],
                       self.ceilings, self.multiplier_names)  # fmt: skip


def _numbers(metas: list[dict[str, Any]], key: str, name: str, as_time: bool) -> np.ndarray:
    """(n,) values of `key` (NaN where absent); a value of the wrong type is the caller's mistake."""
    out = np.full(len(metas), np.nan)
    for i, meta in enumerate(metas):
        v = lookup(meta, key)
        if v is None:
            continue
        if as_time:
            t = parse_time(v) if isinstance(v, str) else None
            if t is None:
                raise InvalidArgument(f"boost {name}: field {key!r} is {v!r} in a candidate, not an ISO 8601 date")
            out[i] = t
        elif isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            out[i] = float(v)
        else:
            raise InvalidArgument(f"boost {name}: field {key!r} is {v!r} in a candidate, not a number")
    if len(metas) and np.isnan(out).all():
        kind = "date" if as_time else "numeric"
        raise InvalidArgument(f"boost {name}: no candidate has a {kind} field {key!r}")
    return out


def factors(boosts: Boosts, metas: list[dict[str, Any]], now: float) -> Factors:
    """The boosts' factors for candidates with these metadata; `now` (epoch seconds) is the default origin."""
    columns, weights, names = [], [], []
    for n in boosts.numeric:
        x = _numbers(metas, n.key, n.name, as_time=False)
        lo = n.low if n.low is not None else float(np.nanmin(x)) if len(x) else 0.0
        hi = n.high if n.high is not None else float(np.nanmax(x)) if len(x) else 0.0
        if hi > lo:
            f = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
            f = 1 - f if n.direction == BoostDirection.LOWER else f
        else:  # every candidate has the same value: having the field is all that counts
            f = np.where(np.isnan(x), np.nan, 1.0)
        columns.append(f)
        weights.append(n.weight)
        names.append(n.name)
    for d in boosts.decay:
        t = _numbers(metas, d.key, d.name, as_time=True)
        origin = parse_time(d.origin) if d.origin else now
        columns.append(_decay(d.function, np.abs(t - origin), parse_scale(d.scale), d.midpoint))
        weights.append(d.weight)
        names.append(d.name)
    additive = np.nan_to_num(np.array(columns).T.reshape(len(metas), len(columns)), nan=0.0)
    multipliers = np.ones((len(metas), len(boosts.keyword)))
    for j, k in enumerate(boosts.keyword):
        for i, meta in enumerate(metas):
            v = lookup(meta, k.key)
            values = v if isinstance(v, list) else [v]
            if any(_text(x) == k.value for x in values if x is not None):
                multipliers[i, j] = k.multiplier
    return Factors(
        additive, np.array(weights, dtype=np.float64), names, multipliers,
        np.maximum(1.0, np.array([k.multiplier for k in boosts.keyword], dtype=np.float64)),
        [k.name for k in boosts.keyword],
    )  # fmt: skip


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def combine(relevance: np.ndarray, f: Factors) -> np.ndarray:
    """(n,) relevance in [0, 1] -> (n,) boosted scores in [0, 1] (the formula above)."""
    additive = (relevance + f.additive @ f.weights) / (1.0 + f.weights.sum())
    return np.clip(additive * f.multipliers.prod(axis=1) / f.ceilings.prod(), 0.0, 1.0)  # type: ignore[no-any-return]


def contributions(relevance: float, one: Factors) -> list[tuple[str, float, float]]:
    """(boost name, factor, contribution) for one candidate's factors (`Factors.row`). A numeric or date
    boost's contribution is its share of the score, wᵢ·fᵢ / (1 + Σ w) times the multipliers (the score is
    relevance's share plus these); a keyword's is the score minus the score without that multiplier."""
    score = float(combine(np.array([relevance]), one)[0])
    scale = float(one.multipliers[0].prod() / one.ceilings.prod()) / (1.0 + float(one.weights.sum()))
    out = [(name, float(one.additive[0, i]), float(one.weights[i] * one.additive[0, i]) * scale)
           for i, name in enumerate(one.additive_names)]  # fmt: skip
    for j, name in enumerate(one.multiplier_names):
        keep = [c for c in range(len(one.ceilings)) if c != j]
        without = Factors(one.additive, one.weights, [], one.multipliers[:, keep], one.ceilings[keep], [])
        out.append((name, float(one.multipliers[0, j]), score - float(combine(np.array([relevance]), without)[0])))
    return out
