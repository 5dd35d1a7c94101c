"""Kept page images: stored at ingest, read back with GetPage/GetDocument and as search thumbnails,
and gone with their document; on both storage backends (called over the HTTP port)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from mmsearch.server.app import App
from mmsearch.server.errors import Unavailable
from mmsearch.server.storage.page_images import image_key

from .pagegen import multipage_tiff, text_page
from .test_http import call


def _image(b64: str) -> Image.Image:
    img = Image.open(io.BytesIO(base64.b64decode(b64)))
    assert img.format == "WEBP"
    return img


def ingest_image(http: httpx.Client, doc_id: str, data: bytes, mime: str) -> dict:
    item = {"id": doc_id, "image": {"data": base64.b64encode(data).decode(), "mimeType": mime}}
    request = {"collection": "kb", "createCollection": True, "item": item}
    r = call(http, "IngestService/IngestBatch", {"requests": [request]})
    assert r.status_code == 200, r.text
    return r.json()["acks"][0]


def test_page_is_kept_and_read_back_with_words(http: httpx.Client) -> None:
    big = text_page(["INVOICE 4471", "Harbour Freight Logistics", "Total due 812.50"], size=(2400, 1600))
    assert ingest_image(http, "invoice", big, "image/png")["ok"]
    r = call(http, "PageService/GetPage", {"collection": "kb", "documentId": "invoice", "page": 1})
    assert r.status_code == 200, r.text
    page = r.json()
    assert (page["width"], page["height"]) == (2400, 1600)  # the frame of the word boxes
    assert page["mimeType"] == "image/webp"
    assert max(_image(page["image"]).size) == 1600  # bounded
    assert max(_image(page["thumbnail"]).size) == 320
    assert "Harbour" in page["text"]
    freight = next(w for w in page["words"] if "Freight" in w["text"])
    assert 0 <= freight["box"]["x0"] < freight["box"]["x1"] <= 2400


def _first_page_twice_second_turned(pdf: bytes) -> bytes:
    """A real paper's first page, then the same page with /Rotate 90 (as scanners and some exports write)."""
    import pypdfium2 as pdfium

    src, out = pdfium.PdfDocument(pdf), pdfium.PdfDocument.new()
    out.import_pages(src, [0, 0])
    out[1].set_rotation(90)
    buf = io.BytesIO()
    out.save(buf)
    return buf.getvalue()


@pytest.mark.parametrize("http_app", ["edge"], indirect=True)  # rendering is the same on both backends
def test_pdf_pages_read_from_their_text_layer_are_rendered_and_kept(http: httpx.Client, shared_data: Path) -> None:
    pdf = _first_page_twice_second_turned(
        (shared_data / "pdf_documents" / "layout-parser-paper-with-empty-pages.pdf").read_bytes()
    )
    item = {"id": "paper", "pdf": base64.b64encode(pdf).decode()}
    r = call(http, "IngestService/IngestBatch", {"requests": [{"collection": "kb", "createCollection": True,
                                                              "item": item}]})  # fmt: skip
    assert r.json()["acks"][0]["points"] == 2, r.text
    for number, size in ((1, (1275, 1650)), (2, (1650, 1275))):  # US Letter at 150 dpi, upright and turned
        page = call(http, "PageService/GetPage", {"collection": "kb", "documentId": "paper", "page": number}).json()
        assert (page["width"], page["height"]) == size  # the frame of the word boxes
        image = _image(page["image"])
        assert max(image.size) == 1600 and max(_image(page["thumbnail"]).size) == 320
        # The text layer's boxes lie on the rendered words: ink inside each box, in the image's pixels.
        ink = np.asarray(image.convert("L").resize(size)) < 128
        boxes = [w["box"] for w in page["words"] if len(w["text"]) >= 4]
        assert len(boxes) > 100
        inked = [ink[round(b["y0"]) : round(b["y1"]) + 1, round(b["x0"]) : round(b["x1"]) + 1].mean() > 0.05
                 for b in boxes]  # fmt: skip
        assert sum(inked) / len(inked) > 0.95, (number, sum(inked) / len(inked))
    body = {"collection": "kb", "query": {"text": "layoutparser toolkit"}, "topK": 1, "thumbnails": True}
    hit = call(http, "SearchService/Search", body).json()["results"][0]
    assert hit["documentId"] == "paper" and max(_image(hit["thumbnail"]).size) == 320


