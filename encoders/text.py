"""Text bi-encoder through sentence-transformers (default: all-MiniLM-L6-v2, bundled)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from .base import Capability, Encoded, Encoder, EncoderError, normalise
from .models import resolve_model_dir


def pick_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class SentenceTransformerEncoder(Encoder):
    """Pooled vector = the model's sentence embedding; token vectors = its contextual token
    embeddings without [CLS]/[SEP], normalised (sentence-transformers returns them raw)."""

    kind = "sentence-transformers"
    capabilities = frozenset({Capability.TEXT})

    def __init__(self, model: str, device: str = "cpu") -> None:
        path = resolve_model_dir(model)  # before importing torch: a bad path fails in milliseconds
        from sentence_transformers import SentenceTransformer

        try:
            self._st = SentenceTransformer(str(path), device=pick_device(device), local_files_only=True)
        except Exception as exc:
            raise EncoderError(f"cannot load sentence-transformers model {model!r} from {path}: {exc}") from exc
        self.model = model
        dim: int | None = getattr(self._st, "get_embedding_dimension", self._st.get_sentence_embedding_dimension)()
        if dim is None:
            raise EncoderError(f"model {model!r} does not declare its embedding dimension")
        self.dim = int(dim)
        self.max_tokens = int(self._st.max_seq_length or 512)
        self._tokenizer = self._st.tokenizer
        self._special = set(self._tokenizer.all_special_ids)
        # Tokenizers' Rust objects are not safe to share across threads mid-call.
        self._lock = threading.Lock()

    def encode_texts(self, texts: Sequence[str], *, as_query: bool) -> list[Encoded]:
        if not texts:
            return []
        with self._lock:
            outputs = self._st.encode(
                list(texts), output_value=None, batch_size=32, convert_to_numpy=False, show_progress_bar=False
            )
            # Character spans of the same tokens (same tokenizer, same truncation) for explanations.
            offsets = self._tokenizer(
                list(texts), return_offsets_mapping=True, truncation=True, max_length=self.max_tokens
            )["offset_mapping"]
        result = []
        out: Any
        for out, spans in zip(outputs, offsets, strict=True):
            # Outputs of a batch can keep the batch's right padding: cut to the attention mask.
            n = int(out["attention_mask"].sum())
            ids = out["input_ids"].tolist()[:n]
            keep = [i for i, t in enumerate(ids) if t not in self._special] or list(range(n))
            tokens = out["token_embeddings"][:n].float().cpu().numpy()[keep]
            pooled = out["sentence_embedding"].float().cpu().numpy()
            strings = self._tokenizer.convert_ids_to_tokens([ids[i] for i in keep])
            kept_spans = [tuple(spans[i]) for i in keep] if len(spans) == len(ids) else None
            result.append(
                Encoded(
                    pooled=normalise(pooled),
                    tokens=normalise(tokens),
                    token_strings=list(strings),
                    token_spans=kept_spans,  # type: ignore[arg-type]
                )
            )
        return result


def create(model: str, device: str) -> Encoder:
    """The factory of kind "sentence-transformers" (registry.FACTORIES)."""
    return SentenceTransformerEncoder(model or "all-MiniLM-L6-v2", device)
