"""Pages into vectors.

Offline default (no ColPali model configured): the page's words (PDF text layer, or OCR) are encoded
with the collection's text model. A page can hold more words than the model reads (256 word pieces
for MiniLM), so its words are encoded in windows; the page's token vectors are all windows' tokens
together (MaxSim looks at every word), and its pooled vector is the word-weighted mean of the
windows' pooled vectors. Every token remembers which word it came from, so explanations can point
at the word's box on the page.

With a ColPali-family model the page image itself is encoded (patch vectors) in the page space, and
the page's words still feed lexical matching and snippets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmsearch.encoders.base import Encoded, Encoder, normalise

from .pages import Word

#: Words per window: OCR'd words split into more word pieces than clean prose, so stay well under 256.
WINDOW_WORDS = 120


@dataclass
class PageVectors:
    """pooled (dim,), tokens (n, dim); token_words[i] = index of the word token i came from (-1: none)."""

    pooled: np.ndarray
    tokens: np.ndarray
    token_strings: list[str]
    token_words: list[int]


def encode_word_pages(encoder: Encoder, pages_words: list[list[Word]]) -> list[PageVectors]:
    """Encodes several pages' words in one encoder call (windows of all pages batched together)."""
    windows: list[tuple[int, int, str, list[tuple[int, int]]]] = []  # (page, first word, text, word char spans)
    for p, words in enumerate(pages_words):
        if not words:
            windows.append((p, 0, "", []))
            continue
        for start in range(0, len(words), WINDOW_WORDS):
            chunk = words[start : start + WINDOW_WORDS]
            spans, pos = [], 0
            for w in chunk:
                spans.append((pos, pos + len(w.text)))
                pos += len(w.text) + 1
            windows.append((p, start, " ".join(w.text for w in chunk), spans))
    encoded = encoder.encode_texts([w[2] for w in windows], as_query=False)

    per_page: list[list[tuple[Encoded, int, list[tuple[int, int]], int]]] = [[] for _ in pages_words]
    for (p, start, text, spans), e in zip(windows, encoded, strict=True):
        per_page[p].append((e, start, spans, max(1, len(text.split()))))
    out = []
    for parts in per_page:
        tokens = np.concatenate([e.tokens for e, *_ in parts])
        weights = np.array([n for *_, n in parts], dtype=np.float32)
        pooled = normalise((np.stack([e.pooled for e, *_ in parts]) * weights[:, None]).sum(axis=0))
        strings: list[str] = []
        token_words: list[int] = []
        for e, start, spans, _ in parts:
            strings.extend(e.token_strings)
            token_words.extend(_word_of_tokens(e, spans, start))
        out.append(PageVectors(pooled, tokens, strings, token_words))
    return out


def encode_word_lists(encoder: Encoder, word_lists: list[list[Word]]) -> list[PageVectors]:
    """Short lists of words (a page's regions: ingest/regions.py), each encoded whole in one window;
    all lists in one encoder call. token_words index into each list's own words."""
    texts, spans = [], []
    for words in word_lists:
        pos, mine = 0, []
        for w in words:
            mine.append((pos, pos + len(w.text)))
            pos += len(w.text) + 1
        texts.append(" ".join(w.text for w in words))
        spans.append(mine)
    encoded = encoder.encode_texts(texts, as_query=False) if texts else []
    return [
        PageVectors(e.pooled, e.tokens, list(e.token_strings), _word_of_tokens(e, sp, 0))
        for e, sp in zip(encoded, spans, strict=True)
    ]


def rowcol(tokens: np.ndarray, boxes: np.ndarray | None) -> np.ndarray:
    """A page's prefetch vectors (storage ROWCOL): the mean of each row and of each column of its
    patch grid, normalised (rows + cols vectors; Qdrant's pooling for ColPali). Patches that tile no
    known grid (ColIdefics3's tiles, a page that lost a patch) give their one mean vector instead."""
    grid = patch_grid(boxes, len(tokens))
    if grid is None:
        return normalise(tokens.mean(axis=0))[None, :].astype(np.float32)
    rows, cols = grid
    cells = tokens.reshape(rows, cols, -1)
    return normalise(np.concatenate([cells.mean(axis=1), cells.mean(axis=0)])).astype(np.float32)


def patch_grid(boxes: np.ndarray | None, n: int) -> tuple[int, int] | None:
    """(rows, cols) of patches laid out row-major on a grid whose cells are the boxes, or None."""
    if boxes is None or not len(boxes) or len(boxes) != n:
        return None
    cols, rows = round(1 / float(boxes[0][2] - boxes[0][0])), round(1 / float(boxes[0][3] - boxes[0][1]))
    return (rows, cols) if rows * cols == n else None


def _word_of_tokens(e: Encoded, word_spans: list[tuple[int, int]], first_word: int) -> list[int]:
    if not e.token_spans or not word_spans:
        return [-1] * len(e.tokens)
    out = []
    w = 0
    for start, end in e.token_spans:
        while w < len(word_spans) - 1 and word_spans[w][1] <= start:
            w += 1
        inside = word_spans[w][0] <= start < word_spans[w][1] or (start == end == 0)
        out.append(first_word + w if inside and end > start else -1)
    return out
