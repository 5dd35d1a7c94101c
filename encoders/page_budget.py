"""Batches of page images bounded by an activation-memory budget, not by a page count.

Why: a fixed number of pages per forward pass can need any amount of memory, because the sequence a
page becomes depends on the model and, for dynamic-resolution backbones (Qwen2-VL), on the page's size:
colpali-engine issue 87 is a 15-page PDF that tried to allocate 59 GiB. Here each page's sequence
length is estimated from its size and the processor's own resize rules *before* any tensor is made,
and consecutive pages are grouped while the estimate of the batch (pages x longest sequence, since
a batch is padded to its longest) stays under the budget. A page that alone exceeds the budget is
encoded alone (and logged): the processor's own pixel limits bound it.

The estimate: per token of the padded batch, the widest layer's activations (hidden + MLP
intermediate, vision tower or language model, whichever is wider) times a factor for what a layer
keeps alive at once (residual, attention projections, MLP input and output), in the model's dtype.
Attention runs through SDPA, so no (sequence x sequence) score matrix is kept. Weights are outside it.

The factor is measured: on an H200 in bf16, random models of ColPali v1's and ColQwen2's real widths and
depths (benchmarks/gpu_colpali.py) peaked at 1.38× (ColPali) and 1.47-1.52× (ColQwen2) the estimate
made with a factor of 4, i.e. over a 2048 MiB budget (2,661 and up to 2,932 MiB over the weights:
benchmarks/results/gpu_colpali_h200.json). With 7, batches peaked at 0.79-0.87 of their estimate,
i.e. at 1.4-1.5 GiB, under the 2 GiB budget, pages of 48 megapixels included
(gpu_colpali_h200_factor7.json; docs/benchmarks.md, "ColPali on a GPU"). Not measured: float32 on
a CPU, and the Idefics3 layout (ColSmol); the same factor applies to them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: Live activation tensors per token and layer, in units of the layer's width (hidden + intermediate):
#: measured for ColPali and ColQwen2 in bf16 on a GPU (module docstring), with a margin.
LIVE_FACTOR = 7


@dataclass(frozen=True)
class PageCost:
    """How a model's pages turn into sequence tokens and bytes."""

    tokens_of: Callable[[int, int], int]  # (width, height) of a page -> its sequence length
    bytes_per_token: int

    def batch_bytes(self, tokens: Sequence[int]) -> int:
        return len(tokens) * max(tokens) * self.bytes_per_token if tokens else 0


def plan_batches(sizes: Sequence[tuple[int, int]], cost: PageCost, budget_bytes: int, max_pages: int) -> list[range]:
    """Consecutive ranges of `sizes` (page order kept) under `budget_bytes` and `max_pages` each."""
    batches: list[range] = []
    start, tokens = 0, list[int]()
    for i, (w, h) in enumerate(sizes):
        t = cost.tokens_of(w, h)
        if tokens and (len(tokens) >= max_pages or cost.batch_bytes([*tokens, t]) > budget_bytes):
            batches.append(range(start, i))
            start, tokens = i, list[int]()
        tokens.append(t)
        if len(tokens) == 1 and cost.batch_bytes(tokens) > budget_bytes:
            log.warning(
                "a %dx%d page needs about %.0f MiB of activations, over the page batch budget of %.0f MiB: "
                "encoded alone",
                w,
                h,
                cost.batch_bytes(tokens) / 2**20,
                budget_bytes / 2**20,
            )
    if tokens:
        batches.append(range(start, len(sizes)))
    return batches


def page_cost(family_grid: str | None, processor: Any, config: Any, dtype_bytes: int) -> PageCost:
    """The cost model of a loaded checkpoint: its processor's resize rules and its configs' widths."""
    image_processor = getattr(processor, "image_processor", None)
    prompt = 32  # the text around the image tokens ("Describe the image." and special tokens), generously
    if family_grid == "square":  # ColPali: every page resized to one square, a fixed number of tokens
        fixed = int(getattr(processor, "image_seq_length", 0) or getattr(image_processor, "image_seq_length", 1024))

        def tokens_of(w: int, h: int) -> int:
            return fixed + prompt

    elif family_grid == "thw":  # Qwen2-VL: the page keeps its aspect, resized within min/max pixels
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

        patch = int(getattr(image_processor, "patch_size", 14))
        merge = int(getattr(image_processor, "merge_size", 2))
        size = getattr(image_processor, "size", None) or {}
        min_px = int(getattr(image_processor, "min_pixels", None) or size.get("shortest_edge", 56 * 56))
        max_px = int(getattr(image_processor, "max_pixels", None) or size.get("longest_edge", 28 * 28 * 1280))

        def tokens_of(w: int, h: int) -> int:
            rh, rw = smart_resize(max(h, 1), max(w, 1), factor=patch * merge, min_pixels=min_px, max_pixels=max_px)
            # the vision tower runs over every 14 px patch; the language model over merged ones: the
            # tower's sequence is the longer one, and it is what a batch holds at its peak
            return (rh // patch) * (rw // patch) + prompt

    else:  # Idefics3 and unknown layouts: tiles of the longest edge, plus a global view
        seq = int(getattr(processor, "image_seq_len", 64))
        longest = int((getattr(image_processor, "size", None) or {}).get("longest_edge", 1456))
        tile = int((getattr(image_processor, "max_image_size", None) or {}).get("longest_edge", 364))

        def tokens_of(w: int, h: int) -> int:
            scale = min(1.0, longest / max(w, h, 1))
            tiles = math.ceil(w * scale / tile) * math.ceil(h * scale / tile) + 1
            return tiles * seq + prompt

    return PageCost(tokens_of, LIVE_FACTOR * _widest(config) * dtype_bytes)


def _widest(config: Any) -> int:
    """The widest (hidden + intermediate) over the model's sub-configs (vision tower, language model)."""
    widths = []
    for sub in (config, getattr(config, "text_config", None), getattr(config, "vision_config", None)):
        if sub is None:
            continue
        hidden = getattr(sub, "hidden_size", None) or getattr(sub, "embed_dim", None) or 0
        inter = getattr(sub, "intermediate_size", None) or int(hidden * float(getattr(sub, "mlp_ratio", 4)))
        widths.append(int(hidden) + int(inter))
    return max([w for w in widths if w > 0], default=4096 + 16384)
