"""A page's words into regions, so that a long page is found by its best part.

A page pooled into one vector blurs a page holding one relevant figure among much else, so each
region of a long page is stored as a point of its own (ingest/points.py) and grouped back to its
page at search time, as passages are grouped to their document. Regions follow the page's layout
from the words' boxes alone (text layer or OCR: both give words in reading order with boxes):

- words -> lines (a word that goes back left or moves down starts a line);
- lines -> blocks (a vertical gap, a jump up to the next column, a heading or a caption starts one);
- blocks -> regions of up to REGION_WORDS words; a heading or a caption ("Figure 3:", "Table 2.")
  always starts a region, so a caption and the figure text or table cells after it stay together.

A region's text is read the way a reader reads it: it carries its section's heading (so a table's
region knows it is in "6 Results"), and its caption and heading words count twice for BM25.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field

from .pages import Word

#: Words of a region's own text (headings add a few). Small enough that one figure or table stands
#: out, large enough to hold a caption with its table or a paragraph.
REGION_WORDS = 80
#: Pages with fewer words are one region already (receipts, forms, slides): the page point is it.
MIN_PAGE_WORDS = 2 * REGION_WORDS

_CAPTION = re.compile(r"^(figure|fig\.?|table|tab\.?|tableau)$", re.IGNORECASE)
_CAPTION_NUMBER = re.compile(r"^[0-9IVX]+[:.]$")
_SECTION_NUMBER = re.compile(r"^(\d+(\.\d+)*\.?|[A-H](\.\d+)*)$")


@dataclass
class Region:
    words: list[int]  # indices into the page's words: the heading's first, then the region's own
    own: list[int]  # the region's own words (its box)
    kind: str  # "caption", "heading" or "text"
    emphasis: list[int] = field(default_factory=list)  # words a reader weighs more (captions, headings)

    def box(self, words: list[Word]) -> tuple[float, float, float, float]:
        boxes = [words[i].box for i in self.own]
        return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))

    def text(self, words: list[Word]) -> str:
        return " ".join(words[i].text for i in self.words)

    def lexical_text(self, words: list[Word]) -> str:
        """The text BM25 indexes: captions and headings count twice."""
        return " ".join([words[i].text for i in self.words] + [words[i].text for i in self.emphasis])


@dataclass
class _Block:
    words: list[int]
    kind: str  # "caption", "heading", "text"


def _boxes(words: list[Word]) -> tuple[list[tuple[float, float, float, float]], float]:
    """Word boxes for layout, and the body text's word height. A word hyphenated across a line break
    comes from the text layer as one word whose box spans both lines; it is laid out as where its
    second half is: the start of the lower line."""
    heights = [w.box[3] - w.box[1] for w in words]
    body = max(1.0, statistics.median(heights)) if heights else 1.0
    out = []
    for w, h in zip(words, heights, strict=True):
        x0, y0, x1, y1 = w.box
        out.append((x0, y1 - body, x0 + body, y1) if h > 1.7 * body else (x0, y0, x1, y1))
    return out, body


def _lines(boxes: list[tuple[float, float, float, float]]) -> list[list[int]]:
    lines: list[list[int]] = []
    for i, b in enumerate(boxes):
        if lines:
            prev = boxes[lines[-1][-1]]
            h = max(1.0, min(prev[3] - prev[1], b[3] - b[1]))
            same_row = abs((b[1] + b[3]) / 2 - (prev[1] + prev[3]) / 2) < 0.6 * h
            if same_row and b[0] >= prev[2] - 0.5 * h:
                lines[-1].append(i)
                continue
        lines.append([i])
    return lines


def _is_caption(words: list[Word], line: list[int]) -> bool:
    if len(line) < 2:
        return False
    return bool(_CAPTION.match(words[line[0]].text)) and bool(_CAPTION_NUMBER.match(words[line[1]].text))


def _is_heading(words: list[Word], line: list[int], height: float, body: float) -> bool:
    """A short line that is numbered like a section ("3.2 Attention") or set larger than the body."""
    if not 1 <= len(line) <= 10:
        return False
    texts = [words[i].text for i in line]
    if any("=" in t for t in texts) or sum(any(c.isalpha() for c in t) for t in texts) < max(1, len(texts) - 1):
        return False  # an equation or a row of numbers
    numbered = len(texts) >= 2 and bool(_SECTION_NUMBER.match(texts[0])) and texts[1][:1].isupper()
    return numbered or (len(texts) >= 2 and height > 1.5 * body)


def _blocks(words: list[Word]) -> list[_Block]:
    boxes, body = _boxes(words)
    lines = _lines(boxes)
    heights = [statistics.median(boxes[i][3] - boxes[i][1] for i in line) for line in lines]
    blocks: list[_Block] = []
    for line, height in zip(lines, heights, strict=True):
        kind = "caption" if _is_caption(words, line) else "heading" if _is_heading(words, line, height, body) else ""
        if blocks and not kind and blocks[-1].kind != "heading":
            gap = boxes[line[0]][1] - boxes[blocks[-1].words[-1]][3]
            if -0.5 * body <= gap <= 0.8 * body:  # the next line of the same block (same column)
                blocks[-1].words.extend(line)
                continue
        blocks.append(_Block(list(line), kind or "text"))
    return blocks


def page_regions(words: list[Word]) -> list[Region]:
    """The regions of a long page, in reading order; [] for a page short enough to be one region."""
    if len(words) < MIN_PAGE_WORDS:
        return []
    regions: list[Region] = []
    heading: list[int] = []
    current: Region | None = None
    for block in _blocks(words):
        if block.kind == "heading":
            heading = block.words[:12]
        if current is None or block.kind != "text":
            new = True
        elif current.kind == "heading" and len(current.own) <= 20:
            new = False  # a heading leads into the text under it
        else:
            new = len(current.own) + len(block.words) > REGION_WORDS
        rest = block.words
        while rest:
            if new or current is None or len(current.own) >= REGION_WORDS:
                context = [] if block.kind == "heading" else [i for i in heading if i not in rest]
                current = Region(list(context), [], block.kind, list(context))
                regions.append(current)
            part, rest = rest[: REGION_WORDS - len(current.own)], rest[REGION_WORDS - len(current.own) :]
            current.words.extend(part)
            current.own.extend(part)
            if block.kind != "text":
                current.emphasis.extend(part)
            new = False
    return regions if len(regions) > 1 else []
