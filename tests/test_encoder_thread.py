"""Encoders run on their own thread: concurrent queries share encoder calls, get exactly their own
vectors, fail alone, and go before waiting document batches."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from mmsearch.encoders.base import Encoded
from mmsearch.encoders.batching import EncoderThread
from mmsearch.encoders.fake import FakeEncoder


class SlowFake(FakeEncoder):
    """The fake encoder with a fixed cost per call (like a forward pass); records calls and threads."""

    def __init__(self, cost: float = 0.05) -> None:
        super().__init__()
        self.cost = cost
        self.calls: list[tuple[bool, list[str]]] = []
        self.threads: set[int] = set()

    def encode_texts(self, texts: Sequence[str], *, as_query: bool) -> list[Encoded]:
        self.calls.append((as_query, list(texts)))
        self.threads.add(threading.get_ident())
        if "poison" in texts:
            raise ValueError("cannot encode poison")
        time.sleep(self.cost)
        return super().encode_texts(texts, as_query=as_query)


def test_concurrent_queries_share_calls_on_one_thread() -> None:
    inner = SlowFake()
    enc = EncoderThread(inner, max_query_batch=8)
    texts = [f"query number {i} about owls" for i in range(24)]
    with ThreadPoolExecutor(24) as pool:
        got = list(pool.map(lambda t: enc.encode_texts([t], as_query=True)[0], texts))
    alone = FakeEncoder().encode_texts(texts, as_query=True)
    for g, a in zip(got, alone, strict=True):
        assert np.array_equal(g.tokens, a.tokens) and g.token_strings == a.token_strings
    assert len(inner.calls) < len(texts) / 2 and max(len(t) for _, t in inner.calls) <= 8
    assert sorted(t for _, ts in inner.calls for t in ts) == sorted(texts)
    assert len(inner.threads) == 1 and threading.get_ident() not in inner.threads


def test_a_lone_query_goes_straight_through_and_a_bad_one_fails_alone() -> None:
    inner = SlowFake()
    enc = EncoderThread(inner)
    assert enc.encode_texts(["just me"], as_query=True)[0].token_strings == ["just", "me"]
    assert inner.calls == [(True, ["just me"])]
    texts = ["a", "b", "poison", "c", "d", "e"]
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(enc.encode_texts, [t], as_query=True) for t in texts]
        for f, t in zip(futures, texts, strict=True):
            if t == "poison":
                with pytest.raises(ValueError, match="cannot encode poison"):
                    f.result()
            else:
                assert f.result()[0].token_strings == [t]


def test_queries_go_before_waiting_document_batches() -> None:
    inner = SlowFake(cost=0.1)
    enc = EncoderThread(inner)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(enc.encode_texts, ["document one"], as_query=False)  # occupies the thread
        time.sleep(0.03)
        docs = pool.submit(enc.encode_texts, ["document two"], as_query=False)
        time.sleep(0.01)
        query = pool.submit(enc.encode_texts, ["a query"], as_query=True)
        first.result(), docs.result(), query.result()
    assert [t for _, t in inner.calls] == [["document one"], ["a query"], ["document two"]]
    assert [q for q, _ in inner.calls] == [False, True, False]


def test_a_steady_query_load_does_not_starve_document_batches() -> None:
    inner = SlowFake(cost=0.02)
    enc = EncoderThread(inner, max_query_streak=4)
    stop = threading.Event()

    def search_forever() -> None:
        while not stop.is_set():
            enc.encode_texts(["a query"], as_query=True)

    with ThreadPoolExecutor(6) as pool:
        searchers = [pool.submit(search_forever) for _ in range(4)]  # a query is always waiting
        time.sleep(0.1)
        start = time.perf_counter()
        enc.encode_texts(["a document"], as_query=False)
        waited = time.perf_counter() - start
        stop.set()
        for f in searchers:
            f.result()
    assert waited < 0.5  # about 4 query calls of 20 ms, not until the searches stop
    position = [t for _, t in inner.calls].index(["a document"])
    assert sum(q for q, _ in inner.calls[:position]) >= 4  # queries still went first
