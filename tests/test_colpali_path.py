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
