"""Units into points: encode a batch of passages and pages with the collection's encoders.

Every step that can fail on one input (OCR of a page, encoding) is guarded per unit: a failure
rejects that unit's item with a clear error and the rest of the batch goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from mmsearch.encoders.base import Encoder
from mmsearch.protocol.vocab import OcrMode

from ..catalog import Catalog
from ..errors import InvalidArgument, MMSearchError
from ..ranking.lexical import document_terms
from ..storage.base import LIVE, ROWCOL, SLOT, TENANT_FIELD, CollectionSpec, PointData, point_id, region_point_id
from ..storage.page_images import encode_page_image
from .items import IngestCancelled
from .page_encoding import PageVectors, encode_word_lists, encode_word_pages, patch_grid, rowcol
from .pages import Word
from .pooling import Pooled, pick, pool_tokens, positions
from .regions import page_regions
from .units import Unit

log = logging.getLogger(__name__)


class PointBuilder:
    def __init__(self, catalog: Catalog, ocr_threads: int = 2) -> None:
        self.catalog = catalog
        # One thread per OCR worker process at least, so that every worker has a page to read.
        threads = max(ocr_threads, catalog.settings.ocr_workers)
        self._ocr_pool = ThreadPoolExecutor(threads, thread_name_prefix="ocr")

    def build(
        self, units: list[Unit], spec: CollectionSpec, cancelled: threading.Event | None = None
    ) -> list[tuple[Unit, PointData]]:
        """The point of every unit whose item has not failed, in batch order; a unit that cannot be
        read or encoded sets its item's error instead. Raises IngestCancelled once `cancelled` is
        set: pages not yet OCR'd are skipped and nothing more is encoded."""
        cancelled = cancelled or threading.Event()

        def check() -> None:
            if cancelled.is_set():
                raise IngestCancelled("the ingest call ended")

        points: dict[Unit, PointData] = {}
        live = [u for u in units if u.item.error is None]
        texts = [u for u in live if u.modality == "text"]
        if texts:
            self._guarded(texts, lambda batch: self._texts(batch, spec), points)
        pages = [u for u in live if u.modality == "page"]
        if pages:
            self._read_words(pages, spec, cancelled)  # ColPali pages too: their words feed BM25 and snippets
            check()
            # The kept WebP copies are made beside the model's encoding, not before it (PIL's encoder
            # releases the GIL): in sequence they slowed ColPali ingest (docs/benchmarks.md).
            # A page per task: the copies of a batch are made on every thread of the pool at once.
            kept = []
            if self.catalog.store.page_images is not None:
                kept = [self._ocr_pool.submit(self._keep_image, u) for u in pages]
            readable = [u for u in pages if u.item.error is None]
            encode = self._colpali_pages if spec.page_kind else self._pages
            try:
                self._guarded(readable, lambda batch: encode(batch, spec), points)
            finally:
                for copy in kept:
                    copy.result()
                for u in pages:  # pixels are released once encoded and kept
                    if u.page is not None:
                        u.page.image = None
        return [(u, points[u]) for u in units if u in points and u.item.error is None]

    def _guarded(
        self, units: list[Unit], fn: Callable[[list[Unit]], list[PointData]], out: dict[Unit, PointData]
    ) -> None:
        """Encodes the batch; if that fails, unit by unit so that one bad input fails alone."""
        if not units:
            return
        try:
            out.update(zip(units, fn(units), strict=True))
            return
        except Exception as exc:
            log.warning("batch encode failed (%s); retrying unit by unit", exc)
        for u in units:
            if u.item.error is not None:  # an earlier unit of the same item failed
                continue
            try:
                out[u] = fn([u])[0]
            except Exception as unit_exc:
                u.item.error = InvalidArgument(f"item {u.item.id!r} could not be encoded: {unit_exc}")

    @staticmethod
    def _keep_image(u: Unit) -> None:
        """The page's WebP copies (with images kept, every page has pixels: PDF pages read from their
        text layer are rendered for this, units.expand)."""
        if u.page is not None and u.page.image is not None:
            u.image, u.thumbnail = encode_page_image(u.page.image)

    def _read_words(self, pages: list[Unit], spec: CollectionSpec, cancelled: threading.Event) -> None:
        """Pages are OCR'd as the collection's `ocr` mode says (auto: those without a text layer), in
        parallel (tesseract runs outside the GIL). A page the engine cannot read rejects its item alone."""
        if spec.ocr == OcrMode.NEVER:  # only with ColPali (catalog): a page is searched by its image alone
            return
        if spec.ocr == OcrMode.ALWAYS:  # text layers are ignored: every page that has pixels is read
            for u in pages:
                if u.page is not None and u.page.image is not None:
                    u.page.words = None
                    u.page.extra["text_layer"] = False
        # A page without words always has its pixels: pages.py renders those that need OCR.
        need = [u for u in pages if u.page is not None and u.page.words is None and u.page.image is not None]
        if not need:
            return
        try:
            ocr = self.catalog.ocr()
        except MMSearchError as exc:  # e.g. the configured engine is not installed
            for u in need:
                u.item.error = u.item.error or exc
            return

        def words(image: Any) -> list[Word]:
            if cancelled.is_set():  # the caller left: the pages still queued are not read
                raise IngestCancelled("the ingest call ended")
            return ocr.words(image)

        read = [self._ocr_pool.submit(words, u.page.image) for u in need if u.page and u.page.image]
        for u, future in zip(need, read, strict=True):
            assert u.page is not None
            try:
                u.page.words = future.result()
            except IngestCancelled:
                continue
            except Exception as exc:
                log.warning("OCR (%s) failed on page %d of %r: %s", ocr.name, u.page.number, u.item.id, exc)
                if u.item.error is None:
                    u.item.error = InvalidArgument(
                        f"page {u.page.number} of item {u.item.id!r} could not be read by OCR ({ocr.name}): {exc}"
                    )

    def _texts(self, units: list[Unit], spec: CollectionSpec) -> list[PointData]:
        encoder = self.catalog.text_encoder(spec)
        encoded = encoder.encode_texts([u.text for u in units], as_query=False)
        factor = spec.spaces["text"].compression.token_pool_factor
        points = []
        for u, e in zip(units, encoded, strict=True):
            pooled = pool_tokens(e.tokens, factor)
            points.append(
                PointData(
                    id=point_id(u.item.id, u.seq, u.item.tenant, u.item.version.slot),
                    space="text",
                    dense=e.pooled,
                    tokens=pooled.tokens,
                    lexical=document_terms(u.text),
                    payload=self._payload(
                        u, text=u.text, tokens=pick(e.token_strings, pooled.representatives), **positions(pooled)
                    ),
                )
            )
        return points

    def _pages(self, units: list[Unit], spec: CollectionSpec) -> list[PointData]:
        encoder: Encoder = self.catalog.text_encoder(spec)
        words = [u.page.words or [] if u.page else [] for u in units]
        factor = spec.spaces["text"].compression.token_pool_factor
        points = []
        for u, w, pv in zip(units, words, encode_word_pages(encoder, words), strict=True):
            assert u.page is not None
            text = " ".join(x.text for x in w)
            pooled = pool_tokens(pv.tokens, factor)
            point = PointData(
                id=point_id(u.item.id, u.seq, u.item.tenant, u.item.version.slot),
                space="text",
                dense=pv.pooled,
                tokens=pooled.tokens,
                lexical=document_terms(text),
                payload=self._payload(u, text=text, **_word_payload(w, pv, pooled), **_page_fields(u)),
            )
            if self.catalog.settings.page_regions:  # off by default: docs/pages.md measured no gain yet
                point.companions = self._regions(u, w, encoder, factor)
            points.append(point)
        return points

    def _regions(self, u: Unit, words: list[Word], encoder: Encoder, factor: int) -> list[PointData]:
        """A long page's regions as points of their own, grouped back to the page at search time
        (payload `region`; `seq` -1 keeps them out of document counts and version bookkeeping)."""
        regions = page_regions(words)
        region_words = [[words[i] for i in r.words] for r in regions]
        vectors = encode_word_lists(encoder, region_words)
        out = []
        for n, (r, rw, rv) in enumerate(zip(regions, region_words, vectors, strict=True)):
            pooled = pool_tokens(rv.tokens, factor)
            payload = self._payload(u, text=r.text(words), **_word_payload(rw, rv, pooled), **_page_fields(u))
            payload |= {"seq": -1, "region": n, "region_kind": r.kind, "region_box": [round(c) for c in r.box(words)]}
            out.append(
                PointData(
                    id=region_point_id(u.item.id, u.seq, n, u.item.tenant, u.item.version.slot),
                    space="text",
                    dense=rv.pooled,
                    tokens=pooled.tokens,
                    lexical=document_terms(r.lexical_text(words)),
                    payload=payload,
                )
            )
        return out

    def _colpali_pages(self, units: list[Unit], spec: CollectionSpec) -> list[PointData]:
        """The page image through the ColPali-family model (patch vectors in the page space); the
        page's words (text layer or OCR) still feed BM25 and snippets."""
        encoder = self.catalog.page_encoder(spec)
        images = [u.page.image for u in units if u.page is not None]
        factor = spec.spaces["page"].compression.token_pool_factor
        prefetch = spec.spaces["page"].prefetch == ROWCOL
        points = []
        for u, e in zip(units, encoder.encode_images(images), strict=True):  # type: ignore[arg-type]
            assert u.page is not None
            words = u.page.words or []
            text = " ".join(x.text for x in words)
            pooled = pool_tokens(e.tokens, factor)
            points.append(
                PointData(
                    id=point_id(u.item.id, u.seq, u.item.tenant, u.item.version.slot),
                    space="page",
                    dense=e.pooled,
                    tokens=pooled.tokens,
                    lexical=document_terms(text) if text else None,
                    payload=self._payload(
                        u,
                        space="page",
                        text=text,
                        **patch_payload(e.token_strings, e.token_boxes, pooled),
                        width=u.page.width,
                        height=u.page.height,
                    ),
                    prefetch=rowcol(e.tokens, e.token_boxes) if prefetch else None,  # from the unpooled patches
                )
            )
        return points

    @staticmethod
    def _payload(u: Unit, space: str = "text", **extra: Any) -> dict[str, Any]:
        tenant = {TENANT_FIELD: u.item.tenant} if u.item.tenant else {}
        return {
            **tenant,
            "doc_id": u.item.id,
            "space": space,
            "seq": u.seq,
            "modality": u.modality,
            "passage": u.passage,
            "page": u.page.number if u.page else 0,
            "meta": u.item.metadata,
            "source": u.item.source,
            SLOT: u.item.version.slot,
            LIVE: u.item.version.live,
            **extra,
        }


