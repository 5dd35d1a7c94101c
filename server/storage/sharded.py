"""An embedded collection made of several shards: writes go to one small active shard, full ones
are sealed and indexed in a child process (storage/build.py), searches ask every shard.

Why: qdrant-edge holds the GIL in every call. Building an HNSW index in-process froze every thread
for a minute per 60k points, and an unindexed shard is searched by a scan that grows with it. So
writes go to a shard of at most `seal_points` (a scan stays a few ms), and indexes are built beside
the data, then swapped in (storage/build.py).

Invariants:
- a point id lives in one shard: an upsert first deletes its ids from the older shards (so a
  document never shows twice; an overwrite cut short by a crash may lose the old version);
- deletes and payload changes reach every shard, and are logged on a shard being copied for a
  build, then replayed on the result before it replaces the shard (`replace`);
- a payload change (`set_payload`) is all or nothing even across shards and a crash: when it
  touches more than one shard, its record is written to commit.json first and replayed on open;
- manifest.json names the shards; it changes (atomically) only after the shards it names exist.
"""

from __future__ import annotations

import functools
import heapq
import logging
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import qdrant_edge as qe

from mmsearch.protocol.vocab import DenseQuantization

from ..errors import NotFound
from . import manifest as mf
from .base import CollectionSpec, Scores
from .hidden import HiddenMarks
from .records import APPROXIMATE, Breadth
from .shard import ACTIVE, INDEXED, SEALED, Shard, ShardClosed, timed

log = logging.getLogger("mmsearch.storage")
COMMIT = "commit.json"  # a payload change over several shards, until every shard has it
HOMES_MAX = 200_000  # point ids whose shard a collection remembers (~25 MB at most)
#: Searches of a quantised copy take 2x `limit` candidates from it and rescore them with the stored
#: vectors, so scores are the stored vectors' (docs/benchmarks.md: 240k points, int8, limit 100).
RESCORE = qe.QuantizationSearchParams(rescore=True, oversampling=2.0)
IGNORE = qe.QuantizationSearchParams(ignore=True)
T = TypeVar("T")
#: A filter, or a function that builds it when it is needed.
Lazy = qe.Filter | None | Callable[[], qe.Filter | None]
#: ids -> (a function building their filter with the visibility condition, the filter without it)
IdFilters = Callable[[list[str]], tuple[Callable[[], qe.Filter | None], qe.Filter | None]]


def _lazy(flt: Lazy) -> Callable[[], qe.Filter | None]:
    """A function returning `flt`, building it at most once."""
    if not callable(flt):
        return lambda: flt
    return functools.cache(flt)


@dataclass
class ShardStats:
    points: int
    indexed_points: int  # in shards with a built index; the rest are searched exactly
    shards: int
    indexing: bool  # some sealed shard waits for (or is in) an index build


