"""A query (text, an image, or both) into vectors for every vector space of a collection.

- text space (MiniLM or another text model): the query text, and the text read off a query image
  by OCR (query by example with the offline default), each encoded alone and given equal weight;
- page space (a ColPali-family model): the text through the model's query path and/or the image
  through its page path; both together = their token vectors side by side.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from mmsearch.encoders.base import Capability, Encoded, normalise

from .catalog import Catalog
from .errors import InvalidArgument
from .ingest.pages import PageLimits, image_pages
from .ranking.lexical import Terms, query_terms
from .storage.base import CollectionSpec


@dataclass
class EncodedQuery:
    text: str  # the text used for lexical matching (query text + OCR text of a query image)
    spaces: dict[str, Encoded]  # space name -> query vectors in that space
    lexical: Terms  # BM25 query terms
    late_interaction: frozenset[str] = frozenset()  # spaces whose encoder was trained for MaxSim


def _combine(parts: list[Encoded]) -> Encoded:
    if len(parts) == 1:
        return parts[0]
    return Encoded(
        pooled=normalise(np.sum([p.pooled for p in parts], axis=0)),
        tokens=np.concatenate([p.tokens for p in parts]),
        token_strings=[t for p in parts for t in p.token_strings],
    )


def encode_query(
    catalog: Catalog,
    spec: CollectionSpec,
    text: str,
    image: tuple[bytes, str] | None,
    limits: PageLimits,
    spaces_wanted: Collection[str] | None = None,
) -> EncodedQuery:
    """spaces_wanted: the spaces that can answer (None: all); the others' models are not called (a
    ColPali collection of pages only would otherwise run the text model for every query, which cost
    more than the ColPali query itself)."""
    page_image = None
    if image is not None:
        try:
            page_image = next(image_pages(image[0], image[1], limits)).image
        except StopIteration:
            raise InvalidArgument("query image has no pages") from None
    lexical_text = text
    lexical: Terms | None = None
    spaces: dict[str, Encoded] = {}
    late_interaction: set[str] = set()
    for space in spec.spaces.values():
        if spaces_wanted is not None and space.name not in spaces_wanted:
            continue
        if space.name == "text":
            texts = [text] if text.strip() else []
            if page_image is not None and "page" not in spec.spaces:
                ocr_text = " ".join(w.text for w in catalog.ocr().words(page_image))
                lexical_text = f"{text} {ocr_text}".strip()
                if ocr_text.strip():
                    texts.append(ocr_text)
                    lexical = _balanced_terms(text, ocr_text)
            if texts:  # encoded apart: in one mean the image's ~100 words drowned a few query words
                spaces["text"] = _combine(catalog.text_encoder(spec).encode_texts(texts, as_query=True))
        else:
            encoder = catalog.page_encoder(spec)
            if Capability.LATE_INTERACTION in encoder.capabilities:
                late_interaction.add(space.name)
            parts = []
            if text.strip():
                parts.append(encoder.encode_texts([text], as_query=True)[0])
            if page_image is not None:
                parts.append(encoder.encode_images([page_image])[0])
            if parts:
                spaces[space.name] = _combine(parts)
    if not spaces:
        raise InvalidArgument("the query image holds no readable text (OCR found none); give query text too")
    return EncodedQuery(lexical_text, spaces, lexical or query_terms(lexical_text), frozenset(late_interaction))


def _balanced_terms(text: str, ocr_text: str) -> Terms:
    """BM25 terms of the query text and of the text read off the query image, the typed terms
    weighing at least as much as all the read ones together (every term weighs 1 in a plain query,
    so 3 typed words against 100 read ones counted for 3%); a term in both counts in both."""
    typed, read = query_terms(text), query_terms(ocr_text)
    if not typed[0]:
        return read
    scale = max(1.0, len(read[0]) / len(typed[0]))
    weights: dict[int, float] = dict(zip(*read, strict=True))
    for term, w in zip(*typed, strict=True):
        weights[term] = weights.get(term, 0.0) + w * scale
    return list(weights), list(weights.values())
