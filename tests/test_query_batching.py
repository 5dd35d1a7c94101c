"""Concurrent queries share encoder calls, get exactly their own vectors, and fail alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from mmsearch.encoders.base import Encoded
from mmsearch.encoders.batching import QueryBatcher
from mmsearch.encoders.fake import FakeEncoder


class SlowFake(FakeEncoder):
    """The fake encoder with a fixed cost per call (like a forward pass) that records its batches."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.lock = threading.Lock()

    def encode_texts(self, texts: Sequence[str], *, as_query: bool) -> list[Encoded]:
        assert as_query
        with self.lock:  # encoders serialise their calls
            self.batches.append(list(texts))
            if "poison" in texts:
                raise ValueError("cannot encode poison")
            time.sleep(0.05)
            return super().encode_texts(texts, as_query=as_query)


def test_concurrent_queries_share_forward_passes() -> None:
    enc = SlowFake()
    batcher = QueryBatcher(enc, max_batch=8)
    texts = [f"query number {i} about owls" for i in range(24)]
    with ThreadPoolExecutor(24) as pool:
        got = list(pool.map(batcher.encode, texts))
    alone = FakeEncoder().encode_texts(texts, as_query=True)
    for g, a in zip(got, alone, strict=True):
        assert np.array_equal(g.tokens, a.tokens) and g.token_strings == a.token_strings
    assert len(enc.batches) < len(texts) / 2 and max(len(b) for b in enc.batches) <= 8
    assert sorted(t for b in enc.batches for t in b) == sorted(texts)


def test_a_lone_query_is_not_held_back_and_a_bad_one_fails_alone() -> None:
    enc = SlowFake()
    batcher = QueryBatcher(enc)
    assert batcher.encode("just me").token_strings == ["just", "me"]
    assert enc.batches == [["just me"]]
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(batcher.encode, t) for t in ["a", "b", "poison", "c", "d", "e"]]
        for f, t in zip(futures, ["a", "b", "poison", "c", "d", "e"], strict=True):
            if t == "poison":
                with pytest.raises(ValueError, match="cannot encode poison"):
                    f.result()
            else:
                assert f.result().token_strings == [t]
