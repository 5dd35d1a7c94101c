"""int8 variants of rapidocr's recogniser for benchmarks/ocr_speed.py (docs/ocr.md, "int8").

Built on this machine from the model inside the rapidocr wheel, calibrated on text lines rendered
here (Pillow's own font, random receipt/form-like words, numbers and dates, some blur and noise), so
no scan from ../shared/data goes into a model. Not used by the server: on this AVX2-only CPU the
best variant read ~1.2x faster but changed ~1.3% of the characters (docs/ocr.md).

- "conv": static QDQ int8 of every Conv, per-channel weights, reduced range (7-bit weights: without
  VNNI, ONNX Runtime's u8s8 kernels can saturate), MinMax calibration on generated lines.
- "cls": dynamic int8 of the 18,710-class output MatMul only.
- "all": both.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

WORDS = (
    "total cash change subtotal tax invoice receipt date time qty price amount item description company "
    "address phone fax tel no ref account balance discount rounding payment visa card thank you please come "
    "again to from subject re received approved signature name title report budget research program project "
    "sales marketing brand product number code sdn bhd jalan taman street road avenue inc ltd corp"
).split()


def rec_model() -> Path:
    import rapidocr

    return Path(rapidocr.__file__).parent / "models" / "PP-OCRv6_rec_small.onnx"


def _line(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 7)):
        k = rng.random()
        if k < 0.55:
            w = rng.choice(WORDS)
            w = w.upper() if rng.random() < 0.4 else w.title() if rng.random() < 0.3 else w
        elif k < 0.7:
            w = f"{rng.randint(0, 999)}.{rng.randint(0, 99):02d}"
        elif k < 0.8:
            w = f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(1990, 2030)}"
        elif k < 0.9:
            w = str(rng.randint(0, 10 ** rng.randint(1, 8)))
        else:
            w = rng.choice(["RM", "$", ":", "-", "#", "(", ")", "x", "%", "@", "&", "*"])
        parts.append(w)
    return " ".join(parts)


def calibration_lines(n: int = 120, seed: int = 0) -> list[np.ndarray]:
    """n rendered text lines as the recogniser's input: (1, 3, 48, W) in [-1, 1], own width."""
    rng, noise = random.Random(seed), np.random.default_rng(seed)
    out = []
    for _ in range(n):
        font = ImageFont.load_default(size=rng.choice([16, 20, 24, 28, 36]))
        text = _line(rng)
        x0, y0, x1, y1 = (int(v) for v in font.getbbox(text))
        pad = rng.randint(2, 8)
        img = Image.new("L", (x1 - x0 + 2 * pad, y1 - y0 + 2 * pad), rng.randint(200, 255))
        ImageDraw.Draw(img).text((pad - x0, pad - y0), text, fill=rng.randint(0, 80), font=font)
        if rng.random() < 0.5:
            img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
        a = np.asarray(img, dtype=np.float32)
        if rng.random() < 0.5:
            a = np.clip(a + noise.normal(0, rng.uniform(3, 15), a.shape), 0, 255)
        rgb = Image.fromarray(a.astype(np.uint8)).convert("RGB")
        rgb = rgb.resize((max(8, round(rgb.width * 48 / rgb.height)), 48), Image.Resampling.BILINEAR)
        x = np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / 255.0
        out.append(((x - 0.5) / 0.5)[None].astype(np.float32))
    return out


def quantize_rec(variant: str, out: Path) -> Path:
    """Writes the int8 recogniser `variant` ("conv", "cls" or "all") to `out` (once) and returns it."""
    if out.exists():
        return out
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src = rec_model()
    classifier = [n.name for n in onnx.load(str(src)).graph.node if n.op_type == "MatMul"][-1]
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        # per-channel QDQ needs DequantizeLinear's axis (opset 13); the wheel's model is opset 11
        onnx.save(version_converter.convert_version(onnx.load(str(src)), 13), str(t / "13.onnx"))
        quant_pre_process(str(t / "13.onnx"), str(t / "pre.onnx"), skip_symbolic_shape=True)
        model = t / "pre.onnx"
        if variant in ("conv", "all"):
            lines = iter([{"x": x} for x in calibration_lines()])

            class Lines(CalibrationDataReader):
                def get_next(self) -> dict[str, np.ndarray] | None:
                    return next(lines, None)

            quantize_static(
                str(model),
                str(t / "conv.onnx"),
                Lines(),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=["Conv"],
                per_channel=True,
                reduce_range=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
            model = t / "conv.onnx"
        if variant in ("cls", "all"):
            quantize_dynamic(
                str(model), str(t / "cls.onnx"), nodes_to_quantize=[classifier], weight_type=QuantType.QInt8
            )
            model = t / "cls.onnx"
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(model), str(out))
    return out
