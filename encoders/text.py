"""Text bi-encoder through sentence-transformers (default: all-MiniLM-L6-v2, bundled)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .base import Capability, Encoded, Encoder, EncoderError, normalise
from .models import resolve_model_dir

log = logging.getLogger(__name__)

#: How the text model runs: torch, or the ONNX Runtime export in fp32 or int8 (see onnx_text.py).
TEXT_BACKENDS = ("torch", "onnx", "onnx-int8")
#: The server's default (settings.text_backend): on 2 AVX2 cores 1.95x the passages/s of the torch
#: path before session 14, SciFact nDCG@10 0.7434 against torch's 0.7428 (docs/benchmarks.md).
DEFAULT_BACKEND = "onnx-int8"
#: Texts per forward pass on CPU. Both runtimes sort a call's texts by length first, so smaller
#: batches pad less: the server's calls of 32 SciFact passages of 64 words (70-175 tokens) computed
#: 1.37x their tokens as one padded batch, 1.17x as two sorted batches of 16 (torch: 1.03x faster in
#: separate processes, 1.16-1.23x in one; benchmarks/results/text-int8-recipes-s14.json and
#: text-backend-s14.json). A GPU, unmeasured here, keeps sentence-transformers' 32.
TEXT_BATCH = 16
GPU_BATCH = 32


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

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        backend: str = "torch",
        cache_dir: Path | None = None,
        batch_size: int | None = None,
    ) -> None:
        """backend: one of TEXT_BACKENDS; the ONNX ones run on CPU only and cache their export in
        cache_dir (required for them). batch_size: texts per forward pass (default TEXT_BATCH on CPU,
        GPU_BATCH elsewhere; benchmarks compare others)."""
        if backend not in TEXT_BACKENDS:
            raise EncoderError(f"unknown text backend {backend!r}; known: {', '.join(TEXT_BACKENDS)}")
        path = resolve_model_dir(model)  # before importing torch: a bad path fails in milliseconds
        from sentence_transformers import SentenceTransformer

        device = pick_device(device)
        if backend != "torch" and device != "cpu":
            log.info("text backend %s runs on CPU only; using torch on %s", backend, device)
            backend = "torch"
        try:
            st = SentenceTransformer(str(path), device=device, local_files_only=True)
        except Exception as exc:
            raise EncoderError(f"cannot load sentence-transformers model {model!r} from {path}: {exc}") from exc
        self.model = model
        batch = batch_size or (TEXT_BATCH if device == "cpu" else GPU_BATCH)
        dim: int | None = getattr(st, "get_embedding_dimension", st.get_sentence_embedding_dimension)()
        if dim is None:
            raise EncoderError(f"model {model!r} does not declare its embedding dimension")
        self.dim = int(dim)
        self.max_tokens = int(st.max_seq_length or 512)
        self._tokenizer = st.tokenizer
        self._special = set(self._tokenizer.all_special_ids)
        # Per text: input_ids, attention_mask, token_embeddings, sentence_embedding (torch tensors).
        self._forward: Callable[[list[str]], Any]
        if backend != "torch":
            if cache_dir is None:
                raise EncoderError(f"text backend {backend} needs a cache directory for its ONNX export")
            from .onnx_text import OnnxTransformer

            try:
                # Keeps the tokenizer and pooling modules; the torch weights are freed with `st`.
                runtime = OnnxTransformer(st, model, cache_dir, backend)
            except Exception as exc:  # a failed export must not stop the server: torch computes the same
                log.error(
                    "text backend %s is unavailable for %s (%s); the model runs on torch",
                    backend,
                    model,
                    exc,
                    exc_info=True,
                )
                backend = "torch"
            else:
                self._forward = lambda texts: runtime.encode(texts, batch)
        if backend == "torch":
            self._forward = lambda texts: st.encode(
                texts, output_value=None, batch_size=batch, convert_to_numpy=False, show_progress_bar=False
            )
        self.backend = backend
        # Tokenizers' Rust objects are not safe to share across threads mid-call.
        self._lock = threading.Lock()

    def encode_texts(self, texts: Sequence[str], *, as_query: bool) -> list[Encoded]:
        if not texts:
            return []
        with self._lock:
            outputs = self._forward(list(texts))
            # Character spans of the same tokens (same tokenizer, same truncation) for explanations: the
            # ONNX path returns them from its one tokenisation, padded like its batch (cut below).
            if self.backend == "torch":
                offsets = self._tokenizer(
                    list(texts), return_offsets_mapping=True, truncation=True, max_length=self.max_tokens
                )["offset_mapping"]
            else:
                offsets = [o["offset_mapping"].tolist() for o in outputs]
        result = []
        out: Any
        for out, spans in zip(outputs, offsets, strict=True):
            # Outputs of a batch can keep the batch's right padding: cut to the attention mask.
            n = int(out["attention_mask"].sum())
            ids, spans = out["input_ids"].tolist()[:n], spans[:n]
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


def create(model: str, device: str, backend: str = "torch", cache_dir: Path | None = None) -> Encoder:
    """The factory of kind "sentence-transformers" (registry.FACTORIES)."""
    return SentenceTransformerEncoder(model or "all-MiniLM-L6-v2", device, backend, cache_dir)
