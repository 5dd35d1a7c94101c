"""Stateless reranking with the text encoder: relevance = mean of the pooled cosine and the
query-length-normalised MaxSim, clipped to [0, 1]. The cross-encoder method lives in
encoders/cross.py; both share the input checks here."""

from __future__ import annotations

import numpy as np

from mmsearch.encoders.base import Encoder

from .errors import InvalidArgument, ResourceExhausted
from .settings import Settings


def check_rerank_input(query: str, documents: list[str], settings: Settings) -> None:
    if not query.strip():
        raise InvalidArgument("query is empty")
    if len(query) > settings.max_query_chars:
        raise InvalidArgument(f"query text is {len(query)} characters; the limit is {settings.max_query_chars}")
    if not documents:
        raise InvalidArgument("no documents to rerank")
    if len(documents) > settings.max_rerank_documents:
        raise ResourceExhausted(
            f"{len(documents)} documents in one rerank call; the limit is {settings.max_rerank_documents}"
        )
    for i, d in enumerate(documents):
        if len(d) > settings.max_rerank_document_chars:
            raise ResourceExhausted(
                f"document {i} is {len(d)} characters; the limit is {settings.max_rerank_document_chars}"
            )


def rerank(encoder: Encoder, query: str, documents: list[str], settings: Settings) -> list[float]:
    check_rerank_input(query, documents, settings)
    q = encoder.encode_texts([query], as_query=True)[0]
    docs = encoder.encode_texts(documents, as_query=False)
    scores = []
    for d in docs:
        cosine = float(q.pooled @ d.pooled)
        maxsim = float((q.tokens @ d.tokens.T).max(axis=1).mean())
        scores.append(float(np.clip((cosine + maxsim) / 2, 0.0, 1.0)))
    return scores
