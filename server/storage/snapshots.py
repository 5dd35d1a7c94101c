"""Snapshots of embedded collections: a consistent copy of a collection's folder beside the data.

data_dir/snapshots/<collection>/<name>/   spec.json, manifest.json, shards/<id>/ (flushed, sparse copies)

A snapshot is taken while no write, seal or index swap runs in the collection (storage/sharded.py
`snapshot`); its folder appears only once complete. Restoring copies it to a staging folder, then
swaps it in for the collection under the store's lock; the replaced folder is kept until the new
one is open, so a crash midway leaves it in data_dir/snapshots/.replaced/ rather than lost, and the
next start (`recover`) finishes or undoes that restore.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from ..errors import InvalidArgument, NotFound
from .base import SnapshotInfo

log = logging.getLogger("mmsearch.storage")

_NAME = re.compile(r"^\d{8}T\d{12}Z$")


class SnapshotFolder:
    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "snapshots"

    def _folder(self, collection: str) -> Path:
        if not collection or "/" in collection or collection.startswith("."):
            raise InvalidArgument(f"{collection!r} is not a collection name")
        return self.root / collection

    def new(self, collection: str) -> Path:
        """Where the next snapshot of `collection` goes (its name: the UTC time, to the microsecond)."""
        folder = self._folder(collection)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")

    def info(self, collection: str, path: Path) -> SnapshotInfo:
        return SnapshotInfo(collection, path.name, disk_bytes(path))

    def list(self, collection: str) -> list[SnapshotInfo]:
        folder = self._folder(collection)
        found = sorted(p for p in folder.glob("*") if _NAME.match(p.name)) if folder.is_dir() else []
        return [self.info(collection, p) for p in found]

    def find(self, collection: str, name: str) -> Path:
        if not _NAME.match(name or ""):
            raise InvalidArgument(f"{name!r} is not a snapshot name (they look like 20260101T120000123456Z)")
        path = self._folder(collection) / name
        if not (path / "spec.json").is_file():
            raise NotFound(f"collection {collection!r} has no snapshot {name!r}")
        return path

    def stage(self, collection: str, source: Path) -> Path:
        """A copy of the snapshot to swap in (the same filesystem as the data: renames are atomic)."""
        staging = self.root / ".staging" / collection
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "--sparse=always", "-r", str(source), str(staging)], check=True)
        return staging

    def set_aside(self, folder: Path) -> Path:
        aside = self.root / ".replaced" / folder.name
        shutil.rmtree(aside, ignore_errors=True)
        aside.parent.mkdir(parents=True, exist_ok=True)
        folder.rename(aside)
        return aside

    def recover(self, collections: Path) -> None:
        """At start, after a crash during a restore: a collection whose folder is missing gets its
        set-aside folder back (the restore did not happen); one whose restored folder is in place had
        its restore done, and the set-aside copy goes. Half-made staging copies go too."""
        aside_root = self.root / ".replaced"
        for aside in sorted(aside_root.glob("*")) if aside_root.is_dir() else []:
            target = collections / aside.name
            if (target / "spec.json").is_file():
                log.info("collection %s: a restore finished before a crash; removing the replaced copy", aside.name)
                shutil.rmtree(aside, ignore_errors=True)
            else:
                log.warning("collection %s: a restore was cut short by a crash; the collection is back as before it",
                            aside.name)  # fmt: skip
                shutil.rmtree(target, ignore_errors=True)  # an empty or partial folder, if any
                aside.rename(target)
        shutil.rmtree(self.root / ".staging", ignore_errors=True)


def disk_bytes(root: Path) -> int:
    """Bytes the files under `root` take on disk (allocated blocks): the engine pre-allocates its
    write-ahead log segments as 32 MiB sparse files, whose apparent size counted 3 x 32 MiB per
    shard. Files removed during the walk (a build's copy, a shard being replaced) are skipped."""
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            try:
                total += os.stat(os.path.join(folder, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total
