"""Crash consistency: a client ingests multi-passage documents and new versions of them while the
server is killed with SIGKILL at random moments, 20 times. After every kill each document is
absent, or exactly one of its versions, complete: never a part of one, never two mixed. What a
search can see is checked before the startup sweep (hiding alone must suffice), and the sweep then
leaves no hidden point."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from mmsearch.client import Client
from mmsearch.server.storage.base import Cond, Where
from mmsearch.server.storage.edge import EdgeStore, ShardOptions

from .documents import text_item
from .test_cli import Server

pytestmark = pytest.mark.slow
DOCS = [f"doc{i}" for i in range(6)]
ROUNDS = 20


def passages(version: int) -> int:
    """Versions differ in length (1 to 23 passages), so a mix of two or a part of one shows."""
    return 1 + (version * 5) % 23


def _text(version: int) -> str:
    # max_words=10, overlap_words=2: 8 new words a passage
    return " ".join(f"v{version}w{i}" for i in range(8 * passages(version) + 2))


class Writer:
    """Ingests new versions of random documents until the server goes away."""

    def __init__(self, addr: str, rng: random.Random, next_version: dict[str, int]) -> None:
        self.addr, self.rng, self.next_version = addr, rng, next_version
        self.sent: dict[str, set[int]] = defaultdict(set)
        self.acked: dict[str, int] = {}

    def run(self) -> None:
        try:
            with Client(self.addr, retries=0, timeout=30) as client:
                while True:
                    items, versions = [], []
                    for doc in self.rng.sample(DOCS, 3):
                        v = self.next_version[doc] = self.next_version[doc] + 1
                        self.sent[doc].add(v)
                        items.append(text_item(doc, _text(v), {"v": v}))
                        versions.append(v)
                    for ack in client.ingest("c", items):
                        assert ack.ok, ack.error
                        self.acked[ack.id] = versions[ack.sequence]
        except Exception:
            return  # the server was killed


def _check(data: Path, sent: dict[str, set[int]], acked: dict[str, int]) -> dict[str, int | None]:
    """Opens the data as the next server would (finishing a cut-short switch), checks what reads
    see, then sweeps. Returns each document's visible version."""
    store = EdgeStore(data, shards=ShardOptions(seal_points=300, index_build=False))
    seen: dict[str, int | None] = {}
    try:
        for doc in DOCS:
            where = Where(must=[Cond(key="doc_id", match=doc)])
            visible = store.count("c", where)
            by_version = {
                v: store.count("c", where.and_(Cond(key="meta.v", range={"gte": v, "lte": v}))) for v in sent[doc]
            }
            shown = {v: n for v, n in by_version.items() if n}
            if not visible:
                # Absent after an acknowledgement: only while a one-passage version replaced a
                # one-passage version in an older shard (deleted there, then written: two shards).
                in_place = [v for v in sent[doc] if v > acked.get(doc, 0) and passages(v) == 1]
                assert doc not in acked or in_place, f"{doc}: acknowledged version {acked[doc]} lost"
                seen[doc] = None
                continue
            assert len(shown) == 1, f"{doc}: versions mixed {shown}"
            ((v, n),) = shown.items()
            assert n == visible == passages(v), f"{doc}: version {v} has {n} of {passages(v)} passages"
            assert v >= acked.get(doc, 0), f"{doc}: acknowledged version {acked[doc]} lost for {v}"
            seen[doc] = v
        store.sweep("c")
        assert store.count("c", hidden=True) == store.count("c")
    finally:
        store.close()
    return seen


def test_kill_9_never_leaves_a_partial_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Small shards: switches and replacements cross shard boundaries often.
    monkeypatch.setenv("MMSEARCH_SEAL_POINTS", "300")
    monkeypatch.setenv("MMSEARCH_INDEX_BUILD", "false")
    rng = random.Random(12)
    data = tmp_path / "data"
    server = Server(data)
    server.start()
    with Client(server.addr, retries=0) as c:
        c.create_collection("c", max_words=10, overlap_words=2)
    next_version: dict[str, int] = defaultdict(int)
    sent: dict[str, set[int]] = defaultdict(set)
    acked: dict[str, int] = {}
    states = []
    for round_ in range(ROUNDS):
        if round_:
            server.start()
        writer = Writer(server.addr, rng, next_version)
        thread = threading.Thread(target=writer.run)
        thread.start()
        time.sleep(rng.uniform(0.5, 3.0))
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
        thread.join(30)
        for doc, versions in writer.sent.items():
            sent[doc] |= versions
        acked.update(writer.acked)
        states.append(_check(data, sent, acked))
    # the rounds wrote and replaced documents, and kills landed before some versions were acknowledged
    assert len({(d, v) for s in states for d, v in s.items() if v}) > 20
    assert sum(len(v) for v in sent.values()) > len(acked) + ROUNDS
