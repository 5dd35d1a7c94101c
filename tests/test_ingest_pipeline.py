"""The ingest pipeline when things go wrong mid-stream: the client cancels, the request stream breaks,
storage refuses a write, the OCR engine fails on a page. Fake encoder, both storage backends."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mmsearch.client import Client
from mmsearch.server.app import App
from mmsearch.server.catalog import Catalog
from mmsearch.server.errors import ResourceExhausted, Unavailable
from mmsearch.server.ingest.items import IngestItem, Text
from mmsearch.server.ingest.pages import Word
from mmsearch.server.ingest.pipeline import Ingestor
from mmsearch.server.storage.base import Cond, PointData, Where
from mmsearch.v1 import common_pb2, ingest_pb2

from .conftest import fake_settings
from .documents import text_item
from .pagegen import text_page


def _points(app: App, collection: str, doc_id: str, hidden: bool = False) -> int:
    """The document's visible points; `hidden`: stored ones too (written, not yet committed)."""
    return app.store.count(collection, Where(must=[Cond(key="doc_id", match=doc_id)]), hidden=hidden)


def _long_text(passages: int) -> str:
    """`passages` passages in a collection made with max_words=10, overlap_words=2 (8 new words each)."""
    return " ".join(f"w{i}" for i in range(8 * passages + 2))


def _spy_upserts(app: App, monkeypatch: pytest.MonkeyPatch, before: Any) -> None:
    """Runs `before(points)` ahead of every real upsert of the app's store; it may raise or block."""
    real = app.store.upsert

    def upsert(name: str, points: list[PointData]) -> None:
        before(points)
        real(name, points)

    monkeypatch.setattr(app.store, "upsert", upsert)


