"""Portable snapshots of remote collections: every point (id, vectors, payload) read through the
Qdrant API into a file beside the server's data, and written back through it on restore.

data_dir/snapshots/<collection>/<name>/   spec.json, points.jsonl.gz (one point a line)

Qdrant's own snapshot API copies a collection's files on the server (and needs its snapshot folder
reachable for a restore); qdrant-client's local mode, which the tests run on, has none. This path
uses only reads and upserts, so it works on any Qdrant, local or a cluster, and the snapshot lives
with the mmsearch server that took it. Floats are written in JSON's shortest exact form, so the
restored vectors are the stored ones and searches score the same.

Limits: the copy is read a page at a time, not at one instant: take it while no ingest writes the
collection (a document changed meanwhile may come back with its versions mixed). A restore drops the
collection, creates it again from the stored spec and upserts the points: a restore cut short leaves
the collection partial or absent (restore again); hidden points it brings back are swept like any.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qdrant_client import models as qm

from .records import SnapshotInfo
from .snapshots import SnapshotFolder
from .spec import CollectionSpec

if TYPE_CHECKING:
    from .remote import RemoteStore

POINTS = "points.jsonl.gz"
_BATCH = 256


def _vector(v: Any) -> Any:
    if isinstance(v, qm.SparseVector):
        return {"indices": list(v.indices), "values": list(v.values)}
    return v


def _unvector(v: Any) -> Any:
    return qm.SparseVector(**v) if isinstance(v, dict) else v


class PortableSnapshots:
    def __init__(self, data_dir: Path) -> None:
        self.folder = SnapshotFolder(data_dir)

    def create(self, store: RemoteStore, name: str) -> SnapshotInfo:
        spec = store.get_spec(name)
        target = self.folder.new(name)
        partial = target.with_name(f".{target.name}.partial")  # not listed until complete
        partial.mkdir(parents=True)
        try:
            (partial / "spec.json").write_text(spec.to_json())
            with gzip.open(partial / POINTS, "wt", compresslevel=1) as out:
                for record in self._records(store, name):
                    vectors = record.vector if isinstance(record.vector, dict) else {}
                    line = {"id": str(record.id), "payload": record.payload or {}}
                    line["vector"] = {k: _vector(v) for k, v in vectors.items()}
                    out.write(json.dumps(line, separators=(",", ":")) + "\n")
            partial.rename(target)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        return self.folder.info(name, target)

    @staticmethod
    def _records(store: RemoteStore, name: str) -> Iterator[Any]:
        offset: Any = None
        while True:
            with store._engine(name):
                records, offset = store.client.scroll(
                    store.qdrant_name(name), limit=_BATCH, offset=offset, with_payload=True, with_vectors=True
                )
            yield from records
            if offset is None:
                return

    def list(self, name: str) -> list[SnapshotInfo]:
        return self.folder.list(name)

    def restore(self, store: RemoteStore, name: str, snapshot: str) -> None:
        path = self.folder.find(name, snapshot)
        spec = CollectionSpec.from_json((path / "spec.json").read_text())
        store.replace_collection(spec)
        batch: list[qm.PointStruct] = []
        with gzip.open(path / POINTS, "rt") as lines:
            for line in lines:
                raw = json.loads(line)
                vector = {k: _unvector(v) for k, v in raw["vector"].items()}
                batch.append(qm.PointStruct(id=raw["id"], vector=vector, payload=raw["payload"]))
                if len(batch) == _BATCH:
                    store.upsert_raw(name, batch)
                    batch = []
        store.upsert_raw(name, batch)
        store.sweep(name)
