"""manifest.json: which shard folders make up a collection, and in which state. It is the truth on
start: a shard folder it does not name (a build or copy cut short by a crash, or a source left
behind after a swap) is deleted.

data_dir/collections/<name>/spec.json       the CollectionSpec
data_dir/collections/<name>/manifest.json   {"next_id": 7, "shards": [{"id": "000003", "state": "indexed"}, ...]}
data_dir/collections/<name>/shards/<id>/    one Qdrant shard (WAL + segments)

A collection written before shards existed has one folder `shard/` and no manifest: it becomes one
sealed shard (indexed in the background like any other).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .shard import SEALED

log = logging.getLogger("mmsearch.storage")

LEGACY = "shard"  # the single shard of a collection from before manifests


@dataclass
class ShardEntry:
    id: str
    state: str


@dataclass
class Manifest:
    next_id: int = 1
    shards: list[ShardEntry] = field(default_factory=list)

    def new_id(self) -> str:
        sid = f"{self.next_id:06d}"
        self.next_id += 1
        return sid


def shard_path(folder: Path, sid: str) -> Path:
    return folder / LEGACY if sid == LEGACY else folder / "shards" / sid


def save(folder: Path, manifest: Manifest) -> None:
    """Replaces manifest.json atomically and durably: a crash leaves the old one or the new one."""
    write_durably(folder / "manifest.json", json.dumps(asdict(manifest)))


def write_durably(path: Path, text: str) -> None:
    """Replaces `path` atomically and durably (tmp + fsync + rename + fsync of the folder)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself
    finally:
        os.close(fd)


def load(folder: Path) -> Manifest:
    """The collection's manifest (migrating a single-shard collection), after deleting the shard
    folders it does not name."""
    path = folder / "manifest.json"
    if path.exists():
        raw = json.loads(path.read_text())
        manifest = Manifest(raw["next_id"], [ShardEntry(**e) for e in raw["shards"]])
    else:
        manifest = Manifest()
        if (folder / LEGACY).is_dir():
            log.info("collection %s: migrating its single shard %s to a sealed shard", folder.name, folder / LEGACY)
            manifest.shards.append(ShardEntry(LEGACY, SEALED))
        save(folder, manifest)
    (folder / "shards").mkdir(exist_ok=True)
    known = {shard_path(folder, e.id) for e in manifest.shards}
    strays = [p for p in (folder / "shards").glob("*") if p not in known]
    if (folder / LEGACY).exists() and (folder / LEGACY) not in known:
        strays.append(folder / LEGACY)
    for stray in sorted(strays):
        log.warning("collection %s: deleting %s, a shard folder manifest.json does not name", folder.name, stray)
        if stray.is_dir():
            shutil.rmtree(stray)
        else:
            stray.unlink()
    return manifest
