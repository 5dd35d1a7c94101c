"""The authenticated caller of the current RPC, readable by the services without gRPC.

The security interceptor sets it for the duration of a call (on the worker thread that runs the
handler). Work the handler hands to other threads (the ingest pump, the writer) does not see it:
services read it once at the start of a call and pass the tenant to the domain explicitly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import IntEnum
from fnmatch import fnmatchcase


class Role(IntEnum):
    """Ordered: each role may do everything the roles below it may."""

    READ = 1  # search, get and list collections, rerank, embed, info
    WRITE = 2  # + ingest and delete documents
    ADMIN = 3  # + create and delete collections; never bound to a tenant

    @property
    def label(self) -> str:
        return self.name.lower()


#: What a tenant name may hold: it becomes a payload value and part of point ids.
TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: Role
    collections: tuple[str, ...] = ("*",)  # names or shell globs (fnmatch, case-sensitive)
    tenant: str | None = None
    max_concurrent: int = 0  # in-flight calls of this key; 0: no limit
    rate: float = 0.0  # calls per second, token bucket; 0: no limit
    burst: int = 0  # bucket size; 0: max(1, rate)

    def may_use(self, collection: str) -> bool:
        return any(fnmatchcase(collection, pattern) for pattern in self.collections)


#: The anonymous caller of a server without API keys: everything, no tenant.
ANONYMOUS = Principal(key_id="-", role=Role.ADMIN)

_current: ContextVar[Principal] = ContextVar("mmsearch_principal", default=ANONYMOUS)


def current_principal() -> Principal:
    return _current.get()


def current_tenant() -> str | None:
    return _current.get().tenant


@contextmanager
def acting_as(principal: Principal) -> Iterator[None]:
    token = _current.set(principal)
    try:
        yield
    finally:
        try:
            _current.reset(token)
        except ValueError:  # a generator closed from another context (a cancelled stream): nothing to undo here
            pass
