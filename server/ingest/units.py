"""What an ingest item expands into: units, each becoming one stored point (a text passage or a page).

Expansion is lazy: a PDF's pages are rendered only when the batcher asks for the next unit, so a
2,000-page PDF never sits in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mmsearch.v1 import ingest_pb2

from ..errors import InvalidArgument, MMSearchError
from ..filters import metadata_to_dict
from ..storage.base import CollectionSpec, PointData
from .pages import Page, PageLimits, image_pages, pdf_page_count, pdf_pages
from .text import decode_utf8, split_passages

MAX_ID_CHARS = 512


@dataclass
class Item:
    seq: int
    id: str
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)
    error: MMSearchError | None = None
    units: Iterator[Unit] | None = None
    exhausted: bool = False  # every unit has been taken from `units`
    produced: int = 0  # units taken
    written: int = 0  # units durably stored
    failed_after_write: bool = False  # some points were stored before the item failed


@dataclass
class Unit:
    item: Item
    seq: int  # point number within the document (passage or page index)
    modality: str  # "text" | "page"
    text: str = ""
    passage: int = 0
    page: Page | None = None
    point: PointData | None = None


def expand(seq: int, req: ingest_pb2.IngestRequest, spec: CollectionSpec, limits: PageLimits) -> Item:
    """Validates the item and prepares its lazy unit iterator (errors land in item.error)."""
    it = req.item
    item = Item(seq=seq, id=it.id, source=it.source)
    try:
        if req.collection != spec.name:
            raise InvalidArgument(f"collection changed within the stream ({spec.name!r} -> {req.collection!r})")
        if not it.id.strip():
            raise InvalidArgument("item has no id")
        if len(it.id) > MAX_ID_CHARS:
            raise InvalidArgument(f"item id is longer than {MAX_ID_CHARS} characters")
        item.metadata = metadata_to_dict(it.metadata)
        kind = it.WhichOneof("content")
        if kind in ("text", "text_file"):
            text = it.text if kind == "text" else decode_utf8(it.text_file.data, f"text of item {it.id!r}")
            passages = split_passages(text, spec.chunk_words, spec.chunk_overlap)
            if not passages:
                raise InvalidArgument(f"item {it.id!r} has no text")
            item.units = iter([Unit(item, p.index, "text", p.text, passage=p.index) for p in passages])
        elif kind == "image":
            # Decoding is checked up front for single images; TIFF frames are decoded as they come.
            pages = list(image_pages(it.image.data, it.image.mime_type, limits))
            item.units = iter([Unit(item, p.number - 1, "page", page=p) for p in pages])
        elif kind == "pdf":
            pdf_page_count(it.pdf, limits)  # broken, encrypted, empty or too long: refused before any write
            rendered = pdf_pages(it.pdf, limits, always_render=bool(spec.page_kind))
            item.units = (Unit(item, p.number - 1, "page", page=p) for p in rendered)
        else:
            raise InvalidArgument(f"item {it.id!r} has no content (set text, text_file, image or pdf)")
    except MMSearchError as exc:
        item.error = exc
    return item
