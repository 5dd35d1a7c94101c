"""A page many times longer than wide is OCR'd in overlapping tiles (server/ingest/ocr_tiles.py)."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from PIL import Image, ImageDraw, ImageFont

from mmsearch.server.ingest.ocr import RapidOCREngine
from mmsearch.server.ingest.ocr_tiles import tiles

ITEMS = [f"ITEM{n:02d} {100 + 7 * n}" for n in range(60)]


def _strip(width: int = 260, spacing: int = 100) -> Image.Image:
    """A receipt strip: one line every `spacing` px, 16 px type, 23 times longer than wide."""
    page = Image.new("RGB", (width, spacing * len(ITEMS) + 40), "white")
    draw, font = ImageDraw.Draw(page), ImageFont.load_default(size=16)
    for n, line in enumerate(ITEMS):
        draw.text((12, 30 + spacing * n), line, fill="black", font=font)
    return page


@pytest.fixture(scope="module")
def engine() -> RapidOCREngine:
    return RapidOCREngine()


def test_a_long_strip_is_read_whole_in_tiles(engine: RapidOCREngine) -> None:
    page = _strip()
    assert len(tiles(page.width, page.height, 960)) == 14
    words = engine.words(page)
    got = Counter(w.text for w in words)
    # every line once: none lost at a tile's edge, none read twice from two tiles' overlap
    assert all(got[line.split()[0]] == 1 for line in ITEMS), got
    assert sum(got[line.split()[1]] for line in ITEMS) >= len(ITEMS) - 1, got
    ys = [w.box[1] for w in words if w.text.startswith("ITEM")]
    assert ys == sorted(ys) and ys[-1] > 0.9 * page.height - 200  # in page pixels, top to bottom
    # read whole, the detector scaled 260 x 6,040 px down to 41 x 960 px: no line was found
    whole, _ = engine._read_whole(page)
    assert not any(w.text.startswith("ITEM") for w in whole)


def test_what_is_read_whole() -> None:
    assert tiles(1000, 2500, 960) == []  # a receipt (SROIE's longest is 2.6 times its width)
    assert tiles(300, 950, 960) == []  # small enough to keep its pixels
    assert tiles(1, 20000, 960) == []  # too narrow to hold a line: refused whole, naming its size
    assert tiles(4000, 300, 960) == []  # wide: tiles would cut its lines through their words
    long = tiles(1000, 60000, 960)
    assert len(long) <= 64 and long[0].start == 0 and long[-1].end == 60000
    assert all(a.core_end == b.core_start and b.start < a.end for a, b in itertools.pairwise(long))
