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

import json
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
#: Points per indexed segment below which a built shard keeps one segment (searching two small
#: graphs in parallel gains little over one).
SEGMENT_POINTS = 50_000
UNBOUNDED_KB = 2**40  # max_segment_size: no limit (also new shards', storage/edge.py MERGE_ALL)
RETRY_S = 60.0  # after a failed build, before trying again


def merge_and_optimize(
    out: str,
    sources: Sequence[str],
    batch: int = 512,
    flush_points: int = 5_000,
    segment_points: int = SEGMENT_POINTS,
    max_segments: int = 0,
) -> None:
    """Runs in the child: upserts every point of the shard copies `sources` into the shard at `out`
    (a copy of the largest source), then builds its indexes in `segments_for` segments (max_segments
    0: one per core). The optimizer merges the copy's segments and the one the upserts made, smallest
    first, down to that number; it never splits one, so a shard keeps at least its largest source's.

    Flushed every `flush_points`: the engine logs every upserted vector uncompressed (~37 KB a point
    here) until a flush, so merging 980k points without one had written 12 GB of log after ~350k of
    them (~34 GB needed); flushing every 5k kept it at 34 MB, as fast.

    Not done: moving the sources' segment folders into `out` and letting the optimizer merge them
    (~5x faster, no point through Python). Loading `out` replays the tail of its own log onto every
    segment whose version is lower, and the moved segments' versions count in another shard's
    numbers: a delete logged in one shard then removed a newer point of another (a review found it)."""
    max_segments = max_segments or os.cpu_count() or 1
    shard = qe.EdgeShard.load(out)
    # Segments holding points: a built shard also keeps an empty appendable one.
    kept = max(1, shard.info().segments_count - 1)
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
    shard.flush()
    segments = segments_for(shard.info().points_count, segment_points, max_segments)
    shard.close()
    _set_segments(out, segments, kept)
    shard = qe.EdgeShard.load(out)
    shard.optimize()
    shard.flush()
    shard.close()


def segments_for(points: int, segment_points: int, max_segments: int) -> int:
    """The indexed segments a built shard keeps: one per `segment_points`, at most `max_segments`
    (the cores), at least one."""
    return max(1, min(max_segments, points // max(1, segment_points)))


def _set_segments(out: str, segments: int, kept: int) -> None:
    """Sets the optimizer of the shard at `out` so that `optimize()` leaves `segments` indexed
    segments, given the `kept` segments of the copy the upserts went into (plus one new segment
    holding them). The engine's optimizer never splits a segment; it folds the new one into the
    smallest unless their sum is over `max_segment_size`, and merges the smallest while there are
    more than `default_segment_number`. So: room for a segment more (kept < segments) is a size
    limit nothing fits under (each segment is indexed alone); otherwise no size limit and the
    segment number. Written into the shard's persisted config (edge_config.json, which a load
    without a config keeps): a load with a config must restate every vector, which this child
    does not know.

    Why several: the engine searches a shard's segments in parallel on its own threads while the
    call holds the GIL, so one search of a shard in two segments uses both cores. Measured on 100k
    of the 1M bench's vectors (2 cores, under load): dense recall@10 at ef 128 0.868 in one graph,
    0.901 in two of 50k (ef 256: 0.937 -> 0.974), at about the latency of one graph when a core is
    free (1.2-1.6 ms idle; 2.3-2.6 ms on one thread); merging 50k + 50k took 104 s instead of 215 s."""
    path = os.path.join(out, "edge_config.json")
    if not os.path.exists(path):  # a shard with no persisted config: the engine's defaults apply
        return
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    optimizers = config.get("optimizers") or {}
    # The number counts the empty appendable segment the engine keeps in every shard.
    size = 1 if kept < segments else UNBOUNDED_KB
    optimizers.update(default_segment_number=segments + 1, max_segment_size=size)
    config["optimizers"] = optimizers
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(config, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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
