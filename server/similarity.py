"""Similarity maps: how each patch of a ColPali-family page answers each query token, the heat map
colpali-engine's interpretability module draws (similarity_map_utils.get_similarity_maps_from_embeddings:
query tokens against the page's patch grid). That module is not imported: it pulls in matplotlib,
seaborn and einops for what is one matrix product here; the grid's layout is the same (rows from the
top, columns from the left, token-major).

The map comes from the page's stored patch vectors when they are one per patch (as MaxSim scored
them, so the hottest patch of a query token is its explanation's match); a collection that pools
patches at ingest stores fewer vectors than patches, and then the kept page image is encoded again.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .catalog import Catalog
from .errors import FailedPrecondition, InvalidArgument, NotFound
from .ingest.pages import PageLimits
from .query import encode_query
from .storage.base import point_id
from .storage.page_images import image_key


@dataclass
class SimilarityMap:
    rows: int
    cols: int
    width: int
    height: int
    query_tokens: list[str]
    scores: np.ndarray  # (query tokens, rows, cols)
    source: str  # "stored" or "reencoded"


def similarity_map(
    catalog: Catalog, collection: str, doc_id: str, page: int, query: str, limits: PageLimits,
    tenant: str | None = None,
) -> SimilarityMap:  # fmt: skip
    store = catalog.store
    spec = store.get_spec(collection)
    if not query.strip():
        raise InvalidArgument("a similarity map needs query text")
    if page < 1:
        raise NotFound(f"page {page} of {doc_id!r}: pages are numbered from 1")
    if "page" not in spec.spaces:
        raise FailedPrecondition(
            f"collection {collection!r} has no ColPali page space: its pages are read as words "
            "(use the explanation's word boxes instead)"
        )
    ids = [point_id(doc_id, page - 1, tenant, slot) for slot in (0, 1)]
    hits = store.retrieve(collection, ids, space="page")
    if not hits or hits[0].payload.get("modality") != "page":
        raise NotFound(f"document {doc_id!r} has no page {page} in collection {collection!r}")
    hit = hits[0]
    payload = hit.payload
    if payload.get("space") != "page" or hit.tokens is None:
        raise FailedPrecondition(f"page {page} of {doc_id!r} has no patch vectors")
    q = encode_query(catalog, spec, query, None, limits).spaces["page"]
    width, height = int(payload.get("width") or 0), int(payload.get("height") or 0)
    grid = payload.get("patch_grid") or []
    positions = payload.get("token_positions") or list(range(len(hit.tokens)))
    if len(grid) == 2 and len(hit.tokens) == grid[0] * grid[1]:
        rows, cols = int(grid[0]), int(grid[1])
        patches = np.zeros((rows * cols, hit.tokens.shape[1]), dtype=np.float32)
        patches[np.asarray(positions, dtype=int)] = hit.tokens
        source = "stored"
    else:
        rows, cols, patches = _reencoded(catalog, spec, collection, doc_id, page, tenant, ids.index(hit.id))
        source = "reencoded"
    scores = (q.tokens @ patches.T).reshape(len(q.tokens), rows, cols)
    return SimilarityMap(rows, cols, width, height, list(q.token_strings), scores, source)


def _reencoded(
    catalog: Catalog, spec, collection: str, doc_id: str, page: int, tenant: str | None, slot: int,  # type: ignore[no-untyped-def]
) -> tuple[int, int, np.ndarray]:  # fmt: skip
    images = catalog.store.page_images
    kept = images.get(collection, image_key(doc_id, tenant, slot), page) if images is not None else None
    if kept is None or not kept[0]:
        raise FailedPrecondition(
            f"page {page} of {doc_id!r}: its patch vectors are pooled and its image is not kept, "
            "so there is no patch grid to draw"
        )
    image = Image.open(io.BytesIO(kept[0])).convert("RGB")
    encoded = catalog.page_encoder(spec).encode_images([image])[0]
    boxes = encoded.token_boxes
    if boxes is None or not len(boxes):
        raise FailedPrecondition(f"the page encoder of {collection!r} gives no patch grid")
    cols = round(1 / float(boxes[0][2] - boxes[0][0]))
    rows = round(1 / float(boxes[0][3] - boxes[0][1]))
    if rows * cols != len(boxes):
        raise FailedPrecondition(f"the page encoder of {collection!r} gives patches that are not a grid")
    return rows, cols, encoded.tokens
