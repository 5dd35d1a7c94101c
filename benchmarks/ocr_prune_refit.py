"""A pruned recogniser's feed-forward pairs refitted to the unpruned model on synthetic crops (measured, not adopted).

ocr_prune.py's OBS update corrects only a pair's second convolution, and only for the calibration crops'
second moments. This script goes one step further without real data: each pruned pair (both 1x1
convolutions, their biases, GELU between) is trained with Adam to reproduce the unpruned model's pair
output from the pair's input, at positions sampled from synthetic scan-like crops (ocr_prune's
generator, another seed than its calibration pages). `--sequential` feeds each pair the inputs of the
partly refitted model instead of the unpruned one's, so a pair also makes up for the error of the pairs
before it. Agreement with the unpruned model is measured as in ocr_prune.py (FUNSD training forms 20-34,
SROIE receipts 230-244; evaluation only):

    .venv/bin/python benchmarks/ocr_prune.py --calib synthetic --fracs 0.15 --out-dir /tmp/prune
    .venv/bin/python benchmarks/ocr_prune_refit.py /tmp/prune/rec_synthetic_0.15.onnx --out /tmp/prune/refit.onnx

Results in docs/ocr.md ("Pruned recogniser (session 20)", refitting).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ocr_prune as op


def pair_io(model: Any) -> list[tuple[str, str]]:
    """Per pair: the first convolution's input and the second one's output after its bias."""
    made = {o: n for n in model.graph.node for o in n.output}

    def alias(t: str) -> str:
        while t in made and made[t].op_type == "Identity":
            t = made[t].input[0]
        return t

    out = []
    for p in op.feed_forward_pairs(model):
        a = next(n for n in model.graph.node if n.op_type == "Conv" and n.input[1] == p["a"])
        add = next(n for n in model.graph.node if n.op_type == "Add" and n.input[1] == p["b_bias"])
        out.append((alias(a.input[0]), add.output[0]))
    return out


def sample(model: Any, names: list[str], crops: list[np.ndarray], picks: list[np.ndarray]) -> list[np.ndarray]:
    """The named tensors at the picked positions of every crop, as rows of channels."""
    import onnx

    m = onnx.ModelProto.FromString(model.SerializeToString())
    for t in names:
        m.graph.output.append(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
    s = op.session(m)
    feed = s.get_inputs()[0].name
    rows: list[list[np.ndarray]] = [[] for _ in names]
    for x, pick in zip(crops, picks, strict=True):
        for k, h in enumerate(s.run(names, {feed: x})):
            g = h[0].reshape(h.shape[1], -1).T
            rows[k].append(g[pick % len(g)])
    return [np.concatenate(r) for r in rows]


def refit(teacher_path: str, student_path: str, crops: list[np.ndarray], out: Path, a: argparse.Namespace) -> Path:
    import onnx
    import torch
    from onnx import numpy_helper as nh

    teacher, student = onnx.load(teacher_path), onnx.load(student_path)
    pairs, io = op.feed_forward_pairs(student), pair_io(student)
    init = {i.name: i for i in student.graph.initializer}
    rng = np.random.default_rng(0)
    picks = [rng.integers(0, 1 << 30, a.positions) for _ in crops]
    targets = sample(teacher, [o for _, o in io], crops, picks)
    inputs = None if a.sequential else sample(teacher, [i for i, _ in io], crops, picks)
    gelu = torch.nn.GELU()
    torch.manual_seed(0)
    for k, (p, (name_in, _)) in enumerate(zip(pairs, io, strict=True)):
        x = torch.from_numpy(sample(student, [name_in], crops, picks)[0] if inputs is None else inputs[k])
        y = torch.from_numpy(targets[k])
        params = [
            torch.tensor(nh.to_array(init[n]).reshape(nh.to_array(init[n]).shape[:2]), requires_grad=True)
            if n in (p["a"], p["b"])
            else torch.tensor(nh.to_array(init[n]).reshape(-1), requires_grad=True)
            for n in (p["a"], p["a_bias"], p["b"], p["b_bias"])
        ]
        wa, ba, wb, bb = params

        def f(v: Any, wa: Any = wa, ba: Any = ba, wb: Any = wb, bb: Any = bb) -> Any:
            return gelu(v @ wa.T + ba) @ wb.T + bb

        opt = torch.optim.Adam(params, lr=a.lr)
        with torch.no_grad():
            before = float(((f(x) - y) ** 2).mean() / (y**2).mean())
        for _ in range(a.iters):
            idx = torch.randint(0, len(x), (4096,))
            loss = ((f(x[idx]) - y[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            after = float(((f(x) - y) ** 2).mean() / (y**2).mean())
        print(f"pair {k}: relative error {before:.4f} -> {after:.4f}", file=sys.stderr, flush=True)
        for n, t in zip((p["a"], p["a_bias"], p["b"], p["b_bias"]), params, strict=True):
            init[n].CopyFrom(nh.from_array(t.detach().numpy().reshape(nh.to_array(init[n]).shape), n))
    onnx.save(student, str(out))
    return out


def main() -> None:
    from mmsearch.server.ingest.ocr_models import recogniser_params

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="a pruned recogniser from ocr_prune.py")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--pages", type=int, default=160, help="synthetic pages rendered for training crops")
    ap.add_argument("--crops", type=int, default=2000)
    ap.add_argument("--positions", type=int, default=96, help="positions sampled per crop and pair")
    ap.add_argument("--iters", type=int, default=400)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--sequential", action="store_true")
    a = ap.parse_args()
    source = recogniser_params("latin")["Rec.model_path"]
    crops = op.engine_crops(op.synthetic_pages(a.pages, seed=7))  # type: ignore[arg-type]
    crops = [crops[i] for i in np.random.default_rng(0).permutation(len(crops))[: a.crops]]
    refit(source, a.model, crops, a.out, a)
    val = op.engine_crops(op.held_out(20, 35, 230, 245))
    ref = op.greedy(source, val)
    report: dict[str, Any] = {"validation": {"crops": len(val), "chars": sum(map(len, ref))}}
    report["training_crops"] = len(crops)
    for label, path in (("pruned", a.model), ("refitted", str(a.out))):
        got = op.greedy(path, val)
        report[label] = {
            "lines_identical": sum(g == r for g, r in zip(got, ref, strict=True)),
            "char_edits": sum(op.edits(g, r) for g, r in zip(got, ref, strict=True)),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
