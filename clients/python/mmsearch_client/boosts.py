"""`--boost` specs as the Boosts message (docs/boosts.md). Three forms:

    KEY:higher|lower:WEIGHT[:MIN..MAX]        numeric field, min-max over the candidates or over MIN..MAX
    KEY:exp|gauss|linear:SCALE:WEIGHT[:ORIGIN] date decay; SCALE like 30d, 12h, 2w; ORIGIN ISO 8601 (default now)
    KEY=VALUE:MULTIPLIER                       keyword multiplier (compared as text)

e.g. `price:lower:0.3`, `date:exp:30d:0.5`, `date:gauss:7d:1:2018-03-31`, `source=handbook:1.2`.
Only the syntax is checked here; the server checks the values (weights, scales, the fields' types).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mmsearch.protocol.vocab import BoostDirection, DecayFunction
from mmsearch.protocol.wire import BOOST_DIRECTION, DECAY_FUNCTION
from mmsearch.v1 import search_pb2

SYNTAX = "KEY:higher|lower:WEIGHT[:MIN..MAX], KEY:exp|gauss|linear:SCALE:WEIGHT[:ORIGIN] or KEY=VALUE:MULTIPLIER"


class BoostSyntaxError(ValueError):
    pass


def _number(spec: str, text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise BoostSyntaxError(f"--boost {spec!r}: {what} {text!r} is not a number") from None


def add_boost(boosts: search_pb2.Boosts, spec: str) -> None:
    """Parses one spec into `boosts`; BoostSyntaxError names what is wrong."""
    head = spec.split(":", 1)[0]
    if "=" in head:  # KEY=VALUE:MULTIPLIER; the value may hold ':' (the multiplier is after the last one)
        match, sep, multiplier = spec.rpartition(":")
        key, _, value = match.partition("=")
        if not sep or not key or not value:
            raise BoostSyntaxError(f"--boost {spec!r}: expected KEY=VALUE:MULTIPLIER, e.g. source=handbook:1.2")
        boosts.keyword.add(key=key, value=value, multiplier=_number(spec, multiplier, "multiplier"))
        return
    parts = spec.split(":", 4)  # an ORIGIN date-time keeps its own colons
    if len(parts) < 3:
        raise BoostSyntaxError(f"--boost {spec!r}: expected {SYNTAX}")
    key, kind = parts[0], parts[1].lower()
    if kind in set(BoostDirection):
        if len(parts) > 4:
            raise BoostSyntaxError(f"--boost {spec!r}: expected KEY:{kind}:WEIGHT[:MIN..MAX]")
        numeric: dict[str, Any] = {
            "key": key,
            "direction": BOOST_DIRECTION.to_wire(kind),
            "weight": _number(spec, parts[2], "weight"),
        }
        if len(parts) == 4:
            low, sep, high = parts[3].partition("..")
            if not sep:
                raise BoostSyntaxError(f"--boost {spec!r}: range {parts[3]!r} should read MIN..MAX")
            numeric.update(min=_number(spec, low, "min"), max=_number(spec, high, "max"))
        boosts.numeric.add(**numeric)
    elif kind in set(DecayFunction):
        if len(parts) < 4:
            raise BoostSyntaxError(
                f"--boost {spec!r}: expected KEY:{kind}:SCALE:WEIGHT[:ORIGIN], e.g. date:exp:30d:0.5"
            )
        boosts.decay.add(
            key=key,
            function=DECAY_FUNCTION.to_wire(kind),
            scale=parts[2],
            weight=_number(spec, parts[3], "weight"),
            origin=parts[4] if len(parts) == 5 else "",
        )
    else:
        known = ", ".join([*BoostDirection, *DecayFunction])
        raise BoostSyntaxError(f"--boost {spec!r}: unknown kind {parts[1]!r} (one of {known}, or KEY=VALUE:MULTIPLIER)")


def make_boosts(specs: Iterable[str]) -> search_pb2.Boosts:
    """`--boost` specs as one Boosts message (for `RankingOptions.boosts`)."""
    boosts = search_pb2.Boosts()
    for spec in specs:
        add_boost(boosts, spec)
    return boosts
