"""Cross-encoder reranking (sentence-transformers CrossEncoder), by local path or cached model id.

Off by default: no cross-encoder weights ship with mmsearch. Scores are the model's logits through a
sigmoid, in [0, 1] (the usual activation for MS MARCO-style single-logit rerankers). Like the encoders,
the model runs on its own thread (batching.py says why).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import EncoderError
from .batching import Worker
from .models import resolve_model_dir
from .text import pick_device


class CrossEncoderScorer(Worker):
    def __init__(self, model: str, device: str = "cpu", max_length: int = 512) -> None:
        path = resolve_model_dir(model)
        from sentence_transformers import CrossEncoder

        try:
            self._ce = CrossEncoder(str(path), device=pick_device(device), local_files_only=True, max_length=max_length)
        except Exception as exc:
            raise EncoderError(f"cannot load cross-encoder {model!r} from {path}: {exc}") from exc
        self.model = model
        super().__init__("cross-encoder")

    def score(self, query: str, documents: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """(n,) relevance in [0, 1], one per document."""
        if not documents:
            return np.zeros(0, dtype=np.float32)
        pairs = [(query, d) for d in documents]
        logits = self.call(
            lambda: self._ce.predict(
                pairs, batch_size=batch_size, show_progress_bar=False, activation_fn=None, convert_to_numpy=True
            )
        )
        logits = np.asarray(logits, dtype=np.float32).reshape(len(documents), -1)[:, 0]
        return 1.0 / (1.0 + np.exp(-logits))
