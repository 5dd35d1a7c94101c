"""The ingest writer: one thread that stores batches of points in order and reports, unit by unit,
what it stored. It never touches the items themselves: the stream thread applies its outcomes."""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

from ..errors import MMSearchError
from ..storage.base import PointData, Store
from ..storage.page_images import image_key
from .units import ItemState, Unit

log = logging.getLogger(__name__)

#: (unit, None) once the unit's point is durably stored; (unit, error) when it could not be.
Outcomes = list[tuple[Unit, MMSearchError | None]]


def storage_error(doc_id: str, exc: Exception) -> MMSearchError:
    if isinstance(exc, MMSearchError):  # e.g. Unavailable: the caller may retry the item
        return type(exc)(f"item {doc_id!r} could not be stored: {exc}")
    return MMSearchError(f"item {doc_id!r} could not be stored (storage failed; see the server log)")


class BatchWriter:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ingest-writer")
        self._futures: deque[Future[Outcomes]] = deque()

    @property
    def in_flight(self) -> int:
        return len(self._futures)

    def submit(self, collection: str, points: list[tuple[Unit, PointData]]) -> None:
        self._futures.append(self._pool.submit(self._write, collection, points))

    def wait_oldest(self) -> Outcomes:
        return self._futures.popleft().result()

    def drain(self) -> list[Outcomes]:
        """Waits for every batch in flight."""
        return [self.wait_oldest() for _ in range(len(self._futures))]

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _keep_images(self, collection: str, units: list[Unit]) -> None:
        """Before the points: a page that answers searches always has its image (a failed item's
        images go with its points in the ingest cleanup)."""
        images = self.store.page_images
        if images is None:
            return
        for u in units:
            if u.image and u.page is not None:
                key = image_key(u.item.id, u.item.tenant, u.item.version.slot)
                images.put(collection, key, u.page.number, u.image, u.thumbnail)
                u.image = u.thumbnail = b""  # written: free the bytes

    def _drop_images(self, collection: str, doc_id: str, group: list[tuple[Unit, PointData]]) -> None:
        """The item failed: its new images must not be shown beside whatever points remain."""
        pages = [u.page.number for u, _ in group if u.page is not None]
        if self.store.page_images is None or not pages:
            return
        try:
            item = group[0][0].item
            key = image_key(doc_id, item.tenant, item.version.slot)
            self.store.page_images.delete(collection, key, from_page=min(pages))
        except Exception:
            log.exception("removing the page images of failed item %r failed", doc_id)

    def _write(self, collection: str, points: list[tuple[Unit, PointData]]) -> Outcomes:
        """The whole batch in one call; if that fails, item by item, so that a point storage refuses
        fails its own item alone (a retried point is simply written again: ids are stable)."""
        if not points:
            return []
        try:
            self._keep_images(collection, [u for u, _ in points])
            self.store.upsert(collection, _flat(points))
            return [(u, None) for u, _ in points]
        except Exception:
            log.warning("storage write of %d points failed; retrying item by item", len(points), exc_info=True)
        per_item: dict[ItemState, list[tuple[Unit, PointData]]] = {}
        for u, p in points:
            per_item.setdefault(u.item, []).append((u, p))
        outcomes: Outcomes = []
        for item, group in per_item.items():
            error: MMSearchError | None = None
            try:
                self._keep_images(collection, [u for u, _ in group])
                self.store.upsert(collection, _flat(group))
            except Exception as exc:
                log.exception("storage write of item %r failed", item.id)
                error = storage_error(item.id, exc)
                self._drop_images(collection, item.id, group)
            outcomes.extend((u, error) for u, _ in group)
        return outcomes


def _flat(points: list[tuple[Unit, PointData]]) -> list[PointData]:
    """Each unit's point and its companions (a long page's regions): written in the same call."""
    return [q for _, p in points for q in (p, *p.companions)]
