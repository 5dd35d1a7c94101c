"""PageService: proto <-> server.pages."""

from __future__ import annotations

import grpc

from mmsearch.protocol.wire import dict_to_metadata
from mmsearch.v1 import pages_pb2, pages_pb2_grpc, search_pb2

from ..catalog import Catalog
from ..errors import ResourceExhausted
from ..ingest.pages import PageLimits
from ..pages import PageView, get_document, get_page
from ..security.principal import current_tenant
from ..settings import Settings
from ..similarity import similarity_map
from ..storage.base import Store


def page_message(v: PageView) -> pages_pb2.Page:
    return pages_pb2.Page(
        document_id=v.document_id,
        page=v.page,
        image=v.image,
        mime_type="image/webp" if v.image else "",
        width=v.width,
        height=v.height,
        thumbnail=v.thumbnail,
        text=v.text,
        words=[
            pages_pb2.PageWord(text=w, box=search_pb2.BoundingBox(x0=b[0], y0=b[1], x1=b[2], y1=b[3]))
            for w, b in v.words
        ],
    )


class PageServicer(pages_pb2_grpc.PageServiceServicer):
    def __init__(self, store: Store, catalog: Catalog | None = None, settings: Settings | None = None) -> None:
        self.store = store
        self.catalog = catalog
        self.limits = PageLimits(max_pixels=settings.max_image_pixels) if settings else PageLimits()
        self.max_message = (settings.max_message_mb if settings else 64) * 1024 * 1024

    def GetPage(self, request: pages_pb2.GetPageRequest, context: grpc.ServicerContext) -> pages_pb2.Page:  # noqa: N802
        tenant = current_tenant()  # set by the server, never by the request
        return page_message(get_page(self.store, request.collection, request.document_id, request.page, tenant))

    def GetDocument(  # noqa: N802
        self, request: pages_pb2.GetDocumentRequest, context: grpc.ServicerContext
    ) -> pages_pb2.Document:
        metadata, pages = get_document(
            self.store, request.collection, request.document_id, request.images, current_tenant(), self.max_message
        )
        document = pages_pb2.Document(
            document_id=request.document_id,
            metadata=dict_to_metadata(metadata),
            pages=[page_message(p) for p in pages],
        )
        size = document.ByteSize()
        if size > self.max_message:  # gRPC would refuse it with a message of its own, HTTP send it whole
            raise ResourceExhausted(
                f"document {request.document_id[:100]!r} with its page images is {size / 2**20:,.1f} MiB, over the "
                f"largest message ({self.max_message / 2**20:,.1f} MiB, setting max_message_mb): ask without images "
                f"and fetch its {len(pages)} pages one by one (GetPage)"
            )
        return document

    def GetSimilarityMap(  # noqa: N802
        self, request: pages_pb2.GetSimilarityMapRequest, context: grpc.ServicerContext
    ) -> pages_pb2.SimilarityMap:
        assert self.catalog is not None, "PageServicer serves similarity maps only with a catalog"
        m = similarity_map(
            self.catalog, request.collection, request.document_id, request.page, request.query, self.limits,
            current_tenant(),
        )  # fmt: skip
        return pages_pb2.SimilarityMap(
            rows=m.rows, cols=m.cols, page_width=m.width, page_height=m.height, query_tokens=m.query_tokens,
            scores=m.scores.astype(float).ravel().tolist(), source=m.source,
        )  # fmt: skip