def test_cancel_mid_stream_removes_unacknowledged_items(
    fake_app: App, fake_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_client.create_collection("c", max_words=10, overlap_words=2)
    held, release, hold_stream = threading.Event(), threading.Event(), threading.Event()

    def hold_second_write_of_b(points: list[PointData]) -> None:
        # B's first batch is written; its next batch waits here until the test has cancelled, so B
        # is part-written and unacknowledged when the cancel lands.
        if not held.is_set() and {(p.payload["doc_id"], p.payload["seq"] > 0) for p in points} == {("B", True)}:
            held.set()
            release.wait(20)

    _spy_upserts(fake_app, monkeypatch, hold_second_write_of_b)

    def requests() -> Any:
        for item in (text_item("A", "a short note about owls"), text_item("B", _long_text(400))):
            yield ingest_pb2.IngestRequest(collection="c", item=item)
        hold_stream.wait(30)  # the client keeps the stream open: the server has no reason to stop

    call = fake_client.ingest_stub.Ingest(requests())
    try:
        first = next(call)
        assert (first.id, first.ok, first.points) == ("A", True, 1)
        assert held.wait(20)
        assert _points(fake_app, "c", "B", hidden=True) >= 31  # B's first batch is stored...
        assert _points(fake_app, "c", "B") == 0  # ...and no search sees it before B is complete
        call.cancel()
        time.sleep(0.5)  # the cancel reaches the server before the held write finishes
        release.set()
        deadline = time.monotonic() + 20
        while _points(fake_app, "c", "B", hidden=True) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _points(fake_app, "c", "B", hidden=True) == 0
        assert _points(fake_app, "c", "A") == 1  # acknowledged before the cancel: kept
    finally:
        release.set()
        hold_stream.set()
    assert fake_client.search("c", "owls", top_k=5).results[0].document_id == "A"


def test_broken_request_stream_rolls_back_unacknowledged_items(
    fake_app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = Catalog(fake_app.store, fake_app.encoders, fake_settings(tmp_path, chunk_words=10, chunk_overlap=2))
    written: set[str] = set()
    _spy_upserts(fake_app, monkeypatch, lambda points: written.update(p.payload["doc_id"] for p in points))

    def items() -> Any:
        yield IngestItem("c", "A", content=Text("a short note"), create_collection=True)
        yield IngestItem("c", "B", content=Text(_long_text(40)))
        raise ConnectionResetError("the request stream broke")

    results = Ingestor(catalog, batch_size=4).run(items())
    first = next(results)
    assert (first.seq, first.id, first.ok, first.points) == (0, "A", True, 1)
    with pytest.raises(ConnectionResetError):
        next(results)
    assert "B" in written  # some of B reached storage before the stream broke...
    assert _points(fake_app, "c", "B", hidden=True) == 0  # ...and none of it stayed
    assert _points(fake_app, "c", "A") == 1


def test_storage_failure_rejects_only_the_affected_items(
    fake_app: App, fake_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_client.create_collection("c", max_words=10, overlap_words=2)
    assert [a.ok for a in fake_client.ingest("c", [text_item("down", "the old version of down")])] == [True]

    def refuse(points: list[PointData]) -> None:
        docs = {p.payload["doc_id"] for p in points}
        if "down" in docs:
            raise Unavailable("Qdrant at http://qdrant:6333 cannot be reached")
        if any(p.payload["doc_id"] == "poison" and p.payload["seq"] >= 40 for p in points):
            raise RuntimeError("disk full")  # poison's first 40 points were stored: they must go

    _spy_upserts(fake_app, monkeypatch, refuse)
    items = [
        text_item("good1", "first fine note"),
        text_item("poison", _long_text(100)),
        text_item("good2", "second fine note"),
        text_item("down", "the new version of down"),
        text_item("good3", "third fine note"),
    ]
    acks = list(fake_client.ingest("c", items))
    assert [a.sequence for a in acks] == list(range(5)) and [a.id for a in acks] == [i.id for i in items]
    assert [a.ok for a in acks] == [True, False, True, False, True]
    assert acks[1].error_code == "INTERNAL" and acks[1].error == (
        "item 'poison' could not be stored (storage failed; see the server log)"
    )
    assert acks[3].error_code == "UNAVAILABLE" and "could not be stored: Qdrant at" in acks[3].error
    assert _points(fake_app, "c", "poison", hidden=True) == 0
    # nothing of the new version reached storage, so the old one stays whole
    assert fake_client.search("c", "old version", top_k=1).results[0].snippet == "the old version of down"
    assert [_points(fake_app, "c", d) for d in ("good1", "good2", "good3", "down")] == [1, 1, 1, 1]


class _FlakyOCR:
    """Reads one made-up word per page, and fails on pages 333 pixels wide."""

    name = "flaky"

    def words(self, image: Image.Image) -> list[Word]:
        if image.width == 333:
            raise RuntimeError("engine crashed on this page")
        if image.width == 444:  # as ocr_torch.py says a full GPU
            raise ResourceExhausted("OCR on the GPU ran out of memory")
        return [Word(f"width{image.width}", (10, 10, 90, 40))]


def _image_item(doc_id: str, data: bytes, mime: str = "image/png") -> ingest_pb2.IngestItem:
    return ingest_pb2.IngestItem(id=doc_id, source=doc_id, image=common_pb2.Image(data=data, mime_type=mime))


def _two_page_tiff(second_width: int) -> bytes:
    first, second = (Image.open(io.BytesIO(text_page(["page"], size=(w, 200)))) for w in (500, second_width))
    buf = io.BytesIO()
    first.save(buf, "TIFF", save_all=True, append_images=[second])
    return buf.getvalue()


def test_ocr_failure_rejects_only_that_item(
    fake_app: App, fake_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Catalog, "ocr", lambda self: _FlakyOCR())
    items = [
        _image_item("p1", text_page(["first"], size=(900, 300))),
        _image_item("bad", text_page(["unreadable"], size=(333, 200))),
        _image_item("scan", _two_page_tiff(second_width=333), "image/tiff"),
        text_item("t", "a text note"),
        _image_item("p2", text_page(["second"], size=(700, 300))),
        _image_item("busy", text_page(["later"], size=(444, 200))),
    ]
    acks = list(fake_client.ingest("pages", items))
    assert [a.sequence for a in acks] == list(range(6))
    assert [a.ok for a in acks] == [True, False, False, True, True, False]
    assert acks[1].error_code == "INVALID_ARGUMENT"
    # the engine's own verdict keeps its kind: a full GPU is not the page's fault
    assert acks[5].error_code == "RESOURCE_EXHAUSTED" and "ran out of memory" in acks[5].error
    assert acks[1].error == "page 1 of item 'bad' could not be read by OCR (flaky): engine crashed on this page"
    assert acks[2].error.startswith("page 2 of item 'scan' could not be read by OCR")
    assert [_points(fake_app, "pages", d) for d in ("p1", "bad", "scan", "t", "p2")] == [1, 0, 0, 1, 1]
    assert fake_client.search("pages", "width700", top_k=1).results[0].document_id == "p2"
