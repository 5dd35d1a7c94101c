"""Text into passages: decode, normalise whitespace, split into overlapping word windows."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidArgument

_WS = re.compile(r"\s+")


def decode_utf8(data: bytes, what: str) -> str:
    """Strict UTF-8 (a BOM is allowed); the error names the first bad byte and its offset."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        raise InvalidArgument(f"{what} is not valid UTF-8 (byte 0x{bad} at offset {exc.start})") from None


@dataclass(frozen=True)
class Passage:
    index: int  # 0-based passage number within the document
    text: str


def split_passages(text: str, max_words: int, overlap_words: int) -> list[Passage]:
    """Windows of at most `max_words` words; consecutive windows share `overlap_words` words.
    A window that would only repeat the previous one's tail is not emitted."""
    words = _WS.split(text.strip())
    words = [w for w in words if w]
    if not words:
        return []
    step = max(1, max_words - min(overlap_words, max_words - 1))
    passages: list[Passage] = []
    start = 0
    while True:
        chunk = words[start : start + max_words]
        passages.append(Passage(len(passages), " ".join(chunk)))
        if start + max_words >= len(words):
            return passages
        start += step
