"""The ColPali page encoder on a GPU, once: pages/s, GPU memory against the page batch budget, bf16.

No real ColPali weights can be fetched here or on the lent GPU machine, so the models are random:
- `tiny`: the tests' checkpoints (tests/tiny_colpali.py), for bf16 on CUDA against float32 on the CPU;
- `full`: the same builders at the widths and depths of the real models (ColPali v1: PaliGemma-3B at
  448 px; ColQwen2: Qwen2-VL-2B, pages up to 768 visual tokens), random bf16 weights made on the GPU.
  Speed and memory depend on the shapes, not on the weights' values, so their pages/s and activation
  memory are what the real models would take; their embeddings mean nothing. Their vocabulary is the
  tiny tokenizer's (1,553 tokens for ColPali, 400 for ColQwen2, against 257,216 and 151,936), so
  `params_m` and `weights_mib` leave out ~524 M and ~233 M embedding parameters (~1.0 and ~0.43 GiB in bf16).

For each model: load through the server's encoder (encoders/colpali.py: bf16 on CUDA, batches planned by
`page_batch_mb`), encode synthetic A4 pages at 150 dpi with lines of text, then a mix with huge pages
(Qwen2-VL's dynamic resolution: the processor's max_pixels bounds them), and report pages/s, the peak
GPU memory over the weights against the budget planner's estimate, and 64 queries/s. The mix's pages/s
is mostly the processor resizing 48-megapixel pages on the CPU.

On the device machine (torch, torchvision, transformers, tokenizers, peft, pillow, numpy and scipy are
in its image; colpali-engine travels as a wheel, installed without its dependencies):

    echo /.whl/ >> .git/info/exclude   # once, here
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl colpali-engine==0.3.18
    # device run, carry [".whl"], timeout_s 540:
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site;
    PYTHONUNBUFFERED=1 python3 benchmarks/gpu_colpali.py --out $OUT/gpu_colpali.json

It imports the encoders package alone (no server, no Qdrant), so nothing else needs to travel. A dry run
on a CPU: `--device cpu --shapes tiny,full --layers 1 --pages 4` (full widths, one layer each).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Real widths (the models' config.json): ColPali v1.x = PaliGemma-3B-pt-448, ColQwen2 = Qwen2-VL-2B.
FULL = {
    "colpali": {
        "vision": {"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27, "num_attention_heads": 16},
        "text": {"hidden_size": 2048, "intermediate_size": 16384, "num_hidden_layers": 18, "num_attention_heads": 8,
                 "num_key_value_heads": 1, "head_dim": 256},
        "projection_dim": 2048,
    },
    "colqwen2": {
        "vision": {"depth": 32, "embed_dim": 1280, "hidden_size": 1536, "num_heads": 16, "mlp_ratio": 4},
        "text": {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28, "num_attention_heads": 12,
                 "num_key_value_heads": 2,
                 "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]}},
        "max_pixels": 768 * 28 * 28,
    },
}  # fmt: skip
LAYER_KEYS = ("num_hidden_layers", "depth")


def _import_paths() -> None:
    """`mmsearch.encoders` from this checkout without installing it, and the tests' model builders."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from checkout import import_from_checkout

    import_from_checkout("encoders")
    sys.path.insert(0, str(ROOT / "tests"))


def _widths(family: str, layers: int | None) -> dict[str, Any]:
    widths = json.loads(json.dumps(FULL[family]))
    if layers:
        for part in ("vision", "text"):
            for key in LAYER_KEYS:
                if key in widths[part]:
                    widths[part][key] = layers
    return widths


def _build(family: str, shape: str, root: Path, device: str, layers: int | None) -> Path:
    import tiny_colpali

    out = root / f"{family}-{shape}"
    if shape == "tiny":
        return tiny_colpali.build_tiny(family, root / "tiny")
    made_on = device if device.startswith("cuda") else None
    if family == "colpali":
        return tiny_colpali.build_colpali(out, side=448, patch=14, widths=_widths(family, layers), device=made_on)
    return tiny_colpali.build_colqwen2(out, widths=_widths(family, layers), device=made_on)


