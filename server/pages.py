"""Reading kept pages back: a page's image, text and words with boxes (GetPage, GetDocument)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import NotFound, ResourceExhausted
from .storage.base import Cond, Store, Where, point_id
from .storage.page_images import image_key

_FIELDS = ["doc_id", "modality", "page", "text", "words", "boxes", "width", "height", "meta"]


@dataclass
class PageView:
    document_id: str
    page: int  # 1-based
    width: int  # the page's size in pixels: word boxes are in this frame (the kept image may be smaller)
    height: int
    text: str
    words: list[tuple[str, tuple[float, float, float, float]]]
    image: bytes = b""  # WebP; empty when none is kept (a text-layer PDF page ingested before they were)
    thumbnail: bytes = b""
    metadata: dict[str, Any] = field(default_factory=dict)


def _view(payload: dict[str, Any]) -> PageView:
    words = payload.get("words") or []
    boxes = payload.get("boxes") or [[0, 0, 0, 0]] * len(words)
    return PageView(
        document_id=str(payload.get("doc_id", "")),
        page=int(payload.get("page") or 0),
        width=int(payload.get("width") or 0),
        height=int(payload.get("height") or 0),
        text=str(payload.get("text") or ""),
        words=[
            (str(w), (float(b[0]), float(b[1]), float(b[2]), float(b[3]))) for w, b in zip(words, boxes, strict=False)
        ],
        metadata=payload.get("meta") or {},
    )


def _with_image(
    store: Store, collection: str, view: PageView, thumbnail_only: bool, tenant: str | None, slot: int
) -> PageView:
    if store.page_images is not None:
        key = image_key(view.document_id, tenant, slot)
        got = store.page_images.get(collection, key, view.page, thumbnail_only=thumbnail_only)
        if got is not None:
            view.image, view.thumbnail = got
    return view


def get_page(store: Store, collection: str, doc_id: str, page: int, tenant: str | None = None) -> PageView:
    """A page of the version of `doc_id` written under `tenant` (None: under no tenant)."""
    store.get_spec(collection)  # NotFound for an unknown collection
    if page < 1:
        raise NotFound(f"page {page} of {doc_id!r}: pages are numbered from 1")
    # The live version is in either slot; retrieve returns visible points only.
    ids = [point_id(doc_id, page - 1, tenant, slot) for slot in (0, 1)]
    hits = store.retrieve(collection, ids, fields=_FIELDS)
    if not hits or hits[0].payload.get("modality") != "page":
        raise NotFound(f"document {doc_id!r} has no page {page} in collection {collection!r}")
    return _with_image(store, collection, _view(hits[0].payload), False, tenant, ids.index(hits[0].id))


def get_document(
    store: Store,
    collection: str,
    doc_id: str,
    images: bool,
    tenant: str | None = None,
    max_bytes: int | None = None,
) -> tuple[dict[str, Any], list[PageView]]:
    """The document's metadata and its pages in order (no pages for a text document), of the
    version written under `tenant`. Stops reading images once the pages come to over `max_bytes`
    (ResourceExhausted): a large document's images are not all loaded only to be refused."""
    store.get_spec(collection)
    n = store.count(collection, Where(must=[Cond(key="doc_id", match=doc_id)]).owned_by(tenant))
    if n == 0:
        raise NotFound(f"document {doc_id!r} is not in collection {collection!r}")
    slot_of = {point_id(doc_id, s, tenant, slot): slot for s in range(n) for slot in (0, 1)}
    hits = store.retrieve(collection, list(slot_of), fields=_FIELDS)  # the visible version's points
    views = sorted(((_view(h.payload), slot_of[h.id]) for h in hits), key=lambda v: v[0].page)
    metadata = views[0][0].metadata if views else {}
    views = [(v, slot) for v, slot in views if v.page > 0]
    pages: list[PageView] = []
    size = 0
    for view, slot in views:
        pages.append(_with_image(store, collection, view, not images, tenant, slot))
        size += _size(pages[-1])
        if max_bytes is not None and size > max_bytes:
            raise TooLarge(doc_id, size, max_bytes, len(pages), len(views))
    return metadata, pages


def _size(view: PageView) -> int:
    """Fewer bytes than the page takes in a message, so a document that fits is never refused here
    (the servicer checks the message's exact size after)."""
    return len(view.image) + len(view.thumbnail) + len(view.text.encode())


class TooLarge(ResourceExhausted):
    def __init__(self, doc_id: str, size: int, limit: int, read: int, count: int) -> None:
        super().__init__(
            f"document {doc_id[:100]!r} with its page images is over {size / 2**20:,.1f} MiB by page {read} of "
            f"{count}, over the largest message ({limit / 2**20:,.1f} MiB, setting max_message_mb): ask without "
            f"images and fetch its {count} pages one by one (GetPage)"
        )