def test_search_returns_thumbnails_when_asked(http: httpx.Client) -> None:
    ingest_image(http, "invoice", text_page(["INVOICE 4471", "Harbour Freight"]), "image/png")
    body = {"collection": "kb", "query": {"text": "harbour freight"}, "topK": 1}
    plain = call(http, "SearchService/Search", body).json()["results"][0]
    assert "thumbnail" not in plain
    with_thumb = call(http, "SearchService/Search", {**body, "thumbnails": True}).json()["results"][0]
    assert _image(with_thumb["thumbnail"]).size[0] <= 320


def test_get_document_lists_pages_and_images_go_with_the_document(http_app: App, http: httpx.Client) -> None:
    tiff = multipage_tiff([["first page about tulips"], ["second page about glaciers"]])
    assert ingest_image(http, "scan", tiff, "image/tiff")["points"] == 2
    doc = call(http, "PageService/GetDocument", {"collection": "kb", "documentId": "scan"}).json()
    assert [p["page"] for p in doc["pages"]] == [1, 2]
    assert all("image" not in p and p["thumbnail"] for p in doc["pages"])  # images only when asked
    images = http_app.store.page_images
    assert images is not None and images.get("kb", "scan", 2) is not None
    # replaced by a one-page version, written in the other version slot: the old version's images go
    assert ingest_image(http, "scan", text_page(["only page"]), "image/png")["points"] == 1
    new = image_key("scan", None, slot=1)
    assert images.get("kb", "scan", 1) is None and images.get("kb", "scan", 2) is None
    assert images.get("kb", new, 1) is not None and images.get("kb", new, 2) is None
    r = call(http, "PageService/GetPage", {"collection": "kb", "documentId": "scan", "page": 2})
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert call(http, "IngestService/Delete", {"collection": "kb", "ids": ["scan"]}).status_code == 200
    assert images.get("kb", new, 1) is None
    r = call(http, "PageService/GetDocument", {"collection": "kb", "documentId": "scan"})
    assert r.status_code == 404 and "scan" in r.json()["message"]


def test_dropping_the_collection_drops_its_images(http_app: App, http: httpx.Client) -> None:
    ingest_image(http, "invoice", text_page(["INVOICE 4471"]), "image/png")
    assert call(http, "CollectionService/DeleteCollection", {"name": "kb"}).status_code == 200
    images = http_app.store.page_images
    assert images is not None and images.get("kb", "invoice", 1) is None


def test_a_filter_delete_takes_the_matching_documents_images(http_app: App, http: httpx.Client) -> None:
    for doc_id, team in (("a", "red"), ("b", "red"), ("c", "blue")):
        png = base64.b64encode(text_page([f"page {doc_id}"])).decode()
        item = {"id": doc_id, "image": {"data": png, "mimeType": "image/png"}, "metadata": {"fields": {"team": team}}}
        r = call(http, "IngestService/IngestBatch", {"requests": [{"collection": "kb", "createCollection": True,
                                                                    "item": item}]})  # fmt: skip
        assert r.json()["acks"][0].get("ok"), r.text
    images = http_app.store.page_images
    assert images is not None and all(images.get("kb", d, 1) is not None for d in "abc")
    r = call(http, "IngestService/Delete", {"collection": "kb", "filter": {"must": [
        {"key": "team", "match": {"stringValue": "red"}}]}})  # fmt: skip
    assert r.status_code == 200, r.text
    assert images.get("kb", "a", 1) is None and images.get("kb", "b", 1) is None
    assert images.get("kb", "c", 1) is not None  # not matched: kept


