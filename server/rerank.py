"""Stateless reranking. The default method scores with the text encoder: relevance = mean of the
pooled cosine and the query-length-normalised MaxSim, clipped to [0, 1]. The cross-encoder method
lives in encoders/cross.py; both share the input checks here. Image documents are read by OCR."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmsearch.encoders.base import Encoder
from mmsearch.protocol.vocab import RerankMethod

from .catalog import Catalog
from .errors import InvalidArgument, MMSearchError, ResourceExhausted
from .ingest.items import ImageFile
from .ingest.pages import PageLimits, image_pages
from .settings import Settings


def check_rerank_input(query: str, documents: list[str], settings: Settings) -> None:
    if not query.strip():
        raise InvalidArgument("query is empty")
    if len(query) > settings.max_query_chars:
        raise InvalidArgument(f"query text is {len(query)} characters; the limit is {settings.max_query_chars}")
    if not documents:
        raise InvalidArgument("no documents to rerank")
    if len(documents) > settings.max_rerank_documents:
        raise ResourceExhausted(
            f"{len(documents)} documents in one rerank call; the limit is {settings.max_rerank_documents}"
        )
    for i, d in enumerate(documents):
        if len(d) > settings.max_rerank_document_chars:
            raise ResourceExhausted(
                f"document {i} is {len(d)} characters; the limit is {settings.max_rerank_document_chars}"
            )


def rerank(encoder: Encoder, query: str, documents: list[str], settings: Settings) -> list[float]:
    check_rerank_input(query, documents, settings)
    q = encoder.encode_texts([query], as_query=True)[0]
    docs = encoder.encode_texts(documents, as_query=False)
    scores = []
    for d in docs:
        cosine = float(q.pooled @ d.pooled)
        maxsim = float((q.tokens @ d.tokens.T).max(axis=1).mean())
        scores.append(float(np.clip((cosine + maxsim) / 2, 0.0, 1.0)))
    return scores


#: A document to rerank: its text, an image (read by OCR), or None when the caller gave neither.
RerankDocument = str | ImageFile | None


class Reranker:
    def __init__(self, catalog: Catalog, settings: Settings) -> None:
        self.catalog = catalog
        self.settings = settings

    def rerank(
        self,
        query: str,
        documents: Sequence[RerankDocument],
        method: RerankMethod = RerankMethod.LATE_INTERACTION,
        top_n: int = 0,
    ) -> list[tuple[int, float]]:
        """(document index, relevance in [0, 1]), best first; the first `top_n` (0: all)."""
        # The query and the document count are checked before any OCR or encoding work.
        check_rerank_input(query, [""] * len(documents), self.settings)
        texts = [self._text(i, d) for i, d in enumerate(documents)]
        if method == RerankMethod.CROSS_ENCODER:
            check_rerank_input(query, texts, self.settings)
            scores = [float(x) for x in self.catalog.cross_encoder().score(query, texts)]
        else:
            scores = rerank(self.catalog.encoder(), query, texts, self.settings)
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        if top_n:
            order = order[:top_n]
        return [(i, scores[i]) for i in order]

    def _text(self, index: int, document: RerankDocument) -> str:
        if isinstance(document, str):
            return document
        if document is None:
            raise InvalidArgument(f"document {index} is empty (set text or image)")
        # Image documents are read with OCR (the offline page path) and reranked by their text.
        try:
            page = next(
                image_pages(document.data, document.mime_type, PageLimits(max_pixels=self.settings.max_image_pixels))
            )
        except MMSearchError as exc:
            raise type(exc)(f"document {index}: {exc}") from None
        assert page.image is not None
        return " ".join(w.text for w in self.catalog.ocr().words(page.image))
