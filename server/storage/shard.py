"""One Qdrant edge shard of a collection, and the calls a collection makes on it.

A shard is closed only once no call is inside it (closing one that a query was inside failed with
"Already borrowed"); a call arriving after that raises `ShardClosed`, which the collection answers
by asking its current shards again (the shard was swapped for an index build's result) or with
NotFound (the collection was dropped).
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import qdrant_edge as qe

#: A shard's life: written (only one per collection), then sealed (flushed, only deletes reach
#: it), then indexed (replaced by a copy whose index a child process built).
ACTIVE, SEALED, INDEXED = "active", "sealed", "indexed"
log = logging.getLogger("mmsearch.storage")


#: Engine calls that hold the GIL longer than this (every request of the process waits) are logged.
SLOW_S = 0.25


@contextmanager
def timed(what: str) -> Iterator[None]:
    """Logs `what` when it took longer than SLOW_S: qdrant-edge holds the GIL in every call, so these
    are the moments the whole server stood still (health checks included)."""
    started = time.monotonic()
    try:
        yield
    finally:
        took = time.monotonic() - started
        if took > SLOW_S:
            log.warning("%s held the engine for %.2f s (every request waited)", what, took)


def presync(folder: Path) -> None:
    """Writes the folder's dirty pages to disk before a flush, outside the engine. The engine's
    flush fsyncs its files while holding the GIL, so it waited for the disk with every thread of
    the server stopped: with an index build copying a shard meanwhile, a flush of 1,000 points took
    0.98 s (median, max 1.21 s); after this (0.9 s, but the GIL released during each fsync) it took
    0.12 s (max 0.36 s). Files removed meanwhile (a swap, a drop) are skipped."""
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                fd = os.open(os.path.join(root, name), os.O_RDONLY)
            except OSError:
                continue
            try:
                os.fsync(fd)
            except OSError:
                pass
            finally:
                os.close(fd)


class ShardClosed(Exception):
    """The shard was closed: swapped out by an index build, or its collection dropped."""


class Shard:
    def __init__(self, sid: str, path: Path, state: str, engine: qe.EdgeShard) -> None:
        self.id = sid
        self.path = path
        self.state = state
        self._engine = engine
        self._write_lock = threading.Lock()  # one writer at a time; never during a flush or a copy
        self._dirty = False  # written since the last flush
        self._calls = 0  # calls inside the engine
        self._idle = threading.Condition()
        self._closed = False
        #: While an index build works on a copy of this shard: the deletes and payload changes
        #: applied since the copy, replayed onto the build's result before it replaces this shard.
        self.changes: list[qe.UpdateOperation] | None = None
        #: False only once a count found no hidden point here (storage/hidden.py):
        #: searches then leave out the visibility condition. True on open, after a crash too.
        self.may_hide = True

    @contextmanager
    def _inside(self) -> Iterator[qe.EdgeShard]:
        with self._idle:
            if self._closed:
                raise ShardClosed(self.id)
            self._calls += 1
        try:
            yield self._engine
        finally:
            with self._idle:
                self._calls -= 1
                self._idle.notify_all()

    def query_batch(self, requests: list[qe.QueryRequest]) -> list[list[qe.ScoredPoint]]:
        with self._inside() as engine:
            return engine.query_batch(qe.QueryBatchRequest(requests))

    def retrieve(self, ids: list[str], with_payload: list[str] | bool, with_vector: list[str] | bool) -> list[Any]:
        with self._inside() as engine:
            return engine.retrieve(ids, with_payload, with_vector)  # type: ignore[arg-type]

    def scroll(self, request: qe.ScrollRequest) -> tuple[list[Any], Any]:
        with self._inside() as engine:
            records, offset = engine.scroll(request)
            return list(records), offset

    def count(self, flt: qe.Filter | None = None) -> int:
        with self._inside() as engine:
            return int(engine.count(qe.CountRequest(exact=True, filter=flt)))

    def upsert(self, points: list[qe.Point]) -> None:
        with self._inside() as engine, self._write_lock:
            engine.update(qe.UpdateOperation.upsert_points(points))
            self._dirty = True

    def delete(self, flt: qe.Filter, only_if_matched: bool = False) -> None:
        """Deletes the points matching `flt`. only_if_matched: skip the write (a WAL record, a flush
        later) when nothing matches, as for a sealed shard that holds none of a document's points."""
        with self._inside() as engine, self._write_lock:
            if only_if_matched and not engine.count(qe.CountRequest(exact=True, filter=flt)):
                return
            self._change(engine, qe.UpdateOperation.delete_points_by_filter(flt))

    def set_payload(self, flt: qe.Filter, payload: dict[str, Any]) -> None:
        """Sets these payload keys on the points matching `flt` (one WAL record: all or none)."""
        with self._inside() as engine, self._write_lock:
            self._change(engine, qe.UpdateOperation.set_payload_by_filter(flt, payload))

    def apply(self, op: qe.UpdateOperation) -> None:
        """Replays a change logged on another shard (see `changes`)."""
        with self._inside() as engine, self._write_lock:
            self._change(engine, op)

    def _change(self, engine: qe.EdgeShard, op: qe.UpdateOperation) -> None:
        engine.update(op)
        self._dirty = True
        if self.changes is not None:
            self.changes.append(op)

    def flush(self, force: bool = False) -> None:
        """Writes out what was written since the last flush (a flush holds the GIL even with nothing
        to write, 0.1-0.3 s on a 50k shard, so clean shards are skipped)."""
        if not (self._dirty or force):
            return
        presync(self.path)
        try:
            with self._inside() as engine, self._write_lock:
                if self._dirty or force:
                    self._dirty = False
                    with timed(f"flushing shard {self.id}"):
                        engine.flush()
        except ShardClosed:
            pass

    def copy_for_build(self, target: Path) -> None:
        """Flushes and copies the shard's folder to `target`, and starts logging deletes. No write
        enters while the copy runs, so the copy is a consistent flushed shard. `cp --sparse=always`:
        Qdrant preallocates 32 MB sparse pages, which shutil.copytree would fill with zeros."""
        with self._inside() as engine, self._write_lock:
            self._copy(engine, target)
            self.changes = []

    def copy_to(self, target: Path) -> None:
        """A consistent flushed copy of the shard at `target` (a snapshot)."""
        with self._inside() as engine, self._write_lock:
            self._copy(engine, target)

    def _copy(self, engine: qe.EdgeShard, target: Path) -> None:
        if self._dirty:
            self._dirty = False
            presync(self.path)
            engine.flush()
        subprocess.run(["cp", "--sparse=always", "-r", str(self.path), str(target)], check=True)

    def close(self, flush: bool) -> None:
        """Waits for the calls inside, then closes the engine; later calls raise ShardClosed."""
        with self._idle:
            if self._closed:
                return
            self._closed = True
            self._idle.wait_for(lambda: self._calls == 0)
        with timed(f"closing shard {self.id}"):
            if flush and self._dirty:
                self._engine.flush()
            self._engine.close()
