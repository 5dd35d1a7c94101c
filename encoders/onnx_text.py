"""The text model's transformer on ONNX Runtime (CPU): exported once from the local weights, cached,
reused on every later start.

Why not sentence-transformers' own `backend="onnx"`: it needs optimum-onnx, which pins
transformers < 4.58 while colpali-engine needs transformers >= 5.3. The export here is the same
recipe without optimum: `torch.onnx.export` of the Hugging Face model, ONNX Runtime's BERT graph
fusions (one Attention, SkipLayerNorm and BiasGelu kernel per layer), and for `onnx-int8` ONNX
Runtime's dynamic int8 quantisation (signed 7-bit weights per channel, see _export). Tokenisation, pooling and
normalisation stay sentence-transformers' own modules, so only the transformer forward changes.

Cache: `<cache_dir>/<model>-onnx[-int8]/{model.onnx, manifest.json}`. A build is written into a
temporary folder beside it and renamed into place when complete, and the manifest (written last)
names the source weights and the recipe, so a crashed build, truncated file or stale export is
never loaded: it is logged and rebuilt.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .base import EncoderError

log = logging.getLogger(__name__)
_EXPORTING = threading.Lock()

#: Bump when the export recipe changes: older caches are then rebuilt. 2: int8 weights signed with
#: a reduced (7-bit) range instead of uint8 (see _export).
RECIPE = 2
MODEL_FILE = "model.onnx"
MANIFEST = "manifest.json"
#: Least cosine between the export's token vectors and torch's on probe texts, else the build fails.
MIN_COSINE = {"onnx": 0.999, "onnx-int8": 0.95}
_PROBES = ["A short query.", "Late interaction scores every query token against every document token, then sums."]


class OnnxTransformer:
    """The cached export of a sentence-transformers model's first (transformer) module, run by ONNX
    Runtime, followed by the model's own pooling/normalise modules in torch (cheap, exact)."""

    def __init__(self, st: Any, model: str, cache_dir: Path, backend: str) -> None:
        if backend not in MIN_COSINE:
            raise EncoderError(f"unknown ONNX text backend {backend!r}; known: {', '.join(MIN_COSINE)}")
        self.backend = backend
        self.tokenizer = st.tokenizer
        self.max_tokens = int(st.max_seq_length or 512)
        self.after = list(st)[1:]  # Pooling, Normalize, ...: they take and return a feature dict
        self.dir = Path(cache_dir) / f"{_safe_name(model)}-{backend}"
        self.session = _load_or_build(st, self.dir, backend)
        self.inputs = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: Sequence[str], batch_size: int) -> list[dict[str, Any]]:
        """Per text, as sentence-transformers' `encode(output_value=None)`: input_ids (L,),
        attention_mask (L,), token_embeddings (L, dim), sentence_embedding (dim,) torch tensors, L
        the padded length of the text's batch; and offset_mapping (L, 2), the tokens' character
        spans. Texts are batched by length, like sentence-transformers."""
        import torch

        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out: list[dict[str, Any]] = [{} for _ in texts]
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            feats = self.tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=self.max_tokens,
                return_tensors="np",
                return_offsets_mapping=True,  # for explanations: the caller need not tokenize again
            )
            hidden = self.run({k: v for k, v in feats.items() if k in self.inputs})
            features = {
                "input_ids": torch.from_numpy(feats["input_ids"]),
                "attention_mask": torch.from_numpy(feats["attention_mask"]),
                "token_embeddings": torch.from_numpy(hidden),
            }
            with torch.inference_mode():
                for module in self.after:
                    features = module(features)
            keys = ("input_ids", "attention_mask", "token_embeddings", "sentence_embedding")
            for j, i in enumerate(idx):
                out[i] = {k: features[k][j] for k in keys} | {"offset_mapping": feats["offset_mapping"][j]}
        return out

    def run(self, feats: dict[str, np.ndarray]) -> np.ndarray:
        """int64 (batch, seq) inputs -> token embeddings (batch, seq, dim) float32."""
        return self.session.run(None, {k: np.asarray(v, dtype=np.int64) for k, v in feats.items()})[0]


