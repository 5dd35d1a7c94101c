"""The loaded encoders: each (kind, model) loaded once per process, on first use, and kept while it is
among the `max_encoders` most recently used (a client naming new models cannot grow the server)."""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import Any

from .base import Encoder
from .batching import EncoderThread
from .registry import create

log = logging.getLogger(__name__)
Key = tuple[str, str]


class EncoderPool:
    """Safe to call from many threads. A model loads outside the pool's lock: a caller waits only for
    the encoder it asked for (a ColPali model loading for a new collection does not hold up searches
    with a loaded text encoder). A load that fails is not kept: the next call tries again.

    Bounded: beyond `max_encoders` loaded models, the least recently used is evicted, except pinned
    ones (the server's default text encoder) and ones in use (running or holding calls); while every
    model is in use the pool may hold more, and shrinks on a later load."""

    def __init__(
        self,
        device: str = "cpu",
        options: Mapping[str, Mapping[str, Any]] | None = None,
        factory: Callable[..., Encoder] = create,
        max_encoders: int = 4,
        pinned: Iterable[Key] = (),
        devices: Mapping[str, str] | None = None,
    ) -> None:
        """options: per encoder kind, keyword arguments of its factory, e.g.
        {"sentence-transformers": {"backend": "onnx", "cache_dir": Path(...)}}.
        devices: per encoder kind, its device when not `device` (empty values mean `device`)."""
        self.device = device
        self.devices = {k: v for k, v in (devices or {}).items() if v}
        self.options = {k: dict(v) for k, v in (options or {}).items()}
        self._factory = factory  # (kind, model, device, **options) -> Encoder
        self.max_encoders = max_encoders
        self.pinned = {self.key(k, m) for k, m in pinned}
        self._encoders: OrderedDict[Key, Future[Encoder]] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()

    @staticmethod
    def key(kind: str, model: str) -> Key:
        """Spellings of one local folder (trailing '/', '..', links) are one model: one copy in memory."""
        if model and os.path.isdir(model):  # False (never raises) for names too long to be paths
            model = os.path.realpath(model)
        return (kind, model)

    def get(self, kind: str, model: str) -> Encoder:
        key = self.key(kind, model)
        with self._lock:
            loading = self._encoders.get(key)
            first = loading is None
            if loading is None:
                loading = self._encoders[key] = Future()
            else:
                self._encoders.move_to_end(key)
        if first:
            try:
                # One thread per encoder, concurrent queries batched: see batching.py.
                device = self.devices.get(kind, self.device)
                loading.set_result(EncoderThread(self._factory(kind, model, device, **self.options.get(kind, {}))))
            except BaseException as exc:
                with self._lock:
                    del self._encoders[key]
                loading.set_exception(exc)
            else:
                self._evict(keep=key)
        return loading.result()

    def _evict(self, keep: Key) -> None:
        evicted = []
        with self._lock:
            excess = len(self._encoders) - self.max_encoders
            for key, loading in list(self._encoders.items()):
                if excess <= 0:
                    break
                if key == keep or key in self.pinned or not loading.done() or loading.exception() is not None:
                    continue
                encoder = loading.result()
                if isinstance(encoder, EncoderThread) and encoder.busy:
                    continue
                del self._encoders[key]
                evicted.append(encoder)
                excess -= 1
        for encoder in evicted:
            log.info("evicting encoder %s:%s (max_encoders %d)", encoder.kind, encoder.model, self.max_encoders)
            if isinstance(encoder, EncoderThread):
                encoder.close()

    def loaded(self) -> list[Encoder]:
        with self._lock:
            loads = list(self._encoders.values())
        return [f.result() for f in loads if f.done() and f.exception() is None]
