"""What the server's worker processes share (OCR: ocr_pool.py, PDF pages: pdf_worker.py): they watch
their parent, and a pool is stopped at once, killing a hung worker."""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor


def watch_parent() -> None:
    """In a worker: exits the process when the server is gone, however it ended (kill -9 too), because
    the pool's pipes would otherwise keep the worker waiting."""

    def watch() -> None:
        parent = multiprocessing.parent_process()
        if parent is not None:
            parent.join()
            os._exit(0)

    threading.Thread(target=watch, name="worker-parent-watch", daemon=True).start()


def spawn_pool(workers: int, initializer, initargs: tuple) -> ProcessPoolExecutor:  # type: ignore[no-untyped-def]
    # spawn, not fork: the server has threads (gRPC, torch) that a forked child would inherit mid-lock.
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=initializer, initargs=initargs
    )


def stop_pool(pool: ProcessPoolExecutor, kill: bool) -> None:
    """Shuts `pool` down. kill: its processes first (a hung worker, or shutdown, where work in flight
    is abandoned), after which the pool's own manager thread finds them dead and cleans up at once."""
    if kill:
        for p in list((getattr(pool, "_processes", None) or {}).values()):  # no public API for this
            if p.is_alive():
                p.kill()
    pool.shutdown(wait=kill, cancel_futures=True)


class WorkerPool:
    """A pool of `workers` spawned processes, started on first use and again after it breaks."""

    def __init__(self, workers: int, initializer, initargs: tuple) -> None:  # type: ignore[no-untyped-def]
        self.workers = workers
        self._init = (initializer, initargs)
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = spawn_pool(self.workers, *self._init)
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor, kill: bool = False) -> None:
        """Forgets `pool` (once, however many callers saw it fail) so the next call starts a new one."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        stop_pool(pool, kill)

    def close(self) -> None:
        """Stops the workers now: queued work is cancelled, work in flight is abandoned."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            stop_pool(pool, kill=True)
