"""Encoder kinds by name, and a pool that loads each (kind, model) once per process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from .base import Encoder, EncoderError
from .batching import EncoderThread

Factory = Callable[..., Encoder]  # (model, device, **kind-specific options) -> Encoder

_FACTORIES: dict[str, Factory] = {}


def register(kind: str) -> Callable[[Factory], Factory]:
    def wrap(factory: Factory) -> Factory:
        _FACTORIES[kind] = factory
        return factory

    return wrap


def kinds() -> list[str]:
    _load_builtins()
    return sorted(_FACTORIES)


def create(kind: str, model: str, device: str = "cpu", **options: Any) -> Encoder:
    """options: keyword arguments the kind's factory takes (e.g. the text model's backend)."""
    _load_builtins()
    if kind not in _FACTORIES:
        raise EncoderError(f"unknown encoder kind {kind!r}; known kinds: {', '.join(sorted(_FACTORIES))}")
    return _FACTORIES[kind](model, device, **options)


def _load_builtins() -> None:
    # Imported lazily so that importing the registry does not import torch.
    from . import fake, text  # noqa: F401

    try:
        from . import colpali  # noqa: F401  (needs colpali-engine)
    except ImportError:
        pass


class EncoderPool:
    """Loads encoders on first use and keeps them; safe to call from many threads.

    options: per encoder kind, the keyword arguments its factory gets, e.g.
    {"sentence-transformers": {"backend": "onnx", "cache_dir": Path(...)}}.
    """

    def __init__(self, device: str = "cpu", options: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.device = device
        self.options = dict(options or {})
        self._encoders: dict[tuple[str, str], Encoder] = {}
        self._lock = threading.Lock()

    def get(self, kind: str, model: str) -> Encoder:
        key = (kind, model)
        with self._lock:
            if key not in self._encoders:
                # One thread per encoder, concurrent queries batched: see batching.py.
                self._encoders[key] = EncoderThread(create(kind, model, self.device, **self.options.get(kind, {})))
            return self._encoders[key]

    def loaded(self) -> list[Encoder]:
        with self._lock:
            return list(self._encoders.values())