def patch_payload(strings: list[str], boxes: np.ndarray | None, pooled: Pooled) -> dict[str, Any]:
    """How explanations name a page's stored patch vectors. Patches on a grid (the encoder's boxes
    are its cells) are named by grid and position alone: a name and a box per patch would be half
    the size of a 4-bit patch vector. Otherwise each vector's token string and box."""
    reps = pooled.representatives
    grid = patch_grid(boxes, len(boxes) if boxes is not None else 0)
    if grid is not None:
        return {"patch_grid": list(grid), "token_positions": reps}
    return {
        "tokens": pick(strings, reps),
        "patch_boxes": [[round(float(c), 4) for c in b] for b in pick(boxes, reps)],
        **positions(pooled),
    }


def _page_fields(u: Unit) -> dict[str, Any]:
    assert u.page is not None
    source = "pdf" if u.page.extra.get("text_layer") else "ocr"
    return {"width": u.page.width, "height": u.page.height, "text_source": source}


def _word_payload(words: list[Word], pv: PageVectors, pooled: Pooled) -> dict[str, Any]:
    """How explanations name a page's (or region's) stored vectors: the word each came from, and
    every word with its box, width and height of the page they lie on."""
    return {
        "tokens": pick(pv.token_strings, pooled.representatives),
        "token_words": pick(pv.token_words, pooled.representatives),
        **positions(pooled),
        "words": [x.text for x in words],
        "boxes": [[round(c) for c in x.box] for x in words],
    }


__all__ = ["PointBuilder", "Word"]
