"""BM25 term vectors. Documents get saturated term frequencies; the engine applies IDF at query
time (sparse vectors with the IDF modifier), so both backends score lexical matches the same way."""

from __future__ import annotations

import qdrant_edge as qe

# k1 0.9 / b 0.4: the Anserini defaults that BEIR's BM25 numbers use; avg_len ~ our passage length.
_BM25 = qe.Bm25(qe.Bm25Config(k=0.9, b=0.4, avg_len=150.0, language="english"))

#: BM25 term weights as a sparse vector: (term indices, weights).
Terms = tuple[list[int], list[float]]


def document_terms(text: str) -> Terms:
    v = _BM25.embed_document(text)
    return list(v.indices), list(v.values)


def query_terms(text: str) -> Terms:
    v = _BM25.embed_query(text)
    return list(v.indices), list(v.values)
