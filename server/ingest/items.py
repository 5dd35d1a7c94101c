"""What an ingest stream carries, in domain terms: items in, one result per item out.

The gRPC service converts its messages into these and back; nothing under server/ingest/ knows the
wire format.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import MMSearchError


class IngestCancelled(Exception):
    """The caller went away (cancelled, deadline passed, server stopping): the work stops at the
    next page or batch and unacknowledged items are rolled back."""


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class TextFile:
    """A text file's bytes: decoded as strict UTF-8 at ingest, so a bad byte is reported by offset."""

    data: bytes


@dataclass(frozen=True)
class ImageFile:
    data: bytes
    mime_type: str  # what the caller says it is; checked against the bytes


@dataclass(frozen=True)
class PdfFile:
    data: bytes


Content = Text | TextFile | ImageFile | PdfFile


@dataclass(frozen=True)
class IngestItem:
    collection: str
    id: str
    source: str = ""
    content: Content | None = None  # None: the caller set no content (rejected with a clear error)
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Create the collection with the server's defaults when it does not exist (read from the first item).
    create_collection: bool = False
    #: The writer's tenant: the document is stamped with it and replaces only that tenant's version.
    tenant: str | None = None
    #: False when the caller asked to create the collection without the right to (an admin key).
    may_create: bool = True
    #: Near-duplicate handling (an OnDuplicate value; "": the collection's) and its threshold (0: default).
    on_duplicate: str = ""
    duplicate_threshold: float = 0.0
    #: The caller wants ItemProgress reports while the item is stored (a many-page PDF).
    report_progress: bool = False
    #: Refused while it was read (e.g. metadata that cannot be stored, no room in the ingest budget):
    #: acknowledged with this error, nothing written.
    error: MMSearchError | None = None


@dataclass(frozen=True)
class ItemResult:
    """One per item, in stream order. ok: every point of the item is durably stored."""

    seq: int  # position of the item in the stream, from 0
    id: str
    source: str
    points: int = 0
    error: MMSearchError | None = None
    duplicate_of: tuple[str, ...] = ()  # the documents it duplicates: skipped for them, or replacing them

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ItemProgress:
    """How far an unfinished item has come (streamed only when the caller asks): its points stored so
    far (hidden until the whole item is) and how many it will have (None: not known up front). Its
    ItemResult follows later."""

    seq: int
    id: str
    source: str
    stored: int
    total: int | None


END = object()  # the request stream is over


def pump(items: Iterator[IngestItem], inbox: queue.Queue, stop: threading.Event) -> None:
    """Feeds the request stream's items into the stream's bounded inbox (ingest/pipeline.py), then
    END, or the exception that broke the stream."""
    try:
        for item in items:
            if not offer(inbox, item, stop):
                return
        offer(inbox, END, stop)
    except BaseException as exc:  # the client cancelled or the stream broke
        offer(inbox, exc, stop)


def offer(inbox: queue.Queue, thing: object, stop: threading.Event) -> bool:
    """Puts into the bounded inbox unless the stream has ended (nobody would take it)."""
    while not stop.is_set():
        try:
            inbox.put(thing, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False
