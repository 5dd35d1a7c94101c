"""SearchService: proto <-> Searcher."""

from __future__ import annotations

import grpc

from mmsearch.protocol.vocab import FUSED_SIGNALS, Fusion, Modality
from mmsearch.protocol.wire import BOOST_DIRECTION, DECAY_FUNCTION, FUSION, MODALITY, dict_to_metadata
from mmsearch.v1 import search_pb2, search_pb2_grpc

from ..errors import InvalidArgument
from ..ranking import boosts
from ..search import Searcher, SearchParams
from ..security.principal import current_tenant
from ..storage.base import Cond
from ..storage.page_images import image_key
from ..storage.records import Breadth
from .filters import to_where


def _modality(number: int) -> Modality:
    m = MODALITY.from_wire(number)
    if m is None:
        raise InvalidArgument(f"unknown modality {number} in the modality filter")
    return m


def _fusion(number: int) -> Fusion:
    if number == search_pb2.FUSION_STRATEGY_UNSPECIFIED:
        return Fusion.WEIGHTED_ZSCORE  # the server's default
    f = FUSION.from_wire(number)
    if f is None:
        raise InvalidArgument(f"unknown fusion strategy {number}")
    return f


def boosts_from_request(b: search_pb2.Boosts) -> boosts.Boosts:
    """The request's boosts; enum values this version does not know are named by the domain's check."""
    out = boosts.Boosts()
    for n in b.numeric:
        direction = BOOST_DIRECTION.from_wire(n.direction)
        if direction is None:
            raise InvalidArgument(f"boost on {n.key!r}: direction must be BOOST_DIRECTION_HIGHER or _LOWER")
        out.numeric.append(
            boosts.NumericBoost(n.key, direction, n.weight, n.min if n.HasField("min") else None,
                                n.max if n.HasField("max") else None)
        )  # fmt: skip
    for d in b.decay:
        function = DECAY_FUNCTION.from_wire(d.function)
        if function is None:
            raise InvalidArgument(f"boost on {d.key!r}: unknown decay function {d.function}; use exp, gauss or linear")
        midpoint = d.midpoint if d.HasField("midpoint") else 0.5
        out.decay.append(boosts.DecayBoost(d.key, function, d.scale, d.weight, d.origin, midpoint))
    out.keyword.extend(boosts.KeywordBoost(k.key, k.value, k.multiplier) for k in b.keyword)
    return out


def params_from_request(r: search_pb2.SearchRequest) -> SearchParams:
    modalities = [_modality(m) for m in r.modalities]
    fusion = _fusion(r.ranking.fusion)
    weights = {str(s): getattr(r.ranking, f"{s}_weight") for s in FUSED_SIGNALS if r.ranking.HasField(f"{s}_weight")}
    where = to_where(r.filter if r.HasField("filter") else None)
    if r.document_ids:
        where = where.and_(Cond(key="doc_id", any_of=list(r.document_ids)))
    return SearchParams(
        collection=r.collection,
        text=r.query.text,
        top_k=r.top_k or 10,
        where=where,
        modalities=modalities,
        score_threshold=r.score_threshold if r.HasField("score_threshold") else None,
        prefetch_k=r.ranking.prefetch_k,
        weights=weights,
        fusion=fusion,
        explain=r.explain,
        all_passages=r.all_passages,
        full_text=r.full_text,
        cross_encoder=r.ranking.cross_encoder,
        rerank_k=r.ranking.rerank_k,
        image=(r.query.image.data, r.query.image.mime_type) if r.query.image.data else None,
        boosts=boosts_from_request(r.ranking.boosts),
        breadth=Breadth(hnsw_ef=r.ranking.hnsw_ef, exact=r.ranking.exact),
    )


class SearchServicer(search_pb2_grpc.SearchServiceServicer):
    def __init__(self, searcher: Searcher) -> None:
        self.searcher = searcher
        self.store = searcher.catalog.store

    def Search(self, request: search_pb2.SearchRequest, context: grpc.ServicerContext) -> search_pb2.SearchResponse:  # noqa: N802
        params = params_from_request(request)
        params.tenant = current_tenant()  # set by the server, never by the request
        results, t = self.searcher.search(params)
        out = search_pb2.SearchResponse(
            timings=search_pb2.SearchTimings(
                encode_ms=t.encode_ms, retrieve_ms=t.retrieve_ms, rerank_ms=t.rerank_ms, total_ms=t.total_ms
            )
        )
        for r in results:
            res = out.results.add(
                document_id=r.document_id,
                page=r.page,
                modality=MODALITY.to_wire(r.modality),
                score=r.score,
                metadata=dict_to_metadata(r.metadata),
                snippet=r.snippet,
                passage=r.passage,
            )
            if request.thumbnails and r.modality == Modality.PAGE and self.store.page_images is not None:
                key = image_key(r.document_id, params.tenant, r.slot)  # results are the caller's tenant's
                kept = self.store.page_images.get(request.collection, key, r.page, thumbnail_only=True)
                if kept is not None:
                    res.thumbnail = kept[1]
            if request.explain:
                res.explanation.signals.update(r.signals)
                res.explanation.page_width, res.explanation.page_height = r.page_size
                res.explanation.text_source, res.explanation.ocr_reader = r.text_source, r.ocr_reader
                if r.boost is not None:
                    res.explanation.unboosted_score = r.relevance
                    for name, factor, part in boosts.contributions(r.relevance, r.boost):
                        res.explanation.boosts.add(boost=name, factor=factor, contribution=part)
                if r.region_box is not None:
                    x0, y0, x1, y1 = r.region_box
                    res.explanation.region.CopyFrom(search_pb2.BoundingBox(x0=x0, y0=y0, x1=x1, y1=y1))
                for m in r.matches:
                    match = res.explanation.matches.add(
                        query_token=m.query_token,
                        document_token=m.document_token,
                        similarity=m.similarity,
                        document_position=m.position,
                    )
                    if m.box is not None:
                        match.box.CopyFrom(search_pb2.BoundingBox(x0=m.box[0], y0=m.box[1], x1=m.box[2], y1=m.box[3]))
        return out
