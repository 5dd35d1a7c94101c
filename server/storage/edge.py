"""The embedded backend: the Qdrant engine in-process (qdrant-edge-py), each collection a set of
shards (storage/sharded.py; the folder layout is in storage/manifest.py) whose indexes a child
process builds (storage/build.py).

Durability: every update goes through a shard's write-ahead log before `update()` returns, so an
acknowledged write survives a killed process (tests/test_cli.py kills -9 and reopens).

The WAL is truncated only when the shard is flushed (segments written out). Left alone it grows with
everything ingested until the server stops (1.9 GB of WAL beside 0.8 GB of segments after 10,000
passages), so shards written since their last flush are flushed every `flush_interval_s`, as a
Qdrant server does: the active shard, and sealed ones that deletes reached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from mmsearch.protocol.vocab import DenseQuantization, FieldType

from ..errors import ResourceExhausted
from . import manifest as mf
from .base import (
    HIDDEN,
    CollectionSpec,
    Cond,
    Query,
    Scores,
    SnapshotInfo,
    Store,
    StoreStats,
    Where,
    matches_nothing,
    missing_collection,
    visible,
)
from .build import UNBOUNDED_KB, IndexBuilder
from .dialect import Dialect
from .page_images import DirPageImages
from .prewarm import Prewarmed
from .prewarm import prewarm as prewarm_files
from .records import APPROXIMATE, Breadth
from .sharded import ShardedCollection
from .snapshots import SnapshotFolder

log = logging.getLogger("mmsearch.storage")


def _match(value: Any) -> Any:
    """qdrant-edge 0.9 reads a Python bool as the integer 1 or 0 (bool is an int subclass): `flag = true`
    never matched a stored true but matched a stored 1, so a delete by it removed the wrong documents.
    numpy's bool is no int, and reaches the engine as a bool."""
    return qe.MatchValue(value=np.bool_(value) if isinstance(value, bool) else value)  # type: ignore[arg-type]


EDGE = Dialect.of(
    qe,
    MatchValue=_match,
    Range=qe.RangeFloat,
    has_id=lambda ids: qe.HasIdCondition(set(ids)),
    is_empty=qe.IsEmptyCondition,
    Point=qe.Point,
    VectorParams=qe.EdgeVectorParams,
    SparseVectorParams=qe.EdgeSparseVectorParams,
    # No graph (m=0); Cold = memory-mapped, not loaded.
    exact_only={
        "hnsw_config": qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10000),
        "datatype": qe.VectorStorageDatatype.Float16,
        "memory": qe.Memory.Cold,
    },
    # The BM25 inverted index memory-mapped, not read into RAM: loading an indexed shard holds the
    # GIL (every thread of the server waits), and a RAM index made that load about 2x longer (18k
    # points: 0.6-1.6 s against 0.3-0.8 s, machine under load); the OS caches the postings searched.
    lexical_extra={"memory": qe.Memory.Cold},
    # Dense vectors memory-mapped too, not read into RAM at load: a built 100k shard loaded in 0.16-0.18 s
    # instead of 0.24 s, its graph searches as fast once the OS caches the pages they visit
    # (docs/benchmarks.md, session 8). Loading holds the GIL, and larger shards load longer.
    dense_extra={"memory": qe.Memory.Cold},
    # The int8 copy memory-mapped too (Cold), not read onto the heap at load (always_ram / Pinned):
    # on 240k points a built segment loaded in 0.27 s instead of 1.52-1.57 s, every thread of the
    # server waiting meanwhile, and searched as fast once the OS had its pages (docs/benchmarks.md).
    # A build's child has just written them, and prewarm reads them after a start.
    dense_quantization={
        DenseQuantization.NONE: None,
        DenseQuantization.INT8: qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, memory=qe.Memory.Cold),
    },
    # Payload indexes memory-mapped too: an in-RAM index is rebuilt from disk at every load (the
    # numeric histograms and the doc_id map were most of a built shard's load). On a 60k-point shard
    # load went from 0.25 to 0.11 s idle, with filtered searches as fast (docs/benchmarks.md).
    schema={
        FieldType.KEYWORD: qe.KeywordIndexParams(on_disk=True),
        FieldType.INTEGER: qe.IntegerIndexParams(lookup=True, range=True, on_disk=True),
        FieldType.FLOAT: qe.FloatIndexParams(on_disk=True),
        FieldType.BOOL: qe.BoolIndexParams(on_disk=True),
    },
)

