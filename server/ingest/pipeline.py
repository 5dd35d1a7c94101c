"""The ingest stream: items in, one result per item out, in order.

Items expand lazily into units (passages, pages). Units are gathered into batches (whatever has
arrived, up to `batch_size`), encoded together, and written by one writer thread while the next batch
encodes, so the encoder (the bottleneck) never waits for storage. A batch of page images is queued
on the model's thread before the previous batch's points are made (PointBuilder.start / finish), so
the model never waits for the stream either: reading and decoding the next pages, making points and
writing them all happen while it encodes (with a tiny ColPali model, without kept page images, that
took ingest from 0.39x to 0.91x of the bare model's pages/s: docs/benchmarks.md).

The writer only reports what it stored; the stream thread alone keeps each item's state. An item
is acknowledged ok only after all its points are durably stored; an item that fails is acknowledged
with its reason, any of its points already written are removed, and the stream goes on. When the
stream itself ends early (the client cancels, the request stream breaks), the points of every item
not yet acknowledged are removed.

Documents are all or nothing (ingest/versions.py): an item's points are written hidden and shown
by one final write once all are stored, so a half-ingested document never answers searches, even
after the process is killed. A cancelled call stops between pages and batches, OCR and encoding
included.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Iterator

from mmsearch.protocol.vocab import OnDuplicate

from ..catalog import Catalog, CollectionOptions
from ..dedup import duplicate_of
from ..errors import AlreadyExists, MMSearchError, NotFound, PermissionDenied
from ..storage.base import CollectionSpec, PointData, Where
from .claims import DocumentClaims, claim_key
from .deletes import delete_documents
from .items import END, IngestCancelled, IngestItem, ItemProgress, ItemResult, pump
from .pages import PageLimits
from .points import PointBuilder, Started
from .units import ItemState, Unit, expand
from .versions import abort, commit, plan
from .writer import BatchWriter, Outcomes, storage_error

log = logging.getLogger(__name__)
PAGE_IMAGES_PER_BATCH = 8


__all__ = ["IngestCancelled", "Ingestor"]


class Ingestor:
    def __init__(self, catalog: Catalog, batch_size: int, limits: PageLimits | None = None) -> None:
        self.catalog = catalog
        self.store = catalog.store
        self.batch_size = batch_size
        self.limits = limits or PageLimits()
        self.builder = PointBuilder(catalog)
        self.claims = DocumentClaims()
        # Deletes still clean kept images when keeping is off (earlier ones go with their documents).
        self.keep_images = self.builder.keep_images

    def run(
        self, items: Iterator[IngestItem], cancelled: threading.Event | None = None
    ) -> Iterator[ItemResult | ItemProgress]:
        """Results in stream order. `cancelled` (set when the caller goes away) stops the work at the
        next page or batch: the stream then raises IngestCancelled after rolling back. An item that
        asks for it (report_progress) also gets an ItemProgress each time more of its points are stored."""
        cancelled = cancelled or threading.Event()
        inbox: queue.Queue = queue.Queue(maxsize=4 * self.batch_size)
        stop = threading.Event()
        threading.Thread(target=pump, args=(items, inbox, stop), daemon=True).start()
        stream = _Stream(self, inbox, cancelled)
        writer = BatchWriter(self.store)
        started: Started | None = None  # a batch queued on the model whose points are not made yet
        try:
            while True:
                stream.check()
                batch = stream.next_batch(block=not writer.in_flight and started is None)
                # This batch is queued behind the one still encoding, so the model never waits for
                # the points and the reading of a batch: decoding the next pages, making the points
                # of the last ones and writing them all overlap the model's encoding.
                previous = started
                started = None
                if batch:
                    assert stream.spec is not None
                    started = self.builder.start(batch, stream.spec, cancelled)
                if previous is not None:
                    points = self.builder.finish(previous)
                    stream.check()
                    writer.submit(previous.spec.name, stream.submit(points))
                    if writer.in_flight > 1:  # the previous batch wrote while this one encoded
                        stream.settle(writer.wait_oldest())
                        yield from stream.results()
                    continue
                if started is not None:
                    continue
                if writer.in_flight:  # nothing new has arrived: finish what is in flight
                    stream.settle(writer.wait_oldest())
                    yield from stream.results()
                elif batch == []:  # only results are due (items rejected up front)
                    yield from stream.results()
                else:
                    break
            yield from stream.results(final=True)
        except BaseException:  # includes GeneratorExit: gRPC drops the stream of a cancelled call
            for outcomes in writer.drain():  # a write still in flight must land before the rollback
                stream.settle(outcomes)
            stream.rollback()
            raise
        finally:
            writer.close()
            stop.set()  # the pump may be waiting for room in the inbox
            stream.release_claims()  # also when the client went away mid-stream


class _Stream:
    """Pulls items, expands them into units, applies write outcomes, and yields results in order.
    Everything here runs on the stream thread."""

    def __init__(self, ingestor: Ingestor, inbox: queue.Queue, cancelled: threading.Event) -> None:
        self.ing = ingestor
        self.inbox = inbox
        self.cancelled = cancelled
        self.spec: CollectionSpec | None = None
        self.items: deque[ItemState] = deque()  # not yet acknowledged, in stream order
        self.current: ItemState | None = None
        self.seq = 0
        self.finished = False
        self.parked: IngestItem | None = None  # its document is claimed by another stream's item
        self.claimed: set[str] = set()
        self.generation = 0  # of the collection's write pauses when `spec` was read (ingest/claims.py)

    def check(self) -> None:
        if self.cancelled.is_set():
            raise IngestCancelled("the ingest call ended (cancelled, past its deadline, or the server is stopping)")

    def _next_item(self, block: bool) -> IngestItem | None:
        if self.finished:
            return None
        while True:  # wakes up now and then to notice a cancelled call
            try:
                got = self.inbox.get(timeout=0.2) if block else self.inbox.get(block=False)
                break
            except queue.Empty:
                if not block:
                    return None
                self.check()
        if got is END:
            self.finished = True
            return None
        if isinstance(got, BaseException):
            raise got
        return got  # type: ignore[no-any-return]

    def _resolve(self, item: IngestItem) -> CollectionSpec:
        store = self.ing.store
        try:
            return store.get_spec(item.collection)
        except NotFound:
            if not item.may_create:
                raise PermissionDenied(
                    f"collection {item.collection!r} does not exist and only an admin key may create collections"
                ) from None
            if not item.create_collection:
                raise  # an unknown collection fails the whole stream (NOT_FOUND), not each item
        try:
            return self.ing.catalog.create(item.collection, CollectionOptions())
        except AlreadyExists:  # created meanwhile by another stream; any other refusal (a bad name) is the answer
            return store.get_spec(item.collection)

    def next_batch(self, block: bool) -> list[Unit] | None:
        """Up to batch_size units; [] when only results are due; None when nothing has arrived."""
        batch: list[Unit] = []
        images = 0
        while len(batch) < self.ing.batch_size:
            if self.current is None:
                got, self.parked = self.parked, None
                if got is None:
                    got = self._next_item(block=block and not batch and not self._ackable())
                if got is None:
                    break
                if self.spec is None:
                    self.generation = self.ing.claims.generation(got.collection)
                    self.spec = self._resolve(got)
                # Another item (of any stream) is writing this document: finish and acknowledge our own
                # items first, releasing their claims, then wait for it (never wait holding a claim).
                if not self.ing.claims.claim(self.spec.name, claim_key(got.tenant, got.id), wait=not self.items):
                    self.parked = got
                    break
                self.claimed.add(claim_key(got.tenant, got.id))
                if self.ing.claims.generation(self.spec.name) != self.generation:
                    # A reindex switched the collection since it was resolved (it waited for our
                    # items, so none is in flight): encode with its new spec.
                    self.generation = self.ing.claims.generation(self.spec.name)
                    self.spec = self.ing.store.get_spec(self.spec.name)
                self.current = expand(self.seq, got, self.spec, self.ing.limits, keep_images=self.ing.keep_images)
                self.seq += 1
                self.items.append(self.current)
                self._plan(self.current)
            item = self.current
            if item.error is not None or item.units is None:
                item.drop_units()
                item.exhausted = True
                self.current = None
                continue
            self.check()  # between pages: a long PDF stops when its caller leaves
            try:
                unit = next(item.units)
            except StopIteration:
                item.exhausted = True
                self.current = None
                continue
            except MMSearchError as exc:  # e.g. a PDF page that fails to render
                item.error = exc
                item.drop_units()
                item.exhausted = True
                self.current = None
                continue
            item.produced += 1
            batch.append(unit)
            if unit.page is not None and unit.page.image is not None:
                images += 1
                if images >= PAGE_IMAGES_PER_BATCH:  # page pixels are big: keep few in memory at once
                    break
        if batch or self._ackable() or self.parked is not None:
            return batch
        return None

    def _plan(self, item: ItemState) -> None:
        """Which version slot the item is written in (needs its document claimed)."""
        if item.error is not None or self.spec is None:
            return
        try:
            # Skip and replace decide at commit, after the check: the points must stay hidden till then,
            # so even a one-point item is written into the other slot, not over its old point.
            checked = item.on_duplicate in (OnDuplicate.SKIP, OnDuplicate.REPLACE)
            points = None if checked else item.total
            item.version = plan(self.ing.store, self.spec.name, item.id, points, item.tenant)
        except Exception as exc:
            log.exception("looking up the stored version of %r failed", item.id)
            item.error = storage_error(item.id, exc)

    def _release(self, key: str) -> None:
        if key in self.claimed and self.spec is not None:
            self.claimed.discard(key)
            self.ing.claims.release(self.spec.name, key)

    def release_claims(self) -> None:
        for key in list(self.claimed):
            self._release(key)

    def _ackable(self) -> bool:
        return bool(self.items) and self.items[0].done

    def submit(self, points: list[tuple[Unit, PointData]]) -> list[tuple[Unit, PointData]]:
        """The points to write: those of items that are still good, counted against their items."""
        keep = [(u, p) for u, p in points if u.item.error is None]
        for u, p in keep:
            u.item.submitted += 1
            if u.item.on_duplicate in (OnDuplicate.SKIP, OnDuplicate.REPLACE) and _has_words(u, p):
                u.item.vectors.append((p.space, p.dense))
        return keep

    @staticmethod
    def settle(outcomes: Outcomes) -> None:
        for unit, error in outcomes:
            item = unit.item
            item.settled += 1
            if error is None:
                item.written += 1
            elif item.error is None:
                item.error = error

    def results(self, final: bool = False) -> Iterator[ItemResult | ItemProgress]:
        while self.items and (final or self.items[0].done):
            item = self.items.popleft()
            complete = item.error is None and item.written == item.produced and item.produced > 0
            dup: list[str] = []
            points = item.written
            if self.spec is not None and (complete or item.written):
                store, name = self.ing.store, self.spec.name
                try:
                    if complete and item.vectors:  # only kept under skip / replace
                        dup = duplicate_of(store, name, item.vectors, item.id, item.duplicate_threshold, item.tenant)
                    if complete and dup and item.on_duplicate == OnDuplicate.SKIP:
                        abort(store, name, item.id, item.version, item.tenant)  # its old version stays
                        points = 0
                    elif complete:
                        commit(store, name, item.id, item.version, item.written, item.tenant)
                        if dup:  # replace: the new document stands for the ones it duplicates
                            delete_documents(store, name, dup, Where(), item.tenant)
                    else:
                        abort(store, name, item.id, item.version, item.tenant)
                except Exception as exc:
                    log.exception("%s of %r failed", "committing" if complete else "removing the points", item.id)
                    complete = False
                    item.error = item.error or storage_error(item.id, exc)
            self._release(claim_key(item.tenant, item.id))
            if complete:
                yield ItemResult(item.seq, item.id, item.source, points=points, duplicate_of=tuple(dup))
            else:
                error = item.error or MMSearchError(f"item {item.id!r} was not fully stored")
                yield ItemResult(item.seq, item.id, item.source, error=error)
        if not final:
            yield from self._progress()

    def _progress(self) -> Iterator[ItemProgress]:
        """Items that asked for it, unfinished, with more points stored than last reported (a many-page
        PDF, batch by batch); not an item whose every point is stored, waiting behind another."""
        for item in self.items:
            finished = item.total is not None and item.written >= item.total
            if item.report_progress and item.error is None and not finished and item.written > item.reported:
                item.reported = item.written
                yield ItemProgress(item.seq, item.id, item.source, item.written, item.total)

    def rollback(self) -> None:
        """The stream ended early: remove the new version of every item nobody acknowledged (an item
        whose result has been handed out counts as acknowledged); their old versions stay. Were this
        cut short too, the hidden points would be swept at the next start."""
        for item in self.items:
            item.drop_units()
        if self.spec is None:
            return
        for item in self.items:
            if not item.written:
                continue  # nothing of this version reached storage
            try:
                abort(self.ing.store, self.spec.name, item.id, item.version, item.tenant)
            except Exception:
                log.exception("rolling back %r after the stream ended failed", item.id)
        self.items.clear()


def _has_words(unit: Unit, point: PointData) -> bool:
    """Whether a point can tell its document apart in the duplicate check: a text-space point of a page
    without words is the text model's vector of nothing, the same for every such page (a blank scan,
    a photo), so under skip or replace any two of them were "duplicates" of each other."""
    return point.space != "text" or unit.page is None or bool(unit.page.words)
