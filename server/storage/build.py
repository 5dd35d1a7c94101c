"""Index builds in a child process, one at a time per server.

qdrant-edge's `optimize()` (the HNSW build) holds the GIL for its whole run, about a minute per 60k
points, so it runs in a child: `python -m mmsearch.server.storage.build PARENT OUT [SOURCE...]` loads
the shard at OUT (a copy of the largest source shard), upserts every point of the other SOURCE
copies into it (`merge_and_optimize`), optimises, flushes and exits. The child runs at low priority
(nice 10) and dies with the server (PR_SET_PDEATHSIG). The parent then swaps OUT in for the sources
(ShardedCollection.replace). Loading OUT in the parent still holds the GIL, the one stall a build
leaves (docs/benchmarks.md has its length per shard size).

This module's child side imports only qdrant_edge and the standard library.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import qdrant_edge as qe

from .shard import timed

if TYPE_CHECKING:
    from .shard import Shard
    from .sharded import ShardedCollection

log = logging.getLogger("mmsearch.storage")

NICE = 10
RETRY_S = 60.0  # after a failed build, before trying again


def merge_and_optimize(out: str, sources: Sequence[str], batch: int = 512, flush_points: int = 5_000) -> None:
    """Runs in the child: upserts every point of the shard copies `sources` into the shard at `out`
    (a copy of the largest source), then builds its indexes.

    Flushed every `flush_points`: the engine logs every upserted vector uncompressed (~37 KB a point
    here) until a flush, so merging 980k points without one had written 12 GB of log after ~350k of
    them (~34 GB needed); flushing every 5k kept it at 34 MB, as fast.

    Not done: moving the sources' segment folders into `out` and letting the optimizer merge them
    (~5x faster, no point through Python). Loading `out` replays the tail of its own log onto every
    segment whose version is lower, and the moved segments' versions count in another shard's
    numbers: a delete logged in one shard then removed a newer point of another (a review found it)."""
    shard = qe.EdgeShard.load(out)
    moved = 0
    for src in sources:
        other = qe.EdgeShard.load(src)
        offset = None
        while True:
            req = qe.ScrollRequest(offset=offset, limit=batch, with_payload=True, with_vector=True)
            records, offset = other.scroll(req)
            if records:
                shard.update(
                    qe.UpdateOperation.upsert_points([qe.Point(r.id, r.vector or {}, r.payload) for r in records])
                )
                moved += len(records)
                if moved >= flush_points:
                    shard.flush()
                    moved = 0
            if offset is None:
                break
        other.close()
    shard.optimize()
    shard.flush()
    shard.close()


def _die_with_parent(parent: int) -> None:
    """Linux: the child gets SIGKILL when the server dies, so no orphan writes into a folder the
    next start deletes."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl
        sys.exit(1)


def main(argv: list[str]) -> int:
    parent, out, *sources = argv
    _die_with_parent(int(parent))
    os.nice(NICE)
    merge_and_optimize(out, sources)
    return 0


class IndexBuilder:
    """The server's one build thread: picks the next shards to index (`plan_build`), copies them,
    runs the child, swaps the result in."""

    def __init__(self, collections: Callable[[], list[ShardedCollection]], max_points: int) -> None:
        self._collections = collections
        self._max_points = max_points
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._child: tuple[ShardedCollection, subprocess.Popen[bytes]] | None = None
        self._failed_at: dict[str, float] = {}  # collection -> when its last build failed
        self._thread = threading.Thread(target=self._run, name="index-build", daemon=True)
        self._thread.start()

    @property
    def child_pid(self) -> int | None:
        """The running build's process id (tests kill it)."""
        with self._lock:
            return self._child[1].pid if self._child else None

    def wake(self) -> None:
        self._wake.set()

    def cancel(self, collection: ShardedCollection) -> None:
        """Stops the build of a collection being dropped."""
        with self._lock:
            if self._child and self._child[0] is collection:
                self._child[1].kill()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        with self._lock:
            if self._child:
                self._child[1].kill()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopped.is_set():
            job = self._next()
            if job is None:
                self._wake.wait(RETRY_S / 4)
                self._wake.clear()
                continue
            try:
                self._build(*job)
            except Exception:
                if not job[0].closed:  # else the collection was dropped: its build was cancelled
                    log.exception("index build of collection %s failed", job[0].spec.name)
                    self._failed_at[job[0].spec.name] = time.monotonic()

    def _next(self) -> tuple[ShardedCollection, list[Shard]] | None:
        for col in self._collections():
            if time.monotonic() - self._failed_at.get(col.spec.name, -RETRY_S) < RETRY_S:
                continue
            try:
                sources = col.plan_build(self._max_points)
            except Exception:  # dropped meanwhile
                continue
            if sources:
                return col, sources
        return None

    def _build(self, col: ShardedCollection, sources: list[Shard]) -> None:
        sid = col.new_shard_id()
        out = col.folder / "shards" / sid
        extra = col.folder / "shards" / f"{sid}.sources"  # not in the manifest: deleted on start if left
        started = time.monotonic()
        swapped = False
        try:
            sources = sorted(sources, key=lambda s: -s.count())  # the fewest points to move
            sources[0].copy_for_build(out)
            extra.mkdir()
            for i, source in enumerate(sources[1:]):
                source.copy_for_build(extra / str(i))
            cmd = [sys.executable, "-m", __name__, str(os.getpid()), str(out)]
            cmd += [str(extra / str(i)) for i in range(len(sources) - 1)]
            with self._lock:
                if self._stopped.is_set() or col.closed:
                    return
                proc = subprocess.Popen(cmd)
                self._child = (col, proc)
            rc = proc.wait()
            with self._lock:
                self._child = None
            if rc != 0:
                raise RuntimeError(f"the build process exited with {rc}")
            with timed(f"loading built shard {sid}"):
                engine = qe.EdgeShard.load(str(out))  # holds the GIL: the one stall of a build
            swapped = col.replace(sources, sid, engine)
            if not swapped:  # dropped meanwhile
                engine.close()
                return
            log.info(
                "collection %s: shards %s indexed into %s in %.1f s",
                col.spec.name,
                ",".join(s.id for s in sources),
                sid,
                time.monotonic() - started,
            )
        finally:
            for source in sources:
                source.changes = None
            shutil.rmtree(extra, ignore_errors=True)
            if not swapped:
                shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
