"""ColPali-family pages into points, and the payload every ingested point carries.

The page encode is split from the points it becomes (ingest/points.py `PointBuilder.start` and
`finish`): the batch of page images is queued on the model's thread at once, and its points are
made when its vectors are needed, so the ingest stream reads and decodes the next batch while the
model encodes this one.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np

from mmsearch.encoders.base import Encoded, Encoder

from ..ranking.lexical import document_terms
from ..storage.base import LIVE, ROWCOL, SLOT, TENANT_FIELD, CollectionSpec, PointData, point_id
from .page_encoding import patch_grid, rowcol
from .pooling import Pooled, pick, pool_tokens, positions
from .units import Unit


def submit_images(encoder_of: Callable[[], Encoder], units: list[Unit]) -> Future[list[Encoded]]:
    """The vectors of the units' page images, queued on the encoder's model thread when it has one
    (every pooled encoder does: encoders/batching.EncoderThread), otherwise encoded now. A failure,
    finding the encoder included, is the future's: it fails the batch where its points are made."""
    future: Future[list[Encoded]] = Future()
    try:
        encoder = encoder_of()
        images = [u.page.image for u in units if u.page is not None]
        submit = getattr(encoder, "submit_images", None)
        if submit is not None:
            return submit(images)  # type: ignore[no-any-return]
        future.set_result(encoder.encode_images(images))  # type: ignore[arg-type]
    except Exception as exc:
        future.set_exception(exc)
    return future


def colpali_points(units: list[Unit], spec: CollectionSpec, encoded: Future[list[Encoded]]) -> list[PointData]:
    """The page image through the ColPali-family model (patch vectors in the page space); the
    page's words (text layer or OCR) still feed BM25 and snippets. `encoded`: the vectors of the
    units' images (submit_images)."""
    factor = spec.spaces["page"].compression.token_pool_factor
    prefetch = spec.spaces["page"].prefetch == ROWCOL
    points = []
    for u, e in zip(units, encoded.result(), strict=True):
        assert u.page is not None
        words = u.page.words or []
        text = " ".join(x.text for x in words)
        pooled = pool_tokens(e.tokens, factor)
        points.append(
            PointData(
                id=point_id(u.item.id, u.seq, u.item.tenant, u.item.version.slot),
                space="page",
                dense=e.pooled,
                tokens=pooled.tokens,
                lexical=document_terms(text) if text else None,
                payload=point_payload(
                    u,
                    space="page",
                    text=text,
                    **patch_payload(e.token_strings, e.token_boxes, pooled),
                    **words_source(u),
                    width=u.page.width,
                    height=u.page.height,
                ),
                prefetch=rowcol(e.tokens, e.token_boxes) if prefetch else None,  # from the unpooled patches
            )
        )
    return points


def point_payload(u: Unit, space: str = "text", **extra: Any) -> dict[str, Any]:
    tenant = {TENANT_FIELD: u.item.tenant} if u.item.tenant else {}
    return {
        **tenant,
        "doc_id": u.item.id,
        "space": space,
        "seq": u.seq,
        "modality": u.modality,
        "passage": u.passage,
        "page": u.page.number if u.page else 0,
        "meta": u.item.metadata,
        "source": u.item.source,
        SLOT: u.item.version.slot,
        LIVE: u.item.version.live,
        **extra,
    }


def words_source(u: Unit) -> dict[str, str]:
    """Where a page's words came from, stored with it (explanations show it): `text_source` pdf (its
    text layer), ocr (with `ocr_reader`, the engine and models that read it) or none (ocr never)."""
    assert u.page is not None
    if u.page.extra.get("text_layer"):
        return {"text_source": "pdf"}
    reader = u.page.extra.get("ocr_reader")
    if reader:
        return {"text_source": "ocr", "ocr_reader": str(reader)}
    return {"text_source": "ocr" if u.page.words else "none"}


def patch_payload(strings: list[str], boxes: np.ndarray | None, pooled: Pooled) -> dict[str, Any]:
    """How explanations name a page's stored patch vectors. Patches on a grid (the encoder's boxes
    are its cells) are named by grid and position alone: a name and a box per patch would be half
    the size of a 4-bit patch vector. Otherwise each vector's token string and box."""
    reps = pooled.representatives
    grid = patch_grid(boxes, len(boxes) if boxes is not None else 0)
    if grid is not None:
        return {"patch_grid": list(grid), "token_positions": reps}
    return {
        "tokens": pick(strings, reps),
        "patch_boxes": [[round(float(c), 4) for c in b] for b in pick(boxes, reps)],
        **positions(pooled),
    }
