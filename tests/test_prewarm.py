"""A restarted embedded store reads its shard files into the page cache in the background (storage/prewarm.py):
every file once, none when they would not fit in half the available memory, nothing after close."""

import threading
import time
from pathlib import Path

from mmsearch.server.settings import Settings
from mmsearch.server.storage.edge import EdgeStore, ShardOptions
from mmsearch.server.storage.prewarm import prewarm, shard_files

from .test_storage import _points, _spec


def _filled(data: Path) -> None:
    """Two collections, one of them with a sealed shard beside its active one."""
    store = EdgeStore(data, shards=ShardOptions(seal_points=30, index_build=False))
    for name in ("a", "b"):
        store.create_collection(_spec(name))
    points = _points(40)
    store.upsert("a", points[:30])  # sealed: the next write opens a new shard
    store.upsert("a", points[30:])
    store.upsert("b", points)
    store.close()


def test_a_restarted_store_reads_every_shard_file_once_in_the_background(tmp_path: Path) -> None:
    _filled(tmp_path)
    files = shard_files(tmp_path / "collections")
    shards = {p.relative_to(tmp_path / "collections").parts[:3] for p, _ in files}
    assert {s[0] for s in shards} == {"a", "b"} and len(
        shards
    ) == 3  # a: a sealed shard and the active one; b: one sealed
    store = EdgeStore(tmp_path, shards=ShardOptions(index_build=False), prewarm=True)
    try:
        deadline = time.monotonic() + 30
        while store.prewarmed is None and time.monotonic() < deadline:
            time.sleep(0.05)
        done = store.prewarmed
        assert done is not None and not done.skipped
        # (opening a shard consumes some journal files: the files once the store is open are the ones read)
        assert done.files == len(shard_files(tmp_path / "collections")) and done.bytes > 0
        assert store.count("a") == 40 and store.count("b") == 40  # serving meanwhile and after
    finally:
        store.close()
    assert Settings().prewarm  # on by default in a server; tests' stores leave it off


def test_prewarm_reads_nothing_when_the_files_would_not_fit_or_the_store_is_closing(tmp_path: Path) -> None:
    _filled(tmp_path)
    root = tmp_path / "collections"
    total = sum(n for _, n in shard_files(root))
    tight = prewarm(root, threading.Event(), available=lambda: total)  # half of it is the budget
    assert tight.files == 0 and tight.bytes == 0 and "more than half the available memory" in tight.skipped
    stopping = threading.Event()
    stopping.set()
    assert prewarm(root, stopping, available=lambda: 4 * total).files == 0
    files = shard_files(root)
    read = prewarm(root, threading.Event(), available=lambda: 2 * total)
    assert read.files == len(files) and not any("wal" in p.parts for p, _ in files)
    # Holes are skipped: the engine's sparse files hold far less than their size.
    assert 0 < read.bytes <= total < sum(p.stat().st_size for p, _ in files) / 4
    empty = EdgeStore(tmp_path / "empty", prewarm=True)  # no collection: no thread
    assert empty.prewarmed is None and "edge-prewarm" not in {t.name for t in threading.enumerate()}
    empty.close()
