"""ColPali-family page encoders (ColPali, ColQwen2, ColQwen2.5, ColIdefics3) through colpali-engine.

A page image becomes one 128-d vector per image patch (late interaction) plus one pooled vector:

- Kept rows: only the image-patch embeddings (rows whose input id is the image token). colpali-engine's
  `mask_non_image_embeddings=True` does the same selection but only zeroes the other rows; we drop them
  instead, so that stored multi-vectors carry no prompt tokens ("Describe the image.") and no zero rows.
  Padded rows (attention mask 0) are dropped too: with left padding (ColQwen2, ColIdefics3) they can come out
  NaN under SDPA attention, and any other non-finite row is dropped defensively.
- Pooled vector: the L2-normalised mean of the kept patch vectors, for the first-stage HNSW search; the
  exact MaxSim over the patch vectors reranks (the mean-pooling pattern Qdrant recommends for ColPali).
- Texts keep every non-padded row, including the query augmentation tokens, which take part in MaxSim in
  these models' training.

Weights come from a local directory or the local Hugging Face cache only (`resolve_model_dir`).
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import Capability, Encoded, Encoder, EncoderError, normalise
from .models import resolve_model_dir
from .page_budget import page_cost, plan_batches
from .text import pick_device

if TYPE_CHECKING:
    from PIL.Image import Image


#: A model below this many parameters runs on one intra-op thread on a CPU. Its operations are too
#: small to split: OpenMP's hand-off and spin-waits cost more than the work, the more so when other
#: processes hold the cores. The tiny test ColPali (0.1M parameters) on 2 loaded cores: a query took
#: 18-26 ms (p50) on one thread against 73-135 ms on two, pages encoded at 32-36/s against 4-10/s
#: (benchmarks/results/colpali-search-profile.json). A real ColPali (3B) keeps every thread.
SMALL_MODEL_PARAMS = 50_000_000


@dataclass(frozen=True)
class Family:
    """How to load and read one backbone. `grid` names how image tokens map onto the page."""

    name: str
    model_class: str  # in colpali_engine.models
    processor_class: str
    grid: str | None  # "square" (fixed n x n), "thw" (from image_grid_thw), None (no box layout)
    prefix_lm: bool = False  # PaliGemma: an LM head to skip, and token types that make attention bidirectional


#: config.json model_type -> family. Checkpoints saved by colpali-engine keep the backbone's model_type.
FAMILIES = {
    "paligemma": Family("ColPali", "ColPali", "ColPaliProcessor", "square", prefix_lm=True),
    "qwen2_vl": Family("ColQwen2", "ColQwen2", "ColQwen2Processor", "thw"),
    "qwen2_5_vl": Family("ColQwen2.5", "ColQwen2_5", "ColQwen2_5_Processor", "thw"),
    # Idefics3 splits a page into tiles plus a global view: no single patch grid, so no boxes.
    "idefics3": Family("ColIdefics3", "ColIdefics3", "ColIdefics3Processor", None),
}


def detect_family(path: Path, model: str) -> Family:
    """Reads `path`/config.json (no torch needed, so a wrong folder fails in milliseconds)."""
    config_file = path / "config.json"
    if not config_file.is_file():
        hint = (
            " (it holds a PEFT adapter: pass a merged checkpoint)" if (path / "adapter_config.json").is_file() else ""
        )
        raise EncoderError(f"colpali model {model!r}: no config.json in {path}{hint}")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        raise EncoderError(f"colpali model {model!r}: cannot read {config_file}: {exc}") from exc
    model_type = str(config.get("model_type", ""))
    if model_type in FAMILIES:
        return FAMILIES[model_type]
    supported = ", ".join(f"{k} ({f.name})" for k, f in FAMILIES.items())
    raise EncoderError(
        f"colpali model {model!r}: unsupported model_type {model_type!r} "
        f"(architectures {config.get('architectures')}); supported: {supported}"
    )


class ColPaliEncoder(Encoder):
    """Multi-vector page and query encoder. Thread-safe: one lock serialises processor and model calls."""

    kind = "colpali"
    capabilities = frozenset({Capability.TEXT, Capability.IMAGE, Capability.LATE_INTERACTION})

    def __init__(self, model: str, device: str = "cpu", batch_size: int = 4, page_batch_mb: float = 0) -> None:
        """batch_size: at most this many pages or texts per forward pass; page_batch_mb > 0 also bounds a
        batch of pages by its estimated activation memory (page_budget.py), whatever their sizes."""
        path = resolve_model_dir(model)
        self.family = detect_family(path, model)
        try:
            import colpali_engine.models as ce
            import torch
        except ImportError as exc:
            raise EncoderError(f"colpali model {model!r} needs colpali-engine and torch: {exc}") from exc
        self._torch = torch
        self.device = pick_device(device)
        # bfloat16 is what these checkpoints are trained and served in; CPUs run float32 far better.
        self.dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        try:
            model_cls = getattr(ce, self.family.model_class)
            processor_cls = getattr(ce, self.family.processor_class)
            self._model = model_cls.from_pretrained(str(path), dtype=self.dtype, local_files_only=True)
            _restore_tied_head(self._model)
            self._model.to(self.device).eval()
            self._processor = processor_cls.from_pretrained(str(path), local_files_only=True)
        except Exception as exc:
            raise EncoderError(f"cannot load {self.family.name} model {model!r} from {path}: {exc}") from exc
        self.model = model
        self.dim = int(getattr(self._model, "dim", 128))
        self.batch_size = batch_size
        self.page_batch_bytes = int(page_batch_mb * 2**20)
        dtype_bytes = 2 if self.dtype == torch.bfloat16 else 4
        self.page_cost = page_cost(self.family.grid, self._processor, self._model.config, dtype_bytes)
        params = sum(p.numel() for p in self._model.parameters())
        self._one_thread = not self.device.startswith("cuda") and params < SMALL_MODEL_PARAMS
        self._tokenizer = self._processor.tokenizer
        self._lock = threading.Lock()

    # -- public API -------------------------------------------------------------------------------

    def encode_images(self, images: Sequence[Image]) -> list[Encoded]:
        """Pages -> per page tokens (n_patches, dim) and pooled (dim,); boxes where the grid is known."""
        out: list[Encoded] = []
        sizes = [im.size for im in images]
        budget = self.page_batch_bytes or sys.maxsize  # 0: pages are bounded by batch_size alone
        for pages in plan_batches(sizes, self.page_cost, budget, self.batch_size):
            start = pages.start
            # convert() copies even an RGB image: a tenth of a tiny model's page time went to that copy
            batch = [im if im.mode == "RGB" else im.convert("RGB") for im in images[pages.start : pages.stop]]
            with self._lock:
                inputs = self._processor.process_images(batch)
                embeddings = self._forward(inputs)
                image_mask = self._processor.get_image_mask(inputs).cpu().numpy()
            attention = inputs["attention_mask"].cpu().numpy()
            for i in range(len(batch)):
                keep = self._kept_rows(embeddings[i], attention[i] & image_mask[i], start + i)
                out.append(self._page(embeddings[i][keep], inputs, i))
        return out

    def encode_texts(self, texts: Sequence[str], *, as_query: bool) -> list[Encoded]:
        """Texts -> tokens (n_tokens, dim) over every non-padded token, and their mean as pooled (dim,).
        Queries get the model's query prefix and augmentation tokens; documents are encoded raw. Texts longer
        than `max_tokens` are cut there."""
        out: list[Encoded] = []
        for start in range(0, len(texts), self.batch_size):
            with self._lock:
                batch = [self._truncate(t) for t in texts[start : start + self.batch_size]]
                process = self._processor.process_queries if as_query else self._processor.process_texts
                inputs = process(batch)
                embeddings = self._forward(inputs)
                ids = inputs["input_ids"].cpu().numpy()
                attention = inputs["attention_mask"].cpu().numpy()
                for i in range(len(batch)):
                    keep = self._kept_rows(embeddings[i], attention[i], start + i)
                    strings = self._tokenizer.batch_decode([[int(t)] for t in ids[i][keep]])
                    out.append(_encoded(embeddings[i][keep], [s.strip() or s for s in strings], None))
        return out

    # -- internals --------------------------------------------------------------------------------

    def _truncate(self, text: str) -> str:
        """Cuts `text` after its first `max_tokens` tokens, at a character boundary (the processors do not
        truncate, and cutting token ids would drop the suffixes they append)."""
        if len(text) <= self.max_tokens:  # a token covers at least one character
            return text
        enc = self._tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc.get("offset_mapping") or []
        return text[: offsets[self.max_tokens - 1][1]] if len(offsets) > self.max_tokens else text

    def _forward(self, inputs: Any) -> np.ndarray:
        """Runs the model on a processed batch -> (batch, seq, dim) float32, rows not yet filtered."""
        torch = self._torch
        kwargs = {k: v for k, v in inputs.items() if k != "labels"}  # labels would make PaliGemma compute a loss
        for key, value in kwargs.items():
            if isinstance(value, torch.Tensor):
                value = value.to(self.device)
                kwargs[key] = value.to(self.dtype) if value.is_floating_point() else value
        if self.family.prefix_lm:
            kwargs["logits_to_keep"] = 1  # full-vocabulary logits for every token would cost more than the encoder
            # Texts come without token types: transformers 5 then attends causally when the batch is padded but
            # bidirectionally when not (SDPA skips the mask). All-prefix types give bidirectional attention either
            # way, which is what transformers 4 (where ColPali was trained) did at inference.
            kwargs.setdefault("token_type_ids", self._torch.zeros_like(kwargs["input_ids"]))
        threads = torch.get_num_threads()
        if self._one_thread and threads > 1:
            torch.set_num_threads(1)  # see SMALL_MODEL_PARAMS; per calling thread (OpenMP), restored below
        try:
            with torch.inference_mode():
                embeddings = self._model(**kwargs)
        finally:
            if self._one_thread and threads > 1:
                torch.set_num_threads(threads)
        result: np.ndarray = embeddings.float().cpu().numpy()
        return result

    def _kept_rows(self, rows: np.ndarray, wanted: np.ndarray, index: int) -> np.ndarray:
        """Indices of the `wanted` rows (seq,) that are also finite."""
        indices = np.flatnonzero((wanted > 0) & np.isfinite(rows).all(-1))
        if indices.size == 0:
            raise EncoderError(
                f"{self.family.name} model {self.model!r} gave no usable vectors for input {index} "
                "(empty text, or non-finite model output)"
            )
        return indices

    def _page(self, rows: np.ndarray, inputs: Any, i: int) -> Encoded:
        """Kept rows (n, dim) of page i -> Encoded, with a box per patch when they tile a known grid
        (a page that lost a non-finite row gets no boxes rather than misplaced ones)."""
        grid = self._grid(inputs, i)
        if grid is None or grid[0] * grid[1] != len(rows):
            return _encoded(rows, [f"patch {k}" for k in range(len(rows))], None)
        n_rows, n_cols = grid
        r, c = np.divmod(np.arange(len(rows)), n_cols)
        boxes = np.stack([c / n_cols, r / n_rows, (c + 1) / n_cols, (r + 1) / n_rows], axis=1).astype(np.float32)
        strings = [f"patch r{a}c{b}" for a, b in zip(r.tolist(), c.tolist(), strict=True)]
        return _encoded(rows, strings, boxes)

    def _grid(self, inputs: Any, i: int) -> tuple[int, int] | None:
        """(rows, cols) of image tokens over the whole page, row-major, or None when unknown.

        ColPali resizes every page to a fixed square and emits an n x n grid; Qwen2-VL resizes the whole
        page to (h, w) patches and merges merge x merge neighbours into one token, row-major."""
        if self.family.grid == "square":
            side = round(float(self._processor.image_seq_length) ** 0.5)
            return side, side
        if self.family.grid == "thw" and "image_grid_thw" in inputs:
            t, h, w = (int(x) for x in inputs["image_grid_thw"][i])
            merge = int(getattr(self._processor.image_processor, "merge_size", 2))
            return (h // merge, w // merge) if t == 1 else None  # t > 1 only for video
        return None


def _restore_tied_head(model: Any) -> None:
    """ColPali checkpoints leave out PaliGemma's lm_head (it is tied to the input embeddings) and transformers
    5 leaves it on the meta device, which `.to(device)` cannot move: re-tie it. It never feeds the embeddings."""
    if any(p.is_meta for p in model.parameters()):
        inner: Any = getattr(model, "model", None)
        if hasattr(inner, "tie_weights"):
            inner.tie_weights()
    missing = [name for name, p in model.named_parameters() if p.is_meta]
    if missing:
        raise EncoderError(f"weights missing from the checkpoint: {', '.join(missing[:5])}")


def _encoded(rows: np.ndarray, strings: list[str], boxes: np.ndarray | None) -> Encoded:
    tokens = normalise(rows)
    return Encoded(pooled=normalise(tokens.mean(axis=0)), tokens=tokens, token_strings=strings, token_boxes=boxes)


def create(model: str, device: str, page_batch_mb: float = 0) -> Encoder:
    """The factory of kind "colpali" (registry.FACTORIES)."""
    if not model:
        raise EncoderError("the colpali encoder needs a model: a local checkpoint folder or a cached Hugging Face id")
    return ColPaliEncoder(model, device, page_batch_mb=page_batch_mb)
