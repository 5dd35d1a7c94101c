"""Work stops when the caller leaves: a 9 KB PDF declaring 1,500 pages stops being rendered and OCR'd
within a few seconds of a cancel or a deadline, and nothing of it stays. Fake encoder."""

from __future__ import annotations

import threading
import time
from typing import Any

import grpc
import pytest
from PIL import Image

from mmsearch.client import Client
from mmsearch.server.app import App
from mmsearch.server.catalog import Catalog
from mmsearch.server.ingest.pages import PAGES_READ, Word
from mmsearch.server.storage.base import Cond, Where
from mmsearch.v1 import ingest_pb2


def one_page_many_times(pages: int) -> bytes:
    """A PDF whose page tree names one blank page object `pages` times (9 KB for 1,500 pages)."""
    kids = " ".join(["3 0 R"] * pages)
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
        "<< /Length 0 >>\nstream\n\nendstream",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


class _SlowOCR:
    """A page every 20 ms, one word each: slow enough that 1,500 pages take half a minute."""

    name = "slow"

    def __init__(self) -> None:
        self.calls = 0

    def words(self, image: Image.Image) -> list[Word]:
        self.calls += 1
        time.sleep(0.02)
        return [Word("blank", (1, 1, 10, 10))]


def _pages_read() -> float:
    return PAGES_READ._value.get()  # type: ignore[attr-defined]


@pytest.mark.parametrize("fake_app", ["edge"], indirect=True)
@pytest.mark.parametrize("leave", ["cancel", "deadline"])
def test_long_pdf_stops_when_the_caller_leaves(
    fake_app: App, fake_client: Client, monkeypatch: pytest.MonkeyPatch, leave: str
) -> None:
    ocr = _SlowOCR()
    monkeypatch.setattr(Catalog, "ocr", lambda self: ocr)
    fake_client.create_collection("c")
    pdf = one_page_many_times(1500)
    assert len(pdf) < 10_000
    hold = threading.Event()

    def requests() -> Any:
        yield ingest_pb2.IngestRequest(collection="c", item=ingest_pb2.IngestItem(id="big", pdf=pdf))
        hold.wait(60)  # the stream stays open: only the cancel or the deadline ends the call

    before = _pages_read()
    call = fake_client.ingest_stub.Ingest(requests(), timeout=3 if leave == "deadline" else 60)
    try:
        deadline = time.monotonic() + 20
        while _pages_read() - before < 40:
            assert time.monotonic() < deadline, "the server never started on the PDF"
            time.sleep(0.05)
        if leave == "cancel":
            call.cancel()
        with pytest.raises(grpc.RpcError) as ended:
            list(call)
        assert ended.value.code() == (
            grpc.StatusCode.CANCELLED if leave == "cancel" else grpc.StatusCode.DEADLINE_EXCEEDED
        )
        left = time.monotonic()
        time.sleep(2)
        stopped_at, ocr_calls = _pages_read(), ocr.calls
        time.sleep(1.5)
        assert (_pages_read(), ocr.calls) == (stopped_at, ocr_calls)  # nothing more is read or OCR'd...
        assert stopped_at - before < 1000  # ...long before the 1,500 pages
        assert time.monotonic() - left < 10
    finally:
        hold.set()
    doc = Where(must=[Cond(key="doc_id", match="big")])
    deadline = time.monotonic() + 10
    while fake_app.store.count("c", doc, hidden=True) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_app.store.count("c", doc, hidden=True) == 0  # rolled back, never shown
