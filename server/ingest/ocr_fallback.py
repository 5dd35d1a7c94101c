"""Pages the Latin-script recogniser cannot read are read again with every script's classes.

The default recogniser (`ocr_script=latin`, ocr_models.py) has no output class for Chinese or Japanese
characters. It does not misread such a line: CTC emits blank over every glyph it has no
class for, so the line comes back empty or with only its digits and punctuation ("发票号码：20231105"
reads ":20231105"), often with a high confidence. The gap is what gives it away: on the line's time
steps (one per 8 pixels of the 48-pixel-high crop, so 6 per line height), no character is emitted
over a stretch that a Latin line only leaves blank at a wide space.

- A line is **unread** when its longest run without a character (before the first, between two, or
  after the last) is at least `GAP_HEIGHTS` line heights. Every Chinese and Japanese line of the
  rendered test pages has one of 2.8-24 heights; Latin lines there have at most 1.5.
- A page is **re-read** when at least `MIN_UNREAD` of its lines and `MIN_SHARE` of them are unread:
  every line of the page then goes through rapidocr's full recogniser, so the page reads exactly as
  with `ocr_script=all`. On the 30 pages of docs/ocr.md (20 receipts, 10 forms), 0-3 lines a page are
  unread (letter-spaced headings, a box spanning a form's rule), at most 6.7% of a page: none is re-read,
  so Latin pages cost nothing more. Chinese and Japanese pages cost the Latin read on top (1.8× what
  `all` costs them, docs/ocr.md; the log advises `all`).
- A page the second read leaves no less unread keeps its Latin read: Korean (rapidocr's full model
  has no Hangul either), or marks that are not text. It cost a second read for nothing.
- Not caught: a Latin page with a line or two of Chinese. Collections with Chinese or Japanese text
  should set `ocr_script=all`.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: Time steps per line height: the recogniser's input is 48 pixels high and it emits one step per 8.
STEPS_PER_HEIGHT = 6
#: A run this many line heights wide without a character marks a line as unread.
GAP_HEIGHTS = 2.5
#: How many of a page's lines, and what share of them, must be unread before the page is re-read.
MIN_UNREAD = 2
MIN_SHARE = 0.15

_count = itertools.count(1)  # pages read a second time in this process
_count_lock = threading.Lock()


def longest_gap(cols: Sequence[int], steps: float) -> float:
    """The longest run of time steps without a character, in line heights: `cols` are the steps the
    line's characters were emitted at, `steps` the line's width in steps (padding excluded)."""
    if not cols:
        return steps / STEPS_PER_HEIGHT
    cols = sorted(cols)
    gaps = [cols[0], steps - cols[-1], *(b - a for a, b in itertools.pairwise(cols))]
    return max(gaps) / STEPS_PER_HEIGHT


def unread(info: Any) -> bool:
    """Whether a line (rapidocr's WordInfo: characters' steps and the line's width in steps) has a
    stretch the recogniser emitted nothing for."""
    cols = [c for word in (info.word_cols or []) for c in word]
    return longest_gap(cols, float(info.line_txt_len or 0.0)) >= GAP_HEIGHTS


def unread_lines(word_results: Sequence[Any]) -> int:
    """How many of a page's lines (rapidocr's WordInfo each; None without word boxes) are unread."""
    return sum(1 for info in word_results if info is not None and unread(info))


def needs_all_scripts(word_results: Sequence[Any]) -> bool:
    """Whether enough of a page's lines are unread to read the page with every script's classes."""
    return _enough(unread_lines(word_results), len(word_results))


def _enough(unread: int, lines: int) -> bool:
    return unread >= MIN_UNREAD and unread >= MIN_SHARE * lines


@dataclass
class Reread:
    """Whether the page the engine read last was read again with every script (one per engine, and
    engines are per thread, so no lock). The engine's reader resets it before each page: a page
    without any text line never reaches recognition."""

    last: bool = False


def add_fallback(engine: Any, all_scripts: Callable[[], Any]) -> Reread:
    """Makes `engine` (a RapidOCR with the Latin-script recogniser) read a page's line crops again with
    `all_scripts()` (a RapidOCR with rapidocr's own recogniser and word boxes on, made on first need)
    when the first read leaves too many of them unread. The detector's crops are reused."""
    latin = engine.recognize_txt
    second: dict[str, Any] = {}  # "engine": the all-scripts engine once made; "failed" once it failed
    state = Reread()

    @functools.wraps(latin)
    def recognize_txt(crops: list[Any]) -> Any:
        out = latin(crops)
        if not engine.return_word_box or second.get("failed"):  # a model that failed is tried once
            return out
        before = unread_lines(out.word_results or ())
        if not _enough(before, len(crops)):
            return out
        try:
            if "engine" not in second:
                second["engine"] = all_scripts()  # its model loads on its first read
            again = second["engine"].recognize_txt(crops)
        except Exception as exc:  # the full model missing or failing: the Latin read is still a read
            second["failed"] = True
            log.warning("OCR: could not read a page again with every script (%s); keeping the Latin read", exc)
            return out
        again.elapse = (again.elapse or 0.0) + (out.elapse or 0.0)  # recognition time: both reads
        if unread_lines(again.word_results or ()) >= before:
            # As unread with every class: a script neither model has (Korean: rapidocr's model has no
            # Hangul), or marks that are not text. Nothing gained; the page says it was read in Latin.
            _report(before, len(crops), gained=False)
            return out
        _report(before, len(crops), gained=True)
        state.last = True
        return again

    engine.recognize_txt = recognize_txt
    return state


def _report(unread: int, lines: int, gained: bool) -> None:
    """Logs the first page read again in this process and then every tenfold more (1, 10, 100, ...)."""
    with _count_lock:
        n = next(_count)
    if str(n).rstrip("0") != "1":
        return
    so_far = f"{n} page{'' if n == 1 else 's'} so far in this process"
    if gained:
        log.warning(
            "OCR: %d of %d lines were unread by the Latin-script recogniser (Chinese or Japanese text?); the "
            "page was read again with every script (%s). Collections of such pages read faster with "
            "--ocr-script all",
            unread,
            lines,
            so_far,
        )
    else:
        log.warning(
            "OCR: %d of %d lines were unread by the Latin-script recogniser and by every script's too (a "
            "script rapidocr does not read, e.g. Korean?); the page keeps its Latin read (%s)",
            unread,
            lines,
            so_far,
        )
