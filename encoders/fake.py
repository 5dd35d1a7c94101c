"""A deterministic encoder without a model, so server and storage tests run in seconds.

Each lower-cased word maps to a fixed pseudo-random unit vector (seeded by a hash of the word), so
texts that share words have similar token vectors and pooled vectors: search over it behaves like
a crude bag-of-words model, which is enough to assert rankings in tests.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence

import numpy as np

from .base import Capability, Encoded, Encoder, EncoderError, normalise

_WORD = re.compile(r"\w+", re.UNICODE)


@functools.lru_cache(maxsize=200_000)
def _word_vector(word: str, dim: int) -> np.ndarray:
    # Cached: a seeded generator per word costs ~10 us, and `mmsearch bench --storage-only` encodes
    # millions of words from a vocabulary of a few ten thousand. Read-only, so sharing it is safe.
    seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    vector.flags.writeable = False
    return vector


class FakeEncoder(Encoder):
    kind = "fake"
    capabilities = frozenset({Capability.TEXT})
    max_tokens = 256

    def __init__(self, model: str = "fake-32", dim: int = 32) -> None:
        self.model = model
        self.dim = dim

    def word_vector(self, word: str) -> np.ndarray:
        """(dim,) float32, not normalised; the same for a word in every process."""
        return _word_vector(word, self.dim)

    def split(self, text: str) -> tuple[list[str], list[tuple[int, int]]]:
        """The words that get a vector each (lower-cased, at most max_tokens) and their spans."""
        matches = list(_WORD.finditer(text))[: self.max_tokens]
        return [m.group().lower() for m in matches] or ["<empty>"], [(m.start(), m.end()) for m in matches] or [(0, 0)]

    def encode_texts(self, texts: Sequence[str], *, as_query: bool) -> list[Encoded]:
        out = []
        for text in texts:
            words, spans = self.split(text)
            tokens = normalise(np.stack([self.word_vector(w) for w in words]))
            out.append(
                Encoded(pooled=normalise(tokens.mean(axis=0)), tokens=tokens, token_strings=words, token_spans=spans)
            )
        return out


def create(model: str, device: str) -> Encoder:
    """The factory of kind "fake" (registry.FACTORIES)."""
    # "fake" or "fake-<dim>"
    try:
        dim = int(model.rsplit("-", 1)[1]) if model.startswith("fake-") else 32
    except ValueError:
        raise EncoderError(f"fake encoder model {model[:200]!r}: use 'fake' or 'fake-<dimension>'") from None
    if not 1 <= dim <= 4096:
        raise EncoderError(f"fake encoder dimension must be between 1 and 4096, got {dim}")
    return FakeEncoder(model or "fake-32", dim)
