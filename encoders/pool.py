"""The loaded encoders: each (kind, model) loaded once per process, on first use, and kept."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

from .base import Encoder
from .batching import EncoderThread
from .registry import create


class EncoderPool:
    """Safe to call from many threads. A model loads outside the pool's lock: a caller waits only for
    the encoder it asked for (a ColPali model loading for a new collection does not hold up searches
    with a loaded text encoder). A load that fails is not kept: the next call tries again."""

    def __init__(
        self,
        device: str = "cpu",
        options: Mapping[str, Mapping[str, Any]] | None = None,
        factory: Callable[..., Encoder] = create,
    ) -> None:
        """options: per encoder kind, keyword arguments of its factory, e.g.
        {"sentence-transformers": {"backend": "onnx", "cache_dir": Path(...)}}."""
        self.device = device
        self.options = {k: dict(v) for k, v in (options or {}).items()}
        self._factory = factory  # (kind, model, device, **options) -> Encoder
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
                loading.set_result(EncoderThread(self._factory(kind, model, self.device, **self.options.get(kind, {}))))
            except BaseException as exc:
                with self._lock:
                    del self._encoders[key]
                loading.set_exception(exc)
        return loading.result()

    def loaded(self) -> list[Encoder]:
        with self._lock:
            loads = list(self._encoders.values())
        return [f.result() for f in loads if f.done() and f.exception() is None]
