"""The ingest stream: items in, acknowledgements out, in order.

Items expand lazily into units (passages, pages). Units are gathered into batches (whatever has
arrived, up to `batch_size`), encoded together, and written by one writer thread while the next batch
encodes, so the encoder (the bottleneck) never waits for storage. An item is acknowledged ok only
after all its points are durably stored; an item that fails is acknowledged with its reason, any of
its points already written are removed, and the stream goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from mmsearch.v1 import ingest_pb2

from ..collections import CollectionOptions, Collections
from ..errors import MMSearchError, NotFound, status_code
from ..storage.base import CollectionSpec, Cond, Where
from .pages import PageLimits
from .points import PointBuilder
from .units import Item, Unit, expand

log = logging.getLogger(__name__)
_END = object()
PAGE_IMAGES_PER_BATCH = 8


class Ingestor:
    def __init__(self, collections: Collections, batch_size: int, limits: PageLimits | None = None) -> None:
        self.collections = collections
        self.store = collections.store
        self.batch_size = batch_size
        self.limits = limits or PageLimits()
        self.builder = PointBuilder(collections)

    def run(self, requests: Iterator[ingest_pb2.IngestRequest]) -> Iterator[ingest_pb2.IngestAck]:
        inbox: queue.Queue = queue.Queue(maxsize=4 * self.batch_size)
        threading.Thread(target=_pump, args=(requests, inbox), daemon=True).start()
        stream = _Stream(self, inbox)
        with ThreadPoolExecutor(1, thread_name_prefix="ingest-writer") as writer:
            pending: Future | None = None
            while True:
                batch = stream.next_batch(block=pending is None)
                if batch:
                    self.builder.build(batch, stream.spec)  # type: ignore[arg-type]
                    future = writer.submit(self._write, batch, stream.spec)  # type: ignore[arg-type]
                    if pending is not None:  # the previous batch wrote while this one encoded
                        pending.result()
                        yield from stream.acks()
                    pending = future
                elif pending is not None:  # nothing new has arrived: finish what is in flight
                    pending.result()
                    pending = None
                    yield from stream.acks()
                elif batch == []:  # only acknowledgements are due (items rejected up front)
                    yield from stream.acks()
                else:
                    break
            yield from stream.acks(final=True)

    def _write(self, units: list[Unit], spec: CollectionSpec) -> None:
        good = [u for u in units if u.point is not None and u.item.error is None]
        try:
            if good:
                self.store.upsert(spec.name, [u.point for u in good])  # type: ignore[misc]
        except Exception as exc:
            log.exception("storage write failed")
            for u in good:
                if u.item.error is None:
                    u.item.error = exc if isinstance(exc, MMSearchError) else MMSearchError("storage write failed")
            return
        for u in good:
            u.item.written += 1
            u.point = None  # vectors are stored: free them
        for u in units:
            if u.item.error is not None and u.item.written:
                u.item.failed_after_write = True

    def cleanup(self, spec: CollectionSpec, item: Item) -> None:
        """After an item is fully written: drop the old version's extra points. After it failed
        part-way: drop what it wrote, so a half-ingested document never answers searches."""
        keep = 0 if item.error is not None else item.written
        self.store.delete(
            spec.name, Where(must=[Cond(key="doc_id", match=item.id), Cond(key="seq", range={"gte": keep})])
        )


class _Stream:
    """Pulls requests, expands them into items and units, and tracks which items can be acked."""

    def __init__(self, ingestor: Ingestor, inbox: queue.Queue) -> None:
        self.ing = ingestor
        self.inbox = inbox
        self.spec: CollectionSpec | None = None
        self.items: deque[Item] = deque()  # not yet acknowledged, in stream order
        self.current: Item | None = None
        self.seq = 0
        self.finished = False

    def _next_request(self, block: bool) -> ingest_pb2.IngestRequest | None:
        if self.finished:
            return None
        try:
            req = self.inbox.get(block=block)
        except queue.Empty:
            return None
        if req is _END:
            self.finished = True
            return None
        if isinstance(req, BaseException):
            raise req
        return req  # type: ignore[no-any-return]

    def _resolve(self, req: ingest_pb2.IngestRequest) -> CollectionSpec:
        store = self.ing.store
        try:
            return store.get_spec(req.collection)
        except NotFound:
            if not req.create_collection:
                raise  # an unknown collection fails the whole stream (NOT_FOUND), not each item
        try:
            return self.ing.collections.create(req.collection, CollectionOptions())
        except MMSearchError:
            return store.get_spec(req.collection)  # created meanwhile by another stream

    def next_batch(self, block: bool) -> list[Unit] | None:
        """Up to batch_size units; [] when only acks are due; None when nothing has arrived."""
        batch: list[Unit] = []
        images = 0
        while len(batch) < self.ing.batch_size:
            if self.current is None:
                req = self._next_request(block=block and not batch and not self._ackable())
                if req is None:
                    break
                if self.spec is None:
                    self.spec = self._resolve(req)
                self.current = expand(self.seq, req, self.spec, self.ing.limits)
                self.seq += 1
                self.items.append(self.current)
            item = self.current
            if item.error is not None or item.units is None:
                item.exhausted = True
                self.current = None
                continue
            try:
                unit = next(item.units)
            except StopIteration:
                item.exhausted = True
                self.current = None
                continue
            except MMSearchError as exc:  # e.g. a PDF page that fails to render
                item.error = exc
                item.exhausted = True
                self.current = None
                continue
            item.produced += 1
            batch.append(unit)
            if unit.page is not None and unit.page.image is not None:
                images += 1
                if images >= PAGE_IMAGES_PER_BATCH:  # page pixels are big: keep few in memory at once
                    break
        if batch or self._ackable():
            return batch
        return None

    def _ackable(self) -> bool:
        return bool(self.items) and self._done(self.items[0])

    @staticmethod
    def _done(item: Item) -> bool:
        return item.exhausted and (item.error is not None or item.written == item.produced)

    def acks(self, final: bool = False) -> Iterator[ingest_pb2.IngestAck]:
        while self.items and (final or self._done(self.items[0])):
            item = self.items.popleft()
            if (self.spec is not None and item.error is None) or item.failed_after_write:
                assert self.spec is not None
                self.ing.cleanup(self.spec, item)
            ack = ingest_pb2.IngestAck(sequence=item.seq, id=item.id, source=item.source)
            if item.error is None and item.written == item.produced and item.produced:
                ack.ok = True
                ack.points = item.written
            else:
                error = item.error or MMSearchError("item was not fully stored")
                ack.error_code = status_code(error).name
                ack.error = str(error)
            yield ack


def _pump(requests: Iterator, inbox: queue.Queue) -> None:
    try:
        for req in requests:
            inbox.put(req)
        inbox.put(_END)
    except BaseException as exc:  # the client cancelled or the stream broke
        inbox.put(exc)
