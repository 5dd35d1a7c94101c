"""`mmsearch bench --pdf-pages`: one long PDF ingested as one document, and the server's resident
memory while it is (a PDF is read page by page, so memory must not grow with its page count)."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from types import TracebackType

from ..client import Client


def long_pdf(pdfs: list[Path], pages: int) -> bytes:
    """A PDF of `pages` pages, cycling through the pages of `pdfs`."""
    import pypdfium2 as pdfium

    sources = [pdfium.PdfDocument(str(f)) for f in pdfs]
    out = pdfium.PdfDocument.new()
    k = 0
    while len(out) < pages:
        src = sources[k % len(sources)]
        out.import_pages(src, list(range(min(len(src), pages - len(out)))))
        k += 1
    buf = io.BytesIO()
    out.save(buf)
    return buf.getvalue()


class ServerMemory:
    """Samples the server's resident memory (GetInfo) every `interval` seconds while in the block:
    `before` is the value on entry, `peak` the largest seen (on entry, in between and on exit)."""

    def __init__(self, client: Client, interval: float = 0.2) -> None:
        self.client = client
        self.interval = interval
        self.before = self.peak = self.anonymous_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-memory", daemon=True)

    def _sample(self) -> None:
        info = self.client.info()
        self.peak = max(self.peak, info.resident_memory_bytes)
        self.anonymous_peak = max(self.anonymous_peak, info.anonymous_memory_bytes)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> ServerMemory:
        self._sample()
        self.before = self.peak
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
