"""The ColPali path's costs: which models a query runs, the first stage, ingest batching."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from mmsearch.client import Client
from mmsearch.server.app import App, create_server
from mmsearch.server.catalog import Catalog

from .conftest import fake_settings
from .documents import text_item
from .pagegen import text_page
from .test_pages import image_item
from .tiny_colpali import build_tiny


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    app = create_server(fake_settings(tmp_path, max_message_mb=8, allowed_models=["*"]))
    yield app
    app.stop(grace=None)


@pytest.fixture
def client(app: App) -> Iterator[Client]:
    with Client(f"127.0.0.1:{app.port}", timeout=60, retries=0) as c:
        yield c


def test_page_only_queries_skip_the_text_model(
    client: Client, tiny_colpali_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = str(build_tiny("colpali", tiny_colpali_dir))
    client.create_collection("pages", page_kind="colpali", page_model=model, ocr="never")
    pages = [image_item(f"p{i}", text_page([f"page {i}", "quarterly report"]), "image/png") for i in range(3)]
    assert all(a.ok for a in client.ingest("pages", pages))
    calls: list[str] = []
    text_encoder = Catalog.text_encoder

    def counted(self: Catalog, spec):  # type: ignore[no-untyped-def]
        calls.append(spec.name)
        return text_encoder(self, spec)

    monkeypatch.setattr(Catalog, "text_encoder", counted)
    # only pages are stored: the text space cannot answer, so its model is not run
    assert {r.document_id for r in client.search("pages", "quarterly report", top_k=5).results} == {"p0", "p1", "p2"}
    assert calls == []
    # once it holds a passage, the text model encodes the query again, unless the query asks for pages only
    assert all(a.ok for a in client.ingest("pages", [text_item("note", "a quarterly report in words")]))
    calls.clear()  # the ingest encoded the passage
    assert "note" in {r.document_id for r in client.search("pages", "quarterly report", top_k=5).results}
    assert calls == ["pages"]
    assert client.search("pages", "quarterly report", top_k=5, modalities=["page"]).results
    assert calls == ["pages"]


@pytest.mark.parametrize(
    "exact_points",
    [
        2000,  # (scores of the random model are often negative: ties at 0 broken by the raw MaxSim)
        0,
    ],
)
def test_small_colpali_spaces_are_ranked_by_exact_maxsim(
    tmp_path: Path, tiny_colpali_dir: Path, exact_points: int
) -> None:
    """Below exact_maxsim_points a ColPali space's first stage takes every page, so a search ranks
    exactly as MaxSim over all pages does, whatever prefetch_k; above it (0: never) the rows/columns
    first stage keeps only prefetch_k candidates (3 of 30 here) and misses some of the exact top 3."""
    import io
    import random

    import numpy as np
    from PIL import Image

    from benchmarks.colpali_first_stage import WORDS, page_image
    from mmsearch.encoders.colpali import ColPaliEncoder
    from mmsearch.v1 import search_pb2

    model = str(build_tiny("colpali", tiny_colpali_dir))
    rng = random.Random(0)
    pngs = []
    for _ in range(30):
        buf = io.BytesIO()
        page_image(rng).save(buf, "PNG")
        pngs.append(buf.getvalue())
    encoder = ColPaliEncoder(model)
    pages = [e.tokens for e in encoder.encode_images([Image.open(io.BytesIO(p)) for p in pngs])]
    queries = [" ".join(rng.choice(WORDS) for _ in range(4)) for _ in range(8)]
    app = create_server(fake_settings(tmp_path, allowed_models=["*"], exact_maxsim_points=exact_points))
    try:
        with Client(f"127.0.0.1:{app.port}", timeout=120, retries=0) as c:
            c.create_collection(
                "p", page_kind="colpali", page_model=model, ocr="never", compression={"tokens": "float32"}
            )
            items = [image_item(f"p{i}", p, "image/png") for i, p in enumerate(pngs)]
            assert all(a.ok for a in c.ingest("p", items))
            ranking = search_pb2.RankingOptions(prefetch_k=3, fusion=search_pb2.FUSION_STRATEGY_MAXSIM)
            agree = []
            for q, e in zip(queries, encoder.encode_texts(queries, as_query=True), strict=True):
                tokens = e.tokens
                # compared by score: the random model's pages tie closely, and float order may swap them
                scores = np.array([(tokens @ p.T).max(axis=1).sum() for p in pages])
                got = [int(r.document_id[1:]) for r in c.search("p", q, top_k=3, ranking=ranking).results]
                agree.append(np.allclose(sorted(scores[got]), np.sort(scores)[-3:], atol=1e-4 * len(tokens)))
    finally:
        app.stop(grace=None)
    assert all(agree) if exact_points else not all(agree)
