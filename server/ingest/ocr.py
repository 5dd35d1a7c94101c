"""OCR for the offline page encoder: page image -> words with boxes.

Tesseract 5 (Debian package `tesseract-ocr`, installed by scripts/run.sh) through pytesseract.
Engine choice and its measurements on SROIE receipts and FUNSD forms: docs/ocr.md.
"""

from __future__ import annotations

import os
import shutil
import threading

from PIL import Image

from ..errors import FailedPrecondition
from .pages import Word

# Tesseract's OpenMP threads fight the encoder for 2 cores; one thread per page, pages in parallel.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")


class TesseractOCR:
    name = "tesseract"

    def __init__(self, psm: int = 6, lang: str = "eng", min_conf: float = 0.0) -> None:
        if shutil.which("tesseract") is None:
            raise FailedPrecondition(
                "OCR needs the tesseract binary (Debian/Ubuntu: apt-get install tesseract-ocr; "
                "scripts/run.sh installs it); or configure a ColPali page encoder instead"
            )
        import pytesseract

        self._pt = pytesseract
        # --psm 6 (one uniform block) keeps receipt lines in reading order; the default (3) scrambles them.
        self.config = f"--psm {psm}"
        self.lang = lang
        self.min_conf = min_conf
        self._lock = threading.Lock()

    def words(self, image: Image.Image) -> list[Word]:
        data = self._pt.image_to_data(image, lang=self.lang, config=self.config, output_type=self._pt.Output.DICT)
        out = []
        for text, conf, x, y, w, h in zip(
            data["text"], data["conf"], data["left"], data["top"], data["width"], data["height"], strict=True
        ):
            text = text.strip()
            if text and float(conf) >= self.min_conf:
                out.append(Word(text, (float(x), float(y), float(x + w), float(y + h))))
        return out


_ENGINE: TesseractOCR | None = None
_ENGINE_LOCK = threading.Lock()


def default_ocr() -> TesseractOCR:
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = TesseractOCR()
        return _ENGINE
