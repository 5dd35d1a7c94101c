"""The rows/columns first stage of ColPali page spaces: stored at ingest, used above
exact_maxsim_points, close to exact MaxSim; collections without it keep the mean-vector first stage."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mmsearch.client import Client
from mmsearch.server.app import App, create_server
from mmsearch.server.ingest.page_encoding import rowcol
from mmsearch.server.storage.base import ROWCOL, PointData, Where
from mmsearch.v1 import search_pb2

from .conftest import fake_settings, memory_store
from .test_pages import image_item
from .tiny_colpali import build_tiny

PAGES = 300


def test_rowcol_pools_rows_and_columns_of_the_patch_grid() -> None:
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(6, 4)).astype(np.float32)  # 2 rows x 3 columns, row-major
    r, c = np.divmod(np.arange(6), 3)
    boxes = np.stack([c / 3, r / 2, (c + 1) / 3, (r + 1) / 2], axis=1)
    got = rowcol(tokens, boxes)
    grid = tokens.reshape(2, 3, 4)
    want = np.concatenate([grid.mean(axis=1), grid.mean(axis=0)])
    assert got.shape == (5, 4)
    assert np.allclose(got, want / np.linalg.norm(want, axis=1, keepdims=True), atol=1e-6)
    # no grid (tiles, or a page that lost a patch): the one mean vector
    mean = tokens.mean(axis=0)
    assert np.allclose(rowcol(tokens, None), [mean / np.linalg.norm(mean)], atol=1e-6)
    assert np.allclose(rowcol(tokens[:5], boxes[:5]), rowcol(tokens[:5], None))


@pytest.fixture(params=["edge", "remote"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    settings = fake_settings(tmp_path, allowed_models=["*"], exact_maxsim_points=50, max_message_mb=8)
    app = create_server(settings, store=memory_store() if request.param == "remote" else None)
    yield app
    app.stop(grace=None)


def _pngs(n: int, seed: int) -> list[bytes]:
    from benchmarks.colpali_first_stage import page_pngs

    return page_pngs(n, seed)


def test_ingest_stores_rows_and_columns(app: App, tiny_colpali_dir: Path) -> None:
    model = str(build_tiny("colpali", tiny_colpali_dir))
    with Client(f"127.0.0.1:{app.port}", timeout=120, retries=0) as c:
        c.create_collection("p", page_kind="colpali", page_model=model, ocr="never", compression={"tokens": "float32"})
        assert app.store.get_spec("p").spaces["page"].prefetch == ROWCOL
        items = [image_item(f"p{i}", p, "image/png") for i, p in enumerate(_pngs(3, 0))]
        assert all(a.ok for a in c.ingest("p", items))
    ids = [h.id for batch in app.store.scan("p", Where(), ["doc_id"]) for h in batch]
    records = app.store._retrieve("p", ids, False, ["page_tokens", "page_rowcol"])
    assert len(records) == 3
    for r in records:
        tokens = np.asarray(r.vector["page_tokens"], dtype=np.float32)
        pooled = np.asarray(r.vector["page_rowcol"], dtype=np.float32)
        grid = tokens.reshape(4, 4, -1)  # the tiny ColPali's 4 x 4 patches
        want = np.concatenate([grid.mean(axis=1), grid.mean(axis=0)])
        assert np.allclose(pooled, want / np.linalg.norm(want, axis=1, keepdims=True), atol=1e-3)


def test_rowcol_first_stage_keeps_exact_maxsims_top_10(app: App, tiny_colpali_dir: Path) -> None:
    """300 pages (40 encoded by the tiny model, the rest spliced from them as the benchmark does), above
    exact_maxsim_points (50): the rows/columns first stage passes 30 candidates (prefetch_k; 5% would be
    15) to exact MaxSim and keeps most of its top 10; a collection made before rows/columns (mean-vector
    first stage, also 30) keeps far fewer. (The spliced pages are near copies of 40, a harder case than
    the benchmark's 1,000 encoded pages, where 10% of candidates kept 0.98.)"""
    from PIL import Image

    from benchmarks.colpali_first_stage import WORDS, splice
    from mmsearch.encoders.colpali import ColPaliEncoder

    model = str(build_tiny("colpali", tiny_colpali_dir))
    encoder = ColPaliEncoder(model)
    encoded = encoder.encode_images([Image.open(io.BytesIO(p)) for p in _pngs(40, 1)])
    boxes = encoded[0].token_boxes
    pages = splice([e.tokens for e in encoded], PAGES, 4)
    rng = random.Random(2)
    queries = [" ".join(rng.choice(WORDS) for _ in range(4)) for _ in range(20)]
    with Client(f"127.0.0.1:{app.port}", timeout=120, retries=0) as c:
        c.create_collection("p", page_kind="colpali", page_model=model, ocr="never", compression={"tokens": "float32"})
        spec = app.store.get_spec("p")
        old = replace(spec, name="old", spaces={**spec.spaces, "page": replace(spec.spaces["page"], prefetch="")})
        app.store.create_collection(old)
        for name in ("p", "old"):
            prefetch = app.store.get_spec(name).spaces["page"].prefetch == ROWCOL
            points = [
                PointData(
                    id=f"00000000-0000-0000-0000-{i:012d}",
                    space="page",
                    dense=(t.mean(axis=0) / np.linalg.norm(t.mean(axis=0))).astype(np.float32),
                    tokens=t,
                    lexical=None,
                    payload={"doc_id": f"p{i}", "seq": 0, "space": "page", "modality": "page", "page": 1},
                    prefetch=rowcol(t, boxes) if prefetch else None,
                )
                for i, t in enumerate(pages)
            ]
            app.store.upsert(name, points)
        ranking = search_pb2.RankingOptions(prefetch_k=30, fusion=search_pb2.FUSION_STRATEGY_MAXSIM)
        overlap: dict[str, list[float]] = {"p": [], "old": []}
        for q, e in zip(queries, encoder.encode_texts(queries, as_query=True), strict=True):
            scores = np.array([(e.tokens @ p.T).max(axis=1).sum() for p in pages])
            tenth = np.sort(scores)[-10]
            for name in overlap:
                got = [int(r.document_id[1:]) for r in c.search(name, q, top_k=10, ranking=ranking).results]
                # by score: the random model's pages tie closely, and float order may swap them
                overlap[name].append(float(np.mean(scores[got] >= tenth - 1e-4 * len(e.tokens))))
    rows_cols, mean = float(np.mean(overlap["p"])), float(np.mean(overlap["old"]))
    # measured: 0.855 with rows/columns (twice), mean first stage about 0.6
    assert rows_cols >= 0.8, overlap
    assert mean < rows_cols, overlap
