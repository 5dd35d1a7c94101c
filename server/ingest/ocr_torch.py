"""rapidocr's ONNX models run by PyTorch, for OCR on a GPU without onnxruntime-gpu.

ONNX Runtime reaches a GPU only through the separate onnxruntime-gpu wheel (~300 MB, built for one
CUDA major version); the torch this server installs for ColPali usually has CUDA already. onnx2torch
turns the same ONNX files into torch modules (the same weights: on the receipts and forms of
docs/ocr.md they read the same words as ONNX Runtime on the CPU), so `ocr_device` auto/cuda uses the
GPU wherever torch sees one. Only the two network calls move; rapidocr's pre- and post-processing
(resizing, box finding, CTC decoding) stays on the CPU as it is.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ResourceExhausted

log = logging.getLogger(__name__)

# onnx2torch's Slice indexes with a list of slices, which torch >= 2.9 warns "will be interpreted as
# tensor index". Under the torch this project allows (< 2.14) it still reads as slices: the converted
# recogniser reads exactly ONNX Runtime's words (tests/test_ocr_torch.py, which would catch the change).
warnings.filterwarnings(
    "ignore", message="Using a non-tuple sequence for multidimensional indexing", module="onnx2torch"
)


@functools.cache
def torch_cuda() -> bool:
    """Whether OCR can run on a GPU through torch: onnx2torch installed and torch seeing a CUDA GPU.
    Neither import happens unless onnx2torch is there (a CPU machine pays nothing)."""
    if importlib.util.find_spec("onnx2torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def _explicit_pads(model: Any) -> Any:
    """onnx2torch refuses `auto_pad=SAME_UPPER`, which PP-OCR's 2×2 stride-1 Conv and MaxPool use.
    At stride 1 that padding does not depend on the input's size (k-1 in all, the odd one at the end),
    so it is written out as explicit pads. Any other auto_pad is left for onnx2torch to refuse."""
    import onnx

    for node in model.graph.node:
        attrs = {a.name: a for a in node.attribute}
        pad = attrs.get("auto_pad")
        if pad is None or pad.s != b"SAME_UPPER" or "kernel_shape" not in attrs:
            continue
        kernel = list(onnx.helper.get_attribute_value(attrs["kernel_shape"]))
        strides = list(onnx.helper.get_attribute_value(attrs["strides"])) if "strides" in attrs else []
        dilations = list(onnx.helper.get_attribute_value(attrs["dilations"])) if "dilations" in attrs else []
        if any(s != 1 for s in strides + dilations):
            continue
        begin = [(k - 1) // 2 for k in kernel]
        node.attribute.remove(pad)
        end = [k - 1 - b for k, b in zip(kernel, begin, strict=True)]
        node.attribute.append(onnx.helper.make_attribute("pads", begin + end))
    return model


class TorchSession:
    """Stands in for rapidocr's ONNX Runtime session (`session(batch) -> first output`)."""

    def __init__(self, path: str | Path, device: str = "cuda") -> None:
        import onnx
        import torch
        from onnx2torch import convert

        self.path = str(path)
        self.device = torch.device(device)
        self.module = convert(_explicit_pads(onnx.load(self.path))).eval().to(self.device)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        try:
            with torch.inference_mode():
                out = self.module(torch.from_numpy(np.ascontiguousarray(batch)).to(self.device))
        except torch.cuda.OutOfMemoryError as exc:  # the GPU is shared with the page and text models
            torch.cuda.empty_cache()
            raise ResourceExhausted(
                f"OCR on the GPU ran out of memory on a {tuple(batch.shape)} batch ({exc}); try again when "
                "fewer pages are encoded at once, or run OCR on the CPU (--ocr-device cpu)"
            ) from None
        if isinstance(out, (list, tuple)):
            out = out[0]
        return out.float().cpu().numpy()  # type: ignore[no-any-return]


def _model_path(stage: Any) -> str | None:
    """The ONNX file behind one of rapidocr's stages: the path configured (this server's default models),
    else the one ONNX Runtime opened (rapidocr's own models, located inside rapidocr; `_model_path` is
    an attribute of ONNX Runtime's InferenceSession)."""
    path = getattr(stage, "cfg", {}).get("model_path")  # the recogniser keeps its config, the detector not
    if path is None:
        path = getattr(getattr(stage.session, "session", None), "_model_path", None)
    return str(path) if isinstance(path, (str, Path)) and Path(path).is_file() else None


#: rapidocr's (3.10) lazy loader of each stage's model.
LOADERS = {"det": "_load_det_model", "rec": "_load_rec_model"}


def move_to_torch(engine: Any, device: str = "cuda", stages: tuple[str, ...] = ("det", "rec")) -> None:
    """Swaps a RapidOCR engine's sessions of `stages` (detector, recogniser) for TorchSessions on
    `device`. rapidocr reads the recogniser's character list from the ONNX session when it builds it,
    so the swap comes after that; a model that cannot be converted stays on ONNX Runtime (logged)."""
    loaders = [getattr(engine, LOADERS[stage], None) for stage in stages]
    if None in loaders:  # rapidocr's lazy loaders (3.10); another release may name them otherwise
        log.warning("OCR on %s: this rapidocr release's models cannot be reached; they stay on the CPU", device)
        return
    for load in loaders:
        stage = load()  # type: ignore[misc]  # none is None: checked above
        path = _model_path(stage)
        if path is None:
            log.warning("OCR on %s: the model file of %s is unknown; it stays on the CPU", device, type(stage).__name__)
            continue
        try:
            stage.session = TorchSession(path, device)
        except Exception as exc:  # onnx2torch: an operator it does not know
            log.warning("OCR on %s: %s cannot be converted (%s); it stays on the CPU", device, Path(path).name, exc)
