"""Similarity maps of ColPali pages (PageService.GetSimilarityMap, `mmsearch explain --similarity-map`).

The ColPali model here is a tiny random checkpoint (tests/tiny_colpali.py): what its maps show means
nothing, so these tests check the map's geometry and its agreement with MaxSim, not its quality."""

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image

from mmsearch.client import Client, MMSearchError
from mmsearch.client.client import compression_options
from mmsearch.client.commands_similarity import render_heat_map, scores_grid
from mmsearch.server.app import App
from mmsearch.v1 import collections_pb2, common_pb2, ingest_pb2

from .pagegen import text_page
from .tiny_colpali import build_tiny

pytestmark = pytest.mark.slow


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    from mmsearch.server.app import create_server

    from .conftest import fake_settings

    app: App = create_server(fake_settings(tmp_path, allowed_models=["*"]))
    try:
        with Client(f"127.0.0.1:{app.port}", timeout=120, retries=0) as c:
            yield c
    finally:
        app.stop(grace=None)


def _create(c: Client, name: str, model: str, compression: dict | None = None) -> None:
    config = collections_pb2.CollectionConfig(page_encoder=collections_pb2.EncoderSpec(kind="colpali", model=model))
    if compression:
        config.compression.CopyFrom(compression_options(compression))
    c._call(c.collections.CreateCollection, collections_pb2.CreateCollectionRequest(name=name, config=config))


def _page_item(doc_id: str, size: tuple[int, int]) -> ingest_pb2.IngestItem:
    image = text_page(["quarterly report", "revenue 812.50", "harbour freight"], size=size)
    return ingest_pb2.IngestItem(id=doc_id, image=common_pb2.Image(data=image, mime_type="image/png"))


def test_map_is_the_patch_grid_and_its_hottest_patch_is_the_maxsim_match(
    client: Client, tiny_colpali_dir: Path, tmp_path: Path
) -> None:
    # one exact vector per patch: the map comes from the vectors MaxSim scored
    exact = {"tokens": "float32", "token_pool_factor": 1}
    _create(client, "exact", str(build_tiny("colpali", tiny_colpali_dir)), exact)
    assert all(a.ok for a in client.ingest("exact", [_page_item("scan", (360, 480))]))
    m = client.similarity_map("exact", "scan", 1, "harbour freight")
    assert m.source == "stored" and (m.page_width, m.page_height) == (360, 480)
    assert m.rows > 1 and m.cols > 1 and len(m.scores) == len(m.query_tokens) * m.rows * m.cols
    hit = client.search("exact", "harbour freight", top_k=1, explain=True).results[0]
    assert hit.document_id == "scan"
    matches = hit.explanation.matches
    assert [x.query_token for x in matches] == list(m.query_tokens)
    for token, match in zip(m.query_tokens, matches, strict=True):
        heat = scores_grid(m, token)
        r, c = heat.hottest
        # the patch the explanation names for this token is the hottest patch of its map
        assert match.document_token == f"patch r{r}c{c}", (token, match.document_token, heat.hottest)
        assert heat.grid[r, c] == pytest.approx(match.similarity, abs=5e-3)  # the query encoded twice
        cell = (c * 360 / m.cols, r * 480 / m.rows)
        assert (match.box.x0, match.box.y0) == pytest.approx(cell, abs=0.5)
    # drawn over the page at the page's size, hottest patch outlined
    out = tmp_path / "map.png"
    page = Image.new("RGB", (360, 480), "white")
    render_heat_map(page, scores_grid(m), out)
    drawn = Image.open(out)
    assert drawn.size == (360, 480) and np.asarray(drawn).std() > 0


def test_pooled_pages_are_encoded_again_from_the_kept_image(
    client: Client, tiny_colpali_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the tiny model's 16 patches are below pooling's floor: lower it (the server runs in this process)
    monkeypatch.setattr("mmsearch.server.ingest.pooling.MIN_VECTORS", 4)
    _create(client, "pooled", str(build_tiny("colpali", tiny_colpali_dir)))  # default: patches pooled by 3
    assert all(a.ok for a in client.ingest("pooled", [_page_item("scan", (300, 420))]))
    m = client.similarity_map("pooled", "scan", 1, "quarterly report")
    assert m.source == "reencoded" and (m.page_width, m.page_height) == (300, 420)
    assert len(m.scores) == len(m.query_tokens) * m.rows * m.cols and np.isfinite(m.scores).all()
    with pytest.raises(MMSearchError) as err:
        client.similarity_map("pooled", "scan", 2, "quarterly report")
    assert err.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(MMSearchError) as err:
        client.similarity_map("pooled", "scan", 1, "  ")
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_word_pages_have_no_similarity_map(client: Client) -> None:
    client.create_collection("words")
    assert all(a.ok for a in client.ingest("words", [_page_item("scan", (300, 420))]))
    with pytest.raises(MMSearchError) as err:
        client.similarity_map("words", "scan", 1, "quarterly report")
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION and "word boxes" in err.value.details
