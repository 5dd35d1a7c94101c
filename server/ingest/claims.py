"""Which documents an ingest stream is writing, so that two streams never write the same document id at
once. Points have deterministic ids per (document, passage/page), so two versions written together
would overwrite each other's points and each one's cleanup would delete the other's tail: the
document would end as a mix of both. A claim is held from an item's first unit until its
acknowledgement; the later stream waits, then writes its version whole (the last one wins).

A collection's writes can also be paused as a whole (server/reindex.py switching a collection to new
vectors): new claims and holds on it wait, the pause waits for the claims and holds already granted,
and `generation` tells a stream that resolved the collection before a pause to resolve it again."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager


def claim_key(tenant: str | None, doc_id: str) -> str:
    """Tenants' documents of the same id are different documents (storage/base.py point_id)."""
    return f"{tenant}\x00{doc_id}" if tenant else doc_id


class DocumentClaims:
    def __init__(self) -> None:
        self._held: set[tuple[str, str]] = set()
        self._cond = threading.Condition()
        self._paused: set[str] = set()
        self._holds: Counter[str] = Counter()  # whole-collection writes in progress (deletes)
        self._generation: Counter[str] = Counter()

    def claim(self, collection: str, doc_id: str, wait: bool) -> bool:
        """Claims the document; False if another item holds it and `wait` is False. Only wait while
        holding no other claim (no unacknowledged items), so that two streams cannot wait on each other."""
        key = (collection, doc_id)
        with self._cond:
            while key in self._held or collection in self._paused:
                if not wait:
                    return False
                self._cond.wait()
            self._held.add(key)
            return True

    def release(self, collection: str, doc_id: str) -> None:
        with self._cond:
            self._held.discard((collection, doc_id))
            self._cond.notify_all()

    @contextmanager
    def hold(self, collection: str) -> Iterator[None]:
        """A write that is not one document's (a delete by filter) runs inside this: never during a pause."""
        with self._cond:
            while collection in self._paused:
                self._cond.wait()
            self._holds[collection] += 1
        try:
            yield
        finally:
            with self._cond:
                self._holds[collection] -= 1
                self._cond.notify_all()

    @contextmanager
    def paused(self, collection: str) -> Iterator[None]:
        """No write runs in the collection inside this: new ones wait, and it starts once the ones
        granted before are acknowledged. One pause per collection at a time."""
        with self._cond:
            while collection in self._paused:
                self._cond.wait()
            self._paused.add(collection)
            while self._holds[collection] or any(c == collection for c, _ in self._held):
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._paused.discard(collection)
                self._generation[collection] += 1
                self._cond.notify_all()

    def generation(self, collection: str) -> int:
        """How many pauses of the collection have ended: a stream holding its spec from an earlier
        generation resolves it again (its model may have changed)."""
        with self._cond:
            return self._generation[collection]
