"""IngestService: proto <-> the ingest pipeline and deletes."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterator
from typing import Any

import grpc

from mmsearch.protocol.wire import metadata_to_dict
from mmsearch.v1 import ingest_pb2, ingest_pb2_grpc

from ..catalog import Catalog
from ..dedup import check_threshold
from ..errors import InvalidArgument, PermissionDenied, ResourceExhausted, status_code
from ..ingest.deletes import delete_documents
from ..ingest.items import Content, ImageFile, IngestItem, ItemProgress, ItemResult, PdfFile, Text, TextFile
from ..ingest.pages import PageLimits
from ..ingest.pipeline import IngestCancelled, Ingestor
from ..limits import ByteBudget, IdleTimeoutIterator, StreamBytes
from ..security.principal import Role, current_principal, current_tenant
from ..settings import Settings
from .collections import duplicate_policy
from .filters import to_where

log = logging.getLogger(__name__)


def _metadata(it: ingest_pb2.IngestItem) -> dict[str, Any]:
    try:
        return metadata_to_dict(it.metadata)
    except ValueError:  # json_format cannot represent NaN or infinity, and neither can the payload store
        raise InvalidArgument(
            f"metadata of item {it.id[:100]!r} holds NaN or infinity, which cannot be stored; use finite numbers"
        ) from None


def item_from_request(req: ingest_pb2.IngestRequest, tenant: str | None = None) -> IngestItem:
    it = req.item
    try:
        metadata = _metadata(it)
    except InvalidArgument as exc:
        return IngestItem(
            req.collection, it.id, it.source, create_collection=req.create_collection, tenant=tenant, error=exc
        )
    try:
        on_duplicate = duplicate_policy(req.on_duplicate.policy)
        threshold = check_threshold(req.on_duplicate.threshold) if req.on_duplicate.threshold else 0.0
    except InvalidArgument as exc:
        return IngestItem(
            req.collection, it.id, it.source, create_collection=req.create_collection, tenant=tenant, error=exc
        )
    kind = it.WhichOneof("content")
    content: Content | None = None
    if kind == "text":
        content = Text(it.text)
    elif kind == "text_file":
        content = TextFile(it.text_file.data)
    elif kind == "image":
        content = ImageFile(it.image.data, it.image.mime_type)
    elif kind == "pdf":
        content = PdfFile(it.pdf)
    return IngestItem(
        collection=req.collection,
        id=it.id,
        source=it.source,
        content=content,
        metadata=metadata,
        create_collection=req.create_collection,
        tenant=tenant,
        on_duplicate=on_duplicate,
        duplicate_threshold=threshold,
        report_progress=req.report_progress,
    )


def ack_from_result(r: ItemResult) -> ingest_pb2.IngestAck:
    ack = ingest_pb2.IngestAck(sequence=r.seq, id=r.id, source=r.source)
    if r.error is None:
        ack.ok = True
        ack.points = r.points
        ack.duplicate_of.extend(r.duplicate_of)
    else:
        ack.error_code = status_code(r.error).name
        ack.error = str(r.error)
    return ack


def ack_from_progress(p: ItemProgress) -> ingest_pb2.IngestAck:
    progress = ingest_pb2.IngestProgress(points_stored=p.stored, points_total=p.total or 0)
    return ingest_pb2.IngestAck(sequence=p.seq, id=p.id, source=p.source, progress=progress)


def _may_create(item: IngestItem, allowed: bool) -> IngestItem:
    """create_collection from a key that may not create collections: refused when it would create
    one (an existing collection is written as usual)."""
    if item.create_collection and not allowed:
        return dataclasses.replace(item, create_collection=False, may_create=False)
    return item


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(self, catalog: Catalog, settings: Settings) -> None:
        self.catalog = catalog
        limits = PageLimits(
            max_pixels=settings.max_image_pixels,
            max_pages=settings.max_pdf_pages,
            pdf_dpi=settings.pdf_dpi,
            max_words=settings.max_page_words,
            max_content_bytes=settings.max_page_content_mb * 1024 * 1024,
            worker_mb=settings.pdf_worker_memory_mb,
            page_timeout_s=settings.pdf_page_timeout_s,
            max_pdf_content_bytes=settings.max_pdf_content_mb * 1024 * 1024,
            pdf_timeout_s=settings.pdf_timeout_s,
        )
        self.ingestor = Ingestor(catalog, settings.encode_batch_size, limits)
        self.budget = ByteBudget(settings.ingest_budget_mb * 1024 * 1024)
        self.idle_timeout_s = settings.stream_idle_timeout_s

    def Ingest(  # noqa: N802
        self, request_iterator: Iterator[ingest_pb2.IngestRequest], context: grpc.ServicerContext
    ) -> Iterator[ingest_pb2.IngestAck]:
        cancelled = threading.Event()
        context.add_callback(cancelled.set)  # runs when the call ends; before our end only if cancelled
        # Read here, on the call's thread: the request stream is consumed on a thread of its own.
        principal = current_principal()
        may_create = principal.role >= Role.ADMIN
        held = StreamBytes(self.budget)
        counts = [0, 0]  # requests read, acknowledgements (results) sent
        # Not idle while an item read awaits its acknowledgement (the client may wait for it to send more).
        requests = IdleTimeoutIterator(request_iterator, self.idle_timeout_s, busy=lambda: counts[0] > counts[1])

        def items() -> Iterator[IngestItem]:
            for r in requests:
                counts[0] += 1
                yield _may_create(self._admit(r, counts[0] - 1, held, principal.tenant), may_create)

        try:
            for result in self.ingestor.run(items(), cancelled):
                if isinstance(result, ItemProgress):  # only for items whose request asked for it
                    yield ack_from_progress(result)
                    continue
                held.give_back(result.seq)
                counts[1] += 1
                yield ack_from_result(result)
        except IngestCancelled:
            log.info("ingest stream cancelled by the client; unacknowledged items rolled back")
            # The call is already over (CANCELLED on the client's side): no status would reach it.
        finally:
            requests.close()
            held.close()

    def _admit(self, req: ingest_pb2.IngestRequest, position: int, held: StreamBytes, tenant: str | None) -> IngestItem:
        """The item, its bytes counted in the global ingest budget until it is acknowledged; refused
        (RESOURCE_EXHAUSTED, its bytes dropped) when they do not fit."""
        size = req.ByteSize()
        if not held.take(position, size):
            it = req.item
            error = ResourceExhausted(
                f"item {it.id[:100]!r} ({size:,} bytes) does not fit in the server's ingest memory "
                f"(ingest_budget_mb, {self.budget.held:,} of {self.budget.limit:,} bytes held by streams in "
                "flight); send it again later"
            )
            return IngestItem(
                req.collection, it.id, it.source, create_collection=req.create_collection, tenant=tenant, error=error
            )
        return item_from_request(req, tenant)

    def IngestBatch(  # noqa: N802
        self, request: ingest_pb2.IngestBatchRequest, context: grpc.ServicerContext
    ) -> ingest_pb2.IngestBatchResponse:
        # The stream's own handler over the list: same validation, batching and acknowledgements.
        principal = current_principal()
        for r in request.requests:  # all checked first: a refused batch writes nothing
            if not principal.may_use(r.collection):
                raise PermissionDenied(f"key {principal.key_id!r} may not use collection {r.collection!r}")
        acks = self.Ingest(iter(request.requests), context)  # one result each: progress has no use here
        return ingest_pb2.IngestBatchResponse(acks=[a for a in acks if not a.HasField("progress")])

    def Delete(self, request: ingest_pb2.DeleteRequest, context: grpc.ServicerContext) -> ingest_pb2.DeleteResponse:  # noqa: N802
        where = to_where(request.filter if request.HasField("filter") else None)
        tenant = current_tenant()
        with self.ingestor.claims.hold(request.collection):  # never while a reindex switches it (server/reindex.py)
            deleted = delete_documents(self.catalog.store, request.collection, list(request.ids), where, tenant)
        return ingest_pb2.DeleteResponse(deleted_points=deleted)
