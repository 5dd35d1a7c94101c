"""The collection setting `ocr: auto | always | never`: which pages are read by the OCR engine."""

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from PIL import Image

from mmsearch.client import Client, MMSearchError
from mmsearch.server.app import App, create_server
from mmsearch.server.errors import FailedPrecondition
from mmsearch.server.ingest import ocr as ocr_module
from mmsearch.server.ingest.pages import Word
from mmsearch.v1 import collections_pb2

from .conftest import fake_settings
from .pagegen import text_page, text_pdf
from .test_pages import image_item, pdf_item
from .tiny_colpali import build_tiny


class _Refusing:
    """An OCR engine factory that fails the moment anything asks for OCR."""

    name = "refusing"
    calls = 0

    def __init__(self, **_: object) -> None:  # rapidocr is made with device=...
        type(self).calls += 1
        raise FailedPrecondition("the OCR engine was asked for")  # fails the page's item, not the stream


class _Stamp:
    """An OCR engine that reads the same word on every page and counts the pages it read."""

    name = "stamp"
    pages = 0

    def __init__(self, **_: object) -> None:
        pass

    def words(self, image: Image.Image) -> list[Word]:
        type(self).pages += 1
        return [Word("ocrstamp", (1.0, 1.0, 20.0, 10.0))]


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch) -> dict[str, type]:
    """Replaces every OCR engine (and any already loaded) with what each test puts in."""
    table: dict[str, type] = {}
    monkeypatch.setattr(ocr_module, "ENGINES", table)
    monkeypatch.setattr(ocr_module, "_LOADED", {})
    _Refusing.calls = _Stamp.pages = 0
    return table


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    # ocr_workers=0: OCR in this process, where the engines fixture replaces the engines (worker
    # processes would load the real rapidocr).
    app = create_server(fake_settings(tmp_path, max_message_mb=8, allowed_models=["*"], ocr_workers=0))
    yield app
    app.stop(grace=None)


@pytest.fixture
def client(app: App) -> Iterator[Client]:
    with Client(f"127.0.0.1:{app.port}", timeout=60, retries=0) as c:
        yield c


def _pages() -> list:
    return [image_item(f"p{i}", text_page([f"page {i}", "quarterly report"]), "image/png") for i in range(3)]


def test_never_with_colpali_ingests_without_touching_ocr(
    client: Client, engines: dict[str, type], tiny_colpali_dir: Path
) -> None:
    engines["rapidocr"] = engines["tesseract"] = _Refusing
    model = str(build_tiny("colpali", tiny_colpali_dir))
    col = client.create_collection("never", page_kind="colpali", page_model=model, ocr="never")
    assert col.config.ocr == collections_pb2.OCR_MODE_NEVER
    pdf = text_pdf([["Layout detection models for scanned papers"], []])  # the second page has no text layer
    acks = list(client.ingest("never", [*_pages(), pdf_item("layout", pdf)]))
    assert [a.ok for a in acks] == [True] * 4 and acks[-1].points == 2, acks
    assert _Refusing.calls == 0
    # pages are found by their image (the page space); the PDF's text layer still feeds BM25 and snippets
    res = client.search("never", "quarterly report", top_k=10, modalities=["page"])
    assert {r.document_id for r in res.results} == {"p0", "p1", "p2", "layout"}
    layout = client.search("never", "layout detection models", top_k=1)
    assert layout.results[0].document_id == "layout" and layout.results[0].snippet
    # where each page's words came from: its text layer, or nothing (searched by its image alone)
    sources = {
        (r.document_id, r.page): (r.explanation.text_source, r.explanation.ocr_reader)
        for r in client.search("never", "quarterly report", top_k=10, all_passages=True, explain=True).results
    }
    assert sources[("layout", 1)] == ("pdf", "") and sources[("p0", 1)] == ("none", ""), sources

    # the same pages in an auto collection do go to OCR (so the engine above would have been noticed)
    client.create_collection("auto", page_kind="colpali", page_model=model)
    acks = list(client.ingest("auto", _pages()[:1]))
    assert not acks[0].ok and _Refusing.calls == 1


def test_auto_reads_text_layers_and_always_ocrs_every_page(client: Client, engines: dict[str, type]) -> None:
    engines["rapidocr"] = _Stamp
    pdf = text_pdf([["attention is all you need"], ["scaled dot product attention"], []])
    client.create_collection("auto")
    [ack] = client.ingest("auto", [pdf_item("attention", pdf)])
    assert ack.points == 3
    assert _Stamp.pages == 1  # auto: only the page without a text layer
    client.create_collection("always", ocr="always")
    assert client.get_collection("always").config.ocr == collections_pb2.OCR_MODE_ALWAYS
    [ack] = client.ingest("always", [pdf_item("attention", pdf)])
    assert ack.points == 3
    assert _Stamp.pages == 4  # always: all three pages, text layers ignored
    hits = client.search("always", "ocrstamp", top_k=3, all_passages=True).results
    assert sorted(r.page for r in hits) == [1, 2, 3] and all("ocrstamp" in r.snippet for r in hits)
    assert "scaled" not in " ".join(r.snippet for r in hits)
    top = client.search("auto", "scaled dot product attention", top_k=1, all_passages=True).results[0]
    assert top.page == 2 and "scaled" in top.snippet
    # each page records where its words came from, and which engine read it (an engine without its
    # own `read` is named by its name)
    sources = {
        r.page: (r.explanation.text_source, r.explanation.ocr_reader)
        for r in client.search("auto", "attention ocrstamp", top_k=3, all_passages=True, explain=True).results
    }
    assert sources == {1: ("pdf", ""), 2: ("pdf", ""), 3: ("ocr", "stamp")}


def test_never_needs_an_image_encoder_and_unknown_modes_are_refused(client: Client) -> None:
    with pytest.raises(MMSearchError) as err:
        client.create_collection("plain", ocr="never")
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "page encoder" in err.value.details
    req = collections_pb2.CreateCollectionRequest(name="odd", config=collections_pb2.CollectionConfig(ocr=9))
    with pytest.raises(MMSearchError) as err:
        client._call(client.collections.CreateCollection, req, retry=False)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(MMSearchError, match="ocr 'sometimes' is not one of auto, always, never") as err:
        client.create_collection("odd", ocr="sometimes")
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert client.create_collection("plain").config.ocr == collections_pb2.OCR_MODE_AUTO
