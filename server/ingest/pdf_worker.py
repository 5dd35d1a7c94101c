"""PDF pages read in a worker process, under a memory limit and a time limit per page.

PDFium parses whatever a page draws, wherever it is drawn from: content streams, forms, patterns, Type3
glyphs, annotation appearances, soft masks, inline images. pdf_guard.py measures the common cases before
PDFium starts, but a hostile-input probe still found 19 small PDFs (0.8-164 KB) that took PDFium past 1 GB
or 20 s by routes the guard does not follow, and a few that made the guard itself slow. Counting every
route PDFium takes would mean rewriting its parser, so the server bounds the reader instead:

- One spawned process reads every PDF page of the server, one page at a time (as the in-process lock
  did), with its address space limited to `pdf_worker_memory_mb` (RLIMIT_AS). The guard runs there too,
  so its own cost is bounded as well and never holds the server's GIL.
- A page that needs more memory makes PDFium abort the worker; a page over `pdf_page_timeout_s` has its
  worker killed. Either way that item is refused with RESOURCE_EXHAUSTED naming the page and the
  setting, and the next page starts a new worker (~1 s).
- Pages of other PDFs waiting in the dead worker's queue are read again once on the new worker, so a
  hostile PDF fails only its own item.
- A whole PDF has limits too (thousands of pages, each just under the page limits): the content its
  pages draw together (`max_pdf_content_mb`, counted by the guard) and the worker's time on its pages
  (`pdf_timeout_s`, checked before each page). Both counts survive a reopen in a new worker.
- The worker keeps each PDF open between its pages (sent once, by token) until the server's page
  generator ends, however it ends.
"""

from __future__ import annotations

import logging
import resource
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ..errors import ResourceExhausted, Unavailable
from .pages import PAGES_READ, Page, PageLimits, _open_pdf, check_pdf_time, pdf_pages, read_pdf_page
from .pdf_guard import ContentGuard
from .workers import WorkerPool

log = logging.getLogger(__name__)

_OPEN: dict[str, tuple[Any, ContentGuard]] = {}  # in the worker: token -> the open PDF and its guard


def _start(memory_mb: int) -> None:
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _open(token: str, data: bytes, limits: PageLimits, drawn: int) -> int:
    doc = _open_pdf(data)
    _OPEN[token] = (doc, ContentGuard(data, limits.max_content_bytes, limits.max_pdf_content_bytes, drawn))
    return len(doc)


def _page(token: str, index: int, limits: PageLimits, always_render: bool) -> tuple[Page, int, float]:
    """The page, the bytes the PDF's pages have drawn so far, and the seconds this page took."""
    start = time.perf_counter()
    doc, guard = _OPEN[token]
    guard.check(index)
    page = read_pdf_page(doc, index, limits, always_render)
    return page, guard.drawn, time.perf_counter() - start


def _close(token: str) -> None:
    entry = _OPEN.pop(token, None)
    if entry is not None:
        entry[0].close()


class PDFReader(WorkerPool):
    """The PDF reader process (started on the first PDF, again after one dies)."""

    def __init__(self, memory_mb: int, page_timeout_s: float) -> None:
        self.memory_mb = memory_mb
        self.page_timeout_s = page_timeout_s
        super().__init__(1, _start, (memory_mb,))

    def pages(self, data: bytes, limits: PageLimits, always_render: bool) -> Iterator[Page]:
        token = uuid.uuid4().hex
        opened: ProcessPoolExecutor | None = None  # the pool whose worker holds this PDF open
        count = index = drawn = 0
        seconds = 0.0  # the worker's time on this PDF's pages: waiting behind other PDFs does not count
        retried = False
        try:
            while True:
                pool = self._executor()
                try:
                    if opened is not pool:
                        count = self._call(pool, _open, token, data, limits, drawn)
                        opened = pool
                    if index >= count:
                        return
                    check_pdf_time(seconds, index, limits)
                    page: Page
                    page, drawn, took = self._call(pool, _page, token, index, limits, always_render)
                except BrokenProcessPool:
                    self._discard(pool)
                    if retried:  # this page killed a fresh worker too: it is the one
                        raise ResourceExhausted(
                            f"PDF page {index + 1} needs more memory than the PDF reader may use "
                            f"({self.memory_mb:,} MiB, setting pdf_worker_memory_mb), or crashed PDFium"
                        ) from None
                    retried, opened = True, None  # maybe another PDF's page killed it: once more, fresh
                    continue
                except FutureTimeout:
                    self._discard(pool, kill=True)
                    raise ResourceExhausted(
                        f"PDF page {index + 1} took over {self.page_timeout_s:,.0f} s to read (setting "
                        "pdf_page_timeout_s); its reader process was stopped"
                    ) from None
                retried = False
                seconds += took
                PAGES_READ.inc()
                yield page
                index += 1
        finally:
            if opened is not None and opened is self._pool:
                try:
                    opened.submit(_close, token)  # no wait: the worker closes it between pages
                except (BrokenProcessPool, RuntimeError):
                    pass  # gone or shut down: the PDF went with it

    def _call(self, pool: ProcessPoolExecutor, fn: Any, *args: Any) -> Any:
        try:
            future: Future[Any] = pool.submit(fn, *args)
        except RuntimeError as exc:  # shut down meanwhile (server stopping, or another page's discard)
            raise BrokenProcessPool(str(exc)) from exc
        try:
            return future.result(timeout=self.page_timeout_s)
        except CancelledError as exc:  # close() while the page waited
            raise Unavailable("the server is shutting down") from exc


_READERS: dict[tuple[int, float], PDFReader] = {}
_LOCK = threading.Lock()


def pdf_reader(memory_mb: int, page_timeout_s: float) -> PDFReader:
    """The process's reader for these limits (one per server, started on its first PDF)."""
    with _LOCK:
        key = (memory_mb, page_timeout_s)
        if key not in _READERS:
            _READERS[key] = PDFReader(memory_mb, page_timeout_s)
        return _READERS[key]


def close_pdf_readers() -> None:
    """Stops the PDF reader processes (server shutdown); a later PDF starts a new one."""
    with _LOCK:
        readers = list(_READERS.values())
    for reader in readers:
        reader.close()


def read_pdf(data: bytes, limits: PageLimits, always_render: bool = False) -> Iterator[Page]:
    """The PDF's pages (pages.pdf_pages), read in the reader process when `limits.worker_mb` is set."""
    if limits.worker_mb > 0:
        return pdf_reader(limits.worker_mb, limits.page_timeout_s).pages(data, limits, always_render)
    return pdf_pages(data, limits, always_render)
