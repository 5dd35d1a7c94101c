"""Search: candidates from the pooled vectors and BM25, exact late interaction over them, one fused
score, one result per document (its best passage), filters and threshold, optional explanations."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmsearch.encoders.base import Encoded

from .collections import Collections
from .errors import InvalidArgument
from .ranking import fusion
from .ranking.lexical import query_terms
from .settings import Settings
from .storage.base import Cond, Hit, Where

STRATEGIES = ("weighted_zscore", "rrf", "dbsf", "maxsim")


@dataclass
class SearchParams:
    collection: str
    text: str
    top_k: int = 10
    where: Where = field(default_factory=Where)
    modalities: list[str] = field(default_factory=list)
    score_threshold: float | None = None
    prefetch_k: int = 0
    weights: dict[str, float] = field(default_factory=dict)
    strategy: str = "weighted_zscore"
    explain: bool = False
    all_passages: bool = False


@dataclass
class Match:
    query_token: str
    document_token: str
    similarity: float
    position: int
    box: tuple[float, float, float, float] | None = None  # page pixels, for pages


@dataclass
class Result:
    document_id: str
    modality: str
    page: int
    passage: int
    score: float
    metadata: dict[str, Any]
    snippet: str
    signals: dict[str, float]
    point_id: str
    matches: list[Match] = field(default_factory=list)


@dataclass
class Timings:
    encode_ms: float = 0.0
    retrieve_ms: float = 0.0
    rerank_ms: float = 0.0
    total_ms: float = 0.0


class Searcher:
    def __init__(self, collections: Collections, settings: Settings) -> None:
        self.collections = collections
        self.store = collections.store
        self.settings = settings

    def validate(self, p: SearchParams) -> None:
        s = self.settings
        if not p.text.strip():
            raise InvalidArgument("query is empty: give query text")
        if len(p.text) > s.max_query_chars:
            raise InvalidArgument(f"query text is {len(p.text)} characters; the limit is {s.max_query_chars}")
        if not 1 <= p.top_k <= s.max_top_k:
            raise InvalidArgument(f"top_k must be between 1 and {s.max_top_k}, got {p.top_k}")
        if p.prefetch_k and not 1 <= p.prefetch_k <= 1000:
            raise InvalidArgument(f"prefetch_k must be between 1 and 1000, got {p.prefetch_k}")
        if p.score_threshold is not None and not 0.0 <= p.score_threshold <= 1.0:
            raise InvalidArgument(f"score_threshold must be in [0, 1], got {p.score_threshold}")
        if p.strategy not in STRATEGIES:
            raise InvalidArgument(f"unknown fusion strategy {p.strategy!r}")

    def search(self, p: SearchParams) -> tuple[list[Result], Timings]:
        self.validate(p)
        t0 = time.perf_counter()
        spec = self.store.get_spec(p.collection)
        timings = Timings()
        encoder = self.collections.text_encoder(spec)
        query = encoder.encode_texts([p.text], as_query=True)[0]
        sparse = query_terms(p.text)
        t1 = time.perf_counter()
        timings.encode_ms = (t1 - t0) * 1000

        where = p.where
        if p.modalities:
            where = where.and_(Cond(key="modality", any_of=list(p.modalities)))
        # Passages are grouped per document after fusion, so fetch more than top_k candidates.
        k = max(p.prefetch_k or self.settings.prefetch_k, p.top_k)
        dense_hits = self.store.dense_search(p.collection, "text", query.pooled, k, where)
        lexical_hits = self.store.sparse_search(p.collection, sparse, k, where)
        t2 = time.perf_counter()
        timings.retrieve_ms = (t2 - t1) * 1000

        candidates: dict[str, Hit] = {h.id: h for h in dense_hits}
        for h in lexical_hits:
            candidates.setdefault(h.id, h)
        results = self._rank(p, spec.name, query, sparse, dense_hits, lexical_hits, candidates)
        timings.rerank_ms = (time.perf_counter() - t2) * 1000
        if p.explain and results:
            self._explain(spec.name, query, results)
        timings.total_ms = (time.perf_counter() - t0) * 1000
        return results, timings

    def _rank(
        self,
        p: SearchParams,
        name: str,
        query: Encoded,
        sparse: tuple[list[int], list[float]],
        dense_hits: list[Hit],
        lexical_hits: list[Hit],
        candidates: dict[str, Hit],
    ) -> list[Result]:
        if not candidates:
            return []
        ids = list(candidates)
        dense = {h.id: h.score for h in dense_hits}
        lexical = {h.id: h.score for h in lexical_hits}
        missing_dense = [i for i in ids if i not in dense]
        dense.update(self.store.score_ids(name, "text_dense", query.pooled, missing_dense))
        missing_lexical = [i for i in ids if i not in lexical]
        lexical.update(self.store.score_ids(name, "lexical", sparse, missing_lexical))
        n_tokens = max(1, len(query.tokens))
        # MaxSim normalised by query length: the mean best cosine per query token, in [-1, 1].
        maxsim = {i: s / n_tokens for i, s in self.store.score_ids(name, "text_tokens", query.tokens, ids).items()}
        signals = {"dense": dense, "maxsim": maxsim, "lexical": lexical}
        s = self.settings
        weights = {
            "dense": p.weights.get("dense", s.dense_weight),
            "maxsim": p.weights.get("maxsim", s.maxsim_weight),
            "lexical": p.weights.get("lexical", s.lexical_weight),
        }
        if p.strategy == "weighted_zscore":
            fused = fusion.weighted_zscore(signals, ids, weights)
        elif p.strategy == "rrf":
            fused = fusion.rrf(signals, ids, weights)
        elif p.strategy == "dbsf":
            fused = fusion.dbsf(signals, ids, weights)
        else:
            fused = np.array([maxsim.get(i, 0.0) for i in ids])
        scores = fusion.squash(fused, p.strategy, sum(abs(w) for w in weights.values()))
        order = np.argsort(-scores, kind="stable")
        results: list[Result] = []
        seen: set[str] = set()
        for n in order:
            hit = candidates[ids[n]]
            pl = hit.payload
            doc = str(pl.get("doc_id", ""))
            if not p.all_passages and doc in seen:
                continue
            score = float(scores[n])
            if p.score_threshold is not None and score < p.score_threshold:
                break
            seen.add(doc)
            results.append(
                Result(
                    document_id=doc,
                    modality=str(pl.get("modality", "text")),
                    page=int(pl.get("page", 0)),
                    passage=int(pl.get("passage", 0)),
                    score=score,
                    metadata=pl.get("meta") or {},
                    snippet=_snippet(str(pl.get("text", ""))),
                    signals={k: float(v[hit.id]) for k, v in signals.items() if hit.id in v},
                    point_id=hit.id,
                )
            )
            if len(results) >= p.top_k:
                break
        return results

    def _explain(self, name: str, query: Encoded, results: list[Result]) -> None:
        """For each query token, the stored token it matched best (the MaxSim argmax)."""
        stored = {h.id: h for h in self.store.retrieve(name, [r.point_id for r in results], space="text")}
        for r in results:
            hit = stored.get(r.point_id)
            if hit is None or hit.tokens is None or not len(hit.tokens):
                continue
            sims = query.tokens @ hit.tokens.T  # (n_query, n_doc)
            best = sims.argmax(axis=1)
            pl = hit.payload
            names = pl.get("tokens") or []
            token_words, words, boxes = pl.get("token_words") or [], pl.get("words") or [], pl.get("boxes") or []
            for qi, di in enumerate(best):
                doc_token = str(names[di]) if di < len(names) else f"#{di}"
                box = None
                w = token_words[di] if di < len(token_words) else -1
                if 0 <= w < len(boxes):  # a page word: name the whole word and where it is
                    doc_token = str(words[w]) if w < len(words) else doc_token
                    box = tuple(float(c) for c in boxes[w])
                r.matches.append(
                    Match(
                        query_token=query.token_strings[qi] if qi < len(query.token_strings) else f"#{qi}",
                        document_token=doc_token,
                        similarity=float(sims[qi, di]),
                        position=int(di),
                        box=box,  # type: ignore[arg-type]
                    )
                )


def _snippet(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