#: New shards' optimizer: one segment (plus the engine's empty appendable one), size (in KB)
#: unbounded (max_shard_points bounds shards). A build sets the shard it makes to keep one segment
#: per core once it is large enough (storage/build.py `_set_segments`): the engine searches a
#: shard's segments in parallel.
MERGE_ALL = qe.EdgeOptimizersConfig(default_segment_number=1, max_segment_size=UNBOUNDED_KB)

#: Part of the empty-shard template's name: changes whenever how shards are made changes (the
#: collection's spec and indexes are in it too), so an old template is never copied.
SHARD_LAYOUT = "payload-index-on-disk,merge-all,dense-cold"


@dataclass(frozen=True)
class ShardOptions:
    """How collections are split into shards and indexed (see server/settings.py)."""

    seal_points: int = 20_000
    max_shard_points: int = 500_000
    hnsw_ef: int = 512  # 0: the engine's default (server/settings.py says why 512)
    index_build: bool = True
    hnsw_m: int = 16  # graph links per point of new shards' dense vectors (the engine's default)
    hnsw_ef_construct: int = 100  # build-time breadth of those graphs (the engine's default)

    def dialect(self) -> Dialect:
        """EDGE with these graph parameters for the pooled (dense) vectors of new shards."""
        graph = qe.HnswIndexConfig(m=self.hnsw_m, ef_construct=self.hnsw_ef_construct, full_scan_threshold=10_000)
        return replace(EDGE, dense_extra={**EDGE.dense_extra, "hnsw_config": graph})


