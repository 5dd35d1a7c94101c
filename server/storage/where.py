"""Backend-neutral payload conditions: what a search, scan, count or delete is restricted to
(storage/dialect.py turns them into each engine's filter)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

#: The reserved payload field of a tenant's documents (written by a key bound to a tenant). User
#: metadata lives under `meta.`, so no request filter can name it.
TENANT_FIELD = "_tenant"


@dataclass
class Cond:
    """One condition on a payload key; exactly one of match / any_of / range / ids / empty / where
    is set (where: a nested group of conditions)."""

    key: str = ""
    match: str | int | bool | None = None
    any_of: list[str] | list[int] | None = None
    range: dict[str, float] | None = None  # gt/gte/lt/lte
    ids: list[str] | None = None
    empty: bool = False  # the key is absent (or null, or an empty list)
    where: Where | None = None


@dataclass
class Where:
    must: list[Cond] = field(default_factory=list)
    must_not: list[Cond] = field(default_factory=list)
    should: list[Cond] = field(default_factory=list)

    def and_(self, *conds: Cond) -> Where:
        return Where(must=[*self.must, *conds], must_not=list(self.must_not), should=list(self.should))

    def is_empty(self) -> bool:
        return not (self.must or self.must_not or self.should)

    def for_tenant(self, tenant: str | None) -> Where:
        """This condition narrowed to one tenant's points (a `must`, so no `should` can widen it);
        unchanged for None (a caller bound to no tenant sees every point)."""
        return self.and_(Cond(key=TENANT_FIELD, match=tenant)) if tenant else self

    def owned_by(self, tenant: str | None) -> Where:
        """Narrowed to the points written under exactly `tenant`, None meaning no tenant: a writer
        replacing or rolling back its own version of a document touches no other tenant's."""
        return self.and_(Cond(key=TENANT_FIELD, match=tenant) if tenant else Cond(key=TENANT_FIELD, empty=True))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Where:
        return _where(json.loads(text))


def _where(raw: dict[str, Any]) -> Where:
    def cond(c: dict[str, Any]) -> Cond:
        return Cond(**{**c, "where": _where(c["where"]) if c.get("where") else None})

    return Where(**{k: [cond(c) for c in raw.get(k, [])] for k in ("must", "must_not", "should")})
