"""Every call of a loaded model runs on that model's own thread (`Worker`); an encoder's concurrent
queries share one call (`EncoderThread`).

Why one thread: torch's intra-op pool is OpenMP, and OpenMP gives each calling thread its own team of
workers, which spin for a while after each operation. Encodes from several threads (gRPC workers
searching, an ingest stream) made several teams fight over the cores: on 2 cores a query encoded
twice as slowly while another thread encoded. One thread per encoder keeps one team.

Why batch queries: a search encodes one short query, and on a CPU a small model's forward pass costs
almost as much for one query as for several (per-call and per-layer overheads, idle cores). Query
calls that are waiting together go to the encoder as one call (a lone query goes straight through,
without any added wait), and they go before waiting document batches, so searches stay quick during
a long ingest.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from .base import Encoded, Encoder

if TYPE_CHECKING:
    from PIL.Image import Image

T = TypeVar("T")


class Worker:
    """One dedicated thread that runs the calls handed to it, one at a time, in order (see above for
    why a model gets one). Subclasses with more queues override `_has_work` and `_take`, and create
    those queues before calling this constructor, which starts the thread."""

    def __init__(self, name: str) -> None:
        self._jobs: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._wake = threading.Condition()
        self._running = False
        self.closed = False
        threading.Thread(target=self._run, name=name, daemon=True).start()

    @property
    def busy(self) -> bool:
        """Running a call or holding calls that wait."""
        with self._wake:
            return self._running or self._has_work()

    def close(self) -> None:
        """The thread ends once the calls it holds are done. A call made after closing runs on the
        caller's thread (a caller that took the encoder just before it was evicted still gets its answer)."""
        with self._wake:
            self.closed = True
            self._wake.notify()

    def call(self, fn: Callable[[], T]) -> T:
        """Runs `fn` on the worker's thread; returns its result or raises its exception."""
        return self.submit(fn).result()

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Queues `fn` on the worker's thread without waiting for it: a caller that has the next
        piece of work ready before this one is done keeps the model busy (ingest queues its next
        batch of pages while it turns the last one into points). A closed worker runs it here, now."""
        future: Future[T] = Future()
        with self._wake:
            inline = self.closed
            if not inline:
                self._jobs.append((fn, future))
                self._wake.notify()
        if inline:
            _settle(future, fn)
        return future

    def _has_work(self) -> bool:
        return bool(self._jobs)

    def _take(self) -> Callable[[], None]:
        """Called holding the lock, with work waiting: the next piece, which settles its futures."""
        fn, future = self._jobs.popleft()
        return lambda: _settle(future, fn)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._has_work():
                    if self.closed:
                        return
                    self._wake.wait()
                work = self._take()
                self._running = True
            try:
                work()
            finally:
                with self._wake:
                    self._running = False


class EncoderThread(Worker, Encoder):
    """An Encoder whose calls all run on one dedicated thread; `as_query` text calls waiting at the
    same time are merged into one call of at most `max_query_batch` texts."""

    def __init__(self, encoder: Encoder, max_query_batch: int = 32, max_query_streak: int = 4) -> None:
        """max_query_streak: query calls in a row while a document batch waits, before it gets its turn."""
        self.inner = encoder
        self.max_query_streak = max_query_streak
        self._streak = 0
        self.kind, self.model, self.dim = encoder.kind, encoder.model, encoder.dim
        self.capabilities, self.max_tokens = encoder.capabilities, encoder.max_tokens
        self.max_query_batch = max_query_batch
        self._queries: deque[tuple[list[str], Future[list[Encoded]]]] = deque()
        super().__init__(f"encoder-{encoder.kind}")

    def encode_texts(self, texts: Sequence[str], *, as_query: bool) -> list[Encoded]:
        if not texts:
            return []
        if not as_query:
            return self.call(lambda: self.inner.encode_texts(texts, as_query=False))
        future: Future[list[Encoded]] = Future()
        with self._wake:
            inline = self.closed
            if not inline:
                self._queries.append((list(texts), future))
                self._wake.notify()
        return self.inner.encode_texts(texts, as_query=True) if inline else future.result()

    def encode_images(self, images: Sequence[Image]) -> list[Encoded]:
        return self.call(lambda: self.inner.encode_images(images))

    def submit_images(self, images: Sequence[Image]) -> Future[list[Encoded]]:
        """encode_images, queued: its result later (see Worker.submit)."""
        return self.submit(lambda: self.inner.encode_images(images))

    def _has_work(self) -> bool:
        return bool(self._queries) or super()._has_work()

    def _take(self) -> Callable[[], None]:
        # Queries first: a search should not wait for a whole ingest batch. But not always: under a
        # steady search load queries are always waiting, and ingest starved (a soak on 2 cores saw
        # 4-item streams take 190 s), so a waiting document batch goes after `max_query_streak` query calls.
        if not self._queries or (super()._has_work() and self._streak >= self.max_query_streak):
            self._streak = 0
            return super()._take()
        self._streak += 1
        batch = [self._queries.popleft()]
        size = len(batch[0][0])
        while self._queries and size + len(self._queries[0][0]) <= self.max_query_batch:
            batch.append(self._queries.popleft())
            size += len(batch[-1][0])
        return lambda: self._encode_queries(batch)

    def _encode_queries(self, batch: list[tuple[list[str], Future[list[Encoded]]]]) -> None:
        if len(batch) == 1:
            texts, future = batch[0]
            _settle(future, lambda: self.inner.encode_texts(texts, as_query=True))
            return
        try:
            encoded = self.inner.encode_texts([t for texts, _ in batch for t in texts], as_query=True)
        except Exception:
            for one in batch:  # one bad query fails alone
                self._encode_queries([one])
            return
        start = 0
        for texts, future in batch:
            future.set_result(encoded[start : start + len(texts)])
            start += len(texts)


def _settle(future: Future[T], fn: Callable[[], T]) -> None:
    try:
        future.set_result(fn())
    except BaseException as exc:  # handed to the caller, who raises it
        future.set_exception(exc)