def _pages(count: int, size: tuple[int, int] = (1240, 1754)) -> list[Any]:
    """A4 pages at 150 dpi with lines of text (speed and memory depend on the size, not the words)."""
    from PIL import Image, ImageDraw

    pages = []
    for n in range(count):
        im = Image.new("RGB", size, "white")
        draw = ImageDraw.Draw(im)
        for line in range(40):
            draw.text((80, 80 + line * (size[1] - 160) // 40), f"page {n} line {line}: total 12.{line:02d} EUR", fill=0)
        pages.append(im)
    return pages


class _Gpu:
    def __init__(self, torch: Any, device: str) -> None:
        self.torch, self.cuda = torch, device.startswith("cuda")

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def allocated(self) -> int:
        return int(self.torch.cuda.memory_allocated()) if self.cuda else 0

    def reset_peak(self) -> None:
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats()

    def peak(self) -> int:
        return int(self.torch.cuda.max_memory_allocated()) if self.cuda else 0


def _timed(gpu: _Gpu, fn: Any) -> tuple[Any, float, int]:
    """fn's result, its seconds and the peak GPU memory it reached over what was allocated before."""
    gpu.sync()
    base = gpu.allocated()
    gpu.reset_peak()
    start = time.perf_counter()
    result = fn()
    gpu.sync()
    return result, time.perf_counter() - start, gpu.peak() - base


def _measure(enc: Any, gpu: _Gpu, pages: list[Any], huge: list[Any], queries: list[str]) -> dict[str, Any]:
    import numpy as np

    from mmsearch.encoders.page_budget import plan_batches

    enc.encode_images(pages[:2])  # warm: kernels, allocator
    enc.encode_texts(queries[:2], as_query=True)
    row: dict[str, Any] = {}
    for name, batch in (("a4", pages), ("mixed_huge", huge)):
        out, seconds, peak = _timed(gpu, lambda b=batch: enc.encode_images(b))
        cost, budget = enc.page_cost, enc.page_batch_bytes or sys.maxsize
        plans = plan_batches([im.size for im in batch], cost, budget, enc.batch_size)
        estimate = max(cost.batch_bytes([cost.tokens_of(*batch[i].size) for i in r]) for r in plans)
        row[name] = {
            "pages": len(batch),
            "pages_per_s": round(len(batch) / seconds, 2),
            "batches": len(plans),
            "peak_over_weights_mib": round(peak / 2**20, 1),
            "estimate_of_largest_batch_mib": round(estimate / 2**20, 1),
            "tokens_per_page": sorted({int(e.tokens.shape[0]) for e in out}),
            "finite": bool(all(np.isfinite(e.tokens).all() for e in out)),
        }
    out, seconds, peak = _timed(gpu, lambda: enc.encode_texts(queries, as_query=True))
    row["queries"] = {"count": len(queries), "per_s": round(len(queries) / seconds, 1), "peak_mib": round(peak / 2**20)}
    return row


def _distinct_pages(count: int) -> list[Any]:
    """Pages that differ at a tiny model's resolution (big coloured blocks, seeded): the A4 text pages
    all look alike there, so their MaxSim scores tie and any order between them is noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((448, 448)) for _ in range(count)]


def _bf16_vs_fp32(enc_gpu: Any, model_dir: Path, pages: list[Any], queries: list[str]) -> dict[str, Any]:
    """The tiny model in bf16 on the GPU against float32 on the CPU: same vectors, same MaxSim order?
    With the scores' relative change next to the gap between a query's first and second page: where
    bf16's change is larger than that gap, a swapped order is rounding, not a wrong model."""
    import numpy as np

    from mmsearch.encoders.colpali import ColPaliEncoder

    cpu = ColPaliEncoder(str(model_dir), "cpu")
    a, b = enc_gpu.encode_images(pages), cpu.encode_images(pages)
    qa, qb = enc_gpu.encode_texts(queries, as_query=True), cpu.encode_texts(queries, as_query=True)
    cos = [float(np.dot(x.pooled, y.pooled)) for x, y in zip(a, b, strict=True)]

    def scores(qs: list[Any], ps: list[Any]) -> Any:
        return np.array([[(q.tokens @ p.tokens.T).max(axis=1).sum() for p in ps] for q in qs], dtype=np.float64)

    sg, sc = scores(qa, a), scores(qb, b)
    og, oc = np.argsort(-sg, axis=1), np.argsort(-sc, axis=1)
    top2 = np.sort(sc, axis=1)[:, ::-1][:, :2]
    scale = np.abs(sc).max(axis=1)
    return {
        "pooled_cosine_min": round(min(cos), 4),
        "maxsim_relative_change_max": round(float((np.abs(sg - sc).max(axis=1) / scale).max()), 5),
        "top1_gap_relative_median": round(float(np.median((top2[:, 0] - top2[:, 1]) / scale)), 5),
        "queries_same_top1": f"{int((og[:, 0] == oc[:, 0]).sum())}/{len(queries)}",
        "queries_same_top5_set": f"{sum(set(x[:5]) == set(y[:5]) for x, y in zip(og, oc, strict=True))}/{len(queries)}",
        "queries_same_top5_order": f"{int((og[:, :5] == oc[:, :5]).all(axis=1).sum())}/{len(queries)}",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--families", default="colpali,colqwen2")
    ap.add_argument("--shapes", default="tiny,full")
    ap.add_argument("--pages", type=int, default=64)
    ap.add_argument("--budget-mb", type=float, default=2048, help="page_batch_mb (the server's default: 2048)")
    ap.add_argument("--batch-size", type=int, default=32, help="most pages a batch (the budget decides below it)")
    ap.add_argument("--layers", type=int, help="full shapes with this many layers (dry runs on a CPU)")
    ap.add_argument("--out")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _import_paths()
    import torch

    from mmsearch.encoders.colpali import ColPaliEncoder

    gpu = _Gpu(torch, args.device)
    report: dict[str, Any] = {"device": args.device, "torch": torch.__version__, "runs": []}
    if gpu.cuda:
        report["gpu"] = torch.cuda.get_device_name(0)
    pages = _pages(args.pages)
    huge = [*_pages(2, (6000, 8000)), *_pages(max(args.pages // 4, 2)), *_pages(2, (300, 400))]
    queries = [f"which page shows the total of line {i}?" for i in range(64)]
    root = Path(tempfile.mkdtemp(prefix="gpu-colpali-"))
    for family in args.families.split(","):
        for shape in args.shapes.split(","):
            start = time.perf_counter()
            model_dir = _build(family, shape, root, args.device, args.layers)
            built = time.perf_counter() - start
            enc = ColPaliEncoder(str(model_dir), args.device, batch_size=args.batch_size, page_batch_mb=args.budget_mb)
            params = sum(p.numel() for p in enc._model.parameters())
            row: dict[str, Any] = {
                "family": family, "shape": shape, "params_m": round(params / 1e6, 1), "build_s": round(built, 1),
                "dtype": str(next(enc._model.parameters()).dtype), "weights_mib": round(gpu.allocated() / 2**20, 1),
            }  # fmt: skip
            row.update(_measure(enc, gpu, pages, huge, queries))
            if shape == "tiny":  # on a CPU (dry run) this compares the CPU with itself
                row["bf16_vs_cpu_fp32"] = _bf16_vs_fp32(enc, model_dir, _distinct_pages(16), queries[:16])
            print(json.dumps(row), flush=True)
            report["runs"].append(row)
            del enc
            if gpu.cuda:
                torch.cuda.empty_cache()
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
