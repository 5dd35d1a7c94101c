"""Reads the shard files of a data directory into the OS page cache after a start, in the background.

Why: the engine memory-maps its vectors, graphs and payload indexes, so a restarted server reads
them from disk on the queries that touch them. Measured at 1M passages (5.5 GB of shard files,
docs/benchmarks.md): with the page cache dropped, the first 100 searches took 53 ms p50 (p99 228 ms)
and the next 300 21.5 ms, against 16.4 ms once every file had been read; with this (5.3 GiB read in
10.8 s, health answering within 6 ms meanwhile) the first 100 took 18.2 ms. Reading the files
sequentially first costs one pass at disk speed, in a thread that holds no lock and releases the
GIL during every read; it is skipped when the files would not fit in half the available memory
(reading them would only evict each other, and the rest of the machine's cache)."""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from .manifest import LEGACY

log = logging.getLogger("mmsearch.storage")
CHUNK = 8 << 20


@dataclass
class Prewarmed:
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    skipped: str = ""  # why nothing was read, if so


def shard_files(root: Path) -> list[tuple[Path, int]]:
    """The files of the collections' shards that searches read (not the write-ahead logs), with the
    bytes each holds on disk (the engine's files are sparse: a few MB of data in a 32 MB file is
    common), largest first: the indexed shards'."""
    found = []
    for path in (*root.glob("*/shards/**/*"), *root.glob(f"*/{LEGACY}/**/*")):
        try:
            if path.is_file() and "wal" not in path.parts:
                found.append((path, path.stat().st_blocks * 512))
        except OSError:  # removed meanwhile (a swap, a drop)
            continue
    return sorted(found, key=lambda f: -f[1])


def prewarm(
    root: Path, stop: threading.Event, available: Callable[[], int] = lambda: psutil.virtual_memory().available
) -> Prewarmed:  # fmt: skip
    """Reads the data of every shard file under `root` once (holes skipped), unless the files hold
    more than half of `available()` bytes; stops early when `stop` is set. Files removed meanwhile
    are skipped."""
    t0 = time.monotonic()
    files = shard_files(root)
    total = sum(n for _, n in files)
    budget = available() // 2
    if total > budget:
        out = Prewarmed(skipped=f"{total / 2**30:.1f} GiB of shard files, more than half the available memory")
        log.info("prewarm skipped: %s (%.1f GiB)", out.skipped, available() / 2**30)
        return out
    out = Prewarmed()
    buf = bytearray(CHUNK)
    for path, _ in files:
        if stop.is_set():
            break
        try:
            out.bytes += _read_data(path, buf, stop)
            out.files += 1
        except OSError:  # removed or replaced since it was listed
            continue
    out.seconds = time.monotonic() - t0
    log.info("prewarm: read %d shard files, %.2f GiB, in %.1f s", out.files, out.bytes / 2**30, out.seconds)
    return out


def _read_data(path: Path, buf: bytearray, stop: threading.Event) -> int:
    """Reads the file's data extents (SEEK_DATA / SEEK_HOLE), returns the bytes read."""
    done = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        pos = 0
        while not stop.is_set():
            try:
                pos = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no data after pos
                    break
                raise
            end = os.lseek(fd, pos, os.SEEK_HOLE)
            while pos < end and not stop.is_set():
                n = os.preadv(fd, [memoryview(buf)[: min(CHUNK, end - pos)]], pos)
                if not n:
                    return done
                pos += n
                done += n
    finally:
        os.close(fd)
    return done
