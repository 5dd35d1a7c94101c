"""IngestService: the streaming ingest and deletes."""

from __future__ import annotations

from mmsearch.v1 import ingest_pb2, ingest_pb2_grpc

from ..collections import Collections
from ..errors import InvalidArgument
from ..filters import to_where
from ..ingest.pages import PageLimits
from ..ingest.pipeline import Ingestor
from ..settings import Settings
from ..storage.base import Cond, Where


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(self, collections: Collections, settings: Settings) -> None:
        self.collections = collections
        limits = PageLimits(
            max_pixels=settings.max_image_pixels, max_pages=settings.max_pdf_pages, pdf_dpi=settings.pdf_dpi
        )
        self.ingestor = Ingestor(collections, settings.encode_batch_size, limits)

    def Ingest(self, request_iterator, context):  # noqa: N802
        yield from self.ingestor.run(request_iterator)

    def Delete(self, request, context):  # noqa: N802
        store = self.collections.store
        store.get_spec(request.collection)
        has_filter = request.HasField("filter") and bool(
            request.filter.must or request.filter.must_not or request.filter.should
        )
        if bool(request.ids) == has_filter:
            raise InvalidArgument("delete needs either ids or a filter (exactly one of them)")
        where = Where(must=[Cond(key="doc_id", any_of=list(request.ids))]) if request.ids else to_where(request.filter)
        deleted = store.count(request.collection, where)
        store.delete(request.collection, where)
        return ingest_pb2.DeleteResponse(deleted_points=deleted)