def test_a_page_that_cannot_be_stored_leaves_no_image(
    http_app: App, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = http_app.store.upsert

    def refuse(name: str, points: list) -> None:  # type: ignore[type-arg]
        if any(p.payload["doc_id"] == "scan" for p in points):
            raise Unavailable("Qdrant cannot be reached")
        real(name, points)

    monkeypatch.setattr(http_app.store, "upsert", refuse)
    ack = ingest_image(http, "scan", text_page(["never stored"]), "image/png")
    assert ack.get("ok") is not True and ack["errorCode"] == "UNAVAILABLE"
    images = http_app.store.page_images
    assert images is not None and images.get("kb", "scan", 1) is None


def test_python_client_and_cli_read_pages_back(
    http_app: App, http: httpx.Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mmsearch.client import Client, MMSearchError
    from mmsearch.client.cli import main as cli

    tiff = multipage_tiff([["first page about tulips"], ["second page about glaciers"]])
    assert ingest_image(http, "scan", tiff, "image/tiff")["points"] == 2
    with Client(f"127.0.0.1:{http_app.port}", timeout=30, retries=0) as c:
        page = c.get_page("kb", "scan", 2)
        assert page.page == 2 and "glaciers" in page.text and Image.open(io.BytesIO(page.image)).format == "WEBP"
        doc = c.get_document("kb", "scan")
        assert [p.page for p in doc.pages] == [1, 2] and not doc.pages[0].image
        # with images, over the largest message: a message that says what to do (gRPC's own said only
        # "Sent message larger than max"; over HTTP the whole document went out)
        from mmsearch.server.errors import ResourceExhausted
        from mmsearch.server.services.pages import PageServicer
        from mmsearch.server.settings import Settings
        from mmsearch.v1 import pages_pb2

        small = PageServicer(http_app.store, settings=Settings(max_message_mb=1, data_dir=tmp_path))
        request = pages_pb2.GetDocumentRequest(collection="kb", document_id="scan")
        small.max_message = small.GetDocument(request, None).ByteSize()  # the text and thumbnails just fit
        request.images = True  # the two kept WebP pages do not: refused while reading them
        with pytest.raises(ResourceExhausted, match=r"with its page images is over .* by page 1 of 2, .* one by one"):
            small.GetDocument(request, None)
        whole = PageServicer(http_app.store, settings=Settings(data_dir=tmp_path)).GetDocument(request, None)
        small.max_message = whole.ByteSize() - 1  # over by a byte: only the message's exact size shows it
        with pytest.raises(ResourceExhausted, match=r"with its page images is [0-9.]+ MiB, over the largest"):
            small.GetDocument(request, None)
        # and it stops reading images at the first page past the limit (a 120-page document was read whole)
        from mmsearch.server.pages import TooLarge, get_document

        images, read = http_app.store.page_images, []
        assert images is not None
        real_get = images.get
        images.get = lambda *a, **kw: read.append(a[2]) or real_get(*a, **kw)  # type: ignore[method-assign]
        try:
            with pytest.raises(TooLarge, match=r"by page 1 of 2"):
                get_document(http_app.store, "kb", "scan", images=True, max_bytes=100)
            assert read == [1]
            fits = small.max_message  # the exact size of the answer without images: never refused early
            assert len(get_document(http_app.store, "kb", "scan", images=False, max_bytes=fits)[1]) == 2
        finally:
            del images.get
        with pytest.raises(MMSearchError) as missing:
            c.get_page("kb", "scan", 3)
        assert missing.value.code.name == "NOT_FOUND"
    server = f"127.0.0.1:{http_app.port}"
    assert cli(["page", "scan", "-c", "kb", "--server", server, "--out", str(tmp_path / "p.webp"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [p["page"] for p in shown["pages"]] == [1, 2] and "tulips" in shown["pages"][0]["text"]
    assert [Image.open(f).size for f in shown["saved"]] == [(p["width"], p["height"]) for p in shown["pages"]]
    assert cli(["page", "scan", "9", "-c", "kb", "--server", server]) == 2
    assert "NOT_FOUND" in capsys.readouterr().err


def test_keeping_page_images_can_be_turned_off(tmp_path: Path) -> None:
    """--no-keep-page-images: pages are still found and read back (text, words), but no image is
    rendered or stored and results carry no thumbnail; the same PDF on a default server has both."""
    from mmsearch.client import Client
    from mmsearch.server.app import create_server

    from .conftest import fake_settings
    from .pagegen import text_pdf
    from .test_pages import pdf_item

    pdf = text_pdf([["quarterly tulip sales"], ["glacier survey notes"]])
    for keep in (False, True):
        data = tmp_path / f"keep-{keep}"
        app = create_server(fake_settings(data, keep_page_images=keep))
        try:
            with Client(f"127.0.0.1:{app.port}", timeout=30, retries=0) as c:
                assert [a.points for a in c.ingest("kb", [pdf_item("report", pdf)], create=True)] == [2]
                page = c.get_page("kb", "report", 2)
                assert "glacier" in page.text and page.words
                hit = c.search("kb", "glacier survey", top_k=1, thumbnails=True).results[0]
                assert hit.document_id == "report"
                assert bool(page.image) is bool(page.thumbnail) is bool(hit.thumbnail) is keep
            assert any(p.is_file() for p in (data / "page_images").rglob("*")) is keep
        finally:
            app.stop(grace=None)
