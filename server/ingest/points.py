"""Units into points: encode a batch of passages and pages with the collection's encoders.

Every step that can fail on one input (OCR of a page, encoding) is guarded per unit: a failure
rejects that unit's item with a clear error and the rest of the batch goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mmsearch.encoders.base import Encoded, Encoder
from mmsearch.protocol.vocab import OcrMode

from ..catalog import Catalog
from ..errors import FailedPrecondition, InvalidArgument, MMSearchError
from ..ranking.lexical import document_terms
from ..storage.base import CollectionSpec, PointData, point_id, region_point_id
from ..storage.page_images import encode_page_image
from .items import IngestCancelled
from .ocr import read_page
from .page_encoding import PageVectors, encode_word_lists, encode_word_pages
from .page_points import colpali_points, patch_payload, point_payload, submit_images, words_source
from .pages import Word
from .pooling import Pooled, pick, pool_tokens, positions
from .regions import page_regions
from .units import Unit

log = logging.getLogger(__name__)


@dataclass
class Started:
    """A batch between PointBuilder.start and finish."""

    units: list[Unit]
    spec: CollectionSpec
    points: dict[Unit, PointData] = field(default_factory=dict)  # those made already (texts)
    pages: list[Unit] = field(default_factory=list)
    readable: list[Unit] = field(default_factory=list)  # pages whose words could be read
    kept: list[Future[None]] = field(default_factory=list)  # their WebP copies in the making
    encoded: Future[list[Encoded]] | None = None  # ColPali: the readable pages' vectors, queued


class PointBuilder:
    def __init__(self, catalog: Catalog, ocr_threads: int = 2) -> None:
        self.catalog = catalog
        # One thread per OCR worker process at least, so that every worker has a page to read.
        threads = max(ocr_threads, catalog.settings.ocr_workers)
        self._ocr_pool = ThreadPoolExecutor(threads, thread_name_prefix="ocr")
        # Off (keep_page_images false): no WebP copy is made, of image items either (they were still
        # encoded and stored, which cost ColPali ingest more than the model: docs/benchmarks.md).
        self.keep_images = catalog.store.page_images is not None and catalog.settings.keep_page_images

    def build(
        self, units: list[Unit], spec: CollectionSpec, cancelled: threading.Event | None = None
    ) -> list[tuple[Unit, PointData]]:
        """The point of every unit whose item has not failed, in batch order; a unit that cannot be
        read or encoded sets its item's error instead. Raises IngestCancelled once `cancelled` is
        set: pages not yet OCR'd are skipped and nothing more is encoded."""
        return self.finish(self.start(units, spec, cancelled))

    def start(self, units: list[Unit], spec: CollectionSpec, cancelled: threading.Event | None = None) -> Started:
        """build's first half: OCR and the encoding of texts and word pages happen now; a ColPali
        batch is only queued on the model's thread, so the caller can read the next batch while
        it encodes (ingest/pipeline.py). `finish` gives the points."""
        cancelled = cancelled or threading.Event()
        started = Started(units, spec)
        live = [u for u in units if u.item.error is None]
        texts = [u for u in live if u.modality == "text"]
        if texts:
            self._guarded(texts, lambda batch: self._texts(batch, spec), started.points)
        pages = [u for u in live if u.modality == "page"]
        if not pages:
            return started
        self._read_words(pages, spec, cancelled)  # ColPali pages too: their words feed BM25 and snippets
        if cancelled.is_set():
            raise IngestCancelled("the ingest call ended")
        started.pages = pages
        # The kept WebP copies are made beside the model's encoding, not before it (PIL's encoder
        # releases the GIL): in sequence they slowed ColPali ingest (docs/benchmarks.md).
        # A page per task: the copies of a batch are made on every thread of the pool at once.
        if self.keep_images:
            started.kept = [self._ocr_pool.submit(self._keep_image, u) for u in pages]
        started.readable = [u for u in pages if u.item.error is None]
        if spec.page_kind and started.readable:
            started.encoded = submit_images(lambda: self.catalog.page_encoder(spec), started.readable)
        return started

    def finish(self, started: Started) -> list[tuple[Unit, PointData]]:
        """build's second half: the points of a started batch (see build)."""
        spec, points, readable, encoded = started.spec, started.points, started.readable, started.encoded
        try:
            if spec.page_kind:

                def pages(batch: list[Unit]) -> list[PointData]:  # a retry unit by unit encodes anew
                    queued = encoded if batch is readable and encoded is not None else None
                    queued = queued or submit_images(lambda: self.catalog.page_encoder(spec), batch)
                    return colpali_points(batch, spec, queued)

                self._guarded(readable, pages, points)
            else:
                self._guarded(readable, lambda batch: self._pages(batch, spec), points)
        finally:
            for copy in started.kept:
                copy.result()
            for u in started.pages:  # pixels are released once encoded and kept
                if u.page is not None:
                    u.page.image = None
        return [(u, points[u]) for u in started.units if u in points and u.item.error is None]

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
            except FailedPrecondition as unit_exc:  # the server's problem (a model it cannot load), as search says
                u.item.error = FailedPrecondition(f"item {u.item.id!r} could not be encoded: {unit_exc}")
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

        def words(image: Any) -> tuple[list[Word], str]:
            if cancelled.is_set():  # the caller left: the pages still queued are not read
                raise IngestCancelled("the ingest call ended")
            return read_page(ocr, image)

        read = [self._ocr_pool.submit(words, u.page.image) for u in need if u.page and u.page.image]
        for u, future in zip(need, read, strict=True):
            assert u.page is not None
            try:
                u.page.words, u.page.extra["ocr_reader"] = future.result()
            except IngestCancelled:
                continue
            except Exception as exc:
                log.warning("OCR (%s) failed on page %d of %r: %s", ocr.name, u.page.number, u.item.id, exc)
                if u.item.error is None:
                    # the engine's own verdicts keep their kind (a GPU out of memory is RESOURCE_EXHAUSTED,
                    # not the page's fault); anything else is reported as this page being unreadable
                    kind = type(exc) if isinstance(exc, MMSearchError) else InvalidArgument
                    u.item.error = kind(
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
                    payload=point_payload(
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
                payload=point_payload(u, text=text, **_word_payload(w, pv, pooled), **_page_fields(u)),
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
            payload = point_payload(u, text=r.text(words), **_word_payload(rw, rv, pooled), **_page_fields(u))
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


def _page_fields(u: Unit) -> dict[str, Any]:
    assert u.page is not None
    return {"width": u.page.width, "height": u.page.height, **words_source(u)}


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


__all__ = ["PointBuilder", "Started", "Word", "patch_payload"]
