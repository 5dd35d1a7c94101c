"""The encoder pool loads each (kind, model) once, outside its lock: a slow load holds up only the
callers of that encoder; a failed load is not kept."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mmsearch.encoders.base import Encoder, EncoderError
from mmsearch.encoders.fake import FakeEncoder
from mmsearch.encoders.pool import EncoderPool


class SlowFactory:
    """Creates fake encoders; the model "slow" takes `delay` seconds to load, "broken" fails once."""

    def __init__(self, delay: float = 1.0) -> None:
        self.delay = delay
        self.loads: list[str] = []
        self.started = threading.Event()
        self._failed = False

    def __call__(self, kind: str, model: str, device: str) -> Encoder:
        self.loads.append(model)
        if model == "slow":
            self.started.set()
            time.sleep(self.delay)
        if model == "broken" and not self._failed:
            self._failed = True
            raise EncoderError("cannot load broken (the first time)")
        return FakeEncoder(model, 8)


def test_a_slow_load_does_not_block_another_loaded_encoder() -> None:
    factory = SlowFactory(delay=1.5)
    pool = EncoderPool(factory=factory)
    loaded = pool.get("fake", "quick")
    with ThreadPoolExecutor(3) as ex:
        slow = ex.submit(pool.get, "fake", "slow")
        assert factory.started.wait(5)
        t0 = time.perf_counter()
        again = pool.get("fake", "quick")
        waited = time.perf_counter() - t0
        assert again is loaded and waited < 0.5  # not behind the 1.5 s load
        # The loaded encoder still encodes meanwhile (on its own thread).
        assert again.encode_texts(["owls"], as_query=True)[0].token_strings == ["owls"]
        assert not slow.done()
        # A second caller of the loading key waits for that one load.
        second = ex.submit(pool.get, "fake", "slow")
        assert slow.result(5) is second.result(5)
    assert factory.loads == ["quick", "slow"]
    assert {e.model for e in pool.loaded()} == {"quick", "slow"}


def test_a_failed_load_is_not_kept() -> None:
    factory = SlowFactory()
    pool = EncoderPool(factory=factory)
    with pytest.raises(EncoderError, match="cannot load broken"):
        pool.get("fake", "broken")
    assert pool.loaded() == []
    assert pool.get("fake", "broken").model == "broken"  # tried again, and loaded
    assert factory.loads == ["broken", "broken"]


def test_the_pool_loads_through_the_registry() -> None:
    pool = EncoderPool()
    assert pool.get("fake", "fake-16").dim == 16
    with pytest.raises(EncoderError, match="unknown encoder kind 'nope'"):
        pool.get("nope", "m")


def test_the_pool_keeps_at_most_max_encoders_least_recently_used_out_first() -> None:
    def fake_threads() -> int:
        return sum(t.name == "encoder-fake" for t in threading.enumerate())

    before = fake_threads()
    factory = SlowFactory()
    pool = EncoderPool(factory=factory, max_encoders=2, pinned=[("fake", "default")])
    default = pool.get("fake", "default")
    for i in range(100):  # a client naming 100 new models
        pool.get("fake", f"m{i}")
    loaded = {e.model for e in pool.loaded()}
    assert len(loaded) == 2 and "default" in loaded  # pinned: never evicted
    assert pool.get("fake", "default") is default
    pool.get("fake", "a")  # evicts m99, the least recently used that is not pinned
    assert {e.model for e in pool.loaded()} == {"default", "a"}
    deadline = time.monotonic() + 5
    while fake_threads() > before + 2 and time.monotonic() < deadline:  # evicted encoders' threads end
        time.sleep(0.05)
    assert fake_threads() == before + 2


def test_an_encoder_in_use_is_not_evicted_and_an_evicted_one_still_answers() -> None:
    factory = SlowFactory()
    pool = EncoderPool(factory=factory, max_encoders=1)
    busy = pool.get("fake", "busy")
    release = threading.Event()
    running = threading.Event()

    def hold() -> None:
        running.set()
        release.wait()

    with ThreadPoolExecutor(1) as ex:
        job = ex.submit(busy.call, hold)  # type: ignore[attr-defined]
        running.wait(5)
        other = pool.get("fake", "other")  # over the limit, but "busy" is running a call
        assert {e.model for e in pool.loaded()} == {"busy", "other"}
        release.set()
        job.result(5)
    pool.get("fake", "third")  # now "busy" and "other" are idle: back to one
    assert {e.model for e in pool.loaded()} == {"third"}
    # A caller that took an encoder just before its eviction still gets its answer.
    assert other.encode_texts(["still works"], as_query=True)[0].pooled.shape == (8,)


def test_spellings_of_one_folder_are_one_encoder(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    factory = SlowFactory()
    pool = EncoderPool(factory=factory)
    first = pool.get("fake", str(folder))
    for spelling in (f"{folder}/", f"{folder}/../model", f"{tmp_path}//model"):
        assert pool.get("fake", spelling) is first
    assert len(factory.loads) == 1


def test_each_encoder_kind_loads_on_its_own_device() -> None:
    """--text-device / --page-device: a kind with a device of its own gets it; others get --device."""
    seen: dict[str, str] = {}

    def factory(kind: str, model: str, device: str) -> Encoder:
        seen[kind] = device
        return FakeEncoder(model, 8)

    pool = EncoderPool("cpu", factory=factory, devices={"colpali": "cuda:1", "fake": ""})
    pool.get("colpali", "m1")
    pool.get("fake", "m2")
    pool.get("sentence-transformers", "m3")
    assert seen == {"colpali": "cuda:1", "fake": "cpu", "sentence-transformers": "cpu"}
