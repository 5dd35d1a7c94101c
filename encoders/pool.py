"""The loaded encoders: each (kind, model) loaded once per process, on first use, and kept."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future

from .base import Encoder
from .batching import EncoderThread
from .registry import create


class EncoderPool:
    """Safe to call from many threads. A model loads outside the pool's lock: a caller waits only for
    the encoder it asked for (a ColPali model loading for a new collection does not hold up searches
    with a loaded text encoder). A load that fails is not kept: the next call tries again."""

    def __init__(self, device: str = "cpu", factory: Callable[[str, str, str], Encoder] = create) -> None:
        self.device = device
        self._factory = factory  # (kind, model, device) -> Encoder
        self._encoders: dict[tuple[str, str], Future[Encoder]] = {}
        self._lock = threading.Lock()

    def get(self, kind: str, model: str) -> Encoder:
        key = (kind, model)
        with self._lock:
            loading = self._encoders.get(key)
            first = loading is None
            if loading is None:
                loading = self._encoders[key] = Future()
        if first:
            try:
                # One thread per encoder, concurrent queries batched: see batching.py.
                loading.set_result(EncoderThread(self._factory(kind, model, self.device)))
            except BaseException as exc:
                with self._lock:
                    del self._encoders[key]
                loading.set_exception(exc)
        return loading.result()

    def loaded(self) -> list[Encoder]:
        with self._lock:
            loads = list(self._encoders.values())
        return [f.result() for f in loads if f.done() and f.exception() is None]
