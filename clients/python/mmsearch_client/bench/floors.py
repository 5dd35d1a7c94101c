"""The floors `mmsearch bench` compares the server against, measured in the same run: the raw
encoder (no gRPC, no storage), the query encoder alone, and exact brute-force MaxSim over the
whole collection with torch (no index, no candidates: the answer a two-stage search approximates).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch.encoders.base import Encoder


@dataclass
class EncodedCorpus:
    """Every passage's token vectors, as the server stores them (float16, unit rows)."""

    tokens: list[np.ndarray | None]  # per passage (n_i, dim) float16; ExactMaxSim takes them over
    seconds: float

    @property
    def per_second(self) -> float:
        return len(self.tokens) / self.seconds

    @property
    def mean_tokens(self) -> float:
        return float(np.mean([len(t) for t in self.tokens if t is not None]))


def encode_corpus(
    encoder: Encoder, texts: Sequence[str], batch: int, progress: Callable[[int], None] = lambda n: None
) -> EncodedCorpus:
    """The raw encoder's throughput on exactly the texts the server ingests, in the server's batch size."""
    tokens: list[np.ndarray | None] = []
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        chunk = texts[i : i + batch]
        tokens.extend(e.tokens.astype(np.float16) for e in encoder.encode_texts(chunk, as_query=False))
        progress(len(chunk))
    return EncodedCorpus(tokens, time.perf_counter() - t0)


def encode_queries(encoder: Encoder, queries: Sequence[str]) -> tuple[list[np.ndarray], list[float]]:
    """Each query encoded alone, as the server does per search: token vectors (m, dim) and ms each."""
    encoder.encode_texts(list(queries[:3]), as_query=True)  # warm-up
    vectors, ms = [], []
    for q in queries:
        t0 = time.perf_counter()
        e = encoder.encode_texts([q], as_query=True)[0]
        ms.append((time.perf_counter() - t0) * 1000)
        vectors.append(e.tokens)
    return vectors, ms


class ExactMaxSim:
    """Brute-force late interaction: every query token against every stored token of every passage.

    Passages are sorted by length and packed into float16 blocks of similar lengths, each padded to
    its longest passage; padding rows repeat the passage's first token, which leaves each max (and so
    MaxSim) unchanged. Building consumes `tokens` (entries are released as they are packed), so the
    vectors are never held twice.
    """

    def __init__(self, tokens: list[np.ndarray | None], block: int = 1024) -> None:
        import torch

        self.torch = torch
        self.n = len(tokens)
        lengths = [len(t) if t is not None else 0 for t in tokens]
        order = sorted(range(self.n), key=lengths.__getitem__)
        self.blocks = []
        for s in range(0, self.n, block):
            idx = order[s : s + block]
            first = tokens[idx[0]]
            assert first is not None
            packed = np.empty((len(idx), lengths[idx[-1]], first.shape[1]), dtype=np.float16)
            for j, i in enumerate(idx):
                t = tokens[i]
                assert t is not None
                packed[j, : len(t)] = t
                packed[j, len(t) :] = t[0]
                tokens[i] = None
            self.blocks.append((torch.tensor(idx), torch.from_numpy(packed)))

    def search(self, query: np.ndarray, k: int) -> tuple[list[int], list[float], float]:
        """query (m, dim) -> the k best passage indices, their MaxSim (sum over query tokens), ms."""
        torch = self.torch
        t0 = time.perf_counter()
        q = torch.from_numpy(np.ascontiguousarray(query, dtype=np.float32)).T  # (dim, m)
        scores = torch.empty(self.n)
        with torch.inference_mode():
            for idx, packed in self.blocks:
                scores[idx] = (packed.float() @ q).amax(dim=1).sum(dim=1)  # (c, L, m) -> (c,)
            top = torch.topk(scores, min(k, self.n))
        ms = (time.perf_counter() - t0) * 1000
        return top.indices.tolist(), top.values.tolist(), ms


@dataclass
class PageFloor:
    pages: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.pages / self.seconds


def encode_pages(
    encoder: Encoder,
    files: Sequence[Path],
    limit: int,
    ocr_engine: str,
    page_encoder: Encoder | None = None,
    ocr_always: bool = False,
) -> PageFloor:
    """The server's page path without the server, for the first `limit` pages of `files`: with a page
    encoder (ColPali), that model over the page images alone (the floor of `ocr: never`); otherwise the
    offline path: PDF text layer or OCR (every page rendered and OCR'd with ocr_always, as `ocr:
    always` does), then the text model over the page's words."""
    from mmsearch.server.ingest.ocr import get_ocr
    from mmsearch.server.ingest.page_encoding import encode_word_pages
    from mmsearch.server.ingest.pages import PageLimits, image_pages, pdf_pages, sniff

    limits = PageLimits()
    ocr = get_ocr(ocr_engine) if page_encoder is None else None
    done = 0
    t0 = time.perf_counter()
    for f in files:
        data = f.read_bytes()
        mime = sniff(data)
        render = page_encoder is not None or ocr_always
        pages = pdf_pages(data, limits, render) if mime == "application/pdf" else image_pages(data, mime, limits)
        taken = list(itertools.islice(pages, max(0, limit - done)))
        if page_encoder is not None:
            page_encoder.encode_images([p.image for p in taken])
        else:
            assert ocr is not None
            words: list[list[Any]] = [
                p.words if p.words is not None and not ocr_always else ocr.words(p.image) for p in taken
            ]
            encode_word_pages(encoder, words)
        done += len(taken)
        if done >= limit:
            break
    return PageFloor(done, time.perf_counter() - t0)
