"""Disk full: on a small tmpfs the test mounts, writes are refused with RESOURCE_EXHAUSTED once free
space drops below the reserve, searches go on, nothing stored is lost, and ingest resumes once space
is freed. (The engine memory-maps its files: a write into a full filesystem would kill the process
with SIGBUS, so the store refuses writes ahead of that.)"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from mmsearch.client import Client, MMSearchError

from .documents import text_item
from .test_cli import Server

pytestmark = pytest.mark.slow
#: Opening a shard makes the engine write ~50 MB of segment files on tmpfs (measured), so the disk and
#: the reserve are sized for a restart, not only for writes.
RESERVE_MB = 80


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 192 MB tmpfs: a fresh shard takes ~15 MB, and ~50 MB more each time it is opened."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=192m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path, leave_mb: float) -> Path:
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with open(filler, "wb") as f:
        f.write(b"\0" * int(free - leave_mb * 2**20))
    return filler


def test_full_disk_refuses_writes_keeps_searching_and_recovers(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MMSEARCH_MIN_FREE_DISK_MB", str(RESERVE_MB))
    server = Server(small_disk / "data")
    server.start()
    try:
        with Client(server.addr, retries=0, timeout=30) as c:
            c.create_collection("c")
            acks = list(c.ingest("c", [text_item("owls", "owls hunt at night"), text_item("trout", "trout swim")]))
            assert [a.ok for a in acks] == [True, True]
            filler = _fill(small_disk, leave_mb=RESERVE_MB - 10)

            acks = list(c.ingest("c", [text_item("cats", "cats purr"), text_item("owls", "owls, new version")]))
            assert [a.error_code for a in acks] == ["RESOURCE_EXHAUSTED"] * 2
            assert "min_free_disk_mb" in acks[0].error
            with pytest.raises(MMSearchError) as refused:
                c.create_collection("other")
            assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            # searches go on, and see the stored documents as they were
            hits = c.search("c", "owls hunt at night", top_k=5).results
            assert hits[0].document_id == "owls" and hits[0].snippet == "owls hunt at night"
            assert {r.document_id for r in hits} == {"owls", "trout"}
            assert c.health(timeout=2) == "SERVING"

            filler.unlink()  # space is back: ingest resumes
            acks = list(c.ingest("c", [text_item("cats", "cats purr"), text_item("owls", "owls, new version")]))
            assert [a.ok for a in acks] == [True, True]
        assert server.stop() == 0
        server.start()  # nothing stored was damaged
        with Client(server.addr, retries=0, timeout=30) as c:
            hits = c.search("c", "owls new version", top_k=5).results
            assert {r.document_id for r in hits} == {"owls", "trout", "cats"}
            assert next(r.snippet for r in hits if r.document_id == "owls") == "owls, new version"
    finally:
        if server.proc and server.proc.poll() is None:
            server.stop(signal.SIGKILL)
