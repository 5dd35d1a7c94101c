"""Re-encoding a collection with another text model while it keeps serving the old vectors.

Vectors of two models cannot share a space (their scores mean different things), so the new ones
are never written into the live collection. Instead:

1. copy: a shadow collection of the same name, with the new model in its spec, is filled in a
   store of its own (data_dir/reindex/<name>/, never listed or searched) from the live collection's
   stored text (server/reencode.py); searches and writes go on against the live one meanwhile;
2. catch up: the live collection's fingerprints (a payload-only scan) are compared with what was
   copied; new or changed points are copied again and deleted ones deleted, until little is left;
3. switch: the collection's writes are paused (ingest/claims.py: new ones wait, the ones in progress
   finish first), a last catch-up runs, and the shadow is swapped in through the store's snapshot
   restore (storage/snapshots.py: a folder rename, crash-safe on its own); writes resume and find
   the new model.

Crash safety (kill -9 at any moment): until the switch the live collection is never written by the
reindex, and data_dir/reindex/<name>/reindex.json says "copying": a later start deletes the
unfinished shadow (logged), the collection keeps its old model and vectors. The journal says
"switching" only once the shadow is complete and writes are paused; a later start finishes that
switch (logged). Either way a search sees the old model's vectors or the complete new ones.

Embedded storage only: the switch is a folder swap. On remote storage (a Qdrant server) it would be
a collection alias, which this does not do yet (Unimplemented).
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mmsearch.encoders.models import canonical_model

from . import reencode as rc
from .catalog import Catalog
from .errors import FailedPrecondition, InvalidArgument, NotFound, Unimplemented
from .ingest.claims import DocumentClaims
from .storage import manifest as mf
from .storage.base import CollectionSpec, Cond, Store, Where
from .storage.edge import EdgeStore, ShardOptions

log = logging.getLogger("mmsearch.reindex")

JOURNAL = "reindex.json"
BATCH = 64  # points re-encoded per encoder call
CATCH_UP_PASSES = 3  # unpaused catch-up passes at most before the paused last one
SMALL = 100  # points left to copy at which the last, paused, pass starts


class Stopped(Exception):
    """The collection a run copies was dropped, restored from a snapshot or created again."""


@dataclass
class ReindexStatus:
    collection: str
    state: str = "none"  # none | copying | switching | done | failed
    old_model: str = ""
    new_model: str = ""
    points_done: int = 0
    points_total: int = 0
    error: str = ""


@dataclass
class _Run:
    job: ReindexStatus
    old: CollectionSpec  # the collection as the run found it
    new: CollectionSpec  # the same with the new model
    stop: threading.Event  # set by a drop or snapshot restore of the collection


class Reindexer:
    """Re-encodes collections, one run per collection at a time, in background threads."""

    def __init__(self, catalog: Catalog, claims: DocumentClaims, data_dir: Path) -> None:
        self.catalog = catalog
        self.store: Store = catalog.store
        self.claims = claims
        self.root = Path(data_dir) / "reindex"
        self._jobs: dict[str, ReindexStatus] = {}
        self._stops: dict[str, threading.Event] = {}  # set when the collection is dropped or restored
        self._lock = threading.Lock()
        if isinstance(self.store, EdgeStore):
            self.recover()

    # -- requests --

    def start(self, name: str, model: str) -> ReindexStatus:
        if not isinstance(self.store, EdgeStore):
            raise Unimplemented("reindex needs embedded storage (the switch is a folder swap); on a Qdrant server, "
                                "create a new collection with the model and ingest again")  # fmt: skip
        spec = self.store.get_spec(name)  # NotFound
        if not model:
            raise InvalidArgument("text_model is required: the model to re-encode the collection with")
        model = self.catalog.check_model(model, "text_model")
        if model in (spec.text_model, canonical_model(spec.text_model)):
            raise InvalidArgument(f"collection {name!r} already uses text model {model!r}")
        encoder = self.catalog.encoder(spec.text_kind, model)  # FailedPrecondition if it cannot load
        old, new = copy.deepcopy(spec), copy.deepcopy(spec)
        new.text_model = model
        new.spaces["text"] = replace(new.spaces["text"], model=model, dim=encoder.dim)
        with self._lock:
            job = self._jobs.get(name)
            if job is not None and job.state in ("copying", "switching"):
                raise FailedPrecondition(f"collection {name!r} is being re-encoded already (to {job.new_model!r})")
            job = self._jobs[name] = ReindexStatus(name, "copying", spec.text_model, model)
            run = _Run(job, old, new, self._stops.setdefault(name, threading.Event()))
            run.stop.clear()
        threading.Thread(target=self._run, args=(run,), name=f"reindex-{name}", daemon=True).start()
        return replace(job)

    def drop_collection(self, name: str) -> None:
        with self._replacing(name):
            self.store.drop_collection(name)

    def restore_snapshot(self, name: str, snapshot: str) -> None:
        with self._replacing(name):
            self.store.restore_snapshot(name, snapshot)

    @contextmanager
    def _replacing(self, name: str) -> Iterator[None]:
        """Around a drop or snapshot restore of the collection: once it succeeded, the collection's run
        stops before it copies more and never switches. Inside a write claim (ingest/claims.py `hold`):
        it waits for a switch that has begun, and a run that has not begun one finds the stop first."""
        with self.claims.hold(name):
            yield
            with self._lock:
                stop = self._stops.get(name)
            if stop is not None:
                stop.set()

    def status(self, name: str) -> ReindexStatus:
        with self._lock:
            job = self._jobs.get(name)
        if job is not None:  # answered during the swap too, when the collection is briefly closed
            return replace(job)
        self.store.get_spec(name)  # NotFound
        return ReindexStatus(name)

    # -- the run --

    def _run(self, run: _Run) -> None:
        job, new = run.job, run.new
        name = job.collection
        folder = self.root / name
        shadow: EdgeStore | None = None
        try:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            self._journal(folder, "copying", job)
            job.points_total = self.store.count(name)
            live = self.store
            assert isinstance(live, EdgeStore)
            shadow = EdgeStore(folder, shards=ShardOptions(seal_points=live.options.seal_points, index_build=False))
            shadow.create_collection(new)
            encoder = self.catalog.encoder(new.text_kind, new.text_model)
            copied: dict[str, str] = {}
            for _ in range(CATCH_UP_PASSES):
                if self._sync(shadow, run, encoder, copied) < SMALL:
                    break
            with self.claims.paused(name):  # no write runs from here to the switch
                self._sync(shadow, run, encoder, copied)
                shadow.close()
                shadow = None
                job.state = "switching"
                target = live.snapshots.new(name)
                self._journal(folder, "switching", job, target.name)
                self._switch(name, folder, target)
            job.state = "done"
            log.info("collection %s: re-encoded with %s (was %s), %d points", name, job.new_model, job.old_model,
                     job.points_done)  # fmt: skip
        except Exception as exc:
            error = str(exc) or type(exc).__name__
            # A collection that went away meanwhile, whatever the copy tripped on then.
            if isinstance(exc, (Stopped, NotFound)) or run.stop.is_set():
                error = f"collection {name!r} was deleted, restored from a snapshot or created again meanwhile"
                log.info("collection %s: re-encoding with %s stopped: %s", name, job.new_model, error)
            else:
                log.exception("collection %s: re-encoding with %s failed; it keeps %s", name, job.new_model,
                              job.old_model)  # fmt: skip
            if shadow is not None:
                shadow.close()
            if job.state != "switching":  # a switch that began is finished by the next start (`recover`)
                shutil.rmtree(folder, ignore_errors=True)
            # last: a new run may start once this says failed, and must not find this one cleaning up
            job.state, job.error = "failed", error

    def _sync(self, shadow: Store, run: _Run, encoder: Any, copied: dict[str, str]) -> int:
        """Brings the shadow up to the live collection's visible points; returns how many changed.
        Raises Stopped once the collection is not the one the run began with (module docstring)."""
        job, new = run.job, run.new
        name = job.collection
        self._same(run)
        now = rc.fingerprints(self.store, name)
        todo = [i for i, fp in now.items() if copied.get(i) != fp]
        gone = [i for i in copied if i not in now]
        if gone:
            shadow.delete(name, Where(must=[Cond(ids=gone)]))
            for i in gone:
                del copied[i]
        job.points_total = max(job.points_total, len(now))
        for ids in rc.batches(todo, BATCH):
            self._same(run)
            shadow.upsert(name, rc.reencode(self.store, name, ids, new, encoder))
            copied.update({i: now[i] for i in ids})
            job.points_done = min(len(copied), job.points_total)
        return len(todo) + len(gone)

    def _same(self, run: _Run) -> None:
        """Raises Stopped when the collection was dropped or restored from a snapshot, or is gone or has
        other settings: created again under its name, it has fields and chunking of its own that the
        shadow's would replace."""
        name = run.job.collection
        try:
            same = not run.stop.is_set() and self.store.get_spec(name) == run.old
        except NotFound:
            same = False
        if not same:
            raise Stopped(name)

    def _switch(self, name: str, folder: Path, target: Path) -> None:
        """The complete shadow in place of the live collection: renamed into the store's snapshot
        folder (atomic), then restored over the collection (crash-safe there), then cleaned up."""
        live = self.store
        assert isinstance(live, EdgeStore)
        built = folder / "collections" / name
        if built.is_dir():
            built.rename(target)
        live.restore_snapshot(name, target.name)
        shutil.rmtree(target, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def _journal(folder: Path, state: str, job: ReindexStatus, snapshot: str = "") -> None:
        record = {"state": state, "old_model": job.old_model, "new_model": job.new_model, "snapshot": snapshot}
        mf.write_durably(folder / JOURNAL, json.dumps(record))

    # -- after a crash --

    def _model(self, name: str) -> str:
        try:
            return self.store.get_spec(name).text_model
        except NotFound:
            return ""

    def recover(self) -> None:
        """A shadow left by a stop: an unfinished copy is deleted, a switch that had begun is finished."""
        for folder in sorted(self.root.glob("*")) if self.root.is_dir() else []:
            name = folder.name
            try:
                record = json.loads((folder / JOURNAL).read_text())
            except (OSError, ValueError):
                record = {"state": "copying"}
            live = self.store
            assert isinstance(live, EdgeStore)
            if record["state"] == "switching" and record.get("snapshot"):
                target = live.snapshots.root / name / record["snapshot"]
                if self._model(name) == record["new_model"]:
                    log.info("collection %s: its switch to text model %s was done; removing what was left",
                             name, record["new_model"])  # fmt: skip
                    shutil.rmtree(target, ignore_errors=True)
                    shutil.rmtree(folder, ignore_errors=True)
                else:
                    log.warning("collection %s: finishing its switch to text model %s that a stop cut short",
                                name, record["new_model"])  # fmt: skip
                    target.parent.mkdir(parents=True, exist_ok=True)
                    self._switch(name, folder, target)
                continue
            log.warning("collection %s: deleting an unfinished re-encode with %s left by a stop; the collection "
                        "keeps its text model and vectors (start the reindex again)", name,
                        record.get("new_model", "?"))  # fmt: skip
            shutil.rmtree(folder, ignore_errors=True)
