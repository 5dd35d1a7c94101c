"""Which embedded shards may hold hidden points, so that searches can leave the visibility
condition (storage/slots.py) out on the others: on an exact scan of 20k points it cost about as
much as the scan itself.

Each Shard carries `may_hide`: true when opened (also after a crash, before the startup sweep), set
before every write that may leave hidden points in it (an upsert into it, a payload change that
reaches it), and cleared only when a count of its hidden points finds none. Writers set it under the
collection's write lock, and the count runs only while it can take that lock at once, so no write
is in flight then. A search that skips the condition on a shard compares `gen` (bumped with every
such mark, before the write starts) before and after; if a write started meanwhile, its points may
be among the results, and the shard is searched again with the condition.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import qdrant_edge as qe

from .shard import Shard, ShardClosed

T = TypeVar("T")
F = TypeVar("F")
RECHECK_S = 1.0  # how often searches may count a collection's hidden points


class HiddenMarks:
    def __init__(self, hidden: qe.Filter | None) -> None:
        """hidden: the filter of hidden points; None: the condition is never skipped."""
        self.hidden = hidden
        self.gen = 0
        self._rechecked = 0.0

    def mark(self, shards: Sequence[Shard]) -> None:
        """Before a write that may leave hidden points in `shards` (under the write lock)."""
        for shard in shards:
            shard.may_hide = True
        self.gen += 1

    def recheck(self, shards: Callable[[], list[Shard]], write: threading.Lock) -> None:
        """Clears `may_hide` on shards without hidden points: at most every RECHECK_S, and only
        while no write runs."""
        if self.hidden is None or time.monotonic() - self._rechecked < RECHECK_S:
            return
        if not any(s.may_hide for s in shards()) or not write.acquire(blocking=False):
            return
        try:
            self._rechecked = time.monotonic()
            for shard in shards():
                if shard.may_hide and not shard.count(self.hidden):
                    shard.may_hide = False
        except ShardClosed:
            pass  # swapped out meanwhile: its successor starts with may_hide
        finally:
            write.release()

    def search(
        self,
        shard: Shard,
        run: Callable[[F], T],
        visible: Callable[[], F],
        plain: F,
    ) -> T:
        """`run` with the filter the shard needs: `plain` (the request's own) where no hidden point
        can be, `visible()` (with the condition; built only when needed) elsewhere or when a write
        raced the search. (A batch passes which of its filters to use instead of a filter.)"""
        gen = self.gen  # read before may_hide: a writer sets may_hide, then bumps gen, then writes
        if self.hidden is None or shard.may_hide:
            return run(visible())
        found = run(plain)
        return found if self.gen == gen else run(visible())
