"""Explanations: for each query token, the stored token it matched best (the MaxSim argmax), named
as a word (text passages, OCR'd or PDF pages, with the word's box) or a patch (ColPali pages, with
the patch's box in page pixels).

A collection whose token vectors are pooled (ingest/pooling.py) stores one vector per cluster of
tokens; its payload lists name each cluster's representative token (word, box) and
`token_positions` gives that token's position among the encoder's tokens. Vectors stored quantised
come back approximate, so similarities are those of the stored vectors, as MaxSim scored them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mmsearch.encoders.base import Encoded


@dataclass
class Match:
    query_token: str
    document_token: str
    similarity: float
    position: int
    box: tuple[float, float, float, float] | None = None  # page pixels, for pages


def token_matches(query: Encoded, tokens: np.ndarray, payload: dict[str, Any]) -> list[Match]:
    """query.tokens (q, dim) against stored tokens (n, dim)."""
    sims = query.tokens @ tokens.T  # (q, n)
    best = sims.argmax(axis=1)
    names = payload.get("tokens") or []
    token_words, words, boxes = payload.get("token_words") or [], payload.get("words") or [], payload.get("boxes") or []
    patch_boxes = payload.get("patch_boxes") or []
    positions = payload.get("token_positions") or []
    grid = payload.get("patch_grid") or []  # [rows, cols]: patches named by position (ingest/points.py)
    width, height = float(payload.get("width") or 0), float(payload.get("height") or 0)
    out = []
    for qi, di in enumerate(best):
        doc_token = str(names[di]) if di < len(names) else f"#{di}"
        box = None
        w = token_words[di] if di < len(token_words) else -1
        if 0 <= w < len(boxes):  # a page word: name the whole word and where it is
            doc_token = str(words[w]) if w < len(words) else doc_token
            box = (float(boxes[w][0]), float(boxes[w][1]), float(boxes[w][2]), float(boxes[w][3]))
        elif grid and di < len(positions):  # a ColPali patch on the page's grid
            r, c = divmod(int(positions[di]), int(grid[1]))
            doc_token = f"patch r{r}c{c}"
            box = (c / grid[1] * width, r / grid[0] * height, (c + 1) / grid[1] * width, (r + 1) / grid[0] * height)
        elif di < len(patch_boxes):  # a ColPali patch, stored as fractions of the page
            x0, y0, x1, y1 = patch_boxes[di]
            box = (x0 * width, y0 * height, x1 * width, y1 * height)
        out.append(
            Match(
                query_token=query.token_strings[qi] if qi < len(query.token_strings) else f"#{qi}",
                document_token=doc_token,
                similarity=float(sims[qi, di]),
                position=int(positions[di]) if di < len(positions) else int(di),
                box=box,
            )
        )
    return out
