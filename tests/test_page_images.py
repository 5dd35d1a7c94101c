"""Kept page images: stored at ingest, read back with GetPage/GetDocument and as search thumbnails,
and gone with their document; on both storage backends (called over the HTTP port)."""

from __future__ import annotations

import base64
import io

import httpx
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
