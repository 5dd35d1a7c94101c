"""Encoder kinds by name, and a pool that loads each (kind, model) once per process."""

from __future__ import annotations

import threading
from collections.abc import Callable

from .base import Encoder, EncoderError
from .batching import EncoderThread

Factory = Callable[[str, str], Encoder]  # (model, device) -> Encoder

_FACTORIES: dict[str, Factory] = {}


def register(kind: str) -> Callable[[Factory], Factory]:
    def wrap(factory: Factory) -> Factory:
        _FACTORIES[kind] = factory
        return factory

    return wrap


def create(kind: str, model: str, device: str = "cpu") -> Encoder:
    _load_builtins()
    if kind not in _FACTORIES:
        raise EncoderError(f"unknown encoder kind {kind!r}; known kinds: {', '.join(sorted(_FACTORIES))}")
    return _FACTORIES[kind](model, device)


def _load_builtins() -> None:
    # Imported lazily so that importing the registry does not import torch.
    from . import fake, text  # noqa: F401

    try:
        from . import colpali  # noqa: F401  (needs colpali-engine)
    except ImportError:
        pass


class EncoderPool:
    """Loads encoders on first use and keeps them; safe to call from many threads."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._encoders: dict[tuple[str, str], Encoder] = {}
        self._lock = threading.Lock()

    def get(self, kind: str, model: str) -> Encoder:
        key = (kind, model)
        with self._lock:
            if key not in self._encoders:
                # One thread per encoder, concurrent queries batched: see batching.py.
                self._encoders[key] = EncoderThread(create(kind, model, self.device))
            return self._encoders[key]

    def loaded(self) -> list[Encoder]:
        with self._lock:
            return list(self._encoders.values())
