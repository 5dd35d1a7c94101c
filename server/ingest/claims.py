"""Which documents an ingest stream is writing, so that two streams never write the same document id at
once. Points have deterministic ids per (document, passage/page), so two versions written together
would overwrite each other's points and each one's cleanup would delete the other's tail: the
document would end as a mix of both. A claim is held from an item's first unit until its
acknowledgement; the later stream waits, then writes its version whole (the last one wins)."""

from __future__ import annotations

import threading


def claim_key(tenant: str | None, doc_id: str) -> str:
    """Tenants' documents of the same id are different documents (storage/base.py point_id)."""
    return f"{tenant}\x00{doc_id}" if tenant else doc_id


class DocumentClaims:
    def __init__(self) -> None:
        self._held: set[tuple[str, str]] = set()
        self._cond = threading.Condition()

    def claim(self, collection: str, doc_id: str, wait: bool) -> bool:
        """Claims the document; False if another item holds it and `wait` is False. Only wait while
        holding no other claim (no unacknowledged items), so that two streams cannot wait on each other."""
        key = (collection, doc_id)
        with self._cond:
            while key in self._held:
                if not wait:
                    return False
                self._cond.wait()
            self._held.add(key)
            return True

    def release(self, collection: str, doc_id: str) -> None:
        with self._cond:
            self._held.discard((collection, doc_id))
            self._cond.notify_all()
