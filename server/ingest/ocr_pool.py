"""rapidocr in worker processes: pages are read in parallel, outside the server process.

ONNX Runtime releases the GIL while a model runs, but rapidocr's crop, resize and decode steps and the
server's own threads (gRPC, encoders) do not; separate processes also keep the OCR models' ~600-800 MB
per engine out of the server's heap, and a crash in native code kills a worker, not the server.

- One engine per worker, loaded once by the worker's initializer, one ONNX thread each: `workers`
  pages are read at a time on `workers` cores.
- Cancel: the caller stops submitting pages (PointBuilder checks its cancel event before each page);
  a page already in a worker finishes (a few CPU seconds) and its result is dropped.
- A worker that dies (killed, out of memory, a native crash) fails the pages it had with OCRFailed
  naming the cause, and the next page starts a fresh pool; a page that takes longer than
  `page_timeout_s` does the same, so nothing waits forever.
- Workers exit with the server: close() at shutdown, and each worker also watches its parent and
  exits when it disappears (kill -9), because the pool's pipes would otherwise keep it waiting.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np
from PIL import Image

from .pages import Word
from .workers import WorkerPool

log = logging.getLogger(__name__)


class OCRFailed(RuntimeError):
    """The OCR worker could not read a page (it died or ran past the page timeout)."""


_ENGINE: Any = None  # the worker process's engine


def _start_worker(engine: Callable[[], Any]) -> None:
    global _ENGINE
    _ENGINE = engine()


def _read(pixels: np.ndarray) -> tuple[list[tuple[str, tuple[float, float, float, float]]], str]:
    """The page's words (plain tuples: cheap to pickle) and what read them."""
    read_page = importlib.import_module("mmsearch.server.ingest.ocr").read_page  # see _default_engine
    words, reader = read_page(_ENGINE, Image.fromarray(pixels))
    return [(w.text, w.box) for w in words], reader


def _default_engine() -> Any:
    module = importlib.import_module("mmsearch.server.ingest.ocr")  # in the worker: no import cycle here
    return module.RapidOCREngine()


class OCRPool(WorkerPool):
    """An OCREngine whose pages are read by rapidocr in `workers` spawned processes."""

    name = "rapidocr"

    def __init__(self, workers: int, engine: Callable[[], Any] | None = None, page_timeout_s: float = 300.0) -> None:
        """engine: makes the worker's engine (picklable, e.g. a partial of RapidOCREngine; by reference,
        so that this module does not import ocr.py, which imports it); default rapidocr on the CPU."""
        self.engine = engine or _default_engine
        self.page_timeout_s = page_timeout_s
        super().__init__(workers, _start_worker, (self.engine,))

    def words(self, image: Image.Image) -> list[Word]:
        return self.read(image)[0]

    def read(self, image: Image.Image) -> tuple[list[Word], str]:
        """The page's words and what read them (the worker engine's `read`: its models)."""
        pool = self._executor()
        try:
            future: Future[Any] = pool.submit(_read, np.asarray(image.convert("RGB")))
        except (BrokenProcessPool, RuntimeError) as exc:  # broken, or closed by shutdown meanwhile
            self._discard(pool)
            raise OCRFailed(f"the OCR worker pool is not running ({exc}); the next page starts a new one") from exc
        try:
            words, reader = future.result(timeout=self.page_timeout_s)
            return [Word(text, box) for text, box in words], reader
        except BrokenProcessPool as exc:
            self._discard(pool)
            raise OCRFailed(
                "the OCR worker process died while reading this page (killed, out of memory or a crash in "
                "the OCR engine); the next page starts a new worker"
            ) from exc
        except CancelledError as exc:  # close() while the page waited
            raise OCRFailed("OCR stopped: the server is shutting down") from exc
        except FutureTimeout as exc:
            self._discard(pool, kill=True)
            raise OCRFailed(f"OCR took over {self.page_timeout_s:.0f} s on this page; its worker was stopped") from exc
