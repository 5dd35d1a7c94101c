"""Why the text model's int8 export (encoders/onnx_text.py, recipe 2) and sorted batches of 16
(encoders/text.py TEXT_BATCH) are what they are: padding of the server's calls, and the model alone in
fp32 and under dynamic int8 recipes (speed on sorted batches of 16, cosines to fp32). Reuses the fp32
export that `mmsearch serve --text-backend onnx` or benchmarks/text_backends.py made in MODEL_CACHE.

    HF_HUB_OFFLINE=1 uv run python benchmarks/text_int8_recipes.py > benchmarks/results/text-int8-recipes-s14.json
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic
from transformers import AutoTokenizer

from mmsearch.client.bench.workload import corpus_texts, passages
from mmsearch.encoders.models import resolve_model_dir

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir_scifact"
RECIPES: dict[str, dict[str, Any]] = {
    "u8_per_channel (recipe 1)": {"weight_type": QuantType.QUInt8, "per_channel": True},
    "s8_per_channel_7bit (recipe 2)": {"weight_type": QuantType.QInt8, "per_channel": True, "reduce_range": True},
    "s8_per_channel": {"weight_type": QuantType.QInt8, "per_channel": True},
    "u8_per_channel_matmul_only": {
        "weight_type": QuantType.QUInt8,
        "per_channel": True,
        "op_types_to_quantize": ["MatMul"],
    },
}


def padding(lengths: np.ndarray, batch: int, sort: bool) -> float:
    """Tokens computed (each batch padded to its longest) over real tokens, calls of 32 texts."""
    done = 0
    for c in range(0, len(lengths), 32):
        call = np.sort(lengths[c : c + 32]) if sort else lengths[c : c + 32]
        done += sum(int(call[i : i + batch].max()) * len(call[i : i + batch]) for i in range(0, len(call), batch))
    return done / int(lengths.sum())


def session(path: Path | str) -> ort.InferenceSession:
    o = ort.SessionOptions()
    o.intra_op_num_threads, o.inter_op_num_threads = 2, 1
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


def main() -> None:
    tok = AutoTokenizer.from_pretrained(str(resolve_model_dir("all-MiniLM-L6-v2")))
    many = passages(corpus_texts(CORPUS), 960, 64)
    lengths = np.array([len(tok(d, truncation=True, max_length=256)["input_ids"]) for d in many])
    out: dict[str, Any] = {
        "tokens": {"mean": float(lengths.mean()), "min": int(lengths.min()), "max": int(lengths.max())},
        "padding_calls_of_32": {
            "one batch of 32": padding(lengths, 32, False),
            "sorted, batches of 16": padding(lengths, 16, True),
            "sorted, batches of 8": padding(lengths, 8, True),
        },
    }
    cache = Path(os.environ.get("MODEL_CACHE", "/tmp/mmsearch-onnx-cache"))
    fp32 = cache / "all-MiniLM-L6-v2-onnx" / "model.onnx"
    docs = many[:96]
    order = sorted(range(len(docs)), key=lambda i: -len(docs[i]))
    batches = []
    for s in range(0, len(docs), 16):
        f = tok(
            [docs[i] for i in order[s : s + 16]], padding=True, truncation=True, max_length=256, return_tensors="np"
        )
        batches.append({k: v.astype(np.int64) for k, v in f.items()})
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {"fp32": session(fp32)}
        for name, kw in RECIPES.items():
            path = Path(tmp) / f"{len(sessions)}.onnx"
            quantize_dynamic(fp32, path, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT}, **kw)
            sessions[name] = session(path)
        ref = [sessions["fp32"].run(None, b)[0] for b in batches]
        models: dict[str, dict[str, Any]] = {}
        for name, s in sessions.items():
            tokens, pooled = [], []
            for b, r in zip(batches, ref, strict=True):
                o, m = s.run(None, b)[0], b["attention_mask"]
                a, c = o[m.astype(bool)], r[m.astype(bool)]
                tokens.append((a * c).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(c, axis=1))
                pa, pr = (o * m[..., None]).sum(1), (r * m[..., None]).sum(1)
                pooled.append((pa * pr).sum(1) / np.linalg.norm(pa, axis=1) / np.linalg.norm(pr, axis=1))
            t, p = np.concatenate(tokens), np.concatenate(pooled)
            models[name] = {
                "token_cosine_min": float(t.min()),
                "token_cosine_mean": float(t.mean()),
                "pooled_cosine_min": float(p.min()),
                "pooled_cosine_mean": float(p.mean()),
                "pps": [],
            }
        for _ in range(5):  # interleaved rounds
            for name, s in sessions.items():
                t0 = time.perf_counter()
                for b in batches:
                    s.run(None, b)
                models[name]["pps"].append(len(docs) / (time.perf_counter() - t0))
        for m in models.values():
            m["passages_per_s"] = statistics.median(m.pop("pps"))
    out["model_alone_sorted_batches_of_16"] = models
    out["load"] = os.getloadavg()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