class EdgeStore(Store):
    backend = "edge"
    dialect = EDGE

    def __init__(
        self,
        data_dir: Path,
        flush_interval_s: float = 5.0,
        shards: ShardOptions | None = None,
        min_free_mb: int = 0,
        prewarm: bool = False,
    ) -> None:
        """min_free_mb: writes are refused while the data directory's filesystem has less free.
        prewarm: read the shard files into the page cache in the background (storage/prewarm.py)."""
        super().__init__()
        self.min_free_mb = min_free_mb
        self.root = Path(data_dir) / "collections"
        self.snapshots = SnapshotFolder(data_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.snapshots.recover(self.root)  # before the collections open: a restore a crash cut short
        self.page_images = DirPageImages(Path(data_dir) / "page_images")
        self.options = shards or ShardOptions()
        self.dialect = self.options.dialect()
        self._open: dict[str, ShardedCollection] = {}
        for spec_file in sorted(self.root.glob("*/spec.json")):
            spec = CollectionSpec.from_json(spec_file.read_text())
            self._open[spec.name] = self._collection(spec)
            record = self._open[spec.name].unfinished_commit()
            if record is not None:  # a payload change over several shards that a crash cut short
                log.info("collection %s: finishing a payload change a crash cut short", spec.name)
                raw = json.loads(record)
                self._set_payload(spec.name, Where.from_json(raw["where"]), raw["payload"])
        self._closed = threading.Event()
        self._flush_interval_s = flush_interval_s
        threading.Thread(target=self._flush_loop, name="edge-flush", daemon=True).start()
        self.prewarmed: Prewarmed | None = None  # once the prewarm thread is done
        if prewarm and self._open:
            threading.Thread(target=self._prewarm, name="edge-prewarm", daemon=True).start()
        self.builder: IndexBuilder | None = None
        if self.options.index_build:
            self.builder = IndexBuilder(self._collections, self.options.max_shard_points)

    def _collection(self, spec: CollectionSpec) -> ShardedCollection:
        d = self.dialect
        config = qe.EdgeConfig(vectors=d.vectors(spec), sparse_vectors=d.sparse_vectors(), optimizers=MERGE_ALL)
        indexes = d.indexes(spec)

        graph = f"hnsw-m{self.options.hnsw_m}-efc{self.options.hnsw_ef_construct}"
        layout = spec.to_json() + ",".join(sorted(indexes)) + SHARD_LAYOUT + graph
        key = hashlib.sha1(layout.encode()).hexdigest()[:12]
        template = self.root / spec.name / f"empty-shard-{key}"

        def new_engine(path: Path) -> qe.EdgeShard:
            """A new empty shard: a copy of the collection's empty shard, loaded. Making one (the engine
            creating six payload indexes) held the GIL for 0.5-1 s on a loaded machine, so every request
            waited at every seal; copying (another process, no GIL) and loading an empty shard takes
            ~0.1 s. The template is made once, on the first write; its name changes with the config."""
            if not template.exists():
                tmp = template.with_name(template.name + ".tmp")
                shutil.rmtree(tmp, ignore_errors=True)
                shard = qe.EdgeShard.create(str(tmp), config)
                for field, schema in indexes.items():
                    shard.update(qe.UpdateOperation.create_field_index(field, schema))
                shard.flush()
                shard.close()
                tmp.rename(template)
            subprocess.run(["cp", "--sparse=always", "-r", str(template), str(path)], check=True)
            return qe.EdgeShard.load(str(path))

        hidden = d.filter(Where(should=list(HIDDEN)))  # shards without such points skip the visibility condition
        options = self.options
        return ShardedCollection(
            spec, self.root / spec.name, new_engine, options.seal_points, options.hnsw_ef, self._sealed, hidden
        )

    def _prewarm(self) -> None:
        self.prewarmed = prewarm_files(self.root, self._closed)

    def _sealed(self) -> None:
        if self.builder is not None:
            self.builder.wake()

    def _collections(self) -> list[ShardedCollection]:
        with self._lock:
            return list(self._open.values())

    def _flush_loop(self) -> None:
        while not self._closed.wait(self._flush_interval_s):
            for col in self._collections():
                col.flush()

    def _get(self, name: str) -> ShardedCollection:
        try:
            return self._open[name]
        except KeyError:
            raise missing_collection(name) from None

    def get_spec(self, name: str) -> CollectionSpec:
        return self._get(name).spec

    def list_specs(self) -> list[CollectionSpec]:
        with self._lock:
            return [c.spec for c in sorted(self._open.values(), key=lambda c: c.spec.name)]

    def stats(self, name: str) -> StoreStats:
        with self._engine(name):
            s = self._get(name).stats()
        return StoreStats(s.points, s.indexed_points, s.shards, s.indexing)

    def _has(self, name: str) -> bool:
        return name in self._open

    def _check_space(self) -> None:
        """The engine memory-maps its files and grows them as it writes: on a full filesystem a write
        kills the process (SIGBUS) instead of failing. So writes are refused ahead of that, with
        room left for flushes, a new shard and the deletes that free space."""
        free = shutil.disk_usage(self.root).free / 2**20
        if free < self.min_free_mb:
            raise ResourceExhausted(
                f"the data directory {self.root.parent} has {free:.0f} MB free; writes need at least "
                f"{self.min_free_mb} MB (setting min_free_disk_mb): free space or delete documents"
            )

    def _create(
        self, spec: CollectionSpec, vectors: dict[str, Any], sparse: dict[str, Any], indexes: dict[str, Any]
    ) -> None:
        """The shards are made from the spec (`_collection`): the first on the first write."""
        folder = self.root / spec.name
        if folder.exists():  # left over from a crash during create or drop
            shutil.rmtree(folder)
        folder.mkdir()
        mf.save(folder, mf.Manifest())
        # spec.json last, atomically: a folder without it is an unfinished create.
        tmp = folder / "spec.json.tmp"
        tmp.write_text(spec.to_json())
        tmp.replace(folder / "spec.json")
        self._open[spec.name] = self._collection(spec)

    def _drop(self, name: str) -> None:
        col = self._open.pop(name)
        (self.root / name / "spec.json").unlink()
        if self.builder is not None:
            self.builder.cancel(col)
        col.close(flush=False)
        shutil.rmtree(self.root / name, ignore_errors=True)  # a cancelled build may be removing its copy too

    def _query(
        self, name: str, using: str, vector: Any, limit: int, flt: Any | None, breadth: Breadth = APPROXIMATE
    ) -> Scores:
        return self._get(name).query(using, vector, limit, flt, breadth=breadth)

    def _query_visible(
        self, name: str, using: str, vector: Any, limit: int, where: Where, breadth: Breadth = APPROXIMATE
    ) -> Scores:
        d = self.dialect
        visible_where = lambda: d.filter(visible(where))  # noqa: E731 - built only where needed
        return self._get(name).query(using, vector, limit, visible_where, plain=d.filter(where), breadth=breadth)

    def search_many(
        self, name: str, searches: Sequence[tuple[str, Query]], limit: int, where: Where,
        breadth: Breadth = APPROXIMATE,
    ) -> list[Scores]:  # fmt: skip
        """As Store.search_many, in one engine call per shard (ShardedCollection.query_many)."""
        d = self.dialect
        asked = [(n, using, d.vector(q)) for n, (using, q) in enumerate(searches) if not matches_nothing(q)]
        out: list[Scores] = [{} for _ in searches]
        if not asked:
            return out
        with self._engine(name):
            found = self._get(name).query_many(
                [(using, vector) for _, using, vector in asked], limit, lambda: d.filter(visible(where)),
                plain=d.filter(where), breadth=breadth,
            )  # fmt: skip
        for (n, _, _), scores in zip(asked, found, strict=True):
            out[n] = scores
        return out

    def score_ids(self, name: str, using: str, query: Query, ids: Sequence[str]) -> Scores:
        """As Store.score_ids, each id asked only of the shard that holds it (ShardedCollection.score_ids)."""
        return self.score_many(name, [(using, query, ids)])[0]

    def score_many(self, name: str, asks: Sequence[tuple[str, Query, Sequence[str]]]) -> list[Scores]:
        """As Store.score_many, one engine call per shard (ShardedCollection.score_many)."""
        d = self.dialect

        def filters(subset: list[str]) -> tuple[Callable[[], Any], Any]:
            where = Where(must=[Cond(ids=subset)])
            return (lambda: d.filter(visible(where))), d.filter(where)

        asked = [
            (n, using, d.vector(q), list(ids))
            for n, (using, q, ids) in enumerate(asks)
            if ids and not matches_nothing(q)
        ]
        out: list[Scores] = [{} for _ in asks]
        if asked:
            with self._engine(name):
                found = self._get(name).score_many([(u, v, ids) for _, u, v, ids in asked], filters)
            for (n, *_), scores in zip(asked, found, strict=True):
                out[n] = scores
        return out

    def _retrieve(
        self, name: str, ids: list[str], with_payload: list[str] | bool, with_vector: list[str] | bool
    ) -> Sequence[qe.Record]:
        return self._get(name).retrieve(ids, with_payload, with_vector)

    def _scroll(
        self,
        name: str,
        flt: Any | None,
        offset: Any,
        limit: int,
        with_payload: list[str] | bool,
        with_vector: list[str],
    ) -> tuple[Sequence[qe.Record], Any]:
        return self._get(name).scroll(flt, offset, limit, with_payload, with_vector)

    def _upsert(self, name: str, points: list[Any]) -> None:
        self._get(name).upsert(points)

    def _delete(self, name: str, flt: Any) -> None:
        self._get(name).delete(flt)

    def _count(self, name: str, flt: Any | None) -> int:
        return self._get(name).count(flt)

    def _set_payload(self, name: str, where: Where, payload: dict[str, Any]) -> None:
        record = json.dumps({"where": where.to_json(), "payload": payload})
        self._get(name).set_payload(self.dialect.filter(where) or self.dialect.Filter(), payload, record)

    def create_snapshot(self, name: str) -> SnapshotInfo:
        col = self._get(name)
        self._check_space()
        target = self.snapshots.new(name)
        with self._engine(name):
            col.snapshot(target)
        return self.snapshots.info(name, target)

    def list_snapshots(self, name: str) -> list[SnapshotInfo]:
        return self.snapshots.list(name)

    def restore_snapshot(self, name: str, snapshot: str) -> None:
        source = self.snapshots.find(name, snapshot)
        self._check_space()
        staged = self.snapshots.stage(name, source)
        with self._lock:
            col = self._open.pop(name, None)
            if col is not None:
                if self.builder is not None:
                    self.builder.cancel(col)
                col.close(flush=False)
            folder = self.root / name
            aside = self.snapshots.set_aside(folder) if folder.exists() else None
            staged.rename(folder)
            self._open[name] = self._collection(CollectionSpec.from_json((folder / "spec.json").read_text()))
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
        self.sweep(name)  # points of documents that were being written when it was taken
        self._sealed()  # its sealed shards may wait for an index build

    def close(self) -> None:
        self._closed.set()
        if self.builder is not None:
            self.builder.stop()
        with self._lock:
            for col in self._open.values():
                col.close(flush=True)
            self._open.clear()
