"""Encoder kinds by name: each kind's factory as "module:function", imported on first use, so that
importing the registry imports no model library, and no encoder imports the registry."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .base import Encoder, EncoderError

Factory = Callable[..., Encoder]  # (model, device, **kind-specific options) -> Encoder

FACTORIES: dict[str, str] = {
    "sentence-transformers": "mmsearch.encoders.text:create",
    "colpali": "mmsearch.encoders.colpali:create",
    "fake": "mmsearch.encoders.fake:create",
}


def create(kind: str, model: str, device: str = "cpu", **options: Any) -> Encoder:
    """options: keyword arguments the kind's factory takes (e.g. the text model's backend)."""
    target = FACTORIES.get(kind)
    if target is None:
        raise EncoderError(f"unknown encoder kind {kind!r}; known kinds: {', '.join(sorted(FACTORIES))}")
    module, name = target.split(":")
    try:
        factory: Factory = getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise EncoderError(f"encoder kind {kind!r} cannot be loaded: {exc}") from exc
    try:
        return factory(model, device, **options)
    except (OSError, ValueError) as exc:  # a name that is no model: too long for a path, not a valid id, ...
        raise EncoderError(f"encoder {kind!r} cannot load model {model[:200]!r}: {exc}") from exc
