"""What the server's worker processes share (OCR: ocr_pool.py, PDF pages: pdf_worker.py): a pool of
spawned processes started on first use and again after it breaks; each worker watches its parent, and
a pool is stopped at once, killing a hung worker."""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def _watch_parent() -> None:
    """Exits the worker when the server is gone, however it ended (kill -9 too), because the pool's
    pipes would otherwise keep the worker waiting."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        parent.join()
        os._exit(0)


def _start_worker(initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
    threading.Thread(target=_watch_parent, name="worker-parent-watch", daemon=True).start()
    initializer(*initargs)


def _stop(pool: ProcessPoolExecutor, kill: bool) -> None:
    """Shuts `pool` down. kill: its processes first (a hung worker, or shutdown, where work in flight
    is abandoned), after which the pool's own manager thread finds them dead and cleans up at once."""
    if kill:
        for p in list((getattr(pool, "_processes", None) or {}).values()):  # no public API for this
            if p.is_alive():
                p.kill()
    pool.shutdown(wait=kill, cancel_futures=True)


class WorkerPool:
    """A pool of `workers` spawned processes, each set up by `initializer(*initargs)`."""

    def __init__(self, workers: int, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
        self.workers = workers
        self._init = (initializer, initargs)
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the server has threads (gRPC, torch) that a forked child would
                # inherit mid-lock.
                self._pool = ProcessPoolExecutor(
                    self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                    initargs=self._init,
                )
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor, kill: bool = False) -> None:
        """Forgets `pool` (once, however many callers saw it fail) so the next call starts a new one."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        _stop(pool, kill)

    def close(self) -> None:
        """Stops the workers now: queued work is cancelled, work in flight is abandoned."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            _stop(pool, kill=True)
