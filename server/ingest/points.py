"""Units into points: encode a batch of passages and pages with the collection's encoders."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mmsearch.encoders.base import Encoder

from ..collections import Collections
from ..errors import InvalidArgument
from ..ranking.lexical import document_terms
from ..storage.base import CollectionSpec, PointData, point_id
from .page_encoding import encode_word_pages
from .pages import Word
from .units import Unit

log = logging.getLogger(__name__)


class PointBuilder:
    def __init__(self, collections: Collections, ocr_threads: int = 2, ocr_with_colpali: bool = True) -> None:
        self.collections = collections
        self.ocr_with_colpali = ocr_with_colpali
        self._ocr_pool = ThreadPoolExecutor(ocr_threads, thread_name_prefix="ocr")

    def build(self, units: list[Unit], spec: CollectionSpec) -> None:
        """Fills unit.point for every unit, or sets the unit's item error."""
        texts = [u for u in units if u.modality == "text"]
        pages = [u for u in units if u.modality == "page"]
        if texts:
            self._guarded(texts, lambda batch: self._texts(batch, spec))
        if pages:
            if not spec.page_kind or self.ocr_with_colpali:
                self._words(pages)
            if spec.page_kind:
                self._guarded(pages, lambda batch: self._colpali_pages(batch, spec))
            else:
                self._guarded(pages, lambda batch: self._pages(batch, spec))

    def _guarded(self, units: list[Unit], fn: Any) -> None:
        """Encodes the batch; if that fails, unit by unit so that one bad input fails alone."""
        try:
            fn(units)
        except Exception as exc:
            log.warning("batch encode failed (%s); retrying unit by unit", exc)
            for u in units:
                try:
                    fn([u])
                except Exception as unit_exc:
                    if u.item.error is None:
                        u.item.error = InvalidArgument(f"item {u.item.id!r} could not be encoded: {unit_exc}")

    def _words(self, pages: list[Unit]) -> None:
        """Pages without a text layer are OCR'd, in parallel (tesseract runs outside the GIL)."""
        need = [u for u in pages if u.page is not None and u.page.words is None and u.item.error is None]
        if not need:
            return
        ocr = self.collections.ocr()
        for u, words in zip(need, self._ocr_pool.map(lambda u: ocr.words(u.page.image), need), strict=True):
            assert u.page is not None
            u.page.words = words

    def _texts(self, units: list[Unit], spec: CollectionSpec) -> None:
        encoder = self.collections.text_encoder(spec)
        encoded = encoder.encode_texts([u.text for u in units], as_query=False)
        for u, e in zip(units, encoded, strict=True):
            u.point = PointData(
                id=point_id(u.item.id, u.seq),
                space="text",
                dense=e.pooled,
                tokens=e.tokens,
                sparse=document_terms(u.text),
                payload=self._payload(u, text=u.text, tokens=e.token_strings),
            )

    def _pages(self, units: list[Unit], spec: CollectionSpec) -> None:
        encoder: Encoder = self.collections.text_encoder(spec)
        words = [u.page.words or [] if u.page else [] for u in units]
        for u, w, pv in zip(units, words, encode_word_pages(encoder, words), strict=True):
            assert u.page is not None
            text = " ".join(x.text for x in w)
            u.point = PointData(
                id=point_id(u.item.id, u.seq),
                space="text",
                dense=pv.pooled,
                tokens=pv.tokens,
                sparse=document_terms(text),
                payload=self._payload(
                    u,
                    text=text,
                    tokens=pv.token_strings,
                    token_words=pv.token_words,
                    words=[x.text for x in w],
                    boxes=[[round(c) for c in x.box] for x in w],
                    width=u.page.width,
                    height=u.page.height,
                    text_source="pdf" if u.page.extra.get("text_layer") else "ocr",
                ),
            )
            u.page.image = None  # release pixels as soon as the page is encoded

    def _colpali_pages(self, units: list[Unit], spec: CollectionSpec) -> None:
        """The page image through the ColPali-family model (patch vectors in the page space); the
        page's words (text layer or OCR) still feed BM25 and snippets."""
        encoder = self.collections.page_encoder(spec)
        images = [u.page.image for u in units if u.page is not None]
        for u, e in zip(units, encoder.encode_images(images), strict=True):  # type: ignore[arg-type]
            assert u.page is not None
            words = u.page.words or []
            text = " ".join(x.text for x in words)
            u.point = PointData(
                id=point_id(u.item.id, u.seq),
                space="page",
                dense=e.pooled,
                tokens=e.tokens,
                sparse=document_terms(text) if text else None,
                payload=self._payload(
                    u,
                    space="page",
                    text=text,
                    tokens=e.token_strings,
                    patch_boxes=[[round(float(c), 4) for c in b] for b in e.token_boxes]
                    if e.token_boxes is not None
                    else [],
                    width=u.page.width,
                    height=u.page.height,
                ),
            )
            u.page.image = None

    @staticmethod
    def _payload(u: Unit, space: str = "text", **extra: Any) -> dict[str, Any]:
        return {
            "doc_id": u.item.id,
            "space": space,
            "seq": u.seq,
            "modality": u.modality,
            "passage": u.passage,
            "page": u.page.number if u.page else 0,
            "meta": u.item.metadata,
            "source": u.item.source,
            **extra,
        }


__all__ = ["PointBuilder", "Word"]
