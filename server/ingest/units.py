"""What an ingest item expands into: units, each becoming one stored point (a text passage or a page).

Expansion is lazy: a PDF's pages are rendered only when the batcher asks for the next unit, so a
2,000-page PDF never sits in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmsearch.protocol.vocab import Modality, OcrMode

from ..dedup import DEFAULT_THRESHOLD
from ..errors import InvalidArgument, MMSearchError
from ..field_types import check_metadata
from ..storage.base import CollectionSpec
from .items import ImageFile, IngestItem, PdfFile, Text, TextFile
from .pages import Page, PageLimits, image_pages, pdf_page_count
from .pdf_worker import read_pdf
from .text import decode_utf8, split_passages
from .versions import Version

MAX_ID_CHARS = 512


@dataclass(eq=False)  # compared and hashed by identity: the same id may come twice in one stream
class ItemState:
    """An item in flight. Only the stream thread changes it (the writer thread reads nothing but its
    id): the writer reports outcomes and the stream thread applies them."""

    seq: int
    id: str
    source: str
    tenant: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    error: MMSearchError | None = None
    units: Iterator[Unit] | None = None
    total: int | None = None  # how many units it will have, when known up front
    version: Version = field(default_factory=lambda: Version(0, 0))  # set once its document is claimed
    exhausted: bool = False  # every unit has been taken from `units`
    produced: int = 0  # units taken
    submitted: int = 0  # units handed to the writer
    settled: int = 0  # units whose write has finished (stored or failed)
    written: int = 0  # units durably stored
    on_duplicate: str = ""  # the item's OnDuplicate policy, resolved against its collection's
    duplicate_threshold: float = 0.0
    report_progress: bool = False  # the caller wants ItemProgress reports
    reported: int = 0  # points stored when its progress was last reported
    vectors: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (space, pooled (dim,)), kept to check

    def drop_units(self) -> None:
        """Closes the unit iterator of an item that will not be read to its end, here and now (a PDF's
        page generator holds its open document, and would otherwise close it whenever and wherever the
        garbage collector finds the cycle it forms with its item)."""
        units, self.units = self.units, None
        close = getattr(units, "close", None)
        if close is not None:
            close()

    @property
    def done(self) -> bool:
        """Nothing more will happen to the item: it can be acknowledged."""
        writing = self.settled < self.submitted
        return self.exhausted and not writing and (self.error is not None or self.written == self.produced)


@dataclass(eq=False)
class Unit:
    item: ItemState
    seq: int  # point number within the document (passage or page index)
    modality: Modality
    text: str = ""
    passage: int = 0
    page: Page | None = None
    #: The page's kept image and thumbnail (WebP), written with its point; empty when not kept.
    image: bytes = b""
    thumbnail: bytes = b""


def expand(seq: int, it: IngestItem, spec: CollectionSpec, limits: PageLimits, keep_images: bool = False) -> ItemState:
    """Validates the item and prepares its lazy unit iterator (errors land in item.error).
    `keep_images`: the store keeps page images, so every PDF page is rendered, text-layer ones too."""
    item = ItemState(
        seq=seq,
        id=it.id,
        source=it.source,
        tenant=it.tenant,
        on_duplicate=it.on_duplicate or spec.on_duplicate,
        duplicate_threshold=it.duplicate_threshold or spec.duplicate_threshold or DEFAULT_THRESHOLD,
        report_progress=it.report_progress,
    )
    try:
        if it.error is not None:
            raise it.error
        if it.collection != spec.name:
            raise InvalidArgument(f"collection changed within the stream ({spec.name!r} -> {it.collection!r})")
        if not it.id.strip():
            raise InvalidArgument("item has no id")
        if len(it.id) > MAX_ID_CHARS:
            raise InvalidArgument(f"item id is longer than {MAX_ID_CHARS} characters")
        check_metadata(it.metadata, spec.indexed_fields, it.id)
        item.metadata = it.metadata
        content = it.content
        if isinstance(content, Text | TextFile):
            text = content.text if isinstance(content, Text) else decode_utf8(content.data, f"text of item {it.id!r}")
            passages = split_passages(text, spec.chunk_words, spec.chunk_overlap)
            if not passages:
                raise InvalidArgument(f"item {it.id!r} has no text")
            item.units = iter([Unit(item, p.index, Modality.TEXT, p.text, passage=p.index) for p in passages])
            item.total = len(passages)
        elif isinstance(content, ImageFile):
            # Decoding is checked up front for single images; TIFF frames are decoded as they come.
            pages = list(image_pages(content.data, content.mime_type, limits))
            item.units = iter([Unit(item, p.number - 1, Modality.PAGE, page=p) for p in pages])
            item.total = len(pages)
        elif isinstance(content, PdfFile):
            # broken, encrypted, empty or too long: refused before any write
            item.total = pdf_page_count(content.data, limits)
            # Pixels are needed by an image encoder, by OCR of every page (ocr: always), and for the
            # kept image of a page read from its text layer (GetPage, thumbnails in results).
            render = keep_images or bool(spec.page_kind) or spec.ocr == OcrMode.ALWAYS
            rendered = read_pdf(content.data, limits, always_render=render)
            item.units = (Unit(item, p.number - 1, Modality.PAGE, page=p) for p in rendered)
        else:
            raise InvalidArgument(f"item {it.id!r} has no content (set text, text_file, image or pdf)")
    except MMSearchError as exc:
        item.error = exc
    return item
