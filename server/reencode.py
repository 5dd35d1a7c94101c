"""A collection's stored points, re-encoded with another text model (server/reindex.py copies them).

What each point is made from again, from what the collection stores:
- a passage (modality text): its payload `text`, as ingest encoded it;
- a page read into the text space (OCR or a PDF's text layer): its payload `words` and `boxes`, in
  the same windows ingest used (ingest/page_encoding.py); a page region from its own words;
- a page in a ColPali page space: kept as it is. Its patch vectors come from the page image and the
  page model, which the text model does not touch (and the image is not always kept).
Lexical (BM25) vectors are term counts of the same text: made again the same way, model-free.
Payloads are kept, but for the per-token lists that name the new model's token vectors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

from mmsearch.encoders.base import Encoder

from .ingest.page_encoding import encode_word_lists, encode_word_pages
from .ingest.pages import Word
from .ingest.pooling import pick, pool_tokens, positions
from .ranking.lexical import document_terms
from .storage.base import LIVE, ROWCOL, SLOT, TENANT_FIELD, CollectionSpec, Cond, PointData, Store, Where

#: What a point's fingerprint covers: any rewrite of a document (a new version, a replaced slot, new
#: metadata) changes one of these, so a copy pass can tell which points to copy again.
FINGERPRINT_FIELDS = [
    "doc_id", "seq", "space", "modality", "passage", "page", "region", "text", "meta", "source",
    TENANT_FIELD, SLOT, LIVE,
]  # fmt: skip
#: Per-token payload lists that belong to the old model's token vectors.
TOKEN_FIELDS = ("tokens", "token_words", "token_positions")


def fingerprints(store: Store, name: str) -> dict[str, str]:
    """Point id -> a hash of the fields above, over every visible point (payload only: cheap)."""
    out = {}
    for hits in store.scan(name, Where(), FINGERPRINT_FIELDS):
        for h in hits:
            out[h.id] = hashlib.sha1(json.dumps(h.payload, sort_keys=True, default=str).encode()).hexdigest()
    return out


def batches(ids: Sequence[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(ids), size):
        yield list(ids[i : i + size])


def reencode(store: Store, name: str, ids: Sequence[str], new: CollectionSpec, encoder: Encoder) -> list[PointData]:
    """The points `ids` of collection `name` (visible ones; gone ones are skipped), with their text
    space made by `encoder` and everything else as stored."""
    hits = store.retrieve(name, ids)
    page_ids = [h.id for h in hits if h.payload.get("space") == "page"]
    kept = _page_vectors(store, name, page_ids, new) if page_ids else {}
    factor = new.spaces["text"].compression.token_pool_factor
    passages = [h for h in hits if h.payload.get("space", "text") == "text" and h.payload.get("modality") == "text"]
    pages = [h for h in hits if h.payload.get("space", "text") == "text" and h.payload.get("modality") == "page"]
    out: list[PointData] = []
    if passages:
        encoded = encoder.encode_texts([h.payload.get("text", "") for h in passages], as_query=False)
        for h, e in zip(passages, encoded, strict=True):
            pooled = pool_tokens(e.tokens, factor)
            payload = _payload(h.payload, tokens=pick(e.token_strings, pooled.representatives), **positions(pooled))
            out.append(PointData(h.id, "text", e.pooled, pooled.tokens, document_terms(payload["text"]), payload))
    whole = [h for h in pages if "region" not in h.payload]
    regions = [h for h in pages if "region" in h.payload]
    for group, encode in ((whole, encode_word_pages), (regions, encode_word_lists)):
        if not group:
            continue
        words = [_words(h.payload) for h in group]
        for h, w, pv in zip(group, words, encode(encoder, words), strict=True):
            pooled = pool_tokens(pv.tokens, factor)
            payload = _payload(
                h.payload,
                tokens=pick(pv.token_strings, pooled.representatives),
                token_words=pick(pv.token_words, pooled.representatives),
                **positions(pooled),
            )
            text = payload.get("text") or " ".join(x.text for x in w)
            out.append(PointData(h.id, "text", pv.pooled, pooled.tokens, document_terms(text), payload))
    for h in hits:
        if h.id in kept:
            dense, tokens, prefetch = kept[h.id]
            text = h.payload.get("text") or ""
            terms = document_terms(text) if text else None
            out.append(PointData(h.id, "page", dense, tokens, terms, dict(h.payload), prefetch=prefetch))
    return out


def _payload(old: dict[str, Any], **tokens: Any) -> dict[str, Any]:
    return {**{k: v for k, v in old.items() if k not in TOKEN_FIELDS}, **tokens}


def _words(payload: dict[str, Any]) -> list[Word]:
    boxes = payload.get("boxes", [])
    return [Word(str(t), (b[0], b[1], b[2], b[3])) for t, b in zip(payload.get("words", []), boxes, strict=False)]


def _page_vectors(store: Store, name: str, ids: list[str], spec: CollectionSpec) -> dict[str, tuple[Any, Any, Any]]:
    """The stored page-space vectors (pooled, patches and, where the space has them, the rows/columns
    prefetch vectors) of these points, to keep as they are."""
    dense = {}
    for hits in store.scan(name, Where(must=[Cond(ids=ids)]), [], space="page"):
        dense.update({h.id: h.dense for h in hits})
    tokens = {h.id: h.tokens for h in store.retrieve(name, ids, space="page", fields=["doc_id"])}
    rowcol: dict[str, Any] = {}
    if spec.spaces["page"].prefetch == ROWCOL:
        rowcol = {h.id: h.tokens for h in store.retrieve(name, ids, space="page", fields=["doc_id"], vector=ROWCOL)}
    return {
        i: (dense[i], tokens[i], rowcol.get(i)) for i in ids if dense.get(i) is not None and tokens.get(i) is not None
    }
