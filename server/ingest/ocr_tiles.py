"""Very tall pages OCR'd in overlapping tiles.

rapidocr scales a page so its longest side is at most 960 px for text detection (Det.limit_side_len:
the same accuracy on receipts at ~40% less CPU, docs/ocr.md). A page many times longer than wide (a
supermarket receipt photographed whole) shrinks with it: a 200 × 9,000 px strip of 20 pt text was
detected at 21 × 960 px, and read as nothing. A page over `ASPECT` times as tall as wide is read in
tiles twice as tall as wide, overlapping by a third of its width; each word is kept from the one
tile whose core (its span less half of each overlap) holds the word's centre, so a line cut at a
tile's edge is kept whole from its neighbour (an overlap is several line heights on such pages).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from .pages import Word

#: Pages at most this many times as long as wide are read whole (SROIE receipts: at most 2.6).
ASPECT = 3.0
#: Narrower pages hold no line to read (and are refused whole, naming their size: ocr.py).
MIN_SHORT_SIDE = 32
#: A page needing more tiles gets longer ones: a 60-million-pixel strip costs at most this many reads.
MAX_TILES = 64


@dataclass(frozen=True)
class Tile:
    start: int  # along the page's long side, in pixels
    end: int
    core_start: float  # words whose centre lies in [core_start, core_end) are this tile's
    core_end: float


def tiles(width: int, height: int, limit: int) -> list[Tile]:
    """The tiles of a tall page, top to bottom, or [] when it is read whole (not tall, or small enough
    to keep its pixels). Only tall pages: their lines run across the tiles' cut, where a wide page's
    lines would be cut through their words."""
    long_side, short_side = height, width
    if long_side <= ASPECT * short_side or long_side <= limit or short_side < MIN_SHORT_SIDE:
        return []
    overlap = short_side // 3
    length = max(2 * short_side, -(-(long_side - overlap) // MAX_TILES) + overlap)
    starts = [*range(0, long_side - length, length - overlap), long_side - length]
    out = []
    for i, start in enumerate(starts):
        core_start = 0.0 if i == 0 else (start + starts[i - 1] + length) / 2  # the overlap's middle
        core_end = float(long_side) if i == len(starts) - 1 else (starts[i + 1] + start + length) / 2
        out.append(Tile(start, start + length, core_start, core_end))
    return out


def read_tiled(
    image: Image.Image, parts: list[Tile], read: Callable[[Image.Image], tuple[list[Word], list[float]]]
) -> tuple[list[Word], list[float]]:
    """`read` (words and stage seconds of one image) over each tile; words in page pixels, in order."""
    words: list[Word] = []
    stages = [0.0, 0.0, 0.0]
    for t in parts:
        got, seconds = read(image.crop((0, t.start, image.width, t.end)))
        stages = [a + b for a, b in zip(stages, seconds, strict=False)]
        for w in got:
            x0, y0, x1, y1 = w.box
            if t.core_start <= (y0 + y1) / 2 + t.start < t.core_end:
                words.append(Word(w.text, (x0, y0 + t.start, x1, y1 + t.start)))
    return words, stages
