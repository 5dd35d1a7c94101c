"""OCR for the offline page encoder: page image -> words with boxes (page pixels, top-left origin).

Two engines, measured on 20 SROIE receipts and 10 FUNSD forms (docs/ocr.md):
- rapidocr (PP-OCR ONNX models inside the PyPI wheel; the default): read every receipt's company,
  date and total, 81/139 form answers exactly; ~3-5 CPU s per page, ~600-800 MB resident.
- tesseract (`--psm 6`; Debian package tesseract-ocr): 14/20 companies, 19/139 form answers;
  ~1 CPU s per page, ~100 MB. The fast choice when recall on noisy scans matters less.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import threading
from typing import Protocol

import numpy as np
from PIL import Image

from ..errors import FailedPrecondition, InvalidArgument
from .pages import Word


class OCREngine(Protocol):
    name: str

    def words(self, image: Image.Image) -> list[Word]: ...


class RapidOCREngine:
    name = "rapidocr"

    def __init__(self) -> None:
        from rapidocr import RapidOCR

        params = {
            "Global.log_level": "warning",
            "Global.use_cls": False,  # pages are upright; the angle classifier costs time for nothing
            "EngineConfig.onnxruntime.intra_op_num_threads": 1,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            # The default (shortest side up to 736) enlarges small receipts; cap the longest side
            # instead: same accuracy, ~40% less CPU on receipts.
            "Det.limit_type": "max",
            "Det.limit_side_len": 960,
        }
        self._engines = threading.local()  # one ONNX session set per OCR thread
        self._params = params
        self._factory = RapidOCR

    def _engine(self):  # type: ignore[no-untyped-def]
        engine = getattr(self._engines, "engine", None)
        if engine is None:
            engine = self._engines.engine = self._factory(params=self._params)
        return engine

    def words(self, image: Image.Image) -> list[Word]:
        out = self._engine()(np.asarray(image.convert("RGB")), return_word_box=True)
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


def get_ocr(name: str = "rapidocr") -> OCREngine:
    if name not in ENGINES:
        raise InvalidArgument(f"unknown OCR engine {name!r}; use one of {', '.join(ENGINES)}")
    with _LOCK:
        if name not in _LOADED:
            _LOADED[name] = ENGINES[name]()
        return _LOADED[name]
