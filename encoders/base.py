"""The encoder interface: every encoder turns inputs into a pooled vector (first-stage search)
and token/patch multi-vectors (late interaction), both L2-normalised."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL.Image import Image


class Capability(StrEnum):
    TEXT = "text"  # encodes text documents and queries
    IMAGE = "image"  # encodes page images
    # Token vectors trained for MaxSim scoring (ColBERT/ColPali): late interaction is the model's own
    # ranking, not a side signal, so search scores every candidate with it.
    LATE_INTERACTION = "late_interaction"


@dataclass(frozen=True)
class Encoded:
    """One input's vectors.

    pooled: (dim,) float32, unit norm.
    tokens: (n_tokens, dim) float32, each row unit norm; n_tokens >= 1.
    token_strings: n_tokens strings (word pieces, words, or "patch i") for explanations.
    token_spans: for text, each token's (start, end) character span in the input, when known.
    token_boxes: for image patches, (n_tokens, 4) x0, y0, x1, y1 as fractions of the page, when known.
    """

    pooled: np.ndarray
    tokens: np.ndarray
    token_strings: list[str] = field(default_factory=list)
    token_spans: list[tuple[int, int]] | None = None
    token_boxes: np.ndarray | None = None


class EncoderError(Exception):
    """An encoder cannot be loaded or cannot encode an input (message names which and why)."""


class Encoder(ABC):
    """A loaded model. Implementations are thread-safe for concurrent encode calls."""

    kind: str
    model: str
    dim: int
    capabilities: frozenset[Capability]
    #: Longest text (in model tokens) the encoder reads; longer input is truncated.
    max_tokens: int = 512

    @abstractmethod
    def encode_texts(self, texts: Sequence[str], *, as_query: bool) -> list[Encoded]:
        """Encodes texts as queries or as documents."""

    def encode_images(self, images: Sequence[Image]) -> list[Encoded]:
        """Encodes page images. Text-only encoders do not implement it."""
        raise EncoderError(f"encoder {self.kind}:{self.model} does not encode images")


def normalise(x: np.ndarray) -> np.ndarray:
    """L2-normalises the last axis; zero rows stay zero. float32 out."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)
