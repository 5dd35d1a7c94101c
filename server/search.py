"""Search: per vector space, candidates from the pooled vectors (a ColPali space: from MaxSim itself, exact
or after a rows/columns prefetch: `_late_first_stage`); across spaces, candidates from BM25;
exact late interaction over every candidate in its own space; one fused score; one result per
document (its best passage or page); filters and threshold; optional explanations."""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmsearch.encoders.base import Encoded
from mmsearch.protocol.vocab import FUSED_SIGNALS, Fusion, Modality, Signal

from .catalog import Catalog
from .errors import InvalidArgument
from .explain import Match, token_matches
from .field_types import check_filter
from .ingest.pages import PageLimits
from .query import EncodedQuery, encode_query
from .ranking import boosts, fusion
from .settings import Settings
from .storage.base import HIT_FIELDS, ROWCOL, SLOT, CollectionSpec, Cond, Query, Scores, Where
from .storage.records import APPROXIMATE, MAX_HNSW_EF, Breadth


def rowcol_prefetch(points: int, k: int) -> int:
    """Candidates the rows/columns first stage passes to exact MaxSim in a space of `points`: 5% of
    them, at least `k`, at most 1,000. Measured on the tiny ColPali (benchmarks/results/
    colpali-first-stage.json): the top 100 of 1,000 pages kept 0.98 of exact MaxSim's top 10, the
    top 500 of 10,000 kept 0.97 (the top 100 of 10,000: 0.82)."""
    return max(k, min(1000, points // 20))


@dataclass
class SearchParams:
    collection: str
    text: str
    top_k: int = 10
    where: Where = field(default_factory=Where)
    modalities: list[Modality] = field(default_factory=list)
    score_threshold: float | None = None
    prefetch_k: int = 0
    weights: dict[str, float] = field(default_factory=dict)
    fusion: Fusion = Fusion.WEIGHTED_ZSCORE
    explain: bool = False
    all_passages: bool = False
    full_text: bool = False  # the whole passage or page text as the snippet, not its first 300 characters
    image: tuple[bytes, str] | None = None  # (bytes, mime type) for query by example
    cross_encoder: bool = False
    maxsim_k: int | None = None  # None: the server's setting; 0: every candidate
    rerank_k: int = 0
    #: The caller's tenant: only its documents are candidates (None: a caller bound to no tenant).
    tenant: str | None = None
    boosts: boosts.Boosts = field(default_factory=boosts.Boosts)
    #: The dense first stage's HNSW breadth (0: the server's) or an exact scan.
    breadth: Breadth = APPROXIMATE

    @property
    def maxsim_only(self) -> bool:
        """Fused by MaxSim alone with nothing to explain: no other signal can change the ranking."""
        return self.fusion == Fusion.MAXSIM and not self.explain


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
    space: str
    matches: list[Match] = field(default_factory=list)
    snippet_full: str = ""  # the whole passage/page text, for the cross-encoder
    page_size: tuple[int, int] = (0, 0)  # pixels of the page image that match boxes refer to
    relevance: float = 0.0  # with boosts: the score before them
    boost: boosts.Factors | None = None  # with boosts: this result's factors
    #: A page found by one of its regions (ingest/regions.py): that region's box in page pixels.
    region_box: tuple[float, float, float, float] | None = None
    slot: int = 0  # the version slot of the document the result's point belongs to
    #: With explanations, for pages: where the words came from (pdf, ocr, none) and what read them
    #: (read with the result's payload, not with its vectors).
    text_source: str = ""
    ocr_reader: str = ""


@dataclass
class Timings:
    encode_ms: float = 0.0
    retrieve_ms: float = 0.0
    rerank_ms: float = 0.0
    total_ms: float = 0.0


class Searcher:
    def __init__(self, catalog: Catalog, settings: Settings) -> None:
        self.catalog = catalog
        self.store = catalog.store
        self.settings = settings
        self.limits = PageLimits(max_pixels=settings.max_image_pixels)

    def validate(self, p: SearchParams) -> None:
        s = self.settings
        if not p.text.strip() and p.image is None:
            raise InvalidArgument("query is empty: give query text or an image")
        if len(p.text) > s.max_query_chars:
            raise InvalidArgument(f"query text is {len(p.text)} characters; the limit is {s.max_query_chars}")
        if not 1 <= p.top_k <= s.max_top_k:
            raise InvalidArgument(f"top_k must be between 1 and {s.max_top_k}, got {p.top_k}")
        if not 0 <= p.breadth.hnsw_ef <= MAX_HNSW_EF:
            raise InvalidArgument(
                f"hnsw_ef must be between 0 (the server's setting) and {MAX_HNSW_EF}, got {p.breadth.hnsw_ef}"
            )
        if p.breadth.exact and p.breadth.hnsw_ef:
            raise InvalidArgument("give hnsw_ef or exact, not both: an exact search uses no graph")
        if p.prefetch_k and not 1 <= p.prefetch_k <= 1000:
            raise InvalidArgument(f"prefetch_k must be between 1 and 1000, got {p.prefetch_k}")
        if p.score_threshold is not None and not 0.0 <= p.score_threshold <= 1.0:
            raise InvalidArgument(f"score_threshold must be in [0, 1], got {p.score_threshold}")
        for signal, weight in p.weights.items():
            if not math.isfinite(weight):
                raise InvalidArgument(f"ranking weight {signal}_weight is {weight}; weights must be finite numbers")
            if weight < 0:  # it would rank candidates the worse the better they match; 0 turns a signal off
                raise InvalidArgument(f"ranking weight {signal}_weight is {weight}; weights must be 0 or more")
        if p.fusion not in set(Fusion):
            raise InvalidArgument(f"unknown fusion strategy {p.fusion!r}")
        if p.rerank_k and not 1 <= p.rerank_k <= s.max_rerank_documents:
            raise InvalidArgument(f"rerank_k must be between 1 and {s.max_rerank_documents}, got {p.rerank_k}")
        boosts.validate(p.boosts)

    def search(self, p: SearchParams) -> tuple[list[Result], Timings]:
        self.validate(p)
        t0 = time.perf_counter()
        spec = self.store.get_spec(p.collection)
        check_filter(p.where, spec.indexed_fields)
        timings = Timings()
        sizes = self._space_sizes(spec, p)
        answering = None if sizes is None else [s for s, n in sizes.items() if n] or list(spec.spaces)
        query = encode_query(self.catalog, spec, p.text, p.image, self.limits, answering)
        t1 = time.perf_counter()
        timings.encode_ms = (t1 - t0) * 1000

        where = p.where.for_tenant(p.tenant)
        if p.modalities:
            where = where.and_(Cond(key="modality", any_of=list(p.modalities)))
        # Passages are grouped per document after fusion, so fetch more than top_k candidates.
        k = max(p.prefetch_k or self.settings.prefetch_k, p.top_k)
        late = {
            s: self._late_first_stage(spec, s, q, k, sizes, where)
            for s, q in query.spaces.items()
            if s in query.late_interaction
        }
        late_hits = {s: hits for s, hits in late.items() if hits is not None}
        # Fused by MaxSim alone (and nothing to explain), a space whose first stage is MaxSim needs no
        # pooled-vector candidates, and BM25 candidates only when some space has no MaxSim first stage.
        maxsim_only = p.maxsim_only
        dense_spaces = [s for s in query.spaces if not (maxsim_only and s in late_hits)]
        searches: list[tuple[str, Query]] = [(f"{s}_dense", query.spaces[s].pooled) for s in dense_spaces]
        lexical = not (maxsim_only and late_hits.keys() == query.spaces.keys())
        if lexical:
            searches.append(("lexical", query.lexical))
        found = self.store.search_many(spec.name, searches, k, where, p.breadth)  # one engine call per shard
        dense_hits: dict[str, Scores] = {s: {} for s in query.spaces}
        dense_hits.update(zip(dense_spaces, found[: len(dense_spaces)], strict=True))
        lexical_hits = found[-1] if lexical else {}
        t2 = time.perf_counter()
        timings.retrieve_ms = (t2 - t1) * 1000

        results = self._rank(p, spec, query, dense_hits, lexical_hits, late_hits)
        if p.cross_encoder and results:
            results = self._cross_encode(query.text, results, p.rerank_k or self.settings.rerank_k)
        if p.score_threshold is not None:
            results = [r for r in results if r.score >= p.score_threshold]
        results = results[: p.top_k]
        timings.rerank_ms = (time.perf_counter() - t2) * 1000
        if p.explain and results:
            self._explain(spec.name, query, results)
        timings.total_ms = (time.perf_counter() - t0) * 1000
        return results, timings

    def _space_sizes(self, spec: CollectionSpec, p: SearchParams) -> dict[str, int] | None:
        """Points per space that can be results (a count on the indexed modality field, hidden versions
        included), 0 for a space holding no requested modality; None for a one-space collection without
        a late-interaction encoder, which needs neither. Spaces with 0 are not encoded: a ColPali
        collection of pages only then never runs its text model."""
        if len(spec.spaces) == 1 and not spec.page_kind:
            return None
        sizes = {}
        for space in spec.spaces.values():
            modalities = [m for m in space.modalities if not p.modalities or m in p.modalities]
            where = Where(must=[Cond("modality", any_of=modalities)])
            sizes[space.name] = self.store.count(spec.name, where, True) if modalities else 0
        return sizes

    def _late_first_stage(
        self, spec: CollectionSpec, space: str, q: Encoded, k: int, sizes: dict[str, int] | None, where: Where
    ) -> Scores | None:  # fmt: skip
        """The best `k` points of a late-interaction space by exact MaxSim (raw sums), found without the
        mean-pooled vector, which is a poor first stage for ColPali (its top 100 kept 0.77 of exact
        MaxSim's top 10 at 1,000 pages, 0.42 at 10,000: benchmarks/results/colpali-first-stage.json).
        Up to `exact_maxsim_points` points: MaxSim over all of them, in one engine call. Above, when
        the space stores pooled rows and columns of each page's patch grid (`SpaceSpec.prefetch`):
        those (MaxSim over a few dozen vectors a page) pick `rowcol_prefetch` candidates, which exact
        MaxSim ranks. None: the space keeps the mean-pooled first stage (other spaces, and ColPali
        collections made before rows and columns were stored)."""
        n = (sizes or {}).get(space, 0)
        if sizes is None or not n or q.tokens is None or not len(q.tokens):
            return None
        using = f"{space}_tokens"
        if n <= self.settings.exact_maxsim_points:
            return self.store.vector_search(spec.name, using, q.tokens, k, where)
        if spec.spaces[space].prefetch != ROWCOL:
            return None
        wide = self.store.vector_search(spec.name, f"{space}_{ROWCOL}", q.tokens, rowcol_prefetch(n, k), where)
        exact = self.store.score_ids(spec.name, using, q.tokens, list(wide))
        return dict(heapq.nlargest(k, exact.items(), key=lambda kv: kv[1]))

    def _spaces(
        self, spec: CollectionSpec, query: EncodedQuery, dense: dict[str, Scores], lexical: Scores,
        late: dict[str, Scores],
    ) -> dict[str, str]:  # fmt: skip
        """Candidate id -> its vector space. Dense hits come from one space's search; a point found
        only by BM25 is in the space whose dense vector scores it (a point has vectors in its own
        space alone), which also gives its dense score. Candidates of a space the query has no
        vectors for are not in the map: they stay candidates, ranked by BM25 alone."""
        space_of = {cid: space for space, scores in (*dense.items(), *late.items()) for cid in scores}
        rest = [cid for cid in lexical if cid not in space_of]
        if len(spec.spaces) == 1:
            space_of.update(dict.fromkeys(rest, next(iter(spec.spaces))))
            return space_of
        for space, q in query.spaces.items():
            if not rest:
                break
            found = self.store.score_ids(spec.name, f"{space}_dense", q.pooled, rest)
            dense[space].update(found)
            space_of.update(dict.fromkeys(found, space))
            rest = [cid for cid in rest if cid not in found]
        return space_of

    def _signals(
        self, name: str, query: EncodedQuery, dense_hits: dict[str, Scores], lexical_hits: Scores,
        groups: dict[tuple[str, str], list[str]], maxsim_k: int = 0, late: dict[str, Scores] | None = None,
        maxsim_only: bool = False,
    ) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:  # fmt: skip
        """Raw signals per candidate, and the same made comparable across groups (z-scored within
        each (space, modality) group when there are several) for fusion. Each candidate's dense
        and MaxSim come from its own space. late: MaxSim sums the first stage already has.
        maxsim_only: only MaxSim is fused and nothing explained: the other signals are not scored."""
        late = late or {}
        raw: dict[str, dict[str, float]] = {Signal.DENSE: {}, Signal.MAXSIM: {}, Signal.LEXICAL: {}}
        comparable: dict[str, dict[str, float]] = {Signal.DENSE: {}, Signal.MAXSIM: {}}
        lexical = dict(lexical_hits)
        if not maxsim_only:  # the missing BM25 and dense scores, asked together (one batch per shard)
            asks: list[tuple[str, Query, list[str]]] = [
                ("lexical", query.lexical, [i for ids in groups.values() for i in ids if i not in lexical])
            ]
            spaces = list(dict.fromkeys(space for space, _ in groups))
            for space in spaces:
                ids = [i for (s, _), members in groups.items() if s == space for i in members]
                asks.append(
                    (f"{space}_dense", query.spaces[space].pooled, [i for i in ids if i not in dense_hits[space]])
                )
            found = self.store.score_many(name, asks)
            lexical.update(found[0])
            for space, scores in zip(spaces, found[1:], strict=True):
                dense_hits[space].update(scores)
        for (space, _), ids in groups.items():
            q = query.spaces[space]
            dense = dense_hits[space]
            # MaxSim is the costly signal (every query token against every stored token). For a model
            # not trained for it (MiniLM) it is a side signal, so a cascade computes it for the
            # `maxsim_k` best candidates by dense + BM25 only; the others get the lowest MaxSim seen
            # (fusion's floor for a missing signal). A late-interaction model's space gets it for all.
            scored = ids
            if maxsim_k and len(ids) > maxsim_k and space not in query.late_interaction:
                zd = fusion.zscores({i: dense.get(i, 0.0) for i in ids})
                zl = fusion.zscores({i: lexical.get(i, 0.0) for i in ids})
                scored = sorted(ids, key=lambda i: -(zd[i] + zl[i]))[:maxsim_k]
            # MaxSim normalised by query length: the mean best cosine per query token, in [-1, 1].
            n_tokens = max(1, len(q.tokens))
            known = late.get(space, {})
            sums = {i: known[i] for i in scored if i in known}
            sums.update(self.store.score_ids(name, f"{space}_tokens", q.tokens, [i for i in scored if i not in known]))
            maxsim = {i: s / n_tokens for i, s in sums.items()}
            for sig, values in ((Signal.DENSE, dense), (Signal.MAXSIM, maxsim)):
                kept = {i: values[i] for i in ids if i in values}
                raw[sig].update(kept)
                comparable[sig].update(fusion.zscores(kept) if len(groups) > 1 else kept)
        raw[Signal.LEXICAL] = lexical
        return raw, {**comparable, Signal.LEXICAL: lexical}

    def _rank(
        self, p: SearchParams, spec: CollectionSpec, query: EncodedQuery, dense_hits: dict[str, Scores],
        lexical_hits: Scores, late_hits: dict[str, Scores],
    ) -> list[Result]:  # fmt: skip
        space_of = self._spaces(spec, query, dense_hits, lexical_hits, late_hits)
        ids = list(dict.fromkeys([*space_of, *lexical_hits]))
        if not ids:
            return []
        modality_of: dict[str, str] = {}
        if p.fusion == Fusion.CALIBRATED_ZSCORE:  # groups by modality too: the one strategy that reads payload here
            modality_of = {
                h.id: str(h.payload.get("modality", "text"))
                for h in self.store.retrieve(spec.name, list(space_of), fields=["modality"])
            }
        groups: dict[tuple[str, str], list[str]] = {}
        for cid, space in space_of.items():
            groups.setdefault((space, modality_of.get(cid, "")), []).append(cid)
        maxsim_k = (
            0 if p.fusion == Fusion.MAXSIM else (p.maxsim_k if p.maxsim_k is not None else self.settings.maxsim_k)
        )
        raw, signals = self._signals(
            spec.name, query, dense_hits, lexical_hits, groups, maxsim_k, late_hits, p.maxsim_only
        )
        s = self.settings
        weights = {sig: p.weights.get(sig, getattr(s, f"{sig}_weight")) for sig in FUSED_SIGNALS}
        if p.fusion in (Fusion.WEIGHTED_ZSCORE, Fusion.CALIBRATED_ZSCORE):
            fused = fusion.weighted_zscore(signals, ids, weights)
        elif p.fusion == Fusion.RRF:
            fused = fusion.rrf(signals, ids, weights)
        elif p.fusion == Fusion.DBSF:
            fused = fusion.dbsf(signals, ids, weights)
        else:
            fused = np.array([raw[Signal.MAXSIM].get(i, 0.0) for i in ids])
        scores = relevance = fusion.squash(fused, p.fusion, sum(abs(w) for w in weights.values()))
        factors = None
        if p.boosts:  # the one case that reads every candidate's payload (its metadata)
            metas = {h.id: h.payload.get("meta") or {} for h in self.store.retrieve(spec.name, ids, fields=["meta"])}
            factors = boosts.factors(p.boosts, [metas.get(i, {}) for i in ids], time.time())
            scores = boosts.combine(relevance, factors)
        # Ties in the [0, 1] score are broken by the fused value before squashing: MAXSIM clips mean
        # cosines below 0 to 0, and without this pages a model scores negative would keep candidate order.
        order = [int(n) for n in np.lexsort((-fused, -scores))]
        if p.score_threshold is not None and not p.cross_encoder:
            order = [n for n in order if scores[n] >= p.score_threshold]
        # With the cross-encoder, keep enough fused results for it to rescore.
        wanted = max(p.top_k, (p.rerank_k or s.rerank_k) if p.cross_encoder else 0)
        results: list[Result] = []
        seen: set[object] = set()
        pos = 0
        while pos < len(order) and len(results) < wanted:
            # Payload only for the candidates that can still be returned: a few more than needed,
            # since a document's other passages are skipped.
            chunk = order[pos : pos + wanted - len(results) + 5]
            pos += len(chunk)
            fields = [*HIT_FIELDS, "region_box", SLOT, *(("text_source", "ocr_reader") if p.explain else ())]
            hits = self.store.retrieve(spec.name, [ids[n] for n in chunk], fields=fields)
            payloads = {h.id: h.payload for h in hits}
            for n in chunk:
                cid = ids[n]
                pl = payloads.get(cid)
                if pl is None:  # deleted since it was found
                    continue
                doc = str(pl.get("doc_id", ""))
                # One result per document, or with all_passages per passage or page: a long page's
                # regions are grouped back to their page, which ranks by its best region.
                key = (doc, pl.get("modality"), pl.get("page"), pl.get("passage")) if p.all_passages else doc
                if key in seen:
                    continue
                seen.add(key)
                region = pl.get("region_box")
                text = str(pl.get("text", ""))
                results.append(
                    Result(
                        document_id=doc,
                        modality=str(pl.get("modality", "text")),
                        page=int(pl.get("page", 0)),
                        passage=int(pl.get("passage", 0)),
                        score=float(scores[n]),
                        metadata=pl.get("meta") or {},
                        snippet=text if p.full_text else _snippet(text),
                        snippet_full=text if p.cross_encoder else "",
                        signals={k: float(v[cid]) for k, v in raw.items() if cid in v},
                        point_id=cid,
                        space=str(pl.get("space", "text")),
                        relevance=float(relevance[n]),
                        boost=factors.row(n) if factors is not None else None,
                        region_box=tuple(float(c) for c in region) if region else None,  # type: ignore[arg-type]
                        slot=int(pl.get(SLOT) or 0),
                        text_source=str(pl.get("text_source") or ""),
                        ocr_reader=str(pl.get("ocr_reader") or ""),
                    )
                )
                if len(results) >= wanted:
                    break
        return results

    def _cross_encode(self, text: str, results: list[Result], rerank_k: int) -> list[Result]:
        """Re-sorts the top `rerank_k` by the cross-encoder's score (which becomes their score);
        the rest keep their order, capped below the lowest reranked score so scores stay sorted."""
        if not text.strip():
            raise InvalidArgument("the cross-encoder needs query text")
        head, tail = results[:rerank_k], results[rerank_k:]
        scores = self.catalog.cross_encoder().score(text, [r.snippet_full or r.snippet for r in head])
        for r, ce in zip(head, scores, strict=True):
            r.signals[Signal.CROSS_ENCODER] = float(ce)
            r.score = r.relevance = float(ce)
            if r.boost is not None:  # boosts apply to the cross-encoder's relevance as to the fused one
                r.score = float(boosts.combine(np.array([r.relevance]), r.boost)[0])
        head.sort(key=lambda r: -r.score)
        floor = head[-1].score if head else 1.0
        for r in tail:
            r.score = min(r.score, floor)
        return head + tail

    def _explain(self, name: str, query: EncodedQuery, results: list[Result]) -> None:
        for space in {r.space for r in results}:
            q = query.spaces.get(space)
            if q is None:
                continue
            mine = [r for r in results if r.space == space]
            stored = {h.id: h for h in self.store.retrieve(name, [r.point_id for r in mine], space=space)}
            for r in mine:
                hit = stored.get(r.point_id)
                if hit is not None and hit.tokens is not None and len(hit.tokens):
                    r.matches = token_matches(q, hit.tokens, hit.payload)
                    r.page_size = (int(hit.payload.get("width") or 0), int(hit.payload.get("height") or 0))


def _snippet(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