class ShardedCollection:
    def __init__(
        self,
        spec: CollectionSpec,
        folder: Path,
        new_engine: Callable[[Path], qe.EdgeShard],
        seal_points: int,
        hnsw_ef: int = 0,
        on_seal: Callable[[], None] = lambda: None,
        hidden: qe.Filter | None = None,
    ) -> None:
        """Opens the shards manifest.json names (deleting folders it does not name). hidden: the
        filter of hidden points (storage/hidden.py), for skipping the visibility condition on
        shards that hold none; None: never skipped."""
        self.spec = spec
        self.folder = folder
        self._new_engine = new_engine
        self._seal_points = seal_points
        self._ef = hnsw_ef
        self._on_seal = on_seal
        self._manifest = mf.load(folder)
        self._shards = [
            Shard(e.id, mf.shard_path(folder, e.id), e.state, qe.EdgeShard.load(str(mf.shard_path(folder, e.id))))
            for e in self._manifest.shards
        ]
        self._write = threading.Lock()  # writes, seals and swaps, one at a time
        self._state = threading.Lock()  # the shard list and `closed`
        self.closed = False
        self._marks = HiddenMarks(hidden)
        self._homes: dict[str, str] = {}  # point id -> the shard a search last found it in
        #: Pooled vectors with a quantised copy (in indexed shards): searched on it, then rescored.
        int8 = DenseQuantization.INT8
        self._quantised = {f"{s.name}_dense" for s in spec.spaces.values() if s.compression.dense_quantization == int8}

    # -- reads: every shard --

    def _each(self, call: Callable[[Shard], T]) -> list[T]:
        """`call` on every shard. A shard swapped out meanwhile: ask the current shards again."""
        while True:
            with self._state:
                if self.closed:
                    raise NotFound(f"collection {self.spec.name!r} does not exist")
                shards = list(self._shards)
            try:
                return [call(s) for s in shards]
            except ShardClosed:
                continue

    def query(
        self, using: str, vector: Any, limit: int, flt: Lazy, plain: qe.Filter | bool | None = False,
        breadth: Breadth = APPROXIMATE,
    ) -> Scores:  # fmt: skip
        """The best `limit` of every shard's best `limit`, by score. flt: the filter, or a function
        that builds it (called only when a shard needs it). plain (when not False): the filter without
        the visibility condition, used on shards that hold no hidden point (storage/hidden.py).
        breadth: of the graph searches of indexed shards (dense vectors)."""
        return self.query_many([(using, vector)], limit, flt, plain, breadth)[0]

    def query_many(
        self, searches: Sequence[tuple[str, Any]], limit: int, flt: Lazy, plain: qe.Filter | bool | None = False,
        breadth: Breadth = APPROXIMATE,
    ) -> list[Scores]:  # fmt: skip
        """`query` for several (using, vector) searches with one filter, one engine call per shard:
        the engine's batch shares its pass over the segments (a dense and a BM25 top 100 of a 140k
        shard: 1.08-1.28 ms batched, 1.36-1.57 ms as two calls)."""
        if plain is not False:
            self._marks.recheck(self._current, self._write)
        visible = _lazy(flt)

        def one(shard: Shard) -> list[list[qe.ScoredPoint]]:
            def run(f: qe.Filter | None) -> list[list[qe.ScoredPoint]]:
                return shard.query_batch([self._request(shard, u, v, limit, breadth, f) for u, v in searches])

            if isinstance(plain, bool):  # not given
                return run(visible())
            return self._marks.search(shard, run, visible, plain)

        shards = self._each(lambda shard: (shard.id, one(shard)))
        out: list[Scores] = []
        for n in range(len(searches)):
            # Only the merged best are remembered and named: each shard returns `limit` points, and
            # converting every one's id (a UUID) was ~20% of a search over 11 shards at 1M points.
            found = ((p.score, sid, p) for sid, results in shards for p in results[n])
            scores: Scores = {}
            for score, sid, p in heapq.nlargest(limit, found, key=lambda f: f[0]):
                pid = str(p.id)
                self._home(pid, sid)
                scores[pid] = float(score)
            out.append(scores)
        return out

    def score_ids(self, using: str, vector: Any, ids: Sequence[str], filters: IdFilters) -> Scores:
        """Scores exactly `ids`. Each id is asked only of the shard a search last found it in; ids no
        search found since they were written, or whose shard an index build replaced, are asked of
        every shard. filters(subset): the filter of a subset of ids, with and without the visibility
        condition (see `query`). Why: a search rescores its candidates three times (dense, BM25,
        MaxSim), and asking every shard for all of them made the shard count multiply that work."""
        return self.score_many([(using, vector, ids)], filters)[0]

    def score_many(self, asks: Sequence[tuple[str, Any, Sequence[str]]], filters: IdFilters) -> list[Scores]:
        """`score_ids` for several (using, vector, ids) at once, one engine call (a batch) per shard
        that holds some of them: a search's missing BM25 and dense scores together."""
        self._marks.recheck(self._current, self._write)
        union = list(dict.fromkeys(i for _, _, ids in asks for i in ids))

        def ask(shard: Shard, mine: list[str]) -> list[tuple[int, list[qe.ScoredPoint]]]:
            held = set(mine)
            parts = [(n, using, vector, [i for i in ids if i in held]) for n, (using, vector, ids) in enumerate(asks)]
            parts = [part for part in parts if part[3]]
            made = [filters(subset) for *_, subset in parts]  # (with the visibility condition, without)

            def run(plain: bool) -> list[list[qe.ScoredPoint]]:
                return shard.query_batch([
                    self._request(shard, using, vector, len(subset), APPROXIMATE, flt if plain else visible())
                    for (_, using, vector, subset), (visible, flt) in zip(parts, made, strict=True)
                ])  # fmt: skip

            found = self._marks.search(shard, run, lambda: False, True)
            return [(n, points) for (n, *_), points in zip(parts, found, strict=True)]

        out: list[Scores] = [{} for _ in asks]
        for per_shard in self._each_routed(union, ask):
            for n, points in per_shard:
                out[n].update((str(p.id), float(p.score)) for p in points)
        return out

    def _each_routed(self, ids: Sequence[str], call: Callable[[Shard, list[str]], T]) -> list[T]:
        """`call(shard, its ids)` on each current shard that may hold some of `ids`: an id's home
        shard (`_home`) if it is still current, else every shard. A shard swapped out meanwhile:
        route again (as `_each`)."""
        while True:
            shards = self._current()
            live = {s.id for s in shards}
            routed: dict[str | None, list[str]] = {}
            for i in ids:
                home = self._homes.get(i)
                routed.setdefault(home if home in live else None, []).append(i)
            anywhere = routed.pop(None, [])
            try:
                return [call(s, routed.get(s.id, []) + anywhere) for s in shards if s.id in routed or anywhere]
            except ShardClosed:
                continue

    def _request(
        self, shard: Shard, using: str, vector: Any, limit: int, breadth: Breadth, flt: qe.Filter | None
    ) -> qe.QueryRequest:
        params = None
        if shard.state == INDEXED and using.endswith("_dense"):  # the shards with graphs; others are scanned
            ef = breadth.hnsw_ef or self._ef
            quantised = using in self._quantised
            if breadth.exact:  # every point at full precision: neither the graph nor the quantised copy
                params = qe.SearchParams(exact=True, quantization=IGNORE if quantised else None)
            elif ef or quantised:
                params = qe.SearchParams(hnsw_ef=ef or None, quantization=RESCORE if quantised else None)
        query = qe.Query.Nearest(vector, using=using)
        return qe.QueryRequest(limit=limit, query=query, filter=flt, with_payload=False, params=params)

    def _home(self, pid: str, sid: str) -> None:
        """Remembers which shard holds a point a search returned (for `score_ids`); forgets all past
        a bound. Upserts forget the ids they write (they move them to the active shard)."""
        if len(self._homes) > HOMES_MAX:
            self._homes.clear()
        self._homes[pid] = sid

    def retrieve(self, ids: list[str], with_payload: list[str] | bool, with_vector: list[str] | bool) -> list[Any]:
        """The records of `ids`, each asked of its home shard when a search found it (`_each_routed`):
        a search's payloads and vectors asked every shard, ~18% of a search over 11 shards."""
        found = self._each_routed(ids, lambda shard, mine: shard.retrieve(mine, with_payload, with_vector))
        return [r for records in found for r in records]

    def scroll(
        self, flt: qe.Filter | None, offset: Any, limit: int, with_payload: list[str] | bool, with_vector: list[str]
    ) -> tuple[list[Any], Any]:
        """One page of one shard at a time. offset: (ids of the shards read whole, the shard being
        read, its own offset) or None. A shard swapped out by a build mid-read is not resumed: the
        build's result (a new id) is read whole later, so points may come twice but none is missed."""
        done, sid, inner = offset or ((), None, None)
        while True:
            left = [s for s in self._current() if s.id not in done]
            if not left:
                return [], None
            shard = next((s for s in left if s.id == sid), left[0])
            start = inner if shard.id == sid else None
            request = qe.ScrollRequest(
                offset=start, limit=limit, filter=flt, with_payload=with_payload, with_vector=with_vector or False
            )
            try:
                records, after = shard.scroll(request)
            except ShardClosed:
                continue
            if after is not None:
                return records, (done, shard.id, after)
            done = (*done, shard.id)
            more = any(s.id not in done for s in self._current())
            return records, ((done, None, None) if more else None)

    def count(self, flt: qe.Filter | None) -> int:
        return sum(self._each(lambda s: s.count(flt)))

    def stats(self) -> ShardStats:
        counts = self._each(lambda s: (s.state, s.count()))
        return ShardStats(
            points=sum(n for _, n in counts),
            indexed_points=sum(n for state, n in counts if state == INDEXED),
            shards=len(counts),
            indexing=any(state == SEALED for state, _ in counts),
        )

    # -- writes --

    def _current(self) -> list[Shard]:
        with self._state:
            if self.closed:
                raise NotFound(f"collection {self.spec.name!r} does not exist")
            return list(self._shards)

    def upsert(self, points: list[qe.Point]) -> None:
        with self._write:
            shards = self._current()
            active = shards[-1] if shards and shards[-1].state == ACTIVE else self._open_active()
            older = [s for s in shards if s is not active]
            for p in points:
                self._homes.pop(str(p.id), None)
            if older:
                same_ids = qe.Filter(must=[qe.HasIdCondition({str(p.id) for p in points})])
                for shard in older:
                    shard.delete(same_ids, only_if_matched=True)
            self._marks.mark([active])
            active.upsert(points)
            if active.count() >= self._seal_points:
                self._seal(active)

    def delete(self, flt: qe.Filter) -> None:
        with self._write:
            for shard in self._current():
                shard.delete(flt, only_if_matched=shard.state != ACTIVE)

    def set_payload(self, flt: qe.Filter, payload: dict[str, Any], record: str) -> None:
        """Sets payload keys on every point matching `flt`, all of them or none even if the process
        dies midway. One shard applies it in one WAL record; over several, `record` (what the owner
        needs to do it again, see `unfinished_commit`) is written durably first and removed once
        every shard has the change."""
        with self._write:
            shards = [s for s in self._current() if s.count(flt)]
            journal = self.folder / COMMIT if len(shards) > 1 else None
            if journal is not None:
                mf.write_durably(journal, record)
            self._marks.mark(shards)
            for shard in shards:
                shard.set_payload(flt, payload)
            (self.folder / COMMIT).unlink(missing_ok=True)  # also a replayed one that now fits one shard

    def snapshot(self, target: Path) -> None:
        """A consistent copy of the collection at `target` (spec, manifest, flushed shards), taken
        while no write, seal or swap runs; the folder appears only once complete."""
        with self._write:
            shards = self._current()
            tmp = target.with_name(target.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            (tmp / "shards").mkdir(parents=True)
            for shard in shards:
                shard.copy_to(mf.shard_path(tmp, shard.id))
            shutil.copyfile(self.folder / "spec.json", tmp / "spec.json")
            entries = [mf.ShardEntry(s.id, s.state) for s in shards]
            mf.save(tmp, mf.Manifest(self._manifest.next_id, entries))
            tmp.rename(target)

    def unfinished_commit(self) -> str | None:
        """The record of a `set_payload` over several shards that a crash cut short, if any."""
        path = self.folder / COMMIT
        return path.read_text() if path.exists() else None

    def _open_active(self) -> Shard:
        sid = self._manifest.new_id()
        path = mf.shard_path(self.folder, sid)
        with timed(f"opening shard {sid}"):
            shard = Shard(sid, path, ACTIVE, self._new_engine(path))
        shard.may_hide = False  # empty; the upsert that follows marks it
        self._manifest.shards.append(mf.ShardEntry(sid, ACTIVE))
        mf.save(self.folder, self._manifest)  # after the shard exists: a crash before leaves a stray folder
        with self._state:
            self._shards.append(shard)
        return shard

    def _seal(self, shard: Shard) -> None:
        """Flushes the full active shard once and for all; the next upsert opens a new one."""
        shard.flush(force=True)
        shard.state = SEALED
        self._set_state(shard.id, SEALED)
        mf.save(self.folder, self._manifest)
        log.info("collection %s: sealed shard %s", self.spec.name, shard.id)
        self._on_seal()

    def _set_state(self, sid: str, state: str) -> None:
        for entry in self._manifest.shards:
            if entry.id == sid:
                entry.state = state

    def flush(self) -> None:
        """Flushes the shards written since their last flush: the active one, and sealed ones that
        deletes reached."""
        try:
            for shard in self._current():
                shard.flush()
        except NotFound:
            pass

    # -- index builds (storage/build.py) --

    def plan_build(self, max_points: int) -> list[Shard]:
        """Shards to index (and merge) next, or none (`plan_merge` over the sealed and indexed shards)."""
        shards = [s for s in self._current() if s.state != ACTIVE]
        return [shards[i] for i in plan_merge([(s.count(), s.state == SEALED) for s in shards], max_points)]

    def new_shard_id(self) -> str:
        with self._write:
            return self._manifest.new_id()

    def replace(self, sources: Sequence[Shard], sid: str, engine: qe.EdgeShard) -> bool:
        """Swaps a build's result in for its source shards, after replaying the deletes and payload
        changes that reached them since they were copied. False (nothing changed) if the collection was dropped."""
        new = Shard(sid, mf.shard_path(self.folder, sid), INDEXED, engine)
        with self._write:
            if self.closed:
                return False
            for source in sources:
                for op in source.changes or []:
                    new.apply(op)
            keep = [e for e in self._manifest.shards if e.id not in {s.id for s in sources}]
            first = min(i for i, s in enumerate(self._shards) if s in sources)
            self._manifest.shards = [*keep[:first], mf.ShardEntry(sid, INDEXED), *keep[first:]]
            mf.save(self.folder, self._manifest)
            with self._state:
                rest = [s for s in self._shards if s not in sources]
                self._shards = [*rest[:first], new, *rest[first:]]
        for source in sources:
            source.close(flush=False)
            shutil.rmtree(source.path, ignore_errors=True)
        return True

    def close(self, flush: bool) -> None:
        """Later calls get NotFound; each shard closes once the calls inside it are done."""
        with self._write, self._state:  # after a write or swap in progress
            self.closed = True
            shards = list(self._shards)
        for shard in shards:
            shard.close(flush)


def plan_merge(shards: Sequence[tuple[int, bool]], max_points: int) -> list[int]:
    """Which shards (points, sealed?) the next build takes: the smallest, then the next smallest
    while each is at most twice what is taken so far and the total fits in `max_points`; taken if
    that includes a sealed shard or merges two, else the same from the next smallest (a sealed
    shard bigger than max_points, a migrated collection's, is indexed alone).

    Like sizes merge, as a binary counter carries (20k + 20k -> 40k; 20k + 20k + 40k -> 80k ...), so
    a point is re-indexed about log2(max_points / seal_points) times and a collection of n points
    ends in a few shards of up to max_points. Merging each new sealed shard into the largest one
    that fits re-indexed it n / seal_points / 2 times, and searches ask every shard (~1-2 ms each
    on 2 cores): fewer, larger shards are the cheaper searches (docs/benchmarks.md, 1M)."""
    order = sorted(range(len(shards)), key=lambda i: (shards[i][0], i))
    # From the smallest first; when what starts there neither merges nor indexes a sealed shard
    # (a shard that deletes left tiny blocks its larger neighbours), from the next.
    for start in range(len(order)):
        taken: list[int] = []
        total = 0
        for i in order[start:]:
            n, sealed = shards[i]
            if taken and (n > 2 * total or total + n > max_points):
                break
            if not taken and n >= max_points and not sealed:
                break  # a full indexed shard: nothing to merge
            taken.append(i)
            total += n
        if len(taken) >= 2 or any(shards[i][1] for i in taken):
            return taken
    return []
