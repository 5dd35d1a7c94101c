"""RerankService, EmbedService and InfoService: the stateless model endpoints (proto <-> domain)."""

from __future__ import annotations

import resource
from importlib.metadata import version

import grpc
import psutil

from mmsearch.encoders.base import Capability
from mmsearch.protocol.vocab import Modality, RerankMethod
from mmsearch.protocol.wire import MODALITY, RERANK_METHOD
from mmsearch.v1 import embed_pb2, embed_pb2_grpc, rerank_pb2, rerank_pb2_grpc

from ..catalog import Catalog
from ..errors import InvalidArgument, ResourceExhausted, Unimplemented
from ..ingest.items import ImageFile
from ..rerank import RerankDocument, Reranker
from ..settings import Settings
from ..storage.snapshots import disk_bytes

MAX_EMBED_INPUTS = 256


def _rerank_document(d: rerank_pb2.RerankDocument) -> RerankDocument:
    kind = d.WhichOneof("content")
    if kind == "text":
        return d.text
    if kind == "image":
        return ImageFile(d.image.data, d.image.mime_type)
    return None  # neither: the reranker names the empty document


def _rerank_method(method: int) -> RerankMethod:
    return RERANK_METHOD.from_wire(method) or RerankMethod.LATE_INTERACTION  # UNSPECIFIED: the default


class ModelServicer(
    rerank_pb2_grpc.RerankServiceServicer, embed_pb2_grpc.EmbedServiceServicer, embed_pb2_grpc.InfoServiceServicer
):
    def __init__(self, catalog: Catalog, settings: Settings) -> None:
        self.catalog = catalog
        self.settings = settings
        self.reranker = Reranker(catalog, settings)

    def Rerank(  # noqa: N802
        self, request: rerank_pb2.RerankRequest, context: grpc.ServicerContext
    ) -> rerank_pb2.RerankResponse:
        documents = [_rerank_document(d) for d in request.documents]
        out = rerank_pb2.RerankResponse()
        for i, score in self.reranker.rerank(request.query, documents, _rerank_method(request.method), request.top_n):
            r = out.results.add(index=i, relevance_score=score)
            if request.return_documents:
                r.document.CopyFrom(request.documents[i])
        return out

    def Embed(self, request: embed_pb2.EmbedRequest, context: grpc.ServicerContext) -> embed_pb2.EmbedResponse:  # noqa: N802
        if not request.inputs:
            raise InvalidArgument("no inputs to embed")
        if len(request.inputs) > MAX_EMBED_INPUTS:
            raise ResourceExhausted(f"{len(request.inputs)} inputs in one call; the limit is {MAX_EMBED_INPUTS}")
        texts = []
        for i, x in enumerate(request.inputs):
            if x.WhichOneof("content") != "text":
                raise Unimplemented(f"input {i}: only text inputs can be embedded by this server version")
            if not x.text.strip():
                raise InvalidArgument(f"input {i} is empty")
            texts.append(x.text)
        encoder = self.catalog.client_encoder(request.encoder.kind, request.encoder.model)
        out = embed_pb2.EmbedResponse()
        for e in encoder.encode_texts(texts, as_query=request.as_query):
            emb = out.embeddings.add(pooled=embed_pb2.Vector(values=e.pooled.tolist()))
            if request.multi_vector:
                emb.tokens.extend(embed_pb2.Vector(values=row.tolist()) for row in e.tokens)
                emb.token_strings.extend(e.token_strings)
        return out

    def GetInfo(  # noqa: N802
        self, request: embed_pb2.GetInfoRequest, context: grpc.ServicerContext
    ) -> embed_pb2.GetInfoResponse:
        s = self.settings
        mem = psutil.Process().memory_info()
        rss = mem.rss
        out = embed_pb2.GetInfoResponse(
            version=version("mmsearch"),
            storage_backend=self.catalog.store.backend,
            max_message_bytes=s.max_message_mb * 1024 * 1024,
            max_top_k=s.max_top_k,
            max_rerank_documents=s.max_rerank_documents,
            resident_memory_bytes=rss,
            # ru_maxrss is in KiB on Linux, and the kernel updates it lazily (it can trail the current RSS)
            peak_resident_memory_bytes=max(rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
            storage_bytes=disk_bytes(s.data_dir) if self.catalog.store.backend == "edge" else 0,
            page_image_bytes=disk_bytes(s.data_dir / "page_images") if self.catalog.store.backend == "edge" else 0,
            # Linux: `shared` is the resident part backed by files (statm), so the rest is the process's
            # own memory; other systems do not report it (0).
            anonymous_memory_bytes=rss - getattr(mem, "shared", rss),
        )
        # What an encoder reads: text, and page images for the ColPali family.
        by_capability = {Capability.TEXT: Modality.TEXT, Capability.IMAGE: Modality.PAGE}
        for e in self.catalog.encoders.loaded():
            out.encoders.add(
                kind=e.kind,
                model=e.model,
                dim=e.dim,
                modalities=[MODALITY.to_wire(m) for c, m in by_capability.items() if c in e.capabilities],
                capabilities=sorted(str(c) for c in e.capabilities),
                loaded=True,
            )
        return out
