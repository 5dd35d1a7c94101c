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