def _safe_name(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "--", model.strip("/")).strip("-.") or "model"


def _session(path: Path) -> Any:
    import onnxruntime as ort
    import torch

    opts = ort.SessionOptions()
    # As many threads as torch uses (OMP_NUM_THREADS / torch.set_num_threads), one team per encoder.
    opts.intra_op_num_threads = torch.get_num_threads()
    opts.inter_op_num_threads = 1
    # Idle threads sleep instead of spinning after each run: the spinning took the cores from the
    # tokenizer, the pooling and the server's other threads between batches (53.0 against 50.5
    # passages/s, one in-process run of session 14: small, and a server has more threads to feed).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _source(st: Any, backend: str) -> dict[str, Any]:
    """What the export depends on: the weights it came from, the recipe, the runtime's version."""
    import onnxruntime as ort

    model_dir = Path(st[0].auto_model.name_or_path)
    files = sorted(p for p in model_dir.iterdir() if p.is_file()) if model_dir.is_dir() else []
    return {
        "recipe": RECIPE,
        "backend": backend,
        "onnxruntime": ".".join(ort.__version__.split(".")[:2]),
        "files": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files],
        "source_dir": str(model_dir.resolve()),
    }


def _problem(folder: Path, source: dict[str, Any]) -> str | None:
    """Why the cached export in `folder` must not be used, or None if it may."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        return f"no readable manifest ({type(exc).__name__})"
    if manifest.get("source") != source:
        return "built from other weights, recipe or runtime"
    try:
        size = (folder / MODEL_FILE).stat().st_size
    except OSError:
        return f"{MODEL_FILE} missing"
    if size != manifest.get("bytes"):
        return f"{MODEL_FILE} has {size} bytes, the manifest says {manifest.get('bytes')}"
    return None


def _load_or_build(st: Any, folder: Path, backend: str) -> Any:
    source = _source(st, backend)
    if folder.exists():
        problem = _problem(folder, source)
        if problem is None:
            try:
                return _session(folder / MODEL_FILE)
            except Exception as exc:  # onnxruntime raises its own types for a bad file
                problem = f"cannot be loaded ({exc})"
        log.warning("cached ONNX export %s is unusable (%s); rebuilding it", folder, problem)
        _discard(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(folder)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        t0 = time.perf_counter()
        log.info("exporting the text model to ONNX (%s) in %s: once, reused on later starts", backend, folder)
        _build(st, tmp, backend)
        (tmp / MANIFEST).write_text(json.dumps({"source": source, "bytes": (tmp / MODEL_FILE).stat().st_size}))
        _publish(tmp, folder, source)
        log.info("ONNX export ready in %.1f s", time.perf_counter() - t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _session(folder / MODEL_FILE)


def _remove_stale_builds(folder: Path, age_s: float = 3600) -> None:
    """Temporary folders of builds that crashed (a running build's folder is younger)."""
    for old in folder.parent.glob(f".{folder.name}.*"):
        try:
            if time.time() - old.stat().st_mtime > age_s:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass


def _discard(folder: Path) -> None:
    """Moves a bad export out of the way first (a rename is atomic), then deletes it."""
    trash = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    try:
        os.rename(folder, trash)
    except OSError:
        return  # another process moved it already
    shutil.rmtree(trash, ignore_errors=True)


def _publish(tmp: Path, folder: Path, source: dict[str, Any]) -> None:
    """Renames the finished build into place; if another process published first, keeps theirs."""
    try:
        os.rename(tmp, folder)
    except OSError:
        if _problem(folder, source) is not None:
            raise


def _build(st: Any, out: Path, backend: str) -> None:
    """Exports, fuses, optionally quantises, and checks the result against torch."""
    hf = st[0].auto_model
    before = getattr(hf.config, "_attn_implementation", None)
    try:
        # One export at a time: the quieting below switches process-wide state (warning filters,
        # logger levels) that two overlapping exports would restore in the wrong order.
        with _EXPORTING, _quiet_export():
            _export(st, out, backend)
    finally:
        # A failed export leaves the model on torch (encoders/text.py): give it back its own kernel.
        if before and hasattr(hf, "set_attn_implementation"):
            hf.set_attn_implementation(before)


def _export(st: Any, out: Path, backend: str) -> None:
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    hf = st[0].auto_model
    hf.eval()
    # Eager attention exports the plain MatMul/Softmax pattern that ONNX Runtime fuses into its
    # Attention kernel; SDPA exports a graph it cannot fuse.
    if hasattr(hf, "set_attn_implementation"):
        hf.set_attn_implementation("eager")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in st.tokenizer.model_input_names]
    probe = st.tokenizer(_PROBES, padding=True, return_tensors="pt")
    raw, fused = out / "raw.onnx", out / "fused.onnx"
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "token_embeddings"]}
    with torch.inference_mode():
        expected = hf(**{n: probe[n] for n in names}).last_hidden_state.float().numpy()
        # The TorchScript exporter (dynamo=False) needs only `onnx`, not onnxscript.
        torch.onnx.export(
            _last_hidden(hf, names),
            tuple(probe[n] for n in names),
            str(raw),
            input_names=names,
            output_names=["token_embeddings"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    config = hf.config
    heads, hidden = getattr(config, "num_attention_heads", 0), getattr(config, "hidden_size", 0)
    optimize_model(str(raw), model_type="bert", num_heads=heads, hidden_size=hidden).save_model_to_file(str(fused))
    raw.unlink()
    if backend == "onnx-int8":
        # Signed 7-bit weights per output channel: the u8 x s8 kernel (VPMADDUBSW) is the fast one
        # on AVX2, and the reduced range keeps its 16-bit sums from saturating (full-range s8
        # weights per channel: least token cosine 0.920 to fp32, against 0.953). Model alone, sorted
        # batches of 16 (benchmarks/results/text-int8-recipes-s14.json): 67.4 passages/s against
        # 54.4 with recipe 1's uint8 weights and 44.5 in fp32.
        quantize_dynamic(
            fused,
            out / MODEL_FILE,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # for the fused ops' outputs
        )
        fused.unlink()
    else:
        fused.rename(out / MODEL_FILE)
    got = _session(out / MODEL_FILE).run(None, {n: probe[n].numpy() for n in names})[0]
    mask = probe["attention_mask"].numpy().astype(bool)
    a, b = got[mask], expected[mask]
    cos = float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())
    if cos < MIN_COSINE[backend]:
        raise EncoderError(f"the ONNX export ({backend}) disagrees with torch: token cosine {cos:.4f}")


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """Keeps the exporter's chatter out of the server's log (one line says the export runs, one that it
    is ready): the tracer's warnings, ONNX Runtime's fuser (a line per fusion) and the quantiser (a line
    per tensor and a pre-processing hint, through the root logger)."""
    import onnxruntime.transformers.optimizer  # imports the fuser's modules, whose loggers are quietened
    import torch

    fuser = str(Path(onnxruntime.transformers.optimizer.__file__).parent)
    # The fuser's modules import each other by bare name ("fusion_base"), so find them by file.
    names = {m.__name__ for m in list(sys.modules.values()) if str(getattr(m, "__file__", "")).startswith(fuser)}
    loggers = [logging.getLogger(n) for n in sorted(names)]
    levels = [lg.level for lg in loggers]
    root = logging.getLogger()
    direct = _DirectRecords()  # a filter on the root logger sees only what is logged on it, not its children's
    root.addFilter(direct)
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            # The exporter's own warnings only: another thread's still show meanwhile.
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", module=r"torch\.onnx")
            warnings.filterwarnings("ignore", "You are using the legacy TorchScript", DeprecationWarning)
            yield
    finally:
        root.removeFilter(direct)
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


class _DirectRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


def _last_hidden(hf: Any, names: list[str]) -> Any:
    """Wraps the Hugging Face model as positional inputs -> last hidden state, what the exporter traces."""
    import torch

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hf = hf

        def forward(self, *args: Any) -> Any:
            return self.hf(**dict(zip(names, args, strict=True))).last_hidden_state

    return LastHidden()
