"""ColPali-family page encoders end to end through the server, from tiny random checkpoints loaded
exactly as real weights are (a local folder named in the collection's page encoder)."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mmsearch.client import Client
from mmsearch.encoders.registry import create
from mmsearch.server.app import App
from mmsearch.v1 import collections_pb2, common_pb2, ingest_pb2, search_pb2, search_pb2_grpc

from .documents import text_item
from .pagegen import text_page
from .tiny_colpali import build_tiny

pytestmark = pytest.mark.slow


@pytest.fixture(params=["colpali", "colqwen2"])
def colpali_model(request: pytest.FixtureRequest, tiny_colpali_dir: Path) -> str:
    return str(build_tiny(request.param, tiny_colpali_dir))


@pytest.fixture(params=["edge", "remote"])
def fake_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    """conftest's fake_app, allowing any model: the tiny checkpoints are built at run time."""
    from mmsearch.server.app import create_server

    from .conftest import fake_settings
    from .qdrant_standins import memory_store

    app = create_server(
        fake_settings(tmp_path, max_message_mb=8, allowed_models=["*"]),
        store=memory_store() if request.param == "remote" else None,
    )
    yield app
    app.stop(grace=None)


@pytest.fixture
def client(fake_app) -> Iterator[Client]:  # type: ignore[no-untyped-def]
    with Client(f"127.0.0.1:{fake_app.port}", timeout=120, retries=0) as c:
        yield c


def _create(c: Client, name: str, model: str) -> collections_pb2.Collection:
    req = collections_pb2.CreateCollectionRequest(
        name=name,
        config=collections_pb2.CollectionConfig(page_encoder=collections_pb2.EncoderSpec(kind="colpali", model=model)),
    )
    return c._call(c.collections.CreateCollection, req)


def test_colpali_pages_ingest_search_and_score(client: Client, colpali_model: str) -> None:
    col = _create(client, "pages", colpali_model)
    assert {s.name: s.dim for s in col.spaces} == {"text": 32, "page": 128}
    pages = {f"p{i}": text_page([f"page number {i}", "quarterly report"], size=(300 + 40 * i, 400)) for i in range(4)}
    items = [
        ingest_pb2.IngestItem(id=k, image=common_pb2.Image(data=v, mime_type="image/png")) for k, v in pages.items()
    ]
    items.append(text_item("note", "a text note about quarterly reports"))
    acks = list(client.ingest("pages", items))
    assert all(a.ok for a in acks), acks

    # query by example: the stored page image comes back first, with a MaxSim equal to the encoder's own
    stub = search_pb2_grpc.SearchServiceStub(client.channel)
    query = search_pb2.Query(image=common_pb2.Image(data=pages["p2"], mime_type="image/png"))
    r = stub.Search(search_pb2.SearchRequest(collection="pages", query=query, top_k=5, explain=True))
    assert r.results[0].document_id == "p2" and r.results[0].modality == common_pb2.MODALITY_PAGE
    import io

    from PIL import Image

    enc = create("colpali", colpali_model)
    mine = enc.encode_images([Image.open(io.BytesIO(pages["p2"]))])[0]
    expected = float((mine.tokens @ mine.tokens.T).max(axis=1).mean())
    assert r.results[0].explanation.signals["maxsim"] == pytest.approx(expected, abs=2e-2)  # float16 storage
    matches = r.results[0].explanation.matches
    assert matches and all(m.document_token.startswith("patch") for m in matches)

    # text queries go through the model's query path too, and text passages share the ranked list
    res = client.search("pages", "quarterly report", top_k=10)
    assert {x.modality for x in res.results} == {common_pb2.MODALITY_PAGE, common_pb2.MODALITY_TEXT}
    assert len(res.results) == 5
    only_pages = client.search("pages", "quarterly report", top_k=10, modalities=["page"])
    assert {x.document_id for x in only_pages.results} == set(pages)
    assert np.isfinite([x.score for x in res.results]).all()


def test_maxsim_cascade_spares_late_interaction_spaces(tmp_path: Path, tiny_colpali_dir: Path) -> None:
    """The MaxSim cascade (maxsim_k) limits late interaction in the text space, whose model was not
    trained for it; a ColPali space's candidates are all scored by MaxSim, the model's own ranking."""
    from mmsearch.server.app import create_server

    from .conftest import fake_settings

    app = create_server(fake_settings(tmp_path, maxsim_k=1, allowed_models=["*"]))
    try:
        with Client(f"127.0.0.1:{app.port}", timeout=120, retries=0) as c:
            _create(c, "mixed", str(build_tiny("colpali", tiny_colpali_dir)))
            items = [
                ingest_pb2.IngestItem(
                    id=f"p{i}", image=common_pb2.Image(data=text_page([f"report {i}"]), mime_type="image/png")
                )
                for i in range(3)
            ]
            items += [text_item(f"t{i}", f"a note about the quarterly report number {i}") for i in range(4)]
            assert all(a.ok for a in c.ingest("mixed", items))
            res = c.search("mixed", "quarterly report", top_k=10, explain=True).results
            pages = [r for r in res if r.modality == common_pb2.MODALITY_PAGE]
            texts = [r for r in res if r.modality == common_pb2.MODALITY_TEXT]
            assert len(pages) == 3 and len(texts) == 4
            assert all("maxsim" in r.explanation.signals for r in pages)
            assert sum("maxsim" in r.explanation.signals for r in texts) == 1
    finally:
        app.stop(grace=None)


def test_info_reports_what_each_encoder_reads(client: Client, tiny_colpali_dir: Path) -> None:
    """GetInfo: a ColPali-family encoder reads pages and text, the collection's text model text only."""
    model = str(build_tiny("colpali", tiny_colpali_dir))
    _create(client, "pages", model)  # loads both encoders
    encoders = {e.kind: e for e in client.info().encoders}
    assert set(encoders) == {"colpali", "fake"}
    colpali, fake = encoders["colpali"], encoders["fake"]
    assert list(colpali.modalities) == [common_pb2.MODALITY_TEXT, common_pb2.MODALITY_PAGE]
    assert list(colpali.capabilities) == ["image", "late_interaction", "text"] and colpali.model == model
    assert list(fake.modalities) == [common_pb2.MODALITY_TEXT] and list(fake.capabilities) == ["text"]
